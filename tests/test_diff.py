"""lstmtrace.diff and `lstmtrace diff`: where two traces part ways, tolerances, exit status like diff(1)."""
import io
import json

import numpy as np
import pandas as pd
import pytest

import lstmtrace
from conftest import assert_error, invoke
from lstmtrace import Parameters, TraceMismatch, read_trace
from lstmtrace.compare import headline

NOTEBOOK = ["--x", "10,0,0", "--h", "0,0,10", "--c", "1,1,1", "--weights", "zeros",
            "--set", "forget.W=identity"]


@pytest.fixture
def notebook_pair():
    """The notebook's experiments 2 and 3: forget U identity, then zeros."""
    p = Parameters.zeros(3, 3).set("forget", "W", "identity")
    x, h, c = [10, 0, 0], [0, 0, 10], [1, 1, 1]
    return (lstmtrace.step(p.copy().set("forget", "U", "identity"), x, h, c),
            lstmtrace.step(p.copy().set("forget", "U", "zeros"), x, h, c))


def test_a_trace_diffed_with_itself_is_empty(random_params):
    t = lstmtrace.run(random_params, np.ones((3, 3)))
    assert lstmtrace.diff(t, t).empty and lstmtrace.diff(t, t, units=True).empty


def test_first_difference_and_what_it_reaches(notebook_pair):
    summary = lstmtrace.diff(*notebook_pair)
    assert list(zip(summary["gate"], summary["quantity"])) == [
        ("forget", "Uh"), ("forget", "preact"), ("forget", "act"), ("cell", "forget*c_prev"),
        ("cell", "c"), ("hidden", "tanh(c)"), ("hidden", "h")]
    first = summary.iloc[0]
    assert (first["first_unit"], first["a"], first["b"], first["units"], first["of"]) == (2, 10.0, 0.0, 1, 3)
    assert summary["max_abs"].iloc[0] == 10.0 and summary["max_rel"].iloc[0] == 1.0
    lines = headline(summary)
    assert lines[0] == ("Traces agree up to forget.Uh; first difference at step 1, forget.Uh, unit 2: "
                        "10.0 → 0.0.")
    assert "Cause: forget.U differs (U_f differs in 3 of 9 entries, by up to 1)." in lines
    assert ("Reached (computed from what differs): forget.preact, forget.act, cell.forget*c_prev, cell.c, "
            "hidden.tanh(c), hidden.h.") in lines


def test_per_unit_rows_hold_both_values(notebook_pair):
    a, b = notebook_pair
    rows = lstmtrace.diff(a, b, units=True)
    assert (rows["unit"] == 2).all() and len(rows) == 7
    expected = np.abs(a.value("forget", "act")[2] - b.value("forget", "act")[2])
    assert rows.loc[rows["quantity"] == "act", "abs_diff"].item() == expected


def test_a_change_at_step_3_first_diverges_there(random_params):
    xs = np.random.default_rng(1).normal(size=(6, 3))
    changed = xs.copy()
    changed[2, 1] += 0.5
    summary = lstmtrace.diff(lstmtrace.run(random_params, xs), lstmtrace.run(random_params, changed))
    assert (summary.iloc[0]["step"], summary.iloc[0]["gate"], summary.iloc[0]["quantity"]) == (3, "given", "x")
    assert summary["step"].min() == 3 and summary["step"].max() == 6
    lines = headline(summary)
    assert lines[0].startswith("Traces agree up to step 3, given.x; first difference at step 3, given.x, unit 1")
    assert "Cause: given.x differs at step 3 (different inputs)." in lines
    assert ("Carried: h_prev and c_prev bring the difference forward into steps 4-6 (a consequence of earlier "
            "steps, not a new cause).") in lines


@pytest.mark.parametrize("atol, rtol, differs", [
    (0, 0, True), (1e-3, 0, True), (0.01, 0, False), (0, 1e-3, True), (0, 0.01, False),
])
def test_tolerance_is_atol_plus_rtol_times_the_larger_magnitude(atol, rtol, differs):
    p = Parameters.zeros(1, 1)
    a, b = lstmtrace.step(p, [1.0]), lstmtrace.step(p, [1.005])  # x differs by 0.005 (0.5 %)
    summary = lstmtrace.diff(a, b, atol=atol, rtol=rtol)
    assert (("given", "x") in set(zip(summary["gate"], summary["quantity"]))) == differs


def test_bit_identical_recomputation_is_equal(random_params):
    xs = np.random.default_rng(2).normal(size=(4, 3))
    assert lstmtrace.diff(lstmtrace.run(random_params, xs), lstmtrace.run(random_params.copy(), xs)).empty


def test_one_ulp_is_a_difference_by_default():
    p = Parameters.zeros(1, 1)
    a, b = lstmtrace.step(p, [1.0]), lstmtrace.step(p, [np.nextafter(1.0, 2.0)])
    assert not lstmtrace.diff(a, b).empty and lstmtrace.diff(a, b, rtol=1e-15).empty


@pytest.mark.parametrize("b, message", [
    (lambda: lstmtrace.step(Parameters.zeros(2, 3), [1, 2]), "different input size E: 1 and 2"),
    (lambda: lstmtrace.step(Parameters.zeros(1, 2), [1]), "different hidden size H: 3 and 2"),
    (lambda: lstmtrace.run(Parameters.zeros(1, 3), [[1], [2]]), "different number of steps: 1 and 2"),
])
def test_traces_that_cannot_be_compared(b, message):
    with pytest.raises(TraceMismatch, match=message):
        lstmtrace.diff(lstmtrace.step(Parameters.zeros(1, 3), [1]), b())


def test_newer_quantities_are_skipped_and_named(tmp_path, notebook_pair):
    a, b = notebook_pair
    newer = pd.concat([b.frame.astype({"gate": str, "quantity": str}),
                       pd.DataFrame({"step": [1], "gate": ["forget"], "quantity": ["hessian:W"],
                                     "unit": [0], "value": [0.25]})])
    path = tmp_path / "newer.csv"
    newer.to_csv(path, index=False)
    with pytest.raises(ValueError, match="forget.hessian:W is not a gate and quantity"):
        read_trace(path)
    skipped = read_trace(path, unknown="skip")
    assert skipped.skipped == ["forget.hessian:W"]
    lines = headline(lstmtrace.diff(a, skipped))
    assert "Compared on what both traces have; skipped from B: forget.hessian:W." in lines


# -- the command -------------------------------------------------------------------------------

@pytest.fixture
def saved(tmp_path, notebook_pair):
    paths = []
    for name, trace in zip("ab", notebook_pair):
        trace.to_csv(tmp_path / f"{name}.csv")
        paths.append(tmp_path / f"{name}.csv")
    return paths


def test_cli_exit_1_when_traces_differ(saved):
    result = invoke("diff", *saved)
    assert result.exit_code == 1 and result.stderr == ""
    assert result.stdout.startswith("Traces agree up to forget.Uh; first difference at step 1, forget.Uh, "
                                    "unit 2: 10.0 → 0.0.")
    assert "forget.act" in result.stdout and "1/3" in result.stdout


def test_cli_exit_0_when_equal(saved):
    result = invoke("diff", saved[0], saved[0])
    assert result.exit_code == 0 and result.stdout.startswith("The traces agree: all 84 values are equal")


def test_cli_tolerance_can_make_them_equal(saved):
    assert invoke("diff", *saved, "--atol", "10").exit_code == 0
    assert invoke("diff", *saved, "--rtol", "0.5").exit_code == 1
    assert invoke("diff", *saved, "--rtol", "1").exit_code == 0


def test_cli_inline_spelling_equals_the_files(saved):
    inline = invoke("diff", *NOTEBOOK, "--a-set", "forget.U=identity", "--b-set", "forget.U=zeros")
    files = invoke("diff", *saved)
    # the same table; inline traces carry their weights, so the cause is told from U_f itself
    table = lambda text: text.split("quantity ")[1].split("Why some units")[0]
    assert inline.exit_code == 1 and table(inline.stdout) == table(files.stdout)
    assert "Cause: forget.U differs (U_f differs in 3 of 9 entries, by up to 1)." in inline.stdout
    assert "Cause: forget.U differs (U_f·h_prev differs while h_prev is the same)." in files.stdout


def test_cli_inline_a_and_b_weights():
    result = invoke("diff", "--x", "1,2", "--a-weights", "zeros", "--b-weights", "ones", "--format", "csv")
    assert result.exit_code == 1
    frame = pd.read_csv(io.StringIO(result.stdout))
    assert frame.iloc[0][["gate", "quantity"]].tolist() == ["forget", "Wx"]


def test_cli_inline_sequence_reports_the_step():
    result = invoke("diff", "--xs", "1;1;1", "--a-set", "forget.b=0", "--b-set", "forget.b=0")
    assert result.exit_code == 0
    result = invoke("diff", "--xs", "1;1;1", "--b-set", "forget.b=1", "--format", "json")
    assert result.exit_code == 1
    first = json.loads(result.stdout)[0]
    assert (first["step"], first["gate"], first["quantity"], first["a"], first["b"]) == (1, "forget", "bias", 0, 1)


def test_cli_units_csv_has_full_precision(saved, notebook_pair):
    result = invoke("diff", *saved, "--units", "--format", "csv")
    rows = pd.read_csv(io.StringIO(result.stdout))
    assert list(rows.columns) == ["step", "gate", "quantity", "unit", "a", "b", "abs_diff", "rel_diff", "role"]
    act = rows[rows["quantity"] == "act"].iloc[0]
    assert act["a"] == notebook_pair[0].value("forget", "act")[2]


def test_cli_markdown_and_output_file(saved, tmp_path):
    result = invoke("diff", *saved, "-o", tmp_path / "d.md")
    assert result.exit_code == 1 and result.stdout == ""
    assert "| quantity" in (tmp_path / "d.md").read_text()


@pytest.mark.parametrize("args, fragments", [
    (["a.csv"], ["give two traces to compare (or more to put side by side), not 1"]),
    ([], ["give two trace files, or --x"]),
    (["--x", "1", "--xs", "1;2"], ["give two trace files, or --x"]),
    (["SAVED", "--x", "1"], ["--x is for comparing without files"]),
    (["SAVED", "--atol", "-1"], ["must be ≥ 0"]),
    (["SAVED", "--atol", "nan"], ["'--atol'", "not finite"]),
])
def test_cli_trouble(saved, tmp_path, args, fragments):
    args = [str(saved[0]) if a == "a.csv" else a for a in args]
    args = [x for a in args for x in ([str(p) for p in saved] if a == "SAVED" else [a])]
    assert_error(invoke("diff", *args), *fragments)


def test_cli_trouble_for_files(saved, tmp_path):
    (tmp_path / "junk.csv").write_text("a,b\n1,2\n")
    assert_error(invoke("diff", saved[0], tmp_path / "junk.csv"), "'B'", "columns")
    other = tmp_path / "other.csv"
    lstmtrace.step(Parameters.zeros(2, 3), [1, 2]).to_csv(other)
    assert_error(invoke("diff", saved[0], other), "cannot compare", "input size E: 3 and 2")
    assert_error(invoke("diff", saved[0], tmp_path / "missing.csv"), "does not exist")


def test_cli_trouble_writes_nothing(saved, tmp_path):
    out = tmp_path / "out.txt"
    out.write_text("precious")
    other = tmp_path / "other.csv"
    lstmtrace.step(Parameters.zeros(2, 3), [1, 2]).to_csv(other)
    assert_error(invoke("diff", saved[0], other, "-o", out))
    assert out.read_text() == "precious"
