"""Long commands: an optional module an output or input needs is checked before any work, and a long
trace shows one progress bar over its tracing and its writing (on a terminal only)."""
import importlib.util

import numpy as np
import pytest

import lstmtrace
import lstmtrace.cli as cli
import lstmtrace.trace
from conftest import assert_error, assert_ok, invoke
from lstmtrace.formats import FORMATS, missing


@pytest.fixture
def absent(monkeypatch):
    """``absent("pyarrow")``: importlib finds no such module from here on in the test."""
    real = importlib.util.find_spec

    def hide(*modules):
        monkeypatch.setattr(importlib.util, "find_spec",
                            lambda name, *a, **k: None if name.split(".")[0] in modules else real(name, *a, **k))

    return hide


@pytest.fixture
def no_tracing(monkeypatch):
    """Tracing fails the test: the command must refuse before it."""
    def traced(*args, **kwargs):
        raise AssertionError("traced before refusing")

    monkeypatch.setattr(lstmtrace.trace, "_trace", traced)


def test_every_format_that_needs_a_module_names_it(absent):
    assert FORMATS["parquet"].requires == "pyarrow"
    absent("pyarrow")
    assert missing("pyarrow", "Parquet output") == "Parquet output needs pyarrow: pip install 'lstmtrace[pyarrow]'"


@pytest.mark.parametrize("args, option", [
    (["-o", "{tmp}/t.parquet"], "'-o' / '--output'"),
    (["--format", "parquet", "-o", "{tmp}/t.bin"], "'--format'"),
])
def test_parquet_without_pyarrow_is_refused_before_tracing(tmp_path, absent, no_tracing, args, option):
    absent("pyarrow")
    args = [a.format(tmp=tmp_path) for a in args]
    line = assert_error(invoke("run", "--xs", "1;2;3", *args), option, "needs pyarrow",
                        "pip install 'lstmtrace[pyarrow]'")
    assert "Traceback" not in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["draw", "plot"])
def test_pictures_without_matplotlib_are_refused_before_tracing(tmp_path, absent, no_tracing, command):
    absent("matplotlib")
    assert_error(invoke(command, "--xs", "1;2", "-o", tmp_path / "p.svg"), "'-o' / '--output'", "needs matplotlib",
                 "lstmtrace[plot]")
    assert_error(invoke(command, "--xs", "1;2", "--format", "png", "-o", tmp_path / "p.png"), "'--format'")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name, module, extra", [("model.pt", "torch", "torch"), ("m.weights.h5", "h5py", "keras"),
                                                 ("m.onnx", "onnx", "onnx"),
                                                 ("m.keras", "h5py", "keras")])
def test_weights_files_whose_reader_is_missing_are_refused_first(tmp_path, absent, no_tracing, name, module, extra):
    absent(module)
    path = tmp_path / name
    path.write_bytes(b"not read")
    assert_error(invoke("run", "--weights", path, "--xs", "1;2", "-o", tmp_path / "t.csv"), "'--weights'",
                 f"needs {module}", f"lstmtrace[{extra}]")
    assert not (tmp_path / "t.csv").exists()


# -- one progress bar over tracing and writing, for traces over a million rows -----------------------

@pytest.fixture
def terminal(monkeypatch):
    monkeypatch.setattr(cli, "_stderr_is_terminal", lambda: True)


LONG = ["--weights", "random:1", "--hidden-size", "64", "--xs"]


def _long_xs(tmp_path, T=600, E=16):
    path = tmp_path / "xs.npy"
    np.save(path, np.random.default_rng(0).normal(size=(T, E)))
    return path


@pytest.mark.parametrize("suffix", [".csv", ".txt"])
def test_one_bar_covers_tracing_and_writing(tmp_path, terminal, suffix):
    xs = _long_xs(tmp_path)  # 600 × (16 + 27·64) = 1,046,400 rows
    out = tmp_path / f"t{suffix}"
    result = assert_ok(invoke("run", *LONG, xs, "-o", out, *(["--steps", "1"] if suffix == ".txt" else [])))
    assert result.stderr.count("tracing and writing") == 1
    assert "tracing\n" not in result.stderr
    plain = tmp_path / f"plain{suffix}"
    assert_ok(invoke("run", *LONG, xs, "-o", plain, *(["--steps", "1"] if suffix == ".txt" else [])))
    assert out.read_bytes() == plain.read_bytes()  # the bar changes nothing written


def test_no_bar_for_a_short_trace(tmp_path, terminal):
    short = assert_ok(invoke("run", "--xs", ";".join(["1"] * 150), "-o", tmp_path / "s.csv"))
    assert "tracing and writing" not in short.stderr  # 150 × 28 rows: the tracing bar only


def test_no_bar_off_a_terminal(tmp_path):
    result = assert_ok(invoke("run", *LONG, _long_xs(tmp_path), "-o", tmp_path / "t.csv"))
    assert "tracing" not in result.stderr


@pytest.mark.parametrize("arrow", [True, False], ids=["pyarrow", "pandas"])
def test_csv_written_in_parts_is_the_csv_written_whole(tmp_path, without, arrow):
    if not arrow:
        without("pyarrow")
    params = lstmtrace.Parameters.random(4, 8, seed=1, variant=lstmtrace.Variant(clip=3.0))
    trace = lstmtrace.run(params, np.ones((3000, 4)))  # 660,000 rows, and the variant's rows
    shares = []
    trace.to_csv(tmp_path / "parts.csv", progress=shares.append)
    trace.to_csv(tmp_path / "whole.csv")
    assert (tmp_path / "parts.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()
    assert len(shares) > 1 and sum(shares) == pytest.approx(1.0)
