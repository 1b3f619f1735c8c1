"""PyTorch's and Keras' layouts of an LSTM's weights, and the files they (and numpy) write.

Every reader returns one cell's :class:`~lstmtrace.cell.Gate` s in lstmtrace's gate
names; :class:`lstmtrace.Parameters` wraps them.  A ``torch.nn.LSTMCell`` state_dict
stacks the gates in the order input, forget, candidate (g), output:

========== ======= =====================================================
key        shape   holds
========== ======= =====================================================
weight_ih  (4H, E) W of the input, forget, candidate (g), output gates
weight_hh  (4H, H) U of the same gates, in the same order
bias_ih    (4H,)   input-side bias; a gate's b is bias_ih + bias_hh
bias_hh    (4H,)   hidden-side bias
========== ======= =====================================================

Keras stacks them the same way in columns: kernel (E, 4H), recurrent_kernel (H, 4H),
bias (4H).  The files:

=================== =========================================================
file                what is read
=================== =========================================================
``.npz``            a torch.nn.LSTMCell state_dict (weight_ih, weight_hh,
                    bias_ih, bias_hh), a torch.nn.LSTM one (weight_ih_l0, …,
                    under any module prefix), or Keras' kernel,
                    recurrent_kernel, bias; read with ``allow_pickle=False``
``.pt``, ``.pth``   a PyTorch state_dict, read with ``torch.load(...,
                    weights_only=True)`` (needs the ``torch`` extra)
``.weights.h5``     Keras 3 ``model.save_weights`` (needs the ``keras`` extra,
                    h5py); weights only
``.keras``          Keras ``model.save``: the activations from config.json,
                    the weights from model.weights.h5 (:mod:`lstmtrace.keras_files`)
``.h5``             Keras' legacy ``model.save`` (config and weights) or
                    ``save_weights`` (weights only)
``.onnx``           every LSTM node's W, R, B, P and attributes (the ``onnx``
                    extra; :mod:`lstmtrace.onnx_files`)
=================== =========================================================

The variant of a file's cell: a ``.keras``, a legacy model ``.h5`` and an ``.onnx`` say it
themselves (:data:`DECLARING`, :func:`read`), and it must agree with any variant asked for;
for the others it is the one asked for, or the default LSTM, assumed aloud.  A state_dict
also holds a variant's weights (:func:`to_state_dict`): peepholes as ``w_f_diag``,
``w_i_diag``, ``w_o_diag``, a projection as ``weight_hr``, and ``gates`` when some gates
have no weights.

Nothing here unpickles anything: a weights file can never run code.  torch, h5py and onnx
are imported only when such a file is read.
"""
import contextlib
import os
import re
import warnings
import zipfile
from typing import Dict, List, Mapping, NamedTuple, Optional, Tuple

import numpy as np

from lstmtrace.damage import Explained, check_not_empty, first_line, isolated, read_npy, reading
from lstmtrace.errors import OptionError
from lstmtrace.cell import Gate

__all__ = ["DECLARING", "DIRECTIONS", "Declared", "KERAS_KEYS", "LAYOUTS", "PEEPHOLE_KEYS", "Read",
           "STATE_DICT_KEYS", "TORCH_ORDER", "WhichCellError", "from_keras", "from_state_dict", "load", "read",
           "read_embedding", "read_layer", "read_stack",
           "to_state_dict"]

LAYOUTS = ("torch", "keras")


class WhichCellError(OptionError):
    """The file is fine, but the layer or prefix asked for is not in it; ``option`` says which."""


TORCH_ORDER = ("input", "forget", "candidate", "output")
"""How PyTorch (and Keras) stack the gates in weight_ih, weight_hh and the biases."""

STATE_DICT_KEYS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
"""A torch.nn.LSTMCell's state_dict."""

KERAS_KEYS = ("kernel", "recurrent_kernel", "bias")
"""A Keras LSTM layer's weights, in get_weights() order."""

Gates = Dict[str, Gate]
"""One cell's weights, gate by gate, in lstmtrace's names: what every reader here returns."""
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_TORCH_KEY = re.compile(r"^(?P<prefix>.*?)weight_ih(?:_l(?P<layer>\d+))?(?P<reverse>_reverse)?$")


class Declared(NamedTuple):
    """One cell of a file that says how its cell computes (a ``.keras`` archive's config, an ONNX
    node's attributes): that variant, the cell's arrays in :func:`to_state_dict`'s layout for that
    variant (only the gates it has weights for, ``w_*_diag``, ``weight_hr``), and where they are."""

    variant: "object"  # lstmtrace.Variant (not imported here: variant.py needs nothing of this module)
    state: Dict[str, np.ndarray]
    where: str
    direction: str = "forward"  # which way the cell runs: "forward", or "reverse" (over the reversed sequence)
    passes_on: str = "time"  # the order its h_t reach the next layer: "time" (each at its input's time, as
    # PyTorch, ONNX and Keras' Bidirectional do), or "run" (the order it ran: Keras' go_backwards=True)


DIRECTIONS = ("forward", "reverse")
"""The ways a cell runs over a sequence: x_1 … x_T, or x_T … x_1 (the second half of a bidirectional layer)."""


class Read(NamedTuple):
    """One cell of a weights file, as :func:`read_layer` and :func:`read_stack` return it."""

    gates: Gates
    variant: "object"  # lstmtrace.Variant
    source: str  # how the variant was decided: "file", "options" or "assumed" (see read)
    direction: str = "forward"
    passes_on: str = "time"  # see Declared
    where: str = ""


DECLARING: Dict[str, str] = {".keras": "lstmtrace.keras_files", ".h5": "lstmtrace.keras_files",
                              ".hdf5": "lstmtrace.keras_files", ".onnx": "lstmtrace.onnx_files"}
"""The modules that read files which may say how their cells compute, by suffix.  Each has

``declared(path, layer)``
    LSTM layer ``layer`` (0 when None): a list of one :class:`Declared` per direction it runs
    (forward first), or None for a file that cannot tell (a bare ``.weights.h5``), which
    :func:`load` then reads;
``declared_layers(path)``
    every LSTM layer, in the order they run, each as ``declared`` gives it (None as there); a
    model whose LSTM layers do not feed one another directly (a Dense between them, say) is a
    ValueError, since ``--layer all`` feeds each layer the previous one's h;
``embedding(path, key)`` (optional)
    an embedding table, for ``--tokens``."""


def _declaring(path: str):
    """The module of :data:`DECLARING` that reads files like ``path`` (imported now), or None."""
    import importlib

    name = next((m for suffix, m in DECLARING.items() if path.lower().endswith(suffix)), None)
    return importlib.import_module(name) if name else None


def read(path, layer: Optional[int] = None, prefix: Optional[str] = None, layout: Optional[str] = None,
         variant=None, direction: Optional[str] = None) -> Tuple[Gates, "object", str]:
    """One LSTM cell of ``path``: (its gates, its variant, how the variant was decided).

    A file that says how its cell computes decides the variant (``"file"``); a ``variant``
    given too must be the same, or it is an OptionError naming both.  For a file that cannot
    tell (``.npz``, ``.pt``, ``.weights.h5``) it is ``variant`` (``"options"``), or, when none
    is given, lstmtrace's default LSTM (``"assumed"``: the text says so).  ``direction`` picks
    one half of a bidirectional layer (see :func:`read_layer`).
    """
    cells = read_layer(path, layer, prefix, layout, variant, direction)
    where = f"{os.fspath(path)} layer {0 if layer is None else layer}"
    if len(cells) > 1:
        raise OptionError(f"{where} is bidirectional: choose forward or reverse (or both, to trace the two cells "
                          "together)", "direction")
    if cells[0].direction == "reverse" and direction is None:  # its gates alone would be run forward
        raise OptionError(f"{where} runs in reverse (over x_T … x_1): ask for direction reverse (--direction "
                          "reverse), and run it so (lstmtrace.run(…, direction=\"reverse\"))", "direction")
    return cells[0].gates, cells[0].variant, cells[0].source


def read_layer(path, layer: Optional[int] = None, prefix: Optional[str] = None, layout: Optional[str] = None,
               variant=None, direction: Optional[str] = None) -> List[Read]:
    """Every cell of LSTM layer ``layer`` (0 when None) of ``path`` that ``direction`` asks for:
    None, every direction the layer runs; ``"forward"`` or ``"reverse"``, that one; ``"both"``, both
    halves of a bidirectional layer.  A direction the layer does not run is an OptionError.
    The variant is decided as :func:`read` says.
    """
    if direction not in (None, "both", *DIRECTIONS):
        raise OptionError(f"unknown direction {direction!r}; it is forward, reverse or both", "direction")
    with _reading_once():
        return _read_layer(os.fspath(path), layer, prefix, layout, variant, direction)


def _read_layer(path: str, layer, prefix, layout, variant, direction) -> List[Read]:
    module = _declaring(path)
    found = module.declared(path, layer) if module else None
    if found is not None:
        _check_declared_options(path, prefix, layout)
        return [_from_declared(d, variant) for d in _directions(found, direction, lambda d: d.direction,
                                                                 found[0].where)]
    arrays_layers = None if module is not None or path.lower().endswith((".h5", ".hdf5")) else \
        _torch_directions(path, layer, prefix, layout)
    runs = arrays_layers or ("forward",)
    from lstmtrace.variant import Variant

    chosen = _directions(list(runs), direction, lambda d: d, f"{path} layer {0 if layer is None else layer}")
    cell = None if variant is None else variant.cell
    source = "assumed" if variant is None else "options"
    return [Read(load(path, layer, prefix, layout, cell, d), Variant() if variant is None else variant, source, d)
            for d in chosen]


def read_stack(path, prefix: Optional[str] = None, layout: Optional[str] = None,
               variant=None) -> List[List[Read]]:
    """Every LSTM layer of ``path``, in the order they run, each with every direction it runs
    (as :func:`read_layer` with ``direction=None``): what ``--layer all`` traces.

    That their sizes fit together (each layer's input size is the size of the h the layer before
    hands on) is :func:`lstmtrace.run_stack`'s to check.
    """
    path = os.fspath(path)
    module = _declaring(path)
    found = module.declared_layers(path) if module else None
    if found is not None:
        _check_declared_options(path, prefix, layout)
        stack = [[_from_declared(d, variant) for d in cells] for cells in found]
    else:
        with _reading_once():
            stack = [read_layer(path, k, prefix, layout, variant) for k in _layer_numbers(path, prefix, layout)]
    return stack


def _check_declared_options(path: str, prefix, layout) -> None:
    for name, value in (("prefix", prefix), ("layout", layout)):
        if value is not None:
            raise OptionError(f"is for PyTorch state_dicts and .npz files; {path} names its own layers", name)


def _from_declared(declared: Declared, variant) -> Read:
    """A cell a file declared, checked against the ``variant`` asked for (None: any)."""
    if variant is not None and variant != declared.variant:
        said = declared.variant.describe() or "lstmtrace's default LSTM"
        asked = variant.describe() or "lstmtrace's default LSTM"
        raise OptionError(f"{declared.where} says its cell is {said}, and the variant options ask for "
                          f"{asked}: leave them out, the file says how its cell computes",
                          _first_difference(declared.variant, variant))
    return Read(from_state_dict(declared.state, declared.variant.cell), declared.variant, "file",
                declared.direction, declared.passes_on, declared.where)


def _directions(found: list, direction: Optional[str], direction_of, where: str) -> list:
    """The items of ``found`` (one per direction a layer runs) that ``direction`` asks for."""
    runs = [direction_of(item) for item in found]
    if direction is None:
        return list(found)
    if direction == "both":
        if len(runs) < 2:
            raise OptionError(f"{where} runs {runs[0]} only: it is not bidirectional", "direction")
        return list(found)
    if direction not in runs:
        raise OptionError(f"{where} runs {runs[0]} only: it has no {direction} weights", "direction")
    return [found[runs.index(direction)]]


def read_embedding(path, key: str, with_padding: bool = False):
    """The embedding table ``key`` (V×E: one row per token id) of a weights file, as float64.

    For a PyTorch state_dict (``.pt``, ``.npz``) ``key`` is its state_dict key, e.g.
    ``"embedding.weight"``; a module of :data:`DECLARING` reads its own files' (``embedding``).
    With ``with_padding``, ``(table, padding ids)``: the ids whose steps the model skips (a Keras
    Embedding with ``mask_zero=True`` makes 0 one), which a trace of every step cannot follow.
    """
    path = os.fspath(path)
    module = _declaring(path)
    reader = getattr(module, "embedding", None)
    padding = ()
    if reader is not None:
        table = reader(path, key)
        if isinstance(table, tuple):  # (table, the ids the model skips)
            table, padding = table
    elif module is not None or path.lower().endswith((".h5", ".hdf5")):
        raise OptionError(f"reading an embedding from {os.path.basename(path)} is not supported yet", "embedding")
    else:
        arrays = _torch_file(path) if path.lower().endswith((".pt", ".pth")) else _npz(path)
        if key not in arrays:
            tables = [k for k, a in arrays.items() if np.ndim(a) == 2 and "embed" in k.lower()]
            raise OptionError(f"{path} has no key {key!r}" + (f"; its embeddings are {', '.join(tables)}" if tables
                              else "; it has no key with 'embed' in its name"), "embedding")
        table = arrays[key]
    table = np.asarray(table)
    if table.ndim != 2 or table.dtype.kind not in "iuf" or 0 in table.shape:
        raise OptionError(f"{key!r} in {path} has shape {_shape_text(table.shape)} of {table.dtype}; an embedding "
                          "is a V×E table of numbers", "embedding")
    table = table.astype(np.float64)
    if not np.isfinite(table).all():
        raise OptionError(f"{key!r} in {path} holds values that are not finite numbers", "embedding")
    return (table, tuple(padding)) if with_padding else table


def _first_difference(a, b) -> str:
    """The setting (as OptionError.option spells it) of the first field in which two variants differ."""
    from dataclasses import fields

    field = next(f.name for f in fields(a) if getattr(a, f.name) != getattr(b, f.name))
    return "activation" if field.endswith("_activation") else field


def load(path, layer: Optional[int] = None, prefix: Optional[str] = None,
         layout: Optional[str] = None, cell=None, direction: str = "forward") -> Gates:
    """The weights of one LSTM layer in ``path``: ``layer`` (0 when not given) under ``prefix``,
    the half of it that runs ``direction`` (``"reverse"``: a bidirectional nn.LSTM's ``_reverse`` keys).

    ``layout`` forces how an ``.npz`` is read ("torch" or "keras"); by default its keys decide.
    ``cell`` is the cell the weights are for (see :func:`from_state_dict`).
    """
    path = os.fspath(path)
    if layout not in (None, *LAYOUTS):
        raise OptionError(f"unknown layout {layout!r}; the layouts are {', '.join(LAYOUTS)}", "layout")
    name = path.lower()
    if layout is not None and not name.endswith(".npz"):
        raise OptionError(f"is for .npz files, whose keys could be PyTorch's or Keras'; {path} says its own "
                          "layout", "layout")
    if name.endswith(".h5") or name.endswith(".hdf5"):
        if direction != "forward":
            raise OptionError(f"{path} holds weights only, which cannot say which way a layer runs: "
                              "save the model with model.save(\"m.keras\") to trace a reverse layer", "direction")
        return _keras_h5(path, layer, cell)
    arrays = _arrays(path)
    if layout == "keras" or (layout is None and all(k in arrays for k in KERAS_KEYS[:2])):
        if direction != "forward":
            raise OptionError(f"{path} holds one Keras cell, which runs forward", "direction")
        return from_keras(arrays, path, cell)
    return _torch_cell(arrays, layer, prefix, path, cell, direction)


def _arrays(path: str) -> Dict[str, np.ndarray]:
    """The arrays of a ``.pt`` or ``.npz`` file; inside :func:`_reading_once`, read once for all the
    cells a stack takes from it."""
    if _ONCE is not None and path in _ONCE:
        return _ONCE[path]
    arrays = _torch_file(path) if path.lower().endswith((".pt", ".pth")) else _npz(path)
    if _ONCE is not None:
        for array in arrays.values():
            array.setflags(write=False)  # shared by every cell read from it: nobody changes them
        _ONCE[path] = arrays
    return arrays


_ONCE: Optional[Dict[str, Dict[str, np.ndarray]]] = None


@contextlib.contextmanager
def _reading_once():
    """Within: each file's arrays are read once (a stack's layers and directions are all in one file)."""
    global _ONCE
    outer = _ONCE
    _ONCE = {} if outer is None else outer
    try:
        yield
    finally:
        _ONCE = outer


def _torch_directions(path: str, layer: Optional[int], prefix: Optional[str], layout: Optional[str]) -> Tuple[str, ...]:
    """Which directions layer ``layer`` of a ``.pt``/``.npz`` runs: ("forward", "reverse") for a
    bidirectional nn.LSTM's, else ("forward",) (or whatever the file lacks, :func:`load` says)."""
    try:
        arrays = _arrays(path)
    except (OSError, ValueError, ImportError):
        return ("forward",)  # load says what is wrong
    if layout == "keras" or (layout is None and all(k in arrays for k in KERAS_KEYS[:2])):
        return ("forward",)
    try:
        p, layers = _torch_layers(arrays, prefix, path)
    except ValueError:
        return ("forward",)
    k = 0 if layer is None else layer
    suffix = "" if None in layers else f"_l{k}"
    return ("forward", "reverse") if f"{p}weight_ih{suffix}_reverse" in arrays else ("forward",)


def _layer_numbers(path: str, prefix: Optional[str], layout: Optional[str]) -> List[int]:
    """The layers of a ``.pt``/``.npz`` (0, 1, …) or a weights-only Keras file, for ``--layer all``."""
    name = path.lower()
    if name.endswith((".h5", ".hdf5")):
        from lstmtrace.keras_files import weights_only  # noqa: F401 -- h5py's message first

        _keras_h5(path, 0)  # says what is wrong with the file, if anything
        from lstmtrace.keras_files import _cells

        return list(range(len(_cells(isolated(path, _keras_h5_cells, path)))))
    arrays = _arrays(path)
    if layout == "keras" or (layout is None and all(k in arrays for k in KERAS_KEYS[:2])):
        return [0]
    _, layers = _torch_layers(arrays, prefix, path)
    numbers = sorted(k for k in layers if k is not None) or [0]
    if numbers != list(range(len(numbers))):
        raise ValueError(f"{path} has layers {', '.join(map(str, numbers))}: --layer all needs 0, 1, … with none "
                         "missing")
    return numbers


# -- the containers ------------------------------------------------------------------

def _npz(path: str) -> Dict[str, np.ndarray]:
    """Every .npy member of the zip, read by :func:`read_npy` (np.load leaves its file open on a damaged zip)."""
    check_not_empty(path, "an .npz file (a zip of .npy arrays, as np.savez writes)")
    with open(path, "rb") as f:
        magic = f.read(4)
        if magic[:1] == b"\x80":
            raise ValueError(f"{path} is a Python pickle; lstmtrace never loads pickles "
                             "(they can run code): save the weights with np.savez")
        if magic != b"PK\x03\x04":
            raise ValueError(f"{path} is not an .npz file (a zip of .npy arrays, as np.savez writes)")
        f.seek(0)
        arrays = {}
        with reading(path), zipfile.ZipFile(f) as npz:
            members = npz.infolist()
            if any(member.filename.endswith("data.pkl") for member in members):
                raise Explained(f"{path} is a PyTorch checkpoint (torch.save) named like an .npz: "
                                "rename it to .pt, or save it with np.savez")
            for member in members:
                if member.filename.endswith(".npy"):
                    key = member.filename[:-len(".npy")]
                    with npz.open(member) as stream:
                        arrays[key] = read_npy(stream, f"{path} key {key!r}", member.file_size)
    return arrays


def _torch_file(path: str) -> Dict[str, np.ndarray]:
    try:
        import torch
    except ImportError:
        raise ImportError(f"reading {os.path.basename(path)} needs PyTorch: pip install "
                          "'lstmtrace[torch]' (or save the state_dict with np.savez, see the README)"
                          ) from None
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no file {path!r}")
    magic = check_not_empty(path, "a PyTorch file (as torch.save writes)")
    if magic[:4] == b"PK\x03\x04" and _is_torchscript(path):
        raise ValueError(f"{path} is a TorchScript archive (torch.jit.save), which holds code: save "
                         "model.state_dict() with torch.save instead (lstmtrace reads weights, never code)")
    try:
        with warnings.catch_warnings():  # torch's own warnings are not the user's: the error says it all
            warnings.simplefilter("ignore")
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many kinds; all mean "not a state_dict we may read"
        if "weights only" in str(e).lower():
            raise ValueError(f"{path} holds more than tensors (a whole pickled model?), which "
                             "would need pickle to load: save model.state_dict() instead") from None
        if magic[:4] == b"PK\x03\x04":  # torch.save writes a zip: this one is damaged
            raise ValueError(f"{path} is truncated or corrupt: torch.load cannot read it "
                             f"({first_line(e)})") from None
        raise ValueError(f"{path} is not a file torch.load can read") from None
    if not isinstance(obj, Mapping):
        raise ValueError(f"{path} holds a {type(obj).__name__}, not a state_dict (a dict of tensors)")
    arrays = {}

    def flatten(mapping, at):  # a checkpoint may nest the state_dict: {"model": {...}, ...}
        for key, value in mapping.items():
            if isinstance(value, Mapping):
                flatten(value, f"{at}{key}.")
            elif isinstance(value, torch.Tensor):
                arrays[f"{at}{key}"] = value.detach().to(torch.float64).numpy()

    flatten(obj, "")
    return arrays


def _is_torchscript(path: str) -> bool:
    """Whether a zip is a TorchScript archive: it holds code/ and constants.pkl beside the data."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False  # damaged: torch.load says so
    return any(n.endswith("/constants.pkl") for n in names) and any("/code/" in n for n in names)


def _keras_h5(path: str, layer: Optional[int], cell=None) -> Gates:
    try:
        import h5py  # noqa: F401 -- only to say what to install, before any work
    except ImportError:
        raise ImportError(f"reading {os.path.basename(path)} needs h5py: pip install 'lstmtrace[keras]'"
                          ) from None
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no file {path!r}")
    signature = check_not_empty(path, "an HDF5 file (as Keras' save_weights writes)")
    if signature != _HDF5_SIGNATURE:
        raise ValueError(f"{path} is not an HDF5 file")
    from lstmtrace.keras_files import weights_only

    # libhdf5 can crash or loop forever on some damaged files: read it in a child process
    return weights_only(path, isolated(path, _keras_h5_cells, path), layer, cell)


def _keras_h5_cells(path: str) -> Dict[str, np.ndarray]:
    """Every LSTM cell in a Keras weights file, Keras 3's or legacy (see :mod:`lstmtrace.keras_files`)."""
    from lstmtrace.keras_files import h5_read

    return h5_read(path, None, False)


# -- the layouts ---------------------------------------------------------------------

PEEPHOLE_KEYS = {"forget": "w_f_diag", "input": "w_i_diag", "output": "w_o_diag"}
"""A peephole cell's diagonal weights P, by gate, as TensorFlow's LSTMCell(use_peepholes=True) names them."""


def to_state_dict(gates: Gates, W_hr: Optional[np.ndarray] = None) -> Dict[str, np.ndarray]:
    """One cell's weights in torch.nn.LSTMCell's layout; all the bias goes in bias_ih, bias_hh is zero.

    A variant's: the gates that have weights, in PyTorch's order; each peephole P as
    ``w_f_diag``, ``w_i_diag``, ``w_o_diag``; a projection's W_hr as ``weight_hr``.
    """
    order = [g for g in TORCH_ORDER if g in gates]
    stack = lambda param: np.concatenate([getattr(gates[g], param) for g in order])
    state = {
        "weight_ih": stack("W"),  # (4H, E)
        "weight_hh": stack("U"),  # (4H, H)
        "bias_ih": stack("b"),  # (4H,)
        "bias_hh": np.zeros(len(order) * len(gates[order[0]].b)),
    }
    state.update({PEEPHOLE_KEYS[g]: np.array(gates[g].P) for g in PEEPHOLE_KEYS if g in gates
                  and gates[g].P is not None})
    if W_hr is not None:
        state["weight_hr"] = np.array(W_hr)
    if len(order) < len(TORCH_ORDER):  # which gates, so that the file is never taken for a GRU's
        state["gates"] = np.array(order)
    return state


def from_state_dict(state: Mapping[str, np.ndarray], cell=None) -> Gates:
    """The gates of a torch.nn.LSTMCell state_dict (as numpy arrays); each b is bias_ih + bias_hh.

    ``cell`` (a :class:`lstmtrace.cell.Cell`, the default LSTM's when None) says which gates the
    file must hold, whether it has peepholes and a projection (``weight_hr``), which then come back
    as each Gate's P and the key ``"W_hr"``; a file that does not fit the cell is an OptionError
    naming the setting it contradicts.
    """
    from lstmtrace.cell import LSTM

    cell = LSTM if cell is None else cell
    missing = [k for k in STATE_DICT_KEYS if k not in state]
    if missing:
        raise ValueError(f"no key {missing[0]!r}; a weights file holds {', '.join(STATE_DICT_KEYS)} "
                         "as in torch.nn.LSTMCell's state_dict")
    order = [g for g in TORCH_ORDER if g in cell.weighted]
    n = len(order)
    arrays = {k: _numeric(k, state[k]) for k in STATE_DICT_KEYS}
    W_ih, W_hh = arrays["weight_ih"], arrays["weight_hh"]
    if "weight_hr" in state and cell.proj_size is None:
        raise OptionError(f"the file has a projection (key 'weight_hr', shape {_shape_text(np.shape(state['weight_hr']))}"
                          f"), and the cell asked for has none: give --proj-size "
                          f"{np.shape(state['weight_hr'])[0]}", "proj_size")
    if "weight_hr" not in state and cell.proj_size is not None:
        raise OptionError(f"a projection to {cell.proj_size} units was asked for (proj_size), and the file has "
                          "no projection weights (key 'weight_hr')", "proj_size")
    R = W_hh.shape[1] if W_hh.ndim == 2 else 0
    if cell.proj_size is not None:
        W_hr = _numeric("weight_hr", state["weight_hr"])
        if W_hr.ndim != 2 or W_hr.shape[0] != cell.proj_size:
            raise OptionError(f"key 'weight_hr' has shape {_shape_text(W_hr.shape)}; a projection to "
                              f"proj_size = {cell.proj_size} units needs (P×H) = ({cell.proj_size}, H)", "proj_size")
        H = W_hr.shape[1]
    else:
        H = R
    if W_hh.ndim != 2 or W_hh.shape[0] % max(H, 1) or W_hh.shape[1] == 0 or H == 0:
        raise ValueError(f"key 'weight_hh' has shape {_shape_text(W_hh.shape)}; expected "
                         f"({n}H×{'P' if cell.proj_size else 'H'})")
    if W_hh.shape[0] != n * H:
        gates_in_file = W_hh.shape[0] // H
        raise OptionError(f"the file stacks {gates_in_file} gates' weights (key 'weight_hh' has {W_hh.shape[0]} "
                          f"rows, hidden size {H}); the cell asked for has weights for {n}: "
                          f"{', '.join(order)}" + ("" if n == 4 else " (" + _weightless(cell) + ")"),
                          "coupled" if n < 4 and any(g.rule == "complement" for g in cell.gates) else
                          "without" if n < 4 else "weights")
    E = W_ih.shape[1] if W_ih.ndim == 2 else 0
    expected = {"weight_ih": (n * H, E), "bias_ih": (n * H,), "bias_hh": (n * H,)}
    names = {"weight_ih": f"{n}H×E", "bias_ih": f"{n}H", "bias_hh": f"{n}H"}
    for key, shape in expected.items():
        if arrays[key].shape != shape or E == 0:
            raise ValueError(f"key {key!r} has shape {_shape_text(arrays[key].shape)}; expected "
                             f"({names[key]}) = {_shape_text(shape)} for hidden size H = {H}")
    peepholes = [g for g in PEEPHOLE_KEYS if PEEPHOLE_KEYS[g] in state]
    if peepholes and not cell.peepholes:
        raise OptionError(f"the file has peephole weights (key {PEEPHOLE_KEYS[peepholes[0]]!r}), and the cell "
                          "asked for has no peepholes: give --peephole (or a variant with them)", "peephole")
    absent = [g for g in cell.peepholes if PEEPHOLE_KEYS[g] not in state]
    if absent:
        raise OptionError(f"the cell asked for has peepholes, and the file has no peephole weights for the "
                          f"{absent[0]} gate (key {PEEPHOLE_KEYS[absent[0]]!r}, H values)", "peephole")
    extra = [g for g in peepholes if g not in cell.peepholes]
    if extra:
        raise OptionError(f"the file has peephole weights for the {extra[0]} gate (key "
                          f"{PEEPHOLE_KEYS[extra[0]]!r}), which has no weights in the cell asked for "
                          f"({_weightless(cell)})", "peephole")
    b = arrays["bias_ih"] + arrays["bias_hh"]
    rows = lambda k: slice(k * H, (k + 1) * H)
    gates: Dict = {g: Gate(W_ih[rows(k)], W_hh[rows(k)], b[rows(k)],
                           _numeric(PEEPHOLE_KEYS[g], state[PEEPHOLE_KEYS[g]]) if g in cell.peepholes else None)
                   for k, g in enumerate(order)}
    if cell.proj_size is not None:
        gates["W_hr"] = W_hr
    return gates


def _weightless(cell) -> str:
    """What takes a cell's gates' weights away, in a few words: ``forget: coupled, f = 1 − i``."""
    return ", ".join(f"{g.name}: {cell.weightless(g.name)[0]}" for g in cell.gates if not g.weights)


def _numeric(key: str, array: np.ndarray) -> np.ndarray:
    array = np.asarray(array)
    if array.dtype.kind not in "iuf":
        raise ValueError(f"key {key!r} holds {array.dtype} values, not real numbers")
    return array.astype(np.float64)


def _shape_text(shape: tuple) -> str:
    return str(tuple(int(n) for n in shape))


def from_keras(arrays: Mapping[str, np.ndarray], where: str, cell=None) -> Gates:
    """Keras' kernel (E×4H), recurrent_kernel (H×4H), bias (4H), gates i, f, c, o."""
    missing = [k for k in KERAS_KEYS[:2] if k not in arrays]
    if missing:
        raise ValueError(f"{where}: no key {missing[0]!r}; a Keras LSTM has kernel (E×4H), "
                         "recurrent_kernel (H×4H) and bias (4H)")
    kernel, recurrent = np.asarray(arrays["kernel"]), np.asarray(arrays["recurrent_kernel"])
    if kernel.ndim != 2 or recurrent.ndim != 2:
        raise ValueError(f"{where}: kernel and recurrent_kernel must be matrices, not shapes "
                         f"{kernel.shape} and {recurrent.shape}")
    H = recurrent.shape[0]
    bias = np.asarray(arrays["bias"]) if "bias" in arrays else np.zeros(4 * H)  # use_bias=False
    try:
        # Keras stacks the gates as PyTorch does (i, f, c, o), in columns rather than rows
        return from_state_dict({"weight_ih": kernel.T, "weight_hh": recurrent.T,
                                "bias_ih": bias, "bias_hh": np.zeros_like(bias)}, cell)
    except ValueError as e:
        keras_names = {"weight_ih": "kernel", "weight_hh": "recurrent_kernel", "bias_ih": "bias"}
        message = str(e)
        for torch_name, keras_name in keras_names.items():
            message = message.replace(f"'{torch_name}'", f"'{keras_name}' (transposed)"
                                      if torch_name != "bias_ih" else f"'{keras_name}'")
        raise _same_kind(e, f"{where}: {message}") from None


def _not_another_rnn(arrays, gates_key: str, state, cell, where: str) -> None:
    """Refuse a GRU's or a plain RNN's state_dict, whose keys are an LSTM's: by how many gates it stacks.

    A coupled or gate-less lstmtrace cell stacks fewer than four too; its file says which gates
    (the ``gates`` key :func:`to_state_dict` writes), so it is never taken for a GRU."""
    from lstmtrace.cell import LSTM

    W_hh, W_hr = state.get("weight_hh"), state.get("weight_hr")
    if W_hh is None or np.ndim(W_hh) != 2 or W_hh.shape[1] == 0:
        return
    H = np.shape(W_hr)[1] if W_hr is not None and np.ndim(W_hr) == 2 else W_hh.shape[1]
    if H == 0 or W_hh.shape[0] % H:
        return
    stacked = W_hh.shape[0] // H
    if gates_key in arrays:
        named = [str(g) for g in np.atleast_1d(arrays[gates_key])]
        expected = [g for g in TORCH_ORDER if g in (cell or LSTM).weighted]
        if named != expected:
            raise OptionError(f"{where} holds the weights of the gates {', '.join(named)}, and the cell asked "
                              f"for has weights for {', '.join(expected)}", "variant")
        return
    kinds = {3: "a GRU's state_dict (nn.GRU: weight_hh stacks 3 gates, reset, update and new), not an LSTM's",
             1: "a plain RNN's state_dict (nn.RNN: weight_hh stacks one gate), not an LSTM's"}
    if stacked in kinds:
        raise ValueError(f"{where} is {kinds[stacked]}: lstmtrace traces LSTMs")


def _same_kind(error: ValueError, message: str) -> ValueError:
    """``message`` as the same kind of error: an OptionError keeps the setting it names."""
    return OptionError(message, error.option) if isinstance(error, OptionError) else ValueError(message)


def _torch_layers(arrays: Mapping[str, np.ndarray], prefix: Optional[str], where: str) -> Tuple[str, set]:
    """The module prefix of the LSTM in a state_dict (``prefix`` or the only one) and its layer numbers
    (``{None}`` for an nn.LSTMCell)."""
    cells: Dict[str, set] = {}
    for key in arrays:
        m = _TORCH_KEY.match(key)
        if m and not m["reverse"]:
            cells.setdefault(m["prefix"], set()).add(None if m["layer"] is None else int(m["layer"]))
    if not cells:
        shown = ", ".join(list(arrays)[:6]) + (", …" if len(arrays) > 6 else "")
        raise ValueError(f"{where} has no LSTM weights (no key 'weight_ih'); a weights file holds "
                         f"{', '.join(STATE_DICT_KEYS)} as in torch.nn.LSTMCell's state_dict, "
                         f"weight_ih_l0, … as in torch.nn.LSTM's, or Keras' {', '.join(KERAS_KEYS)}; "
                         f"it has {shown or 'no arrays'}")
    prefixes = ", ".join(repr(p) for p in sorted(cells))
    if prefix is not None:
        p = next((c for c in (prefix, prefix + ".") if c in cells), None)
        if p is None:
            raise WhichCellError(f"{where} has no LSTM weights under prefix {prefix!r}; "
                                 f"its prefixes are {prefixes}", "prefix")
    elif len(cells) > 1:
        raise WhichCellError(f"{where} holds LSTM weights under several prefixes, {prefixes}: "
                             "choose one with --prefix", "prefix")
    else:
        (p,) = cells
    return p, cells[p]


def _torch_cell(arrays: Mapping[str, np.ndarray], layer: Optional[int], prefix: Optional[str],
                where: str, cell=None, direction: str = "forward") -> Gates:
    """One cell of a torch.nn.LSTMCell or torch.nn.LSTM state_dict, under a module prefix; ``direction``
    "reverse": the ``_reverse`` half of a bidirectional nn.LSTM's layer."""
    p, layers = _torch_layers(arrays, prefix, where)
    if None in layers:  # an LSTMCell: a single layer
        if layer not in (None, 0):
            raise WhichCellError(f"{where} holds one torch.nn.LSTMCell{f' under {p!r}' if p else ''}; "
                                 f"there is no layer {layer}, only layer 0", "layer")
        suffix = ""
    else:
        k = 0 if layer is None else layer
        if k not in layers:
            raise WhichCellError(f"{where} has no layer {k}{f' under {p!r}' if p else ''}; its layers "
                                 "are " + ", ".join(str(j) for j in sorted(layers)), "layer")
        suffix = f"_l{k}"
    if direction == "reverse":
        if f"{p}weight_ih{suffix}_reverse" not in arrays:
            raise WhichCellError(f"{where} layer {0 if layer is None else layer} runs forward only: it has no "
                                 f"reverse weights (key {p}weight_ih{suffix}_reverse)", "direction")
        suffix += "_reverse"
    names = {key: f"{p}{key}{suffix}" for key in (*STATE_DICT_KEYS, "weight_hr", *PEEPHOLE_KEYS.values())}
    state = {key: arrays[name] for key, name in names.items() if name in arrays}
    _not_another_rnn(arrays, f"{p}gates", state, cell, where)
    if "bias_ih" not in state and "bias_hh" not in state and "weight_ih" in state:  # bias=False
        rows = np.shape(arrays[names["weight_hh"]])[0] if names["weight_hh"] in arrays else 0
        state.update(bias_ih=np.zeros(rows), bias_hh=np.zeros(rows))
    try:
        return from_state_dict(state, cell)
    except ValueError as e:
        message = str(e)
        for key, name in names.items():
            message = message.replace(f"'{key}'", f"'{name}'")
        raise _same_kind(e, f"{where}: {message}") from None
