"""Decoded datasets kept as tensors in a cache folder of the user's, so a file is decoded once.

An entry is a torch.save of plain tensors, strings and numbers, read back with
`weights_only=True` (an entry someone left there runs no code). It lives in `$GDRUN_CACHE`
(default `~/.cache/gdrun`), never beside the user's files, and is keyed by the identity of its
sources (each file's path, size and modification time; every file of a folder) and by the
settings that change the decoding (an image size, grayscale), so an entry is rebuilt when
either changes, and the stale entry of the same sources is removed then.
"""

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Sequence, Set

import torch

log = logging.getLogger("gdrun")

CACHE_VARIABLE = "GDRUN_CACHE"
# Bump when what an entry holds changes: older entries are then rebuilt, never misread.
FORMAT = 1


def cache_dir() -> Path:
    """$GDRUN_CACHE, else ~/.cache/gdrun."""
    return Path(os.environ.get(CACHE_VARIABLE) or "~/.cache/gdrun").expanduser()


def source_files(sources: Iterable[Path]) -> List[Path]:
    """The files that make up the sources: a file itself, a folder's every file (hidden ones left out)."""
    files: List[Path] = []
    for source in sources:
        if source.is_dir():
            files += sorted(p for p in source.rglob("*") if p.is_file() and not p.name.startswith("."))
        else:
            files.append(source)
    return files


def identity(sources: Sequence[Path]) -> List[List[Any]]:
    """[path, size, mtime in ns] of every source file: what a changed, added or removed file changes."""
    rows = []
    for path in source_files(sources):
        stat = path.stat()
        rows.append([str(path.resolve()), stat.st_size, stat.st_mtime_ns])
    return rows


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def cached(kind: str, sources: Sequence[Path], settings: Dict[str, Any], build: Callable[[], Dict]) -> Dict:
    """`build()`'s dict of tensors (and strings, numbers), from the cache when its sources and settings are unchanged.

    The entry is `KIND/WHERE-HOW-WHAT.pt`: WHERE hashes the sources' paths, HOW the settings, WHAT
    the files' sizes and times. A new entry replaces those of the same sources and settings made
    from older files; other settings (another image size) keep their own entries.
    """
    sources = [Path(s).resolve() for s in sources]
    stem = f"{_digest([str(s) for s in sources])}-{_digest({'format': FORMAT, 'settings': settings})}"
    path = cache_dir() / kind / f"{stem}-{_digest(identity(sources))}.pt"
    if path.is_file():
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # noqa: BLE001 - a cut or foreign file: decode again and replace it
            log.info("rebuilding the cache entry %s: %s", path, error)
    value = build()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".{path.name}.{os.getpid()}.tmp"
        torch.save(value, tmp)
        os.replace(tmp, path)  # whole or absent: two runs filling the same entry at once both succeed
        for stale in path.parent.glob(f"{stem}-*.pt"):
            if stale != path:
                stale.unlink(missing_ok=True)
    except OSError as error:  # a read-only or full cache costs time, never the run
        log.warning("could not write gdrun's cache in %s (%s); the data is decoded again next time", path.parent, error)
    return value


# The samples this process has said it reads (once each: the pictures build the data again).
_said: Set[str] = set()


def sample(name: str, write: Callable[[Path], None], option: str) -> Path:
    """A sample file or folder gdrun makes for `option` (data=csv) tried without data.path: written once, whole."""
    path = cache_dir() / "samples" / name
    if option not in _said:
        _said.add(option)
        log.warning("data.path is not set: %s reads gdrun's sample %s (give data.path=...)", option, path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".{name}.{os.getpid()}.tmp"
        write(tmp)
        try:
            os.replace(tmp, path)
        except OSError:  # another process made it first (a folder cannot replace a folder)
            if not path.exists():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    return path
