"""A sweep's summary: `summary.csv` at the sweep folder's root, one row per job, and the sweep's pictures.

`SweepSummary` is a Hydra callback (conf/hydra/default.yaml lists it). It rewrites
summary.csv as each job ends, so the table is current even when Hydra stops a sweep after a
job raised, and draws the sweep's pictures when the multirun ends. Every job is listed,
whatever became of it: a job that raised has no summary.json and appears as `failed` with
the last error of its gdrun.log; one that diverged appears with its own status.

Light at import (no torch, no matplotlib): Hydra imports this module on every `gdrun` start.
"""

import csv
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from gdrun.plots.runfolder import RunFolder, differing

log = logging.getLogger(__name__)

METRICS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy")


@dataclass
class Job:
    """One job of a sweep: its number (its folder's name), its folder, and its override values."""

    number: int
    run: RunFolder
    values: Dict[str, object]


def parse_value(text: str):
    """An override's value as a number when it is one (`0.1`, `5`), else the text (`full`, `adam`)."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def read_jobs(sweep_dir: Path) -> List[Job]:
    """The jobs under a sweep folder (its numbered sub-folders), in job order."""
    folders = sorted((p for p in Path(sweep_dir).iterdir() if p.is_dir() and p.name.isdigit()),
                     key=lambda p: int(p.name))
    jobs = []
    for folder in folders:
        run = RunFolder(folder)
        pairs = (o.lstrip("+~").split("=", 1) for o in run.overrides if "=" in o)
        jobs.append(Job(int(folder.name), run, {key: parse_value(value) for key, value in pairs}))
    return jobs


def swept_keys(jobs: List[Job]) -> List[str]:
    """The override keys whose values differ between jobs: what the sweep varied."""
    return differing([job.values for job in jobs])


def summary_row(job: Job, keys: Sequence[str]) -> Dict:
    """A job as one row: overrides, swept values, status, final and best metrics, wall time, error."""
    run, summary = job.run, job.run.summary or {}
    best = summary.get("best", {})
    return {
        "job": job.number,
        "overrides": " ".join(run.overrides),
        **{key: job.values.get(key) for key in keys},
        "status": run.status,
        "epochs": summary.get("epochs"),
        "steps": summary.get("steps"),
        **{f"final_{m}": summary.get("final", {}).get(m) for m in METRICS},
        "best_metric": best.get("metric"),
        "best_value": best.get("value"),
        "best_epoch": best.get("epoch"),
        "wall_seconds": summary.get("wall_seconds"),
        "error": run.error,
        "folder": run.path.name,
    }


def write_summary(sweep_dir: Path) -> List[Dict]:
    """summary.csv at the sweep's root, one row per job folder present; returns the rows."""
    jobs = read_jobs(sweep_dir)
    keys = swept_keys(jobs)
    rows = [summary_row(job, keys) for job in jobs]
    if rows:
        tmp = Path(sweep_dir) / f".summary.csv.{os.getpid()}.tmp"  # parallel launchers' jobs write it too
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
        tmp.replace(Path(sweep_dir) / "summary.csv")
    return rows


def summarize(sweep_dir: Path, plots: bool, formats: Sequence[str] = ("png",),
              surface_range: Optional[Sequence[float]] = None) -> List[Path]:
    """Write summary.csv and, when `plots`, draw the sweep's pictures at its root; returns the files written."""
    write_summary(sweep_dir)
    written = [Path(sweep_dir) / "summary.csv"]
    if plots:
        from gdrun.plots import draw_sweep

        jobs = read_jobs(sweep_dir)
        written += draw_sweep(Path(sweep_dir), jobs, swept_keys(jobs), formats, surface_range)
    return written


class SweepSummary(Callback):
    """Hydra callback: the sweep's summary.csv after every job, its pictures at the end."""

    def __init__(self) -> None:
        self.failed = False

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs) -> None:
        if config.hydra.mode != RunMode.MULTIRUN:
            return
        if job_return.status == JobStatus.FAILED:
            self.failed = True
            try:
                job_return.return_value  # raises the job's exception
            except Exception as error:  # noqa: BLE001 - record it; Hydra raises it again when the sweep ends
                # The job's logging is still in place: this goes to its gdrun.log, where summary.csv reads it.
                log.error("the job failed: %s", error, exc_info=error)
        sweep_dir = Path(config.hydra.sweep.dir)
        if self.failed:
            # Hydra will stop with the failed job's exception after this batch, without on_multirun_end.
            self._summarize(sweep_dir, config.get("plots", True))
        else:
            write_summary(sweep_dir)

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        self._summarize(Path(config.hydra.sweep.dir), config.get("plots", True))

    @staticmethod
    def _summarize(sweep_dir: Path, plots: bool) -> None:
        try:
            summarize(sweep_dir, plots)
        except Exception:  # noqa: BLE001 - the jobs' own folders are complete; say so and go on
            log.warning("could not summarize the sweep in %s (each job's folder is complete)", sweep_dir,
                        exc_info=True)
