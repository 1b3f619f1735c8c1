"""Trace files: writing a trace as CSV (long or wide), JSON or Parquet, and reading it back, checked.

Both CSV writers give the shortest digits that read back to the same float64,
so either file round-trips bit-identically; they differ only in spelling
(pandas writes ``1e-05`` and ``-0.0``, Arrow ``0.00001`` and ``-0``).  pyarrow is
an optional extra (``pip install 'lstmtrace[pyarrow]'``): nothing else in
lstmtrace imports it.

:func:`read` trusts nothing in a file: columns, numbers, gate and quantity names,
every row present once, a last line that is whole; any damage is one sentence
naming the file (see :mod:`lstmtrace.damage`).
"""
import io
import json
import os
from typing import IO, List, NamedTuple, Optional, Tuple, Union

import numpy as np
import pandas as pd

from lstmtrace import rows
from lstmtrace.damage import check_not_empty, first_line, not_utf8
from lstmtrace.cell import LSTM
from lstmtrace.rows import COLUMNS, GATE_DTYPE, QUANTITY_DTYPE, led, stage_sizes

__all__ = ["LEAD", "Read", "Recorded", "csv_lines", "read", "read_cells", "read_parquet", "records_json", "stack_frame",
           "write_csv", "write_csv_arrow", "write_csv_pandas", "write_parquet", "write_stack_csv"]

PYARROW_HINT = "pip install 'lstmtrace[pyarrow]'"


ARROW_FROM_ROWS = 100_000
"""Frames this long go through pyarrow when it is installed; shorter ones always through
pandas, so small files (and the golden traces) are the same text on every machine."""

PROGRESS_PART = 250_000
"""Rows a CSV is written in at a time when its writing shows progress."""


VARIANT = "variant"
"""The gate of the rows, at step 0, that record a trace's variant (none for the default LSTM), and
that a one-cell trace runs in reverse (the row ``reverse``)."""

REVERSE = "reverse"

LEAD = ("layer", "direction")
"""The columns a trace of several cells (:class:`lstmtrace.Stack`) has before a trace's own."""


class Recorded(NamedTuple):
    """What a saved cell records in its step-0 rows: its variant's settings, and ``reverse`` when it
    runs in reverse (and no ``direction`` column says so)."""

    variant: object
    direction: str = "forward"

    def to_rows(self) -> tuple:
        rows = self.variant.to_rows()
        return rows + ((REVERSE, 0, 1.0),) if self.direction == "reverse" else rows


class Read(NamedTuple):
    """One cell read back from a trace file (:func:`read_cells`)."""

    frame: pd.DataFrame
    skipped: list
    variant: object
    direction: str = "forward"
    layer: Optional[int] = None  # None: a file of one cell, with no layer column


def variant_frame(variant, columns=COLUMNS) -> pd.DataFrame:
    """The rows that record ``variant`` in a saved trace: step 0, gate ``variant``, one per setting
    (see :meth:`lstmtrace.Variant.to_rows`); ``columns`` of the wide layout put each value in u<unit>.

    >>> from lstmtrace.variant import Variant
    >>> variant_frame(Variant(clip=3.0))
       step     gate quantity  unit  value
    0     0  variant     clip     0    3.0
    """
    recorded = variant.to_rows()
    if tuple(columns) == COLUMNS:
        return pd.DataFrame({"step": np.zeros(len(recorded), dtype=np.int32), "gate": VARIANT,
                             "quantity": [q for q, _, _ in recorded],
                             "unit": np.array([u for _, u, _ in recorded], dtype=np.int32),
                             "value": np.array([v for _, _, v in recorded], dtype=np.float64)}, columns=COLUMNS)
    settings = list(dict.fromkeys(q for q, _, _ in recorded))
    wide = pd.DataFrame(np.nan, index=range(len(settings)), columns=list(columns[3:]))
    for q, u, v in recorded:
        wide.iloc[settings.index(q), u] = v
    return pd.concat([pd.DataFrame({"step": np.zeros(len(settings), dtype=np.int32), "gate": VARIANT,
                                    "quantity": settings}), wide], axis=1)


def csv_lines(trace, layout: str = "long") -> int:
    """How many lines ``trace.to_csv(layout=layout)`` writes, header and variant rows included,
    without writing it.

    >>> from lstmtrace import Parameters, step
    >>> csv_lines(step(Parameters.zeros(1, 1), [1.0])), csv_lines(step(Parameters.zeros(1, 1), [1.0]), "wide")
    (29, 29)
    """
    if hasattr(trace, "traces"):  # a Stack: one header, then each cell's lines
        return 1 + sum(csv_lines(cell, layout) - 1 for cell in trace.traces.values())
    recorded = Recorded(trace.variant, trace.direction).to_rows()
    if layout == "long":
        return 1 + len(recorded) + len(trace.frame)
    forward, grad = len(rows.stages(trace.cell)), len(rows.stages(trace.cell, "grad"))
    mode = getattr(trace, "param_grads", None)
    per_step = forward + {None: 0, "per-step": grad}.get(mode, forward)
    summed = grad - forward if mode == "total" else 0  # the parameters' gradients, once at step 0
    return 1 + len({q for q, _, _ in recorded}) + trace.steps * per_step + summed


def write_stack_csv(stack, f: IO[str], layout: str = "long") -> None:
    """A :class:`lstmtrace.Stack` as CSV into ``f``: one header, then each cell's rows (long or wide),
    led by its layer and direction and its step-0 variant rows, each cell by :func:`write_csv`."""
    tables = {key: trace.frame if layout == "long" else trace.wide() for key, trace in stack.traces.items()}
    if layout == "wide":  # one set of unit columns for every cell: blank past each cell's widest vector
        columns = max((table.columns for table in tables.values()), key=len)
        tables = {key: table.reindex(columns=columns) for key, table in tables.items()}
    write = write_csv if layout == "long" else write_csv_pandas
    for n, ((k, direction), trace) in enumerate(stack.traces.items()):
        # the direction column says which way a cell runs: its step-0 rows record only its variant
        write(led(tables[k, direction], k, direction), f, Recorded(trace.variant), header=n == 0)


def stack_frame(stack) -> pd.DataFrame:
    """Every cell of a :class:`lstmtrace.Stack` as its Parquet and JSON files hold it: each cell's
    step-0 rows (its variant) and its rows, led by ``layer`` and ``direction``; gate and quantity as text."""
    parts = []
    for (k, direction), trace in stack.traces.items():
        recorded = Recorded(trace.variant)
        for part in ((variant_frame(recorded),) if recorded.to_rows() else ()) + (trace.frame,):
            parts.append(led(part.astype({"gate": str, "quantity": str}), k, direction))
    return pd.concat(parts, ignore_index=True)


def write_csv(frame: pd.DataFrame, f: IO[str], variant=None, header: bool = True, progress=None) -> None:
    """``frame`` as CSV into the text stream ``f``: by pyarrow for long frames where it can, else pandas.

    A ``variant`` other than the default is recorded in rows right after the header (``header=False``:
    no header line, for a stack's cells after the first).  ``progress``, if given, is called with the
    share of the rows (0 to 1) each part written holds: the frame is then written in parts, by the one
    writer the whole frame would have, so the text is the same.
    """
    if progress is not None and len(frame) >= 2 * PROGRESS_PART:
        writer = write_csv_pandas
        if len(frame) >= ARROW_FROM_ROWS:
            try:
                import pyarrow.csv  # noqa: F401  (the same test write_csv_arrow makes)

                writer = write_csv_arrow
            except ImportError:
                pass
        parts = range(0, len(frame), PROGRESS_PART)
        for k, start in enumerate(parts):
            part = frame.iloc[start:start + PROGRESS_PART]
            try:
                writer(part, f, variant if k == 0 else None, header and k == 0)
            except ImportError:  # a pyarrow too old to skip quotes: pandas for the whole frame, as below
                if k:
                    raise
                writer = write_csv_pandas
                writer(part, f, variant, header)
            progress(len(part) / len(frame))
        return
    if len(frame) >= ARROW_FROM_ROWS:
        try:
            return write_csv_arrow(frame, f, variant, header)
        except ImportError:
            pass
    write_csv_pandas(frame, f, variant, header)


def write_csv_pandas(frame: pd.DataFrame, f: IO[str], variant=None, header: bool = True) -> None:
    """The pure pandas writer (floats as Python's repr: shortest round-trip digits)."""
    if variant is None or not variant.to_rows():
        frame.to_csv(f, index=False, header=header, lineterminator="\n")
        return
    _settings(variant, frame).to_csv(f, index=False, header=header, lineterminator="\n")
    frame.to_csv(f, index=False, header=False, lineterminator="\n")


def _settings(variant, frame: pd.DataFrame) -> pd.DataFrame:
    """The step-0 rows recording ``variant``, with the columns of ``frame`` (a stack's cell leads with
    layer and direction, the same in every row)."""
    if tuple(frame.columns[:2]) != LEAD:
        return variant_frame(variant, frame.columns)
    return led(variant_frame(variant, frame.columns[2:]), int(frame["layer"].iloc[0]), frame["direction"].iloc[0])


def write_csv_arrow(frame: pd.DataFrame, f: IO[str], variant=None, header: bool = True) -> None:
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
    if header:
        f.write(",".join(frame.columns) + "\n")
    if variant is not None and variant.to_rows():
        _settings(variant, frame).to_csv(f, index=False, header=False, lineterminator="\n")
    out = io.BytesIO()
    pacsv.write_csv(table, out, options)
    f.write(out.getvalue().decode("utf-8"))


def write_parquet(frame: pd.DataFrame, f: IO[bytes], variant=None) -> None:
    """``frame`` as Parquet (gate and quantity stay dictionary-encoded), for pandas, DuckDB or Spark;
    a ``variant`` other than the default in rows first, as in CSV."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ImportError(f"Parquet output needs pyarrow: {PYARROW_HINT}") from None
    table = pa.Table.from_pandas(frame, preserve_index=False)
    if variant is not None and variant.to_rows():
        recorded = pa.Table.from_pandas(variant_frame(variant), preserve_index=False)
        table = pa.concat_tables([recorded.cast(pa.schema([(n, pa.string() if pa.types.is_dictionary(t) else t)
                                                           for n, t in zip(table.column_names, table.schema.types)])),
                                  table.cast(pa.schema([(n, pa.string() if pa.types.is_dictionary(t) else t)
                                                        for n, t in zip(table.column_names, table.schema.types)]))])
    pq.write_table(table, f)


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


def records_json(frame: pd.DataFrame, variant=None) -> str:
    """A DataFrame as a JSON list of row objects, floats in full (pandas' to_json keeps 15 digits);
    a ``variant`` other than the default in rows first, as in CSV."""
    if variant is not None and variant.to_rows():
        frame = pd.concat([variant_frame(variant), frame.astype({"gate": str, "quantity": str})], ignore_index=True)
    columns = [frame[c].astype(str).tolist() if not pd.api.types.is_numeric_dtype(frame[c])
               else frame[c].tolist() for c in frame.columns]
    return json.dumps([dict(zip(frame.columns, row)) for row in zip(*columns)], indent=1) + "\n"


# -- reading a trace back, checked ------------------------------------------------------

# pandas before 3.0 parses floats in CSV exactly only when asked to
_ROUND_TRIP = {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {}


def read(path: Union[str, os.PathLike, io.IOBase], unknown: str = "error") -> Tuple[pd.DataFrame, list, object]:
    """The frame of a saved one-cell trace (CSV long or wide, or Parquet), checked whole, the unknown
    ``gate.quantity`` names left out (``unknown="skip"``; an error by default), and the variant
    that made it.  A file of several cells is :func:`read_cells`'.

    Use :func:`lstmtrace.read_trace`, which makes a Trace (or a Stack) of it.
    """
    cells = read_cells(path, unknown)
    if len(cells) > 1 or cells[0].layer is not None:
        raise ValueError(f"{_name(path)} holds a trace of several cells (layer and direction columns): "
                         "read it with lstmtrace.read_trace")
    return cells[0].frame, cells[0].skipped, cells[0].variant


def _name(path) -> str:
    return os.fspath(path) if isinstance(path, (str, os.PathLike)) else getattr(path, "name", "<stream>")


def read_cells(path: Union[str, os.PathLike, io.IOBase], unknown: str = "error") -> List[Read]:
    """Every cell of a saved trace, checked whole: one for a trace of one cell (``layer`` None), or
    one per (layer, direction) of a stack's, in the file's order."""
    if unknown not in ("error", "skip"):
        raise ValueError(f"unknown must be 'error' or 'skip', not {unknown!r}")
    name = _name(path)
    if str(name).lower().endswith(".parquet"):
        return _split(read_parquet(path), None, unknown, name, wide=False)
    try:
        checked = _read_csv(path, unknown, name)
    except ValueError as e:
        last = _cut_mid_row(path)
        if last is None:
            raise
        detail = str(e)[len(str(name)):] if str(e).startswith(str(name)) else str(e)
        detail = detail.lstrip(": ").removeprefix("is ")
        raise ValueError(f"{name} is truncated or corrupt: it stops in the middle of line {last} "
                         f"({detail})") from None
    _check_ends_with_a_line_end(path, name)
    return checked


def _check_ends_with_a_line_end(path, name) -> None:
    """A CSV file cut short inside its last number still has every cell, and the wrong value:
    lstmtrace ends every line, so a last line without a line end is refused."""
    if not isinstance(path, (str, os.PathLike)):
        return
    with open(path, "rb") as f:
        if f.seek(0, os.SEEK_END) == 0:
            return  # empty: said in words below
        f.seek(-1, os.SEEK_END)
        if f.read(1) != b"\n":
            raise ValueError(f"{name} is truncated or corrupt: its last line has no line end, so its last "
                             "value may be cut short (if the file is whole, end it with a line end)")


def _cut_mid_row(path) -> Optional[int]:
    """The number of a CSV file's last line when the file stops part way through it (cut short?).

    That is: no line end after it, and fewer cells than the header has.
    """
    if not isinstance(path, (str, os.PathLike)):
        return None
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    last = lines[-1].rstrip(b"\r")
    if len(lines) < 2 or not last or last.count(b",") >= lines[0].count(b","):
        return None
    return len(lines)


def _read_csv(path, unknown: str, name: str) -> List[Read]:
    try:
        header = _pandas_csv(path, nrows=0, dtype=str).columns
        lead = tuple(header[:2]) == LEAD
        own = header[2:] if lead else header
        wide = tuple(own[:3]) == COLUMNS[:3] and len(own) > 3 and own[3] == "u0"
        keys = {"layer": np.int64, "direction": str} if lead else {}
        if wide:  # a blank cell past a vector's end is the only thing read as NaN
            frame = _pandas_csv(path, dtype={**keys, "step": np.int64, "gate": str, "quantity": str,
                                             **{u: np.float64 for u in own[3:]}},
                                na_filter=True, na_values=[""], **_ROUND_TRIP)
        else:
            frame = _pandas_csv(path, dtype={**keys, **_CSV_DTYPES}, **_ROUND_TRIP)
    except pd.errors.EmptyDataError:
        raise ValueError(f"{name} is empty, not a trace CSV") from None
    except ValueError as e:  # a cell that is not a number, a ragged row, bytes that are not UTF-8
        raise ValueError(f"{name} is not a trace CSV: {_diagnose(path, e)}") from None
    return _split(frame, np.arange(len(frame)) + 2, unknown, name, wide)


def _split(frame: pd.DataFrame, lines, unknown: str, name: str, wide: bool) -> List[Read]:
    """The cells of a file's rows: the whole frame, or each (layer, direction) of a stack's; checked."""
    if tuple(frame.columns[:2]) != LEAD:
        return [_cell(frame, lines, unknown, name, wide)]
    layer, direction = frame["layer"].to_numpy(), frame["direction"].astype(str).to_numpy()
    numbers = np.arange(len(frame)) + 2 if lines is None else np.asarray(lines)
    bad = (layer < 0) | ~np.isin(direction, ("forward", "reverse"))
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(f"{name}: line {int(numbers[row])}: layer {layer[row]} and direction {direction[row]!r}: "
                         "a layer is a whole number ≥ 0 and a direction forward or reverse")
    if frame.empty:
        raise ValueError(f"{name} has a header but no rows")
    key = pd.MultiIndex.from_arrays([layer, direction])
    cells = []
    for k, d in dict.fromkeys(zip(layer.tolist(), direction.tolist())):
        rows = np.flatnonzero(key == (k, d))
        own = frame.iloc[rows, 2:].reset_index(drop=True)
        read = _cell(own, numbers[rows], unknown, name, wide)
        cells.append(read._replace(direction=d, layer=int(k)))
    return sorted(cells, key=lambda c: (c.layer, c.direction))


def _cell(frame: pd.DataFrame, lines, unknown: str, name: str, wide: bool) -> Read:
    if wide:
        try:
            frame, lines = _long_from_wide(frame, lines)
        except ValueError as e:
            raise ValueError(f"{name}: {e}") from None
    return _checked(frame, lines, unknown, name)


def _checked(frame: pd.DataFrame, lines, unknown: str, name: str) -> Read:
    if tuple(frame.columns) != COLUMNS:
        raise ValueError(f"{name} has columns {', '.join(map(str, frame.columns))}; a trace has "
                         f"exactly {', '.join(COLUMNS)} (or step, gate, quantity, u0, u1, … when wide; "
                         f"a stack's start with {', '.join(LEAD)})")
    if frame.empty:
        raise ValueError(f"{name} has a header but no rows")
    if frame["value"].dtype != np.float64 or not all(np.issubdtype(frame[c].dtype, np.integer)
                                                     for c in ("step", "unit")):
        raise ValueError(f"{name}: step and unit must be whole numbers and value float64")
    try:
        variant, direction, frame, lines = _variant_of(frame, lines)
        checked, skipped = _checked_frame(frame, lines, skip_unknown=unknown == "skip", cell=variant.cell)
    except ValueError as e:
        raise ValueError(f"{name}: {e}") from None
    return Read(checked, skipped, variant, direction)


def _variant_of(frame: pd.DataFrame, lines):
    """The variant the step-0 rows record (the default where there are none), the direction (``reverse``
    when its row is there), and the other rows."""
    from lstmtrace.variant import Variant

    recorded = (frame["gate"] == VARIANT).to_numpy()
    if not recorded.any():
        return Variant(), "forward", frame, lines
    numbers = np.arange(len(frame)) + 2 if lines is None else np.asarray(lines)
    if (frame["step"].to_numpy()[recorded] != 0).any():
        row = int(np.flatnonzero(recorded & (frame["step"].to_numpy() != 0))[0])
        raise ValueError(f"line {int(numbers[row])}: the variant's rows are at step 0")
    rows = frame[recorded]
    reverse = (rows["quantity"] == REVERSE).to_numpy()
    if reverse.any() and (rows["value"].to_numpy()[reverse] != 1).any():
        raise ValueError(f"line {int(numbers[recorded][reverse][0])}: the row {VARIANT}.{REVERSE} holds 1")
    variant = Variant.from_rows(zip(rows["quantity"][~reverse], rows["unit"][~reverse], rows["value"][~reverse]))
    variant.check()
    return variant, "reverse" if reverse.any() else "forward", frame[~recorded], numbers[~recorded]


def _long_from_wide(frame: pd.DataFrame, lines=None):
    """A wide trace (one row per step, gate and quantity; a column per unit) as long rows, with their lines
    (``lines``: each wide row's line in the file; by default the row's own)."""
    lines = np.arange(len(frame)) + 2 if lines is None else np.asarray(lines)
    units = frame.columns[3:]
    if list(units) != [f"u{k}" for k in range(len(units))]:
        raise ValueError(f"the unit columns must be u0, u1, …, not {', '.join(map(str, units))}")
    values = frame[units].to_numpy(dtype=np.float64)  # blank cells are NaN
    present = ~np.isnan(values)
    width = present.sum(axis=1)
    if (present != (np.arange(len(units)) < width[:, None])).any():
        row = int(np.argmax((present != (np.arange(len(units)) < width[:, None])).any(axis=1)))
        raise ValueError(f"line {int(lines[row])}: the values of a row must fill u0, u1, … without gaps")
    rows = np.repeat(np.arange(len(frame)), width)
    long = pd.DataFrame({"step": frame["step"].to_numpy()[rows],
                         "gate": frame["gate"].to_numpy()[rows],
                         "quantity": frame["quantity"].to_numpy()[rows],
                         "unit": np.nonzero(present)[1].astype(np.int32),
                         "value": values[present]})
    return long, lines[rows]


_CSV_DTYPES = {"step": np.int64, "gate": str, "quantity": str, "unit": np.int64, "value": np.float64}


def _pandas_csv(path, **kwargs) -> pd.DataFrame:
    """pandas.read_csv that takes no text for NaN: "nan" or "NA" in a trace is an error, not a value."""
    if hasattr(path, "seek"):
        path.seek(0)
    options = {"keep_default_na": False, "na_filter": False, "encoding": "utf-8", **kwargs}
    return pd.read_csv(path, **options)


def _line_of_row(row: int) -> int:
    return row + 2  # the header is line 1


def _diagnose(path, error: ValueError) -> str:
    """Say which line of a CSV that pandas would not read as a trace is wrong."""
    if isinstance(error, UnicodeDecodeError) and isinstance(path, (str, os.PathLike)):
        with open(path, "rb") as f:
            data = f.read()
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as e:
            return not_utf8(data, e)
    try:
        frame = _pandas_csv(path, dtype=str)
    except ValueError as e:
        return _first_line(e)
    lead = LEAD if tuple(frame.columns[:2]) == LEAD else ()
    if tuple(frame.columns) != lead + COLUMNS:
        return f"its columns are {', '.join(map(str, frame.columns))}, not {', '.join(COLUMNS)}"
    for column, kind in (("layer", "a whole number"), ("step", "a whole number"), ("unit", "a whole number"),
                         ("value", "a number")):
        if column not in frame:
            continue
        numbers = pd.to_numeric(frame[column], errors="coerce")
        bad = numbers.isna() | ((numbers % 1 != 0) if kind == "a whole number" else False)
        if bad.any():
            row = int(np.argmax(bad.to_numpy()))
            return f"line {_line_of_row(row)}: {column} {frame[column].iloc[row]!r} is not {kind}"
    return _first_line(error)


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _checked_frame(frame: pd.DataFrame, lines: Optional[np.ndarray] = None, skip_unknown: bool = False,
                   cell=None):
    """The rows of a CSV trace, checked and put in pipeline order, and the unknown quantities skipped.

    Errors name the file's line: ``lines[row]`` when given, else the row's own line.
    """
    _line = (lambda row: int(lines[row])) if lines is not None else _line_of_row
    cell = LSTM if cell is None else cell
    STAGES, GRAD_STAGES = rows.stages(cell), rows.stages(cell, "grad")  # this cell's, as rows.py names them
    gate = GATE_DTYPE.categories.get_indexer(frame["gate"])  # -1 where not a gate
    quantity = QUANTITY_DTYPE.categories.get_indexer(frame["quantity"])
    stage = np.where((gate >= 0) & (quantity >= 0), rows.stage_of(cell)[gate, quantity], -1)
    skipped = []
    if skip_unknown and (stage < 0).any():
        unknown = stage < 0
        names = frame["gate"].astype(str)[unknown] + "." + frame["quantity"].astype(str)[unknown]
        skipped = sorted(set(names))
        keep = ~unknown
        frame, stage = frame[keep], stage[keep]
        lines = (lines if lines is not None else np.arange(len(keep)) + 2)[keep]
        _line = lambda row: int(lines[row])
    if (stage < 0).any():
        row = int(np.argmax(stage < 0))
        raise ValueError(f"line {_line(row)}: {frame['gate'].iloc[row]}.{frame['quantity'].iloc[row]} "
                         "is not a gate and quantity of an LSTM step")
    if frame.empty:
        raise ValueError("has no rows of a gate and quantity this lstmtrace knows")

    step_, unit, value = (frame[c].to_numpy() for c in ("step", "unit", "value"))
    n_forward, n_grad = len(STAGES), len(GRAD_STAGES)
    weights = stage >= 2 * n_forward  # a parameter's gradient: grad:W, grad:U, grad:b, grad:P, grad:W_hr
    summed = weights & (step_ == 0)  # "total": summed over the steps, at step 0
    for column, bad, what in (("step", (step_ < 1) & ~summed, "a step ≥ 1"), ("unit", unit < 0, "a unit ≥ 0"),
                              ("value", ~np.isfinite(value), "a finite number")):
        if bad.any():
            row = int(np.argmax(bad))
            raise ValueError(f"line {_line(row)}: {column} {str(frame[column].iloc[row])!r} is not {what}"
                             + (" (step 0 holds only the parameters' gradients, summed)" if column == "step"
                                and step_[row] == 0 else ""))
    if summed.any() and (weights & ~summed).any():
        row = int(np.argmax(weights & ~summed))
        raise ValueError(f"line {_line(row)}: {frame['gate'].iloc[row]}.{frame['quantity'].iloc[row]} at step "
                         f"{int(step_[row])}, while other parameters' gradients are summed at step 0: a trace keeps "
                         "them one way (param_grads 'total' or 'per-step')")

    steps = int(step_.max())
    E = int(((step_ == 1) & (stage == 0)).sum())
    H = int(((step_ == 1) & (stage == 2)).sum())  # c_prev: h_prev has P units with a projection
    if E == 0 or H == 0:
        raise ValueError(f"step 1 has no given.{'x' if E == 0 else 'c_prev'} rows, so the trace's "
                         "sizes are unknown")
    grad = None
    if (stage >= n_forward).any():
        grad = "total" if summed.any() else "per-step" if weights.any() else "none"
    # a block is one part's stage at one step (the summed ones: once), numbered in the order the rows belong in
    per_step_grad = n_grad if grad == "per-step" else n_forward
    sizes_grad = stage_sizes(E, H, "grad", cell)
    expected = [np.tile(stage_sizes(E, H, "forward", cell), steps)]
    if grad is not None:
        expected.append(np.tile(sizes_grad[:per_step_grad], steps))
    if grad == "total":
        expected.append(sizes_grad[n_forward:])
    expected = np.concatenate(expected)
    part = (stage >= n_forward).astype(np.int64)
    in_part = stage - part * n_forward
    block = np.where(part == 0, (step_ - 1) * n_forward + in_part,
                     steps * n_forward + (step_ - 1) * per_step_grad + in_part)
    if grad == "total":
        block = np.where(summed, steps * (n_forward + per_step_grad) + in_part - n_forward, block)
    counts = np.bincount(block, minlength=len(expected))
    wrong = counts != expected
    if wrong.any():
        k = int(np.argmax(wrong))
        if k >= steps * (n_forward + per_step_grad):  # a summed parameter's gradient
            t, (g, q) = 0, GRAD_STAGES[n_forward + k - steps * (n_forward + per_step_grad)]
        elif k >= steps * n_forward:
            j = k - steps * n_forward
            t, (g, q) = j // per_step_grad + 1, GRAD_STAGES[j % per_step_grad]
        else:
            t, (g, q) = k // n_forward + 1, STAGES[k % n_forward]
        raise ValueError(f"step {t} has {counts[k]} rows of {g}.{q}, expected {expected[k]} "
                         f"(input size {E} and hidden size {H}, from step 1's x and c_prev)")

    order = np.lexsort((unit, block))
    misplaced = unit[order] != rows.keys(E, H, steps, grad or False, cell)["unit"]
    if misplaced.any():
        row = int(order[np.argmax(misplaced)])
        raise ValueError(f"line {_line(row)}: unit {int(unit[row])} of {frame['gate'].iloc[row]}."
                         f"{frame['quantity'].iloc[row]} is repeated or out of range")
    return rows.frame(value[order], E, H, steps, grad or False, cell), skipped
