"""Sequences: run() carries h and c from step to step, and the trace keeps its format with step = 1..T."""
import io

import numpy as np
import pytest

import lstmtrace
from lstmtrace import NonFiniteError, Parameters, read_trace
from lstmtrace.spec import parse_steps, read_sequence


@pytest.fixture
def sequence():
    return np.random.default_rng(5).normal(size=(6, 3))


def test_each_step_starts_where_the_last_one_ended(random_params, sequence):
    trace = lstmtrace.run(random_params, sequence)
    h, c = trace.value("hidden", "h"), trace.value("cell", "c")
    assert h.shape == c.shape == (6, 4)
    np.testing.assert_array_equal(trace.value("given", "h_prev")[1:], h[:-1])
    np.testing.assert_array_equal(trace.value("given", "c_prev")[1:], c[:-1])
    np.testing.assert_array_equal(trace.value("given", "x"), sequence)


def test_run_agrees_with_steps_taken_one_at_a_time(random_params, sequence):
    h0, c0 = np.full(4, 0.1), np.full(4, -0.2)
    trace = lstmtrace.run(random_params, sequence, h0, c0)
    h, c = h0, c0
    for t, x in enumerate(sequence, start=1):
        one = lstmtrace.step(random_params, x, h, c)
        np.testing.assert_array_equal(trace.frame[trace.frame.step == t]["value"], one.frame["value"])
        h, c = one.value("hidden", "h"), one.value("cell", "c")


def test_steps_are_numbered_from_1(random_params, sequence):
    trace = lstmtrace.run(random_params, sequence)
    assert trace.steps == 6 and list(trace.frame["step"].unique()) == [1, 2, 3, 4, 5, 6]
    assert len(trace.frame) == 6 * (3 + 27 * 4)
    np.testing.assert_array_equal(trace.value("forget", "act", step=2), trace.value("forget", "act")[1])


def test_progress_is_told_of_every_step(random_params, sequence):
    calls = []
    lstmtrace.run(random_params, sequence, progress=calls.append)
    assert calls == [1] * 6


@pytest.mark.parametrize("xs, message", [
    (np.zeros((0, 3)), "T ≥ 1"),
    (np.zeros((2, 2)), "E = 3"),
    (np.zeros(3), "must be T×E"),
    (np.array([[0, 0, 0], [0, np.nan, 0]]), r"xs\[1, 1\] is nan"),
])
def test_bad_sequences(random_params, xs, message):
    with pytest.raises(ValueError, match=message):
        lstmtrace.run(random_params, xs)


def test_overflow_names_its_step():
    xs = np.array([[1.0, 1.0], [1e308, 1e308]])
    with pytest.raises(NonFiniteError) as info:
        lstmtrace.run(Parameters.ones(2, 2), xs)
    assert (info.value.step, info.value.gate, info.value.quantity) == (2, "forget", "Wx")


def test_sequence_csv_round_trip_1000_steps_h64():
    """A long run (not timed): its CSV reads back bit-identical."""
    params = Parameters.random(3, 64, seed=2)
    trace = lstmtrace.run(params, np.random.default_rng(3).normal(size=(1000, 3)))
    back = read_trace(io.StringIO(trace.to_csv()))
    assert back.steps == 1000 and back.hidden_size == 64
    assert np.array_equal(back.frame["value"].to_numpy().view(np.int64),
                          trace.frame["value"].to_numpy().view(np.int64))


def test_text_opens_with_one_row_per_step_then_the_chosen_steps(random_params, sequence):
    text = lstmtrace.run(random_params, sequence).to_text(steps=[2, 5])
    summary = text[:text.index("LSTM step t =")]
    assert "6 steps · input size E = 3 · hidden size H = 4" in summary
    assert "forget mean" in summary and "saturated units" in summary
    assert [line.split()[0] for line in summary.splitlines() if line[:6].strip().isdigit()] == \
        ["1", "2", "3", "4", "5", "6"]
    assert "LSTM step t = 2 " in text and "LSTM step t = 5 " in text and "LSTM step t = 3 " not in text
    assert "The detail below is of steps 2, 5 of 6." in " ".join(text.split())


def test_summary_means_are_the_traced_gates_means(random_params, sequence):
    trace = lstmtrace.run(random_params, sequence)
    text = trace.to_text(precision=17, steps=[])
    row = next(line for line in text.splitlines() if line.strip().startswith("3 "))
    means = [float(v) for v in row.split()[4:7]]  # after step and the three x values
    expected = [trace.value(g, "act", step=3).mean() for g in ("forget", "input", "output")]
    assert means == expected


def test_detail_for_a_step_that_is_not_there(random_params, sequence):
    with pytest.raises(ValueError, match=r"step 7 is not in 1\.\.6"):
        lstmtrace.run(random_params, sequence).to_text(steps=[7])


@pytest.mark.parametrize("text, expected", [("3-5", [3, 4, 5]), ("2", [2]), ("1,4-5,2", [1, 2, 4, 5])])
def test_parse_steps(text, expected):
    assert parse_steps(text, 6) == expected


@pytest.mark.parametrize("text", ["0", "5-3", "7", "a", "1-", ""])
def test_parse_steps_refuses(text):
    with pytest.raises(ValueError):
        parse_steps(text, 6)


@pytest.mark.parametrize("content", ["x1,x2\n1,2\n3,4\n", "1,2\n3,4\n", "1 2\n3 4\n", "a b\n1\t2\n\n3 4\n"])
def test_read_sequence_text_forms(tmp_path, content):
    path = tmp_path / "xs.txt"
    path.write_text(content)
    np.testing.assert_array_equal(read_sequence(path), [[1.0, 2.0], [3.0, 4.0]])


def test_read_sequence_npy(tmp_path):
    np.save(tmp_path / "xs.npy", np.arange(6.0).reshape(3, 2))
    np.save(tmp_path / "one.npy", np.arange(3.0))
    assert read_sequence(tmp_path / "xs.npy").shape == (3, 2)
    assert read_sequence(tmp_path / "one.npy").shape == (3, 1)


@pytest.mark.parametrize("content, message", [
    ("1,2\n3\n", "line 2 has 1 values, the first row 2"),
    ("1,2\n3,x\n", "line 2: 'x' is not a number"),
    ("", "is empty"),
    ("a,b\n", "has a header but no rows"),
    ("1,2\n3,inf\n", "has inf at step 2, element 1"),
])
def test_read_sequence_refuses(tmp_path, content, message):
    path = tmp_path / "xs.csv"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        read_sequence(path)


def test_read_sequence_never_unpickles(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="not a plain .npy array"):
        read_sequence(tmp_path / "obj.npy")
