"""Where two traces part ways: the first stage that differs, by how much, and what it reaches.

Two values differ when ``|a − b| > atol + rtol · max(|a|, |b|)``; the defaults
(0, 0) call only identical numbers equal, so a recomputation that gives the
same bits is equal and anything else is reported.  The relative difference is
``|a − b| / max(|a|, |b|)`` (0 where both are 0).
"""
from typing import List, Optional

import numpy as np
import pandas as pd
from tabulate import tabulate

from lstmtrace.cell import layout
from lstmtrace.rows import size
from lstmtrace.trace import Trace

__all__ = ["TraceMismatch", "diff", "explain", "headline", "render"]

KEYS = ["step", "gate", "quantity"]


class TraceMismatch(ValueError):
    """Two traces that cannot be compared: different sizes or numbers of steps."""


def diff(a: Trace, b: Trace, atol: float = 0.0, rtol: float = 0.0, units: bool = False) -> pd.DataFrame:
    """The quantities in which ``b`` differs from ``a``, in pipeline order (empty when they agree).

    One row per (step, gate, quantity) that differs: how many units differ (of how
    many), the largest absolute and relative difference, and the first differing
    unit with its two values.  With ``units=True``, one row per differing unit.

    >>> from lstmtrace import Parameters, step
    >>> p = Parameters.identity(3, 3)
    >>> a = step(p, [10, 0, 0], [0, 0, 10])
    >>> b = step(p.copy().set("forget", "U", "zeros"), [10, 0, 0], [0, 0, 10])
    >>> diff(a, b)[["gate", "quantity", "units", "max_abs"]].head(3).round(4)
         gate quantity  units  max_abs
    0  forget       Uh      1     10.0
    1  forget   preact      1     10.0
    2  forget      act      1      0.5
    """
    if hasattr(a, "traces") or hasattr(b, "traces"):  # Stacks: cell by cell
        return _diff_stacks(a, b, atol, rtol, units)
    for what, x, y in (("input size E", a.input_size, b.input_size),
                       ("hidden size H", a.hidden_size, b.hidden_size),
                       ("number of steps", a.steps, b.steps)):
        if x != y:
            raise TraceMismatch(f"the traces have different {what}: {x} and {y}")
    if atol < 0 or rtol < 0:
        raise ValueError("atol and rtol must be ≥ 0")
    # a trace with gradients and one without are compared on their forward rows
    forward_rows = a.steps * layout(a.input_size, a.hidden_size, cell=a.cell).width
    same_rows = a.cell.pipeline == b.cell.pipeline and a.cell.proj_size == b.cell.proj_size
    both = len(a.frame) if a.has_gradients == b.has_gradients else forward_rows
    fa = a.frame.iloc[:both]
    if same_rows:  # the rows mean the same, position by position
        fb, only = b.frame.iloc[:both], ([], [])
    else:  # different variants: compared on the (gate, quantity, unit)s they share, in A's order
        fb_all = b.frame.iloc[:len(b.frame) if a.has_gradients == b.has_gradients else
                              b.steps * layout(b.input_size, b.hidden_size, cell=b.cell).width]
        on = ["step", "gate", "quantity", "unit"]
        keys_a, keys_b = (f[on].astype({"gate": str, "quantity": str}) for f in (fa, fb_all))
        shared = keys_a.reset_index().merge(keys_b.reset_index(), on=on, how="inner", suffixes=("_a", "_b"))
        fa, fb = fa.iloc[shared["index_a"].to_numpy()], fb_all.iloc[shared["index_b"].to_numpy()]
        stages_a, stages_b = _stage_order(keys_a), _stage_order(keys_b)
        only = ([s for s in stages_a if s not in stages_b], [s for s in stages_b if s not in stages_a])
    va, vb = fa["value"].to_numpy(), fb["value"].to_numpy()
    abs_diff = np.abs(va - vb)
    scale = np.maximum(np.abs(va), np.abs(vb))
    rel_diff = np.divide(abs_diff, scale, out=np.zeros_like(abs_diff), where=scale > 0)
    differs = abs_diff > atol + rtol * scale
    rows = pd.DataFrame({
        **{k: fa[k].to_numpy() for k in KEYS}, "unit": fa["unit"].to_numpy(),
        "a": va, "b": vb, "abs_diff": abs_diff, "rel_diff": rel_diff,
    })[differs].reset_index(drop=True)
    for k in ("gate", "quantity"):
        rows[k] = rows[k].astype(a.frame[k].dtype)
    gradients_only_in = [n for n, t in (("A", a), ("B", b)) if t.has_gradients and both == forward_rows]
    if units:
        return _attrs(rows, a, b, atol, rtol, gradients_only_in, len(va), only)
    # the rows of one step's quantity are contiguous, so grouping in order of appearance keeps
    # pipeline order (forward rows, then gradients)
    groups = rows.groupby(KEYS, sort=False, observed=True)
    summary = groups.first()[["unit", "a", "b"]].rename(columns={"unit": "first_unit"}).reset_index()
    summary.insert(3, "units", groups.size().to_numpy())
    summary.insert(4, "of", [size(g, q, a.input_size, a.hidden_size, a.cell)
                             for g, q in zip(summary["gate"], summary["quantity"])])
    summary.insert(5, "max_abs", groups["abs_diff"].max().to_numpy())
    summary.insert(6, "max_rel", groups["rel_diff"].max().to_numpy())
    return _attrs(summary, a, b, atol, rtol, gradients_only_in, len(va), only)


def _diff_stacks(a, b, atol: float, rtol: float, units: bool) -> pd.DataFrame:
    """Two :class:`lstmtrace.Stack` s compared cell by cell: :func:`diff`'s rows with ``layer`` and
    ``direction`` first, in layer order."""
    cells = lambda t: list(t.traces) if hasattr(t, "traces") else None
    if cells(a) is None or cells(b) is None:
        one = "A" if cells(a) is None else "B"
        raise TraceMismatch(f"{one} is a trace of one cell and the other of several (a stack)")
    if cells(a) != cells(b):
        spelled = lambda t: ", ".join(f"layer {k} {d}" for k, d in cells(t))
        raise TraceMismatch(f"the traces hold different cells: A has {spelled(a)}; B has {spelled(b)}")
    parts, attrs = [], {"compared": 0, "variants": None, "only_a": [], "only_b": [], "skipped_a": [], "skipped_b": []}
    for (k, direction), cell_a in a.traces.items():
        try:
            part = diff(cell_a, b.traces[k, direction], atol, rtol, units)
        except TraceMismatch as e:
            raise TraceMismatch(f"layer {k} {direction}: {e}") from None
        for name in ("only_a", "only_b", "skipped_a", "skipped_b"):
            attrs[name] += [item for item in part.attrs[name] if item not in attrs[name]]
        attrs["compared"] += part.attrs["compared"]
        attrs["variants"] = attrs["variants"] or part.attrs["variants"]
        part.insert(0, "direction", direction)
        part.insert(0, "layer", k)
        parts.append(part)
    frame = pd.concat(parts, ignore_index=True)
    frame.attrs.update(attrs, atol=atol, rtol=rtol, steps=a.steps)
    return frame


def _stage_order(keys: pd.DataFrame) -> dict:
    """The (gate, quantity)s of a frame's rows, once each, in order (a dict: ordered, and fast to look in)."""
    return dict.fromkeys(zip(keys["gate"], keys["quantity"]))


def _variant_words(trace: Trace) -> str:
    return f"the {trace.variant.name} variant" if trace.variant.name not in (None, "np") else \
        (trace.variant.describe() or "lstmtrace's default LSTM")


def _attrs(frame: pd.DataFrame, a: Trace, b: Trace, atol: float, rtol: float,
           gradients_only_in: List[str], compared: int, only: tuple) -> pd.DataFrame:
    variants = (_variant_words(a), _variant_words(b)) if a.variant != b.variant else None
    only_a, only_b = ([f"{g}.{q}" for g, q in stages] for stages in only)
    frame.attrs.update(atol=atol, rtol=rtol, compared=compared, steps=a.steps, variants=variants,
                       only_a=only_a, only_b=only_b,
                       skipped_a=list(a.skipped) + (["gradients"] if "A" in gradients_only_in else []),
                       skipped_b=list(b.skipped) + (["gradients"] if "B" in gradients_only_in else []))
    return frame


def explain(summary: pd.DataFrame, units: Optional[pd.DataFrame] = None, markdown: bool = False,
            precision: int = 6) -> str:
    """The diff as a learner reads it: a headline, what the difference reaches, then the table."""
    lines = headline(summary)
    table = summary.assign(quantity=summary["gate"].astype(str) + "." + summary["quantity"].astype(str),
                           units=summary["units"].astype(str) + "/" + summary["of"].astype(str))
    parts = [" ".join(lines[:1]), *lines[1:]]
    fmt = "github" if markdown else "simple"
    if len(summary):
        columns = (["layer", "direction"] if "layer" in summary else []) + \
            (["step"] if summary.attrs.get("steps", 1) > 1 else []) + ["quantity", "units", "max_abs", "max_rel"]
        parts.append(tabulate(table[columns], headers=[c.replace("_", " ") for c in columns],
                              tablefmt=fmt, showindex=False, floatfmt=f".{precision}g"))
    if units is not None and len(units):
        shown = units.assign(quantity=units["gate"].astype(str) + "." + units["quantity"].astype(str))
        columns = (["layer", "direction"] if "layer" in units else []) + \
            ["step", "quantity", "unit", "a", "b", "abs_diff", "rel_diff"]
        parts.append(tabulate(shown[columns], headers=[c.replace("_", " ") for c in columns],
                              tablefmt=fmt, showindex=False, floatfmt=f".{precision}g"))
    return "\n\n".join(parts) + "\n"


def headline(summary: pd.DataFrame) -> List[str]:
    """Sentences: where the traces first part ways, and which later quantities the difference reaches."""
    attrs = summary.attrs
    tolerance = f"atol={attrs.get('atol', 0):g}, rtol={attrs.get('rtol', 0):g}"
    notes, first_note = [], []
    if attrs.get("variants"):
        first_note = ["The traces are of different LSTM variants: A is {}, B is {}.".format(*attrs["variants"])]
        for side in ("a", "b"):
            if attrs.get(f"only_{side}"):
                first_note.append(f"Only {side.upper()} has {_listed(attrs[f'only_{side}'])}; the rest is compared.")
    for side in ("a", "b"):
        if attrs.get(f"skipped_{side}"):
            notes.append(f"Compared on what both traces have; skipped from {side.upper()}: "
                         f"{', '.join(attrs[f'skipped_{side}'])}.")
    if summary.empty:
        return [*first_note, f"The traces agree: all {attrs.get('compared', 0)} values are equal within "
                f"{tolerance}.", *notes]
    first = summary.iloc[0]
    where = f"{first['gate']}.{first['quantity']}"
    at_step = f"step {first['step']}, " if attrs.get("steps", 1) > 1 else ""
    in_cell, other_cells = "", []
    if "layer" in summary:  # a stack's: the first cell that differs, and the cells it reaches after
        in_cell = f"layer {first['layer']} ({first['direction']}), "
        same = (summary["layer"] == first["layer"]) & (summary["direction"] == first["direction"])
        other_cells = list(dict.fromkeys(f"layer {k} ({d})" for k, d in
                                         zip(summary["layer"][~same], summary["direction"][~same])))
        summary = summary[same]
    lead = ("the traces differ from the start" if (first["step"], where) == (1, "given.x") and
            (not in_cell or first["layer"] == 0) else f"traces agree up to {in_cell}{at_step}{where}")
    lines = [f"{lead[0].upper()}{lead[1:]}; first difference {'in ' + in_cell if in_cell else 'at '}step "
             f"{first['step']}, {where}, unit "
             f"{first['first_unit']}: {float(first['a'])!r} vs {float(first['b'])!r}."]
    later = summary.iloc[1:]
    same_step = later[later["step"] == first["step"]]
    reach = [f"{g}.{q}" for g, q in zip(same_step["gate"], same_step["quantity"])]
    if reach:
        lines.append(f"It reaches {', '.join(reach)}" + (f" at step {first['step']}" if at_step else "") + ".")
    later_steps = sorted(set(later["step"]) - {first["step"]})
    if later_steps:
        lines.append(f"It carries on into step{'s' if len(later_steps) > 1 else ''} "
                     f"{_ranges(later_steps)}, through h and c.")
    if other_cells:
        lines.append(f"It reaches {_listed(other_cells)}.")
    lines.append(f"{len(summary)} quantit{'ies' if len(summary) > 1 else 'y'} differ"
                 f"{' in ' + in_cell.rstrip(', ') if in_cell else ''} (within {tolerance}).")
    return first_note + lines + notes



def _listed(names: List[str], most: int = 6) -> str:
    """'a, b, c' (and how many more, past ``most``)."""
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")


def _ranges(steps: List[int]) -> str:
    """'2-4, 7' from [2, 3, 4, 7]."""
    out, start = [], steps[0]
    for prev, cur in zip(steps, steps[1:] + [None]):
        if cur != prev + 1 if cur is not None else True:
            out.append(f"{start}-{prev}" if prev > start else f"{start}")
            start = cur
    return ", ".join(out)


def render(summary: pd.DataFrame, units: Optional[pd.DataFrame], fmt: str, precision: int = 6) -> str:
    """A diff in one of the formats it is written in (``lstmtrace.formats.FORMATS`` with ``diff``):
    the explanation as text or Markdown, or the table (per unit when ``units``) as CSV or JSON."""
    from lstmtrace.tracefile import records_json

    table = units if units is not None else summary
    if fmt in ("text", "markdown"):
        return explain(summary, units, markdown=fmt == "markdown", precision=precision)
    if fmt == "csv":
        return table.to_csv(index=False, lineterminator="\n")
    if fmt == "json":
        return records_json(table)
    raise ValueError(f"a diff is not written as {fmt!r}")
