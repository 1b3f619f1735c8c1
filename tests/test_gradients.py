"""The backward pass: every gradient against PyTorch autograd (1e-10) and central finite differences."""
import importlib.util
import io
import pathlib

import numpy as np
import pytest

from conftest import central_difference
import lstmtrace
from lstmtrace import Parameters, backward, read_trace
from lstmtrace.params import GATES

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
CASES = sorted(FIXTURES.glob("grad_*.npz"))
TOLERANCE = 1e-10
# (fixture key, (gate, quantity) in the trace); per-gate keys hold the four gates side by side
PER_STEP = [("grad_fc", ("cell", "grad:forget*c_prev")), ("grad_ig", ("cell", "grad:input*candidate")),
            ("grad_c", ("cell", "grad:c")), ("grad_tanh_c", ("hidden", "grad:tanh(c)")),
            ("grad_h", ("hidden", "grad:h")), ("grad_x", ("given", "grad:x"))]


def _traced_backward(data, path):
    params = Parameters.load(path)
    trace = lstmtrace.run(params, data["xs"], data["h0"], data["c0"])
    loss = str(data["loss"])
    if loss == "upstream":
        return backward(trace, dh=data["dh"], dc=data["dc"])
    return backward(trace, loss=loss, target=data["target"] if loss == "mse" else None,
                    loss_on=str(data["loss_on"]))


def test_the_fixtures_cover_each_loss_for_a_step_and_a_sequence():
    names = {p.stem for p in CASES}
    assert {"grad_step_sum", "grad_step_mse", "grad_step_upstream", "grad_seq_sum", "grad_seq_mse",
            "grad_seq_mse_all", "grad_seq_upstream"} <= names


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_every_gradient_matches_autograd(path):
    with np.load(path, allow_pickle=False) as f:
        data = dict(f)
    trace = _traced_backward(data, path)
    T, H = data["grad_h"].shape
    assert trace.steps == T and (T == 1 or T == 15) and data["xs"].shape[1] != H  # E ≠ H
    block = lambda gate, quantity: trace.block(gate, quantity)  # steps × units
    close = lambda actual, expected, what: np.testing.assert_allclose(
        actual, expected, rtol=0, atol=TOLERANCE, err_msg=what)
    for key, (gate, quantity) in PER_STEP:
        close(block(gate, quantity), data[key], quantity)
    for k, gate in enumerate(GATES):
        rows = slice(k * H, (k + 1) * H)
        for quantity in ("grad:preact", "grad:Wx", "grad:Uh", "grad:bias"):
            close(block(gate, quantity), data["grad_preact"][:, rows], f"{gate}.{quantity}")
        close(block(gate, "grad:act"), data["grad_act"][:, rows], f"{gate}.grad:act")
        E = data["xs"].shape[1]
        close(block(gate, "grad:W").sum(axis=0).reshape(H, E), data["grad_W"][rows], f"{gate}.grad:W")
        close(block(gate, "grad:U").sum(axis=0).reshape(H, H), data["grad_U"][rows], f"{gate}.grad:U")
        close(block(gate, "grad:b").sum(axis=0), data["grad_b"][rows], f"{gate}.grad:b")
    close(block("given", "grad:h_prev")[0], data["grad_h0"], "grad:h_prev at step 1")
    close(block("given", "grad:c_prev")[0], data["grad_c0"], "grad:c_prev at step 1")


def test_live_autograd_on_fresh_weights(tmp_path):
    pytest.importorskip("torch")
    spec = importlib.util.spec_from_file_location("make_grad", FIXTURES / "make_grad_fixtures.py")
    make_grad = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_grad)
    for loss, loss_on in (("sum", "last"), ("mse", "all"), ("upstream", "last")):
        data = make_grad.make(4, 3, 6, loss, loss_on, seed=99)
        path = tmp_path / f"{loss}_{loss_on}.npz"
        np.savez(path, **data)
        trace = _traced_backward(data, path)
        np.testing.assert_allclose(trace.block("hidden", "grad:h"), data["grad_h"], rtol=0, atol=TOLERANCE)
        np.testing.assert_allclose(trace.block("given", "grad:x"), data["grad_x"], rtol=0, atol=TOLERANCE)


# -- finite differences, independent of torch ------------------------------------------------

def _loss(params, xs, h0, c0, loss, target, loss_on):
    # a copy: a trace makes the weights it holds read-only, and the differences below edit them in place
    h = lstmtrace.run(params.copy(), xs, h0, c0).block("hidden", "h")
    h = h if loss_on == "all" else h[-1:]
    return h.sum() if loss == "sum" else 0.5 * ((h - target) ** 2).sum()


@pytest.mark.parametrize("loss, loss_on", [("sum", "last"), ("mse", "last"), ("mse", "all")])
def test_every_parameter_and_input_against_central_differences(loss, loss_on):
    E, H, T, eps = 2, 3, 4, 1e-6
    rng = np.random.default_rng(0)
    params = Parameters.random(E, H, seed=5).set("input", "b", rng.uniform(-1, 1, H))
    xs, h0, c0, target = rng.normal(size=(T, E)), rng.normal(size=H), rng.normal(size=H), rng.normal(size=H)
    trace = backward(lstmtrace.run(params, xs, h0, c0), loss=loss, target=target, loss_on=loss_on)
    params = params.copy()  # writable again, to nudge one weight at a time

    def numeric(array, index, evaluate):
        return central_difference(array, index, evaluate, eps)

    evaluate = lambda: _loss(params, xs, h0, c0, loss, target, loss_on)
    for k, gate in enumerate(GATES):
        for name, stacked in (("W", params.W), ("U", params.U), ("b", params.b)):
            analytic = trace.block(gate, f"grad:{name}").sum(axis=0).reshape(getattr(params[gate], name).shape)
            for index in np.ndindex(analytic.shape):
                row = (k * H + index[0],) + index[1:]
                assert numeric(stacked, row, evaluate) == pytest.approx(analytic[index], rel=1e-6, abs=1e-8), \
                    f"{gate}.{name}{list(index)}"
    for index in np.ndindex(xs.shape):
        assert numeric(xs, index, evaluate) == pytest.approx(trace.block("given", "grad:x")[index], rel=1e-6, abs=1e-8)
    for name, vector, quantity in (("h0", h0, "grad:h_prev"), ("c0", c0, "grad:c_prev")):
        for u in range(H):
            assert numeric(vector, u, evaluate) == pytest.approx(trace.block("given", quantity)[0, u],
                                                                 rel=1e-6, abs=1e-8), f"{name}[{u}]"


# -- the format and the API -----------------------------------------------------------------

def test_forward_rows_are_unchanged_and_gradients_follow(random_params):
    forward = lstmtrace.run(random_params, np.ones((2, 3)))
    with_grads = backward(forward)
    n = len(forward.frame)
    assert with_grads.frame.iloc[:n].equals(forward.frame)
    assert with_grads.frame["quantity"].iloc[n] == "grad:x" and with_grads.frame["step"].iloc[n] == 1
    E, H = 3, 4
    # the default (param_grads="total"): dL/dW, dU, db once, summed, at step 0; "per-step": in every step
    assert len(with_grads.frame) == 2 * n + 4 * H * (E + H + 1)
    assert (with_grads.frame["step"].iloc[2 * n:] == 0).all()
    assert len(backward(forward, param_grads="per-step").frame) == 2 * n + 2 * 4 * H * (E + H + 1)
    assert len(backward(forward, param_grads="none").frame) == 2 * n


def test_parameter_gradient_units_are_row_major(random_params):
    trace = backward(lstmtrace.step(random_params, [0.5, -1.0, 2.0]))
    dW = trace.value("output", "grad:W").reshape(4, 3)  # H × E
    np.testing.assert_array_equal(dW, np.outer(trace.value("output", "grad:preact"), [0.5, -1.0, 2.0]))
    rows = trace.frame[(trace.frame.gate == "output") & (trace.frame.quantity == "grad:W")]
    assert list(rows["unit"]) == list(range(12))


def test_gradients_round_trip_through_csv(random_params):
    trace = backward(lstmtrace.run(random_params, np.ones((3, 3))), loss="mse", target=[0, 1, 0, 1])
    back = read_trace(io.StringIO(trace.to_csv()))
    assert back.has_gradients and back.frame.equals(trace.frame)
    assert read_trace(io.StringIO(trace.to_csv(layout="wide"))).frame.equals(trace.frame)


def test_a_partial_set_of_gradient_rows_is_refused(random_params):
    trace = backward(lstmtrace.step(random_params, [1, 2, 3]))
    broken = trace.frame[trace.frame["quantity"] != "grad:U"]
    with pytest.raises(ValueError, match="rows of forget.grad:U, expected 16"):
        read_trace(io.StringIO(broken.to_csv(index=False)))


@pytest.mark.parametrize("kwargs, message", [
    ({"loss": "mse"}, "the mse loss needs a target"),
    ({"loss": "mse", "target": [1, 2]}, "the target must be 4 finite numbers"),
    ({"loss": "mse", "target": [1, 2, np.nan, 4]}, "finite"),
    ({"loss": "hinge"}, "unknown loss 'hinge'"),
    ({"loss_on": "first"}, "loss_on must be 'last' or 'all'"),
    ({"dh": [1, 2]}, "dh must have 4 values"),
    ({"dh": [1, 1, 1, 1], "dc": [np.inf, 0, 0, 0]}, "dc has inf"),
])
def test_bad_losses_are_named(random_params, kwargs, message):
    with pytest.raises(ValueError, match=message):
        backward(lstmtrace.step(random_params, [1, 2, 3]), **kwargs)


def test_a_trace_read_from_a_file_has_no_weights_to_go_back_through(random_params):
    saved = read_trace(io.StringIO(lstmtrace.step(random_params, [1, 2, 3]).to_csv()))
    with pytest.raises(ValueError, match="needs the weights"):
        backward(saved)


def test_diff_of_traces_with_gradients(random_params):
    a = backward(lstmtrace.step(random_params, [1, 2, 3]))
    b = backward(lstmtrace.step(random_params, [1, 2, 3]), loss="mse", target=[0, 0, 0, 0])
    summary = lstmtrace.diff(a, b)
    assert set(summary["quantity"]) <= {q for q in summary["quantity"] if q.startswith("grad:")}
    assert summary.iloc[0]["quantity"] == "grad:x"  # forward rows agree; the gradients differ
    assert lstmtrace.diff(a, a).empty
    forward_only = lstmtrace.diff(a, lstmtrace.step(random_params, [1, 2, 3]))
    assert forward_only.empty and forward_only.attrs["skipped_a"] == ["gradients"]
