"""Stacks: several cells traced together (lstmtrace.Stack), and cells that run in reverse.

The contract: a reverse cell is the forward cell run over the reversed sequence, its rows put
back in time order; a stack feeds each layer the h_t of the layer before (forward's, then
reverse's); a stack's file has the leading columns layer and direction and reads back
bit-identical; a one-cell trace keeps its five columns.  PyTorch parity is in test_models.py.
"""
import io

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import assert_error, assert_ok, invoke
import lstmtrace
from lstmtrace import Parameters, Pass, Stack, run, run_stack
from lstmtrace.rows import COLUMNS


def _bidirectional(E=2, H=3, seed=0):
    return [[Parameters.random(E, H, seed=seed), Pass(Parameters.random(E, H, seed=seed + 1), "reverse")],
            [Parameters.random(2 * H, 2, seed=seed + 2)]]


XS = np.array([[0.5, -1.0], [1.0, 0.25], [-0.5, 2.0], [0.0, 1.0]])


# -- the arithmetic ------------------------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(E=st.integers(1, 4), H=st.integers(1, 4), T=st.integers(1, 6), seed=st.integers(0, 2**16))
def test_a_reverse_cell_is_the_forward_cell_over_the_reversed_sequence(E, H, T, seed):
    params = Parameters.random(E, H, seed=seed)
    xs = np.random.default_rng(seed).normal(size=(T, E))
    backwards = run(params, xs, direction="reverse")
    forwards = run(params, xs[::-1])
    assert np.array_equal(backwards.rows(), forwards.rows()[::-1])  # the same numbers, steps in time order
    assert np.array_equal(backwards.block("given", "x"), xs)  # step t read x_t
    assert backwards.direction == "reverse" and forwards.direction == "forward"


def test_each_layer_reads_the_h_of_the_layer_before_forward_then_reverse():
    stack = run_stack(_bidirectional(), XS)
    h = np.concatenate([stack.cell(0, "forward").block("hidden", "h"), stack.cell(0, "reverse").block("hidden", "h")],
                       axis=1)
    assert np.array_equal(stack.cell(1).block("given", "x"), h)
    assert stack.cell(1).frame.equals(run(_bidirectional()[1][0], h).frame)  # an ordinary trace of that input


def test_a_cell_that_hands_on_h_in_the_order_it_ran():
    """Keras' go_backwards=True, outside Bidirectional: the next layer's x_1 is the reverse cell's step-T h."""
    backwards = Pass(Parameters.random(2, 3, seed=4), "reverse", passes_on="run")
    stack = run_stack([[backwards], [Parameters.random(3, 2, seed=5)]], XS)
    assert np.array_equal(stack.cell(1).block("given", "x"), stack.cell(0).block("hidden", "h")[::-1])
    assert "hands on its h in the order it ran" in stack.to_text()


@pytest.mark.parametrize("layers, words", [
    ([[Parameters.random(2, 3), Parameters.random(2, 3)]], "layer 0 has cells running forward, forward"),
    ([[Pass(Parameters.random(2, 3), "sideways")]], "layer 0 has cells running sideways"),
    ([[Parameters.random(2, 3)], [Parameters.random(4, 2)]], "layer 1 takes inputs of size 4, and layer 0 hands on h of size 3"),
    ([], "a stack has at least one cell"),
])
def test_a_stack_that_cannot_run_says_why(layers, words):
    with pytest.raises(ValueError, match=words):
        run_stack(layers, XS)


def test_cells_pick_by_layer_and_direction():
    stack = run_stack(_bidirectional(), XS)
    assert repr(stack) == "<Stack: 2 layer(s), 3 cell(s), 4 step(s)>"
    assert stack.layers == [0, 1] and stack.directions(0) == ["forward", "reverse"]
    assert stack.cell(1) is stack.cell(1, "forward")
    for args, words in (((0,), "layer 0 is bidirectional"), ((2,), "no layer 2"), ((1, "reverse"), "runs forward only")):
        with pytest.raises(KeyError, match=words):
            stack.cell(*args)


# -- the frame and its files ---------------------------------------------------------------------------

def test_a_stacks_frame_leads_with_layer_and_direction_and_one_cell_keeps_five_columns():
    stack = run_stack(_bidirectional(), XS)
    frame = stack.frame
    assert tuple(frame.columns) == ("layer", "direction", *COLUMNS)
    assert frame["layer"].dtype == np.int32 and list(frame["direction"].cat.categories) == ["forward", "reverse"]
    assert len(frame) == len(stack) == sum(len(t.frame) for t in stack.traces.values())
    assert tuple(run(Parameters.random(2, 3), XS, direction="reverse").frame.columns) == COLUMNS


@pytest.mark.parametrize("layout", ["long", "wide"])
def test_a_stack_reads_back_bit_identical(layout):
    stack = run_stack(_bidirectional(), XS * 1e-3 + 1 / 3)
    text = stack.to_csv(layout=layout)
    assert text.startswith("layer,direction,step,gate,quantity,")
    back = lstmtrace.read_trace(io.StringIO(text))
    assert isinstance(back, Stack) and list(back.traces) == list(stack.traces)
    assert back.frame.equals(stack.frame)


def test_a_stack_of_variants_records_each_cells_variant():
    layers = [[Parameters.random(2, 3, variant=lstmtrace.Variant.preset("v"))],
              [Parameters.random(3, 2, variant=lstmtrace.Variant(clip=1.5))]]
    stack = run_stack(layers, XS)
    back = lstmtrace.read_trace(io.StringIO(stack.to_csv()))
    assert back.cell(0).variant == lstmtrace.Variant.preset("v") and back.cell(1).variant == lstmtrace.Variant(clip=1.5)
    assert back.frame.equals(stack.frame)


def test_a_stack_as_parquet_and_json(tmp_path):
    stack = run_stack(_bidirectional(), XS)
    rows = pd.read_json(io.StringIO(stack.to_json()))
    assert list(rows.columns) == ["layer", "direction", *COLUMNS] and len(rows) == len(stack)
    pytest.importorskip("pyarrow")
    stack.to_parquet(tmp_path / "s.parquet")
    assert lstmtrace.read_trace(tmp_path / "s.parquet").frame.equals(stack.frame)


def test_a_reverse_cell_records_it_in_a_step_0_row():
    trace = run(Parameters.random(2, 3), XS, direction="reverse")
    text = trace.to_csv()
    assert text.splitlines()[1] == "0,variant,reverse,0,1.0"
    back = lstmtrace.read_trace(io.StringIO(text))
    assert back.direction == "reverse" and back.frame.equals(trace.frame)
    assert "This cell runs in reverse" in back.to_text()


@pytest.mark.parametrize("source, old, new, words", [
    ("stack", "\n0,forward,", "\n0,sideways,", "direction 'sideways'"),
    ("stack", "\n1,forward,", "\n-1,forward,", "layer -1"),
    ("stack", "layer,direction,", "layer,way,", "columns"),
    ("reverse", "0,variant,reverse,0,1.0", "0,variant,reverse,0,2.0", "holds 1"),
])
def test_a_damaged_stack_file_is_one_sentence(tmp_path, source, old, new, words):
    traced = run_stack(_bidirectional(), XS) if source == "stack" else run(Parameters.random(2, 3), XS, direction="reverse")
    path = tmp_path / "t.csv"
    path.write_text(traced.to_csv().replace(old, new, 1), encoding="utf-8")
    with pytest.raises(ValueError, match=words):
        lstmtrace.read_trace(path)


def test_cells_of_different_lengths_are_not_a_stack(tmp_path):
    long, short = run(Parameters.random(2, 3), XS), run(Parameters.random(2, 3), XS[:2])
    text = Stack({(0, "forward"): long}).to_csv() + Stack({(1, "forward"): short}).to_csv().split("\n", 1)[1]
    (tmp_path / "t.csv").write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match="t.csv: the cells of a stack run the same steps"):
        lstmtrace.read_trace(tmp_path / "t.csv")


# -- the commands ----------------------------------------------------------------------------------------

@pytest.fixture
def saved(tmp_path):
    """Two stacks, traced from the same weights with different last inputs, saved as CSV."""
    paths = []
    for k, xs in enumerate((XS, np.vstack([XS[:-1], [[0.0, 1.5]]]))):
        path = tmp_path / f"s{k}.csv"
        run_stack(_bidirectional(), xs).to_csv(path)
        paths.append(path)
    return paths


def test_show_explains_each_cell(saved):
    text = assert_ok(invoke("show", saved[0], "--steps", "2")).stdout
    assert text.startswith("A stack of 2 layers · 3 cells · 4 steps")
    assert [line for line in text.splitlines() if line.startswith("Layer ")] == \
        ["Layer 0 · forward", "Layer 0 · reverse", "Layer 1 · forward"]
    assert "This cell runs in reverse" in text
    html = assert_ok(invoke("show", saved[0], "--format", "markdown")).stdout
    assert "## Layer 0 · reverse" in html


def test_diff_compares_stacks_cell_by_cell(saved):
    result = invoke("diff", *saved)
    assert result.exit_code == 1
    assert result.stdout.startswith("Traces agree up to layer 0 (forward), step 4, given.x; first difference in "
                                    "layer 0 (forward), step 4, given.x")
    assert "It reaches layer 0 (reverse), layer 1 (forward)." in result.stdout
    table = pd.read_csv(io.StringIO(assert_ok_or_one(invoke("diff", *saved, "--format", "csv")).stdout))
    assert list(table.columns[:3]) == ["layer", "direction", "step"]
    assert invoke("diff", saved[0], saved[0]).exit_code == 0


def assert_ok_or_one(result):
    assert result.exit_code in (0, 1), result.stderr
    return result


def test_diff_of_a_stack_and_one_cell_is_one_line(saved, tmp_path):
    run(Parameters.random(2, 3), XS).to_csv(tmp_path / "one.csv")
    assert_error(invoke("diff", saved[0], tmp_path / "one.csv"), "cannot compare", "of one cell and the other of several")


def test_pictures_of_a_stack_pick_one_cell(saved, tmp_path):
    pytest.importorskip("matplotlib")
    assert_ok(invoke("draw", saved[0], "--layer", "0", "--direction", "reverse", "-o", tmp_path / "c.svg"))
    assert_ok(invoke("plot", saved[0], "--layer", "1", "-o", tmp_path / "p.svg"))
    assert_error(invoke("draw", saved[0], "-o", tmp_path / "x.svg"), "'--layer'", "a picture shows one cell")
    assert_error(invoke("plot", saved[0], "--layer", "0", "-o", tmp_path / "x.svg"), "'--direction'", "runs both ways")
    assert_error(invoke("plot", saved[0], "--layer", "3", "-o", tmp_path / "x.svg"), "'--layer'", "no layer 3")
    run(Parameters.random(2, 3), XS).to_csv(tmp_path / "one.csv")
    assert_error(invoke("draw", tmp_path / "one.csv", "--layer", "0", "-o", tmp_path / "x.svg"), "'--layer'",
                 "TRACE holds one cell")
    assert not (tmp_path / "x.svg").exists()


def test_the_html_view_shows_each_cell_under_its_heading():
    page = run_stack(_bidirectional(), XS)._repr_html_()
    assert page.count("<style>") == 1
    assert [part.split("</h4>")[0] for part in page.split("<h4>")[1:]] == \
        ["layer 0 · forward", "layer 0 · reverse", "layer 1 · forward"]
    assert "Runs in reverse: step t read x_t" in page


def test_expand_writes_out_the_unit_in_every_cell_that_has_it(saved):
    text = assert_ok(invoke("show", saved[0], "--expand", "2", "--steps", "1")).stdout
    assert text.count("Unit 2, term by term") == 2  # layer 0's two cells have H = 3; layer 1's has H = 2
    assert_error(invoke("show", saved[0], "--expand", "3"), "'--expand'", "the largest of the cells")


def test_an_overflow_in_a_reverse_cell_names_the_step_of_its_x():
    """It runs x_3 first, and the overflow comes at x_2: the error says step 2, the step the trace would show."""
    params = Parameters.identity(1, 1).set("forget", "W", 1e10)
    with pytest.raises(lstmtrace.NonFiniteError) as e:
        run(params, [[1.0], [1e300], [1.0]], direction="reverse")
    assert (e.value.step, e.value.gate, e.value.quantity) == (2, "forget", "Wx")
