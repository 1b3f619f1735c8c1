"""The benchmark's baseline is the same math: its untraced step gives lstmtrace's h and c.

(The benchmark itself is run by hand, `python benchmarks/bench.py`; no test times anything.)
"""
import importlib.util
import pathlib

import numpy as np

import lstmtrace
from lstmtrace import Parameters

_path = pathlib.Path(__file__).parent.parent / "benchmarks" / "bench.py"
_spec = importlib.util.spec_from_file_location("bench", _path)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def test_untraced_step_is_the_traced_step():
    p = Parameters.random(6, 5, seed=3).set("output", "b", 0.3)
    x, h, c = (np.random.default_rng(k).normal(size=n) for k, n in ((1, 6), (2, 5), (3, 5)))
    trace = lstmtrace.step(p, x, h, c)
    h_new, c_new = bench.untraced_step(p.W, p.U, p.b, x, h, c)
    np.testing.assert_allclose(h_new, trace.value("hidden", "h"), rtol=0, atol=1e-14)
    np.testing.assert_allclose(c_new, trace.value("cell", "c"), rtol=0, atol=1e-14)


def test_untraced_run_is_the_traced_run():
    p = Parameters.random(3, 4, seed=4)
    xs = np.random.default_rng(5).normal(size=(30, 3))
    h, c = bench.untraced_run(p, xs)
    trace = lstmtrace.run(p, xs)
    np.testing.assert_allclose(h, trace.value("hidden", "h")[-1], rtol=0, atol=1e-13)
    np.testing.assert_allclose(c, trace.value("cell", "c")[-1], rtol=0, atol=1e-13)
