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

__all__ = ["ROLES", "TraceMismatch", "diff", "explain", "explain_side_by_side", "headline", "render",
           "side_by_side"]

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
    # a trace with gradients and one without (or with its parameters' gradients kept another way:
    # param_grads) are compared on their forward rows
    forward_rows = a.steps * layout(a.input_size, a.hidden_size, cell=a.cell).width
    same_rows = a.cell.pipeline == b.cell.pipeline and a.cell.proj_size == b.cell.proj_size
    same_grads = a.param_grads == b.param_grads
    both = len(a.frame) if same_grads else forward_rows
    fa = a.frame.iloc[:both]
    if same_rows:  # the rows mean the same, position by position
        fb, only = b.frame.iloc[:both], ([], [])
    else:  # different variants: compared on the (gate, quantity, unit)s they share, in A's order
        fb_all = b.frame.iloc[:len(b.frame) if same_grads else
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
    story = _Story(a, b, rows)
    rows["role"] = story.roles_of(rows)
    if units:
        return story.attach(_attrs(rows, a, b, atol, rtol, gradients_only_in, len(va), only))
    # the rows of one step's quantity are contiguous, so grouping in order of appearance keeps
    # pipeline order (forward rows, then gradients)
    groups = rows.groupby(KEYS, sort=False, observed=True)
    summary = groups.first()[["unit", "a", "b"]].rename(columns={"unit": "first_unit"}).reset_index()
    summary.insert(3, "units", groups.size().to_numpy())
    summary.insert(4, "of", [size(g, q, a.input_size, a.hidden_size, a.cell)
                             for g, q in zip(summary["gate"], summary["quantity"])])
    summary.insert(5, "max_abs", groups["abs_diff"].max().to_numpy())
    summary.insert(6, "max_rel", groups["rel_diff"].max().to_numpy())
    summary["role"] = groups["role"].first().to_numpy()
    return story.attach(_attrs(summary, a, b, atol, rtol, gradients_only_in, len(va), only))


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
                       skipped_a=list(a.skipped) + ([_gradients(a, b)] if "A" in gradients_only_in else []),
                       skipped_b=list(b.skipped) + ([_gradients(b, a)] if "B" in gradients_only_in else []))
    return frame


def _gradients(t, other) -> str:
    """What :func:`diff` left out of ``t``: its gradients, and why when ``other`` has gradients kept another way."""
    return "gradients" if not other.has_gradients else f"gradients (param_grads {t.param_grads!r})"


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
            (["step"] if summary.attrs.get("steps", 1) > 1 else []) + ["quantity", "units", "max_abs", "max_rel"] + \
            (["role"] if "role" in summary else [])
        parts.append(tabulate(table[columns], headers=[c.replace("_", " ") for c in columns],
                              tablefmt=fmt, showindex=False, floatfmt=f".{precision}g"))
    if len(summary) and "layer" not in summary and "changes" in summary.attrs:
        parts += _details(summary, markdown, precision)
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
             f"{first['first_unit']}: {float(first['a'])!r} → {float(first['b'])!r}."]
    if not in_cell and "causes" in attrs:
        return first_note + lines + _story_lines(summary, bool(at_step), tolerance) + notes
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


def _story_lines(summary: pd.DataFrame, many: bool, tolerance: str) -> List[str]:
    """The headline of one cell's diff after its first line: the causes, what they reach, what h_prev and
    c_prev carry into later steps, weights that differ without showing, and how many quantities differ."""
    attrs, lines = summary.attrs, []
    causes = attrs["causes"]
    inputs = [c for c in causes if c["kind"] == "input"]
    made = [c for c in causes if c["kind"] != "input"]
    first_step = attrs.get("run_first", int(summary["step"].min()))  # the first step the cell ran that differs
    if made and not any(c["steps"][0] == first_step for c in inputs):
        lines.append("The given inputs (x, h_prev, c_prev) are the same" + (f" at step {first_step}" if many else "")
                     + ", so the difference starts in the cell itself, not in what it was given.")
    said = [f"{c['name']} differs{_steps_words(c['steps'], many)} ({c['why']})" for c in causes]
    if said:
        lines.append(f"Cause{'s' if len(said) > 1 else ''}: " + "; ".join(said) + ".")
    reached = attrs.get("reached", [])
    if reached:
        lines.append(f"Reached (computed from what differs): {_listed(reached, 12)}.")
    carried = sorted(set(summary["step"][summary["role"] == "carried"]))
    if carried:
        which = list(dict.fromkeys(str(q) for q, r in zip(summary["quantity"], summary["role"]) if r == "carried"))
        lines.append(f"Carried: {' and '.join(which)} bring the difference forward into step"
                     f"{'s' if len(carried) > 1 else ''} {_ranges([int(s) for s in carried])} "
                     "(a consequence of earlier steps, not a new cause).")
    if "gradient" in set(summary["role"]):
        lines.append("The backward pass differs too (gradients are computed from the whole step).")
    lines += attrs.get("silent", [])
    lines.append(f"{len(summary)} quantit{'ies differ' if len(summary) > 1 else 'y differs'} (within {tolerance}).")
    return lines


def _details(summary: pd.DataFrame, markdown: bool, precision: int) -> List[str]:
    """The parts of a one-cell diff's text after the table: unit by unit, why units stayed put, and what
    the table's columns and the tolerances mean."""
    from lstmtrace.text import number

    attrs, parts = summary.attrs, []
    bullet = "- " if markdown else "  "
    many = attrs.get("steps", 1) > 1
    changes = attrs.get("changes", [])
    if changes:
        names = [f"{'step ' + str(s) + ', ' if many else ''}{g}.{q} unit {u}:" for s, g, q, u, *_ in changes]
        width = max(len(n) for n in names)
        lines = [f"{bullet}{n:<{width}} {number(va, precision)} → {number(vb, precision)}"
                 f"{', ' + note if note else ''}".rstrip()
                 for n, (_, _, _, _, va, vb, note) in zip(names, changes)]
        more = attrs.get("differing_units", len(changes)) - len(changes)
        if more > 0:
            lines.append(f"{bullet}… and {more} more differing unit{'s' if more > 1 else ''} (--units lists them all)")
        parts.append("Unit by unit, A → B:\n" + ("\n" if markdown else "") + "\n".join(lines))
    stayed = attrs.get("stayed", [])
    if stayed:
        more = attrs.get("stayed_more", 0)
        lines = [f"{bullet}{s}" for s in stayed] + ([f"{bullet}… and {more} more"] if more else [])
        parts.append("Why some units stayed put:\n" + ("\n" if markdown else "") + "\n".join(lines))
    parts.append(_tolerance_words(attrs.get("atol", 0), attrs.get("rtol", 0)))
    return parts


def _tolerance_words(atol: float, rtol: float) -> str:
    here = "here atol = rtol = 0, so only identical numbers count as equal" if atol == 0 and rtol == 0 else \
        f"here atol = {atol:g}, rtol = {rtol:g}"
    return ("max abs is the largest |B - A| over a quantity's units; max rel the largest |B - A| / max(|A|, |B|), "
            "the difference as a share of the larger of the two (1 when one of them is 0, up to 2 when their "
            "signs differ). Values count as equal when |B - A| ≤ atol + rtol·max(|A|, |B|); " + here + ".")


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
    the explanation as text or Markdown, or the table (per unit when ``units``) as CSV or JSON.  A
    :func:`side_by_side` table is written the same way (``units`` None)."""
    from lstmtrace.tracefile import records_json

    table = units if units is not None else summary
    if fmt in ("text", "markdown"):
        if "names" in summary.attrs:  # a side-by-side of several traces
            return explain_side_by_side(summary, markdown=fmt == "markdown", precision=precision)
        return explain(summary, units, markdown=fmt == "markdown", precision=precision)
    if fmt == "csv":
        return table.to_csv(index=False, lineterminator="\n")
    if fmt == "json":
        return records_json(table)
    raise ValueError(f"a diff is not written as {fmt!r}")


# -- cause and consequence ---------------------------------------------------------------------------

ROLES = ("input", "cause", "carried", "reached", "gradient")
"""What a differing quantity is to the diff: ``input`` a given value that differs (x, or the starting h_prev,
c_prev); ``cause`` a quantity that differs while everything it is computed from agrees, so its weight (or
how the cell computes it) differs; ``carried`` h_prev or c_prev of a later step, which bring an earlier
difference forward; ``reached`` computed from something that differs; ``gradient`` the backward pass."""

MOST_UNITS = 20
"""How many differing units the text lists one by one (before → after); it says how many more there are."""

MOST_STAYED = 8
"""How many "why these units stayed put" sentences the text gives."""

_INPUT_OF = {"Wx": "x", "Uh": "h_prev"}  # the given vector each weight's product multiplies
_WEIGHT_OF = {"Wx": "W", "Uh": "U", "bias": "b", "Pc": "P"}


def _sources(cell, gate: str, quantity: str):
    """What ``gate.quantity`` is computed from in ``cell``: ((gate, quantity), ...) and the weight it uses
    (``"W"``, ``"U"``, ``"b"``, ``"P"``, ``"W_hr"`` or None); None for a quantity it does not know."""
    if gate == "given":
        return (), None
    if gate == "cell":
        return {"forget*c_prev": ((("forget", "act"), ("given", "c_prev")), None),
                "input*candidate": ((("input", "act"), ("candidate", "act")), None),
                "c": ((("cell", "forget*c_prev"), ("cell", "input*candidate")), None)}.get(quantity)
    if gate == "hidden":
        hidden = dict(cell.after).get("hidden", ())
        squashed = next((q for q in hidden if q.endswith("(c)") and not q.startswith("output*")), None)
        if quantity == squashed:
            return (("cell", "c"),), None
        if quantity.startswith("output*"):
            return (("output", "act"), ("hidden", squashed)), None
        if quantity == "h":
            product = next((q for q in hidden if q.startswith("output*")), None)
            if product is not None:
                return (("hidden", product),), "W_hr"
            return (("output", "act"), ("hidden", squashed)), None
        return None
    try:
        spec = cell.gate(gate)
    except (KeyError, ValueError, StopIteration):
        return None
    if quantity in ("Wx", "Uh"):
        return (("given", _INPUT_OF[quantity]),), _WEIGHT_OF[quantity]
    if quantity == "bias":
        return (), "b"
    if quantity == "Pc":
        return ((("cell", "c") if spec.peeps == "c" else ("given", "c_prev")),), "P"
    if quantity == "preact":
        return tuple((gate, q) for q in ("Wx", "Uh", "bias", "Pc") if q in spec.quantities), None
    if quantity == "clipped":
        return ((gate, "preact"),), None
    if quantity == "act":
        if spec.rule == "one":
            return (), None
        if spec.rule == "complement":
            return ((spec.complements, "act"),), None
        return ((gate, "clipped" if "clipped" in spec.quantities else "preact"),), None
    return None


def _weight_name(cell, gate: str, param: str) -> str:
    """``W_f`` for the forget gate's W (PyTorch's letter as the subscript), ``W_hr`` for the projection."""
    if param == "W_hr":
        return "W_hr"
    return f"{param}_{cell.gate(gate).index}"


def _product(cell, gate: str, quantity: str) -> str:
    """How the trace's ``gate.quantity`` is written as a product of a weight and an input."""
    if quantity == "Wx":
        return f"{_weight_name(cell, gate, 'W')}·x"
    if quantity == "Uh":
        return f"{_weight_name(cell, gate, 'U')}·h_prev"
    if quantity == "Pc":
        return f"{_weight_name(cell, gate, 'P')}*{'c' if cell.gate(gate).peeps == 'c' else 'c_prev'}"
    if quantity == "bias":
        return _weight_name(cell, gate, "b")
    if quantity == "h":
        return f"W_hr·({dict(cell.after)['hidden'][1]})"
    return f"{gate}.{quantity}"


def _units(units) -> str:
    units = [int(u) for u in units]
    return f"unit{'s' if len(units) > 1 else ''} {_listed([str(u) for u in units], 8)}"


def _steps_words(steps, many: bool) -> str:
    return f" at step{'s' if len(steps) > 1 else ''} {_ranges(sorted(steps))}" if many else ""


class _Story:
    """Why two (one-cell) traces differ, told from their differing units: each quantity's role, the causes
    (with the weights themselves when both traces carry them), before → after per unit, and why units
    that did not change stayed put.  The sentences and numbers go into the diff's ``attrs`` as plain
    lists, so that :func:`explain` can print them without the traces."""

    def __init__(self, a: Trace, b: Trace, rows: pd.DataFrame):
        self.a, self.b, self.cell = a, b, a.cell
        self.many = a.steps > 1
        self.first_step = a.steps if getattr(a, "direction", "forward") == "reverse" else 1
        self.differ = {}  # (step, gate, quantity) -> the differing units, in order
        if len(rows):  # a quantity's units are contiguous: split where the key changes
            gate_codes, quantity_codes = rows["gate"].cat.codes.to_numpy(), rows["quantity"].cat.codes.to_numpy()
            steps = rows["step"].to_numpy()
            starts = np.flatnonzero(np.r_[True, (np.diff(steps) != 0) | (np.diff(gate_codes) != 0) |
                                          (np.diff(quantity_codes) != 0)])
            gate_names = [str(g) for g in rows["gate"].cat.categories]
            quantity_names = [str(q) for q in rows["quantity"].cat.categories]
            for start, units in zip(starts.tolist(), np.split(rows["unit"].to_numpy(), starts[1:])):
                key = (int(steps[start]), gate_names[gate_codes[start]], quantity_names[quantity_codes[start]])
                self.differ[key] = units.tolist()
            self._lengths = np.diff(np.r_[starts, len(rows)])
        pa, pb = a.params, b.params
        self.weights = self._weights(pa, pb) if pa is not None and pb is not None else None
        self.pa, self.pb = pa, pb
        self.role = {key: self._role(*key) for key in self.differ}

    # -- roles

    def _weights(self, pa, pb) -> dict:
        """{(gate, param): (entries that differ, entries, max |B - A|, A's array, B's array)} for the weights
        both traces carry with the same shape and that differ."""
        pairs = [((gate, param), getattr(pa[gate], param, None), getattr(pb[gate], param, None))
                 for gate in pa.gates if gate in pb.gates for param in ("W", "U", "b", "P")]
        pairs.append((("hidden", "W_hr"), pa.W_hr, pb.W_hr))
        out = {}
        for key, wa, wb in pairs:
            if wa is None or wb is None or np.shape(wa) != np.shape(wb):
                continue
            wa, wb = np.asarray(wa, dtype=float), np.asarray(wb, dtype=float)
            changed = ~((wa == wb) | (np.isnan(wa) & np.isnan(wb)))
            if changed.any():
                out[key] = (int(changed.sum()), wa.size, float(np.abs(wb - wa)[changed].max()), wa, wb)
        return out

    def _role(self, step: int, gate: str, quantity: str) -> str:
        if quantity.startswith("grad:"):
            return "gradient"
        if gate == "given":
            return "input" if quantity == "x" or step == self.first_step else "carried"
        found = _sources(self.cell, gate, quantity)
        if found is None:
            return "reached"
        sources, weight = found
        upstream = any((step, g, q) in self.differ for g, q in sources)
        if weight is not None and self.weights is not None and (gate, weight) in self.weights:
            return "cause"  # its own weight differs, whatever else does
        return "reached" if upstream else "cause"

    def roles_of(self, rows: pd.DataFrame) -> np.ndarray:
        """The role of each of the differing units this story was told from (``rows``, in their order)."""
        if not len(rows):
            return np.array([], dtype=object)
        return np.repeat(np.array([self.role[k] for k in self.differ], dtype=object), self._lengths)

    # -- the story

    def causes(self) -> List[dict]:
        """Each cause once, in pipeline order: what differs, the sentence that says how we know, the steps."""
        found = {}
        for (step, gate, quantity), role in self.role.items():
            if role == "input":
                key = ("given", quantity)
                if key not in found:
                    why = "different inputs" if quantity == "x" else "a different starting state"
                    found[key] = {"name": f"given.{quantity}", "kind": "input", "why": why, "steps": []}
            elif role == "cause":
                weight = (_sources(self.cell, gate, quantity) or ((), None))[1]
                key = (gate, weight) if weight is not None else (gate, quantity)
                if key not in found:
                    found[key] = {"name": f"{gate}.{weight}" if weight else f"{gate}.{quantity}",
                                  "kind": "weight" if weight else "computation",
                                  "why": self._why(gate, quantity, weight), "steps": []}
            else:
                continue
            found[key]["steps"].append(step)
        for cause in found.values():
            cause["steps"] = sorted(set(cause["steps"]))
        return list(found.values())

    def _why(self, gate: str, quantity: str, weight: Optional[str]) -> str:
        if weight is None:
            sources = _sources(self.cell, gate, quantity)[0]
            other = (_sources(self.b.cell, gate, quantity) or ((), None))[0]
            spelled = lambda stages: ", ".join(f"{g}.{q}" for g, q in stages) or "nothing"
            if set(other) != set(sources):
                return f"the cells compute it differently: A from {spelled(sources)}, B from {spelled(other)}"
            return f"the cells compute it differently from the same {spelled(sources)}"
        name = _weight_name(self.cell, gate, weight)
        if self.weights is not None and (gate, weight) in self.weights:
            n, size, largest, _, _ = self.weights[gate, weight]
            return f"{name} differs in {n} of {size} entr{'ies' if size > 1 else 'y'}, by up to {largest:.6g}"
        if weight == "b":
            return f"the bias {name} is added as it is"
        source = {"Wx": "x", "Uh": "h_prev", "Pc": "c" if self.cell.gate(gate).peeps == "c" else "c_prev",
                  "h": dict(self.cell.after)["hidden"][1]}.get(quantity, "its input")
        return f"{_product(self.cell, gate, quantity)} differs while {source} is the same"

    def silent(self) -> List[str]:
        """Weights that differ (both traces carry them) yet change no traced value, and why where it shows."""
        if not self.weights:
            return []
        named = {(c["name"].split(".")[0], c["name"].split(".")[1]) for c in self.causes() if c["kind"] == "weight"}
        out = []
        for (gate, param), (n, entries, largest, wa, wb) in self.weights.items():
            if (gate, param) in named:
                continue
            name = _weight_name(self.cell, gate, param)
            sentence = f"{gate}.{param} differs too ({name}: {n} of {entries} entries, by up to {largest:.6g}) " \
                       "but changes no traced value"
            vector = {"W": "x", "U": "h_prev"}.get(param)
            if vector is not None and wa.ndim == 2:
                columns = np.flatnonzero((wa != wb).any(axis=0))
                zero = all(np.all(self.a.value("given", vector, s)[columns] == 0) for s in range(1, self.a.steps + 1))
                if zero:
                    sentence += f": {vector} is 0 in {_units(columns)}{', at every step' if self.many else ''}, " \
                                f"the columns where {name} differs"
            out.append(sentence + ".")
        return out

    def changes(self) -> List[tuple]:
        """The first :data:`MOST_UNITS` differing units of the forward pass: (step, gate, quantity, unit, A, B,
        what happens to saturation)."""
        from lstmtrace.text import saturated

        gates = {spec.name for spec in self.cell.gates}
        out = []
        for (step, gate, quantity), units in self.differ.items():
            if quantity.startswith("grad:"):
                continue
            va, vb = self.a.value(gate, quantity, step), self.b.value(gate, quantity, step)
            for unit in units:
                if len(out) == MOST_UNITS:
                    return out
                note = ""
                if quantity == "act" and gate in gates and gate in {s.name for s in self.b.cell.gates}:
                    sa = bool(saturated(gate, np.array([va[unit]]), self.cell)[0])
                    sb = bool(saturated(gate, np.array([vb[unit]]), self.b.cell)[0])
                    note = "becomes saturated" if sb and not sa else "leaves saturation" if sa and not sb else ""
                out.append((step, gate, quantity, int(unit), float(va[unit]), float(vb[unit]), note))
        return out

    def stayed(self) -> List[str]:
        """Why units of a differing quantity stayed put, where the numbers show it."""
        out = []
        seen = set()
        for (step, gate, quantity), units in self.differ.items():
            role = self.role[step, gate, quantity]
            if quantity in ("Wx", "Uh", "Pc") and role == "cause" and (gate, quantity) not in seen:
                seen.add((gate, quantity))
                out += self._stayed_product(step, gate, quantity, units)
            elif (gate, quantity) in _FACTORS or (gate == "hidden" and quantity.startswith("output*")) or \
                    (gate == "hidden" and quantity == "h" and self.cell.proj_size is None):
                out += self._stayed_factors(step, gate, quantity, units)
        for (step, gate, quantity) in _factor_only(self):
            out += self._stayed_factors(step, gate, quantity, [])
        return list(dict.fromkeys(out))

    def _stayed_product(self, step, gate, quantity, units) -> List[str]:
        size_of = len(self.a.value(gate, quantity, step))
        still = [u for u in range(size_of) if u not in set(units)]
        if not still:
            return []
        vector = {"Wx": "x", "Uh": "h_prev"}.get(quantity) or \
            ("c" if self.cell.gate(gate).peeps == "c" else "c_prev")
        source = self.a.value("cell" if vector == "c" else "given", vector, step)
        if not np.array_equal(source, self.b.value("cell" if vector == "c" else "given", vector, step)):
            return []
        at = f" at step {step}" if self.many else ""
        where = f"{gate}.{quantity} {_units(still)}{at}"
        weight = _WEIGHT_OF[quantity]
        name = _weight_name(self.cell, gate, weight)
        if self.weights is not None and (gate, weight) in self.weights:
            _, _, _, wa, wb = self.weights[gate, weight]
            same = [u for u in still if np.array_equal(wa[u], wb[u])]
            masked = [u for u in still if u not in same and wa.ndim == 2 and
                      np.all(source[np.flatnonzero(wa[u] != wb[u])] == 0)]
            if wa.ndim == 1:
                masked = [u for u in still if u not in same and source[u] == 0]
            out = []
            if same:
                out.append(f"{gate}.{quantity} {_units(same)}{at} stay{'s' if len(same) == 1 else ''} put: "
                           f"{'row' if wa.ndim == 2 else 'unit'}{'s' if len(same) > 1 else ''} "
                           f"{_listed([str(u) for u in same], 8)} of {name} are the same in A and B.")
            if masked:
                zero = np.flatnonzero(source == 0)
                rows = "row" + ("s" if len(masked) > 1 else "") + " " + _listed([str(u) for u in masked], 8)
                out.append(f"{gate}.{quantity} {_units(masked)}{at} stay{'s' if len(masked) == 1 else ''} put "
                           "though " + (f"{rows} of {name} differ only in columns where {vector} is 0 "
                                        f"({vector} is 0 in {_units(zero)})" if wa.ndim == 2 else
                                        f"{name} differs there: {vector} is 0 there, so {name}*{vector} is 0") + ".")
            return out
        zero = np.flatnonzero(source == 0)
        if not len(zero):
            return []
        if quantity == "Pc":
            held = [u for u in still if source[u] == 0]
            return [f"{where} stay{'s' if len(still) == 1 else ''} put where {vector} is 0 ({_units(held)}): "
                    f"{name}*{vector} is 0 there whatever {name} holds."] if held else []
        return [f"{where} stay{'s' if len(still) == 1 else ''} put; {vector} is 0 in {_units(zero)}{at}, so "
                f"column{'s' if len(zero) > 1 else ''} {_listed([str(u) for u in zero], 8)} of {name} add "
                f"nothing to {_product(self.cell, gate, quantity)}: a change there would not show."]

    def _stayed_factors(self, step, gate, quantity, units) -> List[str]:
        factors = _factors(self.cell, gate, quantity)
        if factors is None:
            return []
        product_moved = set(units)
        out = []
        for moving, other in (factors, factors[::-1]):
            moved = set(self.differ.get((step,) + moving, ()))
            if not moved or (step,) + other in self.differ:
                continue
            held = self.a.value(*other, step)
            still = sorted(u for u in moved - product_moved if held[u] == 0)
            if still:
                at = f" at step {step}" if self.many else ""
                out.append(f"{gate}.{quantity} {_units(still)}{at} stay{'s' if len(still) == 1 else ''} put though "
                           f"{moving[0]}.{moving[1]} changes there: {other[0]}.{other[1]} is 0 there.")
        return out

    def attach(self, frame: pd.DataFrame) -> pd.DataFrame:
        stayed = self.stayed()
        order = {stage: k for k, stage in enumerate(layout(1, 1, cell=self.cell).stages)}
        reached = sorted({(g, q) for (s, g, q), role in self.role.items() if role == "reached"},
                         key=lambda stage: order.get(stage, len(order)))
        steps = [k[0] for k in self.differ]
        run_first = (max(steps) if self.first_step != 1 else min(steps)) if steps else self.first_step
        frame.attrs.update(reached=[f"{g}.{q}" for g, q in reached], run_first=run_first, causes=self.causes(),
                           changes=self.changes(), stayed=stayed[:MOST_STAYED], stayed_more=max(0, len(stayed) - MOST_STAYED), silent=self.silent(),
                           differing_units=sum(len(u) for k, u in self.differ.items() if not k[2].startswith("grad:")),
                           weights_known=self.weights is not None)
        return frame


_FACTORS = {("cell", "forget*c_prev"), ("cell", "input*candidate")}


def _factors(cell, gate: str, quantity: str):
    """The two (gate, quantity) factors of a unit-by-unit product, or None."""
    found = _sources(cell, gate, quantity)
    if found is None or found[1] is not None or len(found[0]) != 2 or quantity == "c":
        return None
    if gate == "hidden" and quantity == "h" and cell.proj_size is not None:
        return None
    return found[0]


def _factor_only(story: "_Story"):
    """Products that did not change at all although one factor did (so they are not in ``story.differ``)."""
    hidden = dict(story.cell.after).get("hidden", ())
    products = list(_FACTORS) + [("hidden", q) for q in hidden if q.startswith("output*")] + \
        ([("hidden", "h")] if story.cell.proj_size is None else [])
    steps = sorted({k[0] for k in story.differ})
    return [(s, g, q) for s in steps for g, q in products
            if (s, g, q) not in story.differ and _factors(story.cell, g, q) is not None and
            any((s,) + f in story.differ for f in _factors(story.cell, g, q))]


# -- more than two traces -----------------------------------------------------------------------------

def side_by_side(traces, names: Optional[List[str]] = None, atol: float = 0.0, rtol: float = 0.0) -> pd.DataFrame:
    """Several traces of the same inputs, one column each, on the units where any of them differs from the
    first (within ``atol`` and ``rtol``, as in :func:`diff`): rows ``step``, ``gate``, ``quantity``, ``unit``,
    in pipeline order.  ``names`` label the columns (default A, B, C, …).

    >>> from lstmtrace import Parameters, step
    >>> p = Parameters.zeros(3, 3)
    >>> given = dict(x=[10, 0, 0], h_prev=[0, 0, 10], c_prev=[1, 1, 1])
    >>> identity = p.copy().set("forget", "W", "identity").set("forget", "U", "identity")
    >>> u_zeros = identity.copy().set("forget", "U", "zeros")
    >>> table = side_by_side([step(p, **given), step(identity, **given), step(u_zeros, **given)],
    ...                      names=["zeros", "identity", "u_zeros"])
    >>> table[table["quantity"] == "act"].round(6)
       step    gate quantity  unit  zeros  identity   u_zeros
    4     1  forget      act     0    0.5  0.999955  0.999955
    5     1  forget      act     2    0.5  0.999955  0.500000
    """
    traces = list(traces)
    names = list(names) if names is not None else [chr(ord("A") + k) if k < 26 else f"T{k + 1}"
                                                     for k in range(len(traces))]
    if len(traces) < 2:
        raise ValueError("give at least two traces to put side by side")
    if len(names) != len(traces) or len(set(names)) != len(names):
        raise ValueError(f"give {len(traces)} different names, one per trace")
    if atol < 0 or rtol < 0:
        raise ValueError("atol and rtol must be ≥ 0")
    stacks = [n for n, t in zip(names, traces) if hasattr(t, "traces")]
    if stacks:
        raise TraceMismatch(f"{stacks[0]} is a trace of several cells (a stack): compare stacks two at a time")
    first = traces[0]
    for name, t in zip(names[1:], traces[1:]):
        for what, x, y in (("input size E", first.input_size, t.input_size),
                           ("hidden size H", first.hidden_size, t.hidden_size),
                           ("number of steps", first.steps, t.steps)):
            if x != y:
                raise TraceMismatch(f"{name} has a different {what} ({y}) from {names[0]} ({x})")
    on = ["step", "gate", "quantity", "unit"]
    table = None
    for name, t in zip(names, traces):
        rows = t.frame.iloc[:t.steps * layout(t.input_size, t.hidden_size, cell=t.cell).width]
        part = rows[on].astype({"gate": str, "quantity": str}).assign(**{name: rows["value"].to_numpy()})
        table = part if table is None else table.merge(part, on=on, how="inner", sort=False)
    values = table[names].to_numpy()
    base = values[:, :1]
    gap = np.abs(values - base)
    differs = (gap > atol + rtol * np.maximum(np.abs(values), np.abs(base))).any(axis=1)
    out = table[differs].reset_index(drop=True)
    for k in ("gate", "quantity"):
        out[k] = out[k].astype(first.frame[k].dtype)
    out.attrs.update(names=names, atol=atol, rtol=rtol, steps=first.steps, compared=len(table),
                     pairs=[(x, y, [c["name"] for c in diff(s, t, atol, rtol).attrs["causes"]])
                            for x, y, s, t in zip(names, names[1:], traces, traces[1:])])
    return out


MOST_ROWS = 200
"""How many rows the text of a side-by-side shows; CSV and JSON hold them all."""


def explain_side_by_side(table: pd.DataFrame, markdown: bool = False, precision: int = 6) -> str:
    """A side-by-side as text: what differs from each trace to the next, then the units, one column per trace."""
    attrs = table.attrs
    names, tolerance = attrs["names"], f"atol={attrs.get('atol', 0):g}, rtol={attrs.get('rtol', 0):g}"
    if table.empty:
        return f"The {len(names)} traces agree: all {attrs.get('compared', 0)} values are equal within {tolerance}.\n"
    quantities = list(dict.fromkeys(zip(table["step"], table["gate"].astype(str), table["quantity"].astype(str))))
    lines = [f"{len(names)} traces side by side: {len(quantities)} quantit{'ies' if len(quantities) > 1 else 'y'} "
             f"({len(table)} units) differ in at least one of them (within {tolerance}); each column is one trace."]
    bullet = "- " if markdown else "  "
    steps = []
    for x, y, causes in attrs.get("pairs", []):
        steps.append(f"{bullet}{x} → {y}: " + (f"{_listed(causes, 8)} differ{'s' if len(causes) == 1 else ''}"
                                               if causes else "the same values"))
    parts = [" ".join(lines), "From each trace to the next, what differs at the start (the causes):\n" +
             ("\n" if markdown else "") + "\n".join(steps)]
    shown = table.iloc[:MOST_ROWS]
    shown = shown.assign(quantity=shown["gate"].astype(str) + "." + shown["quantity"].astype(str))
    columns = (["step"] if attrs.get("steps", 1) > 1 else []) + ["quantity", "unit", *names]
    parts.append(tabulate(shown[columns], headers=columns, tablefmt="github" if markdown else "simple",
                          showindex=False, floatfmt=f".{precision}g"))
    if len(table) > MOST_ROWS:
        parts.append(f"… and {len(table) - MOST_ROWS} more rows (--format csv writes them all).")
    atol, rtol = attrs.get("atol", 0), attrs.get("rtol", 0)
    parts.append("A unit is listed when some trace's value T differs from the first trace's F: "
                 "|T - F| > atol + rtol·max(|T|, |F|); "
                 + ("here atol = rtol = 0, so any difference at all." if atol == 0 and rtol == 0 else
                    f"here atol = {atol:g}, rtol = {rtol:g}."))
    return "\n\n".join(parts) + "\n"
