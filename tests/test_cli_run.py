"""Every option and every bad input of `lstmtrace run`.

Expected numbers come from the plain-numpy LSTM loop below (``lstm_loop``) or
from the PyTorch and Keras fixtures, never from lstmtrace's own output.
"""
import io
import json
import pathlib
import pickle

import numpy as np
import pandas as pd
import pytest

import lstmtrace
from conftest import assert_error, assert_ok, invoke
from lstmtrace import Parameters

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
TORCH_NPZ = FIXTURES / "torch_lstm_2layer.npz"
TORCH_PT = FIXTURES / "torch_lstm_2layer.pt"
KERAS_NPZ = FIXTURES / "keras_lstm_2layer.npz"
KERAS_H5 = FIXTURES / "keras_lstm_2layer.weights.h5"

GATES = ("forget", "input", "candidate", "output")
TORCH_ORDER = ("input", "forget", "candidate", "output")  # how PyTorch and Keras stack the gates
XS = "1,0;0,1;1,1"
XS_ROWS = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]
SUMMARY_HEADERS = ("step", "x", "forget mean", "input mean", "output mean", "c", "h", "saturated units")

# pandas before 3.0 parses CSV floats exactly only when asked to (3.0 warns if asked)
_EXACT = {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {}


# -- independent helpers ---------------------------------------------------------------

def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=float)))


def lstm_loop(xs, gates, h=None, c=None):
    """A plain numpy LSTM over the rows of xs; ``gates[g] = (W, U, b)``.

    Returns {(gate, quantity): T×n array} for each gate's bias/preact/act and for h, c.
    """
    H = np.asarray(gates["forget"][0]).shape[0]
    h = np.zeros(H) if h is None else np.asarray(h, dtype=float)
    c = np.zeros(H) if c is None else np.asarray(c, dtype=float)
    out = {}
    for x in np.asarray(xs, dtype=float):
        v = {}
        for g in GATES:
            W, U, b = (np.asarray(a, dtype=float) for a in gates[g])
            pre = W @ x + U @ h + b
            v[g, "bias"], v[g, "preact"] = b, pre
            v[g, "act"] = np.tanh(pre) if g == "candidate" else sigmoid(pre)
        c = v["forget", "act"] * c + v["input", "act"] * v["candidate", "act"]
        h = v["output", "act"] * np.tanh(c)
        v["cell", "c"], v["hidden", "h"] = c, h
        for key, value in v.items():
            out.setdefault(key, []).append(value)
    return {key: np.array(rows) for key, rows in out.items()}


def same_gates(W, U, b):
    return {g: (W, U, b) for g in GATES}


def stacked_gates(W_ih, W_hh, b):
    """PyTorch's stacked (4H×E, 4H×H, 4H) weights, gates i, f, g, o, split by gate."""
    H = W_hh.shape[1]
    return {g: (W_ih[k * H:(k + 1) * H], W_hh[k * H:(k + 1) * H], b[k * H:(k + 1) * H])
            for k, g in enumerate(TORCH_ORDER)}


def vector(values):
    return ",".join(repr(float(v)) for v in values)


def rows(xs):
    return ";".join(vector(x) for x in xs)


def frame(text):
    return pd.read_csv(io.StringIO(text), **_EXACT)


def block(df, gate, quantity):
    """One quantity as a steps × units array."""
    sel = df[(df["gate"] == gate) & (df["quantity"] == quantity)].sort_values(["step", "unit"])
    return sel["value"].to_numpy().reshape(df["step"].max(), -1)


def run_csv(*args):
    """Run ``lstmtrace run ARGS --format csv`` and parse its stdout."""
    return frame(assert_ok(invoke("run", *args, "--format", "csv")).stdout)


def run_text(*args):
    return assert_ok(invoke("run", *args)).stdout


def check_against(df, expected, keys=(("hidden", "h"), ("cell", "c")), atol=1e-12):
    for key in keys:
        np.testing.assert_allclose(block(df, *key), expected[key], rtol=0, atol=atol, err_msg=str(key))


def fails_writing_nothing(tmp_path, *args, fragments=()):
    """Run ``lstmtrace run ARGS -o OUT``: it must fail with assert_error and leave the folder as it was."""
    before = sorted(p.name for p in tmp_path.iterdir())
    line = assert_error(invoke("run", *args, "-o", tmp_path / "out.csv"), *fragments)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    return line


@pytest.fixture
def fixture_data():
    with np.load(TORCH_NPZ, allow_pickle=False) as f:
        return dict(f)


@pytest.fixture
def keras_data():
    with np.load(KERAS_NPZ, allow_pickle=False) as f:
        return dict(f)


IDENTITY_2 = same_gates(np.eye(2), np.eye(2), np.zeros(2))


# -- where the sequence comes from -----------------------------------------------------

def test_xs_inline():
    df = run_csv("--xs", XS)
    np.testing.assert_array_equal(block(df, "given", "x"), XS_ROWS)
    check_against(df, lstm_loop(XS_ROWS, IDENTITY_2))


@pytest.mark.parametrize("name, content", [
    ("xs.csv", "1,0\n0,1\n1,1\n"),
    ("xs.csv", "a,b\n1,0\n0,1\n1,1\n"),
    ("xs.txt", "1 0\n0\t1\n  1   1\n"),
    ("xs.txt", "a b\n1 0\n0 1\n1 1\n"),
])
def test_xs_text_files(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content)
    df = run_csv("--xs", path)
    np.testing.assert_array_equal(block(df, "given", "x"), XS_ROWS)
    check_against(df, lstm_loop(XS_ROWS, IDENTITY_2))


@pytest.mark.parametrize("content", ["0.5\n-1\n2\n", "x\n0.5\n-1\n2\n"])
def test_xs_one_column_file_is_E_1(tmp_path, content):
    path = tmp_path / "xs.csv"
    path.write_text(content)
    df = run_csv("--xs", path)
    np.testing.assert_array_equal(block(df, "given", "x"), [[0.5], [-1], [2]])
    check_against(df, lstm_loop([[0.5], [-1], [2]], same_gates(np.eye(1), np.eye(1), np.zeros(1))))


def test_xs_csv_with_a_byte_order_mark_keeps_its_first_row(tmp_path):
    path = tmp_path / "xs.csv"
    path.write_bytes(b"\xef\xbb\xbf1,0\n0,1\n1,1\n")
    np.testing.assert_array_equal(block(run_csv("--xs", path), "given", "x"), XS_ROWS)


def test_xs_npy_T_by_E(tmp_path):
    xs = np.random.default_rng(1).normal(size=(4, 3))
    np.save(tmp_path / "xs.npy", xs)
    df = run_csv("--xs", tmp_path / "xs.npy", "--hidden-size", 2)
    np.testing.assert_array_equal(block(df, "given", "x"), xs)  # bit for bit
    check_against(df, lstm_loop(xs, same_gates(np.eye(2, 3), np.eye(2), np.zeros(2))))


def test_xs_npy_1d_is_E_1(tmp_path):
    np.save(tmp_path / "xs.npy", np.array([0.25, -0.5, 1.0, 2.0]))
    df = run_csv("--xs", tmp_path / "xs.npy")
    np.testing.assert_array_equal(block(df, "given", "x"), [[0.25], [-0.5], [1.0], [2.0]])
    check_against(df, lstm_loop([[0.25], [-0.5], [1], [2]], same_gates(np.eye(1), np.eye(1), np.zeros(1))))


# -- the shape of the trace ------------------------------------------------------------

@pytest.mark.parametrize("xs, E, H", [(XS, 2, 2), ("1;2;3;4;5", 1, 3), ("1,2,3;4,5,6", 3, 4)])
def test_csv_has_steps_1_to_T_and_E_plus_27H_rows_each(xs, E, H):
    df = run_csv("--xs", xs, "--hidden-size", H)
    T = xs.count(";") + 1
    assert list(df.columns) == ["step", "gate", "quantity", "unit", "value"]
    assert df["step"].value_counts().sort_index().to_dict() == {t: E + 27 * H for t in range(1, T + 1)}


def test_each_step_starts_from_the_last_ones_h_and_c():
    df = run_csv("--xs", "1,-2;0.5,0.3;-1,2;0.1,0.1", "--weights", "random:4", "--hidden-size", 3)
    np.testing.assert_array_equal(block(df, "given", "h_prev")[1:], block(df, "hidden", "h")[:-1])
    np.testing.assert_array_equal(block(df, "given", "c_prev")[1:], block(df, "cell", "c")[:-1])


# -- state and size --------------------------------------------------------------------

def test_h_and_c_start_the_sequence():
    df = run_csv("--xs", XS, "--h", "0.5,-0.25", "--c", "-1,2")
    np.testing.assert_array_equal(block(df, "given", "h_prev")[0], [0.5, -0.25])
    np.testing.assert_array_equal(block(df, "given", "c_prev")[0], [-1, 2])
    check_against(df, lstm_loop(XS_ROWS, IDENTITY_2, [0.5, -0.25], [-1, 2]))


def test_hidden_size():
    df = run_csv("--xs", XS, "--hidden-size", 3)
    assert block(df, "hidden", "h").shape == (3, 3)
    check_against(df, lstm_loop(XS_ROWS, same_gates(np.eye(3, 2), np.eye(3), np.zeros(3))))


# -- weights ---------------------------------------------------------------------------

@pytest.mark.parametrize("word, make", [
    ("identity", lambda shape: np.eye(*shape)), ("zeros", np.zeros), ("ones", np.ones),
])
def test_weights_words(word, make):
    df = run_csv("--xs", "0.3,-0.2,0.5;-1,0.5,0.25", "--hidden-size", 2, "--weights", word)
    expected = lstm_loop([[0.3, -0.2, 0.5], [-1, 0.5, 0.25]], same_gates(make((2, 3)), make((2, 2)), np.zeros(2)))
    check_against(df, expected, keys=[(g, "act") for g in GATES] + [("hidden", "h"), ("cell", "c")])


def test_weights_random_seed():
    rng, bound = np.random.default_rng(7), 1 / np.sqrt(2)
    gates = {g: (rng.uniform(-bound, bound, (2, 3)), rng.uniform(-bound, bound, (2, 2)), np.zeros(2))
             for g in GATES}  # the documented draw order: gate by gate, W before U
    df = run_csv("--xs", "0.3,-0.2,0.5;-1,0.5,0.25", "--hidden-size", 2, "--weights", "random:7")
    check_against(df, lstm_loop([[0.3, -0.2, 0.5], [-1, 0.5, 0.25]], gates))


@pytest.fixture
def saved_weights(tmp_path):
    """A file written by Parameters.save, E = 3, H = 2, nonzero biases; and its gates."""
    rng = np.random.default_rng(5)
    gates = {g: (rng.uniform(-1, 1, (2, 3)), rng.uniform(-1, 1, (2, 2)), rng.uniform(-1, 1, 2)) for g in GATES}
    p = Parameters.zeros(3, 2)
    for g, (W, U, b) in gates.items():
        p.set(g, "W", W).set(g, "U", U).set(g, "b", b)
    folder = tmp_path / "weights"
    folder.mkdir()
    p.save(folder / "w.npz")
    return folder / "w.npz", gates


XS3 = [[0.3, -0.2, 0.5], [-1, 0.5, 0.25], [2, 0, -0.5]]


def test_weights_file_written_by_parameters_save(saved_weights):
    path, gates = saved_weights
    df = run_csv("--xs", rows(XS3), "--weights", path, "--h", "0.1,-0.4", "--c", "0.5,1")
    check_against(df, lstm_loop(XS3, gates, [0.1, -0.4], [0.5, 1]),
                  keys=[(g, q) for g in GATES for q in ("bias", "act")] + [("hidden", "h"), ("cell", "c")])


def test_bias_sets_every_gate_bias(saved_weights):
    path, gates = saved_weights
    df = run_csv("--xs", rows(XS3), "--weights", path, "--bias", "-0.75")
    expected = lstm_loop(XS3, {g: (W, U, np.full(2, -0.75)) for g, (W, U, _) in gates.items()})
    for g in GATES:
        np.testing.assert_array_equal(block(df, g, "bias"), np.full((3, 2), -0.75))
    check_against(df, expected)


def test_forget_bias_adds_to_the_forget_gate_bias(saved_weights):
    path, gates = saved_weights
    df = run_csv("--xs", rows(XS3), "--weights", path, "--forget-bias", "1")
    W, U, b = gates["forget"]
    np.testing.assert_allclose(block(df, "forget", "bias"), np.tile(b + 1, (3, 1)), rtol=0, atol=1e-15)
    for g in ("input", "candidate", "output"):
        np.testing.assert_array_equal(block(df, g, "bias"), np.tile(gates[g][2], (3, 1)))
    check_against(df, lstm_loop(XS3, {**gates, "forget": (W, U, b + 1)}))


def test_forget_bias_adds_after_bias():
    df = run_csv("--xs", XS, "--bias", "0.5", "--forget-bias", "1")
    np.testing.assert_array_equal(block(df, "forget", "bias"), np.full((3, 2), 1.5))
    np.testing.assert_array_equal(block(df, "input", "bias"), np.full((3, 2), 0.5))


def test_set_changes_one_matrix():
    df = run_csv("--xs", XS, "--set", "forget.b=2,-1", "--set", "input.W=1,2;3,4")
    gates = dict(IDENTITY_2, forget=(np.eye(2), np.eye(2), np.array([2.0, -1])),
                 input=(np.array([[1.0, 2], [3, 4]]), np.eye(2), np.zeros(2)))
    np.testing.assert_array_equal(block(df, "forget", "bias"), [[2, -1]] * 3)
    check_against(df, lstm_loop(XS_ROWS, gates))


# -- weights from PyTorch and Keras model files ----------------------------------------

def torch_layer(data, k):
    p = "encoder.lstm."
    return stacked_gates(data[f"{p}weight_ih_l{k}"], data[f"{p}weight_hh_l{k}"],
                         data[f"{p}bias_ih_l{k}"] + data[f"{p}bias_hh_l{k}"])


@pytest.mark.parametrize("layer_args", [[], ["--layer", "0"]])
def test_torch_npz_layer_0_matches_pytorch(tmp_path, fixture_data, layer_args):
    np.save(tmp_path / "xs.npy", fixture_data["xs"])
    df = run_csv("--xs", tmp_path / "xs.npy", "--weights", TORCH_NPZ, "--prefix", "encoder.lstm",
                 *layer_args, "--h", vector(fixture_data["h0"][0]), "--c", vector(fixture_data["c0"][0]))
    h = block(df, "hidden", "h")
    np.testing.assert_allclose(h[-1], fixture_data["h"][0, -1], rtol=0, atol=1e-10)
    np.testing.assert_allclose(h, fixture_data["h"][0], rtol=0, atol=1e-10)
    np.testing.assert_allclose(block(df, "cell", "c"), fixture_data["c"][0], rtol=0, atol=1e-10)


@pytest.mark.parametrize("prefix", ["encoder.lstm", "encoder.lstm."])
def test_torch_npz_layer_1_takes_5_columns(tmp_path, fixture_data, prefix):
    xs = fixture_data["h"][0]  # layer 1 reads layer 0's h: T × 5
    np.save(tmp_path / "xs.npy", xs)
    df = run_csv("--xs", tmp_path / "xs.npy", "--weights", TORCH_NPZ, "--layer", 1, "--prefix", prefix,
                 "--h", vector(fixture_data["h0"][1]), "--c", vector(fixture_data["c0"][1]))
    assert block(df, "given", "x").shape == (20, 5)
    np.testing.assert_allclose(block(df, "hidden", "h"), fixture_data["h"][1], rtol=0, atol=1e-10)
    expected = lstm_loop(xs, torch_layer(fixture_data, 1), fixture_data["h0"][1], fixture_data["c0"][1])
    check_against(df, expected, keys=[("forget", "act"), ("hidden", "h")])


def test_torch_pt_file(tmp_path, fixture_data):
    pytest.importorskip("torch")
    np.save(tmp_path / "xs.npy", fixture_data["h"][0])
    df = run_csv("--xs", tmp_path / "xs.npy", "--weights", TORCH_PT, "--layer", 1, "--prefix", "encoder.lstm",
                 "--h", vector(fixture_data["h0"][1]), "--c", vector(fixture_data["c0"][1]))
    np.testing.assert_allclose(block(df, "hidden", "h"), fixture_data["h"][1], rtol=0, atol=1e-10)
    np.testing.assert_allclose(block(df, "cell", "c"), fixture_data["c"][1], rtol=0, atol=1e-10)


@pytest.mark.parametrize("layout", [[], ["--layout", "keras"]])
def test_keras_npz(tmp_path, keras_data, layout):
    np.save(tmp_path / "xs.npy", keras_data["xs"])
    df = run_csv("--xs", tmp_path / "xs.npy", "--weights", KERAS_NPZ, *layout)
    np.testing.assert_allclose(block(df, "hidden", "h"), keras_data["h0"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(block(df, "cell", "c"), keras_data["c0"], rtol=0, atol=1e-10)
    kernel, recurrent, bias = keras_data["kernel"], keras_data["recurrent_kernel"], keras_data["bias"]
    np.testing.assert_array_equal(block(df, "forget", "bias")[0], bias[5:10])  # gates i, f, c, o
    check_against(df, lstm_loop(keras_data["xs"], stacked_gates(kernel.T, recurrent.T, bias)))


@pytest.mark.parametrize("layer, xs_key, H", [(0, "xs", 5), (1, "h0", 4)])
def test_keras_weights_h5(tmp_path, keras_data, layer, xs_key, H):
    pytest.importorskip("h5py")
    np.save(tmp_path / "xs.npy", keras_data[xs_key])
    df = run_csv("--xs", tmp_path / "xs.npy", "--weights", KERAS_H5, "--layer", layer)
    assert block(df, "hidden", "h").shape == (20, H)
    np.testing.assert_allclose(block(df, "hidden", "h"), keras_data[f"h{layer}"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(block(df, "cell", "c"), keras_data[f"c{layer}"], rtol=0, atol=1e-10)


# -- text, its summary and --steps ------------------------------------------------------

def summary_rows(out):
    """The header and the rows of the one-row-per-step summary table of a text trace."""
    lines = out.splitlines()
    at = next(k for k, line in enumerate(lines) if line.split()[:2] == ["step", "x"])
    body = []
    for line in lines[at + 2:]:
        if not line.strip():
            break
        body.append(line)
    return at, lines[at], body


def detail_headings(out):
    return [line for line in out.splitlines() if line.startswith("LSTM step t = ")]


def test_text_opens_with_the_summary_then_every_step():
    out = run_text("--xs", "1,0;0,1;1,1;0.5,-0.5", "--format", "text")
    at, header, body = summary_rows(out)
    positions = [header.index(name) for name in SUMMARY_HEADERS]
    assert positions == sorted(positions)
    assert [int(line.split()[0]) for line in body] == [1, 2, 3, 4]
    headings = detail_headings(out)
    assert [h.split(" · ")[0] for h in headings] == [f"LSTM step t = {t}" for t in (1, 2, 3, 4)]
    assert out.splitlines().index(headings[0]) > at


def test_text_is_the_default_format():
    assert run_text("--xs", XS) == run_text("--xs", XS, "--format", "text")


def test_text_summary_means_are_the_gates_means():
    out = run_text("--xs", XS)
    forget = lstm_loop(XS_ROWS, IDENTITY_2)["forget", "act"].mean(axis=1)
    _, _, body = summary_rows(out)
    for line, mean in zip(body, forget):
        assert f"{mean:.6g}" in line


def test_steps_restricts_the_detail():
    out = run_text("--xs", "1,0;0,1;1,1;0.5,-0.5", "--steps", "2-3")
    _, _, body = summary_rows(out)
    assert len(body) == 4  # the summary still lists every step
    assert [h.split(" · ")[0] for h in detail_headings(out)] == ["LSTM step t = 2", "LSTM step t = 3"]
    assert "steps 2, 3 of 4" in out


def test_steps_does_not_cut_csv_or_json():
    df = run_csv("--xs", XS, "--steps", "2")
    assert sorted(df["step"].unique()) == [1, 2, 3]
    rows_ = json.loads(assert_ok(invoke("run", "--xs", XS, "--steps", "2", "--format", "json")).stdout)
    assert {r["step"] for r in rows_} == {1, 2, 3}


@pytest.mark.parametrize("steps, says", [
    ("4", "within steps 1..3"), ("0", "within steps 1..3"), ("2-5", "within steps 1..3"),
    ("3-2", "within steps 1..3"), ("x", "not a step or a range"), ("1-", "not a step or a range"),
    ("", "not a step or a range"),
])
def test_bad_steps(tmp_path, steps, says):
    fails_writing_nothing(tmp_path, "--xs", XS, "--steps", steps, "--format", "text",
                          fragments=["'--steps'", says])


# -- formats, outputs, --precision, --expand --------------------------------------------

def test_format_markdown():
    out = assert_ok(invoke("run", "--xs", XS, "--format", "markdown")).stdout
    assert "## 3 steps · input size E = 2 · hidden size H = 2" in out
    assert "## LSTM step t = 3" in out
    header = next(line for line in out.splitlines() if line.startswith("|") and "step" in line)
    assert [cell.strip() for cell in header.strip("|").split("|")] == list(SUMMARY_HEADERS)


def test_format_json_equals_csv_exactly():
    rows_ = json.loads(assert_ok(invoke("run", "--xs", XS, "--weights", "random:2", "--format", "json")).stdout)
    df = run_csv("--xs", XS, "--weights", "random:2")
    assert [r["value"] for r in rows_] == df["value"].tolist()
    assert [(r["step"], r["gate"], r["quantity"], r["unit"]) for r in rows_] == \
        list(zip(df["step"], df["gate"], df["quantity"], df["unit"]))


@pytest.mark.parametrize("suffix, fmt", [(".csv", "csv"), (".txt", "text"), (".md", "markdown"),
                                         (".json", "json")])
def test_output_format_from_suffix(tmp_path, suffix, fmt):
    path = tmp_path / f"out{suffix}"
    result = assert_ok(invoke("run", "--xs", XS, "-o", path))
    assert result.stdout == ""
    assert path.read_text(encoding="utf-8") == run_text("--xs", XS, "--format", fmt)


def test_format_overrides_the_suffix(tmp_path):
    path = tmp_path / "out.txt"
    assert_ok(invoke("run", "--xs", XS, "-o", path, "--format", "csv"))
    assert path.read_text().startswith("step,gate,quantity,unit,value\n")


def test_precision():
    forget = lstm_loop(XS_ROWS, IDENTITY_2)["forget", "act"].mean(axis=1)
    out3 = run_text("--xs", XS, "--precision", 3)
    assert f"{forget[0]:.3g}" in out3 and f"{forget[0]:.6g}" not in out3
    out10 = run_text("--xs", XS, "--precision", 10)
    assert f"{forget[0]:.10g}" in out10


def test_precision_does_not_round_csv():
    assert run_csv("--xs", XS, "--precision", 2)["value"].tolist() == run_csv("--xs", XS)["value"].tolist()


def test_expand_writes_a_unit_out_in_every_detailed_step():
    out = run_text("--xs", XS, "--expand", 1)
    assert out.count("Unit 1, term by term") == 3
    assert "W_f[1,:]·x = 0*0 + 1*1 = 1" in out  # step 2, x = (0, 1)
    assert run_text("--xs", XS, "--expand", 0, "--steps", "3").count("Unit 0, term by term") == 1


# -- long runs -------------------------------------------------------------------------

def test_no_progress_bar_when_stderr_is_not_a_terminal(tmp_path):
    xs = np.random.default_rng(3).normal(size=(300, 2))
    np.save(tmp_path / "xs.npy", xs)
    result = assert_ok(invoke("run", "--xs", tmp_path / "xs.npy", "--format", "csv"))
    assert frame(result.stdout)["step"].max() == 300
    for text in (result.stdout, result.stderr):
        assert "tracing" not in text and "%" not in text and "\r" not in text
    out = tmp_path / "out.txt"
    result = assert_ok(invoke("run", "--xs", tmp_path / "xs.npy", "--steps", "300", "-o", out))
    assert result.stdout == "" and "tracing" not in result.stderr
    assert "tracing" not in out.read_text(encoding="utf-8")


def test_1000_steps_h64_csv_reads_back_bit_identical(tmp_path):
    xs = np.random.default_rng(11).normal(size=(1000, 3))
    np.save(tmp_path / "xs.npy", xs)
    out = tmp_path / "trace.csv"
    assert_ok(invoke("run", "--xs", tmp_path / "xs.npy", "--weights", "random:5", "--hidden-size", 64, "-o", out))
    saved = lstmtrace.read_trace(out)
    memory = lstmtrace.run(Parameters.random(3, 64, seed=5), xs)
    assert saved.steps == 1000 and len(saved) == 1000 * (3 + 27 * 64)
    for column in ("step", "gate", "quantity", "unit"):
        assert saved.frame[column].equals(memory.frame[column]), column
    np.testing.assert_array_equal(saved.frame["value"].to_numpy().view(np.int64),
                                  memory.frame["value"].to_numpy().view(np.int64))


# -- bad inputs: exit 2, one line naming the option, no file written --------------------

def test_xs_missing(tmp_path):
    fails_writing_nothing(tmp_path, fragments=["--xs FILE|ROWS, or --tokens IDS with --embedding KEY"])


def test_xs_no_such_file(tmp_path):
    fails_writing_nothing(tmp_path, "--xs", tmp_path / "nope.csv", fragments=["'--xs'", "no file"])


@pytest.fixture
def inputs(tmp_path):
    """A folder for input files, apart from tmp_path where the output would go."""
    folder = tmp_path / "inputs"
    folder.mkdir()
    return folder


def test_xs_ragged_inline(tmp_path):
    fails_writing_nothing(tmp_path, "--xs", "1,2;3;4,5", fragments=["'--xs'", "different lengths"])


def test_xs_ragged_inline_names_the_row(tmp_path):
    fails_writing_nothing(tmp_path, "--xs", "1,2;3;4,5", fragments=["'--xs'", "row 2"])


@pytest.mark.parametrize("content, says", [
    ("1,2\n3,4\n5\n", "line 3 has 1 values"),
    ("a,b\n1,2\n3,4,5\n", "line 3 has 3 values"),
    ("1 2\n3 4 5\n", "line 2 has 3 values"),
])
def test_xs_ragged_file_names_the_line(tmp_path, inputs, content, says):
    (inputs / "xs.csv").write_text(content)
    fails_writing_nothing(tmp_path, "--xs", inputs / "xs.csv", fragments=["'--xs'", says])


def test_xs_width_differs_from_the_weights_file(tmp_path, saved_weights):
    path, _ = saved_weights
    fails_writing_nothing(tmp_path, "--xs", XS, "--weights", path,
                          fragments=["'--xs'", "gives input size 2", "input size E = 3"])


@pytest.mark.parametrize("content, says", [
    ("", "is empty"), ("\n  \n", "is empty"), ("a,b\n", "has a header but no rows"),
    ("1,2\nnan,3\n", "nan at step 2"), ("1,2\n3,inf\n", "inf at step 2"), ("1,2\n3,-inf\n", "-inf"),
    ("1,2\n3,x\n", "line 2: 'x' is not a number"), ("1,2\n3,\n", "line 2"),
])
def test_xs_bad_file(tmp_path, inputs, content, says):
    (inputs / "xs.csv").write_text(content)
    fails_writing_nothing(tmp_path, "--xs", inputs / "xs.csv", fragments=["'--xs'", says])


@pytest.mark.parametrize("xs", ["1,nan", "1;inf", "-inf,1", "1,abc", "", "1,,2"])
def test_xs_bad_inline(tmp_path, xs):
    fails_writing_nothing(tmp_path, "--xs", xs, fragments=["'--xs'"])


@pytest.mark.parametrize("xs", ["1,nan", "1;inf"])
def test_xs_inline_non_finite_says_not_finite(tmp_path, xs):
    fails_writing_nothing(tmp_path, "--xs", xs, fragments=["'--xs'", "not finite"])


def test_xs_npy_object_array(tmp_path, inputs):
    np.save(inputs / "xs.npy", np.array([[1, 2], [3, None]], dtype=object), allow_pickle=True)
    fails_writing_nothing(tmp_path, "--xs", inputs / "xs.npy", fragments=["'--xs'", "pickle"])


def test_xs_pickle_named_npy(tmp_path, inputs):
    with open(inputs / "xs.npy", "wb") as f:
        pickle.dump([[1.0, 2.0], [3.0, 4.0]], f)
    fails_writing_nothing(tmp_path, "--xs", inputs / "xs.npy", fragments=["'--xs'", "pickle"])


@pytest.mark.parametrize("array, says", [
    (np.array([[1.0, np.nan]]), "nan at step 1, element 1"), (np.array([["a", "b"]]), "not real numbers"),
    (np.zeros((2, 2, 2)), "has shape B×T×E = (2, 2, 2), a batch of 2 sequences: choose one with --batch-index"),
    (np.zeros((0, 2)), "empty"),
])
def test_xs_bad_npy(tmp_path, inputs, array, says):
    np.save(inputs / "xs.npy", array)
    fails_writing_nothing(tmp_path, "--xs", inputs / "xs.npy", fragments=["'--xs'", says])


def test_layer_that_does_not_exist_lists_the_layers(tmp_path):
    line = fails_writing_nothing(tmp_path, "--xs", "1,2,3", "--weights", TORCH_NPZ, "--layer", 5,
                                 fragments=["'--layer'", "no layer 5"])
    assert line.endswith("its layers are 0, 1")


def test_h5_layer_that_does_not_exist_lists_the_layers(tmp_path):
    pytest.importorskip("h5py")
    fails_writing_nothing(tmp_path, "--xs", "1,2,3", "--weights", KERAS_H5, "--layer", 2,
                          fragments=["'--layer'", "no LSTM layer 2", "0 (encoder), 1 (decoder)"])


def test_prefix_that_does_not_exist_lists_the_prefixes(tmp_path):
    fails_writing_nothing(tmp_path, "--xs", "1,2,3", "--weights", TORCH_NPZ, "--prefix", "decoder.lstm",
                          fragments=["'--prefix'", "'decoder.lstm'", "'encoder.lstm.'"])


@pytest.fixture
def lstm_state(fixture_data):
    """Layer 0 of the nn.LSTM fixture, keys without a prefix."""
    return {k[len("encoder.lstm."):]: v for k, v in fixture_data.items()
            if k.startswith("encoder.lstm.") and k.endswith("_l0")}


def test_two_prefixes_and_no_prefix(tmp_path, inputs, lstm_state):
    np.savez(inputs / "w.npz", **{f"{m}.lstm.{k}": v for m in ("encoder", "decoder") for k, v in lstm_state.items()})
    fails_writing_nothing(tmp_path, "--xs", "1,2,3", "--weights", inputs / "w.npz",
                          fragments=["'--prefix'", "'decoder.lstm.'", "'encoder.lstm.'", "choose one with --prefix"])
    df = run_csv("--xs", "1,2,3", "--weights", inputs / "w.npz", "--prefix", "decoder.lstm")
    assert block(df, "hidden", "h").shape == (1, 5)


def test_a_bidirectional_layer_traces_both_halves_or_the_one_asked_for(tmp_path, inputs, lstm_state):
    reverse = {f"{k}_reverse": v for k, v in lstm_state.items()}
    np.savez(inputs / "w.npz", **lstm_state, **reverse)
    both = assert_ok(invoke("run", "--xs", "1,2,3;0,1,0", "--weights", inputs / "w.npz", "--format", "csv"))
    assert both.stdout.startswith("layer,direction,step,gate,quantity,unit,value\n")
    one = assert_ok(invoke("run", "--xs", "1,2,3;0,1,0", "--weights", inputs / "w.npz", "--direction", "reverse",
                           "--format", "csv"))
    assert one.stdout.startswith("step,gate,quantity,unit,value\n0,variant,reverse,0,1.0\n")
    fails_writing_nothing(tmp_path, "--xs", "1,2,3", "--weights", inputs / "w.npz", "--direction", "reverse",
                          "--backward", fragments=["'--direction'", "reverse cell"])


def test_a_projection_in_the_file_needs_proj_size(tmp_path, inputs):
    rng = np.random.default_rng(0)  # as torch.nn.LSTM(3, 4, proj_size=2) names and shapes them
    state = {"weight_ih_l0": rng.normal(size=(16, 3)), "weight_hh_l0": rng.normal(size=(16, 2)),
             "bias_ih_l0": np.zeros(16), "bias_hh_l0": np.zeros(16), "weight_hr_l0": rng.normal(size=(2, 4))}
    np.savez(inputs / "w.npz", **state)
    fails_writing_nothing(tmp_path, "--xs", "1,2,3", "--weights", inputs / "w.npz",
                          fragments=["'--proj-size'", "w.npz", "'weight_hr_l0'", "give --proj-size 2"])
    fails_writing_nothing(tmp_path, "--xs", "1,2,3", "--weights", inputs / "w.npz", "--proj-size", "3",
                          fragments=["'--proj-size'", "'weight_hr_l0' has shape (2, 4)"])
    assert_ok(invoke("run", "--xs", "1,2,3", "--weights", inputs / "w.npz", "--proj-size", "2"))


def test_pt_that_is_not_a_state_dict(tmp_path, inputs):
    torch = pytest.importorskip("torch")
    torch.save([torch.zeros(2)], inputs / "w.pt")
    fails_writing_nothing(tmp_path, "--xs", "1,2,3", "--weights", inputs / "w.pt",
                          fragments=["'--weights'", "list", "not a state_dict"])


def test_pt_holding_a_pickled_module(tmp_path, inputs):
    torch = pytest.importorskip("torch")
    torch.save(torch.nn.LSTM(3, 2), inputs / "w.pt")
    fails_writing_nothing(tmp_path, "--xs", "1,2,3", "--weights", inputs / "w.pt",
                          fragments=["'--weights'", "pickle"])


@pytest.mark.parametrize("option, value", [("--layer", "1"), ("--prefix", "encoder.lstm"), ("--weights-layout", "torch")])
def test_file_options_with_weights_identity(tmp_path, option, value):
    fails_writing_nothing(tmp_path, "--xs", XS, "--weights", "identity", option, value,
                          fragments=[f"'{option}'", "identity"])


def test_overflow_mid_sequence_names_the_step(tmp_path):
    line = fails_writing_nothing(tmp_path, "--xs", "1,1;0.5,0.5;1e308,1e308", "--weights", "ones",
                                 fragments=["step 3", "overflowed"])
    assert "forget.Wx is inf" in line


def test_a_failing_run_never_clobbers_the_output(tmp_path):
    out = tmp_path / "out.csv"
    out.write_text("precious")
    assert_error(invoke("run", "--xs", "1,1;1e308,1e308", "--weights", "ones", "-o", out))
    assert_error(invoke("run", "--xs", XS, "--steps", "9", "-o", out))
    assert out.read_text() == "precious"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_xs_dash_reads_standard_input_as_text_or_npy():
    expected = assert_ok(invoke("run", "--xs", "1,2;3,4", "--format", "csv")).stdout
    assert assert_ok(invoke("run", "--xs", "-", "--format", "csv", input="x1,x2\n1,2\n3,4\n")).stdout == expected
    buffer = io.BytesIO()
    np.save(buffer, np.array([[1.0, 2.0], [3.0, 4.0]]))
    assert assert_ok(invoke("run", "--xs", "-", "--format", "csv", input=buffer.getvalue())).stdout == expected


@pytest.mark.parametrize("given, says", [
    (b"", "standard input is empty"),
    (b"1,2\n3,x\n", "standard input line 2: 'x' is not a number"),
    (b"\xff\xfe1,2\n", "standard input is not text of numbers"),
])
def test_xs_dash_with_bad_input_is_one_line(given, says):
    assert_error(invoke("run", "--xs", "-", input=given), "'--xs'", says)


def test_batch_index_picks_one_sequence_of_a_batch(tmp_path):
    batch = np.random.default_rng(0).normal(size=(3, 4, 2))  # B×T×E, as a DataLoader's batch
    np.save(tmp_path / "b.npy", batch)
    np.savez(tmp_path / "b.npz", inputs=batch)
    for name in ("b.npy", "b.npz"):
        result = assert_ok(invoke("run", "--xs", tmp_path / name, "--batch-index", "1", "--format", "csv"))
        frame = pd.read_csv(io.StringIO(result.stdout))
        np.testing.assert_array_equal(frame.query("quantity == 'x'")["value"].to_numpy(), batch[1].reshape(-1))


@pytest.mark.parametrize("args, says", [
    (["--xs", "{batch}", "--batch-index", "3"], "is 3, and {batch} holds sequences 0 to 2"),
    (["--xs", "1,2;3,4", "--batch-index", "0"], "is for arrays of shape B×T×E"),
    (["--xs", "{sequence}", "--batch-index", "0"], "is for arrays of shape B×T×E; {sequence} has shape (4, 2)"),
])
def test_batch_index_errors_are_one_line(tmp_path, args, says):
    """(A batch given without --batch-index is an --xs error: test_xs_bad_npy.)"""
    paths = {"batch": tmp_path / "b.npy", "sequence": tmp_path / "s.npy"}
    np.save(paths["batch"], np.zeros((3, 4, 2)))
    np.save(paths["sequence"], np.zeros((4, 2)))
    args = [a.format(**paths) for a in args]
    assert_error(invoke("run", *args), "'--batch-index'", says.format(**paths))


# -- token ids through the model's embedding ---------------------------------------------------

@pytest.fixture
def with_embedding(tmp_path):
    """An .npz state_dict of a model with an embedding (10 tokens × E = 3) and an LSTM (H = 4)."""
    rng = np.random.default_rng(3)
    state = {f"lstm.{k}": v for k, v in Parameters.random(3, 4, seed=3).state_dict().items()}
    state["embedding.weight"] = rng.normal(size=(10, 3))
    np.savez(tmp_path / "model.npz", **state)
    return tmp_path / "model.npz", state["embedding.weight"]


def test_tokens_are_the_embedding_rows_they_name(tmp_path, with_embedding):
    path, table = with_embedding
    ids = [3, 1, 4, 1, 5]
    np.savetxt(tmp_path / "xs.csv", table[ids], delimiter=",")
    common = ["--weights", path, "--prefix", "lstm", "--format", "csv"]
    looked_up = assert_ok(invoke("run", *common, "--tokens", "3,1,4,1,5", "--embedding", "embedding.weight"))
    assert looked_up.stdout == assert_ok(invoke("run", *common, "--xs", tmp_path / "xs.csv")).stdout
    (tmp_path / "ids.txt").write_text("3 1\n4 1 5\n")
    from_file = assert_ok(invoke("run", *common, "--tokens", tmp_path / "ids.txt", "--embedding", "embedding.weight"))
    assert from_file.stdout == looked_up.stdout
    text = assert_ok(invoke("run", *common[:-2], "--tokens", "3,1", "--embedding", "embedding.weight")).stdout
    assert "x_t is row id_t of the embedding embedding.weight (10×3)" in " ".join(text.split())


@pytest.mark.parametrize("args, option, says", [
    (["--tokens", "3,10"], "'--tokens'", "token id 10 is beyond the 10 rows of --embedding 'embedding.weight'"),
    (["--tokens", "3,x"], "'--tokens'", "'x' is not a token id"),
    (["--tokens", "3,-1"], "'--tokens'", "token id -1 is negative; ids count from 0"),
    (["--tokens", "3", "--embedding", "embed"], "'--embedding'", "has no key 'embed'; its embeddings are embedding.weight"),
    (["--tokens", "3", "--embedding", "lstm.bias_ih"], "'--embedding'", "an embedding is a V×E table"),
])
def test_token_errors_are_one_line(with_embedding, args, option, says):
    path, _ = with_embedding
    if "--embedding" not in args:
        args = [*args, "--embedding", "embedding.weight"]
    assert_error(invoke("run", "--weights", path, "--prefix", "lstm", *args), option, says)


@pytest.mark.parametrize("args, says", [
    (["--tokens", "3"], "--tokens needs --embedding KEY"),
    (["--embedding", "embedding.weight"], "give --tokens too"),
    (["--tokens", "3", "--embedding", "embedding.weight", "--xs", "1,2,3"], "give --xs or --tokens, not both"),
    ([], "give the sequence: --xs FILE|ROWS, or --tokens IDS with --embedding KEY"),
])
def test_tokens_usage_errors_are_one_line(with_embedding, args, says):
    path, _ = with_embedding
    assert_error(invoke("run", "--weights", path, "--prefix", "lstm", *args), says)


def test_tokens_through_a_torch_models_embedding(tmp_path):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    embedding, lstm = torch.nn.Embedding(10, 3).double(), torch.nn.LSTM(3, 4, batch_first=True).double()
    model = torch.nn.ModuleDict({"embedding": embedding, "lstm": lstm})
    torch.save(model.state_dict(), tmp_path / "model.pt")
    with torch.no_grad():
        h, _ = lstm(embedding(torch.tensor([[3, 1, 4, 1, 5]])))
    result = assert_ok(invoke("run", "--weights", tmp_path / "model.pt", "--prefix", "lstm", "--tokens", "3,1,4,1,5",
                              "--embedding", "embedding.weight", "--format", "csv"))
    frame = pd.read_csv(io.StringIO(result.stdout))
    np.testing.assert_allclose(frame.query("quantity == 'h'")["value"].to_numpy().reshape(5, 4), h[0].numpy(),
                               rtol=0, atol=1e-12)
