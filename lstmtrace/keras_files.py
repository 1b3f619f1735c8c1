"""Keras' files: a ``.keras`` archive, a legacy ``.h5``, and Keras 3's ``.weights.h5``.

A ``.keras`` archive and a legacy ``.h5`` written by ``model.save`` hold the model's
config, which says how each LSTM computes: :func:`declared` reads it (JSON, never
pickle, never Keras) with that layer's weights and returns the matching
:class:`lstmtrace.Variant`.  A weights-only file (``model.save_weights``) cannot
say: :func:`weights_only` picks its cell for :func:`lstmtrace.weights.load`, and
the variant is assumed.  What Keras writes, as Keras 3.15 writes it (Keras 2's
legacy files as tf.keras' ``hdf5_format`` lays them out: no Keras 2 was at hand to check)::

    model.save("m.keras")          a zip: config.json (the model, as JSON), metadata.json
                                   ({"keras_version": "3.15.1", …}), model.weights.h5:
                                   layers/<path>/cell/vars/0, 1, 2 = kernel, recurrent_kernel,
                                   bias, where <path> is the layer's class in snake_case,
                                   numbered _1, _2, … in model order (nested models:
                                   layers/sequential/layers/lstm/…; a Bidirectional's halves:
                                   layers/bidirectional/forward_layer/… and …/backward_layer/…);
                                   layers/<path>/vars has an attribute "name", the layer's name
                                   (a half's: forward_<name>, backward_<name>)
    model.save_weights("m.weights.h5")   the same HDF5 layout, alone: no config
    model.save("m.h5") (legacy)    HDF5; root attributes keras_version, backend, model_config
                                   (JSON); model_weights has attribute layer_names, and each
                                   model_weights/<layer> an attribute weight_names, the paths
                                   of its arrays under it: Keras 3 "sequential/lstm/lstm_cell/
                                   kernel", Keras 2 "lstm/lstm_cell/kernel:0" (2.0-2.2:
                                   "lstm_1/kernel:0"); a Bidirectional's: Keras 3 "sequential/
                                   bidirectional/forward_lstm/lstm_cell/kernel", then its
                                   backward_lstm's, Keras 2 "bidirectional/forward_lstm/
                                   lstm_cell/kernel:0"
    model.save_weights("w.h5") (Keras 2)  the same as model_weights, at the root: no config

Keras applies ``activation`` to both the candidate and the cell state, and
``recurrent_activation`` to the three gates.  "hard_sigmoid" changed meaning between
versions: Keras 2's is clip(0.2·x + 0.5, 0, 1) (``hard_sigmoid:0.2,0.5``), Keras 3's
relu6(x + 3)/6 (``hard_sigmoid``); the version that saved the file decides.

Directions.  A ``Bidirectional(LSTM(...))`` is two cells: its forward_layer (direction "forward")
and its backward_layer (direction "reverse": it reads x_T … x_1, and Keras flips its h back to time
order before handing them on, so passes_on "time"), each with the activations of its own config
(Keras 3 writes both; Keras 2 ``layer`` only, unless a backward_layer was given, and both halves
share its config).  An
``LSTM(go_backwards=True)`` outside Bidirectional is one reverse cell whose h Keras hands on in the
order it ran, h_T first (passes_on "run").  Every cell's steps are reported in the model's time
order: step t is the one that read x_t.

Stacks (:func:`declared_layers`).  Each LSTM layer must read the h_t of the one before for every t:
only layers that compute nothing at inference may stand between (:data:`_PASS_THROUGH`: Dropout,
SpatialDropout1D, GaussianNoise, GaussianDropout, AlphaDropout, ActivityRegularization, InputLayer);
an Embedding or anything else may come before the first, and any head after the last.

Refused, one line each naming the layer and the setting: activations lstmtrace does not compute,
CuDNNLSTM and PeepholeLSTMCell, a Bidirectional of an LSTM with go_backwards=True (its halves swap,
and Keras' fused cuDNN path ignores that: what the model computes depends on where it runs) or whose
backward_layer is not an LSTM; and, in a stack only: a layer between two LSTM layers that computes
something (Dense, Masking, which skips steps, …), an LSTM that hands on only its last h
(return_sequences=False), a Bidirectional whose merge_mode is not "concat" (sum, mul, ave, None: the
next layer does not read both halves' h), and a functional model whose LSTM layers do not chain
(a layer reading two tensors, an initial_state, a state output).
"""
import io
import json
import os
import re
import zipfile
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple, Union

import numpy as np

from lstmtrace import weights
from lstmtrace.damage import Explained, check_not_empty, first_line, isolated, reading

__all__ = ["declared", "declared_layers", "embedding", "h5_read", "weights_only"]

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_ZIP_SIGNATURE = b"PK\x03\x04"
_WEIGHTS_MEMBER = "model.weights.h5"

_ACTIVATIONS = ("sigmoid", "tanh", "relu", "linear", "softsign", "hard_sigmoid")
"""The Keras activations lstmtrace computes; their lstmtrace keys are the same names (but hard_sigmoid's
depends on the Keras version: :func:`_activation`)."""
_KERAS_MODULE = re.compile(r"^keras(\.src)?\.activations(\.activations)?$")
_CELL_NAME = re.compile(r"^lstm_cell(_\d+)?$")
_EMBEDDING_GROUP = re.compile(r"^embedding(_\d+)?$")  # a Keras 3 weights file's group of an Embedding layer


def declared(path, layer: Optional[int] = None) -> Optional[List[weights.Declared]]:
    """LSTM layer ``layer`` (0 when None) of a ``.keras`` archive or a legacy ``.h5`` model file: its
    variant, weights and where it is, one :class:`~lstmtrace.weights.Declared` per direction it runs
    (a Bidirectional's forward_layer, then its backward_layer); None for a weights-only ``.h5`` (it cannot
    say how its cell computes), which :func:`lstmtrace.weights.load` then reads.
    """
    path = os.fspath(path)
    model = _model(path)
    if model is None:
        return None  # weights only: weights.load reads it (and says what is wrong, after its checks of the options)
    config, version, read_cells = model
    layers = _listed(path, config)
    k = 0 if layer is None else layer
    if not 0 <= k < len(layers):
        raise weights.WhichCellError(f"{path} has no LSTM layer {k}; its LSTM layers are "
                                     + ", ".join(f"{j} ({'/'.join(found_layer.names)})"
                                                 for j, found_layer in enumerate(layers)), "layer")
    return _declare(path, k, layers[k], version, read_cells)


def declared_layers(path) -> Optional[List[List[weights.Declared]]]:
    """Every LSTM layer of a ``.keras`` archive or a legacy model ``.h5``, in the order they run, as
    :func:`declared` gives each; None for a weights-only file.

    The layers must feed one another directly, as ``--layer all`` chains them: each LSTM layer reads
    the one before's h_t for every t (return_sequences=True; a Bidirectional's two halves
    concatenated, merge_mode="concat"), with only layers that compute nothing at inference between them
    (:data:`_PASS_THROUGH`).  Anything else is a ValueError naming the layer.
    """
    path = os.fspath(path)
    model = _model(path)
    if model is None:
        return None
    config, version, read_cells = model
    layers = _listed(path, config)
    for k, layer in enumerate(layers):  # every refusal before any weights are read
        _check_traceable(path, k, layer)
    _check_chained(path, config, layers)
    found = read_cells()
    return [_declare(path, k, layer, version, lambda: found) for k, layer in enumerate(layers)]


def weights_only(path: str, found: Dict[str, np.ndarray], layer: Optional[int], cell=None) -> weights.Gates:
    """The gates of LSTM cell ``layer`` (0 when None) of a weights-only Keras file (Keras 3
    ``save_weights``, or a legacy ``.h5``) whose cells :func:`h5_read` ``found``: Keras 3's in the
    natural order of their paths, legacy ones in layer order.  ``cell``: see :func:`weights.from_state_dict`."""
    cells = _cells(found)
    if not cells:
        raise ValueError(f"{path} has no LSTM layer (Keras 3 save_weights keeps each under "
                         "layers/<name>/cell/vars)")
    k = 0 if layer is None else layer
    if not 0 <= k < len(cells):
        raise weights.WhichCellError(f"{path} has no LSTM layer {k}; its layers are "
                                     + ", ".join(f"{j} ({c.label})" for j, c in enumerate(cells)), "layer")
    chosen = cells[k]
    if "backward" in chosen.group:
        raise ValueError(f"{chosen.group}: the backward half of a Bidirectional layer is not "
                         "supported (lstmtrace traces left to right)")
    arrays = {"kernel": chosen.kernel, "recurrent_kernel": chosen.recurrent_kernel}
    if chosen.bias.size:
        arrays["bias"] = chosen.bias
    return weights.from_keras(arrays, f"{path} layer {k} ({chosen.label})", cell)


def embedding(path, key: str):
    """The embeddings matrix (input_dim × output_dim, as float64) of the ``Embedding`` layer named ``key``
    (or its path, ``outer/inner``, in a nested model) in a ``.keras`` archive or a legacy model ``.h5``.

    A weights-only file has no config to name its layers: in a Keras 3 ``.weights.h5`` ``key`` is the
    layer's group (``embedding``, ``embedding_1``, …, as Keras names it after the class), in a legacy
    ``save_weights`` ``.h5`` the layer's name; both hold an Embedding's matrix as its only weight.
    With ``mask_zero=True`` in the config it returns ``(matrix, (0,))``: id 0 is then padding, whose steps
    Keras' LSTM skips (keeping the state), which a trace of every step would not show: the command line
    refuses such ids.
    """
    from lstmtrace.errors import OptionError

    path = os.fspath(path)
    if path.lower().endswith(".keras"):
        config, _, read_weights = _archive_parts(path)
        listing = read_weights(h5_embeddings, "")
    else:
        _check_hdf5(path, "an HDF5 file (as Keras' model.save or save_weights writes)")
        read_weights = lambda reader, *args: isolated(path, reader, path, None, *args)
        listing = read_weights(h5_embeddings, "")
        text = str(listing["model_config"])
        config = _config(path, text, "its model_config") if text else None
    tables = [(tuple(str(listing[f"{j}.names"]).split("/")), tuple(filter(None, str(listing[f"{j}.paths"]).split("/"))),
               str(listing[f"{j}.dataset"])) for j in range(int(listing["count"]))]
    if config is None:  # weights only: the file's own names
        said = lambda names, paths: "/".join(paths or names)
        chosen = [t for t in tables if key in ("/".join(t[0]), "/".join(t[1]))]
        if not chosen:
            raise OptionError(f"{path} has no Embedding layer {key!r}; " + (
                f"its Embedding layers are {', '.join(said(*t[:2]) for t in tables)}" if tables else
                "it holds no Embedding layer's weights"), "embedding")
        dataset, where, shape = chosen[0][2], f"{path} {key}", None
    else:
        layers = [(names, paths, entry["config"]) for entry, names, paths in _leaves(config)
                  if entry.get("class_name") == "Embedding" and isinstance(entry.get("config"), dict)]
        named = [la for la in layers if key in ("/".join(la[0]), la[0][-1])]
        if not named:
            raise OptionError(f"{path} has no Embedding layer {key!r}; " + (
                f"its Embedding layers are {', '.join('/'.join(la[0]) for la in layers)}" if layers else
                "it has no Embedding layer"), "embedding")
        if len(named) > 1:
            raise OptionError(f"{path} has {len(named)} Embedding layers named {key!r}: give one's path, "
                              + " or ".join("/".join(la[0]) for la in named), "embedding")
        names, paths, layer_config = named[0]
        where = f"{path} Embedding layer {'/'.join(names)}"
        by_name = [t for t in tables if t[0] == names] if any(t[0] != ("",) for t in tables) else []
        by_path = [t for t in tables if t[1] == paths] if any(t[1] for t in tables) else []
        found = by_name or by_path
        if len(found) != 1:
            raise ValueError(f"{where}: the file holds no weights for it ({path} is truncated or corrupt, or "
                             "from a Keras this version does not know)")
        dataset = found[0][2]
        shape = tuple(layer_config.get(k) for k in ("input_dim", "output_dim"))
    table = read_weights(h5_embeddings, dataset)["table"]
    if table.ndim != 2 or table.dtype.kind not in "iuf":
        raise ValueError(f"{where}: its embeddings are {table.dtype} of shape {table.shape}, not a V×E matrix")
    if shape is not None and all(isinstance(n, int) for n in shape) and table.shape != shape:
        raise ValueError(f"{where}: the config says input_dim × output_dim = {shape[0]}×{shape[1]}, and its "
                         f"embeddings have shape {table.shape}")
    if config is not None and layer_config.get("mask_zero"):
        return table.astype(np.float64), (0,)
    return table.astype(np.float64)


# -- the containers ------------------------------------------------------------------

def _need_h5py(path: str) -> None:
    try:
        import h5py  # noqa: F401 -- only to say what to install, before any work
    except ImportError:
        raise ImportError(f"reading {os.path.basename(path)} needs h5py: pip install 'lstmtrace[keras]'"
                          ) from None


def _check_hdf5(path: str, kind: str) -> None:
    _need_h5py(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no file {path!r}")
    if check_not_empty(path, kind) != _HDF5_SIGNATURE:
        raise ValueError(f"{path} is not an HDF5 file")


def _model(path: str) -> Optional[Tuple[dict, Optional[str], Callable[[], Dict[str, np.ndarray]]]]:
    """A model file's config, the Keras version that saved it, and ``read_cells()``, which reads its LSTM
    cells (as :func:`h5_read` returns them); None for a weights-only ``.h5`` (or one :func:`weights.load`
    should explain)."""
    if path.lower().endswith(".keras"):
        config, version, read_weights = _archive_parts(path)
        return config, version, lambda: read_weights(h5_read, False)
    try:
        _check_hdf5(path, "an HDF5 file (as Keras' save_weights writes)")
    except (ImportError, OSError, ValueError):
        return None  # weights.load says what is wrong, after its checks of the options
    found = isolated(path, h5_read, path, None, True)
    if not str(found["model_config"]):
        return None  # weights only: weights.load reads it, and the variant is assumed
    return _config(path, str(found["model_config"]), "its model_config"), _version(found), lambda: found


def _archive_parts(path: str) -> Tuple[dict, Optional[str], Callable[..., Dict[str, np.ndarray]]]:
    """A ``.keras`` zip's config, Keras version, and ``read_weights(reader, *args)``, which runs
    ``reader(name, data, *args)`` (as :func:`h5_read`) on its model.weights.h5 in a child process."""
    kind = 'a .keras archive (a zip of config.json and model.weights.h5, as model.save("model.keras") writes)'
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no file {path!r}")
    magic = check_not_empty(path, kind)
    if magic == _HDF5_SIGNATURE:
        raise ValueError(f"{path} is an HDF5 file, not a .keras archive: name it .h5 (model.save(\"m.h5\") "
                         "writes Keras' legacy HDF5 format)")
    if magic[:4] != _ZIP_SIGNATURE:
        raise ValueError(f"{path} is not {kind}")
    with open(path, "rb") as f, reading(path), zipfile.ZipFile(f) as archive:
        members = set(archive.namelist())
        if "config.json" not in members:
            raise Explained(f"{path} is not a .keras archive (no config.json)")
        text = archive.read("config.json")
        metadata = archive.read("metadata.json") if "metadata.json" in members else b"{}"
    config = _config(path, text, "its config.json")
    version = str(_config(path, metadata, "its metadata.json").get("keras_version", "")) or None

    def read_weights(reader, *args):
        _need_h5py(path)
        with open(path, "rb") as f, reading(path), zipfile.ZipFile(f) as archive:
            if _WEIGHTS_MEMBER not in archive.namelist():
                raise Explained(f"{path} is not a whole .keras archive (no {_WEIGHTS_MEMBER})")
            data = archive.read(_WEIGHTS_MEMBER)
        # libhdf5 can crash or loop forever on some damaged files: read it in a child process
        return isolated(path, reader, f"{_WEIGHTS_MEMBER} in {path}", data, *args)

    return config, version, read_weights


def _config(path: str, text, what: str) -> dict:
    """JSON text from a Keras file, as a dict; damage is one sentence."""
    try:
        config = json.loads(text)
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is truncated or corrupt: {what} is not JSON ({first_line(e)})") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path} is truncated or corrupt: {what} is not a JSON object")
    return config


def _version(found: Dict[str, np.ndarray]) -> Optional[str]:
    return str(found["keras_version"]) or None


# -- which LSTM layers a model has, from its config --------------------------------------------

class _Layer(NamedTuple):
    """One LSTM cell of a model's config: a layer's, or one half of a Bidirectional's."""

    names: Tuple[str, ...]  # its name, after the names of the models (and the Bidirectional) it is in
    paths: Tuple[str, ...]  # the same, as Keras 3's weights file spells them (snake_case class, _1, _2, …)
    config: dict  # the LSTM's config (an RNN's: its LSTMCell's, with the RNN's go_backwards)
    refused: str  # why lstmtrace cannot trace it, or ""
    input_size: Optional[int]
    direction: str = "forward"  # see weights.Declared
    passes_on: str = "time"
    labels: Tuple[str, ...] = ()  # legacy files: the names its weights may be under (else names[-1])


class _LSTMLayer(NamedTuple):
    """One LSTM layer of a model's config, in model order: its cells, forward first, and what it hands on."""

    names: Tuple[str, ...]
    cells: List[_Layer]
    refused: str  # why lstmtrace cannot trace the layer (either half), or ""
    sequences: bool  # return_sequences: it hands on h_t for every t
    merge_mode: Optional[str] = "concat"  # a Bidirectional's: how it hands its halves' h on


def _snake(name: str) -> str:
    """Keras' ``naming.to_snake_case``: how a Keras 3 weights file names a layer's group."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _kind(entry) -> str:
    return str(entry.get("class_name", "")) if isinstance(entry, dict) else ""


def _name(entry: dict) -> str:
    """A layer's name in its config entry (Keras 2.0's entries keep it outside the config)."""
    config = entry.get("config")
    return str(config.get("name", _kind(entry)) if isinstance(config, dict) else entry.get("name", _kind(entry)))


def _lstm_of(entry) -> Tuple[Optional[dict], str]:
    """(the LSTM config of a layer's config entry, why it cannot be traced); (None, "") for a layer that
    is not an LSTM."""
    if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
        return None, ""
    kind, config = _kind(entry), entry["config"]
    if kind == "LSTM":
        return config, ""
    if kind == "RNN":  # keras.layers.RNN(keras.layers.LSTMCell(H))
        cell = config.get("cell")
        cell_kind = cell.get("class_name") if isinstance(cell, dict) else None
        if cell_kind in ("LSTMCell", "PeepholeLSTMCell") and isinstance(cell.get("config"), dict):
            refused = "" if cell_kind == "LSTMCell" else (
                "PeepholeLSTMCell: TensorFlow's peephole cell, which this version does not read from Keras files")
            return {**cell["config"], "go_backwards": config.get("go_backwards", False),
                    "return_sequences": config.get("return_sequences", False)}, refused
        return None, ""
    if kind == "CuDNNLSTM":
        return config, "CuDNNLSTM: two biases per gate, which this version does not read"
    return None, ""


def _lstm_layer(entry: dict, names: Tuple[str, ...], paths: Tuple[str, ...]) -> Optional[_LSTMLayer]:
    """The LSTM layer a config entry is (None when it is none): an LSTM runs forward and hands on h_t at
    each t; one with go_backwards=True runs over x_T … x_1 and hands on its h in the order it ran."""
    if _kind(entry) == "Bidirectional":
        return _bidirectional(entry, names, paths)
    lstm, refused = _lstm_of(entry)
    if lstm is None:
        return None
    backwards = bool(lstm.get("go_backwards"))
    cell = _Layer(names, paths, lstm, refused, _input_size(entry), "reverse" if backwards else "forward",
                  "run" if backwards else "time")
    return _LSTMLayer(names, [cell], "", bool(lstm.get("return_sequences")))


def _bidirectional(entry: dict, names: Tuple[str, ...], paths: Tuple[str, ...]) -> Optional[_LSTMLayer]:
    """A Bidirectional of an LSTM: its forward_layer (the config's ``layer``) and its backward_layer, which
    runs over x_T … x_1 and whose h Keras flips back to time order before handing them on.  Keras 3 writes
    both halves' configs (named forward_<name> and backward_<name>); Keras 2 only ``layer``, unless a
    backward_layer was given, and names the halves' weights forward_<name>, backward_<name>."""
    config = entry["config"]
    forward, refused = _lstm_of(config.get("layer"))
    if forward is None:
        return None  # a Bidirectional GRU, say: not an LSTM layer
    inner = config["layer"]
    given = config.get("backward_layer")
    if given is None:  # Keras 2, and Keras 3 when it was not given: the layer's config, running the other way
        backward, back_refused = {**forward, "go_backwards": not forward.get("go_backwards", False)}, refused
        back_entry = inner
    else:
        backward, back_refused = _lstm_of(given)
        back_entry = given
        if backward is None:
            return _LSTMLayer(names, [], f"Bidirectional with a {_kind(given) or 'custom'} backward_layer, "
                                         "which is not an LSTM", bool(forward.get("return_sequences")))
    layer_refused = ""
    if forward.get("go_backwards"):
        layer_refused = ("Bidirectional of an LSTM with go_backwards=True swaps its halves, and Keras computes that "
                         "differently on its fused cuDNN path (which runs the forward_layer forward) and its "
                         "generic one: lstmtrace does not trace it")
    elif not backward.get("go_backwards"):
        layer_refused = "Bidirectional whose backward_layer has go_backwards=False runs both halves forward"

    def half(cell_entry, lstm, why, prefix, attribute, direction, renamed):
        """One half: named as Keras names its weights (``renamed``: prefix + the config's name, as Keras
        renames the forward_layer, and a backward_layer it makes itself), or as its config says."""
        name = str(lstm.get("name", prefix.rstrip("_")))
        prefixed = prefix + (name[len(prefix):] if name.startswith(prefix) else name)
        return _Layer(names + (prefixed if renamed else name,), paths + (attribute,), lstm, why,
                      _input_size(cell_entry) or _input_size(entry), direction, "time", (name, prefixed))

    cells = [half(inner, forward, refused, "forward_", "forward_layer", "forward", True),
             half(back_entry, backward, back_refused, "backward_", "backward_layer", "reverse", given is None)]
    return _LSTMLayer(names, cells, layer_refused, bool(forward.get("return_sequences")),
                      config.get("merge_mode", "concat"))


def _lstm_layers(config: dict) -> List[_LSTMLayer]:
    """Every LSTM layer of a model's config, in model order, nested models' included."""
    return [layer for layer in (_lstm_layer(entry, names, paths) for entry, names, paths in _leaves(config))
            if layer is not None]


def _listed(path: str, config: dict) -> List[_LSTMLayer]:
    """The LSTM layers of a model file's config; a model without any is one sentence."""
    layers = _lstm_layers(config)
    if not layers:
        if _inner_layers(config) is None:
            raise ValueError(f"{path} holds a {config.get('class_name', 'model')} whose config does not list "
                             "its layers (a subclassed Model): save its weights with model.save_weights"
                             "(\"m.weights.h5\") and give the activations with --activation")
        raise ValueError(f"{path} has no LSTM layer")
    return layers


def _leaves(config: dict) -> List[Tuple[dict, Tuple[str, ...], Tuple[str, ...]]]:
    """Every layer of a model's config that is not itself a model, in model order, as (its config entry,
    its names, its paths): see :class:`_Layer`."""
    found = []

    def walk(entries, names, paths):
        used: Dict[str, int] = {}
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, dict):
                continue
            kind, name = _kind(entry), _name(entry)
            snake = _snake(kind)  # Keras' _get_unique_name: lstm, lstm_1, lstm_2, …
            used[snake] = used[snake] + 1 if snake in used else 0
            here = (names + (name,), paths + (snake if not used[snake] else f"{snake}_{used[snake]}",))
            inner = _inner_layers(entry)
            if inner is not None:
                walk(inner, *here)
            else:
                found.append((entry, *here))

    walk(_inner_layers(config) or [], (), ())
    return found


def _inner_layers(entry: dict) -> Optional[list]:
    """The layers of a model's config entry (Sequential, Functional, Model; Keras 2.0's Sequential is a list)."""
    config = entry.get("config")
    if isinstance(config, list):
        return config
    if isinstance(config, dict) and isinstance(config.get("layers"), list):
        return config["layers"]
    return None


def _input_size(entry: dict) -> Optional[int]:
    """E, when the config says it: Keras 3's build_config, Keras 2's batch_input_shape."""
    config = entry.get("config") if isinstance(entry.get("config"), dict) else {}
    for shape in ((entry.get("build_config") or {}).get("input_shape"), config.get("batch_input_shape")):
        if isinstance(shape, list) and shape and isinstance(shape[-1], int) and not isinstance(shape[-1], bool):
            return shape[-1]
    return None


# -- how the layers feed one another ------------------------------------------------------------

_PASS_THROUGH = ("InputLayer", "Dropout", "SpatialDropout1D", "GaussianNoise", "GaussianDropout", "AlphaDropout",
                 "ActivityRegularization")
"""Layers that compute nothing at inference: between two LSTM layers, the h_t reach the second unchanged."""

Source = Union[Tuple[str, ...], None, str]
"""What a layer reads: the names of the layer whose output it is, None for the model's input, or (a str)
a phrase saying what else it reads."""


def _sources(config: dict) -> Dict[Tuple[str, ...], Source]:
    """What every layer of a model's config that is not itself a model reads (see :data:`Source`), by its
    names as :func:`_leaves` gives them: a Sequential's layer reads the one before it, a functional
    model's layer the tensor its inbound node names."""
    sources: Dict[Tuple[str, ...], Source] = {}

    def walk(model: dict, names: Tuple[str, ...], feeding: Source) -> Source:
        """Record the sources of ``model``'s layers, fed ``feeding``; what the model hands on."""
        entries = [e for e in _inner_layers(model) or [] if isinstance(e, dict)]
        functional = _kind(model) != "Sequential" and any("inbound_nodes" in e for e in entries)
        outputs: Dict[str, Source] = {}
        current = feeding
        for entry in entries:
            name = _name(entry)
            if functional:
                current = _inbound(entry, outputs, feeding)
            here = names + (name,)
            if _inner_layers(entry) is not None:
                current = walk(entry, here, current)  # a nested model hands on what its layers do
            else:
                sources[here], current = current, here
            outputs[name] = current
        if not functional:
            return current
        handed = _references(model["config"].get("output_layers"))
        if len(handed) != 1:
            return f"the {len(handed)} outputs of model {'/'.join(names) or _name(model)}"
        return outputs.get(handed[0][0], f"layer {handed[0][0]}, which the model does not list")

    walk(config, (), None)
    return sources


def _inbound(entry: dict, outputs: Dict[str, Source], feeding: Source) -> Source:
    """What a functional model's layer reads, from its inbound_nodes; ``outputs`` says what each layer
    before it hands on, ``feeding`` what the model's input is."""
    nodes = entry.get("inbound_nodes")
    if not nodes:
        return feeding  # an InputLayer: the model's input
    if not isinstance(nodes, list) or len(nodes) != 1:
        return f"{len(nodes) if isinstance(nodes, list) else 'several'} inputs (the layer is called more than once)"
    read = _references(nodes[0])
    if len(read) != 1:
        return f"{len(read)} tensors ({', '.join(r[0] for r in read)}: an initial_state, say, where lstmtrace starts from zeros)"
    name, _, index = read[0]
    if index != 0:
        return f"output {index} of layer {name} (one of its states, not its h_t)"
    return outputs.get(name, f"layer {name}, which the model does not list before it")


def _references(node) -> List[Tuple[str, int, int]]:
    """The tensors a functional config names, as (layer, node index, tensor index): Keras 3's
    ``{"keras_history": [layer, node, tensor]}``, Keras 2's ``[layer, node, tensor, kwargs]``."""
    if isinstance(node, dict):
        history = node.get("keras_history")
        if isinstance(history, list) and len(history) == 3:
            return [(str(history[0]), history[1], history[2])]
        return [r for value in node.values() for r in _references(value)]
    if isinstance(node, list):
        if len(node) in (3, 4) and isinstance(node[0], str) and all(isinstance(n, int) for n in node[1:3]):
            return [(node[0], node[1], node[2])]
        return [r for value in node for r in _references(value)]
    return []


def _check_chained(path: str, config: dict, layers: List[_LSTMLayer]) -> None:
    """That each LSTM layer reads the one before's h_t for every t, as --layer all feeds them: through
    layers that compute nothing at inference only, the whole sequence, both halves concatenated."""
    sources = _sources(config)
    kinds = {names: _kind(entry) for entry, names, _ in _leaves(config)}
    for k in range(1, len(layers)):
        before, after = layers[k - 1], layers[k]
        reads = sources.get(after.names)
        while isinstance(reads, tuple) and kinds.get(reads) in _PASS_THROUGH:
            reads = sources.get(reads)
        if reads != before.names:
            said = (reads if isinstance(reads, str) else "the model's input" if reads is None else
                    f"the output of {kinds.get(reads) or 'the'} layer {'/'.join(reads)}")
            raise ValueError(f"{path} layer {k} ({'/'.join(after.names)}) reads {said}, not LSTM layer {k - 1}'s h: "
                             "--layer all feeds each LSTM layer the h of the one before")
        where = f"{path} layer {k - 1} ({'/'.join(before.names)})"
        if not before.sequences:
            raise ValueError(f"{where} hands on only its last h (return_sequences=False), so LSTM layer {k} does "
                             "not read its h_t for every t as --layer all would feed it")
        if before.merge_mode != "concat":
            raise ValueError(f"{where} merges its two directions with merge_mode={before.merge_mode!r}, and "
                             f"--layer all feeds LSTM layer {k} both directions' h, concatenated (merge_mode='concat')")


# -- one layer: its variant and its weights ------------------------------------------------------

def _check_traceable(path: str, k: int, layer: _LSTMLayer) -> None:
    """That lstmtrace computes LSTM layer ``k``'s every cell, as far as the config says."""
    if layer.refused:
        raise ValueError(f"{path} layer {k} ({'/'.join(layer.names)}): {layer.refused}")
    for cell in layer.cells:
        if cell.refused:
            raise ValueError(f"{path} layer {k} ({'/'.join(cell.names)}): {cell.refused}")


def _declare(path: str, k: int, layer: _LSTMLayer, version: Optional[str],
             read_cells: Callable[[], Dict[str, np.ndarray]]) -> List[weights.Declared]:
    """LSTM layer ``k`` of a model saved by Keras ``version``, one Declared per cell (forward first); its
    weights are among the cells that ``read_cells()`` finds (as :func:`h5_read` returns them)."""
    _check_traceable(path, k, layer)
    major = _major(path, version)
    cells = _cells(read_cells())
    return [_declare_cell(path, f"{path} layer {k} ({'/'.join(chosen.names)})", chosen, major, cells)
            for chosen in layer.cells]


def _declare_cell(path: str, where: str, chosen: _Layer, major: Optional[int], cells: List["_Cell"]
                  ) -> weights.Declared:
    """One LSTM cell: its variant from its config, its weights from the file's ``cells``."""
    from lstmtrace.variant import Variant

    # unit_forget_bias only initialises the forget gate's bias to 1: the saved bias already holds it.
    # dropout and recurrent_dropout act only in training, stateful and unroll change nothing in one
    # sequence's arithmetic, nor do implementation (Keras 2) and use_cudnn (Keras 3).
    gate = _activation(chosen.config, "recurrent_activation", where, major)
    act = _activation(chosen.config, "activation", where, major)
    variant = Variant(gate_activation=gate, candidate_activation=act, cell_activation=act)
    arrays = _checked(chosen, _match(cells, chosen, where, path), where)
    gates = weights.from_keras(arrays, where, variant.cell)
    return weights.Declared(variant=variant, state=weights.to_state_dict(gates), where=where,
                            direction=chosen.direction, passes_on=chosen.passes_on)


def _major(path: str, version: Optional[str]) -> Optional[int]:
    """Keras' major version from a file's keras_version ("3.15.1", "2.2.4-tf"), None when it does not say."""
    if version is None:
        return None
    m = re.match(r"\s*(\d+)", version)
    if m is None:
        return None
    major = int(m[1])
    if major < 2:
        raise ValueError(f"{path} was saved by Keras {version}, whose LSTM weights (one matrix per gate) "
                         "this version does not read")
    return major


def _custom(value) -> str:
    """A custom activation in a config, in a few words: its registered name, or what it is."""
    if not isinstance(value, dict):
        return repr(value)
    if "value" in value or value.get("class_name") == "__lambda__":  # its bytecode: never run
        return "a Python lambda"
    return repr(value.get("registered_name") or value.get("config") or value.get("class_name"))


def _activation(config: dict, setting: str, where: str, major: Optional[int]) -> str:
    """The lstmtrace key of an LSTM config's ``activation`` or ``recurrent_activation``."""
    if setting not in config:
        raise ValueError(f"{where}: the config gives no {setting}")
    value = config[setting]
    if value is None:  # Keras: activation=None is linear
        name = "linear"
    elif isinstance(value, str):
        name = value.strip()
    elif (isinstance(value, dict) and value.get("class_name") == "function" and isinstance(value.get("config"), str)
          and _KERAS_MODULE.match(str(value.get("module", "")))):
        name = value["config"]  # Keras 3 may write {"module": "keras.activations", "class_name": "function", …}
    else:
        raise ValueError(f"{where}: {setting} is a custom function ({_custom(value)}), which lstmtrace "
                         "cannot compute")
    if name not in _ACTIVATIONS:
        raise ValueError(f"{where}: {setting} {name!r} is not an activation lstmtrace computes (it computes "
                         f"{', '.join(_ACTIVATIONS)})")
    if name != "hard_sigmoid":
        return name
    if major is None:
        raise ValueError(f"{where}: {setting} 'hard_sigmoid' is clip(0.2·x + 0.5, 0, 1) in Keras 2 and "
                         "relu6(x + 3)/6 in Keras 3, and the file does not say which Keras saved it "
                         "(no keras_version)")
    return "hard_sigmoid:0.2,0.5" if major < 3 else "hard_sigmoid"


def _checked(chosen: _Layer, cell: "_Cell", where: str) -> Dict[str, np.ndarray]:
    """The layer's kernel, recurrent_kernel and bias, checked against its config's units and input size."""
    units, use_bias = chosen.config.get("units"), chosen.config.get("use_bias", True)
    kernel, recurrent = cell.kernel, cell.recurrent_kernel
    if isinstance(units, int) and recurrent.shape != (units, 4 * units):
        raise ValueError(f"{where}: the config says units = {units}, and its recurrent_kernel has shape "
                         f"{tuple(recurrent.shape)}, not {(units, 4 * units)}")
    E = chosen.input_size
    if E is not None and kernel.shape[0] != E:
        raise ValueError(f"{where}: the config says its input has {E} features, and its kernel has shape "
                         f"{tuple(kernel.shape)}")
    arrays = {"kernel": kernel, "recurrent_kernel": recurrent}
    if use_bias:
        if not cell.bias.size:
            raise ValueError(f"{where}: the config says use_bias = True, and the file holds no bias for it")
        arrays["bias"] = cell.bias
    return arrays  # use_bias=False: from_keras makes the bias zeros


# -- the weights, read in a child process -------------------------------------------------------

class _Cell(NamedTuple):
    """One LSTM cell's arrays as a Keras file holds them, and where."""

    label: str  # the layer's name, as a weights-only file can tell it
    group: str  # the HDF5 group (Keras 3) or weight path (legacy) it is under
    names: Tuple[str, ...]  # Keras 3: the names of the layers it is nested in, and its own; () when unknown
    paths: Tuple[str, ...]  # Keras 3: the same as the file's groups spell them
    top: str  # legacy: the top-level layer whose group holds it
    kernel: np.ndarray
    recurrent_kernel: np.ndarray
    bias: np.ndarray  # empty when the layer has none


def _cells(found: Dict[str, np.ndarray]) -> List[_Cell]:
    split = lambda text: tuple(str(text).split("/")) if str(text) else ()
    return [_Cell(str(found[f"{j}.label"]), str(found[f"{j}.group"]), split(found[f"{j}.names"]),
                  split(found[f"{j}.paths"]), str(found[f"{j}.top"]), found[f"{j}.kernel"],
                  found[f"{j}.recurrent_kernel"], found[f"{j}.bias"]) for j in range(int(found["count"]))]


def _match(cells: List[_Cell], chosen: _Layer, where: str, path: str) -> _Cell:
    """The cell in the weights that is the config's layer ``chosen``."""
    if any(c.names for c in cells):  # Keras 3, whose vars groups say their layer's name
        candidates = [c for c in cells if c.names == chosen.names]
    elif any(c.paths for c in cells):  # an older Keras 3: the groups Keras names after the classes
        candidates = [c for c in cells if c.paths == chosen.paths]
    else:  # legacy: the top-level layer's group, and the cell's own name inside it
        candidates = [c for c in cells if c.top == chosen.names[0]]
        if len(chosen.names) > 1 or len(candidates) > 1:
            candidates = [c for c in candidates if c.label in (chosen.labels or chosen.names[-1:])]
    if not candidates:
        raise ValueError(f"{where}: the file holds no weights for it ({path} is truncated or corrupt, or "
                         "from a Keras this version does not know)")
    if len(candidates) > 1:
        raise ValueError(f"{where}: the file holds {len(candidates)} sets of weights that could be its, "
                         "and cannot tell which")
    return candidates[0]


def _text(value) -> str:
    """An HDF5 attribute's text (h5py gives str or bytes, depending on who wrote it)."""
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8")
    return str(value)


def h5_read(name: str, data: Optional[bytes], config_only: bool) -> Dict[str, np.ndarray]:
    """In a child process (:func:`lstmtrace.damage.isolated`): the Keras HDF5 file ``name``'s (or the bytes
    ``data``'s) keras_version and model_config (\"\" when absent) and, unless
    ``config_only`` and it has no config, every LSTM cell in it, as arrays (:func:`_cells` reads them)."""
    import h5py

    # h5py's exceptions for damaged insides are a zoo (OSError, RuntimeError, KeyError, ValueError,
    # …) that changes between versions: every one of them here means "truncated or corrupt"
    try:
        f = h5py.File(io.BytesIO(data) if data is not None else name, "r")
    except Exception as e:
        raise ValueError(f"{name} is truncated or corrupt: HDF5 cannot open it ({first_line(e)})") from None
    found: Dict[str, np.ndarray] = {}
    with f, reading(name, Exception):
        legacy = f.get("model_weights", f if "layer_names" in f.attrs else None)
        version = next((_text(g.attrs["keras_version"]) for g in (f, legacy) if g is not None
                        and "keras_version" in g.attrs), "")
        config = _text(f.attrs["model_config"]) if "model_config" in f.attrs else ""
        found.update(keras_version=np.array(version), model_config=np.array(config))
        if config_only and not config:
            return {**found, "count": np.array(0)}
        cells = _legacy_cells(legacy) if legacy is not None else _keras3_cells(f)
        for j, cell in enumerate(cells):
            found.update({f"{j}.label": np.array(cell.label), f"{j}.group": np.array(cell.group),
                          f"{j}.names": np.array("/".join(cell.names)), f"{j}.paths": np.array("/".join(cell.paths)),
                          f"{j}.top": np.array(cell.top), f"{j}.kernel": cell.kernel,
                          f"{j}.recurrent_kernel": cell.recurrent_kernel, f"{j}.bias": cell.bias})
        found["count"] = np.array(len(cells))
    return found


def h5_embeddings(name: str, data: Optional[bytes], dataset: str) -> Dict[str, np.ndarray]:
    """In a child process: the Embedding layers' matrices in the Keras HDF5 file ``name`` (or the bytes
    ``data``): with ``dataset`` "", where each is (names, paths and HDF5 dataset, as :func:`embedding`
    reads them) and the model_config (\"\" when absent); else the array at ``dataset``, as "table"."""
    import h5py

    try:
        f = h5py.File(io.BytesIO(data) if data is not None else name, "r")
    except Exception as e:
        raise ValueError(f"{name} is truncated or corrupt: HDF5 cannot open it ({first_line(e)})") from None
    with f, reading(name, Exception):
        if dataset:
            return {"table": f[dataset][()]}
        found: List[Tuple[Tuple[str, ...], Tuple[str, ...], str]] = []
        legacy = f.get("model_weights", f if "layer_names" in f.attrs else None)
        if legacy is not None:  # each layer's weight_names: an Embedding's is ".../embeddings" (":0" in Keras 2)
            for top in (_text(n) for n in legacy.attrs.get("layer_names", [])):
                for weight in (_text(n) for n in legacy[top].attrs.get("weight_names", [])):
                    scope, _, base = weight.rpartition("/")
                    if base.split(":")[0] == "embeddings" and len(legacy[top][weight].shape) == 2:
                        inner = scope.rpartition("/")[2]
                        found.append(((top,) if inner in ("", top) else (top, inner), (),
                                      legacy[top][weight].name))
        else:  # Keras 3: layers/…/embedding[_N]/vars/0, the layer's only weight
            def visit(group_name, obj):
                owner = group_name[: -len("/vars")]
                if (isinstance(obj, h5py.Group) and group_name.endswith("/vars") and list(obj) == ["0"]
                        and _EMBEDDING_GROUP.match(owner.rpartition("/")[2]) and len(obj["0"].shape) == 2):
                    names, paths = _chain(f, owner)
                    found.append((names, paths, obj["0"].name))

            f.visititems(visit)
        answer = {"model_config": np.array(_text(f.attrs["model_config"]) if "model_config" in f.attrs else ""),
                  "count": np.array(len(found))}
        for j, (names, paths, where) in enumerate(found):
            answer.update({f"{j}.names": np.array("/".join(names)), f"{j}.paths": np.array("/".join(paths)),
                           f"{j}.dataset": np.array(where)})
        return answer


def _is_lstm(kernel, recurrent) -> bool:
    return (len(kernel.shape) == 2 and len(recurrent.shape) == 2
            and kernel.shape[1] == recurrent.shape[1] == 4 * recurrent.shape[0])


def _keras3_cells(f) -> List[_Cell]:
    """Every LSTM cell in a Keras 3 weights file (layers/…/cell/vars), in the natural order of its path."""
    import h5py

    found = []

    def visit(name, obj):
        if isinstance(obj, h5py.Group) and name.endswith("cell/vars") and "0" in obj and "1" in obj:
            kernel, recurrent = obj["0"], obj["1"]
            if _is_lstm(kernel, recurrent):
                layer_vars = f.get(name[: -len("cell/vars")] + "vars")
                label = layer_vars.attrs.get("name", name) if layer_vars is not None else name
                names, paths = _chain(f, name[: -len("/cell/vars")])
                found.append(_Cell(_text(label), obj.name, names, paths, "", kernel[()], recurrent[()],
                                   obj["2"][()] if "2" in obj else np.zeros(0)))

    f.visititems(visit)
    natural = lambda cell: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", cell.group)]
    return sorted(found, key=natural)


def _chain(f, layer: str) -> Tuple[Tuple[str, ...], Tuple[str, ...]]:
    """(the layers' names, their paths) from the model down to the layer at HDF5 path ``layer``: each
    group under a "layers" group is one; the names are () unless every one has its vars' "name"."""
    parts = layer.split("/")
    at = [k for k in range(len(parts)) if (k > 0 and parts[k - 1] == "layers") or k == len(parts) - 1]
    paths = tuple(parts[k] for k in at)
    names = []
    for k in at:
        group = f.get("/".join(parts[: k + 1]) + "/vars")
        if group is None or "name" not in group.attrs:
            return (), paths
        names.append(_text(group.attrs["name"]))
    return tuple(names), paths


def _legacy_cells(root) -> List[_Cell]:
    """Every LSTM cell in a legacy Keras HDF5 group (a model.save file's model_weights, or a Keras 2
    save_weights file's root), in layer order: each layer's weight_names say where its arrays are."""
    cells = []
    for top in (_text(n) for n in root.attrs.get("layer_names", [])):
        group = root[top]
        by_scope: Dict[str, Dict[str, str]] = {}  # "lstm/lstm_cell" → {"kernel": "lstm/lstm_cell/kernel:0", …}
        for weight in (_text(n) for n in group.attrs.get("weight_names", [])):
            scope, _, base = weight.rpartition("/")
            by_scope.setdefault(scope, {})[base.split(":")[0]] = weight
        for scope, names in by_scope.items():
            if "kernel" not in names or "recurrent_kernel" not in names:
                continue
            kernel, recurrent = group[names["kernel"]], group[names["recurrent_kernel"]]
            if not _is_lstm(kernel, recurrent):
                continue
            label = next((part for part in reversed(scope.split("/")) if part and not _CELL_NAME.match(part)), top)
            cells.append(_Cell(label, f"{root.name.rstrip('/')}/{top}/{scope}", (), (), top, kernel[()], recurrent[()],
                               group[names["bias"]][()] if "bias" in names else np.zeros(0)))
    return cells
