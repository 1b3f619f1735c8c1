"""How much lstmtrace costs, as ratios measured side by side on this machine.

    python benchmarks/bench.py            # every row, 9 repeats
    python benchmarks/bench.py --quick    # fewer repeats and smaller sizes, to try it out

Shared machines are noisy, so every row runs A and its baseline B alternately,
takes the ratio A/B of each pair, and prints the median ratio with the two raw
medians behind it. It is a measurement, not a test: it exits non-zero only when
it cannot run. Standard library plus lstmtrace's own dependencies (pyarrow,
when installed, adds rows for its CSV writer).
"""
import argparse
import gc
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd

import lstmtrace
import lstmtrace.formats
from lstmtrace.tracefile import write_csv_arrow, write_csv_pandas

ROWS = []


def untraced_step(W, U, b, x, h, c):
    """The same LSTM step without tracing: plain numpy, stacked gates f, i, g, o."""
    H = len(h)
    z = W @ x + U @ h + b
    f, i, o = (1.0 / (1.0 + np.exp(-z[k * H:(k + 1) * H])) for k in (0, 1, 3))
    c = f * c + i * np.tanh(z[2 * H:3 * H])
    return o * np.tanh(c), c


def untraced_run(params, xs):
    h = c = np.zeros(params.hidden_size)
    for x in xs:
        h, c = untraced_step(params.W, params.U, params.b, x, h, c)
    return h, c


def clock(fn, inner=1):
    """Seconds per call of ``fn``, over ``inner`` calls in a row."""
    gc.collect()
    start = time.perf_counter()
    for _ in range(inner):
        fn()
    return (time.perf_counter() - start) / inner


def side_by_side(name, a, b, target, repeats, inner=1):
    """Run a and b alternately; record the median of the per-pair ratios and the raw medians."""
    a(), b()  # warm up: first-call caches belong to neither
    ratios, ta, tb = [], [], []
    for _ in range(repeats):
        x = clock(a, inner)
        y = clock(b, inner)
        ta.append(x)
        tb.append(y)
        ratios.append(x / y)
    ROWS.append((name, statistics.median(ratios), statistics.median(ta), statistics.median(tb), target))


def process(*argv):
    return lambda: subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)


def peak_rss_growth(T, H, E, text=None):
    """Peak RSS growth (bytes) of a fresh process while it traces (or, with ``text`` a path, while it
    writes the text of every step of the trace there), and the trace's value bytes (Linux)."""
    code = f"""
import numpy as np, lstmtrace, lstmtrace.formats
def status(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key))
p = lstmtrace.Parameters.random({E}, {H}, seed=0)
xs = np.random.default_rng(0).normal(size=({T}, {E}))
t = lstmtrace.run(p, xs[:2])  # imports and first-call caches, before the baseline
lstmtrace.formats.save(t, {text!r} or "/dev/null", "text")
t = lstmtrace.run(p, xs) if {text!r} else None
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # Linux: reset the peak RSS (VmHWM) to the current RSS
before = status("VmRSS:")
if {text!r}:
    lstmtrace.formats.save(t, {text!r}, steps="all")
else:
    t = lstmtrace.run(p, xs)
print(status("VmHWM:") - before, len(t.frame) * 8)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    growth, value_bytes = (int(v) for v in out.split())
    return growth, value_bytes


def torch_row(p, xs, repeats):
    """The traced run against torch.nn.LSTM in float64 on the same sequence and weights, when torch imports:
    what a practitioner would otherwise run (reported, not a target)."""
    try:
        import torch
    except ImportError:
        ROWS.append(("  … torch.nn.LSTM: torch is not installed", None, None, None, None))
        return
    torch.set_num_threads(1)
    H, E = p.hidden_size, p.input_size
    lstm = torch.nn.LSTM(E, H, batch_first=True).double()
    with torch.no_grad():  # PyTorch's gate order i, f, g, o; lstmtrace's f, i, g, o
        order = np.concatenate([np.arange(H, 2 * H), np.arange(H), np.arange(2 * H, 4 * H)])
        lstm.weight_ih_l0.copy_(torch.from_numpy(p.W[order]))
        lstm.weight_hh_l0.copy_(torch.from_numpy(p.U[order]))
        lstm.bias_ih_l0.copy_(torch.from_numpy(p.b[order]))
        lstm.bias_hh_l0.zero_()
    x = torch.from_numpy(xs)[None]

    def reference():
        with torch.no_grad():
            return lstm(x)

    h = reference()[0][0].numpy()
    assert np.allclose(h, lstmtrace.run(p, xs).block("hidden", "h"), atol=1e-10), "torch's h is not lstmtrace's"
    side_by_side(f"  … traced run / torch.nn.LSTM (float64, 1 thread), T = {len(xs)}, H = E = {H}",
                 lambda: lstmtrace.run(p, xs), reference, None, repeats)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and smaller sizes")
    parser.add_argument("--repeats", type=int, default=None, help="pairs per row [default: 9, quick: 3]")
    args = parser.parse_args()
    repeats = args.repeats or (3 if args.quick else 9)
    python = sys.executable
    lstmtrace_cmd = [python, "-m", "lstmtrace"] if not _on_path("lstmtrace") else ["lstmtrace"]

    with tempfile.TemporaryDirectory() as tmp:
        side_by_side("start-up: `lstmtrace step` (text to /dev/null)",
                     process(*lstmtrace_cmd, "step"),
                     process(python, "-c", "import numpy, pandas, tabulate, click"), 1.15, repeats)
        side_by_side("help: `lstmtrace --help`", process(*lstmtrace_cmd, "--help"),
                     process(python, "-c", "import click"), 1.5, repeats)

        sizes = (64, 256, 1024) if args.quick else (64, 256, 1024, 4096)
        for H in sizes:
            p = lstmtrace.Parameters.random(H, H, seed=0)
            x = np.random.default_rng(0).uniform(-1, 1, H)
            inner = max(3, 20000 // H)  # ~20 ms of calls per timing: single calls are too noisy
            target = {1024: 1.3, 4096: 1.1}.get(H)
            side_by_side(f"step overhead, H = E = {H}: traced / untraced",
                         lambda p=p, x=x: lstmtrace.step(p, x, x, x),
                         lambda p=p, x=x: untraced_step(p.W, p.U, p.b, x, x, x), target, repeats, inner)
            del p

        # a variant's step (peepholes: a gathered layout, and the output gate after c) against the same
        # untraced vanilla baseline: what watching a peephole cell costs over the plain LSTM's arithmetic.
        # Its trace holds 30H values a step to the plain LSTM's 27H (the three Pc), so its target is the
        # plain step's 1.3 scaled by 30/27
        H = 1024
        p = lstmtrace.Parameters.random(H, H, seed=0, variant=lstmtrace.Variant(peephole=True))
        x = np.random.default_rng(0).uniform(-1, 1, H)
        side_by_side(f"peephole step overhead, H = E = {H}: traced / untraced vanilla",
                     lambda: lstmtrace.step(p, x, x, x), lambda: untraced_step(p.W, p.U, p.b, x, x, x),
                     round(1.3 * 30 / 27, 2), repeats, max(3, 20000 // H))
        del p

        T = 200 if args.quick else 1000
        p = lstmtrace.Parameters.random(128, 128, seed=0)
        xs = np.random.default_rng(0).normal(size=(T, 128))
        side_by_side(f"sequence, T = {T}, H = E = 128: traced run / untraced loop",
                     lambda: lstmtrace.run(p, xs), lambda: untraced_run(p, xs), 1.5, repeats)
        torch_row(p, xs, repeats)

        # the backward pass against the forward trace it starts from (issue 17)
        Tb = 30 if args.quick else 100
        forward = lstmtrace.run(p, xs[:Tb])
        for mode, target in (("total", 3.0), ("per-step", None)):
            side_by_side(f"backward(param_grads={mode!r}) / forward trace, T = {Tb}, H = E = 128",
                         lambda mode=mode, forward=forward: lstmtrace.backward(forward, param_grads=mode),
                         lambda: lstmtrace.run(p, xs[:Tb]), target, max(3, repeats // 3))
        del forward

        # the text of every step of a long run against the CSV of the same trace (issue 17)
        Tt = 200 if args.quick else 1000
        small = lstmtrace.Parameters.random(16, 64, seed=0)
        long_run = lstmtrace.run(small, np.random.default_rng(0).normal(size=(Tt, 16)))
        text_path, csv_path = os.path.join(tmp, "t.txt"), os.path.join(tmp, "t2.csv")
        side_by_side(f"text of every step / CSV of the same trace, T = {Tt}, H = 64, E = 16 "
                     f"({len(long_run):,} rows)",
                     lambda t=long_run: lstmtrace.formats.save(t, text_path, steps="all"),
                     lambda t=long_run: t.to_csv(csv_path), 1.0, max(3, repeats // 3))
        growth, value_bytes = peak_rss_growth(Tt, 64, 16, text=text_path)
        ROWS.append(("memory, that text: peak RSS growth / value bytes", growth / value_bytes, growth, value_bytes, 3.0))
        del long_run

        # a stack (--layer all): three layers, each fed the one before's h, against the same three runs
        # made by hand; and its CSV (pandas, with the layer and direction columns) against the cells' own
        layers = [[lstmtrace.Parameters.random(128, 128, seed=k)] for k in range(3)]

        def by_hand():  # each layer's trace kept, as a stack keeps them (freeing them would be faster)
            traces, inputs = [], xs
            for (cell,) in layers:
                traces.append(lstmtrace.run(cell, inputs))
                inputs = traces[-1].block("hidden", "h")
            return traces

        side_by_side(f"stack of 3 layers, T = {T}, H = E = 128: run_stack / three runs by hand, kept",
                     lambda: lstmtrace.run_stack(layers, xs), by_hand, 1.05, max(3, repeats // 3))
        stack = lstmtrace.run_stack(layers, xs)
        side_by_side(f"  … its CSV ({len(stack):,} rows): Stack.to_csv / each cell's Trace.to_csv",
                     lambda: stack.to_csv(os.path.join(tmp, "s.csv")),
                     lambda: [cell.to_csv(os.path.join(tmp, f"c{k}.csv")) for k, cell in enumerate(stack.traces.values())],
                     None, max(3, repeats // 3))

        trace = lstmtrace.run(p, xs)
        plain = pd.DataFrame({c: np.zeros(len(trace.frame)) if c in ("gate", "quantity")
                              else trace.frame[c].to_numpy(dtype=np.float64) for c in trace.frame.columns})
        path = os.path.join(tmp, "t.csv")
        baseline = lambda: plain.to_csv(path, index=False)
        csv_repeats = max(3, repeats // 3)
        side_by_side(f"CSV export, that trace ({len(trace.frame):,} rows): Trace.to_csv / DataFrame.to_csv",
                     lambda: trace.to_csv(path), baseline, 1.0, csv_repeats)
        side_by_side("  … lstmtrace's pure pandas writer / DataFrame.to_csv",
                     lambda: _write(write_csv_pandas, trace.frame, path), baseline, None, csv_repeats)
        try:
            side_by_side("  … lstmtrace's pyarrow writer / DataFrame.to_csv",
                         lambda: _write(write_csv_arrow, trace.frame, path), baseline, None, csv_repeats)
        except ImportError:
            ROWS.append(("  … lstmtrace's pyarrow writer: pyarrow is not installed", None, None, None, None))

        growth, value_bytes = peak_rss_growth(T, 128, 128)
        ROWS.append(("memory, that sequence: peak RSS growth / value bytes", growth / value_bytes,
                     growth, value_bytes, 3.0))

    _print(repeats)


def _write(writer, frame, path):
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer(frame, f)


def _on_path(name):
    return any(os.access(os.path.join(d, name), os.X_OK) for d in os.environ.get("PATH", "").split(os.pathsep))


def _print(repeats):
    from tabulate import tabulate

    def raw(v, memory):
        if v is None:
            return ""
        return f"{v / 2**20:.1f} MiB" if memory else f"{v * 1e3:.3f} ms"

    table = []
    for name, ratio, a, b, target in ROWS:
        memory = name.startswith("memory")
        verdict = "" if target is None or ratio is None else ("meets" if ratio <= target else "MISSES")
        table.append([name, "" if ratio is None else f"{ratio:.2f}", raw(a, memory), raw(b, memory),
                      "" if target is None else f"≤ {target:g}", verdict])
    print(f"lstmtrace {lstmtrace.__version__} · {time.strftime('%Y-%m-%d')} · {os.cpu_count()} cores, "
          f"{_memory()} · Python {platform.python_version()}, numpy {np.__version__}, "
          f"pandas {pd.__version__} · median of {repeats} side-by-side pairs per row")
    print(tabulate(table, headers=["row", "A/B", "A (median)", "B (median)", "target", ""],
                   tablefmt="github"))


def _memory():
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        return f"{pages / 2**30:.0f} GiB"
    except (ValueError, OSError):
        return "memory unknown"


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # a measurement that cannot run says why, and fails
        print(f"bench.py could not run: {e}", file=sys.stderr)
        sys.exit(1)
