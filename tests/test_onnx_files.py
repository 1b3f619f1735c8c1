"""ONNX models (.onnx): each LSTM node's weights and the attributes that change its math, against onnxruntime.

The fixtures (tests/fixtures/make_onnx_fixtures.py) hold onnxruntime's every h_t and c_t on an
LSTM node written with onnx.helper carrying peepholes, input_forget and clip, on one with
HardSigmoid(0.3, 0.6)/Relu/Softsign, on a torch.onnx.export of a 2-layer nn.LSTM, and on one of
nn.Embedding → nn.LSTM over token ids (--tokens with --embedding, a Gather node or its table); the live
tests build fresh models and run onnxruntime here.  ONNX stacks the gates i, o, f, c in W, R and
both halves of B, and i, o, f in P: the tests spell that out on their own, never through
lstmtrace.onnx_files.  lstmtrace runs in float64 on the very float32 numbers onnxruntime had:
every h_t and c_t agree to 1e-5 · max(1, the largest |value|).

Everything here needs the onnx package and is skipped without it, but the test that says how
to get it.
"""
import io
import pathlib
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

import lstmtrace
from lstmtrace import Parameters, Variant
from lstmtrace.weights import WhichCellError

from conftest import assert_error, assert_ok, invoke

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
E, H, T = 3, 4, 6
RTOL = 1e-5  # float32: times max(1, the largest |h| or |c|)
ONNX_ORDER = ("input", "output", "forget", "candidate")  # W, R, Wb, Rb
ONNX_PEEPHOLES = ("input", "output", "forget")  # P
TORCH_ORDER = ("input", "forget", "candidate", "output")
CASES = {  # fixture: (the variant its node declares, its node's name)
    "peephole_coupled_clip": (Variant(peephole=True, coupled=True, clip=0.8), "lstm_cifg"),
    "activations": (Variant(gate_activation="hard_sigmoid:0.3,0.6", candidate_activation="relu",
                            cell_activation="softsign"), "lstm_hard_relu_softsign"),
}
MISREADINGS = {  # fixture: a plausible misreading of its node
    "peephole_coupled_clip": lambda v: replace(v, clip=None),
    "activations": lambda v: replace(v, gate_activation="hard_sigmoid:0.2,0.5"),
}


def close(got, want, what=""):
    atol = RTOL * max(1.0, float(np.max(np.abs(want))))
    np.testing.assert_allclose(got, want, rtol=0, atol=atol, err_msg=what)


def fixture(case):
    with np.load(FIXTURES / f"onnx_{case}.npz") as npz:
        return {key: npz[key] for key in npz.files}


def numbers(values) -> str:
    return ",".join(repr(float(v)) for v in values)


# -- building models, as a user of onnx.helper would -------------------------------------------

def draw(seed, peepholes=False, directions=1):
    rng = np.random.default_rng(seed)
    w = {"W": rng.uniform(-1, 1, (directions, 4 * H, E)), "R": rng.uniform(-1, 1, (directions, 4 * H, H)),
         "B": rng.uniform(-1, 1, (directions, 8 * H))}
    if peepholes:
        w["P"] = rng.uniform(-1, 1, (directions, 3 * H))
    return {k: a.astype(np.float32) for k, a in w.items()}


def save(path, nodes, initializers=(), inputs=None, outputs=None, opset=14):
    """A model of ``nodes`` (X: T×1×E in, Y out unless told otherwise), written without onnx's checker, so
    that models onnx would refuse can be written too."""
    from onnx import TensorProto, helper, numpy_helper

    inputs = [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["T", 1, E])] if inputs is None else inputs
    outputs = [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)] if outputs is None else outputs
    inits = [a if isinstance(a, TensorProto) else numpy_helper.from_array(a, name) for name, a in initializers]
    graph = helper.make_graph(nodes, "g", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())
    return path


def lstm_node(inputs=("X", "W", "R", "B"), name="lstm", **attrs):
    from onnx import helper

    return helper.make_node("LSTM", list(inputs), ["Y", "Y_h", "Y_c"], name=name, hidden_size=H, **attrs)


def one_lstm(path, w=None, name="lstm", **attrs):
    """A model with one LSTM node taking W, R, B (and P) from initializers."""
    w = draw(0) if w is None else w
    inputs = ["X", "W", "R", "B"] + (["", "", "", "P"] if "P" in w else [])
    return save(path, [lstm_node(inputs, name, **attrs)], w.items())


# -- the file decides the variant, and the numbers are onnxruntime's ----------------------------------

@pytest.mark.parametrize("case", list(CASES))
def test_the_node_declares_its_variant(onnx, case):
    variant, node = CASES[case]
    params = Parameters.load(FIXTURES / f"onnx_{case}.onnx")
    assert params.variant == variant
    assert params.variant_source == "file"
    assert params.variant_note() == f"The file says its cell is {variant.describe()}."
    assert (params.input_size, params.hidden_size) == (E, H)
    from lstmtrace.onnx_files import declared

    assert declared(FIXTURES / f"onnx_{case}.onnx")[0].where == f"{FIXTURES / f'onnx_{case}.onnx'} LSTM node 0 ({node})"


def test_the_docstring_example_says_what_declared_returns(onnx, monkeypatch):
    from lstmtrace.onnx_files import declared

    monkeypatch.chdir(FIXTURES.parent.parent)
    (found,) = declared("tests/fixtures/onnx_peephole_coupled_clip.onnx")
    assert (found.variant, found.where) == (Variant(peephole=True, coupled=True, clip=0.8),
                                            "tests/fixtures/onnx_peephole_coupled_clip.onnx LSTM node 0 (lstm_cifg)")


@pytest.mark.parametrize("case", list(CASES))
def test_every_step_is_onnxruntimes(onnx, case):
    d = fixture(case)
    params = Parameters.load(FIXTURES / f"onnx_{case}.onnx")
    trace = lstmtrace.run(params, d["xs"], d["h0"], d["c0"])
    close(trace.block("hidden", "h"), d["h"], "h")
    close(trace.block("cell", "c"), d["c"], "c")
    # and a misreading of the node is far from it: the attributes were read, not defaulted
    other = MISREADINGS[case](params.variant)
    h_other = lstmtrace.run(Parameters(params.gates, other), d["xs"], d["h0"], d["c0"]).block("hidden", "h")
    assert np.max(np.abs(h_other - d["h"])) > 100 * RTOL


def test_the_weights_are_onnxs_gate_blocks_in_lstmtraces_gates(onnx, tmp_path):
    """Each ONNX block lands in its gate: row r of block k of W holds 100·k + r, and so on."""
    rows = np.arange(H, dtype=np.float32)
    blocks = lambda base, width: np.concatenate([np.tile((base * (k + 1) + rows)[:, None], (1, width))
                                                 for k in range(4)])
    w = {"W": blocks(100, E)[None], "R": blocks(1000, H)[None],
         "B": np.concatenate([blocks(10, 1)[:, 0], blocks(20_000, 1)[:, 0]])[None],
         "P": np.concatenate([5000 * (k + 1) + rows for k in range(3)])[None]}
    for coupled in (0, 1):
        params = Parameters.load(one_lstm(tmp_path / f"m{coupled}.onnx", w, input_forget=coupled))
        assert params.variant == Variant(peephole=True, coupled=bool(coupled))
        for k, gate in enumerate(ONNX_ORDER):
            if coupled and gate == "forget":  # f = 1 − i: ONNX ignores the forget rows, lstmtrace has none
                assert "forget" not in params.gates
                continue
            g = params[gate]
            np.testing.assert_array_equal(g.W, np.tile((100 * (k + 1) + rows)[:, None], (1, E)))
            np.testing.assert_array_equal(g.U, np.tile((1000 * (k + 1) + rows)[:, None], (1, H)))
            np.testing.assert_array_equal(g.b, (10 + 20_000) * (k + 1) + 2 * rows)  # Wb + Rb
            if gate != "candidate":
                np.testing.assert_array_equal(g.P, 5000 * (ONNX_PEEPHOLES.index(gate) + 1) + rows)


def test_a_node_without_b_or_p_has_zero_biases_and_no_peepholes(onnx, tmp_path):
    w = draw(1)
    params = Parameters.load(save(tmp_path / "m.onnx", [lstm_node(["X", "W", "R"])], [("W", w["W"]), ("R", w["R"])]))
    assert params.variant == Variant() and params.variant_source == "file"
    assert not params.b.any()
    assert params.P.size == 0


def test_the_node_says_the_default_lstm_aloud(onnx, tmp_path):
    params = Parameters.load(one_lstm(tmp_path / "m.onnx"))
    assert params.variant_note() == "The file says its cell is the default LSTM."


# -- the torch.onnx.export of a 2-layer nn.LSTM -----------------------------------------------------

TORCH_EXPORT = FIXTURES / "onnx_torch_lstm_2layer.onnx"


@pytest.mark.parametrize("layer", [0, 1])
def test_torch_export_holds_the_modules_own_weights(onnx, tmp_path, layer):
    d = fixture("torch_lstm_2layer")
    np.savez(tmp_path / "state.npz", **{k[len("state_dict."):]: a for k, a in d.items() if k.startswith("state_dict.")})
    from_onnx = Parameters.load(TORCH_EXPORT, layer=layer)
    assert from_onnx.variant_source == "file"
    assert from_onnx == Parameters.load(tmp_path / "state.npz", layer=layer, prefix="lstm.")


def test_torch_export_every_step_of_both_layers(onnx):
    d = fixture("torch_lstm_2layer")
    layer0 = lstmtrace.run(Parameters.load(TORCH_EXPORT, layer=0), d["xs"], d["h0"][0], d["c0"][0])
    close(layer0.block("hidden", "h"), d["layer0.h"], "layer 0 h")
    close(layer0.block("cell", "c"), d["layer0.c"], "layer 0 c")
    layer1 = lstmtrace.run(Parameters.load(TORCH_EXPORT, layer=1), layer0.block("hidden", "h"), d["h0"][1], d["c0"][1])
    close(layer1.block("hidden", "h"), d["layer1.h"], "layer 1 h")
    close(layer1.block("cell", "c"), d["layer1.c"], "layer 1 c")
    close(layer1.block("hidden", "h"), d["torch.h"], "torch's own h")


def test_torch_export_layer_out_of_range_lists_the_nodes(onnx):
    with pytest.raises(WhichCellError, match=r"has no LSTM node 2; its LSTM nodes are 0 \(/lstm/LSTM\), "
                                             r"1 \(/lstm/LSTM_1\)$") as e:
        Parameters.load(TORCH_EXPORT, layer=2)
    assert e.value.option == "layer"


# -- where the weights are stored -------------------------------------------------------------------

def test_constant_nodes_identity_nodes_and_initializers_listed_as_inputs_read_the_same(onnx, tmp_path):
    from onnx import TensorProto, helper, numpy_helper

    w = draw(2, peepholes=True)
    plain = Parameters.load(one_lstm(tmp_path / "plain.onnx", w))
    nodes = [helper.make_node("Constant", [], ["W0"], name="w", value=numpy_helper.from_array(w["W"], "W0")),
             helper.make_node("Identity", ["W0"], ["W1"], name="id1"),
             helper.make_node("Identity", ["R0"], ["R1"], name="id2"),
             lstm_node(["X", "W1", "R1", "B", "", "", "", "P"])]
    inputs = [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["T", 1, E]),
              helper.make_tensor_value_info("B", TensorProto.FLOAT, [1, 8 * H])]  # an initializer, listed as input
    path = save(tmp_path / "stored.onnx", nodes, [("R0", w["R"]), ("B", w["B"]), ("P", w["P"])], inputs)
    assert Parameters.load(path) == plain


def test_float64_and_float16_weights_are_widened_exactly(onnx, tmp_path):
    w = draw(3)
    for dtype in (np.float64, np.float16):
        narrow = {k: a.astype(dtype) for k, a in w.items()}
        params = Parameters.load(one_lstm(tmp_path / f"{np.dtype(dtype).name}.onnx", narrow))
        np.testing.assert_array_equal(params.input.W, narrow["W"][0, :H].astype(np.float64))


def test_layout_1_reads_the_same_weights(onnx, tmp_path):
    w = draw(4)
    assert Parameters.load(one_lstm(tmp_path / "a.onnx", w, layout=1)) == Parameters.load(one_lstm(tmp_path / "b.onnx", w))


def test_weights_in_an_external_data_file_are_read(onnx, tmp_path):
    from onnx import external_data_helper

    path = one_lstm(tmp_path / "plain.onnx", draw(5))
    model = onnx.load(str(path))
    external_data_helper.convert_model_to_external_data(model, all_tensors_to_one_file=True, location="m.data",
                                                        size_threshold=0)
    onnx.save_model(model, str(tmp_path / "external.onnx"))
    assert (tmp_path / "m.data").exists()
    assert Parameters.load(tmp_path / "external.onnx") == Parameters.load(path)
    (tmp_path / "m.data").unlink()
    with pytest.raises(ValueError, match=r"LSTM node 0 \(lstm\): its input W \('W'\) is stored in the external data "
                                         r"file 'm.data', which cannot be read"):
        Parameters.load(tmp_path / "external.onnx")


# -- the command line --------------------------------------------------------------------------------

@pytest.fixture
def xs_csv(tmp_path):
    d = fixture("peephole_coupled_clip")
    np.save(tmp_path / "xs.npy", d["xs"])
    return tmp_path / "xs.npy"


def test_cli_runs_an_onnx_model_and_says_the_file_chose_the_variant(onnx, xs_csv):
    d = fixture("peephole_coupled_clip")
    path = FIXTURES / "onnx_peephole_coupled_clip.onnx"
    common = ("run", "--weights", path, "--xs", xs_csv, "--h", numbers(d["h0"]), "--c", numbers(d["c0"]))
    text = " ".join(assert_ok(invoke(*common)).stdout.split())
    assert ("The file says its cell is peepholes, coupled input and forget gates (f = 1 - i), clip 0.8." in text)
    frame = pd.read_csv(io.StringIO(assert_ok(invoke(*common, "--format", "csv")).stdout))
    h = frame[(frame.gate == "hidden") & (frame.quantity == "h")].pivot(index="step", columns="unit", values="value")
    close(h.to_numpy(), d["h"])
    shown = " ".join(assert_ok(invoke("params", "--show", path)).stdout.split())
    assert "The file says its cell is peepholes" in shown


def test_cli_reads_layer_1_of_the_torch_export(onnx, tmp_path):
    d = fixture("torch_lstm_2layer")
    np.save(tmp_path / "layer0_h.npy", d["layer0.h"])
    result = assert_ok(invoke("run", "--weights", TORCH_EXPORT, "--layer", 1, "--xs", tmp_path / "layer0_h.npy",
                              "--h", numbers(d["h0"][1]), "--c", numbers(d["c0"][1]), "--format", "csv"))
    frame = pd.read_csv(io.StringIO(result.stdout))
    c = frame[(frame.gate == "cell") & (frame.quantity == "c")].pivot(index="step", columns="unit", values="value")
    close(c.to_numpy(), d["layer1.c"])


EMBEDDING_EXPORT = FIXTURES / "onnx_torch_embedding_lstm.onnx"


@pytest.mark.parametrize("key", ["gather", "initializer"])
def test_cli_tokens_through_the_exports_embedding_are_onnxruntimes(onnx, key):
    """--embedding names the export's Gather node or its table's initializer: h_t is onnxruntime's on the ids."""
    d = fixture("torch_embedding_lstm")
    result = assert_ok(invoke("run", "--weights", EMBEDDING_EXPORT, "--tokens", ",".join(map(str, d["tokens"])),
                              "--embedding", str(d[key]), "--format", "csv"))
    frame = pd.read_csv(io.StringIO(result.stdout))
    h = frame[(frame.gate == "hidden") & (frame.quantity == "h")].pivot(index="step", columns="unit", values="value")
    close(h.to_numpy(), d["h"])
    from lstmtrace.onnx_files import embedding

    table = embedding(EMBEDDING_EXPORT, str(d[key]))
    assert table.dtype == np.float64
    np.testing.assert_array_equal(table, d["table"])  # the float32 table, widened exactly


@pytest.mark.parametrize("key, says", [
    ("embed", ["has no Gather node or initializer 'embed'; its Gather nodes over a table are "
               "'/embedding/Gather' (embedding.weight, 12×3)"]),
    ("/lstm/Gather", ["Gather node '/lstm/Gather': its input data ('/lstm/Shape_output_0') is computed when the "
                      "model runs"]),
])
def test_cli_an_embedding_key_that_is_no_table_is_one_line(onnx, key, says):
    assert_error(invoke("run", "--weights", EMBEDDING_EXPORT, "--tokens", "3,1", "--embedding", key), "'--embedding'",
                 str(EMBEDDING_EXPORT), *says)


def test_embedding_refusals(onnx, tmp_path):
    from onnx import TensorProto, helper

    from lstmtrace.errors import OptionError
    from lstmtrace.onnx_files import embedding

    table = np.arange(12, dtype=np.float32).reshape(4, 3)
    gather = helper.make_node("Gather", ["table", "ids"], ["x"], name="by_column", axis=1)
    ids = [helper.make_tensor_value_info("ids", TensorProto.INT64, ["T"])]
    path = save(tmp_path / "axis1.onnx", [gather], [("table", table)], inputs=ids)
    with pytest.raises(OptionError, match=r"Gather node 'by_column' gathers along axis 1; an embedding looks up "
                                          r"rows \(axis 0\)$"):
        embedding(path, "by_column")
    np.testing.assert_array_equal(embedding(path, "table"), table)  # the initializer itself is still a table
    with pytest.raises(OptionError, match="holds int64 values"):
        embedding(save(tmp_path / "int.onnx", [], [("table", table.astype(np.int64))], inputs=ids), "table")
    with pytest.raises(OptionError, match="has no Gather node or initializer 'x'; it has no Gather node over a "
                                          "stored table"):
        embedding(FIXTURES / "onnx_gru.onnx", "x")


@pytest.mark.parametrize("options, flag, asked", [
    (("--variant", "np"), "'--variant'", "ask for lstmtrace's default LSTM"),
    (("--clip", "0.5"), "'--clip'", "ask for clip 0.5"),
    (("--peephole", "--coupled"), "'--peephole'", "ask for peepholes, coupled input and forget gates (f = 1 - i)"),
])
def test_cli_variant_options_that_contradict_the_file_name_both(onnx, xs_csv, options, flag, asked):
    path = FIXTURES / "onnx_peephole_coupled_clip.onnx"
    assert_error(invoke("run", "--weights", path, "--xs", xs_csv, *options), flag,
                 f"{path} LSTM node 0 (lstm_cifg) says its cell is peepholes, coupled input and forget gates "
                 "(f = 1 - i), clip 0.8", asked)


def test_cli_variant_options_that_agree_with_the_file_are_fine(onnx, xs_csv):
    assert_ok(invoke("run", "--weights", FIXTURES / "onnx_peephole_coupled_clip.onnx", "--xs", xs_csv,
                     "--peephole", "--coupled", "--clip", "0.8"))


@pytest.mark.parametrize("options, flag", [(("--prefix", "lstm."), "'--prefix'"),
                                           (("--weights-layout", "torch"), "'--weights-layout'")])
def test_cli_refuses_state_dict_options(onnx, xs_csv, options, flag):
    assert_error(invoke("run", "--weights", TORCH_EXPORT, "--xs", xs_csv, *options), flag)


# -- refusals: one line each, naming the file ----------------------------------------------------------

def _no_lstm(tmp_path):
    from onnx import helper

    return save(tmp_path / "add.onnx", [helper.make_node("Add", ["X", "X"], ["Y"], name="add")]), \
        ["is an ONNX model with no LSTM node (its ops: Add)"]


def _gru(tmp_path):
    return FIXTURES / "onnx_gru.onnx", ["is an ONNX model with no LSTM node: it has GRU node 'gru' (a GRU, not an LSTM)"]


def _rnn(tmp_path):
    from onnx import helper

    rng = np.random.default_rng(6)
    node = helper.make_node("RNN", ["X", "W", "R"], ["Y"], name="rnn", hidden_size=H)
    return save(tmp_path / "rnn.onnx", [node], [("W", rng.uniform(-1, 1, (1, H, E)).astype(np.float32)),
                                                ("R", rng.uniform(-1, 1, (1, H, H)).astype(np.float32))]), \
        ["it has RNN node 'rnn' (a simple RNN, not an LSTM)"]


def _lstm_in_a_loop(tmp_path):
    from onnx import TensorProto, helper

    w = draw(7)
    body = helper.make_graph(
        [lstm_node(["X", "W", "R", "B"])], "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []), helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("cond", TensorProto.BOOL, [])])
    loop = helper.make_node("Loop", ["", ""], [], name="loop", body=body)
    return save(tmp_path / "loop.onnx", [loop], w.items()), \
        ["no LSTM node in its main graph: its LSTM nodes are inside the subgraph of node 'loop' (Loop), which "
         "lstmtrace does not read"]


def _leaky_relu(tmp_path):
    return one_lstm(tmp_path / "leaky.onnx", activations=["LeakyRelu", "Tanh", "Tanh"]), \
        ["LSTM node 0 (lstm): its activation f (the gates') is LeakyRelu(alpha=0.01), which lstmtrace cannot compute"]


def _affine(tmp_path):
    return one_lstm(tmp_path / "affine.onnx", activations=["Sigmoid", "Affine", "Tanh"], activation_alpha=[2.0],
                    activation_beta=[0.5]), \
        ["its activation g (the candidate's) is Affine(alpha=2, beta=0.5), which lstmtrace cannot compute"]


def _affine_without_alpha(tmp_path):
    return one_lstm(tmp_path / "affine.onnx", activations=["Sigmoid", "Tanh", "Affine"]), \
        ["its activation h (the cell's) is Affine without activation_alpha and activation_beta"]


def _softplus(tmp_path):
    return one_lstm(tmp_path / "softplus.onnx", activations=["Sigmoid", "Softplus", "Tanh"]), \
        ["is Softplus(), which lstmtrace cannot compute"]


def _hard_sigmoid_falling(tmp_path):
    return one_lstm(tmp_path / "falling.onnx", activations=["HardSigmoid", "Tanh", "Tanh"], activation_alpha=[-0.2],
                    activation_beta=[0.5]), \
        ["its activation f (the gates') is HardSigmoid(alpha=-0.2, beta=0.5), which lstmtrace cannot compute"]


def _clip_not_positive(tmp_path):
    return one_lstm(tmp_path / "clip.onnx", clip=-1.0), ["LSTM node 0 (lstm): clip must be a finite number > 0"]


def _made_up_activation(tmp_path):
    return one_lstm(tmp_path / "gelu.onnx", activations=["Sigmoid", "Gelu", "Tanh"]), \
        ["its activation g (the candidate's) is 'Gelu', which ONNX's LSTM does not define"]


def _unknown_attribute(tmp_path):
    return one_lstm(tmp_path / "extra.onnx", zoneout=0.1), \
        ["LSTM node 0 (lstm) has attribute 'zoneout', which ONNX's LSTM does not define"]


def _w_a_graph_input(tmp_path):
    from onnx import TensorProto, helper

    w = draw(8)
    inputs = [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["T", 1, E]),
              helper.make_tensor_value_info("W", TensorProto.FLOAT, [1, 4 * H, E])]
    return save(tmp_path / "w_input.onnx", [lstm_node()], [("R", w["R"]), ("B", w["B"])], inputs), \
        ["LSTM node 0 (lstm): its input W ('W') is the graph input 'W', given when the model runs"]


def _w_computed_at_run_time(tmp_path):
    from onnx import TensorProto, helper

    w = draw(9)
    inputs = [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["T", 1, E]),
              helper.make_tensor_value_info("scale", TensorProto.FLOAT, [])]
    nodes = [helper.make_node("Mul", ["W0", "scale"], ["W"], name="mul"), lstm_node()]
    return save(tmp_path / "w_mul.onnx", nodes, [("W0", w["W"]), ("R", w["R"]), ("B", w["B"])], inputs), \
        ["its input W ('W') is computed when the model runs, by node 'mul' (Mul), from the graph input 'scale'"]


def _w_folded_constants(tmp_path):
    from onnx import helper

    w = draw(10)
    nodes = [helper.make_node("Add", ["W0", "W0"], ["W"], name="double"), lstm_node()]
    return save(tmp_path / "w_add.onnx", nodes, [("W0", w["W"] / 2), ("R", w["R"]), ("B", w["B"])]), \
        ["its input W ('W') is computed when the model runs, by node 'double' (Add), from stored constants: "
         "save the model with its constants folded"]


def _integer_weights(tmp_path):
    w = draw(11)
    return one_lstm(tmp_path / "int.onnx", {**w, "W": w["W"].astype(np.int64)}), \
        ["its input W ('W') holds int64 values; lstmtrace reads float32, float16, float64 weights"]


def _wrong_hidden_size(tmp_path):
    from onnx import helper

    w = draw(12)
    node = helper.make_node("LSTM", ["X", "W", "R", "B"], ["Y"], name="lstm", hidden_size=H + 1)
    return save(tmp_path / "h5.onnx", [node], w.items()), \
        [f"W has shape (1, {4 * H}, {E}); a forward LSTM of hidden size H = {H + 1} has (1, 4H, E) = "
         f"(1, {4 * (H + 1)}, {E})"]


def _not_onnx(tmp_path):
    (tmp_path / "notes.onnx").write_text("these are not weights\n")
    return tmp_path / "notes.onnx", ["is not an ONNX model (as torch.onnx.export and onnx.save write)"]


def _a_zip(tmp_path):
    Parameters.random(E, H).save(tmp_path / "w.npz")
    (tmp_path / "w.onnx").write_bytes((tmp_path / "w.npz").read_bytes())
    return tmp_path / "w.onnx", ["is not an ONNX model"]


def _empty(tmp_path):
    (tmp_path / "empty.onnx").write_bytes(b"")
    return tmp_path / "empty.onnx", ["is empty, not an ONNX model"]


def _cut_short(tmp_path):
    data = TORCH_EXPORT.read_bytes()
    (tmp_path / "cut.onnx").write_bytes(data[: len(data) // 2])
    return tmp_path / "cut.onnx", ["is truncated or corrupt: protobuf cannot parse it"]


def _cut_after_the_graph(tmp_path):
    import onnx

    model = onnx.load(str(TORCH_EXPORT))
    del model.opset_import[:]
    data = model.SerializeToString()
    (tmp_path / "cut.onnx").write_bytes(data)
    return tmp_path / "cut.onnx", ["is truncated or corrupt: it has a graph but no opset_import"]


def _ends_before_its_graph(tmp_path):
    (tmp_path / "cut.onnx").write_bytes(TORCH_EXPORT.read_bytes()[:2])
    return tmp_path / "cut.onnx", ["is truncated or corrupt: it ends before its graph"]


REFUSALS = {f.__name__[1:]: f for f in (
    _no_lstm, _gru, _rnn, _lstm_in_a_loop, _leaky_relu, _affine, _affine_without_alpha,
    _softplus, _hard_sigmoid_falling, _clip_not_positive, _made_up_activation, _unknown_attribute, _w_a_graph_input, _w_computed_at_run_time,
    _w_folded_constants, _integer_weights, _wrong_hidden_size, _not_onnx, _a_zip, _empty, _cut_short,
    _cut_after_the_graph, _ends_before_its_graph)}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_refusals_are_one_line_naming_the_file(onnx, tmp_path, xs_csv, case):
    path, says = REFUSALS[case](tmp_path)
    with pytest.raises(ValueError) as e:
        Parameters.load(path)
    assert str(e.value).startswith(str(path)) and "\n" not in str(e.value)
    assert_error(invoke("run", "--weights", path, "--xs", xs_csv), "'--weights'", str(path), *says)


def test_a_missing_layer_lists_the_nodes_on_the_command_line(onnx, xs_csv):
    assert_error(invoke("run", "--weights", TORCH_EXPORT, "--layer", 5, "--xs", xs_csv), "'--layer'",
                 f"{TORCH_EXPORT} has no LSTM node 5; its LSTM nodes are 0 (/lstm/LSTM), 1 (/lstm/LSTM_1)")


def test_without_onnx_it_says_how_to_get_it(without, xs_csv):
    without("onnx")
    with pytest.raises(ImportError, match=r"reading onnx_gru.onnx needs the onnx package: pip install "
                                          r"'lstmtrace\[onnx\]'"):
        Parameters.load(FIXTURES / "onnx_gru.onnx")
    assert_error(invoke("run", "--weights", FIXTURES / "onnx_gru.onnx", "--xs", xs_csv), "'--weights'",
                 "pip install 'lstmtrace[onnx]'")


def test_a_missing_file_is_a_missing_file(onnx, tmp_path):
    with pytest.raises(FileNotFoundError, match="no file"):
        Parameters.load(tmp_path / "nowhere.onnx")


@pytest.mark.parametrize("damage", ["cut", "flip"])
def test_every_cut_and_every_flipped_byte_is_read_or_one_sentence(onnx, tmp_path, damage):
    """Each prefix of a small model, and each byte of it inverted in turn: the weights, or a ValueError that
    names the file, on one line; never another exception, never a warning (pytest makes those errors)."""
    data = (FIXTURES / "onnx_peephole_coupled_clip.onnx").read_bytes()
    path = tmp_path / "damaged.onnx"
    outcomes = {"read": 0, "refused": 0}
    for k in range(len(data)):
        path.write_bytes(data[:k] if damage == "cut" else data[:k] + bytes([data[k] ^ 0xFF]) + data[k + 1:])
        try:
            Parameters.load(path)
            outcomes["read"] += 1
        except ValueError as e:
            assert str(e).startswith(str(path)) and "\n" not in str(e), str(e)
            outcomes["refused"] += 1
    assert outcomes["refused"] > 0


# -- live: onnxruntime on fresh models -----------------------------------------------------------------

LIVE = {  # name: (LSTM attributes, peepholes, the variant lstmtrace must declare)
    "plain": ({}, False, Variant()),
    "peephole_coupled_clip": ({"input_forget": 1, "clip": 0.6}, True, Variant(peephole=True, coupled=True, clip=0.6)),
    "hard_sigmoid_defaults": ({"activations": ["HardSigmoid", "Tanh", "Tanh"]}, False,
                              Variant(gate_activation="hard_sigmoid:0.2,0.5")),
    "affine_identity_relu": ({"activations": ["Sigmoid", "Affine", "Relu"], "activation_alpha": [1.0],
                              "activation_beta": [0.0]}, True,
                             Variant(peephole=True, candidate_activation="linear", cell_activation="relu")),
    "tanh_gates_softsign_clip": ({"activations": ["Tanh", "Softsign", "Tanh"], "clip": 1.5}, False,
                                 Variant(gate_activation="tanh", candidate_activation="softsign", clip=1.5)),
    "hard_sigmoid_lower_case": ({"activations": ["hardsigmoid", "tanh", "softsign"], "activation_alpha": [0.25],
                                 "activation_beta": [0.4]}, True,
                                Variant(peephole=True, gate_activation="hard_sigmoid:0.25,0.4",
                                        cell_activation="softsign")),
}


def live_model(path, attrs, w, layout=0, dtype=np.float32):
    """One LSTM node with X, initial_h, initial_c as graph inputs (batch 1), checked by onnx and saved."""
    import onnx
    from onnx import helper, numpy_helper

    elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    inputs = ["X", "W", "R", "B", "", "initial_h", "initial_c"] + (["P"] if "P" in w else [])
    batch_first = layout == 1
    graph = helper.make_graph(
        [lstm_node(inputs, **attrs)], "live",
        [helper.make_tensor_value_info("X", elem, [1, "T", E] if batch_first else ["T", 1, E]),
         helper.make_tensor_value_info("initial_h", elem, [1, 1, H]),
         helper.make_tensor_value_info("initial_c", elem, [1, 1, H])],
        [helper.make_tensor_value_info("Y", elem, [1, "T", 1, H] if batch_first else ["T", 1, 1, H]),
         helper.make_tensor_value_info("Y_h", elem, [1, 1, H]),
         helper.make_tensor_value_info("Y_c", elem, [1, 1, H])],
        [numpy_helper.from_array(a.astype(dtype), k) for k, a in w.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save_model(model, str(path))
    return model


def live_data(seed, dtype=np.float32):
    rng = np.random.default_rng(seed + 1000)
    xs = (2 * rng.uniform(-1, 1, (T, E))).astype(dtype)
    h0, c0 = (rng.uniform(-1, 1, H).astype(dtype) for _ in range(2))
    return xs, h0, c0


@pytest.mark.parametrize("seed", [11, 12])
@pytest.mark.parametrize("case", list(LIVE))
def test_live_onnxruntime_parity(onnx, tmp_path, case, seed):
    ort = pytest.importorskip("onnxruntime")
    attrs, peepholes, variant = LIVE[case]
    model = live_model(tmp_path / "live.onnx", attrs, draw(seed, peepholes))
    xs, h0, c0 = live_data(seed)
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    feed = lambda t: {"X": xs[:t, None], "initial_h": h0[None, None], "initial_c": c0[None, None]}
    h = session.run(["Y"], feed(T))[0][:, 0, 0].astype(np.float64)
    c = np.array([session.run(["Y_c"], feed(t))[0].reshape(H) for t in range(1, T + 1)], np.float64)

    params = Parameters.load(tmp_path / "live.onnx")
    assert params.variant == variant and params.variant_source == "file"
    trace = lstmtrace.run(params, xs.astype(np.float64), h0.astype(np.float64), c0.astype(np.float64))
    close(trace.block("hidden", "h"), h, "h")
    close(trace.block("cell", "c"), c, "c")


@pytest.mark.parametrize("layout", [0, 1])
def test_live_layout_changes_only_x_and_y(onnx, tmp_path, layout):
    """onnxruntime's CPU LSTM refuses layout=1; onnx's own reference evaluator (float64, which computes
    peepholes but not activations, clip or input_forget: ORACLES.md) runs both layouts."""
    from onnx.reference import ReferenceEvaluator

    model = live_model(tmp_path / "live.onnx", {"layout": layout}, draw(13, peepholes=True), layout, np.float64)
    xs, h0, c0 = live_data(13, np.float64)
    X = xs[None] if layout else xs[:, None]
    Y = ReferenceEvaluator(model).run(["Y"], {"X": X, "initial_h": h0[None, None], "initial_c": c0[None, None]})[0]
    h = Y[0, :, 0] if layout else Y[:, 0, 0]
    params = Parameters.load(tmp_path / "live.onnx")
    assert params.variant == Variant(peephole=True)
    np.testing.assert_allclose(lstmtrace.run(params, xs, h0, c0).block("hidden", "h"), h, rtol=0, atol=1e-12)
