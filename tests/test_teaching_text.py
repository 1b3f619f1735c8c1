"""The text answers a learner: notes that appear exactly when the numbers call for them, a glossary said
once, one minus and one multiplication sign, a Result block to paste, and long runs cut to the steps
worth reading.  Each note is tested both ways: it appears when its situation holds, and not otherwise."""
import pathlib
import re
from decimal import Decimal

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import lstmtrace
from lstmtrace import Parameters, Variant
from lstmtrace.cli import cli
from lstmtrace.text import GLOSSARY, number

TRACES = pathlib.Path(__file__).parent.parent / "traces"
X, H_PREV = [-0.1, 0.3, 0.1, -0.25, 0.1], [0, 0.5, 0.1, 0.2, 0.6]  # the seed question's


def flat(text: str) -> str:
    return " ".join(text.split())


def seed(c_prev=None, params=None) -> str:
    return flat(lstmtrace.step(params or Parameters.identity(5, 5), X, H_PREV, c_prev).to_text())


def section(text: str, title: str) -> str:
    """One section of a step's text: from its heading to the next one."""
    start = text.index(f"\n{title}\n")
    following = re.search(r"\n[^\n]+\n[-=]{3,}\n", text[start + len(title) + 2:])
    return text[start:start + len(title) + 2 + (following.start() if following else len(text))]


# -- the seed question, answered ---------------------------------------------------------------------

def test_the_golden_seed_text_answers_all_four_parts_of_the_question():
    text = flat((TRACES / "seed_question.txt").read_text(encoding="utf-8"))
    # 1. the learner's f is right, and why it is not 0 or 1
    assert "f = σ(x + h_prev): exactly what 1 / (1 + np.exp(-(h_prev + x))) computes" in text
    assert "A gate is a soft switch, not a 0-or-1 one" in text
    # 2. how to get i and c̃
    assert "i = σ(W_i·x + U_i·h_prev + b_i)" in text and "(i = σ(x + h_prev))" in text
    assert "c̃ = tanh(W_g·x + U_g·h_prev + b_g)" in text and "(c̃ = tanh(x + h_prev))" in text
    # 3. how to get c, and what c_prev = 0 means for it
    assert "c = f*c_prev + i*c̃" in text and "With c_prev = 0, c = i*c̃" in text
    assert "c_prev = 0 is an assumption" in text
    # 4. how to get h
    assert "h = o*tanh(c)" in text and "\n  h = np.array([" in (TRACES / "seed_question.txt").read_text()


# -- notes driven by the numbers ---------------------------------------------------------------------

def test_identity_weights_confirm_the_learners_formula():
    assert "W_f and U_f are identity matrices and b_f = 0, so preact is simply x + h_prev" in seed()
    assert "preact is simply x + h_prev" not in seed(params=Parameters.random(5, 5, seed=1))


def test_a_saved_trace_says_the_same_from_its_numbers_alone():
    trace = lstmtrace.step(Parameters.identity(5, 5), X, H_PREV)
    saved = lstmtrace.read_trace(__import__("io").StringIO(trace.to_csv()))
    text = flat(saved.to_text())
    assert "Here W_f·x = x, U_f·h_prev = h_prev and b_f = 0, so preact is simply x + h_prev" in text
    assert "shows the same W·x, U·h_prev and bias as the forget gate" in text


def test_gates_with_the_same_weights_say_why_their_tables_match():
    text = seed()
    assert "The input gate has the same weights (W, U and b) as the forget gate, so its table is the same" in text
    assert "The output gate has the same weights" in text
    assert "The candidate has the same weights (W, U and b) as the forget gate, so the same preact, but tanh" in text
    different = seed(params=Parameters.random(5, 5, seed=2))
    assert "has the same weights" not in different


def test_a_gate_given_other_weights_is_not_called_a_twin():
    text = seed(params=Parameters.identity(5, 5).set("input", "b", 1.0))
    assert "The input gate has the same weights" not in text
    assert "The output gate has the same weights (W, U and b) as the forget gate" in text


def test_c_prev_zero_says_the_forget_gate_has_nothing_to_act_on():
    assert "c_prev is 0 in every unit, so f has nothing to act on at this step" in seed()
    assert "With c_prev = 0, c = i*c̃" in seed()
    ones = seed(c_prev=np.ones(5))
    assert "nothing to act on" not in ones and "With c_prev = 0" not in ones
    assert "It keeps more than half of c_prev (f > 0.5)" in ones
    partly = seed(c_prev=[1, 0, 1, 1, 1])
    assert "c_prev is 0 in unit 1: there f has nothing to act on." in partly


def test_an_h_prev_without_its_c_prev_is_called_an_assumption():
    assert "h_prev is not 0 but c_prev is, in units 1, 2, 3, 4" in seed()
    assert "c_prev = 0 is an assumption" in seed()
    assert "given independently" not in seed(c_prev=np.ones(5))
    # at step 2 of a run, h_prev and c_prev come from step 1: no such note about them
    run = lstmtrace.run(Parameters.identity(2, 2), [[1.0, 0.0], [0.0, 1.0]], h0=[0.5, 0.5])
    text = run.to_text()
    assert "given independently" in flat(section(text.split("LSTM step t = 2")[0], "Given"))
    assert "given independently" not in flat(text.split("LSTM step t = 2")[1])


def test_an_h_prev_outside_what_a_step_can_give_is_flagged():
    text = flat(lstmtrace.step(Parameters.identity(2, 2), [0.0, 0.0], [2.0, 0.5]).to_text())
    assert "|h_prev| > 1 in unit 0: no step of this cell gives such an h" in text
    assert "|h_prev| >" not in seed()
    # a projection's h is W_hr·m, unbounded: nothing to flag
    proj = Parameters.identity(2, 2, variant=Variant(proj_size=2))
    assert "|h_prev| >" not in flat(lstmtrace.step(proj, [0.0, 0.0], [2.0, 0.5]).to_text())
    # relu gates let o pass 1, so o*tanh(c) is unbounded: h = 3.5 below is a step's own h
    relu = Parameters.identity(2, 2, variant=Variant(gate_activation="relu"))
    assert lstmtrace.step(relu, [3.0, 3.0], [0.5, 0.5], [3.0, 3.0]).value("hidden", "h")[0] > 1
    assert "|h_prev| >" not in flat(lstmtrace.step(relu, [0.0, 0.0], [2.0, 0.5]).to_text())


def test_a_cell_state_past_the_range_of_tanh_is_flagged():
    text = seed(c_prev=[3, 0, 0, 0, 0])
    assert "|c| > 1 in unit 0: the cell state has grown past where tanh is nearly straight" in text
    assert "|c| > 1" not in seed()


def test_the_candidates_sign_decides_what_is_written():
    assert ("The sign of c̃ decides what is written: i*c̃ adds to c where c̃ > 0 (units 1, 2, 4) and takes away "
            "from it where c̃ < 0 (units 0, 3)") in seed()
    zeros = flat(lstmtrace.step(Parameters.zeros(2, 2), [1.0, 2.0], c_prev=[1.0, 1.0]).to_text())
    assert "The sign of c̃" not in zeros
    assert "c̃ is 0 in every unit, so nothing is written: c = f*c_prev." in zeros


def test_saturation_is_said_either_way():
    assert "No unit is saturated" in seed()
    text = flat(lstmtrace.step(Parameters.zeros(1, 2).set("forget", "b", "6,0"), [0.0]).to_text())
    assert "Saturated (within 0.01 of 0 or 1): unit 0." in text


def test_a_run_names_the_units_that_hold_memory_longest():
    params = Parameters.zeros(1, 3).set("forget", "b", "3,0,-3")
    trace = lstmtrace.run(params, [[1.0]] * 4)
    text = flat(trace.to_text())
    f = 1 / (1 + np.exp(-np.array([3.0, 0.0, -3.0])))  # every step's f, by hand
    kept = f ** 3  # steps 2, 3 and 4 keep f each of what c held after step 1
    assert (f"The units that hold memory longest: unit 0 keeps {kept[0]:.3g}, unit 1 keeps {kept[1]:.3g}, "
            f"unit 2 keeps {kept[2]:.3g}.") in text
    assert "hold memory longest" not in seed()
    nfg = lstmtrace.run(Parameters.identity(1, 1, variant=Variant(without=("forget",))), [[1.0]] * 3)
    assert "every unit keeps all of its cell state" in flat(nfg.to_text())


# -- the glossary, the notation, and --brief ---------------------------------------------------------------

def test_each_term_is_explained_once_at_its_first_use():
    text = lstmtrace.run(Parameters.identity(2, 2), [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]).to_text()
    for term, line in GLOSSARY.items():
        first_words = " ".join(line.split()[:4])
        assert flat(text).count(first_words) == 1, term
    # each is said before the term is first used in a table or formula, within the first step
    first_step = text.split("LSTM step t = 2")[0]
    assert first_step.index("· preact:") < first_step.index("preact       act")
    assert "Notation:" in first_step and "Notation:" not in text.split("LSTM step t = 2")[1]


def test_the_notation_ties_lstmtrace_to_the_diagrams():
    text = seed()
    assert "C_{t-1}, C_t" in text and "colah's W_C and b_C" in text
    assert "W_f·[h_{t-1}, x_t] is W_f·x + U_f·h_prev" in text


def test_brief_leaves_notes_and_glossary_out_but_keeps_tables_and_result():
    full = lstmtrace.step(Parameters.identity(5, 5), X, H_PREV).to_text()
    brief = lstmtrace.step(Parameters.identity(5, 5), X, H_PREV).to_text(brief=True)
    assert "Notation" not in brief and "· σ:" not in brief and "soft switch" not in brief
    assert "0.475021" in brief and "\nResult\n" in brief and "f = σ(W_f·x + U_f·h_prev + b_f)" in brief
    assert len(brief) < len(full) / 2


def test_brief_on_the_command_line_and_refused_for_data_formats():
    runner = CliRunner()
    brief = runner.invoke(cli, ["step", "--brief"])
    assert brief.exit_code == 0 and "soft switch" not in brief.stdout and "0.475021" in brief.stdout
    refused = runner.invoke(cli, ["step", "--brief", "--format", "csv"])
    assert refused.exit_code == 2 and refused.stdout == ""
    assert len(refused.stderr.strip().splitlines()) == 1 and "'--brief'" in refused.stderr


# -- one minus sign, one multiplication sign, precision said -----------------------------------------------

@pytest.mark.parametrize("name", ["np", "v", "nig", "nfg", "nog", "niaf", "noaf", "cifg"])
def test_one_minus_sign_and_one_multiplication_sign(name):
    params = Parameters.random(3, 3, seed=4, variant=Variant.preset(name))
    trace = lstmtrace.backward(lstmtrace.run(params, [[1.0, -2.0, 0.5], [0.3, 0.2, -1.0]]))
    text = trace.to_text(expand=1)
    assert "−" not in text
    assert [line for line in text.splitlines() if "⊙" in line] == [
        line for line in text.splitlines() if "d2l writes ⊙" in line]


@settings(max_examples=200, deadline=None)
@given(st.floats(-1e300, 1e300, allow_nan=False), st.integers(1, 17))
def test_a_number_is_exact_or_shows_all_its_digits(v, precision):
    shown = number(v, precision)
    digits = re.sub(r"e.*", "", shown).lstrip("-").replace(".", "").lstrip("0")
    if float(shown) == v:  # exact: no longer than it needs to be
        assert len(digits) <= precision or v == 0
    else:  # rounded: every digit shown, trailing zeros too
        assert len(digits) == precision
        exact, written = Decimal(v), Decimal(shown)
        assert abs(written - exact) <= Decimal(5) * Decimal(10) ** (exact.adjusted() - precision)


def test_the_rounding_note_shows_one_of_the_steps_own_numbers_rounded():
    text = seed()
    rounded, more = re.search(r"trailing zeros kept \((\S+) is (\S+)… rounded\)", text).groups()
    trace = lstmtrace.step(Parameters.identity(5, 5), X, H_PREV)
    assert any(str(v).startswith(more) for v in trace.frame["value"])
    assert float(rounded) == float(f"{float(more):.6g}")


# -- the Result block ---------------------------------------------------------------------------------------

def _result(text: str) -> dict:
    """The Result block's lines, run as Python: {name: array}."""
    block = text.split("\nResult\n")[1].split("\n\n")[1]
    names: dict = {"np": np}
    exec("\n".join(line.strip() for line in block.splitlines()), names)
    return {k: v for k, v in names.items() if isinstance(v, np.ndarray)}


@pytest.mark.parametrize("precision", [3, 6, 8])
def test_the_result_block_pastes_into_python_as_the_traces_numbers(precision):
    trace = lstmtrace.step(Parameters.random(3, 4, seed=5), [0.5, -1.0, 2.0], [0.1, 0.2, -0.3, 0.4])
    pasted = _result(trace.to_text(precision=precision))
    assert set(pasted) == {"f", "i", "g", "o", "c", "h"}
    for name, (gate, q) in {"f": ("forget", "act"), "i": ("input", "act"), "g": ("candidate", "act"),
                            "o": ("output", "act"), "c": ("cell", "c"), "h": ("hidden", "h")}.items():
        np.testing.assert_allclose(pasted[name], trace.value(gate, q), rtol=0, atol=0.5 * 10 ** -precision)


def test_the_result_block_at_full_precision_is_every_digit():
    trace = lstmtrace.step(Parameters.random(3, 4, seed=5), [0.5, -1.0, 2.0])
    pasted = _result(trace.to_text(precision=17))
    assert (pasted["c"] == trace.value("cell", "c")).all() and (pasted["h"] == trace.value("hidden", "h")).all()


def test_the_result_block_names_a_projections_m():
    params = Parameters.random(2, 3, seed=1, variant=Variant(proj_size=2))
    pasted = _result(lstmtrace.step(params, [1.0, 2.0], [0.1, 0.2]).to_text())
    assert pasted["m"].shape == (3,) and pasted["h"].shape == (2,)


# -- long runs: the steps worth reading ------------------------------------------------------------------

def _long_run():
    """One unit, x = 0.5 t: preact = x + h_prev grows past 4.6, so the forget gate saturates at some step."""
    return lstmtrace.run(Parameters.identity(1, 1), [[0.5 * t] for t in range(1, 31)])


def test_a_long_run_explains_the_steps_worth_reading_and_why():
    trace = _long_run()
    text = trace.to_text()
    explained = [int(t) for t in re.findall(r"\nLSTM step t = (\d+) ", text)]
    # by hand: the first step whose f is within 0.01 of 1, from the trace's own preact
    preact = trace.block("forget", "preact")[:, 0]  # every gate's, with identity weights and zero biases
    saturates = int(np.flatnonzero(1 / (1 + np.exp(-preact)) > 0.99)[0]) + 1
    candidate = int(np.flatnonzero(np.tanh(preact) > 0.99)[0]) + 1
    change = np.abs(trace.block("cell", "c") - trace.block("given", "c_prev"))[:, 0]
    biggest = int(np.argmax(change)) + 1
    assert explained == sorted({1, saturates, candidate, biggest, 30})
    assert f"step {candidate}: the candidate gate's unit 0 first becomes saturated" in flat(text)
    flat_text = flat(text)
    assert f"step {saturates}: the forget gate's unit 0 first becomes saturated" in flat_text
    assert f"step {biggest}: the largest change in c" in flat_text
    assert "step 1: the first step" in flat_text and re.search(r"step 30: [^\n]*the last step", text)
    assert "--steps all explains every step" in flat_text


def test_a_run_of_twenty_steps_or_steps_all_explains_every_step():
    short = lstmtrace.run(Parameters.identity(1, 1), [[1.0]] * 20).to_text()
    assert len(re.findall(r"\nLSTM step t = ", short)) == 20
    assert len(re.findall(r"\nLSTM step t = ", _long_run().to_text(steps="all"))) == 30


def test_steps_all_on_the_command_line():
    runner = CliRunner()
    xs = ";".join(["1"] * 25)
    chosen = runner.invoke(cli, ["run", "--xs", xs])
    every = runner.invoke(cli, ["run", "--xs", xs, "--steps", "all"])
    assert chosen.exit_code == every.exit_code == 0
    assert len(re.findall(r"\nLSTM step t = ", chosen.stdout)) < 25
    assert len(re.findall(r"\nLSTM step t = ", every.stdout)) == 25
    bad = runner.invoke(cli, ["run", "--xs", xs, "--steps", "most"])
    assert bad.exit_code == 2 and "'--steps'" in bad.stderr and bad.stdout == ""


def test_the_readmes_excerpts_of_the_seed_text_are_the_golden_texts():
    readme = (TRACES.parent / "README.md").read_text(encoding="utf-8")
    golden = (TRACES / "seed_question.txt").read_text(encoding="utf-8")
    excerpts = [block for block in re.findall(r"```text\n(.*?)```", readme, flags=re.S)
                if block.startswith(("Forget gate\n", "Result\n"))]
    assert len(excerpts) == 2
    for block in excerpts:
        assert block in golden
