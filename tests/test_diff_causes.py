"""`diff` tells cause from consequence (issue 15, item 6): the weights or inputs that differ, what is
computed from them, what h_prev and c_prev carry into later steps; before → after per unit; why units
stayed put; and three or more traces side by side."""
import io
import json
import pathlib

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lstmtrace
from conftest import assert_error, invoke
from lstmtrace import Parameters, TraceMismatch, read_trace
from lstmtrace.compare import MOST_UNITS, side_by_side

TRACES = pathlib.Path(__file__).parent.parent / "traces"
NOTEBOOK = [TRACES / f"notebook_{name}.csv" for name in ("1_zeros", "2_identity", "3_u_zeros")]
GIVEN = ["--x", "10,0,0", "--h", "0,0,10", "--c", "1,1,1", "--weights", "zeros"]


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def roles(stdout):
    table = pd.read_csv(io.StringIO(stdout))
    return {(int(s), g, q): r for s, g, q, r in zip(table["step"], table["gate"], table["quantity"], table["role"])}


# -- causes, reached, carried ----------------------------------------------------------------------

def test_notebook_zeros_vs_identity_names_w_and_u_as_causes_not_reached():
    result = invoke("diff", NOTEBOOK[0], NOTEBOOK[1])
    assert result.exit_code == 1 and result.stderr == ""
    lines = result.stdout.splitlines()
    assert ("Causes: forget.W differs (W_f·x differs while x is the same); "
            "forget.U differs (U_f·h_prev differs while h_prev is the same).") in lines
    assert ("The given inputs (x, h_prev, c_prev) are the same, so the difference starts in the cell itself, "
            "not in what it was given.") in lines
    reached = next(line for line in lines if line.startswith("Reached"))
    assert reached == ("Reached (computed from what differs): forget.preact, forget.act, cell.forget*c_prev, "
                       "cell.c, hidden.tanh(c), hidden.h.")
    assert "It reaches" not in result.stdout
    csv = invoke("diff", NOTEBOOK[0], NOTEBOOK[1], "--format", "csv").stdout
    assert roles(csv)[1, "forget", "Wx"] == "cause" and roles(csv)[1, "forget", "Uh"] == "cause"
    assert roles(csv)[1, "forget", "preact"] == "reached"


def test_with_the_weights_known_the_cause_says_by_how_much():
    result = invoke("diff", *GIVEN, "--b-set", "forget.W=identity", "--b-set", "forget.U=identity")
    assert ("Causes: forget.W differs (W_f differs in 3 of 9 entries, by up to 1); "
            "forget.U differs (U_f differs in 3 of 9 entries, by up to 1).") in result.stdout.splitlines()


def test_a_w_only_change_does_not_name_uh():
    result = invoke("diff", "--x", "0.5,-1,2", "--h", "0.3,0.1,-0.2", "--weights", "random:4",
                    "--b-set", "input.W=zeros")
    assert result.exit_code == 1
    assert "Uh" not in result.stdout
    assert "Cause: input.W differs (W_i differs in 9 of 9 entries" in result.stdout


def test_a_bias_change_is_a_cause():
    result = invoke("diff", "--x", "1,2", "--b-set", "output.b=1", "--format", "csv")
    assert roles(result.stdout)[1, "output", "bias"] == "cause"
    assert "Cause: output.b differs (b_o differs in 2 of 2 entries, by up to 1)." in \
        invoke("diff", "--x", "1,2", "--b-set", "output.b=1").stdout


@pytest.fixture
def x_at_step_2(tmp_path):
    """Two runs of four steps whose inputs differ only at step 2, saved as CSV."""
    p = Parameters.random(2, 3, seed=5)
    xs = np.random.default_rng(3).normal(size=(4, 2))
    changed = xs.copy()
    changed[1, 0] += 1.0
    paths = [tmp_path / "a.csv", tmp_path / "b.csv"]
    lstmtrace.run(p, xs).to_csv(paths[0])
    lstmtrace.run(p, changed).to_csv(paths[1])
    return paths


def test_a_sequence_whose_x_differs_at_step_2_names_x_and_carries_h_prev_and_c_prev(x_at_step_2):
    result = invoke("diff", *x_at_step_2)
    lines = result.stdout.splitlines()
    assert "Cause: given.x differs at step 2 (different inputs)." in lines
    assert ("Carried: h_prev and c_prev bring the difference forward into steps 3-4 (a consequence of earlier "
            "steps, not a new cause).") in lines
    assert not any(line.startswith("The given inputs") for line in lines)
    found = roles(invoke("diff", *x_at_step_2, "--format", "csv").stdout)
    assert found[2, "given", "x"] == "input"
    assert found[3, "given", "h_prev"] == "carried" and found[3, "given", "c_prev"] == "carried"
    assert found[2, "forget", "Wx"] == "reached" and found[3, "forget", "Uh"] == "reached"
    assert "cause" not in found.values()


def test_a_different_starting_state_is_an_input():
    result = invoke("diff", "--x", "1,1", "--h", "0,0", "--format", "csv")
    assert result.exit_code == 0
    a = lstmtrace.step(Parameters.identity(2, 2), [1, 1], [0, 0])
    b = lstmtrace.step(Parameters.identity(2, 2), [1, 1], [0, 1])
    summary = lstmtrace.diff(a, b)
    assert summary.attrs["causes"][0]["name"] == "given.h_prev"
    assert "Cause: given.h_prev differs (a different starting state)." in lstmtrace.compare.headline(summary)


def test_variants_are_told_apart_by_how_they_compute():
    a = read_trace(TRACES / "seed_question.csv")
    b = read_trace(TRACES / "variant_cifg.csv")
    summary = lstmtrace.diff(a, b)
    why = {c["name"]: c["why"] for c in summary.attrs["causes"]}
    assert why["forget.act"] == "the cells compute it differently: A from forget.preact, B from input.act"


# -- before → after, saturation, units that stayed put ---------------------------------------------

def test_before_and_after_with_saturation():
    saturated = f"{sigmoid(10.0):.6g}"  # σ(10), written out by hand
    forward = invoke("diff", NOTEBOOK[1], NOTEBOOK[2]).stdout
    assert f"forget.act unit 2:         {saturated} → 0.5, leaves saturation" in forward
    back = invoke("diff", NOTEBOOK[2], NOTEBOOK[1]).stdout
    assert f"forget.act unit 2:         0.5 → {saturated}, becomes saturated" in back
    assert "forget.Uh unit 2:          10 → 0\n" in forward
    assert ", leaves" not in back and ", becomes" not in forward


def test_many_differing_units_are_capped_and_counted():
    summary = lstmtrace.diff(lstmtrace.step(Parameters.random(4, 8, seed=1), np.ones(4)),
                             lstmtrace.step(Parameters.random(4, 8, seed=2), np.ones(4)))
    text = lstmtrace.compare.explain(summary)
    total = int(summary["units"].sum())
    assert len(summary.attrs["changes"]) == MOST_UNITS
    assert f"… and {total - MOST_UNITS} more differing units (--units lists them all)" in text


def test_why_units_stayed_put_from_files_and_from_weights():
    files = invoke("diff", NOTEBOOK[0], NOTEBOOK[1]).stdout
    assert ("forget.Wx units 1, 2 stay put; x is 0 in units 1, 2, so columns 1, 2 of W_f add nothing to W_f·x: "
            "a change there would not show.") in files
    inline = invoke("diff", *GIVEN, "--set", "forget.W=identity", "--a-set", "forget.U=identity",
                    "--b-set", "forget.U=zeros").stdout
    assert ("forget.Uh units 0, 1 stay put though rows 0, 1 of U_f differ only in columns where h_prev is 0 "
            "(h_prev is 0 in units 0, 1).") in inline


def test_a_product_stays_put_where_the_other_factor_is_0():
    # c_prev is 0 in unit 1: a changed forget gate cannot change f * c_prev there
    a = lstmtrace.step(Parameters.zeros(2, 2), [1, 1], [0, 0], [3, 0])
    b = lstmtrace.step(Parameters.zeros(2, 2).set("forget", "b", 2.0), [1, 1], [0, 0], [3, 0])
    stayed = lstmtrace.diff(a, b).attrs["stayed"]
    assert "cell.forget*c_prev unit 1 stays put though forget.act changes there: given.c_prev is 0 there." in stayed


def test_a_weight_that_differs_without_showing_is_said():
    a = lstmtrace.step(Parameters.identity(2, 2), [1, 0])
    b = lstmtrace.step(Parameters.identity(2, 2).set("input", "W", [[1, 5], [0, 1]]), [1, 0])
    summary = lstmtrace.diff(a, b)
    assert summary.empty or summary.attrs["causes"] == []
    b = lstmtrace.step(Parameters.identity(2, 2).set("input", "W", [[1, 5], [0, 1]]).set("forget", "b", 1), [1, 0])
    lines = lstmtrace.compare.headline(lstmtrace.diff(a, b))
    assert ("input.W differs too (W_i: 1 of 4 entries, by up to 5) but changes no traced value: x is 0 in unit 1, "
            "the columns where W_i differs.") in lines


def test_max_rel_and_the_tolerances_are_said_in_words():
    text = invoke("diff", NOTEBOOK[0], NOTEBOOK[1]).stdout
    assert "max rel the largest |B - A| / max(|A|, |B|)" in text
    assert "here atol = rtol = 0, so only identical numbers count as equal." in text
    loose = invoke("diff", NOTEBOOK[0], NOTEBOOK[1], "--atol", "1e-3", "--rtol", "0.01").stdout
    assert "here atol = 0.001, rtol = 0.01." in loose
    markdown = invoke("diff", NOTEBOOK[0], NOTEBOOK[1], "--format", "markdown").stdout
    assert "- forget.act unit 0:" in markdown and "| role" in markdown


def test_minus_is_ascii_in_the_text():
    text = invoke("diff", "--x", "1,-2", "--weights", "random:1", "--b-set", "forget.W=zeros").stdout
    body = text.split("quantity ")[1]
    assert "−" not in body and " -" in body


# -- the property ----------------------------------------------------------------------------------

@given(seed=st.integers(0, 2**16), gate=st.sampled_from(["forget", "input", "candidate", "output"]),
       param=st.sampled_from(["W", "U", "b"]), row=st.integers(0, 2), column=st.integers(0, 2),
       delta=st.floats(0.1, 3.0) | st.floats(-3.0, -0.1))
def test_the_causes_named_are_exactly_the_changed_matrix(seed, gate, param, row, column, delta):
    rng = np.random.default_rng(seed)
    p = Parameters.random(3, 3, seed=seed)
    x = rng.uniform(0.2, 1.0, 3) * rng.choice([-1, 1], 3)  # no input is 0: every change shows
    h = rng.uniform(0.2, 1.0, 3) * rng.choice([-1, 1], 3)
    changed = np.array(getattr(p[gate], param), dtype=float)
    changed[(row, column) if changed.ndim == 2 else row] += delta
    a, b = lstmtrace.step(p, x, h), lstmtrace.step(p.copy().set(gate, param, changed), x, h)
    known = lstmtrace.diff(a, b)
    assert [c["name"] for c in known.attrs["causes"]] == [f"{gate}.{param}"]
    from_files = lstmtrace.diff(read_trace(io.StringIO(a.to_csv())), read_trace(io.StringIO(b.to_csv())))
    assert [c["name"] for c in from_files.attrs["causes"]] == [f"{gate}.{param}"]
    assert set(from_files["role"]) <= {"cause", "reached"}


# -- more than two traces --------------------------------------------------------------------------

def test_three_notebook_traces_side_by_side_match_the_csvs():
    result = invoke("diff", *NOTEBOOK, "--format", "csv")
    assert result.exit_code == 1 and result.stderr == ""
    table = pd.read_csv(io.StringIO(result.stdout))
    names = ["notebook_1_zeros", "notebook_2_identity", "notebook_3_u_zeros"]
    assert list(table.columns) == ["step", "gate", "quantity", "unit", *names]
    on = ["step", "gate", "quantity", "unit"]
    merged = None
    for name, path in zip(names, NOTEBOOK):  # the CSVs read on their own, with pandas
        one = pd.read_csv(path).rename(columns={"value": name})[on + [name]]
        merged = one if merged is None else merged.merge(one, on=on)
    values = merged[names].to_numpy()
    expected = merged[(values != values[:, :1]).any(axis=1)].reset_index(drop=True)
    pd.testing.assert_frame_equal(table, expected, check_dtype=False)
    act = table[(table["quantity"] == "act")].set_index("unit")[names]
    assert act.loc[2].tolist() == [0.5, sigmoid(10.0), 0.5]


def test_three_traces_as_text_say_what_each_experiment_changes():
    text = invoke("diff", *NOTEBOOK).stdout
    assert text.startswith("3 traces side by side: 8 quantities (14 units) differ in at least one of them")
    assert "  notebook_1_zeros → notebook_2_identity: forget.W, forget.U differ" in text
    assert "  notebook_2_identity → notebook_3_u_zeros: forget.U differs" in text
    assert "notebook_1_zeros    notebook_2_identity    notebook_3_u_zeros" in text
    markdown = invoke("diff", *NOTEBOOK, "--format", "markdown").stdout
    assert "| quantity" in markdown and "notebook_3_u_zeros |" in markdown
    rows = json.loads(invoke("diff", *NOTEBOOK, "--format", "json").stdout)
    assert len(rows) == 14 and rows[0]["notebook_2_identity"] == 10


def test_three_equal_traces_exit_0(tmp_path):
    result = invoke("diff", NOTEBOOK[0], NOTEBOOK[0], NOTEBOOK[0])
    assert result.exit_code == 0 and result.stdout.startswith("The 3 traces agree: all 84 values are equal")


def test_three_traces_trouble(tmp_path):
    assert_error(invoke("diff", *NOTEBOOK[:2], TRACES / "seed_question.csv"), "cannot compare",
                 "seed_question has a different input size E (5) from notebook_1_zeros (3)")
    assert_error(invoke("diff", *NOTEBOOK, "--units"), "--units is for two traces")
    (tmp_path / "junk.csv").write_text("a,b\n1,2\n")
    assert_error(invoke("diff", *NOTEBOOK[:2], tmp_path / "junk.csv"), "junk.csv", "columns")
    out = tmp_path / "out.csv"
    assert_error(invoke("diff", *NOTEBOOK[:2], TRACES / "seed_question.csv", "-o", out))
    assert not out.exists()


def test_side_by_side_in_python():
    a, b, c = (read_trace(path) for path in NOTEBOOK)
    table = side_by_side([a, b, c])
    assert list(table.columns[-3:]) == ["A", "B", "C"] and len(table) == 14
    assert side_by_side([a, b, c], atol=10).empty
    with pytest.raises(ValueError, match="at least two"):
        side_by_side([a])
    with pytest.raises(ValueError, match="3 different names"):
        side_by_side([a, b, c], names=["x", "x", "y"])
    with pytest.raises(TraceMismatch, match="B has a different number of steps"):
        side_by_side([a, lstmtrace.run(Parameters.zeros(3, 3), np.ones((2, 3)))])


def test_a_reverse_cell_carries_the_difference_to_earlier_steps():
    p = Parameters.random(2, 3, seed=2)
    xs = np.random.default_rng(4).normal(size=(4, 2))
    changed = xs.copy()
    changed[2, 1] += 1.0  # step 3, which a reverse cell runs second
    summary = lstmtrace.diff(lstmtrace.run(p, xs, direction="reverse"),
                             lstmtrace.run(p, changed, direction="reverse"))
    lines = lstmtrace.compare.headline(summary)
    assert "Cause: given.x differs at step 3 (different inputs)." in lines
    assert ("Carried: h_prev and c_prev bring the difference forward into steps 1-2 (a consequence of earlier "
            "steps, not a new cause).") in lines
    weights = lstmtrace.diff(lstmtrace.run(p, xs, direction="reverse"),
                             lstmtrace.run(p.copy().set("forget", "b", 1.0), xs, direction="reverse"))
    assert ("The given inputs (x, h_prev, c_prev) are the same at step 4, so the difference starts in the cell "
            "itself, not in what it was given.") in lstmtrace.compare.headline(weights)
