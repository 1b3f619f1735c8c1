"""One LSTM time step, written as its equations, keeping every intermediate.

The equations are PyTorch's ``torch.nn.LSTMCell`` [1]_ (and colah's
"Understanding LSTM Networks" [2]_, which draws them)::

    f  = σ(W_f·x + U_f·h_prev + b_f)        forget gate
    i  = σ(W_i·x + U_i·h_prev + b_i)        input gate
    c̃  = tanh(W_g·x + U_g·h_prev + b_g)     candidate (PyTorch's g)
    o  = σ(W_o·x + U_o·h_prev + b_o)        output gate
    c  = f⊙c_prev + i⊙c̃
    h  = o⊙tanh(c)

.. [1] https://pytorch.org/docs/stable/generated/torch.nn.LSTMCell.html
.. [2] https://colah.github.io/posts/2015-08-Understanding-LSTMs/
"""
from typing import Optional

import numpy as np

from lstmtrace.params import GATES

__all__ = ["PIPELINE", "sigmoid", "forward", "step_values", "unpack"]

PIPELINE = (
    ("given", ("x", "h_prev", "c_prev")),
    *((gate, ("Wx", "Uh", "bias", "preact", "act")) for gate in GATES),
    ("cell", ("forget*c_prev", "input*candidate", "c")),
    ("hidden", ("tanh(c)", "h")),
)
"""Every (gate, quantities) of a step, in the order they are computed and traced."""


def sigmoid(z: np.ndarray) -> np.ndarray:
    """σ(z) = 1 / (1 + e^−z), computed without overflow for any z.

    >>> sigmoid(np.array([-1000.0, 0.0, 1000.0]))
    array([0. , 0.5, 1. ])
    """
    e = np.exp(-np.abs(z))  # in (0, 1]: never overflows, at worst underflows to 0
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def step_values(params, x: np.ndarray, h_prev: np.ndarray, c_prev: np.ndarray,
                out: Optional[np.ndarray] = None) -> np.ndarray:
    """One step's every value as one vector in PIPELINE order: E + 27H numbers.

    This is the trace's value column for the step, written in place into ``out``
    when given (a row of a preallocated T × (E + 27H) array, say).  The four gates
    are computed together, with params.W (4H×E) and params.U (4H×H) stacked in
    the order forget, input, candidate, output.  Overflow is not warned about
    here: the caller checks every value and names the first that is not finite.
    """
    E, H = params.input_size, params.hidden_size
    out = np.empty(E + 27 * H) if out is None else out
    given, gates, rest = out[:E + 2 * H], out[E + 2 * H:E + 22 * H], out[E + 22 * H:]
    given[:E], given[E:E + H], given[E + H:] = x, h_prev, c_prev
    Wx, Uh, bias, preact, act = gates.reshape(4, 5, H).transpose(1, 0, 2)  # each (gate, unit)
    with np.errstate(over="ignore", invalid="ignore"):
        Wx[:] = (params.W @ x).reshape(4, H)  # W·x of all four gates in one product
        Uh[:] = (params.U @ h_prev).reshape(4, H)
        bias[:] = params.b.reshape(4, H)
        np.add(Wx + Uh, bias, out=preact)
        act[:] = sigmoid(preact)  # σ for the forget, input and output gates ...
        np.tanh(preact[2], out=act[2])  # ... and tanh for the candidate
        f, i, g, o = act
        forget_c_prev, input_candidate, c, tanh_c, h = rest.reshape(5, H)
        np.multiply(f, c_prev, out=forget_c_prev)  # c = f⊙c_prev + i⊙c̃
        np.multiply(i, g, out=input_candidate)
        np.add(forget_c_prev, input_candidate, out=c)
        np.tanh(c, out=tanh_c)  # h = o⊙tanh(c)
        np.multiply(o, tanh_c, out=h)
    return out


def forward(params, x: np.ndarray, h_prev: np.ndarray, c_prev: np.ndarray) -> dict:
    """One step; returns ``{(gate, quantity): vector}`` for every entry of PIPELINE, in order.

    >>> from lstmtrace.params import Parameters
    >>> v = forward(Parameters.zeros(2, 2), np.ones(2), np.zeros(2), np.ones(2))
    >>> v["forget", "act"], v["cell", "c"]
    (array([0.5, 0.5]), array([0.5, 0.5]))
    """
    values = step_values(params, x, h_prev, c_prev)
    return unpack(values, params.input_size, params.hidden_size)


def unpack(values: np.ndarray, input_size: int, hidden_size: int) -> dict:
    """``{(gate, quantity): view}`` of one step's values, in PIPELINE order."""
    out, start = {}, 0
    for gate, quantities in PIPELINE:
        for quantity in quantities:
            n = input_size if quantity == "x" else hidden_size
            out[gate, quantity] = values[start:start + n]
            start += n
    return out
