"""Reading numbers, vectors and matrices from the short strings people type.

``"-0.1,0.3,0.1"`` is a vector and ``"1,0;0,1"`` a 2×2 matrix (rows split by
``;``).  Every reader raises :class:`ValueError` with a sentence that says
what was wrong, so the command line can pass it on as it is.
"""
import math

import numpy as np

__all__ = ["parse_number", "parse_vector", "parse_matrix"]


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
    widths = {len(row) for row in rows}
    if len(widths) > 1:
        raise ValueError(f"rows have different lengths {[len(row) for row in rows]}")
    return np.vstack(rows)
