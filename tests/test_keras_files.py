"""Keras model files (.keras archives, legacy .h5): the file says how each LSTM computes, lstmtrace
traces exactly that (to 1e-10 of Keras' own h_t and c_t), and refuses in one line what it cannot trace.

The fixtures come from tests/fixtures/make_keras_model_fixtures.py (Keras 3, float64), so these
tests need h5py but not Keras; the live tests at the end build fresh models where Keras is installed.
"""
import io
import json
import os
import pathlib
import shutil
import zipfile

import numpy as np
import pytest

import lstmtrace
from conftest import assert_error, assert_ok, invoke
from lstmtrace import Parameters, Variant, weights
from lstmtrace.errors import OptionError

pytest.importorskip("h5py")

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
STACK = FIXTURES / "keras_model_stack.keras"
LEGACY = FIXTURES / "keras_model_stack.h5"
KERAS2 = FIXTURES / "keras_model_stack_keras2.h5"
WEIGHTS_ONLY = FIXTURES / "keras_model_stack_weights.h5"
TOLERANCE = 1e-10

KERAS3_STACK = (Variant(gate_activation="hard_sigmoid"), Variant(candidate_activation="relu", cell_activation="relu"))
KERAS2_STACK = (Variant(gate_activation="hard_sigmoid:0.2,0.5"), KERAS3_STACK[1])


@pytest.fixture(scope="module")
def states():
    with np.load(FIXTURES / "keras_model_states.npz", allow_pickle=False) as f:
        return dict(f)


def _parity(trace, h, c):
    np.testing.assert_allclose(trace.value("hidden", "h"), h, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(trace.value("cell", "c"), c, rtol=0, atol=TOLERANCE)


def _archive(tmp_path, change=None, source=STACK, name="m.keras", drop=(), replace=None):
    """A copy of the .keras archive ``source`` with ``change(config)`` applied to its config.json, the
    members ``drop`` left out and ``replace`` ({member: bytes}) put in."""
    with zipfile.ZipFile(source) as z:
        members = {n: z.read(n) for n in z.namelist() if n not in drop}
    if change is not None:
        config = json.loads(members["config.json"])
        change(config)
        members["config.json"] = json.dumps(config).encode()
    members.update(replace or {})
    path = tmp_path / name
    with zipfile.ZipFile(path, "w") as z:
        for n, data in members.items():
            z.writestr(n, data)
    return path


def _lstm(config, k=0):
    """The config of the k-th LSTM layer of a Sequential's config."""
    return [entry for entry in config["config"]["layers"] if entry["class_name"] == "LSTM"][k]["config"]


def _run_fails(path, *says, layer=None):
    args = ["run", "--weights", path, "--xs", "1,2,3"] + (["--layer", layer] if layer is not None else [])
    return assert_error(invoke(*args), str(path), *says)


# -- the file says how its cell computes, and the trace is Keras' own, layer by layer --------------

@pytest.mark.parametrize("path, key, variants", [(STACK, "", KERAS3_STACK), (LEGACY, "", KERAS3_STACK),
                                                 (KERAS2, "k2_", KERAS2_STACK)], ids=["keras", "h5", "keras2-h5"])
def test_every_layer_is_keras_own_h_and_c(states, path, key, variants):
    xs = states["xs"]
    for k, variant in enumerate(variants):  # layer 1's input is layer 0's h, as Keras computed it
        params = Parameters.load(path, layer=k)
        assert params.variant == variant and params.variant_source == "file"
        _parity(lstmtrace.run(params, xs), states[f"{key}h{k}"], states[f"{key}c{k}"])
        xs = states[f"{key}h{k}"]


def test_hard_sigmoid_is_the_saving_keras_own():
    """Keras 2's hard_sigmoid is clip(0.2·x + 0.5, 0, 1); Keras 3's is relu6(x + 3)/6."""
    assert Parameters.load(KERAS2).variant.gate_activation == "hard_sigmoid:0.2,0.5"
    assert Parameters.load(STACK).variant.gate_activation == "hard_sigmoid"


def test_the_archive_and_the_legacy_h5_hold_the_same_cells():
    for k in range(2):
        assert Parameters.load(STACK, layer=k) == Parameters.load(LEGACY, layer=k)


def test_use_bias_false_is_a_zero_bias(states):
    params = Parameters.load(FIXTURES / "keras_model_nobias.keras")
    assert not params.b.any() and params.variant == Variant()
    _parity(lstmtrace.run(params, states["xs"]), states["nobias_h"], states["nobias_c"])


def test_an_activation_written_as_a_dict_is_read_as_its_name(tmp_path):
    def as_dict(config):
        _lstm(config)["recurrent_activation"] = {"module": "keras.activations", "class_name": "function",
                                                 "config": "hard_sigmoid", "registered_name": "function"}

    assert Parameters.load(_archive(tmp_path, as_dict)) == Parameters.load(STACK)


def test_a_layer_gets_its_own_weights_or_none(tmp_path):
    """model.weights.h5 names a layer's group after its class (lstm, lstm_1, …) and nesting; the reader
    matches a config's layer to the group by the names its vars keep (or that path), never by position."""
    inner = {"module": "keras", "class_name": "Sequential", "config": {"name": "inner", "layers": [
        {"class_name": "InputLayer", "config": {"name": "x"}}, {"class_name": "LSTM", "config": {}}]}}

    def nest(config):
        entries = config["config"]["layers"]
        inner["config"]["layers"][1]["config"] = entries[2]["config"]
        entries[2] = inner

    path = _archive(tmp_path, nest)
    with pytest.raises(ValueError, match=r"its LSTM layers are 0 \(lstm\), 1 \(inner/lstm_1\)"):
        Parameters.load(path, layer=2)
    with pytest.raises(ValueError, match=r"layer 1 \(inner/lstm_1\): the file holds no weights for it"):
        Parameters.load(path, layer=1)  # the archive's weights are still the Sequential's: not silently lstm_1's


# -- the command line --------------------------------------------------------------------------

def test_run_says_what_the_file_says(tmp_path, states):
    np.savetxt(tmp_path / "h0.csv", states["h0"], delimiter=",")
    result = assert_ok(invoke("run", "--weights", STACK, "--layer", 1, "--xs", tmp_path / "h0.csv"))
    text = " ".join(result.stdout.split())
    assert "from keras_model_stack.keras (layer 1)" in text
    assert "The file says its cell is candidate activation relu, cell activation relu." in text
    result = assert_ok(invoke("run", "--weights", LEGACY, "--xs", "1,2,3;0,1,0"))
    assert "The file says its cell is gate activation hard_sigmoid." in " ".join(result.stdout.split())


def test_variant_options_that_contradict_the_file_name_both():
    line = assert_error(invoke("run", "--weights", STACK, "--xs", "1,2,3", "--activation", "gate=sigmoid"),
                        "layer 0 (lstm) says its cell is gate activation hard_sigmoid",
                        "the variant options ask for lstmtrace's default LSTM")
    assert "leave them out" in line


def test_the_same_variant_given_again_is_fine():
    assert_ok(invoke("run", "--weights", STACK, "--xs", "1,2,3", "--activation", "gate=hard_sigmoid"))


def test_prefix_is_for_state_dicts():
    assert_error(invoke("run", "--weights", STACK, "--xs", "1,2,3", "--prefix", "lstm"), "'--prefix'",
                 "names its own layers")


@pytest.mark.parametrize("path", [STACK, LEGACY], ids=["keras", "h5"])
def test_a_layer_that_is_not_there_lists_those_that_are(path):
    assert_error(invoke("run", "--weights", path, "--xs", "1,2,3", "--layer", 2), "'--layer'",
                 f"{path} has no LSTM layer 2; its LSTM layers are 0 (lstm), 1 (lstm_1)")


# -- refused, one line each: what this version cannot trace -----------------------------------------

def test_what_keras_wrote_and_lstmtrace_cannot_trace_is_refused():
    _run_fails(FIXTURES / "keras_model_elu.keras", "'--weights'",
               "layer 0 (elu_lstm): activation 'elu' is not an activation lstmtrace computes")


@pytest.mark.parametrize("setting, value, says", [
    ("recurrent_activation", "hard_silu", "recurrent_activation 'hard_silu' is not an activation lstmtrace computes"),
    ("activation", {"module": "my_package", "class_name": "function", "config": "swishy",
                    "registered_name": "my_package>swishy"}, "activation is a custom function ('my_package>swishy')"),
    ("activation", {"value": ["4wEAAAAA", None, None]}, "activation is a custom function (a Python lambda)"),
])
def test_activations_lstmtrace_does_not_compute_are_named(tmp_path, setting, value, says):
    path = _archive(tmp_path, lambda config: _lstm(config).update({setting: value}))
    _run_fails(path, "'--weights'", "layer 0 (lstm): " + says)


def test_go_backwards_makes_that_layer_a_reverse_cell_and_no_other(tmp_path):
    """(Bidirectional and go_backwards against Keras' own numbers: tests/test_keras_stack.py.)"""
    path = _archive(tmp_path, lambda config: _lstm(config, 1).update(go_backwards=True))
    [[first], [second]] = weights.read_stack(path)
    assert (first.direction, first.passes_on) == ("forward", "time")
    assert (second.direction, second.passes_on) == ("reverse", "run")  # Keras hands its h on in the order it ran
    assert Parameters.load(path, layer=0) == Parameters.load(STACK, layer=0)
    [reverse] = lstmtrace.load_layers(path, layer=1, direction="reverse")[0]
    assert reverse.params == Parameters.load(STACK, layer=1)  # the same weights, run the other way


def test_legacy_hard_sigmoid_without_a_keras_version_is_refused(tmp_path):
    import h5py

    path = tmp_path / "m.h5"
    shutil.copy(KERAS2, path)
    with h5py.File(path, "a") as f:
        for group in (f, f["model_weights"]):
            del group.attrs["keras_version"]
    _run_fails(path, "'--weights'", "layer 0 (lstm): recurrent_activation 'hard_sigmoid' is clip(0.2·x + 0.5, 0, 1) "
                     "in Keras 2 and relu6(x + 3)/6 in Keras 3, and the file does not say which Keras saved it")
    assert Parameters.load(path, layer=1).variant == KERAS2_STACK[1]  # its other activations mean one thing


def test_an_archive_without_metadata_cannot_say_which_hard_sigmoid(tmp_path):
    _run_fails(_archive(tmp_path, drop=("metadata.json",)), "does not say which Keras saved it")


def test_keras_1_files_are_refused(tmp_path):
    path = _archive(tmp_path, replace={"metadata.json": b'{"keras_version": "1.2.2"}'})
    _run_fails(path, "was saved by Keras 1.2.2")


def test_weights_that_do_not_fit_the_config_are_refused(tmp_path):
    path = _archive(tmp_path, lambda config: _lstm(config).update(units=5))
    _run_fails(path, "layer 0 (lstm): the config says units = 5, and its recurrent_kernel has shape (4, 16)")


def test_a_subclassed_model_says_how_to_trace_it(tmp_path):
    path = _archive(tmp_path, lambda config: config.update(class_name="MyModel", config={"name": "m"}))
    _run_fails(path, "holds a MyModel whose config does not list its layers")


# -- damaged archives: one sentence ----------------------------------------------------------------

def test_an_empty_archive(tmp_path):
    (tmp_path / "m.keras").write_bytes(b"")
    _run_fails(tmp_path / "m.keras", "'--weights'", "is empty, not a .keras archive")


@pytest.mark.parametrize("keep", [lambda n: 10, lambda n: n // 2, lambda n: n - 30])
def test_a_truncated_archive(tmp_path, keep):
    path = tmp_path / "m.keras"
    path.write_bytes(STACK.read_bytes()[:keep(STACK.stat().st_size)])
    _run_fails(path, "'--weights'", "is truncated or corrupt")


def test_not_a_zip(tmp_path):
    (tmp_path / "m.keras").write_text("hello")
    _run_fails(tmp_path / "m.keras", "is not a .keras archive (a zip of config.json and model.weights.h5")


def test_a_zip_without_config_json(tmp_path):
    np.savez(tmp_path / "w.npz", kernel=np.zeros((3, 8)))
    shutil.copy(tmp_path / "w.npz", tmp_path / "m.keras")
    _run_fails(tmp_path / "m.keras", "is not a .keras archive (no config.json)")


def test_an_hdf5_file_named_keras(tmp_path):
    shutil.copy(LEGACY, tmp_path / "m.keras")
    _run_fails(tmp_path / "m.keras", "is an HDF5 file, not a .keras archive: name it .h5")


@pytest.mark.parametrize("kwargs, says", [
    ({"drop": ("model.weights.h5",)}, "is not a whole .keras archive (no model.weights.h5)"),
    ({"replace": {"config.json": b"{not json"}}, "is truncated or corrupt: its config.json is not JSON"),
    ({"replace": {"model.weights.h5": b"\x89HDF\r\n\x1a\n" + bytes(200)}},
     "model.weights.h5 in {path} is truncated or corrupt"),
])
def test_an_archive_with_a_damaged_member(tmp_path, kwargs, says):
    path = _archive(tmp_path, **kwargs)
    _run_fails(path, "'--weights'", says.format(path=path))


@pytest.mark.parametrize("at", np.linspace(0, 1, 24, endpoint=False), ids=lambda at: f"{at:.2f}")
def test_a_flipped_byte_anywhere_is_read_or_one_line(tmp_path, at):
    data = bytearray(STACK.read_bytes())
    data[int(at * len(data))] ^= 0xFF
    path = tmp_path / "m.keras"
    path.write_bytes(bytes(data))
    result = invoke("run", "--weights", path, "--xs", "1,2,3")
    if result.exit_code != 0:
        assert_error(result, str(path))


def test_a_truncated_legacy_h5(tmp_path):
    path = tmp_path / "m.h5"
    path.write_bytes(LEGACY.read_bytes()[: LEGACY.stat().st_size // 2])
    _run_fails(path, "'--weights'", "is truncated or corrupt")


def test_reading_an_archive_without_h5py_says_how_to_get_it(without):
    without("h5py")
    with pytest.raises(ImportError, match=r"needs h5py: pip install 'lstmtrace\[keras\]'"):
        Parameters.load(STACK)


# -- --tokens through the model's own Embedding layer ------------------------------------------------

EMBEDDED = FIXTURES / "keras_model_embedding.keras"


def _csv_h(stdout):
    """h_t for every t (T × H) from a long CSV trace."""
    import csv

    rows = [r for r in csv.DictReader(io.StringIO(stdout)) if (r["gate"], r["quantity"]) == ("hidden", "h")]
    T, H = max(int(r["step"]) for r in rows), max(int(r["unit"]) for r in rows) + 1
    h = np.full((T, H), np.nan)
    for r in rows:
        h[int(r["step"]) - 1, int(r["unit"])] = float(r["value"])
    return h


@pytest.mark.parametrize("path", [EMBEDDED, EMBEDDED.with_suffix(".h5")], ids=["keras", "h5"])
def test_tokens_through_the_models_embedding_are_keras_own_h(path):
    with np.load(FIXTURES / "keras_model_embedding.npz", allow_pickle=False) as f:
        tokens, h = f["tokens"], f["h"]
    result = assert_ok(invoke("run", "--weights", path, "--tokens", ",".join(map(str, tokens)),
                              "--embedding", "embedding", "--format", "csv"))
    np.testing.assert_allclose(_csv_h(result.stdout), h, rtol=0, atol=TOLERANCE)


def test_a_keras_3_weights_h5_names_its_embedding_by_its_group(tmp_path):
    with zipfile.ZipFile(EMBEDDED) as z:  # the archive's weights are what save_weights("m.weights.h5") writes
        (tmp_path / "m.weights.h5").write_bytes(z.read("model.weights.h5"))
    table = weights.read_embedding(tmp_path / "m.weights.h5", "embedding")
    assert np.array_equal(table, weights.read_embedding(EMBEDDED, "embedding")) and table.shape == (12, 3)
    with pytest.raises(OptionError, match=r"has no Embedding layer 'lstm'; its Embedding layers are embedding$"):
        weights.read_embedding(tmp_path / "m.weights.h5", "lstm")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Keras' own, from its torch backend
def test_a_legacy_save_weights_h5_names_its_embedding_by_its_layer(keras64, tmp_path):
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    model = keras64.saving.load_model(EMBEDDED)
    with h5py.File(tmp_path / "w.h5", "w") as f:  # save_weights("w.h5"): layer_names, weight_names, no config
        legacy_h5_format.save_weights_to_hdf5_group(f, model)
    assert np.array_equal(weights.read_embedding(tmp_path / "w.h5", "embedding"),
                          model.get_layer("embedding").get_weights()[0])
    with pytest.raises(OptionError, match=r"has no Embedding layer 'lstm'; its Embedding layers are embedding$"):
        weights.read_embedding(tmp_path / "w.h5", "lstm")


@pytest.mark.parametrize("path, says", [
    (EMBEDDED, "has no Embedding layer 'lstm'; its Embedding layers are embedding"),
    (EMBEDDED.with_suffix(".h5"), "has no Embedding layer 'lstm'; its Embedding layers are embedding"),
    (STACK, "has no Embedding layer 'embedding'; it has no Embedding layer"),
    (WEIGHTS_ONLY, "has no Embedding layer 'embedding'; it holds no Embedding layer's weights"),
])
def test_an_embedding_that_is_not_there_is_one_line(path, says):
    assert_error(invoke("run", "--weights", path, "--tokens", "3,1", "--embedding", "embedding" if path in
                        (STACK, WEIGHTS_ONLY) else "lstm"), "'--embedding'", str(path), says)


# -- files that cannot tell: weights only, and the variant assumed, aloud --------------------------

def test_a_legacy_save_weights_file_is_weights_only():
    for k, variant in enumerate(KERAS3_STACK):
        assumed = Parameters.load(WEIGHTS_ONLY, layer=k)
        assert assumed.variant_source == "assumed" and assumed.variant == Variant()
        given = Parameters.load(WEIGHTS_ONLY, layer=k, variant=variant)
        assert given == Parameters.load(STACK, layer=k) and given.variant_source == "options"
    with pytest.raises(ValueError, match=r"has no LSTM layer 2; its layers are 0 \(lstm\), 1 \(lstm_1\)"):
        Parameters.load(WEIGHTS_ONLY, layer=2)


def test_a_keras_3_weights_h5_is_read_as_before():
    params = Parameters.load(FIXTURES / "keras_lstm_2layer.weights.h5", layer=1)
    assert params.variant_source == "assumed" and (params.input_size, params.hidden_size) == (5, 4)


# -- live: a model Keras builds and saves now --------------------------------------------------------

@pytest.fixture
def keras64():
    """Keras in float64 (torch backend), put back as it was after the test."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    policy = keras.config.dtype_policy()
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")  # the policy, once made, no longer follows floatx
    yield keras
    keras.config.set_floatx("float32")
    keras.config.set_dtype_policy(policy)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Keras' own, from its torch backend
def test_live_keras_model_files_match_keras(keras64, tmp_path):
    keras = keras64
    keras.utils.set_random_seed(12)
    inputs = keras.Input((None, 3))
    y0 = keras.layers.LSTM(4, recurrent_activation="hard_sigmoid", activation="softsign", return_sequences=True,
                           name="first")(inputs)
    inner = keras.Sequential([keras.Input((None, 4)), keras.layers.LSTM(3, activation="relu", return_sequences=True,
                                                                        name="deep")], name="nested")
    y1 = inner(y0)
    y2 = keras.layers.RNN(keras.layers.LSTMCell(2, use_bias=False), return_sequences=True, name="cells")(y1)
    model = keras.Model(inputs, [y0, y1, y2])
    rng = np.random.default_rng(13)
    for layer in (model.get_layer("first"), inner.get_layer("deep")):  # biases away from zeros and ones
        kernel, recurrent, bias = layer.get_weights()
        layer.set_weights([kernel * 3, recurrent * 3, rng.uniform(-1, 1, bias.shape)])
    xs = rng.normal(size=(7, 3)) * 2
    hs = [keras.ops.convert_to_numpy(h)[0] for h in model(xs[None])]
    model.save(tmp_path / "m.keras")
    model.save(tmp_path / "m.h5")
    expected = [Variant(gate_activation="hard_sigmoid", candidate_activation="softsign", cell_activation="softsign"),
                Variant(candidate_activation="relu", cell_activation="relu"), Variant()]
    for path in (tmp_path / "m.keras", tmp_path / "m.h5"):
        with pytest.raises(ValueError, match=r"its LSTM layers are 0 \(first\), 1 \(nested/deep\), 2 \(cells\)"):
            Parameters.load(path, layer=3)
        layer_xs = xs
        for k, (variant, h) in enumerate(zip(expected, hs)):
            params = Parameters.load(path, layer=k)
            assert params.variant == variant, (path, k)
            # Keras' generic RNN loop (torch backend) is ~1e-8 off its own LSTM layer with the same weights
            np.testing.assert_allclose(lstmtrace.run(params, layer_xs).value("hidden", "h"), h, rtol=0,
                                       atol=TOLERANCE if k < 2 else 1e-7)
            layer_xs = h
        cells = model.get_layer("cells").get_weights()
        assert Parameters.load(path, layer=2) == Parameters.from_keras(*cells)  # exactly its weights


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Keras' own, from its torch backend
def test_live_a_masked_padding_id_is_refused_not_traced_as_a_step(keras64, tmp_path):
    keras = keras64
    keras.utils.set_random_seed(5)
    model = keras.Sequential([keras.Input((None,), dtype="int64"), keras.layers.Embedding(6, 3, mask_zero=True),
                              keras.layers.LSTM(4, return_sequences=True)])
    model.save(tmp_path / "m.keras")
    common = ["run", "--weights", tmp_path / "m.keras", "--layer", "0", "--embedding", "embedding"]
    # Keras skips the step of id 0 (keeping h and c): a trace of every step would not be the model's
    assert_error(invoke(*common, "--tokens", "2,0,3"), "'--tokens'", "token id 0 is padding for --embedding "
                 "'embedding' (mask_zero)")
    result = assert_ok(invoke(*common, "--tokens", "2,5,3", "--format", "csv"))  # no padding: Keras' own numbers
    traced = __import__("pandas").read_csv(io.StringIO(result.stdout)).query("quantity == 'h'")["value"]
    twin = keras.Sequential([keras.Input((None,), dtype="int64"), keras.layers.Embedding(6, 3),
                             keras.layers.LSTM(4, return_sequences=True)])
    twin.set_weights(model.get_weights())
    for keras_model, atol in ((twin, 1e-12), (model, 1e-6)):
        # Keras' masked LSTM path (torch backend) is itself ~1e-7 relatively off its unmasked one in
        # float64, with no id masked: the same weights unmasked agree with lstmtrace to ~1e-18
        h = keras.ops.convert_to_numpy(keras_model(np.array([[2, 5, 3]])))[0]
        np.testing.assert_allclose(traced.to_numpy().reshape(3, 4), h, rtol=0, atol=atol)
