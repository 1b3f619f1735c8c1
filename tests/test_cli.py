"""Every option of `lstmtrace step` and `lstmtrace show` works.

Expected numbers come from the plain-numpy LSTM step below (``lstm``), never
from lstmtrace's own output.
"""
import io
import pathlib
import json

import numpy as np
import pandas as pd
import pytest

from conftest import assert_ok, invoke
from lstmtrace import Parameters

GATES = ("forget", "input", "candidate", "output")
WORKED_X = [-0.1, 0.3, 0.1, -0.25, 0.1]
WORKED_H = [0.0, 0.5, 0.1, 0.2, 0.6]
WORKED_FORGET = [0.47502081, 0.68997448, 0.549834, 0.4875026, 0.66818777]
SIGMA_10 = 0.9999546  # 1 / (1 + e^-10)

# pandas before 3.0 parses CSV floats exactly only when asked to (3.0 warns if asked)
_EXACT = {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {}


# -- independent helpers ---------------------------------------------------------------

def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=float)))


def lstm(x, h, c, gates):
    """One LSTM step in plain numpy; ``gates[g] = (W, U, b)``. Returns {(gate, quantity): vector}."""
    x, h, c = (np.asarray(v, dtype=float) for v in (x, h, c))
    v = {}
    for g in GATES:
        W, U, b = (np.asarray(a, dtype=float) for a in gates[g])
        pre = W @ x + U @ h + b
        v[g, "Wx"], v[g, "Uh"], v[g, "bias"], v[g, "preact"] = W @ x, U @ h, b, pre
        v[g, "act"] = np.tanh(pre) if g == "candidate" else sigmoid(pre)
    v["cell", "forget*c_prev"] = v["forget", "act"] * c
    v["cell", "c"] = v["cell", "forget*c_prev"] + v["input", "act"] * v["candidate", "act"]
    v["hidden", "h"] = v["output", "act"] * np.tanh(v["cell", "c"])
    return v


def same_gates(W, U, b):
    return {g: (W, U, b) for g in GATES}


def frame(text):
    return pd.read_csv(io.StringIO(text), **_EXACT)


def col(df, gate, quantity):
    rows = df[(df["gate"] == gate) & (df["quantity"] == quantity)].sort_values("unit")
    return rows["value"].to_numpy()


def csv_of(*args):
    """Run ``lstmtrace step ARGS --format csv`` and parse its stdout."""
    return frame(assert_ok(invoke("step", *args, "--format", "csv")).stdout)


# -- the worked example ------------------------------------------------------------------

def test_no_arguments_traces_the_worked_example_forget_gate():
    df = csv_of()
    np.testing.assert_allclose(col(df, "forget", "act"), WORKED_FORGET, atol=1e-8, rtol=0)
    np.testing.assert_allclose(col(df, "given", "x"), WORKED_X, atol=0)
    np.testing.assert_allclose(col(df, "given", "h_prev"), WORKED_H, atol=0)
    np.testing.assert_array_equal(col(df, "given", "c_prev"), np.zeros(5))


def test_no_arguments_matches_numpy_identity_step():
    df = csv_of()
    v = lstm(WORKED_X, WORKED_H, np.zeros(5), same_gates(np.eye(5), np.eye(5), np.zeros(5)))
    for key, expected in v.items():
        np.testing.assert_allclose(col(df, *key), expected, atol=1e-12, rtol=0, err_msg=str(key))


def test_no_arguments_text_explains_the_worked_example():
    out = assert_ok(invoke("step")).stdout
    assert "worked example" in out
    assert "0.475021" in out


# -- vectors -------------------------------------------------------------------------------

@pytest.mark.parametrize("args", [["--x", "-0.1,0.3"], ["--x=-0.1,0.3"]])
def test_x_accepts_a_negative_first_value(args):
    df = csv_of(*args)
    np.testing.assert_array_equal(col(df, "given", "x"), [-0.1, 0.3])
    np.testing.assert_allclose(col(df, "forget", "act"), sigmoid([-0.1, 0.3]), atol=1e-12)


def test_h_and_c_are_used():
    df = csv_of("--x", "0.2,-0.4", "--h", "0.5,0.1", "--c", "1,-2")
    v = lstm([0.2, -0.4], [0.5, 0.1], [1, -2], same_gates(np.eye(2), np.eye(2), np.zeros(2)))
    np.testing.assert_array_equal(col(df, "given", "c_prev"), [1.0, -2.0])
    np.testing.assert_allclose(col(df, "cell", "c"), v["cell", "c"], atol=1e-12)
    np.testing.assert_allclose(col(df, "hidden", "h"), v["hidden", "h"], atol=1e-12)


def test_hidden_size_sets_h_when_h_and_c_absent():
    df = csv_of("--x", "1,2", "--hidden-size", "3")
    np.testing.assert_array_equal(col(df, "given", "h_prev"), np.zeros(3))
    np.testing.assert_allclose(col(df, "forget", "preact"), np.eye(3, 2) @ [1, 2], atol=0)


def test_hidden_size_defaults_to_input_size():
    df = csv_of("--x", "1,2,3,4")
    assert len(col(df, "given", "h_prev")) == 4
    assert len(col(df, "hidden", "h")) == 4


def test_hidden_size_may_agree_with_h():
    df = csv_of("--x", "1", "--h", "0,0", "--hidden-size", "2")
    assert len(col(df, "hidden", "h")) == 2


# -- weights -------------------------------------------------------------------------------

X3, H2 = [0.3, -0.2, 0.5], [0.1, -0.4]


@pytest.mark.parametrize("word, make", [
    ("identity", lambda shape: np.eye(*shape)),
    ("zeros", np.zeros),
    ("ones", np.ones),
])
def test_weights_words(word, make):
    df = csv_of("--x", "0.3,-0.2,0.5", "--h", "0.1,-0.4", "--weights", word)
    v = lstm(X3, H2, np.zeros(2), same_gates(make((2, 3)), make((2, 2)), np.zeros(2)))
    for g in GATES:
        np.testing.assert_allclose(col(df, g, "act"), v[g, "act"], atol=1e-12, err_msg=g)
    np.testing.assert_allclose(col(df, "hidden", "h"), v["hidden", "h"], atol=1e-12)


def _random_gates(seed, E, H):
    rng, bound = np.random.default_rng(seed), 1 / np.sqrt(H)
    gates = {}
    for g in GATES:  # forget, input, candidate, output; W before U (the documented draw order)
        W = rng.uniform(-bound, bound, (H, E))
        gates[g] = (W, rng.uniform(-bound, bound, (H, H)), np.zeros(H))
    return gates


@pytest.mark.parametrize("spec, seed", [("random", 0), ("random:7", 7)])
def test_weights_random_and_random_seed(spec, seed):
    df = csv_of("--x", "0.3,-0.2,0.5", "--h", "0.1,-0.4", "--weights", spec)
    v = lstm(X3, H2, np.zeros(2), _random_gates(seed, 3, 2))
    for g in GATES:
        np.testing.assert_allclose(col(df, g, "Wx"), v[g, "Wx"], atol=1e-12, err_msg=g)
        np.testing.assert_allclose(col(df, g, "act"), v[g, "act"], atol=1e-12, err_msg=g)


def test_weights_random_is_reproducible_and_seed_matters():
    a = csv_of("--x", "1,2", "--weights", "random:3")
    b = csv_of("--x", "1,2", "--weights", "random:3")
    c = csv_of("--x", "1,2", "--weights", "random:4")
    assert a.equals(b)
    assert not np.array_equal(col(a, "forget", "Wx"), col(c, "forget", "Wx"))


def test_weights_file_written_by_parameters_save(tmp_path):
    rng = np.random.default_rng(5)
    gates = {g: (rng.uniform(-1, 1, (2, 3)), rng.uniform(-1, 1, (2, 2)), rng.uniform(-1, 1, 2))
             for g in GATES}
    p = Parameters.zeros(3, 2)
    for g, (W, U, b) in gates.items():
        p.set(g, "W", W).set(g, "U", U).set(g, "b", b)
    path = tmp_path / "w.npz"
    p.save(path)
    df = csv_of("--x", "0.3,-0.2,0.5", "--h", "0.1,-0.4", "--c", "0.5,1", "--weights", path)
    v = lstm(X3, H2, [0.5, 1], gates)
    for key in [(g, q) for g in GATES for q in ("Wx", "Uh", "bias", "act")]:
        np.testing.assert_allclose(col(df, *key), v[key], atol=1e-12, err_msg=str(key))
    np.testing.assert_allclose(col(df, "hidden", "h"), v["hidden", "h"], atol=1e-12)


def test_weights_file_gives_hidden_size(tmp_path):
    Parameters.identity(2, 4).save(tmp_path / "w.npz")
    df = csv_of("--x", "1,2", "--weights", tmp_path / "w.npz")
    assert len(col(df, "hidden", "h")) == 4


def test_bias_sets_every_gate_bias():
    df = csv_of("--x", "0.5,-1", "--bias", "-0.75")
    v = lstm([0.5, -1], [0, 0], [0, 0], same_gates(np.eye(2), np.eye(2), np.full(2, -0.75)))
    for g in GATES:
        np.testing.assert_array_equal(col(df, g, "bias"), [-0.75, -0.75])
        np.testing.assert_allclose(col(df, g, "act"), v[g, "act"], atol=1e-12, err_msg=g)


# -- --set -------------------------------------------------------------------------------

def _forget_after(spec, param):
    """The trace after ``--set forget.PARAM=SPEC`` on zeros weights, x = 1,2 and h = 3,4."""
    return csv_of("--x", "1,2", "--h", "3,4", "--weights", "zeros", "--set", f"forget.{param}={spec}")


@pytest.mark.parametrize("param, vec", [("W", [1, 2]), ("U", [3, 4])])
@pytest.mark.parametrize("spec, M", [
    ("identity", np.eye(2)),
    ("zeros", np.zeros((2, 2))),
    ("ones", np.ones((2, 2))),
    ("random:3", np.random.default_rng(3).uniform(-1 / np.sqrt(2), 1 / np.sqrt(2), (2, 2))),
    ("2.5", np.full((2, 2), 2.5)),
    ("-1", np.full((2, 2), -1.0)),
    ("1,0;0,1", np.eye(2)),
    ("1,2;-3,0.5", np.array([[1, 2], [-3, 0.5]])),
])
def test_set_W_and_U_with_every_spec_kind(param, vec, spec, M):
    df = _forget_after(spec, param)
    q = "Wx" if param == "W" else "Uh"
    np.testing.assert_allclose(col(df, "forget", q), M @ vec, atol=1e-12)
    np.testing.assert_allclose(col(df, "forget", "act"), sigmoid(M @ vec), atol=1e-12)
    np.testing.assert_array_equal(col(df, "input", q), [0, 0])  # other gates untouched


def test_set_W_with_a_matrix_literal_when_E_differs_from_H():
    df = csv_of("--x", "1,2,3", "--hidden-size", "2", "--weights", "zeros",
                "--set", "forget.W=1,0,-1;0.5,0.5,0.5")
    np.testing.assert_allclose(col(df, "forget", "Wx"), [-2, 3], atol=1e-12)


@pytest.mark.parametrize("spec, b", [("0.25", [0.25, 0.25]), ("-3", [-3, -3]), ("1,-2", [1, -2])])
def test_set_b_with_a_number_or_a_comma_list(spec, b):
    df = _forget_after(spec, "b")
    np.testing.assert_array_equal(col(df, "forget", "bias"), b)
    np.testing.assert_allclose(col(df, "forget", "act"), sigmoid(b), atol=1e-12)


def test_set_every_gate():
    for g in GATES:
        df = csv_of("--x", "1,2", "--weights", "zeros", "--set", f"{g}.b=1,-1")
        np.testing.assert_array_equal(col(df, g, "bias"), [1, -1])
        others = [o for o in GATES if o != g]
        assert all(np.array_equal(col(df, o, "bias"), [0, 0]) for o in others)


def test_repeated_set_applies_in_order():
    df = csv_of("--x", "1,2", "--set", "forget.b=1", "--set", "forget.b=2,3",
                "--set", "forget.W=zeros", "--set", "forget.W=1,0;0,2")
    np.testing.assert_array_equal(col(df, "forget", "bias"), [2, 3])
    np.testing.assert_array_equal(col(df, "forget", "Wx"), [1, 4])


def test_set_applies_after_bias():
    df = csv_of("--x", "1,2", "--bias", "5", "--set", "input.b=-1")
    np.testing.assert_array_equal(col(df, "input", "bias"), [-1, -1])
    np.testing.assert_array_equal(col(df, "forget", "bias"), [5, 5])


def test_set_applies_after_a_weights_file(tmp_path):
    Parameters.ones(2, 2).save(tmp_path / "w.npz")
    df = csv_of("--x", "1,2", "--weights", tmp_path / "w.npz", "--set", "output.U=zeros",
                "--h", "1,1")
    np.testing.assert_array_equal(col(df, "output", "Uh"), [0, 0])
    np.testing.assert_array_equal(col(df, "forget", "Uh"), [2, 2])


# -- the teacher's notebook ----------------------------------------------------------------

NOTEBOOK = ("--x", "10,0,0", "--h", "0,0,10", "--c", "1,1,1", "--weights", "zeros")


@pytest.mark.parametrize("sets, expected", [
    ((), [0.5, 0.5, 0.5]),
    (("--set", "forget.W=identity", "--set", "forget.U=identity"), [SIGMA_10, 0.5, SIGMA_10]),
    (("--set", "forget.W=identity", "--set", "forget.U=zeros"), [SIGMA_10, 0.5, 0.5]),
])
def test_notebook_experiments_forget_times_c_prev(sets, expected):
    df = csv_of(*NOTEBOOK, *sets)
    np.testing.assert_allclose(col(df, "cell", "forget*c_prev"), expected, atol=1e-7, rtol=0)


def test_notebook_constant_is_sigmoid_of_10():
    np.testing.assert_allclose(sigmoid(10.0), SIGMA_10, atol=1e-7, rtol=0)


# -- formats and outputs -------------------------------------------------------------------

def test_format_text_is_the_default():
    assert invoke("step").stdout == assert_ok(invoke("step", "--format", "text")).stdout


def test_format_csv_has_the_trace_columns():
    out = assert_ok(invoke("step", "--format", "csv")).stdout
    assert out.splitlines()[0] == "step,gate,quantity,unit,value"


def test_format_markdown_has_headings_and_tables():
    out = assert_ok(invoke("step", "--format", "markdown")).stdout
    assert "## LSTM step t = 1" in out
    assert "|--------|" in out


def test_format_json_equals_csv_at_full_precision():
    rows = json.loads(assert_ok(invoke("step", "--x", "0.1,0.7", "--weights", "random:2",
                                       "--format", "json")).stdout)
    df = csv_of("--x", "0.1,0.7", "--weights", "random:2")
    assert [r["value"] for r in rows] == df["value"].tolist()  # exact, not approximately
    assert [(r["step"], r["gate"], r["quantity"], r["unit"]) for r in rows] == \
        list(zip(df["step"], df["gate"], df["quantity"], df["unit"]))


def test_json_forget_gate_of_worked_example():
    rows = json.loads(assert_ok(invoke("step", "--format", "json")).stdout)
    f = [r["value"] for r in rows if (r["gate"], r["quantity"]) == ("forget", "act")]
    np.testing.assert_allclose(f, WORKED_FORGET, atol=1e-8, rtol=0)


@pytest.mark.parametrize("suffix, check", [
    (".csv", lambda s: s.startswith("step,gate,quantity,unit,value\n")),
    (".txt", lambda s: "Forget gate\n-----------" in s),
    (".md", lambda s: "### Forget gate" in s),
    (".json", lambda s: json.loads(s)[0]["quantity"] == "x"),
])
def test_output_format_from_suffix(tmp_path, suffix, check):
    path = tmp_path / f"out{suffix}"
    result = assert_ok(invoke("step", "-o", path))
    assert result.stdout == ""
    assert check(path.read_text(encoding="utf-8"))


def test_output_suffix_is_case_insensitive(tmp_path):
    path = tmp_path / "OUT.CSV"
    assert assert_ok(invoke("step", "-o", path)).stdout == ""
    assert path.read_text().startswith("step,gate")


def test_format_overrides_the_suffix(tmp_path):
    path = tmp_path / "out.txt"
    assert assert_ok(invoke("step", "-o", path, "--format", "csv")).stdout == ""
    assert path.read_text().startswith("step,gate")


def test_output_dash_is_stdout():
    result = assert_ok(invoke("step", "-o", "-", "--format", "csv"))
    assert result.stdout == assert_ok(invoke("step", "--format", "csv")).stdout


def test_output_file_equals_stdout(tmp_path):
    for fmt in ("text", "csv", "markdown", "json"):
        path = tmp_path / f"out.{fmt}"
        assert_ok(invoke("step", "-o", path, "--format", fmt))
        assert path.read_text(encoding="utf-8") == invoke("step", "--format", fmt).stdout, fmt


def test_output_csv_round_trips_exactly(tmp_path):
    path = tmp_path / "t.csv"
    assert_ok(invoke("step", "--x", "0.1,0.7", "--weights", "random:9", "-o", path))
    saved = pd.read_csv(path, **_EXACT)
    assert saved["value"].tolist() == csv_of("--x", "0.1,0.7", "--weights", "random:9")["value"].tolist()


def test_output_overwrites_an_existing_file_on_success(tmp_path):
    path = tmp_path / "out.csv"
    path.write_text("old")
    assert_ok(invoke("step", "-o", path))
    assert path.read_text().startswith("step,gate")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


@pytest.mark.parametrize("precision, shown, hidden", [
    (3, "0.475", "0.475021"),
    (6, "0.475021", "0.4750208"),
    (10, "0.4750208125", None),
])
def test_precision_sets_digits_in_text(precision, shown, hidden):
    out = assert_ok(invoke("step", "--precision", precision)).stdout
    assert shown in out
    if hidden:
        assert hidden not in out


def test_precision_in_markdown():
    out = assert_ok(invoke("step", "--format", "markdown", "--precision", 2)).stdout
    assert "0.48" in out and "0.475" not in out


def test_precision_does_not_round_csv():
    a = csv_of("--precision", "2")
    b = csv_of()
    assert a["value"].tolist() == b["value"].tolist()


def test_expand_writes_one_unit_term_by_term():
    out = assert_ok(invoke("step", "--expand", 2)).stdout
    assert "Unit 2, term by term" in out
    assert "W_f[2,:]·x = 0*(-0.1) + 0*0.3 + 1*0.1 + 0*(-0.25) + 0*0.1 = 0.1" in out
    assert "U_f[2,:]·h_prev = " in out


def test_expand_in_markdown():
    out = assert_ok(invoke("step", "--expand", 0, "--format", "markdown")).stdout
    assert "W_o[0,:]·x = " in out


def test_without_expand_no_term_by_term():
    assert "W_f[" not in assert_ok(invoke("step")).stdout


# -- version and help ----------------------------------------------------------------------

def test_version():
    import lstmtrace

    result = assert_ok(invoke("--version"))
    assert result.stdout.strip() == f"lstmtrace, version {lstmtrace.__version__}"
    assert f"## {lstmtrace.__version__} — " in (pathlib.Path(__file__).parent.parent / "CHANGELOG.md").read_text()


@pytest.mark.parametrize("args, example", [
    (["--help"], "lstmtrace step --set forget.b=3"),
    (["-h"], "lstmtrace step --set forget.b=3"),
    (["step", "--help"], "lstmtrace step --x -0.1,0.3 --h 0.5,0.2 -o step.csv"),
    (["show", "--help"], "lstmtrace show step.csv --expand 1"),
])
def test_help_contains_an_example(args, example):
    result = assert_ok(invoke(*args))
    assert example in result.stdout
    assert result.stderr == ""


# -- show ------------------------------------------------------------------------------------

@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "trace.csv"
    assert_ok(invoke("step", "--x", "1,2", "--h", "0.5,0", "-o", path))
    return path


def test_show_explains_a_saved_trace(saved):
    out = assert_ok(invoke("show", saved)).stdout
    v = lstm([1, 2], [0.5, 0], [0, 0], same_gates(np.eye(2), np.eye(2), np.zeros(2)))
    assert "LSTM step t = 1 · input size E = 2 · hidden size H = 2" in out
    assert f"{v['hidden', 'h'][1]:.6g}" in out
    assert f"{v['forget', 'act'][0]:.6g}" in out


def test_show_of_worked_example_matches_step_text_body(tmp_path):
    path = tmp_path / "t.csv"
    assert_ok(invoke("step", "-o", path))
    shown = assert_ok(invoke("show", path, "--brief")).stdout
    stepped = assert_ok(invoke("step", "--brief")).stdout
    assert stepped.endswith(shown)  # the same tables, without the title (the notes know less without W and U)


def test_show_format_markdown(saved):
    out = assert_ok(invoke("show", saved, "--format", "markdown")).stdout
    assert "### Forget gate" in out


def test_show_precision(saved):
    out = assert_ok(invoke("show", saved, "--precision", 3)).stdout
    assert f"{sigmoid(2.0):.3g}" in out and f"{sigmoid(2.0):.6g}" not in out


def test_show_expand_without_weights(saved):
    out = assert_ok(invoke("show", saved, "--expand", 1)).stdout
    assert "Unit 1, term by term" in out
    assert f"f = σ(preact) = 1 / (1 + e^(-2)) = {sigmoid(2.0):.6g}" in out
    assert "W_f[" not in out
    assert "does not hold W and U" in out


@pytest.mark.parametrize("name, marker", [("out.txt", "Forget gate\n---"), ("out.md", "### Forget gate")])
def test_show_output_file(saved, tmp_path, name, marker):
    path = tmp_path / name
    result = assert_ok(invoke("show", saved, "-o", path))
    assert result.stdout == ""
    assert marker in path.read_text(encoding="utf-8")


def test_show_output_dash(saved):
    assert assert_ok(invoke("show", saved, "-o", "-")).stdout == invoke("show", saved).stdout


def test_plain_lstmtrace_prints_help_not_an_error():
    result = assert_ok(invoke())
    assert "lstmtrace step" in result.stdout and result.stderr == ""
