"""Several cells traced together: the layers of a stacked LSTM, and the two directions of a bidirectional one.

A stack runs its layers in order.  Layer 0 reads the sequence x_1 … x_T; every later layer
reads the h_t of the layer before, both directions' concatenated (forward first) where that
layer is bidirectional, as PyTorch, Keras and ONNX feed them.  A reverse cell runs over
x_T … x_1 (:func:`lstmtrace.run` with ``direction="reverse"``) and its steps keep the model's
time order.  Every cell is an ordinary :class:`lstmtrace.Trace`; :attr:`Stack.frame` puts them
in one DataFrame with two leading columns, ``layer`` and ``direction``.

>>> from lstmtrace import Parameters
>>> stack = run_stack([[Parameters.identity(1, 2), Pass(Parameters.identity(1, 2), "reverse")],
...                    [Parameters.identity(4, 3)]], [[1.0], [2.0]])
>>> stack
<Stack: 2 layer(s), 3 cell(s), 2 step(s)>
>>> reverse = stack.cell(0, "reverse")          # it ran step 2 first, then step 1 from step 2's h
>>> bool((reverse.value("given", "h_prev", step=1) == reverse.value("hidden", "h", step=2)).all())
True
>>> list(stack.frame.columns)
['layer', 'direction', 'step', 'gate', 'quantity', 'unit', 'value']
"""
import functools
import io
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd

from lstmtrace.params import Parameters
from lstmtrace.rows import DIRECTION_DTYPE, led
from lstmtrace.trace import Trace, run

__all__ = ["DIRECTION_DTYPE", "Pass", "Stack", "load_layers", "run_stack"]

class Pass(NamedTuple):
    """One cell of a stack: its weights, which way it runs, and in which order its h_t reach the next layer.

    ``passes_on`` is ``"time"`` (each h_t at the time of its x_t: PyTorch, ONNX, Keras' Bidirectional)
    or ``"run"`` (in the order the cell ran: a Keras LSTM with ``go_backwards=True``, outside
    Bidirectional, hands on h_T first).

    >>> Pass(Parameters.identity(1, 1), "reverse").direction
    'reverse'
    """

    params: Parameters
    direction: str = "forward"
    passes_on: str = "time"


Layers = Sequence[Sequence[Union[Pass, Parameters]]]


def run_stack(layers: Layers, xs, progress: Optional[Callable[[int], None]] = None) -> "Stack":
    """Run every layer over the sequence ``xs`` (T×E) in turn, each from zero h and c.

    ``layers`` lists each layer's cells (a :class:`Pass`, or Parameters for one that runs forward):
    one, or a forward and a reverse one for a bidirectional layer.  ``progress`` is called with 1
    after each cell's step.

    >>> stack = run_stack([[Parameters.identity(1, 1)], [Parameters.identity(1, 1)]], [[1.0], [1.0]])
    >>> bool((stack.cell(1).block("given", "x") == stack.cell(0).block("hidden", "h")).all())
    True
    """
    xs = np.array(xs, dtype=np.float64)
    traces: Dict[Tuple[int, str], Trace] = {}
    passes: Dict[Tuple[int, str], str] = {}
    for k, cells in enumerate(layers):
        cells = [cell if isinstance(cell, Pass) else Pass(cell) for cell in cells]
        directions = [cell.direction for cell in cells]
        if not cells or len(set(directions)) != len(directions) or not set(directions) <= {"forward", "reverse"}:
            raise ValueError(f"layer {k} has cells running {', '.join(directions) or 'nowhere'}; a layer has a "
                             "forward cell, a reverse cell, or one of each")
        if k > 0 and cells[0].params.input_size != xs.shape[1]:
            raise ValueError(f"layer {k} takes inputs of size {cells[0].params.input_size}, and layer {k - 1} "
                             f"hands on h of size {xs.shape[1]}")
        outputs = []
        for cell in sorted(cells, key=lambda c: c.direction):  # forward first, as the frameworks concatenate
            trace = run(cell.params, xs, progress=progress, direction=cell.direction)
            traces[k, cell.direction] = trace
            passes[k, cell.direction] = cell.passes_on
            h = trace.block("hidden", "h")
            outputs.append(h[::-1] if cell.passes_on == "run" and cell.direction == "reverse" else h)
        xs = np.concatenate(outputs, axis=1)
    return Stack(traces, passes)


class Stack:
    """The traces of several cells run together (see :func:`run_stack`), by (layer, direction).

    ``.frame`` is every cell's trace frame, in layer order and forward before reverse, with the
    leading columns ``layer`` (0-based, as ``--layer K`` counts) and ``direction``.

    >>> p = Parameters.identity(1, 1)
    >>> Stack({(0, "forward"): run(p, [[1.0]]), (0, "reverse"): run(p, [[1.0]], direction="reverse")})
    <Stack: 1 layer(s), 2 cell(s), 1 step(s)>
    """

    def __init__(self, traces: Dict[Tuple[int, str], Trace], passes_on: Optional[Dict[Tuple[int, str], str]] = None):
        if not traces:
            raise ValueError("a stack has at least one cell")
        self.traces = dict(sorted(traces.items(), key=lambda item: (item[0][0], item[0][1])))
        self.passes_on = {key: (passes_on or {}).get(key, "time") for key in self.traces}
        steps = {t.steps for t in self.traces.values()}
        if len(steps) > 1:
            raise ValueError(f"the cells of a stack run the same steps, not {sorted(steps)}")
        self.steps = steps.pop()
        self.skipped: list = []

    def __repr__(self) -> str:
        return f"<Stack: {len(self.layers)} layer(s), {len(self.traces)} cell(s), {self.steps} step(s)>"

    def __len__(self) -> int:
        return sum(len(t) for t in self.traces.values())

    @property
    def layers(self) -> List[int]:
        """The layer numbers, in order."""
        return list(dict.fromkeys(k for k, _ in self.traces))

    def directions(self, layer: int) -> List[str]:
        """The directions layer ``layer`` runs (forward first)."""
        return [d for k, d in self.traces if k == layer]

    @property
    def has_gradients(self) -> bool:
        return any(t.has_gradients for t in self.traces.values())

    def cell(self, layer: int, direction: Optional[str] = None) -> Trace:
        """The trace of one cell; ``direction`` may be left out where the layer runs only one way."""
        if layer not in self.layers:
            raise KeyError(f"no layer {layer}; the layers are {', '.join(map(str, self.layers))}")
        runs = self.directions(layer)
        if direction is None:
            if len(runs) > 1:
                raise KeyError(f"layer {layer} is bidirectional: say forward or reverse")
            direction = runs[0]
        if direction not in runs:
            raise KeyError(f"layer {layer} runs {' and '.join(runs)} only, not {direction}")
        return self.traces[layer, direction]

    @functools.cached_property
    def frame(self) -> pd.DataFrame:
        """Every cell's rows, led by their ``layer`` and ``direction`` (built when first asked for)."""
        return pd.concat([led(trace.frame, k, direction) for (k, direction), trace in self.traces.items()],
                         ignore_index=True)

    # -- exports, as a Trace's ------------------------------------------------------------

    def to_csv(self, path=None, layout: str = "long"):
        """CSV of every cell, full float64 precision: ``layer``, ``direction``, then each cell's own columns
        (long, or wide with ``layout="wide"``) and its step-0 variant rows; the text when no path."""
        from lstmtrace.atomic import atomic_open
        from lstmtrace.tracefile import write_stack_csv

        if layout not in ("long", "wide"):
            raise ValueError(f"layout must be 'long' or 'wide', not {layout!r}")
        if path is None:
            out = io.StringIO()
            write_stack_csv(self, out, layout)
            return out.getvalue()
        with atomic_open(path, "w", encoding="utf-8", newline="") as f:
            write_stack_csv(self, f, layout)
        return None

    def to_parquet(self, path) -> None:
        """Parquet of every cell, as :meth:`to_csv`'s long layout (needs pyarrow)."""
        from lstmtrace.atomic import atomic_open
        from lstmtrace.tracefile import PYARROW_HINT, stack_frame

        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise ImportError(f"Parquet output needs pyarrow: {PYARROW_HINT}") from None
        with atomic_open(path, "wb") as f:
            pq.write_table(pa.Table.from_pandas(stack_frame(self), preserve_index=False), f)

    def to_json(self) -> str:
        """A JSON list of ``{"layer", "direction", "step", "gate", "quantity", "unit", "value"}`` rows."""
        from lstmtrace.tracefile import records_json, stack_frame

        return records_json(stack_frame(self))

    def to_text(self, precision: int = 6, expand: Optional[int] = None, title: Optional[str] = None,
                steps: Union[Sequence[int], str, None] = None, brief: bool = False) -> str:
        """The explanation of every cell, layer by layer (see :meth:`lstmtrace.Trace.to_text`)."""
        from lstmtrace.text import render

        return render(self, precision=precision, expand=expand, markdown=False, title=title, steps=steps, brief=brief)

    def to_markdown(self, precision: int = 6, expand: Optional[int] = None, title: Optional[str] = None,
                    steps: Union[Sequence[int], str, None] = None, brief: bool = False) -> str:
        """The same explanation with Markdown headings and tables."""
        from lstmtrace.text import render

        return render(self, precision=precision, expand=expand, markdown=True, title=title, steps=steps, brief=brief)

    def _repr_html_(self) -> str:
        from lstmtrace.html import render_html

        return render_html(self)


def load_layers(path, layer: Optional[int] = None, direction: Optional[str] = None, prefix: Optional[str] = None,
                layout: Optional[str] = None, variant=None) -> List[List[Pass]]:
    """The cells of a weights file as :func:`run_stack` takes them: every layer (``layer`` None), or
    only layer ``layer`` with the directions ``direction`` asks for (None: every one it runs; see
    :func:`lstmtrace.weights.read_layer`).  Each cell's Parameters say where their variant came from
    (``variant_source``), as :meth:`Parameters.load` does.

    >>> [[(cell.direction, cell.params.hidden_size) for cell in layer]
    ...  for layer in load_layers("tests/fixtures/torch_model_bilstm_state.npz")]
    [[('forward', 4), ('reverse', 4)], [('forward', 4), ('reverse', 4)]]
    """
    from lstmtrace import weights

    found = (weights.read_stack(path, prefix, layout, variant) if layer is None else
             [weights.read_layer(path, layer, prefix, layout, variant, direction)])
    layers = []
    for cells in found:
        passes = []
        for cell in cells:
            params = Parameters._from_gates(cell.gates, cell.variant)
            params.variant_source = cell.source
            passes.append(Pass(params, cell.direction, cell.passes_on))
        layers.append(passes)
    return layers

