"""`--check` and Trace.check: a learner's hand-computed numbers against the trace, and the mistake behind them.

Every expected number here is computed in the test with plain numpy (or is the learner's own, from the
seed question); none comes from lstmtrace.
"""
import io
import json
import pathlib

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import lstmtrace
from conftest import assert_error, invoke
from lstmtrace import Parameters, Variant
from lstmtrace.check import MISTAKES, decimals
from lstmtrace.errors import OptionError

FIXTURES = pathlib.Path(__file__).parent / "fixtures"

X = np.array([-0.1, 0.3, 0.1, -0.25, 0.1])  # the seed question's x_t and h_{t-1}
H_PREV = np.array([0.0, 0.5, 0.1, 0.2, 0.6])
LEARNERS_FT = "0.47502081,0.68997448,0.549834,0.4875026,0.66818777"  # from the question, as they printed it


def sigma(z):
    return 1 / (1 + np.exp(-z))


def written(values, places=8):
    return ",".join(f"{v:.{places}f}" for v in values)


def seed_step(h_prev=H_PREV, b_f=0.0, b_i=0.0, b=0.0):
    """The seed question's step by hand: identity weights, c_prev = 0; optional biases."""
    f, i = sigma(X + h_prev + b + b_f), sigma(X + h_prev + b + b_i)
    g, o = np.tanh(X + h_prev + b), sigma(X + h_prev + b)
    c = i * g
    return {"f": f, "i": i, "g": g, "o": o, "c": c, "h": o * np.tanh(c)}


def check_step(*args, quantity="f", values):
    return invoke("step", *args, "--check", f"{quantity}={values}")


# -- agreement to the digits given ---------------------------------------------------------------

def test_the_seed_questions_own_ft_agrees():
    result = check_step(values=LEARNERS_FT)
    assert result.exit_code == 0 and result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0] == "Your forget.act (f), step 1:"
    rows = [line.split() for line in lines if line.strip()[:1].isdigit()]
    assert [row[1] for row in rows] == LEARNERS_FT.split(",") and all(row[-1] == "yes" for row in rows)
    assert lines[-1] == "Verdict: all 5 of your values agree with lstmtrace's to the digits you gave."


def test_the_seed_questions_ft_pasted_as_numpy_prints_it():
    result = check_step(values="array([0.47502081, 0.68997448, 0.549834  , 0.4875026 , 0.66818777])")
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize("written_as, agrees", [
    ("0.549834", True), ("0.5498339973", True), ("0.55", True), ("0.5", True), ("0.6", False), ("0.5498", True),
    ("0.5499", False), ("5.49834e-1", True), ("5.5E-1", True), ("0.549833", False), ("0.54983", True),
])
def test_a_value_agrees_to_the_decimals_it_is_written_with(written_as, agrees):
    truth = sigma(X[2] + H_PREV[2])  # 0.5498339973…
    assert (abs(float(written_as) - truth) <= 0.5 * 10.0 ** -decimals(written_as)) == agrees  # the rule, by hand
    t = lstmtrace.step(Parameters.identity(5, 5), X, H_PREV)
    values = [f"{v:.10f}" for v in sigma(X + H_PREV)]
    values[2] = written_as
    assert t.check("forget.act", ",".join(values)).agrees == agrees


def test_decimals_are_counted_from_the_text_and_python_floats_by_their_repr():
    assert [decimals(s) for s in ("1", "0.5", "-0.125", "1e-3", "2.50e+1", "1.e2")] == [0, 1, 3, 3, 1, -2]
    t = lstmtrace.step(Parameters.identity(1, 1), [0.2])
    # σ(0.2) = 0.549834, and the input gate writes tanh(0.2) = 0.197375 of it: c = 0.108523…
    assert t.check("c", [0.1085]).agrees and not t.check("c", [0.1086]).agrees
    assert t.check("c", [0.11]).agrees and t.check("c", [0.1]).agrees and not t.check("c", [0.12]).agrees
    assert t.check("c", np.array([0.1085], dtype=np.float32)).agrees  # float32's own shortest digits


def test_a_value_off_by_a_digit_is_reported_at_that_unit():
    values = LEARNERS_FT.split(",")
    values[3] = "0.4875036"
    result = check_step(values=",".join(values))
    assert result.exit_code == 1 and result.stderr == ""
    rows = {int(row[0]): row[-1] for row in (line.split() for line in result.stdout.splitlines())
            if row and row[0].isdigit() and len(row) == 4}
    assert rows == {0: "yes", 1: "yes", 2: "yes", 3: "NO", 4: "yes"}
    assert "1 of 5 differs; the first is unit 3: yours 0.4875036" in result.stdout
    assert "1 of your 5 values differs" in result.stdout.splitlines()[-1]


def test_the_short_symbols_name_the_acts_c_and_h():
    truth = seed_step()
    for symbol, name in (("f", "forget.act"), ("i", "input.act"), ("g", "candidate.act"), ("o", "output.act"),
                         ("c", "cell.c"), ("h", "hidden.h")):
        for quantity in (symbol, name):
            result = check_step(quantity=quantity, values=written(truth[symbol]))
            assert result.exit_code == 0, (quantity, result.stdout)
            assert f"Your {name}" in result.stdout


def test_any_quantity_the_trace_names_can_be_checked():
    preact = X + H_PREV
    for quantity, values in (("forget.preact", preact), ("input.Uh", H_PREV), ("candidate.Wx", X),
                             ("cell.forget*c_prev", np.zeros(5)), ("hidden.tanh(c)", np.tanh(seed_step()["c"]))):
        assert check_step(quantity=quantity, values=written(values)).exit_code == 0, quantity


# -- a sequence ------------------------------------------------------------------------------------

def by_hand_run(xs, w=1.0):
    """A 1×1 cell with every W and U equal to w, zero biases, from zero state, written out."""
    h = c = 0.0
    out = {"c": [], "h": [], "f": []}
    for x in xs:
        z = w * x + w * h
        f = i = o = sigma(z)
        c = f * c + i * np.tanh(z)
        h = o * np.tanh(c)
        out["c"].append(c), out["h"].append(h), out["f"].append(f)
    return {k: np.array(v) for k, v in out.items()}


def test_run_checks_rows_from_step_one_and_at_a_step():
    truth = by_hand_run([1.0, 1.0, 1.0])
    rows = ";".join(f"{v:.4f}" for v in truth["c"][:2])
    result = invoke("run", "--xs", "1;1;1", "--check", f"c={rows}", "--check", f"h@3={truth['h'][2]:.4f}")
    assert result.exit_code == 0, result.stdout
    assert "Your cell.c (c), steps 1 to 2:" in result.stdout and "Your hidden.h (h), step 3:" in result.stdout
    wrong = invoke("run", "--xs", "1;1;1", "--check", f"h@2={truth['h'][2]:.4f}")
    assert wrong.exit_code == 1 and "1 of 1 differs" in wrong.stdout


def test_a_mistake_in_a_sequence_is_carried_to_later_steps():
    # The learner leaves U·h_prev out at every step: z = x, and c still carries from step to step.
    c, cs = 0.0, []
    for x in (1.0, 1.0, 1.0):
        c = sigma(x) * c + sigma(x) * np.tanh(x)
        cs.append(c)
    result = invoke("run", "--xs", "1;1;1", "--check", "c=" + ";".join(f"{v:.6f}" for v in cs))
    assert result.exit_code == 1
    assert "the U·h_prev term left out" in result.stdout
    t = lstmtrace.run(Parameters.identity(1, 1), [[1.0]] * 3)
    assert t.check("c", [[v] for v in cs]).mistakes == ("no_Uh",)


# -- each mistake, recomputed by hand and diagnosed ----------------------------------------------

TWO = ["--x", "1,2", "--h", "0.5,-1", "--weights", "zeros"]


def mistakes_named(stdout):
    return {m.key for m in MISTAKES if f"  - {m.name}:" in stdout}


@pytest.mark.parametrize("key, args, quantity, values", [
    ("swapped_activations", [], "f", np.tanh(X + H_PREV)),
    ("no_Uh", [], "f", sigma(X)),
    ("no_Wx", [], "f", sigma(H_PREV)),
    ("no_bias", ["--bias", "0.5"], "f", sigma(X + H_PREV)),
    ("double_bias", ["--bias", "0.5"], "f", sigma(X + H_PREV + 1.0)),
    ("h_for_h_prev", [], "f", sigma(X + seed_step()["h"])),
    ("c_for_c_prev", ["--c", "0.5,-0.5,1,0,2"], "c",
     None),  # filled in below: f * c + i * c̃ with c the step's own
    ("pytorch_order", ["--set", "input.b=0.5"], "f", sigma(X + H_PREV + 0.5)),
    ("sigma_centred_at_1", [], "f", sigma(X + H_PREV - 1.0)),
    ("sigma_centred_at_1", [], "c", sigma(X + H_PREV - 1.0) * np.tanh(X + H_PREV)),  # carried on to c
    ("no_Uh", [], "h", sigma(X) * np.tanh(sigma(X) * np.tanh(X))),  # and to h
])
def test_each_mistake_on_the_seed_question_is_diagnosed(key, args, quantity, values):
    if key == "c_for_c_prev":
        c_prev = np.array([0.5, -0.5, 1, 0, 2])
        z = X + H_PREV
        c = sigma(z) * c_prev + sigma(z) * np.tanh(z)
        values = sigma(z) * c + sigma(z) * np.tanh(z)
    result = check_step(*args, *(["--x", ",".join(map(str, X)), "--h", ",".join(map(str, H_PREV))] if args else []),
                        quantity=quantity, values=written(values))
    assert result.exit_code == 1, result.stdout
    assert key in mistakes_named(result.stdout), result.stdout


@pytest.mark.parametrize("key, sets, values", [
    # W_f = [[1, 2], [3, 4]], U_f = [[0, 1], [1, 0]]: x = (1, 2), h_prev = (0.5, -1)
    ("elementwise", ["forget.W=1,2;3,4", "forget.U=0,1;1,0"], sigma(np.array([1 * 1 + 0 * 0.5, 4 * 2 + 0 * -1]))),
    ("W_transposed", ["forget.W=1,2;3,4", "forget.U=0,1;1,0"], sigma(np.array([1 + 6 - 1, 2 + 8 + 0.5]))),
    ("U_transposed", ["forget.W=1,0;0,1", "forget.U=1,2;0,1"], sigma(np.array([1 + 0.5, 2 + 1 - 1]))),
])
def test_mistakes_of_matrix_products_are_diagnosed(key, sets, values):
    args = TWO + [a for s in sets for a in ("--set", s)]
    result = check_step(*args, values=written(values))
    assert result.exit_code == 1 and key in mistakes_named(result.stdout), result.stdout


def test_a_mistake_that_changes_nothing_is_not_offered():
    # identity weights: W*x, W.T and U.T are all W·x; zero biases: leaving them out or doubling changes nothing
    t = lstmtrace.step(Parameters.identity(5, 5), X, H_PREV)
    wrong = sigma(X)  # U·h_prev left out
    assert t.check("f", written(wrong)).mistakes == ("no_Uh",)


def test_several_mistakes_that_reproduce_the_values_are_all_named():
    # with h_prev = 0, leaving U·h_prev out changes nothing, but with forget.b = 1 leaving out the bias and
    # taking the input gate for the forget gate both give σ(x)
    result = check_step("--x", "1,2", "--set", "forget.b=1", values=written(sigma(np.array([1.0, 2.0]))))
    assert mistakes_named(result.stdout) == {"no_bias", "pytorch_order", "sigma_centred_at_1"}  # σ(x + 1 − 1)
    assert "Each of these mistakes reproduces" in result.stdout


def test_when_no_mistake_reproduces_the_values_the_working_of_the_first_differing_unit_is_shown():
    result = check_step(quantity="f", values="0.47502081,0.6999,0.549834,0.4875026,0.66818777")
    assert result.exit_code == 1
    text = result.stdout
    assert "No common mistake that lstmtrace knows reproduces them" in text
    working = {line.split()[0]: line.split()[-1] for line in text.splitlines() if line.startswith("  forget.")}
    assert {k: float(v) for k, v in working.items()} == pytest.approx(
        {"forget.Wx": 0.3, "forget.Uh": 0.5, "forget.bias": 0.0, "forget.preact": 0.8,
         "forget.act": sigma(0.8)}, abs=1e-9)
    assert text.splitlines()[-1] == ("Verdict: 1 of your 5 values differs from lstmtrace's; no single common mistake "
                                     "that lstmtrace knows reproduces them all.")


def test_mistakes_a_trace_cannot_make_are_said_once():
    p = Parameters.identity(3, 2)  # W is 2×3: no W*x, no W transposed
    t = lstmtrace.step(p, [1.0, 2.0, 3.0])
    report = t.check("f", "0.1,0.1")
    assert "W transposed (W is 2×3, not square)" in report.to_text()
    assert report.to_text().count("Not tried") == 1
    assert "Not tried" not in t.check("f", written(sigma(np.array([1.0, 2.0])))).to_text()


def test_a_trace_read_from_a_file_has_no_weights_to_make_mistakes_with():
    t = lstmtrace.step(Parameters.identity(5, 5), X, H_PREV)
    loaded = lstmtrace.read_trace(io.StringIO(t.to_csv()))
    assert loaded.check("f", LEARNERS_FT).agrees
    report = loaded.check("f", written(sigma(X)))
    assert report.mistakes == ()
    assert "holds no weights" in report.to_text()


# -- variants -----------------------------------------------------------------------------------------

def test_pytorch_order_with_peepholes_exchanges_their_peepholes_too():
    x, h, c = np.array([0.5, -1.0]), np.array([0.2, 0.4]), np.array([1.0, -2.0])
    p = Parameters.identity(2, 2, variant=Variant(peephole=True)).set("forget", "P", "0.5,0.25").set(
        "input", "P", "-1,2").set("input", "b", 0.3)
    t = lstmtrace.step(p, x, h, c)
    learners_f = sigma(x + h + 0.3 + np.array([-1.0, 2.0]) * c)  # the input gate's, with its own peephole
    assert t.check("f", written(learners_f)).mistakes == ("pytorch_order",)


def test_a_coupled_cell_cannot_exchange_its_forget_and_input_gates():
    p = Parameters.identity(2, 2, variant=Variant(coupled=True))
    t = lstmtrace.step(p, [1.0, 2.0])
    report = t.check("i", "0.1,0.1")
    assert report.not_tried["pytorch_order"] == "the forget gate has no weights of its own in this cell"


def test_sigma_centred_at_1_and_swapped_activations_follow_a_variants_activations():
    p = Parameters.identity(2, 2, variant=Variant(gate_activation="hard_sigmoid", clip=0.5))
    t = lstmtrace.step(p, [1.0, -2.0])
    report = t.check("f", "0.1,0.1")
    assert report.not_tried["sigma_centred_at_1"] == "no gate of this cell computes σ"
    # the candidate's tanh is still swapped for σ: c̃ = σ(clip(x)) with the clip at 0.5
    assert "swapped_activations" in t.check("g", written(sigma(np.array([0.5, -0.5])))).mistakes


def test_a_projection_checks_h_and_tries_what_it_can():
    p = Parameters.random(2, 3, seed=4, variant=Variant(proj_size=2))
    t = lstmtrace.step(p, [1.0, -1.0], [0.5, 0.5])
    W, U, b, W_hr = p.W, p.U, p.b, p.W_hr
    x, h_prev = np.array([1.0, -1.0]), np.array([0.5, 0.5])
    z = (W @ x + U @ h_prev + b).reshape(4, 3)
    i, g, o = sigma(z[1]), np.tanh(z[2]), sigma(z[3])
    assert t.check("h", written(W_hr @ (o * np.tanh(i * g)))).agrees
    zw = (W @ x + b).reshape(4, 3)  # U·h_prev left out
    report = t.check("h", written(W_hr @ (sigma(zw[3]) * np.tanh(sigma(zw[1]) * np.tanh(zw[2])))))
    assert "no_Uh" in report.mistakes
    assert "U is 3×2, not square" in report.not_tried["U_transposed"]


# -- hypothesis ---------------------------------------------------------------------------------------

@given(E=st.integers(1, 4), H=st.integers(1, 4), T=st.integers(1, 3), seed=st.integers(0, 2**16),
       places=st.integers(1, 12), data=st.data())
def test_the_traces_own_values_rounded_always_agree(E, H, T, seed, places, data):
    rng = np.random.default_rng(seed)
    t = lstmtrace.run(Parameters.random(E, H, seed=seed), rng.normal(size=(T, E)), rng.normal(size=H),
                      rng.normal(size=H))
    gate, quantity = data.draw(st.sampled_from([s for s in t.cell.pipeline for s in [(s[0], q) for q in s[1]]]))
    values = t.block(gate, quantity)
    rows = ";".join(",".join(f"{v:.{places}f}" for v in row) for row in values)
    assert t.check(f"{gate}.{quantity}", rows).agrees


def by_hand(p, xs, h0, c0, mistake=None, truth=None):
    """The default LSTM over xs, written out with numpy, with one of MISTAKES made; {symbol: steps × H}."""
    G = ("forget", "input", "candidate", "output")
    W = {g: np.array(p[g].W) for g in G}
    U = {g: np.array(p[g].U) for g in G}
    b = {g: np.array(p[g].b) for g in G}
    act = {"forget": sigma, "input": sigma, "candidate": np.tanh, "output": sigma}
    act_c = np.tanh
    if mistake == "swapped_activations":
        act = {"forget": np.tanh, "input": np.tanh, "candidate": sigma, "output": np.tanh}
        act_c = sigma
    if mistake == "sigma_centred_at_1":
        act = {g: (lambda z: sigma(z - 1)) if a is sigma else a for g, a in act.items()}
    for g in G:
        if mistake == "no_Uh":
            U[g] = np.zeros_like(U[g])
        if mistake == "no_Wx":
            W[g] = np.zeros_like(W[g])
        if mistake == "no_bias":
            b[g] = np.zeros_like(b[g])
        if mistake == "double_bias":
            b[g] = 2 * b[g]
        if mistake == "elementwise":
            W[g] = np.diag(np.diag(W[g])) if W[g].shape[0] == W[g].shape[1] else W[g]
            U[g] = np.diag(np.diag(U[g]))
        if mistake == "W_transposed":
            W[g] = W[g].T
        if mistake == "U_transposed":
            U[g] = U[g].T
    if mistake == "pytorch_order":
        for d in (W, U, b):
            d["forget"], d["input"] = d["input"], d["forget"]
    h, c = h0, c0
    out = {k: [] for k in "figoch"}
    for t, x in enumerate(xs):
        h_prev = truth["h"][t] if mistake == "h_for_h_prev" else h
        c_prev = truth["c"][t] if mistake == "c_for_c_prev" else c
        f, i, g, o = (act[n](W[n] @ x + U[n] @ h_prev + b[n]) for n in G)
        c = f * c_prev + i * g
        h = o * act_c(c)
        for k, v in zip("figoch", (f, i, g, o, c, h)):
            out[k].append(v)
    return {k: np.array(v) for k, v in out.items()}


@given(E=st.integers(1, 3), H=st.integers(1, 3), square=st.booleans(), T=st.integers(1, 3),
       seed=st.integers(0, 2**16), mistake=st.sampled_from([m.key for m in MISTAKES]),
       symbol=st.sampled_from("figoch"))
def test_each_mistakes_own_numbers_are_diagnosed_as_that_mistake(E, H, square, T, seed, mistake, symbol):
    E = H if square else E
    assume(not (mistake in ("W_transposed",) and E != H))
    rng = np.random.default_rng(seed)
    p = Parameters.random(E, H, seed=seed)
    for gate in p.gates:
        p.set(gate, "b", rng.uniform(-1, 1, H))
    xs, h0, c0 = rng.normal(size=(T, E)), rng.normal(size=H), rng.normal(size=H)
    truth = by_hand(p, xs, h0, c0)
    made = by_hand(p, xs, h0, c0, mistake, truth)[symbol]
    t = lstmtrace.run(p, xs, h0, c0)
    assert t.check(symbol, ";".join(written(row, 12) for row in truth[symbol])).agrees  # the hand-written truth
    report = t.check(symbol, ";".join(written(row) for row in made))
    if not report.agrees:  # the mistake shows at 8 decimals: it must be among those named
        assert mistake in report.mistakes, (mistake, report.to_text())


# -- the report's formats and the Python object ------------------------------------------------------

def test_markdown_csv_and_json_reports(tmp_path):
    md = check_step(values=LEARNERS_FT).stdout
    assert md.startswith("Your forget.act")
    markdown = invoke("step", "--check", f"f={LEARNERS_FT}", "--format", "markdown").stdout
    assert markdown.startswith("### Your forget.act (f), step 1") and "|" in markdown and "**Verdict:**" in markdown
    result = invoke("step", "--check", "f=0.47502081,0.6999,0.549834,0.4875026,0.66818777", "-o", tmp_path / "c.csv")
    assert result.exit_code == 1 and result.stdout == ""
    table = pd.read_csv(tmp_path / "c.csv")
    assert list(table.columns) == ["quantity", "step", "unit", "yours", "decimals", "lstmtrace", "difference",
                                   "agrees"]
    assert table["agrees"].tolist() == [True, False, True, True, True]
    assert table["lstmtrace"][1] == sigma(0.8) or abs(table["lstmtrace"][1] - sigma(0.8)) < 1e-15
    rows = json.loads(invoke("step", "--check", f"f={LEARNERS_FT}", "--format", "json").stdout)
    assert len(rows) == 5 and all(r["agrees"] for r in rows) and rows[2]["decimals"] == 6


def test_the_python_object():
    t = lstmtrace.step(Parameters.identity(5, 5), X, H_PREV)
    report = t.check("forget.act", [0.47502081, 0.68997448, 0.549834, 0.4875026, 0.66818777])
    assert report.agrees and report.mistakes == () and str(report) == report.to_text()
    assert report.table["decimals"].tolist() == [8, 8, 6, 7, 8]
    several = t.check({"f": LEARNERS_FT, "c": written(sigma(X) * np.tanh(X))})
    assert not several.agrees and several.diagnosis["f"] == () and "no_Uh" in several.diagnosis["c"]
    assert t.check(f"f@1={LEARNERS_FT}").agrees
    assert lstmtrace.check.Check is type(report)
    assert lstmtrace.Check is type(report)


# -- bad input: one line, exit 2, nothing on stdout ------------------------------------------------

@pytest.mark.parametrize("spec, words", [
    ("f", "is not QUANTITY=VALUES"),
    ("=1,2", "is not QUANTITY=VALUES"),
    ("f@x=1", "the step after @ must be a whole number from 1"),
    ("f@0=1", "the step after @ must be a whole number from 1"),
    ("zz=1,2,3,4,5", "no quantity 'zz' in this trace"),
    ("forget.grad:act=1,2,3,4,5", "no quantity"),
    ("f=1,2", "forget.act has 5 units, and your values give 2"),
    ("f=1,2,3,4,a", "'a' is not a number"),
    ("f=1,2,3,4,nan", "'nan' is not a number"),
    ("f=1,2,3,4,inf", "'inf' is not a number"),
    ("f=", "no numbers given"),
    ("f=1,2,3,4,5;1,2,3,4,5", "reach step 2, and the trace has 1 step(s)"),
    ("f@2=1,2,3,4,5", "the trace has 1 step(s), so no step 2"),
])
def test_bad_checks_are_one_line(spec, words, tmp_path):
    out = tmp_path / "report.txt"
    assert_error(invoke("step", "--check", spec, "-o", out), "'--check'", words)
    assert not out.exists()
    assert_error(invoke("step", "--check", spec), "'--check'", words)


@pytest.mark.parametrize("args, option, words", [
    (["--format", "html"], "--format", "--check writes text, markdown, csv or json"),
    (["--format", "parquet", "-o", "x.parquet"], "--format", "--check writes text"),
    (["--expand", "1"], "--expand", "with --check the output is the check report"),
    (["--csv-layout", "wide"], "--csv-layout", "with --check the output is the check report"),
])
def test_options_for_the_explanation_are_refused_with_check(args, option, words, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert_error(invoke("step", "--check", f"f={LEARNERS_FT}", *args), f"'{option}'", words)


def test_run_refuses_steps_with_check_and_a_row_too_many():
    assert_error(invoke("run", "--xs", "1;1", "--check", "c=0.5", "--steps", "1"), "'--steps'", "check report")
    assert_error(invoke("run", "--xs", "1;1", "--check", "c=0.5;1;2"), "'--check'", "reach step 3, and the trace has 2")


def test_run_refuses_to_check_a_stack():
    result = invoke("run", "--weights", FIXTURES / "torch_model_bilstm_state.npz", "--tokens", "1,2,3",
                    "--embedding", "embedding.weight", "--layer", "0", "--check", "f=0.5,0.5,0.5,0.5")
    assert_error(result, "'--check'", "checks one cell, and 2 are traced", "--layer K --direction")
    result = invoke("run", "--weights", FIXTURES / "torch_model_bilstm_state.npz", "--tokens", "1,2,3",
                    "--embedding", "embedding.weight", "--layer", "0", "--direction", "reverse",
                    "--check", "f@3=0.5,0.5,0.5,0.5")
    assert result.exit_code == 1 and result.stderr == ""


def test_the_library_raises_option_errors_naming_check():
    t = lstmtrace.step(Parameters.identity(2, 2), [1.0, 2.0])
    with pytest.raises(OptionError) as e:
        t.check("f", [1, 2, 3])
    assert e.value.option == "check"
    stack = lstmtrace.run_stack([[Parameters.random(2, 2, seed=0)], [Parameters.random(2, 2, seed=1)]], [[1.0, 2.0]])
    with pytest.raises(OptionError, match="checks one cell"):
        lstmtrace.check.check(stack, ["f=1,2"])


def test_a_reverse_cells_mistakes_run_from_its_last_step():
    # the reverse cell reads x_2 first: leaving U·h_prev out, z = x at both steps, and c_2 is carried to step 1
    c2 = sigma(2.0) * np.tanh(2.0)
    c1 = sigma(1.0) * c2 + sigma(1.0) * np.tanh(1.0)
    t = lstmtrace.run(Parameters.identity(1, 1), [[1.0], [2.0]], direction="reverse")
    assert t.check("c", f"{c1:.8f};{c2:.8f}").mistakes == ("no_Uh",)
    h2 = sigma(2.0) * np.tanh(c2)
    z1 = 1.0 + h2
    assert t.check("c", f"{sigma(z1) * c2 + sigma(z1) * np.tanh(z1):.8f};{c2:.8f}").agrees
