"""The step as a live spreadsheet: every traced quantity a formula over input cells, recomputed when
one of them changes.

:func:`to_xlsx` writes the workbook (``lstmtrace step -o step.xlsx``, ``--format xlsx``,
:meth:`lstmtrace.Trace.to_xlsx`); it needs XlsxWriter, an optional extra
(``pip install 'lstmtrace[xlsx]'``).  Its sheet ``LSTM`` lays the step out gate by gate, as the
annotated text does:

- **inputs** (yellow): x, h_prev, c_prev and each gate's W, U and b (and P with peepholes, the
  projection's W_hr), each block under a workbook-level defined name: ``x``, ``h_prev``,
  ``c_prev``, ``W_forget``, ``U_forget``, ``b_forget``, … (:func:`weight_name`);
- **every traced quantity** (grey), a formula over them, each block under the name
  :func:`name` gives it: ``forget_Wx`` is ``SUMPRODUCT`` of a row of ``W_forget`` with x,
  ``forget_preact`` the sum of ``forget_Wx``, ``forget_Uh`` and ``forget_bias``, ``forget_act``
  its σ, then ``cell_forget_c_prev``, ``cell_input_candidate``, ``cell_c``, ``hidden_tanh_c``,
  ``hidden_h``.  Each formula cell also stores the value lstmtrace computed, so a viewer that
  does not recalculate shows the right numbers.

A block holds one row per step (a weight matrix: one row per unit, W's row u is unit u's) and
one column per unit, so step t of ``hidden_h`` is row t of that block.  In a run, x has a row
per step, h_prev and c_prev are the state before the first step, and each later step's h_prev
is the row of ``hidden_h`` before it (after it, for a cell that runs in reverse).

The formulas do the float operations :mod:`lstmtrace.cell` does, in its order (σ as its stable
two-branch form, which never overflows), so a spreadsheet that recalculates gets lstmtrace's
numbers to the last digit or two: its dot products may add their terms in another order.  Only
numbers and lstmtrace's own names go into a formula, never text a user gave.  The sheet
``Trace`` holds the long-form trace, and ``How to read this`` says which cells to change.

>>> import pathlib, tempfile, lstmtrace
>>> path = pathlib.Path(tempfile.mkdtemp()) / "step.xlsx"
>>> lstmtrace.step(lstmtrace.Parameters.identity(2, 2), [1.0, -1.0]).to_xlsx(path)
>>> name("forget", "act"), weight_name("forget", "W")     # two of its defined names
('forget_act', 'W_forget')
"""
import datetime
import io
import os
from typing import Dict, List, NamedTuple, Optional, Tuple, Union

import numpy as np

from lstmtrace.cell import attribute, layout
from lstmtrace.errors import OptionError, one_cell

__all__ = ["MAX_FORMULAS", "MAX_GATE_WEIGHTS", "MAX_STEPS", "XLSX_HINT", "activation_formula", "name",
           "to_xlsx", "weight_name"]

MAX_GATE_WEIGHTS = 20_000
"""The most numbers one gate's W and U may hold together, H·(E + P), for a workbook."""

MAX_STEPS = 1_000
"""The most steps a workbook lays out."""

MAX_FORMULAS = 100_000
"""The most formula cells a workbook holds (every traced quantity of every step but the inputs)."""

XLSX_HINT = "pip install 'lstmtrace[xlsx]'"

SHEET = "LSTM"  # the sheet of inputs and formulas (plain letters: no quotes needed in a reference)
FIRST = 3  # the column of unit 0 (A: name, B: what it is, C: step or row)

_ACTIVATIONS = {  # each activation of lstmtrace.cell, as a formula of z with the same float operations
    "sigmoid": "IF({z}>=0,1/(1+EXP(-{z})),EXP({z})/(1+EXP({z})))",  # e^-|z| on either side: no overflow
    "tanh": "TANH({z})",
    "relu": "MAX({z},0)",
    "linear": "{z}+0",
    "softsign": "{z}/(1+ABS({z}))",
    "hard_sigmoid": "MIN(MAX({z}+3,0),6)/6",  # Keras 3's relu6(z + 3) / 6
}


def _number(v: float) -> str:
    """A float as a formula writes it: every digit (repr reads back as the same float), negative in ()."""
    text = repr(float(v))
    return f"({text})" if text.startswith("-") else text


def activation_formula(key: str, z: str) -> str:
    """Activation ``key`` (a :class:`lstmtrace.cell.Activation`'s key) as a spreadsheet formula of the
    cell ``z``; a ValueError for one lstmtrace has no formula for.

    >>> activation_formula("sigmoid", "D12")
    'IF(D12>=0,1/(1+EXP(-D12)),EXP(D12)/(1+EXP(D12)))'
    >>> activation_formula("hard_sigmoid:0.2,-0.5", "D12")
    'MIN(MAX(0.2*D12+(-0.5),0),1)'
    """
    base, _, numbers = key.partition(":")
    if base == "hard_sigmoid" and numbers:  # clip(α·z + β, 0, 1)
        alpha, beta = (float(v) for v in numbers.split(","))
        return f"MIN(MAX({_number(alpha)}*{z}+{_number(beta)},0),1)"
    if base not in _ACTIVATIONS:
        raise ValueError(f"no spreadsheet formula for the activation {key!r}")
    return _ACTIVATIONS[base].format(z=z)


def name(gate: str, quantity: str) -> str:
    """The defined name of one traced quantity's block: ``forget_Wx``, ``cell_c``,
    ``cell_forget_c_prev`` (for cell.forget*c_prev), ``hidden_tanh_c``; ``x``, ``h_prev`` and
    ``c_prev`` for the inputs.

    >>> name("forget", "preact"), name("cell", "input*candidate"), name("given", "x")
    ('forget_preact', 'cell_input_candidate', 'x')
    """
    return quantity if gate == "given" else f"{gate}_{attribute(quantity)}"


def weight_name(gate: str, weight: str) -> str:
    """The defined name of a weight's block: ``W_forget``, ``U_output``, ``b_input``, ``P_forget``;
    the projection's is ``W_hr``.

    >>> weight_name("candidate", "W"), weight_name("hidden", "W_hr")
    ('W_candidate', 'W_hr')
    """
    return weight if gate == "hidden" else f"{weight}_{gate}"


# -- refusals ------------------------------------------------------------------------------

def _check(trace) -> None:
    """One line for each trace a workbook of formulas cannot be made of, naming the option to change."""
    one_cell(trace, "the workbook")
    if trace.has_gradients:
        raise OptionError("the workbook is the forward step's formulas; the backward pass is not written as "
                          "formulas: leave out --backward (or save it as CSV)", "backward")
    if trace.params is None:
        raise OptionError("this trace was read from a file and holds no weights, and the workbook's formulas "
                          "need them: make it with lstmtrace step or run", "format")
    E, H, T, cell = trace.input_size, trace.hidden_size, trace.steps, trace.cell
    P = H if cell.proj_size is None else cell.proj_size
    instead = "save it as CSV (-o trace.csv, --csv-layout wide) or Parquet (-o trace.parquet)"
    if H * (E + P) > MAX_GATE_WEIGHTS:
        raise OptionError(f"a gate's W and U hold {H * (E + P):,} numbers (H·(E + P) with E = {E}, H = {H}, "
                          f"P = {P}), more than the {MAX_GATE_WEIGHTS:,} a workbook of formulas lays out: "
                          f"{instead}", "format")
    if T > MAX_STEPS:
        raise OptionError(f"the run has {T:,} steps, more than the {MAX_STEPS:,} a workbook of formulas lays "
                          f"out: trace fewer steps, or {instead}", "format")
    formulas = T * (layout(E, H, cell=cell).width - E - P - H)  # all but x, h_prev and c_prev
    if formulas > MAX_FORMULAS:
        raise OptionError(f"the workbook would hold {formulas:,} formulas, more than {MAX_FORMULAS:,}: trace "
                          f"fewer steps, or {instead}", "format")
    for key in [g.activation.key for g in cell.gates if g.rule == "computed"] + [cell.cell_activation.key]:
        try:
            activation_formula(key, "A1")
        except ValueError as e:  # an activation without a formula here: refused, never approximated
            raise OptionError(f"{e}: {instead}", "format") from None


# -- the layout ------------------------------------------------------------------------------

class Block(NamedTuple):
    """Where one named block sits on the sheet: its first row and how many rows and columns."""

    row: int
    rows: int
    cols: int

    def cell(self, r: int, c: int) -> str:
        """The A1 reference of row ``r``, column ``c`` of the block (a formula's plain reference)."""
        from xlsxwriter.utility import xl_rowcol_to_cell

        return xl_rowcol_to_cell(self.row + r, FIRST + c)

    def line(self, r: int) -> str:
        """Row ``r`` of the block, as a range: a row of W, or step r's x."""
        from xlsxwriter.utility import xl_range

        return xl_range(self.row + r, FIRST, self.row + r, FIRST + self.cols - 1)

    def absolute(self) -> str:
        """The whole block as a defined name refers to it: ``=LSTM!$D$5:$E$6``."""
        from xlsxwriter.utility import xl_range_abs

        return f"={SHEET}!{xl_range_abs(self.row, FIRST, self.row + self.rows - 1, FIRST + self.cols - 1)}"


def _what(gate: str, quantity: str, cell) -> str:
    """Column B: what one element of a block is, in the equations' letters."""
    if gate == "given":
        return {"x": "the input x", "h_prev": "h before the first step", "c_prev": "c before the first step"
                }[quantity]
    if gate == "cell":
        f, i, g = (cell.gate(n).symbol for n in ("forget", "input", "candidate"))
        return {"forget*c_prev": f"{f}*c_prev: what is kept", "input*candidate": f"{i}*{g}: what is written",
                "c": f"c = {f}*c_prev + {i}*{g}"}[quantity]
    if gate == "hidden":
        o = cell.gate("output").symbol
        act = f"{cell.cell_activation.name}(c)"
        if quantity == "h":
            return f"h = {o}*{act}" if cell.proj_size is None else "h = W_hr·m"
        return f"m = {o}*{act}" if quantity.startswith("output*") else act
    spec = cell.gate(gate)
    k = spec.index
    if spec.rule == "one":
        return f"{spec.symbol} = 1: the gate is taken away"
    if spec.rule == "complement":
        return f"{spec.symbol} = 1 - {cell.gate(spec.complements).symbol}: coupled"
    seen = {"c_prev": "c_prev", "c": "c"}.get(spec.peeps, "")
    terms = f"W_{k}·x + U_{k}·h_prev + b_{k}" + (f" + P_{k}*{seen}" if seen else "")
    source = "clipped" if cell.clip is not None else "preact"
    return {"Wx": f"W_{k}·x", "Uh": f"U_{k}·h_prev", "bias": f"b_{k}", "Pc": f"P_{k}*{seen}", "preact": terms,
            "clipped": f"clip(preact, ±{cell.clip!r})" if cell.clip is not None else "",
            "act": f"{spec.symbol} = {spec.activation.name}({source})"}[quantity]


def _weights(trace) -> List[Tuple[str, str, str, np.ndarray]]:
    """(stage, name, what it is, values as a matrix) of every weight, in the order the sheet shows them."""
    params, found = trace.params, []
    for spec in trace.cell.gates:
        k = spec.index
        for weight, _ in spec.weights:
            what = {"W": f"W_{k}: times x (row u: unit u's)", "U": f"U_{k}: times h_prev (row u: unit u's)",
                    "b": f"b_{k}: added, one per unit", "P": f"P_{k}: the peephole, times {spec.peeps} unit by unit"
                    }[weight]
            values = getattr(params[spec.name], weight)
            found.append((spec.name, weight_name(spec.name, weight), what, np.atleast_2d(values)))
    for stage, weight, _ in trace.cell.stage_weights:  # the projection's W_hr
        found.append((stage, weight_name(stage, weight), f"{weight}: the projection, times m (row u: unit u's)",
                      np.atleast_2d(getattr(params, weight))))
    return found


class _Sheet:
    """Places the blocks of the sheet ``LSTM`` row by row and writes its formulas."""

    def __init__(self, workbook, trace, styles):
        self.workbook, self.trace, self.styles = workbook, trace, styles
        self.sheet = workbook.add_worksheet(SHEET, worksheet_class=_exact_worksheet())
        self.blocks: Dict[str, Block] = {}
        self.notes: Dict[str, str] = {}  # name: what it is, for the sheet that explains them
        self.row = 0
        self.pending: list = []  # (block, cached values, formula(r, c)) of the formula blocks placed
        T = trace.steps
        order = range(T - 1, -1, -1) if trace.direction == "reverse" else range(T)
        self.first = order[0]  # the step (its row of a block) that starts from h_prev and c_prev
        self.before = {k: j for j, k in zip(order, order[1:])}  # each later step: the step before it

    # where things are
    def at(self, key: str, r: int, c: int) -> str:
        return self.blocks[key].cell(r, c)

    def line(self, key: str, r: int) -> str:
        return self.blocks[key].line(r)

    def state(self, what: str, r: int) -> Tuple[str, Optional[int]]:
        """(block, its row) of step r's h_prev (``"h"``) or c_prev (``"c"``)."""
        if r == self.first:
            return ("h_prev" if what == "h" else "c_prev"), 0
        return ("hidden_h" if what == "h" else "cell_c"), self.before[r]

    # writing
    def heading(self, text: str, equation: str = "") -> None:
        self.row += 1
        self.sheet.write_string(self.row, 0, text, self.styles["heading"])
        if equation:
            self.sheet.write_string(self.row, 1, equation, self.styles["equation"])
        self.row += 1

    def block(self, key: str, what: str, labels: List[str], values: np.ndarray, formula=None) -> None:
        """A block of inputs (``formula`` None) or of formulas ``formula(r, c)``, with cached ``values``."""
        rows, cols = values.shape
        block = self.blocks[key] = Block(self.row, rows, cols)
        self.workbook.define_name(key, block.absolute())
        self.notes[key] = what
        self.sheet.write_string(self.row, 0, key, self.styles["name"])
        self.sheet.write_string(self.row, 1, what, self.styles["what"])
        for r in range(rows):
            self.sheet.write_string(self.row + r, 2, labels[r], self.styles["label"])
        if formula is None:
            for r in range(rows):
                for c in range(cols):
                    self.sheet.write_number(self.row + r, FIRST + c, float(values[r, c]), self.styles["input"])
        else:  # written once every block has its place: a step's h_prev is a later block's row
            self.pending.append((block, values, formula))
        self.row += rows

    def fill(self) -> None:
        """Write the formulas of every block placed, each cell with lstmtrace's value cached in it."""
        style = self.styles["formula"]
        for block, values, formula in self.pending:
            for r in range(block.rows):
                for c in range(block.cols):
                    self.sheet.write_formula(block.row + r, FIRST + c, "=" + formula(r, c), style,
                                             float(values[r, c]))
        self.pending = []

    def steps(self) -> List[str]:
        return [f"step {t}" for t in range(1, self.trace.steps + 1)]

    # the formulas of each traced quantity
    def formula(self, gate: str, quantity: str):
        cell = self.trace.cell
        at = self.at
        if gate == "cell":
            kept, written = name("cell", "forget*c_prev"), name("cell", "input*candidate")
            return {
                "forget*c_prev": lambda r, c: f"{at('forget_act', r, c)}*{at(*self.state('c', r), c)}",
                "input*candidate": lambda r, c: f"{at('input_act', r, c)}*{at('candidate_act', r, c)}",
                "c": lambda r, c: f"{at(kept, r, c)}+{at(written, r, c)}",
            }[quantity]
        if gate == "hidden":
            act_c, *rest = cell.after[-1][1]  # tanh(c) (or the variant's), [o*tanh(c) with a projection], h
            if quantity == act_c:
                return lambda r, c: activation_formula(cell.cell_activation.key, at("cell_c", r, c))
            if quantity == "h" and cell.proj_size is not None:  # h = W_hr·m: row u of W_hr with step r's m
                m = name("hidden", rest[0])
                return lambda r, c: f"SUMPRODUCT({self.blocks['W_hr'].line(c)},{self.blocks[m].line(r)})"
            return lambda r, c: f"{at('output_act', r, c)}*{at(name('hidden', act_c), r, c)}"
        spec = cell.gate(gate)

        def own(q: str) -> str:
            return name(gate, q)

        def row_of(weight: str, c: int) -> str:  # unit c's row of one of the gate's weight matrices
            return self.blocks[weight_name(gate, weight)].line(c)

        if quantity == "Wx":  # unit c: its row of W, dotted with step r's x
            return lambda r, c: f"SUMPRODUCT({row_of('W', c)},{self.blocks['x'].line(r)})"
        if quantity == "Uh":  # with step r's h_prev: the input h_prev, or the step before's hidden_h
            return lambda r, c: f"SUMPRODUCT({row_of('U', c)},{self.line(*self.state('h', r))})"
        if quantity == "bias":
            return lambda r, c: at(weight_name(gate, "b"), 0, c)
        if quantity == "Pc":
            if spec.peeps == "c":
                return lambda r, c: f"{at(weight_name(gate, 'P'), 0, c)}*{at('cell_c', r, c)}"
            return lambda r, c: f"{at(weight_name(gate, 'P'), 0, c)}*{at(*self.state('c', r), c)}"
        if quantity == "preact":
            terms = [q for q in ("Wx", "Uh", "bias", "Pc") if q in spec.quantities]  # step_into's order
            return lambda r, c: "+".join(at(own(q), r, c) for q in terms)
        if quantity == "clipped":
            low, high = _number(-cell.clip), _number(cell.clip)
            return lambda r, c: f"MIN(MAX({at(own('preact'), r, c)},{low}),{high})"
        if spec.rule == "one":
            return lambda r, c: "1"
        if spec.rule == "complement":
            other = name(spec.complements, "act")
            return lambda r, c: f"1-{at(other, r, c)}"
        source = own("clipped" if cell.clip is not None else "preact")
        return lambda r, c: activation_formula(spec.activation.key, at(source, r, c))

    def write(self, heading: str, title: Optional[str]) -> None:
        trace, cell, styles = self.trace, self.trace.cell, self.styles
        sheet = self.sheet
        lines = [(heading, "title"), *([(title, "equation")] if title else []),
                 ("Yellow cells are inputs: change one, and every grey cell (a formula) recomputes. The sheet "
                  "'How to read this' says more.", "what")]
        for row, (text, style) in enumerate(lines):
            sheet.write_string(row, 0, text, styles[style])
        self.row = header = len(lines)
        weights = _weights(trace)
        width = max([trace.input_size, trace.hidden_size, *(v.shape[1] for *_, v in weights)])
        sheet.write_string(self.row, 0, "name", styles["header"])
        sheet.write_string(self.row, 1, "what it is", styles["header"])
        sheet.write_string(self.row, 2, "row", styles["header"])
        for c in range(width):
            sheet.write_number(self.row, FIRST + c, c, styles["header"])
        self.row += 1
        T = trace.steps
        for stage, quantities in cell.pipeline:
            if stage == "given":
                self.heading("Inputs", "change these, and the weights below")
                self.block("x", _what("given", "x", cell), self.steps(), trace.block("given", "x"))
                for q in ("h_prev", "c_prev"):
                    before = f"before step {T if trace.direction == 'reverse' else 1}"
                    self.block(q, _what("given", q, cell), [before],
                               trace.block("given", q)[self.first:self.first + 1])
                continue
            if stage == "cell":
                self.heading("Cell state", _what("cell", "c", cell))
            elif stage == "hidden":
                self.heading("Hidden state", _what("hidden", "h", cell))
            else:
                from lstmtrace.text import formula

                spec = cell.gate(stage)
                self.heading(spec.title, formula(spec, cell))
            for owner, key, what, values in weights:
                if owner == stage:
                    labels = ["each unit"] if key[0] in "bP" else [f"unit {u}" for u in range(len(values))]
                    self.block(key, what, labels, values)
            for q in quantities:
                self.block(name(stage, q), _what(stage, q, cell), self.steps(), trace.block(stage, q),
                           self.formula(stage, q))
        self.fill()
        sheet.set_column(0, 0, 24)
        sheet.set_column(1, 1, 34)
        sheet.set_column(2, 2, 16)
        sheet.set_column(FIRST, FIRST + width - 1, 20)
        sheet.freeze_panes(header + 1, FIRST)
        sheet.set_landscape()
        sheet.fit_to_pages(1, 0)  # printed (and made a PDF of): every column on one page's width
        sheet.repeat_rows(header)
        sheet.activate()


def _exact_worksheet():
    """XlsxWriter's Worksheet, writing each number as repr writes it (the shortest digits that read back as
    the same float64) instead of its 16 significant digits, which can change a weight's last bit; and
    taking lstmtrace's formulas as they are."""
    from xlsxwriter.worksheet import Worksheet

    class ExactWorksheet(Worksheet):
        def _xml_number_element(self, number, attributes=()):  # XlsxWriter's, but for the digits
            attr = "".join(f' {key}="{self._escape_attributes(value)}"' for key, value in attributes)
            self.fh.write(f"<c{attr}><v>{float(number)!r}</v></c>")

        def _prepare_formula(self, formula, expand_future_functions=False):
            # XlsxWriter rewrites Excel 365's newer functions (some 30 regular expressions a formula);
            # lstmtrace writes none (SUMPRODUCT, IF, EXP, TANH, MIN, MAX, ABS), so only the = goes.
            return formula[1:] if formula.startswith("=") else formula

    return ExactWorksheet


def _styles(workbook) -> Dict[str, object]:
    add = workbook.add_format
    return {
        "title": add({"bold": True, "font_size": 14}),
        "heading": add({"bold": True, "font_size": 12, "font_color": "#1F3864"}),
        "equation": add({"italic": True}),
        "header": add({"bold": True, "bottom": 1}),
        "name": add({"bold": True, "font_name": "Courier New"}),
        "what": add({"font_color": "#404040"}),
        "label": add({"font_color": "#808080"}),
        # Excel's own Input and Calculation cell styles, in their colours
        "input": add({"bg_color": "#FFEB9C", "font_color": "#3F3F76", "border": 1, "border_color": "#7F7F7F",
                      "num_format": "General"}),
        "formula": add({"bg_color": "#F2F2F2", "border": 1, "border_color": "#BFBFBF", "num_format": "General"}),
        "text": add({"text_wrap": True, "valign": "top"}),
    }


def _guide(workbook, lstm: _Sheet, styles) -> None:
    """The sheet ``How to read this``: what to change, what to watch, and every name."""
    sheet = workbook.add_worksheet("How to read this")
    trace, cell = lstm.trace, lstm.trace.cell
    gates = [g.name for g in cell.gates if g.rule == "computed"]
    lines = [
        ("How to read this workbook", "title"),
        ("The sheet LSTM is one LSTM step (a run: every step) as spreadsheet formulas, laid out gate by gate as "
         "lstmtrace's annotated text explains it. Yellow cells are inputs; grey cells are formulas over them. "
         "Each formula cell also holds the value lstmtrace computed, so the workbook shows the right numbers "
         "even where nothing recalculates.", "text"),
        ("What to change", "heading"),
        ("x, h_prev and c_prev, at the top; each gate's weights W_<gate> (times x), U_<gate> (times h_prev) and "
         "b_<gate> (added), in that gate's section. Row u of W_forget is unit u's: forget_Wx of unit u is "
         "SUMPRODUCT of that row with x.", "text"),
        ("Try this: set every cell of U_forget to 0 and watch forget_Uh become 0 and forget_act change: h_prev "
         "no longer reaches the forget gate. Set b_forget to 10 and forget_act goes to about 1 (keep all of "
         "c_prev); to -10 and it goes to about 0 (forget it).", "text"),
        ("What to watch", "heading"),
        (", ".join(f"{g}_act" for g in gates) + ": each gate's value, unit by unit (σ lies between 0 and 1, "
         "and σ(0) = 0.5). cell_c: the new cell state. hidden_h: the new hidden state, the step's output.",
         "text"),
        ("How to follow a formula", "heading"),
        ("Click a grey cell to read its formula. Formulas → Trace Precedents (Excel), or Sheet → Detective → "
         "Trace Precedents (LibreOffice), draws arrows to the cells it uses. Every block below is a named "
         "range: pick its name in the Name Box, at the top left, to select it.", "text"),
    ]
    if trace.steps > 1:
        lines.append((f"A run: step t of every quantity is row t of its block. h_prev and c_prev hold the state "
                      f"before the first step; every later step's h_prev is the row of hidden_h before it, its "
                      f"c_prev the row of cell_c before it{' (after it: this cell runs in reverse)' if trace.direction == 'reverse' else ''}.",
                      "text"))
    lines += [
        ("Numbers", "heading"),
        ("The formulas do lstmtrace's arithmetic in its order, so a recalculated cell agrees with lstmtrace to "
         "about 15 significant digits: a spreadsheet shows no more, and its SUMPRODUCT may add the terms of "
         "a dot product in another order. LibreOffice also rounds a sum or difference that cancels to within "
         "about 1e-15 of its terms to exactly 0. Every digit of every value is in the sheet Trace, and in "
         "lstmtrace's CSV.", "text"),
        ("The names", "heading"),
    ]
    row = 0
    sheet.set_column(0, 0, 26)
    sheet.set_column(1, 1, 100)
    for text, style in lines:
        sheet.write_string(row, 1 if style == "text" else 0, text, styles[style])  # headings in A, text in B
        row += 1
    sheet.write_string(row, 0, "name", styles["header"])
    sheet.write_string(row, 1, "what it is", styles["header"])
    row += 1
    for key, what in lstm.notes.items():
        sheet.write_string(row, 0, key, styles["name"])
        sheet.write_string(row, 1, what, styles["what"])
        row += 1


def _values_sheet(workbook, trace, styles) -> None:
    """The sheet ``Trace``: the long-form trace, every value as lstmtrace holds it."""
    sheet = workbook.add_worksheet("Trace", worksheet_class=_exact_worksheet())
    frame = trace.frame
    columns = list(frame.columns)
    for c, column in enumerate(columns):
        sheet.write_string(0, c, column, styles["header"])
    data = [frame[column].to_numpy() if column in ("step", "unit", "value") else frame[column].astype(str).to_numpy()
            for column in columns]
    for r in range(len(frame)):
        for c, values in enumerate(data):
            v = values[r]
            if isinstance(v, str):
                sheet.write_string(r + 1, c, v)
            else:
                sheet.write_number(r + 1, c, float(v))
    sheet.set_column(0, len(columns) - 1, 14)
    sheet.freeze_panes(1, 0)


def _created() -> datetime.datetime:
    """Now, or the reproducible-builds SOURCE_DATE_EPOCH when it is set (traces/regenerate.py sets it)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch and epoch.isdigit():
        return datetime.datetime.fromtimestamp(int(epoch), tz=datetime.timezone.utc).replace(tzinfo=None)
    return datetime.datetime.now()


def to_xlsx(trace, path: Union[str, os.PathLike], title: Optional[str] = None) -> None:
    """Write ``trace`` as a live workbook to ``path``, whole or not at all (see the module's docstring).

    An OptionError for a trace a workbook of formulas cannot hold (a stack, a backward pass, one
    read from a file, too large: :data:`MAX_GATE_WEIGHTS`, :data:`MAX_STEPS`, :data:`MAX_FORMULAS`),
    naming the option to change; an ImportError without XlsxWriter.

    >>> import pathlib, tempfile, lstmtrace
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "step.xlsx"
    >>> to_xlsx(lstmtrace.step(lstmtrace.Parameters.identity(2, 2), [1.0, -1.0]), path)
    >>> path.read_bytes()[:2]        # an xlsx file is a zip archive
    b'PK'
    """
    from lstmtrace.atomic import atomic_open

    _check(trace)
    try:
        import xlsxwriter
    except ImportError:
        raise ImportError(f"the workbook needs XlsxWriter: {XLSX_HINT}") from None
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_formulas": False,
                                            "strings_to_numbers": False, "strings_to_urls": False})
    styles = _styles(workbook)
    from lstmtrace import __version__

    what = "one LSTM step" if trace.steps == 1 else f"an LSTM run of {trace.steps} steps"
    variant = trace.variant.describe()
    heading = f"lstmtrace: {what}, every value a formula" + (f" ({variant})" if variant else "")
    lstm = _Sheet(workbook, trace, styles)
    lstm.write(heading, title)
    _guide(workbook, lstm, styles)
    _values_sheet(workbook, trace, styles)
    workbook.set_properties({"title": heading, "comments": f"Written by lstmtrace {__version__}",
                             "created": _created()})
    workbook.close()
    with atomic_open(path, "wb") as f:
        f.write(buffer.getvalue())
