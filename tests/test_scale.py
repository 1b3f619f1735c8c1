"""Text at scale: streamed text is the text built in one piece, and the column-at-a-time formatting is
the one-number-at-a-time formatting (lstmtrace.text.number, tabulate) character for character."""
import io

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tabulate import tabulate

import lstmtrace
from conftest import assert_ok, invoke
from lstmtrace import Parameters, Variant, backward
from lstmtrace.formats import save
from lstmtrace.text import grid, number, numbers, render, write

FLOATS = st.floats(allow_nan=True, allow_infinity=True, width=64)
AWKWARD = [0.0, -0.0, 1.0, -1.0, 2.0, 10.0, 100000.0, 1e6, 1234567.0, 1.5e7, 1e15, 1e16, 1e17, 1e-5, 1.5e-5,
           0.1, 0.10810031, -0.25, 123456.5, 999999.5, 9999995.0, 0.000123456789, 5e-324, 1.7976931348623157e308,
           np.inf, -np.inf, np.nan, 0.1 + 0.2, 1 / 3]


@given(st.lists(FLOATS | st.sampled_from(AWKWARD), max_size=40), st.integers(1, 20))
def test_numbers_is_number_of_each(values, precision):
    assert numbers(np.array(values, dtype=np.float64), precision) == [number(v, precision) for v in values]


@pytest.mark.parametrize("precision", [1, 2, 3, 6, 10, 17])
def test_numbers_on_awkward_values(precision):
    assert numbers(np.array(AWKWARD), precision) == [number(v, precision) for v in AWKWARD]


CELL = st.lists(st.sampled_from(list("ab01.-+ e") + ["c̃", "‖", "σ", "·", "⊗", "中"]), max_size=8).map("".join)


@given(st.lists(st.tuples(CELL, st.lists(CELL, min_size=1, max_size=5), st.booleans()), min_size=1, max_size=4)
       .filter(lambda cols: len({len(c) for _, c, _ in cols}) == 1), st.booleans())
def test_grid_is_tabulate(columns, markdown):
    headers = [h for h, _, _ in columns]
    cells = [c for _, c, _ in columns]
    right = [r for _, _, r in columns]
    expected = tabulate([list(row) for row in zip(*cells)], headers=headers,
                        tablefmt="github" if markdown else "simple", disable_numparse=True,
                        colalign=["right" if r else "left" for r in right], preserve_whitespace=True)
    assert grid(headers, cells, right, markdown) == expected


def _traces():
    p = Parameters.random(3, 4, seed=3)
    xs = np.random.default_rng(3).normal(size=(25, 3))
    run = lstmtrace.run(p, xs)
    stack = lstmtrace.run_stack([[Parameters.random(3, 2, seed=1), lstmtrace.Pass(Parameters.random(3, 2, seed=2),
                                                                                  "reverse")],
                                 [Parameters.random(4, 2, seed=3)]], xs[:4])
    return {
        "step": lstmtrace.step(p, xs[0]),
        "run": run,
        "variant": lstmtrace.run(Parameters.random(3, 4, seed=3, variant=Variant(peephole=True, proj_size=2)), xs[:5]),
        "backward total": backward(run),
        "backward per-step": backward(lstmtrace.run(p, xs[:4]), param_grads="per-step"),
        "backward none": backward(lstmtrace.run(p, xs[:4]), param_grads="none"),
        "stack": stack,
    }


TRACES = _traces()


@pytest.mark.parametrize("name", TRACES)
@pytest.mark.parametrize("options", [{}, {"steps": "all"}, {"markdown": True, "steps": "all"}, {"brief": True},
                                     {"steps": [2, 1], "expand": 1, "title": "A title"}, {"precision": 17}])
def test_streamed_text_is_the_text_in_one_piece(name, options):
    trace = TRACES[name]
    if options.get("steps") == [2, 1] and trace.steps < 2:
        options = {**options, "steps": [1]}
    out = io.StringIO()
    write(trace, out, **options)
    assert out.getvalue() == render(trace, **options)


class Chunks(io.StringIO):
    """Counts the writes: streaming writes step by step, not once."""

    def __init__(self):
        super().__init__()
        self.writes = 0

    def write(self, text):
        self.writes += 1
        return super().write(text)


def test_text_is_written_step_by_step():
    out = Chunks()
    write(TRACES["run"], out, steps="all")
    assert out.writes >= TRACES["run"].steps


@pytest.mark.parametrize("fmt, suffix", [("text", ".txt"), ("markdown", ".md")])
def test_saved_text_and_the_cli_stream_the_same_text(tmp_path, fmt, suffix):
    trace = TRACES["backward total"]
    save(trace, tmp_path / f"t{suffix}", steps="all")
    assert (tmp_path / f"t{suffix}").read_text(encoding="utf-8") == render(trace, markdown=fmt == "markdown",
                                                                             steps="all")
    assert_ok(invoke("run", "--xs", "1;2;3", "--backward", "-o", tmp_path / f"cli{suffix}"))
    printed = assert_ok(invoke("run", "--xs", "1;2;3", "--backward", "--format", fmt)).stdout
    assert (tmp_path / f"cli{suffix}").read_text(encoding="utf-8") == printed


# -- the forward run ---------------------------------------------------------------------------

def test_run_calls_progress_once_a_step():
    calls = []
    lstmtrace.run(Parameters.random(2, 3, seed=1), np.ones((130, 2)), progress=calls.append)
    assert calls == [1] * 130
