"""Damaged files: one sentence that names the file and says what is wrong, whichever library read it.

Each reader lets its library loose on the bytes inside :func:`reading`, which turns
the exceptions that library raises for bytes it cannot make sense of (zipfile's
BadZipFile, zlib.error, EOFError, struct.error, …) into a ValueError saying
"``path`` is truncated or corrupt: …".  The reader's own sentences pass through
as they are when raised as :class:`Explained`.  OSError from ``open`` itself (no
such file, no permission) happens before any of this and stays an OSError.
"""
import contextlib
import math
import struct
import tokenize
import zipfile
import zlib

import numpy as np

__all__ = ["Explained", "HoldsObjects", "reading", "check_not_empty", "read_npy", "not_utf8", "first_line", "isolated"]


class Explained(ValueError):
    """A sentence lstmtrace wrote itself about a file (a pickle, Python objects, too few bytes):
    :func:`reading` lets it through as it is."""


# What each library raises for bytes that are not what they claim to be, in words.
_WORDS = (
    (zipfile.BadZipFile, "its zip structure is damaged"),
    (zlib.error, "a compressed member does not decompress"),
    (EOFError, "it ends before its data does"),
    (struct.error, "a binary field is damaged"),
    (NotImplementedError, "its zip structure is damaged"),  # zipfile: "zip file version 21.0", a flipped byte
    (UnicodeDecodeError, "text in it is not UTF-8"),
    ((SyntaxError, tokenize.TokenError), "its header cannot be read"),  # numpy parses the .npy header as Python
    ((ValueError, KeyError, IndexError, OverflowError, MemoryError, OSError), "it cannot be read"),
)
DAMAGE = tuple(t for types, _ in _WORDS for t in (types if isinstance(types, tuple) else (types,)))


def first_line(e: BaseException) -> str:
    """The first line of what the library said (at most 120 characters), for after lstmtrace's own words."""
    text = str(e).strip().strip("'\"")
    return text.splitlines()[0][:120] if text else type(e).__name__


def words(e: BaseException) -> str:
    """What ``e`` says about the bytes, in words, with the library's own first line after it."""
    what = next(w for types, w in _WORDS if isinstance(e, types))
    return f"{what} ({first_line(e)})"


@contextlib.contextmanager
def reading(path, *also):
    """Run a library over the bytes of ``path``; its damage exceptions (and ``also``) become one ValueError."""
    try:
        yield
    except Explained:
        raise
    except DAMAGE + also as e:
        what = words(e) if isinstance(e, DAMAGE) else f"it cannot be read ({first_line(e)})"
        raise ValueError(f"{path} is truncated or corrupt: {what}") from None


def check_not_empty(path, kind: str) -> bytes:
    """The first 8 bytes of the file or binary stream ``path``, or ValueError "``path`` is empty, not ``kind``"."""
    if hasattr(path, "read"):
        start = path.tell()
        magic = path.read(8)
        path.seek(start)
    else:
        with open(path, "rb") as f:
            magic = f.read(8)
    if not magic:
        raise ValueError(f"{getattr(path, 'name', path)} is empty, not {kind}")
    return magic


def not_utf8(data: bytes, e: UnicodeDecodeError) -> str:
    """Where text that is not UTF-8 goes wrong, in words (``e`` is from decoding all of ``data``)."""
    line = data.count(b"\n", 0, e.start) + 1
    return f"line {line} is not UTF-8 text (byte 0x{data[e.start]:02x}); save it as UTF-8"


class HoldsObjects(Explained):
    """An .npy array of Python objects: only pickle could load it."""


_NPY_MAGIC = b"\x93NUMPY"
_NPY_HEADERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def read_npy(f, name, size: int) -> np.ndarray:
    """The array in the .npy stream ``f`` of ``size`` bytes, never unpickled.

    Checks what the header promises against the bytes there are before reading them,
    so a damaged header can neither ask for terabytes nor be read as a shorter array.
    Raises :class:`Explained` (a ValueError) for a pickle, Python objects or damage.
    """
    magic = f.read(len(_NPY_MAGIC) + 2)
    if magic[:1] == b"\x80":
        raise Explained(f"{name} is a Python pickle; lstmtrace never loads pickles (they can run code)")
    if not magic or not magic.startswith(_NPY_MAGIC[:len(magic)]):
        raise Explained(f"{name} is not an .npy file (as np.save writes)")
    if len(magic) < len(_NPY_MAGIC) + 2:
        raise Explained(f"{name} is truncated or corrupt: it ends inside its header")
    header = _NPY_HEADERS.get((magic[-2], magic[-1]))
    if header is None:
        raise Explained(f"{name} is truncated or corrupt: .npy format version "
                         f"{magic[-2]}.{magic[-1]} is not one numpy writes for arrays of numbers")
    with reading(name):
        shape, fortran, dtype = header(f)
    if dtype.hasobject:
        raise HoldsObjects(f"{name} holds Python objects, which would need pickle to load; "
                      "lstmtrace reads only numeric arrays")
    needed = math.prod(shape) * dtype.itemsize
    there = size - f.tell() if size is not None else None
    if there is not None and there < needed:
        raise Explained(f"{name} is truncated or corrupt: its header promises a {dtype} array of shape "
                         f"{shape} ({needed} bytes) but only {max(there, 0)} bytes follow")
    with reading(name):
        data = f.read(needed)
    if len(data) < needed:
        raise Explained(f"{name} is truncated or corrupt: it ends {needed - len(data)} bytes short of "
                         f"the {dtype} array of shape {shape} its header promises")
    with reading(name):  # a negative size or a dtype of no bytes in a damaged header
        array = np.frombuffer(bytearray(data), dtype=dtype)
        return array.reshape(shape[::-1]).T if fortran else array.reshape(shape)


ISOLATION_TIMEOUT = 120.0
"""Seconds a reader run by :func:`isolated` may take before it is taken to hang."""


def isolated(path, read, *args):
    """``read(*args)`` in a child process, for C libraries that damaged bytes can crash or hang.

    ``read`` returns a dict of numpy arrays (strings too), sent back as an ``.npz`` (no pickle);
    a ValueError it raises comes back as one.  A crash or a hang of the child is "truncated or
    corrupt".  Where there is no fork (Windows), ``read`` runs here.
    """
    import io
    import os
    import select
    import signal
    import time
    import warnings

    if not hasattr(os, "fork"):
        return read(*args)
    r, w = os.pipe()
    with warnings.catch_warnings():  # Python 3.12 warns about forking a threaded process
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: read, answer, and leave without running any of the parent's cleanup
        code = 0
        try:
            os.close(r)
            import faulthandler

            faulthandler.disable()  # a crash here is reported by the parent, in one line
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)  # and the library's own diagnostics stay out of the terminal
            buffer = io.BytesIO()
            try:
                np.savez(buffer, **read(*args))
                answer = b"A" + buffer.getvalue()
            except ValueError as e:
                answer = b"E" + str(e).encode("utf-8", "replace")
            with os.fdopen(w, "wb") as f:
                f.write(answer)
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(w)
    chunks, deadline = [], time.monotonic() + ISOLATION_TIMEOUT
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([r], [], [], left)[0]:
                os.kill(pid, signal.SIGKILL)
                raise ValueError(f"{path} is truncated or corrupt: reading it did not finish in "
                                 f"{ISOLATION_TIMEOUT:g} s")
            chunk = os.read(r, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(r)
        _, status = os.waitpid(pid, 0)
    answer = b"".join(chunks)
    if not answer or answer[:1] not in b"AE":
        how = f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else f"status {os.WEXITSTATUS(status)}"
        raise ValueError(f"{path} is truncated or corrupt: the library reading it crashed ({how})")
    if answer[:1] == b"E":
        raise ValueError(answer[1:].decode("utf-8"))
    with np.load(io.BytesIO(answer[1:]), allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files}
