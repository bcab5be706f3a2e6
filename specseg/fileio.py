"""Files in and out: atomic writes with the usual permissions, reads that cannot block.

Every file specseg writes (artifacts, exports, ``schema -o``, ``fmt -o``,
``import-smp``) is written to a temporary file beside its target and renamed
into place, so an interrupted command never leaves a half-written file. The
temporary file is created private (mode 0600); before it is renamed it gets
the mode a plain ``open()`` would have given a new file (0666 less the
umask), or, when it replaces a file, that file's own mode.
:func:`check_target` refuses targets that are not regular files (a device
node, a FIFO, a directory) even with ``--force``.

:func:`open_regular` opens a file for reading without blocking on a FIFO and
refuses anything that is not a regular file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
import threading
from pathlib import Path
from typing import BinaryIO

_UMASK_LOCK = threading.Lock()


class NotRegularFileError(OSError):
    """A path names a directory, FIFO, socket or device where a regular file is needed."""


def is_folder(path: str | os.PathLike[str]) -> bool:
    """True if ``path`` is a directory; False for anything else, including a path the OS refuses.

    ``Path.is_dir`` lets some errors through (a name over 255 bytes raises
    ENAMETOOLONG on Python 3.11); a user's path is probed here, and the reason
    is reported where the path is opened or written.
    """
    try:
        return stat.S_ISDIR(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def is_regular_file(path: str | os.PathLike[str]) -> bool:
    """True if ``path`` is a regular file; False otherwise or when the OS refuses the path (see :func:`is_folder`)."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """Open ``path`` for binary reading; ``NotRegularFileError`` unless it is a regular file.

    The open itself does not block (a FIFO without a writer would hang a plain
    ``open()``); other failures are the ``OSError`` the system reports.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFileError(errno.EINVAL, f"is {_kind(mode)}, not a regular file", str(path))
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def describe_os_error(exc: OSError) -> str:
    """A short reason for an ``OSError`` met reading or writing a file: ``no such file``, ``is a directory``, ..."""
    if isinstance(exc, NotRegularFileError):
        return str(exc.strerror)
    if isinstance(exc, FileNotFoundError):
        return "no such file or directory"
    if isinstance(exc, IsADirectoryError):
        return "is a directory"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if exc.errno == errno.ELOOP:
        return "too many levels of symbolic links (a symbolic link loop)"
    if exc.errno == errno.ENAMETOOLONG:
        return "file name too long"
    return exc.strerror or type(exc).__name__


def new_file_mode() -> int:
    """The mode ``open(path, "w")`` gives a new file: 0666 less the process umask."""
    with _UMASK_LOCK:  # os.umask can only be read by setting it
        mask = os.umask(0o022)
        os.umask(mask)
    return 0o666 & ~mask


def check_target(path: Path, force: bool) -> None:
    """Refuse to write ``path`` when it exists and ``force`` is not set, or is not a regular file.

    Raises ``FileExistsError`` (a usage error: exit 2 on the command line).
    A symbolic link is replaced itself, never followed.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError:
        return  # the write reports the real problem with its name
    if stat.S_ISLNK(st.st_mode):
        if not force:
            raise FileExistsError(f"{path} exists; use --force to overwrite it (force=True in Python)")
        return
    if not stat.S_ISREG(st.st_mode):
        raise FileExistsError(f"{path} is {_kind(st.st_mode)}, not a regular file; refusing to replace it (even with --force)")
    if not force:
        raise FileExistsError(f"{path} exists; use --force to overwrite it (force=True in Python)")


def give_mode(tmp: Path, target: Path) -> None:
    """Give the finished temporary file ``tmp`` the mode ``target`` should have (its own, or the umask's)."""
    try:
        st = os.stat(target)
        mode = stat.S_IMODE(st.st_mode) if stat.S_ISREG(st.st_mode) else new_file_mode()
    except OSError:
        mode = new_file_mode()
    os.chmod(tmp, mode)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it into place.

    The file gets the usual mode (see the module docstring).
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:100]}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        give_mode(Path(tmp), path)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """UTF-8 text version of :func:`write_bytes_atomic`."""
    write_bytes_atomic(path, text.encode("utf-8"))
