"""The annotated explanation of a trace, as plain text or Markdown.

Every number printed is read from the trace; the notes only compare those
numbers with thresholds (0.5, 0.01 of the ends) to say what they mean.  The
sections follow the trace's cell (:attr:`lstmtrace.Trace.cell`): its pipeline
orders them, each gate's :class:`~lstmtrace.cell.GateSpec` writes its equation
and its columns, so a variant (Greff et al.'s [1]_ or any other) is explained
as the equations it computes.

.. [1] Greff et al., "LSTM: A Search Space Odyssey" (2017), https://arxiv.org/abs/1503.04069
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from tabulate import tabulate

from lstmtrace.cell import GATES, LSTM, Cell, cell_activation_name

__all__ = ["SATURATION", "chosen", "grid", "number", "numbers", "render", "saturated", "write"]

SATURATION = 0.01
"""An activation within this distance of its bounds (0 and 1 for σ, ±1 for tanh) is saturated."""


def saturated(gate: str, act: np.ndarray, cell: Cell = LSTM) -> np.ndarray:
    """Which units of a gate's activation (any shape) are saturated: the one definition lstmtrace uses.

    >>> saturated("forget", np.array([0.005, 0.5, 0.995])), saturated("candidate", np.array([-0.995, 0.5]))
    (array([ True, False,  True]), array([ True, False]))
    """
    spec = cell.gate(gate)
    activation = spec.activation
    # a gate taken away is the constant 1, not an activation; an activation without two finite bounds
    # (relu, linear) has nothing to saturate against: neither is ever marked
    if spec.rule == "one" or not (np.isfinite(activation.low) and np.isfinite(activation.high)):
        return np.zeros(np.shape(act), dtype=bool)
    return (act < activation.low + SATURATION) | (act > activation.high - SATURATION)


def formula(spec, cell: Cell = LSTM) -> str:
    """A gate's equation as the text prints it, from its :class:`~lstmtrace.cell.GateSpec`.

    ``f = σ(W_f·x + U_f·h_prev + b_f)``; with a peephole ``f = σ(W_f·x + U_f·h_prev + P_f*c_prev + b_f)``;
    with a clip ``f = σ(clip(W_f·x + U_f·h_prev + b_f, ±3))``; a gate taken away ``i = 1 (no input
    gate: NIG)``; a coupled forget gate ``f = 1 - i (coupled input and forget gates: CIFG)``.

    >>> formula(LSTM.gate("candidate"))
    'c̃ = tanh(W_g·x + U_g·h_prev + b_g)'
    """
    if spec.rule == "one":
        return f"{spec.symbol} = 1 (no {spec.name} gate: N{spec.name[0].upper()}G)"
    if spec.rule == "complement":
        return f"{spec.symbol} = 1 - {cell.gate(spec.complements).symbol} (coupled input and forget gates: CIFG)"
    k = spec.index
    peephole = f" + P_{k}*{spec.peeps}" if spec.peeps else ""
    inner = f"W_{k}·x + U_{k}·h_prev{peephole} + b_{k}"
    if cell.clip is not None:
        inner = f"clip({inner}, ±{cell.clip:g})"
    return f"{spec.symbol} = {spec.activation.name}({inner})"


def hidden_formula(cell: Cell = LSTM) -> str:
    """The hidden state's equation: ``h = o*tanh(c)``, or with a projection ``m = o*tanh(c);  h = W_hr·m``.

    >>> hidden_formula()
    'h = o*tanh(c)'
    """
    o, act_c = cell.gate("output").symbol, f"{cell.cell_activation.name}(c)"
    if cell.proj_size is None:
        return f"h = {o}*{act_c}"
    return f"m = {o}*{act_c};    h = W_hr·m"


GREFF = {("candidate", "linear"): "no input activation: NIAF", ("cell", "linear"): "no output activation: NOAF"}
"""Greff et al.'s names for an activation taken away: (slot, activation) → what the text adds."""


def _activation_change(slot: str, activation, default) -> List[str]:
    """``["linear instead of tanh (no input activation: NIAF)"]``, or [] when unchanged."""
    if activation.name == default.name:
        return []
    named = GREFF.get((slot, activation.key))
    return [f"{activation.name} instead of {default.name}" + (f" ({named})" if named else "")]


def changes(cell: Cell = LSTM) -> List[Tuple[str, List[str]]]:
    """What a variant changes in each equation of lstmtrace's default LSTM: (its equation, each
    change in a few words) for each equation that differs, in the order the text explains them.

    >>> from lstmtrace import Variant
    >>> changes(Variant(without=("input",)).cell)
    [('i = 1 (no input gate: NIG)', ['no W_i, U_i, b_i: the gate is taken away'])]
    """
    found = []
    for stage, _ in cell.pipeline:
        if stage == "hidden":
            found.append((hidden_formula(cell), _hidden_changes(cell)))
        elif stage not in ("given", "cell"):
            spec = cell.gate(stage)
            found.append((formula(spec, cell), _gate_changes(spec, cell)))
    return [(equation, what) for equation, what in found if what]


def _gate_changes(spec, cell: Cell) -> List[str]:
    """What differs in one gate's equation from the default LSTM's, in a few words each."""
    default = LSTM.gate(spec.name)
    gone = [name for name, _ in default.weights if name not in dict(spec.weights)]
    if spec.rule != "computed":
        what = "taken away" if spec.rule == "one" else f"the {spec.complements} gate's complement"
        return [f"no {', '.join(f'{w}_{spec.index}' for w in gone)}: the gate is {what}"]
    what = _activation_change(spec.name, spec.activation, default.activation)
    if spec.peeps == "c_prev":
        what.append(f"a peephole P_{spec.index}*c_prev on the old cell state")
    elif spec.peeps == "c":
        what.append(f"a peephole P_{spec.index}*c on the new cell state, so {spec.symbol} is computed after c")
    if cell.clip is not None:
        what.append(f"preact clipped to [-{cell.clip:g}, {cell.clip:g}]")
    return what


def _hidden_changes(cell: Cell) -> List[str]:
    """What differs in the hidden state's equation from the default LSTM's."""
    what = _activation_change("cell", cell.cell_activation, LSTM.cell_activation)
    if cell.proj_size is not None:
        what.append(f"a projection: W_hr is P×H, so h (and h_prev, which each U multiplies) has "
                    f"P = {cell.proj_size} units")
    return what


def shares(cell: Cell = LSTM) -> tuple:
    """The gates whose activation is a share between 0 and 1 (σ, hard sigmoid): forget, input, output."""
    return tuple(g.name for g in cell.gates if (g.activation.low, g.activation.high) == (0.0, 1.0))


SIGMOID_NOTE = (
    "σ(preact) lies strictly between 0 and 1: it is exactly 0.5 where preact = 0, "
    "and comes within 0.01 of 0 or 1 only beyond |preact| ≈ 4.6. "
    "A gate is a soft switch, not a 0-or-1 one."
)
TANH_NOTE = (
    "tanh(preact) lies strictly between -1 and 1: it is 0 where preact = 0, "
    "and comes within 0.01 of ±1 only beyond |preact| ≈ 2.6."
)
NOTES = {"σ": SIGMOID_NOTE, "tanh": TANH_NOTE}
"""What each activation's range means, said after the first gate that uses it."""


def _range_note(activation, arg: str = "preact") -> str:
    """What an activation's range means (σ's and tanh's notes above; a plain statement of the others)."""
    if activation.name in NOTES and arg == "preact":
        return NOTES[activation.name]
    name, low, high = activation.name, activation.low, activation.high
    if np.isinf(low) and np.isinf(high):
        return f"{name}({arg}) is {arg} itself: nothing bounds it."
    if np.isinf(high):
        return f"{name}({arg}) is at least {low:g} and has no upper bound."
    return (f"{name}({arg}) lies between {low:g} and {high:g}, and (unlike σ and tanh) reaches them "
            "exactly." if "hard" in name else f"{name}({arg}) lies strictly between {low:g} and {high:g}.")

EXPANDED = {  # one unit's activation, written out
    "σ": "{symbol} = σ(preact) = 1 / (1 + e^{minus_pre}) = {act}",
    "tanh": "{symbol} = tanh(preact) = tanh({pre}) = {act}",
}
SHARE = {  # how each σ gate's value is used: (verb, what), for the "more than half" note
    "forget": ("keeps", "of c_prev"),
    "input": ("writes", "of c̃ into the cell"),
    "output": ("shows", "of tanh(c) as h"),
}


def number(v: float, precision: int = 6) -> str:
    """A number as the text prints it, so that it shows how precise it is: exact when the float is
    exactly that short a decimal (-0.1, 0.5, 0), else rounded to ``precision`` significant digits with
    the trailing zeros kept (0.108100 is 0.10810031… rounded, not 0.1081).

    >>> number(-0.1), number(0.10810031), number(0.0), number(1 / 3, 3)
    ('-0.1', '0.108100', '0', '0.333')
    """
    if v == 0:
        return "0"
    if not np.isfinite(v):
        return str(v)
    mantissa = repr(float(v)).lstrip("-").split("e")[0].replace(".", "").lstrip("0")
    if len(mantissa) <= precision:  # the float is exactly this decimal
        return f"{v:.{precision}g}"
    text = f"{v:#.{precision}g}"
    return text[:-1] if text.endswith(".") else text


def plain(text: str) -> str:
    """One minus sign and one multiplication sign: ``−`` becomes ``-`` and ``⊙`` becomes ``*``, so that
    every number and formula pastes into Python as it reads."""
    return text.replace("−", "-").replace("⊙", "*")


def _aligned(cells: List[str]) -> List[str]:
    """Numbers padded so that their decimal points line up (an integer's point is where it ends)."""
    split = [c.partition(".") for c in cells]  # (integer part, "." or "", the rest)
    whole = [a for a, _, _ in split]
    after = [point + b for _, point, b in split]
    left = max(map(len, whole))
    width = left + max(map(len, after))
    return [(a.rjust(left) + b).ljust(width) if c else "" for a, b, c in zip(whole, after, cells)]


def numbers(values, precision: int = 6) -> List[str]:
    """:func:`number` of every element of ``values`` at once (a whole column): the same text, made by one
    string formatting over the column instead of one call a number.

    >>> numbers(np.array([-0.1, 0.10810031, 0.0, -0.0, 1e6, 2.0]))
    ['-0.1', '0.108100', '0', '0', '1.00000e+06', '2']
    """
    a = np.asarray(values, dtype=np.float64).reshape(-1)
    n = len(a)
    if n == 0:
        return []
    listed = a.tolist()
    rounded = ((f"%#.{precision}g\x00" * n) % tuple(listed)).split("\x00")[:-1]  # trailing zeros kept
    with np.errstate(invalid="ignore"):
        exact = np.array(rounded, dtype=np.float64) == a  # a decimal of at most `precision` digits is the float
    # number() counts repr's digits, and repr writes a whole number below 1e16 with its zeros and a ".0":
    # those (rare: 0 aside) are number()'s own to decide, as are inf and nan
    special = (a == np.trunc(a)) & (np.abs(a) < 1e16) | ~np.isfinite(a)
    out = [text[:-1] if text[-1] == "." else text for text in rounded]
    short = f"{{:.{precision}g}}".format
    for k in np.flatnonzero(exact & ~special).tolist():  # exactly this decimal: without trailing zeros
        out[k] = short(listed[k])
    for k in np.flatnonzero(special).tolist():
        out[k] = number(listed[k], precision)
    return out


def _width_function():
    """How tabulate measures a cell: by its terminal columns (wcwidth) when it can, else by len."""
    import tabulate as tabulate_module

    wide = getattr(tabulate_module, "wcwidth", None)
    return wide.wcswidth if wide is not None and getattr(tabulate_module, "WIDE_CHARS_MODE", False) else len


def grid(headers: List[str], columns: List[List[str]], right: List[bool], markdown: bool) -> str:
    """The table tabulate writes (``"simple"``, or ``"github"`` for Markdown) of cells that are already
    text, with ``disable_numparse`` and ``preserve_whitespace``: the same characters, made a whole
    column at a time.

    >>> print(grid(["unit", "act"], [["0", "1"], ["0.5", "-0.25"]], [True, True], markdown=False))
      unit    act
    ------  -----
         0    0.5
         1  -0.25
    """
    if not columns or not columns[0] or any("\n" in c for c in headers) or \
            any("\n" in cell for column in columns for cell in column):
        return tabulate([list(row) for row in zip(*columns)], headers=headers,
                        tablefmt="github" if markdown else "simple", disable_numparse=True,
                        colalign=["right" if r else "left" for r in right], preserve_whitespace=True)
    ascii_only = all(h.isascii() for h in headers) and all(
        "".join(column).isascii() for column in columns)
    width = len if ascii_only else _width_function()
    padded_columns, widths = [], []
    for header, column, r in zip(headers, columns, right):
        sizes = list(map(width, column))
        w = max(max(sizes), width(header) + 2)
        widths.append(w)
        if ascii_only:
            padded = [cell.rjust(w) for cell in column] if r else [cell.ljust(w) for cell in column]
        elif r:
            padded = [" " * (w - n) + cell for cell, n in zip(column, sizes)]
        else:
            padded = [cell + " " * (w - n) for cell, n in zip(column, sizes)]
        head = " " * (w - width(header))
        padded_columns.append((head + header if r else header + head, padded))
    heads = [h for h, _ in padded_columns]
    rows = zip(*(cells for _, cells in padded_columns))
    if markdown:
        lines = ["| " + " | ".join(heads) + " |", "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
        lines += [("| " + " | ".join(row) + " |").rstrip() for row in rows]
    else:
        lines = ["  ".join(heads).rstrip(), "  ".join("-" * w for w in widths)]
        lines += ["  ".join(row).rstrip() for row in rows]
    return "\n".join(lines)


GLOSSARY = {
    "unit": "unit: one position of the vectors. Each unit u has its own row u of W and U, its own gate "
            "values, c[u] and h[u].",
    "·": "W·x: the matrix W times the vector x (numpy's W @ x): unit u's row of W, dotted with x.",
    "preact": "preact: what a gate adds up before its activation, W·x + U·h_prev + b.",
    "act": "act: the gate's value, its activation applied to preact unit by unit.",
    "σ": "σ: the sigmoid, σ(z) = 1 / (1 + e^-z); it lies between 0 and 1, and σ(0) = 0.5.",
    "tanh": "tanh: tanh(z) = (e^z - e^-z) / (e^z + e^-z); it lies between -1 and 1, and tanh(0) = 0.",
    "saturated": "saturated: an activation within 0.01 of its bounds (0 or 1 for σ, -1 or 1 for tanh), "
                 "where it barely moves however its input changes.",
    "c̃": "c̃: the candidate, the new values the step may write into the cell (PyTorch's g; "
          "colah's and d2l's C̃_t).",
    "*": "*: multiply unit by unit, as numpy's * does (colah writes *, d2l writes ⊙).",
}
"""What each term means, said once: the first time an output uses it (``--brief`` leaves it out)."""

NOTATION = ("Notation: c_prev, c, h_prev and h are the diagrams' C_{t-1}, C_t, h_{t-1} and h_t (colah's "
            "\"Understanding LSTM Networks\", d2l's LSTM chapter); c̃ is C̃_t, and the candidate's W_g, U_g and "
            "b_g are colah's W_C and b_C. The diagrams' W_f·[h_{t-1}, x_t] is W_f·x + U_f·h_prev: their W_f "
            "is lstmtrace's U_f and W_f side by side, times h_prev and x stacked.")


class _Doc:
    """Collects headings, tables and notes, in text or Markdown; ``brief`` leaves notes and glossary out.

    With ``out`` (a text stream), :meth:`flush` writes what is collected so far and lets it go, so a long
    explanation streams step by step; :meth:`text` is the whole of it at once, when nothing was written.
    """

    def __init__(self, markdown: bool, precision: int, brief: bool = False, out=None):
        if precision < 1:
            raise ValueError(f"precision must be at least 1, not {precision}")
        self.markdown, self.precision, self.brief, self.parts = markdown, precision, brief, []
        self.seen: set = set()  # the glossary's terms said so far
        self.out, self.written = out, False

    def num(self, v: float) -> str:
        return number(v, self.precision)

    def heading(self, text: str, level: int = 2) -> None:
        text = plain(text)
        if self.markdown:
            self.parts.append("#" * (level + 1) + " " + text)
        else:
            self.parts.append(text + "\n" + ("=" if level == 1 else "-") * len(text))

    def formula(self, text: str) -> None:
        text = plain(text)
        self.parts.append(f"`{text}`" if self.markdown else text)

    def _cells(self, column) -> Tuple[List[str], bool]:
        """A column's cells as text, and whether it is numbers (aligned on their decimal points)."""
        if isinstance(column, np.ndarray) and column.dtype.kind == "f":  # a whole vector at once
            return _aligned(numbers(column, self.precision)), True
        if isinstance(column, np.ndarray) and column.dtype.kind in "iu":
            return _aligned(list(map(str, column.tolist()))), True
        values = list(column)
        numeric = all(v is None or isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
                      for v in values)
        if not numeric:
            return ["" if v is None else plain(str(v)) for v in values], False
        floats = [k for k, v in enumerate(values) if v is not None and not isinstance(v, (int, np.integer))]
        cells = ["" if v is None else str(v) for v in values]
        for k, text in zip(floats, numbers(np.array([float(values[k]) for k in floats]), self.precision)):
            cells[k] = text
        return _aligned(cells), True

    def table_rows(self, headers: List[str], rows: list) -> None:
        """A table of ``rows``; numbers are written with :func:`number` and lined up on their points."""
        self._columns(headers, list(zip(*rows)) if rows else None)

    def _columns(self, headers: List[str], columns: Optional[list]) -> None:
        if not columns:
            self.parts.append(tabulate([], headers=[plain(h) for h in headers],
                                       tablefmt="github" if self.markdown else "simple", disable_numparse=True,
                                       colalign=["right"] * len(headers), preserve_whitespace=True))
            return
        cells = [self._cells(column) for column in columns]
        self.parts.append(grid([plain(h) for h in headers], [c for c, _ in cells], [numeric for _, numeric in cells],
                               self.markdown))

    def table(self, columns: dict) -> None:
        """``{header: vector}``; vectors shorter than the longest leave blanks."""
        n = max(len(v) for v in columns.values())
        full = [np.arange(n)]
        for v in columns.values():
            if len(v) == n and isinstance(v, np.ndarray) and v.dtype.kind == "f":
                full.append(v)  # formatted whole
            else:
                full.append([v[u] if u < len(v) else None for u in range(n)])
        self._columns(["unit", *columns], full)

    def note(self, text: str) -> None:
        """A note on what the numbers mean (left out when brief)."""
        if not self.brief:
            self.parts.append(plain(text) if self.markdown else _wrap(plain(text), "  "))

    def lines(self, lines: List[str]) -> None:
        self.parts.append("\n".join(("    " if self.markdown else "  ") + plain(s) for s in lines))

    def terms(self, *names: str) -> None:
        """The glossary's line for each of ``names`` not yet said in this output (none when brief)."""
        new = [name for name in names if name in GLOSSARY and name not in self.seen]
        self.seen.update(new)
        if new and not self.brief:
            said = [GLOSSARY[name] for name in new]
            self.parts.append("\n".join(f"- {line}" for line in said) if self.markdown else
                              "\n".join(_wrap(line, "  · ", hang="    ") for line in said))

    def flush(self) -> None:
        """Write the parts collected so far to ``out`` (when streaming), and forget them."""
        if self.out is None or not self.parts:
            return
        self.out.write(("\n\n" if self.written else "") + "\n\n".join(self.parts))
        self.parts.clear()
        self.written = True

    def close(self) -> None:
        """Write the rest, and the final line end."""
        self.flush()
        self.out.write("\n")

    def text(self) -> str:
        return "\n\n".join(self.parts) + "\n"


def _wrap(text: str, indent: str, width: int = 88, hang: Optional[str] = None) -> str:
    import textwrap

    return textwrap.fill(text, width=width, initial_indent=indent, subsequent_indent=hang or indent)


def _units(mask: np.ndarray, most: int = 12) -> str:
    """'unit 3' or 'units 0, 2, 4', shortened after ``most`` units."""
    idx = np.flatnonzero(mask)
    shown = ", ".join(str(u) for u in idx[:most])
    if len(idx) > most:
        shown += f", … ({len(idx)} units in all)"
    return ("unit " if len(idx) == 1 else "units ") + shown


def _what(cell: Cell, gate: str) -> str:
    """What a σ gate's share is of (SHARE), in this cell's words: its cell activation, h or m."""
    what = SHARE[gate][1].replace("tanh(c)", cell_activation_name(cell.cell_activation))
    return what if cell.proj_size is None else what.replace(" as h", " as m")


def _share_note(doc: "_Doc", act: np.ndarray, gate: str, symbol: str, cell: Cell = LSTM) -> None:
    """Which units a σ gate passes more than half of, less than half, or exactly half."""
    verb, what = SHARE[gate][0], _what(cell, gate)
    groups = [("more than half", ">", act > 0.5), ("less than half", "<", act < 0.5),
              ("exactly half", "=", act == 0.5)]
    parts = [f"{amount} ({symbol} {op} 0.5) in {_units(mask)}" for amount, op, mask in groups if mask.any()]
    first, *rest = parts
    amount, brackets = first.split(" (", 1)
    doc.note(f"It {verb} " + "; ".join([f"{amount} {what} ({brackets}", *rest]) + ".")


def _sum_of(spec) -> List[str]:
    """The quantities a gate's preact adds up: Wx, Uh, bias (and a peephole's Pc)."""
    return list(spec.quantities[:spec.quantities.index("preact")])


SEEN = {"c_prev": ("given", "c_prev"), "c": ("cell", "c")}
"""Where the cell state a peephole looks at sits in the trace."""


def _rule_note(spec, cell: Cell) -> str:
    """What a gate without an activation of its own is: taken away (1), or coupled (1 - i)."""
    if spec.rule == "one":
        verb, what = SHARE[spec.name][0], _what(cell, spec.name)
        return (f"The {spec.name} gate is taken away: {spec.symbol} = 1, as if it were always fully open, "
                f"so the step {verb} all {what}; nothing is learnt here.")
    i = cell.gate("input").symbol
    return (f"Coupled: {spec.symbol} = 1 - {i}, so in every unit the share of c_prev kept ({spec.symbol}) "
            f"and the share of c̃ written ({i}) add up to 1; {spec.symbol} has no weights of its own.")


def _peephole_note(spec) -> str:
    """What a gate's peephole adds to its preact, and when the gate is computed because of it."""
    k, y, seen = spec.index, spec.symbol, spec.peeps
    added = f"preact = {' + '.join(_sum_of(spec))}"
    if seen == "c":
        return (f"Pc = P_{k}*c is the peephole: {y} looks at the new cell state c, so it is computed "
                f"after c (this section follows the cell state's); {added}.")
    return f"Pc = P_{k}*c_prev is the peephole: {y} looks at the old cell state c_prev too; {added}."


class _Step:
    """One step as its sections read it: the trace, the step number t, its values v and its cell."""

    def __init__(self, trace, t: int):
        self.trace, self.t, self.v, self.cell, self.params = trace, t, trace.values(t), trace.cell, trace.params
        # the step that starts from the given state: step 1, or step T for a cell that runs in reverse
        self.first = t == (1 if trace.direction == "forward" else trace.steps)


def _identity_sum(s: _Step, spec) -> bool:
    """Whether the gate's W·x is x, its U·h_prev is h_prev and its bias is 0 (identity weights, zero bias)."""
    v, g = s.v, spec.name
    if spec.rule != "computed" or spec.peeps or s.cell.clip is not None or len(v["given", "x"]) != len(v[g, "Wx"]):
        return False
    return bool((v[g, "Wx"] == v["given", "x"]).all() and (v[g, "Uh"] == v["given", "h_prev"]).all()
                and not v[g, "bias"].any())


def _identity_note(s: _Step, spec) -> str:
    """The learner's own formula, confirmed: with identity weights and zero bias, preact = x + h_prev."""
    k, y, name = spec.index, spec.symbol, spec.activation.name
    p = s.params
    why = ""
    if p is not None:
        W, U = p[spec.name].W, p[spec.name].U
        if np.array_equal(W, np.eye(*W.shape)) and np.array_equal(U, np.eye(*U.shape)):
            why = f"W_{k} and U_{k} are identity matrices and b_{k} = 0, so "
    why = why or f"Here W_{k}·x = x, U_{k}·h_prev = h_prev and b_{k} = 0, so "
    code = {"σ": "1 / (1 + np.exp(-(h_prev + x)))", "tanh": "np.tanh(h_prev + x)"}.get(name)
    return (f"{why}preact is simply x + h_prev, unit by unit, and {y} = {name}(x + h_prev)"
            + (f": exactly what {code} computes." if code else "."))


def _twin(s: _Step, spec) -> Optional[str]:
    """The earlier gate whose weights (or, from a file, whose W·x, U·h_prev and bias) are this gate's."""
    for other in s.cell.gates:
        if other.name == spec.name:
            return None
        if other.rule != "computed" or spec.rule != "computed" or bool(other.peeps) != bool(spec.peeps):
            continue
        if s.params is not None:
            a, b = s.params[other.name], s.params[spec.name]
            same = all(np.array_equal(getattr(a, w), getattr(b, w)) for w, _ in spec.weights)
        else:
            same = all(np.array_equal(s.v[other.name, q], s.v[spec.name, q]) for q in _sum_of(spec))
        if same:
            return other.name
    return None


def _twin_note(s: _Step, spec, twin: str) -> str:
    other = s.cell.gate(twin)
    given = ("has the same weights (W, U and b) as the" if s.params is not None
             else "shows the same W·x, U·h_prev and bias as the")
    same = (f"so its table is the same as the {twin} gate's: {spec.symbol} = {other.symbol} here"
            if spec.activation.name == other.activation.name else
            f"so the same preact, but {spec.activation.name} where the {twin} gate has {other.activation.name}")
    formula_too = (f" ({spec.symbol} = {spec.activation.name}(x + h_prev))" if _identity_sum(s, spec) else "")
    return (f"The {spec.name} {'gate ' if spec.name != 'candidate' else ''}{given} {twin} gate, "
            f"{same}{formula_too}. Every gate was given the same weights in this example; a trained LSTM "
            "learns different ones for each gate.")


def _gate_section(doc: _Doc, s: _Step, gate: str) -> None:
    v, cell = s.v, s.cell
    spec = cell.gate(gate)
    title, symbol = spec.title, spec.symbol
    act = v[gate, "act"]
    activation = spec.activation
    low, high = activation.low, activation.high
    marked = saturated(gate, act, cell)
    doc.heading(title)
    doc.formula(f"{formula(spec, cell)}    act = {symbol}")
    columns = {q: v[gate, q] for q in spec.quantities}
    if marked.any():
        middle = (low + high) / 2
        columns["note"] = np.where(marked, np.where(act > middle, f"saturated ≈ {high:g}", f"saturated ≈ {low:g}"), "")
    bounded = np.isfinite(low) and np.isfinite(high)  # an activation without two bounds does not saturate
    doc.terms(*(["·", "preact", "act", activation.name] if spec.rule == "computed" else []),
              *(["c̃"] if gate == "candidate" else []), *(["saturated"] if bounded and spec.rule != "one" else []))
    doc.table(columns)
    if spec.rule != "computed":
        doc.note(_rule_note(spec, cell))
        if spec.rule == "one":
            return
    if spec.peeps:
        doc.note(_peephole_note(spec))
    twin = _twin(s, spec)
    if twin is not None:
        doc.note(_twin_note(s, spec, twin))
    elif _identity_sum(s, spec):
        doc.note(_identity_note(s, spec))
    computed = [g for g in cell.gates if g.rule == "computed"]
    if next((g.name for g in computed if g.activation.name == activation.name), None) == gate:
        doc.note(_range_note(activation))
    if "clipped" in spec.quantities and (v[gate, "clipped"] != v[gate, "preact"]).any():
        doc.note(f"clip bounds preact to [-{cell.clip:g}, {cell.clip:g}] before {activation.name}: "
                 f"{_units(v[gate, 'clipped'] != v[gate, 'preact'])} reached the bound.")
    if bounded:
        doc.note(_saturation_note(doc, v, spec, marked))
    if gate == "forget" and not v["given", "c_prev"].any():
        doc.note(f"c_prev is 0 in every unit, so {symbol} has nothing to act on at this step: "
                 f"{symbol}*c_prev is 0 whatever {symbol} is. It matters from the next step on, when c_prev is "
                 "this step's c.")
        return
    if gate in SHARE and gate in shares(cell):
        _share_note(doc, act, gate, symbol, cell)
    if gate == "forget" and (v["given", "c_prev"] == 0).any():
        doc.note(f"c_prev is 0 in {_units(v['given', 'c_prev'] == 0)}: there {symbol} has nothing to act on.")


def _saturation_note(doc: _Doc, v, spec, marked: np.ndarray) -> str:
    """Which units of a bounded gate are saturated, or how far every one is from it."""
    gate, symbol, activation = spec.name, spec.symbol, spec.activation
    low, high = activation.low, activation.high
    if marked.any():
        return f"Saturated (within 0.01 of {low:g} or {high:g}): {_units(marked)}."
    if "preact" not in spec.quantities:
        return f"No unit is saturated: every {symbol} is between {low + SATURATION:g} and {high - SATURATION:g}."
    if not v[gate, "preact"].any():
        return (f"No unit is saturated: every preact is 0 here, so every {symbol} is "
                f"{activation.forward(np.zeros(1))[0]:g}.")
    return (f"No unit is saturated: |preact| is at most {doc.num(np.abs(v[gate, 'preact']).max())} "
            f"here, so every {symbol} is between {low + SATURATION:g} and {high - SATURATION:g}.")


def _given_section(doc: _Doc, s: _Step, stage: str) -> None:
    v, cell = s.v, s.cell
    doc.heading("Given")
    doc.terms("unit")
    doc.table({"x": v["given", "x"], "h_prev": v["given", "h_prev"], "c_prev": v["given", "c_prev"]})
    h, c_prev = v["given", "h_prev"], v["given", "c_prev"]
    bound = _h_bound(cell)
    if bound is not None and (np.abs(h) > bound).any():
        doc.note(f"|h_prev| > {bound:g} in {_units(np.abs(h) > bound)}: no step of this cell gives such an h, "
                 f"since h = o*{cell_activation_name(cell.cell_activation)} lies between -{bound:g} and "
                 f"{bound:g}. It was given by hand: fine for an experiment, but no sequence hands it on.")
    if s.first and cell.proj_size is None and cell.cell_activation.forward(np.zeros(1))[0] == 0:
        lone = (c_prev == 0) & (h != 0)
        if lone.any():
            doc.note(f"h_prev is not 0 but c_prev is, in {_units(lone)}: no LSTM step hands on that pair (its "
                     f"h = o*{cell_activation_name(cell.cell_activation)} is 0 where c is 0), so h_prev and "
                     "c_prev were given independently. c_prev = 0 is an assumption (lstmtrace's default when "
                     "no --c is given); in a sequence both come from the step before.")


def _h_bound(cell: Cell) -> Optional[float]:
    """The largest |h| a step of this cell can give, |o|'s bound times act(c)'s, or None when unbounded."""
    output, act = cell.gate("output"), cell.cell_activation
    o = 1.0 if output.rule == "one" else max(abs(output.activation.low), abs(output.activation.high))
    bound = o * max(abs(act.low), abs(act.high))
    return None if cell.proj_size is not None or not np.isfinite(bound) else bound


def _cell_section(doc: _Doc, s: _Step, stage: str) -> None:
    v, cell = s.v, s.cell
    f, i = cell.gate("forget").symbol, cell.gate("input").symbol
    doc.heading("Cell state")
    doc.formula(f"c = {f}*c_prev + {i}*c̃")
    doc.terms("*", "c̃")
    # headers are the trace's own names (and plain ASCII: a combining ~ would misalign tables)
    doc.table({"forget": v["forget", "act"], "c_prev": v["given", "c_prev"],
               "forget*c_prev": v["cell", "forget*c_prev"], "input": v["input", "act"],
               "candidate": v["candidate", "act"], "input*candidate": v["cell", "input*candidate"],
               "c": v["cell", "c"]})
    doc.note(f"The forget gate scales the old memory c_prev, the input gate scales the candidate "
             f"c̃, and the two add up to the new cell state c (the columns forget*c_prev and input*candidate "
             f"are {f}*c_prev and {i}*c̃).")
    if not v["given", "c_prev"].any():
        doc.note(f"With c_prev = 0, c = {i}*c̃: the new cell state is only what the input gate writes.")
    g = v["candidate", "act"]
    if not g.any():
        doc.note(f"c̃ is 0 in every unit, so nothing is written: c = {f}*c_prev.")
    else:
        parts = [f"adds to c where c̃ > 0 ({_units(g > 0)})" if (g > 0).any() else "",
                 f"takes away from it where c̃ < 0 ({_units(g < 0)})" if (g < 0).any() else ""]
        doc.note(f"The sign of c̃ decides what is written: {i}*c̃ " + " and ".join(filter(None, parts))
                 + f". {i}, between 0 and 1, only scales it.")


def _hidden_section(doc: _Doc, s: _Step, stage: str) -> None:
    v, cell = s.v, s.cell
    act_c = cell_activation_name(cell.cell_activation)
    quantities = dict(cell.after)["hidden"]  # act(c), [o*act(c),] h
    into = "the new hidden state h" if cell.proj_size is None else "m"
    doc.heading("Hidden state")
    doc.formula(hidden_formula(cell))
    doc.terms("*", cell.cell_activation.name)
    doc.table({"output": v["output", "act"], "c": v["cell", "c"], **{q: v["hidden", q] for q in quantities}})
    if cell.cell_activation.name == "tanh":
        doc.note(f"tanh keeps the sign of c and squeezes it into (-1, 1); the output gate o "
                 f"decides how much of it becomes {into}.")
        big = np.abs(v["cell", "c"]) > 1
        if big.any():
            doc.note(f"|c| > 1 in {_units(big)}: the cell state has grown past where tanh is nearly straight "
                     "(tanh(1) = 0.76, tanh(2) = 0.96, tanh(3) = 0.995), so tanh(c) is squeezed towards ±1 "
                     "and h grows less than c does.")
    else:
        doc.note(f"{_range_note(cell.cell_activation, 'c')} The output gate o decides how much of "
                 f"{act_c} becomes {into}.")
    if cell.proj_size is not None:
        m = quantities[1]
        doc.note(f"m is the trace's {m}. The projection W_hr (P×H) turns its H = {len(v['hidden', m])} "
                 f"units into the P = {len(v['hidden', 'h'])} units of h, which the next step takes as h_prev.")


def _rounding_note(s: _Step, precision: int) -> str:
    """How the numbers are rounded, shown on one of this step's own (one whose rounding keeps a trailing 0
    when there is one)."""
    said = (f"A number with fewer than {precision} significant digits is exact; the others are rounded to "
            f"{precision}, trailing zeros kept")
    values = [s.v[g.name, "act"] for g in s.cell.gates] + [s.v["cell", "c"], s.v["hidden", "h"]]
    rounded = [v for v in np.concatenate(values) if number(v, precision) != number(v, 17)]
    if rounded:
        v = next((v for v in rounded if number(v, precision).endswith("0")), rounded[0])
        more = number(v, precision + 3) if "e" not in number(v, precision + 3) else number(v, 17)
        said += f" ({number(v, precision)} is {more}… rounded)"
    return said + ". The CSV (-o step.csv) holds every digit."


def _result(doc: _Doc, s: _Step) -> None:
    """The step's vectors as numpy prints them, ready to paste: each gate's value, c and h."""
    v, cell = s.v, s.cell
    names = {"candidate": "g"}
    lines = []
    every = doc.precision >= 17  # every digit: the shortest repr that reads back the same
    with np.printoptions(precision=doc.precision, suppress=False, floatmode="unique" if every else "maxprec",
                         linewidth=10_000, threshold=1_000, sign="-"):
        for spec in cell.gates:
            name = names.get(spec.name, spec.symbol)
            comment = "  # c̃, the candidate" if spec.name == "candidate" else ""
            lines.append(f"{name} = np.{np.array_repr(v[spec.name, 'act'])}{comment}")
        lines.append(f"c = np.{np.array_repr(v['cell', 'c'])}")
        if cell.proj_size is not None:
            lines.append(f"m = np.{np.array_repr(v['hidden', dict(cell.after)['hidden'][1]])}")
        lines.append(f"h = np.{np.array_repr(v['hidden', 'h'])}")
    doc.heading("Result")
    doc.lines(lines)
    doc.note(("As numpy prints them, with every digit" if every else
              f"As numpy prints them with np.set_printoptions(precision={doc.precision}) ({doc.precision} decimals; "
              "--precision 17 shows every digit)") + ", ready to paste after import numpy as np. To check numbers "
             "you computed by hand: --check f=v1,v2,… (or any other quantity); the step as a numpy script: "
             "--format python.")


SECTIONS = {"given": _given_section, "cell": _cell_section, "hidden": _hidden_section}
"""The sections of the stages that are no gate; each gate's is :func:`_gate_section`."""


def _dot(num, paren, row: np.ndarray, vector: np.ndarray) -> str:
    """``1*(-0.1) + 0*0.3 + …``, shortened past 16 terms."""
    terms = [f"{num(w)}*{paren(a)}" for w, a in zip(row, vector)]
    if len(terms) > 16:
        terms = terms[:8] + [f"… {len(terms) - 10} more terms …"] + terms[-2:]
    return " + ".join(terms)


def _expand_gate(doc: _Doc, trace, v: dict, u: int, spec) -> List[str]:
    """One gate's unit ``u``, term by term."""
    num, paren = doc.num, _paren(doc)
    p, cell = trace.params, trace.cell
    gate, symbol, k = spec.name, spec.symbol, spec.index
    act = v[gate, "act"][u]
    lines = [f"{gate}:"]
    if spec.rule == "one":
        return lines + [f"  {symbol} = {num(act)}    (no {gate} gate: the constant 1)"]
    if spec.rule == "complement":
        i = cell.gate("input")
        return lines + [f"  {symbol} = 1 - {i.symbol} = 1 - {paren(v[i.name, 'act'][u])} = {num(act)}"]
    if p is not None:  # the weights the trace was made from (a trace owns them)
        for M, vec, name, q in ((p[gate].W, v["given", "x"], "x", "Wx"), (p[gate].U, v["given", "h_prev"],
                                                                         "h_prev", "Uh")):
            lines.append(f"  {'W' if q == 'Wx' else 'U'}_{k}[{u},:]·{name} = {_dot(num, paren, M[u], vec)} "
                         f"= {num(v[gate, q][u])}")
    if spec.peeps:
        seen = v[SEEN[spec.peeps]][u]
        weight = f"{num(p[gate].P[u])} * {paren(seen)}" if p is not None else f"P_{k}[{u}] * {paren(seen)}"
        lines.append(f"  Pc = P_{k}[{u}] * {spec.peeps} = {weight} = {num(v[gate, 'Pc'][u])}")
    terms = _sum_of(spec)
    pre = v[gate, "preact"][u]
    lines.append(f"  preact = {' + '.join('b' if q == 'bias' else q for q in terms)} = "
                 f"{' + '.join([num(v[gate, terms[0]][u]), *(paren(v[gate, q][u]) for q in terms[1:])])} "
                 f"= {num(pre)}")
    name = spec.activation.name
    if cell.clip is not None:
        pre = v[gate, "clipped"][u]
        lines.append(f"  clipped = clip(preact, ±{cell.clip:g}) = {num(pre)}")
    lines.append("  " + EXPANDED.get(name, "{symbol} = " + name + "({pre}) = {act}").format(
        symbol=symbol, pre=num(pre), minus_pre=paren(-pre), act=num(act)).replace(
        "(preact)", "(clipped)" if cell.clip is not None else "(preact)"))
    return lines


def _expand_cell(doc: _Doc, trace, v: dict, u: int) -> List[str]:
    """The cell state's unit ``u``, term by term."""
    num, paren = doc.num, _paren(doc)
    f, i, g = (v[gate, "act"][u] for gate in GATES[:3])
    c_prev, fc, ig, c = v["given", "c_prev"][u], *(v["cell", q][u] for q in
                                                   ("forget*c_prev", "input*candidate", "c"))
    return [
        "cell:",
        f"  forget*c_prev = f * c_prev = {num(f)} * {paren(c_prev)} = {num(fc)}",
        f"  input*candidate = i * c̃ = {num(i)} * {paren(g)} = {num(ig)}",
        f"  c = forget*c_prev + input*candidate = {num(fc)} + {paren(ig)} = {num(c)}",
    ]


def _expand_hidden(doc: _Doc, trace, v: dict, u: int) -> List[str]:
    """The hidden state's unit ``u``, term by term (with a projection, h's unit u if it has one)."""
    num, paren = doc.num, _paren(doc)
    cell = trace.cell
    o, c = v["output", "act"][u], v["cell", "c"][u]
    act_c_name, *_ = quantities = dict(cell.after)["hidden"]
    act_c = v["hidden", act_c_name][u]
    lines = ["hidden:", f"  {act_c_name} = {cell.cell_activation.name}({num(c)}) = {num(act_c)}"]
    if cell.proj_size is None:
        return lines + [f"  h = o * {act_c_name} = {num(o)} * {paren(act_c)} = {num(v['hidden', 'h'][u])}"]
    m_name = quantities[1]
    m = v["hidden", m_name]
    lines.append(f"  {m_name} = o * {act_c_name} = {num(o)} * {paren(act_c)} = {num(m[u])}")
    h = v["hidden", "h"]
    if u >= len(h):
        return lines + [f"  (h has P = {len(h)} units, so no unit {u}: column {u} of W_hr carries this "
                        f"unit's {m_name} into each of them)"]
    terms = (_dot(num, paren, trace.params.W_hr[u], m) + " = ") if trace.params is not None else ""
    return lines + [f"  h = W_hr[{u},:]·{m_name} = {terms}{num(h[u])}"]


EXPANDS = {"cell": _expand_cell, "hidden": _expand_hidden}
"""Term by term, the stages that are no gate; each gate's is :func:`_expand_gate`."""


def _paren(doc: _Doc):
    """A number as a term: in brackets when negative."""
    return lambda a: f"({doc.num(a)})" if a < 0 else doc.num(a)


def _expand(doc: _Doc, trace, v: dict, u: int) -> None:
    """Unit ``u`` of every gate and stage, in pipeline order: a block per gate, one for the stages after."""
    doc.heading(f"Unit {u}, term by term")
    cell, blocks, stage_block = trace.cell, [], False
    for stage, _ in cell.pipeline[1:]:  # given is given
        if stage in EXPANDS:
            lines = EXPANDS[stage](doc, trace, v, u)
            if stage_block:  # the cell and hidden states together, as one block
                blocks[-1] += lines
            else:
                blocks.append(lines)
        else:
            blocks.append(_expand_gate(doc, trace, v, u, cell.gate(stage)))
        stage_block = stage in EXPANDS
    for lines in blocks:
        doc.lines(lines)
    if trace.params is None:
        doc.note("A saved trace does not hold W and U, so their dot products are not written out "
                 "term by term: run `lstmtrace step … --expand` with the same weights for that.")


def _summary(doc: _Doc, trace) -> None:
    """One row per step: x, the σ gates' means, c, h, and how many units saturate."""
    doc.heading(f"{trace.steps} steps · input size E = {trace.input_size} · hidden size H = "
                f"{trace.hidden_size}{_projection(trace.cell)}", 1)
    cell = trace.cell
    short = lambda vectors: [_short(doc, v) for v in vectors]
    act = {gate: trace.block(gate, "act") for gate in GATES}
    means = [gate for gate in shares(cell) if cell.gate(gate).rule != "one"]  # a gate taken away is 1
    columns = {"x": short(trace.block("given", "x")),
               **{f"{gate} mean": act[gate].mean(axis=1) for gate in means},
               "c": short(trace.block("cell", "c")), "h": short(trace.block("hidden", "h"))}
    counts = {gate: saturated(gate, a, cell).sum(axis=1) for gate, a in act.items()}
    columns["saturated units"] = [", ".join(f"{g} {counts[g][t]}" for g in GATES if counts[g][t])
                                  or "none" for t in range(trace.steps)]
    rows = [[t + 1, *(col[t] for col in columns.values())] for t in range(trace.steps)]
    doc.table_rows(["step", *columns], rows)
    carried = ("Each step's h and c become the next step's h_prev and c_prev." if trace.direction == "forward" else
               "The cell runs in reverse: each step's h and c become the step before's h_prev and c_prev.")
    doc.note(f"{carried} A gate's mean is over its units; a unit is saturated when its activation is within "
             "0.01 of its bound.")
    _memory_note(doc, trace)


def _memory_note(doc: _Doc, trace, most: int = 3) -> None:
    """Which units hold memory longest: the share of c that the forget gates of the later steps keep."""
    spec, T = trace.cell.gate("forget"), trace.steps
    if spec.rule == "one":
        doc.note("The forget gate is taken away (f = 1), so every unit keeps all of its cell state from step to "
                 "step: only what the input gate writes changes it.")
        return
    f = trace.block("forget", "act")  # steps × units
    later = f[:-1] if trace.direction == "reverse" else f[1:]  # the steps after the first one run
    kept = np.prod(later, axis=0)  # of c after the first step run, the share still in c after the last
    order = np.argsort(-kept, kind="stable")[:most]
    first, last = (1, T) if trace.direction == "forward" else (T, 1)
    shown = ", ".join(f"unit {u} keeps {number(kept[u], 3)}" for u in order)
    if len(kept) == 1:
        shown = f"unit 0 keeps {number(kept[0], 3)} of it"
    doc.note(f"Memory: of what c held after step {first}, the forget gates of the {T - 1} later step"
             f"{'s' if T > 2 else ''} keep the product of their f, unit by unit, until step {last}. "
             f"{'The units that hold memory longest: ' if len(kept) > 1 else ''}{shown}" + (f" (of {len(kept)} units)" if len(kept) > most else "") + ".")


def _projection(cell: Cell) -> str:
    """What a heading adds for a projection: `` · projection size P = 2`` (nothing without one)."""
    return "" if cell.proj_size is None else f" · projection size P = {cell.proj_size}"


def _short(doc: _Doc, vector: np.ndarray, most: int = 3) -> str:
    shown = ", ".join(doc.num(v) for v in vector[:most])
    return shown + (f", … ({len(vector)})" if len(vector) > most else "")


def naming(variant) -> str:
    """The sentence that names a variant: ``Variant cifg: peepholes, coupled … (f = 1 - i).``

    >>> from lstmtrace import Variant
    >>> naming(Variant.preset("nig"))
    'Variant nig: peepholes, no input gate.'
    """
    name = variant.name
    return f"Variant{f' {name}' if name else ''}: {variant.describe()}."


def _variant_notes(doc: _Doc, trace) -> None:
    """What the trace's variant changes, equation by equation, and what Greff et al. found about it."""
    doc.note(f"{naming(trace.variant)} What it changes in lstmtrace's default LSTM (PyTorch's), equation "
             "by equation (each section below shows it too):")
    doc.lines([line for equation, what in changes(trace.cell) for line in (equation, *(f"    ← {w}" for w in what))])
    if trace.variant.finding is not None:
        doc.note(trace.variant.finding)


LONG = 20
"""A run of more than this many steps is explained in full only at the steps worth reading (:func:`chosen`)."""


def chosen(trace) -> Dict[int, List[str]]:
    """The steps of a long run worth reading in full, each with why: the first and the last, the largest
    change in c, and each gate's first step where a unit becomes saturated and where one comes out of it.

    >>> from lstmtrace import Parameters, run
    >>> chosen(run(Parameters.identity(1, 1), [[1.0]] * 30))[3]
    ['the largest change in c: unit 0 goes from 1.144 to 1.739']
    """
    T, cell = trace.steps, trace.cell
    reasons: Dict[int, List[str]] = {1: ["the first step"]}
    c, c_prev = trace.block("cell", "c"), trace.block("given", "c_prev")
    change = np.abs(c - c_prev)  # steps × units
    t, u = np.unravel_index(int(np.argmax(change)), change.shape)
    if change[t, u] > 0:
        reasons.setdefault(int(t) + 1, []).append(
            f"the largest change in c: unit {u} goes from {number(c_prev[t, u], 4)} to {number(c[t, u], 4)}")
    events = (("becomes saturated", "become saturated"), ("comes out of saturation", "come out of saturation"))
    for spec in cell.gates:
        marked = saturated(spec.name, trace.block(spec.name, "act"), cell)  # steps × units
        before = np.vstack([np.zeros_like(marked[:1]), marked[:-1]])
        for (one, several), mask in zip(events, (marked & ~before, ~marked & before)):
            steps = np.flatnonzero(mask.any(axis=1))
            if len(steps):
                k = int(steps[0])
                reasons.setdefault(k + 1, []).append(f"the {spec.name} gate's {_units(mask[k], 4)} first "
                                                     f"{several if mask[k].sum() > 1 else one}")
    reasons.setdefault(T, []).append("the last step")
    return dict(sorted(reasons.items()))


def render(trace, precision: int = 6, expand: Optional[int] = None, markdown: bool = False,
           title: Optional[str] = None, steps: Union[Sequence[int], str, None] = None, brief: bool = False) -> str:
    """The explanation of ``trace``, in pipeline order; ``title`` opens it.

    A trace of several steps starts with a table of one row per step, then explains
    each step in ``steps`` in full: by default every step of a run of at most 20 steps,
    and of a longer one the steps :func:`chosen` picks, each with why; ``"all"`` for
    every step.  A variant's opens with what it changes, equation by equation, and what
    Greff et al. found about it.  Notes and the glossary explain what the numbers mean
    the first time they matter; ``brief=True`` leaves them out.  :func:`write` streams
    the same text to a file, step by step.

    >>> from lstmtrace import Parameters, step
    >>> print(render(step(Parameters.zeros(1, 1), [2.0])).splitlines()[0])
    LSTM step t = 1 · input size E = 1 · hidden size H = 1
    """
    doc = _Doc(markdown, precision, brief)
    _explain_any(doc, trace, expand, title, steps)
    return doc.text()


def write(trace, file, precision: int = 6, expand: Optional[int] = None, markdown: bool = False,
          title: Optional[str] = None, steps: Union[Sequence[int], str, None] = None, brief: bool = False) -> None:
    """:func:`render`'s text, written to the text stream ``file`` step by step as it is made: the same
    characters, without holding the whole text (a long run's explanation can be gigabytes).

    >>> import io
    >>> from lstmtrace import Parameters, run
    >>> trace, out = run(Parameters.zeros(1, 1), [[1.0], [2.0]]), io.StringIO()
    >>> write(trace, out, steps="all")
    >>> out.getvalue() == render(trace, steps="all")
    True
    """
    doc = _Doc(markdown, precision, brief, out=file)
    _explain_any(doc, trace, expand, title, steps)
    doc.close()


def _explain_any(doc: "_Doc", trace, expand, title, steps) -> None:
    if hasattr(trace, "traces"):  # a Stack: each cell in turn
        _explain_stack(doc, trace, expand, title, steps)
    else:
        _explain(doc, trace, expand, title, steps)


def _explain(doc: _Doc, trace, expand: Optional[int], title: Optional[str],
             steps: Union[Sequence[int], str, None]) -> None:
    """One cell's explanation, into ``doc`` (a stack's cells share one, so the glossary is said once)."""
    H = trace.hidden_size
    if expand is not None and not 0 <= expand < H:
        raise ValueError(f"unit {expand} is not in 0..{H - 1} (hidden size H = {H})")
    why: Dict[int, List[str]] = {}
    if steps == "all" or (steps is None and trace.steps <= LONG):
        detail = list(range(1, trace.steps + 1))
    elif steps is None:
        why = chosen(trace)
        detail = list(why)
    else:
        detail = list(steps)
    outside = [t for t in detail if not 1 <= t <= trace.steps]
    if outside:
        raise ValueError(f"step {outside[0]} is not in 1..{trace.steps}")
    cell, markdown, precision = trace.cell, doc.markdown, doc.precision
    if title:
        doc.note(title)
    if trace.direction == "reverse":
        doc.note(REVERSE_NOTE)
    if cell is not LSTM:
        _variant_notes(doc, trace)
    if trace.steps > 1:
        _summary(doc, trace)
        if trace.has_gradients:
            _norms(doc, trace)
        if why:
            doc.parts.append(("The steps worth reading in full" if not markdown else "**The steps worth reading "
                              "in full**") + f" ({len(why)} of {trace.steps}; --steps all explains every step):")
            doc.lines([f"step {t}: {'; '.join(reasons)}" for t, reasons in why.items()])
        elif steps is not None and len(detail) < trace.steps:
            doc.note(f"The detail below is of step{'s' if len(detail) > 1 else ''} "
                     f"{', '.join(map(str, detail))} of {trace.steps}.")
    for t in detail:
        s = _Step(trace, t)
        doc.heading(f"LSTM step t = {t} · input size E = {trace.input_size} · hidden size H = {H}"
                    f"{_projection(cell)}", 1)
        if t in why:
            doc.parts.append(f"Chosen because: {'; '.join(why[t])}.")
        if not doc.brief and "notation" not in doc.seen:
            doc.seen.add("notation")
            doc.note(NOTATION)
            doc.note(_rounding_note(s, precision))
        for stage, _ in cell.pipeline:
            SECTIONS.get(stage, _gate_section)(doc, s, stage)
        if expand is not None:
            _expand(doc, trace, s.v, expand)
        _result(doc, s)
        if trace.has_gradients:
            _backward_section(doc, trace, t)
        doc.flush()  # streaming: this step is written, and its text let go
    if trace.has_gradients and trace.param_grads != "per-step":  # the weights' gradients: once, for every step
        _back_weights(doc, _Back(trace, detail[-1] if detail else trace.steps))


REVERSE_NOTE = ("This cell runs in reverse, as the second half of a bidirectional layer (or a Keras LSTM with "
                "go_backwards=True) does: it reads x_T first and x_1 last. Its steps keep the model's time order: "
                "step t is the one that read x_t, its h_prev and c_prev are step t+1's h and c, and step T starts "
                "from h_0 and c_0. So its last h is step 1's.")


def _explain_stack(doc: _Doc, stack, expand: Optional[int], title: Optional[str],
                   steps: Union[Sequence[int], str, None]) -> None:
    """A stack's explanation: which cells it holds and how they feed one another, then each cell's."""
    if title:
        doc.note(title)
    cells = stack.traces
    doc.heading(f"A stack of {len(stack.layers)} layer{'s' if len(stack.layers) > 1 else ''} · {len(cells)} "
                f"cell{'s' if len(cells) > 1 else ''} · {stack.steps} step{'s' if stack.steps > 1 else ''}", 1)
    rows = []
    for (k, direction), trace in cells.items():
        last = trace.value("hidden", "h", step=stack.steps if direction == "forward" else 1)
        rows.append([k, direction, trace.input_size, trace.hidden_size, naming(trace.variant) if trace.cell
                     is not LSTM else "default LSTM", _short(doc, last)])
    doc.table_rows(["layer", "direction", "input size E", "hidden size H", "cell", "last h"], rows)
    doc.note("Layer 0 reads x_1 … x_T. Each later layer reads the h_t of the layer before, as PyTorch, Keras and "
             "ONNX feed them: where that layer is bidirectional, its forward h_t and its reverse h_t, "
             "concatenated in that order. A reverse cell reads x_T first; its steps keep the model's time "
             "order, so its last h is step 1's.")
    handed = [f"layer {k}'s reverse cell" for (k, d), order in stack.passes_on.items() if order == "run"]
    if handed:
        doc.note(f"{', '.join(handed).capitalize()} hands on its h in the order it ran (Keras' go_backwards=True "
                 "without Bidirectional): the next layer's x_1 is its step-T h, x_2 its step-(T-1) h, and so on.")
    if expand is not None and all(expand >= t.hidden_size for t in cells.values()):
        raise ValueError(f"unit {expand} is not in any cell (hidden sizes "
                         f"{', '.join(str(t.hidden_size) for t in cells.values())})")
    for (k, direction), trace in cells.items():
        doc.heading(f"Layer {k} · {direction}", 1)
        params = trace.params
        note = params.variant_note() if params is not None else ""
        _explain(doc, trace, expand if expand is not None and expand < trace.hidden_size else None, note or None,
                 steps)


def _norms(doc: _Doc, trace) -> None:
    """One row per step: how big dL/dh, dL/dc and dL/dx are, to see gradients vanish or explode."""
    doc.heading("Gradient norms, step by step")
    norm = lambda gate, q: np.linalg.norm(trace.block(gate, q), axis=1)
    doc.table_rows(["step", "‖dL/dh‖", "‖dL/dc‖", "‖dL/dx‖"],
                   [[t + 1, a, b, c] for t, (a, b, c) in enumerate(zip(
                       norm("hidden", "grad:h"), norm("cell", "grad:c"), norm("given", "grad:x")))])
    doc.note("dL/dh and dL/dc of a step include what flows back from every later step. Norms that "
             "shrink step after step towards t = 1 are vanishing gradients: the early inputs barely "
             "move the loss. Norms that grow towards t = 1 are exploding gradients.")


class _Back:
    """One step's backward pass, as the sections read it: its values ``v``, gradients ``g``, and names."""

    def __init__(self, trace, t: int):
        self.trace, self.t, self.cell = trace, t, trace.cell
        self.g, self.v = trace.values(t, "grad"), trace.values(t)  # g[gate, q] is dL/d(gate.q)
        self.act_c = cell_activation_name(self.cell.cell_activation)
        self.into = "h" if self.cell.proj_size is None else "m"  # what o*act(c) is
        self.later = "" if t == trace.steps else f" + what step {t + 1} hands back through its h_prev"

    def peeping(self, seen: str) -> str:
        """`` + P_o*dL/dpreact_o``: what the gates that peep at ``seen`` hand back to it."""
        return "".join(f" + P_{g.index}*dL/dpreact_{g.index}" for g in self.cell.gates if g.peeps == seen)


def _back_hidden(doc: _Doc, b: _Back) -> None:
    g, act_c = b.g, b.act_c
    quantities = dict(b.cell.after)["hidden"]
    doc.heading("Hidden state")
    if b.cell.proj_size is None:
        doc.formula(f"dL/dh = dL/dh from the loss{b.later};    dL/d{act_c} = dL/dh * o;    "
                    f"dL/do = dL/dh * {act_c}")
    else:
        doc.formula(f"dL/dh = dL/dh from the loss{b.later};    dL/dm = W_hrᵀ·dL/dh;    "
                    f"dL/d{act_c} = dL/dm * o;    dL/do = dL/dm * {act_c};    dL/dW_hr = dL/dh ⊗ m")
    doc.table({f"grad:{q}": g["hidden", q] for q in reversed(quantities)} | {"grad:output act": g["output", "act"]})


def _back_cell(doc: _Doc, b: _Back) -> None:
    g, v, act, act_c = b.g, b.v, b.cell.cell_activation, b.act_c
    doc.heading("Cell state")
    back_c = "" if b.t == b.trace.steps else f" + dL/dc_prev of step {b.t + 1}"
    derivative = "(1 - tanh²(c))" if act.name == "tanh" else act.derivative.format(y=act_c)
    doc.formula(f"dL/dc = dL/d{act_c} * {derivative}{b.peeping('c')}{back_c};    "
                f"dL/dc_prev = dL/dc * f{b.peeping('c_prev')}")
    doc.table({"grad:c": g["cell", "c"], "forget": v["forget", "act"], "grad:c_prev": g["given", "c_prev"]})


D_ACT = {  # where each gate's value meets the stages after the gates
    "output": "dL/do = dL/d{into} * {act_c}", "candidate": "dL/dc̃ = dL/dc * i",
    "input": "dL/di = dL/dc * c̃", "forget": "dL/df = dL/dc * c_prev",
}


def _back_gate(doc: _Doc, b: _Back, spec) -> None:
    g, v, cell = b.g, b.v, b.cell
    gate, y = spec.name, spec.symbol
    d_act = D_ACT[gate].format(into=b.into, act_c=b.act_c)
    coupled = next((c for c in cell.gates if c.rule == "complement"), None)
    if coupled is not None and gate == "input":  # f = 1 - i: i reaches c through f as well
        d_act += f" - dL/d{coupled.symbol}"
    doc.heading(spec.title)
    columns = {"act": v[gate, "act"], "grad:act": g[gate, "act"]}
    if spec.rule == "one":
        doc.formula(f"{d_act};    {y} = 1 is a constant: the gradient stops here")
    elif spec.rule == "complement":
        i = cell.gate("input").symbol
        doc.formula(f"{d_act};    {y} = 1 - {i}: dL/d{y} flows on into {i}, as -dL/d{y}")
    else:
        into = "preact" if cell.clip is None else "clipped"
        d_preact = f"dL/d{into}_{spec.index} = dL/d{y} * {spec.activation.derivative.format(y=y)}"
        if cell.clip is not None:
            d_preact += f";    dL/dpreact = dL/dclipped where |preact| ≤ {cell.clip:g}, else 0"
        peephole = f";    dL/dP_{spec.index} = dL/dpreact * {spec.peeps}" if spec.peeps else ""
        doc.formula(f"{d_act};    {d_preact};    {' = '.join(f'dL/d{q}' for q in _sum_of(spec))} = dL/dpreact"
                    f"{peephole}")
        columns.update({f"grad:{q}": g[gate, q] for q in ("clipped", "preact") if q in spec.quantities})
        if spec.peeps and not np.isnan(g[gate, "P"]).all():  # a step's own dL/dP: kept per step (or of one step)
            columns["grad:P"] = g[gate, "P"]
    doc.table(columns)
    if gate == "forget" and spec.rule != "one" and not v["given", "c_prev"].any():
        doc.note("c_prev is all zeros, so dL/df is zero: with nothing to keep, the forget gate "
                 "cannot change the loss at this step.")


def _back_given(doc: _Doc, b: _Back) -> None:
    g = b.g
    doc.heading("Inputs")
    doc.formula("dL/dx = Σ_gates Wᵀ·dL/dpreact;    dL/dh_prev = Σ_gates Uᵀ·dL/dpreact")
    doc.table({"grad:x": g["given", "x"], "grad:h_prev": g["given", "h_prev"],
               "grad:c_prev": g["given", "c_prev"]})


def _back_weights(doc: _Doc, b: _Back) -> None:
    """The norm of each weight's gradient, a row per gate (and stage) that has weights: the step's own
    (``param_grads="per-step"``), or summed over the steps once, after the last step explained."""
    trace, cell = b.trace, b.cell
    mode = trace.param_grads
    owners = [(spec.name, dict(spec.weights)) for spec in cell.gates if spec.weights]
    owners += [(stage, {weight: shape}) for stage, weight, shape in cell.stage_weights]
    names = list(dict.fromkeys(w for _, weights in owners for w in weights))
    if mode == "none":
        doc.heading("Weights")
        doc.note("The backward pass kept no gradients of the weights (param_grads 'none'): only dL/d each traced "
                 "quantity. lstmtrace.backward(trace, param_grads='total') or --param-grads total keeps them.")
        return
    formulas = {"W": "dL/dW = dL/dpreact ⊗ x", "U": "dL/dU = dL/dpreact ⊗ h_prev", "b": "dL/db = dL/dpreact",
                "P": "dL/dP = dL/dpreact * the c it peeps at", "W_hr": "dL/dW_hr = dL/dh ⊗ m"}
    summed = mode == "total" and trace.steps > 1
    doc.heading(f"Weights, summed over the {trace.steps} steps" if summed else "Weights")
    doc.formula(";    ".join(("Σ_t " if summed else "") + formulas[w] for w in names))
    norm = np.linalg.norm
    g = b.g if mode == "per-step" else {(owner, w): trace.block(owner, f"grad:{w}")[0]
                                        for owner, weights in owners for w in weights}
    doc.table_rows(["gate", *(f"‖dL/d{w}‖" for w in names)],
                   [[owner, *(norm(g[owner, w]) if w in weights else None for w in names)]
                    for owner, weights in owners])
    shapes = dict(shape for _, weights in owners for shape in weights.items())
    units = ", ".join(f"r·{shapes[w].split('×')[1]} + c for {w}" for w in names if "×" in shapes[w])
    where = ("; each step holds its own contribution, and their sum over steps is the whole gradient."
             if mode == "per-step" and trace.steps > 1 else
             ", summed over the steps, at step 0." if mode == "total" else ".")
    doc.note(f"The weights' gradients are in the trace entry by entry ({', '.join(f'grad:{w}' for w in names)}; "
             f"unit {units}){where}")


BACK_SECTIONS = {"hidden": _back_hidden, "cell": _back_cell, "given": _back_given}
"""The backward sections of the stages that are no gate; each gate's is :func:`_back_gate`."""


def _backward_section(doc: _Doc, trace, t: int) -> None:
    """The chain rule for step t, in reverse pipeline order: each stage's formula, then its numbers."""
    b = _Back(trace, t)
    doc.heading(f"Backward pass, step t = {t}: dL/d each quantity, from the loss back", 1)
    for stage, _ in reversed(trace.cell.pipeline):
        if stage in BACK_SECTIONS:
            BACK_SECTIONS[stage](doc, b)
        else:
            _back_gate(doc, b, trace.cell.gate(stage))
    if trace.param_grads == "per-step":
        _back_weights(doc, b)
