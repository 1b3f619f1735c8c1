"""Large traces: the fast CSV writer, Parquet, and sizes that must simply work (nothing here is timed)."""
import io

import numpy as np
import pandas as pd
import pytest

import lstmtrace
from conftest import assert_error, assert_ok, invoke
from lstmtrace import Parameters, read_trace
from lstmtrace import tracefile as export


def _bits(frame):
    return frame["value"].to_numpy().view(np.int64)


@pytest.fixture(scope="module")
def long_trace():
    """10,000 steps of H = 32: 8.9 million rows, past the size where pyarrow takes over."""
    return lstmtrace.run(Parameters.random(4, 32, seed=7), np.random.default_rng(8).normal(size=(10_000, 4)))


def test_10000_step_h32_csv_round_trips(tmp_path, long_trace):
    long_trace.to_csv(tmp_path / "t.csv")
    back = read_trace(tmp_path / "t.csv")
    assert back.steps == 10_000 and np.array_equal(_bits(back.frame), _bits(long_trace.frame))


@pytest.mark.parametrize("writer", ["pandas", "arrow"])
def test_both_csv_writers_round_trip_bit_identically(writer):
    if writer == "arrow":
        pytest.importorskip("pyarrow")
    extremes = np.array([[5e-324, -0.0, 1e-5, 1.7976931348623157e308, 1 / 3, 1e16]])
    trace = lstmtrace.run(Parameters.zeros(6, 2), extremes)
    out = io.StringIO()
    getattr(export, f"write_csv_{writer}")(trace.frame, out)
    assert out.getvalue().startswith("step,gate,quantity,unit,value\n1,given,x,0,5e-324\n")
    back = read_trace(io.StringIO(out.getvalue()))
    assert np.array_equal(_bits(back.frame), _bits(trace.frame))


def test_short_traces_are_written_by_pandas_everywhere(random_params):
    """So golden files are the same text with or without pyarrow."""
    trace = lstmtrace.step(random_params, [1e-5, -0.0, 2.0])
    out = io.StringIO()
    export.write_csv_pandas(trace.frame, out)
    assert trace.to_csv() == out.getvalue()
    assert "1,given,x,0,1e-05\n1,given,x,1,-0.0\n" in out.getvalue()


def test_long_traces_use_pyarrow_when_installed():
    """The two writers spell 1e-5 differently, which shows which one wrote a trace."""
    pytest.importorskip("pyarrow")
    trace = lstmtrace.run(Parameters.zeros(1, 32), np.full((120, 1), 1e-5))
    assert len(trace.frame) >= export.ARROW_FROM_ROWS
    assert trace.to_csv().startswith("step,gate,quantity,unit,value\n1,given,x,0,0.00001\n")  # pyarrow
    short = lstmtrace.run(Parameters.zeros(1, 32), np.full((2, 1), 1e-5))
    assert short.to_csv().startswith("step,gate,quantity,unit,value\n1,given,x,0,1e-05\n")  # pandas


def test_without_pyarrow_the_pandas_writer_is_used(without, long_trace):
    without("pyarrow")
    small = lstmtrace.run(long_trace.params, np.zeros((1, 4)))
    assert small.to_csv() == small.frame.to_csv(index=False, lineterminator="\n")
    with pytest.raises(ImportError, match=r"pip install 'lstmtrace\[pyarrow\]'"):
        small.to_parquet("never.parquet")


def test_parquet_round_trip(tmp_path, random_params):
    pytest.importorskip("pyarrow")
    trace = lstmtrace.run(random_params, np.random.default_rng(1).normal(size=(5, 3)))
    trace.to_parquet(tmp_path / "t.parquet")
    assert read_trace(tmp_path / "t.parquet").frame.equals(trace.frame)
    plain = pd.read_parquet(tmp_path / "t.parquet")  # any Parquet reader, as it is
    assert list(plain.columns) == ["step", "gate", "quantity", "unit", "value"]
    assert np.array_equal(plain["value"].to_numpy(), trace.frame["value"].to_numpy())


def test_parquet_from_the_command_line(tmp_path):
    pytest.importorskip("pyarrow")
    assert_ok(invoke("run", "--xs", "1;2;3", "-o", tmp_path / "t.parquet"))
    assert "3 steps" in assert_ok(invoke("show", tmp_path / "t.parquet")).stdout
    assert assert_ok(invoke("diff", tmp_path / "t.parquet", tmp_path / "t.parquet")).stdout.startswith(
        "The traces agree")
    assert_error(invoke("step", "--format", "parquet"), "'--format'", "Parquet is binary")


def test_a_file_that_is_not_parquet(tmp_path):
    pytest.importorskip("pyarrow")
    (tmp_path / "t.parquet").write_text("step,gate\n")
    assert_error(invoke("show", tmp_path / "t.parquet"), "'TRACE'", "not a Parquet file")


def test_traces_h4096_e4096():
    """The widest layer the issue names: the whole-array code handles it like a small one."""
    params = Parameters.random(4096, 4096, seed=0)
    trace = lstmtrace.step(params, np.full(4096, 0.01), np.full(4096, -0.01))
    assert len(trace.frame) == 4096 + 27 * 4096
    np.testing.assert_allclose(trace.value("forget", "Wx"), params.forget.W @ np.full(4096, 0.01), rtol=1e-12)


# -- one table of formats --------------------------------------------------------------------

def test_every_format_in_the_table_is_a_choice_and_a_suffix(tmp_path):
    from lstmtrace.formats import FORMATS

    for name, fmt in FORMATS.items():
        if name == "parquet":
            pytest.importorskip("pyarrow")
        out = tmp_path / f"step{fmt.suffix}"
        assert_ok(invoke("step", "-o", out))  # the suffix alone chooses the format
        same = assert_ok(invoke("step", "--format", name, "-o", tmp_path / f"named{fmt.suffix}"))
        assert same.stdout == "" and out.read_bytes() == (tmp_path / f"named{fmt.suffix}").read_bytes()
        if not fmt.binary:  # and standard output gets the same bytes
            assert assert_ok(invoke("step", "--format", name)).stdout == out.read_text(encoding="utf-8")


def test_html_is_the_notebook_view_as_a_page():
    import lstmtrace
    from lstmtrace.examples import SEED_QUESTION

    page = assert_ok(invoke("step", "--format", "html")).stdout
    trace = lstmtrace.step(lstmtrace.Parameters.identity(5, 5), SEED_QUESTION["x"], SEED_QUESTION["h_prev"])
    assert page.startswith("<!DOCTYPE html>") and trace._repr_html_() in page
    assert "<title>The worked example" in page
