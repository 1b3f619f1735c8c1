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
from lstmtrace.rows import PARAM_GRADS
from lstmtrace.trace import Trace, make_trace

__all__ = ["LOSSES", "PARAM_GRADS", "backward", "backward_values", "upstream"]

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


def backward_values(params, forward: np.ndarray, dh: np.ndarray, dc_last: Optional[np.ndarray] = None,
                    param_grads: str = "per-step"):
    """Every gradient of every step (T × m), from the forward values (T × (E + 27H) for the default LSTM).

    ``dh`` (T × H, or T × P with a projection) is dL/dh_t from the loss directly, ``dc_last``
    an upstream dL/dc of the last step (zero when not given).  The row layout of each step is
    :func:`lstmtrace.cell.layout`'s ``"grad"`` part: the forward quantities' gradients
    in pipeline order, then each gate's dL/dW (H·E, row-major), dL/dU (H·H), dL/db (and dL/dP),
    then a projection's dL/dW_hr.

    With ``param_grads="total"`` it returns ``(quantities, totals)``: each step's row only up to
    the parameters' gradients (T × (E + 27H)), and the parameters' gradients once, summed over the
    steps (one row of the rest of the layout, computed as matrix products over every step at once);
    ``"none"``: ``(quantities, None)``.

    >>> from lstmtrace import Parameters, run
    >>> p = Parameters.random(1, 1, seed=0)
    >>> forward = run(p, [[1.0], [2.0]]).rows()
    >>> q, totals = backward_values(p, forward, np.array([[0.0], [1.0]]), param_grads="total")
    >>> q.shape, totals.shape      # 1 + 27 numbers a step; then W, U, b of the four gates, once
    ((2, 28), (12,))
    """
    if param_grads not in PARAM_GRADS:
        raise OptionError(f"param_grads must be one of {', '.join(PARAM_GRADS)}, not {param_grads!r}", "param_grads")
    (T, _), E, H, spec = forward.shape, params.input_size, params.hidden_size, params.cell
    plan = _plan(spec)
    early, late = plan.phases[0], (plan.phases[1] if len(plan.phases) > 1 else None)
    w, P = plan.weighted, params.P.reshape(-1, H)
    per_step = param_grads == "per-step"
    where = layout(E, H, "grad", spec)
    Q = layout(E, H, "forward", spec).width  # the quantities' gradients: the first Q numbers of a gradient row
    grads = np.empty((T, where.width if per_step else Q))
    # one step's values and gradients, named once and reused step after step (as run does)
    v = Values(np.empty(forward.shape[1]), E, H, cell=spec)
    d = Values(np.empty(where.width), E, H, "grad", spec)  # d.q holds dL/dq
    x, h_prev, c_prev = v.given
    f, i, g, o = v.gates.act  # g is c̃ (views of v's matrices: rows of the gates × H act)
    act_c, c = v.hidden[0], v.cell.c  # tanh(c), or the variant's cell activation of c
    total = param_grads == "total"
    if total:  # what the summed parameters' gradients are made of, gathered over the steps
        dz_all = np.empty((T,) + d.gates.preact[w].shape)
        dp_early, dp_late = [None] * T, [None] * T  # each step's dL/dP, added up in step order after
        dh_all = np.empty((T, dh.shape[1])) if spec.proj_size is not None else None
    dh_next = np.zeros(dh.shape[1])  # H, or P with a projection
    dc_next = np.zeros(H) if dc_last is None else np.asarray(dc_last, float)
    for t in reversed(range(T)):  # the chain rule runs from the last step back to the first
        np.copyto(v.row, forward[t])
        v.gather()
        d.hidden.h[:] = dh_t = dh[t] + dh_next  # from the loss, and from step t+1 through its h_prev
        if spec.proj_size is not None:  # h = W_hr·m, m = o⊙tanh(c)
            dm = d.hidden[1][:] = params.W_hr.T @ dh_t
            if per_step:
                d.hidden.W_hr[:] = np.outer(dh_t, v.hidden[1]).reshape(-1)
            elif total:
                dh_all[t] = dh_t
        else:
            dm = dh_t
        d.gates.act[3] = dm * act_c  # the output gate's
        d.hidden[0][:] = dm * o
        dc = spec.cell_activation.backward(d.hidden[0], act_c, c) + dc_next
        if late is not None:  # the output gate peeped at c: its preact's gradient flows into c too
            _activations_backward(late, v, d, spec.clip)
            k, j = late.peep
            d.gates.Pc[k] = d.gates.preact[k]
            if per_step:
                d.gates.P[k] = d.gates.preact[k] * c
            elif total:
                dp_late[t] = d.gates.preact[k] * c
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
            if per_step:
                d.gates.P[k] = d.gates.preact[k] * c_prev
            elif total:
                dp_early[t] = d.gates.preact[k] * c_prev
            d.given.c_prev[:] = dc_next = dc_next + (P[j] * d.gates.preact[k]).sum(axis=0)
        dz = d.gates.preact[w]  # the gates with weights, in the order of params.W's row blocks
        d.gates.Wx[w] = d.gates.Uh[w] = d.gates.bias[w] = dz
        d.given.x[:] = params.W.T @ dz.reshape(-1)
        d.given.h_prev[:] = dh_next = params.U.T @ dz.reshape(-1)  # handed back to step t-1
        if per_step:
            d.gates.W[w] = (dz[:, :, None] * x).reshape(len(dz), -1)  # dL/dW = dL/dpreact ⊗ x, row by row
            d.gates.U[w] = (dz[:, :, None] * h_prev).reshape(len(dz), -1)  # dL/dU = dL/dpreact ⊗ h_prev
            d.gates.b[w] = dz
        elif total:
            dz_all[t] = dz
        d.flush()
        grads[t] = d.row if per_step else d.row[:Q]
    if not total:
        return grads if per_step else (grads, None)
    # Σ_t dL/dpreact_t ⊗ x_t over every step at once: one matrix product a weight, not T outer products
    xs, hs = (forward[:, layout(E, H, cell=spec).slices["given", q]] for q in ("x", "h_prev"))
    G = len(dz_all[0])
    dZ = dz_all.reshape(T, -1)  # T × (gates·H), the rows of params.W
    d.gates.W[w] = (dZ.T @ xs).reshape(G, -1)
    d.gates.U[w] = (dZ.T @ hs).reshape(G, -1)
    d.gates.b[w] = dz_all.sum(axis=0)
    if early.peep is not None:
        d.gates.P[early.peep[0]] = np.sum(dp_early, axis=0)
    if late is not None:
        d.gates.P[late.peep[0]] = np.sum(dp_late, axis=0)
    if spec.proj_size is not None:
        m = forward[:, layout(E, H, cell=spec).groups["hidden"][1][1]]  # o⊙tanh(c), step by step
        d.hidden.W_hr[:] = (dh_all.T @ m).reshape(-1)
    d.flush()
    return grads, d.row[Q:].copy()


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
             loss_on: str = "last", param_grads: str = "total") -> Trace:
    """``trace`` with its gradients: dL/d(every quantity) of every step, and dL/dW, dU, db.

    The loss is ``"sum"`` (L = Σ h_T, the default) or ``"mse"`` (L = ½‖h_T − target‖²),
    on the last step's h or, with ``loss_on="all"``, summed over every step's. Or give
    the upstream gradient directly: ``dh`` = dL/dh_T (and ``dc`` = dL/dc_T).
    The trace must hold its weights (one made by step or run, not read from a file).

    ``param_grads`` says how the parameters' gradients (grad:W, grad:U, grad:b, and grad:P,
    grad:W_hr where the cell has them) are kept: ``"total"`` (the default) once, summed over the
    steps, in rows at step 0 (the whole gradient, what an optimiser uses); ``"per-step"`` each
    step's own contribution, in that step's rows (T times the rows); ``"none"`` not at all.

    >>> from lstmtrace import Parameters, run, step
    >>> t = backward(step(Parameters.identity(2, 2), [1.0, -1.0]))
    >>> t.value("hidden", "grad:h"), t.value("forget", "grad:preact")
    (array([1., 1.]), array([0., 0.]))
    >>> t = backward(run(Parameters.identity(2, 2), [[1.0, -1.0], [0.5, 0.5]]))
    >>> t.block("output", "grad:b").shape, t.frame.query("quantity == 'grad:b'")["step"].unique()
    ((1, 2), array([0], dtype=int32))
    """
    if param_grads not in PARAM_GRADS:
        raise OptionError(f"param_grads must be one of {', '.join(map(repr, PARAM_GRADS))}, not {param_grads!r}",
                          "param_grads")
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
        grads = backward_values(trace.params, forward, direct, dc, param_grads)
    if param_grads == "per-step":
        parts = [forward.reshape(-1), grads.reshape(-1)]
    else:
        quantities, totals = grads
        parts = [forward.reshape(-1), quantities.reshape(-1)] + ([totals] if totals is not None else [])
    return make_trace(np.concatenate(parts), trace.params, E, H, T, grad=param_grads)


def _upstream_vector(name: str, value, size: int) -> np.ndarray:
    array = np.array(value, dtype=np.float64)
    if array.shape != (size,):
        raise OptionError(f"{name} must have {size} values (the units of {name[1:]}), not {array.size}", name)
    if not np.isfinite(array).all():
        raise OptionError(f"{name} has {array[~np.isfinite(array)][0]}; lstmtrace needs finite numbers", name)
    return array
