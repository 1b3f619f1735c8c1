"""Parameters: the constructors, changing one matrix, and weights files in PyTorch's layout."""
import io
import pickle
import zipfile

import numpy as np
import pytest

from lstmtrace import Parameters
from lstmtrace.params import GATES


@pytest.mark.parametrize("make, W, U", [
    (Parameters.zeros, np.zeros((2, 3)), np.zeros((2, 2))),
    (Parameters.ones, np.ones((2, 3)), np.ones((2, 2))),
    (Parameters.identity, np.eye(2, 3), np.eye(2)),
])
def test_constructors(make, W, U):
    p = make(input_size=3, hidden_size=2)
    assert (p.input_size, p.hidden_size) == (3, 2)
    for gate in GATES:
        np.testing.assert_array_equal(p[gate].W, W)
        np.testing.assert_array_equal(p[gate].U, U)
        np.testing.assert_array_equal(p[gate].b, np.zeros(2))


def test_random_is_uniform_within_pytorch_bound_and_reproducible():
    p = Parameters.random(6, 16, seed=3)
    weights = np.concatenate([np.ravel(getattr(p[g], m)) for g in GATES for m in "WU"])
    assert np.abs(weights).max() <= 1 / np.sqrt(16)
    assert np.abs(weights).max() > 0.9 / np.sqrt(16)  # spread over the whole range, not clustered
    assert Parameters.random(6, 16, seed=3) == p
    assert Parameters.random(6, 16, seed=4) != p
    assert not np.array_equal(p.forget.W, p.input.W)


def test_gates_are_reachable_by_attribute_and_name():
    p = Parameters.identity(2, 2)
    assert all(np.array_equal(a, b) for a, b in zip(p.forget, p["forget"]))
    assert list(p.gates) == ["forget", "input", "candidate", "output"]
    with pytest.raises(KeyError, match="unknown gate 'update'"):
        p["update"]


@pytest.mark.parametrize("param, spec, expected", [
    ("W", "zeros", np.zeros((2, 3))),
    ("W", "ones", np.ones((2, 3))),
    ("W", "identity", np.eye(2, 3)),
    ("W", "2.5", np.full((2, 3), 2.5)),
    ("W", "1,2,3;4,5,6", np.array([[1.0, 2, 3], [4, 5, 6]])),
    ("U", "0,1;1,0", np.array([[0.0, 1], [1, 0]])),
    ("U", -1, np.full((2, 2), -1.0)),
    ("b", "0.5", np.array([0.5, 0.5])),
    ("b", "1,-2", np.array([1.0, -2.0])),
    ("b", [3, 4], np.array([3.0, 4.0])),
])
def test_set_accepts_words_numbers_literals_and_arrays(param, spec, expected):
    p = Parameters.zeros(3, 2).set("input", param, spec)
    np.testing.assert_array_equal(getattr(p.input, param), expected)
    assert getattr(p.input, param).dtype == np.float64


def test_set_random_seed_draws_within_the_bound():
    U = Parameters.zeros(3, 4).set("output", "U", "random:9").output.U
    assert np.abs(U).max() <= 0.5 and U.std() > 0


def test_set_copies_the_array_it_is_given():
    mine = np.eye(2)
    p = Parameters.zeros(2, 2).set("forget", "U", mine)
    mine[0, 0] = 7.0
    assert p.forget.U[0, 0] == 1.0


def test_copy_is_independent():
    p = Parameters.zeros(2, 2)
    q = p.copy().set("forget", "b", 1.0)
    assert p.forget.b[0] == 0.0 and q.forget.b[0] == 1.0


@pytest.mark.parametrize("gate, param, spec, message", [
    ("update", "W", "zeros", "unknown gate 'update'"),
    ("forget", "V", "zeros", "unknown parameter 'V'"),
    ("forget", "W", "eye", "'eye' is not identity|zeros|ones|random"),
    ("forget", "W", "1,0;0,1", r"forget.W has shape \(2, 2\); expected H×E = \(2, 3\)"),
    ("forget", "W", "1,0;0", "rows have different lengths"),
    ("forget", "b", "1,2,3", r"forget.b has shape \(3,\); expected H = \(2,\)"),
    ("forget", "b", "nan", "not finite"),
    ("forget", "U", np.array([[1, np.inf], [0, 1]]), r"forget.U has inf at \[0, 1\]"),
    ("forget", "W", "random:x", "seed"),
])
def test_set_rejects_bad_values_with_a_sentence(gate, param, spec, message):
    with pytest.raises(ValueError, match=message):
        Parameters.zeros(3, 2).set(gate, param, spec)


@pytest.mark.parametrize("E, H", [(0, 2), (2, 0), (1.5, 2), (True, 2)])
def test_sizes_must_be_whole_and_positive(E, H):
    with pytest.raises(ValueError, match="must be a whole number"):
        Parameters.zeros(E, H)


def test_state_dict_stacks_gates_in_pytorch_order():
    p = Parameters.zeros(2, 1)
    for k, gate in enumerate(("input", "forget", "candidate", "output")):
        p.set(gate, "b", float(k))
    sd = p.state_dict()
    assert {k: v.shape for k, v in sd.items()} == {
        "weight_ih": (4, 2), "weight_hh": (4, 1), "bias_ih": (4,), "bias_hh": (4,)}
    np.testing.assert_array_equal(sd["bias_ih"], [0, 1, 2, 3])


def test_bias_is_the_sum_of_both_pytorch_biases():
    sd = Parameters.zeros(2, 1).state_dict()
    sd["bias_ih"] = np.array([1.0, 2, 3, 4])
    sd["bias_hh"] = np.array([0.5, 0.5, 0.5, 0.5])
    p = Parameters.from_state_dict(sd)
    assert (p.input.b[0], p.forget.b[0], p.candidate.b[0], p.output.b[0]) == (1.5, 2.5, 3.5, 4.5)


def test_save_then_load_is_bit_identical(tmp_path, random_params):
    random_params.save(tmp_path / "w.npz")
    assert Parameters.load(tmp_path / "w.npz") == random_params


def test_float32_state_dict_loads_as_float64(tmp_path):
    sd = {k: v.astype(np.float32) for k, v in Parameters.random(3, 2).state_dict().items()}
    np.savez(tmp_path / "w.npz", **sd)
    p = Parameters.load(tmp_path / "w.npz")
    assert p.forget.W.dtype == np.float64
    np.testing.assert_array_equal(p.input.W, sd["weight_ih"][:2].astype(np.float64))


def test_extra_keys_are_ignored(tmp_path):
    np.savez(tmp_path / "w.npz", note=np.array([1.0]), **Parameters.identity(2, 2).state_dict())
    assert Parameters.load(tmp_path / "w.npz") == Parameters.identity(2, 2)


def test_save_does_not_clobber_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "w.npz"
    target.write_bytes(b"precious")

    def broken_savez(f, **arrays):
        f.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        Parameters.identity(2, 2).save(target)
    assert target.read_bytes() == b"precious"
    assert [p.name for p in tmp_path.iterdir()] == ["w.npz"]


def _npy(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _state(**changes):
    sd = Parameters.identity(3, 2).state_dict()
    sd.update(changes)
    return {k: v for k, v in sd.items() if v is not None}


@pytest.mark.parametrize("write, message", [
    (lambda p: p.write_text("weight_ih,1\n"), "is not an .npz file"),
    (lambda p: p.write_bytes(pickle.dumps({"weight_ih": [1.0]})), "is a Python pickle"),
    (lambda p: p.write_bytes(_npy(np.zeros(3))), "is not an .npz file"),
    (lambda p: np.savez(p, **_state(bias_hh=None)), "no key 'bias_hh'"),
    (lambda p: np.savez(p, **_state(weight_ih=np.zeros((8, 3, 1)))),
     r"key 'weight_ih' has shape \(8, 3, 1\); expected \(4H×E\)"),
    (lambda p: np.savez(p, **_state(weight_hh=np.zeros((8, 3)))), r"key 'weight_hh' has shape \(8, 3\)"),
    (lambda p: np.savez(p, **_state(bias_ih=np.zeros(7))), r"key 'bias_ih' has shape \(7,\); expected \(4H\) = \(8,\)"),
    (lambda p: np.savez(p, **_state(bias_ih=np.full(8, np.nan))), "has nan"),
    (lambda p: np.savez(p, **_state(weight_ih=np.array([{"a": 1}] * 24, dtype=object).reshape(8, 3))),
     "would need pickle"),
    (lambda p: np.savez(p, **_state(weight_ih=np.full((8, 3), "x"))), "not real numbers"),
])
def test_bad_weights_files_are_refused_with_a_reason(tmp_path, write, message):
    path = tmp_path / "w.npz"
    write(path)
    with pytest.raises(ValueError, match=message):
        Parameters.load(path)


def test_torch_save_zip_is_recognised(tmp_path):
    path = tmp_path / "model.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
    with pytest.raises(ValueError, match="PyTorch checkpoint"):
        Parameters.load(path)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        Parameters.load(tmp_path / "nope.npz")


def test_gates_are_views_of_the_stacked_matrices():
    """One LSTM's 4H×E, 4H×H and 4H arrays, gates f, i, g, o; a gate's W is rows of them."""
    p = Parameters.random(3, 2, seed=6)
    assert p.W.shape == (8, 3) and p.U.shape == (8, 2) and p.b.shape == (8,)
    np.testing.assert_array_equal(p.candidate.W, p.W[4:6])
    p.output.U[1, 0] = 9.0  # in place, element by element: the stacked matrix sees it
    assert p.U[7, 0] == 9.0
    with pytest.raises(AttributeError):
        p.forget.W = np.zeros((2, 3))  # rebinding is refused: use set()
