"""Write a file whole or not at all.

The data goes to a temporary file in the target's own folder (so the rename
stays on one file system), and ``os.replace`` puts it in place only when every
byte is written.  A failure part way (an error, a full disk, Ctrl-C) removes the
temporary file and leaves any existing target untouched.  A symlink keeps
pointing where it did (the file it names is replaced); a target that exists but
is no regular file (``/dev/null``, ``/dev/stdout``, a named pipe) is written
straight into, since there is nothing to replace.
"""
import contextlib
import os
import secrets
import stat

__all__ = ["atomic_open"]


@contextlib.contextmanager
def atomic_open(path, mode="w", **kwargs):
    """Open a temporary file beside ``path``; on success it replaces ``path``.

    >>> import pathlib, tempfile
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "out.txt"
    >>> with atomic_open(target) as f:
    ...     _ = f.write("whole")
    >>> target.read_text()
    'whole'
    """
    path = os.fspath(path)
    if _exists_but_not_a_file(path):  # /dev/null, /dev/stdout, a named pipe: nothing to replace
        with open(path, mode, **kwargs) as f:
            yield f
        return
    path = os.path.realpath(path)  # through a symlink: replace the file it names, keep the link
    # The name is chosen before the file exists, so that a Ctrl-C arriving at any moment
    # (even inside the call that creates it) finds a name to remove.
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{secrets.token_hex(6)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
        os.chmod(tmp, _mode_for(path))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _exists_but_not_a_file(path):
    try:
        return not stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def _mode_for(path):
    """Keep an existing file's permissions; a new file gets the umask's (mkstemp's are 0600)."""
    try:
        return os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask
