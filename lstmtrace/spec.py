"""Reading numbers, vectors and matrices from the short strings people type.

``"-0.1,0.3,0.1"`` is a vector and ``"1,0;0,1"`` a 2×2 matrix (rows split by
``;``).  Every reader raises :class:`ValueError` with a sentence that says
what was wrong, so the command line can pass it on as it is.
"""
import io
import math
import os
import warnings
from typing import Optional

import numpy as np

from lstmtrace.errors import OptionError
from lstmtrace.damage import HoldsObjects, check_not_empty, not_utf8, read_npy

__all__ = ["parse_number", "parse_vector", "parse_matrix", "parse_sequence", "read_sequence", "read_tokens",
           "check_sequence", "parse_steps"]


def parse_number(text: str) -> float:
    """A finite float from ``text``.

    >>> parse_number(" -0.25 ")
    -0.25
    """
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{text.strip()!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{text.strip()!r} is not finite; lstmtrace needs finite numbers")
    return value


def parse_vector(text: str) -> np.ndarray:
    """A float64 vector from comma-separated numbers.

    >>> parse_vector("-0.1, 0.3,0.1")
    array([-0.1,  0.3,  0.1])
    """
    if not text.strip():
        raise ValueError("no numbers given")
    items = text.split(",")
    values = []
    for k, item in enumerate(items):
        if not item.strip():
            raise ValueError(f"item {k + 1} of {len(items)} is empty")
        try:
            values.append(parse_number(item))
        except ValueError as e:
            raise ValueError(f"item {k + 1}: {e}") from None
    return np.array(values, dtype=np.float64)


def parse_matrix(text: str) -> np.ndarray:
    """A float64 matrix from rows of comma-separated numbers split by ``;``.

    >>> parse_matrix("1,0;0,1")
    array([[1., 0.],
           [0., 1.]])
    """
    rows = []
    for r, row in enumerate(text.split(";")):
        try:
            rows.append(parse_vector(row))
        except ValueError as e:
            raise ValueError(f"row {r + 1}: {e}") from None
    for r, row in enumerate(rows):
        if len(row) != len(rows[0]):
            raise ValueError(f"rows have different lengths: row {r + 1} has {len(row)} values, "
                             f"row 1 has {len(rows[0])}")
    return np.vstack(rows)


def read_sequence(path, batch_index: Optional[int] = None) -> np.ndarray:
    """A T×E float64 sequence from a file: ``.npy`` (or an ``.npz`` of one array), or CSV/whitespace
    text, one x_t per row.

    A first row that is not numbers is taken for a header and skipped.  An array of shape
    B×T×E (a batch) needs ``batch_index``: which of its B sequences (an OptionError otherwise).

    >>> import io
    >>> read_sequence(io.StringIO("a,b\\n1,2\\n3,4\\n"))
    array([[1., 2.],
           [3., 4.]])
    """
    name = getattr(path, "name", None) or str(path)
    arrays = str(name).lower().endswith((".npy", ".npz")) or isinstance(path, io.BufferedIOBase)
    if not arrays and batch_index is not None:
        raise OptionError(f"is for arrays of shape B×T×E (.npy, .npz); {name} is text, one x_t per row",
                          "batch_index")
    if arrays:  # a binary stream is an .npy
        xs = _read_npz(path, name) if str(name).lower().endswith(".npz") else _read_npy(path, name)
        if xs.dtype.kind not in "iuf":
            raise ValueError(f"{name} holds {xs.dtype} values, not real numbers")
        xs = xs.astype(np.float64)
        if xs.ndim == 1:
            xs = xs[:, None]
        return check_sequence(_one_of_a_batch(xs, name, batch_index), name)
    if hasattr(path, "read"):
        text = path.read().lstrip("\ufeff")
    else:
        with open(path, "rb") as f:
            data = f.read()
        try:
            text = data.decode("utf-8-sig")  # -sig: Excel's "CSV UTF-8" starts with a BOM
        except UnicodeDecodeError as e:
            raise ValueError(f"{name} is not a text file of numbers: {not_utf8(data, e)}") from None
    lines = [(k + 1, line) for k, line in enumerate(text.splitlines()) if line.strip()]
    if not lines:
        raise ValueError(f"{name} is empty: a sequence needs at least one row")
    delimiter = "," if "," in lines[0][1] else None
    split = lambda line: line.split(delimiter)
    try:
        [float(v) for v in split(lines[0][1])]
        header = False
    except ValueError:
        header = True
    if header and len(lines) == 1:
        raise ValueError(f"{name} has a header but no rows")
    body = "\n".join(text.splitlines()[lines[0][0]:]) if header else text
    try:  # C speed for the usual case: every row the same width of plain numbers
        with warnings.catch_warnings():  # only # comment lines: check_sequence says "is empty"
            warnings.filterwarnings("ignore", "loadtxt: input contained no data", UserWarning)
            xs = np.loadtxt(io.StringIO(body), delimiter=delimiter, ndmin=2, dtype=np.float64)
    except ValueError:
        # say which line is wrong (only on this error path is there a loop over rows)
        width = len(split(lines[header][1]))
        for number, line in lines[header:]:
            cells = split(line)
            if len(cells) != width:
                raise ValueError(f"{name} line {number} has {len(cells)} values, "
                                 f"the first row {width}") from None
            for cell in cells:
                try:
                    float(cell)
                except ValueError:
                    raise ValueError(f"{name} line {number}: {cell.strip()!r} is not a number") from None
        raise ValueError(f"{name} could not be read as rows of numbers") from None
    return check_sequence(xs, name)


def _read_npy(path, name) -> np.ndarray:
    """The array in an .npy file or binary stream, or a ValueError that says what the file is instead."""
    if hasattr(path, "read"):
        return read_npy(path, name, None)
    check_not_empty(path, "an .npy file (as np.save writes)")
    with open(path, "rb") as f:
        try:
            return read_npy(f, name, os.fstat(f.fileno()).st_size)
        except HoldsObjects:
            raise ValueError(f"{name} is not a plain .npy array: it holds Python objects, which would "
                             "need pickle to load; lstmtrace reads only numbers") from None


def _read_npz(path, name) -> np.ndarray:
    """The one array of an .npz (as np.savez writes), read without pickle."""
    from lstmtrace.weights import _npz

    arrays = _npz(path)
    if len(arrays) != 1:
        raise ValueError(f"{name} holds {len(arrays)} arrays ({', '.join(list(arrays)[:5]) or 'none'}); a "
                         "sequence file holds one, of shape T×E or B×T×E")
    return next(iter(arrays.values()))


def _one_of_a_batch(xs: np.ndarray, name: str, batch_index: Optional[int]) -> np.ndarray:
    """Sequence ``batch_index`` of a B×T×E batch; a T×E sequence as it is."""
    if xs.ndim == 3:
        B = xs.shape[0]
        if batch_index is None:
            raise OptionError(f"{name} has shape B×T×E = {tuple(xs.shape)}, a batch of {B} sequences: choose "
                              f"one with --batch-index (0 to {B - 1})", "batch_index")
        if not 0 <= batch_index < B:
            raise OptionError(f"is {batch_index}, and {name} holds sequences 0 to {B - 1}", "batch_index")
        return xs[batch_index]
    if batch_index is not None:
        raise OptionError(f"is for arrays of shape B×T×E; {name} has shape {tuple(xs.shape)}", "batch_index")
    return xs


def read_tokens(given: str) -> np.ndarray:
    """Token ids, as ``--tokens`` gives them: inline (``"3,1,4"``) or a file of whole numbers
    (text separated by commas, spaces or lines, or an ``.npy``).

    >>> read_tokens("3, 1,4")
    array([3, 1, 4])
    """
    if os.path.isfile(given):
        if given.lower().endswith(".npy"):
            ids = _read_npy(given, given)
            if ids.dtype.kind not in "iu":
                raise ValueError(f"{given} holds {ids.dtype} values, not whole numbers (token ids)")
            ids = ids.reshape(-1)
        else:
            with open(given, "rb") as f:
                data = f.read()
            try:
                text = data.decode("utf-8-sig")
            except UnicodeDecodeError as e:
                raise ValueError(f"{given} is not a text file of token ids: {not_utf8(data, e)}") from None
            ids = _whole_numbers(text.replace(",", " ").split(), given)
    else:
        ids = _whole_numbers([w for w in given.split(",")], "--tokens")
    if ids.size == 0:
        raise ValueError(f"{given} holds no token ids")
    if (ids < 0).any():
        raise ValueError(f"token id {int(ids[ids < 0][0])} is negative; ids count from 0")
    return ids.astype(np.int64)


def _whole_numbers(words, name) -> np.ndarray:
    ids = []
    for word in words:
        word = word.strip()
        if not word:
            continue
        if not word.lstrip("-").isdigit():
            raise ValueError(f"{name}: {word!r} is not a token id (a whole number)")
        ids.append(int(word))
    return np.array(ids, dtype=np.int64)


def parse_sequence(text: str) -> np.ndarray:
    """A T×E sequence written inline, rows split by ``;``.

    >>> parse_sequence("1,2;3,4").shape
    (2, 2)
    """
    return check_sequence(parse_matrix(text), "the sequence")


def check_sequence(xs: np.ndarray, name: str) -> np.ndarray:
    """``xs`` if it is a finite T×E array with T, E ≥ 1, else a ValueError saying where it is not."""
    if xs.ndim != 2:
        raise ValueError(f"{name} must be T×E (one x_t per row), not shape {xs.shape}")
    if xs.shape[0] == 0 or xs.shape[1] == 0:
        raise ValueError(f"{name} is empty: a sequence needs at least one row of at least one number")
    bad = ~np.isfinite(xs)
    if bad.any():
        t, e = (int(k) for k in np.argwhere(bad)[0])
        raise ValueError(f"{name} has {xs[t, e]} at step {t + 1}, element {e}; lstmtrace needs "
                         "finite numbers")
    return xs


def parse_steps(text: str, last: int) -> list:
    """Step numbers from ``"3-5"``, ``"7"`` or ``"1,3-4"``, each within 1..last.

    >>> parse_steps("1,3-4", 5)
    [1, 3, 4]
    """
    steps = []
    for part in text.split(","):
        first, dash, end = part.strip().partition("-")
        try:
            a, b = int(first), int(end) if dash else int(first)
        except ValueError:
            raise ValueError(f"{part.strip()!r} is not a step or a range like 3-5") from None
        if not 1 <= a <= b <= last:
            raise ValueError(f"{part.strip()!r} is not within steps 1..{last}")
        steps.extend(range(a, b + 1))
    return sorted(set(steps))
