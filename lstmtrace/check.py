"""Checking numbers a learner computed by hand against a trace, and naming the mistake behind them.

A learner who worked a step out by hand gives their numbers for one quantity
(``forget.act=0.47502081,0.68997448,…``).  :func:`check` says, unit by unit, whether
each agrees with the trace *to the digits given*: a value written with d decimals
agrees when |traced − given| ≤ ½·10^−d (plus a hair for the decimal → binary
conversion), so ``0.55`` agrees with 0.549834 and ``0.549834`` with 0.5498339973.

When a quantity differs, every common mistake of :data:`MISTAKES` is tried: the
step (or the sequence, from step 1) is computed again from the trace's own inputs
and weights with that one mistake made (U zeroed, σ and tanh swapped, the forget
and input gates' weights exchanged, …), and the mistakes whose value of the quantity
matches every number given, to its digits, are named.  Nothing is looked up: a
mistake that changes nothing the learner gave (W transposed when W is symmetric,
say) reproduces nothing, and a mistake the trace cannot make (W transposed when W
is not square; any, for a trace read from a file, which has no weights) is not tried
and the report says so.

>>> from lstmtrace import Parameters, step
>>> t = step(Parameters.identity(2, 2), [1.0, -1.0], [0.5, 0.5])
>>> print(check(t, ["f=0.817574,0.377541"]).verdict)
all 2 of your values agree with lstmtrace's to the digits you gave.
"""
import dataclasses
import functools
import re
import types
import unicodedata
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd

from lstmtrace.cell import SIGMOID, TANH, Activation, Values, layout, sigmoid, step_into
from lstmtrace.errors import OptionError
from lstmtrace.rows import stages

__all__ = ["Check", "Mistake", "MISTAKES", "SYMBOLS", "check", "decimals", "parse_check"]

SYMBOLS = {"f": ("forget", "act"), "i": ("input", "act"), "g": ("candidate", "act"), "c̃": ("candidate", "act"),
           "o": ("output", "act"), "c": ("cell", "c"), "h": ("hidden", "h")}
"""The short names ``--check`` accepts besides the trace's own ``gate.quantity``."""


class Mistake(NamedTuple):
    """A common mistake in computing an LSTM step by hand: its key, its name, what it computes instead."""

    key: str
    name: str
    what: str


MISTAKES = (
    Mistake("swapped_activations", "σ and tanh swapped",
            "tanh where σ belongs and σ where tanh belongs: f, i, o = tanh(preact), c̃ = σ(preact), h = o * σ(c)"),
    Mistake("no_Uh", "the U·h_prev term left out", "each gate's preact = W·x + b"),
    Mistake("no_Wx", "the W·x term left out", "each gate's preact = U·h_prev + b"),
    Mistake("no_bias", "the bias left out", "each gate's preact = W·x + U·h_prev"),
    Mistake("double_bias", "the bias counted twice", "each gate's preact = W·x + U·h_prev + 2b"),
    Mistake("elementwise", "an elementwise product where a matrix product belongs",
            "W*x instead of W·x and U*h_prev instead of U·h_prev (only the diagonal of each square matrix counts)"),
    Mistake("W_transposed", "W transposed", "W.T·x instead of W·x, in every gate"),
    Mistake("U_transposed", "U transposed", "U.T·h_prev instead of U·h_prev, in every gate"),
    Mistake("h_for_h_prev", "the new h used where h_prev belongs",
            "each gate's preact = W·x + U·h + b, with this step's own h (as lstmtrace computes it)"),
    Mistake("c_for_c_prev", "c used where c_prev belongs",
            "c = f * c + i * c̃ (and peepholes on c_prev see c), with this step's own c (as lstmtrace "
            "computes it)"),
    Mistake("pytorch_order", "the gates taken in PyTorch's order i, f, g, o",
            "your forget gate is lstmtrace's input gate and your input gate its forget gate (their weights "
            "exchanged)"),
    Mistake("sigma_centred_at_1", "σ(1) taken for ½",
            "a σ centred at 1 instead of 0: σ(preact - 1), which is ½ where preact = 1"),
)
"""Every mistake :func:`check` tries, in the order it names them."""

_BY_KEY = {m.key: m for m in MISTAKES}

_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def decimals(text: str) -> int:
    """How many decimals a number is written to: what its last digit is worth (``"5e3"``: −3).

    >>> decimals("0.549834"), decimals("-12"), decimals("4.75e-1"), decimals("2.5E+2")
    (6, 0, 3, -1)
    """
    text = text.strip()
    if not _NUMBER.fullmatch(text):
        raise ValueError(f"{text!r} is not a number")
    mantissa, _, exponent = text.lower().partition("e")
    places = len(mantissa.partition(".")[2])
    return places - (int(exponent) if exponent else 0)


def _written(value) -> str:
    """A number as its writer wrote it: a string as it is, a Python float by its repr, a numpy one by its
    own shortest repr (so float32 keeps its few digits)."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{value!r} is not a number")
    if isinstance(value, np.floating):
        return np.format_float_positional(value, unique=True, trim="-") if abs(value) >= 1e-4 or value == 0 \
            else np.format_float_scientific(value, unique=True, trim="-")
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, float):
        return repr(value)
    raise ValueError(f"{value!r} is not a number")


def _parse_values(given) -> List[List[str]]:
    """Rows of number texts from ``"v,v;v,v"`` (spaces, brackets and numpy's ``array(…)`` allowed) or from
    numbers, lists of them, or arrays (one row per step)."""
    if isinstance(given, str):
        text = given.strip()
        if text.startswith("array(") and text.endswith(")"):
            text = text[len("array("):-1]
        text = text.replace("−", "-").replace("],", ";").replace("[", " ").replace("]", " ")
        if not text.strip():
            raise ValueError("no numbers given")
        rows = []
        for k, row in enumerate(text.split(";")):
            items = [item for item in re.split(r"[,\s]+", row.strip()) if item]
            if not items:
                raise ValueError(f"row {k + 1} is empty")
            rows.append(items)
        return rows
    if isinstance(given, np.ndarray):
        given = [list(row) for row in given] if given.ndim == 2 else list(given) if given.ndim == 1 else [given[()]]
    if isinstance(given, (list, tuple)):
        if not given:
            raise ValueError("no numbers given")
        if all(isinstance(row, (list, tuple, np.ndarray)) for row in given):
            return [[_written(v) for v in row] for row in given]
        return [[_written(v) for v in given]]
    return [[_written(given)]]


def parse_check(spec: str) -> Tuple[str, Optional[int], str]:
    """``QUANTITY[@T]=VALUES`` (``--check``'s spelling) as (quantity, step or None, values).

    >>> parse_check("forget.act@2=0.5,0.25")
    ('forget.act', 2, '0.5,0.25')
    """
    quantity, eq, values = spec.partition("=")
    if not eq or not quantity.strip():
        raise OptionError(f"{spec!r} is not QUANTITY=VALUES, e.g. forget.act=0.475,0.69 (or f@2=… for step 2)",
                          "check")
    quantity, at, step = quantity.strip().partition("@")
    if at:
        if not step.strip().isdigit() or int(step) < 1:
            raise OptionError(f"{spec!r}: the step after @ must be a whole number from 1, not {step.strip()!r}",
                              "check")
        return quantity.strip(), int(step), values
    return quantity.strip(), None, values


def _resolve(trace, name: str) -> Tuple[str, str]:
    """(gate, quantity) of a name the trace knows, or a short symbol (f, i, g, o, c, h)."""
    key = SYMBOLS.get(name) or tuple(name.split(".", 1))
    if len(key) == 2 and key in stages(trace.cell):
        return key
    raise OptionError(f"no quantity {name!r} in this trace: give one as the trace names it (forget.act, "
                      "input.preact, candidate.act, cell.c, hidden.h, cell.forget*c_prev, …) or f, i, g, o, c, h",
                      "check")


# -- the mistakes, made ---------------------------------------------------------------------

class _NotTried(Exception):
    """A mistake this trace cannot make; the message says why."""


def _shift(activation: Activation) -> Activation:
    return activation._replace(name="σ(z - 1)", forward=lambda z: sigmoid(z - 1.0))


_SWAP = {"sigmoid": TANH, "tanh": SIGMOID}


@functools.lru_cache(maxsize=None)
def _swapped(cell):
    """``cell`` with σ and tanh exchanged wherever either is used; None when it uses neither."""
    gates = tuple(g._replace(activation=_SWAP.get(g.activation.key, g.activation)) for g in cell.gates)
    act_c = _SWAP.get(cell.cell_activation.key, cell.cell_activation)
    if gates == cell.gates and act_c is cell.cell_activation:
        return None
    return dataclasses.replace(cell, gates=gates, cell_activation=act_c)


@functools.lru_cache(maxsize=None)
def _centred_at_1(cell):
    """``cell`` with each σ gate's σ(z) made σ(z − 1); None when no gate computes σ."""
    shifted = _shift(SIGMOID)
    gates = tuple(g._replace(activation=shifted) if g.rule == "computed" and g.activation.key == "sigmoid" else g
                  for g in cell.gates)
    return None if gates == cell.gates else dataclasses.replace(cell, gates=gates)


def _blocks(matrix: np.ndarray, H: int, change) -> np.ndarray:
    """``matrix`` (gates stacked, H rows each) with ``change`` applied to each gate's block."""
    return np.concatenate([change(matrix[k:k + H]) for k in range(0, matrix.shape[0], H)]) if len(matrix) else matrix


def _made(trace, key: str):
    """What the step is computed from with mistake ``key``: (weights, cell, h_prev instead, c_prev instead)."""
    p = trace.params
    if p is None:
        raise _NotTried("the trace was read from a file and holds no weights")
    cell, H = trace.cell, p.hidden_size
    E, R = p.W.shape[1], p.U.shape[1]
    w = types.SimpleNamespace(W=np.array(p.W), U=np.array(p.U), b=np.array(p.b), P=np.array(p.P),
                              W_hr=None if p.W_hr is None else np.array(p.W_hr), hidden_size=H, cell=cell)
    h_instead = c_instead = None
    if not cell.weighted and key in ("no_Uh", "no_Wx", "no_bias", "double_bias", "elementwise", "W_transposed",
                                     "U_transposed", "pytorch_order"):
        raise _NotTried("no gate of this cell has weights")
    if key == "swapped_activations":
        w.cell = _swapped(cell)
        if w.cell is None:
            raise _NotTried("this cell uses neither σ nor tanh")
    elif key == "sigma_centred_at_1":
        w.cell = _centred_at_1(cell)
        if w.cell is None:
            raise _NotTried("no gate of this cell computes σ")
    elif key == "no_Uh":
        w.U[:] = 0.0
    elif key == "no_Wx":
        w.W[:] = 0.0
    elif key == "no_bias":
        w.b[:] = 0.0
    elif key == "double_bias":
        w.b *= 2.0
    elif key == "elementwise":
        if E != H and R != H:
            raise _NotTried(f"neither W ({H}×{E}) nor U ({H}×{R}) is square, so W*x and U*h_prev have no meaning")
        if E == H:
            w.W = _blocks(w.W, H, lambda m: np.diag(np.diag(m)))
        if R == H:
            w.U = _blocks(w.U, H, lambda m: np.diag(np.diag(m)))
    elif key == "W_transposed":
        if E != H:
            raise _NotTried(f"W is {H}×{E}, not square")
        w.W = _blocks(w.W, H, np.transpose)
    elif key == "U_transposed":
        if R != H:
            raise _NotTried(f"U is {H}×{R}, not square")
        w.U = _blocks(w.U, H, np.transpose)
    elif key == "pytorch_order":
        if not {"forget", "input"} <= set(cell.weighted):
            gate = "forget" if "forget" not in cell.weighted else "input"
            raise _NotTried(f"the {gate} gate has no weights of its own in this cell")
        for arrays, order in (((w.W, w.U, w.b), cell.weighted), ((w.P,), cell.peepholes)):
            if {"forget", "input"} <= set(order):
                f, i = (slice(k * H, (k + 1) * H) for k in (order.index("forget"), order.index("input")))
                for array in arrays:  # the two gates' blocks exchanged
                    array[f], array[i] = array[i].copy(), array[f].copy()
    elif key == "h_for_h_prev":
        h_instead = trace.block("hidden", "h")
    elif key == "c_for_c_prev":
        c_instead = trace.block("cell", "c")
    else:
        raise KeyError(f"no mistake {key!r}; the mistakes are {', '.join(_BY_KEY)}")
    return w, w.cell, h_instead, c_instead


def _replay(trace, key: str, last: int) -> np.ndarray:
    """Steps × numbers: the trace's steps computed again with mistake ``key``, each step's h and c handed on
    (a reverse cell from step T down); the steps a forward cell would reach after ``last`` are left NaN."""
    w, cell, h_instead, c_instead = _made(trace, key)
    E, H, T = trace.input_size, trace.hidden_size, trace.steps
    where = layout(E, H, cell=cell)
    xs = trace.block("given", "x")
    reverse = trace.direction == "reverse"
    first = T - 1 if reverse else 0
    h, c = trace.block("given", "h_prev")[first], trace.block("given", "c_prev")[first]
    rows = np.full((T, where.width), np.nan)
    v = Values(np.empty(where.width), E, H, cell=cell)
    h_at, c_at = where.slices["hidden", "h"], where.slices["cell", "c"]
    with np.errstate(all="ignore"):
        for t in range(T - 1, -1, -1) if reverse else range(min(last, T)):
            step_into(v, w, xs[t], h if h_instead is None else h_instead[t], c if c_instead is None else c_instead[t])
            rows[t] = v.row
            h, c = rows[t, h_at], rows[t, c_at]
    return rows


# -- the check ---------------------------------------------------------------------------------

def _tolerance(places: np.ndarray, given: np.ndarray, traced: np.ndarray) -> np.ndarray:
    """Half the worth of the last digit written, and a hair for decimal → binary conversion."""
    half = 0.5 * np.power(10.0, -places.astype(float))
    return half * (1 + 1e-9) + 4 * np.finfo(float).eps * np.maximum(np.abs(given), np.abs(traced))


class _Item(NamedTuple):
    """One quantity's numbers, given for one run of steps."""

    label: str  # as given: "forget.act", "f@2"
    gate: str
    quantity: str
    steps: Tuple[int, ...]
    texts: List[List[str]]  # steps × units, as written
    given: np.ndarray
    places: np.ndarray
    traced: np.ndarray
    agree: np.ndarray  # steps × units


@dataclasses.dataclass
class Check:
    """A learner's hand-computed numbers checked against a trace: what :meth:`lstmtrace.Trace.check` returns.

    ``agrees`` is whether every value given agrees with the trace to its digits;
    ``table`` has one row per value (quantity, step, unit, yours, decimals,
    lstmtrace, difference, agrees); ``mistakes`` are the keys of the mistakes (of
    :data:`MISTAKES`) that reproduce every value given of every quantity that
    differs; ``diagnosis`` has them for each quantity given (by the label it was
    given with); ``not_tried`` says which mistakes this trace cannot make, and why.
    ``str()`` and :meth:`to_text` are the report ``--check`` prints.

    >>> from lstmtrace import Parameters, step
    >>> t = step(Parameters.identity(5, 5), [-0.1, 0.3, 0.1, -0.25, 0.1], [0, 0.5, 0.1, 0.2, 0.6])
    >>> t.check("forget.act", [0.47502081, 0.68997448, 0.549834, 0.4875026, 0.66818777]).agrees
    True
    >>> t.check("f", "0.475021,0.574443,0.524979,0.437823,0.524979").mistakes   # σ(x): no U·h_prev
    ('no_Uh',)
    """

    items: List[_Item]
    diagnosis: Dict[str, Tuple[str, ...]]
    not_tried: Dict[str, str]
    trace: object = dataclasses.field(repr=False)

    @property
    def agrees(self) -> bool:
        """Whether every value given agrees with the trace to the digits given."""
        return all(bool(item.agree.all()) for item in self.items)

    @property
    def mistakes(self) -> Tuple[str, ...]:
        """The mistakes that reproduce every value given of every quantity that differs (() when none does,
        or nothing differs)."""
        differing = [self.diagnosis[item.label] for item in self.items if not item.agree.all()]
        if not differing:
            return ()
        return tuple(key for key in differing[0] if all(key in keys for keys in differing[1:]))

    @property
    def table(self) -> pd.DataFrame:
        """One row per value given: quantity, step, unit, yours, decimals, lstmtrace, difference, agrees."""
        frames = []
        for item in self.items:
            T, H = item.given.shape
            frames.append(pd.DataFrame({
                "quantity": f"{item.gate}.{item.quantity}",
                "step": np.repeat(np.array(item.steps, dtype=np.int32), H),
                "unit": np.tile(np.arange(H, dtype=np.int32), T),
                "yours": item.given.ravel(), "decimals": item.places.ravel().astype(np.int32),
                "lstmtrace": item.traced.ravel(), "difference": (item.given - item.traced).ravel(),
                "agrees": item.agree.ravel(),
            }))
        return pd.concat(frames, ignore_index=True)

    @property
    def verdict(self) -> str:
        """One sentence: does everything agree, and if not, what reproduces it."""
        total = sum(item.agree.size for item in self.items)
        wrong = sum(int((~item.agree).sum()) for item in self.items)
        if not wrong:
            return f"all {total} of your values agree with lstmtrace's to the digits you gave."
        names = [_BY_KEY[key].name for key in self.mistakes]
        cause = (f"; {_join(names)} reproduces every value you gave." if len(names) == 1 else
                 f"; each of these reproduces every value you gave: {_join(names, 'or')}." if names else
                 "; no single common mistake that lstmtrace knows reproduces them all.")
        return f"{wrong} of your {total} values {'differs' if wrong == 1 else 'differ'} from lstmtrace's{cause}"

    def __str__(self) -> str:
        return self.to_text()

    def to_text(self) -> str:
        """The report: per quantity a table (unit, yours, lstmtrace, agrees) and what reproduces it; a verdict."""
        return self._render(markdown=False)

    def to_markdown(self) -> str:
        """The same report with Markdown headings and tables."""
        return self._render(markdown=True)

    def _render(self, markdown: bool) -> str:
        from tabulate import tabulate

        parts = []
        heading = "### " if markdown else ""
        for item in self.items:
            name = f"{item.gate}.{item.quantity}"
            symbol = next((s for s, key in SYMBOLS.items() if key == (item.gate, item.quantity)), None)
            what = f"{name} ({symbol})" if symbol and symbol != "c̃" else name
            several = len(item.steps) > 1 or self.trace.steps > 1
            where = (f"step {item.steps[0]}" if len(item.steps) == 1 else
                     f"steps {item.steps[0]} to {item.steps[-1]}")
            parts.append(f"{heading}Your {what}, {where}" + ("" if markdown else ":"))
            rows = []
            for k, t in enumerate(item.steps):
                for u in range(item.given.shape[1]):
                    rows.append(([t] if several else []) + [u, item.texts[k][u], _shown(item.traced[k, u],
                                                                                       item.places[k, u]),
                                                            "yes" if item.agree[k, u] else "NO"])
            headers = (["step"] if several else []) + ["unit", "yours", "lstmtrace", "agrees"]
            parts.append(tabulate(rows, headers=headers, tablefmt="github" if markdown else "simple",
                                  disable_numparse=True, colalign=("right",) * (len(headers) - 3)
                                  + ("right", "right", "left")))
            parts.append(self._diagnose(item, markdown))
        parts.append(("**Verdict:** " if markdown else "Verdict: ") + self.verdict)
        return "\n\n".join(parts) + "\n"

    def _diagnose(self, item: _Item, markdown: bool = False) -> str:
        n, wrong = item.agree.size, int((~item.agree).sum())
        name = f"{item.gate}.{item.quantity}"
        if not wrong:
            return (f"{f'All {n} agree' if n > 1 else 'It agrees'} with lstmtrace to the digits you gave (a value written with d decimals agrees "
                    "when it is within half a unit of its last digit).")
        k, u = (int(a) for a in np.argwhere(~item.agree)[0])
        lines = [f"{wrong} of {n} {'differs' if wrong == 1 else 'differ'}; the first is unit {u}" + (f" of step {item.steps[k]}" if
                                                                     len(item.steps) > 1 else "")
                 + f": yours {item.texts[k][u]}, lstmtrace {_shown(item.traced[k, u], item.places[k, u])}."]
        found = self.diagnosis[item.label]
        if found:
            lines.append("This mistake reproduces every value you gave, to your digits:" if len(found) == 1 else
                         "Each of these mistakes reproduces every value you gave, to your digits:")
            lines += [f"  - {_BY_KEY[key].name}: {_BY_KEY[key].what}." for key in found]
        else:
            lines.append(f"No common mistake that lstmtrace knows reproduces them. How lstmtrace computes {name} "
                         f"at unit {u}" + (f" of step {item.steps[k]}" if self.trace.steps > 1 else "")
                         + ", line by line, to compare with your working:")
            working = _working(self.trace, item.gate, item.quantity, item.steps[k], u)
            lines += ["", "```", *working, "```", ""] if markdown else working
        if self.not_tried:
            reasons: Dict[str, List[str]] = {}
            for key, why in self.not_tried.items():
                reasons.setdefault(why, []).append(_BY_KEY[key].name)
            lines.append("Not tried, as this trace cannot make them: "
                         + "; ".join(f"{_join(names)} ({why})" for why, names in reasons.items()) + ".")
        return "\n".join(lines)


def _join(names: Sequence[str], word: str = "and") -> str:
    names = list(names)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {word} {names[-1]}"


def _shown(value: float, places: int) -> str:
    """A traced value with two more decimals than the one it is compared with (ASCII minus)."""
    return f"{value:.{int(min(max(places, 0) + 2, 17))}f}"


_MEANING = {"Wx": "W·x", "Uh": "U·h_prev", "bias": "b", "Pc": "P*c_prev", "clipped": "preact bounded to [-clip, clip]"}


def _working(trace, gate: str, quantity: str, step: int, unit: int) -> List[str]:
    """The lines that lead to one unit of a quantity: its gate's quantities, or the gates' acts for c and h."""
    v = trace.values(step)
    cell = trace.cell
    if gate in [g.name for g in cell.gates]:
        spec = cell.gate(gate)
        quantities = spec.quantities[:spec.quantities.index(quantity) + 1]
        meaning = dict(_MEANING, act=f"{spec.activation.name}(preact)")
        if spec.peeps == "c":
            meaning["Pc"] = "P*c"
        terms = spec.quantities[:spec.quantities.index("preact")] if "preact" in spec.quantities else ()
        meaning["preact"] = " + ".join(meaning[q] for q in terms)  # the gate's own terms, a peephole's too
        lines = [(f"{gate}.{q}", meaning.get(q, q), v[gate, q][unit]) for q in quantities]
        if spec.rule != "computed" and quantity == "act":
            lines = [(f"{gate}.act", cell.weightless(gate)[0].replace("−", "-"), v[gate, "act"][unit])]
    elif gate == "given":
        lines = [(f"given.{quantity}", "given", v["given", quantity][unit])]
    else:
        lines = []
        if gate == "cell":
            lines += [("forget.act", "f", v["forget", "act"][unit]), ("given.c_prev", "c_prev", v["given", "c_prev"][unit]),
                      ("input.act", "i", v["input", "act"][unit]), ("candidate.act", "c̃", v["candidate", "act"][unit])]
            meaning = {"forget*c_prev": "f * c_prev", "input*candidate": "i * c̃", "c": "f * c_prev + i * c̃"}
        elif cell.proj_size is not None and quantity == "h":  # h's units are the projection's, not c's
            return [f"  hidden.h  W_hr·(o * {cell.cell_activation.name}(c))  {v['hidden', 'h'][unit]:.10g}"]
        else:
            lines += [("output.act", "o", v["output", "act"][unit]), ("cell.c", "c", v["cell", "c"][unit])]
            act = cell.cell_activation.name
            meaning = {q: f"o * {act}(c)" if "*" in q else f"{act}(c)" for q in dict(cell.pipeline)[gate]}
            meaning["h"] = f"o * {act}(c)"
        quantities = dict(cell.pipeline)[gate]
        lines += [(f"{gate}.{q}", meaning.get(q, q), v[gate, q][unit])
                  for q in quantities[:quantities.index(quantity) + 1]]
    width = max(_width(name) for name, _, _ in lines)
    formula = max(_width(f) for _, f, _ in lines)
    return [f"  {name}{' ' * (width - _width(name))}  {f}{' ' * (formula - _width(f))}  {value: .10g}"
            for name, f, value in lines]


def _width(text: str) -> int:
    """Columns ``text`` takes on a terminal: the combining tilde of c̃ takes none."""
    return sum(not unicodedata.combining(ch) for ch in text)


def check(trace, checks: Sequence[Union[str, Tuple[str, object, Optional[int]]]]) -> Check:
    """Check numbers against ``trace``: each of ``checks`` is ``"QUANTITY[@T]=VALUES"`` (``--check``'s spelling)
    or a (quantity, values, step) triple; values are one row of numbers per step, from step T (default 1).

    Errors (an unknown quantity, a wrong count, not a number, a step the trace lacks) are
    :class:`lstmtrace.errors.OptionError` with option ``"check"``; a stack of cells has no ``check``: check one cell.

    >>> from lstmtrace import Parameters, run
    >>> t = run(Parameters.identity(1, 1), [[1.0], [1.0]])
    >>> check(t, ["c=0.5568;1.1444"]).agrees
    True
    """
    if hasattr(trace, "traces"):
        raise OptionError(f"checks one cell, and this trace holds {len(trace.traces)}: pick one (--layer K "
                          "--direction D, or stack.cell(layer, direction))", "check")
    if not checks:
        raise OptionError("nothing to check: give QUANTITY=VALUES", "check")
    items = []
    for entry in checks:
        if isinstance(entry, str):
            name, step, values = parse_check(entry)
            label = entry.partition("=")[0].strip()
        else:
            name, values, step = entry
            label = name if step is None else f"{name}@{step}"
        items.append(_item(trace, label, name, values, step))
    last = max(item.steps[-1] for item in items)
    diagnosis, not_tried, replayed = {}, {}, {}
    for item in items:
        found = []
        where = layout(trace.input_size, trace.hidden_size, cell=trace.cell).slices[item.gate, item.quantity]
        if not item.agree.all():
            for mistake in MISTAKES:
                if mistake.key not in replayed and mistake.key not in not_tried:
                    try:
                        replayed[mistake.key] = _replay(trace, mistake.key, last)
                    except _NotTried as e:
                        not_tried[mistake.key] = str(e)
                        continue
                if mistake.key in not_tried:
                    continue
                made = replayed[mistake.key][[t - 1 for t in item.steps], where]
                with np.errstate(invalid="ignore"):
                    if (np.abs(made - item.given) <= _tolerance(item.places, item.given, made)).all():
                        found.append(mistake.key)
        diagnosis[item.label] = tuple(found)
    return Check(items, diagnosis, not_tried if any(not i.agree.all() for i in items) else {}, trace)


def _item(trace, label: str, name: str, values, step: Optional[int]) -> _Item:
    gate, quantity = _resolve(trace, name)
    try:
        texts = _parse_values(values)
        given = np.array([[float(t) for t in row] for row in texts]) if all(
            _NUMBER.fullmatch(t) for row in texts for t in row) else None
    except ValueError as e:
        raise OptionError(f"{label}: {e}", "check") from None
    if given is None:
        bad = next(t for row in texts for t in row if not _NUMBER.fullmatch(t))
        raise OptionError(f"{label}: {bad!r} is not a number", "check")
    if not np.isfinite(given).all():
        raise OptionError(f"{label}: the numbers must be finite", "check")
    size = trace.block(gate, quantity).shape[1]
    for k, row in enumerate(texts):
        if len(row) != size:
            raise OptionError(f"{label}: {gate}.{quantity} has {size} units, and "
                              + (f"row {k + 1} of " if len(texts) > 1 else "") + f"your values give {len(row)}",
                              "check")
    start = 1 if step is None else step
    steps = tuple(range(start, start + len(texts)))
    if len(texts) == 1 and start > trace.steps:
        raise OptionError(f"{label}: the trace has {trace.steps} step(s), so no step {start}", "check")
    if steps[-1] > trace.steps:
        raise OptionError(f"{label}: {len(texts)} row(s) from step {start} reach step {steps[-1]}, and the trace has "
                          f"{trace.steps} step(s)" + ("; one row per step, split by ';'" if len(texts) > 1 else ""),
                          "check")
    places = np.array([[decimals(t) for t in row] for row in texts])
    traced = trace.block(gate, quantity)[start - 1:steps[-1]].copy()
    agree = np.abs(traced - given) <= _tolerance(places, given, traced)
    return _Item(label, gate, quantity, steps, texts, given, places, traced, agree)
