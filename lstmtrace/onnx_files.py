"""ONNX models (``.onnx``): each LSTM node's weights, and the attributes that change its math.

ONNX's LSTM operator [1]_ keeps one node's weights in its inputs and says how the cell
computes in its attributes; :func:`declared` reads both, for :func:`lstmtrace.weights.read_layer`,
as one cell per direction the node runs (D of them: 1, or 2 for a bidirectional node, whose
forward cell is index 0 of the first axis of W, R, B and P, and its reverse cell index 1):

==================== ============== =====================================================
input                shape          lstmtrace
==================== ============== =====================================================
W                    (D, 4H, E)     each gate's W; gates stacked i, o, f, c
R                    (D, 4H, H)     each gate's U, same order
B (optional)         (D, 8H)        Wb then Rb, same order; b = Wb + Rb (zeros if absent)
sequence_lens        (batch,)       refused when given: lstmtrace runs every step
initial_h, initial_c (D, batch, H)  absent, or zeros whatever the model is given (stored
                                    zeros; a ConstantOfShape of 0 or an Expand of stored
                                    zeros, as torch.onnx.export writes, through Slice,
                                    Reshape, …); for one layer also a graph input, the
                                    state ``--h``/``--c`` give; anything else is refused
P (optional)         (D, 3H)        peepholes p_i, p_o, p_f: ``Variant(peephole=True)``
==================== ============== =====================================================

============================== ==========================================================
attribute                      lstmtrace
============================== ==========================================================
direction                      forward or reverse: one cell that runs that way; bidirectional:
                               a forward and a reverse cell (a reverse cell runs over
                               x_T … x_1, and its steps keep the model's time order, as
                               ONNX's Y lays them out)
activations (3 per direction)  each cell's gate_activation, candidate_activation and
                               cell_activation (f, g, h; the forward direction's first):
                               Sigmoid, Tanh, Relu, Softsign, HardSigmoid(alpha, beta)
                               (``hard_sigmoid:ALPHA,BETA``; 0.2, 0.5 when not given),
                               Affine(alpha=1, beta=0) (``linear``); any other is refused
activation_alpha, _beta        consumed in order over all the activations, by those that
                               take them, as onnxruntime reads them
clip                           ``clip`` of every cell (each gate's pre-activation, peephole
                               included)
input_forget = 1               ``coupled`` (f = 1 − i) for every cell: the forget gate's rows
                               of W, R, B and its peephole are unused by ONNX, and left out
layout (0 or 1)                how X and Y are laid out; the weights are the same
hidden_size                    checked against the shapes of W, R, B and P
============================== ==========================================================

``--layer K`` is the K-th LSTM node of the main graph, in graph order (LSTM nodes inside
a Loop's, If's or Scan's subgraph, or a local function, are not read, and a model whose
only LSTMs are there says so).  ``--layer all`` (:func:`declared_layers`) is every LSTM node
in graph order, each node after the first reading the Y of the one before: its X is followed
back to that Y through ops that only move numbers (Identity, Dropout without a training
mode, Transpose, Reshape with a stored shape, Squeeze and Unsqueeze with stored axes,
Flatten), and those ops must lay the Y out as (time, batch, the forward h then the reverse
h of each step), as torch.onnx.export writes it (Y → Transpose(0, 2, 1, 3) → Reshape(0, 0,
−1) after a bidirectional node, Y → Squeeze(1) after one direction); any other op, another
source or another layout is one line naming both nodes.  Every layer of a stack starts
from zero h and c, so a stack whose initial_h or initial_c is given when the model runs is
refused too.  W, R, B and P must be stored in the file: an initializer (also
one listed as a graph input, as ``keep_initializers_as_inputs`` writes: its stored value
is read), a Constant node, or either behind Identity nodes, in the file itself or in its
external data; weights computed when the model runs are refused, naming the input.
float16, float32 and float64 weights are widened to float64 exactly.  Attribute floats
are float32 in ONNX: clip, alpha and beta are read as the shortest decimal that is the
same float32 (0.3, not 0.30000001192092896).

:func:`embedding` reads the table of ``--embedding KEY`` (for ``--tokens``): KEY names a
Gather node (``'/embedding/Gather'`` in a torch.onnx.export of ``nn.Embedding``) whose data,
input 0, is stored in the file as above and which gathers rows (axis 0), or names the stored
table itself (``embedding.weight``, the name torch.onnx.export keeps for the initializer).

The file is parsed by the ``onnx`` package's protobuf classes (``pip install
'lstmtrace[onnx]'``), never unpickled; a damaged file, or one that is not an ONNX model,
is one sentence naming it.

.. [1] https://onnx.ai/onnx/operators/onnx__LSTM.html
"""
import os
import warnings
from typing import Dict, List, Optional

import numpy as np

from lstmtrace.damage import check_not_empty, first_line
from lstmtrace.errors import OptionError
from lstmtrace.weights import PEEPHOLE_KEYS, TORCH_ORDER, Declared, WhichCellError

__all__ = ["ONNX_ORDER", "ONNX_PEEPHOLES", "declared", "declared_layers", "embedding"]

ONNX_ORDER = ("input", "output", "forget", "candidate")
"""How ONNX stacks the gates in W, R and each half of B (i, o, f, c)."""

ONNX_PEEPHOLES = ("input", "output", "forget")
"""How ONNX stacks the peepholes in P (i, o, f)."""

_STANDARD = ("", "ai.onnx")  # the domains of ONNX's own operators
_KIND = "an ONNX model (as torch.onnx.export and onnx.save write)"
# The first byte of a serialized ModelProto: the tag of one of its fields 1-8 (ir_version first, as
# protobuf writes fields in number order).  A file that starts otherwise is not an ONNX model at all.
_MODEL_TAGS = b"\x08\x12\x1a\x22\x28\x32\x3a\x42"
_FLOATS = {1: "float32", 10: "float16", 11: "float64"}  # TensorProto.DataType → what lstmtrace widens

# ONNX's LSTM attributes, and the AttributeProto type each must have (FLOAT 1, INT 2, STRING 3, FLOATS 6,
# STRINGS 8); output_sequence (opset 1) only says whether Y is an output.
_ATTRIBUTES = {"hidden_size": 2, "direction": 3, "layout": 2, "input_forget": 2, "clip": 1, "activations": 8,
               "activation_alpha": 6, "activation_beta": 6, "output_sequence": 2}
_TYPE_NAMES = {1: "a float", 2: "an int", 3: "a string", 4: "a tensor", 5: "a graph", 6: "floats", 7: "ints",
               8: "strings", 9: "tensors", 10: "graphs"}

SLOTS = (("f", "gate_activation", "the gates'"), ("g", "candidate_activation", "the candidate's"),
         ("h", "cell_activation", "the cell's"))
"""ONNX's three activations, in the order of its ``activations`` attribute, and the Variant field each is."""

_SAME = {"sigmoid": "sigmoid", "tanh": "tanh", "relu": "relu", "softsign": "softsign"}
# (takes alpha, takes beta) and the values used when activation_alpha/_beta run out, as onnxruntime reads
# them (rnn_helpers.cc); the ONNX operators' own defaults where onnxruntime has none.
_TAKES = {"affine": (True, True), "leakyrelu": (True, False), "thresholdedrelu": (True, False),
          "scaledtanh": (True, True), "hardsigmoid": (True, True), "elu": (True, False)}
_DEFAULTS = {"leakyrelu": (0.01, 0.0), "hardsigmoid": (0.2, 0.5), "elu": (1.0, 0.0)}
_KNOWN = ("Sigmoid", "Tanh", "Relu", "Softsign", "HardSigmoid", "Affine", "LeakyRelu", "ThresholdedRelu",
          "ScaledTanh", "Elu", "Softplus")


def declared(path, layer: Optional[int] = None) -> List[Declared]:
    """The K-th LSTM node (``layer``, 0 when None) of the ONNX model ``path``: one :class:`Declared` per
    direction it runs (forward first), each with its variant, its weights in
    :func:`lstmtrace.weights.to_state_dict`'s layout for that variant, and where it is.

    Needs the onnx package (skipped here; tests/test_onnx_files.py checks the same):

    >>> (found,) = declared("tests/fixtures/onnx_peephole_coupled_clip.onnx")  # doctest: +SKIP
    >>> found.variant, found.where  # doctest: +SKIP
    (Variant(peephole=True, coupled=True, clip=0.8), 'tests/fixtures/onnx_peephole_coupled_clip.onnx LSTM node 0 (lstm_cifg)')
    """
    path = os.fspath(path)
    onnx = _import_onnx(path)
    with warnings.catch_warnings():  # whatever onnx or protobuf would say stays out of the terminal
        warnings.simplefilter("ignore")
        graph, nodes = _lstm_nodes(onnx, path)
        k = 0 if layer is None else layer
        if not 0 <= k < len(nodes):
            raise WhichCellError(f"{path} has no LSTM node {k}; its LSTM nodes are "
                                 + ", ".join(f"{j} ({_name(n)})" for j, n in enumerate(nodes)), "layer")
        return _declared(onnx, path, graph, nodes[k], _where(path, k, nodes[k]), stack=False)


def declared_layers(path) -> List[List[Declared]]:
    """Every LSTM node of the ONNX model ``path``, in graph order, as :func:`declared` gives each, once each
    node after the first is shown to read the Y of the node before it, both directions' h_t concatenated at
    each step (forward first), through ops that only move numbers (:func:`_check_fed`), and every node to
    start from zero h and c."""
    path = os.fspath(path)
    onnx = _import_onnx(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph, nodes = _lstm_nodes(onnx, path)
        layers = [_declared(onnx, path, graph, node, _where(path, k, node), stack=True)
                  for k, node in enumerate(nodes)]
        stored = _Stored(onnx, path, graph, path)
        for k in range(1, len(nodes)):
            _check_fed(stored, nodes, k, len(layers[k - 1]), layers[k - 1][0].state["weight_hh"].shape[1])
        return layers


def _lstm_nodes(onnx, path: str):
    """The model's graph and its LSTM nodes, in graph order (at least one)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no file {path!r}")
    model = _model(onnx, path)
    nodes = [n for n in model.graph.node if n.op_type == "LSTM" and n.domain in _STANDARD]
    if not nodes:
        raise ValueError(_no_lstm(path, model))
    return model.graph, nodes


def _where(path: str, k: int, node) -> str:
    return f"{path} LSTM node {k} ({_name(node)})"


def embedding(path, key: str) -> np.ndarray:
    """The embedding table ``key`` of the ONNX model ``path`` (V×E), as float64: the data (input 0) of the
    Gather node named ``key``, or the initializer named ``key``; for :func:`lstmtrace.weights.read_embedding`,
    which checks that it is a V×E table of finite numbers."""
    path = os.fspath(path)
    onnx = _import_onnx(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no file {path!r}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = _model(onnx, path).graph
        node = next((n for n in graph.node if _gather(n) and _text(n.name) == key), None)
        if node is not None:
            where = f"{path} Gather node '{key}'"
            axis = next((a.i for a in node.attribute if a.name == "axis" and a.type == 2), 0)
            if axis != 0:
                raise OptionError(f"{where} gathers along axis {axis}; an embedding looks up rows (axis 0)",
                                  "embedding")
            if not node.input or not node.input[0]:
                raise ValueError(f"{path} is truncated or corrupt: its Gather node '{key}' has no input data")
            stored = _Stored(onnx, path, graph, where)
            try:
                tensor = stored("data", _text(node.input[0]))
            except ValueError as e:  # not a table in the file (a Shape's dims, …): the key's fault, not the file's
                if "truncated or corrupt" in str(e):
                    raise
                raise OptionError(str(e), "embedding") from None
        else:
            stored = _Stored(onnx, path, graph, path)
            tensor = stored.initializers.get(key)
            if tensor is None:
                tables = _tables(onnx, path, graph)
                raise OptionError(f"{path} has no Gather node or initializer {key!r}; " + (
                    f"its Gather nodes over a table are {', '.join(tables)}" if tables else
                    "it has no Gather node over a stored table (an embedding)"), "embedding")
            where = f"{path} initializer"
        if tensor.data_type not in _FLOATS:
            raise OptionError(f"{where} '{_text(tensor.name)}' holds {_kind(onnx, tensor)} values; an embedding "
                              f"is a table of {', '.join(_FLOATS.values())} numbers", "embedding")
        return stored.array("data", tensor)


def _gather(node) -> bool:
    return node.op_type == "Gather" and _standard(node)


def _tables(onnx, path: str, graph):
    """Each Gather node whose data is a stored 2-D table: "'name' (table, V×E)"."""
    stored, found = _Stored(onnx, path, graph, path), []
    for node in graph.node:
        if not _gather(node) or not node.name or not node.input or not node.input[0]:
            continue
        try:
            tensor = stored("data", _text(node.input[0]))
        except ValueError:  # computed when the model runs (a Shape's dims, …): not an embedding
            continue
        if len(tensor.dims) == 2:
            found.append(f"'{_name(node)}' ({_text(tensor.name) or _text(node.input[0])}, "
                         f"{tensor.dims[0]}×{tensor.dims[1]})")
    return found


def _kind(onnx, tensor) -> str:
    try:
        return onnx.TensorProto.DataType.Name(tensor.data_type).lower()
    except ValueError:
        return f"data type {tensor.data_type}"


def _import_onnx(path: str):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import onnx
            import onnx.external_data_helper  # (submodules used below: onnx does not always load them)
            import onnx.numpy_helper
    except ImportError:
        raise ImportError(f"reading {os.path.basename(path)} needs the onnx package: pip install "
                          "'lstmtrace[onnx]'") from None
    except Exception as e:  # an onnx that does not import (a protobuf it does not fit): say so in one line
        raise ImportError(f"reading {os.path.basename(path)} needs the onnx package, which does not import "
                          f"here ({first_line(e)}): pip install --upgrade 'lstmtrace[onnx]'") from None
    return onnx


def _model(onnx, path: str):
    """The ModelProto in ``path``, or one sentence saying why there is none."""
    check_not_empty(path, _KIND)
    with open(path, "rb") as f:
        data = f.read()
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as e:  # protobuf's DecodeError, or whatever a damaged length makes it raise
        if data[:1] in _MODEL_TAGS:
            raise ValueError(f"{path} is truncated or corrupt: protobuf cannot parse it ({first_line(e)})") from None
        raise ValueError(f"{path} is not {_KIND}") from None
    if not model.HasField("graph"):
        if model.ir_version and data[:1] == b"\x08":
            raise ValueError(f"{path} is truncated or corrupt: it ends before its graph")
        raise ValueError(f"{path} is not {_KIND}")
    if model.ir_version >= 3 and not model.opset_import:  # written after the graph: cut off with it
        raise ValueError(f"{path} is truncated or corrupt: it has a graph but no opset_import (the ONNX "
                         "versions its operators follow)")
    return model


def _text(s) -> str:
    """A name from the file: protobuf gives bytes for one that is not UTF-8 (a damaged file)."""
    return s.decode("utf-8", "replace") if isinstance(s, bytes) else s


def _name(node) -> str:
    return _text(node.name) or "unnamed"


def _standard(node) -> bool:
    return node.domain in _STANDARD


def _no_lstm(path: str, model) -> str:
    """Why ``model`` has no LSTM node lstmtrace reads, in one sentence."""
    graph = model.graph
    nested = _nested_lstm(graph.node)
    if nested is not None:
        return (f"{path} is an ONNX model with no LSTM node in its main graph: its LSTM nodes are inside the "
                f"subgraph of node '{_name(nested)}' ({nested.op_type}), which lstmtrace does not read")
    for function in model.functions:
        if any(n.op_type == "LSTM" and _standard(n) for n in function.node):
            return (f"{path} is an ONNX model with no LSTM node in its main graph: its LSTM nodes are inside "
                    f"the local function '{_text(function.name)}', which lstmtrace does not read")
    blank = next((n for n in graph.node if not n.op_type), None)
    if blank is not None:
        return f"{path} is truncated or corrupt: its node '{_name(blank)}' has no operator (op_type)"
    kinds = {"GRU": ("GRU", "a GRU"), "RNN": ("RNN", "a simple RNN")}
    others = []
    for op, (label, what) in kinds.items():
        names = [f"'{_name(n)}'" for n in graph.node if n.op_type == op and _standard(n)]
        if names:
            s = "s" if len(names) > 1 else ""
            others.append(f"{label} node{s} {', '.join(names)} ({what}, not an LSTM)")
    if others:
        return f"{path} is an ONNX model with no LSTM node: it has {' and '.join(others)}"
    ops = list(dict.fromkeys(_text(n.op_type) if _standard(n) else f"{_text(n.domain)}.{_text(n.op_type)}"
                             for n in graph.node))
    shown = ", ".join(ops[:8]) + (", …" if len(ops) > 8 else "")
    return f"{path} is an ONNX model with no LSTM node " + (f"(its ops: {shown})" if ops else "(its graph has no nodes)")


def _nested_lstm(nodes):
    """The first node of ``nodes`` whose subgraphs (Loop, If, Scan, …) hold an LSTM node, or None."""
    for node in nodes:
        for a in node.attribute:
            for g in ([a.g] if a.type == 5 else list(a.graphs) if a.type == 10 else []):
                if any(n.op_type == "LSTM" and _standard(n) for n in g.node) or _nested_lstm(g.node) is not None:
                    return node
    return None


# -- one node ----------------------------------------------------------------------------------------

_RUNS = {"forward": ("forward",), "reverse": ("reverse",), "bidirectional": ("forward", "reverse")}
"""The cells an LSTM node's ``direction`` runs, in the order of the num_directions axis of W, R, B and P."""


def _declared(onnx, path: str, graph, node, where: str, stack: bool) -> List[Declared]:
    """One cell per direction the node runs; ``stack``: for :func:`declared_layers`, where no layer can
    be given a starting state."""
    from lstmtrace.variant import Variant

    attrs = _attributes(node, where)
    direction = attrs.get("direction", b"forward").decode("utf-8", "replace")
    if direction not in _RUNS:
        raise ValueError(f"{where} has direction={direction!r}; ONNX's LSTM runs forward, reverse or "
                         "bidirectional")
    runs = _RUNS[direction]
    D = len(runs)
    for name in ("layout", "input_forget"):  # layout only says how X and Y are laid out: either is fine
        if attrs.get(name, 0) not in (0, 1):
            raise ValueError(f"{where} has {name}={attrs[name]}; ONNX's LSTM defines 0 or 1")
    inputs = [_text(name) for name in node.input] + [""] * (8 - len(node.input))
    if len(node.input) > 8:
        raise ValueError(f"{where} has {len(node.input)} inputs; ONNX's LSTM has at most 8")
    if not inputs[0] or not inputs[1] or not inputs[2]:
        missing = "X" if not inputs[0] else "W" if not inputs[1] else "R"
        raise ValueError(f"{path} is truncated or corrupt: {where[len(path) + 1:]} has no input {missing}")
    stored = _Stored(onnx, path, graph, where)
    tensors = {role: stored(role, inputs[k]) for role, k in (("W", 1), ("R", 2), ("B", 3), ("P", 7)) if inputs[k]}
    H = _hidden_size(attrs, tensors, where, direction, D)
    E = tensors["W"].dims[2] if len(tensors["W"].dims) == 3 else 0
    expected = {"W": ((D, 4 * H, E), "(D, 4H, E)"), "R": ((D, 4 * H, H), "(D, 4H, H)"),
                "B": ((D, 8 * H), "(D, 8H)"), "P": ((D, 3 * H), "(D, 3H)")}
    for role, tensor in tensors.items():
        shape, spelled = expected[role]
        if tuple(tensor.dims) != shape or E < 1:
            raise ValueError(f"{where}: {role} has shape {_shape(tensor.dims)}; a {direction} LSTM of hidden size "
                             f"H = {H} has {spelled.replace('D', str(D), 1)}"
                             + (f" = {_shape(shape)}" if E >= 1 else ""))
    _check_start(stored, inputs, stack)
    arrays = {role: stored.array(role, tensor) for role, tensor in tensors.items()}  # D × …
    coupled = attrs.get("input_forget", 0) == 1
    clip = {"clip": _float32(attrs["clip"])} if "clip" in attrs else {}
    cells = []
    for d, (run, settings) in enumerate(zip(runs, _activations(attrs, where, direction))):
        try:
            variant = Variant(peephole="P" in arrays, coupled=coupled, **settings, **clip)
        except OptionError as e:  # a value of the file's, not of an option: name the node
            raise ValueError(f"{where}: {e}") from None
        cells.append(Declared(variant, _state({role: a[d] for role, a in arrays.items()}, H, coupled), where, run))
    return cells


_STARTS = (("sequence_lens", 4), ("initial_h", 5), ("initial_c", 6))
"""The node's inputs that say where and how long its cells run."""


def _check_start(stored: "_Stored", inputs: List[str], stack: bool) -> None:
    """Refuse a node whose cells do not start as lstmtrace's do: from zero h and c (or, for one layer, from the
    state the model is given when it runs, which ``--h``/``--c`` give lstmtrace), over all T steps."""
    for role, k in _STARTS:
        name = inputs[k]
        if not name:
            continue
        said = f"{stored.where}: its input {role} ('{name}')"
        if role == "sequence_lens":
            raise ValueError(f"{said} gives each sequence its own length, and lstmtrace runs every step of the "
                             "sequence it is given: export the model without sequence_lens")
        if stored.zero(name):
            continue
        given = stored.given(name)
        if given is not None and not stack:
            continue  # the state the model is given when it runs: --h/--c (h0, c0) give it to lstmtrace
        if given is not None:
            raise ValueError(f"{said} is given when the model runs (graph input '{given}'), and --layer all "
                             "starts every layer from zero h and c: trace one layer at a time with --layer K and "
                             "--h/--c")
        node = stored.producers.get(name)
        if node is None and name not in stored.initializers:
            raise ValueError(f"{stored.path} is truncated or corrupt: {said[len(stored.path) + 1:]} is made by no "
                             "node and stored nowhere in the file")
        if node is None or node.op_type in ("Constant", "Identity"):
            raise ValueError(f"{said} is stored in the file and not zero, and lstmtrace starts from zero h and c "
                             "(or --h/--c), not from a state the file holds")
        raise ValueError(f"{said} is computed when the model runs, by node '{_name(node)}' ({_text(node.op_type)}), "
                         "and lstmtrace cannot show that it is zero, the state lstmtrace starts from")


def _attributes(node, where: str) -> Dict[str, object]:
    """The node's attributes by name, each checked to be of the type ONNX's LSTM defines."""
    found = {}
    for a in node.attribute:
        if a.name not in _ATTRIBUTES:
            raise ValueError(f"{where} has attribute '{_text(a.name)}', which ONNX's LSTM does not define: "
                             "lstmtrace cannot say how it changes the cell")
        if a.type != _ATTRIBUTES[a.name]:
            raise ValueError(f"{where}: its attribute '{a.name}' is {_TYPE_NAMES.get(a.type, f'of type {a.type}')}, "
                             f"not {_TYPE_NAMES[_ATTRIBUTES[a.name]]} as ONNX's LSTM defines it")
        found[a.name] = {1: a.f, 2: a.i, 3: a.s, 6: list(a.floats), 8: list(a.strings)}[a.type]
    return found


def _hidden_size(attrs, tensors, where: str, direction: str, D: int) -> int:
    """H: the hidden_size attribute, or R's last dimension when there is none."""
    R = tensors["R"].dims
    H = attrs.get("hidden_size", R[2] if len(R) == 3 else 0)
    if H < 1:
        raise ValueError(f"{where} has hidden_size {H}" if "hidden_size" in attrs else
                         f"{where}: R has shape {_shape(R)}; a {direction} LSTM has ({D}, 4H, H)")
    return H


def _activations(attrs, where: str, direction: str) -> List[Dict[str, str]]:
    """The activations of each direction the node runs as Variant fields (three each: f, g, h, forward's
    first), alpha and beta consumed in order over the whole list as onnxruntime does."""
    D = len(_RUNS[direction])
    names = [s.decode("utf-8", "replace") for s in attrs.get("activations", [b"Sigmoid", b"Tanh", b"Tanh"] * D)]
    if len(names) != 3 * D:
        raise ValueError(f"{where} has {len(names)} activations ({', '.join(names) or 'none'}); a {direction} LSTM "
                         f"has {3 * D}: f (the gates), g (the candidate), h (the cell)"
                         + (", for the forward direction, then for the reverse one" if D == 2 else ""))
    alphas, betas = iter(attrs.get("activation_alpha", [])), iter(attrs.get("activation_beta", []))
    settings = [{} for _ in range(D)]
    for j, name in enumerate(names):
        (letter, field, whose), d = SLOTS[j % 3], j // 3
        slot = f"{letter} ({whose})" + (f" of the {_RUNS[direction][d]} direction" if D == 2 else "")
        settings[d][field] = _activation(name, slot, alphas, betas, where)
    return settings


def _activation(name: str, slot: str, alphas, betas, where: str) -> str:
    """One ONNX activation as lstmtrace spells it, taking its alpha and beta from ``alphas``, ``betas``."""
    key = name.lower()
    if key not in _SAME and key not in _TAKES and key != "softplus":
        raise ValueError(f"{where}: its activation {slot} is '{name}', which ONNX's LSTM does not "
                         f"define (it defines {', '.join(_KNOWN)})")
    takes = _TAKES.get(key, (False, False))
    default = _DEFAULTS.get(key, (None, None))
    alpha = _float32(next(alphas, default[0])) if takes[0] else None
    beta = _float32(next(betas, default[1])) if takes[1] else None
    if key in _SAME:
        return _SAME[key]
    if key == "hardsigmoid" and alpha > 0 and np.isfinite(alpha) and np.isfinite(beta):
        return f"hard_sigmoid:{alpha!r},{beta!r}"
    if key == "affine" and alpha == 1.0 and beta == 0.0:
        return "linear"
    if key == "affine" and (alpha is None or beta is None):
        raise ValueError(f"{where}: its activation {slot} is Affine without activation_alpha and "
                         "activation_beta, which onnxruntime reads as 0 and the Affine operator as 1 and 0: "
                         "lstmtrace cannot tell which the model means")
    given = ", ".join(f"{n}={v:g}" for n, v in (("alpha", alpha), ("beta", beta)) if v is not None)
    raise ValueError(f"{where}: its activation {slot} is {name}({given}), which lstmtrace "
                     "cannot compute (it computes Sigmoid, Tanh, Relu, Softsign, HardSigmoid with alpha > 0 "
                     "and Affine(alpha=1, beta=0), the identity)")


def _float32(value) -> Optional[float]:
    """An attribute's float32, as the shortest decimal that is the same float32 (0.3 for 0.30000001…)."""
    return None if value is None else float(str(np.float32(value)))


def _shape(dims) -> str:
    return str(tuple(int(d) for d in dims))


def _state(arrays: Dict[str, np.ndarray], H: int, coupled: bool) -> Dict[str, np.ndarray]:
    """ONNX's one-direction W (4H×E), R (4H×H), B (8H), P (3H) → torch.nn.LSTMCell's layout for the variant."""
    block = {g: slice(k * H, (k + 1) * H) for k, g in enumerate(ONNX_ORDER)}
    # input_forget: f = 1 − i, and ONNX ignores the forget gate's rows; the variant's cell has none
    order = [g for g in TORCH_ORDER if not (coupled and g == "forget")]
    B = arrays.get("B", np.zeros(8 * H))
    Wb, Rb = B[:4 * H], B[4 * H:]
    stack = lambda a: np.concatenate([a[block[g]] for g in order])
    state = {"weight_ih": stack(arrays["W"]), "weight_hh": stack(arrays["R"]), "bias_ih": stack(Wb),
             "bias_hh": stack(Rb)}
    if "P" in arrays:
        P = dict(zip(ONNX_PEEPHOLES, np.split(arrays["P"], 3)))
        state.update({PEEPHOLE_KEYS[g]: P[g] for g in ONNX_PEEPHOLES if not (coupled and g == "forget")})
    return state


class _Stored:
    """The tensors a node's inputs name, where the file stores them: initializers and Constant nodes, behind
    any Identity nodes."""

    def __init__(self, onnx, path: str, graph, where: str):
        self.onnx, self.path, self.where = onnx, path, where
        self.base_dir = os.path.dirname(os.path.abspath(path))
        self.initializers = {t.name: t for t in graph.initializer}
        self.producers = {out: n for n in graph.node for out in n.output if out}
        self.inputs = {i.name for i in graph.input} - set(self.initializers)

    def __call__(self, role: str, name: str):
        """The TensorProto that input ``role`` (W, R, B or P) of the node, named ``name``, holds."""
        first, seen = name, set()
        while name not in seen:
            seen.add(name)
            if name in self.initializers:
                return self.initializers[name]
            node = self.producers.get(name)
            if node is not None and node.op_type == "Identity" and _standard(node) and len(node.input) == 1:
                name = node.input[0]
                continue
            if node is not None and node.op_type == "Constant" and _standard(node):
                value = next((a.t for a in node.attribute if a.name == "value" and a.type == 4), None)
                if value is None:
                    raise ValueError(f"{self.where}: its input {role} ('{first}') is Constant node "
                                     f"'{_name(node)}', which holds no tensor ('value')")
                return value
            break
        said = f"{self.where}: its input {role} ('{first}')"
        tail = "; lstmtrace reads weights stored in the file (initializers or Constant nodes)"
        if name in self.inputs:
            raise ValueError(f"{said} is the graph input '{name}', given when the model runs{tail}")
        if node is None or node.op_type in ("Identity", "Constant"):
            raise ValueError(f"{self.path} is truncated or corrupt: {said[len(self.path) + 1:]} is made by no "
                             "node and stored nowhere in the file")
        given = self._given(node)
        how = (f"from the graph input '{given}'" if given else
               "from stored constants: save the model with its constants folded (torch.onnx.export's "
               "do_constant_folding=True, the default)")
        raise ValueError(f"{said} is computed when the model runs, by node '{_name(node)}' ({node.op_type}), "
                         f"{how}{tail}")

    def _given(self, node) -> Optional[str]:
        """A graph input that ``node``'s value depends on, if any."""
        todo, seen = list(node.input), set()
        while todo:
            name = todo.pop()
            if not name or name in seen or name in self.initializers:
                continue
            seen.add(name)
            if name in self.inputs:
                return name
            producer = self.producers.get(name)
            if producer is not None:
                todo += list(producer.input)
        return None

    def array(self, role: str, tensor) -> np.ndarray:
        """The tensor's numbers, as float64."""
        if tensor.data_type not in _FLOATS:
            kind = _kind(self.onnx, tensor)
            raise ValueError(f"{self.where}: its input {role} ('{tensor.name}') holds {kind} values; lstmtrace "
                             f"reads {', '.join(_FLOATS.values())} weights")
        external = self.onnx.external_data_helper.uses_external_data(tensor)
        try:
            array = self.onnx.numpy_helper.to_array(tensor, base_dir=self.base_dir)
        except Exception as e:  # numpy's reshape of too few numbers, a missing or short external file, …
            if external:
                location = next((entry.value for entry in tensor.external_data if entry.key == "location"), "")
                raise ValueError(f"{self.where}: its input {role} ('{tensor.name}') is stored in the external data "
                                 f"file {location!r}, which cannot be read ({first_line(e)})") from None
            raise ValueError(f"{self.path} is truncated or corrupt: the numbers of input {role} "
                             f"('{tensor.name}') of {self.where[len(self.path) + 1:]} cannot be read "
                             f"({first_line(e)})") from None
        if array.shape != tuple(tensor.dims):
            raise ValueError(f"{self.path} is truncated or corrupt: input {role} ('{tensor.name}') of "
                             f"{self.where[len(self.path) + 1:]} holds {array.size} numbers for shape "
                             f"{_shape(tensor.dims)}")
        return array.astype(np.float64)

    def zero(self, name: str, seen: Optional[set] = None) -> bool:
        """Whether the tensor ``name`` is all zeros whatever the model is given: stored zeros, or a
        ConstantOfShape of 0, through ops that only select, copy or move numbers (torch.onnx.export
        writes an Expand of a stored zero, or a Slice of a ConstantOfShape, for an LSTM not given h0)."""
        seen = set() if seen is None else seen
        if name in seen:
            return False
        seen.add(name)
        if name in self.initializers:
            return self._zeros(self.initializers[name])
        node = self.producers.get(name)
        if node is None or not _standard(node):
            return False
        if node.op_type in ("Constant", "ConstantOfShape"):
            value = next((a.t for a in node.attribute if a.name == "value" and a.type == 4), None)
            if value is None:  # ConstantOfShape's default is a float32 0; a Constant without one is damaged
                return node.op_type == "ConstantOfShape"
            return self._zeros(value)
        data = _KEEPS_ZEROS.get(node.op_type)
        inputs = list(node.input) if data == "all" else list(node.input[:1]) if data else []
        return bool(inputs) and all(n and self.zero(_text(n), seen) for n in inputs)

    def _zeros(self, tensor) -> bool:
        """Whether a stored tensor holds only zeros (a damaged float one is one sentence, as for weights)."""
        if tensor.data_type in _FLOATS:
            return not self.array(f"'{_text(tensor.name)}'", tensor).any()
        try:
            return not self.onnx.numpy_helper.to_array(tensor, base_dir=self.base_dir).any()
        except Exception:  # damaged, or of a type numpy cannot hold: not shown to be zero
            return False

    def given(self, name: str) -> Optional[str]:
        """The graph input that the tensor ``name`` is, or is computed from, if any."""
        if name in self.inputs:
            return name
        node = self.producers.get(name)
        return None if node is None else self._given(node)

    def ints(self, name: str) -> Optional[List[int]]:
        """The integers a stored tensor (a Reshape's shape, a Squeeze's axes) holds, or None when it is not
        stored in the file."""
        try:
            tensor = self(f"'{name}'", name)
        except ValueError:
            return None
        if tensor.data_type not in (6, 7):  # INT32, INT64
            return None
        try:
            return [int(v) for v in self.onnx.numpy_helper.to_array(tensor, base_dir=self.base_dir).ravel()]
        except Exception:  # a damaged tensor: not a shape lstmtrace can follow
            return None


_KEEPS_ZEROS = {"Identity": "data", "Slice": "data", "Expand": "data", "Reshape": "data", "Squeeze": "data",
                "Unsqueeze": "data", "Transpose": "data", "Flatten": "data", "Tile": "data", "Cast": "data",
                "Gather": "data", "Dropout": "data", "Concat": "all"}
"""Ops whose output is all zeros when their data input (input 0), or every input ("all"), is."""


# -- one node feeding the next -----------------------------------------------------------------------

_MOVES = ("Identity", "Dropout", "Transpose", "Reshape", "Squeeze", "Unsqueeze", "Flatten")
"""The ops :func:`_check_fed` follows between two LSTM nodes: each only moves the numbers of its input 0."""

_AXIS_NAMES = {"T": "time", "B": "batch", "D": "direction", "H": "unit"}


class _Unshown(Exception):
    """An op between two LSTM nodes whose effect on the layout lstmtrace cannot follow (the reason)."""


def _check_fed(stored: "_Stored", nodes, k: int, directions: int, H: int) -> None:
    """Refuse, in one line, LSTM node ``k`` unless its X is node k−1's Y, moved only by :data:`_MOVES` ops into
    (time, batch, the h of each direction concatenated, forward first): what ``--layer all`` feeds it.

    The ops are followed backwards from X to the Y, then run forwards on Y's axes, each axis a tuple of the
    named sizes it holds in row-major order (T, B, D directions, H units; D left out when it is 1)."""
    path, before, node = stored.path, nodes[k - 1], nodes[k]
    said = f"{path}: LSTM node {k} ({_name(node)})"
    other = f"LSTM node {k - 1} ({_name(before)})"
    moves, name, seen = [], _text(node.input[0]), set()
    while not (stored.producers.get(name) is before and name == _text(before.output[0])):
        producer = stored.producers.get(name)
        if name in seen or (producer is None and name not in stored.inputs and name not in stored.initializers):
            raise ValueError(f"{path} is truncated or corrupt: the X of LSTM node {k} ({_name(node)}) is "
                             + ("computed from itself" if name in seen else f"'{name}', made by no node"))
        if producer is None:
            source = f"the graph input '{name}'" if name in stored.inputs else f"'{name}', stored in the file"
            raise ValueError(f"{said} reads {source}, not the Y of {other}: --layer all feeds each layer the h of "
                             "the layer before")
        seen.add(name)
        if producer is before or (producer.op_type == "LSTM" and _standard(producer)):
            j = next(j for j, n in enumerate(nodes) if n is producer)
            output = ["Y", "Y_h", "Y_c"][list(producer.output).index(name)] if name in producer.output else "?"
            raise ValueError(f"{said} reads the {output} of LSTM node {j} ({_name(producer)}), not the Y of {other}: "
                             "--layer all feeds each layer every h_t of the layer before")
        if producer.op_type not in _MOVES or not _standard(producer) or not producer.input:
            raise ValueError(f"{said} reads node '{_name(producer)}' ({_text(producer.op_type)}) between it and "
                             f"{other}, which computes on the h_t: --layer all feeds each layer the h of the "
                             f"layer before as it is ({', '.join(_MOVES)} only move it)")
        moves.append(producer)
        name = _text(producer.input[0])
    layout = lambda n: next((a.i for a in n.attribute if a.name == "layout" and a.type == 2), 0)
    D = ("D",) if directions == 2 else ()
    axes = [("B",), ("T",), D, ("H",)] if layout(before) else [("T",), D, ("B",), ("H",)]  # ONNX's Y
    wanted = [("B",), ("T",)] if layout(node) else [("T",), ("B",)]
    wanted.append(("D", "H") if directions == 2 else ("H",))
    for move in reversed(moves):
        try:
            axes = _moved(stored, move, axes, {"T": None, "B": None, "D": directions, "H": H})
        except _Unshown as e:
            raise ValueError(f"{said} reads the Y of {other} through node '{_name(move)}' ({move.op_type}), {e}: "
                             "lstmtrace cannot show that it hands on each step's h as the next layer reads it"
                             ) from None
    if axes != wanted:
        raise ValueError(f"{said} reads the Y of {other} laid out as {_axes_text(axes)}, not "
                         f"{_axes_text(wanted)}" + (" (each step's forward h, then its reverse h)" if directions == 2
                                                   else "") + f", through {_ops_text(moves)}")


def _axes_text(axes) -> str:
    return "(" + ", ".join("·".join(_AXIS_NAMES[a] for a in axis) or "1" for axis in axes) + ")"


def _ops_text(moves) -> str:
    return ", ".join(f"'{_name(m)}' ({m.op_type})" for m in reversed(moves)) if moves else "no op"


def _moved(stored: "_Stored", node, axes: List[tuple], sizes: Dict[str, Optional[int]]) -> List[tuple]:
    """The axes of ``node``'s output, given those of its input 0 (see :func:`_check_fed`)."""
    op, rank = node.op_type, len(axes)
    attrs = {a.name: a for a in node.attribute}
    if op == "Identity":
        return axes
    if op == "Dropout":
        if len(node.input) > 2 and node.input[2] and not stored.zero(_text(node.input[2])):
            raise _Unshown("which may run in training mode")
        return axes
    if op == "Transpose":
        perm = list(attrs["perm"].ints) if "perm" in attrs else list(range(rank))[::-1]
        if sorted(perm) != list(range(rank)):
            raise _Unshown(f"whose perm {perm} does not permute {rank} axes")
        return [axes[p] for p in perm]
    if op == "Flatten":
        axis = attrs["axis"].i if "axis" in attrs else 1
        axis = axis + rank if axis < 0 else axis
        if not 0 <= axis <= rank:
            raise _Unshown(f"whose axis {axis} is out of range")
        return [sum(axes[:axis], ()), sum(axes[axis:], ())]
    if op in ("Squeeze", "Unsqueeze"):
        given = _ints_of(stored, node, "axes", 1)
        if given is None:
            raise _Unshown("whose axes are not stored in the file")
        if op == "Squeeze":
            picked = {a + rank if a < 0 else a for a in given}
            if not picked <= set(range(rank)) or any(axes[a] for a in picked):
                raise _Unshown(f"which squeezes axes {given} of {_axes_text(axes)}")
            return [axis for a, axis in enumerate(axes) if a not in picked]
        out = rank + len(given)
        picked = sorted(a + out if a < 0 else a for a in given)
        if not set(picked) <= set(range(out)) or len(set(picked)) != len(picked):
            raise _Unshown(f"whose axes {given} do not fit {out} axes")
        moved = list(axes)
        for a in picked:
            moved.insert(a, ())
        return moved
    if op == "Reshape":
        shape = stored.ints(_text(node.input[1])) if len(node.input) > 1 and node.input[1] else None
        if shape is None:
            raise _Unshown("whose shape is not stored in the file")
        return _reshaped(axes, shape, "allowzero" in attrs and attrs["allowzero"].i == 1, sizes)
    raise _Unshown("which lstmtrace does not follow")


def _ints_of(stored: "_Stored", node, attribute: str, k: int) -> Optional[List[int]]:
    """A list of ints given as attribute ``attribute`` (before opset 13) or stored input ``k`` (since)."""
    for a in node.attribute:
        if a.name == attribute:
            return list(a.ints)
    return stored.ints(_text(node.input[k])) if len(node.input) > k and node.input[k] else None


def _reshaped(axes: List[tuple], shape: List[int], allowzero: bool, sizes: Dict[str, int]) -> List[tuple]:
    """The axes of a Reshape of ``axes`` to ``shape`` (0: that input axis's size, −1: the rest), each output
    axis taking the next sizes in row-major order; an unknown size (T, B) only matches itself."""
    size = lambda atoms: (tuple(sorted(a for a in atoms if sizes[a] is None)),
                          int(np.prod([sizes[a] for a in atoms if sizes[a] is not None], dtype=np.int64)))
    if allowzero and 0 in shape:
        raise _Unshown(f"whose shape {shape} has a 0 that allowzero makes an empty axis")
    if shape.count(-1) > 1 or any(n < -1 for n in shape) or any(n == 0 and j >= len(axes) for j, n in enumerate(shape)):
        raise _Unshown(f"whose shape {shape} is not one ONNX's Reshape defines for {len(axes)} axes")
    targets = [size(axes[j]) if n == 0 else ((), n) if n > 0 else None for j, n in enumerate(shape)]
    atoms = [a for axis in axes for a in axis]
    if None in targets:
        unknown, number = size(atoms)
        for symbols, n in (t for t in targets if t is not None):
            rest = list(unknown)
            for s in symbols:
                if s not in rest:
                    raise _Unshown(f"whose shape {shape} does not fit {_axes_text(axes)}")
                rest.remove(s)
            if n == 0 or number % n:
                raise _Unshown(f"whose shape {shape} does not fit {_axes_text(axes)}")
            unknown, number = tuple(rest), number // n
        targets[targets.index(None)] = (unknown, number)
    out, at = [], 0
    for target in targets:
        taken = []
        while size(taken) != target:
            if at == len(atoms):
                raise _Unshown(f"whose shape {shape} does not fit {_axes_text(axes)}")
            taken.append(atoms[at])
            at += 1
            symbols, n = size(taken)
            if not set(symbols) <= set(target[0]) or target[1] % n:
                raise _Unshown(f"whose shape {shape} mixes the axes of {_axes_text(axes)}")
        out.append(tuple(taken))
    if at != len(atoms):
        raise _Unshown(f"whose shape {shape} does not fit {_axes_text(axes)}")
    return out
