"""The live workbook (``-o step.xlsx``): inputs as cells, every traced quantity a formula that recomputes.

Two contracts. What the file holds, read back with openpyxl (an xlsx library other than the
XlsxWriter that wrote it): a defined name for every input, weight and traced quantity, the
inputs as numbers, every quantity as a formula with lstmtrace's own value cached in it, and
refusals for what a workbook cannot hold. And that the formulas compute the LSTM: LibreOffice
Calc opens each workbook headless, recalculates every formula (the test's profile sets
"recalculation on load: always", and the workbooks it opens were resaved by openpyxl, which
keeps the formulas and drops the cached values, so every number it reads back was computed by
Calc), and the numbers match lstmtrace's trace to 1e-12 relative; after a weight cell and an
input cell are changed through openpyxl, they match a fresh trace made with those changes.
Skipped where LibreOffice is missing (.ci/run installs it) or openpyxl is (the test extra has it).
"""
import dataclasses
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lstmtrace
from lstmtrace import Parameters, Variant
from lstmtrace.cli import cli
from lstmtrace.xlsx import MAX_FORMULAS, MAX_GATE_WEIGHTS, MAX_STEPS, name, weight_name

openpyxl = pytest.importorskip("openpyxl")
range_boundaries = pytest.importorskip("openpyxl.utils").range_boundaries
pytest.importorskip("xlsxwriter")
SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")
needs_calc = pytest.mark.skipif(SOFFICE is None, reason="LibreOffice (soffice) is not installed")

SEED = dict(x=[-0.1, 0.3, 0.1, -0.25, 0.1], h_prev=[0, 0.5, 0.1, 0.2, 0.6])  # the learner's step


# -- reading a workbook back -------------------------------------------------------------------

def blocks(path, data_only=True):
    """{defined name: its block's cells' values, rows × columns}, as openpyxl reads them."""
    with open(path, "rb") as f:  # (a file, so that any suffix will do)
        book = openpyxl.load_workbook(f, data_only=data_only)
    found = {}
    for key, defined in book.defined_names.items():
        (sheet, where), = defined.destinations
        left, top, right, bottom = range_boundaries(where.replace("$", ""))  # (one cell is a range too)
        found[key] = [list(row) for row in book[sheet].iter_rows(top, bottom, left, right, values_only=True)]
    return found


def numbers(block):
    return np.array(block, dtype=np.float64)


def quantities(trace):
    """(gate, quantity) of every traced value but the inputs x, h_prev and c_prev."""
    return [(g, q) for g, qs in trace.cell.pipeline for q in qs if g != "given"]


def assert_matches(found, trace):
    """Every named block of a (recalculated) workbook holds the trace's numbers, to 1e-12 relative."""
    for gate, q in quantities(trace):
        np.testing.assert_allclose(numbers(found[name(gate, q)]), trace.block(gate, q), rtol=1e-12, atol=1e-300,
                                   err_msg=f"{gate}.{q}")
    np.testing.assert_allclose(numbers(found["x"]), trace.block("given", "x"), rtol=1e-14)  # Calc keeps 15 digits


# -- the cells a learner works with --------------------------------------------------------------

CELLS = {
    "default": Variant(),
    **{preset: Variant.preset(preset) for preset in ("v", "nig", "nfg", "nog", "niaf", "noaf", "cifg")},
    "projection": Variant(proj_size=2),
    "clip, ONNX's hard sigmoid": Variant(clip=0.75, gate_activation="hard_sigmoid:0.2,-0.1"),
    "keras hard sigmoid, relu, softsign": Variant(gate_activation="hard_sigmoid", candidate_activation="relu",
                                                  cell_activation="softsign"),
    "linear gates, peepholes, projection": Variant(gate_activation="linear", peephole=True, proj_size=3),
}


def traced(variant, steps=1, direction="forward", seed=3, E=3, H=4):
    params = Parameters.random(E, H, seed=seed, variant=variant)
    rng = np.random.default_rng(seed)
    P = H if variant.proj_size is None else variant.proj_size
    xs, h0, c0 = rng.normal(size=(steps, E)), rng.normal(size=P), rng.normal(size=H)
    return lstmtrace.run(params, xs, h0, c0, direction=direction), params, xs, h0, c0


@pytest.fixture
def seed_workbook(tmp_path):
    trace = lstmtrace.step(Parameters.identity(5, 5), **SEED)
    path = tmp_path / "step.xlsx"
    trace.to_xlsx(path)
    return trace, path


# -- what the file holds ------------------------------------------------------------------------

def test_every_input_weight_and_quantity_has_a_defined_name(seed_workbook):
    trace, path = seed_workbook
    found = blocks(path)
    weights = [weight_name(g, w) for g in lstmtrace.GATES for w in ("W", "U", "b")]
    assert set(found) == {"x", "h_prev", "c_prev", *weights, *(name(g, q) for g, q in quantities(trace))}
    assert {"forget_Wx", "forget_preact", "forget_act", "cell_c", "hidden_h", "W_forget", "U_forget",
            "b_forget"} <= set(found)  # the spellings
    params = trace.params
    for gate in lstmtrace.GATES:
        np.testing.assert_array_equal(numbers(found[f"W_{gate}"]), params[gate].W)
        np.testing.assert_array_equal(numbers(found[f"U_{gate}"]), params[gate].U)
        np.testing.assert_array_equal(numbers(found[f"b_{gate}"]), params[gate].b[None, :])
    np.testing.assert_array_equal(numbers(found["h_prev"]), [SEED["h_prev"]])
    np.testing.assert_array_equal(numbers(found["c_prev"]), np.zeros((1, 5)))


def test_every_quantity_is_a_formula_holding_lstmtraces_own_value(seed_workbook):
    trace, path = seed_workbook
    formulas, cached = blocks(path, data_only=False), blocks(path)
    for gate, q in quantities(trace):
        assert all(isinstance(f, str) and f.startswith("=") for row in formulas[name(gate, q)] for f in row), (gate, q)
        np.testing.assert_array_equal(numbers(cached[name(gate, q)]), trace.block(gate, q), err_msg=f"{gate}.{q}")
    for key in ("x", "h_prev", "c_prev", "W_forget", "b_output"):
        assert all(isinstance(v, (int, float)) and not isinstance(v, bool) for row in formulas[key] for v in row), key


def test_the_formulas_are_the_equations(seed_workbook):
    """Unit 0 of the forget gate, cell and hidden state, read as a learner would."""
    _, path = seed_workbook
    book = openpyxl.load_workbook(path)
    sheet, cell, where = book["LSTM"], {}, {}
    for key, defined in book.defined_names.items():
        (_, where[key]), = defined.destinations
        where[key] = where[key].replace("$", "")  # D11:H15
        cell[key] = where[key].split(":")[0]  # its first cell: step 1 (or row 0), unit 0
    first, last = where["W_forget"].split(":")
    row_0_of_W = f"{first}:{last[0]}{first[1:]}"  # D11:H11, unit 0's weights
    assert sheet[cell["forget_Wx"]].value == f"=SUMPRODUCT({row_0_of_W},{where['x']})"
    assert sheet[cell["forget_preact"]].value == f"={cell['forget_Wx']}+{cell['forget_Uh']}+{cell['forget_bias']}"
    z = cell["forget_preact"]
    assert sheet[cell["forget_act"]].value == f"=IF({z}>=0,1/(1+EXP(-{z})),EXP({z})/(1+EXP({z})))"
    assert sheet[cell["cell_forget_c_prev"]].value == f"={cell['forget_act']}*{cell['c_prev']}"
    assert sheet[cell["cell_c"]].value == f"={cell['cell_forget_c_prev']}+{cell['cell_input_candidate']}"
    assert sheet[cell["hidden_tanh_c"]].value == f"=TANH({cell['cell_c']})"
    assert sheet[cell["hidden_h"]].value == f"={cell['output_act']}*{cell['hidden_tanh_c']}"


@pytest.mark.parametrize("label", list(CELLS))
def test_every_variant_names_its_own_quantities_and_weights(tmp_path, label):
    trace, params, *_ = traced(CELLS[label], steps=2)
    trace.to_xlsx(tmp_path / "run.xlsx")
    found = blocks(tmp_path / "run.xlsx")
    for gate, q in quantities(trace):
        np.testing.assert_array_equal(numbers(found[name(gate, q)]), trace.block(gate, q), err_msg=f"{gate}.{q}")
    for spec in trace.cell.gates:
        for weight, _ in spec.weights:
            np.testing.assert_array_equal(numbers(found[weight_name(spec.name, weight)]),
                                          np.atleast_2d(getattr(params[spec.name], weight)))
    if trace.cell.proj_size is not None:
        np.testing.assert_array_equal(numbers(found["W_hr"]), params.W_hr)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(E=st.integers(1, 4), H=st.integers(1, 4), T=st.integers(1, 3), seed=st.integers(0, 2**16),
       label=st.sampled_from(sorted(CELLS)), reverse=st.booleans())
def test_any_cell_caches_exactly_the_traced_values(tmp_path_factory, E, H, T, seed, label, reverse):
    variant = CELLS[label]
    if variant.proj_size is not None:
        variant = dataclasses.replace(variant, proj_size=min(variant.proj_size, H))
    trace, *_ = traced(variant, T, "reverse" if reverse else "forward", seed, E, H)
    path = tmp_path_factory.mktemp("any") / "t.xlsx"
    trace.to_xlsx(path)
    found, formulas = blocks(path), blocks(path, data_only=False)
    for gate, q in quantities(trace):
        assert numbers(found[name(gate, q)]).shape == trace.block(gate, q).shape
        np.testing.assert_array_equal(numbers(found[name(gate, q)]), trace.block(gate, q))
        assert all(f.startswith("=") for row in formulas[name(gate, q)] for f in row)


def test_the_long_form_trace_is_a_sheet_of_numbers(seed_workbook):
    trace, path = seed_workbook
    sheet = openpyxl.load_workbook(path)["Trace"]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == ("step", "gate", "quantity", "unit", "value")
    assert len(rows) - 1 == len(trace.frame)
    np.testing.assert_array_equal([r[4] for r in rows[1:]], trace.frame["value"].to_numpy())
    assert [r[2] for r in rows[1:6]] == ["x"] * 5


def test_a_title_is_text_never_a_formula(tmp_path):
    """Nothing a user gives goes into a formula: a title that looks like one stays a string."""
    evil = "=HYPERLINK(\"http://example.invalid\",\"x\")+cmd|' /C calc'!A0"
    path = tmp_path / "t.xlsx"
    lstmtrace.step(Parameters.identity(1, 1), [0.5]).to_xlsx(path, title=evil)
    book = openpyxl.load_workbook(path)
    texts = [c for sheet in book for row in sheet.iter_rows() for c in row
             if isinstance(c.value, str) and "HYPERLINK" in c.value]
    assert texts and all(c.data_type == "s" and c.value == evil for c in texts)  # a string, as given
    formulas = [c.value for row in book["LSTM"].iter_rows() for c in row if c.data_type == "f"]
    assert formulas and not any("HYPERLINK" in f or "cmd" in f for f in formulas)


def test_the_guide_sheet_says_what_to_change_and_lists_every_name(seed_workbook):
    _, path = seed_workbook
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["LSTM", "How to read this", "Trace"]
    text = "\n".join(str(c.value) for row in book["How to read this"].iter_rows() for c in row if c.value)
    for words in ("What to change", "What to watch", "Trace Precedents", "U_forget", "forget_act", "hidden_h"):
        assert words in text
    assert all(key in text for key in book.defined_names)


# -- the command line ---------------------------------------------------------------------------

def test_step_writes_the_workbook_from_its_suffix_or_format(tmp_path):
    runner = CliRunner()
    for args, path in ((["-o", str(tmp_path / "a.xlsx")], tmp_path / "a.xlsx"),
                       (["--format", "xlsx", "-o", str(tmp_path / "b.data")], tmp_path / "b.data")):
        result = runner.invoke(cli, ["step", *args])
        assert result.exit_code == 0, result.stderr
        assert result.stdout == ""
        assert "hidden_h" in blocks(path)


def test_run_writes_one_row_per_step(tmp_path):
    result = CliRunner().invoke(cli, ["run", "--xs", "1;2;3", "-o", str(tmp_path / "run.xlsx")])
    assert result.exit_code == 0, result.stderr
    found = blocks(tmp_path / "run.xlsx")
    assert numbers(found["hidden_h"]).shape == (3, 1)
    np.testing.assert_array_equal(numbers(found["x"]), [[1.0], [2.0], [3.0]])


@pytest.mark.parametrize("args, option, words", [
    (["step", "--format", "xlsx"], "--format", "binary"),
    (["step", "--backward", "-o", "{out}"], "--backward", "backward pass"),
    (["step", "--x", "1,2,3,4,5", "--hidden-size", "140", "-o", "{out}"], "--format", "20,000"),  # 140·145
    (["run", "--xs", ";".join(["1"] * (MAX_STEPS + 1)), "-o", "{out}"], "--format", "1,000"),
    (["step", "--brief", "-o", "{out}"], "--brief", "xlsx"),
])
def test_what_a_workbook_cannot_hold_is_refused_in_one_line(tmp_path, args, option, words):
    out = tmp_path / "out.xlsx"
    out.write_bytes(b"precious")
    result = CliRunner().invoke(cli, [a.format(out=out) for a in args])
    assert result.exit_code == 2, result.output
    assert option in result.stderr and words in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 3 and "Traceback" not in result.stderr
    assert out.read_bytes() == b"precious"  # never clobbered


def test_a_trace_read_from_a_file_has_no_weights_for_the_formulas(tmp_path):
    from lstmtrace.errors import OptionError

    lstmtrace.step(Parameters.identity(2, 2), [1.0, 0.0]).to_csv(tmp_path / "t.csv")
    with pytest.raises(OptionError, match="no weights"):
        lstmtrace.read_trace(tmp_path / "t.csv").to_xlsx(tmp_path / "t.xlsx")
    assert not (tmp_path / "t.xlsx").exists()


def test_a_stack_is_refused_naming_the_layer_option(tmp_path):
    weights = os.path.join(os.path.dirname(__file__), "fixtures", "torch_model_bilstm_state.npz")
    result = CliRunner().invoke(cli, ["run", "--weights", weights, "--layer", "all", "--tokens", "3,1",
                                      "--embedding", "embedding.weight", "-o", str(tmp_path / "s.xlsx")])
    assert result.exit_code == 2 and "--layer" in result.stderr
    assert not (tmp_path / "s.xlsx").exists()


def test_too_many_formulas_are_refused_before_any_is_written(tmp_path):
    from lstmtrace.errors import OptionError

    per_step = lstmtrace.step(Parameters.zeros(1, 60), [0.0]).rows().shape[1] - 1 - 60 - 60
    steps = MAX_FORMULAS // per_step + 1
    assert steps <= MAX_STEPS and MAX_GATE_WEIGHTS >= 60 * 61  # so it is the formulas' limit that refuses
    trace = lstmtrace.run(Parameters.zeros(1, 60), np.zeros((steps, 1)))
    with pytest.raises(OptionError, match="formulas"):
        trace.to_xlsx(tmp_path / "big.xlsx")
    assert not (tmp_path / "big.xlsx").exists()


def test_without_xlsxwriter_the_option_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "xlsxwriter", None)  # import xlsxwriter now raises ImportError
    out = tmp_path / "step.xlsx"
    for args, option in ((["-o", str(out)], "--output"), (["--format", "xlsx", "-o", str(out)], "--format")):
        result = CliRunner().invoke(cli, ["step", *args])
        assert result.exit_code == 2  # checked before any work: the option that asked for the workbook
        assert option in result.stderr and "pip install 'lstmtrace[xlsx]'" in result.stderr
        assert not out.exists()
    with pytest.raises(ImportError, match=r"lstmtrace\[xlsx\]"):  # and the library says the same
        lstmtrace.step(Parameters.identity(1, 1), [0.5]).to_xlsx(out)


# -- the formulas compute the LSTM: LibreOffice Calc recalculates them ------------------------------

RECALCULATE = """<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry" xmlns:xs="http://www.w3.org/2001/XMLSchema"
           xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<item oor:path="/org.openoffice.Office.Calc/Formula/Load"><prop oor:name="OOXMLRecalcMode" oor:op="fuse">
<value>0</value></prop></item>
</oor:items>
"""  # Tools > Options > Calc > Formula > Recalculation on file load, Excel 2007 and newer: Always recalculate


def recalculate(paths, folder):
    """Open every workbook in LibreOffice Calc, recalculate it in full, save it as xlsx into ``folder``."""
    profile = folder / "profile"
    (profile / "user").mkdir(parents=True)
    (profile / "user" / "registrymodifications.xcu").write_text(RECALCULATE)
    out = folder / "calc"
    result = subprocess.run([SOFFICE, f"-env:UserInstallation=file://{profile}", "--headless", "--convert-to",
                             "xlsx", "--outdir", str(out), *map(str, paths)],
                            capture_output=True, text=True, timeout=600)
    made = [out / p.name for p in paths]
    assert all(p.exists() for p in made), result.stdout + result.stderr
    return made


def without_cached_values(path, change=None):
    """The workbook resaved by openpyxl, which keeps every formula and drops every cached value;
    ``change(book)`` edits it first."""
    book = openpyxl.load_workbook(path)
    if change is not None:
        change(book)
    out = path.with_name(path.stem + "_open.xlsx")
    book.save(out)
    return out


def set_cell(book, key, r, c, value):
    (sheet, where), = book.defined_names[key].destinations
    left, top, _, _ = range_boundaries(where.replace("$", ""))
    book[sheet].cell(top + r, left + c).value = value


CALC_CASES = [(label, steps, direction) for label in CELLS for steps in (1, 3) for direction in ("forward",)]
CALC_CASES += [("default", 3, "reverse"), ("v", 3, "reverse")]


@pytest.fixture(scope="module")
def calculated(tmp_path_factory):
    """Every case's workbook, as written and with a weight and an input changed, recalculated by Calc
    in one LibreOffice run: {case: (trace, its recalculated blocks, the changed trace, its blocks)}."""
    folder = tmp_path_factory.mktemp("calc")
    jobs, expected = [], {}
    for k, (label, steps, direction) in enumerate(CALC_CASES):
        trace, params, xs, h0, c0 = traced(CELLS[label], steps, direction, seed=k + 11)
        path = folder / f"case{k}.xlsx"
        trace.to_xlsx(path)
        gate = trace.cell.weighted[0]
        W = params[gate].W.copy()
        W[1, 0] += 0.5  # one weight: row 1 (unit 1), column 0 of the first gate's W
        xs2 = xs.copy()
        xs2[steps - 1, 2] = -0.7  # one input: the last step's x, unit 2
        changed = lstmtrace.run(params.set(gate, "W", W), xs2, h0, c0, direction=direction)

        def change(book, gate=gate, value=float(W[1, 0]), steps=steps):
            set_cell(book, weight_name(gate, "W"), 1, 0, value)
            set_cell(book, "x", steps - 1, 2, -0.7)

        edit = folder / f"edit{k}.xlsx"
        shutil.copyfile(path, edit)
        jobs += [without_cached_values(path), without_cached_values(edit, change)]
        expected[label, steps, direction] = (trace, changed)
    made = recalculate(jobs, folder)
    results = {}
    for k, case in enumerate(expected):
        trace, changed = expected[case]
        results[case] = (trace, blocks(made[2 * k]), changed, blocks(made[2 * k + 1]))
    return results


@needs_calc
@pytest.mark.parametrize("case", CALC_CASES, ids=[f"{label}-T{steps}-{d}" for label, steps, d in CALC_CASES])
def test_calc_recalculates_lstmtraces_numbers(calculated, case):
    trace, found, _, _ = calculated[case]
    assert_matches(found, trace)


@needs_calc
@pytest.mark.parametrize("case", CALC_CASES, ids=[f"{label}-T{steps}-{d}" for label, steps, d in CALC_CASES])
def test_changing_a_weight_and_an_input_recomputes_a_fresh_trace(calculated, case):
    trace, _, changed, found = calculated[case]
    assert_matches(found, changed)
    gate = trace.cell.weighted[0]
    assert not np.allclose(numbers(found[name(gate, "Wx")]), trace.block(gate, "Wx"))  # Calc did recompute


@needs_calc
def test_the_seed_workbook_opens_in_calc_with_every_formula_intact(tmp_path):
    """Calc reads the workbook as written (no repair), keeps its names, and computes the learner's 0.475."""
    trace = lstmtrace.step(Parameters.identity(5, 5), **SEED)
    path = tmp_path / "seed.xlsx"
    trace.to_xlsx(path)
    made, = recalculate([without_cached_values(path)], tmp_path)
    formulas, found = blocks(made, data_only=False), blocks(made)
    assert set(found) == set(blocks(path))
    for gate, q in quantities(trace):
        assert all(isinstance(f, str) and f.startswith("=") for row in formulas[name(gate, q)] for f in row)
    np.testing.assert_allclose(numbers(found["forget_act"])[0], [0.47502081, 0.68997448, 0.549834, 0.4875026,
                                                                 0.66818777], atol=5e-9)


def test_the_readmes_formulas_are_the_committed_workbooks():
    """The README quotes three formulas of traces/seed_question.xlsx: they are its forget gate's, unit 0."""
    import pathlib
    import re

    root = pathlib.Path(__file__).parent.parent
    readme = (root / "README.md").read_text(encoding="utf-8")
    book = openpyxl.load_workbook(root / "traces" / "seed_question.xlsx")
    for key in ("forget_Wx", "forget_preact", "forget_act"):
        (sheet, where), = book.defined_names[key].destinations
        first = book[sheet][where.replace("$", "").split(":")[0]].value
        quoted = re.search(rf"`{key}` is\s+`(=[^`]+)`", readme)
        assert quoted and quoted.group(1) == first, key
