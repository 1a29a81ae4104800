"""A sweep's table: `summary.csv` at the sweep folder's root, one row per job folder.

Every job is listed, whatever became of it: a job that raised has no summary.json and appears
as `failed` with the last error of its gdrun.log; one that diverged appears with its own status;
one whose files are damaged appears as `damaged`, with what is wrong in its error cell.
Light (no torch, no matplotlib): it is rewritten between Hydra's jobs.
"""

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence

from gdrun.rundir.layout import SWEEP_SUMMARY, sweep_jobs
from gdrun.rundir.reader import RunFolder, differing

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
    jobs = []
    for folder in sweep_jobs(sweep_dir):
        run = RunFolder(folder)
        pairs = (o.lstrip("+~").split("=", 1) for o in run.overrides if "=" in o)
        jobs.append(Job(int(folder.name), run, {key: parse_value(value) for key, value in pairs}))
    return jobs


def swept_keys(jobs: List[Job]) -> List[str]:
    """The override keys whose values differ between jobs: what the sweep varied."""
    return differing([job.values for job in jobs])


def summary_row(job: Job, keys: Sequence[str]) -> Dict:
    """A job as one row: overrides, swept values, status, final and best metrics, wall time, error."""
    run, summary = job.run, job.run.summary or {}  # a damaged summary.json reads as None
    best, final = summary.get("best") or {}, summary.get("final") or {}
    return {
        "job": job.number,
        "overrides": " ".join(run.overrides),
        **{key: job.values.get(key) for key in keys},
        "status": run.status,
        "epochs": summary.get("epochs"),
        "steps": summary.get("steps"),
        **{f"final_{m}": final.get(m) for m in METRICS},
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
        tmp = Path(sweep_dir) / f".{SWEEP_SUMMARY}.{os.getpid()}.tmp"  # parallel launchers' jobs write it too
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
        tmp.replace(Path(sweep_dir) / SWEEP_SUMMARY)
    return rows
