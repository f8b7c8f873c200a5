"""Output files and folders: atomic files (write a temporary sibling, then rename it over the
target), one writer per output folder, and earlier outputs moved aside instead of overwritten."""

import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from protgen.errors import ProtgenError

__all__ = ["atomic_path", "folder_lock", "move_aside", "writable_folder"]


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path next to ``path``; on success it replaces ``path`` (with the usual
    umask permissions, not mkstemp's 0600), on error it is removed: no reader sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def folder_lock(folder: str | os.PathLike):
    """Hold an exclusive lock on an existing folder while a command writes into it; another
    process asking for it meanwhile gets a one-line ProtgenError. The lock is the kernel's (flock
    on the folder itself): it leaves no file behind and ends with the process, however it ends."""
    folder = Path(folder)
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, as before
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ProtgenError(
                f"another protgen command (sample or eval) is writing to {folder}; wait for it "
                "to finish or choose another --out"
            ) from None
        yield
    finally:
        os.close(fd)


def move_aside(folder: str | os.PathLike, names: list[str]) -> Path | None:
    """Move the files ``names`` of ``folder`` (those that exist) into a new subfolder
    ``replaced-YYYYMMDD-HHMMSS`` and return it (None when none exists): replaced outputs are kept,
    not overwritten, and no longer mix with the new ones."""
    folder = Path(folder)
    present = [name for name in dict.fromkeys(names) if (folder / name).is_file()]
    if not present:
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target, k = folder / f"replaced-{stamp}", 1
    while target.exists():
        k += 1
        target = folder / f"replaced-{stamp}-{k}"
    target.mkdir()
    for name in present:
        os.replace(folder / name, target / name)
    return target


def writable_folder(folder: str | os.PathLike, create: bool = True) -> None:
    """Check that files can be made in ``folder`` — creating it, or with ``create`` False probing
    the nearest folder that exists (so a later refusal leaves nothing behind); raises a one-line
    ProtgenError naming the problem (a file in the way, a read-only folder, a full disk)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ProtgenError(f"--out {folder} is a file, not a directory")
    probe_in = folder
    try:
        if create:
            folder.mkdir(parents=True, exist_ok=True)
        else:
            while not probe_in.exists() and probe_in != probe_in.parent:
                probe_in = probe_in.parent
        fd, probe = tempfile.mkstemp(dir=probe_in, prefix=".probe")
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise ProtgenError(f"cannot write to {probe_in} ({error.strerror or error})") from None
