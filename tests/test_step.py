"""The step computes the LSTM equations, and the trace holds exactly what was computed."""
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import lstmtrace
from lstmtrace import NonFiniteError, Parameters, sigmoid
from lstmtrace.cell import forward
from lstmtrace.rows import STAGES


def test_seed_question_forget_gate(seed_question):
    """The learner's numbers: with identity weights f = σ(x + h_prev), not 0 or 1."""
    params, v = seed_question
    trace = lstmtrace.step(params, v["x"], v["h_prev"], v["c_prev"])
    np.testing.assert_allclose(trace.value("forget", "act"),
                               [0.47502081, 0.68997448, 0.549834, 0.4875026, 0.66818777], atol=5e-9)


@pytest.mark.parametrize("sets, expected", [
    ({}, [0.5, 0.5, 0.5]),
    ({"W": "identity", "U": "identity"}, [0.9999546, 0.5, 0.9999546]),
    ({"W": "identity", "U": "zeros"}, [0.9999546, 0.5, 0.5]),
], ids=["zeros", "W=U=identity", "U=zeros"])
def test_seed_notebook_forget_times_c_prev(notebook_inputs, sets, expected):
    params = Parameters.zeros(3, 3)
    for param, spec in sets.items():
        params.set("forget", param, spec)
    v = notebook_inputs
    trace = lstmtrace.step(params, v["x"], v["h_prev"], v["c_prev"])
    np.testing.assert_allclose(trace.value("cell", "forget*c_prev"), expected, atol=5e-8)


def test_sigmoid_is_stable_at_extremes():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = sigmoid(np.array([-1000.0, -745.0, -40.0, 0.0, 40.0, 1000.0]))
    assert s[0] == 0.0 and s[-1] == 1.0 and s[3] == 0.5
    assert not np.isnan(s).any()


def test_a_step_with_huge_preacts_saturates_without_warnings():
    params = Parameters.identity(2, 2).set("forget", "b", "1000,-1000")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        trace = lstmtrace.step(params, [0.0, 0.0])
    assert list(trace.value("forget", "act")) == [1.0, 0.0]


@given(st.floats(-700, 700))
def test_sigmoid_agrees_with_the_textbook_formula(z):
    assert sigmoid(np.array(z)) == pytest.approx(1 / (1 + np.exp(-z)), rel=1e-14, abs=1e-300)


def test_defaults_are_zero_states():
    params = Parameters.random(3, 2, seed=4)
    trace = lstmtrace.step(params, [1.0, 2.0, 3.0])
    assert not trace.value("given", "h_prev").any() and not trace.value("given", "c_prev").any()
    np.testing.assert_array_equal(trace.value("forget", "Uh"), [0.0, 0.0])


def test_rectangular_identity_when_e_differs_from_h():
    trace = lstmtrace.step(Parameters.identity(3, 2), [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(trace.value("input", "Wx"), [1.0, 2.0])  # np.eye(2, 3) @ x


def test_the_trace_holds_exactly_what_the_equations_computed(random_params):
    x, h, c = np.array([0.3, -1.2, 2.0]), np.array([0.1, 0.2, -0.3, 0.4]), np.array([1.0, -1, 0.5, 2])
    expected = forward(random_params, x, h, c)
    trace = lstmtrace.step(random_params, x, h, c)
    for gate, quantity in STAGES:
        np.testing.assert_array_equal(trace.value(gate, quantity), expected[gate, quantity])


def test_the_equations_written_out_independently(random_params):
    """Each quantity against a direct numpy transcription of PyTorch's documented formulas."""
    p, x = random_params, np.array([0.3, -1.2, 2.0])
    h, c = np.array([0.1, 0.2, -0.3, 0.4]), np.array([1.0, -1.0, 0.5, 2.0])
    trace = lstmtrace.step(p, x, h, c)
    logistic = lambda z: 1 / (1 + np.exp(-z))
    act = {}
    for gate, squash in (("forget", logistic), ("input", logistic), ("candidate", np.tanh),
                         ("output", logistic)):
        act[gate] = squash(p[gate].W @ x + p[gate].U @ h + p[gate].b)
        np.testing.assert_allclose(trace.value(gate, "act"), act[gate], rtol=1e-14)
    c_new = act["forget"] * c + act["input"] * act["candidate"]
    np.testing.assert_allclose(trace.value("cell", "c"), c_new, rtol=1e-14)
    np.testing.assert_allclose(trace.value("hidden", "h"), act["output"] * np.tanh(c_new), rtol=1e-14)


def test_overflow_names_the_first_stage_that_broke():
    with pytest.raises(NonFiniteError) as info:
        lstmtrace.step(Parameters.ones(2, 2), [1e308, 1e308])
    assert (info.value.gate, info.value.quantity, info.value.unit, info.value.step) == ("forget", "Wx", 0, 1)
    assert "forget.Wx" in str(info.value) and "unit 0" in str(info.value)


@pytest.mark.parametrize("kwargs, message", [
    ({"x": [1.0, 2.0]}, "x has 2 values but the weights have input size E = 3"),
    ({"x": [1.0, 2.0, 3.0], "h_prev": [1.0]}, "h_prev has 1 values but the weights have hidden size H = 2"),
    ({"x": [1.0, np.nan, 3.0]}, "x[1] is nan"),
    ({"x": [1.0, 2.0, 3.0], "c_prev": [np.inf, 0]}, "c_prev[0] is inf"),
    ({"x": [[1.0, 2.0, 3.0]]}, "x must be a vector"),
])
def test_bad_inputs_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        lstmtrace.step(Parameters.zeros(3, 2), **kwargs)


def test_traces_hidden_size_4096():
    """Whole-array code: a wide layer traces like a small one (not timed)."""
    params = Parameters.random(3, 4096, seed=0)
    trace = lstmtrace.step(params, [0.5, -0.5, 1.0], h_prev=np.full(4096, 0.01))
    assert len(trace.frame) == 3 + 27 * 4096
    assert trace.value("hidden", "h").shape == (4096,)


finite = st.floats(-50, 50, allow_nan=False, allow_infinity=False)


@given(x=arrays(np.float64, 3, elements=finite), h=arrays(np.float64, 2, elements=finite),
       c=arrays(np.float64, 2, elements=finite), seed=st.integers(0, 2**16),
       scale=st.floats(0.01, 100))
def test_cell_and_hidden_identities_hold_for_any_finite_input(x, h, c, seed, scale):
    params = Parameters.random(3, 2, seed=seed)
    for gate in params.gates:
        params.set(gate, "W", params[gate].W * scale)
    trace = lstmtrace.step(params, x, h, c)
    v = {stage: trace.value(*stage) for stage in STAGES}
    assert np.array_equal(v["cell", "c"], v["cell", "forget*c_prev"] + v["cell", "input*candidate"])
    assert np.array_equal(v["cell", "forget*c_prev"], v["forget", "act"] * v["given", "c_prev"])
    assert np.array_equal(v["cell", "input*candidate"], v["input", "act"] * v["candidate", "act"])
    assert np.array_equal(v["hidden", "h"], v["output", "act"] * np.tanh(v["cell", "c"]))
    for gate in ("forget", "input", "candidate", "output"):
        assert np.array_equal(v[gate, "preact"], v[gate, "Wx"] + v[gate, "Uh"] + v[gate, "bias"])
        low = -1 if gate == "candidate" else 0
        assert ((low <= v[gate, "act"]) & (v[gate, "act"] <= 1)).all()


@given(x=arrays(np.float64, 2, elements=st.floats(allow_nan=False, allow_infinity=False)))
def test_any_finite_input_either_traces_finite_or_names_the_overflow(x):
    try:
        trace = lstmtrace.step(Parameters.ones(2, 2), x)
    except NonFiniteError as e:
        assert e.gate in ("forget", "input", "candidate", "output", "cell", "hidden")
    else:
        assert np.isfinite(trace.frame["value"]).all()
