"""A Keras 3 LSTM's every h_t and c_t, traced by lstmtrace from the model's own weights, to 1e-10.

The fixtures come from tests/fixtures/make_keras_fixtures.py (Keras 3, float64),
so these tests need no Keras; reading the .weights.h5 file needs h5py.
"""
import os
import pathlib

import numpy as np
import pytest

import lstmtrace
from lstmtrace import Parameters

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
DATA = FIXTURES / "keras_lstm_2layer.npz"
H5 = FIXTURES / "keras_lstm_2layer.weights.h5"
TOLERANCE = 1e-10


@pytest.fixture
def data():
    with np.load(DATA, allow_pickle=False) as f:
        return dict(f)


def test_first_layer_from_keras_layout_npz(data):
    params = Parameters.load(DATA)  # detected by its keys: kernel, recurrent_kernel, bias
    trace = lstmtrace.run(params, data["xs"])
    np.testing.assert_allclose(trace.value("hidden", "h"), data["h0"], rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(trace.value("cell", "c"), data["c0"], rtol=0, atol=TOLERANCE)


def test_from_keras_matches_get_weights_order(data):
    params = Parameters.from_keras(data["kernel"], data["recurrent_kernel"], data["bias"])
    assert params == Parameters.load(DATA, layout="keras")
    np.testing.assert_array_equal(params.forget.b, data["bias"][5:10])  # gates i, f, c, o


def test_both_layers_from_the_weights_h5_file(data):
    pytest.importorskip("h5py")
    xs = data["xs"]
    for k in range(2):
        trace = lstmtrace.run(Parameters.load(H5, layer=k), xs)
        np.testing.assert_allclose(trace.value("hidden", "h"), data[f"h{k}"], rtol=0, atol=TOLERANCE)
        np.testing.assert_allclose(trace.value("cell", "c"), data[f"c{k}"], rtol=0, atol=TOLERANCE)
        xs = trace.value("hidden", "h")


def test_weights_h5_layer_that_does_not_exist_lists_the_layers():
    pytest.importorskip("h5py")
    with pytest.raises(ValueError, match=r"no LSTM layer 2; its layers are 0 \(encoder\), 1 \(decoder\)"):
        Parameters.load(H5, layer=2)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Keras' own, from its torch backend
def test_live_keras_lstm_matches():
    pytest.importorskip("h5py")
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    policy = keras.config.dtype_policy()
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")  # the policy, once made, no longer follows floatx
    try:
        keras.utils.set_random_seed(8)
        inputs = keras.Input((None, 2))
        seq, h, c = keras.layers.LSTM(3, return_sequences=True, return_state=True)(inputs)
        model = keras.Model(inputs, [seq, h, c])
        xs = np.random.default_rng(9).normal(size=(12, 2))
        seq, h, c = (keras.ops.convert_to_numpy(a)[0] for a in model(xs[None]))
        trace = lstmtrace.run(Parameters.from_keras(*model.layers[1].get_weights()), xs)
    finally:
        keras.config.set_floatx("float32")
        keras.config.set_dtype_policy(policy)
    np.testing.assert_allclose(trace.value("hidden", "h"), seq, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(trace.value("cell", "c")[-1], c, rtol=0, atol=TOLERANCE)
