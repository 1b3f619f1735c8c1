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

from conftest import assert_ok, invoke
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
