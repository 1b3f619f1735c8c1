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
import numpy as np

from lstmtrace.params import GATES

__all__ = ["PIPELINE", "sigmoid", "forward"]

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


def forward(params, x: np.ndarray, h_prev: np.ndarray, c_prev: np.ndarray) -> dict:
    """One step; returns ``{(gate, quantity): vector}`` for every entry of PIPELINE, in order.

    Overflow is not warned about here: the caller checks every value and names
    the first one that is not finite.

    >>> from lstmtrace.params import Parameters
    >>> v = forward(Parameters.zeros(2, 2), np.ones(2), np.zeros(2), np.ones(2))
    >>> v["forget", "act"], v["cell", "c"]
    (array([0.5, 0.5]), array([0.5, 0.5]))
    """
    v = {("given", "x"): x, ("given", "h_prev"): h_prev, ("given", "c_prev"): c_prev}
    with np.errstate(over="ignore", invalid="ignore"):
        for gate in GATES:
            W, U, b = params[gate].W, params[gate].U, params[gate].b
            Wx = W @ x  # (H,)
            Uh = U @ h_prev  # (H,)
            preact = Wx + Uh + b
            act = np.tanh(preact) if gate == "candidate" else sigmoid(preact)
            v.update({(gate, "Wx"): Wx, (gate, "Uh"): Uh, (gate, "bias"): b,
                      (gate, "preact"): preact, (gate, "act"): act})
        f, i, g, o = (v[gate, "act"] for gate in GATES)
        forget_c_prev = f * c_prev
        input_candidate = i * g
        c = forget_c_prev + input_candidate
        tanh_c = np.tanh(c)
        h = o * tanh_c
    v.update({("cell", "forget*c_prev"): forget_c_prev, ("cell", "input*candidate"): input_candidate,
              ("cell", "c"): c, ("hidden", "tanh(c)"): tanh_c, ("hidden", "h"): h})
    return v
