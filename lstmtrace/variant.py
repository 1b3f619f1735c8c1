"""LSTM variants: which gates there are, what squashes them, and what is bounded.

The literature's variants, with the names Greff et al. gave them in "LSTM: A Search
Space Odyssey" (IEEE TNNLS, 2017) [1]_, each one change from their vanilla LSTM;
ONNX's LSTM operator [2]_ names the three activation slots and ``clip``::

    preset  what changes                                    Variant(...)
    np      no peepholes (lstmtrace's and PyTorch's LSTM)    Variant()
    v       vanilla: peepholes (Gers & Schmidhuber, 2000)    peephole=True
    nig     no input gate: i = 1                             peephole=True, without=("input",)
    nfg     no forget gate: f = 1 (the original 1997 LSTM)   peephole=True, without=("forget",)
    nog     no output gate: o = 1                            peephole=True, without=("output",)
    niaf    no input activation: c̃ = W_g·x + U_g·h + b_g    peephole=True, candidate_activation="linear"
    noaf    no output activation: h = o*c                    peephole=True, cell_activation="linear"
    cifg    coupled input and forget gates: f = 1 - i        peephole=True, coupled=True

Greff's full gate recurrence (FGR) is out of scope.  ``clip=C`` bounds each gate's
pre-activation to [−C, C] before its activation, as onnxruntime does (c itself is not
clipped).  ``proj_size=P`` is PyTorch's projection, h = W_hr·(o⊙tanh(c)).

A variant is the default cell's definition with these changes (:func:`_cell`): which
quantities each gate computes from which weights, and how; the step, its backward
pass, the trace and its text are all laid out from that definition.

.. [1] https://arxiv.org/abs/1503.04069
.. [2] https://onnx.ai/onnx/operators/onnx__LSTM.html
"""
import functools
import math
from dataclasses import dataclass, field, fields, replace
from typing import Optional, Tuple

from lstmtrace.errors import OptionError

__all__ = ["FINDINGS", "PRESETS", "Variant"]

GATED = ("forget", "input", "output")
"""The gates a variant can take away (``without``)."""

SLOTS = {"gate": "gate_activation", "candidate": "candidate_activation", "cell": "cell_activation"}
"""ONNX's three activation slots, as ``--activation SLOT=NAME`` spells them, and their fields."""


@dataclass(frozen=True)
class Variant:
    """Which LSTM this is: peepholes, coupled gates, gates taken away, the three activations, a clip,
    a projection.  The default is lstmtrace's (and PyTorch's) LSTM.

    >>> Variant.preset("noaf")
    Variant(peephole=True, cell_activation='linear')
    >>> Variant(gate_activation="hard_sigmoid:0.2,0.5", clip=3.0).describe()
    'gate activation hard_sigmoid:0.2,0.5, clip 3'
    """

    peephole: bool = False
    coupled: bool = False
    without: Tuple[str, ...] = ()
    gate_activation: str = "sigmoid"
    candidate_activation: str = "tanh"
    cell_activation: str = "tanh"
    clip: Optional[float] = None
    proj_size: Optional[int] = field(default=None)

    def __post_init__(self):
        from lstmtrace.cell import activation

        without = tuple(dict.fromkeys(self.without))  # in the order given, once each
        object.__setattr__(self, "without", without)
        unknown = [g for g in without if g not in GATED]
        if unknown:
            raise OptionError(f"without {unknown[0]!r}: only the {', '.join(GATED)} gates can be taken away",
                              "without")
        if self.coupled and "forget" in without:
            raise OptionError("coupled makes f = 1 − i, and without forget makes f = 1: choose one", "coupled")
        if self.coupled and "input" in without:
            raise OptionError("coupled makes f = 1 − i, which needs the input gate that without input takes "
                              "away", "coupled")
        for slot, name in SLOTS.items():
            try:  # one spelling for each activation: "hard_sigmoid:.2,.5" is "hard_sigmoid:0.2,0.5"
                object.__setattr__(self, name, activation(getattr(self, name)).key)
            except ValueError as e:
                raise OptionError(f"{slot}: {e}", "activation") from None
        if self.clip is not None and not (math.isfinite(self.clip) and self.clip > 0):
            raise OptionError(f"clip must be a finite number > 0, not {self.clip!r}", "clip")
        if self.proj_size is not None and (isinstance(self.proj_size, bool) or not isinstance(self.proj_size, int)
                                           or self.proj_size < 1):
            raise OptionError(f"proj_size must be a whole number ≥ 1, not {self.proj_size!r}", "proj_size")

    def __repr__(self) -> str:
        changed = [f"{f.name}={getattr(self, f.name)!r}" for f in fields(self)
                   if getattr(self, f.name) != f.default]
        return f"Variant({', '.join(changed)})"

    @classmethod
    def preset(cls, name: str) -> "Variant":
        """Greff et al.'s variants by name: v, nig, nfg, nog, niaf, noaf, np, cifg (any case).

        >>> Variant.preset("CIFG") == Variant(peephole=True, coupled=True)
        True
        """
        try:
            return PRESETS[name.strip().lower()]
        except KeyError:
            raise OptionError(f"unknown variant {name!r}; the presets are {', '.join(PRESETS)}", "variant") from None

    @classmethod
    def from_options(cls, variant: Optional[str] = None, *, peephole: Optional[bool] = None,
                     coupled: Optional[bool] = None, without: Tuple[str, ...] = (),
                     activations: Tuple[str, ...] = (), clip: Optional[float] = None,
                     proj_size: Optional[int] = None) -> "Variant":
        """A variant as the command line spells it: a preset (``variant``), then each option on top;
        ``activations`` are ``SLOT=NAME`` strings (SLOT: gate, candidate, cell).

        >>> Variant.from_options("np", activations=("gate=hard_sigmoid",), clip=3.0)
        Variant(gate_activation='hard_sigmoid', clip=3.0)
        """
        base = cls.preset(variant) if variant else cls()
        settings = {name: value for name, value in (("peephole", peephole), ("coupled", coupled),
                                                    ("clip", clip), ("proj_size", proj_size)) if value is not None}
        if without:
            settings["without"] = base.without + tuple(without)
        for item in activations:
            slot, eq, name = item.partition("=")
            if not eq or slot.strip() not in SLOTS or not name.strip():
                raise OptionError(f"{item!r} is not SLOT=NAME with SLOT gate, candidate or cell, e.g. "
                                  "gate=hard_sigmoid", "activation")
            settings[SLOTS[slot.strip()]] = name.strip()
        return replace(base, **settings)

    @property
    def finding(self) -> Optional[str]:
        """What Greff et al. found about this variant, when it is one of their presets."""
        return FINDINGS.get(self.name or "")

    @property
    def name(self) -> Optional[str]:
        """The preset this is, if it is one (``"np"`` for the default)."""
        return next((key for key, preset in PRESETS.items() if preset == self), None)

    def describe(self) -> str:
        """What differs from lstmtrace's default LSTM, in a few words ('' for the default)."""
        words = []
        if self.peephole:
            words.append("peepholes")
        if self.coupled:
            words.append("coupled input and forget gates (f = 1 - i)")
        words += [f"no {gate} gate" for gate in self.without]
        words += [f"{slot} activation {getattr(self, name)}" for slot, name in SLOTS.items()
                  if getattr(self, name) != Variant.__dataclass_fields__[name].default]
        if self.clip is not None:
            words.append(f"clip {self.clip:g}")
        if self.proj_size is not None:
            words.append(f"projection to {self.proj_size} units")
        return ", ".join(words)

    def to_rows(self) -> Tuple[Tuple[str, int, float], ...]:
        """The settings that differ from the default, as (setting, unit, value) rows: what a saved
        trace records, at step 0 with gate ``variant``, so that plain CSV readers still read it.

        >>> Variant(gate_activation="hard_sigmoid:0.2,0.5", clip=3.0).to_rows()
        (('gate_activation:hard_sigmoid_clip', 0, 0.2), ('gate_activation:hard_sigmoid_clip', 1, 0.5), ('clip', 0, 3.0))
        """
        rows = [(name, 0, 1.0) for name in ("peephole", "coupled") if getattr(self, name)]
        rows += [(f"without:{gate}", 0, 1.0) for gate in self.without]
        for slot, name in SLOTS.items():
            key = getattr(self, name)
            if key == Variant.__dataclass_fields__[name].default:
                continue
            base, _, numbers = key.partition(":")
            if numbers:  # hard_sigmoid:ALPHA,BETA: the two numbers as units 0 and 1
                rows += [(f"{slot}_activation:{base}_clip", k, float(v)) for k, v in enumerate(numbers.split(","))]
            else:
                rows.append((f"{slot}_activation:{base}", 0, 1.0))
        if self.clip is not None:
            rows.append(("clip", 0, float(self.clip)))
        if self.proj_size is not None:
            rows.append(("proj_size", 0, float(self.proj_size)))
        return tuple(rows)

    @classmethod
    def from_rows(cls, rows) -> "Variant":
        """The variant that :meth:`to_rows` recorded; a ValueError for a setting this version does not know.

        >>> v = Variant(cell_activation="relu", clip=0.5)
        >>> Variant.from_rows(v.to_rows()) == v
        True
        """
        settings, numbers = {}, {}
        for setting, unit, value in rows:
            name, _, argument = str(setting).partition(":")
            if name in ("peephole", "coupled") and not argument:
                settings[name] = bool(value)
            elif name == "without" and argument:
                settings["without"] = (*settings.get("without", ()), argument)
            elif name.endswith("_activation") and name[:-len("_activation")] in SLOTS and argument:
                field_name = SLOTS[name[:-len("_activation")]]
                if argument.endswith("_clip"):
                    numbers.setdefault(field_name, (argument[:-len("_clip")], {}))[1][int(unit)] = float(value)
                else:
                    settings[field_name] = argument
            elif name == "clip" and not argument:
                settings["clip"] = float(value)
            elif name == "proj_size" and not argument and float(value).is_integer():
                settings["proj_size"] = int(value)
            else:
                raise ValueError(f"variant setting {setting!r} is not one this lstmtrace knows")
        for field_name, (base, given) in numbers.items():
            if sorted(given) != [0, 1]:
                raise ValueError(f"variant setting {base}_clip needs units 0 and 1 (ALPHA and BETA)")
            settings[field_name] = f"{base}:{given[0]!r},{given[1]!r}"
        return cls(**settings)

    def check(self) -> "Variant":
        """This variant, if lstmtrace computes it (every variant this class can hold, in this version);
        else an OptionError naming what it cannot compute."""
        return self

    @functools.cached_property  # (kept in the instance's __dict__: a step asks for it every time)
    def cell(self):
        """The :class:`lstmtrace.cell.Cell` this variant computes (the same object for equal variants)."""
        return _cell(self.check())


@functools.lru_cache(maxsize=None)
def _cell(variant: Variant):
    """The default LSTM's cell with this variant's changes: the one place a variant becomes equations."""
    from lstmtrace.cell import LSTM, activation, cell_activation_name

    if variant == Variant():
        return LSTM
    gate_act, candidate_act, cell_act = (activation(getattr(variant, name)) for name in SLOTS.values())
    projected = variant.proj_size is not None
    gates = []
    for spec in LSTM.gates:
        spec = spec._replace(activation=candidate_act if spec.name == "candidate" else gate_act)
        if spec.name in variant.without:  # the gate is the constant 1
            spec = spec._replace(quantities=("act",), weights=(), rule="one")
        elif variant.coupled and spec.name == "forget":  # f = 1 − i
            spec = spec._replace(quantities=("act",), weights=(), rule="complement", complements="input")
        else:
            peeps = "" if not variant.peephole or spec.name == "candidate" else (
                "c" if spec.name == "output" else "c_prev")
            spec = spec._replace(
                quantities=("Wx", "Uh", "bias", *(("Pc",) if peeps else ()), "preact",
                            *(("clipped",) if variant.clip is not None else ()), "act"),
                weights=(("W", "H×E"), ("U", "H×P" if projected else "H×H"), ("b", "H"),
                         *((("P", "H"),) if peeps else ())),
                peeps=peeps)
        gates.append(spec)
    act_c = cell_activation_name(cell_act)
    hidden = (act_c, f"output*{act_c}", "h") if projected else (act_c, "h")
    return replace(LSTM, gates=tuple(gates), after=(LSTM.after[0], ("hidden", hidden)),
                   sizes=(*LSTM.sizes, *((("h_prev", "P"), ("h", "P")) if projected else ())),
                   cell_activation=cell_act, clip=variant.clip, proj_size=variant.proj_size,
                   stage_weights=(("hidden", "W_hr", "P×H"),) if projected else ())


PRESETS = {
    "np": Variant(),
    "v": Variant(peephole=True),
    "nig": Variant(peephole=True, without=("input",)),
    "nfg": Variant(peephole=True, without=("forget",)),
    "nog": Variant(peephole=True, without=("output",)),
    "niaf": Variant(peephole=True, candidate_activation="linear"),
    "noaf": Variant(peephole=True, cell_activation="linear"),
    "cifg": Variant(peephole=True, coupled=True),
}
"""Greff et al.'s variants, each exactly as their paper defines it (FGR aside)."""

FINDINGS = {
    "np": "Greff et al. found that removing the peepholes (NP) changed performance little on any of their "
          "three tasks: PyTorch's and Keras' LSTMs have none.",
    "v": "Greff et al. found no variant that beat this vanilla LSTM significantly on speech, handwriting or "
         "music.",
    "nig": "Greff et al. found that removing the input gate (NIG) hurt speech and handwriting recognition "
           "significantly, but not music modelling.",
    "nfg": "Greff et al. found that removing the forget gate (NFG, the original 1997 LSTM) hurt performance "
           "significantly on every task: with the output activation, the most critical part.",
    "nog": "Greff et al. found that removing the output gate (NOG) hurt speech and handwriting recognition "
           "significantly, but not music modelling.",
    "niaf": "Greff et al. found that removing the input activation (NIAF) hurt speech and handwriting "
            "recognition significantly, but not music modelling.",
    "noaf": "Greff et al. found that removing the output activation (NOAF) hurt performance significantly on "
            "every task: without it the unbounded cell state reaches h.",
    "cifg": "Greff et al. found that coupling the input and forget gates (CIFG) changed performance little, "
            "with fewer weights (the GRU couples its gates the same way).",
}
"""One sentence of what Greff et al. (2017, section 5) found about each preset, for the text."""
