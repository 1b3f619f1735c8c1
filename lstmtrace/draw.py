"""Pictures of a trace: the LSTM cell diagram with its numbers on the wires, and gate heatmaps.

The diagram follows the usual textbook drawing (colah's "Understanding LSTM
Networks"): the cell state runs along the top from c_{t-1} to c_t, the forget,
input and output gates are σ boxes and the candidate a tanh box, fed from
below by h_{t-1} and x_t, with ⊙ and + junctions where the vectors meet.
A variant's cell (:mod:`lstmtrace.variant`) is drawn from its definition: each
box names its activation, a gate taken away is the constant 1, a coupled forget
gate is 1 − i fed from the input gate, peepholes are dashed wires from the cell
state into the gates, and a projection is a W_hr box before h leaves the cell.
Every number drawn is the trace's own, rounded for display.

matplotlib is an optional extra (``pip install 'lstmtrace[plot]'``); nothing
else in lstmtrace imports it.
"""
from typing import Optional

import numpy as np

from lstmtrace.cell import cell_activation_name
from lstmtrace.errors import OptionError
from lstmtrace.text import formula, saturated, shares

__all__ = ["draw_cell", "plot_heatmaps", "save_figure"]

PLOT_HINT = "pip install 'lstmtrace[plot]'"

INK, CELL_INK, GATE_INK, FIXED_INK, H_INK = "#333333", "#1f5fa8", "#b85c00", "#8c8c8c", "#2e7d32"

# The diagram's grid: the cell state along the top, the gates in a row, h_{t-1} and x_t along the bottom.
Y_C, Y_BUS, Y_GATE, Y_IG, Y_H, Y_RAIL = 7.6, 1.8, 3.4, 5.6, 4.9, 6.9
X_GATE = {"forget": 3.6, "input": 7.8, "candidate": 12.0, "output": 16.2}  # far enough apart for the labels
X_PLUS, X_TANH, X_IG = 13.0, 18.6, 9.9
PEEP_DX = 0.4  # a peephole enters its gate's box this far left of the gate's output wire
# Where each gate's P⊙c label sits (x, y, alignment): f's beside its wire, i's along the rail to it, o's
# left of its wire
PEEP_LABEL = {"forget": (X_GATE["forget"] + 0.15, 5.5, "left"), "input": (X_GATE["forget"] + 0.15, 7.25, "left"),
              "output": (X_GATE["output"] - PEEP_DX - 0.15, 5.1, "right")}
PROJECTION_WIDTH = 4.8  # a projection's W_hr box and its two labels need this much more room on the right


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)  # files, not windows; a notebook's inline backend stays
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError(f"pictures need matplotlib: {PLOT_HINT}") from None
    return plt


def _label(name: str, vector: np.ndarray, precision: int, unit: Optional[int], marks=None) -> str:
    """'f = [0.475, 0.69, 0.55, …]' (first three units), or one unit's scalar; * marks saturated units."""
    fmt = lambda k: f"{vector[k]:.{precision}g}" + ("*" if marks is not None and marks[k] else "")
    if unit is not None:
        return f"{name}[{unit}] = {fmt(unit)}"
    shown = [fmt(k) for k in range(min(3, len(vector)))]
    return f"{name} = [{', '.join(shown)}{', …' if len(vector) > 3 else ''}]"


def _and(names) -> str:
    """'c̃', 'c̃ and h', 'f, i and o'."""
    names = list(names)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _partner(spec, cell):
    """The gate a coupled gate is the complement of (None for any other gate)."""
    return cell.gate(spec.complements) if spec.rule == "complement" else None


def _box_symbol(spec, cell) -> str:
    """What a gate's box shows: its activation's name, 1 for a gate taken away, 1 − i for a coupled one."""
    if spec.rule == "one":
        return "1"
    if spec.rule == "complement":
        return f"1 − {_partner(spec, cell).symbol}"
    return spec.activation.name


def _gate_formula(spec, cell) -> str:
    """A gate's equation under its box: the text's (``f = σ(W_f·x + U_f·h + P_f⊙c_prev + b_f)``), shorter
    for a gate without weights: ``i = 1 (input gate taken away)``, ``f = 1 − i (coupled)``."""
    if spec.rule == "one":
        return f"{spec.symbol} = 1 ({spec.title.lower()} taken away)"
    if spec.rule == "complement":
        return f"{spec.symbol} = 1 − {_partner(spec, cell).symbol} (coupled)"
    # the picture draws unit-by-unit products as ⊙ junctions, so its equations write ⊙ too
    return formula(spec, cell).replace("h_prev", "h").replace("*", "⊙")


def _variant_words(trace) -> str:
    """' · V: peepholes' for a variant (the preset's name first, when it is one), '' for the default LSTM."""
    words = trace.variant.describe()
    name = trace.variant.name
    return f" · {name.upper() + ': ' if name else ''}{words}" if words else ""


def _sizes(trace) -> str:
    """'E = 5, H = 5', and ', P = 2' with a projection."""
    P = trace.cell.proj_size
    return f"E = {trace.input_size}, H = {trace.hidden_size}" + (f", P = {P}" if P is not None else "")


class _Pen:
    """Draws the diagram's parts on one Axes: wires, ⊙ and + junctions, boxes and value labels."""

    def __init__(self, ax):
        from matplotlib import patches

        self.ax, self.patches = ax, patches

    def wire(self, points, colour=INK, arrow=True, dashed=False):
        style = {"linestyle": (0, (4, 2.5))} if dashed else {}
        for (x0, y0), (x1, y1) in zip(points[:-1], points[1:]):
            last = (x1, y1) == points[-1]
            self.ax.add_patch(self.patches.FancyArrowPatch(
                (x0, y0), (x1, y1), arrowstyle="-|>" if arrow and last else "-", mutation_scale=12,
                color=colour, lw=1.6, shrinkA=0, shrinkB=0, **style))

    def dot(self, x, y, colour):
        """Where a wire branches: a filled dot, so that it does not read as a crossing."""
        self.ax.add_patch(self.patches.Circle((x, y), 0.08, facecolor=colour, edgecolor="none", zorder=4))

    def junction(self, x, y, symbol):
        self.ax.add_patch(self.patches.Circle((x, y), 0.3, facecolor="white", edgecolor=INK, lw=1.4, zorder=3))
        self.ax.text(x, y, symbol, ha="center", va="center", fontsize=13, zorder=4)

    def box(self, x, y, symbol, colour, w=1.1, h=0.75):
        self.ax.add_patch(self.patches.FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.05",
                                                      facecolor=colour, edgecolor=INK, lw=1.2, zorder=3))
        text, size = _box_text(symbol)
        self.ax.text(x, y, text, ha="center", va="center", fontsize=size, color="white", zorder=4)

    def value(self, x, y, text, ha="left", colour=INK):
        self.ax.text(x, y, text, ha=ha, va="center", fontsize=8.5, color=colour, family="monospace", zorder=5,
                     bbox=dict(boxstyle="round,pad=0.15", facecolor="white", edgecolor="none", alpha=0.85))

    def note(self, x, y, text, small=False):
        """A gate's or the projection's equation, in grey under its box."""
        self.ax.text(x, y, text, ha="center", fontsize=_note_font(text, small), color="#555555")


def _box_text(symbol: str):
    """What a box shows, and how large: σ and tanh large; a longer name small, its arguments on a line
    of their own (``hard_sigmoid`` over ``[0.2, 0.5]``)."""
    text = symbol.replace("[", "\n[") if len(symbol) > 5 else symbol
    longest = max(len(line) for line in text.split("\n"))
    return text, 13 if longest <= 5 else 7 if longest <= 12 else max(4.5, 90 / longest)


def _note_font(text: str, small: bool) -> float:
    """An equation's size under its box: 7.5 (6 with a clip), smaller when it is too long to fit
    between two gates."""
    return min(6 if small else 7.5, 270 / len(text))


def _gates(pen, cell, L, marks, unit):
    """Each gate's box, fed from the bus below (if it has weights), its equation and its value above it."""
    for spec in cell.gates:
        gate, x = spec.name, X_GATE[spec.name]
        if spec.weights:
            pen.wire([(x, Y_BUS), (x, Y_GATE - 0.45)])
        partner = _partner(spec, cell)
        if partner is not None:  # f = 1 − i: a wire from the input gate's box into this one's
            side = 0.6 if X_GATE[partner.name] > x else -0.6
            pen.wire([(X_GATE[partner.name] - side, Y_GATE), (x + side, Y_GATE)])
        pen.box(x, Y_GATE, _box_symbol(spec, cell), GATE_INK if spec.rule == "computed" else FIXED_INK)
        pen.note(x, Y_GATE - 0.75, _gate_formula(spec, cell), small=cell.clip is not None)
        red = marks[gate][unit] if unit is not None else marks[gate].any()
        pen.value(x + 0.12, Y_GATE + 0.95, L(spec.symbol, (gate, "act"), marks=marks[gate]),
                  colour="#c00000" if red else INK)


def _peepholes(pen, cell, L):
    """Dashed wires from the cell state into the gates that peep at it, each labelled with its P⊙c.

    The forget and input gates see c_prev (tapped left of the forget gate's ×), the output gate the
    new c (tapped after the +); each wire enters its gate's box from above, left of its output wire.
    """
    for source, tap in (("c_prev", X_GATE["forget"] - PEEP_DX), ("c", None)):
        peeping = [g for g in cell.gates if g.peeps == source]
        if not peeping:
            continue
        drops = [X_GATE[g.name] - PEEP_DX for g in peeping]
        tap = min(drops) if tap is None else tap
        pen.wire([(tap, Y_C), (tap, Y_RAIL)], CELL_INK, arrow=False, dashed=True)
        pen.dot(tap, Y_C, CELL_INK)
        if max(drops) > tap:  # a rail along to the gates further right
            pen.wire([(tap, Y_RAIL), (max(drops), Y_RAIL)], CELL_INK, arrow=False, dashed=True)
            if min(drops) <= tap:
                pen.dot(tap, Y_RAIL, CELL_INK)
        for spec, x in zip(peeping, drops):
            pen.wire([(x, Y_RAIL), (x, Y_GATE + 0.45)], CELL_INK, dashed=True)
            x_label, y, ha = PEEP_LABEL[spec.name]
            pen.value(x_label, y, L(f"P_{spec.index}⊙{source}", (spec.name, "Pc")), ha=ha, colour=CELL_INK)


def _projection(pen, cell, L, act_c, x_box, right):
    """h = W_hr·(o⊙act(c)): the product on its way into the W_hr box, h coming out of it."""
    product = f"output*{act_c}"
    pen.wire([(X_TANH + 0.3, Y_H), (x_box - 0.6, Y_H)])
    pen.box(x_box, Y_H, "W_hr", H_INK)
    pen.note(x_box, Y_H - 0.75, f"h = W_hr·({cell.gate('output').symbol}⊙{act_c}),  W_hr: P×H")
    pen.value(X_TANH + 0.15, Y_H + 0.45, L(f"{cell.gate('output').symbol}⊙{act_c}", ("hidden", product)))
    pen.wire([(x_box + 0.6, Y_H), (right, Y_H)], H_INK)


def draw_cell(trace, step: int = 1, unit: Optional[int] = None, precision: int = 3):
    """The cell diagram of one step, each wire labelled with its values; returns the Figure.

    ``unit`` draws one unit's scalars instead of each vector's first units (of a vector
    with fewer units, x or a projected h, the first units).

    >>> import lstmtrace
    >>> fig = draw_cell(lstmtrace.step(lstmtrace.Parameters.identity(2, 2), [1.0, -1.0]))
    >>> any("f = [0.731, 0.269]" in t.get_text() for t in fig.axes[0].texts)
    True
    """
    plt = _pyplot()
    from matplotlib.patches import FancyBboxPatch

    if not 1 <= step <= trace.steps:
        raise OptionError(f"step {step} is not in 1..{trace.steps}", "step")
    if unit is not None and not 0 <= unit < trace.hidden_size:
        raise OptionError(f"unit {unit} is not in 0..{trace.hidden_size - 1} (hidden size H = {trace.hidden_size})",
                          "unit")
    v = trace.values(step)
    # x has only E units, and a projected h only P: of those, the first units
    fits = lambda key, u: u if u is not None and u < len(v[key]) else None
    L = lambda name, key, u=unit, marks=None: _label(name, v[key], precision, fits(key, u), marks)
    cell = trace.cell
    marks = {g.name: saturated(g.name, v[g.name, "act"], cell) for g in cell.gates}
    act_c = cell_activation_name(cell.cell_activation)  # tanh(c), or the variant's
    extra = PROJECTION_WIDTH if cell.proj_size is not None else 0.0
    right, x_split = 22.7 + extra, 21.2 + extra

    fig, ax = plt.subplots(figsize=(17 + 17 * extra / 23, 7.5))
    ax.set_xlim(0, 23 + extra)
    ax.set_ylim(-0.6, 9.4)
    ax.axis("off")
    pen = _Pen(ax)
    wire, junction, value = pen.wire, pen.junction, pen.value
    x_f, x_i, x_g, x_o = (X_GATE[g] for g in ("forget", "input", "candidate", "output"))

    ax.add_patch(FancyBboxPatch((1.4, 0.9), 19.2 + extra, 7.6, boxstyle="round,pad=0.1", facecolor="#f4f4f0",
                                edgecolor="#999999", lw=1, zorder=0))
    # the cell state along the top
    wire([(0.3, Y_C), (x_f - 0.3, Y_C)], CELL_INK, arrow=False)
    junction(x_f, Y_C, "×")
    wire([(x_f + 0.3, Y_C), (X_PLUS - 0.3, Y_C)], CELL_INK, arrow=False)
    junction(X_PLUS, Y_C, "+")
    wire([(X_PLUS + 0.3, Y_C), (right, Y_C)], CELL_INK)
    value(0.3, Y_C + 0.45, L("c_prev", ("given", "c_prev")))
    value(x_f + 0.45, Y_C + 0.45, L("f⊙c_prev", ("cell", "forget*c_prev")))
    value(right, Y_C + 0.45, L("c", ("cell", "c")), ha="right", colour=CELL_INK)
    ax.text(right, Y_C - 0.45, "$c_t$", ha="right", fontsize=13, color=CELL_INK)
    ax.text(0.3, Y_C - 0.45, "$c_{t-1}$", ha="left", fontsize=13, color=CELL_INK)

    # h_{t-1} and x_t join below, then feed every gate that has weights
    wire([(0.3, Y_BUS), (max(X_GATE[g.name] for g in cell.gates if g.weights), Y_BUS)], INK, arrow=False)
    wire([(2.6, -0.3), (2.6, Y_BUS)], INK, arrow=False)
    value(0.3, Y_BUS - 0.45, L("h_prev", ("given", "h_prev")))
    value(2.75, 0.1, L("x", ("given", "x")))
    ax.text(0.3, Y_BUS + 0.35, "$h_{t-1}$", fontsize=13)
    ax.text(2.4, -0.45, "$x_t$", fontsize=13, ha="right")
    _gates(pen, cell, L, marks, unit)
    # the forget gate up to its ×; input and candidate meet at a ×, then the +
    wire([(x_f, Y_GATE + 0.45), (x_f, Y_C - 0.3)])
    junction(X_IG, Y_IG, "×")
    wire([(x_i, Y_GATE + 0.45), (x_i, Y_IG), (X_IG - 0.3, Y_IG)])
    wire([(x_g, Y_GATE + 0.45), (x_g, Y_IG), (X_IG + 0.3, Y_IG)])
    wire([(X_IG, Y_IG + 0.3), (X_IG, Y_C), (X_PLUS - 0.3, Y_C)], INK)
    value(X_IG + 0.15, Y_IG + 0.75, L("i⊙c̃", ("cell", "input*candidate")))
    # act(c) and the output gate make h (through W_hr, with a projection)
    wire([(X_TANH, Y_C), (X_TANH, 6.35)], CELL_INK)
    ax.add_patch(FancyBboxPatch((X_TANH - 0.55, 5.65), 1.1, 0.6, boxstyle="round,pad=0.12",
                                facecolor="#7a3b8f", edgecolor=INK, lw=1.2, zorder=3))
    text, size = _box_text(cell.cell_activation.name)
    ax.text(X_TANH, 5.95, text, ha="center", va="center", color="white", zorder=4, fontsize=min(11, size))
    value(X_TANH + 0.75, 5.95, L(act_c, ("hidden", act_c)))
    junction(X_TANH, Y_H, "×")
    wire([(X_TANH, 5.55), (X_TANH, Y_H + 0.3)])
    wire([(x_o, Y_GATE + 0.45), (x_o, Y_H), (X_TANH - 0.3, Y_H)])
    if cell.proj_size is None:
        wire([(X_TANH + 0.3, Y_H), (right, Y_H)], H_INK)
    else:
        _projection(pen, cell, L, act_c, X_TANH + 4.6, right)
    wire([(x_split, Y_H), (x_split, Y_BUS), (right, Y_BUS)], H_INK)
    value(right, Y_H + 0.45, L("h", ("hidden", "h")), ha="right", colour=H_INK)
    ax.text(right, Y_H - 0.45, "$h_t$ (output)", ha="right", fontsize=12, color=H_INK)
    ax.text(right, Y_BUS - 0.45, "$h_t$ (to the next step)", ha="right", fontsize=12, color=H_INK)
    _peepholes(pen, cell, L)

    what = f"unit {unit}" if unit is not None else (
        "every unit" if trace.hidden_size <= 3 else f"units 0-2 of {trace.hidden_size}")
    ax.set_title(f"LSTM cell, step t = {step} · {_sizes(trace)}{_variant_words(trace)} · "
                 f"values of {what}, {precision} significant digits", fontsize=11, loc="left")
    ax.text(0.3, 9.05, "× and + are unit by unit (⊙);  * marks a saturated gate unit (within 0.01 of its "
            "bound), drawn in red" + _legend(cell), fontsize=8.5, color="#555555")
    return fig


def _legend(cell) -> str:
    """What the diagram draws that the default LSTM's has not: peepholes, gates that are not computed."""
    words = []
    if cell.peepholes:
        words.append("dashed: peepholes P⊙c from the cell state")
    fixed = [g for g in cell.gates if g.rule != "computed"]
    if fixed:
        words.append("grey: " + _and(f"{g.symbol} = {_box_symbol(g, cell)}" for g in fixed) + ", not computed")
    return "".join(f";  {w}" for w in words)


# -- heatmaps ------------------------------------------------------------------------------

HEATMAP_GATES = ("forget", "input", "output", "candidate")  # the σ gates along the top row, then c̃


def _times(a, b):
    """The range of x·y for x in [a₀, a₁] and y in [b₀, b₁] (0·∞ is 0: a bound of 0 stays 0)."""
    products = [p * q if p and q else 0.0 for p in a for q in b]
    return min(products), max(products)


def _bounds(cell, key):
    """Where the values of a heatmap's quantity can lie in this cell: (low, high), ±inf when unbounded."""
    gate, quantity = key
    if quantity == "act":  # a gate taken away (1) or coupled (1 − i) stays in its activation's range too
        return cell.gate(gate).activation.low, cell.gate(gate).activation.high
    if key == ("hidden", "h") and cell.proj_size is None:  # h = o⊙act(c)
        return _times(_bounds(cell, ("output", "act")), (cell.cell_activation.low, cell.cell_activation.high))
    return -np.inf, np.inf  # c, and a projected h = W_hr·(o⊙act(c))


def _panels(cell):
    """(title, key, symbol) of each heatmap: the gates (what a gate that is not computed is, said),
    h and c."""
    panels = []
    for spec in map(cell.gate, HEATMAP_GATES):
        what = {"one": " = 1 (taken away)", "complement": f" = {_box_symbol(spec, cell)} (coupled)"}
        panels.append((f"{spec.title.lower()} {spec.symbol}{what.get(spec.rule, '')}", (spec.name, "act"),
                       spec.symbol))
    P = cell.proj_size
    panels.append((f"hidden state h{f' (projected, P = {P})' if P is not None else ''}", ("hidden", "h"), "h"))
    panels.append(("cell state c", ("cell", "c"), "c"))
    return panels


def _scale(low, high, data):
    """(vmin, vmax, colour map): the quantity's own range when it has two bounds; else fitted to the data,
    from its one bound (0 for relu) to the data's far end, or symmetric about 0 (±max |value|)."""
    cmap = "viridis" if low >= 0 else "RdBu_r"  # one-sided: sequential; about 0: diverging, white at 0
    if np.isfinite(low) and np.isfinite(high):
        return low, high, cmap
    if np.isfinite(low):
        return low, max(float(data.max()), low + 1e-12), cmap
    if np.isfinite(high):
        return min(float(data.min()), high - 1e-12), high, cmap
    far = max(float(np.abs(data).max()), 1e-12)
    return -far, far, cmap


def _colour_label(low, high, panels, cell) -> str:
    """What a colour scale shows, honestly: 'σ gates: 0 (closed) … 1 (open)', 'c̃ and h, in (−1, 1)',
    'c (unbounded)', 'h (≥ 0, unbounded)'."""
    symbols = _and(symbol for _, _, symbol in panels)
    gates = [key[0] for _, key, _ in panels if key[1] == "act"]
    if (low, high) == (0.0, 1.0) and len(gates) == len(panels) and set(gates) <= set(shares(cell)):
        names = _and(dict.fromkeys(cell.gate(g).activation.name for g in gates))
        return f"{names} gates: 0 (closed) … 1 (open)"
    if np.isfinite(low) and np.isfinite(high):
        return f"{symbols}, in ({low:g}, {high:g})".replace("-", "−")
    if np.isfinite(low) or np.isfinite(high):
        bound = f"≥ {low:g}" if np.isfinite(low) else f"≤ {high:g}"
        return f"{symbols} ({bound}, unbounded)".replace("-", "−")
    return f"{symbols} (unbounded)"


def _heatmap(ax, block, title, H, vmin, vmax, cmap):
    """One quantity's steps × units as a heatmap; a projected h's missing units (P to H) hatched, since
    white would read as 0."""
    T, units = block.shape
    image = ax.imshow(block.T, aspect="auto", origin="lower", cmap=cmap, vmin=vmin, vmax=vmax,
                      interpolation="nearest", extent=(0.5, T + 0.5, -0.5, units - 0.5))
    ax.set_title(title, fontsize=11)
    if units < H:
        ax.axhspan(units - 0.5, H - 0.5, facecolor="#e8e8e8", edgecolor="#b0b0b0", hatch="//", lw=0)
        ax.text((T + 1) / 2, (units + H - 1) / 2, f"h has P = {units} units", ha="center", va="center",
                fontsize=9, color="#555555")
    return image


def _colorbar(fig, image, axes, label):
    """A colour scale beside the panels it serves: right of the top row's, below the bottom row's."""
    if any(ax.get_subplotspec().rowspan.start == 0 for ax in axes):
        fig.colorbar(image, ax=axes, location="right", shrink=0.95, label=label)
    elif len(axes) > 1:
        fig.colorbar(image, ax=axes, location="bottom", shrink=0.6, aspect=40, label=label)
    else:
        fig.colorbar(image, ax=axes[0], location="bottom", aspect=20, label=label)


def plot_heatmaps(trace):
    """Heatmaps over (unit × step) of each gate's activation, c and h; returns the Figure.

    A quantity with two bounds (σ, tanh, …) is coloured over its whole range; an unbounded
    one (c, or what relu or linear make) over the range of its values in this trace, each
    on its own colour scale.

    >>> import lstmtrace, numpy as np
    >>> fig = plot_heatmaps(lstmtrace.run(lstmtrace.Parameters.random(2, 3), np.ones((4, 2))))
    >>> [a.get_title() for a in fig.axes[:3]]
    ['forget gate f', 'input gate i', 'output gate o']
    """
    plt = _pyplot()
    cell = trace.cell
    panels = _panels(cell)
    T, H = trace.steps, trace.hidden_size
    fig, axes = plt.subplots(2, 3, figsize=(13, 7.2), sharex=True, sharey=True, constrained_layout=True)
    # one colour scale for each range the quantities share (the σ gates 0…1; c̃ and h −1…1), and one of
    # its own for each unbounded quantity (c)
    groups = {}
    for ax, panel in zip(axes.flat, panels):
        low, high = _bounds(cell, panel[1])
        scale = (low, high) if np.isfinite(low) and np.isfinite(high) else panel[1]
        groups.setdefault(scale, []).append((ax, panel, (low, high)))
    colour_scales = []
    for members in groups.values():
        low, high = members[0][2]
        blocks = [trace.block(*key) for _, (_, key, _), _ in members]
        vmin, vmax, cmap = _scale(low, high, np.concatenate([b.ravel() for b in blocks]))
        for (ax, (title, _, _), _), block in zip(members, blocks):
            image = _heatmap(ax, block, title, H, vmin, vmax, cmap)
        colour_scales.append((image, [ax for ax, _, _ in members],
                              _colour_label(low, high, [panel for _, panel, _ in members], cell)))
    for ax in axes[1]:
        ax.set_xlabel("step t")
        ax.xaxis.set_tick_params(labelbottom=True)
    for ax in axes[:, 0]:
        ax.set_ylabel("unit")
    axes[0, 0].set_ylim(-0.5, H - 0.5)  # the axes share it: H units (a projected h fills the lowest P)
    for image, scale_axes, label in colour_scales:
        _colorbar(fig, image, scale_axes, label)
    fig.suptitle(f"{T} steps · {_sizes(trace)}{_variant_words(trace)}", fontsize=12)
    return fig


def save_figure(fig, path, fmt: Optional[str] = None) -> None:
    """Write a figure as SVG (text kept as text, no date, stable ids) or PNG, whole or not at all."""
    from lstmtrace.atomic import atomic_open

    plt = _pyplot()
    fmt = fmt or ("png" if str(path).lower().endswith(".png") else "svg")
    with plt.rc_context({"svg.fonttype": "none", "svg.hashsalt": "lstmtrace"}), atomic_open(path, "wb") as f:
        metadata = {"Date": None, "Creator": None} if fmt == "svg" else {"Software": None}
        fig.savefig(f, format=fmt, metadata=metadata, dpi=110)
    plt.close(fig)
