"""Pictures of a trace: the LSTM cell diagram with its numbers on the wires, and gate heatmaps.

The diagram follows the usual textbook drawing (colah's "Understanding LSTM
Networks"): the cell state runs along the top from c_{t-1} to c_t, the forget,
input and output gates are σ boxes and the candidate a tanh box, fed from
below by h_{t-1} and x_t, with ⊙ and + junctions where the vectors meet.
Every number drawn is the trace's own, rounded for display.

matplotlib is an optional extra (``pip install 'lstmtrace[plot]'``); nothing
else in lstmtrace imports it.
"""
from typing import Optional

import numpy as np

from lstmtrace.cell import GATES, SIGMOID, TANH, cell_activation_name
from lstmtrace.errors import OptionError
from lstmtrace.text import formula, saturated, shares

__all__ = ["draw_cell", "plot_heatmaps", "save_figure"]

PLOT_HINT = "pip install 'lstmtrace[plot]'"


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


def draw_cell(trace, step: int = 1, unit: Optional[int] = None, precision: int = 3):
    """The cell diagram of one step, each wire labelled with its values; returns the Figure.

    ``unit`` draws one unit's scalars instead of each vector's first units.

    >>> import lstmtrace
    >>> fig = draw_cell(lstmtrace.step(lstmtrace.Parameters.identity(2, 2), [1.0, -1.0]))
    >>> any("f = [0.731, 0.269]" in t.get_text() for t in fig.axes[0].texts)
    True
    """
    plt = _pyplot()
    from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch

    if not 1 <= step <= trace.steps:
        raise OptionError(f"step {step} is not in 1..{trace.steps}", "step")
    if unit is not None and not 0 <= unit < trace.hidden_size:
        raise OptionError(f"unit {unit} is not in 0..{trace.hidden_size - 1} (hidden size H = {trace.hidden_size})",
                          "unit")
    x_unit = unit if unit is not None and unit < trace.input_size else None  # x has only E units
    v = trace.values(step)
    L = lambda name, key, u=unit, marks=None: _label(name, v[key], precision, u, marks)
    cell = trace.cell
    marked = {g: saturated(g, v[g, "act"], cell) for g in GATES}
    act_c = cell_activation_name(cell.cell_activation)  # tanh(c), or the variant's

    fig, ax = plt.subplots(figsize=(17, 7.5))
    ax.set_xlim(0, 23)
    ax.set_ylim(-0.6, 9.4)
    ax.axis("off")
    ink, cell_ink, gate_ink = "#333333", "#1f5fa8", "#b85c00"

    def wire(points, colour=ink, arrow=True):
        for (x0, y0), (x1, y1) in zip(points[:-1], points[1:]):
            last = (x1, y1) == points[-1]
            ax.add_patch(FancyArrowPatch((x0, y0), (x1, y1), arrowstyle="-|>" if arrow and last else "-",
                                         mutation_scale=12, color=colour, lw=1.6, shrinkA=0, shrinkB=0))

    def junction(x, y, symbol):
        ax.add_patch(Circle((x, y), 0.3, facecolor="white", edgecolor=ink, lw=1.4, zorder=3))
        ax.text(x, y, symbol, ha="center", va="center", fontsize=13, zorder=4)

    def box(x, y, symbol, colour, w=1.1, h=0.75):
        ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.05",
                                    facecolor=colour, edgecolor=ink, lw=1.2, zorder=3))
        ax.text(x, y, symbol, ha="center", va="center", fontsize=13 if len(symbol) <= 4 else 7, color="white",
                zorder=4)

    def value(x, y, text, ha="left", colour=ink):
        ax.text(x, y, text, ha=ha, va="center", fontsize=8.5, color=colour, family="monospace", zorder=5,
                bbox=dict(boxstyle="round,pad=0.15", facecolor="white", edgecolor="none", alpha=0.85))

    ax.add_patch(FancyBboxPatch((1.4, 0.9), 19.2, 7.6, boxstyle="round,pad=0.1", facecolor="#f4f4f0",
                                edgecolor="#999999", lw=1, zorder=0))
    # the cell state along the top
    y_c, y_bus, y_gate = 7.6, 1.8, 3.4
    x_f, x_i, x_g, x_o = 3.6, 7.8, 12.0, 16.2  # far enough apart for each gate's value label
    x_plus, x_tanh, x_ig, right = 13.0, 18.6, 9.9, 22.7
    wire([(0.3, y_c), (x_f - 0.3, y_c)], cell_ink, arrow=False)
    junction(x_f, y_c, "×")
    wire([(x_f + 0.3, y_c), (x_plus - 0.3, y_c)], cell_ink, arrow=False)
    junction(x_plus, y_c, "+")
    wire([(x_plus + 0.3, y_c), (right, y_c)], cell_ink)
    value(0.3, y_c + 0.45, L("c_prev", ("given", "c_prev")))
    value(x_f + 0.45, y_c + 0.45, L("f⊙c_prev", ("cell", "forget*c_prev")))
    value(right, y_c + 0.45, L("c", ("cell", "c")), ha="right", colour=cell_ink)
    ax.text(right, y_c - 0.45, "$c_t$", ha="right", fontsize=13, color=cell_ink)
    ax.text(0.3, y_c - 0.45, "$c_{t-1}$", ha="left", fontsize=13, color=cell_ink)

    # h_{t-1} and x_t join below, then feed every gate
    wire([(0.3, y_bus), (x_o, y_bus)], ink, arrow=False)
    wire([(2.6, -0.3), (2.6, y_bus)], ink, arrow=False)
    value(0.3, y_bus - 0.45, L("h_prev", ("given", "h_prev")))
    value(2.75, 0.1, _label("x", v["given", "x"], precision, x_unit))
    ax.text(0.3, y_bus + 0.35, "$h_{t-1}$", fontsize=13)
    ax.text(2.4, -0.45, "$x_t$", fontsize=13, ha="right")
    for spec, x in zip(cell.gates, (x_f, x_i, x_g, x_o)):
        gate, symbol, name = spec.name, spec.activation.name, spec.symbol
        wire([(x, y_bus), (x, y_gate - 0.45)])
        box(x, y_gate, symbol, gate_ink)
        ax.text(x, y_gate - 0.75, formula(spec, cell).replace("h_prev", "h"), ha="center",
                fontsize=7.5 if cell.clip is None else 6, color="#555555")
        value(x + 0.12, y_gate + 0.95, L(name, (gate, "act"), marks=marked[gate]),
              colour="#c00000" if (marked[gate][unit] if unit is not None else marked[gate].any()) else ink)
    # the forget gate up to its ×; input and candidate meet at a ×, then the +
    wire([(x_f, y_gate + 0.45), (x_f, y_c - 0.3)])
    y_ig = 5.6
    junction(x_ig, y_ig, "×")
    wire([(x_i, y_gate + 0.45), (x_i, y_ig), (x_ig - 0.3, y_ig)])
    wire([(x_g, y_gate + 0.45), (x_g, y_ig), (x_ig + 0.3, y_ig)])
    wire([(x_ig, y_ig + 0.3), (x_ig, y_c), (x_plus - 0.3, y_c)], ink)
    value(x_ig + 0.15, y_ig + 0.75, L("i⊙c̃", ("cell", "input*candidate")))
    # tanh(c) and the output gate make h
    y_h = 4.9
    wire([(x_tanh, y_c), (x_tanh, 6.35)], cell_ink)
    ax.add_patch(FancyBboxPatch((x_tanh - 0.55, 5.65), 1.1, 0.6, boxstyle="round,pad=0.12",
                                facecolor="#7a3b8f", edgecolor=ink, lw=1.2, zorder=3))
    ax.text(x_tanh, 5.95, cell.cell_activation.name, ha="center", va="center", color="white", zorder=4,
            fontsize=11 if len(cell.cell_activation.name) <= 4 else 7)
    value(x_tanh + 0.75, 5.95, L(act_c, ("hidden", act_c)))
    junction(x_tanh, y_h, "×")
    wire([(x_tanh, 5.55), (x_tanh, y_h + 0.3)])
    wire([(x_o, y_gate + 0.45), (x_o, y_h), (x_tanh - 0.3, y_h)])
    wire([(x_tanh + 0.3, y_h), (right, y_h)], "#2e7d32")
    wire([(21.2, y_h), (21.2, y_bus), (right, y_bus)], "#2e7d32")
    value(right, y_h + 0.45, L("h", ("hidden", "h")), ha="right", colour="#2e7d32")
    ax.text(right, y_h - 0.45, "$h_t$ (output)", ha="right", fontsize=12, color="#2e7d32")
    ax.text(right, y_bus - 0.45, "$h_t$ (to the next step)", ha="right", fontsize=12, color="#2e7d32")

    what = f"unit {unit}" if unit is not None else (
        "every unit" if trace.hidden_size <= 3 else f"units 0-2 of {trace.hidden_size}")
    ax.set_title(f"LSTM cell, step t = {step} · E = {trace.input_size}, H = {trace.hidden_size} · "
                 f"values of {what}, {precision} significant digits", fontsize=11, loc="left")
    ax.text(0.3, 9.05, "× and + are unit by unit (⊙);  * marks a saturated gate unit (within 0.01 of its "
            "bound), drawn in red", fontsize=8.5, color="#555555")
    return fig


def plot_heatmaps(trace):
    """Heatmaps over (unit × step) of each gate's activation, c and h; returns the Figure.

    >>> import lstmtrace, numpy as np
    >>> fig = plot_heatmaps(lstmtrace.run(lstmtrace.Parameters.random(2, 3), np.ones((4, 2))))
    >>> [a.get_title() for a in fig.axes[:3]]
    ['forget gate f', 'input gate i', 'output gate o']
    """
    plt = _pyplot()
    panels = [("forget gate f", ("forget", "act")), ("input gate i", ("input", "act")),
              ("output gate o", ("output", "act")), ("candidate c̃", ("candidate", "act")),
              ("hidden state h", ("hidden", "h")), ("cell state c", ("cell", "c"))]
    c_max = max(float(np.abs(trace.block("cell", "c")).max()), 1e-12)
    scales = {"gates": (SIGMOID.low, SIGMOID.high, "viridis"), "tanh": (TANH.low, TANH.high, "RdBu_r"),
              "c": (-c_max, c_max, "RdBu_r")}
    cell = trace.cell
    σ_gates = set(shares(cell))  # shares in [0, 1]; c̃ and h = o⊙tanh(c) are in (−1, 1)
    unbounded = [g.name for g in cell.gates if g.name not in σ_gates and (g.activation.low, g.activation.high)
                 != (-1.0, 1.0)] + (["cell"] if cell.cell_activation.high > 1 else [])
    if unbounded:  # the colour scales assume the default ranges: refuse rather than clip colours silently
        raise OptionError(f"the heatmaps' colour scales do not fit this variant's {unbounded[0]} activation "
                          "yet; draw_cell, CSV or Parquet show its values", "variant")
    kind = lambda key: "gates" if key[1] == "act" and key[0] in σ_gates else ("c" if key == ("cell", "c") else "tanh")
    T, H = trace.steps, trace.hidden_size
    fig, axes = plt.subplots(2, 3, figsize=(13, 7.2), sharex=True, sharey=True, constrained_layout=True)
    images = {}
    for ax, (title, key) in zip(axes.flat, panels):
        vmin, vmax, cmap = scales[kind(key)]
        images[kind(key)] = ax.imshow(trace.block(*key).T, aspect="auto", origin="lower", cmap=cmap,
                                      vmin=vmin, vmax=vmax, interpolation="nearest",
                                      extent=(0.5, T + 0.5, -0.5, H - 0.5))
        ax.set_title(title, fontsize=11)
    for ax in axes[1]:
        ax.set_xlabel("step t")
        ax.xaxis.set_tick_params(labelbottom=True)
    for ax in axes[:, 0]:
        ax.set_ylabel("unit")
    # one colour scale per kind of value: the σ gates share 0…1, c̃ and h share −1…1, c has its own
    fig.colorbar(images["gates"], ax=axes[0, :].tolist(), location="right", shrink=0.95,
                 label="σ gates: 0 (closed) … 1 (open)")
    fig.colorbar(images["tanh"], ax=axes[1, :2].tolist(), location="bottom", shrink=0.6, aspect=40,
                 label="c̃ and h, in (−1, 1)")
    fig.colorbar(images["c"], ax=axes[1, 2], location="bottom", aspect=20, label="c (unbounded)")
    fig.suptitle(f"{T} steps · E = {trace.input_size}, H = {H}", fontsize=12)
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
