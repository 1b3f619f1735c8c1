"""Every bad input: exit 2, nothing on stdout, one "Error: " line naming the option, no file written.

A failing run never clobbers an existing output file and leaves no temporary file behind.
"""
import pickle

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from conftest import assert_error, assert_ok, invoke
from lstmtrace import Parameters
from lstmtrace.cli import cli


def fails_writing_nothing(tmp_path, *args, fragments=()):
    """Run with ``-o OUT`` added; it must fail with assert_error and leave the folder as it was."""
    before = sorted(p.name for p in tmp_path.iterdir())
    line = assert_error(invoke(*args, "-o", tmp_path / "out.txt"), *fragments)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    return line


# -- vectors -------------------------------------------------------------------------------

@pytest.mark.parametrize("args, option", [
    (["--x", "1,2", "--h", "1,2,3", "--c", "1,2"], "'--c'"),
    (["--x", "1,2", "--hidden-size", "3", "--h", "1,2"], "'--hidden-size'"),
    (["--x", "1,2", "--c", "1,2", "--hidden-size", "4"], "'--hidden-size'"),
])
def test_mismatched_hidden_sizes(tmp_path, args, option):
    fails_writing_nothing(tmp_path, "step", *args, fragments=[option])


@pytest.mark.parametrize("option", ["--x", "--h", "--c"])
@pytest.mark.parametrize("value, says", [
    ("1,abc", "'abc' is not a number"),
    ("", "no numbers given"),
    ("1,,2", "item 2 of 3 is empty"),
    ("1,", "item 2 of 2 is empty"),
    ("nan", "not finite"),
    ("1,inf", "not finite"),
    ("-inf,1", "not finite"),
    ("1,NaN", "not finite"),
])
def test_bad_vector(tmp_path, option, value, says):
    others = {"--x": ["--h", "1,2"], "--h": ["--x", "1,2"], "--c": ["--x", "1,2"]}[option]
    fails_writing_nothing(tmp_path, "step", *others, option, value, fragments=[f"'{option}'", says])


@pytest.mark.parametrize("value, says", [
    ("nan", "not finite"), ("inf", "not finite"), ("-inf", "not finite"),
    ("abc", "not a number"), ("1,2", "not a number"), ("", "not a number"),
])
def test_bad_bias(tmp_path, value, says):
    fails_writing_nothing(tmp_path, "step", "--x", "1", "--bias", value, fragments=["'--bias'", says])


@pytest.mark.parametrize("option", ["--h", "--c", "--hidden-size"])
def test_h_c_or_hidden_size_without_x(tmp_path, option):
    value = "2" if option == "--hidden-size" else "1,2"
    fails_writing_nothing(tmp_path, "step", option, value, fragments=[option, "without --x"])


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_bad_hidden_size(tmp_path, value):
    fails_writing_nothing(tmp_path, "step", "--x", "1", "--hidden-size", value,
                          fragments=["'--hidden-size'"])


# -- --set -----------------------------------------------------------------------------------

@pytest.mark.parametrize("item, says", [
    ("forget.b=nan", "not finite"),
    ("forget.b=1,inf", "not finite"),
    ("forget.W=1,nan;0,1", "not finite"),
    ("forget.U=0,1;-inf,0", "not finite"),
    ("forget.W=nan", "not finite"),
    ("forget.U=inf", "not finite"),
])
def test_set_non_finite(tmp_path, item, says):
    fails_writing_nothing(tmp_path, "step", "--x", "1,2", "--set", item, fragments=["'--set'", says])


@pytest.mark.parametrize("item, says", [
    ("bogus.W=zeros", "unknown gate 'bogus'"),
    ("Forget.W=zeros", "unknown gate 'Forget'"),
    ("forget.Q=zeros", "unknown parameter 'Q'"),
    ("forget.w=zeros", "unknown parameter 'w'"),
    ("forget.W=blah", "'blah' is not identity|zeros|ones|random[:SEED]"),
    ("forget.U=random:x", "the seed in 'random:x'"),
    ("forget.b=zeros", "'zeros' is not a number"),
    ("forget.b=1,two", "'two' is not a number"),
])
def test_set_unknown_gate_param_or_spec(tmp_path, item, says):
    fails_writing_nothing(tmp_path, "step", "--x", "1,2", "--set", item, fragments=["'--set'", says])


@pytest.mark.parametrize("item", ["forget.W", "forgetW=zeros", "=zeros", "forget.b=", "forget.b= "])
def test_set_not_gate_param_equals_spec(tmp_path, item):
    fails_writing_nothing(tmp_path, "step", "--x", "1,2", "--set", item,
                          fragments=["'--set'", "is not GATE.PARAM=SPEC"])


@pytest.mark.parametrize("item, says", [
    ("forget.W=1,0,0;0,1,0", "forget.W has shape (2, 3); expected H×E = (2, 2)"),
    ("forget.W=1,0", "forget.W has shape (1, 2); expected H×E = (2, 2)"),
    ("forget.U=1;0", "forget.U has shape (2, 1); expected H×H = (2, 2)"),
    ("forget.b=1,2,3", "forget.b has shape (3,); expected H = (2,)"),
])
def test_set_matrix_of_the_wrong_shape(tmp_path, item, says):
    fails_writing_nothing(tmp_path, "step", "--x", "1,2", "--set", item, fragments=["'--set'", says])


@pytest.mark.parametrize("item", ["forget.W=1,0;0", "forget.U=1;0,1"])
def test_set_ragged_matrix(tmp_path, item):
    fails_writing_nothing(tmp_path, "step", "--x", "1,2", "--set", item,
                          fragments=["'--set'", "rows have different lengths"])


def test_a_later_bad_set_fails_the_whole_run(tmp_path):
    fails_writing_nothing(tmp_path, "step", "--x", "1,2", "--set", "forget.b=1",
                          "--set", "input.b=x", fragments=["'--set'", "input.b=x"])


# -- --weights -------------------------------------------------------------------------------

@pytest.mark.parametrize("spec, says", [
    ("blah", "'blah' is neither identity|zeros|ones|random[:SEED] nor a file that exists"),
    ("Identity", "'Identity' is neither"),
    ("random:abc", "the seed in 'random:abc' must be a whole number"),
    ("random:-1", "the seed in 'random:-1'"),
    ("random:", "the seed in 'random:'"),
    ("", "'' is neither"),
])
def test_weights_unknown_word(tmp_path, spec, says):
    fails_writing_nothing(tmp_path, "step", "--x", "1", "--weights", spec,
                          fragments=["'--weights'", says])


def test_weights_missing_file(tmp_path):
    fails_writing_nothing(tmp_path, "step", "--x", "1", "--weights", tmp_path / "nope.npz",
                          fragments=["'--weights'", "nor a file that exists"])


@pytest.fixture
def weights_dir(tmp_path):
    """A folder for weights files, apart from tmp_path where the output would go."""
    folder = tmp_path / "weights"
    folder.mkdir()
    return folder


def _state(**replace):
    state = Parameters.random(3, 2, seed=1).state_dict()
    state.update(replace)
    return {k: v for k, v in state.items() if v is not None}


def _npz(folder, name, **replace):
    path = folder / name
    np.savez(path, **_state(**replace))
    return path


def _weights_fails(tmp_path, path, *says, x="1,2,3"):
    return fails_writing_nothing(tmp_path, "step", "--x", x, "--weights", path,
                                 fragments=["'--weights'", *says])


def test_weights_text_file_is_not_npz(tmp_path, weights_dir):
    path = weights_dir / "w.npz"
    path.write_text("weight_ih,weight_hh\n1,2\n")
    _weights_fails(tmp_path, path, "is not an .npz file")


def test_weights_pickle_is_refused(tmp_path, weights_dir):
    path = weights_dir / "w.pkl"
    with open(path, "wb") as f:
        pickle.dump(_state(), f)
    _weights_fails(tmp_path, path, "is a Python pickle", "never loads pickles")


def test_weights_npy_is_not_npz(tmp_path, weights_dir):
    path = weights_dir / "w.npy"
    np.save(path, np.zeros((8, 3)))
    _weights_fails(tmp_path, path, "is not an .npz file")


def test_weights_empty_file(tmp_path, weights_dir):
    path = weights_dir / "w.npz"
    path.write_bytes(b"")
    _weights_fails(tmp_path, path, "is empty, not an .npz file")


@pytest.mark.parametrize("key", ["weight_ih", "weight_hh", "bias_ih", "bias_hh"])
def test_weights_npz_missing_key(tmp_path, weights_dir, key):
    _weights_fails(tmp_path, _npz(weights_dir, "w.npz", **{key: None}), f"no key {key!r}")


@pytest.mark.parametrize("key, array, says", [
    ("weight_ih", np.zeros((6, 3)), "key 'weight_ih' has shape (6, 3); expected (4H×E) = (8, 3)"),
    ("weight_ih", np.zeros(8), "key 'weight_ih' has shape (8,); expected (4H×E)"),
    ("bias_ih", np.zeros(5), "key 'bias_ih' has shape (5,); expected (4H) = (8,)"),
    ("bias_hh", np.zeros((8, 1)), "key 'bias_hh' has shape (8, 1); expected (4H) = (8,)"),
    ("weight_hh", np.zeros((8, 3)), "key 'weight_hh' has shape (8, 3); expected (4H×H)"),
])
def test_weights_npz_wrong_shape(tmp_path, weights_dir, key, array, says):
    _weights_fails(tmp_path, _npz(weights_dir, "w.npz", **{key: array}), says)


def test_weights_npz_with_nan(tmp_path, weights_dir):
    w = Parameters.random(3, 2, seed=1).state_dict()["weight_hh"]
    w[5, 1] = np.nan
    _weights_fails(tmp_path, _npz(weights_dir, "w.npz", weight_hh=w), "nan", "finite")


def test_weights_npz_with_nan_names_a_plain_position(tmp_path, weights_dir):
    w = Parameters.random(3, 2, seed=1).state_dict()["weight_ih"]
    w[1, 1] = np.nan  # row 1 is the input gate's unit 1
    line = _weights_fails(tmp_path, _npz(weights_dir, "w.npz", weight_ih=w), "nan")
    assert "np.int64" not in line
    assert "[1, 1]" in line


def test_weights_npz_with_an_object_array(tmp_path, weights_dir):
    path = weights_dir / "w.npz"
    np.savez(path, **_state(bias_hh=np.array([object()] * 8, dtype=object)))
    _weights_fails(tmp_path, path, "key 'bias_hh' holds Python objects")


def test_weights_npz_with_strings(tmp_path, weights_dir):
    _weights_fails(tmp_path, _npz(weights_dir, "w.npz", bias_ih=np.array(["a"] * 8)),
                   "key 'bias_ih' holds")


def test_weights_file_input_size_mismatch(tmp_path, weights_dir):
    fails_writing_nothing(tmp_path, "step", "--x", "1,2", "--weights",
                          _npz(weights_dir, "w.npz"),
                          fragments=["'--x'", "gives input size 2", "input size E = 3"])


@pytest.mark.parametrize("args", [["--h", "1,2,3"], ["--c", "0,0,0"], ["--hidden-size", "3"]])
def test_weights_file_hidden_size_mismatch(tmp_path, weights_dir, args):
    fails_writing_nothing(tmp_path, "step", "--x", "1,2,3", *args, "--weights",
                          _npz(weights_dir, "w.npz"),
                          fragments=["'--weights'", "hidden size 3", "hidden size H = 2"])


# -- formats, outputs, --expand, --precision -------------------------------------------------

@pytest.mark.parametrize("command", [["step"], ["show", "TRACE"]])
@pytest.mark.parametrize("fmt", ["xml", "CSV", ""])
def test_unknown_format(tmp_path, saved_trace, command, fmt):
    args = [saved_trace if a == "TRACE" else a for a in command]
    fails_writing_nothing(tmp_path, *args, "--format", fmt, fragments=["'--format'"])


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_show_writes_only_text_or_markdown(tmp_path, saved_trace, fmt):
    fails_writing_nothing(tmp_path, "show", saved_trace, "--format", fmt,
                          fragments=["'--format'", "'text', 'markdown'"])


@pytest.mark.parametrize("command, name", [
    (["step"], "out.xyz"), (["step"], "out"), (["show", "TRACE"], "out.csv"),
    (["show", "TRACE"], "out.json"),
])
def test_unknown_output_suffix_without_format(tmp_path, saved_trace, command, name):
    args = [saved_trace if a == "TRACE" else a for a in command]
    before = sorted(p.name for p in tmp_path.iterdir())
    assert_error(invoke(*args, "-o", tmp_path / name), "'-o' / '--output'",
                 "cannot tell the format", "--format")
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize("command", [["step"], ["show", "TRACE"]])
def test_output_into_a_missing_folder(tmp_path, saved_trace, command):
    args = [saved_trace if a == "TRACE" else a for a in command]
    target = tmp_path / "nope" / "out.txt"
    assert_error(invoke(*args, "-o", target), "'-o' / '--output'", "does not exist")
    assert not target.parent.exists()


@pytest.mark.parametrize("command", [["step"], ["show", "TRACE"]])
def test_output_is_a_directory(tmp_path, saved_trace, command):
    args = [saved_trace if a == "TRACE" else a for a in command]
    folder = tmp_path / "out.txt"
    folder.mkdir()
    assert_error(invoke(*args, "-o", folder), "'-o' / '--output'", "is a folder")
    assert list(folder.iterdir()) == []


def test_output_is_a_directory_with_format(tmp_path):
    assert_error(invoke("step", "--format", "csv", "-o", tmp_path), "'-o' / '--output'", "is a folder")
    assert list(tmp_path.iterdir()) == []


def test_output_empty_path_with_format(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["step", "--format", "csv", "-o", ""])  # keeps the exception
    assert_error(result, "'-o' / '--output'", "is empty")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args, says", [
    (["--expand", "5"], "unit 5 is not in 0..4 (hidden size H = 5)"),
    (["--x", "1,2", "--expand", "2"], "unit 2 is not in 0..1"),
    (["--expand", "-1"], "-1 is not in the range x>=0"),
    (["--expand", "one"], "'one' is not a valid integer"),
])
def test_expand_out_of_range(tmp_path, args, says):
    fails_writing_nothing(tmp_path, "step", *args, fragments=["'--expand'", says])


def test_show_expand_out_of_range(tmp_path, saved_trace):
    fails_writing_nothing(tmp_path, "show", saved_trace, "--expand", "2",
                          fragments=["'--expand'", "unit 2 is not in 0..1"])


@pytest.mark.parametrize("value", ["0", "18", "-3", "six"])
def test_bad_precision(tmp_path, value):
    fails_writing_nothing(tmp_path, "step", "--precision", value, fragments=["'--precision'"])


@pytest.mark.parametrize("args, says", [
    (["--x", "1e308,1e308", "--weights", "ones"], "forget.Wx is inf at unit 0 of step 1"),
    (["--x", "1.5e308", "--h", "1.5e308"], "forget.preact is inf at unit 0"),
    (["--x", "1,1e308", "--h", "0,1e308"], "forget.preact is inf at unit 1"),
])
def test_overflow_names_the_quantity_and_unit(tmp_path, args, says):
    fails_writing_nothing(tmp_path, "step", *args, fragments=[says, "overflowed"])


@pytest.mark.parametrize("args, says", [
    (["step", "--bogus"], "No such option '--bogus'"),
    (["step", "--x"], "'--x' requires an argument"),
    (["step", "extra"], "unexpected extra argument (extra)"),
    (["bogus"], "No such command 'bogus'"),
    (["show"], "Missing argument 'TRACE'"),
])
def test_unknown_option_or_usage_error(args, says):
    assert_error(invoke(*args), says)


# -- a failing run never clobbers the output -------------------------------------------------

CLOBBER_CASES = {
    "bad --x": ["step", "--x", "1,abc"],
    "bad --set": ["step", "--x", "1,2", "--set", "forget.W=1,0;0"],
    "missing weights": ["step", "--x", "1", "--weights", "nope.npz"],
    "expand out of range": ["step", "--expand", "9"],
    "overflow": ["step", "--x", "1e308,1e308", "--weights", "ones"],
    "h without x": ["step", "--h", "1"],
    "bad precision": ["step", "--precision", "0"],
    "unknown option": ["step", "--bogus"],
}


@pytest.mark.parametrize("args", CLOBBER_CASES.values(), ids=CLOBBER_CASES.keys())
def test_failing_step_never_clobbers_the_output(tmp_path, args):
    out = tmp_path / "out.csv"
    out.write_text("precious")
    assert_error(invoke(*args, "-o", out))
    assert out.read_text() == "precious"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]  # no stray temp files


@pytest.mark.parametrize("name", ["out.txt", "out.md"])
def test_failing_show_never_clobbers_the_output(tmp_path, name):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    out = tmp_path / name
    out.write_text("precious")
    assert_error(invoke("show", bad, "-o", out), "'TRACE'")
    assert out.read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["bad.csv", name])


# -- show: bad trace files -------------------------------------------------------------------

@pytest.fixture
def saved_trace(tmp_path_factory):
    """A good trace (E = H = 2), in a folder of its own."""
    path = tmp_path_factory.mktemp("saved") / "trace.csv"
    assert_ok(invoke("step", "--x", "1,2", "--h", "0.5,0", "-o", path))
    return path


@pytest.fixture
def trace_frame(saved_trace):
    return pd.read_csv(saved_trace, dtype=str, keep_default_na=False)


def _show_fails(tmp_path, frame_or_bytes, *says):
    path = tmp_path / "bad.csv"
    if isinstance(frame_or_bytes, bytes):
        path.write_bytes(frame_or_bytes)
    else:
        frame_or_bytes.to_csv(path, index=False)
    return fails_writing_nothing(tmp_path, "show", path, "--format", "text",
                                 fragments=["'TRACE'", *says])


def test_show_missing_file(tmp_path):
    fails_writing_nothing(tmp_path, "show", tmp_path / "nope.csv", "--format", "text",
                          fragments=["'TRACE'", "does not exist"])


def test_show_a_directory(tmp_path):
    folder = tmp_path / "dir.csv"
    folder.mkdir()
    fails_writing_nothing(tmp_path, "show", folder, "--format", "text",
                          fragments=["'TRACE'", "is a directory"])


@pytest.mark.parametrize("content, says", [
    (b"", "is empty"),
    (b"\n\n", "is empty"),
    (b"step,gate,quantity,unit,value\n", "has a header but no rows"),
    (b"a,b,c\n1,2,3\n", "has columns a, b, c; a trace has exactly step, gate, quantity, unit, value"),
    (b"step,gate,quantity,unit\n1,given,x,0\n", "a trace has exactly"),
])
def test_show_empty_or_wrong_columns(tmp_path, content, says):
    _show_fails(tmp_path, content, says)


def test_show_wrong_column_order(tmp_path, trace_frame):
    _show_fails(tmp_path, trace_frame[["value", "step", "gate", "quantity", "unit"]], "a trace has exactly")


def test_show_extra_column(tmp_path, trace_frame):
    _show_fails(tmp_path, trace_frame.assign(note="x"), "a trace has exactly")


@pytest.mark.parametrize("column, value, says", [
    ("value", "abc", "line 7: value 'abc' is not a number"),
    ("value", "", "line 7: value '' is not a number"),
    ("value", "nan", "line 7: value 'nan' is not a number"),
    ("value", "NaN", "line 7: value 'NaN' is not a number"),
    ("value", "inf", "line 7"),
    ("step", "1.5", "line 7: step '1.5' is not a whole number"),
    ("step", "0", "line 7: step"),
    ("unit", "x", "line 7: unit 'x' is not a whole number"),
    ("unit", "-1", "line 7: unit"),
])
def test_show_bad_number(tmp_path, trace_frame, column, value, says):
    trace_frame.loc[5, column] = value
    _show_fails(tmp_path, trace_frame, says)


@pytest.mark.parametrize("column, value", [("value", "inf"), ("unit", "-1"), ("step", "0")])
def test_show_bad_number_is_quoted_as_written(tmp_path, trace_frame, column, value):
    trace_frame.loc[5, column] = value
    line = _show_fails(tmp_path, trace_frame, f"line 7: {column} ")
    assert "np." not in line


@pytest.mark.parametrize("gate, says", [
    ("=cmd()", "line 9: =cmd().Wx is not a gate and quantity of an LSTM step"),
    ("Forget", "line 9: Forget.Wx is not a gate"),
    ("hidden", "line 9: hidden.Wx is not a gate"),
])
def test_show_unknown_gate(tmp_path, trace_frame, gate, says):
    trace_frame.loc[7, "gate"] = gate
    _show_fails(tmp_path, trace_frame, says)


def test_show_unknown_quantity(tmp_path, trace_frame):
    trace_frame.loc[7, "quantity"] = "@SUM(A1)"
    _show_fails(tmp_path, trace_frame, "line 9: forget.@SUM(A1) is not a gate and quantity")


@pytest.mark.parametrize("drop, says", [
    ([10], "step 1 has 1 rows of forget.bias, expected 2"),
    (list(range(20, 48)), "step 1 has 0 rows of input.bias, expected 2"),
    ([0, 1], "given.x"),
])
def test_show_missing_rows(tmp_path, trace_frame, drop, says):
    _show_fails(tmp_path, trace_frame.drop(index=drop), says)


def test_show_duplicated_unit(tmp_path, trace_frame):
    trace_frame.loc[8, "unit"] = trace_frame.loc[9, "unit"]
    _show_fails(tmp_path, trace_frame, "unit 1 of forget.Uh is repeated or out of range")


def test_show_duplicated_row(tmp_path, trace_frame):
    _show_fails(tmp_path, pd.concat([trace_frame, trace_frame.iloc[[8]]]),
                "step 1 has 3 rows of forget.Uh, expected 2")


def test_show_unit_out_of_range(tmp_path, trace_frame):
    trace_frame.loc[3, "unit"] = "99"
    _show_fails(tmp_path, trace_frame, "line 5: unit 99 of given.h_prev is repeated or out of range")


@pytest.mark.parametrize("content", [
    b"\xff\xfe\x00\x01step,gate\x80\x81\n",
    b"step,gate,quantity,unit,value\n1,f\xe9rget,Wx,0,1.0\n",
    bytes(range(256)),
])
def test_show_binary_or_non_utf8_file(tmp_path, content):
    _show_fails(tmp_path, content, "is not a trace CSV")
