"""The annotated explanation of a trace, as plain text or Markdown.

Every number printed is read from the trace; the notes only compare those
numbers with thresholds (0.5, 0.01 of the ends) to say what they mean.
"""
from typing import List, Optional, Sequence

import numpy as np
from tabulate import tabulate

from lstmtrace.cell import GATES, LSTM, Cell, cell_activation_name

__all__ = ["SATURATION", "render", "saturated"]

SATURATION = 0.01
"""An activation within this distance of its bounds (0 and 1 for σ, ±1 for tanh) is saturated."""


def saturated(gate: str, act: np.ndarray, cell: Cell = LSTM) -> np.ndarray:
    """Which units of a gate's activation (any shape) are saturated: the one definition lstmtrace uses.

    >>> saturated("forget", np.array([0.005, 0.5, 0.995])), saturated("candidate", np.array([-0.995, 0.5]))
    (array([ True, False,  True]), array([ True, False]))
    """
    activation = cell.gate(gate).activation
    return (act < activation.low + SATURATION) | (act > activation.high - SATURATION)


def formula(spec, cell: Cell = LSTM) -> str:
    """A gate's equation as the text prints it: ``f = σ(W_f·x + U_f·h_prev + b_f)``, and with a clip,
    ``f = σ(clip(W_f·x + U_f·h_prev + b_f, ±3))``."""
    k = spec.index
    inner = f"W_{k}·x + U_{k}·h_prev + b_{k}"
    if cell.clip is not None:
        inner = f"clip({inner}, ±{cell.clip:g})"
    return f"{spec.symbol} = {spec.activation.name}({inner})"




def shares(cell: Cell = LSTM) -> tuple:
    """The gates whose activation is a share between 0 and 1 (σ, hard sigmoid): forget, input, output."""
    return tuple(g.name for g in cell.gates if (g.activation.low, g.activation.high) == (0.0, 1.0))


SIGMOID_NOTE = (
    "σ(preact) lies strictly between 0 and 1: it is exactly 0.5 where preact = 0, "
    "and comes within 0.01 of 0 or 1 only beyond |preact| ≈ 4.6. "
    "A gate is a soft switch, not a 0-or-1 one."
)
TANH_NOTE = (
    "tanh(preact) lies strictly between −1 and 1: it is 0 where preact = 0, "
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


class _Doc:
    """Collects headings, tables and notes, in text or Markdown."""

    def __init__(self, markdown: bool, precision: int):
        self.markdown, self.precision, self.parts = markdown, precision, []

    def num(self, v: float) -> str:
        return f"{v:.{self.precision}g}"

    def heading(self, text: str, level: int = 2) -> None:
        if self.markdown:
            self.parts.append("#" * (level + 1) + " " + text)
        else:
            self.parts.append(text + "\n" + ("=" if level == 1 else "-") * len(text))

    def formula(self, text: str) -> None:
        self.parts.append(f"`{text}`" if self.markdown else text)

    def table(self, columns: dict) -> None:
        """``{header: vector}``; vectors shorter than the longest leave blanks."""
        n = max(len(v) for v in columns.values())
        rows = [[u] + [v[u] if u < len(v) else None for v in columns.values()] for u in range(n)]
        self.parts.append(tabulate(rows, headers=["unit", *columns], tablefmt="github" if self.markdown
                                   else "simple", floatfmt=f".{self.precision}g", missingval=""))

    def table_rows(self, headers: List[str], rows: list) -> None:
        self.parts.append(tabulate(rows, headers=headers, tablefmt="github" if self.markdown else "simple",
                                   floatfmt=f".{self.precision}g"))

    def note(self, text: str) -> None:
        self.parts.append(text if self.markdown else _wrap(text, "  "))

    def lines(self, lines: List[str]) -> None:
        self.parts.append("\n".join(("    " if self.markdown else "  ") + s for s in lines))

    def text(self) -> str:
        return "\n\n".join(self.parts) + "\n"


def _wrap(text: str, indent: str, width: int = 88) -> str:
    import textwrap

    return textwrap.fill(text, width=width, initial_indent=indent, subsequent_indent=indent)


def _units(mask: np.ndarray, most: int = 12) -> str:
    """'unit 3' or 'units 0, 2, 4', shortened after ``most`` units."""
    idx = np.flatnonzero(mask)
    shown = ", ".join(str(u) for u in idx[:most])
    if len(idx) > most:
        shown += f", … ({len(idx)} units in all)"
    return ("unit " if len(idx) == 1 else "units ") + shown


def _share_note(doc: "_Doc", act: np.ndarray, gate: str, symbol: str, cell: Cell = LSTM) -> None:
    """Which units a σ gate passes more than half of, less than half, or exactly half."""
    verb, what = SHARE[gate]
    what = what.replace("tanh(c)", cell_activation_name(cell.cell_activation))
    groups = [("more than half", ">", act > 0.5), ("less than half", "<", act < 0.5),
              ("exactly half", "=", act == 0.5)]
    parts = [f"{amount} ({symbol} {op} 0.5) in {_units(mask)}" for amount, op, mask in groups if mask.any()]
    first, *rest = parts
    amount, brackets = first.split(" (", 1)
    doc.note(f"It {verb} " + "; ".join([f"{amount} {what} ({brackets}", *rest]) + ".")


def _gate_section(doc: _Doc, v: dict, gate: str, cell: Cell = LSTM) -> None:
    spec = cell.gate(gate)
    title, symbol = spec.title, spec.symbol
    act = v[gate, "act"]
    activation = spec.activation
    low, high = activation.low, activation.high
    marked = saturated(gate, act, cell)
    doc.heading(title)
    doc.formula(f"{formula(spec, cell)}    act = {symbol}")
    columns = {q: v[gate, q] for q in cell.quantities}
    if marked.any():
        middle = (low + high) / 2
        columns["note"] = np.where(marked, np.where(act > middle, f"saturated ≈ {high:g}", f"saturated ≈ {low:g}"), "")
    doc.table(columns)
    if next(g for g in cell.gates if g.activation is activation).name == gate:
        doc.note(_range_note(activation))
    if cell.clip is not None and (v[gate, "clipped"] != v[gate, "preact"]).any():
        doc.note(f"clip bounds preact to [−{cell.clip:g}, {cell.clip:g}] before {activation.name}: "
                 f"{_units(v[gate, 'clipped'] != v[gate, 'preact'])} reached the bound.")
    if not (np.isfinite(low) and np.isfinite(high)):
        pass  # an activation without two bounds does not saturate
    elif marked.any():
        doc.note(f"Saturated (within 0.01 of {low:g} or {high:g}): {_units(marked)}.")
    elif not v[gate, "preact"].any():
        doc.note(f"No unit is saturated: every preact is 0 here, so every {symbol} is "
                 f"{activation.forward(np.zeros(1))[0]:g}.")
    else:
        doc.note(f"No unit is saturated: |preact| is at most {doc.num(np.abs(v[gate, 'preact']).max())} "
                 f"here, so every {symbol} is between {low + SATURATION:g} and {high - SATURATION:g}.")
    if gate in SHARE and gate in shares(cell):
        _share_note(doc, act, gate, symbol, cell)


def _expand(doc: _Doc, trace, v: dict, u: int) -> None:
    num = doc.num
    paren = lambda a: f"({num(a)})" if a < 0 else num(a)
    doc.heading(f"Unit {u}, term by term")
    p = trace.params
    x, h_prev = v["given", "x"], v["given", "h_prev"]
    cell = trace.cell
    for spec in cell.gates:
        gate, symbol, k = spec.name, spec.symbol, spec.index
        lines = [f"{gate}:"]
        if p is not None:  # the weights the trace was made from (a trace owns them)
            for M, vec, name, q in ((p[gate].W, x, "x", "Wx"), (p[gate].U, h_prev, "h_prev", "Uh")):
                terms = [f"{num(w)}×{paren(a)}" for w, a in zip(M[u], vec)]
                if len(terms) > 16:
                    terms = terms[:8] + [f"… {len(terms) - 10} more terms …"] + terms[-2:]
                lines.append(f"  {'W' if q == 'Wx' else 'U'}_{k}[{u},:]·{name} = "
                             f"{' + '.join(terms)} = {num(v[gate, q][u])}")
        Wx, Uh, b, pre, act = (v[gate, q][u] for q in ("Wx", "Uh", "bias", "preact", "act"))
        lines.append(f"  preact = Wx + Uh + b = {num(Wx)} + {paren(Uh)} + {paren(b)} = {num(pre)}")
        name = spec.activation.name
        if cell.clip is not None:
            pre = v[gate, "clipped"][u]
            lines.append(f"  clipped = clip(preact, ±{cell.clip:g}) = {num(pre)}")
        lines.append("  " + EXPANDED.get(name, "{symbol} = " + name + "({pre}) = {act}").format(
            symbol=symbol, pre=num(pre), minus_pre=paren(-pre), act=num(act)).replace(
            "(preact)", "(clipped)" if cell.clip is not None else "(preact)"))
        doc.lines(lines)
    f, i, g, o = (v[gate, "act"][u] for gate in GATES)
    c_prev, fc, ig, c = v["given", "c_prev"][u], *(v["cell", q][u] for q in
                                                   ("forget*c_prev", "input*candidate", "c"))
    act_c_name = cell_activation_name(cell.cell_activation)
    tanh_c, h = v["hidden", act_c_name][u], v["hidden", "h"][u]
    doc.lines([
        "cell:",
        f"  forget*c_prev = f × c_prev = {num(f)} × {paren(c_prev)} = {num(fc)}",
        f"  input*candidate = i × c̃ = {num(i)} × {paren(g)} = {num(ig)}",
        f"  c = forget*c_prev + input*candidate = {num(fc)} + {paren(ig)} = {num(c)}",
        "hidden:",
        f"  {act_c_name} = {cell.cell_activation.name}({num(c)}) = {num(tanh_c)}",
        f"  h = o × {act_c_name} = {num(o)} × {paren(tanh_c)} = {num(h)}",
    ])
    if p is None:
        doc.note("A saved trace does not hold W and U, so their dot products are not written out "
                 "term by term: run `lstmtrace step … --expand` with the same weights for that.")


def _summary(doc: _Doc, trace) -> None:
    """One row per step: x, the σ gates' means, c, h, and how many units saturate."""
    doc.heading(f"{trace.steps} steps · input size E = {trace.input_size} · hidden size H = "
                f"{trace.hidden_size}", 1)
    short = lambda vectors: [_short(doc, v) for v in vectors]
    act = {gate: trace.block(gate, "act") for gate in GATES}
    columns = {"x": short(trace.block("given", "x")),
               **{f"{gate} mean": act[gate].mean(axis=1) for gate in shares(trace.cell)},
               "c": short(trace.block("cell", "c")), "h": short(trace.block("hidden", "h"))}
    counts = {gate: saturated(gate, a, trace.cell).sum(axis=1) for gate, a in act.items()}
    columns["saturated units"] = [", ".join(f"{g} {counts[g][t]}" for g in GATES if counts[g][t])
                                  or "none" for t in range(trace.steps)]
    rows = [[t + 1, *(col[t] for col in columns.values())] for t in range(trace.steps)]
    doc.parts.append(tabulate(rows, headers=["step", *columns], tablefmt="github" if doc.markdown
                              else "simple", floatfmt=f".{doc.precision}g", disable_numparse=[1, 5, 6]))
    doc.note("Each step's h and c become the next step's h_prev and c_prev. A gate's mean is over its "
             "units; a unit is saturated when its activation is within 0.01 of its bound.")


def _short(doc: _Doc, vector: np.ndarray, most: int = 3) -> str:
    shown = ", ".join(doc.num(v) for v in vector[:most])
    return shown + (f", … ({len(vector)})" if len(vector) > most else "")


def render(trace, precision: int = 6, expand: Optional[int] = None, markdown: bool = False,
           title: Optional[str] = None, steps: Optional[Sequence[int]] = None) -> str:
    """The explanation of ``trace``, in pipeline order; ``title`` opens it.

    A trace of several steps starts with a table of one row per step, then explains
    each step in ``steps`` (every step when not given).

    >>> from lstmtrace import Parameters, step
    >>> print(render(step(Parameters.zeros(1, 1), [2.0])).splitlines()[0])
    LSTM step t = 1 · input size E = 1 · hidden size H = 1
    """
    if precision < 1:
        raise ValueError(f"precision must be at least 1, not {precision}")
    H = trace.hidden_size
    if expand is not None and not 0 <= expand < H:
        raise ValueError(f"unit {expand} is not in 0..{H - 1} (hidden size H = {H})")
    detail = range(1, trace.steps + 1) if steps is None else list(steps)
    outside = [t for t in detail if not 1 <= t <= trace.steps]
    if outside:
        raise ValueError(f"step {outside[0]} is not in 1..{trace.steps}")
    doc = _Doc(markdown, precision)
    cell = trace.cell
    if title:
        doc.note(title)
    if cell is not LSTM:
        name = trace.variant.name
        doc.note(f"Variant{f' {name}' if name else ''}: {trace.variant.describe()}. Each equation below "
                 "says where it differs from lstmtrace's default LSTM (PyTorch's).")
    if trace.steps > 1:
        _summary(doc, trace)
        if trace.has_gradients:
            _norms(doc, trace)
        if steps is not None:
            doc.note(f"The detail below is of step{'s' if len(detail) > 1 else ''} "
                     f"{', '.join(map(str, detail))} of {trace.steps}.")
    for t in detail:
        v = trace.values(t)
        doc.heading(f"LSTM step t = {t} · input size E = {trace.input_size} · hidden size H = {H}", 1)
        doc.heading("Given")
        doc.table({"x": v["given", "x"], "h_prev": v["given", "h_prev"], "c_prev": v["given", "c_prev"]})
        for gate in GATES:
            _gate_section(doc, v, gate, cell)
        doc.heading("Cell state")
        doc.formula("c = f⊙c_prev + i⊙c̃    (⊙: multiply unit by unit)")
        # headers are the trace's own names (and plain ASCII: a combining ~ would misalign tables)
        doc.table({"forget": v["forget", "act"], "c_prev": v["given", "c_prev"],
                   "forget*c_prev": v["cell", "forget*c_prev"], "input": v["input", "act"],
                   "candidate": v["candidate", "act"], "input*candidate": v["cell", "input*candidate"],
                   "c": v["cell", "c"]})
        doc.note("The forget gate scales the old memory c_prev, the input gate scales the candidate "
                 "c̃, and the two add up to the new cell state c.")
        doc.heading("Hidden state")
        act_c = cell_activation_name(cell.cell_activation)
        doc.formula(f"h = o⊙{act_c}")
        doc.table({"output": v["output", "act"], "c": v["cell", "c"], act_c: v["hidden", act_c],
                   "h": v["hidden", "h"]})
        if cell.cell_activation.name == "tanh":
            doc.note("tanh keeps the sign of c and squeezes it into (−1, 1); the output gate o "
                     "decides how much of it becomes the new hidden state h.")
        else:
            doc.note(f"{_range_note(cell.cell_activation, 'c')} The output gate o decides how much of "
                     f"{act_c} becomes the new hidden state h.")
        if expand is not None:
            _expand(doc, trace, v, expand)
        if trace.has_gradients:
            _backward_section(doc, trace, t)
    return doc.text()


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


def _backward_section(doc: _Doc, trace, t: int) -> None:
    """The chain rule for step t, in reverse pipeline order: each stage's formula, then its numbers."""
    g, v = trace.values(t, "grad"), trace.values(t)  # g[gate, q] is dL/d(gate.q)
    cell = trace.cell
    act_c, act = cell_activation_name(cell.cell_activation), cell.cell_activation
    later = "" if t == trace.steps else f" + what step {t + 1} hands back through its h_prev"
    doc.heading(f"Backward pass, step t = {t}: dL/d each quantity, from the loss back", 1)
    doc.heading("Hidden state")
    doc.formula(f"dL/dh = dL/dh from the loss{later};    dL/d{act_c} = dL/dh ⊙ o;    "
                f"dL/do = dL/dh ⊙ {act_c}")
    doc.table({"grad:h": g["hidden", "h"], f"grad:{act_c}": g["hidden", act_c],
               "grad:output act": g["output", "act"]})
    doc.heading("Cell state")
    back_c = "" if t == trace.steps else f" + dL/dc_prev of step {t + 1}"
    derivative = "(1 − tanh²(c))" if act.name == "tanh" else act.derivative.format(y=act_c)
    doc.formula(f"dL/dc = dL/d{act_c} ⊙ {derivative}{back_c};    dL/dc_prev = dL/dc ⊙ f")
    doc.table({"grad:c": g["cell", "c"], "forget": v["forget", "act"], "grad:c_prev": g["given", "c_prev"]})
    d_act = {  # where each gate's value meets the stages after the gates
        "output": f"dL/do = dL/dh ⊙ {act_c}", "candidate": "dL/dc̃ = dL/dc ⊙ i",
        "input": "dL/di = dL/dc ⊙ c̃", "forget": "dL/df = dL/dc ⊙ c_prev",
    }
    for spec in reversed(cell.gates):
        gate, y = spec.name, spec.symbol
        into = "preact" if cell.clip is None else "clipped"
        d_preact = f"dL/d{into}_{spec.index} = dL/d{y} ⊙ {spec.activation.derivative.format(y=y)}"
        if cell.clip is not None:
            d_preact += f";    dL/dpreact = dL/dclipped where |preact| ≤ {cell.clip:g}, else 0"
        doc.heading(spec.title)
        doc.formula(f"{d_act[gate]};    {d_preact};    dL/dWx = dL/dUh = dL/dbias = dL/dpreact")
        doc.table({"act": v[gate, "act"], "grad:act": g[gate, "act"], "grad:preact": g[gate, "preact"]})
        if gate == "forget" and not v["given", "c_prev"].any():
            doc.note("c_prev is all zeros, so dL/df is zero: with nothing to keep, the forget gate "
                     "cannot change the loss at this step.")
    doc.heading("Inputs")
    doc.formula("dL/dx = Σ_gates Wᵀ·dL/dpreact;    dL/dh_prev = Σ_gates Uᵀ·dL/dpreact")
    doc.table({"grad:x": g["given", "x"], "grad:h_prev": g["given", "h_prev"],
               "grad:c_prev": g["given", "c_prev"]})
    doc.heading("Weights")
    doc.formula("dL/dW = dL/dpreact ⊗ x;    dL/dU = dL/dpreact ⊗ h_prev;    dL/db = dL/dpreact")
    norm = np.linalg.norm
    doc.table_rows(["gate", "‖dL/dW‖", "‖dL/dU‖", "‖dL/db‖"],
                   [[gate, norm(g[gate, "W"]), norm(g[gate, "U"]), norm(g[gate, "b"])]
                    for gate in GATES])
    doc.note("The weights' gradients are in the trace entry by entry (grad:W, grad:U, grad:b; unit r·E + c "
             "for W, r·H + c for U)" + ("; each step holds its own contribution, and their sum over "
                                        "steps is the whole gradient." if trace.steps > 1 else "."))
