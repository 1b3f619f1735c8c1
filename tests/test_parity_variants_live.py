"""LSTM variants against independent oracles, run now on fresh weights and inputs (E = 3, H = 4, T = 5).

The committed fixtures (tests/fixtures/variant_*.npz, tests/test_variants.py) need no oracle;
these tests run the oracles themselves wherever they import, each skipped cleanly where not:

- onnxruntime's LSTM operator (float32, opset 14, built with onnx.helper): peepholes ``P``,
  ``input_forget`` (coupled), ``clip`` and the ``activations`` attribute (HardSigmoid with its
  alpha and beta given and left at their defaults, Tanh for the gates, Relu, Softsign, and
  Affine(1, 0) for linear).  Its gate order is i, o, f, c for W, R and both halves of B
  (Wb then Rb), and i, o, f for P.  lstmtrace runs in float64 on the very float32 numbers
  onnxruntime was given: every h_t and c_t agree to 1e-5 · max(1, largest |value|).
- ``torch.nn.LSTM(E, H, proj_size=P)`` in float64, its state_dict loaded through an .npz
  and ``Parameters.load``: every h_t (the projected output) and every c_t (carried one step at
  a time, as nn.LSTM returns only the last) to 1e-12.
- Keras 3 ``layers.LSTM`` in float64 with ``recurrent_activation="hard_sigmoid"`` (Keras 3's
  relu6(x + 3)/6) and with ``activation="relu"`` (candidate and cell), its weights read back
  with ``Parameters.from_keras``: every h_t and c_t to 1e-10.
- Gradients of L = Σ h_T: autograd through torch.nn.LSTM itself (no projection, and
  proj_size=2), and through a hand-written float64 PyTorch cell of the variant equations
  (f and i peep at c_prev, o at the new c; the clip bounds each gate's pre-activation, peephole
  term included; Keras' hard_sigmoid written as clamp(x/6 + 1/2, 0, 1), since PyTorch's own
  hardsigmoid backward multiplies by 1/6 rounded to float32) for every preset, a projection, a
  clip and the other activations: every weight's summed gradient, dL/dx_t, dL/dh0 and dL/dc0
  agree with ``lstmtrace.backward`` to 1e-10 (relative and absolute).  The hand-written cell
  is itself checked against torch.nn.LSTM's forward to 1e-12.

Each case's data comes from a seed search like the fixtures' (different seeds): weights, both
biases and peepholes U(−1, 1), h0 and c0 nonzero, xs = scale · U(−1, 1), the first draw whose
values cross every kink of the case's activations and clip (relu at 0, hard_sigmoid's corners,
±clip), none within 1e-3 of one, and not every gate saturated.  Every forward case also shows
that the oracle is far (over 100 times the tolerance) from a plausible misreading of it, so that
a parity test cannot pass because the setting did nothing.
"""
import contextlib
import os

import numpy as np
import pytest

import lstmtrace
from lstmtrace import GATES, Gate, Parameters, Variant, backward
from lstmtrace.cell import activation
from lstmtrace.variant import PRESETS

E, H, T = 3, 4, 5
SEEDS = (7_100_000, 7_200_000, 7_300_000)  # the fixtures use seeds below 120 000
MARGIN = 1e-3  # no value this close to a kink it meets
ONNX_RTOL = 1e-5  # float32: times max(1, the largest |h| or |c|)
TORCH_ATOL = 1e-12
KERAS_ATOL = 1e-10
GRAD_TOL = 1e-10
TORCH_ORDER = ("input", "forget", "candidate", "output")  # PyTorch's i, f, g, o; Keras' i, f, c, o
ONNX_ORDER = ("input", "output", "forget", "candidate")  # ONNX's i, o, f, c
ONNX_PEEPHOLES = ("input", "output", "forget")


# -- the variant, read independently of lstmtrace's cell ---------------------------------

def weighted(v):
    """The gates that have weights under v, in lstmtrace's order."""
    return [g for g in GATES if g == "candidate" or (g not in v.without and not (g == "forget" and v.coupled))]


def peeping(v):
    return [g for g in weighted(v) if g != "candidate"] if v.peephole else []


def kinks(key):
    """Where an activation's derivative jumps."""
    if key.startswith("hard_sigmoid:"):
        alpha, beta = (float(s) for s in key.split(":", 1)[1].split(","))
        return [-beta / alpha, (1.0 - beta) / alpha]
    return {"relu": [0.0], "hard_sigmoid": [-3.0, 3.0]}.get(key, [])


# -- data ------------------------------------------------------------------------------------

def draw(seed, v, scale=1.0, float32=False):
    """Every weight of all four gates (both biases, peepholes) and W_hr, drawn in a fixed order
    whatever the variant; with float32, rounded to the numbers a float32 oracle holds."""
    rng = np.random.default_rng(seed)
    units = v.proj_size or H
    signed = lambda n: rng.uniform(0.1, 1.0, n) * rng.choice([-1.0, 1.0], n)
    d = {"xs": scale * rng.uniform(-1, 1, (T, E)), "h0": signed(units), "c0": signed(H)}
    for g in GATES:
        d[g] = {"W": rng.uniform(-1, 1, (H, E)), "U": rng.uniform(-1, 1, (H, units)),
                "b_ih": rng.uniform(-1, 1, H), "b_hh": rng.uniform(-1, 1, H), "P": rng.uniform(-1, 1, H)}
    d["W_hr"] = rng.uniform(-1, 1, (units, H))
    if float32:
        f32 = lambda a: np.asarray(a, np.float32).astype(np.float64)
        d = {k: ({p: f32(a) for p, a in x.items()} if isinstance(x, dict) else f32(x)) for k, x in d.items()}
    d["seed"], d["scale"] = seed, scale
    return d


def params_of(d, v):
    """lstmtrace's Parameters for variant v from a draw: b = b_ih + b_hh."""
    gates = {g: Gate(d[g]["W"], d[g]["U"], d[g]["b_ih"] + d[g]["b_hh"], d[g]["P"] if g in peeping(v) else None)
             for g in weighted(v)}
    return Parameters(gates, v, d["W_hr"] if v.proj_size else None)


def run(d, v):
    return lstmtrace.run(params_of(d, v), d["xs"], d["h0"], d["c0"])


def crosses_every_kink(trace, v):
    """Every kink of v met on both sides, none approached within MARGIN; some gate not saturated."""
    gated = [g for g in weighted(v) if g != "candidate"]
    seen = lambda g: trace.block(g, "clipped" if v.clip is not None else "preact")
    reach = lambda points: [k for k in points if v.clip is None or abs(k) < v.clip]  # within ±clip
    checks = [(seen("candidate"), reach(kinks(v.candidate_activation))),
              (trace.block("cell", "c"), kinks(v.cell_activation))]
    if gated:
        checks.append((np.concatenate([seen(g).ravel() for g in gated]), reach(kinks(v.gate_activation))))
    if v.clip is not None:
        checks.append((np.concatenate([trace.block(g, "preact").ravel() for g in weighted(v)]), [-v.clip, v.clip]))
    for values, points in checks:
        for k in points:
            if np.min(np.abs(values - k)) <= MARGIN or not (np.any(values < k) and np.any(values > k)):
                return False
    steep = not gated or np.any(np.abs(np.concatenate([trace.block(g, "preact").ravel() for g in gated])) < 1.5)
    return bool(steep and np.all(np.isfinite(trace.block("hidden", "h"))))


def fresh(seed, v, float32=False):
    """The first draw from seed on (inputs scaled up when ±1 reaches no kink) that crosses every kink of v."""
    for scale in (1.0, 2.0, 3.0, 4.0):
        for s in range(seed, seed + 40):
            d = draw(s, v, scale, float32)
            if crosses_every_kink(run(d, v), v):
                return d
    raise AssertionError(f"no draw from seed {seed} crosses every kink of {v!r}")


def assert_far(oracle, d, other, atol, what):
    """The oracle's h is over 100·atol from what lstmtrace computes for the misreading `other`."""
    gap = float(np.max(np.abs(oracle - run(d, other).block("hidden", "h"))))
    assert gap > 100 * atol, f"the oracle cannot tell {what} apart ({gap:.3g}): this case tests nothing"


# -- onnxruntime's LSTM operator ---------------------------------------------------------------

def onnx_activation(key):
    """lstmtrace's spelling → (ONNX activation, alpha or None, beta or None)."""
    if key.startswith("hard_sigmoid:"):
        alpha, beta = (float(s) for s in key.split(":", 1)[1].split(","))
        return "HardSigmoid", alpha, beta
    if key == "linear":
        return "Affine", 1.0, 0.0
    return {"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "Relu", "softsign": "Softsign"}[key], None, None


def onnx_lstm(d, v, alpha_beta=True):
    """onnxruntime's LSTM on d under v's attributes: every h_t (T×H) and c_t (T×H), as float64."""
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    f32 = lambda a: np.ascontiguousarray(a, np.float32)
    stack = lambda part, order: np.concatenate([d[g][part] for g in order])
    inits = [numpy_helper.from_array(f32(stack("W", ONNX_ORDER)[None]), "W"),
             numpy_helper.from_array(f32(stack("U", ONNX_ORDER)[None]), "R"),
             numpy_helper.from_array(f32(np.concatenate([stack("b_ih", ONNX_ORDER), stack("b_hh", ONNX_ORDER)])[None]),
                                     "B"),
             numpy_helper.from_array(f32(d["h0"][None, None]), "initial_h"),
             numpy_helper.from_array(f32(d["c0"][None, None]), "initial_c")]
    inputs = ["X", "W", "R", "B", "", "initial_h", "initial_c"]
    if v.peephole:
        inits.append(numpy_helper.from_array(f32(stack("P", ONNX_PEEPHOLES)[None]), "P"))
        inputs.append("P")
    attrs = {"hidden_size": H, "direction": "forward"}
    slots = [onnx_activation(k) for k in (v.gate_activation, v.candidate_activation, v.cell_activation)]
    if [s[0] for s in slots] != ["Sigmoid", "Tanh", "Tanh"]:
        attrs["activations"] = [s[0] for s in slots]
        if alpha_beta and any(s[1] is not None for s in slots):  # consumed by the activations that take them
            attrs["activation_alpha"] = [s[1] for s in slots if s[1] is not None]
            attrs["activation_beta"] = [s[2] for s in slots if s[2] is not None]
    if v.clip is not None:
        attrs["clip"] = float(v.clip)
    if v.coupled:
        attrs["input_forget"] = 1
    node = helper.make_node("LSTM", inputs, ["Y", "Y_h", "Y_c"], **attrs)
    graph = helper.make_graph(
        [node], "lstm", [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["T", 1, E])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["T", 1, 1, H]),
         helper.make_tensor_value_info("Y_h", TensorProto.FLOAT, [1, 1, H]),
         helper.make_tensor_value_info("Y_c", TensorProto.FLOAT, [1, 1, H])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    xs = f32(d["xs"][:, None, :])
    h = session.run(["Y"], {"X": xs})[0][:, 0, 0]
    c = [session.run(["Y_c"], {"X": xs[:t]})[0][0, 0] for t in range(1, T + 1)]  # c_t: the run over x_1..x_t
    return np.array(h, np.float64), np.array(c, np.float64)


ONNX_CASES = {  # name: (variant, a misreading the oracle must be far from, give alpha and beta)
    "peephole": (Variant(peephole=True), Variant(), True),
    "input_forget": (Variant(coupled=True), Variant(), True),
    "input_forget_peephole": (Variant(coupled=True, peephole=True), Variant(peephole=True), True),
    "clip": (Variant(clip=0.5), Variant(), True),
    "clip_peephole": (Variant(clip=0.5, peephole=True), Variant(peephole=True), True),
    "gate_hard_sigmoid": (Variant(gate_activation="hard_sigmoid:0.2,0.5"), Variant(gate_activation="hard_sigmoid"),
                          True),
    "gate_hard_sigmoid_default_alpha_beta": (Variant(gate_activation="hard_sigmoid:0.2,0.5"), Variant(), False),
    "gate_hard_sigmoid_0.3_0.6": (Variant(gate_activation="hard_sigmoid:0.3,0.6"),
                                  Variant(gate_activation="hard_sigmoid:0.2,0.5"), True),
    "gate_tanh": (Variant(gate_activation="tanh"), Variant(), True),
    "candidate_relu": (Variant(candidate_activation="relu"), Variant(), True),
    "cell_relu": (Variant(cell_activation="relu"), Variant(), True),
    "candidate_softsign": (Variant(candidate_activation="softsign"), Variant(), True),
    "niaf_affine": (PRESETS["niaf"], PRESETS["v"], True),
    "noaf_affine": (PRESETS["noaf"], PRESETS["v"], True),
}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("case", list(ONNX_CASES))
def test_onnxruntime_lstm_attributes_are_the_variant(case, seed):
    v, other, alpha_beta = ONNX_CASES[case]
    d = fresh(seed, v, float32=True)
    h, c = onnx_lstm(d, v, alpha_beta)
    trace = run(d, v)
    atol = ONNX_RTOL * max(1.0, float(np.max(np.abs(h))), float(np.max(np.abs(c))))
    np.testing.assert_allclose(trace.block("hidden", "h"), h, rtol=0, atol=atol)
    np.testing.assert_allclose(trace.block("cell", "c"), c, rtol=0, atol=atol)
    assert_far(h, d, other, atol, f"{v!r} from {other!r}")


# -- torch.nn.LSTM with a projection -----------------------------------------------------------

def torch_lstm(d, proj_size):
    """A float64 torch.nn.LSTM holding d's weights (PyTorch's i, f, g, o stacking)."""
    torch = pytest.importorskip("torch")
    lstm = torch.nn.LSTM(E, H, proj_size=proj_size, dtype=torch.float64)
    state = {"weight_ih_l0": np.concatenate([d[g]["W"] for g in TORCH_ORDER]),
             "weight_hh_l0": np.concatenate([d[g]["U"] for g in TORCH_ORDER]),
             "bias_ih_l0": np.concatenate([d[g]["b_ih"] for g in TORCH_ORDER]),
             "bias_hh_l0": np.concatenate([d[g]["b_hh"] for g in TORCH_ORDER])}
    if proj_size:
        state["weight_hr_l0"] = d["W_hr"]
    assert set(state) == set(lstm.state_dict())
    lstm.load_state_dict({k: torch.tensor(a) for k, a in state.items()})
    return lstm


@pytest.mark.parametrize("proj_size, seed", [(2, s) for s in SEEDS] + [(1, SEEDS[0] + 500), (3, SEEDS[1] + 500)])
def test_torch_lstm_with_projection_every_step(tmp_path, proj_size, seed):
    torch = pytest.importorskip("torch")
    v = Variant(proj_size=proj_size)
    d = fresh(seed, v)
    lstm = torch_lstm(d, proj_size)
    xs = torch.tensor(d["xs"])
    state = (torch.tensor(d["h0"])[None], torch.tensor(d["c0"])[None])
    with torch.no_grad():
        out, _ = lstm(xs, state)
        hs, cs = [], []
        for t in range(T):  # nn.LSTM returns only the last c: carry (h, c) one step at a time
            _, state = lstm(xs[t:t + 1], state)
            hs.append(state[0][0].numpy())
            cs.append(state[1][0].numpy())
    np.testing.assert_allclose(np.array(hs), out.numpy(), rtol=0, atol=TORCH_ATOL)  # the oracle agrees with itself
    np.savez(tmp_path / "lstm.npz", **{k: a.numpy() for k, a in lstm.state_dict().items()})
    params = Parameters.load(tmp_path / "lstm.npz", variant=v)
    assert params == params_of(d, v)
    trace = lstmtrace.run(params, d["xs"], d["h0"], d["c0"])
    assert trace.block("hidden", "h").shape == (T, proj_size)
    np.testing.assert_allclose(trace.block("hidden", "h"), out.numpy(), rtol=0, atol=TORCH_ATOL)
    np.testing.assert_allclose(trace.block("cell", "c"), np.array(cs), rtol=0, atol=TORCH_ATOL)
    # a projection that did nothing: W_hr a truncation of o⊙tanh(c) to its first units
    truncated = dict(d, W_hr=np.eye(proj_size, H))
    gap = float(np.max(np.abs(out.numpy() - run(truncated, v).block("hidden", "h"))))
    assert gap > 100 * TORCH_ATOL


# -- Keras 3 -----------------------------------------------------------------------------------

def import_keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    try:
        return pytest.importorskip("keras")
    except Exception as e:  # whatever a backend that fails to load raises: skip
        pytest.skip(f"keras does not import: {type(e).__name__}: {e}")


@contextlib.contextmanager
def keras_float64(keras):
    """floatx and the dtype policy float64 (the policy, once made, no longer follows floatx); both restored."""
    floatx, policy = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    try:
        yield
    finally:
        keras.config.set_floatx(floatx)
        keras.config.set_dtype_policy(policy)


KERAS_CASES = {  # name: (LSTM keyword arguments, the variant, a misreading)
    "hard_sigmoid": ({"recurrent_activation": "hard_sigmoid"}, Variant(gate_activation="hard_sigmoid"),
                     Variant(gate_activation="hard_sigmoid:0.2,0.5")),
    "relu": ({"activation": "relu"}, Variant(candidate_activation="relu", cell_activation="relu"),
             Variant(candidate_activation="relu")),
}


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Keras' own, from its torch backend
@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("case", list(KERAS_CASES))
def test_keras_lstm_activations_are_the_variant(case, seed):
    keras = import_keras()
    kwargs, v, other = KERAS_CASES[case]
    d = fresh(seed, v)
    numpy = keras.ops.convert_to_numpy
    with keras_float64(keras):
        layer = keras.layers.LSTM(H, return_sequences=True, return_state=True, **kwargs)
        layer.build((1, None, E))
        layer.set_weights([np.concatenate([d[g]["W"].T for g in TORCH_ORDER], axis=1),
                           np.concatenate([d[g]["U"].T for g in TORCH_ORDER], axis=1),
                           np.concatenate([d[g]["b_ih"] + d[g]["b_hh"] for g in TORCH_ORDER])])
        state = [d["h0"][None], d["c0"][None]]
        seq = numpy(layer(d["xs"][None], initial_state=state)[0])[0]
        hs, cs = [], []
        for t in range(T):  # every c_t: carry (h, c) one step at a time
            _, h_t, c_t = layer(d["xs"][None, t:t + 1], initial_state=state)
            state = [h_t, c_t]
            hs.append(numpy(h_t)[0])
            cs.append(numpy(c_t)[0])
        kernel, recurrent_kernel, bias = layer.get_weights()
        probe = np.linspace(-4.0, 4.0, 33)
        keras_hard_sigmoid = numpy(keras.activations.hard_sigmoid(probe))
    assert seq.dtype == np.float64
    np.testing.assert_allclose(np.array(hs), seq, rtol=0, atol=KERAS_ATOL)  # the oracle agrees with itself
    if case == "hard_sigmoid":  # what lstmtrace's "hard_sigmoid" claims to be: Keras 3's
        hard = activation("hard_sigmoid").forward(probe)
        np.testing.assert_allclose(hard, keras_hard_sigmoid, rtol=0, atol=1e-15)
    params = Parameters.from_keras(kernel, recurrent_kernel, bias, variant=v)
    trace = lstmtrace.run(params, d["xs"], d["h0"], d["c0"])
    np.testing.assert_allclose(trace.block("hidden", "h"), seq, rtol=0, atol=KERAS_ATOL)
    np.testing.assert_allclose(trace.block("cell", "c"), np.array(cs), rtol=0, atol=KERAS_ATOL)
    assert_far(seq, d, other, KERAS_ATOL, f"{v!r} from {other!r}")


# -- gradients of L = Σ h_T ------------------------------------------------------------------

def torch_activation(key):
    torch = pytest.importorskip("torch")
    if key.startswith("hard_sigmoid:"):
        alpha, beta = (float(s) for s in key.split(":", 1)[1].split(","))
        return lambda z: torch.clamp(alpha * z + beta, 0.0, 1.0)
    return {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu, "linear": lambda z: z,
            "softsign": lambda z: z / (1 + torch.abs(z)),
            "hard_sigmoid": lambda z: torch.clamp(z / 6 + 0.5, 0.0, 1.0)}[key]  # not F.hardsigmoid: see above


def torch_cell_run(w, xs, h0, c0, v):
    """The variant equations, hand-written in torch (w: "gate.W", …, "hidden.W_hr" → tensors): every h_t, c_t."""
    torch = pytest.importorskip("torch")
    gate_act, cand_act, cell_act = (torch_activation(k) for k in
                                    (v.gate_activation, v.candidate_activation, v.cell_activation))

    def gate(g, x, h, c_peep, act):
        z = w[f"{g}.W"] @ x + w[f"{g}.U"] @ h + w[f"{g}.b"]
        if g in peeping(v):
            z = z + w[f"{g}.P"] * c_peep
        if v.clip is not None:
            z = torch.clamp(z, -v.clip, v.clip)
        return act(z)

    one = torch.ones(H, dtype=torch.float64)
    h, c, hs, cs = h0, c0, [], []
    for x in xs:
        i = gate("input", x, h, c, gate_act) if "input" in weighted(v) else one
        f = 1 - i if v.coupled else gate("forget", x, h, c, gate_act) if "forget" in weighted(v) else one
        c_new = f * c + i * gate("candidate", x, h, c, cand_act)
        o = gate("output", x, h, c_new, gate_act) if "output" in weighted(v) else one
        m = o * cell_act(c_new)
        h, c = (w["hidden.W_hr"] @ m if v.proj_size else m), c_new
        hs.append(h)
        cs.append(c)
    return torch.stack(hs), torch.stack(cs)


def leaves(d, v):
    """d's weights (b = b_ih + b_hh) under v, as float64 tensors that want gradients."""
    torch = pytest.importorskip("torch")
    w = {}
    for g in weighted(v):
        w.update({f"{g}.W": d[g]["W"], f"{g}.U": d[g]["U"], f"{g}.b": d[g]["b_ih"] + d[g]["b_hh"]})
        if g in peeping(v):
            w[f"{g}.P"] = d[g]["P"]
    if v.proj_size:
        w["hidden.W_hr"] = d["W_hr"]
    return {k: torch.tensor(a, requires_grad=True) for k, a in w.items()}


def assert_gradients(grads, expected, xs, h0, c0):
    """lstmtrace's gradients (each weight's summed over the steps) against expected {"gate.param": array}."""
    for key, want in expected.items():
        gate, param = key.split(".")
        got = grads.block(gate, f"grad:{param}").sum(axis=0).reshape(want.shape)
        np.testing.assert_allclose(got, want, rtol=GRAD_TOL, atol=GRAD_TOL, err_msg=key)
    np.testing.assert_allclose(grads.block("given", "grad:x"), xs, rtol=GRAD_TOL, atol=GRAD_TOL, err_msg="x")
    np.testing.assert_allclose(grads.block("given", "grad:h_prev")[0], h0, rtol=GRAD_TOL, atol=GRAD_TOL,
                               err_msg="h0")
    np.testing.assert_allclose(grads.block("given", "grad:c_prev")[0], c0, rtol=GRAD_TOL, atol=GRAD_TOL,
                               err_msg="c0")


GRAD_VARIANTS = {
    **{f"preset_{name}": preset for name, preset in PRESETS.items()},
    "proj_size_2": Variant(proj_size=2),
    "clip_0.5": Variant(clip=0.5),
    "coupled": Variant(coupled=True),
    "without_forget_output": Variant(without=("forget", "output")),
    "gate_hard_sigmoid": Variant(gate_activation="hard_sigmoid"),
    "gate_hard_sigmoid_0.2_0.5": Variant(gate_activation="hard_sigmoid:0.2,0.5"),
    "relu_relu": Variant(candidate_activation="relu", cell_activation="relu"),
    "softsign": Variant(candidate_activation="softsign", cell_activation="softsign"),
    "peephole_clip_proj_hard_sigmoid": Variant(peephole=True, clip=0.7, proj_size=1, gate_activation="hard_sigmoid"),
}


@pytest.mark.parametrize("seed", SEEDS[:2])
@pytest.mark.parametrize("name", list(GRAD_VARIANTS))
def test_backward_matches_autograd_of_the_variant_equations(name, seed):
    torch = pytest.importorskip("torch")
    v = GRAD_VARIANTS[name]
    d = fresh(seed + 50_000, v)
    w = leaves(d, v)
    xs, h0, c0 = (torch.tensor(d[k], requires_grad=True) for k in ("xs", "h0", "c0"))
    hs, cs = torch_cell_run(w, xs, h0, c0, v)
    hs[-1].sum().backward()
    trace = run(d, v)
    np.testing.assert_allclose(trace.block("hidden", "h"), hs.detach().numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(trace.block("cell", "c"), cs.detach().numpy(), rtol=0, atol=1e-12)
    grads = backward(trace)
    assert_gradients(grads, {k: t.grad.numpy() for k, t in w.items()},
                     xs.grad.numpy(), h0.grad.numpy(), c0.grad.numpy())


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("proj_size", [0, 2])
def test_backward_matches_autograd_of_torch_nn_lstm(proj_size, seed):
    torch = pytest.importorskip("torch")
    v = Variant(proj_size=proj_size or None)
    d = fresh(seed + 60_000, v)
    lstm = torch_lstm(d, proj_size)
    xs, h0, c0 = (torch.tensor(d[k], requires_grad=True) for k in ("xs", "h0", "c0"))
    out, _ = lstm(xs, (h0[None], c0[None]))
    out[-1].sum().backward()
    rows = {g: slice(k * H, (k + 1) * H) for k, g in enumerate(TORCH_ORDER)}
    expected = {}
    for g in GATES:
        expected.update({f"{g}.W": lstm.weight_ih_l0.grad[rows[g]].numpy(),
                         f"{g}.U": lstm.weight_hh_l0.grad[rows[g]].numpy(),
                         f"{g}.b": lstm.bias_ih_l0.grad[rows[g]].numpy()})
    if proj_size:
        expected["hidden.W_hr"] = lstm.weight_hr_l0.grad.numpy()
    grads = backward(run(d, v))
    assert_gradients(grads, expected, xs.grad.numpy(), h0.grad.numpy(), c0.grad.numpy())
    for g in GATES:  # b = b_ih + b_hh: dL/db is the gradient of either half
        np.testing.assert_allclose(grads.block(g, "grad:b").sum(axis=0), lstm.bias_hh_l0.grad[rows[g]].numpy(),
                                   rtol=GRAD_TOL, atol=GRAD_TOL)


@pytest.mark.parametrize("proj_size", [0, 2])
def test_the_hand_written_cell_is_torch_nn_lstm(proj_size):
    """The gradient oracle's forward, for the plain and the projected LSTM, is PyTorch's own."""
    torch = pytest.importorskip("torch")
    v = Variant(proj_size=proj_size or None)
    d = fresh(SEEDS[2] + 70_000, v)
    xs, h0, c0 = (torch.tensor(d[k]) for k in ("xs", "h0", "c0"))
    with torch.no_grad():
        hs, cs = torch_cell_run(leaves(d, v), xs, h0, c0, v)
        out, (_, c_T) = torch_lstm(d, proj_size)(xs, (h0[None], c0[None]))
    np.testing.assert_allclose(hs.numpy(), out.numpy(), rtol=0, atol=TORCH_ATOL)
    np.testing.assert_allclose(cs[-1].numpy(), c_T[0].numpy(), rtol=0, atol=TORCH_ATOL)
