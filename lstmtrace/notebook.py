"""A teacher's notebook vocabulary on top of lstmtrace: ``import lstmtrace.notebook as lstm``.

Notebooks that teach the LSTM often build the cell from a ``Parameters`` object
whose weights are assigned one matrix at a time and from one function per gate.
This module offers those names, so such a notebook runs as written; every
function here calls :func:`lstmtrace.step` and reads its answer out of the
:class:`lstmtrace.Trace`, so the numbers are lstmtrace's own, to the last bit.

>>> import numpy as np
>>> import lstmtrace.notebook as lstm
>>> parameters = lstm.Parameters(event_size=3, hidden_size=3)       # every weight and bias 0
>>> parameters.event_forget_weights = np.eye(3)
>>> lstm.forget_gate(event=np.array([10, 0, 0]), hidden_state=np.array([0, 0, 10]),
...                  prev_cell_state=np.array([1, 1, 1]), parameters=parameters)
array([0.9999546, 0.5      , 0.5      ])

=============================  =========  ==========================================
notebook attribute             shape      in :class:`lstmtrace.Parameters`
=============================  =========  ==========================================
``event_<gate>_weights``       H×E        ``params.<gate>.W`` (multiplies the event x)
``hidden_<gate>_weights``      H×H        ``params.<gate>.U`` (multiplies h_prev)
``event_<gate>_bias``          H or 1     ``params.<gate>.b`` is event bias + hidden
``hidden_<gate>_bias``         H or 1     bias, as PyTorch's bias_ih + bias_hh
=============================  =========  ==========================================

for ``<gate>`` in forget, input, candidate, output.  Any function's result is one
row of the step's full trace: ``lstm.trace(event, hidden_state, prev_cell_state,
parameters)`` returns that :class:`lstmtrace.Trace`, every intermediate value.

Every function also takes an :class:`lstmtrace.Parameters` as ``parameters``, of any
variant (``lstmtrace.Parameters.random(3, 3, variant=lstmtrace.Variant.preset("cifg"))``):
the notebook's own Parameters hold the default LSTM's weights only.

A note on one such notebook's prose: with all weights zero it says the gate gives
0.5 "since sigmoid(1) = 0.5"; it is σ(0) = 0.5 (every pre-activation is 0, and σ(1) ≈ 0.731).
"""
import difflib
import re
from typing import Optional, Tuple, Union

import numpy as np

from lstmtrace.cell import GATES
from lstmtrace.weights import TORCH_ORDER
from lstmtrace.params import Parameters as _CoreParameters
from lstmtrace.trace import Trace, step

__all__ = ["Parameters", "candidate", "cell_state", "forget_gate", "input_gate", "lstm_step",
           "hidden_state", "output_gate", "trace"]

ATTRIBUTES = tuple(f"{side}_{gate}_{kind}" for gate in GATES
                   for side, kind in (("event", "weights"), ("event", "bias"),
                                      ("hidden", "weights"), ("hidden", "bias")))
"""Every assignable weight and bias, in the order such a notebook's Parameters sets them."""


class Parameters:
    """An LSTM cell's weights as a notebook assigns them: ``parameters.event_forget_weights = …``.

    Every attribute of :data:`ATTRIBUTES` starts at zero and can be read at once.
    Assigning one checks it: weights must have their shape (a number fills the
    matrix), a bias is a number or H values, and NaN or infinity is refused, each
    with a ValueError that names the attribute.  A value is copied in as float64
    and read back as that array (changing it in place changes the weights).

    >>> parameters = Parameters(event_size=3, hidden_size=2)
    >>> parameters.hidden_forget_bias
    array([0., 0.])
    >>> parameters.event_forget_weights = np.eye(2, 3)
    >>> parameters.to_parameters().forget.W
    array([[1., 0., 0.],
           [0., 1., 0.]])
    """

    def __init__(self, event_size: int, hidden_size: int):
        core = _CoreParameters.zeros(event_size, hidden_size)  # checks the sizes
        object.__setattr__(self, "_sizes", (core.input_size, core.hidden_size))
        object.__setattr__(self, "_values", {name: np.zeros(self._shape(name)) for name in ATTRIBUTES})

    event_size = property(lambda self: self._sizes[0], doc="E: how many numbers an event holds.")
    hidden_size = property(lambda self: self._sizes[1], doc="H: how many units the cell has.")

    def _shape(self, name: str) -> tuple:
        E, H = self._sizes
        if name.endswith("_bias"):
            return (H,)
        return (H, E) if name.startswith("event_") else (H, H)

    def _expected(self, name: str) -> str:
        shape = self._shape(name)
        if name.endswith("_bias"):
            return f"a number or (hidden_size,) = {shape}"
        names = "(hidden_size, event_size)" if name.startswith("event_") else "(hidden_size, hidden_size)"
        return f"{names} = {shape}"

    def _checked(self, name: str, value) -> np.ndarray:
        """``value`` as a float64 array of ``name``'s shape, finite, or a ValueError naming ``name``."""
        if isinstance(value, (str, bytes)):
            raise ValueError(f"{name} must hold numbers, not the text {value!r:.40}")
        try:
            array = np.array(value, dtype=np.float64)  # a copy: the caller keeps theirs
        except (TypeError, ValueError):
            raise ValueError(f"{name} must hold numbers, not {value!r:.40}") from None
        if array.ndim == 0:
            array = np.full(self._shape(name), float(array))
        if array.shape != self._shape(name):
            raise ValueError(f"{name} has shape {array.shape}; expected {self._expected(name)}")
        bad = ~np.isfinite(array)
        if bad.any():
            where = [int(k) for k in np.argwhere(bad)[0]]
            raise ValueError(f"{name} has {array[tuple(where)]} at {where}; lstmtrace needs finite numbers")
        return array

    def __setattr__(self, name: str, value) -> None:
        if name in ("event_size", "hidden_size"):
            raise AttributeError(f"{name} is fixed when the Parameters are made; make new ones to change it")
        if name not in ATTRIBUTES:
            close = difflib.get_close_matches(name, ATTRIBUTES, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise AttributeError(f"Parameters has no weight or bias {name!r}; {hint}"
                                 "they are event_<gate>_weights, hidden_<gate>_weights, event_<gate>_bias "
                                 f"and hidden_<gate>_bias for <gate> in {', '.join(GATES)}")
        self._values[name] = self._checked(name, value)

    def __getattr__(self, name: str):  # only called when normal lookup fails
        values = self.__dict__.get("_values", {})
        if name in values:
            return values[name]
        raise AttributeError(f"Parameters has no attribute {name!r}")

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(ATTRIBUTES))

    def __repr__(self) -> str:
        return f"Parameters(event_size={self.event_size}, hidden_size={self.hidden_size})"

    def __eq__(self, other) -> bool:
        if not isinstance(other, Parameters):
            return NotImplemented
        return self._sizes == other._sizes and all(
            np.array_equal(self._values[n], other._values[n]) for n in ATTRIBUTES)

    # -- to and from lstmtrace.Parameters ------------------------------------------

    def to_parameters(self) -> _CoreParameters:
        """The same cell as :class:`lstmtrace.Parameters`: W, U, and b = event bias + hidden bias.

        The biases are summed by :meth:`lstmtrace.Parameters.from_state_dict`, as
        PyTorch sums bias_ih and bias_hh.

        >>> parameters = Parameters(event_size=2, hidden_size=2)
        >>> parameters.event_input_bias, parameters.hidden_input_bias = 0.5, [1, 2]
        >>> parameters.to_parameters().input.b
        array([1.5, 2.5])
        """
        values = {n: self._checked(n, v) for n, v in self._values.items()}  # in-place changes too
        stack = lambda side, kind: np.concatenate([values[f"{side}_{g}_{kind}"] for g in TORCH_ORDER])
        return _CoreParameters.from_state_dict({
            "weight_ih": stack("event", "weights"), "weight_hh": stack("hidden", "weights"),
            "bias_ih": stack("event", "bias"), "bias_hh": stack("hidden", "bias")})

    @classmethod
    def from_parameters(cls, params: _CoreParameters) -> "Parameters":
        """The notebook's view of an :class:`lstmtrace.Parameters`; each b becomes the event bias.

        The hidden biases are zero (as in the ``bias_ih`` of ``params.state_dict()``),
        so ``Parameters.from_parameters(p).to_parameters() == p``.

        >>> import lstmtrace
        >>> p = Parameters.from_parameters(lstmtrace.Parameters.identity(3, 2).set("forget", "b", 1))
        >>> p.hidden_forget_weights, p.event_forget_bias
        (array([[1., 0.],
               [0., 1.]]), array([1., 1.]))
        """
        if params.variant != type(params.variant)():
            raise ValueError(f"the notebook's Parameters hold the default LSTM's weights, and these are a "
                             f"{params.variant.name or params.variant.describe()} cell's: pass the "
                             "lstmtrace.Parameters itself to the notebook's functions")
        out = cls(event_size=params.input_size, hidden_size=params.hidden_size)
        for gate in GATES:
            W, U, b = params[gate]
            setattr(out, f"event_{gate}_weights", W)
            setattr(out, f"hidden_{gate}_weights", U)
            setattr(out, f"event_{gate}_bias", b)
        return out


def _core(parameters) -> _CoreParameters:
    if isinstance(parameters, Parameters):
        return parameters.to_parameters()
    if isinstance(parameters, _CoreParameters):
        return parameters
    raise TypeError(f"parameters must be lstmtrace.notebook.Parameters or lstmtrace.Parameters, "
                    f"not {type(parameters).__name__}")


_NOTEBOOK_NAMES = {"x": "event", "h_prev": "hidden_state", "c_prev": "prev_cell_state"}


def trace(event, hidden_state, prev_cell_state=None,
          parameters: Optional[Union[Parameters, _CoreParameters]] = None) -> Trace:
    """The full :class:`lstmtrace.Trace` of the step: every value every function here returns, and more.

    ``prev_cell_state`` defaults to zeros (the input, candidate and output gates do
    not depend on it); ``parameters`` may also be an :class:`lstmtrace.Parameters`.
    Show the trace in Jupyter, or ``print(t.to_text())``, to see each gate's W·x,
    U·h, bias, pre-activation and activation.

    >>> t = trace(event=np.array([10, 0, 0]), hidden_state=np.array([0, 0, 10]),
    ...           prev_cell_state=np.array([1, 1, 1]), parameters=Parameters(3, 3))
    >>> t.value("forget", "act"), t.value("cell", "forget*c_prev")
    (array([0.5, 0.5, 0.5]), array([0.5, 0.5, 0.5]))
    """
    if parameters is None:
        raise TypeError("trace() needs parameters: lstmtrace.notebook.Parameters or lstmtrace.Parameters")
    try:
        return step(_core(parameters), event, hidden_state, prev_cell_state)
    except ValueError as e:  # say event, hidden_state and prev_cell_state, as the caller did
        raise ValueError(re.sub(r"^(x|h_prev|c_prev)\b", lambda m: _NOTEBOOK_NAMES[m[1]], str(e))) from None


def forget_gate(event, hidden_state, prev_cell_state, parameters) -> np.ndarray:
    """f ⊙ prev_cell_state: how much of the previous cell state the forget gate keeps.

    f = σ(event_forget_weights·event + hidden_forget_weights·hidden_state + both
    biases).  The whole step, f itself included (``t.value("forget", "act")``), is
    ``trace(event, hidden_state, prev_cell_state, parameters)``; this is its
    ``t.value("cell", "forget*c_prev")``.

    >>> forget_gate(event=np.array([10, 0, 0]), hidden_state=np.array([0, 0, 10]),
    ...             prev_cell_state=np.array([1, 1, 1]), parameters=Parameters(3, 3))
    array([0.5, 0.5, 0.5])
    """
    return trace(event, hidden_state, prev_cell_state, parameters).value("cell", "forget*c_prev")


def input_gate(event, hidden_state, parameters) -> np.ndarray:
    """i = σ(event_input_weights·event + hidden_input_weights·hidden_state + both biases).

    The whole step is ``trace(event, hidden_state, prev_cell_state, parameters)``
    (any prev_cell_state: i does not depend on it); this is its ``t.value("input", "act")``.

    >>> p = Parameters(event_size=2, hidden_size=2)
    >>> p.event_input_weights = np.eye(2)
    >>> input_gate(event=np.array([10, 0]), hidden_state=np.array([0, 0]), parameters=p)
    array([0.9999546, 0.5      ])
    """
    return trace(event, hidden_state, None, parameters).value("input", "act")


def candidate(event, hidden_state, parameters) -> np.ndarray:
    """c̃ = tanh(event_candidate_weights·event + hidden_candidate_weights·hidden_state + both biases).

    The values offered to the cell state (PyTorch's g).  The whole step is
    ``trace(event, hidden_state, prev_cell_state, parameters)``; this is its
    ``t.value("candidate", "act")``.

    >>> p = Parameters(event_size=2, hidden_size=2)
    >>> p.hidden_candidate_weights = np.eye(2)
    >>> candidate(event=np.array([1, 1]), hidden_state=np.array([0, 1]), parameters=p).round(4)
    array([0.    , 0.7616])
    """
    return trace(event, hidden_state, None, parameters).value("candidate", "act")


def output_gate(event, hidden_state, parameters) -> np.ndarray:
    """o = σ(event_output_weights·event + hidden_output_weights·hidden_state + both biases).

    The whole step is ``trace(event, hidden_state, prev_cell_state, parameters)``
    (any prev_cell_state: o does not depend on it); this is its ``t.value("output", "act")``.

    >>> p = Parameters(event_size=2, hidden_size=2)
    >>> p.event_output_bias = -1
    >>> output_gate(event=np.array([1, 1]), hidden_state=np.array([0, 0]), parameters=p).round(4)
    array([0.2689, 0.2689])
    """
    return trace(event, hidden_state, None, parameters).value("output", "act")


def cell_state(event, hidden_state, prev_cell_state, parameters) -> np.ndarray:
    """c = f ⊙ prev_cell_state + i ⊙ c̃: the new cell state.

    The whole step is ``trace(event, hidden_state, prev_cell_state, parameters)``;
    this is its ``t.value("cell", "c")``.

    >>> cell_state(event=np.array([10, 0, 0]), hidden_state=np.array([0, 0, 10]),
    ...            prev_cell_state=np.array([1, 1, 1]), parameters=Parameters(3, 3))
    array([0.5, 0.5, 0.5])
    """
    return trace(event, hidden_state, prev_cell_state, parameters).value("cell", "c")


def hidden_state(event, hidden_state, prev_cell_state, parameters) -> np.ndarray:
    """h = o ⊙ tanh(c): the new hidden state; the argument ``hidden_state`` is the previous one.

    The whole step is ``trace(event, hidden_state, prev_cell_state, parameters)``;
    this is its ``t.value("hidden", "h")``.

    >>> hidden_state(event=np.array([10, 0, 0]), hidden_state=np.array([0, 0, 10]),
    ...              prev_cell_state=np.array([1, 1, 1]), parameters=Parameters(3, 3)).round(4)
    array([0.2311, 0.2311, 0.2311])
    """
    return trace(event, hidden_state, prev_cell_state, parameters).value("hidden", "h")


def lstm_step(event, hidden_state, prev_cell_state, parameters) -> Tuple[np.ndarray, np.ndarray]:
    """(h, c): the new hidden state and cell state, to feed into the next step.

    The whole step is ``trace(event, hidden_state, prev_cell_state, parameters)``;
    this is its ``(t.value("hidden", "h"), t.value("cell", "c"))``.

    >>> h, c = lstm_step(event=np.array([10, 0, 0]), hidden_state=np.array([0, 0, 10]),
    ...                  prev_cell_state=np.array([1, 1, 1]), parameters=Parameters(3, 3))
    >>> h.round(4), c
    (array([0.2311, 0.2311, 0.2311]), array([0.5, 0.5, 0.5]))
    """
    t = trace(event, hidden_state, prev_cell_state, parameters)
    return t.value("hidden", "h"), t.value("cell", "c")
