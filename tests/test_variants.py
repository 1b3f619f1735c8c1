"""LSTM variants: the Variant API, the identities each setting must hold exactly, and gradients.

Parity with onnxruntime, Keras and PyTorch comes from committed fixtures
(tests/fixtures/variant_*.npz, made by make_variant_fixtures.py).
"""
import pathlib

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import assert_error, assert_ok, central_difference, invoke
import lstmtrace
from lstmtrace import GATES, Gate, Parameters, backward
from lstmtrace.cell import activation
from lstmtrace.errors import OptionError
from lstmtrace.variant import PRESETS, Variant

COMPUTED = [  # the variants this version computes
    Variant(),
    Variant(gate_activation="hard_sigmoid"),
    Variant(gate_activation="hard_sigmoid:0.2,0.5"),
    Variant(gate_activation="tanh", candidate_activation="relu"),
    Variant(candidate_activation="softsign", cell_activation="relu"),
    Variant(candidate_activation="linear", cell_activation="linear"),
    Variant(clip=0.5),
    Variant(gate_activation="hard_sigmoid:0.3,0.6", cell_activation="softsign", clip=1.5),
    *(PRESETS[name] for name in ("v", "nig", "nfg", "nog", "niaf", "noaf", "cifg")),
    Variant(coupled=True),
    Variant(without=("forget", "output")),
    Variant(proj_size=2),
    Variant(peephole=True, clip=0.7, proj_size=1, gate_activation="hard_sigmoid"),
]


# -- the Variant API -----------------------------------------------------------------------

def test_the_presets_are_greffs_variants():
    assert PRESETS["np"] == Variant()
    assert PRESETS["v"] == Variant(peephole=True)
    assert PRESETS["cifg"] == Variant(peephole=True, coupled=True)
    assert PRESETS["nfg"] == Variant(peephole=True, without=("forget",))
    assert PRESETS["noaf"] == Variant(peephole=True, cell_activation="linear")
    assert Variant.preset("NIAF").candidate_activation == "linear"
    assert {name: preset.name for name, preset in PRESETS.items()} == {name: name for name in PRESETS}


@pytest.mark.parametrize("settings, option, says", [
    (dict(coupled=True, without=("forget",)), "coupled", "choose one"),
    (dict(coupled=True, without=("input",)), "coupled", "needs the input gate"),
    (dict(without=("candidate",)), "without", "only the forget, input, output"),
    (dict(gate_activation="swish"), "activation", "unknown activation 'swish'"),
    (dict(cell_activation="hard_sigmoid:0,1"), "activation", "ALPHA must be"),
    (dict(cell_activation="hard_sigmoid:0.2"), "activation", "two numbers"),
    (dict(clip=0.0), "clip", "> 0"),
    (dict(clip=float("inf")), "clip", "finite"),
    (dict(proj_size=0), "proj_size", "≥ 1"),
])
def test_contradictions_and_nonsense_name_their_setting(settings, option, says):
    with pytest.raises(OptionError, match=says) as caught:
        Variant(**settings)
    assert caught.value.option == option


def test_unknown_preset():
    with pytest.raises(OptionError, match="the presets are np, v, nig") as caught:
        Variant.preset("lstm2")
    assert caught.value.option == "variant"


def test_every_constructor_takes_a_variant(tmp_path):
    variant = Variant(gate_activation="hard_sigmoid")
    Parameters.random(2, 3, variant=Variant()).save(tmp_path / "w.npz")
    made = [Parameters.zeros(2, 3, variant=variant), Parameters.identity(2, 3, variant=variant),
            Parameters.ones(2, 3, variant=variant), Parameters.random(2, 3, variant=variant),
            Parameters.from_spec("random:4", 2, 3, variant=variant),
            Parameters.from_spec(str(tmp_path / "w.npz"), variant=variant),
            Parameters.load(tmp_path / "w.npz", variant=variant)]
    assert all(p.variant == variant for p in made)
    assert all(p.copy().variant == variant and p.snapshot().variant == variant for p in made)
    assert Parameters.zeros(2, 3).variant == Variant()
    assert Parameters.zeros(2, 3, variant=variant) != Parameters.zeros(2, 3)


# -- what each setting must do, exactly ------------------------------------------------------

finite = st.floats(-30, 30, allow_nan=False)


@given(st.lists(finite, min_size=3, max_size=3), st.lists(finite, min_size=2, max_size=2),
       st.sampled_from(COMPUTED), st.integers(0, 2 ** 16))
def test_the_step_is_its_equations(x, h_prev, variant, seed):
    params = Parameters.random(3, 2, seed=seed, variant=variant)
    P = variant.proj_size or 2
    trace = lstmtrace.step(params, x[:3], (h_prev * 2)[:P], [0.5, -2.0])
    gate_act, candidate_act, cell_act = (activation(k) for k in (
        variant.gate_activation, variant.candidate_activation, variant.cell_activation))
    v = trace.values()
    for gate in ("forget", "input", "candidate", "output"):
        g = getattr(v, gate)
        if gate in variant.without:  # the constant 1, exactly
            assert list(g._fields) == ["act"] and np.array_equal(g.act, np.ones(2))
            continue
        if variant.coupled and gate == "forget":  # f = 1 − i, and so f + i == 1 exactly
            assert list(g._fields) == ["act"] and np.array_equal(g.act, 1.0 - v.input.act)
            assert np.array_equal(v.forget.act + v.input.act, np.ones(2))
            continue
        w = params[gate]
        assert np.array_equal(g.Wx, w.W @ v.given.x) and np.array_equal(g.Uh, w.U @ v.given.h_prev)
        peeps = variant.peephole and gate != "candidate"
        if peeps:  # f and i peep at c_prev; o at the new c
            assert np.array_equal(g.Pc, w.P * (v.cell.c if gate == "output" else v.given.c_prev))
            assert np.array_equal(g.preact, g.Wx + g.Uh + g.bias + g.Pc)
        else:
            assert "Pc" not in g._fields and np.array_equal(g.preact, g.Wx + g.Uh + g.bias)
        z = g.preact if variant.clip is None else g.clipped
        if variant.clip is not None:
            assert np.array_equal(g.clipped, np.clip(g.preact, -variant.clip, variant.clip))
        assert np.array_equal(g.act, (candidate_act if gate == "candidate" else gate_act).forward(z))
    assert np.array_equal(v.cell.c, v.forget.act * v.given.c_prev + v.input.act * v.candidate.act)
    act_c = v.hidden[0]
    assert np.array_equal(act_c, cell_act.forward(v.cell.c))
    if variant.proj_size is None:
        assert np.array_equal(v.hidden.h, v.output.act * act_c)
    else:  # h = W_hr·(o⊙tanh(c)), with the unprojected o⊙tanh(c) traced too
        assert np.array_equal(v.hidden[1], v.output.act * act_c)
        assert np.array_equal(v.hidden.h, params.W_hr @ v.hidden[1]) and v.hidden.h.shape == (P,)


@given(st.lists(finite, min_size=2, max_size=2))
def test_linear_activations_pass_the_preact_through(x):
    params = Parameters.random(2, 2, variant=Variant(gate_activation="linear", candidate_activation="linear"))
    v = lstmtrace.step(params, x).values()
    assert all(np.array_equal(getattr(v, g).act, getattr(v, g).preact)
               for g in ("forget", "input", "candidate", "output"))


def test_a_variant_trace_names_its_quantities():
    trace = lstmtrace.step(Parameters.identity(2, 2, variant=Variant(cell_activation="relu", clip=1.0)), [3.0, -1.0])
    assert trace.variant == Variant(cell_activation="relu", clip=1.0)
    assert list(trace.value("forget", "clipped")) == [1.0, -1.0]
    assert list(trace.value("hidden", "relu(c)")) == list(np.maximum(trace.value("cell", "c"), 0))
    with pytest.raises(KeyError, match="no quantity hidden.tanh"):
        trace.value("hidden", "tanh(c)")


def test_the_default_variant_is_todays_lstm_to_the_bit():
    x, h = [0.3, -1.2, 2.0], [0.1, -0.4]
    old = lstmtrace.step(Parameters.random(3, 2, seed=3), x, h)
    new = lstmtrace.step(Parameters.random(3, 2, seed=3, variant=Variant.preset("np")), x, h)
    assert old.frame.equals(new.frame) and old.to_csv() == new.to_csv()


# -- gradients -----------------------------------------------------------------------------

@pytest.mark.parametrize("variant", COMPUTED[1:], ids=repr)
def test_gradients_against_central_differences(variant):
    E, H, T, eps = 2, 3, 4, 1e-6
    rng = np.random.default_rng(1)
    params = Parameters.random(E, H, seed=7, variant=variant)
    if "input" in params.gates:
        params.set("input", "b", rng.uniform(-1, 1, H))
    xs, h0, c0 = rng.normal(size=(T, E)) * 2, rng.normal(size=variant.proj_size or H), rng.normal(size=H)
    trace = backward(lstmtrace.run(params, xs, h0, c0))
    params = params.copy()

    def loss():
        return lstmtrace.run(params.copy(), xs, h0, c0).block("hidden", "h")[-1].sum()

    def numeric(array, index):
        return central_difference(array, index, loss, eps)

    weights = [(gate, name, params._stacked(name), params._rows(gate, name))
               for gate in params.gates for name, _ in params.cell.gate(gate).weights]
    weights += [("hidden", "W_hr", params.W_hr, slice(None))] if params.W_hr is not None else []
    for gate, name, stacked, rows in weights:  # every weight of every gate: W, U, b, P, and W_hr
        analytic = trace.block(gate, f"grad:{name}").sum(axis=0).reshape(stacked[rows].shape)
        for index in np.ndindex(analytic.shape):
            at = (rows.start + index[0],) + index[1:] if gate != "hidden" else index
            assert numeric(stacked, at) == pytest.approx(analytic[index], rel=1e-5, abs=1e-7), \
                f"{gate}.{name}{list(index)}"
    for index in np.ndindex(xs.shape):
        assert numeric(xs, index) == pytest.approx(trace.block("given", "grad:x")[index], rel=1e-5, abs=1e-7)
    for vector, quantity in ((h0, "grad:h_prev"), (c0, "grad:c_prev")):
        for index in np.ndindex(vector.shape):
            assert numeric(vector, index) == pytest.approx(trace.block("given", quantity)[0][index],
                                                           rel=1e-5, abs=1e-7)


# -- parity with onnxruntime, Keras 3 and PyTorch autograd (tests/fixtures/variant_*.npz) ----------

FIXTURES = sorted((pathlib.Path(__file__).parent / "fixtures").glob("variant_*.npz"))


def _fixture(path):
    """The variant, weights, inputs and oracle's outputs a fixture holds (see make_variant_fixtures.py)."""
    data = np.load(path, allow_pickle=False)
    clip, proj = float(data["variant.clip"]), int(data["variant.proj_size"])
    variant = dict(peephole=bool(data["variant.peephole"]), coupled=bool(data["variant.coupled"]),
                   without=tuple(str(g) for g in data["variant.without"]),
                   gate_activation=str(data["variant.gate_activation"]),
                   candidate_activation=str(data["variant.candidate_activation"]),
                   cell_activation=str(data["variant.cell_activation"]),
                   clip=None if np.isnan(clip) else clip, proj_size=proj or None)
    return Variant(**variant), data


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_every_oracle_fixture_is_matched(path):
    variant, data = _fixture(path)
    gates = {g: Gate(data[f"{g}.W"], data[f"{g}.U"], data[f"{g}.b"], data.get(f"{g}.P"))
             for g in GATES if f"{g}.W" in data}
    params = Parameters(gates, variant, data.get("hidden.W_hr"))
    trace = lstmtrace.run(params, data["xs"], data["h0"], data["c0"])
    atol = float(data["atol"])
    np.testing.assert_allclose(trace.block("hidden", "h"), data["h"], rtol=0, atol=atol)
    np.testing.assert_allclose(trace.block("cell", "c"), data["c"], rtol=0, atol=atol)
    if "grad.xs" in data:  # autograd of a hand-written float64 PyTorch cell, L = Σ h_T
        grads = backward(trace)
        # PyTorch's hardsigmoid backward multiplies by 1/6 rounded to float32, even in float64 (its
        # gradient at 0.5 is 0.1666666716…): there autograd itself is off by 3e-8 a step, relatively, and
        # the products of the chain rule carry it (finite differences agree with lstmtrace, not autograd)
        rtol = 1e-6 if "hard_sigmoid" in repr(variant) and ":" not in variant.gate_activation else 0
        for key in data.files:
            if not key.startswith("grad.") or key in ("grad.xs", "grad.h0", "grad.c0"):
                continue
            gate, name = key[len("grad."):].split(".")
            summed = grads.block(gate, f"grad:{name}").sum(axis=0).reshape(data[key].shape)
            np.testing.assert_allclose(summed, data[key], rtol=rtol, atol=1e-12, err_msg=key)
        np.testing.assert_allclose(grads.block("given", "grad:x"), data["grad.xs"], rtol=rtol, atol=1e-12)
        np.testing.assert_allclose(grads.block("given", "grad:h_prev")[0], data["grad.h0"], rtol=rtol, atol=1e-12)
        np.testing.assert_allclose(grads.block("given", "grad:c_prev")[0], data["grad.c0"], rtol=rtol, atol=1e-12)


def test_the_fixtures_cover_every_setting_and_preset():
    covered = {_fixture(p)[0] for p in FIXTURES}
    assert Variant(gate_activation="hard_sigmoid") in covered  # Keras 3's recurrent activation
    assert Variant(candidate_activation="relu", cell_activation="relu") in covered  # Keras' activation="relu"
    assert Variant(gate_activation="hard_sigmoid:0.2,0.5") in covered  # ONNX's and Keras 2's
    assert {Variant(clip=0.5), Variant(peephole=True), Variant(coupled=True), Variant(proj_size=2)} <= covered
    assert set(PRESETS.values()) <= covered
    graded = {_fixture(p)[0] for p in FIXTURES if "grad.xs" in np.load(p)}  # with autograd's gradients
    assert set(PRESETS.values()) <= graded and Variant(proj_size=2) in graded



# -- a saved trace says which variant made it --------------------------------------------------

@pytest.mark.parametrize("variant", COMPUTED, ids=repr)
@pytest.mark.parametrize("suffix, layout", [(".csv", "long"), (".csv", "wide"), (".parquet", "long")])
def test_a_saved_trace_reads_back_as_its_variant(tmp_path, variant, suffix, layout):
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    trace = lstmtrace.run(Parameters.random(2, 3, seed=2, variant=variant), [[1.0, -2.0], [0.5, 3.0]])
    path = tmp_path / f"t{suffix}"
    trace.to_parquet(path) if suffix == ".parquet" else trace.to_csv(path, layout=layout)
    back = lstmtrace.read_trace(path)
    assert back.variant == variant and back.frame.equals(trace.frame)
    if suffix == ".csv":
        plain = pd.read_csv(path)  # still a plain CSV: the variant's rows are rows like the others
        recorded = variant.to_rows() if layout == "long" else {q for q, _, _ in variant.to_rows()}  # a row a setting
        assert len(plain) == len(recorded) + (len(trace.frame) if layout == "long" else len(trace.wide()))


def test_the_default_variant_adds_no_rows():
    trace = lstmtrace.step(Parameters.random(2, 2), [1.0, 2.0])
    assert "variant" not in trace.to_csv() and "variant" not in trace.to_json()


def test_a_recorded_variant_this_version_does_not_know_is_an_error(tmp_path):
    trace = lstmtrace.step(Parameters.random(2, 2, variant=Variant(clip=2.0)), [1.0, 2.0])
    text = trace.to_csv().replace("0,variant,clip,0,2.0", "0,variant,swish_gates,0,1.0")
    (tmp_path / "t.csv").write_text(text)
    with pytest.raises(ValueError, match="variant setting 'swish_gates' is not one this lstmtrace knows"):
        lstmtrace.read_trace(tmp_path / "t.csv")


# -- the command line ------------------------------------------------------------------------

def test_the_command_line_traces_the_variant_the_library_does():
    variant = Variant(gate_activation="hard_sigmoid:0.2,0.5", cell_activation="relu", clip=1.5)
    shell = assert_ok(invoke("step", "--x", "1,-2", "--h", "0.5,0.1", "--activation", "gate=hard_sigmoid:0.2,0.5",
                             "--activation", "cell=relu", "--clip", "1.5", "--format", "csv")).stdout
    library = lstmtrace.step(Parameters.identity(2, 2, variant=variant), [1, -2], [0.5, 0.1]).to_csv()
    assert shell == library


def test_a_saved_variant_is_explained_as_itself(tmp_path):
    assert_ok(invoke("run", "--xs", "1,2;3,4", "--activation", "candidate=softsign", "-o", tmp_path / "t.csv"))
    text = assert_ok(invoke("show", tmp_path / "t.csv")).stdout
    assert "Variant: candidate activation softsign." in " ".join(text.split())
    assert "c̃ = softsign(W_g·x + U_g·h_prev + b_g)" in text


@pytest.mark.parametrize("args, flag, says", [
    (["--variant", "cifg", "--set", "forget.U=zeros"], "'--set'", "it is coupled, f = 1 − i (--coupled)"),
    (["--without", "input", "--set", "input.b=1"], "'--set'", "it is taken away, i = 1 (--without)"),
    (["--set", "forget.P=0.5"], "'--set'", "no peephole on the forget gate (--peephole)"),
    (["--peephole", "--set", "candidate.P=0.5"], "'--set'", "the candidate has none"),
    (["--set", "hidden.W_hr=zeros"], "'--set'", "has no projection (--proj-size)"),
    (["--proj-size", "2"], "'--proj-size'", "give --x and --h (2 values)"),
    (["--x", "1,2", "--h", "1,2,3", "--proj-size", "2"], "'--h'", "h has P = 2 units"),
    (["--without", "forget", "--coupled"], "'--coupled'", "choose one"),
    (["--variant", "lstm2"], "'--variant'", "the presets are"),
    (["--activation", "gate"], "'--activation'", "is not SLOT=NAME"),
    (["--activation", "hidden=relu"], "'--activation'", "is not SLOT=NAME"),
    (["--activation", "gate=swish"], "'--activation'", "unknown activation 'swish'"),
    (["--clip", "-1"], "'--clip'", "> 0"),
])
def test_variant_options_that_cannot_hold_are_one_line(args, flag, says):
    assert_error(invoke("step", *args), flag, says)


def test_diff_says_when_the_variants_differ(tmp_path):
    assert_ok(invoke("step", "--x", "1,2", "-o", tmp_path / "a.csv"))
    assert_ok(invoke("step", "--x", "1,2", "--activation", "gate=hard_sigmoid", "-o", tmp_path / "b.csv"))
    assert_ok(invoke("step", "--x", "1,2", "--clip", "1", "-o", tmp_path / "c.csv"))
    result = invoke("diff", tmp_path / "a.csv", tmp_path / "b.csv")
    assert result.exit_code == 1 and result.stdout.startswith(
        "The traces are of different LSTM variants: A is lstmtrace's default LSTM, B is gate activation "
        "hard_sigmoid.")
    result = invoke("diff", tmp_path / "a.csv", tmp_path / "c.csv")  # compared on what they share
    assert result.exit_code == 1 and "Only B has forget.clipped, input.clipped" in result.stdout


def test_a_weights_file_does_not_hold_the_variant_and_params_says_so(tmp_path):
    result = assert_ok(invoke("params", "--activation", "gate=hard_sigmoid", "-o", tmp_path / "w.npz"))
    assert "holds the weights only, not the variant (gate activation hard_sigmoid)" in result.stderr
    assert Parameters.load(tmp_path / "w.npz").variant == Variant()


def test_from_options_is_the_command_lines_spelling():
    assert Variant.from_options("cifg", coupled=False) == Variant(peephole=True)
    assert Variant.from_options(activations=("cell=relu", "gate=tanh"), clip=2.0) == Variant(
        cell_activation="relu", gate_activation="tanh", clip=2.0)
    with pytest.raises(OptionError, match="is not SLOT=NAME") as caught:
        Variant.from_options(activations=("output=relu",))
    assert caught.value.option == "activation"


@pytest.mark.parametrize("variant", [Variant(), Variant(clip=1.0), Variant(gate_activation="hard_sigmoid:0.2,0.5")],
                         ids=repr)
@pytest.mark.parametrize("layout", ["long", "wide"])
@pytest.mark.parametrize("gradients", [False, True])
def test_the_spreadsheet_warning_counts_the_lines_written(variant, layout, gradients):
    from lstmtrace.tracefile import csv_lines

    trace = lstmtrace.run(Parameters.random(2, 3, variant=variant), [[1.0, 2.0], [0.5, -1.0]])
    trace = backward(trace) if gradients else trace
    assert csv_lines(trace, layout) == trace.to_csv(layout=layout).count("\n")


# -- a variant's weights in files: peepholes, projection, the gates that have weights ----------------

@pytest.mark.parametrize("variant", COMPUTED, ids=repr)
def test_a_variants_weights_round_trip_through_a_file(tmp_path, variant):
    params = Parameters.random(3, 4, seed=5, variant=variant)
    params.save(tmp_path / "w.npz")
    assert Parameters.load(tmp_path / "w.npz", variant=variant) == params


def test_torch_lstm_with_proj_size_is_read_from_its_state_dict(tmp_path):
    data = np.load(pathlib.Path(__file__).parent / "fixtures" / "variant_torch_proj.npz")
    np.savez(tmp_path / "lstm.npz", **{k[len("state_dict."):]: data[k] for k in data.files
                                        if k.startswith("state_dict.")})
    params = Parameters.load(tmp_path / "lstm.npz", variant=Variant(proj_size=2))
    trace = lstmtrace.run(params, data["xs"], data["h0"], data["c0"])
    np.testing.assert_allclose(trace.block("hidden", "h"), data["h"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(trace.block("cell", "c"), data["c"], rtol=0, atol=1e-12)


@pytest.mark.parametrize("saved, asked, option, says", [
    (Variant(peephole=True), Variant(), "peephole", "give --peephole"),
    (Variant(), Variant(peephole=True), "peephole", "no peephole weights for the forget gate"),
    (Variant(), Variant.preset("cifg"), "coupled", "stacks 4 gates' weights"),
    (Variant(without=("output",)), Variant(), "variant", "holds the weights of the gates input, forget, candidate,"),
    (Variant(proj_size=2), Variant(), "proj_size", "give --proj-size 2"),
    (Variant(), Variant(proj_size=2), "proj_size", "no projection weights"),
    (Variant(proj_size=2), Variant(proj_size=3), "proj_size", "proj_size = 3 units"),
])
def test_a_weights_file_that_does_not_fit_the_variant_is_refused(tmp_path, saved, asked, option, says):
    Parameters.random(3, 4, variant=saved).save(tmp_path / "w.npz")
    with pytest.raises(OptionError, match=says) as caught:
        Parameters.load(tmp_path / "w.npz", variant=asked)
    assert caught.value.option == option and "w.npz" in str(caught.value)


def test_peephole_weights_are_set_like_the_others():
    params = Parameters.zeros(2, 2, variant=Variant(peephole=True)).set("forget", "P", "0.5,-1")
    assert list(params["forget"].P) == [0.5, -1.0] and params["candidate"].P is None
    assert list(params.apply("output.P=2")["output"].P) == [2.0, 2.0]
    trace = lstmtrace.step(params, [0.0, 0.0], [0.0, 0.0], [1.0, 1.0])
    assert list(trace.value("forget", "Pc")) == [0.5, -1.0]  # P⊙c_prev
    with pytest.raises(KeyError, match="coupled"):
        Parameters.zeros(2, 2, variant=Variant.preset("cifg"))["forget"]
    assert list(Parameters.zeros(2, 2, variant=Variant.preset("cifg")).gates) == ["input", "candidate", "output"]


def test_every_variant_traces_on_the_command_line(tmp_path):
    for name in PRESETS:
        result = assert_ok(invoke("step", "--variant", name, "--format", "csv"))
        assert pd.read_csv(__import__("io").StringIO(result.stdout)).shape[1] == 5
    result = assert_ok(invoke("run", "--xs", "1,2;3,4", "--h", "0.5", "--proj-size", "1", "--peephole",
                              "--weights", "random:3", "--backward", "--format", "csv"))
    frame = pd.read_csv(__import__("io").StringIO(result.stdout))
    assert {"grad:P", "grad:W_hr", "Pc", "output*tanh(c)"} <= set(frame["quantity"])
