"""A sweep as a whole: its summary.csv after every job and its pictures at the end.

`SweepSummary` is a Hydra callback (conf/hydra/default.yaml lists it). It rewrites
summary.csv as each job ends, so the table is current even when Hydra stops a sweep after a
job raised, and draws the sweep's pictures when the multirun ends.

A sweep stopped by Ctrl-C or SIGTERM (training.signals) starts no new job; once its jobs in
flight have stopped, `report_stop` lists every job that started with its true status and says
how to go on with each.

Light at import (no torch, no matplotlib): Hydra imports this module on every `gdrun` start.
"""

import logging
import signal
import sys
from collections import Counter
from pathlib import Path
from typing import Any, List, Optional, Sequence

from hydra._internal.core_plugins.basic_launcher import BasicLauncher
from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from hydra.utils import get_class
from omegaconf import DictConfig

from gdrun.jobs import record_failure
from gdrun.rundir.layout import SWEEP_SUMMARY, RunPaths, sweep_jobs
from gdrun.rundir.reader import RunFolder
from gdrun.rundir.sweep_summary import read_jobs, swept_keys, write_summary
from gdrun.training import signals

log = logging.getLogger(__name__)


def summarize(
    sweep_dir: Path, plots: bool, formats: Sequence[str] = ("png",), surface_range: Optional[Sequence[float]] = None
) -> List[Path]:
    """Write summary.csv and, when `plots`, draw the sweep's pictures at its root; returns the files written."""
    write_summary(sweep_dir)
    written = [Path(sweep_dir) / SWEEP_SUMMARY]
    if plots:
        from gdrun.plots import draw_sweep  # matplotlib only when the sweep ends

        jobs = read_jobs(sweep_dir)
        written += draw_sweep(Path(sweep_dir), jobs, swept_keys(jobs), formats, surface_range)
    return written


class SweepSummary(Callback):
    """Hydra callback: the sweep's summary.csv after every job, its pictures at the end; a stop's bookkeeping."""

    def __init__(self) -> None:
        self.failed = False

    # Hydra starts the run or the sweep: from here a first Ctrl-C or SIGTERM is a request (training.signals).
    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        signals.launched()

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        signals.launched(Path(str(config.hydra.sweep.dir)).absolute(), where_jobs_run(config.hydra.launcher._target_))

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if config.hydra.mode != RunMode.MULTIRUN:
            return
        if job_return.status == JobStatus.FAILED:
            self.failed = True
            try:
                _ = job_return.return_value  # raises the job's exception
            except Exception as error:  # record it; Hydra raises it again when the sweep ends
                # The job's logging is still in place: this goes to its gdrun.log, where summary.csv reads it.
                log.error("the job failed: %s", error, exc_info=error)
        sweep_dir = Path(config.hydra.sweep.dir)
        if self.failed:
            # Hydra will stop with the failed job's exception after this batch, without on_multirun_end.
            self._summarize(sweep_dir, config.get("plots", True))
        else:
            write_summary(sweep_dir)
        signum = signals.requested()
        if signum is not None and signals.command_stopping():  # the job ran in the command's process
            raise signals.Interrupted(signum)  # no further job starts; the command reports

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        # A stopped sweep's pictures wait for gdrun-report: the user asked for the command to end.
        self._summarize(Path(config.hydra.sweep.dir), config.get("plots", True) and signals.requested() is None)

    @staticmethod
    def _summarize(sweep_dir: Path, plots: bool) -> None:
        try:
            summarize(sweep_dir, plots)
        except Exception:  # the jobs' own folders are complete; say so and go on
            log.warning("could not summarize the sweep in %s (each job's folder is complete)", sweep_dir, exc_info=True)


def where_jobs_run(launcher_target: str) -> signals.JobsRun:
    """Where a launcher runs a sweep's jobs, for a stop to reach them: in this process (Hydra's own and
    gdrun's), in child processes (joblib, submitit_local), or elsewhere (submitit's SLURM: a cluster).

    A launcher not known here is taken to run them on this machine: at worst, for one that runs
    them on other machines, the command waits for them until a second Ctrl-C.
    """
    try:
        launcher = get_class(launcher_target)
    except Exception:  # noqa: BLE001 - Hydra says what is wrong with it when it instantiates it
        return "children"
    if issubclass(launcher, BasicLauncher):
        return "here"
    executor = getattr(launcher, "_EXECUTOR", None)  # submitit's launchers: "local", "slurm"
    return "elsewhere" if executor not in (None, "local") else "children"


def report_stop(launch_ended: bool) -> bool:
    """After a stop: every job that started in summary.csv with its true status, and how to go on with each.

    `launch_ended`: the launcher returned, every job having stopped. Otherwise (it raised, or a
    second Ctrl-C) the jobs still stopping get a moment to save, the rest are killed, and a job
    that could not record how it ended is recorded as interrupted. False when no sweep was launched.
    """
    sweep_dir, signum = signals.launched_sweep(), signals.requested()
    if sweep_dir is None or signum is None:
        return False
    name = signal.Signals(signum).name
    if signals.jobs_out_of_reach():
        write_summary(sweep_dir)
        print(
            f"gdrun: stopped by {name}; the sweep's jobs run elsewhere and go on there. To stop them, cancel "
            f"them where they run (scancel on SLURM): a job sent SIGTERM saves a checkpoint and records "
            f"interrupted. {sweep_dir / SWEEP_SUMMARY} lists the jobs as they are now.",
            file=sys.stderr,
        )
        return True
    second, killed = signals.stopped_at_once(), []
    if not launch_ended:
        signals.end_job_processes()
        for folder in sweep_jobs(sweep_dir):
            if (RunFolder(folder).summary or {}).get("status", "running") == "running":
                how = "at once by a second Ctrl-C" if second else "before it could record how"
                record_failure(folder, "interrupted", f"stopped {how}; its last checkpoint, if any, is kept")
                killed.append(folder)
    write_summary(sweep_dir)
    jobs = read_jobs(sweep_dir)
    stopped = [job.run.path for job in jobs if job.run.status == "interrupted"]
    resumable = [folder for folder in stopped if RunPaths(folder).last_checkpoint.exists()]
    head = "stopped at once (second Ctrl-C)" if second else f"sweep stopped ({name})"
    if killed:
        head += f": {len(killed)} job(s) in flight were killed, each keeping its last checkpoint if it had one"
    elif resumable:
        head += " after its jobs in flight saved their checkpoints"
    elif stopped:
        head += " before its jobs in flight had begun training"
    else:
        head += " between jobs" if jobs else " before any job began"
    head += "; no other job starts"
    counts = ", ".join(f"{n} {status}" for status, n in Counter(job.run.status for job in jobs).items())
    lines = [head, f"{sweep_dir / SWEEP_SUMMARY} lists the jobs that started: {counts or 'none'}"]
    for folder in stopped:
        if folder in resumable:
            lines.append(f"go on with: gdrun resume={folder}")
        else:
            lines.append(f"{folder} holds no checkpoint: nothing was saved, nothing is left to resume")
    print("\n".join(f"gdrun: {line}" for line in lines), file=sys.stderr)
    return True
