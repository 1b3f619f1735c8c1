"""Pictures of every variant: the diagram draws the variant's own cell with the trace's numbers, the
heatmaps colour every quantity on a scale that holds its values, and the default LSTM's pictures stay."""
import pathlib
import re

import numpy as np
import pytest

import lstmtrace
from lstmtrace import Parameters, Variant
from lstmtrace.cell import cell_activation_name
from lstmtrace.draw import draw_cell, plot_heatmaps, save_figure  # imports matplotlib only when drawing
from lstmtrace.variant import PRESETS
from test_pictures import regenerate, svg_texts

pytest.importorskip("matplotlib")

ROOT = pathlib.Path(__file__).parent.parent
VARIANTS = {**PRESETS, "proj": Variant(proj_size=2), "relu": Variant(cell_activation="relu"),
            "hard_sigmoid": Variant(gate_activation="hard_sigmoid"), "clip": Variant(clip=1.0)}
MORE = {**VARIANTS, "hard_sigmoid_keras2": Variant(gate_activation="hard_sigmoid:0.2,0.5"),
        "peephole_proj_clip": Variant(peephole=True, proj_size=3, clip=1.0)}  # the diagram's harder cases
# Each variant's unbounded panel besides c, and how its scale fits the values: symmetric about 0, or from 0
UNBOUNDED = {"niaf": ("candidate c̃", "symmetric"),  # a linear c̃
             "noaf": ("hidden state h", "symmetric"),  # h = o⊙c
             "relu": ("hidden state h", "from 0"),  # h = o⊙relu(c)
             "proj": ("hidden state h (projected, P = 2)", "symmetric")}  # h = W_hr·(o⊙tanh(c))
X, H_PREV, C_PREV = [-0.1, 0.3, 0.1, -0.25, 0.1], [0, 0.5, 0.1, 0.2, 0.6], [0.3, -0.2, 0.5, 0.1, -0.4]
WAVE = 3 * np.array([[np.sin(t / 3), np.cos(t / 3)] for t in range(10)])


def one_step(variant: Variant):
    """The worked example's step (identity weights, E = H = 5) in this variant, with some c_prev, and
    peepholes P that are not ones (so that P⊙c is not c)."""
    params = Parameters.identity(5, 5, variant=variant)
    for k, gate in enumerate(params.cell.peepholes):
        params.set(gate, "P", np.array([0.5, -1.0, 2.0, 0.25, 1.5]) + k)
    return lstmtrace.step(params, X, H_PREV[:variant.proj_size or 5], C_PREV)


def sequence(variant: Variant):
    """Ten steps of a 4-unit layer over a wave, its gates mostly open (b = 2) and a projection's W_hr
    ones, so that c, and h and c̃ where a variant lets them, reach past ±1."""
    params = Parameters.random(2, 4, seed=3, variant=variant)
    for gate in set(params.cell.weighted) - {"candidate"}:
        params.set(gate, "b", 2.0)
    if variant.proj_size is not None:
        params.set("hidden", "W_hr", "ones")
    return lstmtrace.run(params, WAVE)


def svg(fig, tmp_path) -> str:
    save_figure(fig, tmp_path / "picture.svg")
    return (tmp_path / "picture.svg").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def picture(tmp_path_factory):
    """picture(name, "cell" or "heatmaps", "svg" or "png"): the bytes of a variant's picture, drawn once
    (in both formats) for the whole module: a heatmap figure's layout takes half a second a format."""
    folder, made = tmp_path_factory.mktemp("variant_pictures"), {}

    def draw(name: str, kind: str, fmt: str) -> bytes:
        if (name, kind) not in made:
            variant = MORE[name]
            fig = draw_cell(one_step(variant)) if kind == "cell" else plot_heatmaps(sequence(variant))
            for suffix in ("svg", "png"):  # save_figure closes the figure, which can still be saved again
                save_figure(fig, folder / f"{name}_{kind}.{suffix}")
            made[name, kind] = {suffix: (folder / f"{name}_{kind}.{suffix}").read_bytes() for suffix in ("svg", "png")}
        return made[name, kind][fmt]

    return draw


def cell_texts(picture, name: str):
    return svg_texts(picture(name, "cell", "svg").decode("utf-8"))


def number_labels(texts):
    """{name: [numbers as drawn]} of every 'name = [a, b, c, …]' or 'name[u] = a' label of numbers."""
    labels = {}
    for text in texts:
        m = re.fullmatch(r"(\S+?)(?:\[\d+\])? = \[?([-+.\de, …*]+?)(?:, …)?\]?", text)
        if m:
            labels[m.group(1)] = m.group(2).split(", ")
    return labels


def drawn_quantities(cell):
    """What each number label of a cell's diagram names in the trace, as draw_cell spells the names."""
    act_c = cell_activation_name(cell.cell_activation)
    names = {"x": ("given", "x"), "h_prev": ("given", "h_prev"), "c_prev": ("given", "c_prev"),
             "f⊙c_prev": ("cell", "forget*c_prev"), "i⊙c̃": ("cell", "input*candidate"), "c": ("cell", "c"),
             act_c: ("hidden", act_c), "h": ("hidden", "h")}
    for g in cell.gates:
        names[g.symbol] = (g.name, "act")
        if g.peeps:
            names[f"P_{g.index}⊙{g.peeps}"] = (g.name, "Pc")
    if cell.proj_size is not None:
        names[f"o⊙{act_c}"] = ("hidden", f"output*{act_c}")
    return names


@pytest.mark.parametrize("name", VARIANTS)
def test_every_variant_draws_both_pictures_in_both_formats(picture, name):
    for kind in ("cell", "heatmaps"):
        assert picture(name, kind, "png")[:8] == b"\x89PNG\r\n\x1a\n"
        assert picture(name, kind, "svg").startswith(b"<?xml")


@pytest.mark.parametrize("name", MORE)
def test_every_number_on_a_variants_diagram_is_the_traces(picture, name):
    trace = one_step(MORE[name])
    labels = number_labels(cell_texts(picture, name))
    names = drawn_quantities(trace.cell)
    assert set(labels) == set(names), "a label of no quantity, or a quantity without its label"
    for label, key in names.items():
        assert labels[label] == [f"{v:.3g}" for v in trace.value(*key)[:3]], label


def test_one_unit_of_a_projected_cell(tmp_path):
    trace = one_step(Variant(proj_size=2))
    labels = number_labels(svg_texts(svg(draw_cell(trace, unit=4, precision=6), tmp_path)))
    assert labels["c"] == [f"{trace.value('cell', 'c')[4]:.6g}"]
    assert labels["o⊙tanh(c)"] == [f"{trace.value('hidden', 'output*tanh(c)')[4]:.6g}"]
    assert labels["h"] == [f"{v:.6g}" for v in trace.value("hidden", "h")]  # P = 2 units: both, as for x


@pytest.mark.parametrize("name", MORE)
def test_peephole_wires_and_their_equations_exactly_where_the_cell_peeps(picture, name):
    cell = MORE[name].cell
    texts = cell_texts(picture, name)
    peeps = {f"P_{g.index}⊙{g.peeps}" for g in cell.gates if g.peeps}
    assert {t.split(" = ")[0] for t in texts if t.startswith("P_")} == peeps
    for g in cell.gates:  # the equation under each box says what the gate computes
        equation = next(t for t in texts if t.startswith(f"{g.symbol} = ") and not t.startswith(f"{g.symbol} = ["))
        assert (f"P_{g.index}⊙{g.peeps}" in equation) == bool(g.peeps), equation
    assert any("dashed: peepholes" in t for t in texts) == bool(peeps)


def test_a_gate_taken_away_is_the_constant_1_and_a_coupled_gate_1_minus_i(picture):
    nig = cell_texts(picture, "nig")
    assert "1" in nig and "i = 1 (input gate taken away)" in nig
    assert not any(t.startswith("i = σ(") for t in nig)  # no made-up weights for it
    assert "i = [1, 1, 1, …]" in nig  # its value is still the trace's
    cifg = cell_texts(picture, "cifg")
    assert "1 − i" in cifg and "f = 1 − i (coupled)" in cifg
    assert not any(t.startswith("f = σ(") for t in cifg)


def test_a_projection_draws_its_w_hr_box(picture):
    texts = cell_texts(picture, "proj")
    assert "W_hr" in texts and "h = W_hr·(o⊙tanh(c)),  W_hr: P×H" in texts
    assert any("E = 5, H = 5, P = 2" in t for t in texts)
    assert not any("W_hr" in t for t in cell_texts(picture, "np"))


@pytest.mark.parametrize("name, box, equation, label", [
    ("relu", "relu", "f = σ(W_f·x + U_f·h + b_f)", "relu(c) = ["),
    ("hard_sigmoid", "hard_sigmoid", "f = hard_sigmoid(W_f·x + U_f·h + b_f)", "tanh(c) = ["),
    ("hard_sigmoid_keras2", "[0.2, 0.5]", "f = hard_sigmoid[0.2, 0.5](W_f·x + U_f·h + b_f)", "tanh(c) = ["),
    ("niaf", "linear", "c̃ = linear(W_g·x + U_g·h + b_g)", "tanh(c) = ["),
    ("noaf", "linear", "o = σ(W_o·x + U_o·h + P_o⊙c + b_o)", "linear(c) = ["),
])
def test_the_boxes_and_equations_name_the_actual_activations(picture, name, box, equation, label):
    texts = cell_texts(picture, name)
    assert box in texts and equation in texts and any(t.startswith(label) for t in texts)


@pytest.fixture
def heatmaps():
    """heatmaps(name): the heatmap figure of the variant's sequence, unsaved; closed after the test."""
    figures = []

    def make(name: str):
        figures.append(plot_heatmaps(sequence(VARIANTS[name])))
        return figures[-1]

    yield make
    import matplotlib.pyplot as plt

    for fig in figures:
        plt.close(fig)


def _images(fig):
    """{panel title: its AxesImage} of a heatmap figure."""
    return {ax.get_title(): ax.images[0] for ax in fig.axes if ax.images}


def _colour_labels(fig):
    """The labels of a heatmap figure's colour scales (the axes after the six panels)."""
    return [ax.get_xlabel() or ax.get_ylabel() for ax in fig.axes[6:]]


@pytest.mark.parametrize("name", VARIANTS)
def test_every_heatmaps_colour_scale_holds_its_values(heatmaps, name):
    for title, image in _images(heatmaps(name)).items():
        data, (vmin, vmax) = np.asarray(image.get_array()), image.get_clim()
        assert vmin <= data.min() and data.max() <= vmax, title


@pytest.mark.parametrize("name", UNBOUNDED)
def test_an_unbounded_quantity_gets_a_scale_fitted_to_its_values(heatmaps, name):
    images = _images(heatmaps(name))
    for title, fit in (UNBOUNDED[name], ("cell state c", "symmetric")):
        data, (vmin, vmax) = np.asarray(images[title].get_array()), images[title].get_clim()
        if fit == "symmetric":
            assert -vmin == vmax == pytest.approx(np.abs(data).max()), title
        else:
            assert vmin == 0 <= data.min() and vmax == pytest.approx(data.max()), title
    assert np.abs(images[UNBOUNDED[name][0]].get_array()).max() > 1, \
        "the example stays within −1…1, so it shows nothing a fixed scale would not"


def test_the_heatmaps_of_relu_and_linear_are_labelled_honestly(heatmaps):
    relu, noaf = heatmaps("relu"), heatmaps("noaf")
    assert "h (≥ 0, unbounded)" in _colour_labels(relu) and "c (unbounded)" in _colour_labels(relu)
    assert "h (unbounded)" in _colour_labels(noaf)
    assert _images(relu)["hidden state h"].get_cmap().name == "viridis"  # 0 is an end, not the middle
    assert _colour_labels(heatmaps("np")) == ["σ gates: 0 (closed) … 1 (open)", "c̃ and h, in (−1, 1)",
                                               "c (unbounded)"]


def test_gates_that_are_not_computed_are_still_shown_and_titled(heatmaps):
    nig, cifg = _images(heatmaps("nig")), _images(heatmaps("cifg"))
    assert np.all(np.asarray(nig["input gate i = 1 (taken away)"].get_array()) == 1.0)
    np.testing.assert_array_equal(nig["input gate i = 1 (taken away)"].get_clim(), (0.0, 1.0))
    np.testing.assert_array_equal(cifg["forget gate f = 1 − i (coupled)"].get_array(),
                                  1 - cifg["input gate i"].get_array())


def test_a_projected_h_has_its_p_units_and_no_others(heatmaps):
    fig = heatmaps("proj")
    image = _images(fig)["hidden state h (projected, P = 2)"]
    np.testing.assert_array_equal(image.get_array(), sequence(VARIANTS["proj"]).block("hidden", "h").T)
    assert image.get_extent()[2:] == [-0.5, 1.5]
    assert any(t.get_text() == "h has P = 2 units" for ax in fig.axes for t in ax.texts)


@pytest.mark.parametrize("name", regenerate.PICTURES)
def test_the_default_pictures_draw_nothing_new(tmp_path, name):
    """The same elements (matplotlib's ids of patches, texts, images, in order) and texts as committed."""
    regenerate.picture(name, tmp_path / f"{name}.svg")
    now = (tmp_path / f"{name}.svg").read_text(encoding="utf-8")
    committed = (ROOT / "traces" / f"{name}.svg").read_text(encoding="utf-8")
    ids = lambda text: re.findall(r'<g id="([^"]+)"', text)
    assert ids(now) == ids(committed)
    assert svg_texts(now) == svg_texts(committed)
