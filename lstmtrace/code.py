"""The step as code: a standalone numpy script that recomputes a trace, every value to the last bit.

:func:`to_python` writes the script (``lstmtrace step --format python``, ``-o step.py``,
:meth:`lstmtrace.Trace.to_python`).  It sets x (or the sequence xs), h_prev, c_prev and
the weights to the traced values, every digit (a float's ``repr`` reads back as the same
float), and computes the step one equation per line, with variables named after the
equations: each gate's ``Wx_f``, ``Uh_f``, ``preact_f`` and its activation ``f``, then
``c`` and ``h``.  A sequence is a loop over the rows of xs, carrying h and c.

Bit for bit means the same float operations in the same order as
:func:`lstmtrace.cell.step_into`: the sums left to right as it adds them, the stable
σ it computes, and the gates' matrix products taken together on the stacked 4H-row W and
U (a product of one gate's H rows is the same sum, but BLAS can add its terms in another
order for another number of rows, and then the last bit differs).

The script is derived from the trace's cell definition (:attr:`lstmtrace.Trace.cell`):
:func:`_step_lines` is the one place a cell becomes lines of code, for every variant.

>>> import lstmtrace
>>> script = lstmtrace.step(lstmtrace.Parameters.identity(2, 2), [1.0, -1.0]).to_python()
>>> print("\\n".join(line for line in script.splitlines() if line.startswith(("preact_f", "f ="))))
preact_f = Wx_f + Uh_f + b_f
f = sigmoid(preact_f)
"""
from typing import Dict, List, Optional, Tuple

from lstmtrace.errors import OptionError, one_cell

__all__ = ["MAX_WEIGHTS", "to_python", "variable"]

MAX_WEIGHTS = 100_000
"""The most weights (W, U, b, P and W_hr together) a script sets out as literals."""

_GATE_WORDS = {"forget": "the forget gate", "input": "the input gate", "candidate": "the candidate",
               "output": "the output gate"}
_COLAH = {"forget": "f_t", "input": "i_t", "candidate": "C~_t", "output": "o_t"}  # (ASCII in code: C~ is C̃)


def variable(gate: str, quantity: str, cell) -> str:
    """The script's name for one traced quantity: ``Wx_f`` for forget.Wx, ``f`` for forget.act,
    ``f_c_prev`` for cell.forget*c_prev, ``tanh_c`` for hidden.tanh(c), ``b_f`` for forget.bias.

    >>> from lstmtrace.cell import LSTM
    >>> [variable("candidate", q, LSTM) for q in ("Wx", "preact", "act")], variable("hidden", "tanh(c)", LSTM)
    (['Wx_g', 'preact_g', 'g'], 'tanh_c')
    """
    if gate == "given":
        return quantity
    if gate == "cell":
        return {"forget*c_prev": "f_c_prev", "input*candidate": "i_g", "c": "c"}[quantity]
    if gate == "hidden":
        if quantity == "h":
            return "h"
        return f"o_{_act_c(cell)}" if quantity.startswith("output*") else _act_c(cell)
    letter = cell.gate(gate).index
    if quantity == "act":
        return letter
    return {"bias": "b"}.get(quantity, quantity) + "_" + letter


def _act_c(cell) -> str:
    """The name of act(c): ``tanh_c``, ``relu_c``, …"""
    return f"{cell.cell_activation.key.split(':')[0]}_c"


# -- the activations, as the script defines them -----------------------------------------------

def _function(key: str, name: str) -> Optional[str]:
    """The definition of activation ``key`` under ``name``, written with exactly the float operations
    of :mod:`lstmtrace.cell`'s; None for np.tanh, which the script calls directly."""
    base, _, numbers = key.partition(":")
    if base == "tanh":
        return None
    if base == "sigmoid":
        return (f"def {name}(z):\n"
                '    """σ(z) = 1 / (1 + e^-z), computed as lstmtrace computes it: e^-|z| never overflows."""\n'
                "    e = np.exp(-np.abs(z))\n"
                "    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))\n")
    if base == "hard_sigmoid" and numbers:
        alpha, beta = (float(v) for v in numbers.split(","))
        return (f"def {name}(z):\n"
                f'    """clip({alpha!r}*z + {beta!r}, 0, 1): ONNX\'s HardSigmoid (Keras 2\'s with 0.2, 0.5)."""\n'
                f"    return np.clip({alpha!r} * z + {beta!r}, 0.0, 1.0)\n")
    body = {
        "hard_sigmoid": ('relu6(z + 3) / 6: Keras 3\'s (and PyTorch\'s) hard sigmoid.',
                         "np.clip(z + 3.0, 0.0, 6.0) / 6.0"),
        "relu": ("max(z, 0), unit by unit.", "np.maximum(z, 0.0)"),
        "linear": ("z itself (+ 0.0 turns -0.0 into 0.0, as lstmtrace does).", "z + 0.0"),
        "softsign": ("z / (1 + |z|).", "z / (1.0 + np.abs(z))"),
    }[base]
    return f'def {name}(z):\n    """{body[0]}"""\n    return {body[1]}\n'


def _functions(cell) -> Tuple[Dict[str, str], List[str]]:
    """{activation key: the name the script calls it by}, and the definitions to write."""
    keys = [g.activation.key for g in cell.gates if g.rule == "computed"] + [cell.cell_activation.key]
    names: Dict[str, str] = {}
    definitions = []
    for key in dict.fromkeys(keys):
        base = key.split(":")[0]
        name = "np.tanh" if base == "tanh" else base
        k = 2
        while name in names.values():  # two different hard sigmoids: hard_sigmoid, hard_sigmoid_2
            name, k = f"{base}_{k}", k + 1
        names[key] = name
        definition = _function(key, name)
        if definition is not None:
            definitions.append(definition)
    return names, definitions


def _said(key: str, functions: Dict[str, str]) -> str:
    """An activation as a comment writes it: σ (colah's), tanh, or the script's function."""
    return {"sigmoid": "σ", "np.tanh": "tanh"}.get(functions[key], functions[key])


# -- numbers as Python literals --------------------------------------------------------------

def _vector(values) -> str:
    return "np.array([" + ", ".join(repr(float(v)) for v in values) + "])"


def _matrix(values, indent: str = "") -> str:
    rows = "".join(f"{indent}    [{', '.join(repr(float(v)) for v in row)}],\n" for row in values)
    return f"np.array([\n{rows}{indent}])"


# -- the step, from the cell definition ------------------------------------------------------

def _step_lines(cell, functions: Dict[str, str]) -> List[str]:
    """One step's lines of code, in the order :func:`lstmtrace.cell.step_into` computes: the stacked
    products, each gate, the cell state, any gate that peeps at the new c, then h."""
    lines = []
    weighted = [cell.gate(name) for name in cell.weighted]
    letters = [g.index for g in weighted]
    if len(weighted) == 1:
        lines += [f"Wx_{letters[0]} = W @ x  # W·x: W is W_{letters[0]}, the one gate with weights",
                  f"Uh_{letters[0]} = U @ h_prev  # U·h_prev"]
    else:
        lines += [f"Wx_{', Wx_'.join(letters)} = np.split(W @ x, {len(letters)})  # "
                  + ", ".join(f"W_{k} @ x" for k in letters) + ", in one product",
                  f"Uh_{', Uh_'.join(letters)} = np.split(U @ h_prev, {len(letters)})  # "
                  + ", ".join(f"U_{k} @ h_prev" for k in letters)]

    def gate_lines(spec) -> List[str]:
        k, what = spec.index, _GATE_WORDS[spec.name]
        weight = "C" if spec.name == "candidate" else k  # colah's W_C is W_g
        act = _said(spec.activation.key, functions)
        seen = {"c_prev": "c_prev", "c": "c"}.get(spec.peeps)
        peep = f" + P_{k} * {seen}" if seen else ""
        colah = "" if seen else f"{act}(W_{weight}·[h_{{t-1}}, x_t] + b_{weight}) = "
        out = ["", f"# {what.capitalize()}: {_COLAH[spec.name]} = {colah}{act}(W_{k} @ x + U_{k} @ h_prev + b_{k}{peep})"]
        terms = f"Wx_{k} + Uh_{k} + b_{k}"
        if seen:
            note = "c_prev, the cell state before the step" if seen == "c_prev" else \
                "the new c (so this gate comes after it)"
            out.append(f"Pc_{k} = P_{k} * {seen}  # peephole: P_{k} looks at {note}, unit by unit")
            terms += f" + Pc_{k}"
        out.append(f"preact_{k} = {terms}")
        source = f"preact_{k}"
        if cell.clip is not None:
            out.append(f"clipped_{k} = np.clip(preact_{k}, {-cell.clip!r}, {cell.clip!r})  # clip: preact "
                       f"bounded to [-{cell.clip:g}, {cell.clip:g}] before the activation")
            source = f"clipped_{k}"
        out.append(f"{k} = {functions[spec.activation.key]}({source})")
        return out

    early = [g for g in cell.gates if g.rule == "computed" and g.peeps != "c"]
    late = [g for g in cell.gates if g.rule == "computed" and g.peeps == "c"]
    for spec in early:
        lines += gate_lines(spec)
    for spec in cell.gates:
        if spec.rule == "one":
            lines += ["", f"{spec.index} = np.ones(H)  # no {spec.name} gate: {spec.index} = 1 (taken away)"]
    for spec in cell.gates:
        if spec.rule == "complement":
            other = cell.gate(spec.complements).index
            lines += ["", f"{spec.index} = 1.0 - {other}  # coupled gates: {spec.index} = 1 - {other}, "
                          f"so what is kept and what is written add up to 1"]
    lines += ["",
              "# The cell state: C_t = f_t * C_{t-1} + i_t * C~_t (C~_t is g), unit by unit",
              "f_c_prev = f * c_prev  # what is kept of c_prev",
              "i_g = i * g  # what is written",
              "c = f_c_prev + i_g"]
    for spec in late:
        lines += gate_lines(spec)
    act_c, act = _act_c(cell), functions[cell.cell_activation.key]
    said = f"o_t * {_said(cell.cell_activation.key, functions)}(C_t)"
    lines += ["", f"# The hidden state: h_t = {said if cell.proj_size is None else f'W_hr @ ({said})'}",
              f"{act_c} = {act}(c)"]
    if cell.proj_size is None:
        lines.append(f"h = o * {act_c}")
    else:
        lines += [f"o_{act_c} = o * {act_c}",
                  f"h = W_hr @ o_{act_c}  # the projection: h has P = {cell.proj_size} units"]
    return lines


def _printed(cell) -> List[Tuple[str, str]]:
    """(gate, quantity) of every traced value the script prints (every one but the biases: b_f, …)."""
    return [(gate, q) for gate, quantities in cell.pipeline for q in quantities if q != "bias"]


# -- the script ---------------------------------------------------------------------------

def _check(trace) -> None:
    one_cell(trace, "the step as code")
    if trace.has_gradients:
        raise OptionError("the step as code is the forward step; the backward pass is not written out: "
                          "leave out --backward (or save it as CSV)", "backward")
    params = trace.params
    if params is None:
        raise OptionError("this trace was read from a file and holds no weights, and the script needs them: "
                          "make it with lstmtrace step or run", "format")
    count = sum(a.size for a in (params.W, params.U, params.b, params.P, params.W_hr) if a is not None)
    if count > MAX_WEIGHTS:
        raise OptionError(f"the weights hold {count:,} numbers, more than the {MAX_WEIGHTS:,} a script sets "
                          "out one by one: save them with `lstmtrace params --weights … -o cell.npz` and "
                          "load them in your own code with np.load('cell.npz')", "format")


def to_python(trace, title: Optional[str] = None) -> str:
    """A standalone numpy script that recomputes ``trace`` and prints every value, bit for bit.

    An OptionError (``.option`` names the setting) for what it cannot write: several
    cells (a :class:`lstmtrace.Stack`), a backward pass, a trace read from a file (no
    weights), or weights of more than :data:`MAX_WEIGHTS` numbers.

    >>> import lstmtrace
    >>> script = lstmtrace.step(lstmtrace.Parameters.identity(1, 1), [0.5]).to_python()
    >>> import contextlib, io
    >>> with contextlib.redirect_stdout(io.StringIO()) as out:
    ...     exec(script, {})
    >>> out.getvalue().splitlines()[-1]
    'h = [0.17426971865610508]'
    """
    _check(trace)
    params, cell = trace.params, trace.cell
    E, H, T = trace.input_size, trace.hidden_size, trace.steps
    sequence = T > 1
    reverse = getattr(trace, "direction", "forward") == "reverse"
    functions, definitions = _functions(cell)
    first = trace.values(T if reverse else 1)

    command = "lstmtrace run" if sequence else "lstmtrace step"
    about = ["One LSTM step, as lstmtrace traced it, written out as numpy code." if not sequence else
             f"An LSTM cell over a sequence of {T} steps{' in reverse (x_T first)' if reverse else ''}, as "
             "lstmtrace traced it, written out as numpy code."]
    if title:
        about += ["", *title.replace('"""', "'''").splitlines()]
    about += ["",
              f"Save it as {'run' if sequence else 'step'}.py and run it:  python {'run' if sequence else 'step'}.py",
              "",
              "It sets the inputs and the weights to the traced values, every digit (each number reads back",
              "as the same float), and computes the step one equation per line, with the float operations of",
              "lstmtrace (the same sums in the same order), so every number it prints is the traced one, to",
              "the last bit. Each vector prints as a Python list: paste it back into Python as it is.",
              "",
              "The names: f, i, o are colah's f_t, i_t, o_t; g is his candidate C~_t (C-tilde; PyTorch's g),",
              "and W_g, U_g, b_g are his W_C, b_C; c is C_t and h is h_t. His W_f·[h_{t-1}, x_t] multiplies",
              "one matrix by h_{t-1} and x_t stacked: that matrix is U_f and W_f side by side, so it is",
              "W_f @ x + U_f @ h_prev here. `*` is numpy's unit-by-unit product, `@` the matrix product.",
              f"Written by {command} --format python."]
    out = ['"""' + "\n".join(about).replace("\\", "\\\\") + '\n"""', "import numpy as np", ""]
    R = H if cell.proj_size is None else cell.proj_size
    sizes = f"E, H = {E}, {H}  # x has E numbers; each gate, c and h have H"
    if cell.proj_size is not None:
        sizes = f"E, H, P = {E}, {H}, {R}  # x has E numbers; each gate and c have H; h has P (the projection)"
    out += [sizes, ""]

    xs = trace.block("given", "x")
    if sequence:
        out += [f"# The sequence x_1 ... x_{T}, one row per step (T = {T})",
                f"xs = {_matrix(xs)}",
                f"h0 = {_vector(first.given.h_prev)}  # h before step {T if reverse else 1}, the first to run",
                f"c0 = {_vector(first.given.c_prev)}  # c before it", ""]
    else:
        out += ["# The step's inputs",
                f"x = {_vector(xs[0])}  # x_t",
                f"h_prev = {_vector(first.given.h_prev)}  # h_{{t-1}}, the hidden state before the step",
                f"c_prev = {_vector(first.given.c_prev)}  # C_{{t-1}}, the cell state before the step", ""]

    out.append("# The weights: W_f (H×E) multiplies x, U_f (H×" + ("P" if cell.proj_size else "H")
               + ") multiplies h_prev, b_f is added; the same for i, g and o")
    for name in cell.weighted:
        gate = params[name]
        k = cell.gate(name).index
        out += [f"W_{k} = {_matrix(gate.W)}", f"U_{k} = {_matrix(gate.U)}", f"b_{k} = {_vector(gate.b)}"]
        if gate.P is not None:
            out.append(f"P_{k} = {_vector(gate.P)}  # peephole weights: one per unit, times the cell state")
    for spec in cell.gates:
        if not spec.weights:
            out.append(f"# ({_GATE_WORDS[spec.name]} has no weights: "
                       f"{cell.weightless(spec.name)[0].replace(chr(0x2212), '-')})")
    if cell.proj_size is not None:
        out.append(f"W_hr = {_matrix(params.W_hr)}  # the projection (P×H): h = W_hr @ (o * {_act_c(cell)})")
    out.append("")

    letters = [cell.gate(name).index for name in cell.weighted]
    if len(letters) > 1:
        out += ["# The gates' products are taken together, as lstmtrace and PyTorch take them: W stacks",
                f"# {', '.join(f'W_{k}' for k in letters)} ({len(letters)}H×E) and U the U's. W_{letters[0]} @ x "
                "alone is the same sum of products,",
                "# but BLAS may add its terms in another order for another number of rows, and then the last",
                "# bit differs (it often does).",
                f"W = np.vstack([{', '.join(f'W_{k}' for k in letters)}])",
                f"U = np.vstack([{', '.join(f'U_{k}' for k in letters)}])", ""]
    else:
        out += [f"W, U = W_{letters[0]}, U_{letters[0]}", ""]

    for definition in definitions:
        out += ["", definition]
    out.append("")

    body = _step_lines(cell, functions)
    prints = [f'print("{variable(g, q, cell)} =", {variable(g, q, cell)}.tolist())' for g, q in _printed(cell)]
    if sequence:
        order = f"range({T}, 0, -1)" if reverse else f"range(1, {T + 1})"
        why = ("  # in reverse: x_T first; step t is still the one that reads x_t" if reverse else "")
        out += ["h_prev, c_prev = h0, c0",
                f"for t in {order}:{why}",
                "    x = xs[t - 1]  # x_t"]
        out += ["    " + line if line else "" for line in body]
        out += ["", "    # Every value of step t, every digit", '    print(f"step {t}")']
        out += ["    " + line for line in prints]
        out += ["    h_prev, c_prev = h, c  # carried to the next step"]
    else:
        out += body
        out += ["", "# Every value of the step, every digit"] + prints
    return "\n".join(out) + "\n"
