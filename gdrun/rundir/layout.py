"""The run folder's layout: every file name in it, what is a run folder, and a sweep's jobs.

The one module that spells these names; everything else asks it. A run folder:

    summary.json  iterations.csv  epochs.csv  params.csv  data.csv  fit.csv  model.pt  classes.csv
    (lr_find.csv instead of the metric files and model, for a learning-rate range test)
    gdrun.log  .hydra/{config,hydra,overrides}.yaml  checkpoints/{last,best}.pt  plots/

A sweep folder holds numbered job folders (0/, 1/, ...), each a run folder, and at its root
summary.csv, groups.csv (when it repeats settings over seeds), best.json and best_model.pt (the model
the sweep chose by validation), multirun.yaml and the sweep's pictures.
"""

import os
from dataclasses import dataclass
from pathlib import Path
from typing import List

SUMMARY = "summary.json"
ITERATIONS = "iterations.csv"
EPOCHS = "epochs.csv"
PARAMS = "params.csv"
DATA = "data.csv"
FIT = "fit.csv"
# lr_find=true: the learning-rate range test's rows (step, lr, loss, smoothed_loss), instead of the above.
LR_FIND = "lr_find.csv"
MODEL = "model.pt"
# A classifier's per-class precision, recall, F1, support and confusion counts (training.finishing).
CLASSES = "classes.csv"
LOG = "gdrun.log"
HYDRA = ".hydra"
CHECKPOINTS = "checkpoints"
PLOTS = "plots"
SWEEP_SUMMARY = "summary.csv"
# A sweep that repeats settings over seeds (or folds): one row per setting, mean, std and 95 % interval.
SWEEP_GROUPS = "groups.csv"
# The job a sweep chose by its validation metric (gdrun.selection), and that job's best weights.
SWEEP_BEST = "best.json"
SWEEP_BEST_MODEL = "best_model.pt"
# Hydra's record of a sweep at its root: its config, the command's overrides included.
SWEEP_RECORD = "multirun.yaml"
# An Optuna search's study (SQLite, by default) and its best trial, at the sweep's root.
SWEEP_STUDY = "optuna.db"
SWEEP_RESULTS = "optimization_results.yaml"
# The MLflow run a run folder logs to (logger=mlflow): resume= goes on logging there.
MLFLOW_RUN = "mlflow.json"
# The lock file at a sweep's root that jobs ending at once (parallel launchers) take to update summary.csv.
SWEEP_LOCK = ".summary.lock"
# Hydra names the job's log file after the job (conf/hydra/default.yaml: job.name gdrun).
JOB_NAME = LOG.removesuffix(".log")
# The run's tables, CSVs with a header line (what a reader checks for junk).
TABLES = (ITERATIONS, EPOCHS, PARAMS, DATA, FIT, LR_FIND)
# gdrun-labs's mark in each lab folder it makes: it replaces only folders that carry it.
LAB_MARK = ".gdrun-labs"


@dataclass(frozen=True)
class RunPaths:
    """The paths of one run folder's files."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    summary = property(lambda self: self.root / SUMMARY)
    iterations = property(lambda self: self.root / ITERATIONS)
    epochs = property(lambda self: self.root / EPOCHS)
    params = property(lambda self: self.root / PARAMS)
    data = property(lambda self: self.root / DATA)
    fit = property(lambda self: self.root / FIT)
    lr_find = property(lambda self: self.root / LR_FIND)
    model = property(lambda self: self.root / MODEL)
    classes = property(lambda self: self.root / CLASSES)
    log = property(lambda self: self.root / LOG)
    hydra = property(lambda self: self.root / HYDRA)
    config = property(lambda self: self.root / HYDRA / "config.yaml")
    hydra_config = property(lambda self: self.root / HYDRA / "hydra.yaml")
    overrides = property(lambda self: self.root / HYDRA / "overrides.yaml")
    checkpoints = property(lambda self: self.root / CHECKPOINTS)
    last_checkpoint = property(lambda self: self.root / CHECKPOINTS / "last.pt")
    best_checkpoint = property(lambda self: self.root / CHECKPOINTS / "best.pt")
    plots = property(lambda self: self.root / PLOTS)
    mlflow = property(lambda self: self.root / MLFLOW_RUN)

    def holds_run(self) -> bool:
        """True when a run has started here: its summary, Hydra's record, its log or metric rows exist.

        A folder that cannot be looked into (no permission) counts as a run: listings show it as
        damaged, and gdrun never writes there.
        """
        try:
            return any(p.exists() for p in (self.summary, self.hydra, self.log, self.iterations, self.epochs))
        except OSError:
            return True


def is_run_folder(path: Path) -> bool:
    """A folder gdrun ran in (or is running in)."""
    return Path(path).is_dir() and RunPaths(Path(path)).holds_run()


def sweep_jobs(path: Path) -> List[Path]:
    """A sweep folder's job folders (numbered sub-folders that hold a run), in job order; [] otherwise."""
    path = Path(path)
    if not path.is_dir():
        return []
    jobs = [p for p in path.iterdir() if p.is_dir() and p.name.isdigit() and is_run_folder(p)]
    return sorted(jobs, key=lambda p: int(p.name))


def is_sweep_folder(path: Path) -> bool:
    return bool(sweep_jobs(path))


def holds_runs(path: Path) -> bool:
    """True when `path` is a run folder or a sweep folder: gdrun never writes a new run there."""
    return is_run_folder(path) or is_sweep_folder(path)


def find_runs(root: Path) -> List[Path]:
    """Every run folder under `root`, without looking inside one (its checkpoints/ and plots/ hold none)."""
    found = []
    for path, dirs, _files in os.walk(root):
        if is_run_folder(Path(path)):
            found.append(Path(path))
            dirs[:] = []
        else:
            dirs[:] = [d for d in dirs if not d.startswith(".")]  # .submitit/ and the like
    return found
