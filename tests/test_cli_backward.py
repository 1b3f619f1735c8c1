"""`lstmtrace step --backward` and `run --backward`: options, output, and every bad input."""
import io

import pandas as pd
import pytest

import lstmtrace
from conftest import assert_error, assert_ok, invoke
from lstmtrace import Parameters, backward


def _csv(*args):
    return lstmtrace.read_trace(io.StringIO(assert_ok(invoke(*args, "--format", "csv")).stdout))


def test_step_backward_is_the_library_backward(seed_question):
    params, v = seed_question
    expected = backward(lstmtrace.step(params, v["x"], v["h_prev"], v["c_prev"]))
    assert _csv("step", "--backward").frame.equals(expected.frame)


@pytest.mark.parametrize("args, kwargs", [
    (["--loss", "mse", "--target", "1,0,1"], {"loss": "mse", "target": [1, 0, 1]}),
    (["--loss", "sum", "--loss-on", "all"], {"loss": "sum", "loss_on": "all"}),
    (["--dh", "1,-1,0.5", "--dc", "0,0,2"], {"dh": [1, -1, 0.5], "dc": [0, 0, 2]}),
    (["--dh", "1,-1,0.5"], {"dh": [1, -1, 0.5]}),
])
def test_run_backward_losses(args, kwargs):
    cli = _csv("run", "--xs", "1,0;0,1;1,1", "--hidden-size", "3", "--weights", "random:2", "--backward", *args)
    library = backward(lstmtrace.run(Parameters.random(2, 3, seed=2), [[1, 0], [0, 1], [1, 1]]), **kwargs)
    assert cli.frame.equals(library.frame)


def test_text_has_the_backward_section_and_norms():
    text = assert_ok(invoke("run", "--xs", "1;2;3", "--backward", "--steps", "3")).stdout
    assert "Backward pass of L = Σ of h_T." in " ".join(text.split())
    assert "Gradient norms, step by step" in text
    assert "Backward pass, step t = 3: dL/d each quantity, from the loss back" in text
    assert "Backward pass, step t = 2" not in text
    single = assert_ok(invoke("step", "--backward")).stdout
    assert "dL/dc = dL/dtanh(c) * (1 - tanh²(c));" in single
    assert "Gradient norms" not in single


def test_backward_markdown_and_wide_csv(tmp_path):
    assert "### Cell state" in assert_ok(invoke("step", "--backward", "--format", "markdown")).stdout
    assert_ok(invoke("step", "--backward", "--layout", "wide", "-o", tmp_path / "w.csv"))
    wide = pd.read_csv(tmp_path / "w.csv")
    assert "grad:W" in set(wide["quantity"]) and wide.shape[1] == 3 + 25  # H·E = 25 units for grad:W


@pytest.mark.parametrize("args, fragments", [
    (["--loss", "mse"], ["'--loss'", "add --backward"]),
    (["--dh", "1,2,3,4,5"], ["'--dh'", "add --backward"]),
    (["--backward", "--loss", "mse"], ["'--target'", "needs a --target"]),
    (["--backward", "--target", "1,1,1,1,1"], ["'--target'", "is for --loss mse"]),
    (["--backward", "--loss", "mse", "--target", "1,2"], ["'--target'", "5 finite numbers"]),
    (["--backward", "--loss", "mse", "--target", "1,2,nan,4,5"], ["'--target'", "not finite"]),
    (["--backward", "--dh", "1,2"], ["'--dh'", "must have 5 values"]),
    (["--backward", "--dh", "1,2,3,4,inf"], ["'--dh'", "not finite"]),
    (["--backward", "--dc", "1,2,3,4,5"], ["'--dc'", "goes with --dh"]),
    (["--backward", "--dh", "1,2,3,4,5", "--loss", "sum"], ["'--dh'", "no --loss"]),
    (["--backward", "--dh", "1,2,3,4,5", "--dc", "1"], ["'--dc'", "must have 5 values"]),
    (["--backward", "--loss", "hinge"], ["'--loss'"]),
])
def test_bad_backward_options(tmp_path, args, fragments):
    out = tmp_path / "out.csv"
    assert_error(invoke("step", *args, "-o", out), *fragments)
    assert not out.exists()
