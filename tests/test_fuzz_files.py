"""Fuzzing every file reader through the CLI: whatever the bytes, exit 0, or exit 2 and one `Error:` line.

Each file kind lstmtrace reads starts from a small valid file, which is then
cut short at every eighth offset, has bytes flipped, has its header zeroed, or is
replaced by bytes hypothesis makes up (some behind the kind's magic number, so
they get past the first check).  Every case goes through the command line as a
learner would give it: ``step --weights``, ``run --xs``, ``show`` and ``diff``.

The default run is a few thousand cases; ``make fuzz`` runs the ``fuzz_long``
profile (every byte flipped, many more made-up files).
"""
import collections
import pathlib
import random
import traceback

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lstmtrace
from lstmtrace import Parameters, damage
from lstmtrace.cli import cli

E, H = 2, 2
X = "0.5,-1"

# -- the valid files every case starts from ------------------------------------------


def _npz(path):
    np.savez(path, **Parameters.random(E, H, seed=1).state_dict())


def _npz_compressed(path):  # members deflated: damage reaches zlib
    np.savez_compressed(path, **Parameters.random(E, H, seed=1).state_dict())


def _npz_keras(path):
    sd = Parameters.random(E, H, seed=1).state_dict()
    np.savez(path, kernel=sd["weight_ih"].T, recurrent_kernel=sd["weight_hh"].T, bias=sd["bias_ih"])


def _h5(path):
    """The smallest file laid out as Keras 3's save_weights lays out an LSTM layer."""
    h5py = pytest.importorskip("h5py")
    sd = Parameters.random(E, H, seed=1).state_dict()
    with h5py.File(path, "w") as f:
        f.create_group("layers/lstm/vars").attrs["name"] = "lstm"
        cell = f.create_group("layers/lstm/cell/vars")
        for k, array in enumerate((sd["weight_ih"].T, sd["weight_hh"].T, sd["bias_ih"])):
            cell[str(k)] = array


def _pt(path):
    torch = pytest.importorskip("torch")
    torch.save({k: torch.tensor(v) for k, v in Parameters.random(E, H, seed=1).state_dict().items()}, path)


def _npy(path):
    np.save(path, np.array([[0.5, -1.0], [0.25, 2.0], [1.0, 0.0]]))


def _xs_csv(path):
    path.write_text("a,b\n0.5,-1\n0.25,2\n1,0\n")


def _trace():
    return lstmtrace.run(Parameters.random(E, H, seed=1), [[0.5, -1.0], [0.25, 2.0]])


def _trace_long(path):
    _trace().to_csv(path)


def _trace_wide(path):
    _trace().to_csv(path, layout="wide")


def _parquet(path):
    pytest.importorskip("pyarrow")
    _trace().to_parquet(path)


def _weights(path):
    return [["step", "--x", X, "--weights", path, "--format", "csv"]]


def _sequence(path):
    return [["run", "--xs", path, "--format", "csv"]]


def _saved_trace(path):
    return [["show", path], ["diff", path, path.parent / "good.csv"]]


# kind: (file name, how to write a valid one, the commands that read it)
KINDS = {
    "npz": ("w.npz", _npz, _weights),
    "npz-compressed": ("w.npz", _npz_compressed, _weights),
    "npz-keras": ("w.npz", _npz_keras, _weights),
    "weights.h5": ("w.weights.h5", _h5, _weights),
    "pt": ("w.pt", _pt, _weights),
    "npy": ("xs.npy", _npy, _sequence),
    "xs-csv": ("xs.csv", _xs_csv, _sequence),
    "trace-long": ("t.csv", _trace_long, _saved_trace),
    "trace-wide": ("t.csv", _trace_wide, _saved_trace),
    "parquet": ("t.parquet", _parquet, _saved_trace),
}
MAGIC = {"npz": b"PK\x03\x04", "weights.h5": b"\x89HDF\r\n\x1a\n", "pt": b"PK\x03\x04",
         "npy": b"\x93NUMPY\x01\x00", "xs-csv": b"a,b\n", "trace-long": b"step,gate,quantity,unit,value\n",
         "trace-wide": b"step,gate,quantity,u0,u1\n", "parquet": b"PAR1"}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    _trace().to_csv(folder / "good.csv")
    return folder


def _valid(kind, folder) -> bytes:
    name, make, _ = KINDS[kind]
    path = folder / f"valid-{kind}-{name}"
    if not path.exists():
        make(path)
    return path.read_bytes()


# -- one case --------------------------------------------------------------------------

def defect(args):
    """None when ``lstmtrace ARGS`` ends as it should on any input, else a short name for what went wrong."""
    result = CliRunner().invoke(cli, [str(a) for a in args])
    exc = result.exception
    if exc is not None and not isinstance(exc, SystemExit):
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if "lstmtrace" in f.filename]
        where = f" in {pathlib.Path(frames[-1].filename).name}:{frames[-1].name}" if frames else ""
        return f"{type(exc).__name__}{where}: {str(exc).splitlines()[0][:70] if str(exc) else ''}"
    lines = result.stderr.splitlines()
    first = (result.stderr.strip().splitlines() or [""])[0][:80]
    if "Traceback" in result.stderr:
        return f"traceback on stderr: {first}"
    if result.exit_code == 0 or (result.exit_code == 1 and args[0] == "diff" and not lines):
        return None
    if result.exit_code != 2:
        return f"exit {result.exit_code}: {first}"
    if len(lines) != 1 or not first.startswith("Error: "):
        return f"{len(lines)} lines on stderr: {first}"
    if first.startswith("Error: internal error"):
        return first
    if result.stdout:
        return f"output on stdout and an error: {first}"
    return None


def check(kind, content: bytes, folder):
    """Every command reading ``kind`` given ``content``: the defects, as (args, what went wrong)."""
    name, _, commands = KINDS[kind]
    path = folder / f"case-{name}"
    path.write_bytes(content)
    return [(args[0], d) for args in commands(path) for d in [defect(args)] if d]


def run_cases(kind, cases, folder):
    """Run every case; fail with the distinct defects, how many cases hit each, and one example."""
    found = collections.defaultdict(list)
    for label, content in cases:
        for command, what in check(kind, content, folder):
            found[f"{command}: {what}"].append(label)
    report = "\n".join(f"{len(labels):5d} × {what}   (e.g. {labels[0]})" for what, labels in found.items())
    assert not found, f"{kind}: {sum(map(len, found.values()))} failing cases, {len(found)} distinct:\n{report}"
    return len(cases)


# -- the systematic mutations ------------------------------------------------------------

def truncations(data: bytes):
    return [(f"cut at {n}", data[:n]) for n in range(0, len(data), 8)]


def flips(data: bytes, every: int = 1, seed: int = 0):
    """Byte k inverted, for every ``every``-th k (with a seeded start, so each kind is hit differently)."""
    start = random.Random(seed).randrange(every)
    return [(f"byte {k} flipped", data[:k] + bytes([data[k] ^ 0xFF]) + data[k + 1:])
            for k in range(start, len(data), every)]


def zeroed_headers(data: bytes):
    return [(f"first {n} bytes zeroed", bytes(min(n, len(data))) + data[n:]) for n in (1, 4, 8, 16, 64, 128, 512)]


def systematic(data: bytes, flip_every: int):
    return truncations(data) + flips(data, flip_every, seed=len(data)) + zeroed_headers(data)


def _skip_unavailable(kind):
    if kind == "pt":
        pytest.importorskip("torch")


def _flip_every(data, budget):
    """Flip every byte of a small file; of a bigger one, about ``budget`` spread evenly."""
    return max(1, len(data) // budget)


@pytest.mark.parametrize("kind", KINDS)
def test_systematic_damage(kind, folder):
    _skip_unavailable(kind)
    data = _valid(kind, folder)
    run_cases(kind, systematic(data, _flip_every(data, 96)), folder)


@pytest.fixture(autouse=True, scope="module")
def _quick_hang_detection():
    """libhdf5 loops forever on some damaged files (byte 4000 of this .h5 flipped): lstmtrace gives
    up after ISOLATION_TIMEOUT seconds; a fuzz need not wait two minutes to see it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(damage, "ISOLATION_TIMEOUT", 5.0)
        yield


@pytest.mark.fuzz_long
@pytest.mark.parametrize("kind", KINDS)
def test_systematic_damage_long(kind, folder):
    _skip_unavailable(kind)
    data = _valid(kind, folder)
    run_cases(kind, systematic(data, 1) + [(f"cut at {n}", data[:n]) for n in range(len(data))], folder)


# -- bytes hypothesis makes up -------------------------------------------------------------

def _made_up(kind):
    """Random bytes, random text, or random bytes behind the kind's magic number."""
    magic = MAGIC.get(kind.split("-")[0], MAGIC.get(kind, b""))
    return st.one_of(st.binary(max_size=512),
                     st.text(max_size=200).map(lambda s: s.encode("utf-8")),
                     st.binary(max_size=512).map(lambda b: magic + b))


def _spliced(kind, folder):
    """A valid file with a run of its bytes overwritten by random ones, and maybe cut short."""
    data = _valid(kind, folder)
    return st.tuples(st.integers(0, len(data)), st.binary(min_size=1, max_size=16),
                     st.integers(0, len(data) + 16)).map(
        lambda t: (data[:t[0]] + t[1] + data[t[0] + len(t[1]):])[:t[2]])


FAST = settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow])
LONG = settings(max_examples=2000, suppress_health_check=[HealthCheck.too_slow])


def _hypothesis_test(kind, folder, data, splice=True):
    _skip_unavailable(kind)
    content = data.draw(st.one_of(_made_up(kind), _spliced(kind, folder)) if splice else _made_up(kind),
                        label="content")
    assert not check(kind, content, folder)


@pytest.mark.parametrize("kind", KINDS)
@FAST
@given(data=st.data())
def test_made_up_bytes(kind, folder, data):
    _hypothesis_test(kind, folder, data)


@pytest.mark.fuzz_long
@pytest.mark.parametrize("kind", KINDS)
@LONG
@given(data=st.data())
def test_made_up_bytes_long(kind, folder, data):
    _hypothesis_test(kind, folder, data)
