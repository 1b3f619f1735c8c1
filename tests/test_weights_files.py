"""Weights files from PyTorch and Keras: which layer, which module, and what is refused."""
import pathlib
import re

import numpy as np
import pytest

import lstmtrace
from conftest import assert_ok, invoke
from lstmtrace import Parameters

FIXTURES = pathlib.Path(__file__).parent / "fixtures"


def _nn_lstm_state(E=3, H=2, layers=2, prefix="", seed=0, **extra):
    rng = np.random.default_rng(seed)
    state = {}
    for k in range(layers):
        inputs = E if k == 0 else H
        state.update({f"{prefix}weight_ih_l{k}": rng.normal(size=(4 * H, inputs)),
                      f"{prefix}weight_hh_l{k}": rng.normal(size=(4 * H, H)),
                      f"{prefix}bias_ih_l{k}": rng.normal(size=4 * H),
                      f"{prefix}bias_hh_l{k}": rng.normal(size=4 * H)})
    state.update(extra)
    return state


@pytest.fixture
def save(tmp_path):
    def save(name="w.npz", **arrays):
        path = tmp_path / name
        np.savez(path, **arrays)
        return path
    return save


def test_nn_lstm_layer_k_is_its_own_cell(save):
    state = _nn_lstm_state()
    p = Parameters.load(save(**state), layer=1)
    assert (p.input_size, p.hidden_size) == (2, 2)
    np.testing.assert_array_equal(p.input.W, state["weight_ih_l1"][:2])  # PyTorch order i, f, g, o
    np.testing.assert_array_equal(p.forget.U, state["weight_hh_l1"][2:4])
    np.testing.assert_array_equal(p.output.b, state["bias_ih_l1"][6:] + state["bias_hh_l1"][6:])


def test_layer_defaults_to_0(save):
    state = _nn_lstm_state()
    assert Parameters.load(save(**state)).input_size == 3


def test_prefix_with_or_without_its_dot(save):
    path = save(**_nn_lstm_state(prefix="encoder.lstm."), **{"head.weight": np.zeros((1, 2))})
    assert Parameters.load(path, prefix="encoder.lstm") == Parameters.load(path, prefix="encoder.lstm.")
    assert Parameters.load(path) == Parameters.load(path, prefix="encoder.lstm")  # the only one


def test_bias_false_means_zero_bias(save):
    state = {k: v for k, v in _nn_lstm_state(layers=1).items() if not k.startswith("bias")}
    assert not Parameters.load(save(**state)).forget.b.any()


@pytest.mark.parametrize("state, kwargs, message", [
    (_nn_lstm_state(), {"layer": 2}, "has no layer 2; its layers are 0, 1"),
    (_nn_lstm_state(prefix="a."), {"prefix": "b"}, "no LSTM weights under prefix 'b'; its prefixes are 'a.'"),
    ({**_nn_lstm_state(prefix="enc."), **_nn_lstm_state(prefix="dec.")}, {},
     "several prefixes, 'dec.', 'enc.': choose one with --prefix"),
    (_nn_lstm_state(layers=1, weight_ih_l0_reverse=np.zeros((8, 3))), {},
     "no key 'weight_hh_l0_reverse'"),
    (_nn_lstm_state(layers=1, weight_hr_l0=np.zeros((1, 2))), {},
     "the file has a projection (key 'weight_hr_l0', shape (1, 2)), and the cell asked for has none: give --proj-size 1"),
    (Parameters.zeros(2, 2).state_dict(), {"layer": 1}, "one torch.nn.LSTMCell; there is no layer 1"),
    ({"a": np.zeros(3)}, {}, "has no LSTM weights"),
    (_nn_lstm_state(layers=1, prefix="m.", **{"m.weight_hh_l0": np.zeros((8, 3))}), {},
     "'m.weight_hh_l0' has shape (8, 3)"),
])
def test_which_cell_errors_name_what_there_is(save, state, kwargs, message):
    with pytest.raises(ValueError) as info:
        Parameters.load(save(**state), **kwargs)
    assert message in str(info.value)


def test_keras_layout_is_detected_or_forced(save):
    p = Parameters.random(3, 2, seed=1)
    sd = p.state_dict()
    path = save(kernel=sd["weight_ih"].T, recurrent_kernel=sd["weight_hh"].T, bias=sd["bias_ih"])
    assert Parameters.load(path) == p
    assert Parameters.load(path, layout="keras") == p
    with pytest.raises(ValueError, match="no LSTM weights"):
        Parameters.load(path, layout="torch")


def test_keras_without_bias(save):
    sd = Parameters.random(3, 2).state_dict()
    p = Parameters.load(save(kernel=sd["weight_ih"].T, recurrent_kernel=sd["weight_hh"].T))
    assert not p.forget.b.any()


def test_keras_shape_errors_use_keras_names(save):
    with pytest.raises(ValueError, match="'bias' has shape"):
        Parameters.load(save(kernel=np.zeros((3, 8)), recurrent_kernel=np.zeros((2, 8)), bias=np.zeros(7)))


def test_unknown_layout(save):
    with pytest.raises(ValueError, match="unknown layout 'tf'"):
        Parameters.load(save(**_nn_lstm_state()), layout="tf")


def test_pt_without_torch_says_how_to_get_it(without):
    without("torch")
    with pytest.raises(ImportError, match=r"needs PyTorch: pip install 'lstmtrace\[torch\]'"):
        Parameters.load(FIXTURES / "torch_lstm_2layer.pt")


def test_h5_without_h5py_says_how_to_get_it(without):
    without("h5py")
    with pytest.raises(ImportError, match=r"needs h5py: pip install 'lstmtrace\[keras\]'"):
        Parameters.load(FIXTURES / "keras_lstm_2layer.weights.h5")


def test_pt_state_dict_matches_its_npz_twin():
    pytest.importorskip("torch")
    pt, npz = FIXTURES / "torch_lstm_2layer.pt", FIXTURES / "torch_lstm_2layer.npz"
    assert Parameters.load(pt, layer=1) == Parameters.load(npz, layer=1)


def test_nested_checkpoint_is_read_through_its_keys(tmp_path):
    torch = pytest.importorskip("torch")
    lstm = torch.nn.LSTM(3, 2)
    torch.save({"epoch": 3, "model": {"rnn": lstm.state_dict()}}, tmp_path / "ckpt.pt")
    p = Parameters.load(tmp_path / "ckpt.pt", prefix="model.rnn")
    np.testing.assert_array_equal(p.input.W, lstm.weight_ih_l0.detach().double().numpy()[:2])


@pytest.mark.parametrize("obj, message", [([1, 2], "holds a list, not a state_dict"),
                                          ("module", "would need pickle to load")])
def test_pt_files_that_are_not_state_dicts(tmp_path, obj, message):
    torch = pytest.importorskip("torch")
    torch.save(torch.nn.LSTM(2, 2) if obj == "module" else obj, tmp_path / "x.pt")
    with pytest.raises(ValueError, match=message):
        Parameters.load(tmp_path / "x.pt")


def test_pt_that_is_not_a_torch_file(tmp_path):
    pytest.importorskip("torch")
    (tmp_path / "x.pt").write_text("hello")
    with pytest.raises(ValueError, match="is not a file torch.load can read"):
        Parameters.load(tmp_path / "x.pt")


def test_h5_that_is_not_hdf5(tmp_path):
    pytest.importorskip("h5py")
    (tmp_path / "x.weights.h5").write_text("hello")
    with pytest.raises(ValueError, match="is not an HDF5 file"):
        Parameters.load(tmp_path / "x.weights.h5")


# -- which variant a file's cell is: the file's word, the options', or an assumption said aloud ------

def test_a_file_that_cannot_tell_assumes_the_default_and_says_so(tmp_path):
    Parameters.random(2, 3).save(tmp_path / "w.npz")
    params = Parameters.load(tmp_path / "w.npz")
    assert params.variant_source == "assumed" and "lstmtrace assumed its default LSTM's" in params.variant_note()
    given = Parameters.load(tmp_path / "w.npz", variant=lstmtrace.Variant(gate_activation="hard_sigmoid"))
    assert given.variant_source == "options" and given.variant_note() == ""
    result = assert_ok(invoke("step", "--x", "1,2", "--weights", tmp_path / "w.npz"))
    assert "cannot say which activations its cell uses" in " ".join(result.stdout.split())
    result = assert_ok(invoke("params", "--show", tmp_path / "w.npz"))
    assert "lstmtrace assumed its default LSTM's" in result.stdout


@pytest.mark.parametrize("module, says", [
    ("GRU", "a GRU's state_dict (nn.GRU: weight_hh stacks 3 gates, reset, update and new), not an LSTM's"),
    ("RNN", "a plain RNN's state_dict (nn.RNN: weight_hh stacks one gate), not an LSTM's"),
])
def test_another_recurrent_layers_state_dict_is_named(tmp_path, module, says):
    rows = {"GRU": 3, "RNN": 1}[module] * 4  # as torch.nn.GRU(3, 4) and torch.nn.RNN(3, 4) shape them
    np.savez(tmp_path / "w.npz", weight_ih_l0=np.zeros((rows, 3)), weight_hh_l0=np.zeros((rows, 4)),
             bias_ih_l0=np.zeros(rows), bias_hh_l0=np.zeros(rows))
    with pytest.raises(ValueError, match=re.escape(says)):
        Parameters.load(tmp_path / "w.npz")
    # a coupled lstmtrace cell stacks 3 gates too, and its file says which: never taken for a GRU
    coupled = lstmtrace.Variant(coupled=True)
    Parameters.random(3, 4, variant=coupled).save(tmp_path / "c.npz")
    assert Parameters.load(tmp_path / "c.npz", variant=coupled).variant == coupled


@pytest.mark.filterwarnings("ignore:`torch.jit.:DeprecationWarning")  # torch 2.13 deprecates making the archive
def test_a_torchscript_archive_is_named_without_torchs_warnings(tmp_path):
    torch = pytest.importorskip("torch")
    torch.jit.save(torch.jit.script(torch.nn.LSTM(3, 4)), tmp_path / "m.pt")
    result = invoke("step", "--x", "1,2,3", "--weights", tmp_path / "m.pt")
    assert result.exit_code == 2 and len(result.stderr.splitlines()) == 1
    assert "a TorchScript archive (torch.jit.save), which holds code: save model.state_dict()" in result.stderr
