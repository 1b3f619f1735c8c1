"""Every format lstmtrace writes, in one table: ``--format``, the ``-o`` suffixes and ``Trace.save`` read it.

========= ========== =================================================================
format    suffix     what it holds
========= ========== =================================================================
text      ``.txt``   the annotated step-by-step explanation (what ``lstmtrace step`` prints)
markdown  ``.md``    the same, with Markdown headings and tables
csv       ``.csv``   every value, every digit (long, or wide with ``layout="wide"``)
json      ``.json``  every value as a row object, every digit
parquet   ``.parquet`` every value, for pandas, DuckDB or Spark (needs pyarrow: ``requires``)
html      ``.html``  the tables a notebook shows (the first steps and units)
python    ``.py``    the step as a standalone numpy script that recomputes every value, bit for bit
xlsx      ``.xlsx``  a live workbook: inputs and weights as cells, every value a formula (needs XlsxWriter: ``requires``)
========= ========== =================================================================

A new format is one row here and one writer in :func:`render`.  This module imports
neither numpy nor pandas, so the command line can build its options from it cheaply.

>>> format_for("step.md"), format_for("step.xyz")
('markdown', None)
"""
import os
from typing import NamedTuple, Optional, Sequence, Union

__all__ = ["EXTRAS", "Format", "FORMATS", "READERS", "format_for", "missing", "reader_needs", "render", "save"]


class Format(NamedTuple):
    """One output format: its name, the file suffix that selects it, who can write it, and the optional
    module it needs (checked before any work: :func:`missing`)."""

    name: str
    suffix: str
    binary: bool  # bytes, so only to a file
    diff: bool  # `lstmtrace diff` writes its table in it too
    requires: Optional[str] = None  # an optional module the writer imports: "pyarrow", …


FORMATS = {f.name: f for f in (
    Format("text", ".txt", binary=False, diff=True),
    Format("markdown", ".md", binary=False, diff=True),
    Format("csv", ".csv", binary=False, diff=True),
    Format("json", ".json", binary=False, diff=True),
    Format("parquet", ".parquet", binary=True, diff=False, requires="pyarrow"),
    Format("html", ".html", binary=False, diff=False),
    Format("python", ".py", binary=False, diff=False),
    Format("xlsx", ".xlsx", binary=True, diff=False, requires="xlsxwriter"),
)}


EXTRAS = {"pyarrow": "pyarrow", "matplotlib": "plot", "torch": "torch", "h5py": "keras", "onnx": "onnx",
          "xlsxwriter": "xlsx"}
"""The extra of lstmtrace that installs each optional module (``pip install 'lstmtrace[EXTRA]'``)."""

READERS = ((".h5", "h5py"), (".keras", "h5py"), (".pt", "torch"), (".pth", "torch"), (".onnx", "onnx"))
"""The optional module each weights file's reader needs, by suffix (a ``.keras`` archive's weights are HDF5)."""


def missing(module: Optional[str], what: str) -> Optional[str]:
    """Why ``what`` cannot be made here, in one line naming the extra that installs ``module``, or None when
    it can (or ``module`` is None).  Asks whether the module is installed without importing it, so a
    command can check before any work.

    >>> missing(None, "text"), missing("no_such_module_lstmtrace", "Parquet")
    (None, "Parquet needs no_such_module_lstmtrace: pip install 'lstmtrace[no_such_module_lstmtrace]'")
    """
    import importlib.util

    if module is None:
        return None
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    return None if found else f"{what} needs {module}: pip install 'lstmtrace[{EXTRAS.get(module, module)}]'"


def reader_needs(path) -> Optional[str]:
    """The optional module reading the weights file ``path`` needs, from its suffix, or None.

    >>> reader_needs("model.pt"), reader_needs("cell.npz")
    ('torch', None)
    """
    name = os.fspath(path).lower()
    return next((module for suffix, module in READERS if name.endswith(suffix)), None)


def format_for(path, names: Sequence[str] = tuple(FORMATS)) -> Optional[str]:
    """The format among ``names`` whose suffix ``path`` has, or None."""
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    return next((name for name in names if FORMATS[name].suffix == suffix), None)


def render(trace, fmt: str, *, precision: int = 6, expand: Optional[int] = None, title: Optional[str] = None,
           steps: Union[Sequence[int], str, None] = None, layout: str = "long", brief: bool = False) -> str:
    """``trace`` as the text of format ``fmt`` (any but the binary ones)."""
    if fmt in ("text", "markdown"):
        from lstmtrace.text import render as explain

        return explain(trace, precision=precision, expand=expand, markdown=fmt == "markdown", title=title,
                       steps=steps, brief=brief)
    if fmt == "csv":
        return trace.to_csv(layout=layout)
    if fmt == "json":
        return trace.to_json()
    if fmt == "html":
        import html

        from lstmtrace.html import render_html

        head = f"<title>{html.escape(title or repr(trace))}</title>"
        return f'<!DOCTYPE html>\n<html><head><meta charset="utf-8">{head}</head>\n<body>\n' \
               f"{render_html(trace)}\n</body></html>\n"
    if fmt == "python":
        from lstmtrace.code import to_python

        return to_python(trace, title=title)
    raise ValueError(f"unknown text format {fmt!r}; the formats are {', '.join(FORMATS)}")


def save(trace, path, fmt: Optional[str] = None, **options) -> None:
    """Write ``trace`` to ``path`` in ``fmt`` (default: from the suffix), whole or not at all.

    ``options`` are :func:`render`'s (precision, expand, title, steps, layout, brief).
    """
    from lstmtrace.atomic import atomic_open

    fmt = fmt or format_for(path)
    if fmt not in FORMATS:
        raise ValueError(f"cannot tell the format from {os.fspath(path)!r}: name one of {', '.join(FORMATS)}")
    if fmt == "parquet":
        trace.to_parquet(path)
    elif fmt == "xlsx":
        from lstmtrace.xlsx import to_xlsx

        to_xlsx(trace, path, title=options.get("title"))
    elif fmt == "csv":
        trace.to_csv(path, layout=options.get("layout", "long"))  # streamed, not built as one string
    else:
        with atomic_open(path, "w", encoding="utf-8", newline="") as f:
            if fmt in ("text", "markdown"):  # streamed step by step, not built as one string
                from lstmtrace.text import write

                write(trace, f, markdown=fmt == "markdown", **{k: v for k, v in options.items() if k != "layout"})
            else:
                f.write(render(trace, fmt, **options))
