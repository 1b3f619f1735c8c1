"""The trace: every value of an LSTM step as one row of a long-form DataFrame.

:func:`step` and :func:`run` compute each step into one row of a preallocated array
(laid out by :func:`lstmtrace.cell.layout`) and wrap them in a :class:`Trace`; its
``.frame`` has the columns step, gate, quantity, unit, value (see
:mod:`lstmtrace.rows`).  :func:`read_trace` loads a saved one (see
:mod:`lstmtrace.tracefile`).
"""
import io
import os
from typing import Callable, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd

from lstmtrace import tracefile
from lstmtrace.atomic import atomic_open
from lstmtrace.cell import Values, layout, step_into
from lstmtrace.params import Parameters
from lstmtrace.rows import (COLUMNS, GATE_DTYPE, QUANTITY_DTYPE, NonFiniteError, check_finite, frame, grad_mode,
                            size, stage_sizes, stages)
from lstmtrace.variant import Variant

__all__ = ["COLUMNS", "NonFiniteError", "Trace", "make_trace", "read_trace", "run", "size", "stage_sizes", "step"]

class Trace:
    """Every intermediate value of LSTM steps; ``.frame`` is the DataFrame.

    >>> t = step(Parameters.identity(2, 2), [1.0, -1.0])
    >>> t.value("forget", "preact")
    array([ 1., -1.])
    >>> t.frame.head(3)
       step   gate quantity  unit  value
    0     1  given        x     0    1.0
    1     1  given        x     1   -1.0
    2     1  given   h_prev     0    0.0
    """

    def __init__(self, frame: pd.DataFrame, params: Optional[Parameters] = None,
                 sizes: Optional[Tuple[int, int, int, Union[bool, str]]] = None, variant: Optional[Variant] = None):
        self.frame = frame
        self.variant = variant if variant is not None else params.variant if params is not None else Variant()
        # a snapshot, not a copy: the arrays become read-only and are shared until params.set copies them
        self._params = None if params is None else params.snapshot()
        self.skipped: list = []  # gate.quantity names read_trace(unknown="skip") left out
        self.direction = "forward"  # "reverse": run over x_T … x_1, its steps still numbered in time order
        if sizes is None:  # (E, H, T, gradients) when the caller knows them; else count
            steps = int(frame["step"].max())
            quantity = frame["quantity"]
            grad = None
            if bool((quantity == "grad:h").any()):
                weights = (quantity == "grad:b").to_numpy()
                grad = "none" if not weights.any() else "total" if (frame["step"].to_numpy()[weights] == 0).all() \
                    else "per-step"
            sizes = (int((quantity == "x").sum()) // steps, int((quantity == "c_prev").sum()) // steps, steps, grad)
        self.input_size, self.hidden_size, self.steps, grad = sizes
        self.param_grads = grad_mode(grad)
        """How the backward pass kept the parameters' gradients: ``"total"`` (summed, at step 0),
        ``"per-step"``, ``"none"``; None for a trace without gradients (see :mod:`lstmtrace.rows`)."""
        self.has_gradients = self.param_grads is not None

    @property
    def cell(self):
        """The cell definition of :attr:`variant` (:class:`lstmtrace.cell.Cell`): what the rows hold."""
        return self.variant.cell

    @property
    def params(self) -> Optional[Parameters]:
        """The weights the trace was computed from, as they were then; None when read from a file.

        Changing the Parameters the trace was made from, afterwards, does not change these
        (see :meth:`Parameters.snapshot`); nor does changing what this returns.

        >>> p = Parameters.zeros(1, 1)
        >>> t = step(p, [1.0])
        >>> p.set("forget", "b", 5.0).forget.b, t.params.forget.b
        (array([5.]), array([0.]))
        """
        return None if self._params is None else self._params.snapshot()

    def __repr__(self) -> str:
        return (f"<Trace: {self.steps} step(s), input size {self.input_size}, "
                f"hidden size {self.hidden_size}, {len(self.frame)} values>")

    def __len__(self) -> int:
        return len(self.frame)

    def _repr_html_(self) -> str:
        """The trace as Jupyter shows it: tables grouped by gate, saturated units marked."""
        from lstmtrace.html import render_html

        return render_html(self)

    def value(self, gate: str, quantity: str, step: Optional[int] = None) -> np.ndarray:
        """One quantity over units; for a trace of several steps and no ``step``, steps × units.

        The array is a copy: changing it leaves the trace as it was.  A parameter's gradient summed
        over the steps (``param_grads="total"``) is one row, as for one step.
        """
        block = self.block(gate, quantity)
        if step is not None:
            if not 1 <= step <= self.steps:
                raise IndexError(f"step {step} is not in 1..{self.steps}")
            return block[step - 1].copy()
        return block[0].copy() if self.steps == 1 or len(block) == 1 else block.copy()

    def rows(self, part: str = "forward") -> np.ndarray:
        """Steps × numbers: each step's row of forward values (or of gradients), laid out as
        :func:`lstmtrace.cell.layout` says; a read-only view of the value column.

        >>> step(Parameters.zeros(1, 1), [2.0]).rows().shape     # E + 27H numbers a step
        (1, 28)

        Without the parameters' gradients in each step's row (``param_grads`` "total" or "none"), a
        gradient row holds dL/d the traced quantities only, as many numbers as a forward row.
        """
        if part == "grad" and not self.has_gradients:
            raise KeyError("this trace has no gradients: lstmtrace.backward(trace) adds them")
        T, E, H = self.steps, self.input_size, self.hidden_size
        values = self.frame["value"].to_numpy().view()
        values.setflags(write=False)
        start = T * layout(E, H, cell=self.cell).width if part == "grad" else 0
        width = layout(E, H, part if self.param_grads == "per-step" else "forward", self.cell).width
        return values[start:start + T * width].reshape(T, width)

    def totals(self) -> np.ndarray:
        """The parameters' gradients summed over the steps, as one row of the gradient layout's weights
        part (what the step-0 rows hold); a read-only view for ``param_grads="total"``, else their sum.

        >>> from lstmtrace import backward
        >>> t = run(Parameters.zeros(1, 1), [[1.0], [2.0]])
        >>> np.array_equal(backward(t).totals(), backward(t, param_grads="per-step").totals())
        True
        """
        E, H = self.input_size, self.hidden_size
        if self.param_grads in (None, "none"):
            raise KeyError("this trace keeps no gradients of its parameters" + (
                " (param_grads='none')" if self.param_grads else ": lstmtrace.backward(trace) adds them"))
        Q = layout(E, H, cell=self.cell).width
        if self.param_grads == "per-step":
            return self.rows("grad")[:, Q:].sum(axis=0)
        values = self.frame["value"].to_numpy().view()
        values.setflags(write=False)
        return values[2 * self.steps * Q:]

    def block(self, gate: str, quantity: str) -> np.ndarray:
        """A steps × units read-only view of one quantity (``"grad:…"`` for a gradient), straight
        out of the value column: :meth:`value` without the copy.  A parameter's gradient kept summed
        (``param_grads="total"``) is 1 × units: the sum over the steps.

        >>> run(Parameters.zeros(1, 1), [[1.0], [2.0]]).block("given", "x")
        array([[1.],
               [2.]])
        """
        part = "grad" if quantity.startswith("grad:") else "forward"
        if (gate, quantity) not in stages(self.cell, part) or (part == "grad" and not self.has_gradients):
            valid = "; ".join(f"{g}: {', '.join(qs)}" for g, qs in self.cell.pipeline)
            raise KeyError(f"no quantity {gate}.{quantity} in this trace ({valid}"
                           f"{'; and grad:<each of those>, grad:W, grad:U, grad:b' if self.has_gradients else ''})")
        where = layout(self.input_size, self.hidden_size, part, self.cell).slices[gate, quantity.replace("grad:", "", 1)]
        Q = layout(self.input_size, self.hidden_size, cell=self.cell).width
        if part == "grad" and self.param_grads != "per-step" and where.start >= Q:  # a parameter's
            if self.param_grads == "none":
                raise KeyError(f"no {gate}.{quantity} in this trace: its backward pass kept no gradients of the "
                               "parameters (param_grads='none')")
            return self.totals()[where.start - Q:where.stop - Q][None, :]
        return self.rows(part)[:, where]

    def values(self, step: int = 1, part: str = "forward") -> Values:
        """Named read-only views of one step's values: ``v.forget.preact``, ``v["cell", "c"]``.

        With ``part="grad"``, the same names hold dL/d each quantity, and each gate's
        W, U and b their gradients: ``trace.values(1, "grad").forget.preact`` is grad:preact.
        A step's own W, U and b gradients are NaN unless ``param_grads="per-step"`` kept them (or
        the trace is of one step, whose own are the total).

        >>> step(Parameters.zeros(1, 1), [2.0]).values().forget.act
        array([0.5])
        """
        if not 1 <= step <= self.steps:
            raise IndexError(f"step {step} is not in 1..{self.steps}")
        row = self.rows(part)[step - 1]
        if part == "grad" and self.param_grads != "per-step":  # a step's share of the parameters' is not kept
            if self.param_grads == "total" and self.steps == 1:  # ... but of one step it is their total
                rest = self.totals()
            else:
                rest = np.full(layout(self.input_size, self.hidden_size, "grad", self.cell).width - len(row), np.nan)
            row = np.concatenate([row, rest])
            row.setflags(write=False)
        return Values(row, self.input_size, self.hidden_size, part, self.cell)

    def check(self, quantity, values=None, step: Optional[int] = None):
        """Check numbers computed by hand against this trace, unit by unit, to the digits given; when they
        differ, name the common mistakes that reproduce them (:class:`lstmtrace.check.Check`).

        ``quantity`` is as the trace names it (``"forget.act"``, ``"cell.c"``) or f, i, g, o, c, h;
        ``values`` a row of numbers (a string ``"0.1,0.2"``, a list, an array), or one row per step
        (``"0.1,0.2;0.3,0.4"``, a list of lists) from ``step`` (default 1).  Several at once: a dict
        ``{quantity: values}``, or ``quantity`` as ``--check`` spells it, ``"f@2=0.1,0.2"``.

        >>> t = step(Parameters.identity(2, 2), [1.0, -1.0])
        >>> t.check("f", [0.731059, 0.268941]).agrees, t.check({"i": "0.73,0.27", "c": "0.3,-0.1"}).agrees
        (True, False)
        """
        from lstmtrace.check import check

        if isinstance(quantity, dict):
            return check(self, [(name, given, step) for name, given in quantity.items()])
        if values is None:
            return check(self, [quantity])
        return check(self, [(quantity, values, step)])

    # -- exports -------------------------------------------------------------------

    def to_csv(self, path: Union[str, os.PathLike, None] = None, layout: str = "long",
               progress: Optional[Callable[[float], None]] = None) -> Optional[str]:
        """CSV with full float64 precision (reads back bit-identical); the text when no path.

        ``layout="long"`` is the frame as it is; ``"wide"`` has one row per step, gate
        and quantity and a column per unit (u0, u1, …), blank past a vector's end.
        The long layout goes through pyarrow's CSV writer when pyarrow is installed.  ``progress``, if
        given, is called with the share of the rows each part written holds (a long layout's, in parts).
        """
        if layout not in ("long", "wide"):
            raise ValueError(f"layout must be 'long' or 'wide', not {layout!r}")
        write = tracefile.write_csv if layout == "long" else tracefile.write_csv_pandas
        table = self.frame if layout == "long" else self.wide()
        if path is None:
            out = io.StringIO()
            write(table, out, self._recorded)
            return out.getvalue()
        with atomic_open(path, "w", encoding="utf-8", newline="") as f:
            if progress is not None and layout == "long":
                tracefile.write_csv(table, f, self._recorded, progress=progress)
            else:
                write(table, f, self._recorded)
        return None

    @property
    def _recorded(self) -> tracefile.Recorded:
        """What a saved trace records besides its values: the variant, and that it runs in reverse."""
        return tracefile.Recorded(self.variant, self.direction)

    def to_parquet(self, path: Union[str, os.PathLike]) -> None:
        """Parquet, for traces too large for a spreadsheet (needs pyarrow); read_trace reads it back."""
        with atomic_open(path, "wb") as f:
            tracefile.write_parquet(self.frame, f, self._recorded)

    def wide(self) -> pd.DataFrame:
        """One row per step, gate and quantity; one column per unit (NaN past a vector's end).

        >>> step(Parameters.identity(1, 2), [3.0]).wide().head(2)
           step   gate quantity   u0   u1
        0     1  given        x  3.0  NaN
        1     1  given   h_prev  0.0  0.0
        """
        E, H, T = self.input_size, self.hidden_size, self.steps
        parts = ("forward", "grad") if self.has_gradients else ("forward",)
        width = max(int(stage_sizes(E, H, part, self.cell).max()) for part in parts)
        Q = len(stages(self.cell))  # a gradient row's stages: the quantities', then the parameters'
        blocks = [("forward", T, slice(None))]
        if self.param_grads == "per-step":
            blocks.append(("grad", T, slice(None)))
        elif self.has_gradients:
            blocks.append(("grad", T, slice(0, Q)))
            if self.param_grads == "total":
                blocks.append(("grad", 0, slice(Q, None)))  # once, summed, at step 0
        frames = []
        for part, count, which in blocks:
            named = stages(self.cell, part)[which]
            rows = max(count, 1)
            table = np.full((rows, len(named), width), np.nan)
            for k, (gate, quantity) in enumerate(named):  # a loop over stages, not rows
                block = self.block(gate, quantity)
                table[:, k, :block.shape[1]] = block
            stage = np.tile(np.arange(len(named)), rows)
            gate_codes = GATE_DTYPE.categories.get_indexer([g for g, _ in named])[stage]
            quantity_codes = QUANTITY_DTYPE.categories.get_indexer([q for _, q in named])[stage]
            keys = pd.DataFrame({
                "step": np.repeat(np.arange(1, T + 1, dtype=np.int32) if count else np.zeros(1, np.int32), len(named)),
                "gate": pd.Categorical.from_codes(gate_codes, dtype=GATE_DTYPE),
                "quantity": pd.Categorical.from_codes(quantity_codes, dtype=QUANTITY_DTYPE),
            })
            units = pd.DataFrame(table.reshape(rows * len(named), width), columns=[f"u{k}" for k in range(width)])
            frames.append(pd.concat([keys, units], axis=1))
        return pd.concat(frames, ignore_index=True)

    def to_json(self) -> str:
        """A JSON list of ``{"step", "gate", "quantity", "unit", "value"}`` rows, floats in full."""
        return tracefile.records_json(self.frame, self._recorded)

    def to_text(self, precision: int = 6, expand: Optional[int] = None,
                title: Optional[str] = None, steps: Union[Sequence[int], str, None] = None, brief: bool = False) -> str:
        """The annotated, step-by-step explanation (what ``lstmtrace step`` prints).

        ``precision`` is the significant digits shown, ``expand`` a unit whose dot
        products are written out term by term, ``title`` a line to open with,
        ``steps`` the steps explained in full after the one-row-per-step summary that
        a trace of several steps opens with (every one of a run of up to 20 steps, the
        steps worth reading of a longer one; ``"all"`` for every one), and ``brief``
        leaves out the notes and the glossary.
        """
        from lstmtrace.text import render

        return render(self, precision=precision, expand=expand, markdown=False, title=title, steps=steps, brief=brief)

    def to_markdown(self, precision: int = 6, expand: Optional[int] = None,
                    title: Optional[str] = None, steps: Union[Sequence[int], str, None] = None, brief: bool = False) -> str:
        """The same explanation with Markdown headings and tables, for notes."""
        from lstmtrace.text import render

        return render(self, precision=precision, expand=expand, markdown=True, title=title, steps=steps, brief=brief)

    def to_python(self, title: Optional[str] = None) -> str:
        """A standalone numpy script that recomputes this trace one equation per line and prints every
        value, bit for bit (what ``--format python`` writes; see :mod:`lstmtrace.code`).

        An OptionError for a trace of a backward pass, one read from a file (it holds no
        weights) or weights of more than 100,000 numbers.

        >>> script = step(Parameters.identity(1, 1), [0.5]).to_python()
        >>> [line for line in script.splitlines() if line.startswith("c = ")]
        ['c = f_c_prev + i_g']
        """
        from lstmtrace.code import to_python

        return to_python(self, title=title)

    def to_xlsx(self, path: Union[str, os.PathLike], title: Optional[str] = None) -> None:
        """A live workbook: the inputs and weights as cells, every traced quantity a formula over them
        that recomputes when one changes, each block a defined name (see :mod:`lstmtrace.xlsx`; needs
        XlsxWriter, ``pip install 'lstmtrace[xlsx]'``).

        >>> import pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "step.xlsx"
        >>> step(Parameters.identity(1, 1), [0.5]).to_xlsx(path)
        >>> path.stat().st_size > 0
        True
        """
        from lstmtrace.xlsx import to_xlsx

        to_xlsx(self, path, title=title)


def _vector(name: str, value, size: int, what: str) -> np.ndarray:
    array = np.array(value, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a vector, not shape {array.shape}")
    if array.shape[0] != size:
        raise ValueError(f"{name} has {array.shape[0]} values but the weights have {what} {size}")
    if not np.isfinite(array).all():
        k = int(np.argmin(np.isfinite(array)))
        raise ValueError(f"{name}[{k}] is {array[k]}; lstmtrace needs finite numbers")
    return array


def step(params: Parameters, x: Sequence[float], h_prev: Optional[Sequence[float]] = None,
         c_prev: Optional[Sequence[float]] = None) -> Trace:
    """Run one LSTM step and record every intermediate value; h_prev and c_prev default to zeros.

    >>> t = step(Parameters.identity(5, 5), [-0.1, 0.3, 0.1, -0.25, 0.1], [0, 0.5, 0.1, 0.2, 0.6])
    >>> t.value("forget", "act").round(8)
    array([0.47502081, 0.68997448, 0.549834  , 0.4875026 , 0.66818777])
    """
    x = _vector("x", x, params.input_size, "input size E =")
    return _trace(params, x[None, :], h_prev, c_prev)


def run(params: Parameters, xs, h0: Optional[Sequence[float]] = None,
        c0: Optional[Sequence[float]] = None, progress: Optional[Callable[[int], None]] = None,
        direction: str = "forward") -> Trace:
    """Run T steps over the rows of ``xs`` (T×E), carrying h and c from each step to the next.

    ``h0`` and ``c0`` default to zeros; ``progress``, if given, is called with 1 after
    each step (a click progress bar's ``update``, say).  The trace has steps 1..T.

    ``direction="reverse"`` runs the cell as the second half of a bidirectional layer does:
    over x_T first, then x_{T−1}, …, x_1, starting from ``h0`` and ``c0``.  Its steps keep the
    model's time order, so step t is the one that read x_t, and its h_prev is step t+1's h.

    >>> t = run(Parameters.identity(1, 1), [[1.0], [1.0], [1.0]])
    >>> t.value("cell", "c").round(4)      # steps × units: the cell fills up step by step
    array([[0.5568],
           [1.1444],
           [1.7395]])
    """
    xs = np.array(xs, dtype=np.float64)
    if xs.ndim != 2 or xs.shape[1] != params.input_size or xs.shape[0] == 0:
        raise ValueError(f"xs must be T×E with T ≥ 1 and E = {params.input_size} (the weights' input "
                         f"size), not shape {xs.shape}")
    if not np.isfinite(xs).all():
        t, e = (int(k) for k in np.argwhere(~np.isfinite(xs))[0])
        raise ValueError(f"xs[{t}, {e}] is {xs[t, e]}; lstmtrace needs finite numbers")
    if direction not in ("forward", "reverse"):
        raise ValueError(f"direction must be 'forward' or 'reverse', not {direction!r}")
    trace = _trace(params, xs, h0, c0, progress, reverse=direction == "reverse")
    trace.direction = direction
    return trace


def _trace(params, xs, h, c, progress=None, reverse: bool = False) -> Trace:
    """Every step over the rows of ``xs``, written straight into one preallocated value array; with
    ``reverse``, from the last row to the first, each step's values still in the row of its x."""
    params = params.snapshot()  # what the trace is computed from, even if params change meanwhile
    (T, E), H = xs.shape, params.hidden_size
    R = H if params.cell.proj_size is None else params.cell.proj_size  # h's units: H, or the projection's
    h = np.zeros(R) if h is None else _vector("h_prev", h, R, "hidden size H =" if R == H else
                                                 "projected size (the units of h) P =")
    c = np.zeros(H) if c is None else _vector("c_prev", c, H, "hidden size H =")
    where = layout(E, H, cell=params.cell)
    values = np.empty((T, where.width))
    h_at, c_at = where.slices["hidden", "h"], where.slices["cell", "c"]
    order = range(T - 1, -1, -1) if reverse else range(T)
    with np.errstate(over="ignore", invalid="ignore"):  # every value is checked for overflow below
        scratch = Values(np.empty(where.width), E, H, cell=params.cell)  # one step's views, reused
        for t in order:  # the recurrence: each step needs the last's h, c
            step_into(scratch, params, xs[t], h, c)
            values[t] = scratch.row
            h, c = values[t, h_at], values[t, c_at]
            if progress is not None:
                progress(1)
    return make_trace(values.reshape(-1), params, E, H, T)


def make_trace(values: np.ndarray, params: Optional[Parameters], input_size: int, hidden_size: int,
               steps: int, grad: Union[bool, str] = False) -> Trace:
    """A Trace of the value column ``values`` (every step's row, then any gradients' rows), checked finite;
    ``grad`` is False or how the parameters' gradients are kept (:data:`lstmtrace.rows.PARAM_GRADS`).

    >>> from lstmtrace.cell import step_values
    >>> p = Parameters.zeros(1, 1)
    >>> make_trace(step_values(p, np.ones(1), np.zeros(1), np.zeros(1)), p, 1, 1, 1)
    <Trace: 1 step(s), input size 1, hidden size 1, 28 values>
    """
    cell = Variant().cell if params is None else params.cell
    check_finite(values, input_size, hidden_size, steps, grad, cell)
    return Trace(frame(values, input_size, hidden_size, steps, grad, cell), params=params,
                 sizes=(input_size, hidden_size, steps, grad))


def read_trace(path: Union[str, os.PathLike, io.IOBase], unknown: str = "error") -> Trace:
    """Load a trace saved by :meth:`Trace.to_csv` (long or wide layout) or :meth:`Trace.to_parquet`,
    checking that it is whole (see :func:`lstmtrace.tracefile.read_cells`); a file of several cells
    (``layer`` and ``direction`` columns) is a :class:`lstmtrace.Stack`.

    Rows of a gate or quantity this version does not know (from a newer lstmtrace,
    say) are an error, or with ``unknown="skip"`` are left out and named in
    ``trace.skipped``.

    >>> t = step(Parameters.random(3, 2), [1, 2, 3])
    >>> read_trace(io.StringIO(t.to_csv())).frame.equals(t.frame)
    True
    """
    cells = tracefile.read_cells(path, unknown)
    traces = {}
    for cell in cells:
        trace = Trace(cell.frame, variant=cell.variant)
        trace.skipped, trace.direction = cell.skipped, cell.direction
        traces[cell.layer, cell.direction] = trace
    if cells[0].layer is None:
        return trace
    from lstmtrace.stack import Stack

    try:
        stack = Stack(traces)
    except ValueError as e:
        raise ValueError(f"{tracefile._name(path)}: {e}") from None
    stack.skipped = sorted({name for t in traces.values() for name in t.skipped})
    return stack
