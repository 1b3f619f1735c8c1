"""A trace owns the weights it was computed from: changing the Parameters afterwards changes nothing it says."""
import numpy as np
import pytest

import lstmtrace
from lstmtrace import Parameters

pytest.importorskip("matplotlib")
from lstmtrace.draw import draw_cell

E, H = 3, 4
XS = np.random.default_rng(1).normal(size=(3, E))


def _everything(trace):
    """What a learner reads off a trace: its values, the backward pass, --expand, the diagram's labels."""
    import matplotlib.pyplot as plt

    fig = draw_cell(trace, step=trace.steps, unit=1)
    labels = [t.get_text() for t in fig.axes[0].texts]
    plt.close(fig)
    grads = lstmtrace.backward(trace)
    return (trace.frame["value"].to_numpy().copy(), grads.frame["value"].to_numpy().copy(),
            trace.to_text(expand=1), grads.to_text(expand=2), labels)


def _assert_same(a, b):
    for x, y in zip(a, b):
        if isinstance(x, np.ndarray):
            np.testing.assert_array_equal(x, y)
        else:
            assert x == y


def _set(p):
    p.set("forget", "W", "ones").set("candidate", "U", 0.5).set("output", "b", -2)


def _rebind(p):
    p.W, p.U, p.b = np.ones_like(p.W), np.ones_like(p.U), np.ones_like(p.b)


def _elements(p):
    p.W[0, 0] = 7.0


def _gate_view(p):
    p.forget.U[1, 1] = 7.0


def _gate_by_name(p):
    p["output"].b[:] = 7.0


def _gates_dict(p):
    p.gates["candidate"].W[0] += 1.0


def _copyto(p):
    np.copyto(p.U, 7.0)


CHANGES = [_set, _rebind]  # routes that work, and leave the trace's own weights alone
EDITS = [_elements, _gate_view, _gate_by_name, _gates_dict, _copyto]  # in place: refused, read-only


@pytest.fixture(params=["step", "run"])
def traced(request):
    params = Parameters.random(E, H, seed=2).set("input", "b", 0.3)
    if request.param == "step":
        return params, lstmtrace.step(params, XS[0], XS[1, :H - 1].tolist() + [0.2], np.full(H, 0.5))
    return params, lstmtrace.run(params, XS, c0=np.full(H, 0.5))


@pytest.mark.parametrize("change", CHANGES, ids=lambda f: f.__name__)
def test_changing_the_weights_afterwards_changes_nothing_the_trace_says(traced, change):
    params, trace = traced
    before = _everything(trace)
    change(params)
    assert params != trace.params  # the change happened, to params only
    _assert_same(_everything(trace), before)


@pytest.mark.parametrize("edit", EDITS, ids=lambda f: f.__name__)
def test_editing_traced_weights_in_place_is_refused_and_changes_nothing(traced, edit):
    params, trace = traced
    before = _everything(trace)
    with pytest.raises(ValueError, match="read-only"):
        edit(params)
    _assert_same(_everything(trace), before)


@pytest.mark.parametrize("edit", EDITS, ids=lambda f: f.__name__)
def test_a_copy_or_set_is_the_way_out(traced, edit):
    params, trace = traced
    before = _everything(trace)
    mine = params.copy()
    edit(mine)  # a copy's arrays are writable
    params.set("forget", "W", params.forget.W + 1)  # set copies the array the trace shares
    params.forget.W[0, 0] = 3.0  # ... which is then writable
    _assert_same(_everything(trace), before)


def test_the_traces_own_params_cannot_change_it(traced):
    _, trace = traced
    before = _everything(trace)
    trace.params.set("forget", "W", "ones")
    with pytest.raises(ValueError, match="read-only"):
        trace.params.W[0, 0] = 7.0
    _assert_same(_everything(trace), before)


def test_a_trace_is_computed_from_the_weights_as_they_were_when_it_started():
    params, copy = Parameters.random(E, H, seed=2), Parameters.random(E, H, seed=2)
    trace = lstmtrace.run(params, XS, progress=lambda n: params.set("forget", "b", 9.0))
    np.testing.assert_array_equal(trace.frame["value"], lstmtrace.run(copy, XS).frame["value"])


def test_snapshot_costs_no_copy():
    params = Parameters.random(E, H)
    kept = params.snapshot()
    assert kept.W is params.W and not params.W.flags.writeable
    params.set("output", "U", "zeros")
    assert kept.U is not params.U and kept == Parameters.random(E, H)
