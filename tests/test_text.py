"""The annotated text teaches: formulas, tables of the trace's numbers, and notes that are true."""
import io
import re

import numpy as np
import pytest

import lstmtrace
from lstmtrace import Parameters, read_trace


@pytest.fixture
def seed_text(seed_question):
    params, v = seed_question
    return lstmtrace.step(params, v["x"], v["h_prev"], v["c_prev"]).to_text()


def test_sections_come_in_pipeline_order(seed_text):
    headings = ["Given", "Forget gate", "Input gate", "Candidate", "Output gate", "Cell state",
                "Hidden state"]
    positions = [seed_text.index(f"\n{h}\n") for h in headings]
    assert positions == sorted(positions)


def test_each_gate_shows_its_formula_and_columns(seed_text):
    assert "f = σ(W_f·x + U_f·h_prev + b_f)" in seed_text
    assert "c̃ = tanh(W_g·x + U_g·h_prev + b_g)" in seed_text
    assert re.search(r"unit +Wx +Uh +bias +preact +act", seed_text)


def test_forget_row_shows_the_learners_numbers(seed_text):
    # unit 0: Wx = x[0] = -0.1, Uh = h_prev[0] = 0, b = 0, preact = -0.1, f = σ(-0.1)
    assert re.search(r"\n +0 +-0\.1 +0 +0 +-0\.1 +0\.475021\n", seed_text)


def test_explains_why_a_gate_is_not_zero_or_one(seed_text):
    assert "exactly 0.5 where preact = 0" in seed_text
    assert "|preact| ≈ 4.6" in seed_text
    assert "No unit is saturated: |preact| is at most 0.8 here" in " ".join(seed_text.split())


def test_keeps_and_drops_name_the_right_units(seed_question):
    params, v = seed_question
    flat = " ".join(lstmtrace.step(params, v["x"], v["h_prev"], np.ones(5)).to_text().split())
    assert "It keeps more than half of c_prev (f > 0.5) in units 1, 2, 4; less than half (f < 0.5) " \
           "in units 0, 3." in flat


def test_saturated_units_are_flagged():
    params = Parameters.zeros(2, 3).set("forget", "b", "6,-6,0")
    text = lstmtrace.step(params, [0.0, 0.0], c_prev=[1.0, 1.0, 1.0]).to_text()
    flat = " ".join(text.split())
    assert "saturated ≈ 1" in text and "saturated ≈ 0" in text
    assert "Saturated (within 0.01 of 0 or 1): units 0, 1." in flat
    assert "exactly half (f = 0.5) in unit 2" in flat


def test_long_unit_lists_are_shortened():
    params = Parameters.zeros(1, 40).set("forget", "b", 1.0)
    flat = " ".join(lstmtrace.step(params, [0.0], c_prev=np.ones(40)).to_text().split())
    assert "in units 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, … (40 units in all)" in flat


def test_precision_sets_significant_digits(seed_question):
    params, v = seed_question
    text = lstmtrace.step(params, v["x"], v["h_prev"]).to_text(precision=3)
    assert " 0.475\n" in text and "0.475021" not in text


def test_expand_writes_the_dot_products_term_by_term(seed_question):
    params, v = seed_question
    text = lstmtrace.step(params, v["x"], v["h_prev"]).to_text(expand=0)
    assert "W_f[0,:]·x = 1*(-0.1) + 0*0.3 + 0*0.1 + 0*(-0.25) + 0*0.1 = -0.1" in text
    assert "U_g[0,:]·h_prev = 1*0 + 0*0.5 + 0*0.1 + 0*0.2 + 0*0.6 = 0" in text
    assert "f = σ(preact) = 1 / (1 + e^0.1) = 0.475021" in text


def test_expand_from_a_saved_trace_says_what_it_cannot_show(seed_question):
    params, v = seed_question
    saved = read_trace(io.StringIO(lstmtrace.step(params, v["x"], v["h_prev"]).to_csv()))
    text = saved.to_text(expand=1)
    assert "W_f[" not in text and "preact = Wx + Uh + b = 0.3 + 0.5 + 0 = 0.8" in text
    assert "does not hold W and U" in " ".join(text.split())


def test_expand_shortens_long_dot_products():
    text = lstmtrace.step(Parameters.ones(40, 1), np.zeros(40)).to_text(expand=0)
    assert "… 30 more terms …" in text


@pytest.mark.parametrize("kwargs, message", [({"expand": 5}, r"unit 5 is not in 0\.\.4"),
                                            ({"precision": 0}, "precision must be at least 1")])
def test_bad_render_options(seed_question, kwargs, message):
    params, v = seed_question
    with pytest.raises(ValueError, match=message):
        lstmtrace.step(params, v["x"]).to_text(**kwargs)


def test_markdown_has_headings_and_pipe_tables(seed_question):
    params, v = seed_question
    md = lstmtrace.step(params, v["x"], v["h_prev"]).to_markdown(title="Seed question")
    assert md.startswith("Seed question\n")
    assert "\n### Forget gate\n" in md and "`f = σ(W_f·x + U_f·h_prev + b_f)" in md
    assert re.search(r"\n\| +unit \| +Wx \|", md)


def test_every_number_in_a_table_is_a_trace_value(seed_question):
    """The tables print the trace's own numbers: each one parses back to a value in the trace."""
    params, v = seed_question
    trace = lstmtrace.step(params, v["x"], v["h_prev"])
    text = re.sub(r"\n  A number with fewer than.*?every digit\.\n", "\n", trace.to_text(precision=17), flags=re.S)
    text = re.sub(r"\nResult\n-+\n.*?--format python\.\n", "\n", text, flags=re.S)  # numpy's own print
    shown = {float(tok) for tok in re.findall(r"(?<![\w.×^(\[])-?\d+\.?\d*(?:e[-+]\d+)?(?![\w×\]])", text)}
    values = set(trace.frame["value"]) | set(range(0, 100))  # units and sizes are small integers
    assert shown - values - {0.5, 0.01, 0.99, -0.99, 4.6, 2.6, 1.0, -1.0, 0.8} == set()


def test_expand_shows_the_weights_the_trace_was_made_from(seed_question):
    """A trace owns its weights: changing them afterwards changes nothing --expand writes out."""
    params, v = seed_question
    params = params.copy()
    trace = lstmtrace.step(params, v["x"], v["h_prev"])
    before = trace.to_text(expand=0)
    params.set("forget", "W", "ones")
    assert trace.to_text(expand=0) == before
    assert "W_f[0,:]·x = 1*(-0.1) + 0*0.3" in before
