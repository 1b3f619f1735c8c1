"""lstmtrace.notebook: the seed notebook runs as written, on lstmtrace's own numbers."""
import ast
import inspect
import pathlib
import re

import numpy as np
import pytest

import lstmtrace
import lstmtrace.notebook as lstm
from lstmtrace.notebook import ATTRIBUTES
from lstmtrace.params import GATES

CELLS = pathlib.Path(__file__).parent / "fixtures" / "seed_notebook_cells.py"

X, H_PREV, C_PREV = np.array([0.3, -1.2, 2.0]), np.array([0.5, -0.25, 0.1, 1.5]), np.array([1.0, -2.0, 0.5, 0.25])


def run_cells(path):
    """Run a file of ``# In [N]:`` cells in one namespace, as Jupyter does; {N: the value the cell shows}."""
    text = path.read_text(encoding="utf-8")
    parts = re.split(r"^# In \[(\d+)\]:\n", text, flags=re.M)[1:]
    namespace, shown = {"__name__": "__main__"}, {}
    for number, source in zip(parts[::2], parts[1::2]):
        body = ast.parse(source)
        last = body.body.pop() if body.body and isinstance(body.body[-1], ast.Expr) else None
        exec(compile(body, f"In [{number}]", "exec"), namespace)
        if last is not None:
            shown[int(number)] = eval(compile(ast.Expression(last.value), f"In [{number}]", "eval"), namespace)
    return shown


# -- (1) the seed notebook, as written --------------------------------------------------


def test_the_seed_notebooks_cells_run_and_show_its_outputs():
    shown = run_cells(CELLS)
    assert sorted(shown) == [21, 22, 24]
    expected = {21: [0.5, 0.5, 0.5], 22: [0.9999546, 0.5, 0.9999546], 24: [0.9999546, 0.5, 0.5]}
    for cell, values in expected.items():
        np.testing.assert_almost_equal(shown[cell], values, decimal=7)
    # and shown as the notebook printed them
    assert repr(shown[21]) == "array([0.5, 0.5, 0.5])"
    assert repr(shown[22]) == "array([0.9999546, 0.5      , 0.9999546])"
    assert repr(shown[24]) == "array([0.9999546, 0.5      , 0.5      ])"


def test_the_cells_are_the_notebooks_but_for_the_import():
    source = CELLS.read_text(encoding="utf-8")
    assert "import lstmtrace.notebook as lstm\n" in source
    assert not re.search(r"^import lstm$", source, re.M)
    assert not re.search(r"^%", source, re.M)  # the magics are comments


def test_every_attribute_reads_as_zeros_from_the_start():
    """The notebook's own Parameters reads hidden_forget_bias before anything sets it."""
    p = lstm.Parameters(event_size=2, hidden_size=3)
    for name in ATTRIBUTES:
        value = getattr(p, name)
        shape = (3,) if name.endswith("_bias") else (3, 2) if name.startswith("event_") else (3, 3)
        assert value.shape == shape and value.dtype == np.float64 and not value.any(), name
    assert len(ATTRIBUTES) == 16 and set(ATTRIBUTES) <= set(dir(p))


# -- (2) each function is a value of the core's trace, exactly ------------------------


def _functions(event, hidden_state, prev_cell_state, parameters):
    kw = dict(event=event, hidden_state=hidden_state, parameters=parameters)
    h, c = lstm.lstm_step(prev_cell_state=prev_cell_state, **kw)
    return {
        ("cell", "forget*c_prev"): lstm.forget_gate(prev_cell_state=prev_cell_state, **kw),
        ("input", "act"): lstm.input_gate(**kw),
        ("candidate", "act"): lstm.candidate(**kw),
        ("output", "act"): lstm.output_gate(**kw),
        ("cell", "c"): lstm.cell_state(prev_cell_state=prev_cell_state, **kw),
        ("hidden", "h"): lstm.hidden_state(prev_cell_state=prev_cell_state, **kw),
        ("lstm_step", "h"): h,
        ("lstm_step", "c"): c,
    }


@pytest.mark.parametrize("as_notebook", [True, False], ids=["notebook-parameters", "core-parameters"])
def test_every_function_is_the_core_traces_value(random_params, as_notebook):
    parameters = lstm.Parameters.from_parameters(random_params) if as_notebook else random_params
    core = lstmtrace.step(random_params, X, H_PREV, C_PREV)
    for (gate, quantity), value in _functions(X, H_PREV, C_PREV, parameters).items():
        gate = {"lstm_step": "hidden" if quantity == "h" else "cell"}.get(gate, gate)
        assert np.array_equal(value, core.value(gate, quantity)), (gate, quantity)
    full = lstm.trace(X, H_PREV, C_PREV, parameters)
    assert isinstance(full, lstmtrace.Trace) and full.frame.equals(core.frame)


def test_the_gates_without_prev_cell_state_trace_it_as_zeros(random_params):
    assert lstm.trace(X, H_PREV, parameters=random_params).frame.equals(
        lstmtrace.step(random_params, X, H_PREV).frame)


def test_integer_inputs_and_weights_work():
    p = lstm.Parameters(event_size=3, hidden_size=3)
    p.event_forget_weights = np.eye(3, dtype=int)
    p.event_forget_bias = 0
    f = lstm.forget_gate(event=np.array([10, 0, 0]), hidden_state=[0, 0, 10], prev_cell_state=[1, 1, 1],
                         parameters=p)
    assert f.dtype == np.float64
    np.testing.assert_almost_equal(f, [0.9999546, 0.5, 0.5], decimal=7)


def test_the_module_calls_the_core_and_has_no_math_of_its_own():
    """No σ, tanh, exp or matrix product in lstmtrace/notebook.py: every number comes from lstmtrace.step."""
    tree = ast.parse(inspect.getsource(lstm))
    for node in ast.walk(tree):
        assert not isinstance(node, ast.MatMult)
        if isinstance(node, ast.Call):
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            assert name not in ("exp", "tanh", "sigmoid", "expit", "dot", "matmul"), name


@pytest.mark.parametrize("name", lstm.__all__)
def test_every_public_function_has_an_example_and_says_how_to_get_the_trace(name):
    value = getattr(lstm, name)
    assert value.__doc__ and ">>>" in value.__doc__
    if name not in ("Parameters", "trace"):
        assert "trace(event, hidden_state, prev_cell_state, parameters)" in value.__doc__


def test_input_errors_use_the_notebooks_names():
    p = lstm.Parameters(event_size=3, hidden_size=2)
    with pytest.raises(ValueError, match=r"^event has 2 values"):
        lstm.input_gate(event=[1, 2], hidden_state=[0, 0], parameters=p)
    with pytest.raises(ValueError, match=r"^prev_cell_state\[1\] is nan"):
        lstm.cell_state(event=[1, 2, 3], hidden_state=[0, 0], prev_cell_state=[0, np.nan], parameters=p)
    with pytest.raises(TypeError, match="parameters must be"):
        lstm.output_gate(event=[1, 2, 3], hidden_state=[0, 0], parameters={"event_forget_bias": 0})


# -- (3) assignments are checked ----------------------------------------------------------


@pytest.mark.parametrize("name, value, expected", [
    ("event_forget_weights", np.eye(3), r"event_forget_weights has shape \(3, 3\); expected "
                                        r"\(hidden_size, event_size\) = \(3, 2\)"),
    ("hidden_input_weights", np.eye(3, 2), r"hidden_input_weights has shape \(3, 2\); expected "
                                           r"\(hidden_size, hidden_size\) = \(3, 3\)"),
    ("event_candidate_bias", [1, 2], r"event_candidate_bias has shape \(2,\); expected a number or "
                                     r"\(hidden_size,\) = \(3,\)"),
    ("hidden_output_bias", np.zeros((3, 1)), r"hidden_output_bias has shape \(3, 1\)"),
    ("event_output_weights", np.full((3, 2), np.nan), r"event_output_weights has nan at \[0, 0\]; "
                                                      "lstmtrace needs finite numbers"),
    ("hidden_forget_bias", [0, np.inf, 0], r"hidden_forget_bias has inf at \[1\]"),
    ("event_forget_bias", -np.inf, r"event_forget_bias has -inf at \[0\]"),
    ("event_forget_bias", "0.5", r"event_forget_bias must hold numbers, not the text '0.5'"),
    ("hidden_forget_weights", [[1, "a"]], r"hidden_forget_weights must hold numbers"),
])
def test_a_bad_assignment_names_the_attribute_and_changes_nothing(name, value, expected):
    p = lstm.Parameters(event_size=2, hidden_size=3)
    with pytest.raises(ValueError, match=expected):
        setattr(p, name, value)
    assert p == lstm.Parameters(event_size=2, hidden_size=3)


def test_a_number_fills_the_weights_or_bias():
    p = lstm.Parameters(event_size=2, hidden_size=3)
    p.event_input_weights, p.hidden_input_bias = 0.5, 2
    assert np.array_equal(p.event_input_weights, np.full((3, 2), 0.5))
    assert np.array_equal(p.hidden_input_bias, [2.0, 2.0, 2.0])


def test_an_assignment_is_copied_and_an_in_place_change_is_checked_when_used():
    p, weights = lstm.Parameters(event_size=2, hidden_size=2), np.eye(2)
    p.event_forget_weights = weights
    weights[0, 0] = 5  # the caller's array is theirs
    assert p.event_forget_weights[0, 0] == 1
    p.event_forget_weights[1, 1] = 3  # the attribute's array is the weights
    assert p.to_parameters().forget.W[1, 1] == 3
    p.hidden_forget_bias[0] = np.nan
    with pytest.raises(ValueError, match=r"hidden_forget_bias has nan at \[0\]"):
        lstm.forget_gate(event=[1, 1], hidden_state=[0, 0], prev_cell_state=[1, 1], parameters=p)


def test_a_misspelt_or_fixed_attribute_is_refused():
    p = lstm.Parameters(event_size=2, hidden_size=2)
    with pytest.raises(AttributeError, match="did you mean event_forget_weights"):
        p.event_forgett_weights = np.eye(2)
    with pytest.raises(AttributeError, match="hidden_size is fixed"):
        p.hidden_size = 3
    with pytest.raises(AttributeError, match="no attribute 'forget_weights'"):
        _ = p.forget_weights
    assert (p.event_size, p.hidden_size) == (2, 2)


def test_sizes_are_checked():
    with pytest.raises(ValueError):
        lstm.Parameters(event_size=0, hidden_size=3)


# -- (4) to and from lstmtrace.Parameters ------------------------------------------------


def test_round_trip_from_and_to_lstmtrace_parameters(random_params):
    notebook = lstm.Parameters.from_parameters(random_params)
    assert (notebook.event_size, notebook.hidden_size) == (3, 4)
    assert notebook.to_parameters() == random_params
    assert lstm.Parameters.from_parameters(notebook.to_parameters()) == notebook
    for gate in GATES:
        W, U, b = random_params[gate]
        assert np.array_equal(getattr(notebook, f"event_{gate}_weights"), W)
        assert np.array_equal(getattr(notebook, f"hidden_{gate}_weights"), U)
        assert np.array_equal(getattr(notebook, f"event_{gate}_bias"), b)
        assert not getattr(notebook, f"hidden_{gate}_bias").any()


def test_round_trip_to_and_from_keeps_the_cell_and_moves_the_bias_to_the_event_side():
    rng = np.random.default_rng(5)
    notebook = lstm.Parameters(event_size=3, hidden_size=2)
    for name in ATTRIBUTES:
        setattr(notebook, name, rng.uniform(-1, 1, getattr(notebook, name).shape))
    back = lstm.Parameters.from_parameters(notebook.to_parameters())
    assert back.to_parameters() == notebook.to_parameters()
    for gate in GATES:
        for kind in ("event", "hidden"):
            assert np.array_equal(getattr(back, f"{kind}_{gate}_weights"), getattr(notebook, f"{kind}_{gate}_weights"))
        assert np.array_equal(getattr(back, f"event_{gate}_bias"),
                              getattr(notebook, f"event_{gate}_bias") + getattr(notebook, f"hidden_{gate}_bias"))


def test_the_stored_weights_are_not_shared_with_lstmtrace_parameters(random_params):
    notebook = lstm.Parameters.from_parameters(random_params)
    notebook.event_forget_weights[0, 0] += 1
    assert notebook.to_parameters() != random_params
    core = notebook.to_parameters()
    core.set("forget", "b", 7)
    assert np.array_equal(notebook.event_forget_bias, random_params.forget.b)


# -- (5) a gate's b is event bias + hidden bias, as PyTorch's bias_ih + bias_hh ---------


def test_each_gates_bias_is_the_sum_of_its_event_and_hidden_biases():
    p = lstm.Parameters(event_size=2, hidden_size=2)
    for k, gate in enumerate(GATES):
        setattr(p, f"event_{gate}_bias", [k, 0.5])
        setattr(p, f"hidden_{gate}_bias", 0.25)
    core = p.to_parameters()
    for k, gate in enumerate(GATES):
        assert np.array_equal(core[gate].b, [k + 0.25, 0.75])
        assert np.array_equal(lstm.trace([0, 0], [0, 0], None, p).value(gate, "bias"), [k + 0.25, 0.75])


def test_the_biases_are_torchs_bias_ih_and_bias_hh():
    torch = pytest.importorskip("torch")
    cell = torch.nn.LSTMCell(3, 4).double()
    state = {k: v.detach().numpy() for k, v in cell.state_dict().items()}
    p, H = lstm.Parameters(event_size=3, hidden_size=4), 4
    for k, gate in enumerate(("input", "forget", "candidate", "output")):  # torch's order
        rows = slice(k * H, (k + 1) * H)
        setattr(p, f"event_{gate}_weights", state["weight_ih"][rows])
        setattr(p, f"hidden_{gate}_weights", state["weight_hh"][rows])
        setattr(p, f"event_{gate}_bias", state["bias_ih"][rows])
        setattr(p, f"hidden_{gate}_bias", state["bias_hh"][rows])
    h, c = lstm.lstm_step(event=X, hidden_state=H_PREV, prev_cell_state=C_PREV, parameters=p)
    with torch.no_grad():
        th, tc = cell(torch.tensor(X)[None], (torch.tensor(H_PREV)[None], torch.tensor(C_PREV)[None]))
    np.testing.assert_allclose(h, th[0].numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(c, tc[0].numpy(), rtol=0, atol=1e-12)


def test_the_example_notebook_holds_the_seed_notebooks_cells():
    """examples/seed_notebook.ipynb (run by test_examples.py) shows the same cells, as written."""
    import json

    notebook = pathlib.Path(__file__).parent.parent / "examples" / "seed_notebook.ipynb"
    sources = ["".join(c["source"]).strip() for c in json.loads(notebook.read_text(encoding="utf-8"))["cells"]
               if c["cell_type"] == "code"]
    cells = re.split(r"^# In \[\d+\]:\n", CELLS.read_text(encoding="utf-8"), flags=re.M)[1:]
    for cell in (c.strip() for c in cells if not c.strip().startswith("#")):
        assert cell in sources, cell


@pytest.mark.parametrize("name", ["v", "cifg", "nfg", "noaf"])
def test_every_function_takes_a_variants_parameters(name):
    import lstmtrace

    params = lstmtrace.Parameters.random(3, 3, seed=2, variant=lstmtrace.Variant.preset(name))
    event, hidden, cell = np.array([1.0, -1.0, 0.5]), np.array([0.2, 0.0, -0.3]), np.array([0.5, 0.5, -1.0])
    t = lstmtrace.step(params, event, hidden, cell)
    assert np.array_equal(lstm.forget_gate(event, hidden, cell, params), t.value("cell", "forget*c_prev"))
    assert np.array_equal(lstm.hidden_state(event, hidden, cell, params), t.value("hidden", "h"))
    with pytest.raises(ValueError, match=f"a {name} cell's: pass the lstmtrace.Parameters itself"):
        lstm.Parameters.from_parameters(params)
