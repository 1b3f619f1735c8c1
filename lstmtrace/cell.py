"""One LSTM time step, written as its equations, keeping every intermediate.

The equations are PyTorch's ``torch.nn.LSTMCell`` [1]_ (and colah's
"Understanding LSTM Networks" [2]_, which draws them)::

    f  = σ(W_f·x + U_f·h_prev + b_f)        forget gate
    i  = σ(W_i·x + U_i·h_prev + b_i)        input gate
    c̃  = tanh(W_g·x + U_g·h_prev + b_g)     candidate (PyTorch's g)
    o  = σ(W_o·x + U_o·h_prev + b_o)        output gate
    c  = f⊙c_prev + i⊙c̃
    h  = o⊙tanh(c)

:data:`LSTM` says the same as data: the gates with their activations, what each
gate computes, each gate's weights, the stages after the gates and how many
numbers each quantity holds.  Everything else (the trace's rows, the backward
pass, the text, the tables and the pictures) is laid out from it, and
:class:`Values` names the numbers of one step so that :func:`step_values` reads
like the equations above.

.. [1] https://pytorch.org/docs/stable/generated/torch.nn.LSTMCell.html
.. [2] https://colah.github.io/posts/2015-08-Understanding-LSTMs/
"""
import functools
import math
import re
from collections import namedtuple
from dataclasses import dataclass
from typing import Callable, Dict, NamedTuple, Optional, Tuple

import numpy as np

__all__ = ["Activation", "Cell", "Gate", "GateSpec", "GATES", "LSTM", "Layout", "PIPELINE", "SIGMOID", "TANH",
           "Values", "forward", "layout", "sigmoid", "step_into", "step_values", "unpack"]


# -- the activations -------------------------------------------------------------------

def sigmoid(z: np.ndarray) -> np.ndarray:
    """σ(z) = 1 / (1 + e^−z), computed without overflow for any z.

    >>> sigmoid(np.array([-1000.0, 0.0, 1000.0]))
    array([0. , 0.5, 1. ])
    """
    e = np.exp(-np.abs(z))  # in (0, 1]: never overflows, at worst underflows to 0
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def sigmoid_backward(dy: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """dL/dz from dL/dy, where y = σ(z): σ′ = σ(1 − σ)."""
    return dy * y * (1.0 - y)


def tanh_backward(dy: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """dL/dz from dL/dy, where y = tanh(z): tanh′ = 1 − tanh²."""
    return dy * (1.0 - y ** 2)


class Activation(NamedTuple):
    """A squashing function, and its derivative (from its output y, or its input z at a kink).

    >>> SIGMOID.forward(np.array([0.0])), SIGMOID.backward(np.array([1.0]), np.array([0.5]), np.array([0.0]))
    (array([0.5]), array([0.25]))
    """

    name: str  # as the equations write it
    forward: Callable[[np.ndarray], np.ndarray]  # y = forward(z)
    backward: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]  # dL/dz = backward(dL/dy, y, z)
    derivative: str  # dy/dz, as the text writes it from y
    low: float  # y stays between low and high
    high: float
    key: str = ""  # how a Variant spells it: "sigmoid", "hard_sigmoid:0.2,0.5", …


SIGMOID = Activation("σ", sigmoid, sigmoid_backward, "{y}(1 - {y})", 0.0, 1.0, "sigmoid")
TANH = Activation("tanh", np.tanh, tanh_backward, "(1 - {y}²)", -1.0, 1.0, "tanh")
# At a kink, the derivative PyTorch's autograd uses: relu′(0) = 0, hardsigmoid′ = 0 at its corners.
RELU = Activation("relu", lambda z: np.maximum(z, 0.0), lambda dy, y, z: dy * (z > 0), "[{y} > 0]",
                  0.0, np.inf, "relu")
LINEAR = Activation("linear", lambda z: z + 0.0, lambda dy, y, z: dy * 1.0, "1", -np.inf, np.inf, "linear")
SOFTSIGN = Activation("softsign", lambda z: z / (1.0 + np.abs(z)), lambda dy, y, z: dy * (1.0 - np.abs(y)) ** 2,
                      "(1 - |{y}|)²", -1.0, 1.0, "softsign")
# Keras 3 (and PyTorch): relu6(z + 3) / 6, written so; its derivative is 1/6 strictly inside (−3, 3)
HARD_SIGMOID = Activation("hard_sigmoid", lambda z: np.clip(z + 3.0, 0.0, 6.0) / 6.0,
                          lambda dy, y, z: dy * ((z > -3.0) & (z < 3.0)) / 6.0, "[0 < {y} < 1]/6", 0.0, 1.0,
                          "hard_sigmoid")


def hard_sigmoid(alpha: float, beta: float) -> Activation:
    """clip(α·z + β, 0, 1), as ONNX's HardSigmoid and Keras 2 (α = 0.2, β = 0.5) compute it.

    >>> hard_sigmoid(0.2, 0.5).forward(np.array([-5.0, 0.0, 1.0]))
    array([0. , 0.5, 0.7])
    """
    return Activation(f"hard_sigmoid[{alpha:g}, {beta:g}]", lambda z: np.clip(alpha * z + beta, 0.0, 1.0),
                      lambda dy, y, z: dy * alpha * ((alpha * z + beta > 0.0) & (alpha * z + beta < 1.0)),
                      f"{alpha:g}·[0 < {{y}} < 1]", 0.0, 1.0, f"hard_sigmoid:{alpha!r},{beta!r}")


ACTIVATIONS = {a.key: a for a in (SIGMOID, TANH, RELU, LINEAR, SOFTSIGN, HARD_SIGMOID)}
"""The activations a Variant can name; ``hard_sigmoid:ALPHA,BETA`` makes one more (:func:`activation`)."""


def activation(key: str) -> Activation:
    """The activation ``key`` names: sigmoid, tanh, relu, linear, softsign, hard_sigmoid (Keras 3's
    relu6(z + 3)/6) or hard_sigmoid:ALPHA,BETA (clip(ALPHA·z + BETA, 0, 1)).

    >>> activation("hard_sigmoid:0.2,0.5").name
    'hard_sigmoid[0.2, 0.5]'
    """
    key = key.strip()
    if key in ACTIVATIONS:
        return ACTIVATIONS[key]
    name, colon, numbers = key.partition(":")
    if name == "hard_sigmoid" and colon:
        try:
            alpha, beta = (float(v) for v in numbers.split(","))
        except ValueError:
            raise ValueError(f"{key!r}: hard_sigmoid:ALPHA,BETA takes two numbers, e.g. hard_sigmoid:0.2,0.5"
                             ) from None
        if not (np.isfinite(alpha) and np.isfinite(beta)) or alpha <= 0:
            raise ValueError(f"{key!r}: ALPHA must be a finite number > 0 and BETA finite")
        return hard_sigmoid(alpha, beta)
    raise ValueError(f"unknown activation {key!r}; the activations are {', '.join(ACTIVATIONS)} and "
                     "hard_sigmoid:ALPHA,BETA")


# -- the cell, as data -----------------------------------------------------------------

class GateSpec(NamedTuple):
    """One gate of a cell: its name in the trace, its symbol and weight index, its activation, what it
    computes (``quantities``) from which weights (``weights``: (name, shape) pairs), and how.

    ``rule`` is ``"computed"`` (act = activation(preact)), ``"one"`` (the gate is taken away: act = 1)
    or ``"complement"`` (coupled: act = 1 − the act of the gate ``complements`` names).  ``peeps`` names what its peephole
    weight P multiplies (``"c_prev"``, or ``"c"`` for the output gate, which is then computed after
    the cell state), or is empty.
    """

    name: str  # as the trace names it
    symbol: str  # its activation in the equations
    index: str  # the subscript of its W, U and b (PyTorch's letter)
    activation: Activation
    title: str  # its heading in the text
    quantities: Tuple[str, ...] = ("Wx", "Uh", "bias", "preact", "act")
    weights: Tuple[Tuple[str, str], ...] = (("W", "H×E"), ("U", "H×H"), ("b", "H"))
    rule: str = "computed"
    peeps: str = ""
    complements: str = ""  # with rule "complement": the gate whose act this one is 1 minus


@dataclass(frozen=True, eq=False)  # a cell is itself: hashed by identity, cheaply, for layout's cache
class Cell:
    """What a step is given, its gates, and the stages after them; sizes in E (input), H (hidden) and
    P (the units of h: H, or the projection's size)."""

    given: Tuple[str, ...]  # the step's inputs
    gates: Tuple[GateSpec, ...]  # in the order params.W stacks the rows of those with weights
    after: Tuple[Tuple[str, Tuple[str, ...]], ...]  # (stage, quantities) after the gates
    sizes: Tuple[Tuple[str, str], ...]  # the quantities that do not hold H numbers, and their sizes
    cell_activation: Activation = TANH  # what h = o⊙act(c) applies to c
    clip: Optional[float] = None  # each gate's preact is bounded to [−clip, clip] (as "clipped")
    proj_size: Optional[int] = None  # h = W_hr·(o⊙act(c)) has this many units
    stage_weights: Tuple[Tuple[str, str, str], ...] = ()  # (stage, weight, shape): the projection's W_hr

    @property
    def pipeline(self) -> Tuple[Tuple[str, Tuple[str, ...]], ...]:
        """Every (gate or stage, quantities) of a step, in the order they are computed and traced."""
        early = tuple((g.name, g.quantities) for g in self.gates if g.peeps != "c")
        late = tuple((g.name, g.quantities) for g in self.gates if g.peeps == "c")
        return (("given", self.given), *early, self.after[0], *late, *self.after[1:])

    @property
    def weighted(self) -> Tuple[str, ...]:
        """The gates that have weights (W, U, b), in the order params.W stacks them."""
        return tuple(g.name for g in self.gates if g.weights)

    @property
    def peepholes(self) -> Tuple[str, ...]:
        """The gates with a peephole weight P, in the order params.P stacks them."""
        return tuple(g.name for g in self.gates if g.peeps)

    def weight_shape(self, name: str) -> str:
        """The shape of a weight, as its letters: ``"H×E"`` for W, ``"H×P"`` for U with a projection, …"""
        for g in self.gates:
            for weight, shape in g.weights:
                if weight == name:
                    return shape
        for _, weight, shape in self.stage_weights:
            if weight == name:
                return shape
        raise KeyError(f"no weight {name!r} in this cell")

    def gate(self, name: str) -> GateSpec:
        """The gate called ``name``; a KeyError for a stage that is no gate."""
        for g in self.gates:
            if g.name == name:
                return g
        raise KeyError(f"{name!r} is not a gate of this cell")

    def weightless(self, name: str) -> Tuple[str, str]:
        """Why gate ``name`` has no weights, in a few words, and the setting that takes them away.

        >>> from lstmtrace import Variant
        >>> Variant(coupled=True).cell.weightless("forget")
        ('coupled, f = 1 − i', 'coupled')
        """
        spec = self.gate(name)
        if spec.rule == "complement":
            return f"coupled, {spec.symbol} = 1 − {self.gate(spec.complements).symbol}", "coupled"
        return f"taken away, {spec.symbol} = 1", "without"


LSTM = Cell(
    given=("x", "h_prev", "c_prev"),
    gates=(
        GateSpec("forget", "f", "f", SIGMOID, "Forget gate"),
        GateSpec("input", "i", "i", SIGMOID, "Input gate"),
        GateSpec("candidate", "c̃", "g", TANH, "Candidate"),
        GateSpec("output", "o", "o", SIGMOID, "Output gate"),
    ),
    after=(("cell", ("forget*c_prev", "input*candidate", "c")),
           ("hidden", ("tanh(c)", "h"))),
    sizes=(("x", "E"),),
)
"""The LSTM cell of the module docstring's equations (a :class:`lstmtrace.Variant` makes others)."""


def cell_activation_name(activation: Activation) -> str:
    """The quantity that holds act(c): ``tanh(c)``, ``relu(c)``, ``hard_sigmoid(c)``, …"""
    return f"{activation.key.split(':')[0]}(c)"


GATES = tuple(g.name for g in LSTM.gates)
"""The four gates, in pipeline order."""

PIPELINE = LSTM.pipeline
"""Every (gate, quantities) of a step, in the order they are computed and traced."""


def count(size: str, input_size: int, hidden_size: int, proj_size: Optional[int] = None) -> int:
    """How many numbers a size such as ``"H×E"`` stands for (P: ``proj_size``, or H without one).

    >>> count("H×E", input_size=3, hidden_size=2)
    6
    """
    letters = {"E": input_size, "H": hidden_size, "P": hidden_size if proj_size is None else proj_size}
    return math.prod(letters[letter] for letter in size.split("×"))


class _Weights(NamedTuple):
    W: np.ndarray
    U: np.ndarray
    b: np.ndarray


class Gate(_Weights):
    """One gate's weights: W (H×E) multiplies x, U (H×H) multiplies h_prev, b (H) is added; ``P`` (H),
    a peephole cell's only (None otherwise), multiplies the cell state elementwise.

    It unpacks as ``W, U, b = gate``, as it always has; P is an attribute beside them.
    A gate taken from :class:`Parameters` holds views of its stacked arrays: change
    them with :meth:`Parameters.set`, or element by element in place (until a trace
    is made from them: see :class:`Parameters`).

    >>> Gate(np.eye(1), np.eye(1), np.zeros(1), P=np.ones(1)).P
    array([1.])
    """

    def __new__(cls, W, U, b, P=None):
        gate = super().__new__(cls, W, U, b)
        gate.P = P  # (a subclass of a named tuple without __slots__ has room for it)
        return gate

    def __repr__(self) -> str:
        text = super().__repr__()
        return text if self.P is None else f"{text[:-1]}, P={self.P!r})"


# -- where each number of a step sits in its row ------------------------------------------

def attribute(quantity: str) -> str:
    """A quantity's name as a Python attribute: ``forget*c_prev`` is ``forget_c_prev``, ``tanh(c)`` ``tanh_c``."""
    return re.sub(r"\W+", "_", quantity).strip("_")


class _Group(tuple):
    """The views of one gate's or stage's quantities: by attribute, or by the trace's name."""

    __slots__ = ()

    def __getitem__(self, key):
        return getattr(self, attribute(key)) if isinstance(key, str) else tuple.__getitem__(self, key)


@functools.lru_cache(maxsize=None)
def _group(name: str, quantities: Tuple[str, ...]) -> type:
    """A named tuple class for one group's views: ``v.cell.c``, ``v.cell["forget*c_prev"]``."""
    return type(name, (namedtuple(name, [attribute(q) for q in quantities]), _Group), {"__slots__": ()})


class Layout(NamedTuple):
    """Where each (gate, quantity) sits in the row of one step's values."""

    stages: Tuple[Tuple[str, str], ...]  # in row order
    sizes: np.ndarray  # how many numbers each stage holds
    slices: Dict[Tuple[str, str], slice]  # where each stage sits
    width: int  # numbers in the row
    groups: Dict[str, Tuple[type, Tuple[slice, ...]]]  # each gate or stage: its views' class, their slices
    stacked: Optional[Tuple[type, Tuple[Tuple[slice, int, Tuple[slice, ...]], ...]]]  # the gates together
    eager: Tuple[str, ...]  # the groups that Values makes at once: given and the stages after the gates
    gathered: Tuple[type, Tuple[Tuple[int, Tuple[Tuple[int, slice], ...]], ...]]  # when not stacked: see Values

    def size(self, gate: str, quantity: str) -> int:
        """How many numbers one (gate, quantity) holds."""
        s = self.slices[gate, quantity]
        return s.stop - s.start


@functools.lru_cache(maxsize=32)
def layout(input_size: int, hidden_size: int, part: str = "forward", cell: Cell = LSTM) -> Layout:
    """The row of one step: every quantity of the pipeline (``"forward"``), or, for ``"grad"``,
    dL/d each of them and then dL/d each gate's weights (dL/dW flattened row by row), then the
    stages' (the projection's W_hr).

    >>> layout(input_size=3, hidden_size=2).slices["forget", "preact"]
    slice(13, 15, None)
    """
    if part not in ("forward", "grad"):
        raise ValueError(f"part must be 'forward' or 'grad', not {part!r}")
    stages = [(g, q, dict(cell.sizes).get(q, "H")) for g, qs in cell.pipeline for q in qs]
    if part == "grad":
        stages += [(g.name, w, shape) for g in cell.gates for w, shape in g.weights]
        stages += list(cell.stage_weights)
    sizes = np.array([count(size, input_size, hidden_size, cell.proj_size) for _, _, size in stages])
    sizes.setflags(write=False)
    ends = np.cumsum(sizes)
    slices = {(g, q): slice(int(end - n), int(end)) for (g, q, _), n, end in zip(stages, sizes, ends)}
    members: Dict[str, list] = {}
    for g, q in slices:
        members.setdefault(g, []).append(q)
    groups = {g: (_group(g, tuple(qs)), tuple(slices[g, q] for q in qs)) for g, qs in members.items()}
    names = [g.name for g in cell.gates]
    union = tuple(dict.fromkeys(q for g in names for q in members[g]))
    # Every gate's quantities (and weights) in blocks spaced evenly from one gate to the next (as in the
    # default LSTM): then a run of blocks is a gates × stride matrix, and a quantity of every gate is
    # some of its columns.  Otherwise (a variant whose gates differ) Values gathers them into matrices.
    stacked = None
    if all(members[g] == members[names[0]] for g in names):
        first, second = names[:2]
        runs: Dict[Tuple[int, int], list] = {}
        for q in members[first]:
            s, stride = slices[first, q], slices[second, q].start - slices[first, q].start
            start = next((a for a, b in runs if b == stride and a <= s.start < a + stride), s.start)
            runs.setdefault((start, stride), []).append((q, slice(s.start - start, s.stop - start)))
        even = all(slices[g, q].start == slices[first, q].start + k * (slices[second, q].start
                                                                      - slices[first, q].start)
                   for q in members[first] for k, g in enumerate(names))
        if even:
            G = len(cell.gates)
            stacked = (_group("gates", union), tuple((slice(a, a + G * b), b, tuple((slice(None), c) for _, c in qs))
                                                     for (a, b), qs in runs.items()))
    width = {q: next(slices[g, q].stop - slices[g, q].start for g in names if (g, q) in slices) for q in union}
    gathered = (_group("gates", union), tuple(
        (width[q], tuple((k, slices[g, q]) for k, g in enumerate(names) if (g, q) in slices)) for q in union))
    eager = ("given", *(stage for stage, _ in cell.after))
    return Layout(tuple((g, q) for g, q, _ in stages), sizes, slices, int(ends[-1]), groups, stacked, eager,
                  gathered)


class Values:
    """Named views of one step's row of values: write and read it by the equations' names.

    ``v.given.x``, ``v.forget.preact`` and ``v.cell.forget_c_prev`` (also
    ``v["cell", "forget*c_prev"]``) are views of the row; ``v.gates.preact`` is
    that quantity of every gate at once, gates × H, one row per gate in the order
    of the cell's gates.  A gradient row (``part="grad"``) has the same names,
    each holding dL/d that quantity, and each gate's W, U and b.

    In the default LSTM every ``v.gates`` matrix is a view of the row.  A variant
    whose gates compute different quantities (peepholes, a gate taken away) has
    them gathered into matrices instead, zero where a gate lacks the quantity:
    after writing them, :meth:`flush` puts them into the row.

    >>> v = Values(np.arange(8.0 + 27 * 2), input_size=8, hidden_size=2)
    >>> v.given.c_prev, v.gates.bias.shape, v["hidden", "h"]
    (array([10., 11.]), (4, 2), array([60., 61.]))
    """

    def __init__(self, row: np.ndarray, input_size: int, hidden_size: int, part: str = "forward",
                 cell: Cell = LSTM):
        self.row, self.layout = row, layout(input_size, hidden_size, part, cell)  # (v.cell is the stage)
        G = len(cell.gates)
        if self.layout.stacked is not None:
            group, blocks = self.layout.stacked
            views = []
            for block, stride, columns in blocks:
                views += map(row[block].reshape(-1, stride).__getitem__, columns)
            self.gates = tuple.__new__(group, views)
        else:
            group, quantities = self.layout.gathered
            matrices = []
            for width, where in quantities:
                matrix = np.zeros((G, width))
                for k, s in where:
                    matrix[k] = row[s]
                matrices.append(matrix)
            self.gates = tuple.__new__(group, matrices)
        for name in self.layout.eager:  # given and the stages after the gates; a gate's on first use
            group, where = self.layout.groups[name]
            setattr(self, name, tuple.__new__(group, map(row.__getitem__, where)))

    def gather(self) -> None:
        """Read the row into the gathered ``v.gates`` matrices again, after new numbers were copied into
        it (nothing to do when they are views of it): :meth:`flush` the other way."""
        if self.layout.stacked is None:
            for matrix, (_, where) in zip(self.gates, self.layout.gathered[1]):
                for k, s in where:
                    matrix[k] = self.row[s]

    def flush(self) -> None:
        """Put the gathered ``v.gates`` matrices into the row (nothing to do when they are views of it)."""
        if self.layout.stacked is None:
            for matrix, (_, where) in zip(self.gates, self.layout.gathered[1]):
                for k, s in where:
                    self.row[s] = matrix[k]

    def __getattr__(self, name: str):  # only called for a gate not looked at yet
        if name not in self.layout.groups:
            raise AttributeError(f"no gate or stage {name!r} in a step's values")
        group, where = self.layout.groups[name]
        views = self.__dict__[name] = group._make(map(self.row.__getitem__, where))
        return views

    def __getitem__(self, key: Tuple[str, str]) -> np.ndarray:
        return self.row[self.layout.slices[key]]


# -- one step ------------------------------------------------------------------------------

_ALL = slice(None)
"""Every gate's row (the one slice object: ``rows is _ALL`` says so without comparing)."""


def _rows(ks, G: int):
    """Gate rows ``ks`` as an index of a gates × H matrix: a slice (a view) when they are one run."""
    ks = list(ks)
    if ks and ks == list(range(ks[0], ks[-1] + 1)):
        return _ALL if len(ks) == G else slice(ks[0], ks[-1] + 1)
    return ks


class _Phase(NamedTuple):
    """The gates a step computes before the cell state (or, peeping at it, after)."""

    rows: object  # their rows of the gates × H matrices
    peep: Optional[Tuple[object, object]]  # (their rows, params.P's rows) of those with peepholes
    activations: Tuple[Tuple[Activation, object], ...]  # (activation, rows) in the order to apply them


class _Plan(NamedTuple):
    weighted: object  # the rows that params.W, U and b stack
    phases: Tuple[_Phase, ...]  # before the cell state, and after it (empty when no gate peeps at c)
    ones: object  # the gates taken away: act = 1
    complement: Optional[Tuple[int, int]]  # coupled: (forget, input) rows: f = 1 − i


@functools.lru_cache(maxsize=None)
def _plan(cell: Cell) -> _Plan:
    """How :func:`step_into` computes ``cell``'s gates: which rows, in which phase, with what."""
    G, names = len(cell.gates), [g.name for g in cell.gates]
    peepholes = cell.peepholes
    phases = []
    for late in (False, True):
        ks = [k for k, g in enumerate(cell.gates) if g.rule == "computed" and (g.peeps == "c") == late]
        if not ks:
            continue
        peeping = [k for k in ks if cell.gates[k].peeps]
        peep = (_rows(peeping, G), _rows([peepholes.index(names[k]) for k in peeping], len(peepholes))
                ) if peeping else None
        uses = {k: cell.gates[k].activation for k in ks}
        if len(ks) == G:  # the commonest over every gate, then each other over its own gates' rows
            common = max(uses.values(), key=list(uses.values()).count)  # (σ over all four, then tanh)
            order = [(common, _ALL)] + [(a, _rows([k for k in ks if uses[k] is a], G))
                                              for a in dict.fromkeys(uses.values()) if a is not common]
        else:
            order = [(a, _rows([k for k in ks if uses[k] is a], G)) for a in dict.fromkeys(uses.values())]
        phases.append(_Phase(_rows(ks, G), peep, tuple(order)))
    ones = [k for k, g in enumerate(cell.gates) if g.rule == "one"]
    complement = next(((k, names.index(g.complements)) for k, g in enumerate(cell.gates) if g.rule == "complement"),
                      None)
    return _Plan(_rows([k for k, g in enumerate(cell.gates) if g.weights], G), tuple(phases),
                 _rows(ones, G) if ones else None, complement)


def _gates(phase: _Phase, gates, params, seen: np.ndarray, clip: Optional[float]) -> None:
    """preact = W·x + U·h_prev + b (+ P⊙``seen``), clipped, and act, of the gates of one phase."""
    rows = phase.rows
    if rows is _ALL:  # every gate: the matrices themselves (the default LSTM's one phase)
        np.add(gates.Wx + gates.Uh, gates.bias, out=gates.preact)
    elif isinstance(rows, slice):  # a view of the matrices: written in place
        np.add(gates.Wx[rows] + gates.Uh[rows], gates.bias[rows], out=gates.preact[rows])
    else:
        gates.preact[rows] = gates.Wx[rows] + gates.Uh[rows] + gates.bias[rows]
    if phase.peep is not None:  # a peephole: P⊙c_prev for f and i, P⊙c for o
        k, j = phase.peep
        gates.Pc[k] = params.P.reshape(-1, params.hidden_size)[j] * seen
        gates.preact[k] += gates.Pc[k]
    source = gates.preact
    if clip is not None:  # ONNX's clip: each preact bounded to [−clip, clip] before its activation
        gates.clipped[rows] = np.clip(gates.preact[rows], -clip, clip)
        source = gates.clipped
    for activation, where in phase.activations:  # σ for f, i and o; tanh for c̃ (or the variant's)
        gates.act[where] = activation.forward(source[where])


def step_into(v: "Values", params, x: np.ndarray, h_prev: np.ndarray, c_prev: np.ndarray) -> None:
    """One step, written into the named views ``v`` of a row: the equations of the module docstring,
    with the changes of ``params.cell`` (:mod:`lstmtrace.variant`).

    A sequence reuses one ``v`` for every step (naming a row's numbers costs more than
    copying them); numpy's overflow warnings are the caller's to silence.
    """
    H, spec = params.hidden_size, params.cell
    plan = _plan(spec)
    given, gates, cell, hidden = v.given, v.gates, v.cell, v.hidden  # each of gates' quantities is (4, H)
    given.x[:], given.h_prev[:], given.c_prev[:] = x, h_prev, c_prev
    w = plan.weighted
    gates.Wx[w] = (params.W @ x).reshape(-1, H)  # W·x of every gate in one product
    gates.Uh[w] = (params.U @ h_prev).reshape(-1, H)
    gates.bias[w] = params.b.reshape(-1, H)
    _gates(plan.phases[0], gates, params, given.c_prev, spec.clip)
    if plan.ones is not None:  # a gate taken away is the constant 1
        gates.act[plan.ones] = 1.0
    if plan.complement is not None:  # coupled: f = 1 − i
        forget, input_ = plan.complement
        np.subtract(1.0, gates.act[input_], out=gates.act[forget])
    f, i, g, _ = gates.act
    np.multiply(f, given.c_prev, out=cell.forget_c_prev)  # c = f⊙c_prev + i⊙c̃
    np.multiply(i, g, out=cell.input_candidate)
    np.add(cell.forget_c_prev, cell.input_candidate, out=cell.c)
    if len(plan.phases) > 1:  # the output gate peeps at the new c
        _gates(plan.phases[1], gates, params, cell.c, spec.clip)
    o = gates.act[3]
    act_c, h = hidden[0], hidden[-1]  # tanh(c) (or the variant's cell activation), and h
    act_c[:] = spec.cell_activation.forward(cell.c)  # h = o⊙tanh(c)
    if spec.proj_size is None:
        np.multiply(o, act_c, out=h)
    else:  # h = W_hr·(o⊙tanh(c))
        np.multiply(o, act_c, out=hidden[1])
        np.matmul(params.W_hr, hidden[1], out=h)
    v.flush()


def step_values(params, x: np.ndarray, h_prev: np.ndarray, c_prev: np.ndarray,
                out: Optional[np.ndarray] = None) -> np.ndarray:
    """One step's every value as one vector in PIPELINE order: E + 27H numbers for the default LSTM.

    This is the trace's value column for the step, written in place into ``out``
    when given (a row of a preallocated T × (E + 27H) array, say).  The four gates
    are computed together, with params.W (4H×E) and params.U (4H×H) stacked in
    the order forget, input, candidate, output.  Overflow is not warned about
    here: the caller checks every value and names the first that is not finite.

    >>> from lstmtrace.params import Parameters
    >>> step_values(Parameters.zeros(1, 1), np.ones(1), np.zeros(1), np.ones(1))[-3:]
    array([0.5       , 0.46211716, 0.23105858])
    """
    E, H = params.input_size, params.hidden_size
    out = np.empty(layout(E, H, cell=params.cell).width) if out is None else out
    with np.errstate(over="ignore", invalid="ignore"):
        step_into(Values(out, E, H, cell=params.cell), params, x, h_prev, c_prev)
    return out


def forward(params, x: np.ndarray, h_prev: np.ndarray, c_prev: np.ndarray) -> dict:
    """One step; returns ``{(gate, quantity): vector}`` for every entry of the cell's pipeline, in order.

    >>> from lstmtrace.params import Parameters
    >>> v = forward(Parameters.zeros(2, 2), np.ones(2), np.zeros(2), np.ones(2))
    >>> v["forget", "act"], v["cell", "c"]
    (array([0.5, 0.5]), array([0.5, 0.5]))
    """
    values = step_values(params, x, h_prev, c_prev)
    return unpack(values, params.input_size, params.hidden_size, params.cell)


def unpack(values: np.ndarray, input_size: int, hidden_size: int, cell: Cell = LSTM) -> dict:
    """``{(gate, quantity): view}`` of one step's values, in pipeline order."""
    return {stage: values[s] for stage, s in layout(input_size, hidden_size, cell=cell).slices.items()}
