"""A run folder read back: its metric files, config, status and error, for pictures and sweep tables.

Light on purpose (no torch, no matplotlib at import): the sweep summary reads job folders with
it between Hydra's jobs, and `gdrun-report --help` must answer at once.
"""

import json
import re
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Optional

from omegaconf import DictConfig, OmegaConf

from gdrun.metrics import read_csv

if TYPE_CHECKING:
    import numpy as np

TRACEBACK = "Traceback (most recent call last):"
# A log record's first line, as conf/hydra/job_logging/gdrun.yaml formats it.
LOG_RECORD = re.compile(r"^\[[^]]*\]\[[^]]*\]\[(?P<level>[A-Z]+)\] - (?P<message>.*)$")


class RunFolder:
    """One run's folder: each file read once, on first use; a missing file reads as None."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._columns: Dict[str, Optional[Dict]] = {}

    def table(self, name: str) -> Optional[List[Dict]]:
        """A CSV of the run as dicts, or None when the run did not write it (or wrote no rows)."""
        path = self.path / name
        if not path.exists():
            return None
        return read_csv(path) or None

    def columns(self, name: str) -> Optional[Dict[str, "np.ndarray"]]:
        """A CSV of the run as one array per column (see read_columns), read once; None when the run
        did not write it (or wrote no rows). What the pictures read."""
        if name not in self._columns:
            self._columns[name] = read_columns(self.path / name)
        return self._columns[name]

    @cached_property
    def iterations(self) -> Optional[List[Dict]]:
        return self.table("iterations.csv")

    @cached_property
    def epochs(self) -> Optional[List[Dict]]:
        return self.table("epochs.csv")

    @cached_property
    def summary(self) -> Optional[Dict]:
        path = self.path / "summary.json"
        return json.loads(path.read_text()) if path.exists() else None

    @cached_property
    def config(self) -> Optional[DictConfig]:
        """The job's config: Hydra's `.hydra/config.yaml`, else the resolved one in the last checkpoint."""
        path = self.path / ".hydra" / "config.yaml"
        if path.exists():
            return OmegaConf.load(path)
        checkpoint = self.path / "checkpoints" / "last.pt"
        if checkpoint.exists():  # a run started without Hydra's command line (tests, the Python API)
            import torch

            return OmegaConf.create(torch.load(checkpoint, map_location="cpu", weights_only=False)["config"])
        return None

    @cached_property
    def launch_dir(self) -> Optional[Path]:
        """The directory gdrun was started in, which relative paths in the config (data.root) are relative to."""
        path = self.path / ".hydra" / "hydra.yaml"
        if not path.exists():
            return None
        return Path(OmegaConf.load(path).hydra.runtime.cwd)

    @cached_property
    def overrides(self) -> List[str]:
        """The command-line overrides of the job, as Hydra recorded them (`optim.lr=0.1`)."""
        path = self.path / ".hydra" / "overrides.yaml"
        return list(OmegaConf.load(path)) if path.exists() else []

    @property
    def status(self) -> str:
        """summary.json's status (completed, diverged, ...); `failed` when the run never wrote one."""
        return (self.summary or {}).get("status", "failed")

    @cached_property
    def error(self) -> Optional[str]:
        """Why a run that did not complete stopped: summary.json's own word, else the end of its gdrun.log."""
        if self.status == "completed":
            return None
        summary = self.summary or {}
        if summary.get("error"):
            return str(summary["error"])
        if summary.get("diverged_at_step") is not None:
            return f"diverged at step {summary['diverged_at_step']} (cost {summary.get('diverged_cost')})"
        if summary.get("stopped_by"):
            return f"stopped by {summary['stopped_by']}"
        log = self.path / "gdrun.log"
        reason = last_error(log.read_text(errors="replace")) if log.exists() else None
        return reason or ("no summary.json and no error in gdrun.log" if not summary else None)

    @property
    def headline(self) -> Optional[str]:
        """The metric the run was judged by (summary.json's best.metric: val_accuracy, train_loss, ...)."""
        return (self.summary or {}).get("best", {}).get("metric")

    def final(self, metric: str) -> Optional[float]:
        return (self.summary or {}).get("final", {}).get(metric)

    @cached_property
    def what(self) -> Dict:
        """What was run: data, model, loss, optim, lr, batch_size (summary.json's `run`, else the config)."""
        if self.summary and "run" in self.summary:
            return self.summary["run"]
        cfg = self.config
        if cfg is None:
            return {}
        return {"data": cfg.data.name, "model": cfg.model.name, "loss": cfg.loss.name, "optim": cfg.optim.name,
                "lr": cfg.optim.lr, "batch_size": cfg.optim.batch_size, "seed": cfg.seed}

    def describe(self) -> str:
        """The run in one line for a figure's title: `data=line · model=linear · ... · lr=0.1 · batch=full`."""
        return describe(self.what) or self.path.name


def read_columns(path: Path) -> Optional[Dict[str, "np.ndarray"]]:
    """A run's CSV as {column: array}: numbers as floats (an empty cell as nan), text (data.csv's split)
    as str; None when there is no such file or no row in it.

    numpy parses all-number files in C, several times faster than a dict per row: it counts for
    the thousands of rows of a mini-batch run's iterations.csv, params.csv and fit.csv.
    """
    import numpy as np  # here: this module stays light for the sweep summary and `gdrun-report --help`

    if not path.exists():
        return None
    with open(path, newline="") as f:
        header = f.readline().rstrip("\r\n").split(",")
        lines = f.read().splitlines()
    if not lines:
        return None
    try:
        numbers = np.loadtxt(lines, delimiter=",", ndmin=2, comments=None)  # (rows, columns)
    except ValueError:  # empty cells (no validation set), text, or a last row still being written
        rows = [row for row in (line.split(",") for line in lines) if len(row) == len(header)]
        if not rows:
            return None
        return {name: numbers_or_text(column) for name, column in zip(header, np.array(rows).T)}
    return dict(zip(header, numbers.T))


def numbers_or_text(column: "np.ndarray") -> "np.ndarray":
    """A column of CSV cells as floats (empty: nan) when every cell is a number, else as it is."""
    import numpy as np

    try:
        return np.where(column == "", "nan", column).astype(float)
    except ValueError:
        return column


# The fields of summary.json's `run` that name a run in titles, and their short names there.
TITLE_FIELDS = {"data": "data", "model": "model", "loss": "loss", "optim": "optim", "lr": "lr",
                "batch_size": "batch"}


def describe(what: Dict) -> str:
    """`data=line · model=linear · loss=mse · optim=gd · lr=0.1 · batch=full` from the fields given."""
    return " · ".join(f"{short}={what[key]:g}" if isinstance(what[key], float) else f"{short}={what[key]}"
                      for key, short in TITLE_FIELDS.items() if key in what)


def shared(runs: List["RunFolder"]) -> Dict:
    """The title fields every run has in common (what a sweep or comparison did not vary)."""
    whats = [run.what for run in runs if run.what]
    if not whats:
        return {}
    return {k: v for k, v in whats[0].items() if all(w.get(k) == v for w in whats[1:])}


def last_error(log_text: str) -> Optional[str]:
    """The last exception in a log (the last line of its last traceback), else its last error or warning."""
    lines = log_text.splitlines()
    if TRACEBACK in log_text:
        start = max(i for i, line in enumerate(lines) if line.startswith(TRACEBACK))
        tail = [line for line in lines[start + 1:] if line.strip() and not LOG_RECORD.match(line)]
        body = [line for line in tail if not line.startswith(" ")]
        if body:
            return body[-1].strip()
    for line in reversed(lines):
        record = LOG_RECORD.match(line)
        if record and record["level"] in ("ERROR", "CRITICAL", "WARNING"):
            return record["message"].strip()
    return None


def differing(settings: List[Dict]) -> List[str]:
    """The keys whose values are not the same in every dict, in first-seen order: what tells runs apart."""
    keys: List[str] = []
    for setting in settings:
        keys += [k for k in setting if k not in keys]
    return [k for k in keys if len({repr(s.get(k)) for s in settings}) > 1]


def flat(config: Optional[DictConfig]) -> Dict:
    """A config as `{"optim.lr": 0.1, "data.name": "line", ...}`, interpolations resolved when they can be."""
    if config is None:
        return {}
    try:
        tree = OmegaConf.to_container(config, resolve=True)
    except Exception:  # noqa: BLE001 - an interpolation that needs Hydra's resolvers (${hydra:...})
        tree = OmegaConf.to_container(config, resolve=False)
    out: Dict = {}

    def walk(node: Dict, prefix: str) -> None:
        for key, value in node.items():
            if isinstance(value, dict) and value:
                walk(value, f"{prefix}{key}.")
            else:
                out[f"{prefix}{key}"] = value

    walk(tree, "")
    return out
