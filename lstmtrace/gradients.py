"""The backward pass: dL/d(every traced quantity) and dL/dW, dU, db, by the chain rule in numpy.

Going back through one step, from dL/dh and the dL/dc that the next step hands
back (the derivatives of σ and tanh are written with their own outputs)::

    dL/do        = dL/dh ⊙ tanh(c)
    dL/dtanh(c)  = dL/dh ⊙ o
    dL/dc        = dL/dtanh(c) ⊙ (1 − tanh²(c)) + dL/dc from step t+1
    dL/df        = dL/dc ⊙ c_prev          dL/dc_prev = dL/dc ⊙ f
    dL/di        = dL/dc ⊙ c̃               dL/dc̃      = dL/dc ⊙ i
    dL/dpreact   = dL/dact ⊙ act ⊙ (1 − act)   for f, i, o (σ)
                 = dL/dact ⊙ (1 − act²)        for c̃ (tanh)
    dL/dWx = dL/dUh = dL/dbias = dL/dpreact
    dL/dW = dL/dpreact ⊗ x,  dL/dU = dL/dpreact ⊗ h_prev,  dL/db = dL/dpreact
    dL/dx = Σ_gates Wᵀ·dL/dpreact,  dL/dh_prev = Σ_gates Uᵀ·dL/dpreact

A step's h_prev and c_prev are the previous step's h and c, so their gradients
flow back into it (backpropagation through time); each step's dL/dW, dU, db is
that step's contribution, and their sum over steps is the whole gradient.
"""
from typing import Optional, Sequence

import numpy as np

from lstmtrace.cell import Values, _plan, layout
from lstmtrace.errors import OptionError
from lstmtrace.trace import Trace, make_trace

__all__ = ["LOSSES", "backward", "backward_values", "upstream"]

LOSSES = ("sum", "mse")


def upstream(h: np.ndarray, loss: str = "sum", target: Optional[Sequence[float]] = None,
             loss_on: str = "last") -> np.ndarray:
    """dL/dh_t straight from the loss, for each step (T × H): zero except at the steps it is on.

    ``loss="sum"``: L = Σ h (dL/dh = 1); ``"mse"``: L = ½‖h − target‖² (dL/dh = h − target);
    on the last step's h, or with ``loss_on="all"`` summed over every step's.

    >>> upstream(np.array([[0.5, 0.2], [0.1, 0.3]]), "mse", target=[0.0, 1.0])
    array([[ 0. ,  0. ],
           [ 0.1, -0.7]])
    """
    if loss not in LOSSES:
        raise OptionError(f"unknown loss {loss!r}; the losses are {', '.join(LOSSES)}", "loss")
    if loss_on not in ("last", "all"):
        raise OptionError(f"loss_on must be 'last' or 'all', not {loss_on!r}", "loss_on")
    T, H = h.shape
    if loss == "mse":
        if target is None:
            raise OptionError("the mse loss needs a target", "target")
        target = np.array(target, dtype=np.float64)
        if target.shape != (H,) or not np.isfinite(target).all():
            raise OptionError(f"the target must be {H} finite numbers (the hidden size), not "
                             f"{target.size} of them" + ("" if np.isfinite(target).all() else " all finite"), "target")
    direct = np.ones_like(h) if loss == "sum" else h - target
    if loss_on == "last":
        direct[:-1] = 0.0
    return direct


def backward_values(params, forward: np.ndarray, dh: np.ndarray, dc_last: Optional[np.ndarray] = None) -> np.ndarray:
    """Every gradient of every step (T × m), from the forward values (T × (E + 27H) for the default LSTM).

    ``dh`` (T × H, or T × P with a projection) is dL/dh_t from the loss directly, ``dc_last``
    an upstream dL/dc of the last step (zero when not given).  The row layout of each step is
    :func:`lstmtrace.cell.layout`'s ``"grad"`` part: the forward quantities' gradients
    in pipeline order, then each gate's dL/dW (H·E, row-major), dL/dU (H·H), dL/db (and dL/dP),
    then a projection's dL/dW_hr.
    """
    (T, _), E, H, spec = forward.shape, params.input_size, params.hidden_size, params.cell
    plan = _plan(spec)
    early, late = plan.phases[0], (plan.phases[1] if len(plan.phases) > 1 else None)
    w, P = plan.weighted, params.P.reshape(-1, H)
    grads = np.empty((T, layout(E, H, "grad", spec).width))
    dh_next = np.zeros(dh.shape[1])  # H, or P with a projection
    dc_next = np.zeros(H) if dc_last is None else np.asarray(dc_last, float)
    for t in reversed(range(T)):  # the chain rule runs from the last step back to the first
        v, d = Values(forward[t], E, H, cell=spec), Values(grads[t], E, H, "grad", spec)  # d.q holds dL/dq
        x, h_prev, c_prev = v.given
        f, i, g, o = v.gates.act  # g is c̃
        act_c, c = v.hidden[0], v.cell.c  # tanh(c), or the variant's cell activation of c

        d.hidden.h[:] = dh_t = dh[t] + dh_next  # from the loss, and from step t+1 through its h_prev
        if spec.proj_size is not None:  # h = W_hr·m, m = o⊙tanh(c)
            dm = d.hidden[1][:] = params.W_hr.T @ dh_t
            d.hidden.W_hr[:] = np.outer(dh_t, v.hidden[1]).reshape(-1)
        else:
            dm = dh_t
        d.gates.act[3] = dm * act_c  # the output gate's
        d.hidden[0][:] = dm * o
        dc = spec.cell_activation.backward(d.hidden[0], act_c, c) + dc_next
        if late is not None:  # the output gate peeped at c: its preact's gradient flows into c too
            _activations_backward(late, v, d, spec.clip)
            k, j = late.peep
            d.gates.Pc[k] = d.gates.preact[k]
            d.gates.P[k] = d.gates.preact[k] * c
            dc = dc + (P[j] * d.gates.preact[k]).sum(axis=0)
        d.cell.c[:] = d.cell.forget_c_prev[:] = d.cell.input_candidate[:] = dc
        d.gates.act[0], d.gates.act[1], d.gates.act[2] = dc * c_prev, dc * g, dc * i  # c = f⊙c_prev + i⊙c̃
        if plan.complement is not None:  # coupled: f = 1 − i, so i reaches c through f as well
            forget, input_ = plan.complement
            d.gates.act[input_] -= d.gates.act[forget]
        _activations_backward(early, v, d, spec.clip)  # a gate taken away (act = 1) stops here
        d.given.c_prev[:] = dc_next = dc * f
        if early.peep is not None:  # f and i peeped at c_prev
            k, j = early.peep
            d.gates.Pc[k] = d.gates.preact[k]
            d.gates.P[k] = d.gates.preact[k] * c_prev
            d.given.c_prev[:] = dc_next = dc_next + (P[j] * d.gates.preact[k]).sum(axis=0)
        dz = d.gates.preact[w]  # the gates with weights, in the order of params.W's row blocks
        d.gates.Wx[w] = d.gates.Uh[w] = d.gates.bias[w] = dz
        d.given.x[:] = params.W.T @ dz.reshape(-1)
        d.given.h_prev[:] = dh_next = params.U.T @ dz.reshape(-1)  # handed back to step t-1
        d.gates.W[w] = (dz[:, :, None] * x).reshape(len(dz), -1)  # dL/dW = dL/dpreact ⊗ x, row by row
        d.gates.U[w] = (dz[:, :, None] * h_prev).reshape(len(dz), -1)  # dL/dU = dL/dpreact ⊗ h_prev
        d.gates.b[w] = dz
        d.flush()
    return grads


def _activations_backward(phase, v, d, clip: Optional[float]) -> None:
    """dL/dpreact (and dL/dclipped) of one phase's gates, from their dL/dact."""
    rows = phase.rows
    z = v.gates.preact if clip is None else v.gates.clipped  # what the activations were given
    dz = d.gates.preact if clip is None else d.gates.clipped
    for activation, where in phase.activations:  # σ′ = σ(1 − σ) for f, i, o; tanh′ = 1 − tanh² for c̃
        dz[where] = activation.backward(d.gates.act[where], v.gates.act[where], z[where])
    if clip is not None:  # clip passes the gradient where −clip ≤ preact ≤ clip, as torch.clamp does
        d.gates.preact[rows] = dz[rows] * (np.abs(v.gates.preact[rows]) <= clip)


def backward(trace: Trace, loss: str = "sum", target: Optional[Sequence[float]] = None,
             dh: Optional[Sequence[float]] = None, dc: Optional[Sequence[float]] = None,
             loss_on: str = "last") -> Trace:
    """``trace`` with its gradients: dL/d(every quantity) and dL/dW, dU, db of every step.

    The loss is ``"sum"`` (L = Σ h_T, the default) or ``"mse"`` (L = ½‖h_T − target‖²),
    on the last step's h or, with ``loss_on="all"``, summed over every step's. Or give
    the upstream gradient directly: ``dh`` = dL/dh_T (and ``dc`` = dL/dc_T).
    The trace must hold its weights (one made by step or run, not read from a file).

    >>> from lstmtrace import Parameters, step
    >>> t = backward(step(Parameters.identity(2, 2), [1.0, -1.0]))
    >>> t.value("hidden", "grad:h"), t.value("forget", "grad:preact")
    (array([1., 1.]), array([0., 0.]))
    """
    if trace.params is None:
        raise ValueError("the backward pass needs the weights, and a trace read from a file has none: "
                         "trace again with step or run")
    if trace.direction != "forward":
        raise OptionError("the backward pass is traced for a cell that runs forward; a reverse cell's "
                          "is not traced yet", "direction")
    E, H, T = trace.input_size, trace.hidden_size, trace.steps
    h = trace.block("hidden", "h")
    if dh is not None:
        dh = _upstream_vector("dh", dh, h.shape[1])
        direct = np.zeros(h.shape)
        direct[-1] = dh
    else:
        direct = upstream(h, loss, target, loss_on)
    dc = None if dc is None else _upstream_vector("dc", dc, H)
    forward = trace.rows()
    with np.errstate(over="ignore", invalid="ignore"):
        grads = backward_values(trace.params, forward, direct, dc)
    values = np.concatenate([forward.reshape(-1), grads.reshape(-1)])
    return make_trace(values, trace.params, E, H, T, grad=True)


def _upstream_vector(name: str, value, size: int) -> np.ndarray:
    array = np.array(value, dtype=np.float64)
    if array.shape != (size,):
        raise OptionError(f"{name} must have {size} values (the units of {name[1:]}), not {array.size}", name)
    if not np.isfinite(array).all():
        raise OptionError(f"{name} has {array[~np.isfinite(array)][0]}; lstmtrace needs finite numbers", name)
    return array
