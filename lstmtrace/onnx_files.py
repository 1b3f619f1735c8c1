"""ONNX models (``.onnx``): each LSTM node's weights, and the attributes that change its math.

ONNX's LSTM operator [1]_ keeps one node's weights in its inputs and says how the cell
computes in its attributes; :func:`declared` reads both, for :func:`lstmtrace.weights.read`:

============== ==================== ==================================================
input          shape                lstmtrace
============== ==================== ==================================================
W              (1, 4H, E)           each gate's W; gates stacked i, o, f, c
R              (1, 4H, H)           each gate's U, same order
B (optional)   (1, 8H)              Wb then Rb, same order; b = Wb + Rb (zeros if absent)
P (optional)   (1, 3H)              peepholes p_i, p_o, p_f: ``Variant(peephole=True)``
============== ==================== ==================================================

============================== ==========================================================
attribute                      lstmtrace
============================== ==========================================================
activations (f, g, h)          gate_activation, candidate_activation, cell_activation:
                               Sigmoid, Tanh, Relu, Softsign, HardSigmoid(alpha, beta)
                               (``hard_sigmoid:ALPHA,BETA``; 0.2, 0.5 when not given),
                               Affine(alpha=1, beta=0) (``linear``); any other is refused
activation_alpha, _beta        consumed in order by the activations that take them, as
                               onnxruntime reads them
clip                           ``clip`` (each gate's pre-activation, peephole included)
input_forget = 1               ``coupled`` (f = 1 − i): the forget gate's rows of W, R, B
                               and its peephole are unused by ONNX, and left out here
direction                      forward only; reverse and bidirectional are refused
layout (0 or 1)                how X and Y are laid out; the weights are the same
hidden_size                    checked against the shapes of W, R, B and P
============================== ==========================================================

``--layer K`` is the K-th LSTM node of the main graph, in graph order (LSTM nodes inside
a Loop's, If's or Scan's subgraph, or a local function, are not read, and a model whose
only LSTMs are there says so).  The inputs ``sequence_lens``, ``initial_h`` and
``initial_c`` do not change the cell's math: give the initial state with ``--h``/``--c``
(``h0``/``c0`` in Python).  W, R, B and P must be stored in the file: an initializer (also
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
    """The K-th LSTM node (``layer``, 0 when None) of the ONNX model ``path``: its variant, its weights in
    :func:`lstmtrace.weights.to_state_dict`'s layout for that variant, and where it is.

    Needs the onnx package (skipped here; tests/test_onnx_files.py checks the same):

    >>> (found,) = declared("tests/fixtures/onnx_peephole_coupled_clip.onnx")  # doctest: +SKIP
    >>> found.variant, found.where  # doctest: +SKIP
    (Variant(peephole=True, coupled=True, clip=0.8), 'tests/fixtures/onnx_peephole_coupled_clip.onnx LSTM node 0 (lstm_cifg)')
    """
    path = os.fspath(path)
    onnx = _import_onnx(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no file {path!r}")
    with warnings.catch_warnings():  # whatever onnx or protobuf would say stays out of the terminal
        warnings.simplefilter("ignore")
        model = _model(onnx, path)
        graph = model.graph
        nodes = [n for n in graph.node if n.op_type == "LSTM" and n.domain in _STANDARD]
        if not nodes:
            raise ValueError(_no_lstm(path, model))
        k = 0 if layer is None else layer
        if not 0 <= k < len(nodes):
            raise WhichCellError(f"{path} has no LSTM node {k}; its LSTM nodes are "
                                 + ", ".join(f"{j} ({_name(n)})" for j, n in enumerate(nodes)), "layer")
        node = nodes[k]
        return [_declared(onnx, path, graph, node, f"{path} LSTM node {k} ({_name(node)})")]


def declared_layers(path) -> List[List[Declared]]:
    """Every LSTM node of the ONNX model ``path``, in graph order, as :func:`declared` gives each."""
    declared(path, 0)
    raise ValueError(f"{path}: --layer all does not read ONNX models yet")


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

def _declared(onnx, path: str, graph, node, where: str) -> Declared:
    from lstmtrace.variant import Variant

    attrs = _attributes(node, where)
    direction = attrs.get("direction", b"forward").decode("utf-8", "replace")
    if direction != "forward":
        if direction in ("reverse", "bidirectional"):
            raise ValueError(f"{where} runs direction='{direction}': --direction is not supported yet, "
                             "lstmtrace reads forward LSTMs only")
        raise ValueError(f"{where} has direction={direction!r}; ONNX's LSTM runs forward, reverse or "
                         "bidirectional")
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
    H = _hidden_size(attrs, tensors, where)
    E = tensors["W"].dims[2] if len(tensors["W"].dims) == 3 else 0
    expected = {"W": ((1, 4 * H, E), "(1, 4H, E)"), "R": ((1, 4 * H, H), "(1, 4H, H)"), "B": ((1, 8 * H), "(1, 8H)"),
                "P": ((1, 3 * H), "(1, 3H)")}
    for role, tensor in tensors.items():
        shape, spelled = expected[role]
        if tuple(tensor.dims) != shape or E < 1:
            raise ValueError(f"{where}: {role} has shape {_shape(tensor.dims)}; a forward LSTM of hidden size "
                             f"H = {H} has {spelled}" + (f" = {_shape(shape)}" if E >= 1 else ""))
    arrays = {role: stored.array(role, tensor)[0] for role, tensor in tensors.items()}  # one direction
    coupled = attrs.get("input_forget", 0) == 1
    settings = _activations(attrs, where)
    if "clip" in attrs:
        settings["clip"] = _float32(attrs["clip"])
    try:
        variant = Variant(peephole="P" in arrays, coupled=coupled, **settings)
    except OptionError as e:  # a value of the file's, not of an option: name the node
        raise ValueError(f"{where}: {e}") from None
    return Declared(variant, _state(arrays, H, coupled), where)


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


def _hidden_size(attrs, tensors, where: str) -> int:
    """H: the hidden_size attribute, or R's last dimension when there is none."""
    R = tensors["R"].dims
    H = attrs.get("hidden_size", R[2] if len(R) == 3 else 0)
    if H < 1:
        raise ValueError(f"{where} has hidden_size {H}" if "hidden_size" in attrs else
                         f"{where}: R has shape {_shape(R)}; a forward LSTM has (1, 4H, H)")
    return H


def _activations(attrs, where: str) -> Dict[str, str]:
    """The three activations as Variant fields, alpha and beta consumed in order as onnxruntime does."""
    names = [s.decode("utf-8", "replace") for s in attrs.get("activations", [b"Sigmoid", b"Tanh", b"Tanh"])]
    if len(names) != 3:
        raise ValueError(f"{where} has {len(names)} activations ({', '.join(names) or 'none'}); a forward LSTM "
                         "has 3: f (the gates), g (the candidate), h (the cell)")
    alphas, betas = iter(attrs.get("activation_alpha", [])), iter(attrs.get("activation_beta", []))
    settings = {}
    for name, (letter, field, whose) in zip(names, SLOTS):
        key = name.lower()
        if key not in _SAME and key not in _TAKES and key != "softplus":
            raise ValueError(f"{where}: its activation {letter} ({whose}) is '{name}', which ONNX's LSTM does not "
                             f"define (it defines {', '.join(_KNOWN)})")
        takes = _TAKES.get(key, (False, False))
        default = _DEFAULTS.get(key, (None, None))
        alpha = _float32(next(alphas, default[0])) if takes[0] else None
        beta = _float32(next(betas, default[1])) if takes[1] else None
        if key in _SAME:
            settings[field] = _SAME[key]
        elif key == "hardsigmoid" and alpha > 0 and np.isfinite(alpha) and np.isfinite(beta):
            settings[field] = f"hard_sigmoid:{alpha!r},{beta!r}"
        elif key == "affine" and alpha == 1.0 and beta == 0.0:
            settings[field] = "linear"
        elif key == "affine" and (alpha is None or beta is None):
            raise ValueError(f"{where}: its activation {letter} ({whose}) is Affine without activation_alpha and "
                             "activation_beta, which onnxruntime reads as 0 and the Affine operator as 1 and 0: "
                             "lstmtrace cannot tell which the model means")
        else:
            given = ", ".join(f"{n}={v:g}" for n, v in (("alpha", alpha), ("beta", beta)) if v is not None)
            raise ValueError(f"{where}: its activation {letter} ({whose}) is {name}({given}), which lstmtrace "
                             "cannot compute (it computes Sigmoid, Tanh, Relu, Softsign, HardSigmoid with alpha > 0 "
                             "and Affine(alpha=1, beta=0), the identity)")
    return settings


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
