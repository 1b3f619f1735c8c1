"""The trace as Jupyter shows it: one HTML table per step, rows grouped by gate.

Each table has a header row per gate, in pipeline order (given, forget, input,
candidate, output, cell, hidden; a variant's cell says its own), then one row per
quantity that gate holds and one column per unit.  Every number is the trace's own
value with 6 significant digits; nothing is recomputed.  In each gate's ``act`` row
a saturated unit (within 0.01 of 0 or 1 for σ, of ±1 for tanh) is marked with the
class and title ``saturated`` (a gate taken away, the constant 1, never is).  A
variant's trace opens with a line naming it.

Long traces are cut short: the first 5 steps and the first 16 units, each with a
note saying how many there are and how to see the rest.
"""
import html

import numpy as np

from lstmtrace.cell import GATES, LSTM
from lstmtrace.text import naming, saturated

__all__ = ["render_html"]

MAX_STEPS = 5
MAX_UNITS = 16

STYLE = """<style>
table.lstmtrace { border-collapse: collapse; margin: 0.5em 0 1em; font-variant-numeric: tabular-nums; }
table.lstmtrace caption { text-align: left; font-weight: bold; }
table.lstmtrace th, table.lstmtrace td { padding: 1px 8px; text-align: right; }
table.lstmtrace th.quantity { text-align: left; font-weight: normal; font-family: monospace; }
table.lstmtrace tr.gate th { text-align: left; background: #eee; }
table.lstmtrace td.saturated { font-weight: bold; background: #fde3b0; }
</style>"""


def _table(trace, step: int, shown: int, more: bool) -> tuple:
    """One step's table (a header row per gate, a row per quantity, ``shown`` unit columns and
    perhaps "…"), and whether it marks any unit saturated."""
    e = html.escape
    vectors = trace.values(step)
    width = 1 + shown + more
    head = "".join(f"<th>{u}</th>" for u in range(shown)) + ("<th>…</th>" if more else "")
    any_marked = False
    rows = [f"<caption>{e(f'step t = {step}')}</caption>",
            f"<thead><tr><th class=\"quantity\">unit</th>{head}</tr></thead>", "<tbody>"]
    for gate, quantities in trace.cell.pipeline:
        rows.append(f"<tr class=\"gate\"><th colspan=\"{width}\">{e(gate)}</th></tr>")
        for quantity in quantities:
            vector = vectors[gate, quantity]
            marked = (saturated(gate, vector, trace.cell) if quantity == "act" and gate in GATES
                      else np.zeros(len(vector), dtype=bool))
            any_marked |= bool(marked[:shown].any())
            cells = []
            for u in range(shown):
                if u >= len(vector):
                    cells.append("<td></td>")
                elif marked[u]:
                    cells.append(f"<td class=\"saturated\" title=\"saturated\">{e(f'{vector[u]:.6g}')}</td>")
                else:
                    cells.append(f"<td>{e(f'{vector[u]:.6g}')}</td>")
            if more:
                cells.append("<td>…</td>" if len(vector) > shown else "<td></td>")
            rows.append(f"<tr><th class=\"quantity\">{e(quantity)}</th>{''.join(cells)}</tr>")
    rows.append("</tbody>")
    return "<table class=\"lstmtrace\">\n" + "\n".join(rows) + "\n</table>", any_marked


def render_html(trace) -> str:
    """The trace as an HTML fragment: a ``<style>`` block, then a table per step.

    >>> from lstmtrace import Parameters, step
    >>> page = render_html(step(Parameters.identity(1, 1), [10.0]))   # σ(10) ≈ 0.99995
    >>> page.count("<table "), '<td class="saturated" title="saturated">0.999955</td>' in page
    (1, True)
    """
    e = html.escape
    if hasattr(trace, "traces"):  # a Stack: each cell under its heading
        cells = [f"<h4>{e(f'layer {k} · {direction}')}</h4>\n{_cell(cell)}" for (k, direction), cell in trace.traces.items()]
        return "\n".join([STYLE, f"<div class=\"lstmtrace-stack\">\n<p>{e(repr(trace))}</p>", *cells, "</div>"]) + "\n"
    return f"{STYLE}\n{_cell(trace)}"


def _cell(trace) -> str:
    """One trace's tables and notes, in its ``<div>``."""
    e = html.escape
    units = max(trace.input_size, trace.hidden_size)
    shown, steps = min(units, MAX_UNITS), min(trace.steps, MAX_STEPS)
    more = units > shown
    parts = [f"<div class=\"lstmtrace\">\n<p>{e(repr(trace))}</p>"]
    if trace.cell is not LSTM:
        parts.append(f"<p class=\"variant\">{e(naming(trace.variant))}</p>")
    if trace.direction == "reverse":
        parts.append("<p class=\"direction\">Runs in reverse: step t read x_t, and its h_prev is step t+1's h.</p>")
    any_marked = False
    for t in range(1, steps + 1):
        table, marked = _table(trace, t, shown, more)
        parts.append(table)
        any_marked |= marked
    notes = []
    if more:
        notes.append(f"Units 0–{shown - 1} of {units} shown (input size E = {trace.input_size}, "
                     f"hidden size H = {trace.hidden_size}); trace.value(gate, quantity) "
                     "gives every unit.")
    if trace.steps > steps:
        notes.append(f"… and {trace.steps - steps} more steps ({trace.steps} in all): see one with "
                     f"trace.to_text(steps=[{steps + 1}]) or trace.value(gate, quantity, step={steps + 1}).")
    if any_marked:
        notes.append("Bold: a saturated unit, its activation within 0.01 of its bounds "
                     "(0 or 1 for σ, −1 or 1 for tanh).")
    parts.extend(f"<p class=\"note\">{e(n)}</p>" for n in notes)
    parts.append("</div>")
    return "\n".join(parts) + "\n"
