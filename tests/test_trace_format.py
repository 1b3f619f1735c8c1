"""The public trace format: columns, row order, CSV and JSON that read back bit-identical."""
import io
import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import lstmtrace
from lstmtrace import Parameters, read_trace
from lstmtrace.trace import COLUMNS

PIPELINE_ORDER = [
    ("given", "x"), ("given", "h_prev"), ("given", "c_prev"),
    *((g, q) for g in ("forget", "input", "candidate", "output")
      for q in ("Wx", "Uh", "bias", "preact", "act")),
    ("cell", "forget*c_prev"), ("cell", "input*candidate"), ("cell", "c"),
    ("hidden", "tanh(c)"), ("hidden", "h"),
]


@pytest.fixture
def trace(random_params):
    return lstmtrace.step(random_params, [0.3, -1.2, 2.0], [0.1, 0.2, -0.3, 0.4], [1.0, -1, 0.5, 2])


def test_columns_and_dtypes(trace):
    assert tuple(trace.frame.columns) == COLUMNS == ("step", "gate", "quantity", "unit", "value")
    dtypes = trace.frame.dtypes
    assert dtypes["step"] == np.int32 and dtypes["unit"] == np.int32 and dtypes["value"] == np.float64
    assert isinstance(dtypes["gate"], pd.CategoricalDtype)
    assert isinstance(dtypes["quantity"], pd.CategoricalDtype)


def test_rows_follow_the_pipeline_unit_by_unit(trace):
    f = trace.frame
    blocks = f.groupby(["gate", "quantity"], observed=True, sort=False)["unit"].apply(list)
    assert list(blocks.index) == PIPELINE_ORDER
    for (gate, quantity), units in blocks.items():
        assert units == list(range(3 if quantity == "x" else 4)), (gate, quantity)
    assert (f["step"] == 1).all()
    assert len(f) == 3 + 27 * 4


def test_value_returns_the_vector_over_units(trace):
    np.testing.assert_array_equal(trace.value("given", "x"), [0.3, -1.2, 2.0])
    with pytest.raises(KeyError, match="no quantity forget.c"):
        trace.value("forget", "c")


def test_csv_has_one_header_no_index_and_plain_rows(trace):
    text = trace.to_csv()
    lines = text.splitlines()
    assert lines[0] == "step,gate,quantity,unit,value"
    assert lines[1] == "1,given,x,0,0.3"
    assert len(lines) == len(trace.frame) + 1
    assert "\r" not in text


def test_csv_to_a_file_is_utf8_and_reads_back(tmp_path, trace):
    trace.to_csv(tmp_path / "t.csv")
    raw = (tmp_path / "t.csv").read_bytes()
    raw.decode("utf-8")
    assert read_trace(tmp_path / "t.csv").frame.equals(trace.frame)


def test_no_cell_can_start_a_spreadsheet_formula(trace):
    """Text cells never start with = + @ - or a tab; numeric cells are plain numbers."""
    for line in trace.to_csv().splitlines()[1:]:
        step, gate, quantity, unit, value = line.split(",")
        assert gate[:1] not in "=+@-\t\r" and quantity[:1] not in "=+@-\t\r"
        int(step), int(unit), float(value)


def _bits(a):
    return np.asarray(a, dtype=np.float64).view(np.int64)


anything = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


@given(x=arrays(np.float64, 3, elements=anything), h=arrays(np.float64, 4, elements=anything),
       seed=st.integers(0, 1000), bias=st.floats(-30, 30))
def test_csv_round_trip_is_bit_identical(x, h, seed, bias):
    params = Parameters.random(3, 4, seed=seed).set("forget", "b", bias)
    trace = lstmtrace.step(params, x, h, h[::-1])
    back = read_trace(io.StringIO(trace.to_csv()))
    assert np.array_equal(_bits(back.frame["value"]), _bits(trace.frame["value"]))
    assert back.frame.equals(trace.frame)


def test_extreme_floats_round_trip():
    values = [5e-324, -2.2250738585072014e-308, 1.7976931348623157e308, 0.1, 1 / 3, -0.0]
    params = Parameters.zeros(6, 1)
    trace = lstmtrace.step(params, values)
    back = read_trace(io.StringIO(trace.to_csv()))
    assert np.array_equal(_bits(back.value("given", "x")), _bits(values))


def test_json_is_records_with_full_precision(trace):
    rows = json.loads(trace.to_json())
    assert rows[0] == {"step": 1, "gate": "given", "quantity": "x", "unit": 0, "value": 0.3}
    assert np.array_equal(_bits([r["value"] for r in rows]), _bits(trace.frame["value"]))
    assert pd.DataFrame(rows).shape == trace.frame.shape


def test_read_trace_puts_shuffled_rows_back_in_order(trace):
    shuffled = trace.frame.sample(frac=1, random_state=0)
    back = read_trace(io.StringIO(shuffled.to_csv(index=False)))
    assert back.frame.equals(trace.frame)


def test_read_trace_knows_its_sizes(trace):
    back = read_trace(io.StringIO(trace.to_csv()))
    assert (back.input_size, back.hidden_size, back.steps, back.params) == (3, 4, 1, None)


def _csv_with(trace, edit):
    frame = trace.frame.astype(str)
    return io.StringIO(edit(frame).to_csv(index=False))


def _set(row, column, value):
    def edit(frame):
        frame.loc[row, column] = value
        return frame
    return edit


@pytest.mark.parametrize("content, message", [
    ("", "is empty"),
    ("a,b\n1,2\n", "has columns a, b; a trace has exactly step, gate, quantity, unit, value"),
    ("step,gate,quantity,unit,value\n", "has a header but no rows"),
])
def test_read_trace_refuses_what_is_not_a_trace(content, message):
    with pytest.raises(ValueError, match=message):
        read_trace(io.StringIO(content))


@pytest.mark.parametrize("edit, message", [
    (_set(5, "value", "abc"), "line 7: value 'abc' is not a number"),
    (_set(5, "value", "nan"), "line 7: value"),
    (_set(5, "value", "inf"), "line 7: value"),
    (_set(5, "step", "x"), "line 7: step 'x' is not a whole number"),
    (_set(5, "unit", "1.5"), "line 7: unit '1.5' is not a whole number"),
    (_set(5, "unit", "-1"), "unit"),
    (_set(5, "gate", "=cmd()"), "line 7: =cmd().h_prev is not a gate and quantity"),
    (_set(5, "quantity", "act"), "line 7: given.act is not a gate and quantity"),
    (lambda f: f.drop(index=20), "step 1 has 3 rows of forget.bias, expected 4"),
    (_set(21, "unit", "0"), "is repeated or out of range"),
    (_set(30, "step", "2"), "step 1 has 3 rows of forget.act, expected 4"),
])
def test_read_trace_names_the_broken_line(trace, edit, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_trace(_csv_with(trace, edit))


def test_value_is_a_copy_the_trace_keeps_its_numbers(trace):
    v = trace.value("forget", "act")
    v[:] = 0
    assert trace.value("forget", "act").any()


def test_a_trace_without_x_rows_is_refused(trace):
    frame = trace.frame[trace.frame["quantity"] != "x"]
    with pytest.raises(ValueError, match="step 1 has no given.x rows"):
        read_trace(io.StringIO(frame.to_csv(index=False)))
