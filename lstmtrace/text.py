"""The annotated explanation of a trace, as plain text or Markdown.

Every number printed is read from the trace; the notes only compare those
numbers with thresholds (0.5, 0.01 of the ends) to say what they mean.
"""
from typing import List, Optional, Sequence

import numpy as np
from tabulate import tabulate

__all__ = ["SATURATION", "render", "saturated"]

SATURATION = 0.01
"""An activation within this distance of its bounds (0 and 1 for σ, ±1 for tanh) is saturated."""


def saturated(gate: str, act: np.ndarray) -> np.ndarray:
    """Which units of a gate's activation (any shape) are saturated: the one definition lstmtrace uses.

    >>> saturated("forget", np.array([0.005, 0.5, 0.995])), saturated("candidate", np.array([-0.995, 0.5]))
    (array([ True, False,  True]), array([ True, False]))
    """
    if gate == "candidate":
        return np.abs(act) > 1.0 - SATURATION
    return (act < SATURATION) | (act > 1.0 - SATURATION)

FORMULA = {
    "forget": ("Forget gate", "f = σ(W_f·x + U_f·h_prev + b_f)", "f"),
    "input": ("Input gate", "i = σ(W_i·x + U_i·h_prev + b_i)", "i"),
    "candidate": ("Candidate", "c̃ = tanh(W_g·x + U_g·h_prev + b_g)", "c̃"),
    "output": ("Output gate", "o = σ(W_o·x + U_o·h_prev + b_o)", "o"),
}
MATRIX_INDEX = {"forget": "f", "input": "i", "candidate": "g", "output": "o"}

SIGMOID_NOTE = (
    "σ(preact) lies strictly between 0 and 1: it is exactly 0.5 where preact = 0, "
    "and comes within 0.01 of 0 or 1 only beyond |preact| ≈ 4.6. "
    "A gate is a soft switch, not a 0-or-1 one."
)
TANH_NOTE = (
    "tanh(preact) lies strictly between −1 and 1: it is 0 where preact = 0, "
    "and comes within 0.01 of ±1 only beyond |preact| ≈ 2.6."
)
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


def _share_note(doc: "_Doc", act: np.ndarray, gate: str, symbol: str) -> None:
    """Which units a σ gate passes more than half of, less than half, or exactly half."""
    verb, what = SHARE[gate]
    groups = [("more than half", ">", act > 0.5), ("less than half", "<", act < 0.5),
              ("exactly half", "=", act == 0.5)]
    parts = [f"{amount} ({symbol} {op} 0.5) in {_units(mask)}" for amount, op, mask in groups if mask.any()]
    first, *rest = parts
    amount, brackets = first.split(" (", 1)
    doc.note(f"It {verb} " + "; ".join([f"{amount} {what} ({brackets}", *rest]) + ".")


def _gate_section(doc: _Doc, v: dict, gate: str) -> None:
    title, formula, symbol = FORMULA[gate]
    act = v[gate, "act"]
    low = -1.0 if gate == "candidate" else 0.0
    marked = saturated(gate, act)
    doc.heading(title)
    doc.formula(f"{formula}    act = {symbol}")
    columns = {q: v[gate, q] for q in ("Wx", "Uh", "bias", "preact", "act")}
    if marked.any():
        columns["note"] = np.where(marked, np.where(act > 0.5, "saturated ≈ 1", f"saturated ≈ {low:g}"), "")
    doc.table(columns)
    if gate in ("forget", "candidate"):
        doc.note(SIGMOID_NOTE if gate == "forget" else TANH_NOTE)
    if marked.any():
        doc.note(f"Saturated (within 0.01 of {low:g} or 1): {_units(marked)}.")
    elif not v[gate, "preact"].any():
        doc.note(f"No unit is saturated: every preact is 0 here, so every {symbol} is "
                 f"{'0' if gate == 'candidate' else '0.5'}.")
    else:
        doc.note(f"No unit is saturated: |preact| is at most {doc.num(np.abs(v[gate, 'preact']).max())} "
                 f"here, so every {symbol} is between {low + SATURATION:g} and {1 - SATURATION:g}.")
    if gate in SHARE:
        _share_note(doc, act, gate, symbol)


def _expand(doc: _Doc, trace, v: dict, u: int) -> None:
    num = doc.num
    paren = lambda a: f"({num(a)})" if a < 0 else num(a)
    doc.heading(f"Unit {u}, term by term")
    p = trace.params
    x, h_prev = v["given", "x"], v["given", "h_prev"]
    for gate in FORMULA:
        _, _, symbol = FORMULA[gate]
        k = MATRIX_INDEX[gate]
        lines = [f"{gate}:"]
        if p is not None:
            for M, vec, name, q in ((p[gate].W, x, "x", "Wx"), (p[gate].U, h_prev, "h_prev", "Uh")):
                if not np.isclose(M[u] @ vec, v[gate, q][u], rtol=1e-9, atol=1e-12):
                    lines.append(f"  ({gate}.{q}: the weights changed after this trace was made, "
                                 "so their terms are not shown)")
                    continue
                terms = [f"{num(w)}×{paren(a)}" for w, a in zip(M[u], vec)]
                if len(terms) > 16:
                    terms = terms[:8] + [f"… {len(terms) - 10} more terms …"] + terms[-2:]
                lines.append(f"  {'W' if q == 'Wx' else 'U'}_{k}[{u},:]·{name} = "
                             f"{' + '.join(terms)} = {num(v[gate, q][u])}")
        Wx, Uh, b, pre, act = (v[gate, q][u] for q in ("Wx", "Uh", "bias", "preact", "act"))
        lines.append(f"  preact = Wx + Uh + b = {num(Wx)} + {paren(Uh)} + {paren(b)} = {num(pre)}")
        if gate == "candidate":
            lines.append(f"  {symbol} = tanh(preact) = tanh({num(pre)}) = {num(act)}")
        else:
            lines.append(f"  {symbol} = σ(preact) = 1 / (1 + e^{paren(-pre)}) = {num(act)}")
        doc.lines(lines)
    f, i, g, o = (v[gate, "act"][u] for gate in FORMULA)
    c_prev, fc, ig, c = v["given", "c_prev"][u], *(v["cell", q][u] for q in
                                                   ("forget*c_prev", "input*candidate", "c"))
    tanh_c, h = v["hidden", "tanh(c)"][u], v["hidden", "h"][u]
    doc.lines([
        "cell:",
        f"  forget*c_prev = f × c_prev = {num(f)} × {paren(c_prev)} = {num(fc)}",
        f"  input*candidate = i × c̃ = {num(i)} × {paren(g)} = {num(ig)}",
        f"  c = forget*c_prev + input*candidate = {num(fc)} + {paren(ig)} = {num(c)}",
        "hidden:",
        f"  tanh(c) = tanh({num(c)}) = {num(tanh_c)}",
        f"  h = o × tanh(c) = {num(o)} × {paren(tanh_c)} = {num(h)}",
    ])
    if p is None:
        doc.note("A saved trace does not hold W and U, so their dot products are not written out "
                 "term by term: run `lstmtrace step … --expand` with the same weights for that.")


def _summary(doc: _Doc, trace) -> None:
    """One row per step: x, the σ gates' means, c, h, and how many units saturate."""
    doc.heading(f"{trace.steps} steps · input size E = {trace.input_size} · hidden size H = "
                f"{trace.hidden_size}", 1)
    short = lambda vectors: [_short(doc, v) for v in vectors]
    act = {gate: trace._block(gate, "act") for gate in FORMULA}
    columns = {"x": short(trace._block("given", "x")),
               **{f"{gate} mean": act[gate].mean(axis=1) for gate in ("forget", "input", "output")},
               "c": short(trace._block("cell", "c")), "h": short(trace._block("hidden", "h"))}
    counts = {gate: saturated(gate, a).sum(axis=1) for gate, a in act.items()}
    columns["saturated units"] = [", ".join(f"{g} {counts[g][t]}" for g in FORMULA if counts[g][t])
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
    if title:
        doc.note(title)
    if trace.steps > 1:
        _summary(doc, trace)
        if trace.has_gradients:
            _norms(doc, trace)
        if steps is not None:
            doc.note(f"The detail below is of step{'s' if len(detail) > 1 else ''} "
                     f"{', '.join(map(str, detail))} of {trace.steps}.")
    for t in detail:
        v = trace._vectors(t)
        doc.heading(f"LSTM step t = {t} · input size E = {trace.input_size} · hidden size H = {H}", 1)
        doc.heading("Given")
        doc.table({"x": v["given", "x"], "h_prev": v["given", "h_prev"], "c_prev": v["given", "c_prev"]})
        for gate in FORMULA:
            _gate_section(doc, v, gate)
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
        doc.formula("h = o⊙tanh(c)")
        doc.table({"output": v["output", "act"], "c": v["cell", "c"], "tanh(c)": v["hidden", "tanh(c)"],
                   "h": v["hidden", "h"]})
        doc.note("tanh keeps the sign of c and squeezes it into (−1, 1); the output gate o "
                 "decides how much of it becomes the new hidden state h.")
        if expand is not None:
            _expand(doc, trace, v, expand)
        if trace.has_gradients:
            _backward_section(doc, trace, t)
    return doc.text()


def _norms(doc: _Doc, trace) -> None:
    """One row per step: how big dL/dh, dL/dc and dL/dx are, to see gradients vanish or explode."""
    doc.heading("Gradient norms, step by step")
    norm = lambda gate, q: np.linalg.norm(trace._block(gate, q), axis=1)  # noqa: E731
    doc.table_rows(["step", "‖dL/dh‖", "‖dL/dc‖", "‖dL/dx‖"],
                   [[t + 1, a, b, c] for t, (a, b, c) in enumerate(zip(
                       norm("hidden", "grad:h"), norm("cell", "grad:c"), norm("given", "grad:x")))])
    doc.note("dL/dh and dL/dc of a step include what flows back from every later step. Norms that "
             "shrink step after step towards t = 1 are vanishing gradients: the early inputs barely "
             "move the loss. Norms that grow towards t = 1 are exploding gradients.")


def _backward_section(doc: _Doc, trace, t: int) -> None:
    """The chain rule for step t, in reverse pipeline order: each stage's formula, then its numbers."""
    g, v = trace._vectors(t, "grad"), trace._vectors(t)
    later = "" if t == trace.steps else f" + what step {t + 1} hands back through its h_prev"
    doc.heading(f"Backward pass, step t = {t}: dL/d each quantity, from the loss back", 1)
    doc.heading("Hidden state")
    doc.formula(f"dL/dh = dL/dh from the loss{later};    dL/dtanh(c) = dL/dh ⊙ o;    "
                "dL/do = dL/dh ⊙ tanh(c)")
    doc.table({"grad:h": g["hidden", "grad:h"], "grad:tanh(c)": g["hidden", "grad:tanh(c)"],
               "grad:output act": g["output", "grad:act"]})
    doc.heading("Cell state")
    back_c = "" if t == trace.steps else f" + dL/dc_prev of step {t + 1}"
    doc.formula(f"dL/dc = dL/dtanh(c) ⊙ (1 − tanh²(c)){back_c};    dL/dc_prev = dL/dc ⊙ f")
    doc.table({"grad:c": g["cell", "grad:c"], "forget": v["forget", "act"], "grad:c_prev": g["given", "grad:c_prev"]})
    derivatives = {
        "output": ("dL/do = dL/dh ⊙ tanh(c)", "dL/dpreact_o = dL/do ⊙ o(1 − o)"),
        "candidate": ("dL/dc̃ = dL/dc ⊙ i", "dL/dpreact_g = dL/dc̃ ⊙ (1 − c̃²)"),
        "input": ("dL/di = dL/dc ⊙ c̃", "dL/dpreact_i = dL/di ⊙ i(1 − i)"),
        "forget": ("dL/df = dL/dc ⊙ c_prev", "dL/dpreact_f = dL/df ⊙ f(1 − f)"),
    }
    for gate, (d_act, d_preact) in derivatives.items():
        doc.heading(FORMULA[gate][0])
        doc.formula(f"{d_act};    {d_preact};    dL/dWx = dL/dUh = dL/dbias = dL/dpreact")
        doc.table({"act": v[gate, "act"], "grad:act": g[gate, "grad:act"], "grad:preact": g[gate, "grad:preact"]})
        if gate == "forget" and not v["given", "c_prev"].any():
            doc.note("c_prev is all zeros, so dL/df is zero: with nothing to keep, the forget gate "
                     "cannot change the loss at this step.")
    doc.heading("Inputs")
    doc.formula("dL/dx = Σ_gates Wᵀ·dL/dpreact;    dL/dh_prev = Σ_gates Uᵀ·dL/dpreact")
    doc.table({"grad:x": g["given", "grad:x"], "grad:h_prev": g["given", "grad:h_prev"],
               "grad:c_prev": g["given", "grad:c_prev"]})
    doc.heading("Weights")
    doc.formula("dL/dW = dL/dpreact ⊗ x;    dL/dU = dL/dpreact ⊗ h_prev;    dL/db = dL/dpreact")
    norm = np.linalg.norm
    doc.table_rows(["gate", "‖dL/dW‖", "‖dL/dU‖", "‖dL/db‖"],
                   [[gate, norm(g[gate, "grad:W"]), norm(g[gate, "grad:U"]), norm(g[gate, "grad:b"])]
                    for gate in FORMULA])
    doc.note("The weights' gradients are in the trace entry by entry (grad:W, grad:U, grad:b; unit r·E + c "
             "for W, r·H + c for U)" + ("; each step holds its own contribution, and their sum over "
                                        "steps is the whole gradient." if trace.steps > 1 else "."))
