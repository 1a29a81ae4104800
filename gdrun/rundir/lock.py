"""One writer per run folder: an exclusive lock held on the folder while a process writes it.

The lock is `flock` on the folder itself (no file is created, so a refused command leaves the
folder as it was). The kernel drops it when the process ends, however it ends (`kill -9`
included), so a stale lock never blocks a resume. Locks are per process: claiming a folder this
process already holds is a no-op.
"""

import errno
import fcntl
import os
from pathlib import Path
from typing import Dict

from gdrun.errors import GdrunError

_held: Dict[Path, int] = {}  # folder -> the open descriptor that holds its lock


def claim(folder: Path) -> None:
    """Take the folder's lock (creating the folder), or GdrunError when another process holds it."""
    folder = Path(folder).absolute()
    if folder in _held:
        return
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        os.close(fd)
        if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            raise GdrunError(
                f"{folder} is being written by another gdrun process right now; gdrun allows one writer "
                f"per run folder. Wait for it to end, or choose another folder."
            ) from error
        raise
    _held[folder] = fd


def release(folder: Path) -> None:
    """Let go of a folder this process holds (nothing happens when it holds none)."""
    fd = _held.pop(Path(folder).absolute(), None)
    if fd is not None:
        os.close(fd)  # closing the descriptor drops the flock


def holds(folder: Path) -> bool:
    return Path(folder).absolute() in _held
