"""The documentation keeps up: help on every command and option, a README that matches the code."""
import pathlib
import re
import subprocess
import sys

import click
import pytest

from lstmtrace.cell import PIPELINE
from conftest import imported_by
from lstmtrace.cli import cli

ROOT = pathlib.Path(__file__).parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
COMMANDS = sorted(cli.commands)


def test_readme_opens_with_the_two_commands_for_a_fresh_machine():
    blocks = re.findall(r"```bash\n(.*?)```", README, re.S)
    assert blocks[0].strip() == "pip install . && lstmtrace step"
    assert blocks[1].strip() == "pip install '.[test]' && python -m pytest"
    assert README.index(blocks[1]) < README.index("\n## ")


def test_ci_runs_the_readmes_test_command():
    assert "pip install '.[test]' && python -m pytest" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help_with_an_example(name):
    command = cli.commands[name]
    assert command.help and "\b" in command.help, f"{name} has no example block"
    assert f"lstmtrace {name}" in command.help


@pytest.mark.parametrize("name", COMMANDS)
def test_every_option_has_help(name):
    for param in cli.commands[name].params:
        if isinstance(param, click.Option):
            assert param.help, f"lstmtrace {name} {param.opts[0]} has no help"


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_and_option_is_in_the_readme(name):
    assert any(line.startswith("### ") and f"`lstmtrace {name}`" in line for line in README.splitlines())
    for param in cli.commands[name].params:
        if isinstance(param, click.Option) and param.name != "help":
            assert any(opt in README for opt in param.opts), f"{param.opts} of {name} not in README"


def test_readme_format_table_lists_every_quantity_in_order():
    table = README[README.index("| gate | quantities, in order |"):]
    for gate, quantities in PIPELINE:
        row = next(line for line in table.splitlines() if gate in line.split("|")[1])
        assert re.findall(r"`([^`]+)`", row) == list(quantities)


def test_help_answers_without_importing_numpy_or_pandas():
    stdout, heavy = imported_by(["--help"])
    assert "lstmtrace step" in stdout
    assert heavy == []


def test_python_dash_m_runs_the_cli():
    result = subprocess.run([sys.executable, "-m", "lstmtrace", "--version"], capture_output=True,
                            text=True, cwd=ROOT)
    assert result.returncode == 0 and "lstmtrace, version" in result.stdout


def test_public_api_is_declared():
    import lstmtrace

    for name in lstmtrace.__all__:
        value = getattr(lstmtrace, name)
        if callable(value) and not (isinstance(value, type) and issubclass(value, Exception)):
            assert value.__doc__ and ">>>" in (value.__doc__ + (value.__init__.__doc__ or "")) \
                or name == "Gate", f"lstmtrace.{name} has no example"


PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", README, re.S)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Keras' own, from its torch backend
@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=[f"block{k}" for k in range(len(PYTHON_BLOCKS))])
def test_readme_python_examples_run(block, tmp_path, monkeypatch, capsys):
    for framework in ("torch", "keras", "onnx", "onnxruntime"):
        if re.search(rf"^import {framework}\b|^from {framework}\b", block, re.M):
            monkeypatch.setenv("KERAS_BACKEND", "torch")
            pytest.importorskip(framework)
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "README.md", "exec"), {})
    out = capsys.readouterr().out
    for difference in re.findall(r"^(\d\.\d+e-\d+)$", out, re.M):  # the parity examples print one
        assert float(difference) < 1e-6


@pytest.mark.parametrize("trace", ["seed_question.txt", "seed_question_backward.txt"])
def test_readme_excerpts_are_the_tools_own_output(trace):
    """Every ```text block quoted from a worked example appears, line for line, in the golden trace."""
    golden = (ROOT / "traces" / trace).read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"```text\n(.*?)```", README, re.S) if "unit" in b and "----" in b]
    quoted = [b for b in blocks if b.strip() in golden]
    assert quoted, f"no README excerpt of traces/{trace}"
    for block in blocks:
        assert block.strip() in (ROOT / "traces" / "seed_question.txt").read_text(encoding="utf-8") \
            or block.strip() in (ROOT / "traces" / "seed_question_backward.txt").read_text(encoding="utf-8"), \
            f"README excerpt is not the tool's output:\n{block[:200]}"


CONSOLE_BLOCKS = re.findall(r"```console\n(.*?)```", README, re.S)


@pytest.mark.parametrize("block", CONSOLE_BLOCKS, ids=[f"console{k}" for k in range(len(CONSOLE_BLOCKS))])
def test_readme_error_examples_are_what_lstmtrace_prints(block, tmp_path):
    """A README console block that shows an error shows the line lstmtrace prints, word for word."""
    import shlex

    if "Error: " not in block:
        pytest.skip("not an error example")
    lines = block.strip().splitlines()
    for k, line in enumerate(lines):
        if not line.startswith("$ ") or k + 1 == len(lines) or not lines[k + 1].startswith("Error: "):
            continue
        result = None
        for part in line[2:].split(" && "):
            words = shlex.split(part)
            assert words[0] == "lstmtrace"
            result = subprocess.run([sys.executable, "-m", "lstmtrace", *words[1:]], capture_output=True,
                                    text=True, cwd=tmp_path)
        assert result.returncode == 2 and result.stderr.strip() == lines[k + 1], result.stderr
