"""What lstmtrace guarantees whatever goes wrong: inputs are never overwritten, a failed write
is one line and leaves the old output as it was, long CSVs warn about spreadsheets, Ctrl-C is 130.

Where an exit status, a signal or a real file-size limit matters, the test runs a real process.
"""
import os
import resource
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import assert_error, assert_ok, invoke
from lstmtrace import Parameters, read_trace

INTERRUPTED = "Error: interrupted (Ctrl-C); no partial or temporary file was left"
PRECIOUS = b"step,gate,quantity,unit,value\nprecious bytes that must survive\n"


def lstmtrace_process(*args, **kwargs):
    """``lstmtrace ARGS`` as its own process (as a user runs it), not in-process."""
    kwargs = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True, **kwargs}
    return subprocess.Popen([sys.executable, "-m", "lstmtrace", *map(str, args)], **kwargs)


def leftovers(folder):
    """Temporary files a write left behind."""
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


# -- inputs are sacred ---------------------------------------------------------------------

@pytest.fixture
def inputs(tmp_path):
    """A folder holding one file of every kind a command reads."""
    Parameters.random(2, 2, seed=1).save(tmp_path / "w.npz")
    Parameters.random(2, 2, seed=2).save(tmp_path / "w2.npz")
    (tmp_path / "xs.csv").write_text("1,2\n3,4\n")
    assert_ok(invoke("step", "--x", "1,2", "-o", tmp_path / "a.csv"))
    assert_ok(invoke("step", "--x", "2,1", "-o", tmp_path / "b.csv"))
    return tmp_path


# (command line, the input file named as the output, the option that reads it)
SAME_FILE = [
    ("step --x 1,2 --weights w.npz --format csv", "w.npz", "--weights"),
    ("run --xs xs.csv", "xs.csv", "--xs"),
    ("run --xs xs.csv --weights w.npz --format text", "w.npz", "--weights"),
    ("params --show w.npz", "w.npz", "--show"),
    ("params --weights w.npz", "w.npz", "--weights"),
    ("show a.csv --format text", "a.csv", "TRACE"),
    ("diff a.csv b.csv --format csv", "b.csv", "B"),
    ("diff a.csv b.csv --format csv", "a.csv", "A"),
    ("diff --x 1,2 --a-weights w.npz --b-weights w2.npz --format csv", "w2.npz", "--b-weights"),
    ("diff --x 1,2 --a-weights w.npz --b-weights w2.npz --format csv", "w.npz", "--a-weights"),
    ("diff --xs xs.csv --weights w.npz --b-set forget.b=1", "xs.csv", "--xs"),
    ("diff --xs xs.csv --weights w.npz --b-set forget.b=1 --format csv", "w.npz", "--weights"),
    ("draw a.csv --format svg", "a.csv", "TRACE"),
    ("draw --xs xs.csv --format svg", "xs.csv", "--xs"),
    ("plot --xs xs.csv --weights w.npz --format svg", "w.npz", "--weights"),
]


@pytest.mark.parametrize("line, victim, option", SAME_FILE)
@pytest.mark.parametrize("spelling", ["plain", "dot-slash", "symlink", "hard link"])
def test_output_that_is_an_input_is_refused_before_any_work(inputs, monkeypatch, line, victim, option, spelling):
    monkeypatch.chdir(inputs)
    output = {"plain": victim, "dot-slash": f"./{victim}"}.get(spelling)
    if output is None:
        output = "other" + os.path.splitext(victim)[1]
        (os.symlink if spelling == "symlink" else os.link)(victim, output)
    before = {p.name: p.read_bytes() for p in inputs.iterdir() if p.is_file()}
    line = assert_error(invoke(*line.split(), "-o", output), "'-o' / '--output'", option, "same file", "never writes over its input")
    assert {p.name: p.read_bytes() for p in inputs.iterdir() if p.is_file()} == before, line
    assert leftovers(inputs) == []


def test_a_weight_word_is_no_file(tmp_path, monkeypatch):
    """`--weights identity -o identity` reads no file called identity: nothing to protect."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "identity").write_text("not weights")
    assert_ok(invoke("step", "--format", "text", "-o", "identity"))
    assert "Forget gate" in (tmp_path / "identity").read_text()


def test_an_output_through_a_symlink_replaces_the_file_and_keeps_the_link(tmp_path):
    (tmp_path / "real.csv").write_text("old")
    (tmp_path / "link.csv").symlink_to("real.csv")
    assert_ok(invoke("step", "--x", "1,2", "-o", tmp_path / "link.csv"))
    assert (tmp_path / "link.csv").is_symlink()
    assert (tmp_path / "real.csv").read_text().startswith("step,gate,quantity,unit,value\n")


# -- writes that fail ----------------------------------------------------------------------

needs_dev_full = pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full here")


@needs_dev_full
@pytest.mark.parametrize("args", [
    ["step", "--format", "text"], ["step", "--format", "csv"], ["step", "--format", "json"],
    ["run", "--xs", "1,2;3,4", "--format", "csv", "--csv-layout", "wide"],
    ["diff", "--x", "1,2", "--b-set", "forget.b=1", "--format", "csv"],
    ["draw", "--format", "svg"],
])
def test_a_full_disk_is_one_line_naming_the_file(args):
    assert_error(invoke(*args, "-o", "/dev/full"), "cannot write '/dev/full'", "No space left on device")


@needs_dev_full
@pytest.mark.parametrize("args", [["step"], ["step", "--format", "csv"], ["params"], ["draw"],
                                  ["diff", "--x", "1", "--b-set", "forget.b=1"]])
def test_a_full_standard_output_is_one_line(args):
    with open("/dev/full", "w") as full:
        process = lstmtrace_process(*args, stdout=full)
        _, stderr = process.communicate(timeout=120)
    assert process.returncode == 2, stderr
    assert stderr.splitlines() == ["Error: cannot write to standard output: No space left on device"]


def _limit_file_size(limit):
    def preexec():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return preexec


@pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="no file-size limits here")
@pytest.mark.parametrize("suffix", [".csv", ".txt", ".json", ".parquet"])
def test_a_write_cut_short_keeps_the_old_output(tmp_path, suffix):
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    out = tmp_path / f"trace{suffix}"
    out.write_bytes(PRECIOUS)
    np.save(tmp_path / "xs.npy", np.random.default_rng(0).uniform(-1, 1, (300, 4)))
    process = lstmtrace_process("run", "--xs", tmp_path / "xs.npy", "--hidden-size", 8, "-o", out,
                                preexec_fn=_limit_file_size(16 * 1024))
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 2, stderr
    assert len(stderr.splitlines()) == 1 and stderr.startswith(f"Error: cannot write '{out}': File too large")
    assert out.read_bytes() == PRECIOUS
    assert leftovers(tmp_path) == []


# -- spreadsheet limits --------------------------------------------------------------------

ROWS = 1_048_576


@pytest.mark.parametrize("layout, steps, warned", [
    ("long", (ROWS - 1) // 28, False),  # 28 rows a step (E = H = 1) plus the header: 1,048,573 lines
    ("long", (ROWS - 1) // 28 + 1, True),  # 1,048,601 lines
    ("wide", (ROWS - 1) // 28 + 1, True),  # 28 quantities a step: one row each in the wide layout
])
def test_a_csv_longer_than_a_spreadsheet_warns_and_is_written_whole(tmp_path, layout, steps, warned):
    np.save(tmp_path / "xs.npy", np.ones((steps, 1)))
    out = tmp_path / "trace.csv"
    result = assert_ok(invoke("run", "--xs", tmp_path / "xs.npy", "--csv-layout", layout, "-o", out))
    with open(out, "rb") as f:
        lines = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    assert lines == steps * 28 + 1
    if warned:
        (warning,) = result.stderr.splitlines()
        assert warning.startswith(f"Warning: {out} has {lines:,} lines")
        for advice in ("Excel and LibreOffice show only the first 1,048,576 rows", "--csv-layout wide", "Parquet",
                       "written in full"):
            assert advice in warning
    else:
        assert result.stderr == ""


def test_the_warning_stays_out_of_the_data_on_standard_output(tmp_path):
    np.save(tmp_path / "xs.npy", np.ones(((ROWS - 1) // 28 + 1, 1)))
    result = assert_ok(invoke("run", "--xs", tmp_path / "xs.npy", "--format", "csv"))
    assert result.stderr.startswith("Warning: standard output has 1,048,601 lines")
    assert "Warning" not in result.stdout and result.stdout.startswith("step,gate,quantity,unit,value\n")


# -- interrupts ----------------------------------------------------------------------------

def test_ctrl_c_is_130_and_one_line(tmp_path, monkeypatch):
    import lstmtrace

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(lstmtrace, "run", interrupted)
    out = tmp_path / "trace.csv"
    out.write_bytes(PRECIOUS)
    result = invoke("run", "--xs", "1,2;3,4", "-o", out)
    assert result.exit_code == 130
    assert result.stderr.splitlines() == [INTERRUPTED]
    assert out.read_bytes() == PRECIOUS


@pytest.mark.parametrize("existing", [True, False])
def test_ctrl_c_during_a_write_leaves_no_partial_or_temporary_file(tmp_path, existing):
    out = tmp_path / "trace.csv"
    if existing:
        out.write_bytes(PRECIOUS)
    np.save(tmp_path / "xs.npy", np.random.default_rng(0).uniform(-1, 1, (3000, 1)))
    process = lstmtrace_process("run", "--xs", tmp_path / "xs.npy", "--hidden-size", 64, "-o", out)
    deadline = time.monotonic() + 120
    while not leftovers(tmp_path) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)  # wait until the write has begun: its temporary file is there
    assert leftovers(tmp_path), "the write finished before it could be interrupted"
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    errors = [line for line in stderr.splitlines() if not line.startswith("Warning: ")]  # the row warning
    assert errors == [INTERRUPTED]
    assert leftovers(tmp_path) == []
    unchanged = out.read_bytes() == PRECIOUS if existing else not out.exists()
    if not unchanged:  # the signal came just after the new file was put in place: it must be whole
        assert read_trace(out).steps == 3000


def test_ctrl_c_while_tracing_a_long_sequence(tmp_path):
    out = tmp_path / "trace.csv"
    np.save(tmp_path / "xs.npy", np.zeros((2_000_000, 1)))  # tens of seconds of tracing
    process = lstmtrace_process("run", "--xs", tmp_path / "xs.npy", "-o", out)
    time.sleep(3)  # well past start-up: the command is tracing
    assert process.poll() is None, "the run finished before it could be interrupted"
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert stderr.splitlines() == [INTERRUPTED]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["xs.npy"]
