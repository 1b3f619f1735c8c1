"""Shared fixtures and one-line helpers for driving the CLI (in the spirit of csvkit's tests/utils.py)."""
import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import settings

from lstmtrace import Parameters
from lstmtrace.cli import cli
from lstmtrace.examples import SEED_NOTEBOOK, SEED_QUESTION

# Shared machines are noisy: hypothesis must never fail a test for being slow.
settings.register_profile("lstmtrace", deadline=None, max_examples=60)
settings.load_profile("lstmtrace")


def invoke(*args, **kwargs):
    """Run ``lstmtrace ARGS…`` in-process; stdout and stderr stay separate."""
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False, **kwargs)


def assert_ok(result):
    assert result.exit_code == 0, f"exit {result.exit_code}\nstderr: {result.stderr}"
    return result


def assert_error(result, *fragments):
    """Bad input: exit 2, nothing on stdout, one line on stderr that says what and where."""
    assert result.exit_code == 2, f"exit {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{result.stderr}"
    assert lines[0].startswith("Error: ")
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    return lines[0]


@pytest.fixture
def seed_question():
    """The learner's step: identity weights, zero biases, their x and h_prev, c_prev = 0."""
    return Parameters.identity(5, 5), SEED_QUESTION


@pytest.fixture
def notebook_inputs():
    """The teacher's notebook input: x = 10,0,0; h_prev = 0,0,10; c_prev = 1,1,1."""
    return SEED_NOTEBOOK


@pytest.fixture
def random_params():
    """Random weights with E ≠ H and nonzero biases."""
    p = Parameters.random(3, 4, seed=1)
    rng = np.random.default_rng(2)
    for gate in p.gates:
        p.set(gate, "b", rng.uniform(-0.5, 0.5, 4))
    return p


@pytest.fixture
def without(monkeypatch):
    """``without("torch")``: from here on in the test, importing that package fails as if it were missing."""
    import builtins

    real_import = builtins.__import__

    def hide(package):
        def fake_import(name, *args, **kwargs):
            if name == package or name.startswith(package + "."):
                raise ImportError(f"No module named {package!r}")
            return real_import(name, *args, **kwargs)

        monkeypatch.setattr(builtins, "__import__", fake_import)

    return hide


def imported_by(*commands, watch=("pandas", "numpy", "tabulate", "matplotlib")):
    """Run ``lstmtrace`` COMMANDS in one fresh Python process; (its stdout, the watched modules it imported)."""
    import pathlib
    import subprocess
    import sys

    code = ("import sys\nfrom lstmtrace.cli import main\n"
            f"for args in {[list(c) for c in commands]!r}:\n"
            "    try:\n        main(args)\n    except SystemExit:\n        pass\n"
            f"sys.stderr.write(repr([m for m in {list(watch)!r} if m in sys.modules]))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=pathlib.Path(__file__).parent.parent)
    return result.stdout, eval(result.stderr.splitlines()[-1])


def central_difference(array, index, evaluate, eps=1e-6):
    """d evaluate() / d array[index], by central differences; array[index] is put back after."""
    saved = array[index]
    array[index] = saved + eps
    up = evaluate()
    array[index] = saved - eps
    down = evaluate()
    array[index] = saved
    return (up - down) / (2 * eps)


@pytest.fixture
def onnx():
    """The onnx package; the test skips where it is not installed (it is the onnx extra)."""
    return pytest.importorskip("onnx")
