"""The weights of one LSTM cell (W, U and b for each gate), and the recipe that makes them.

:class:`Parameters` holds them stacked, as one LSTM computes them.  :class:`WeightSpec`
is the recipe that the command line's weight options spell (``--weights random:7
--forget-bias 1 --set forget.U=zeros``): where the weights come from and what is
changed on top.  PyTorch's and Keras' layouts and files are :mod:`lstmtrace.weights`.
"""
import dataclasses
import os
from dataclasses import dataclass
from typing import Dict, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from lstmtrace import weights
from lstmtrace.cell import GATES, Gate, count
from lstmtrace.errors import OptionError
from lstmtrace.spec import parse_matrix, parse_number, parse_vector
from lstmtrace.variant import Variant

__all__ = ["GATES", "Gate", "Parameters", "WEIGHT_SPECS", "WEIGHT_WORDS", "WeightSpec", "is_weight_word"]

WEIGHT_SPECS = "identity|zeros|ones|random[:SEED]"
"""The weight choices that need no file, as the command line spells them."""

ArrayLike = Union[np.ndarray, float, int, str, list]


class Parameters:
    """W, U and b of the forget, input, candidate and output gates of one LSTM cell.

    The gates are stored stacked, as one LSTM computes them: ``W`` (4H×E), ``U``
    (4H×H) and ``b`` (4H) hold the forget, input, candidate and output gates'
    rows in that order, and ``params.forget`` (or ``params["forget"]``) is a
    :class:`Gate` of views into them.

    A trace owns the weights it was computed from: making one (``step``, ``run``)
    marks W, U and b read-only and keeps a :meth:`snapshot` sharing them, so no copy
    is made.  :meth:`set` copies a read-only array before changing it (the trace keeps
    the old one); changing an element in place then raises numpy's "assignment
    destination is read-only": use ``p.set(...)``, or ``p = p.copy()`` for writable arrays.

    >>> p = Parameters.identity(input_size=3, hidden_size=2)
    >>> p.forget.W
    array([[1., 0., 0.],
           [0., 1., 0.]])
    >>> p.set("forget", "U", "zeros").forget.U
    array([[0., 0.],
           [0., 0.]])
    """

    variant_source = "given"
    """Where :attr:`variant` came from: "given" (made here), or for :meth:`load` "file", "options" or
    "assumed" (a file that cannot tell which activations its cell uses, and no variant given)."""

    def __init__(self, gates: Mapping[str, Gate], variant: Optional[Variant] = None,
                 W_hr: Optional[np.ndarray] = None):
        self.variant = Variant() if variant is None else variant
        cell = self.variant.check().cell  # a variant lstmtrace cannot compute is refused here, not traced wrong
        unknown = [g for g in gates if g not in GATES]
        if unknown:
            raise ValueError(f"unknown gate {unknown[0]!r}; the gates are {', '.join(GATES)}")
        weightless = [g for g in gates if g not in cell.weighted]
        if weightless:
            words, option = cell.weightless(weightless[0])
            raise OptionError(f"weights were given for the {weightless[0]} gate, which has none in this cell: "
                              f"it is {words}", option)
        missing = [g for g in cell.weighted if g not in gates]
        if missing:
            raise ValueError(f"no weights for gate(s) {', '.join(missing)}")
        W = np.asarray(gates[cell.weighted[0]].W)
        if W.ndim != 2:
            raise ValueError(f"{cell.weighted[0]}.W must be a matrix (H×E), not shape {W.shape}")
        self.hidden_size, self.input_size = W.shape
        H, E, n = W.shape[0], W.shape[1], len(cell.weighted)
        R = H if cell.proj_size is None else cell.proj_size
        self.W, self.U, self.b = np.empty((n * H, E)), np.empty((n * H, R)), np.empty(n * H)
        self.P = np.empty(len(cell.peepholes) * H)  # the peephole cell's diagonal weights; else empty
        self.W_hr = None if cell.proj_size is None else np.empty((R, H))  # the projection's weights
        for name in cell.weighted:
            P = getattr(gates[name], "P", None)
            if name in cell.peepholes and P is None:
                raise OptionError(f"no peephole weights P for the {name} gate, and this cell has peepholes",
                                  "peephole")
            if name not in cell.peepholes and P is not None:
                raise OptionError(f"peephole weights P were given for the {name} gate of a cell without "
                                  "peepholes", "peephole")
            for param, _ in cell.gate(name).weights:
                self._stacked(param)[self._rows(name, param)] = self._checked(name, param,
                                                                              getattr(gates[name], param))
        if (W_hr is None) != (cell.proj_size is None):
            raise OptionError(f"a projection (proj_size = {cell.proj_size}) needs its weights W_hr (P×H)"
                              if W_hr is None else "projection weights W_hr were given for a cell without a "
                              "projection", "proj_size")
        if W_hr is not None:
            self.W_hr[:] = self._checked("hidden", "W_hr", W_hr)

    # -- the gates, by name -----------------------------------------------------------

    def _rows(self, gate: str, param: str = "W") -> slice:
        stacked = self.cell.peepholes if param == "P" else self.cell.weighted
        k = stacked.index(gate)
        return slice(k * self.hidden_size, (k + 1) * self.hidden_size)

    def _stacked(self, param: str) -> np.ndarray:
        return {"W": self.W, "U": self.U, "b": self.b, "P": self.P, "W_hr": self.W_hr}[param]

    def __getitem__(self, gate: str) -> Gate:
        if gate not in GATES:
            raise KeyError(f"unknown gate {gate!r}; the gates are {', '.join(GATES)}")
        if gate not in self.cell.weighted:
            raise KeyError(f"the {gate} gate has no weights in this cell: it is {self.cell.weightless(gate)[0]}")
        rows = self._rows(gate)
        P = self.P[self._rows(gate, "P")] if gate in self.cell.peepholes else None
        return Gate(self.W[rows], self.U[rows], self.b[rows], P)

    @property
    def gates(self) -> Dict[str, Gate]:
        """{name: Gate} of the gates that have weights (all four, but in some variants), in pipeline order."""
        return {g: self[g] for g in self.cell.weighted}

    forget = property(lambda self: self["forget"], doc="Gate f: how much of c_prev to keep.")
    input = property(lambda self: self["input"], doc="Gate i: how much of the candidate to write.")
    candidate = property(lambda self: self["candidate"], doc="c̃ (PyTorch's g): the values offered to the cell.")
    output = property(lambda self: self["output"], doc="Gate o: how much of tanh(c) to show as h.")

    def __repr__(self) -> str:
        variant = "" if self.variant == Variant() else f", variant={self.variant!r}"
        return f"Parameters(input_size={self.input_size}, hidden_size={self.hidden_size}{variant})"

    def __eq__(self, other) -> bool:
        if not isinstance(other, Parameters):
            return NotImplemented
        return self.variant == other.variant and all(
            np.array_equal(getattr(self, p), getattr(other, p)) for p in ("W", "U", "b", "P")) and (
            self.W_hr is None or np.array_equal(self.W_hr, other.W_hr))

    @property
    def cell(self):
        """The cell these weights are for: :attr:`variant`'s (:class:`lstmtrace.cell.Cell`)."""
        return self.variant.cell

    def variant_note(self) -> str:
        """One sentence on where :attr:`variant` came from, when a file decided it or could not
        ('' otherwise): the text and ``params --show`` print it.

        >>> p = Parameters.zeros(1, 1); p.variant_source = "assumed"
        >>> p.variant_note()[:58]
        'The weights file cannot say which activations its cell use'
        """
        if self.variant_source == "assumed":
            return ("The weights file cannot say which activations its cell uses: lstmtrace assumed its default "
                    "LSTM's (σ for f, i and o, tanh for c̃ and c); give --variant or --activation if the "
                    "model used others.")
        if self.variant_source == "file":
            return f"The file says its cell is {self.variant.describe() or 'the default LSTM'}."
        return ""

    def copy(self) -> "Parameters":
        """An independent copy, with writable arrays, to change without touching this one."""
        return Parameters(self.gates, self.variant, self.W_hr)

    def snapshot(self) -> "Parameters":
        """These weights as they are now, without copying: W, U and b become read-only and shared.

        :meth:`set` on either object copies an array before changing it, so the
        snapshot keeps what it saw; every trace holds one.

        >>> p = Parameters.zeros(1, 1)
        >>> kept = p.snapshot()
        >>> p.set("forget", "b", 1.0).forget.b, kept.forget.b
        (array([1.]), array([0.]))
        """
        for array in (self.W, self.U, self.b, self.P, self.W_hr):
            if array is not None:
                array.setflags(write=False)
        shared = object.__new__(Parameters)
        shared.__dict__.update(self.__dict__)
        return shared

    # -- constructors --------------------------------------------------------------

    @classmethod
    def _build(cls, input_size: int, hidden_size: int, make, variant: Optional[Variant] = None,
               diagonal=None) -> "Parameters":
        """Every gate's W, U (and P) from ``make(shape)``, gate by gate, W before U before P; b = 0.
        P, a diagonal, is ``diagonal(shape)`` when given; a projection's W_hr is made last."""
        E, H = _check_sizes(input_size, hidden_size)
        cell = (Variant() if variant is None else variant).check().cell
        R = H if cell.proj_size is None else cell.proj_size
        diagonal = diagonal or make
        gates = {g: Gate(make((H, E)), make((H, R)), np.zeros(H),
                         diagonal((H,)) if g in cell.peepholes else None) for g in cell.weighted}
        return cls(gates, variant, None if cell.proj_size is None else make((R, H)))

    @classmethod
    def zeros(cls, input_size: int, hidden_size: int, variant: Optional[Variant] = None) -> "Parameters":
        """Every W, U and b (and P, W_hr) zero: each gate's preact is 0, so σ gives exactly 0.5."""
        return cls._build(input_size, hidden_size, np.zeros, variant)

    @classmethod
    def identity(cls, input_size: int, hidden_size: int, variant: Optional[Variant] = None) -> "Parameters":
        """W = np.eye(H, E) and U = np.eye(H) for every gate, b = 0: preact = x + h_prev when E = H.
        A peephole's P is the identity's diagonal, ones; a projection's W_hr is np.eye(P, H)."""
        return cls._build(input_size, hidden_size, lambda shape: np.eye(*shape), variant, np.ones)

    @classmethod
    def ones(cls, input_size: int, hidden_size: int, variant: Optional[Variant] = None) -> "Parameters":
        """Every W and U (and P, W_hr) all ones, b = 0: every unit of a gate sees sum(x) + sum(h_prev)."""
        return cls._build(input_size, hidden_size, np.ones, variant)

    @classmethod
    def random(cls, input_size: int, hidden_size: int, seed: int = 0,
               variant: Optional[Variant] = None) -> "Parameters":
        """W and U (and P, W_hr) uniform in ±1/√H, as PyTorch initialises them; b = 0.

        The draws come from ``np.random.default_rng(seed)``, gate by gate (forget,
        input, candidate, output), W before U before P, then W_hr: reproducible, but
        not PyTorch's stream.
        """
        rng = np.random.default_rng(seed)
        bound = 1.0 / np.sqrt(_check_sizes(input_size, hidden_size)[1])
        return cls._build(input_size, hidden_size, lambda shape: rng.uniform(-bound, bound, shape), variant)

    @classmethod
    def from_word(cls, word: str, input_size: int, hidden_size: int,
                  variant: Optional[Variant] = None) -> "Parameters":
        """Made-up weights by name: identity, zeros, ones, random or random:SEED.

        >>> Parameters.from_word("random:7", 4, 3) == Parameters.random(4, 3, seed=7)
        True
        """
        if word in ("identity", "zeros", "ones"):
            return getattr(cls, word)(input_size, hidden_size, variant=variant)
        if word.split(":")[0] == "random":
            return cls.random(input_size, hidden_size, seed=_seed(word), variant=variant)
        raise ValueError(f"{word!r} is not one of {WEIGHT_SPECS}")

    @classmethod
    def from_spec(cls, weights: str = "identity", input_size: Optional[int] = None,
                  hidden_size: Optional[int] = None, *, layer: Optional[int] = None,
                  prefix: Optional[str] = None, layout: Optional[str] = None, bias: Optional[float] = None,
                  forget_bias: Optional[float] = None, sets: Sequence[str] = (),
                  variant: Optional[Variant] = None) -> "Parameters":
        """Weights as the command line's weight options describe them, with the same spellings.

        ``weights`` is anything ``--weights`` takes: ``"identity"``, ``"zeros"``, ``"ones"``,
        ``"random"``, ``"random:SEED"`` or a weights file; ``sets`` are ``--set`` strings,
        applied last.  Sizes left as None come from the file (or E, or 1).  An error names
        its setting in ``e.option`` (see :class:`WeightSpec`).

        >>> p = Parameters.from_spec("random:7", 4, 3, forget_bias=1.0, sets=["forget.U=zeros"])
        >>> float(p.forget.U.max()), p.input_size, p.hidden_size
        (0.0, 4, 3)
        """
        return WeightSpec(weights, layer, prefix, layout, bias, forget_bias, tuple(sets), variant).parameters(
            input_size, hidden_size)

    # -- changing one matrix ---------------------------------------------------------

    def set(self, gate: str, param: str, value: ArrayLike) -> "Parameters":
        """Replace one gate's W, U, b or P (or the projection's ``"hidden", "W_hr"``), in place; returns
        ``self`` so calls chain.

        ``value`` is an array of the right shape, a number (fills it), or a string:
        for W, U and W_hr ``identity``, ``zeros``, ``ones``, ``random[:SEED]``, a number or
        a matrix literal ``"1,0;0,1"``; for b and P a number or a comma list of H values.
        """
        cell = self.cell
        if gate == "hidden" and param == "W_hr":
            if cell.proj_size is None:
                raise OptionError("hidden.W_hr is the projection's weights, and this cell has no projection",
                                  "proj_size")
        elif gate not in GATES:
            raise ValueError(f"unknown gate {gate!r}; the gates are {', '.join(GATES)} (and hidden, for a "
                             "projection's W_hr)")
        elif param not in ("W", "U", "b", "P"):
            raise ValueError(f"unknown parameter {param!r}; each gate has W, U and b (and P, with peepholes)")
        elif gate not in cell.weighted:
            words, option = cell.weightless(gate)
            raise OptionError(f"{gate}.{param}: the {gate} gate has no weights in this cell: it is {words}", option)
        elif param == "P" and gate not in cell.peepholes:
            raise OptionError(f"{gate}.P is a peephole weight, and this cell has no peephole on the {gate} gate"
                              + (" (the candidate has none)" if gate == "candidate" else ""), "peephole")
        if isinstance(value, str):
            value = self._from_string(param, value)
        value = self._checked(gate, param, value)
        stacked = self._stacked(param)
        if not stacked.flags.writeable:  # shared with a trace: copy on write, the trace keeps its own
            stacked = stacked.copy()
            setattr(self, param, stacked)
        stacked[slice(None) if param == "W_hr" else self._rows(gate, param)] = value
        return self

    def apply(self, *sets: str) -> "Parameters":
        """Each ``"GATE.PARAM=SPEC"`` (as ``--set`` spells it) in turn, through :meth:`set`.

        >>> Parameters.identity(2, 2).apply("forget.U=zeros", "forget.b=0.5").forget.b
        array([0.5, 0.5])
        """
        params = self
        for item in sets:
            target, eq, value = item.partition("=")
            gate, dot, param = target.partition(".")
            if not eq or not dot or not value.strip():
                raise OptionError(f"{item!r} is not GATE.PARAM=SPEC, e.g. forget.U=zeros", "sets")
            try:
                params = params.set(gate.strip(), param.strip(), value)
            except OptionError as e:  # a setting the cell does not have: name the cell's option too
                raise OptionError(f"{item}: {e} (--{e.option.replace('_', '-')})", "sets") from None
            except ValueError as e:
                raise OptionError(f"{item}: {e}", "sets") from None
        return params

    def _shape(self, param: str) -> tuple:
        size = self.cell.weight_shape(param)  # "H×E", say
        return tuple(count(n, self.input_size, self.hidden_size, self.cell.proj_size) for n in size.split("×"))

    def _from_string(self, param: str, text: str) -> np.ndarray:
        shape = self._shape(param)
        word = text.strip()
        if param in ("b", "P"):
            return parse_vector(word) if "," in word else np.full(shape, parse_number(word))
        if word == "identity":
            return np.eye(*shape)
        if word in ("zeros", "ones"):
            return np.full(shape, 0.0 if word == "zeros" else 1.0)
        if word.split(":")[0] == "random":
            bound = 1.0 / np.sqrt(self.hidden_size)
            return np.random.default_rng(_seed(word)).uniform(-bound, bound, size=shape)
        if "," in word or ";" in word:
            return parse_matrix(word)
        try:
            float(word)
        except ValueError:
            raise ValueError(
                f"{text!r} is not {WEIGHT_SPECS}, a number or a matrix like 1,0;0,1"
            ) from None
        return np.full(shape, parse_number(word))  # a number, but perhaps not a finite one

    def _checked(self, gate: str, param: str, value: ArrayLike) -> np.ndarray:
        """``value`` as a float64 array of ``param``'s shape, finite, or a ValueError."""
        shape = self._shape(param)
        try:
            array = np.array(value, dtype=np.float64)  # a copy: the caller keeps theirs
        except (TypeError, ValueError):
            raise ValueError(f"{gate}.{param} must hold numbers, not {value!r:.40}") from None
        if array.ndim == 0:
            array = np.full(shape, float(array))
        if array.shape != shape:
            names = self.cell.weight_shape(param)
            raise ValueError(
                f"{gate}.{param} has shape {_shape_text(array.shape)}; "
                f"expected {names} = {_shape_text(shape)}"
            )
        bad = ~np.isfinite(array)
        if bad.any():
            where = tuple(int(k) for k in np.argwhere(bad)[0])
            raise ValueError(
                f"{gate}.{param} has {array[where]} at {list(where)}; "
                "lstmtrace needs finite numbers"
            )
        return array

    def describe(self):
        """A DataFrame of each gate's W, U and b: shape, min, mean, max, standard deviation.

        >>> Parameters.identity(3, 2).describe().head(2).round(3)
             gate param   shape  min   mean  max    std
        0  forget     W  (2, 3)  0.0  0.333  1.0  0.471
        1  forget     U  (2, 2)  0.0  0.500  1.0  0.500
        """
        import pandas as pd

        arrays = [(g, p, getattr(gate, p)) for g, gate in self.gates.items() for p in ("W", "U", "b", "P")
                  if getattr(gate, p) is not None]
        arrays += [("hidden", "W_hr", self.W_hr)] if self.W_hr is not None else []
        rows = [(g, p, _shape_text(a.shape), *(float(f(a)) for f in (np.min, np.mean, np.max, np.std)))
                for g, p, a in arrays]
        return pd.DataFrame(rows, columns=["gate", "param", "shape", "min", "mean", "max", "std"])

    # -- PyTorch's and Keras' layouts, and weights files (lstmtrace.weights) ---------

    def state_dict(self) -> Dict[str, np.ndarray]:
        """The weights in torch.nn.LSTMCell's layout; all the bias goes in bias_ih, bias_hh is zero.
        A variant's: only the gates with weights, peepholes as w_f_diag, w_i_diag, w_o_diag, and
        the projection as weight_hr (see :mod:`lstmtrace.weights`)."""
        return weights.to_state_dict(self.gates, self.W_hr)

    @classmethod
    def from_state_dict(cls, state: Mapping[str, np.ndarray], variant: Optional[Variant] = None) -> "Parameters":
        """Weights from a torch.nn.LSTMCell state_dict (as numpy arrays); each b is bias_ih + bias_hh.

        >>> state = Parameters.identity(2, 3).state_dict()
        >>> Parameters.from_state_dict(state) == Parameters.identity(2, 3)
        True
        """
        return cls._from_gates(weights.from_state_dict(state, _cell_of(variant)), variant)

    @classmethod
    def _from_gates(cls, gates: Dict[str, Gate], variant: Optional[Variant]) -> "Parameters":
        gates = dict(gates)  # a reader's gates, and "W_hr" when the file holds a projection
        W_hr = gates.pop("W_hr", None)
        return cls(gates, variant, W_hr)

    @classmethod
    def load(cls, path: Union[str, os.PathLike], layer: Optional[int] = None,
             prefix: Optional[str] = None, layout: Optional[str] = None,
             variant: Optional[Variant] = None, direction: Optional[str] = None) -> "Parameters":
        """Weights from a file, never unpickled: ``.npz`` (PyTorch or Keras keys), ``.pt``, ``.weights.h5``.

        ``layer`` picks one layer of a torch.nn.LSTM or Keras model (0 when not given),
        ``prefix`` the module holding it (e.g. ``"encoder.lstm."``), ``layout`` forces
        ``"torch"`` or ``"keras"`` for an ``.npz``.  See :mod:`lstmtrace.weights`.

        A file that says how its cell computes decides the variant, and ``variant`` must
        agree with it; for one that cannot tell, ``variant`` is taken (or the default LSTM is
        assumed).  :attr:`variant_source` says which: ``"file"``, ``"options"`` or ``"assumed"``.
        ``direction`` (``"forward"`` or ``"reverse"``) picks one half of a bidirectional layer;
        :func:`lstmtrace.load_layers` reads both, and every layer.
        """
        gates, found, source = weights.read(path, layer=layer, prefix=prefix, layout=layout, variant=variant,
                                            direction=direction)
        params = cls._from_gates(gates, found)
        params.variant_source = source
        return params

    @classmethod
    def from_keras(cls, kernel: np.ndarray, recurrent_kernel: np.ndarray,
                   bias: Optional[np.ndarray] = None, variant: Optional[Variant] = None) -> "Parameters":
        """Weights from a Keras LSTM's ``layer.get_weights()``: kernel (E×4H), recurrent_kernel (H×4H), bias.

        >>> p = Parameters.random(2, 3)
        >>> sd = p.state_dict()
        >>> Parameters.from_keras(sd["weight_ih"].T, sd["weight_hh"].T, sd["bias_ih"]) == p
        True
        """
        arrays = {"kernel": kernel, "recurrent_kernel": recurrent_kernel}
        if bias is not None:
            arrays["bias"] = bias
        return cls(weights.from_keras(arrays, "Keras weights", _cell_of(variant)), variant)

    def save(self, path: Union[str, os.PathLike]) -> None:
        """Write an ``.npz`` weights file that :meth:`load` and PyTorch both read back.

        The file appears whole or not at all (it is written beside its target, then renamed).
        """
        from lstmtrace.atomic import atomic_open

        with atomic_open(path, "wb") as f:
            np.savez(f, **self.state_dict())


def _cell_of(variant: Optional[Variant]):
    return (Variant() if variant is None else variant).check().cell


def _check_sizes(input_size, hidden_size):
    for name, n in (("input_size", input_size), ("hidden_size", hidden_size)):
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"{name} must be a whole number ≥ 1, not {n!r}")
    return int(input_size), int(hidden_size)


def _seed(spec: str) -> int:
    """The seed of ``random`` (0) or ``random:SEED``."""
    _, colon, seed = spec.partition(":")
    if not colon:
        return 0
    if not seed.isdigit():
        raise ValueError(f"the seed in {spec!r} must be a whole number ≥ 0")
    return int(seed)


def _shape_text(shape: tuple) -> str:
    return str(tuple(int(n) for n in shape))


# -- the weight recipe, as the command line spells it ------------------------------------

WEIGHT_WORDS = ("identity", "zeros", "ones")
"""The weight choices that need no file (besides ``random`` and ``random:SEED``)."""

_DESCRIBED = {"identity": "identity (W = np.eye(H, E), U = np.eye(H))", "zeros": "all zeros", "ones": "all ones"}


def is_weight_word(weights: str) -> bool:
    """Whether ``weights`` names made-up weights (identity, zeros, ones, random[:SEED]) rather than a file.

    >>> is_weight_word("random:3"), is_weight_word("model.pt")
    (True, False)
    """
    return weights in WEIGHT_WORDS or weights.split(":")[0] == "random"


@dataclass(frozen=True)
class WeightSpec:
    """Where the weights come from (``weights``: a word or a file) and the changes made to them, in order.

    >>> spec = WeightSpec("identity", forget_bias=1.0, sets=("forget.U=zeros",))
    >>> spec.parameters(2, 2).forget.b
    array([1., 1.])
    >>> spec.describe()
    'Weights: identity (W = np.eye(H, E), U = np.eye(H)), zero biases, forget bias +1, then forget.U=zeros.'
    """

    weights: str = "identity"
    layer: Union[int, str, None] = None  # which layer of a multi-layer model's file, or "all"
    prefix: Optional[str] = None  # the module holding the LSTM in a state_dict
    layout: Optional[str] = None  # "torch" or "keras": how to read an .npz's keys
    bias: Optional[float] = None  # every gate's b
    forget_bias: Optional[float] = None  # added to the forget gate's b
    sets: Tuple[str, ...] = ()  # "GATE.PARAM=SPEC", applied last
    variant: Optional[Variant] = None  # which LSTM (lstmtrace.Variant; None: the default)
    direction: Optional[str] = None  # forward, reverse or both (a bidirectional layer's halves)

    def parameters(self, input_size: Optional[int] = None, hidden_size: Optional[int] = None) -> Parameters:
        """The Parameters this recipe makes; sizes that are None are taken from the file (or E, or 1)."""
        E, H = input_size, hidden_size
        if is_weight_word(self.weights):
            for name in ("layer", "prefix", "layout"):
                if getattr(self, name) is not None:
                    raise OptionError(f"reads a weights file, and --weights is {self.weights!r}", name)
        if self.layer == "all" or self.direction == "both":
            option = "layer" if self.layer == "all" else "direction"
            raise OptionError(f"{self.layer if option == 'layer' else 'both'}: several cells are traced together by "
                              "`lstmtrace run`; here one cell is: give --layer K (and --direction forward or "
                              "reverse)" if not is_weight_word(self.weights) else "both: a made-up layer "
                              f"({self.weights}) runs one way; both halves of a bidirectional layer come from a "
                              "weights file", option)
        if is_weight_word(self.weights):
            try:
                params = Parameters.from_word(self.weights, E or 1, H or E or 1, variant=self.variant)
            except ValueError as e:
                raise OptionError(str(e), "weights") from None
        elif os.path.isfile(self.weights):
            params = self._load()
            if E is not None and params.input_size != E:
                raise OptionError(f"gives input size {E}, but the weights in {self.weights} have input size "
                                  f"E = {params.input_size}", "input_size")
            if H is not None and params.hidden_size != H:
                raise OptionError(f"{self.weights} has hidden size H = {params.hidden_size}, but hidden size "
                                  f"{H} was asked for", "weights")
        else:
            raise OptionError(f"{self.weights!r} is neither {WEIGHT_SPECS} nor a file that exists", "weights")
        if self.bias is not None:
            for gate in params.gates:
                params = params.set(gate, "b", self.bias)
        if self.forget_bias is not None:
            params = params.set("forget", "b", params.forget.b + self.forget_bias)
        return params.apply(*self.sets)

    def _load(self) -> Parameters:
        try:  # (the OptionErrors of a file that does not fit the variant name their option)
            return Parameters.load(self.weights, layer=self.layer, prefix=self.prefix, layout=self.layout,
                                   variant=self.variant, direction=self.direction)
        except OptionError:
            raise
        except (OSError, ValueError) as e:
            raise OptionError(" ".join(str(e).split()), "weights") from None

    def layers(self, input_size: Optional[int] = None, hidden_size: Optional[int] = None) -> list:
        """The cells this recipe makes, as :func:`lstmtrace.run_stack` takes them: one layer of one cell
        (as :meth:`parameters`, running ``direction``), both halves of a bidirectional layer, or with
        ``layer="all"`` every layer of the file.  Changes (bias, forget_bias, sets) apply to one cell only.
        """
        from lstmtrace.stack import Pass, load_layers

        if is_weight_word(self.weights) or not os.path.isfile(self.weights):
            return [[Pass(self.parameters(input_size, hidden_size), self.direction or "forward")]]
        if self.layer == "all" and self.direction in ("forward", "reverse"):
            raise OptionError(f"{self.direction}: --layer all runs every cell, since each layer reads both halves of a "
                              "bidirectional layer before it; leave --direction out (or give both)", "direction")
        try:
            layers = load_layers(self.weights, None if self.layer == "all" else self.layer or 0, self.direction,
                                 self.prefix, self.layout, self.variant)
        except OptionError:
            raise
        except (OSError, ValueError) as e:
            raise OptionError(" ".join(str(e).split()), "weights") from None
        one_way = [k for k, layer in enumerate(layers) if len(layer) < 2]
        if self.layer == "all" and self.direction == "both" and one_way:
            raise OptionError(f"both: layer {one_way[0]} of {self.weights} runs {layers[one_way[0]][0].direction} "
                              "only (it is not bidirectional)", "direction")
        cells = [cell for layer in layers for cell in layer]
        if len(cells) == 1:  # one cell: sizes checked, and the changes made, as parameters() does
            one = dataclasses.replace(self, layer=None if self.layer == "all" else self.layer,
                                      direction=cells[0].direction)
            return [[cells[0]._replace(params=one.parameters(input_size, hidden_size))]]
        changed = [name for name in ("bias", "forget_bias", "sets") if getattr(self, name) not in (None, ())]
        if changed:
            raise OptionError(f"changes one cell, and {len(cells)} are traced together: trace the cell alone with "
                              "--layer K --direction forward|reverse", changed[0])
        if input_size is not None and cells[0].params.input_size != input_size:
            raise OptionError(f"gives input size {input_size}, but layer {0 if self.layer == 'all' else self.layer or 0}"
                              f" in {self.weights} has input size E = {cells[0].params.input_size}", "input_size")
        if hidden_size is not None:
            raise OptionError("sets one cell's hidden size, and each cell of a stack has its own (from the file)",
                              "hidden_size")
        return layers

    def describe(self) -> str:
        """One sentence saying which weights these are, to open a trace's text."""
        if is_weight_word(self.weights):
            text = _DESCRIBED.get(self.weights) or f"{self.weights} (uniform in ±1/√H)"
            cell = _cell_of(self.variant)
            extra = {"identity": [("P = 1", cell.peepholes), ("W_hr = np.eye(P, H)", cell.proj_size)]}.get(
                self.weights, [])
            if extra and any(present for _, present in extra):
                text = text[:-1] + "".join(f", {words}" for words, present in extra if present) + ")"
        else:
            where = [f"{k} {getattr(self, k)}" for k in ("layer", "direction", "prefix") if getattr(self, k) is not None]
            where = ["every layer" if w == "layer all" else w for w in where]
            text = f"from {os.path.basename(self.weights)}" + (f" ({', '.join(where)})" if where else "")
        if self.bias is not None:
            text += f", every bias {self.bias:g}"
        elif is_weight_word(self.weights):
            text += ", zero biases"
        if self.forget_bias is not None:
            text += f", forget bias {self.forget_bias:+g}"
        if self.sets:
            text += ", then " + ", ".join(self.sets)
        return f"Weights: {text}."
