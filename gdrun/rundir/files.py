"""The run folder's file formats: append-only CSV tables and atomically replaced JSON.

Rows are appended as the run goes and pushed to disk at most every FLUSH_SECONDS; before a
checkpoint is published they are forced onto the disk (`sync`), so a checkpoint never describes
rows that are not there, and a resumed run cuts the files back to what its checkpoint covers
(`truncate_csv`), whatever a kill left (an empty file, a row cut in the middle, rows beyond it).
Whole-file writes go to a temporary file that is renamed over the old one. Numbers are written
with repr(), which round-trips a float exactly: a test
can compare a run's costs with the notebook's to the last bit.
"""

import contextlib
import ctypes
import functools
import json
import os
import re
import time
from pathlib import Path
from typing import IO, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Set, Tuple

# A tiny lab finishes an epoch every few microseconds: a flush (a system call) per epoch would
# cost more than its training steps.
FLUSH_SECONDS = 0.5


class CsvLog:
    """A CSV file with a fixed header, opened for appending (resumed runs go on in the same file).

    Cells are numbers, short names or empty, never text with commas or quotes, so a row is
    just the cells joined by commas (several times faster than the csv module's writer, which
    matters for labs that write tens of thousands of rows).
    """

    def __init__(self, path: Path, columns: Sequence[str]):
        new = not path.exists() or path.stat().st_size == 0
        self.path = path
        self.columns = tuple(columns)
        self._file = open(path, "a", newline="")
        self._flushed = time.monotonic()
        if new:
            self._file.write(",".join(self.columns) + "\n")

    def write(self, rows: Iterable[Sequence]) -> None:
        # Text as is, None as an empty cell, numbers by repr (which round-trips a float). One
        # expression, no helper call per cell: this runs for every path and fit row of a long lab.
        self._file.write(
            "".join(
                [
                    ",".join([v if v.__class__ is str else "" if v is None else repr(v) for v in row]) + "\n"
                    for row in rows
                ]
            )
        )

    def write_lines(self, text: str) -> None:
        """Rows already formatted, one per line."""
        self._file.write(text)

    def flush(self) -> None:
        """Push the rows to the file, if the last push is FLUSH_SECONDS old (close always pushes)."""
        now = time.monotonic()
        if now - self._flushed >= FLUSH_SECONDS:
            self._file.flush()
            self._flushed = now

    def sync(self) -> None:
        """Every row written so far onto the disk (before a checkpoint that counts them is published)."""
        self._file.flush()
        if _batch is None:
            os.fsync(self._file.fileno())
        else:  # on the disk at the batch's one sync, before anything it publishes
            _batch.synced.add(self.path)
        self._flushed = time.monotonic()

    def close(self) -> None:
        if not self._file.closed:
            self.sync()
            self._file.close()


def temporary(path: Path) -> Path:
    """The temporary file a whole-file write of `path` goes to before it is renamed over `path`."""
    return path.with_name(f".{path.name}.tmp")


def replace_atomically(path: Path, write: Callable[[IO[bytes]], object], now: bool = False) -> None:
    """Write `path` whole: `write` fills a temporary file, which is synced and renamed over `path`.

    Readers (and a kill at any instant) see the old file or the new one, never half of one; the
    temporary file is removed when the write fails (a full disk). Inside `one_sync` the rename
    waits for the block's end, unless `now` (a file read again within the block).
    """
    tmp = temporary(path)
    deferred = _batch is not None and not now
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            if not deferred:
                os.fsync(f.fileno())
        if not deferred:
            os.replace(tmp, path)
        else:  # renamed once the batch's sync has put it (and every row before it) on the disk
            assert _batch is not None
            _batch.hold(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class _Batch:
    """What one_sync defers: the files to sync, and the renames that publish whole files (in order)."""

    def __init__(self) -> None:
        self.synced: Set[Path] = set()
        self.renames: Dict[Path, Path] = {}  # path -> its temporary file, in the order they were written

    def hold(self, tmp: Path, path: Path) -> None:
        self.renames.pop(path, None)  # written again: published in its latest place in the order
        self.renames[path] = tmp

    def commit(self) -> None:
        if not self.synced and not self.renames:
            return
        sync_all([*self.synced, *self.renames.values()])
        for path, tmp in self.renames.items():
            os.replace(tmp, path)

    def discard(self) -> None:
        for tmp in self.renames.values():
            tmp.unlink(missing_ok=True)


_batch: Optional[_Batch] = None


@contextlib.contextmanager
def one_sync() -> Iterator[None]:
    """Many runs' writes made durable by one sync of the filesystem instead of a sync per file.

    A group of jobs trained together writes the same files each job writes alone; synced one by
    one that is ~18 fsyncs a job per checkpoint round (a 256-job grid: thousands, each a journal
    commit). Inside this block, rows are pushed to the files but not synced, whole-file writes
    stay in their temporary files; at its end one syncfs (per filesystem) puts them all on the
    disk, then the temporary files are renamed over the old ones, in the order they were written.
    So the guarantees hold as if each write were synced: a checkpoint is published only after
    the rows it counts are on the disk, summary.json after the files it describes. A write that
    needs the published file within the block must not be in one (truncate_csv is not). An error
    in the block publishes nothing: the old files stand, the temporary files go.
    """
    global _batch
    if _batch is not None:  # the outer block publishes
        yield
        return
    batch = _batch = _Batch()
    try:
        yield
    except BaseException:
        _batch = None
        batch.discard()
        raise
    _batch = None
    batch.commit()


def sync_all(paths: Iterable[Path]) -> None:
    """Every write to these files on the disk: one syncfs per filesystem where Linux has it, else fsync each."""
    paths = list(paths)
    syncfs = _syncfs()
    if syncfs is not None:
        devices: Dict[int, Path] = {}
        for path in paths:
            with contextlib.suppress(FileNotFoundError):  # a job's folder cleared since: nothing to keep
                devices.setdefault(os.stat(path).st_dev, path)
        if all(_sync_filesystem(syncfs, path) for path in devices.values()):
            return
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@functools.lru_cache(maxsize=None)
def _syncfs() -> Optional[Callable[[int], int]]:
    """libc's syncfs(fd) (Linux), or None; looked up once."""
    try:
        return ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None


def _sync_filesystem(syncfs: Callable[[int], int], path: Path) -> bool:
    fd = os.open(path, os.O_RDONLY)
    try:
        return syncfs(fd) == 0
    finally:
        os.close(fd)


def write_json(path: Path, payload: Dict) -> None:
    """Write JSON atomically: readers see the old file or the new one, never half of one."""
    text = (json.dumps(payload, indent=2) + "\n").encode()
    replace_atomically(path, lambda f: f.write(text))


def truncate_csv(path: Path, columns: Sequence[str], column: str, last: float) -> None:
    """Cut a metric file back to its header and the whole rows whose `column` is at most `last`.

    Whatever a kill left behind: an empty file (the header is written), a last row cut
    in the middle, rows after `last`. Rows are in order; a row that does not parse ends the file.
    """
    if not path.exists():
        return  # nothing to cut: the CsvLog opened next writes a new file's header
    header = ",".join(columns) + "\n"
    lines = path.read_text(errors="replace").splitlines(keepends=True)
    index = list(columns).index(column)
    kept = [header]
    for line in lines[1:]:
        cells = line.rstrip("\n").split(",")
        if not line.endswith("\n") or len(cells) != len(columns):
            break  # cut in the middle by a kill
        try:
            value = float(cells[index])
        except ValueError:
            break
        if value > last:
            break
        kept.append(line)
    if kept != lines:
        text = "".join(kept).encode()
        replace_atomically(path, lambda f: f.write(text), now=True)  # the CsvLog opened next appends to it


# A header cell as the writers spell one (step, val_accuracy, x1): anything else is junk.
COLUMN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*\Z")
# More than any header gdrun writes: a first line this long without its end is junk.
HEADER_BYTES = 4096


def read_csv(path: Path, problems: Optional[List[str]] = None) -> List[Dict]:
    """A run's CSV as dicts: numbers as floats, empty cells as None, text (a split name) as is.

    Never raises on a damaged file: a row cut by a kill is left out, junk in a number column
    reads as None, and what was wrong is added to `problems` (when given) in a sentence each.
    """
    problems = [] if problems is None else problems
    header, lines = csv_lines(path, problems)
    rows = [[_value(cell) for cell in row] for row in split_rows(path.name, header, lines, problems)]
    for j, column in enumerate(header):
        cells = [row[j] for row in rows]
        if any(isinstance(v, float) for v in cells):  # a number column: a text cell there is junk
            junk = [i for i, v in enumerate(cells) if isinstance(v, str)]
            if junk:
                problems.append(junk_cells(path.name, column, len(junk), rows[junk[0]][j]))
                for i in junk:
                    rows[i][j] = None
    return [dict(zip(header, row)) for row in rows]


def csv_lines(path: Path, problems: List[str]) -> Tuple[List[str], List[str]]:
    """A run's CSV as (its column names, its whole data lines); ([], []) when it has none to give.

    The writers end every row with a newline, so a last line without one is a row a kill cut in
    the middle: it is left out (a run killed mid-write is not damaged). An unreadable file, or
    one whose first line is not column names, is said in `problems`.
    """
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except OSError as error:
        problems.append(unreadable(path, error))
        return [], []
    lines = [line.removesuffix("\r") for line in text.split("\n")]  # the last: "" or a cut row
    wrong = header_problem(path.name, lines[0], whole=len(lines) > 1)
    if wrong:
        problems.append(wrong)
        return [], []
    if len(lines) == 1:
        return [], []  # empty, or killed while writing its header
    if "\ufffd" in text:
        problems.append(f"{path.name} holds bytes that are not text")
    return lines[0].split(","), lines[1:-1]


def csv_header_problem(path: Path) -> Optional[str]:
    """What is wrong with a CSV's first line, reading no further; None when it is column names."""
    try:
        with open(path, "rb") as f:
            first = f.readline(HEADER_BYTES)
    except OSError as error:
        return unreadable(path, error)
    line = first.decode("utf-8", errors="replace").removesuffix("\n").removesuffix("\r")
    return header_problem(path.name, line, whole=first.endswith(b"\n") or len(first) == HEADER_BYTES)


def header_problem(name: str, line: str, whole: bool) -> Optional[str]:
    """Why a CSV's first line is not column names; None when it is (or, when not `whole`, begins as they do)."""
    cells = line.split(",")
    if not whole and not cells[-1]:
        cells.pop()  # cut just after a comma
    if all(COLUMN_NAME.match(cell) for cell in cells):
        return None
    return f"{name} does not begin with a line of column names (it begins {line[:30]!r})"


def unreadable(path: Path, error: OSError) -> str:
    return f"{path.name} cannot be read ({error.strerror or error})"


def split_rows(name: str, header: Sequence[str], lines: Iterable[str], problems: List[str]) -> List[List[str]]:
    """The data lines as lists of cells; lines with a wrong number of cells (junk) are left out and said."""
    rows, wrong = [], []
    for number, line in enumerate(lines, start=2):  # line 1 is the header
        cells = line.split(",")
        if len(cells) == len(header):
            rows.append(cells)
        elif line.strip():  # a blank line is no row at all
            wrong.append(number)
    if wrong:
        count = "a line" if len(wrong) == 1 else f"{len(wrong)} lines"
        first = f"line {wrong[0]}" if len(wrong) == 1 else f"the first is line {wrong[0]}"
        problems.append(f"{name} has {count} without {len(header)} cells, left out ({first})")
    return rows


def junk_cells(name: str, column: str, count: int, first: str) -> str:
    """What to say of `count` cells of a number column that are not numbers (`first` is the first of them)."""
    if count == 1:
        return f"{name} has a cell in {column} that is not a number, read as empty ({first[:20]!r})"
    return f"{name} has {count} cells in {column} that are not numbers, read as empty (the first: {first[:20]!r})"


def _value(cell: str):
    if cell == "":
        return None
    try:
        return float(cell)
    except ValueError:
        return cell
