"""The run folder's metric files: iterations.csv, epochs.csv and summary.json.

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
from typing import Dict, Iterable, List, Mapping, Optional, Sequence

ITERATION_COLUMNS = ("step", "epoch", "loss", "lr")
# A tiny lab finishes an epoch every few microseconds: a flush (a system call) per epoch would
# cost more than its training steps.
FLUSH_SECONDS = 0.5
EPOCH_COLUMNS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds")


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
        self._file.write("".join([",".join([v if v.__class__ is str else "" if v is None else repr(v)
                                            for v in row]) + "\n" for row in rows]))

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


class MetricLog:
    """The two per-run metric tables: one row per iteration, one row per epoch (from epoch 0).

    A logger: `log_iterations`, `log_epoch`, `log_summary`, `close`. Other loggers (TensorBoard)
    have the same four methods and receive the same calls.
    """

    def __init__(self, folder: Path):
        self.folder = folder
        self.iterations = CsvLog(folder / "iterations.csv", ITERATION_COLUMNS)
        self.epochs = CsvLog(folder / "epochs.csv", EPOCH_COLUMNS)

    def log_iterations(self, first_step: int, epoch: int, costs: List[float], lr: float) -> None:
        tail = f",{epoch},"
        end = f",{lr!r}\n"
        # The hot path of a long lab: one formatted line per cost, written in one call.
        self.iterations.write_lines("".join([f"{first_step + i}{tail}{cost!r}{end}" for i, cost in enumerate(costs)]))

    def log_epoch(self, row: Dict) -> None:
        self.epochs.write([[row.get(column) for column in EPOCH_COLUMNS]])
        self.iterations.flush()
        self.epochs.flush()

    def log_summary(self, summary: Dict) -> None:
        """summary.json, rewritten whole (atomically) whenever the run's state changes."""
        write_json(self.folder / "summary.json", summary)

    def close(self) -> None:
        self.iterations.close()
        self.epochs.close()


def make_loggers(folder: Path, specs: Mapping[str, Mapping]) -> List:
    """The CSV files always, plus one logger per entry of cfg.loggers: its `_target_` class, built with the folder."""
    from hydra.utils import get_class  # not instantiate(): it would wrap a GdrunError (a missing extra) in its own

    extra = [get_class(spec["_target_"])(folder, **{k: v for k, v in spec.items() if k != "_target_"})
             for spec in specs.values()]
    return [MetricLog(folder), *extra]


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


class Best:
    """The best value of every epoch metric so far (lowest loss, highest accuracy) and its epoch.

    The headline metric, the one `best.pt` follows, is validation accuracy for classification
    with a validation set, validation loss for regression with one, else the training metric.
    """

    def __init__(self, has_val: bool, classification: bool):
        split = "val" if has_val else "train"
        self.headline = f"{split}_accuracy" if classification else f"{split}_loss"
        self.by_metric: Dict[str, Dict] = {}

    def update(self, row: Dict) -> bool:
        """Take an epoch row; True when the headline metric improved."""
        improved = False
        for name, value in row.items():
            if not (name.endswith("_loss") or name.endswith("_accuracy")) or value is None:
                continue
            best = self.by_metric.get(name)
            if best is not None and not _better(name, value, best["value"]):
                continue
            self.by_metric[name] = {"value": value, "epoch": row["epoch"]}
            improved |= name == self.headline
        return improved

    def state(self) -> Dict:
        return {"headline": self.headline, "by_metric": dict(self.by_metric)}

    def load(self, state: Dict) -> None:
        self.headline, self.by_metric = state["headline"], dict(state["by_metric"])


def _better(name: str, value: float, than: float) -> bool:
    return value < than if name.endswith("_loss") else value > than
