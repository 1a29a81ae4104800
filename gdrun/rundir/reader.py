"""A run folder read back: its metric files, config, status and error, for pictures and sweep tables.

Light on purpose (no torch, no matplotlib at import): the sweep summary reads job folders with
it between Hydra's jobs, and `gdrun-report --help` must answer at once.
"""

import json
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from omegaconf import DictConfig, OmegaConf

from gdrun.config.schema import what_ran
from gdrun.config.targets import upgrade, upgraded_container
from gdrun.rundir.files import read_csv
from gdrun.rundir.layout import RunPaths
from gdrun.rundir.logfile import last_error

if TYPE_CHECKING:
    import numpy as np


class RunFolder:
    """One run's folder: each file read once, on first use; a missing file reads as None."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.paths = RunPaths(self.path)
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
        return self.table(self.paths.iterations.name)

    @cached_property
    def epochs(self) -> Optional[List[Dict]]:
        return self.table(self.paths.epochs.name)

    @cached_property
    def summary(self) -> Optional[Dict]:
        path = self.paths.summary
        return json.loads(path.read_text()) if path.exists() else None

    @cached_property
    def config(self) -> Optional[DictConfig]:
        """The job's config: Hydra's `.hydra/config.yaml`, else the resolved one in the last checkpoint.

        Targets renamed since the folder was written (gdrun 0.1.0's `gdrun.models.linear`, ...)
        are read under their current names.
        """
        if self.paths.config.exists():
            cfg = OmegaConf.load(self.paths.config)
            assert isinstance(cfg, DictConfig)
            return upgrade(cfg)
        checkpoint = self.paths.last_checkpoint
        if checkpoint.exists():  # a run started without Hydra's command line (tests)
            import torch

            saved = torch.load(checkpoint, map_location="cpu", weights_only=False)
            return OmegaConf.create(upgraded_container(saved["config"]))
        return None

    @cached_property
    def model_args(self) -> Optional[Dict[str, Any]]:
        """What the model was built with besides its config (input shape, outputs, output layer); None before 0.2."""
        return (self.summary or {}).get("model_args")

    @cached_property
    def launch_dir(self) -> Optional[Path]:
        """The directory gdrun was started in, which relative paths in the config (data.root) are relative to."""
        path = self.paths.hydra_config
        if not path.exists():
            return None
        return Path(OmegaConf.load(path).hydra.runtime.cwd)

    @cached_property
    def overrides(self) -> List[str]:
        """The command-line overrides of the job, as Hydra recorded them (`optim.lr=0.1`)."""
        path = self.paths.overrides
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
        log = self.paths.log
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
        return what_ran(cfg)

    def title(self) -> str:
        """The run in one line for a figure's title: `data=line · model=linear · ... · lr=0.1 · batch=full`."""
        return title_line(self.what) or self.path.name


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
TITLE_FIELDS = {"data": "data", "model": "model", "loss": "loss", "optim": "optim", "lr": "lr", "batch_size": "batch"}


def title_line(what: Dict) -> str:
    """`data=line · model=linear · loss=mse · optim=gd · lr=0.1 · batch=full` from the fields given."""
    return " · ".join(
        f"{short}={what[key]:g}" if isinstance(what[key], float) else f"{short}={what[key]}"
        for key, short in TITLE_FIELDS.items()
        if key in what
    )


def shared(runs: List["RunFolder"]) -> Dict:
    """The title fields every run has in common (what a sweep or comparison did not vary)."""
    whats = [run.what for run in runs if run.what]
    if not whats:
        return {}
    return {k: v for k, v in whats[0].items() if all(w.get(k) == v for w in whats[1:])}


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

    assert isinstance(tree, dict)
    walk(tree, "")
    return out
