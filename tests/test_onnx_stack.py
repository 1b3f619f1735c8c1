"""ONNX stacks and directions: every LSTM node of a model, each direction it runs, against onnxruntime.

The fixtures (tests/fixtures/make_onnx_fixtures.py) hold onnxruntime's every h_t of each direction of
each LSTM node, and each direction's final c (Y_c), on a torch.onnx.export of a 2-layer bidirectional
nn.LSTM, on an onnx.helper reverse node feeding a bidirectional one whose directions have different
activations (with peepholes, input_forget and clip), and on a bidirectional node run from a given initial
state.  ONNX's Y lays out a reverse direction in time order (row t: the step that read x_t), as lstmtrace
reports a reverse cell's steps, so the rows compare as they are; a reverse direction's Y_c is the c of
the step that read x_1.  Everything here needs the onnx package and is skipped without it; onnxruntime is
never imported (the reference values are the committed .npz files).
"""
import pathlib

import numpy as np
import pytest

import lstmtrace
from lstmtrace import Variant
from lstmtrace.errors import OptionError
from test_onnx_files import close, fixture  # to onnxruntime's float32; the fixture files' arrays

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
E, H, T = 3, 4, 6
TORCH_EXPORT = FIXTURES / "onnx_torch_bilstm_2layer.onnx"
HELPER_STACK = FIXTURES / "onnx_reverse_bidirectional.onnx"
HELPER_VARIANTS = {  # (layer, direction): the variant the node declares for that direction
    (0, "reverse"): Variant(peephole=True, clip=1.2, gate_activation="hard_sigmoid:0.2,0.5",
                            cell_activation="softsign"),
    (1, "forward"): Variant(peephole=True, coupled=True, clip=0.7, gate_activation="hard_sigmoid:0.25,0.45",
                            cell_activation="softsign"),
    (1, "reverse"): Variant(peephole=True, coupled=True, clip=0.7, gate_activation="hard_sigmoid:0.35,0.55",
                            candidate_activation="relu"),
}


def final_c(trace, direction):
    """The c a direction ends with: the last step's for forward, step 1's for reverse (it ran x_1 last)."""
    return trace.block("cell", "c")[-1 if direction == "forward" else 0]


def assert_every_cell_is_onnxruntimes(stack, d, prefix="layer{k}."):
    for k in stack.layers:
        for direction in stack.directions(k):
            trace, key = stack.cell(k, direction), prefix.format(k=k) + direction
            close(trace.block("hidden", "h"), d[f"{key}.h"], f"{key} h")
            close(final_c(trace, direction), d[f"{key}.c_final"], f"{key} final c")


# -- parity: every layer, every direction ---------------------------------------------------------------

def test_torch_export_of_a_bidirectional_2layer_lstm_is_onnxruntimes(onnx):
    d = fixture("torch_bilstm_2layer")
    layers = lstmtrace.load_layers(TORCH_EXPORT)
    assert [[cell.direction for cell in cells] for cells in layers] == [["forward", "reverse"]] * 2
    assert all(cell.params.variant == Variant() and cell.params.variant_source == "file"
               for cells in layers for cell in cells)
    assert [cell.params.input_size for cells in layers for cell in cells] == [E, E, 2 * H, 2 * H]
    stack = lstmtrace.run_stack(layers, d["xs"])
    assert_every_cell_is_onnxruntimes(stack, d)


def test_helper_reverse_into_bidirectional_with_its_own_activations_is_onnxruntimes(onnx):
    d = fixture("reverse_bidirectional")
    layers = lstmtrace.load_layers(HELPER_STACK)
    assert {(k, cell.direction): cell.params.variant for k, cells in enumerate(layers) for cell in cells} \
        == HELPER_VARIANTS
    stack = lstmtrace.run_stack(layers, d["xs"])
    assert_every_cell_is_onnxruntimes(stack, d)


def test_each_direction_reads_its_own_half_of_w_r_b_p(onnx):
    """Index 0 of the num_directions axis is the forward cell, index 1 the reverse one."""
    import onnx as onnx_
    from onnx import numpy_helper

    model = onnx_.load(str(HELPER_STACK))
    stored = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in model.graph.initializer}
    forward, reverse = lstmtrace.load_layers(HELPER_STACK, layer=1, direction="both")[0]
    for d, cell in enumerate((forward, reverse)):
        np.testing.assert_array_equal(cell.params.input.W, stored["W1"][d, :H])  # ONNX's i block
        np.testing.assert_array_equal(cell.params.output.U, stored["R1"][d, H:2 * H])  # o
        np.testing.assert_array_equal(cell.params.candidate.b, stored["B1"][d, 3 * H:4 * H]
                                      + stored["B1"][d, 7 * H:])  # c: Wb + Rb
        np.testing.assert_array_equal(cell.params.input.P, stored["P1"][d, :H])


@pytest.mark.parametrize("path, case", [(TORCH_EXPORT, "torch_bilstm_2layer"), (HELPER_STACK, "reverse_bidirectional")])
def test_one_reverse_cell_alone(onnx, path, case):
    d = fixture(case)
    (cells,) = lstmtrace.load_layers(path, layer=0, direction="reverse")
    assert [cell.direction for cell in cells] == ["reverse"]
    stack = lstmtrace.run_stack([cells], d["xs"])
    close(stack.cell(0, "reverse").block("hidden", "h"), d["layer0.reverse.h"])
    close(final_c(stack.cell(0), "reverse"), d["layer0.reverse.c_final"])


def test_layer_1s_reverse_cell_on_layer_0s_h(onnx):
    d = fixture("torch_bilstm_2layer")
    (cells,) = lstmtrace.load_layers(TORCH_EXPORT, layer=1, direction="reverse")
    xs = np.concatenate([d["layer0.forward.h"], d["layer0.reverse.h"]], axis=1)
    close(lstmtrace.run_stack([cells], xs).cell(0).block("hidden", "h"), d["layer1.reverse.h"])


def test_a_bidirectional_node_from_the_state_it_is_given(onnx):
    """initial_h and initial_c as graph inputs: one layer takes them as h0 and c0 (--h/--c), per direction."""
    d = fixture("bidirectional")
    path = FIXTURES / "onnx_bidirectional.onnx"
    cells = lstmtrace.weights.read_layer(path, direction="both")
    assert [cell.direction for cell in cells] == ["forward", "reverse"]
    for k, cell in enumerate(cells):
        params = lstmtrace.Parameters(cell.gates, cell.variant)
        trace = lstmtrace.run(params, d["xs"], d["h0"][k], d["c0"][k], direction=cell.direction)
        close(trace.block("hidden", "h"), d[f"{cell.direction}.h"], cell.direction)
        close(final_c(trace, cell.direction), d[f"{cell.direction}.c_final"], cell.direction)
    with pytest.raises(OptionError, match=r"onnx_bidirectional.onnx layer 0 is bidirectional: choose forward or reverse"):
        lstmtrace.Parameters.load(path)


# -- building models, as a user of onnx.helper would -------------------------------------------------

def draw(seed, directions=1, E_=E):
    rng = np.random.default_rng(seed)
    return {"W": rng.uniform(-1, 1, (directions, 4 * H, E_)).astype(np.float32),
            "R": rng.uniform(-1, 1, (directions, 4 * H, H)).astype(np.float32),
            "B": rng.uniform(-1, 1, (directions, 8 * H)).astype(np.float32)}


def save(path, nodes, initializers=(), inputs=None):
    """A model of ``nodes`` (X: T×1×E in, every LSTM's Y out), written without onnx's checker."""
    from onnx import TensorProto, helper, numpy_helper

    inputs = [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["T", 1, E])] if inputs is None else inputs
    outputs = [helper.make_tensor_value_info(n.output[0], TensorProto.FLOAT, None) for n in nodes if n.op_type == "LSTM"]
    inits = [numpy_helper.from_array(np.asarray(a), name) for name, a in initializers]
    model = helper.make_model(helper.make_graph(nodes, "g", inputs, outputs, inits),
                              opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())
    return path


def lstm(k, x, directions=1, inputs=(), **attrs):
    """LSTM node ``lstm{k}`` reading ``x`` and the weights W{k}, R{k}, B{k}, then ``inputs`` (sequence_lens, …)."""
    from onnx import helper

    direction = {1: "forward", 2: "bidirectional"}[directions]
    return helper.make_node("LSTM", [x, f"W{k}", f"R{k}", f"B{k}", *inputs], [f"Y{k}", f"Y_h{k}", f"Y_c{k}"],
                            name=f"lstm{k}", hidden_size=H, direction=attrs.pop("direction", direction), **attrs)


def weights(k, directions=1, E_=E):
    return [(f"{name}{k}", a) for name, a in draw(k, directions, E_).items()]


def two_layers(path, between, initializers=(), directions=2, X1=None, inputs=None):
    """lstm0 (``directions``) → the nodes ``between`` → lstm1 (forward, reading ``X1``)."""
    E1 = directions * H
    nodes = [lstm(0, "X", directions), *between, lstm(1, X1 or between[-1].output[0])]
    return save(path, nodes, [*weights(0, directions), *weights(1, 1, E1), *initializers], inputs)


def node(op, inputs, output, **attrs):
    from onnx import helper

    return helper.make_node(op, inputs, [output], name=op.lower(), **attrs)


TORCH_BETWEEN = lambda: [node("Transpose", ["Y0"], "t", perm=[0, 2, 1, 3]), node("Reshape", ["t", "shape"], "r")]
SHAPE = [("shape", np.array([0, 0, -1], np.int64))]


# -- what --layer all follows between two nodes ------------------------------------------------------------

def test_the_layouts_torch_writes_are_followed(onnx, tmp_path):
    """Y → Transpose(0, 2, 1, 3) → Reshape(0, 0, −1) after a bidirectional node, Y → Squeeze(1) after a forward
    one."""
    both = lstmtrace.load_layers(two_layers(tmp_path / "both.onnx", TORCH_BETWEEN(), SHAPE))
    assert [[c.direction for c in cells] for cells in both] == [["forward", "reverse"], ["forward"]]
    one = two_layers(tmp_path / "one.onnx", [node("Squeeze", ["Y0", "axes"], "s")],
                     [("axes", np.array([1], np.int64))], directions=1)
    assert len(lstmtrace.load_layers(one)) == 2


def test_identity_and_dropout_keep_the_layout(onnx, tmp_path):
    between = [node("Identity", ["Y0"], "i"), node("Transpose", ["i"], "t", perm=[0, 2, 1, 3]),
               node("Reshape", ["t", "shape"], "r"), node("Dropout", ["r"], "drop")]
    assert len(lstmtrace.load_layers(two_layers(tmp_path / "m.onnx", between, SHAPE))) == 2


def test_layout_1_nodes_are_followed(onnx, tmp_path):
    from onnx import TensorProto, helper

    nodes = [lstm(0, "X", 2, layout=1), node("Reshape", ["Y0", "shape"], "r"), lstm(1, "r", layout=1)]
    inputs = [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, "T", E])]
    path = save(tmp_path / "m.onnx", nodes, [*weights(0, 2), *weights(1, 1, 2 * H), *SHAPE], inputs)
    assert len(lstmtrace.load_layers(path)) == 2
    # (B, T, D, H) → Transpose(0, 1, 3, 2) → (B, T, H·D): each unit's directions side by side
    nodes[1:2] = [node("Transpose", ["Y0"], "t", perm=[0, 1, 3, 2]), node("Reshape", ["t", "shape"], "r")]
    path = save(tmp_path / "m.onnx", nodes, [*weights(0, 2), *weights(1, 1, 2 * H), *SHAPE], inputs)
    with pytest.raises(ValueError, match=r"laid out as \(batch, time, unit·direction\), not \(batch, time, "
                                         r"direction·unit\) \(each step's forward h, then its reverse h\)"):
        lstmtrace.load_layers(path)


def _interleaved(tmp_path):
    between = [node("Transpose", ["Y0"], "t", perm=[0, 2, 3, 1]), node("Reshape", ["t", "shape"], "r")]
    return two_layers(tmp_path / "m.onnx", between, SHAPE), \
        ("LSTM node 1 (lstm1) reads the Y of LSTM node 0 (lstm0) laid out as (time, batch, unit·direction), not "
         "(time, batch, direction·unit) (each step's forward h, then its reverse h), through 'transpose' (Transpose), "
         "'reshape' (Reshape)")


def _time_and_batch_swapped(tmp_path):
    between = [node("Transpose", ["Y0"], "t", perm=[2, 0, 1, 3]), node("Reshape", ["t", "shape"], "r")]
    return two_layers(tmp_path / "m.onnx", between, SHAPE), \
        "laid out as (batch, time, direction·unit), not (time, batch, direction·unit)"


def _time_and_batch_flattened(tmp_path):
    """Flatten(axis=2) of (T, B, D, H) is (T·B, D·H): one sequence only when the batch is 1."""
    between = [node("Transpose", ["Y0"], "t", perm=[0, 2, 1, 3]), node("Flatten", ["t"], "f", axis=2),
               node("Unsqueeze", ["f", "one"], "u")]
    return two_layers(tmp_path / "m.onnx", between, [("one", np.array([1], np.int64))]), \
        "laid out as (time·batch, 1, direction·unit), not (time, batch, direction·unit)"


def _a_relu_between(tmp_path):
    between = [*TORCH_BETWEEN(), node("Relu", ["r"], "relu")]
    return two_layers(tmp_path / "m.onnx", between, SHAPE), \
        ("LSTM node 1 (lstm1) reads node 'relu' (Relu) between it and LSTM node 0 (lstm0), which computes on the "
         "h_t: --layer all feeds each layer the h of the layer before as it is")


def _a_graph_input(tmp_path):
    from onnx import TensorProto, helper

    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["T", 1, E]) for n in ("X", "X1")]
    return two_layers(tmp_path / "m.onnx", [], directions=1, X1="X1", inputs=inputs), \
        "LSTM node 1 (lstm1) reads the graph input 'X1', not the Y of LSTM node 0 (lstm0)"


def _y_h(tmp_path):
    return two_layers(tmp_path / "m.onnx", [], directions=1, X1="Y_h0"), \
        "LSTM node 1 (lstm1) reads the Y_h of LSTM node 0 (lstm0), not the Y of LSTM node 0 (lstm0)"


def _skipping_a_layer(tmp_path):
    nodes = [lstm(0, "X"), node("Squeeze", ["Y0", "axes"], "s"), lstm(1, "s"), lstm(2, "s")]
    return save(tmp_path / "m.onnx", nodes, [*weights(0), *weights(1, 1, H), *weights(2, 1, H),
                                             ("axes", np.array([1], np.int64))]), \
        "LSTM node 2 (lstm2) reads the Y of LSTM node 0 (lstm0), not the Y of LSTM node 1 (lstm1)"


def _squeezing_the_batch(tmp_path):
    between = [node("Squeeze", ["Y0", "axes"], "s"), node("Squeeze", ["s", "axes"], "s2"),
               node("Unsqueeze", ["s2", "axes"], "u")]
    return two_layers(tmp_path / "m.onnx", between, [("axes", np.array([1], np.int64))], directions=1), \
        ("reads the Y of LSTM node 0 (lstm0) through node 'squeeze' (Squeeze), which squeezes axes [1] of "
         "(time, batch, unit): lstmtrace cannot show that it hands on each step's h as the next layer reads it")


def _a_shape_computed_when_the_model_runs(tmp_path):
    between = [node("Transpose", ["Y0"], "t", perm=[0, 2, 1, 3]), node("Shape", ["X"], "shape_of_x"),
               node("Reshape", ["t", "shape_of_x"], "r")]
    return two_layers(tmp_path / "m.onnx", between), \
        "through node 'reshape' (Reshape), whose shape is not stored in the file"


def _a_dropout_in_training_mode(tmp_path):
    from onnx import TensorProto, helper

    inputs = [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["T", 1, E]),
              helper.make_tensor_value_info("training", TensorProto.BOOL, [])]
    between = [node("Squeeze", ["Y0", "axes"], "s"), node("Dropout", ["s", "", "training"], "drop")]
    return two_layers(tmp_path / "m.onnx", between, [("axes", np.array([1], np.int64))], directions=1,
                      inputs=inputs), "through node 'dropout' (Dropout), which may run in training mode"


# -- where the cells start --------------------------------------------------------------------------------

def _sequence_lens(tmp_path):
    from onnx import TensorProto, helper

    inputs = [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["T", 1, E]),
              helper.make_tensor_value_info("lengths", TensorProto.INT32, [1])]
    return save(tmp_path / "m.onnx", [lstm(0, "X", inputs=["lengths"])], weights(0), inputs), \
        ("LSTM node 0 (lstm0): its input sequence_lens ('lengths') gives each sequence its own length, and "
         "lstmtrace runs every step of the sequence it is given")


def _sequence_lens_stored(tmp_path):
    return save(tmp_path / "m.onnx", [lstm(0, "X", inputs=["lengths"])],
                [*weights(0), ("lengths", np.array([T], np.int32))]), "its input sequence_lens ('lengths')"


def _initial_h_stored(tmp_path):
    h0 = np.full((1, 1, H), 0.5, np.float32)
    return save(tmp_path / "m.onnx", [lstm(0, "X", inputs=["", "h0"])], [*weights(0), ("h0", h0)]), \
        ("LSTM node 0 (lstm0): its input initial_h ('h0') is stored in the file and not zero, and lstmtrace "
         "starts from zero h and c (or --h/--c)")


def _initial_c_computed(tmp_path):
    nodes = [node("Add", ["c_half", "c_half"], "c0"), lstm(0, "X", inputs=["", "", "c0"])]
    return save(tmp_path / "m.onnx", nodes, [*weights(0), ("c_half", np.zeros((1, 1, H), np.float32) + 1)]), \
        ("its input initial_c ('c0') is computed when the model runs, by node 'add' (Add), and lstmtrace cannot "
         "show that it is zero")


ONE_NODE = {f.__name__[1:]: f for f in (_sequence_lens, _sequence_lens_stored, _initial_h_stored, _initial_c_computed)}
STACKS = {f.__name__[1:]: f for f in (
    _interleaved, _time_and_batch_swapped, _time_and_batch_flattened, _a_relu_between, _a_graph_input, _y_h,
    _skipping_a_layer,
    _squeezing_the_batch, _a_shape_computed_when_the_model_runs, _a_dropout_in_training_mode)}


def one_line(error, path, says):
    text = str(error.value)
    assert text.startswith(str(path)) and "\n" not in text, text
    assert says in text, text


@pytest.mark.parametrize("case", list(ONE_NODE))
def test_a_node_that_does_not_start_as_lstmtrace_does_is_refused(onnx, tmp_path, case):
    path, says = ONE_NODE[case](tmp_path)
    for read in (lambda: lstmtrace.load_layers(path, layer=0), lambda: lstmtrace.load_layers(path)):
        with pytest.raises(ValueError) as e:
            read()
        one_line(e, path, says)


@pytest.mark.parametrize("case", list(STACKS))
def test_layers_that_do_not_feed_one_another_as_they_are_are_refused(onnx, tmp_path, case):
    path, says = STACKS[case](tmp_path)
    with pytest.raises(ValueError) as e:
        lstmtrace.load_layers(path)
    one_line(e, path, says)
    assert lstmtrace.load_layers(path, layer=1)  # each layer alone is still read


def test_zero_initial_states_however_stored_are_lstmtraces(onnx, tmp_path):
    """Stored zeros, a Constant, torch's Expand of a stored zero and its Slice of a ConstantOfShape all start
    where lstmtrace starts."""
    from onnx import TensorProto, helper, numpy_helper

    zeros = np.zeros((1, 1, H), np.float32)
    nodes = [helper.make_node("Constant", [], ["c0"], name="c0", value=numpy_helper.from_array(zeros, "c0")),
             helper.make_node("Shape", ["X"], ["shape"], name="shape"),
             helper.make_node("ConstantOfShape", ["three"], ["all"], name="cos",
                              value=helper.make_tensor("v", TensorProto.FLOAT, [1], [0.0])),
             node("Slice", ["all", "start", "end"], "h0"),
             lstm(0, "X", inputs=["", "h0", "c0"]),
             node("Squeeze", ["Y0", "axes"], "s"), node("Expand", ["zero", "three"], "h1"),
             lstm(1, "s", inputs=["", "h1", "zeros"])]
    path = save(tmp_path / "m.onnx", nodes, [
        *weights(0), *weights(1, 1, H), ("zeros", zeros), ("zero", np.zeros((1, 1, 1), np.float32)),
        ("three", np.array([1, 1, H], np.int64)), ("start", np.array([0], np.int64)),
        ("end", np.array([1], np.int64)), ("axes", np.array([1], np.int64))])
    assert len(lstmtrace.load_layers(path)) == 2


def test_a_state_given_when_the_model_runs_is_for_one_layer_only(onnx):
    """The 2-layer forward export takes h0 and c0 as graph inputs: --layer K with --h/--c traces each layer
    (tests/test_onnx_files.py), and a stack, which starts every layer from zeros, is refused."""
    path = FIXTURES / "onnx_torch_lstm_2layer.onnx"
    assert lstmtrace.load_layers(path, layer=1)
    with pytest.raises(ValueError) as e:
        lstmtrace.load_layers(path)
    one_line(e, path, "LSTM node 0 (/lstm/LSTM): its input initial_h ('/lstm/Slice_output_0') is given when the "
                      "model runs (graph input 'h0'), and --layer all starts every layer from zero h and c")


# -- a bidirectional node's own checks ---------------------------------------------------------------------

def test_a_bidirectional_node_has_six_activations(onnx, tmp_path):
    path = save(tmp_path / "m.onnx", [lstm(0, "X", 2, activations=["Sigmoid", "Tanh", "Tanh"])], weights(0, 2))
    with pytest.raises(ValueError) as e:
        lstmtrace.load_layers(path)
    one_line(e, path, "LSTM node 0 (lstm0) has 3 activations (Sigmoid, Tanh, Tanh); a bidirectional LSTM has 6: "
                      "f (the gates), g (the candidate), h (the cell), for the forward direction, then for the "
                      "reverse one")


def test_an_activation_of_the_reverse_direction_is_named(onnx, tmp_path):
    path = save(tmp_path / "m.onnx", [lstm(0, "X", 2, activations=["Sigmoid", "Tanh", "Tanh", "Sigmoid", "Elu",
                                                                      "Tanh"])], weights(0, 2))
    with pytest.raises(ValueError) as e:
        lstmtrace.load_layers(path)
    one_line(e, path, "its activation g (the candidate's) of the reverse direction is Elu(alpha=1)")


def test_a_bidirectional_node_needs_both_directions_weights(onnx, tmp_path):
    path = save(tmp_path / "m.onnx", [lstm(0, "X", 2)], weights(0, 1))
    with pytest.raises(ValueError) as e:
        lstmtrace.load_layers(path)
    one_line(e, path, f"LSTM node 0 (lstm0): W has shape (1, {4 * H}, {E}); a bidirectional LSTM of hidden size "
                      f"H = {H} has (2, 4H, E) = (2, {4 * H}, {E})")


def test_a_reverse_node_runs_reverse_only(onnx, tmp_path):
    path = save(tmp_path / "m.onnx", [lstm(0, "X", direction="reverse")], weights(0))
    (cells,) = lstmtrace.load_layers(path)
    assert [c.direction for c in cells] == ["reverse"]
    with pytest.raises(OptionError, match=r"LSTM node 0 \(lstm0\) runs reverse only: it has no forward weights"):
        lstmtrace.load_layers(path, layer=0, direction="forward")


@pytest.mark.parametrize("damage", ["cut", "flip"])
def test_every_fifth_cut_and_flipped_byte_of_a_stack_is_read_or_one_sentence(onnx, tmp_path, damage):
    """As tests/test_onnx_files.py does for one node, for load_layers on the helper stack (every fifth byte)."""
    data = HELPER_STACK.read_bytes()
    path = tmp_path / "damaged.onnx"
    refused = 0
    for k in range(0, len(data), 5):
        path.write_bytes(data[:k] if damage == "cut" else data[:k] + bytes([data[k] ^ 0xFF]) + data[k + 1:])
        try:
            lstmtrace.load_layers(path)
        except ValueError as e:
            assert str(e).startswith(str(path)) and "\n" not in str(e), str(e)
            refused += 1
    assert refused > 0
