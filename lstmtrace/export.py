"""Writing traces fast: long CSVs through pyarrow when it is installed, else pandas; Parquet.

Both CSV writers give the shortest digits that read back to the same float64,
so either file round-trips bit-identically; they differ only in spelling
(pandas writes ``1e-05`` and ``-0.0``, Arrow ``0.00001`` and ``-0``).  pyarrow is
an optional extra (``pip install 'lstmtrace[pyarrow]'``): nothing else in
lstmtrace imports it.
"""
import io
from typing import IO

import pandas as pd

from lstmtrace._damage import check_not_empty, first_line

__all__ = ["write_csv", "write_csv_pandas", "write_csv_arrow", "write_parquet", "read_parquet"]

PYARROW_HINT = "pip install 'lstmtrace[pyarrow]'"


ARROW_FROM_ROWS = 100_000
"""Frames this long go through pyarrow when it is installed; shorter ones always through
pandas, so small files (and the golden traces) are the same text on every machine."""


def write_csv(frame: pd.DataFrame, f: IO[str]) -> None:
    """``frame`` as CSV into the text stream ``f``: by pyarrow for long frames where it can, else pandas."""
    if len(frame) >= ARROW_FROM_ROWS:
        try:
            return write_csv_arrow(frame, f)
        except ImportError:
            pass
    write_csv_pandas(frame, f)


def write_csv_pandas(frame: pd.DataFrame, f: IO[str]) -> None:
    """The pure pandas writer (floats as Python's repr: shortest round-trip digits)."""
    frame.to_csv(f, index=False, lineterminator="\n")


def write_csv_arrow(frame: pd.DataFrame, f: IO[str]) -> None:
    """pyarrow's C++ CSV writer; raises ImportError without pyarrow (or one too old to skip quotes)."""
    try:
        import pyarrow as pa
        import pyarrow.csv as pacsv

        options = pacsv.WriteOptions(include_header=False, quoting_style="none")
    except (ImportError, TypeError):  # TypeError: a pyarrow before quoting_style
        raise ImportError(f"the fast CSV writer needs pyarrow ≥ 13: {PYARROW_HINT}") from None
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.cast(pa.schema([(name, pa.string() if pa.types.is_dictionary(t) else t)
                                  for name, t in zip(table.column_names, table.schema.types)]))
    f.write(",".join(frame.columns) + "\n")
    out = io.BytesIO()
    pacsv.write_csv(table, out, options)
    f.write(out.getvalue().decode("utf-8"))


def write_parquet(frame: pd.DataFrame, f: IO[bytes]) -> None:
    """``frame`` as Parquet (gate and quantity stay dictionary-encoded), for pandas, DuckDB or Spark."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ImportError(f"Parquet output needs pyarrow: {PYARROW_HINT}") from None
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), f)


def read_parquet(path) -> pd.DataFrame:
    """A Parquet trace as a DataFrame with gate and quantity as plain strings, for checking."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ImportError(f"reading Parquet needs pyarrow: {PYARROW_HINT}") from None
    magic = check_not_empty(path, "a Parquet file")
    try:
        frame = pq.read_table(path).to_pandas()
    except Exception as e:  # pyarrow's errors for a damaged file (ArrowInvalid, OSError, …) vary by version
        if magic[:4] != b"PAR1":
            raise ValueError(f"{path} is not a Parquet file (it does not start with PAR1)") from None
        raise ValueError(f"{path} is truncated or corrupt: pyarrow cannot read it ({first_line(e)})") from None
    for column in ("gate", "quantity"):
        if column in frame:
            frame[column] = frame[column].astype(str)
    return frame
