"""Keras stacks and directions (issue 14): a Bidirectional's two halves and an LSTM with go_backwards=True are
traced as Keras runs them, every layer of a stack fed the one before's h as Keras feeds it, to 1e-12 of Keras'
own h_t and c_t (float64); a model whose LSTM layers do not feed one another directly is one line.

The fixtures and Keras' numbers come from tests/fixtures/make_keras_model_fixtures.py: these tests need h5py,
never Keras.  Every cell's steps are in the model's time order: step t is the one that read x_t.
"""
import io
import json
import pathlib
import shutil
import zipfile

import numpy as np
import pytest

import lstmtrace
from lstmtrace import Variant, weights

pytest.importorskip("h5py")

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
BIDI = FIXTURES / "keras_model_bidi.keras"
BIDI_H5 = FIXTURES / "keras_model_bidi.h5"
BACKWARDS = FIXTURES / "keras_model_backwards_stack.keras"
STACK = FIXTURES / "keras_model_stack.keras"
TOLERANCE = 1e-12

CELLS = {(0, "forward"): "0_forward", (0, "reverse"): "0_reverse", (1, "reverse"): "1_reverse"}
"""The parity model's cells, by (layer, direction), and their keys in keras_model_bidi.npz."""


@pytest.fixture(scope="module")
def bidi():
    with np.load(FIXTURES / "keras_model_bidi.npz", allow_pickle=False) as f:
        return dict(f)


@pytest.fixture(scope="module")
def backwards():
    with np.load(FIXTURES / "keras_model_backwards_stack.npz", allow_pickle=False) as f:
        return dict(f)


def _embedded(path, tokens):
    """The model's own Embedding rows of ``tokens``: layer 0's x_t."""
    return weights.read_embedding(path, "embedding")[tokens]


def _same(trace, h, c, what):
    np.testing.assert_allclose(trace.block("hidden", "h"), h, rtol=0, atol=TOLERANCE, err_msg=f"{what} h")
    np.testing.assert_allclose(trace.block("cell", "c"), c, rtol=0, atol=TOLERANCE, err_msg=f"{what} c")


def _edited(tmp_path, source, change):
    """A copy of the model file ``source`` (.keras or legacy .h5) with ``change(config)`` applied to its config."""
    path = tmp_path / f"m{source.suffix}"
    if source.suffix == ".keras":
        with zipfile.ZipFile(source) as z:
            members = {n: z.read(n) for n in z.namelist()}
        config = json.loads(members["config.json"])
        change(config)
        members["config.json"] = json.dumps(config).encode()
        with zipfile.ZipFile(path, "w") as z:
            for n, data in members.items():
                z.writestr(n, data)
        return path
    import h5py

    shutil.copy(source, path)
    with h5py.File(path, "a") as f:
        config = json.loads(f.attrs["model_config"])
        change(config)
        f.attrs["model_config"] = json.dumps(config)
    return path


def _layer(config, name):
    """The config entry of the layer ``name`` in a Sequential's config."""
    return next(entry for entry in config["config"]["layers"] if entry["config"]["name"] == name)


def _refused(path, *says):
    """read_stack's one line about ``path``."""
    with pytest.raises(ValueError) as e:
        weights.read_stack(path)
    line = str(e.value)
    assert "\n" not in line and str(path) in line, line
    for fragment in says:
        assert fragment in line, line
    return line


# -- the parity model: Embedding, Bidirectional(LSTM), LSTM(go_backwards=True) -----------------------------

@pytest.mark.parametrize("path", [BIDI, BIDI_H5], ids=["keras", "h5"])
def test_every_cell_of_the_stack_is_keras_own_h_and_c(bidi, path):
    stack = lstmtrace.run_stack(lstmtrace.load_layers(path), _embedded(path, bidi["tokens"]))
    assert [(k, stack.directions(k)) for k in stack.layers] == [(0, ["forward", "reverse"]), (1, ["reverse"])]
    for (k, direction), key in CELLS.items():
        _same(stack.cell(k, direction), bidi[f"h{key}"], bidi[f"c{key}"], f"layer {k} {direction}")


@pytest.mark.parametrize("path", [BIDI, BIDI_H5], ids=["keras", "h5"])
def test_the_command_line_traces_the_whole_model_from_token_ids(tmp_path, bidi, path):
    from conftest import assert_ok, invoke

    ids = ",".join(str(t) for t in bidi["tokens"])
    assert_ok(invoke("run", "--weights", path, "--layer", "all", "--tokens", ids, "--embedding", "embedding",
                     "-o", tmp_path / "stack.csv"))
    stack = lstmtrace.read_trace(tmp_path / "stack.csv")
    for (k, direction), key in CELLS.items():
        _same(stack.cell(k, direction), bidi[f"h{key}"], bidi[f"c{key}"], f"layer {k} {direction}")
    one = assert_ok(invoke("run", "--weights", path, "--layer", "0", "--direction", "reverse", "--tokens", ids,
                           "--embedding", "embedding", "--format", "csv")).stdout
    _same(lstmtrace.read_trace(io.StringIO(one)), bidi["h0_reverse"], bidi["c0_reverse"], "layer 0 reverse alone")


@pytest.mark.parametrize("path", [BIDI, BIDI_H5], ids=["keras", "h5"])
def test_each_cell_says_how_it_runs_and_computes(path):
    stack = weights.read_stack(path)
    said = [[(cell.direction, cell.passes_on, cell.variant, cell.source, cell.where) for cell in layer]
            for layer in stack]
    assert said == [[("forward", "time", Variant(gate_activation="hard_sigmoid"), "file",
                      f"{path} layer 0 (bidirectional/forward_encoder)"),
                     ("reverse", "time", Variant(gate_activation="hard_sigmoid"), "file",
                      f"{path} layer 0 (bidirectional/backward_encoder)")],
                    [("reverse", "run", Variant(candidate_activation="relu", cell_activation="relu"), "file",
                      f"{path} layer 1 (backwards)")]]


def test_the_model_output_is_the_go_backwards_layer_h_in_the_order_it_ran(bidi):
    """Keras hands on (and returns) a go_backwards layer's h_T first; the trace keeps time order."""
    stack = lstmtrace.run_stack(lstmtrace.load_layers(BIDI), _embedded(BIDI, bidi["tokens"]))
    np.testing.assert_allclose(stack.cell(1).block("hidden", "h")[::-1], bidi["output"], rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("direction", ["forward", "reverse"])
def test_one_half_of_the_bidirectional_layer_alone(bidi, direction):
    [cells] = lstmtrace.load_layers(BIDI, layer=0, direction=direction)
    assert [cell.direction for cell in cells] == [direction]
    stack = lstmtrace.run_stack([cells], _embedded(BIDI, bidi["tokens"]))
    key = CELLS[0, direction]
    _same(stack.cell(0), bidi[f"h{key}"], bidi[f"c{key}"], direction)


def test_both_halves_of_layer_0_and_the_reverse_layer_1_alone(bidi):
    assert [c.direction for c in lstmtrace.load_layers(BIDI, layer=0)[0]] == ["forward", "reverse"]
    [[backwards]] = lstmtrace.load_layers(BIDI, layer=1)
    assert (backwards.direction, backwards.passes_on) == ("reverse", "run")
    with pytest.raises(ValueError, match="runs reverse only: it has no forward weights"):
        lstmtrace.load_layers(BIDI, layer=1, direction="forward")


def test_the_archive_and_the_legacy_h5_hold_the_same_cells():
    for a, b in zip(lstmtrace.load_layers(BIDI), lstmtrace.load_layers(BIDI_H5)):
        assert [(p.params, p.direction, p.passes_on) for p in a] == [(p.params, p.direction, p.passes_on) for p in b]


def test_keras_2_names_a_bidirectional_halves_after_its_layer(tmp_path):
    """Keras 2 writes only the wrapped ``layer`` (named as the user named it) and saves the halves' weights
    as forward_<name> and backward_<name>: the same cells."""
    def as_keras_2(config):
        wrapper = _layer(config, "bidirectional")["config"]
        del wrapper["backward_layer"]
        wrapper["layer"]["config"]["name"] = "encoder"

    path = _edited(tmp_path, BIDI_H5, as_keras_2)
    read = [(cell.direction, cell.variant, cell.where) for cell in weights.read_layer(path, 0)]
    assert read == [("forward", Variant(gate_activation="hard_sigmoid"),
                     f"{path} layer 0 (bidirectional/forward_encoder)"),
                    ("reverse", Variant(gate_activation="hard_sigmoid"),
                     f"{path} layer 0 (bidirectional/backward_encoder)")]
    for ours, keras3 in zip(lstmtrace.load_layers(path, layer=0)[0], lstmtrace.load_layers(BIDI_H5, layer=0)[0]):
        assert ours.params == keras3.params


def test_each_half_has_its_own_config_activations(tmp_path):
    path = _edited(tmp_path, BIDI, lambda config: _layer(config, "bidirectional")["config"]["backward_layer"][
        "config"].update(activation="softsign"))
    forward, reverse = weights.read_layer(path, 0)
    assert forward.variant == Variant(gate_activation="hard_sigmoid")
    assert reverse.variant == Variant(gate_activation="hard_sigmoid", candidate_activation="softsign",
                                      cell_activation="softsign")


# -- go_backwards=True hands its h on in the order it ran ---------------------------------------------------

def test_a_layer_after_a_go_backwards_one_reads_its_h_last_first(backwards):
    """LSTM(go_backwards=True), Dropout, LSTM: Keras feeds the last layer h_T … h_1, and so does run_stack."""
    layers = lstmtrace.load_layers(BACKWARDS)
    assert [[(c.direction, c.passes_on) for c in cells] for cells in layers] == [[("reverse", "run")],
                                                                                  [("forward", "time")]]
    stack = lstmtrace.run_stack(layers, backwards["xs"])
    for k in range(2):
        _same(stack.cell(k), backwards[f"h{k}"], backwards[f"c{k}"], f"layer {k}")


# -- what lstmtrace cannot trace, one line each ------------------------------------------------------------

@pytest.mark.parametrize("source", [BIDI, BIDI_H5], ids=["keras", "h5"])
@pytest.mark.parametrize("mode", ["sum", "mul", "ave", None])
def test_a_merge_mode_other_than_concat_traces_alone_but_feeds_no_stack(tmp_path, source, mode):
    path = _edited(tmp_path, source, lambda config: _layer(config, "bidirectional")["config"].update(merge_mode=mode))
    assert len(lstmtrace.load_layers(path, layer=0)[0]) == 2  # the layer alone: each half is what it is
    _refused(path, "layer 0 (bidirectional) merges its two directions with "
                   f"merge_mode={mode!r}", "both directions' h, concatenated")


def test_a_merge_mode_after_the_last_lstm_layer_is_fine(tmp_path, bidi):
    def last_is_bidirectional(config):
        layers = config["config"]["layers"]
        layers[:] = [entry for entry in layers if entry["config"]["name"] != "backwards"]
        _layer(config, "bidirectional")["config"]["merge_mode"] = "sum"

    path = _edited(tmp_path, BIDI, last_is_bidirectional)
    stack = lstmtrace.run_stack(lstmtrace.load_layers(path), _embedded(path, bidi["tokens"]))
    _same(stack.cell(0, "reverse"), bidi["h0_reverse"], bidi["c0_reverse"], "reverse")


@pytest.mark.parametrize("kind, says", [
    ("Dense", "layer 1 (last) reads the output of Dense layer between, not LSTM layer 0's h"),
    ("Masking", "layer 1 (last) reads the output of Masking layer between, not LSTM layer 0's h"),
    ("RepeatVector", "layer 1 (last) reads the output of RepeatVector layer between"),
])
def test_a_layer_that_computes_between_two_lstm_layers_is_named(tmp_path, kind, says):
    def between(config):
        entry = _layer(config, "dropout")
        entry["class_name"], entry["config"] = kind, {"name": "between"}

    _refused(_edited(tmp_path, BACKWARDS, between), says)


@pytest.mark.parametrize("kind", ["SpatialDropout1D", "GaussianNoise", "GaussianDropout", "ActivityRegularization"])
def test_layers_that_compute_nothing_at_inference_may_stand_between(tmp_path, backwards, kind):
    path = _edited(tmp_path, BACKWARDS, lambda config: _layer(config, "dropout").update(class_name=kind))
    stack = lstmtrace.run_stack(lstmtrace.load_layers(path), backwards["xs"])
    _same(stack.cell(1), backwards["h1"], backwards["c1"], "layer 1")


def test_layers_after_the_last_lstm_layer_are_fine(tmp_path):
    dense = {"module": "keras.layers", "class_name": "Dense", "config": {"name": "head", "units": 2}}
    path = _edited(tmp_path, BIDI, lambda config: config["config"]["layers"].append(dense))
    assert [len(cells) for cells in weights.read_stack(path)] == [2, 1]


def test_an_lstm_that_hands_on_only_its_last_h_feeds_no_stack(tmp_path):
    path = _edited(tmp_path, STACK, lambda config: _layer(config, "lstm")["config"].update(return_sequences=False))
    _refused(path, "layer 0 (lstm) hands on only its last h (return_sequences=False)")


@pytest.mark.parametrize("source", [BIDI, BIDI_H5], ids=["keras", "h5"])
def test_a_bidirectional_whose_halves_swap_is_refused(tmp_path, source):
    """Bidirectional(LSTM(go_backwards=True)): the forward_layer runs x_T … x_1 on Keras' generic path and x_1 … x_T
    on its fused cuDNN one: which the model computes depends on where it runs."""
    def swapped(config):
        wrapper = _layer(config, "bidirectional")["config"]
        wrapper["layer"]["config"]["go_backwards"] = True
        wrapper["backward_layer"]["config"]["go_backwards"] = False

    path = _edited(tmp_path, source, swapped)
    says = "layer 0 (bidirectional): Bidirectional of an LSTM with go_backwards=True swaps its halves"
    with pytest.raises(ValueError, match=r"^[^\n]*" + says.replace("(", r"\(").replace(")", r"\)")):
        weights.read_layer(path, 0)
    _refused(path, says)


def test_a_bidirectional_with_another_kind_of_backward_layer_is_refused(tmp_path):
    path = _edited(tmp_path, BIDI, lambda config: _layer(config, "bidirectional")["config"]["backward_layer"].update(
        class_name="GRU"))
    _refused(path, "layer 0 (bidirectional): Bidirectional with a GRU backward_layer, which is not an LSTM")


# -- functional models: the graph must chain ----------------------------------------------------------------

def _functional(config, reads):
    """The Sequential ``config`` as a Keras 3 functional model whose layer ``name`` reads ``reads[name]``: a
    list of (layer, node, tensor), as Keras 3 writes each inbound tensor's keras_history."""
    tensor = lambda history: {"class_name": "__keras_tensor__", "config": {"shape": [None, None, 3],
                                                                          "keras_history": list(history)}}
    layers = config["config"]["layers"]
    for entry in layers:
        name = entry["config"]["name"]
        entry["name"] = name
        entry["inbound_nodes"] = [{"args": [tensor(h) for h in reads[name]], "kwargs": {}}] if reads.get(name) else []
    config["class_name"] = "Functional"
    config["config"]["input_layers"] = [layers[0]["config"]["name"], 0, 0]
    config["config"]["output_layers"] = [[layers[-1]["config"]["name"], 0, 0]]


def test_a_functional_model_that_chains_is_read(tmp_path):
    path = _edited(tmp_path, STACK, lambda c: _functional(c, {"lstm": [("input_layer", 0, 0)],
                                                              "lstm_1": [("lstm", 0, 0)]}))
    assert [[c.where for c in cells] for cells in weights.read_stack(path)] == [[f"{path} layer 0 (lstm)"],
                                                                                 [f"{path} layer 1 (lstm_1)"]]


@pytest.mark.parametrize("reads, says", [
    ([("input_layer", 0, 0)], "layer 1 (lstm_1) reads the model's input, not LSTM layer 0's h"),
    ([("lstm", 0, 0), ("lstm", 0, 1), ("lstm", 0, 2)], "layer 1 (lstm_1) reads 3 tensors (lstm, lstm, lstm: an initial_state, say"),
    ([("lstm", 0, 1)], "layer 1 (lstm_1) reads output 1 of layer lstm (one of its states, not its h_t)"),
])
def test_a_functional_model_whose_lstm_layers_do_not_chain_is_one_line(tmp_path, reads, says):
    path = _edited(tmp_path, STACK, lambda c: _functional(c, {"lstm": [("input_layer", 0, 0)], "lstm_1": reads}))
    _refused(path, says)


# -- a lone reverse cell is never run forward unknowingly -------------------------------------------------

def test_one_reverse_cell_read_without_a_direction_is_not_run_forward_unknowingly():
    with pytest.raises(ValueError, match="reverse"):
        weights.read(BIDI, layer=1)
