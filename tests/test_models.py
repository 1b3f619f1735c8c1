"""Whole models as practitioners save them, traced from token ids (tests/fixtures/make_model_fixtures.py).

A 3-layer ``nn.LSTM`` (``batch_first=True``) inside a model with an embedding and a head: each
layer is traced from its own weights, layer 0 from the embedded token ids and each next layer
from the h of the one before, and must give PyTorch's every h_t and c_t: to 1e-12 for the
float64 model, to float32 rounding for the float32 one (lstmtrace computes in float64).
"""
import io
import pathlib

import numpy as np
import pandas as pd
import pytest

from conftest import assert_error, assert_ok, invoke
import lstmtrace
from lstmtrace import Parameters

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
EXPECTED = np.load(FIXTURES / "torch_model_3layer.npz")


def _layers(path, precision):
    """Every layer's trace, each fed the one before's h, from the fixture's token ids."""
    table = lstmtrace.weights.read_embedding(path, "embedding.weight")
    xs, traces = table[EXPECTED["ids"]], []
    for layer in range(3):
        trace = lstmtrace.run(Parameters.load(path, prefix="lstm", layer=layer), xs)
        traces.append(trace)
        xs = trace.block("hidden", "h")
    return traces


@pytest.mark.parametrize("file, precision, atol", [
    ("torch_model_3layer_state.npz", "64", 1e-12),
    ("torch_model_3layer.pt", "64", 1e-12),  # the .pt files need torch, and skip without it
    ("torch_model_3layer_f32.pt", "32", 1e-6),  # float32 rounding: its eps is 1.2e-7, |c| ≤ 1.3
])
def test_every_layer_of_a_token_model_is_pytorchs(file, precision, atol):
    if file.endswith(".pt"):
        pytest.importorskip("torch")
    for layer, trace in enumerate(_layers(FIXTURES / file, precision)):
        np.testing.assert_allclose(trace.block("hidden", "h"), EXPECTED[f"h{precision}"][layer], rtol=0, atol=atol,
                                   err_msg=f"layer {layer} h")
        np.testing.assert_allclose(trace.block("cell", "c"), EXPECTED[f"c{precision}"][layer], rtol=0, atol=atol,
                                   err_msg=f"layer {layer} c")


def test_the_command_line_traces_it_layer_by_layer(tmp_path):
    path = FIXTURES / "torch_model_3layer_state.npz"
    ids = ",".join(str(i) for i in EXPECTED["ids"])
    result = assert_ok(invoke("run", "--weights", path, "--prefix", "lstm", "--layer", "0", "--tokens", ids,
                              "--embedding", "embedding.weight", "--format", "csv"))
    for layer in range(3):
        frame = pd.read_csv(io.StringIO(result.stdout))
        h = frame.query("quantity == 'h'")["value"].to_numpy().reshape(len(EXPECTED["ids"]), -1)
        np.testing.assert_allclose(h, EXPECTED["h64"][layer], rtol=0, atol=1e-12)
        np.savetxt(tmp_path / "h.csv", h, delimiter=",", fmt="%.17g")  # the next layer's xs
        if layer < 2:
            result = assert_ok(invoke("run", "--weights", path, "--prefix", "lstm", "--layer", str(layer + 1),
                                      "--xs", tmp_path / "h.csv", "--format", "csv"))


# -- every layer at once: --layer all ---------------------------------------------------------------

IDS = ",".join(str(i) for i in EXPECTED["ids"])


@pytest.mark.parametrize("file, precision, atol", [
    ("torch_model_3layer_state.npz", "64", 1e-12),
    ("torch_model_3layer.pt", "64", 1e-12),
    ("torch_model_3layer_f32.pt", "32", 1e-6),
])
def test_layer_all_traces_every_layer_from_token_ids(tmp_path, file, precision, atol):
    if file.endswith(".pt"):
        pytest.importorskip("torch")
    assert_ok(invoke("run", "--weights", FIXTURES / file, "--prefix", "lstm", "--layer", "all", "--tokens", IDS,
                     "--embedding", "embedding.weight", "-o", tmp_path / "stack.csv"))
    stack = lstmtrace.read_trace(tmp_path / "stack.csv")
    assert isinstance(stack, lstmtrace.Stack) and list(stack.traces) == [(0, "forward"), (1, "forward"), (2, "forward")]
    for layer in range(3):
        cell = stack.cell(layer)
        np.testing.assert_allclose(cell.block("hidden", "h"), EXPECTED[f"h{precision}"][layer], rtol=0, atol=atol,
                                   err_msg=f"layer {layer} h")
        np.testing.assert_allclose(cell.block("cell", "c"), EXPECTED[f"c{precision}"][layer], rtol=0, atol=atol,
                                   err_msg=f"layer {layer} c")
    # each layer reads the h of the one before, exactly
    for layer in (1, 2):
        assert np.array_equal(stack.cell(layer).block("given", "x"), stack.cell(layer - 1).block("hidden", "h"))


def test_layer_all_is_the_layers_traced_one_at_a_time():
    path = FIXTURES / "torch_model_3layer_state.npz"
    table = lstmtrace.weights.read_embedding(path, "embedding.weight")
    stack = lstmtrace.run_stack(lstmtrace.load_layers(path, prefix="lstm"), table[EXPECTED["ids"]])
    for layer, trace in enumerate(_layers(path, "64")):
        assert stack.cell(layer).frame.equals(trace.frame)


BIDIRECTIONAL = np.load(FIXTURES / "torch_model_bilstm.npz")


@pytest.mark.parametrize("file", ["torch_model_bilstm_state.npz", "torch_model_bilstm.pt"])
def test_a_bidirectional_two_layer_lstm_is_pytorchs(tmp_path, file):
    if file.endswith(".pt"):
        pytest.importorskip("torch")
    ids = ",".join(str(i) for i in BIDIRECTIONAL["ids"])
    assert_ok(invoke("run", "--weights", FIXTURES / file, "--direction", "both", "--layer", "all", "--tokens", ids,
                     "--embedding", "embedding.weight", "-o", tmp_path / "stack.csv"))
    stack = lstmtrace.read_trace(tmp_path / "stack.csv")
    assert list(stack.traces) == [(0, "forward"), (0, "reverse"), (1, "forward"), (1, "reverse")]
    H = 4
    for layer in (0, 1):
        out = BIDIRECTIONAL[f"out{layer}"]  # T × 2H: forward h_t, then reverse h_t, at each time t
        for k, direction in enumerate(("forward", "reverse")):
            cell = stack.cell(layer, direction)
            np.testing.assert_allclose(cell.block("hidden", "h"), out[:, k * H:(k + 1) * H], rtol=0, atol=1e-12,
                                       err_msg=f"layer {layer} {direction} h")
            last = cell.steps if direction == "forward" else 1  # the step it ran last
            np.testing.assert_allclose(cell.value("cell", "c", step=last), BIDIRECTIONAL["c_n"][2 * layer + k],
                                       rtol=0, atol=1e-12, err_msg=f"layer {layer} {direction} c_n")
            np.testing.assert_allclose(cell.value("hidden", "h", step=last), BIDIRECTIONAL["h_n"][2 * layer + k],
                                       rtol=0, atol=1e-12)
    reverse = stack.cell(0, "reverse")  # steps in time order: step t's h_prev is step t+1's h
    assert np.array_equal(reverse.block("given", "h_prev")[:-1], reverse.block("hidden", "h")[1:])
    assert not reverse.block("given", "h_prev")[-1].any()


def test_one_direction_of_a_bidirectional_layer_alone(tmp_path):
    path = FIXTURES / "torch_model_bilstm_state.npz"
    table = lstmtrace.weights.read_embedding(path, "embedding.weight")
    xs = table[BIDIRECTIONAL["ids"]]
    (only,), = lstmtrace.load_layers(path, layer=0, direction="reverse")
    trace = lstmtrace.run(only.params, xs, direction=only.direction)
    np.testing.assert_allclose(trace.block("hidden", "h"), BIDIRECTIONAL["out0"][:, 4:], rtol=0, atol=1e-12)
    ids = ",".join(str(i) for i in BIDIRECTIONAL["ids"])
    result = assert_ok(invoke("run", "--weights", path, "--direction", "reverse", "--tokens", ids,
                              "--embedding", "embedding.weight", "--format", "csv"))
    saved = lstmtrace.read_trace(io.StringIO(result.stdout))
    assert saved.direction == "reverse" and saved.frame.equals(trace.frame)
    text = assert_ok(invoke("run", "--weights", path, "--direction", "reverse", "--tokens", ids,
                            "--embedding", "embedding.weight")).stdout
    assert "This cell runs in reverse" in text and "(direction reverse)" in text


@pytest.mark.parametrize("args, option, words", [
    (["--layer", "all", "--h", "1,2,3,4"], "--h", "is for one cell, and 4 are traced together"),
    (["--layer", "all", "--backward"], "--backward", "is for one cell"),
    (["--layer", "all", "--set", "forget.b=1"], "--set", "changes one cell, and 4 are traced together"),
    (["--layer", "all", "--direction", "forward"], "--direction", "--layer all runs every cell"),
    (["--layer", "all", "--hidden-size", "4"], "--hidden-size", "is for one cell"),
    (["--direction", "reverse", "--backward"], "--direction", "a reverse cell's is not traced yet"),
    (["--layer", "2"], "--layer", "has no layer 2"),
])
def test_what_a_stack_cannot_do_is_one_line(tmp_path, args, option, words):
    ids = ",".join(str(i) for i in BIDIRECTIONAL["ids"])
    result = invoke("run", "--weights", FIXTURES / "torch_model_bilstm_state.npz", "--tokens", ids,
                    "--embedding", "embedding.weight", *args, "-o", tmp_path / "out.csv")
    line = assert_error(result, f"'{option}'", words)
    assert not (tmp_path / "out.csv").exists(), line


@pytest.mark.parametrize("args, option, words", [
    (["step", "--x", "1,2,3", "--layer", "all"], "--layer", "several cells are traced together by `lstmtrace run`"),
    (["step", "--x", "1,2,3", "--direction", "both"], "--direction", "several cells"),
    (["step", "--x", "1,2,3"], "--direction", "is bidirectional: choose forward or reverse"),
    (["params"], "--direction", "is bidirectional"),
    (["run", "--xs", "1,2,3", "--layer", "all", "--direction", "both", "--prefix", "lstm"], "--direction",
     "layer 0 of"),
])
def test_one_cell_commands_ask_which_cell(args, option, words):
    weights = FIXTURES / ("torch_model_3layer_state.npz" if "--prefix" in args else "torch_model_bilstm_state.npz")
    assert_error(invoke(*args, "--weights", weights), f"'{option}'", words)
