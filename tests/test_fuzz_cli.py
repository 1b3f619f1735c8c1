"""Random command lines: every option of every command, with plausible and absurd values.

Whatever the combination, lstmtrace answers with exit status 0 (1 too for diff, as
diff(1)), or 2 with exactly one "Error: " line; never a traceback, never "Aborted!",
never the last-resort "internal error".  The option lists come from the commands
themselves, so a new option is fuzzed from the day it is added.

``make fuzz`` runs many more examples (LSTMTRACE_FUZZ_EXAMPLES).
"""
import os

import click
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import invoke
from lstmtrace import Parameters
from lstmtrace.cli import cli

EXAMPLES = int(os.environ.get("LSTMTRACE_FUZZ_EXAMPLES", "40"))

FILES = ["w.npz", "xs.csv", "xs.npy", "trace.csv", "wide.csv", "missing.csv", "folder"]
"""Files made in the fuzz's folder (and two that are not files), by ``folder`` below."""

WORDS = [
    "", " ", "-", "0", "1", "-1", "2", "3", "1e400", "-0", "nan", "inf", "abc", "∞", "1,2", "1,2,3", "-0.5,2",
    "1,,2", "1;2", "1,2;3,4", "0.5,0.5;1,1;2,2", "identity", "zeros", "ones", "random", "random:7",
    "random:x", "forget.b=1", "input.U=zeros", "candidate.W=1,0;0,1", "output.b=1,2", "forget.X=1",
    "nothing.W=1", "=", "forget.U=", "2-3", "1,4-6", "9-1", "encoder.lstm", "torch", "keras", "long", "wide",
    "out.csv", "out.txt", "out.md", "out.json", "out.parquet", "out.svg", "out.png", "out.npz", "out.xyz",
    *FILES,
]


def _values(param):
    """Values worth trying for one option: its own choices and range edges, and anything at all."""
    if isinstance(param.type, click.Choice):
        return st.sampled_from([*param.type.choices, "bogus"])
    if isinstance(param.type, click.types.IntRange) or param.type is click.INT:
        return st.sampled_from(["-1", "0", "1", "2", "3", "17", "18", "1000", "x", "1.5"])
    return st.sampled_from(WORDS)


def _command_lines(name):
    """Strategy: argument lists for ``lstmtrace NAME`` using any subset of its options."""
    command = cli.commands[name]
    options = [p for p in command.params if isinstance(p, click.Option) and p.name != "help"]
    arguments = [p for p in command.params if isinstance(p, click.Argument)]

    @st.composite
    def line(draw):
        words = [name]
        for p in arguments:
            count = draw(st.integers(0, 2 if p.nargs == -1 else 1))
            words += [draw(st.sampled_from(FILES + ["trace.csv"] * 3)) for _ in range(count)]
        for p in draw(st.lists(st.sampled_from(options), max_size=6)):
            flag = p.opts[-1]
            words += [flag] if p.is_flag else [flag, draw(_values(p))]
        return words

    return line()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A folder with one valid file of each kind a command reads."""
    path = tmp_path_factory.mktemp("fuzz")
    Parameters.random(2, 2, seed=1).save(path / "w.npz")
    (path / "xs.csv").write_text("1,2\n3,4\n0.5,-1\n")
    np.save(path / "xs.npy", np.array([[1.0, 2.0], [3.0, 4.0]]))
    (path / "folder").mkdir()
    assert invoke("run", "--xs", path / "xs.csv", "-o", path / "trace.csv").exit_code == 0
    assert invoke("run", "--xs", path / "xs.csv", "--csv-layout", "wide", "-o", path / "wide.csv").exit_code == 0
    return path


def _check(result, words):
    allowed = {0, 1, 2} if words[0] == "diff" else {0, 2}
    shown = f"lstmtrace {' '.join(map(repr, words))}\nexit {result.exit_code}\nstderr: {result.stderr}"
    assert result.exit_code in allowed, shown
    assert "Traceback" not in result.stderr and "Aborted!" not in result.stderr, shown
    assert "internal error" not in result.stderr, shown
    if result.exit_code == 2:
        errors = [s for s in result.stderr.splitlines() if not s.startswith("Warning: ")]
        assert len(errors) == 1 and errors[0].startswith("Error: "), shown


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_any_command_line_is_an_answer_or_one_error(folder, monkeypatch, name):
    monkeypatch.chdir(folder)
    runs = EXAMPLES if name not in ("draw", "plot") else max(EXAMPLES // 4, 5)  # a picture takes a while

    @settings(max_examples=runs, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                        HealthCheck.too_slow])
    @given(words=_command_lines(name))
    def fuzz(words):
        _check(invoke(*words), words)
        for produced in folder.glob("out.*"):  # each case starts from the same folder
            produced.unlink()

    fuzz()
