"""backward(param_grads="total" | "per-step" | "none"): the same gradients, kept three ways, in files and text."""
import io
import pathlib

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lstmtrace
from conftest import assert_error, assert_ok, invoke
from lstmtrace import Parameters, Variant, backward, read_trace
from lstmtrace.variant import PRESETS

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
VARIANTS = [Variant(), PRESETS["v"], PRESETS["cifg"], PRESETS["nog"], Variant(proj_size=2),
            Variant(peephole=True, clip=0.7, proj_size=1, gate_activation="hard_sigmoid")]
MODES = ("total", "per-step", "none")


def _weights(trace):
    """Every (gate or stage, grad:weight) a trace of this cell has."""
    cell = trace.cell
    return [(g.name, f"grad:{w}") for g in cell.gates for w, _ in g.weights] + \
           [(stage, f"grad:{w}") for stage, w, _ in cell.stage_weights]


def _three(variant, E, H, T, seed):
    params = Parameters.random(E, H, seed=seed, variant=variant)
    xs = np.random.default_rng(seed).normal(size=(T, E))
    trace = lstmtrace.run(params, xs)
    return {mode: backward(trace, loss="sum", loss_on="all", param_grads=mode) for mode in MODES}


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.name or v.describe() or "np")
@given(E=st.integers(1, 4), H=st.integers(1, 4), T=st.integers(1, 6), seed=st.integers(0, 2**16))
def test_total_is_the_sum_of_per_step(variant, E, H, T, seed):
    traces = _three(variant, E, H, T, seed)
    total, per_step = traces["total"], traces["per-step"]
    for gate, quantity in _weights(total):
        summed = per_step.block(gate, quantity).sum(axis=0)  # T × units, added step after step
        kept = total.block(gate, quantity)
        assert kept.shape == (1, summed.size)
        if T == 1 or quantity in ("grad:b", "grad:P"):  # added in the same order: every bit
            np.testing.assert_array_equal(kept[0], summed, err_msg=f"{gate}.{quantity}")
        else:  # a matrix product over the steps: another order of the same sums
            np.testing.assert_allclose(kept[0], summed, rtol=1e-12, atol=1e-12 * np.abs(summed).max(),
                                       err_msg=f"{gate}.{quantity}")


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.name or v.describe() or "np")
def test_every_mode_has_the_same_forward_rows_and_quantity_gradients(variant):
    traces = _three(variant, 3, 2, 4, seed=7)
    reference = traces["per-step"]
    for mode, trace in traces.items():
        assert trace.param_grads == mode
        np.testing.assert_array_equal(trace.rows(), reference.rows())
        width = trace.rows().shape[1]
        np.testing.assert_array_equal(trace.rows("grad")[:, :width], reference.rows("grad")[:, :width])
        assert trace.rows("grad").shape[1] == (width if mode != "per-step" else reference.rows("grad").shape[1])
    assert (traces["total"].frame["step"].iloc[-1], traces["none"].frame["step"].iloc[-1]) == (0, 4)
    weights = _weights(reference)
    assert not set(weights) & set(zip(traces["none"].frame["gate"], traces["none"].frame["quantity"]))
    with pytest.raises(KeyError, match="param_grads='none'"):
        traces["none"].block(*weights[0])


def test_a_single_step_total_is_the_per_step_row_at_step_zero(random_params):
    trace = lstmtrace.step(random_params, [1.0, -2.0, 0.5])
    total, per_step = backward(trace), backward(trace, param_grads="per-step")
    np.testing.assert_array_equal(total.frame["value"], per_step.frame["value"])
    differ = total.frame["step"] != per_step.frame["step"]
    assert set(total.frame["quantity"][differ]) == {"grad:W", "grad:U", "grad:b"}
    assert (total.frame["step"][differ] == 0).all()


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("grad_seq_*.npz")), ids=lambda p: p.stem)
@pytest.mark.parametrize("mode", ["total", "per-step"])
def test_summed_weight_gradients_match_autograd(path, mode):
    with np.load(path, allow_pickle=False) as f:
        data = dict(f)
    trace = lstmtrace.run(Parameters.load(path), data["xs"], data["h0"], data["c0"])
    loss = str(data["loss"])
    if loss == "upstream":
        grads = backward(trace, dh=data["dh"], dc=data["dc"], param_grads=mode)
    else:
        grads = backward(trace, loss=loss, target=data["target"] if loss == "mse" else None,
                         loss_on=str(data["loss_on"]), param_grads=mode)
    E, H = data["xs"].shape[1], data["grad_h"].shape[1]
    for k, gate in enumerate(lstmtrace.GATES):
        rows = slice(k * H, (k + 1) * H)
        for name, shape in (("W", (H, E)), ("U", (H, H)), ("b", (H,))):
            np.testing.assert_allclose(grads.block(gate, f"grad:{name}").sum(axis=0).reshape(shape),
                                       data[f"grad_{name}"][rows], rtol=0, atol=1e-10)


@pytest.mark.parametrize("variant", VARIANTS[:3] + VARIANTS[-1:], ids=lambda v: v.name or v.describe() or "np")
@pytest.mark.parametrize("mode", MODES)
def test_every_mode_round_trips_through_its_files(tmp_path, variant, mode):
    trace = _three(variant, 2, 3, 3, seed=1)[mode]
    for layout in ("long", "wide"):
        back = read_trace(io.StringIO(trace.to_csv(layout=layout)))
        assert back.param_grads == mode and back.frame.equals(trace.frame), layout
        assert back.variant == trace.variant
    pytest.importorskip("pyarrow")
    trace.to_parquet(tmp_path / "t.parquet")
    back = read_trace(tmp_path / "t.parquet")
    assert back.param_grads == mode and back.frame.equals(trace.frame)


def test_json_holds_the_summed_rows_at_step_zero(random_params):
    trace = backward(lstmtrace.run(random_params, np.ones((2, 3))))
    rows = pd.read_json(io.StringIO(trace.to_json()))
    assert set(rows["quantity"][rows["step"] == 0]) == {"grad:W", "grad:U", "grad:b"}


@pytest.mark.parametrize("edit, message", [
    # a weight's gradient at a step, while the others are summed at step 0
    (lambda f: f.assign(step=np.where((f["quantity"] == "grad:b") & (f["gate"] == "forget"), 1, f["step"])),
     "a trace keeps them one way"),
    # a quantity's gradient at step 0
    (lambda f: f.assign(step=np.where(f["quantity"] == "grad:x", 0, f["step"])), "step 0 holds only"),
    # a summed weight's row twice
    (lambda f: pd.concat([f, f[f["quantity"] == "grad:U"].head(1)]), "step 0 has 17 rows of forget.grad:U"),
])
def test_damaged_summed_rows_are_refused(random_params, edit, message):
    trace = backward(lstmtrace.run(random_params, np.ones((2, 3))))
    frame = edit(trace.frame.astype({"gate": str, "quantity": str}))
    with pytest.raises(ValueError, match=message):
        read_trace(io.StringIO(frame.to_csv(index=False)))


def test_a_bad_mode_is_named(random_params):
    with pytest.raises(ValueError, match="param_grads must be one of"):
        backward(lstmtrace.step(random_params, [1, 2, 3]), param_grads="sum")


def test_diff_of_two_modes_compares_the_forward_rows(random_params):
    trace = lstmtrace.run(random_params, np.ones((2, 3)))
    summary = lstmtrace.diff(backward(trace), backward(trace, param_grads="per-step"))
    assert summary.empty
    assert summary.attrs["skipped_a"] == ["gradients (param_grads 'total')"]
    assert summary.attrs["skipped_b"] == ["gradients (param_grads 'per-step')"]
    assert lstmtrace.diff(backward(trace), backward(trace)).empty


# -- the text, and the command line ---------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_text_of_every_mode(mode):
    text = assert_ok(invoke("run", "--xs", "1;2;3", "--backward", "--param-grads", mode, "--steps", "all")).stdout
    assert text.count("Backward pass, step t =") == 3
    weights = text.count("\nWeights")
    assert weights == (3 if mode == "per-step" else 1)
    assert ("Weights, summed over the 3 steps" in text) == (mode == "total")
    assert ("kept no gradients of the weights" in text) == (mode == "none")
    markdown = assert_ok(invoke("run", "--xs", "1;2;3", "--backward", "--param-grads", mode,
                                "--format", "markdown")).stdout
    assert "## Backward pass, step t = 3" in markdown


def test_the_summed_norms_in_the_text_are_the_trace_s():
    text = assert_ok(invoke("run", "--xs", "1;2;3", "--backward")).stdout
    trace = backward(lstmtrace.run(Parameters.identity(1, 1), [[1.0], [2.0], [3.0]]))
    row = next(line for line in text.splitlines() if line.lstrip().startswith("forget") and "‖" not in line)
    expected = [abs(trace.value(g, "grad:" + w)[0]) for g in ("forget",) for w in ("W", "U", "b")]
    assert [float(v) for v in row.split()[1:]] == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("mode", MODES)
def test_cli_param_grads_is_the_library_s(mode):
    out = assert_ok(invoke("run", "--xs", "1,0;0,1;1,1", "--hidden-size", "3", "--weights", "random:2",
                           "--backward", "--param-grads", mode, "--format", "csv")).stdout
    library = backward(lstmtrace.run(Parameters.random(2, 3, seed=2), [[1, 0], [0, 1], [1, 1]]), param_grads=mode)
    assert read_trace(io.StringIO(out)).frame.equals(library.frame)


def test_cli_param_grads_needs_backward(tmp_path):
    assert_error(invoke("step", "--param-grads", "none", "-o", tmp_path / "t.csv"), "'--param-grads'",
                 "add --backward")
    assert not (tmp_path / "t.csv").exists()
    assert_error(invoke("step", "--backward", "--param-grads", "sum"), "'--param-grads'")
