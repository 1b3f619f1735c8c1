"""The forward pass matches torch.nn.LSTMCell in float64 to 1e-12.

The committed fixtures (tests/fixtures/make_torch_fixtures.py) need no torch;
the live tests run where torch is importable and draw fresh weights each time.
"""
import pathlib

import numpy as np
import pytest

import lstmtrace
from lstmtrace import Parameters

FIXTURES = sorted((pathlib.Path(__file__).parent / "fixtures").glob("lstmcell_*.npz"))
TOLERANCE = 1e-12


def test_the_fixtures_are_there():
    assert len(FIXTURES) == 2


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_step_matches_saved_torch_lstmcell(path):
    data = np.load(path, allow_pickle=False)
    params = Parameters.load(path)  # the fixture is itself a weights file, saved as the README says
    trace = lstmtrace.step(params, data["x"], data["h_prev"], data["c_prev"])
    np.testing.assert_allclose(trace.value("hidden", "h"), data["h"], rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(trace.value("cell", "c"), data["c"], rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_fixture_sizes_differ(path):
    """E ≠ H in every fixture, so a transposed W or U cannot pass."""
    data = np.load(path, allow_pickle=False)
    assert data["weight_ih"].shape[1] != data["weight_hh"].shape[1]


def _torch():
    return pytest.importorskip("torch")


@pytest.mark.parametrize("E, H, seed", [(3, 5, 10), (8, 2, 11), (16, 32, 12)])
def test_step_matches_live_torch(E, H, seed):
    torch = _torch()
    torch.manual_seed(seed)
    cell = torch.nn.LSTMCell(E, H).double()
    with torch.no_grad():
        for p in cell.parameters():
            p.uniform_(-1.5, 1.5)
    x, h_prev, c_prev = (torch.randn(1, n, dtype=torch.float64) * 2 for n in (E, H, H))
    with torch.no_grad():
        h, c = cell(x, (h_prev, c_prev))
    params = Parameters.from_state_dict({k: v.numpy() for k, v in cell.state_dict().items()})
    trace = lstmtrace.step(params, x[0].numpy(), h_prev[0].numpy(), c_prev[0].numpy())
    np.testing.assert_allclose(trace.value("hidden", "h"), h[0].numpy(), rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(trace.value("cell", "c"), c[0].numpy(), rtol=0, atol=TOLERANCE)

    # each gate, as PyTorch's own ops compute it (LSTMCell never shows them)
    sd = cell.state_dict()
    preacts = x @ sd["weight_ih"].T + sd["bias_ih"] + h_prev @ sd["weight_hh"].T + sd["bias_hh"]
    i, f, g, o = preacts[0].chunk(4)
    for gate, expected in (("input", torch.sigmoid(i)), ("forget", torch.sigmoid(f)),
                           ("candidate", torch.tanh(g)), ("output", torch.sigmoid(o))):
        np.testing.assert_allclose(trace.value(gate, "act"), expected.numpy(), rtol=0, atol=TOLERANCE)


def test_saved_weights_load_into_torch(tmp_path):
    """Parameters.save writes a state_dict that PyTorch itself loads and agrees with."""
    torch = _torch()
    params = Parameters.random(4, 3, seed=5).set("output", "b", "0.1,-0.2,0.3")
    params.save(tmp_path / "w.npz")
    cell = torch.nn.LSTMCell(4, 3).double()
    with np.load(tmp_path / "w.npz", allow_pickle=False) as f:
        cell.load_state_dict({k: torch.from_numpy(f[k]) for k in f.files})
    x = np.array([0.5, -1.0, 2.0, 0.25])
    with torch.no_grad():
        h, c = cell(torch.from_numpy(x)[None], None)
    trace = lstmtrace.step(params, x)
    np.testing.assert_allclose(trace.value("hidden", "h"), h[0].numpy(), rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(trace.value("cell", "c"), c[0].numpy(), rtol=0, atol=TOLERANCE)


# -- torch.nn.LSTM: two layers over a sequence -------------------------------------------------

LSTM_FIXTURE = pathlib.Path(__file__).parent / "fixtures" / "torch_lstm_2layer.npz"
SEQUENCE_TOLERANCE = 1e-10


def _trace_layers(path, xs, h0, c0, layers=2, **load):
    """Trace each layer from its own weights, the layer below's h as its input."""
    traces = []
    for k in range(layers):
        params = Parameters.load(path, layer=k, **load)
        traces.append(lstmtrace.run(params, xs, h0[k], c0[k]))
        xs = traces[-1].value("hidden", "h")
    return traces


def test_two_layer_nn_lstm_matches_every_h_and_c():
    data = np.load(LSTM_FIXTURE, allow_pickle=False)
    assert data["xs"].shape == (20, 3) and data["h"].shape == (2, 20, 5)  # T = 20, E ≠ H
    traces = _trace_layers(LSTM_FIXTURE, data["xs"], data["h0"], data["c0"], prefix="encoder.lstm")
    for k, trace in enumerate(traces):
        np.testing.assert_allclose(trace.value("hidden", "h"), data["h"][k], rtol=0, atol=SEQUENCE_TOLERANCE)
        np.testing.assert_allclose(trace.value("cell", "c"), data["c"][k], rtol=0, atol=SEQUENCE_TOLERANCE)


def test_two_layer_nn_lstm_from_the_pt_file():
    _torch()
    data = np.load(LSTM_FIXTURE, allow_pickle=False)
    pt = LSTM_FIXTURE.with_suffix(".pt")
    traces = _trace_layers(pt, data["xs"], data["h0"], data["c0"], prefix="encoder.lstm.")
    np.testing.assert_allclose(traces[1].value("hidden", "h"), data["h"][1], rtol=0, atol=SEQUENCE_TOLERANCE)


def test_live_nn_lstm_matches_a_fresh_model():
    torch = _torch()
    torch.manual_seed(21)
    lstm = torch.nn.LSTM(4, 6, num_layers=2).double()
    xs = torch.randn(15, 1, 4, dtype=torch.float64)
    with torch.no_grad():
        output, (h_n, c_n) = lstm(xs)
    state = {k: v.numpy() for k, v in lstm.state_dict().items()}
    inputs = xs[:, 0].numpy()
    for k in range(2):
        params = Parameters.from_state_dict({name: state[f"{name}_l{k}"] for name in
                                             ("weight_ih", "weight_hh", "bias_ih", "bias_hh")})
        trace = lstmtrace.run(params, inputs)
        inputs = trace.value("hidden", "h")
        np.testing.assert_allclose(inputs[-1], h_n[k, 0].numpy(), rtol=0, atol=SEQUENCE_TOLERANCE)
        np.testing.assert_allclose(trace.value("cell", "c")[-1], c_n[k, 0].numpy(), rtol=0,
                                   atol=SEQUENCE_TOLERANCE)
    np.testing.assert_allclose(inputs, output[:, 0].numpy(), rtol=0, atol=SEQUENCE_TOLERANCE)
