"""Files that survive a kill: atomic writes, and deletion only of what the harness owns.

A results file half written when the harness was killed looks like a result; a rename is
atomic, so a reader sees the old file or the new one, never half of one. A cleanup that
follows a user-controlled name could delete a user's directory, so the harness deletes
only directories it created and marked as its own.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from harness import faults
from harness.errors import ConfigError, InfraError

log = logging.getLogger(__name__)

OWNED_MARK = ".harness-owned"
# names users give (targets, scenarios, kernel specs, run ids) become path components
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")


def check_name(kind: str, name: str) -> str:
    """A user-given name that is safe as one path component, else a ConfigError naming it."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or ".." in name:
        raise ConfigError(
            f"{kind} name {name!r} is not valid: use letters, digits and . _ + - "
            "(no '/', no '..', not starting with '.' or '-', at most 128 characters)"
        )
    return name


@contextlib.contextmanager
def exclusive_lock(lock_file: Path, waiting: str = "") -> Iterator[int]:
    """One process at a time past this point (two runs started on one fresh cache both
    fetch and extract the same things). Yields the lock's descriptor, so a child that
    inherits it keeps the lock while it runs."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if waiting:
                log.info("waiting for another run that %s", waiting)
            fcntl.flock(fh, fcntl.LOCK_EX)
        yield fh.fileno()


def fsync_dir(path: Path) -> None:
    """Make a rename or unlink in path durable."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Write, fsync, rename over path, fsync the folder: all of it or none of it."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data[: len(data) // 2])
            faults.point(f"write:{path.name}")  # the reliability suite kills a half write
            fh.write(data[len(data) // 2 :])
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def make_owned_dir(path: Path) -> Path:
    """Create path (and parents) and mark it as the harness's, so it may delete it later."""
    path.mkdir(parents=True, exist_ok=True)
    mark = path / OWNED_MARK
    if not mark.exists():
        mark.write_text("created by harness; it may delete this folder\n")
    return path


def remove_owned(path: Path, within: Path, *, legacy_mark: str = "") -> None:
    """Delete a folder the harness created under `within`; refuse anything else.

    Refused: a symlink, a folder outside `within` (after resolving), `within` itself, and
    a folder without the harness's mark (a user's folder reached through a bad name).
    legacy_mark: a stamp file an older harness left in folders it made.
    """
    if not path.exists() and not path.is_symlink():
        return
    if path.is_symlink():
        raise InfraError(f"refusing to delete {path}: it is a symlink")
    real, base = path.resolve(), within.resolve()
    if real == base or base not in real.parents:
        raise InfraError(f"refusing to delete {path}: it is not inside {within}")
    if not (real / OWNED_MARK).exists() and not (legacy_mark and (real / legacy_mark).exists()):
        raise InfraError(
            f"refusing to delete {path}: the harness did not create it (no {OWNED_MARK} in it)"
        )
    shutil.rmtree(real)
