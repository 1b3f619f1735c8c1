"""The trace: every value of an LSTM step as one row of a long-form DataFrame.

======== ========== ====================================================
column   dtype      holds
======== ========== ====================================================
step     int32      t, from 1
gate     category   given, forget, input, candidate, output, cell, hidden
quantity category   x, h_prev, c_prev, Wx, Uh, bias, preact, act, ...
unit     int32      the element's 0-based index in its vector
value    float64    the number the computation produced
======== ========== ====================================================

Rows follow :data:`lstmtrace.cell.PIPELINE`, unit by unit, step by step.
"""
import functools
import io
import json
import os
from typing import Callable, Dict, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd

from lstmtrace._atomic import atomic_open
from lstmtrace._damage import not_utf8
from lstmtrace.cell import PIPELINE, Values, layout, step_values
from lstmtrace.params import Parameters

__all__ = ["COLUMNS", "NonFiniteError", "Trace", "make_trace", "read_trace", "run", "size", "stage_sizes", "step"]

COLUMNS = ("step", "gate", "quantity", "unit", "value")

STAGES: Tuple[Tuple[str, str], ...] = layout(1, 1).stages
"""Every (gate, quantity) of one step, in pipeline order."""

GRAD_STAGES: Tuple[Tuple[str, str], ...] = tuple((g, "grad:" + q) for g, q in layout(1, 1, "grad").stages)
"""The gradient rows of one step: dL/d every forward quantity, then each gate's dL/dW, dL/dU, dL/db."""

PARTS = {"forward": STAGES, "grad": GRAD_STAGES}

GATE_DTYPE = pd.CategoricalDtype([g for g, _ in PIPELINE], ordered=True)
QUANTITY_DTYPE = pd.CategoricalDtype(list(dict.fromkeys(q for _, q in STAGES + GRAD_STAGES)), ordered=True)

# (gate code, quantity code) -> position in STAGES + GRAD_STAGES, or -1 where the pair is no stage
_STAGE_OF = np.full((len(GATE_DTYPE.categories), len(QUANTITY_DTYPE.categories)), -1)
for _k, (_g, _q) in enumerate(STAGES + GRAD_STAGES):
    _STAGE_OF[GATE_DTYPE.categories.get_loc(_g), QUANTITY_DTYPE.categories.get_loc(_q)] = _k

# pandas before 3.0 parses floats in CSV exactly only when asked to
_ROUND_TRIP = {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {}


class NonFiniteError(ArithmeticError):
    """A traced value overflowed to infinity or became NaN; says where."""

    def __init__(self, step: int, gate: str, quantity: str, unit: int, value: float):
        self.step, self.gate, self.quantity, self.unit, self.value = step, gate, quantity, unit, value
        super().__init__(
            f"{gate}.{quantity} is {value} at unit {unit} of step {step}: "
            "the computation overflowed float64; use smaller inputs or weights"
        )


def size(gate: str, quantity: str, input_size: int, hidden_size: int) -> int:
    """How many units a traced quantity has: E for x, H·E for grad:W, H·H for grad:U, else H.

    >>> size("forget", "grad:W", input_size=3, hidden_size=2)
    6
    """
    part, name = ("grad", quantity[5:]) if quantity.startswith("grad:") else ("forward", quantity)
    return layout(input_size, hidden_size, part).size(gate, name)


def stage_sizes(input_size: int, hidden_size: int, part: str = "forward") -> np.ndarray:
    """How many units each stage of one step has, in row order (read-only)."""
    return layout(input_size, hidden_size, part).sizes




@functools.lru_cache(maxsize=16)
def _layout(input_size: int, hidden_size: int, part: str = "forward") -> Tuple[np.ndarray, ...]:
    """The gate code, quantity code and unit of each row of one step (cached: made once per size)."""
    stages = PARTS[part]
    sizes = stage_sizes(input_size, hidden_size, part)
    stage = np.repeat(np.arange(len(stages)), sizes)
    gate = np.array([GATE_DTYPE.categories.get_loc(g) for g, _ in stages], dtype=np.int8)[stage]
    quantity = np.array([QUANTITY_DTYPE.categories.get_loc(q) for _, q in stages], dtype=np.int8)[stage]
    unit = (np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)).astype(np.int32)
    for array in (gate, quantity, unit):
        array.setflags(write=False)
    return gate, quantity, unit


def _keys(input_size: int, hidden_size: int, steps: int, grad: bool = False) -> Dict[str, np.ndarray]:
    """The step, gate code, quantity code and unit of every row: all forward rows, then any gradients."""
    keys = {}
    for part in ("forward", "grad") if grad else ("forward",):
        gate, quantity, unit = _layout(input_size, hidden_size, part)
        tile = (lambda a: a) if steps == 1 else (lambda a: np.tile(a, steps))  # noqa: E731
        for name, array in (("step", np.repeat(np.arange(1, steps + 1, dtype=np.int32), len(unit))),
                            ("gate", tile(gate)), ("quantity", tile(quantity)), ("unit", tile(unit))):
            keys[name] = array if name not in keys else np.concatenate([keys[name], array])
    return keys


# pandas ≥ 2.1 can skip re-checking codes that lstmtrace made itself
_TRUSTED = {"validate": False} if tuple(int(v) for v in pd.__version__.split(".")[:2]) >= (2, 1) else {}


def _frame(values: np.ndarray, input_size: int, hidden_size: int, steps: int, grad: bool = False) -> pd.DataFrame:
    keys = _keys(input_size, hidden_size, steps, grad)
    frame = pd.DataFrame({
        "step": keys["step"],
        "gate": pd.Categorical.from_codes(keys["gate"], dtype=GATE_DTYPE, **_TRUSTED),
        "quantity": pd.Categorical.from_codes(keys["quantity"], dtype=QUANTITY_DTYPE, **_TRUSTED),
        "unit": keys["unit"],
        "value": values,
    }, copy=False)
    return frame


def _check_finite(values: np.ndarray, input_size: int, hidden_size: int, steps: int = 1,
                  grad: bool = False) -> None:
    finite = np.isfinite(values)
    if finite.all():
        return
    row = int(np.argmin(finite))
    keys = _keys(input_size, hidden_size, steps, grad)
    raise NonFiniteError(int(keys["step"][row]), GATE_DTYPE.categories[keys["gate"][row]],
                         QUANTITY_DTYPE.categories[keys["quantity"][row]], int(keys["unit"][row]),
                         float(values[row]))


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
                 sizes: Optional[Tuple[int, int, int, bool]] = None):
        self.frame = frame
        # a snapshot, not a copy: the arrays become read-only and are shared until params.set copies them
        self._params = None if params is None else params.snapshot()
        self.skipped: list = []  # gate.quantity names read_trace(unknown="skip") left out
        if sizes is None:  # (E, H, T, has gradients) when the caller knows them; else count
            steps = int(frame["step"].max())
            quantity = frame["quantity"]
            sizes = (int((quantity == "x").sum()) // steps, int((quantity == "h_prev").sum()) // steps,
                     steps, bool((quantity == "grad:h").any()))
        self.input_size, self.hidden_size, self.steps, self.has_gradients = sizes

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

        The array is a copy: changing it leaves the trace as it was.
        """
        block = self.block(gate, quantity)
        if step is not None:
            if not 1 <= step <= self.steps:
                raise IndexError(f"step {step} is not in 1..{self.steps}")
            return block[step - 1].copy()
        return block[0].copy() if self.steps == 1 else block.copy()

    def rows(self, part: str = "forward") -> np.ndarray:
        """Steps × numbers: each step's row of forward values (or of gradients), laid out as
        :func:`lstmtrace.cell.layout` says; a read-only view of the value column.

        >>> step(Parameters.zeros(1, 1), [2.0]).rows().shape     # E + 27H numbers a step
        (1, 28)
        """
        if part == "grad" and not self.has_gradients:
            raise KeyError("this trace has no gradients: lstmtrace.backward(trace) adds them")
        T, E, H = self.steps, self.input_size, self.hidden_size
        values = self.frame["value"].to_numpy().view()
        values.setflags(write=False)
        start = T * layout(E, H).width if part == "grad" else 0
        width = layout(E, H, part).width
        return values[start:start + T * width].reshape(T, width)

    def block(self, gate: str, quantity: str) -> np.ndarray:
        """A steps × units read-only view of one quantity (``"grad:…"`` for a gradient), straight
        out of the value column: :meth:`value` without the copy.

        >>> run(Parameters.zeros(1, 1), [[1.0], [2.0]]).block("given", "x")
        array([[1.],
               [2.]])
        """
        part = "grad" if quantity.startswith("grad:") else "forward"
        if (gate, quantity) not in PARTS[part] or (part == "grad" and not self.has_gradients):
            valid = "; ".join(f"{g}: {', '.join(qs)}" for g, qs in PIPELINE)
            raise KeyError(f"no quantity {gate}.{quantity} in this trace ({valid}"
                           f"{'; and grad:<each of those>, grad:W, grad:U, grad:b' if self.has_gradients else ''})")
        where = layout(self.input_size, self.hidden_size, part).slices[gate, quantity.replace("grad:", "", 1)]
        return self.rows(part)[:, where]

    def values(self, step: int = 1, part: str = "forward") -> Values:
        """Named read-only views of one step's values: ``v.forget.preact``, ``v["cell", "c"]``.

        With ``part="grad"``, the same names hold dL/d each quantity, and each gate's
        W, U and b their gradients: ``trace.values(1, "grad").forget.preact`` is grad:preact.

        >>> step(Parameters.zeros(1, 1), [2.0]).values().forget.act
        array([0.5])
        """
        if not 1 <= step <= self.steps:
            raise IndexError(f"step {step} is not in 1..{self.steps}")
        return Values(self.rows(part)[step - 1], self.input_size, self.hidden_size, part)

    # -- exports -------------------------------------------------------------------

    def to_csv(self, path: Union[str, os.PathLike, None] = None, layout: str = "long") -> Optional[str]:
        """CSV with full float64 precision (reads back bit-identical); the text when no path.

        ``layout="long"`` is the frame as it is; ``"wide"`` has one row per step, gate
        and quantity and a column per unit (u0, u1, …), blank past a vector's end.
        The long layout goes through pyarrow's CSV writer when pyarrow is installed.
        """
        from lstmtrace.export import write_csv, write_csv_pandas

        if layout not in ("long", "wide"):
            raise ValueError(f"layout must be 'long' or 'wide', not {layout!r}")
        write = write_csv if layout == "long" else write_csv_pandas
        frame = self.frame if layout == "long" else self.wide()
        if path is None:
            out = io.StringIO()
            write(frame, out)
            return out.getvalue()
        with atomic_open(path, "w", encoding="utf-8", newline="") as f:
            write(frame, f)
        return None

    def to_parquet(self, path: Union[str, os.PathLike]) -> None:
        """Parquet, for traces too large for a spreadsheet (needs pyarrow); read_trace reads it back."""
        from lstmtrace.export import write_parquet

        with atomic_open(path, "wb") as f:
            write_parquet(self.frame, f)

    def wide(self) -> pd.DataFrame:
        """One row per step, gate and quantity; one column per unit (NaN past a vector's end).

        >>> step(Parameters.identity(1, 2), [3.0]).wide().head(2)
           step   gate quantity   u0   u1
        0     1  given        x  3.0  NaN
        1     1  given   h_prev  0.0  0.0
        """
        E, H, T = self.input_size, self.hidden_size, self.steps
        parts = ("forward", "grad") if self.has_gradients else ("forward",)
        width = max(int(stage_sizes(E, H, part).max()) for part in parts)
        frames = []
        for part in parts:
            stages = PARTS[part]
            table = np.full((T, len(stages), width), np.nan)
            for k, (gate, quantity) in enumerate(stages):  # a loop over stages, not rows
                block = self.block(gate, quantity)
                table[:, k, :block.shape[1]] = block
            stage = np.tile(np.arange(len(stages)), T)
            codes = lambda dtype, i: np.array([dtype.categories.get_loc(s[i]) for s in stages])[stage]  # noqa: E731
            keys = pd.DataFrame({
                "step": np.repeat(np.arange(1, T + 1, dtype=np.int32), len(stages)),
                "gate": pd.Categorical.from_codes(codes(GATE_DTYPE, 0), dtype=GATE_DTYPE),
                "quantity": pd.Categorical.from_codes(codes(QUANTITY_DTYPE, 1), dtype=QUANTITY_DTYPE),
            })
            units = pd.DataFrame(table.reshape(T * len(stages), width), columns=[f"u{k}" for k in range(width)])
            frames.append(pd.concat([keys, units], axis=1))
        return pd.concat(frames, ignore_index=True)

    def to_json(self) -> str:
        """A JSON list of ``{"step", "gate", "quantity", "unit", "value"}`` rows, floats in full."""
        return records_json(self.frame)

    def to_text(self, precision: int = 6, expand: Optional[int] = None,
                title: Optional[str] = None, steps: Optional[Sequence[int]] = None) -> str:
        """The annotated, step-by-step explanation (what ``lstmtrace step`` prints).

        ``precision`` is the significant digits shown, ``expand`` a unit whose dot
        products are written out term by term, ``title`` a line to open with, and
        ``steps`` the steps explained in full (every one when not given) after the
        one-row-per-step summary that a trace of several steps opens with.
        """
        from lstmtrace.text import render

        return render(self, precision=precision, expand=expand, markdown=False, title=title, steps=steps)

    def to_markdown(self, precision: int = 6, expand: Optional[int] = None,
                    title: Optional[str] = None, steps: Optional[Sequence[int]] = None) -> str:
        """The same explanation with Markdown headings and tables, for notes."""
        from lstmtrace.text import render

        return render(self, precision=precision, expand=expand, markdown=True, title=title, steps=steps)


def records_json(frame: pd.DataFrame) -> str:
    """A DataFrame as a JSON list of row objects, floats in full (pandas' to_json keeps 15 digits)."""
    columns = [frame[c].astype(str).tolist() if not pd.api.types.is_numeric_dtype(frame[c])
               else frame[c].tolist() for c in frame.columns]
    return json.dumps([dict(zip(frame.columns, row)) for row in zip(*columns)], indent=1) + "\n"


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
        c0: Optional[Sequence[float]] = None, progress: Optional[Callable[[int], None]] = None) -> Trace:
    """Run T steps over the rows of ``xs`` (T×E), carrying h and c from each step to the next.

    ``h0`` and ``c0`` default to zeros; ``progress``, if given, is called with 1 after
    each step (a click progress bar's ``update``, say).  The trace has steps 1..T.

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
    return _trace(params, xs, h0, c0, progress)


def _trace(params, xs, h, c, progress=None) -> Trace:
    """Every step over the rows of ``xs``, written straight into one preallocated value array."""
    params = params.snapshot()  # what the trace is computed from, even if params change meanwhile
    (T, E), H = xs.shape, params.hidden_size
    h = np.zeros(H) if h is None else _vector("h_prev", h, H, "hidden size H =")
    c = np.zeros(H) if c is None else _vector("c_prev", c, H, "hidden size H =")
    where = layout(E, H)
    values = np.empty((T, where.width))
    h_at, c_at = where.slices["hidden", "h"], where.slices["cell", "c"]
    for t in range(T):  # the recurrence: step t needs step t-1's h and c
        row = step_values(params, xs[t], h, c, out=values[t])
        h, c = row[h_at], row[c_at]
        if progress is not None:
            progress(1)
    return make_trace(values.reshape(-1), params, E, H, T)


def make_trace(values: np.ndarray, params: Optional[Parameters], input_size: int, hidden_size: int,
               steps: int, grad: bool = False) -> Trace:
    """A Trace of the value column ``values`` (every step's row, then any gradients' rows), checked finite.

    >>> from lstmtrace.cell import step_values
    >>> p = Parameters.zeros(1, 1)
    >>> make_trace(step_values(p, np.ones(1), np.zeros(1), np.zeros(1)), p, 1, 1, 1)
    <Trace: 1 step(s), input size 1, hidden size 1, 28 values>
    """
    _check_finite(values, input_size, hidden_size, steps, grad)
    return Trace(_frame(values, input_size, hidden_size, steps, grad), params=params,
                 sizes=(input_size, hidden_size, steps, grad))


def read_trace(path: Union[str, os.PathLike, io.IOBase], unknown: str = "error") -> Trace:
    """Load a trace saved by :meth:`Trace.to_csv` (long or wide layout), checking that it is whole.

    Rows of a gate or quantity this version does not know (from a newer lstmtrace,
    say) are an error, or with ``unknown="skip"`` are left out and named in
    ``trace.skipped``.

    >>> t = step(Parameters.random(3, 2), [1, 2, 3])
    >>> read_trace(io.StringIO(t.to_csv())).frame.equals(t.frame)
    True
    """
    if unknown not in ("error", "skip"):
        raise ValueError(f"unknown must be 'error' or 'skip', not {unknown!r}")
    name = os.fspath(path) if isinstance(path, (str, os.PathLike)) else getattr(path, "name", "<stream>")
    if str(name).lower().endswith(".parquet"):
        from lstmtrace.export import read_parquet

        return _checked_trace(read_parquet(path), None, unknown, name)
    try:
        trace = _read_csv_trace(path, unknown, name)
    except ValueError as e:
        last = _cut_mid_row(path)
        if last is None:
            raise
        detail = str(e)[len(str(name)):] if str(e).startswith(str(name)) else str(e)
        detail = detail.lstrip(": ").removeprefix("is ")
        raise ValueError(f"{name} is truncated or corrupt: it stops in the middle of line {last} "
                         f"({detail})") from None
    _check_ends_with_a_line_end(path, name)
    return trace


def _check_ends_with_a_line_end(path, name) -> None:
    """A CSV file cut short inside its last number still has every cell, and the wrong value:
    lstmtrace ends every line, so a last line without a line end is refused."""
    if not isinstance(path, (str, os.PathLike)):
        return
    with open(path, "rb") as f:
        if f.seek(0, os.SEEK_END) == 0:
            return  # empty: said in words below
        f.seek(-1, os.SEEK_END)
        if f.read(1) != b"\n":
            raise ValueError(f"{name} is truncated or corrupt: its last line has no line end, so its last "
                             "value may be cut short (if the file is whole, end it with a line end)")


def _cut_mid_row(path) -> Optional[int]:
    """The number of a CSV file's last line when the file stops part way through it (cut short?).

    That is: no line end after it, and fewer cells than the header has.
    """
    if not isinstance(path, (str, os.PathLike)):
        return None
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    last = lines[-1].rstrip(b"\r")
    if len(lines) < 2 or not last or last.count(b",") >= lines[0].count(b","):
        return None
    return len(lines)


def _read_csv_trace(path, unknown: str, name: str) -> Trace:
    try:
        header = _read_csv(path, nrows=0, dtype=str).columns
        wide = tuple(header[:3]) == COLUMNS[:3] and len(header) > 3 and header[3] == "u0"
        if wide:  # a blank cell past a vector's end is the only thing read as NaN
            frame = _read_csv(path, dtype={"step": np.int64, "gate": str, "quantity": str,
                                           **{u: np.float64 for u in header[3:]}},
                              na_filter=True, na_values=[""], **_ROUND_TRIP)
        else:
            frame = _read_csv(path, dtype=_CSV_DTYPES, **_ROUND_TRIP)
    except pd.errors.EmptyDataError:
        raise ValueError(f"{name} is empty, not a trace CSV") from None
    except ValueError as e:  # a cell that is not a number, a ragged row, bytes that are not UTF-8
        raise ValueError(f"{name} is not a trace CSV: {_diagnose(path, e)}") from None
    lines = None
    if wide:
        try:
            frame, lines = _long_from_wide(frame)
        except ValueError as e:
            raise ValueError(f"{name}: {e}") from None
    return _checked_trace(frame, lines, unknown, name)


def _checked_trace(frame: pd.DataFrame, lines, unknown: str, name: str) -> Trace:
    if tuple(frame.columns) != COLUMNS:
        raise ValueError(f"{name} has columns {', '.join(map(str, frame.columns))}; a trace has "
                         f"exactly {', '.join(COLUMNS)} (or step, gate, quantity, u0, u1, … when wide)")
    if frame.empty:
        raise ValueError(f"{name} has a header but no rows")
    if frame["value"].dtype != np.float64 or not all(np.issubdtype(frame[c].dtype, np.integer)
                                                     for c in ("step", "unit")):
        raise ValueError(f"{name}: step and unit must be whole numbers and value float64")
    try:
        checked, skipped = _checked_frame(frame, lines, skip_unknown=unknown == "skip")
    except ValueError as e:
        raise ValueError(f"{name}: {e}") from None
    trace = Trace(checked)
    trace.skipped = skipped
    return trace


def _long_from_wide(frame: pd.DataFrame):
    """A wide trace (one row per step, gate and quantity; a column per unit) as long rows, with their lines."""
    units = frame.columns[3:]
    if list(units) != [f"u{k}" for k in range(len(units))]:
        raise ValueError(f"the unit columns must be u0, u1, …, not {', '.join(map(str, units))}")
    values = frame[units].to_numpy(dtype=np.float64)  # blank cells are NaN
    present = ~np.isnan(values)
    width = present.sum(axis=1)
    if (present != (np.arange(len(units)) < width[:, None])).any():
        row = int(np.argmax((present != (np.arange(len(units)) < width[:, None])).any(axis=1)))
        raise ValueError(f"line {row + 2}: the values of a row must fill u0, u1, … without gaps")
    rows = np.repeat(np.arange(len(frame)), width)
    long = pd.DataFrame({"step": frame["step"].to_numpy()[rows],
                         "gate": frame["gate"].to_numpy()[rows],
                         "quantity": frame["quantity"].to_numpy()[rows],
                         "unit": np.nonzero(present)[1].astype(np.int32),
                         "value": values[present]})
    return long, rows + 2


_CSV_DTYPES = {"step": np.int64, "gate": str, "quantity": str, "unit": np.int64, "value": np.float64}


def _read_csv(path, **kwargs) -> pd.DataFrame:
    """pandas.read_csv that takes no text for NaN: "nan" or "NA" in a trace is an error, not a value."""
    if hasattr(path, "seek"):
        path.seek(0)
    options = {"keep_default_na": False, "na_filter": False, "encoding": "utf-8", **kwargs}
    return pd.read_csv(path, **options)


def _line_of_row(row: int) -> int:
    return row + 2  # the header is line 1


def _diagnose(path, error: ValueError) -> str:
    """Say which line of a CSV that pandas would not read as a trace is wrong."""
    if isinstance(error, UnicodeDecodeError) and isinstance(path, (str, os.PathLike)):
        with open(path, "rb") as f:
            data = f.read()
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as e:
            return not_utf8(data, e)
    try:
        frame = _read_csv(path, dtype=str)
    except ValueError as e:
        return _first_line(e)
    if tuple(frame.columns) != COLUMNS:
        return f"its columns are {', '.join(map(str, frame.columns))}, not {', '.join(COLUMNS)}"
    for column, kind in (("step", "a whole number"), ("unit", "a whole number"), ("value", "a number")):
        numbers = pd.to_numeric(frame[column], errors="coerce")
        bad = numbers.isna() | ((numbers % 1 != 0) if kind == "a whole number" else False)
        if bad.any():
            row = int(np.argmax(bad.to_numpy()))
            return f"line {_line_of_row(row)}: {column} {frame[column].iloc[row]!r} is not {kind}"
    return _first_line(error)


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _checked_frame(frame: pd.DataFrame, lines: Optional[np.ndarray] = None, skip_unknown: bool = False):
    """The rows of a CSV trace, checked and put in pipeline order, and the unknown quantities skipped.

    Errors name the file's line: ``lines[row]`` when given, else the row's own line.
    """
    _line = (lambda row: int(lines[row])) if lines is not None else _line_of_row
    gate = GATE_DTYPE.categories.get_indexer(frame["gate"])  # -1 where not a gate
    quantity = QUANTITY_DTYPE.categories.get_indexer(frame["quantity"])
    stage = np.where((gate >= 0) & (quantity >= 0), _STAGE_OF[gate, quantity], -1)
    skipped = []
    if skip_unknown and (stage < 0).any():
        unknown = stage < 0
        names = frame["gate"].astype(str)[unknown] + "." + frame["quantity"].astype(str)[unknown]
        skipped = sorted(set(names))
        keep = ~unknown
        frame, stage = frame[keep], stage[keep]
        lines = (lines if lines is not None else np.arange(len(keep)) + 2)[keep]
        _line = lambda row: int(lines[row])  # noqa: E731
    if (stage < 0).any():
        row = int(np.argmax(stage < 0))
        raise ValueError(f"line {_line(row)}: {frame['gate'].iloc[row]}.{frame['quantity'].iloc[row]} "
                         "is not a gate and quantity of an LSTM step")
    if frame.empty:
        raise ValueError("has no rows of a gate and quantity this lstmtrace knows")

    step_, unit, value = (frame[c].to_numpy() for c in ("step", "unit", "value"))
    for column, bad, what in (("step", step_ < 1, "a step ≥ 1"), ("unit", unit < 0, "a unit ≥ 0"),
                              ("value", ~np.isfinite(value), "a finite number")):
        if bad.any():
            row = int(np.argmax(bad))
            raise ValueError(f"line {_line(row)}: {column} {str(frame[column].iloc[row])!r} is not {what}")

    steps = int(step_.max())
    E = int(((step_ == 1) & (stage == 0)).sum())
    H = int(((step_ == 1) & (stage == 1)).sum())
    if E == 0 or H == 0:
        raise ValueError(f"step 1 has no given.{'x' if E == 0 else 'h_prev'} rows, so the trace's "
                         "sizes are unknown")
    grad = bool((stage >= len(STAGES)).any())
    expected = np.concatenate([np.tile(stage_sizes(E, H, part), steps)
                               for part in (("forward", "grad") if grad else ("forward",))])
    # a block is one part's stage at one step, numbered in the order the rows belong in
    part = (stage >= len(STAGES)).astype(np.int64)
    in_part = stage - part * len(STAGES)
    block = part * steps * len(STAGES) + (step_ - 1) * np.where(part == 1, len(GRAD_STAGES), len(STAGES)) + in_part
    counts = np.bincount(block, minlength=len(expected))
    wrong = counts != expected
    if wrong.any():
        k = int(np.argmax(wrong))
        in_grad = k >= steps * len(STAGES)
        stages = GRAD_STAGES if in_grad else STAGES
        j = k - steps * len(STAGES) if in_grad else k
        t, (g, q) = j // len(stages) + 1, stages[j % len(stages)]
        raise ValueError(f"step {t} has {counts[k]} rows of {g}.{q}, expected {expected[k]} "
                         f"(input size {E} and hidden size {H}, from step 1's x and h_prev)")

    order = np.lexsort((unit, block))
    misplaced = unit[order] != _keys(E, H, steps, grad)["unit"]
    if misplaced.any():
        row = int(order[np.argmax(misplaced)])
        raise ValueError(f"line {_line(row)}: unit {int(unit[row])} of {frame['gate'].iloc[row]}."
                         f"{frame['quantity'].iloc[row]} is repeated or out of range")
    return _frame(value[order], E, H, steps, grad), skipped
