"""The HTML Jupyter shows for a trace: a table per step, rows by gate, the trace's own numbers."""
from html.parser import HTMLParser

import numpy as np
import pytest

import lstmtrace
from lstmtrace import Parameters
from lstmtrace.cell import PIPELINE
from lstmtrace.html import MAX_STEPS, MAX_UNITS, render_html
from lstmtrace.trace import Trace

GATE_ORDER = [gate for gate, _ in PIPELINE]


class _Tables(HTMLParser):
    """Every <table class="lstmtrace">: its rows, each a list of (tag, attrs, text) cells."""

    def __init__(self):
        super().__init__()
        self.tables, self.notes, self.paragraphs = [], [], []
        self._cell = self._p = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            assert attrs.get("class") == "lstmtrace"
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append({"class": attrs.get("class"), "cells": []})
        elif tag in ("td", "th"):
            self._cell = (tag, attrs, [])
        elif tag == "p":
            self._p = (attrs.get("class"), [])

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            name, attrs, text = self._cell
            self.tables[-1][-1]["cells"].append((name, attrs, "".join(text)))
            self._cell = None
        elif tag == "p":
            kind, text = self._p
            (self.notes if kind == "note" else self.paragraphs).append("".join(text))
            self._p = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[2].append(data)
        elif self._p is not None:
            self._p[1].append(data)


def parse(page: str) -> _Tables:
    parser = _Tables()
    parser.feed(page)
    parser.close()
    return parser


def body(table):
    """{(gate, quantity): [cell, …]} of one table, the gate taken from the header row above."""
    rows, gate = {}, None
    for row in table[1:]:  # table[0] is the header row of unit numbers
        if row["class"] == "gate":
            gate = row["cells"][0][2]
        else:
            label, *cells = row["cells"]
            rows[gate, label[2]] = cells
    return rows


@pytest.fixture
def mixed():
    """Identity weights, units saturated high, low, and not at all (tanh(0.005) < 0.01 is not)."""
    return lstmtrace.step(Parameters.identity(4, 4), [10.0, -10.0, 0.3, 0.005], [0, 0, 0.2, 0])


def test_one_table_per_step(mixed):
    assert len(parse(render_html(mixed)).tables) == 1
    sequence = lstmtrace.run(Parameters.random(2, 3), np.ones((4, 2)))
    tables = parse(render_html(sequence)).tables
    assert len(tables) == 4
    assert render_html(sequence).count("<caption>step t = ") == 4


def test_gate_header_rows_in_pipeline_order_span_the_table(mixed):
    (table,) = parse(render_html(mixed)).tables
    width = len(table[0]["cells"])
    headers = [row["cells"] for row in table if row["class"] == "gate"]
    assert [cells[0][2] for cells in headers] == GATE_ORDER
    assert all(len(cells) == 1 and cells[0][1]["colspan"] == str(width) for cells in headers)
    assert list(body(table)) == [(g, q) for g, qs in PIPELINE for q in qs]


def test_the_numbers_are_the_traces_to_6_significant_digits(random_params):
    trace = lstmtrace.run(random_params, np.random.default_rng(3).normal(size=(2, 3)),
                          h0=[0.5, -1, 2, 0.1], c0=[1, -2, 0.3, 4])
    tables = parse(render_html(trace)).tables
    frame = trace.frame
    for t, table in enumerate(tables, start=1):
        shown = body(table)
        for (gate, quantity), cells in shown.items():
            expected = frame[(frame.step == t) & (frame.gate == gate) & (frame.quantity == quantity)]
            values = expected.sort_values("unit")["value"].to_numpy()
            assert [c[2] for c in cells[:len(values)]] == [f"{v:.6g}" for v in values]
            assert all(c[2] == "" for c in cells[len(values):])  # x is shorter than H: blanks
            np.testing.assert_allclose([float(c[2]) for c in cells[:len(values)]], values, rtol=1e-5)


def test_saturated_units_are_marked_and_no_others(mixed):
    (table,) = parse(render_html(mixed)).tables
    marked = {(gate, quantity, u) for (gate, quantity), cells in body(table).items()
              for u, (_, attrs, _) in enumerate(cells)
              if attrs.get("class") == "saturated" and attrs.get("title") == "saturated"}
    expected = set()
    for gate in ("forget", "input", "candidate", "output"):
        act = mixed.value(gate, "act")
        saturated = np.abs(act) > 0.99 if gate == "candidate" else (act < 0.01) | (act > 0.99)
        expected |= {(gate, "act", int(u)) for u in np.flatnonzero(saturated)}
    assert marked == expected
    # high and low for σ, both signs for tanh; tanh(0.005) is near 0, not near a bound
    assert {u for g, _, u in marked if g == "forget"} == {0, 1}
    assert {u for g, _, u in marked if g == "candidate"} == {0, 1}
    assert mixed.value("candidate", "act")[3] < 0.01
    page = render_html(mixed)
    assert page.count('class="saturated"') == len(expected)
    assert page.count('title="saturated"') == len(expected)
    assert "table.lstmtrace td.saturated" in page  # the style is scoped to the table's class
    assert any(n.startswith("Bold: a saturated unit") for n in parse(page).notes)


def test_nothing_saturated_nothing_marked(seed_question):
    params, given = seed_question
    page = render_html(lstmtrace.step(params, **given))
    assert 'title="saturated"' not in page
    assert parse(page).notes == []


def test_long_traces_show_5_steps_and_16_units_with_notes():
    trace = lstmtrace.run(Parameters.random(20, 40, seed=1), np.ones((8, 20)))
    parsed = parse(render_html(trace))
    assert len(parsed.tables) == MAX_STEPS == 5
    for table in parsed.tables:
        header = [c[2] for c in table[0]["cells"]]
        assert header == ["unit", *map(str, range(MAX_UNITS)), "…"]
        rows = body(table)
        assert all(len(cells) == MAX_UNITS + 1 for cells in rows.values())
        assert all(cells[-1][2] == "…" for cells in rows.values())  # x has 20 > 16 units too
    assert any("Units 0–15 of 40 shown" in n for n in parsed.notes)
    (steps_note,) = [n for n in parsed.notes if "more steps" in n]
    assert "3 more steps (8 in all)" in steps_note and "trace.to_text(steps=[6])" in steps_note


def test_short_traces_have_no_truncation(mixed):
    page = render_html(mixed)
    assert "…" not in page and "more steps" not in page and "shown" not in page


def test_text_is_escaped(mixed):
    class Odd(Trace):
        def __repr__(self):
            return "<script>alert('x & y')</script>"

    page = render_html(Odd(mixed.frame))
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#x27;x &amp; y&#x27;)&lt;/script&gt;" in page
    assert parse(page).paragraphs[0] == "<script>alert('x & y')</script>"
    # the trace's own repr is escaped too
    assert "&lt;Trace: 1 step(s)" in render_html(mixed)


def test_repr_html_is_render_html(mixed):
    assert mixed._repr_html_() == render_html(mixed)
