"""The run folder's file formats: append-only CSV tables and atomically replaced JSON.

Rows are appended as the run goes and pushed to disk at most every FLUSH_SECONDS, and at the
end, so a crash or a kill keeps all but the last moments (and a resumed run cuts back to its
checkpoint anyway). Numbers are written with repr(), which round-trips a float exactly: a test
can compare a run's costs with the notebook's to the last bit.
"""

import csv
import json
import os
import time
from pathlib import Path
from typing import Dict, Iterable, List, Sequence

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

    def close(self) -> None:
        self._file.close()


def write_json(path: Path, payload: Dict) -> None:
    """Write JSON atomically: readers see the old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(tmp, path)


def truncate_csv(path: Path, column: str, last: float) -> None:
    """Keep the header and the rows whose `column` is at most `last` (rows are in order)."""
    if not path.exists():
        return
    lines = path.read_text().splitlines(keepends=True)
    index = lines[0].rstrip("\n").split(",").index(column)
    kept = [lines[0]] + [line for line in lines[1:] if float(line.split(",")[index]) <= last]
    if len(kept) < len(lines):
        path.write_text("".join(kept))


def read_csv(path: Path) -> List[Dict]:
    """A run's CSV as dicts: numbers as floats, empty cells as None, text (a split name) as is."""
    with open(path, newline="") as f:
        return [{k: _value(v) for k, v in row.items()} for row in csv.DictReader(f)]


def _value(cell: str):
    if cell == "":
        return None
    try:
        return float(cell)
    except ValueError:
        return cell
