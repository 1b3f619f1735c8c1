"""A variant's text, Markdown and HTML: every variant renders, each formula says what the variant
changes, Greff et al.'s finding is told, and each number shown is the trace's own."""
import io
import re
from html.parser import HTMLParser

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lstmtrace
from lstmtrace import Parameters, Variant
from lstmtrace.cell import GATES, LSTM
from lstmtrace.html import render_html
from lstmtrace.text import changes, formula, saturated
from lstmtrace.variant import FINDINGS, PRESETS

VARIANTS = {**{name: variant for name, variant in PRESETS.items() if name != "np"},
            "clip+proj": Variant(peephole=True, clip=0.5, proj_size=2),
            "hard_sigmoid": Variant(gate_activation="hard_sigmoid:0.2,0.5", cell_activation="relu"),
            "coupled, no output gate": Variant(coupled=True, without=("output",))}
"""Greff et al.'s presets, and variants that combine what they do not."""

X = [-0.1, 0.3, 0.1, -0.25, 3.0]
XS = [X, [1.0, -1.0, 0.5, 2.0, -4.0], [0.2, 0.2, -0.2, 0.0, 1.0]]
C_PREV = [0.3, -0.2, 0.5, 0.1, 0.0]


def _step(variant: Variant) -> lstmtrace.Trace:
    params = Parameters.identity(5, 5, variant=variant)
    h_prev = [0.0, 0.5, 0.1, 0.2, 0.6][:variant.cell.proj_size or 5]
    return lstmtrace.step(params, X, h_prev, C_PREV)


def _run(variant: Variant) -> lstmtrace.Trace:
    return lstmtrace.run(Parameters.random(5, 5, seed=4, variant=variant), XS, c0=C_PREV)


def _section(text: str, heading: str, after: str = "") -> str:
    """The text of one section: from ``heading`` (underlined, after ``after``) to the next heading."""
    start = text.index(f"\n{heading}\n", text.index(after) if after else 0)
    end = re.search(r"\n[^\n]+\n[-=]{3,}\n", text[start + len(heading) + 2:])
    return text[start:start + len(heading) + 2 + (end.start() if end else len(text))]


def _column(section: str, header: str) -> list:
    """One column of the first table of a section, as printed: the cells under ``header`` ('' if blank)."""
    lines = section.splitlines()
    k = next(k for k, line in enumerate(lines) if re.fullmatch(r"-+( +-+)+", line))  # the rule under headers
    spans = [m.span() for m in re.finditer(r"-+", lines[k])]
    headers = [lines[k - 1][a:b].strip() for a, b in spans]
    end = next((j for j in range(k + 1, len(lines)) if not lines[j].strip()), len(lines))
    rows = lines[k + 1:end]
    a, b = spans[headers.index(header)]
    return [row[a:b].strip() for row in rows]


def _shown(vector) -> list:
    """How the HTML writes each number of a vector: 6 significant digits."""
    return [f"{v:.6g}" for v in vector]


def _written(vector) -> list:
    """How the text writes each number of a vector: as it is when 6 significant digits say it exactly,
    else to 6 significant digits with the trailing zeros kept (0 is 0)."""
    return ["0" if v == 0 else f"{v:.6g}" if float(f"{v:.6g}") == v else f"{v:#.6g}".rstrip(".") for v in vector]


# -- every variant renders ---------------------------------------------------------------------

OUTPUTS = {
    "step text": lambda v: _step(v).to_text(expand=0),
    "sequence text": lambda v: _run(v).to_text(expand=1, steps=[2]),
    "gradient text": lambda v: lstmtrace.backward(_step(v)).to_text(expand=4),
    "sequence gradient text": lambda v: lstmtrace.backward(_run(v)).to_text(),
    "markdown": lambda v: lstmtrace.backward(_run(v)).to_markdown(expand=2),
    "saved trace text": lambda v: lstmtrace.read_trace(io.StringIO(_run(v).to_csv())).to_text(expand=3),
    "html": lambda v: render_html(_run(v)),
}


@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("name", VARIANTS)
def test_every_variant_renders(name, output):
    variant = VARIANTS[name]
    rendered = " ".join(OUTPUTS[output](variant).split())
    assert variant.describe() in rendered


@given(peephole=st.booleans(), gates=st.sampled_from(["", "coupled", "forget", "input", "output"]),
       gate=st.sampled_from(["sigmoid", "hard_sigmoid", "hard_sigmoid:0.3,0.6", "tanh"]),
       candidate=st.sampled_from(["tanh", "linear", "softsign"]), cell=st.sampled_from(["tanh", "linear", "relu"]),
       clip=st.sampled_from([None, 1.5]), proj_size=st.sampled_from([None, 1, 3]))
def test_any_variant_prints_each_gates_formula_and_the_hidden_states(peephole, gates, gate, candidate, cell,
                                                                     clip, proj_size):
    variant = Variant(peephole=peephole, coupled=gates == "coupled",
                      without=(gates,) if gates not in ("", "coupled") else (), gate_activation=gate,
                      candidate_activation=candidate, cell_activation=cell, clip=clip, proj_size=proj_size)
    trace = lstmtrace.backward(lstmtrace.run(Parameters.random(2, 3, seed=1, variant=variant), [[1.0, -2.0]] * 2))
    text = trace.to_text(expand=2)
    for spec in variant.cell.gates:
        assert f"\n{formula(spec, variant.cell)}    act = {spec.symbol}\n" in text
        if spec.rule == "computed":  # the activation is named in every formula that applies one
            assert f"= {spec.activation.name}(" in formula(spec, variant.cell)
    h_or_m = "h" if proj_size is None else "m"
    assert f"\n{h_or_m} = o*{variant.cell.cell_activation.name}(c)" in text
    assert text.count("Backward pass, step t = ") == 2
    assert render_html(trace).count("<table") == 2


# -- each formula says what the variant changes ----------------------------------------------------

@pytest.mark.parametrize("name, lines", [
    ("v", ["f = σ(W_f·x + U_f·h_prev + P_f*c_prev + b_f)    act = f",
           "i = σ(W_i·x + U_i·h_prev + P_i*c_prev + b_i)    act = i",
           "c̃ = tanh(W_g·x + U_g·h_prev + b_g)    act = c̃",
           "o = σ(W_o·x + U_o·h_prev + P_o*c + b_o)    act = o"]),
    ("nig", ["i = 1 (no input gate: NIG)    act = i"]),
    ("nfg", ["f = 1 (no forget gate: NFG)    act = f"]),
    ("nog", ["o = 1 (no output gate: NOG)    act = o"]),
    ("cifg", ["f = 1 - i (coupled input and forget gates: CIFG)    act = f"]),
    ("niaf", ["c̃ = linear(W_g·x + U_g·h_prev + b_g)    act = c̃"]),
    ("noaf", ["h = o*linear(c)"]),
    ("clip+proj", ["f = σ(clip(W_f·x + U_f·h_prev + P_f*c_prev + b_f, ±0.5))    act = f",
                   "m = o*tanh(c);    h = W_hr·m"]),
    ("hard_sigmoid", ["f = hard_sigmoid[0.2, 0.5](W_f·x + U_f·h_prev + b_f)    act = f", "h = o*relu(c)"]),
])
def test_formulas_name_what_the_variant_changes(name, lines):
    text = _step(VARIANTS[name]).to_text()
    for line in lines:
        assert f"\n{line}\n" in text


@pytest.mark.parametrize("name", VARIANTS)
def test_sections_follow_the_cells_pipeline(name):
    """A peephole on the new c puts the output gate after the cell state, in the text as in the step."""
    cell, text = VARIANTS[name].cell, _step(VARIANTS[name]).to_text()
    titles = {"given": "Given", "cell": "Cell state", "hidden": "Hidden state",
              **{spec.name: spec.title for spec in cell.gates}}
    positions = [text.index(f"\n{titles[stage]}\n") for stage, _ in cell.pipeline]
    assert positions == sorted(positions)
    late = VARIANTS[name].peephole and "output" not in VARIANTS[name].without
    assert (text.index("\nOutput gate\n") > text.index("\nCell state\n")) == late
    if late:
        assert "so it is computed after c" in " ".join(_section(text, "Output gate").split())


@pytest.mark.parametrize("name", VARIANTS)
def test_a_variant_opens_with_its_changes_equation_by_equation(name):
    variant = VARIANTS[name]
    text = _step(variant).to_text()
    opening = text[:text.index("LSTM step t = 1")]
    assert opening.startswith(f"  Variant{f' {variant.name}' if variant.name else ''}: {variant.describe()}.")
    found = changes(variant.cell)
    assert found
    for equation, what in found:
        assert f"\n  {equation}\n" in opening
        for change in what:
            assert f"\n      ← {change}\n" in opening


def test_the_changes_say_each_kind_of_change():
    said = {name: " ".join(w for _, what in changes(v.cell) for w in what) for name, v in VARIANTS.items()}
    assert "peephole P_f*c_prev" in said["v"] and "so o is computed after c" in said["v"]
    assert "no W_i, U_i, b_i" in said["nig"] and "no W_f, U_f, b_f" in said["cifg"]
    assert "linear instead of tanh (no input activation: NIAF)" in said["niaf"]
    assert "linear instead of tanh (no output activation: NOAF)" in said["noaf"]
    assert "preact clipped to [-0.5, 0.5]" in said["clip+proj"] and "P = 2 units" in said["clip+proj"]
    assert "hard_sigmoid[0.2, 0.5] instead of σ" in said["hard_sigmoid"]
    assert changes(LSTM) == []


@pytest.mark.parametrize("name", [n for n in VARIANTS if n in PRESETS])
def test_a_preset_tells_what_greff_et_al_found(name):
    flat = " ".join(_step(VARIANTS[name]).to_markdown().split())
    assert FINDINGS[name] in flat
    assert flat.count("Greff et al. found") == 1


def test_the_default_lstm_and_other_variants_tell_no_finding(seed_question):
    params, given_ = seed_question
    default = lstmtrace.step(params, **given_).to_text()
    assert "Variant" not in default and "Greff" not in default and "←" not in default
    assert "Greff" not in _step(VARIANTS["clip+proj"]).to_text()


# -- each number shown is the trace's own ----------------------------------------------------------

@pytest.mark.parametrize("name", [n for n, v in VARIANTS.items() if v.cell.peepholes])
def test_the_peephole_columns_are_the_traces(name):
    trace = lstmtrace.backward(_step(VARIANTS[name]))
    text = trace.to_text()
    for gate in trace.cell.peepholes:
        title = trace.cell.gate(gate).title
        assert _column(_section(text, title), "Pc") == _written(trace.value(gate, "Pc"))
        assert _column(_section(text, title, after="Backward pass"), "grad:P") == _written(trace.value(gate, "grad:P"))


def test_the_projections_columns_are_the_traces():
    trace = _step(VARIANTS["clip+proj"])
    hidden = _section(trace.to_text(), "Hidden state")
    assert _column(hidden, "output*tanh(c)") == _written(trace.value("hidden", "output*tanh(c)"))
    assert _column(hidden, "h") == [*_written(trace.value("hidden", "h")), "", "", ""]  # P = 2 of H = 5 units
    assert "\nLSTM step t = 1 · input size E = 5 · hidden size H = 5 · projection size P = 2\n" in trace.to_text()


@pytest.mark.parametrize("name, gate", [("nig", "input"), ("nfg", "forget"), ("nog", "output"), ("cifg", "forget")])
def test_a_gate_without_weights_shows_its_act_alone(name, gate):
    trace = _step(VARIANTS[name])
    section = _section(trace.to_text(), trace.cell.gate(gate).title)
    assert _column(section, "act") == _written(trace.value(gate, "act"))
    assert "Wx" not in section and "preact" not in section


def test_the_coupled_forget_gate_term_by_term_is_one_minus_the_traces_i():
    trace = _step(VARIANTS["cifg"])
    i, f = trace.value("input", "act")[0], trace.value("forget", "act")[0]
    assert f"f = 1 - i = 1 - {i:.6g} = {f:.6g}" in trace.to_text(expand=0)


def _body(text: str) -> str:
    """The text without what writes numbers its own way: the rounding note (a value to more digits) and the
    Result block (numpy's print, tested in test_teaching_text)."""
    text = re.sub(r"\n  A number with fewer than.*?every digit\.\n", "\n", text, flags=re.S)
    return re.sub(r"\nResult\n-+\n.*?--format python\.\n", "\n", text, flags=re.S)


@pytest.mark.parametrize("name", VARIANTS)
def test_every_number_in_a_variants_text_is_a_trace_value(name):
    """As test_text's check of the default: at full precision, each number printed parses back to a value of
    the trace (or is one of the text's constants, a clip bound, a size)."""
    variant = VARIANTS[name]
    trace = _step(variant)
    shown = {float(tok) for tok in re.findall(r"(?<![\w.×^(\[])-?\d+\.?\d*(?:e[-+]\d+)?(?![\w×\]])",
                                              _body(trace.to_text(precision=17)))}
    values = set(trace.frame["value"]) | set(range(0, 100))
    constants = {0.5, 0.01, 0.99, -0.99, 4.6, 2.6, 1.0, -1.0, 1997,  # the notes' thresholds and bounds, a year
                 0.76, 0.96, 0.995, 3.0}  # tanh(1), tanh(2), tanh(3)
    constants |= {variant.clip, -variant.clip} if variant.clip else set()
    assert shown - values - constants == set()


# -- saturation, and the HTML ---------------------------------------------------------------------------

def test_a_gate_taken_away_is_never_saturated_and_a_coupled_one_is_when_its_input_gate_is():
    nfg = lstmtrace.step(Parameters.identity(2, 2, variant=VARIANTS["nfg"]), [10.0, 0.0])
    assert (nfg.value("forget", "act") == 1).all()
    assert not saturated("forget", nfg.value("forget", "act"), nfg.cell).any()
    cifg = lstmtrace.step(Parameters.identity(2, 2, variant=VARIANTS["cifg"]), [10.0, 0.0])
    assert list(saturated("forget", cifg.value("forget", "act"), cifg.cell)) == [True, False]
    assert list(saturated("input", cifg.value("input", "act"), cifg.cell)) == [True, False]
    flat = " ".join(cifg.to_text().split())
    assert "Saturated (within 0.01 of 0 or 1): unit 0." in flat


class _Rows(HTMLParser):
    """(gate, quantity, [(class, text) of each cell]) for every row of the HTML's tables."""

    def __init__(self):
        super().__init__()
        self.rows, self.variant, self._gate, self._row, self._cell, self._p = [], [], None, None, None, False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr":
            self._row = [attrs.get("class")]
        elif tag in ("th", "td") and self._row is not None:
            self._cell = [attrs.get("class"), ""]
        elif tag == "p" and attrs.get("class") == "variant":
            self.variant.append("")
            self._p = True

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[1] += data
        elif self._p:
            self.variant[-1] += data

    def handle_endtag(self, tag):
        self._p = self._p and tag != "p"
        if tag in ("th", "td") and self._cell is not None:
            self._row.append(tuple(self._cell))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            kind, (_, label), *cells = self._row
            if kind == "gate":
                self._gate = label
            elif label != "unit":
                self.rows.append((self._gate, label, cells))
            self._row = None


@pytest.mark.parametrize("name", VARIANTS)
def test_the_html_holds_the_traces_own_rows_and_numbers(name):
    trace = _run(VARIANTS[name])
    parser = _Rows()
    parser.feed(render_html(trace))
    per_step = [(g, q) for g, qs in trace.cell.pipeline for q in qs]
    assert [(g, q) for g, q, _ in parser.rows] == per_step * trace.steps
    for k, (gate, quantity, cells) in enumerate(parser.rows):
        vector = trace.value(gate, quantity, step=k // len(per_step) + 1)
        assert [text for _, text in cells] == [*_shown(vector), *[""] * (len(cells) - len(vector))]
        marked = [cls == "saturated" for cls, _ in cells[:len(vector)]]
        expected = saturated(gate, vector, trace.cell) if quantity == "act" and gate in GATES else [False] * len(vector)
        assert marked == list(expected)
    assert parser.variant == [f"Variant{f' {VARIANTS[name].name}' if VARIANTS[name].name else ''}: "
                              f"{VARIANTS[name].describe()}."]


def test_the_default_lstms_html_names_no_variant(seed_question):
    params, given_ = seed_question
    assert 'class="variant"' not in render_html(lstmtrace.step(params, **given_))


def test_a_gate_taken_away_is_not_marked_saturated_in_html():
    trace = lstmtrace.step(Parameters.identity(2, 2, variant=VARIANTS["nog"]), [10.0, 0.0])
    parser = _Rows()
    parser.feed(render_html(trace))
    (cells,) = [cells for gate, quantity, cells in parser.rows if (gate, quantity) == ("output", "act")]
    assert [text for _, text in cells] == ["1", "1"] and all(cls is None for cls, _ in cells)
    assert np.all(trace.value("output", "act") == 1)
