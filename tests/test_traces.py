"""The committed traces in traces/ are what lstmtrace makes today (regenerate: python traces/regenerate.py)."""
import difflib
import importlib.util
import io
import pathlib

import numpy as np
import pandas as pd
import pytest

from lstmtrace import read_trace

TRACES = pathlib.Path(__file__).parent.parent / "traces"
_spec = importlib.util.spec_from_file_location("regenerate", TRACES / "regenerate.py")
regenerate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(regenerate)

CASES = [(name, suffix) for name in regenerate.TRACES for suffix in regenerate.FORMATS]
STALE = "is stale: run `python traces/regenerate.py` and commit the result if the change is intended"


def _diff(expected: str, actual: str, name: str) -> str:
    lines = difflib.unified_diff(expected.splitlines(), actual.splitlines(), f"traces/{name} (committed)",
                                 f"traces/{name} (made now)", lineterm="", n=2)
    return "\n".join(list(lines)[:60])


@pytest.mark.parametrize("name, suffix", CASES, ids=[f"{n}.{s}" for n, s in CASES])
def test_committed_trace_is_current(name, suffix):
    path = TRACES / f"{name}.{suffix}"
    assert path.exists(), f"traces/{path.name} is missing: run `python traces/regenerate.py`"
    committed, now = path.read_text(encoding="utf-8"), regenerate.render(name, suffix)
    if suffix == "csv" and committed != now:
        # the last bit of exp/tanh may differ between CPUs; anything beyond that is a real change
        a, b = pd.read_csv(io.StringIO(committed)), pd.read_csv(io.StringIO(now))
        assert a.drop(columns="value").equals(b.drop(columns="value")), _diff(committed, now, path.name)
        np.testing.assert_allclose(b["value"], a["value"], rtol=1e-14, atol=1e-300,
                                   err_msg=f"traces/{path.name} {STALE}")
    else:
        assert committed == now, f"traces/{path.name} {STALE}\n{_diff(committed, now, path.name)}"


def _cells(path, data_only):
    """Every non-empty cell of every sheet: {(sheet, coordinate): its value, or its formula's text}."""
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.load_workbook(path, data_only=data_only)
    return {(sheet.title, c.coordinate): c.value for sheet in book for row in sheet.iter_rows() for c in row
            if c.value is not None}


@pytest.mark.parametrize("name", list(regenerate.WORKBOOKS))
def test_committed_workbook_is_current(name, tmp_path):
    """Compared by formulas and by values (the cached ones, every digit), not by bytes."""
    pytest.importorskip("xlsxwriter")
    path = TRACES / f"{name}.xlsx"
    assert path.exists(), f"traces/{path.name} is missing: run `python traces/regenerate.py`"
    regenerate.workbook(name, tmp_path / path.name)
    committed, now = _cells(path, data_only=False), _cells(tmp_path / path.name, data_only=False)
    assert committed == now, f"traces/{path.name}'s formulas or text {STALE}"
    committed, now = _cells(path, data_only=True), _cells(tmp_path / path.name, data_only=True)
    assert committed.keys() == now.keys(), f"traces/{path.name} {STALE}"
    numbers = [k for k, v in committed.items() if isinstance(v, (int, float))]
    assert {k: v for k, v in committed.items() if k not in numbers} == {k: v for k, v in now.items() if k not in numbers}
    # the last bit of exp/tanh may differ between CPUs; anything beyond that is a real change
    np.testing.assert_allclose([now[k] for k in numbers], [committed[k] for k in numbers], rtol=1e-14, atol=1e-300,
                               err_msg=f"traces/{path.name} {STALE}")


@pytest.mark.parametrize("name", [n for n in regenerate.TRACES if not n.startswith("diff_")])
def test_committed_csv_reads_back_as_a_trace(name):
    trace = read_trace(TRACES / f"{name}.csv")
    cells = trace.traces.values() if hasattr(trace, "traces") else [trace]
    assert {cell.hidden_size for cell in cells} <= {1, 3, 4, 5}


def test_the_reverse_sequence_is_the_forward_one_with_its_steps_in_time_order():
    """x = 1 at every step reads the same either way round, so the reverse cell computes the same rows."""
    forward, reverse = read_trace(TRACES / "sequence_one_unit.csv"), read_trace(TRACES / "sequence_one_unit_reverse.csv")
    assert reverse.direction == "reverse"
    assert np.array_equal(reverse.rows(), forward.rows()[::-1])


def test_the_bidirectional_stack_holds_pytorchs_numbers():
    """Its forward cells read only x_1 … x_t, so their first steps are those of PyTorch's longer fixture run."""
    expected = np.load(TRACES.parent / "tests" / "fixtures" / "torch_model_bilstm.npz")
    assert list(expected["ids"][:3]) == [3, 1, 4]  # the golden's --tokens
    stack = read_trace(TRACES / "stack_bidirectional.csv")
    assert list(stack.traces) == [(0, "forward"), (0, "reverse"), (1, "forward"), (1, "reverse")]
    np.testing.assert_allclose(stack.cell(0, "forward").block("hidden", "h"), expected["out0"][:3, :4], rtol=0,
                               atol=1e-12)


def test_seed_question_trace_holds_the_learners_numbers():
    trace = read_trace(TRACES / "seed_question.csv")
    np.testing.assert_allclose(trace.value("forget", "act"),
                               [0.47502081, 0.68997448, 0.549834, 0.4875026, 0.66818777], atol=5e-9)


@pytest.mark.parametrize("name, expected", [
    ("notebook_1_zeros", [0.5, 0.5, 0.5]),
    ("notebook_2_identity", [0.9999546, 0.5, 0.9999546]),
    ("notebook_3_u_zeros", [0.9999546, 0.5, 0.5]),
])
def test_notebook_traces_hold_the_notebooks_numbers(name, expected):
    trace = read_trace(TRACES / f"{name}.csv")
    np.testing.assert_allclose(trace.value("cell", "forget*c_prev"), expected, atol=5e-8)


def test_sequence_trace_carries_the_cell_forward():
    trace = read_trace(TRACES / "sequence_one_unit.csv")
    c = trace.value("cell", "c")[:, 0]
    assert trace.steps == 5 and (np.diff(c) > 0).all()
    np.testing.assert_array_equal(trace.value("given", "c_prev")[1:, 0], c[:-1])


def test_committed_diffs_name_where_the_notebook_experiments_part():
    zeros_identity = (TRACES / "diff_zeros_vs_identity.txt").read_text()
    assert zeros_identity.startswith("Traces agree up to forget.Wx; first difference at step 1, forget.Wx, unit 0: "
                                     "0.0 → 10.0.")
    identity_u_zeros = (TRACES / "diff_identity_vs_u_zeros.txt").read_text()
    assert identity_u_zeros.startswith("Traces agree up to forget.Uh; first difference at step 1, forget.Uh, "
                                       "unit 2: 10.0 → 0.0.")


@pytest.mark.parametrize("name", regenerate.VARIANTS)
def test_each_presets_trace_reads_back_as_that_preset(name):
    from lstmtrace import Variant

    trace = read_trace(TRACES / f"variant_{name}.csv")
    assert trace.variant == Variant.preset(name)
    seed = read_trace(TRACES / "seed_question.csv")  # the same step: x, h_prev and c_prev are the learner's
    for quantity in ("x", "h_prev", "c_prev"):
        np.testing.assert_array_equal(trace.value("given", quantity), seed.value("given", quantity))
    assert Variant.preset(name).finding in " ".join((TRACES / f"variant_{name}.txt").read_text().split())


def test_committed_variant_diffs_say_what_the_variant_changes():
    v = (TRACES / "diff_np_vs_v.txt").read_text()
    assert v.startswith("The traces are of different LSTM variants: A is lstmtrace's default LSTM, B is the v "
                        "variant.")
    assert "Only B has forget.Pc, input.Pc, output.Pc" in v  # c_prev = 0: only o's peephole sees anything
    assert "first difference at step 1, output.preact" in v
    cifg = (TRACES / "diff_np_vs_cifg.txt").read_text()
    assert "Only A has forget.Wx, forget.Uh, forget.bias, forget.preact" in cifg
    assert "first difference at step 1, forget.act" in cifg
