"""The rows of a trace: its columns, the gate and quantity categories, and the keys of every row.

======== ========== ====================================================
column   dtype      holds
======== ========== ====================================================
step     int32      t, from 1
gate     category   given, forget, input, candidate, output, cell, hidden
quantity category   x, h_prev, c_prev, Wx, Uh, bias, preact, act, ...
unit     int32      the element's 0-based index in its vector
value    float64    the number the computation produced
======== ========== ====================================================

Rows follow :func:`lstmtrace.cell.layout`: each step's forward row, unit by unit,
step by step, then (after a backward pass) each step's gradient row the same way.

A backward pass keeps the parameters' gradients (``grad:W``, ``grad:U``, ``grad:b``, and ``grad:P``,
``grad:W_hr`` where the cell has them) in one of three ways (:data:`PARAM_GRADS`):

* ``"total"``: each step's row holds dL/d its traced quantities only; after the last step come
  the parameters' gradients once, summed over every step, at **step 0** (step 0 means "not one step:
  the whole sequence"; a saved file's variant rows, the other step-0 rows, are gate ``variant``).
* ``"per-step"``: each step's row holds its own contribution to them too, after its quantities'
  (their sum over the steps is the whole gradient).
* ``"none"``: only the traced quantities' gradients.
The trace (:mod:`lstmtrace.trace`) and its files (:mod:`lstmtrace.tracefile`) are
laid out from here.

>>> keys(input_size=1, hidden_size=1, steps=2)["step"][[0, 27, 28]]
array([1, 1, 2], dtype=int32)
"""
import functools
from typing import Dict, Optional, Tuple

import numpy as np
import pandas as pd

from lstmtrace.cell import ACTIVATIONS, LSTM, PIPELINE, Cell, layout

__all__ = ["COLUMNS", "DIRECTION_DTYPE", "GATE_DTYPE", "GRAD_STAGES", "NonFiniteError", "PARAM_GRADS", "QUANTITY_DTYPE",
           "STAGES", "check_finite", "frame", "grad_mode", "keys", "led", "size", "stage_of", "stage_sizes", "stages"]

COLUMNS = ("step", "gate", "quantity", "unit", "value")

PARAM_GRADS = ("total", "per-step", "none")
"""How a backward pass keeps the parameters' gradients: summed over the steps at step 0, each step's
own in its row, or not at all."""


def grad_mode(grad) -> Optional[str]:
    """A trace's gradients as one of :data:`PARAM_GRADS`, or None for none: ``True`` (as before 0.8)
    is ``"per-step"``, ``False`` or None is None.

    >>> grad_mode(True), grad_mode(False), grad_mode("total")
    ('per-step', None, 'total')
    """
    if grad is None or grad is False:
        return None
    if grad is True:
        return "per-step"
    if grad not in PARAM_GRADS:
        raise ValueError(f"param_grads must be one of {', '.join(map(repr, PARAM_GRADS))}, not {grad!r}")
    return grad


@functools.lru_cache(maxsize=None)
def stages(cell: Cell = LSTM, part: str = "forward") -> Tuple[Tuple[str, str], ...]:
    """Every (gate, quantity) of one step of ``cell``, in row order; ``part="grad"``: the gradient rows,
    dL/d every forward quantity and then each gate's dL/dW, dL/dU, dL/db, named ``grad:…``."""
    if part == "grad":
        return tuple((g, "grad:" + q) for g, q in layout(1, 1, "grad", cell).stages)
    return layout(1, 1, "forward", cell).stages


STAGES: Tuple[Tuple[str, str], ...] = stages()
"""Every (gate, quantity) of one step of the default LSTM, in pipeline order."""

GRAD_STAGES: Tuple[Tuple[str, str], ...] = stages(LSTM, "grad")
"""The gradient rows of one step: dL/d every forward quantity, then each gate's dL/dW, dL/dU, dL/db."""


# Every quantity any cell traces: the default LSTM's, then those its variants add (appended, so
# the default's codes never move)
_ACT_C = [f"{key}(c)" for key in ACTIVATIONS]
_VARIANT_QUANTITIES = ["clipped", *(q for q in _ACT_C if q != "tanh(c)"), "Pc", *(f"output*{q}" for q in _ACT_C),
                       "P", "W_hr"]
GATE_DTYPE = pd.CategoricalDtype([g for g, _ in PIPELINE], ordered=True)
QUANTITY_DTYPE = pd.CategoricalDtype(list(dict.fromkeys(
    [q for _, q in STAGES + GRAD_STAGES] + _VARIANT_QUANTITIES + [f"grad:{q}" for q in _VARIANT_QUANTITIES])),
    ordered=True)


DIRECTION_DTYPE = pd.CategoricalDtype(["forward", "reverse"], ordered=True)
"""The ``direction`` column of a trace of several cells (:class:`lstmtrace.Stack`)."""


def led(table: pd.DataFrame, layer: int, direction: str) -> pd.DataFrame:
    """``table`` (one cell's rows) with the two columns a stack's rows start with: ``layer`` (int32) and
    ``direction``, the same in every row; the table's own columns are shared, not copied.

    >>> led(pd.DataFrame({"step": [1]}), 0, "reverse")
       layer direction  step
    0      0   reverse     1
    """
    table = table.copy(deep=False)
    table.insert(0, "direction", pd.Categorical.from_codes(
        np.full(len(table), DIRECTION_DTYPE.categories.get_loc(direction), dtype=np.int8), dtype=DIRECTION_DTYPE))
    table.insert(0, "layer", np.full(len(table), layer, dtype=np.int32))
    return table


@functools.lru_cache(maxsize=None)
def stage_of(cell: Cell = LSTM) -> np.ndarray:
    """(gate code, quantity code) → position in ``cell``'s stages then gradient stages, or −1 where
    the pair is no stage of that cell."""
    table = np.full((len(GATE_DTYPE.categories), len(QUANTITY_DTYPE.categories)), -1)
    for k, (g, q) in enumerate(stages(cell) + stages(cell, "grad")):
        table[GATE_DTYPE.categories.get_loc(g), QUANTITY_DTYPE.categories.get_loc(q)] = k
    table.setflags(write=False)
    return table



class NonFiniteError(ArithmeticError):
    """A traced value overflowed to infinity or became NaN; says where."""

    def __init__(self, step: int, gate: str, quantity: str, unit: int, value: float):
        self.step, self.gate, self.quantity, self.unit, self.value = step, gate, quantity, unit, value
        super().__init__(
            f"{gate}.{quantity} is {value} at unit {unit} of step {step}: "
            "the computation overflowed float64; use smaller inputs or weights"
        )


def size(gate: str, quantity: str, input_size: int, hidden_size: int, cell: Cell = LSTM) -> int:
    """How many units a traced quantity has: E for x, H·E for grad:W, H·H for grad:U, else H.

    >>> size("forget", "grad:W", input_size=3, hidden_size=2)
    6
    """
    part, name = ("grad", quantity[5:]) if quantity.startswith("grad:") else ("forward", quantity)
    return layout(input_size, hidden_size, part, cell).size(gate, name)


def stage_sizes(input_size: int, hidden_size: int, part: str = "forward", cell: Cell = LSTM) -> np.ndarray:
    """How many units each stage of one step has, in row order (read-only)."""
    return layout(input_size, hidden_size, part, cell).sizes




@functools.lru_cache(maxsize=16)
def _layout(input_size: int, hidden_size: int, part: str = "forward", cell: Cell = LSTM) -> Tuple[np.ndarray, ...]:
    """The gate code, quantity code and unit of each row of one step (cached: made once per size)."""
    named = stages(cell, part)
    sizes = stage_sizes(input_size, hidden_size, part, cell)
    stage = np.repeat(np.arange(len(named)), sizes)
    gate = np.array([GATE_DTYPE.categories.get_loc(g) for g, _ in named], dtype=np.int8)[stage]
    quantity = np.array([QUANTITY_DTYPE.categories.get_loc(q) for _, q in named], dtype=np.int8)[stage]
    unit = (np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)).astype(np.int32)
    for array in (gate, quantity, unit):
        array.setflags(write=False)
    return gate, quantity, unit


def keys(input_size: int, hidden_size: int, steps: int, grad=False, cell: Cell = LSTM) -> Dict[str, np.ndarray]:
    """The step, gate code, quantity code and unit of every row: all forward rows, then any gradients
    (``grad``: False, or how the parameters' gradients are kept, :data:`PARAM_GRADS`; True is "per-step").

    >>> keys(1, 1, 2, grad="total")["step"][-4:]     # the last row of grad:b, summed, at step 0
    array([0, 0, 0, 0], dtype=int32)
    """
    mode = grad_mode(grad)
    blocks = [("forward", steps, None)]
    if mode == "per-step":
        blocks.append(("grad", steps, None))
    elif mode is not None:  # the quantities' gradients step by step; "total": then the parameters' once
        blocks.append(("grad", steps, slice(0, _quantity_width(input_size, hidden_size, cell))))
        if mode == "total":
            blocks.append(("grad", 0, slice(_quantity_width(input_size, hidden_size, cell), None)))
    pieces = []
    for part, count, where in blocks:
        gate, quantity, unit = (a if where is None else a[where] for a in _layout(input_size, hidden_size, part, cell))
        pieces.append((count, gate, quantity, unit))
    n = sum(max(count, 1) * len(unit) for count, _, _, unit in pieces)
    out = {"step": np.empty(n, np.int32), "gate": np.empty(n, np.int8), "quantity": np.empty(n, np.int8),
           "unit": np.empty(n, np.int32)}
    start = 0
    for count, gate, quantity, unit in pieces:  # each block written in place: no tiles, no concatenation
        rows, width = max(count, 1), len(unit)
        end = start + rows * width
        out["step"][start:end].reshape(rows, width)[:] = np.arange(1, rows + 1, dtype=np.int32)[:, None] if count \
            else 0  # step 0: once, summed over the steps
        for name, array in (("gate", gate), ("quantity", quantity), ("unit", unit)):
            out[name][start:end].reshape(rows, width)[:] = array
        start = end
    return out


def _quantity_width(input_size: int, hidden_size: int, cell: Cell = LSTM) -> int:
    """How many numbers of a gradient row are dL/d the traced quantities (the parameters' come after):
    as many as the forward row has."""
    return layout(input_size, hidden_size, "forward", cell).width


# pandas ≥ 2.1 can skip re-checking codes that lstmtrace made itself
_TRUSTED = {"validate": False} if tuple(int(v) for v in pd.__version__.split(".")[:2]) >= (2, 1) else {}


def frame(values: np.ndarray, input_size: int, hidden_size: int, steps: int, grad=False,
          cell: Cell = LSTM) -> pd.DataFrame:
    """The trace's DataFrame around the value column ``values`` (every step's row, then any gradients')."""
    rows = keys(input_size, hidden_size, steps, grad, cell)
    return pd.DataFrame({
        "step": rows["step"],
        "gate": pd.Categorical.from_codes(rows["gate"], dtype=GATE_DTYPE, **_TRUSTED),
        "quantity": pd.Categorical.from_codes(rows["quantity"], dtype=QUANTITY_DTYPE, **_TRUSTED),
        "unit": rows["unit"],
        "value": values,
    }, copy=False)


def check_finite(values: np.ndarray, input_size: int, hidden_size: int, steps: int = 1,
                 grad=False, cell: Cell = LSTM) -> None:
    """A NonFiniteError naming the first value of ``values`` that is not finite, if any."""
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.add.reduce(values)):  # one pass, nothing allocated: any inf or nan makes the sum so
            return
    finite = np.isfinite(values)  # (or the sum of finite values overflowed)
    if finite.all():
        return
    row = int(np.argmin(finite))
    where = keys(input_size, hidden_size, steps, grad, cell)
    raise NonFiniteError(int(where["step"][row]), GATE_DTYPE.categories[where["gate"][row]],
                         QUANTITY_DTYPE.categories[where["quantity"][row]], int(where["unit"][row]),
                         float(values[row]))
