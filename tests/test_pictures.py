"""`lstmtrace draw` and `plot`: the numbers on the pictures are the trace's, and matplotlib stays optional."""
import importlib.util
import pathlib
import re

import numpy as np
import pytest

import lstmtrace
from conftest import assert_error, assert_ok, imported_by, invoke
from lstmtrace import Parameters

ROOT = pathlib.Path(__file__).parent.parent
_spec = importlib.util.spec_from_file_location("regenerate", ROOT / "traces" / "regenerate.py")
regenerate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(regenerate)


def svg_texts(svg: str):
    """Every <text> of an SVG as the string it shows (matplotlib splits maths into <tspan>s)."""
    return [re.sub(r"\s*<[^>]+>\s*", "", t).replace("\xa0", " ")
            for t in re.findall(r"<text[^>]*>(.*?)</text>", svg, re.S)]


def wire_labels(svg: str):
    """{name: [numbers]} of the 'name = [a, b, c, …]' and 'name[u] = a' labels on the wires."""
    labels = {}
    for text in svg_texts(svg):
        m = re.fullmatch(r"(\S+?)(?:\[(\d+)\])? = \[?([^\]]*?)(?:, …)?\]?", text)
        if m and not text.startswith(("f = σ", "i = σ", "o = σ", "c̃ = tanh")):
            labels[m.group(1)] = [v for v in m.group(3).split(", ")]
    return labels


@pytest.fixture(autouse=True)
def _needs_matplotlib(request):
    if "without_matplotlib" not in request.node.name:
        pytest.importorskip("matplotlib")


@pytest.mark.parametrize("name", regenerate.PICTURES)
def test_committed_picture_shows_what_lstmtrace_draws_now(tmp_path, name):
    regenerate.picture(name, tmp_path / f"{name}.svg")
    committed = (ROOT / "traces" / f"{name}.svg").read_text(encoding="utf-8")
    assert svg_texts((tmp_path / f"{name}.svg").read_text(encoding="utf-8")) == svg_texts(committed), \
        f"traces/{name}.svg is stale: run `python traces/regenerate.py`"
    assert (ROOT / "traces" / f"{name}.png").stat().st_size > 10_000


def test_the_numbers_on_the_diagram_are_the_traces(seed_question):
    params, v = seed_question
    trace = lstmtrace.step(params, v["x"], v["h_prev"], v["c_prev"])
    svg = (ROOT / "traces" / "seed_question_cell.svg").read_text(encoding="utf-8")
    labels = wire_labels(svg)
    expected = {"x": ("given", "x"), "h_prev": ("given", "h_prev"), "c_prev": ("given", "c_prev"),
                "f": ("forget", "act"), "i": ("input", "act"), "c̃": ("candidate", "act"), "o": ("output", "act"),
                "f⊙c_prev": ("cell", "forget*c_prev"), "i⊙c̃": ("cell", "input*candidate"), "c": ("cell", "c"),
                "tanh(c)": ("hidden", "tanh(c)"), "h": ("hidden", "h")}
    assert set(labels) == set(expected)
    for name, key in expected.items():
        values = trace.value(*key)[:3]
        assert labels[name] == [f"{v:.3g}" for v in values], name
        np.testing.assert_allclose([float(s) for s in labels[name]], values, rtol=5e-3, atol=1e-12)


def test_one_unit_and_saturation_marks(tmp_path):
    out = tmp_path / "cell.svg"
    assert_ok(invoke("draw", "--x", "10,0,0", "--h", "0,0,10", "--c", "1,1,1", "--weights", "zeros",
                     "--set", "forget.W=identity", "--unit", "0", "--precision", "7", "-o", out))
    texts = svg_texts(out.read_text(encoding="utf-8"))
    assert "f[0] = 0.9999546*" in texts  # σ(10), within 0.01 of 1: saturated
    assert "i[0] = 0.5" in texts and "x[0] = 10" in texts
    assert any("values of unit 0" in t for t in texts)


def test_draw_a_step_of_a_saved_sequence(tmp_path):
    lstmtrace.run(Parameters.random(2, 4, seed=1), np.ones((5, 2))).to_csv(tmp_path / "t.csv")
    assert_ok(invoke("draw", tmp_path / "t.csv", "--step", "5", "-o", tmp_path / "c.png"))
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = assert_ok(invoke("draw", tmp_path / "t.csv", "--step", "5")).stdout
    assert svg.startswith("<?xml") and any("step t = 5" in t for t in svg_texts(svg))


def test_plot_heatmaps(tmp_path):
    assert_ok(invoke("plot", "--xs", "1,0;0,1;1,1;0,0", "--hidden-size", "3", "-o", tmp_path / "h.svg"))
    texts = svg_texts((tmp_path / "h.svg").read_text(encoding="utf-8"))
    for title in ("forget gate f", "input gate i", "output gate o", "candidate c̃", "hidden state h",
                  "cell state c", "step t"):
        assert title in texts


def test_the_python_api_returns_figures():
    from lstmtrace.draw import draw_cell, plot_heatmaps

    trace = lstmtrace.run(Parameters.random(2, 3), np.ones((3, 2)))
    assert draw_cell(trace, step=2).axes and len(plot_heatmaps(trace).axes) >= 6


@pytest.mark.parametrize("args, fragments", [
    (["draw", "--unit", "9"], ["'--unit'", "unit 9 is not in 0..4"]),
    (["draw", "--xs", "1;2", "--step", "3"], ["'--step'", "step 3 is not in 1..2"]),
    (["draw", "--format", "png"], ["'--format'", "PNG is binary"]),
    (["plot", "-o", "/no/such/folder/p.png"], ["'-o' / '--output'", "does not exist"]),
])
def test_picture_errors(args, fragments):
    assert_error(invoke(*args), *fragments)


def test_without_matplotlib_one_line_says_how_to_get_it(without, tmp_path):
    without("matplotlib")
    assert_error(invoke("draw", "-o", tmp_path / "c.svg"), "pip install 'lstmtrace[plot]'")
    assert not (tmp_path / "c.svg").exists()


def test_nothing_else_imports_matplotlib_without_matplotlib():
    stdout, loaded = imported_by(["step"], ["run", "--xs", "1;2"], ["diff", "--x", "1", "--b-set", "forget.b=1"],
                                 watch=("matplotlib", "pandas"))
    assert "LSTM step t = 1" in stdout and "Traces agree up to" in stdout
    assert loaded == ["pandas"]  # the commands ran, and matplotlib was never imported
