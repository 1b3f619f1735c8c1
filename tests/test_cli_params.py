"""`lstmtrace params`: make a weights file from a spec, or look inside one.

Expected numbers are read straight from the fixtures' arrays, never from lstmtrace.
"""
import pathlib

import numpy as np
import pytest

from conftest import assert_error, assert_ok, invoke
from lstmtrace import Parameters

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
LSTMCELL = FIXTURES / "lstmcell_E3_H5.npz"
TORCH_NPZ = FIXTURES / "torch_lstm_2layer.npz"
KERAS_NPZ = FIXTURES / "keras_lstm_2layer.npz"
KERAS_H5 = FIXTURES / "keras_lstm_2layer.weights.h5"

GATES = ("forget", "input", "candidate", "output")
HEADERS = ["gate", "param", "shape", "min", "mean", "max", "std"]
MAKE = ("--weights", "random:3", "--input-size", "3", "--hidden-size", "5", "--set", "forget.b=1")


def table(out):
    """The header and rows of the summary table, split on whitespace."""
    lines = out.splitlines()
    at = next(k for k, line in enumerate(lines) if line.split()[:2] == ["gate", "param"])
    body = []
    for line in lines[at + 2:]:
        if not line.strip():
            break
        body.append(line.split())
    return lines[at].split(), body


def fails_writing_nothing(tmp_path, *args, fragments=()):
    before = sorted(p.name for p in tmp_path.iterdir())
    line = assert_error(invoke("params", *args), *fragments)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    return line


# -- making a weights file ---------------------------------------------------------------

def test_make_a_weights_file(tmp_path):
    path = tmp_path / "cell.npz"
    result = assert_ok(invoke("params", *MAKE, "-o", path))
    expected = Parameters.random(3, 5, seed=3)
    expected.set("forget", "b", np.ones(5))
    assert Parameters.load(path) == expected
    np.testing.assert_array_equal(Parameters.load(path).forget.b, np.ones(5))
    assert "wrote" in result.stderr and str(path) in result.stderr


def test_make_shows_the_summary_table(tmp_path):
    result = assert_ok(invoke("params", *MAKE, "-o", tmp_path / "cell.npz"))
    assert "input size E = 3" in result.stdout and "hidden size H = 5" in result.stdout
    header, body = table(result.stdout)
    assert header == HEADERS
    assert len(body) == 12
    assert [(r[0], r[1]) for r in body] == [(g, p) for g in GATES for p in "WUb"]
    forget_b = body[2]
    assert forget_b[2:4] == ["(5,)", "1"] and forget_b[-1] == "0"  # shape, min …, std


def test_make_without_output_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = assert_ok(invoke("params", *MAKE))
    assert len(table(result.stdout)[1]) == 12
    assert result.stderr == "" and list(tmp_path.iterdir()) == []


def test_output_suffix_is_case_insensitive(tmp_path):
    assert_ok(invoke("params", *MAKE, "-o", tmp_path / "CELL.NPZ"))
    assert Parameters.load(tmp_path / "CELL.NPZ").input_size == 3


# -- looking inside a weights file ----------------------------------------------------------

def test_show_lstmcell_npz():
    out = assert_ok(invoke("params", "--show", LSTMCELL)).stdout
    assert "input size E = 3" in out and "hidden size H = 5" in out
    with np.load(LSTMCELL) as f:
        forget_W = f["weight_ih"][5:10]  # PyTorch stacks the gates i, f, g, o
        forget_b = f["bias_ih"][5:10] + f["bias_hh"][5:10]
    _, body = table(out)
    assert body[0][:3] == ["forget", "W", "(5,"] and body[0][4] == f"{forget_W.min():.6g}"
    assert body[2][:2] == ["forget", "b"]
    assert body[2][3] == f"{forget_b.min():.6g}" and body[2][5] == f"{forget_b.max():.6g}"


@pytest.mark.parametrize("args, E, H", [
    (["--prefix", "encoder.lstm"], 3, 5),
    (["--prefix", "encoder.lstm", "--layer", "1"], 5, 5),
])
def test_show_nn_lstm(args, E, H):
    out = assert_ok(invoke("params", "--show", TORCH_NPZ, *args)).stdout
    assert f"input size E = {E}" in out and f"hidden size H = {H}" in out
    assert len(table(out)[1]) == 12


def test_show_keras_npz():
    out = assert_ok(invoke("params", "--show", KERAS_NPZ)).stdout
    assert "input size E = 3" in out and "hidden size H = 5" in out


@pytest.mark.parametrize("layer, E, H", [(0, 3, 5), (1, 5, 4)])
def test_show_keras_weights_h5(layer, E, H):
    pytest.importorskip("h5py")
    out = assert_ok(invoke("params", "--show", KERAS_H5, "--layer", layer)).stdout
    assert f"input size E = {E}" in out and f"hidden size H = {H}" in out


def test_show_then_save(tmp_path):
    assert_ok(invoke("params", "--show", TORCH_NPZ, "--prefix", "encoder.lstm", "--layer", "1",
                     "-o", tmp_path / "layer1.npz"))
    with np.load(TORCH_NPZ) as f:
        np.testing.assert_array_equal(Parameters.load(tmp_path / "layer1.npz").input.W,
                                      f["encoder.lstm.weight_ih_l1"][0:5])


# -- errors: no file written, none clobbered -------------------------------------------------

@pytest.mark.parametrize("name", ["cell.txt", "cell.npy", "cell", "cell.npz.bak"])
def test_output_must_end_in_npz(tmp_path, name):
    fails_writing_nothing(tmp_path, *MAKE, "-o", tmp_path / name,
                          fragments=["'-o' / '--output'", "must end in .npz"])


def test_output_into_a_missing_folder(tmp_path):
    target = tmp_path / "nope" / "cell.npz"
    fails_writing_nothing(tmp_path, *MAKE, "-o", target, fragments=["'-o' / '--output'", "does not exist"])
    assert not target.parent.exists()


def test_show_a_missing_file(tmp_path):
    fails_writing_nothing(tmp_path, "--show", tmp_path / "nope.npz", "-o", tmp_path / "out.npz",
                          fragments=["'--show'", "does not exist"])


@pytest.fixture
def bad_file(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    path = folder / "w.npz"
    path.write_text("weight_ih,weight_hh\n1,2\n")
    return path


def test_show_a_bad_file(tmp_path, bad_file):
    fails_writing_nothing(tmp_path, "--show", bad_file, "-o", tmp_path / "out.npz",
                          fragments=["is not an .npz file"])


def test_show_a_bad_file_names_show(tmp_path, bad_file):
    fails_writing_nothing(tmp_path, "--show", bad_file, fragments=["'--show'"])


@pytest.mark.parametrize("args", [
    ["--show", "BAD"],
    ["--weights", "random:3", "--set", "forget.b=x"],
    ["--weights", "bogus"],
    ["--show", str(TORCH_NPZ), "--layer", "7"],
    ["--input-size", "0"],
])
def test_a_failing_params_never_clobbers_the_output(tmp_path, bad_file, args):
    out = tmp_path / "out.npz"
    out.write_bytes(b"precious")
    assert_error(invoke("params", *[bad_file if a == "BAD" else a for a in args], "-o", out))
    assert out.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out.npz"]


def test_not_npz_never_clobbers_an_existing_file(tmp_path):
    out = tmp_path / "cell.txt"
    out.write_text("precious")
    assert_error(invoke("params", *MAKE, "-o", out), "must end in .npz")
    assert out.read_text() == "precious"


def test_show_and_weights_together_is_refused(tmp_path):
    fails_writing_nothing(tmp_path, "--show", TORCH_NPZ, "--weights", "zeros", fragments=["not both"])


# -- one option, one meaning: --weights-layout reads, --csv-layout writes; --layout is deprecated --------

def test_weights_layout_is_refused_for_a_file_that_says_its_own(tmp_path):
    Parameters.identity(2, 2).save(tmp_path / "w.npz")
    (tmp_path / "w.weights.h5").write_bytes(b"")
    assert_error(invoke("step", "--x", "1,2", "--weights", tmp_path / "w.weights.h5", "--weights-layout", "torch"),
                 "'--weights-layout'", "is for .npz files")
    assert_ok(invoke("step", "--x", "1,2", "--weights", tmp_path / "w.npz", "--weights-layout", "torch"))


@pytest.mark.parametrize("name", ["show", "params", "diff", "draw", "plot"])
def test_csv_layout_is_listed_only_where_a_trace_csv_is_written(name):
    assert "--csv-layout" not in invoke(name, "--help").stdout
    assert "--layout" not in invoke(name, "--help").stdout


@pytest.mark.parametrize("old, new", [(["--layout", "wide"], ["--csv-layout", "wide"]),
                                      (["--layout", "torch"], ["--weights-layout", "torch"]),
                                      (["--layout", "torch", "--layout", "wide"],
                                       ["--weights-layout", "torch", "--csv-layout", "wide"])])
def test_the_old_layout_option_still_works_with_one_warning(tmp_path, old, new):
    Parameters.random(2, 2).save(tmp_path / "w.npz")
    args = ["step", "--x", "1,2", "--weights", tmp_path / "w.npz", "--format", "csv"]
    before, after = invoke(*args, *old), assert_ok(invoke(*args, *new))
    assert before.exit_code == 0 and before.stdout == after.stdout
    assert before.stderr.splitlines() == ["Warning: --layout is deprecated and goes in 0.9: use --weights-layout "
                                          "torch|keras to read an .npz, --csv-layout long|wide to write a CSV."]


@pytest.mark.parametrize("args, says", [
    (["step", "--layout", "long", "--layout", "wide"], "long and wide cannot both hold"),
    (["step", "--layout", "wide", "--csv-layout", "long"], "long and wide cannot both hold"),
    (["params", "--layout", "wide"], "wide is a CSV layout, and this command writes no trace CSV"),
])
def test_the_old_layout_option_refuses_what_it_did(args, says):
    result = invoke(*args)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.splitlines()[-1].startswith("Error: ") and says in result.stderr
