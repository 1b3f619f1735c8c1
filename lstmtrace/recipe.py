"""The weight recipe: where a cell's weights come from and what is changed on top, as text.

The command line's weight options and :meth:`Parameters.from_spec` speak the same
language, so a notebook can say what a shell says::

    lstmtrace step --weights random:7 --forget-bias 1 --set forget.U=zeros
    Parameters.from_spec("random:7", 5, 5, forget_bias=1, sets=["forget.U=zeros"])

Every error names its setting in ``OptionError.option`` (``"weights"``, ``"layer"``,
``"prefix"``, ``"layout"``, ``"bias"``, ``"forget_bias"``, ``"sets"``, ``"input_size"``).
"""
import os
from dataclasses import dataclass
from typing import Iterable, Optional, Tuple

from lstmtrace.errors import OptionError
from lstmtrace.params import WEIGHT_SPECS, Parameters

__all__ = ["WEIGHT_WORDS", "WeightSpec", "apply_sets", "is_weight_word"]

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
    layer: Optional[int] = None  # which layer of a multi-layer model's file
    prefix: Optional[str] = None  # the module holding the LSTM in a state_dict
    layout: Optional[str] = None  # "torch" or "keras": how to read an .npz's keys
    bias: Optional[float] = None  # every gate's b
    forget_bias: Optional[float] = None  # added to the forget gate's b
    sets: Tuple[str, ...] = ()  # "GATE.PARAM=SPEC", applied last

    def parameters(self, input_size: Optional[int] = None, hidden_size: Optional[int] = None) -> Parameters:
        """The Parameters this recipe makes; sizes that are None are taken from the file (or E, or 1)."""
        E, H = input_size, hidden_size
        if is_weight_word(self.weights):
            for name in ("layer", "prefix", "layout"):
                if getattr(self, name) is not None:
                    raise OptionError(f"reads a weights file, and --weights is {self.weights!r}", name)
            try:
                params = Parameters.from_word(self.weights, E or 1, H or E or 1)
            except ValueError as e:
                raise OptionError(str(e), "weights") from None
        elif os.path.isfile(self.weights):
            params = self._load()
            if E is not None and params.input_size != E:
                raise OptionError(f"gives input size {E}, but the weights in {self.weights} have input size "
                                  f"E = {params.input_size}", "input_size")
            if H is not None and H != params.hidden_size:
                raise OptionError(f"{self.weights} has hidden size H = {params.hidden_size}, but hidden size "
                                  f"{H} was asked for", "weights")
        else:
            raise OptionError(f"{self.weights!r} is neither {WEIGHT_SPECS} nor a file that exists", "weights")
        if self.bias is not None:
            for gate in params.gates:
                params = params.set(gate, "b", self.bias)
        if self.forget_bias is not None:
            params = params.set("forget", "b", params.forget.b + self.forget_bias)
        return apply_sets(params, self.sets)

    def _load(self) -> Parameters:
        try:
            return Parameters.load(self.weights, layer=self.layer, prefix=self.prefix, layout=self.layout)
        except OptionError:
            raise
        except (OSError, ValueError) as e:
            raise OptionError(" ".join(str(e).split()), "weights") from None

    def describe(self) -> str:
        """One sentence saying which weights these are, to open a trace's text."""
        if is_weight_word(self.weights):
            text = _DESCRIBED.get(self.weights) or f"{self.weights} (uniform in ±1/√H)"
        else:
            where = [f"{k} {getattr(self, k)}" for k in ("layer", "prefix") if getattr(self, k) is not None]
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


def apply_sets(params: Parameters, sets: Iterable[str]) -> Parameters:
    """``params`` with each ``"GATE.PARAM=SPEC"`` applied in order (see :meth:`Parameters.set`).

    >>> apply_sets(Parameters.identity(2, 2), ["forget.U=zeros", "input.b=1"]).input.b
    array([1., 1.])
    """
    for item in sets:
        target, eq, value = item.partition("=")
        gate, dot, param = target.partition(".")
        if not eq or not dot or not value.strip():
            raise OptionError(f"{item!r} is not GATE.PARAM=SPEC, e.g. forget.U=zeros", "sets")
        try:
            params = params.set(gate.strip(), param.strip(), value)
        except ValueError as e:
            raise OptionError(f"{item}: {e}", "sets") from None
    return params
