"""lstmtrace: every value inside an LSTM step, as a pandas trace.

>>> import lstmtrace
>>> trace = lstmtrace.step(lstmtrace.Parameters.identity(2, 2), [1.0, 0.0])
>>> trace.value("forget", "act").round(4)
array([0.7311, 0.5   ])
"""
import importlib

__version__ = "0.8.0"

__all__ = ["Check", "GATES", "Gate", "NonFiniteError", "Parameters", "Pass", "Stack", "Trace", "TraceMismatch",
           "Variant", "backward", "diff", "load_layers", "read_trace", "run", "run_stack", "side_by_side", "sigmoid",
           "step"]

# The names load on first use, so that `lstmtrace --help` answers without
# importing numpy or pandas (PEP 562).
_HOME = {
    "Check": "lstmtrace.check",
    "GATES": "lstmtrace.params",
    "Gate": "lstmtrace.params",
    "Parameters": "lstmtrace.params",
    "sigmoid": "lstmtrace.cell",
    "NonFiniteError": "lstmtrace.rows",
    "Trace": "lstmtrace.trace",
    "read_trace": "lstmtrace.trace",
    "step": "lstmtrace.trace",
    "run": "lstmtrace.trace",
    "diff": "lstmtrace.compare",
    "side_by_side": "lstmtrace.compare",
    "backward": "lstmtrace.gradients",
    "TraceMismatch": "lstmtrace.compare",
    "Variant": "lstmtrace.variant",
    "Pass": "lstmtrace.stack",
    "Stack": "lstmtrace.stack",
    "run_stack": "lstmtrace.stack",
    "load_layers": "lstmtrace.stack",
}


def __getattr__(name):
    if name not in _HOME:
        raise AttributeError(f"module 'lstmtrace' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOME[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
