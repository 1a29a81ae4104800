"""A sweep as a whole: its tables as each job ends, its pictures at the end, and what it says when it ends.

`SweepSummary` is a Hydra callback (conf/hydra/default.yaml lists it). As each job ends it puts
that job's row into summary.csv (rundir.sweep_summary: the job's folder alone is read, under a
lock, so a parallel launcher's workers can each add theirs), so the table is current even when
Hydra stops a sweep after a job raised. When the multirun ends it completes the table, writes
groups.csv for a sweep repeated over seeds, draws the sweep's pictures and says, last on the
console, how the sweep went: its jobs by status, the best job (or setting) by the headline metric,
and where its files are (`report_sweep`).

A sweep stopped by Ctrl-C or SIGTERM (training.signals) starts no new job; once its jobs in
flight have stopped, `report_stop` lists every job that started with its true status and says
how to go on with each.

Light at import (no torch, no matplotlib): Hydra imports this module on every `gdrun` start.
"""

import logging
import os
import signal
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from hydra._internal.core_plugins.basic_launcher import BasicLauncher
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from gdrun import finisher
from gdrun.config.metric_names import lower_is_better
from gdrun.config.targets import modules_named, trusting
from gdrun.finisher import Finisher
from gdrun.jobs import GDRUN_LAUNCHER, record_failure
from gdrun.plots import SWEEP_SHARES
from gdrun.rundir.layout import SWEEP_GROUPS, SWEEP_SUMMARY, RunPaths, sweep_jobs
from gdrun.rundir.reader import RunFolder
from gdrun.rundir.sweep_summary import (
    complete_summary,
    group_rows,
    number,
    read_jobs,
    read_summary,
    setting_keys,
    summary_keys,
    swept_keys,
    update_summary,
    write_groups,
    write_summary,
)
from gdrun.selection import choose, chosen_line, headline, write_best
from gdrun.training import signals

log = logging.getLogger(__name__)

# How many jobs (or settings) the console's table of the best shows.
BEST_SHOWN = 5
# The order statuses are counted in; any other comes after.
STATUSES = ("completed", "diverged", "pruned", "failed", "interrupted", "damaged", "running")
# Jobs each sweep planned, when its sweeper says so (Hydra's basic sweeper and gdrun's): for
# the jobs a stop left unstarted. Keyed by the sweep folder; the command's process only.
_planned: Dict[Path, int] = {}


def summarize(
    sweep_dir: Path,
    plots: bool,
    formats: Sequence[str] = ("png",),
    surface_range: Optional[Sequence[float]] = None,
    rebuild: bool = True,
    worker: Optional[Finisher] = None,
    trust: Sequence[str] = (),
) -> List[Path]:
    """summary.csv (every job folder read again; `rebuild=False`: only the jobs it lacks), groups.csv when
    the sweep repeats settings over seeds and, when `plots`, the sweep's pictures at its root (drawn by
    `worker` when given, trusting the targets in `trust`); returns the files written."""
    sweep_dir = Path(sweep_dir)
    jobs = read_jobs(sweep_dir) if plots or rebuild else None  # each job folder read once
    rows = write_summary(sweep_dir, jobs) if rebuild else complete_summary(sweep_dir)
    written = [sweep_dir / SWEEP_SUMMARY]
    if write_groups(sweep_dir, rows) is not None:
        written.append(sweep_dir / SWEEP_GROUPS)
    written += write_best(sweep_dir, rows)  # best.json, best_model.pt: the model chosen by validation
    if plots and jobs:  # read above whenever plots
        if worker is not None and worker.alive():  # two shares side by side (gdrun.finisher)
            for share in SWEEP_SHARES:
                worker.submit(DRAW_SHARE, str(sweep_dir), list(share), list(formats), surface_range, trust=trust)
            written += [Path(path) for paths in worker.wait() for path in paths or []]
        else:
            from gdrun.plots import draw_sweep  # matplotlib only when the sweep ends

            with trusting(trust):
                written += draw_sweep(sweep_dir, jobs, swept_keys(jobs), formats, surface_range)
    return written


# The finishing worker's task that draws a share of a sweep's pictures.
DRAW_SHARE = "gdrun.sweeps:draw_share"


def draw_share(
    sweep_dir: str, share: Sequence[str], formats: Sequence[str], surface_range: Optional[Sequence[float]]
) -> List[str]:
    """Some of a sweep's pictures (`share`: draw_sweep's names), from its job folders; the files written."""
    from gdrun.plots import draw_sweep

    folder = Path(sweep_dir)
    jobs = read_jobs(folder)
    return [str(path) for path in draw_sweep(folder, jobs, swept_keys(jobs), formats, surface_range, only=share)]


class SweepSummary(Callback):
    """Hydra callback: a job's row in summary.csv as it ends; the sweep's tables, pictures and account at the
    end; a stop's bookkeeping."""

    def __init__(self) -> None:
        self.failed = False
        self.worker: Optional[Finisher] = None  # draws the sweep's pictures, when its jobs run in this process
        self.trust: List[str] = []  # the targets the sweep's command line named, read back to draw

    # Hydra starts the run or the sweep: from here a first Ctrl-C or SIGTERM is a request (training.signals).
    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        signals.launched()

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir)).absolute()
        signals.launched(sweep_dir, where_jobs_run(config.hydra.launcher._target_))
        planned = planned_jobs(config)
        if planned is not None:
            _planned[sweep_dir] = planned
        self.trust = modules_named(OmegaConf.masked_copy(config, [str(k) for k in config if k != "hydra"]))
        target = config.hydra.launcher.get("_target_", "")
        if config.get("plots", True) and (target == GDRUN_LAUNCHER or where_jobs_run(target) == "here"):
            # The pictures' imports start now, on a core the jobs leave idle (finisher.spare_core says
            # whether there is one); a launcher's own processes would take it.
            self.worker = finisher.shared()

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
            folder = job_folder(config, sweep_dir)
            if folder is not None:
                update_summary(sweep_dir, folder)  # this job's folder alone
            else:
                write_summary(sweep_dir)
        signum = signals.requested()
        if signum is not None and signals.command_stopping():  # the job ran in the command's process
            raise signals.Interrupted(signum)  # no further job starts; the command reports

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        # A stopped sweep's pictures wait for gdrun-report (the user asked for the command to end), and
        # report_stop says how it ended.
        stopping = signals.requested() is not None
        plots = config.get("plots", True) and not stopping
        written = self._summarize(sweep_dir, plots, rebuild=False, worker=self.worker, trust=self.trust)
        if written and not stopping:
            try:
                report_sweep(sweep_dir, written, _planned.get(sweep_dir.absolute()))
            except Exception:  # noqa: BLE001 - the sweep's files are written; only its account is missing
                log.warning("could not give the sweep's account (see %s)", sweep_dir / SWEEP_SUMMARY, exc_info=True)

    @staticmethod
    def _summarize(
        sweep_dir: Path, plots: bool, rebuild: bool = True, worker: Optional[Finisher] = None, trust: Sequence[str] = ()
    ) -> List[Path]:
        try:
            return summarize(sweep_dir, plots, rebuild=rebuild, worker=worker, trust=trust)
        except Exception:  # the jobs' own folders are complete; say so and go on
            log.warning("could not summarize the sweep in %s (each job's folder is complete)", sweep_dir, exc_info=True)
            return []


def job_folder(config: DictConfig, sweep_dir: Path) -> Optional[Path]:
    """The folder of the job that just ended (hydra.runtime.output_dir), when it is a numbered job folder of
    the sweep; None otherwise (summary.csv is then made again from every job folder)."""
    output_dir = OmegaConf.select(config, "hydra.runtime.output_dir", default=None)
    if output_dir is None:
        return None
    folder = Path(os.path.abspath(str(output_dir)))
    return folder if folder.name.isdigit() and folder.parent == Path(os.path.abspath(sweep_dir)) else None


def planned_jobs(config: DictConfig) -> Optional[int]:
    """How many jobs the sweep will launch, for a sweeper that runs every combination of the values given
    (Hydra's basic sweeper and gdrun's); None for any other (a search decides as it goes)."""
    try:
        if not issubclass(get_class(config.hydra.sweeper._target_), BasicSweeper):
            return None
        params = config.hydra.sweeper.get("params") or {}
        arguments = [f"{key}={value}" for key, value in params.items()] + list(config.hydra.overrides.task)
        total = 1
        for override in OverridesParser.create().parse_overrides(arguments):
            if override.is_sweep_override():
                total *= len(list(override.sweep_string_iterator()))
        return total
    except Exception:  # noqa: BLE001 - only said on the console: without it, no count of jobs never started
        return None


def report_sweep(
    sweep_dir: Path, written: Sequence[Path], planned: Optional[int] = None, console: Optional[Any] = None
) -> None:
    """The sweep in a few lines, last on the console: its jobs by status, the best jobs (or settings, over
    seeds) by the headline metric, and its folder with the tables and pictures written there."""
    from rich.console import Console

    console = console or Console()
    console.rule("the sweep", style="dim")  # after the jobs' own tables
    rows = read_summary(sweep_dir)
    keys = summary_keys(rows)
    swept = " × ".join(keys) or "nothing"
    console.print(
        f"gdrun: sweep ended: {len(rows)} jobs sweeping {swept}: {status_counts(rows, planned)}",
        highlight=False,
        soft_wrap=True,
    )
    metric = headline(rows)
    if metric is None:
        console.print("no job completed: summary.csv's error column says why each stopped", highlight=False)
    else:
        heading, table, best = best_table(rows, keys, metric)
        console.print(heading, highlight=False, soft_wrap=True)
        console.print(table)
        console.print(best, highlight=False, soft_wrap=True)
    chosen = choose(rows)
    if chosen is not None:
        console.print(chosen_line(chosen), highlight=False, soft_wrap=True)
    tables = [p.name for p in written if p.suffix in (".csv", ".json", ".pt")]
    pictures = [p.name for p in written if p.suffix not in (".csv", ".json", ".pt")]
    console.print(f"sweep folder: {Path(sweep_dir).absolute()}", highlight=False, soft_wrap=True)
    console.print(
        f"  {', '.join(tables)}" + (f"; pictures: {', '.join(pictures)}" if pictures else ""),
        highlight=False,
        soft_wrap=True,
    )


def status_counts(rows: Sequence[Dict], planned: Optional[int] = None) -> str:
    """`12 completed, 4 diverged` (and `2 skipped (never started)` when the sweep planned more jobs)."""
    counts = Counter(str(row.get("status")) for row in rows)
    order = [s for s in STATUSES if s in counts] + [s for s in counts if s not in STATUSES]
    parts = [f"{counts[status]} {status}" for status in order]
    if planned is not None and planned > len(rows):
        parts.append(f"{planned - len(rows)} skipped (never started)")
    return ", ".join(parts) or "none"


def show(metric: str, value: Optional[float]) -> str:
    if value is None:
        return ""
    return f"{100 * value:.2f}%" if "accuracy" in metric else f"{value:.4g}"


def best_table(rows: Sequence[Dict], keys: Sequence[str], metric: str) -> "tuple[str, Any, str]":
    """The best jobs (a sweep over seeds: the best settings, by their mean over seeds) as a heading and a
    rich table, and a line naming the best one with its settings."""
    from rich.table import Table

    lower = lower_is_better(metric)
    way = "lowest" if lower else "highest"
    settings = setting_keys(keys)
    if len(settings) < len(keys):  # repeated over seeds (or folds): settings by their mean
        repeats = [key for key in keys if key not in settings]
        groups = [g for g in group_rows(rows, keys) if g.get("best_value_mean") is not None]
        groups.sort(key=lambda g: g["best_value_mean"] if lower else -g["best_value_mean"])
        over = " × ".join(repeats)
        heading = f"the best settings by their mean {metric} over {over} ({way} first):"
        if not settings:
            heading = f"one setting, repeated over {over}:"
        table = Table()
        for key in settings:
            table.add_column(key)
        table.add_column(f"{metric} mean", justify="right")
        table.add_column("± 95% CI", justify="right")
        table.add_column("completed", justify="right")
        for group in groups[:BEST_SHOWN]:
            table.add_row(
                *(str(group[key]) for key in settings),
                show(metric, group["best_value_mean"]),
                show(metric, group["best_value_ci95"]),
                f"{group['n']} of {group['jobs']}",
            )
        top = groups[0]
        where = ", ".join(f"{key}={top[key]}" for key in settings)
        ci = f" ± {show(metric, top['best_value_ci95'])} (95% CI)" if top["best_value_ci95"] is not None else ""
        best = f"best setting: {where}: " if where else ""
        best += f"mean {metric} {show(metric, top['best_value_mean'])}{ci}"
        best += f" over {top['n']} completed jobs of {top['jobs']}"
        return heading, table, best
    completed = [row for row in rows if row.get("status") == "completed" and number(row.get("best_value")) is not None]
    completed.sort(key=lambda row: float(row["best_value"]) if lower else -float(row["best_value"]))
    heading = f"the best jobs by {metric} ({way} first):"
    table = Table()
    table.add_column("job", justify="right")
    for key in keys:
        table.add_column(key)
    table.add_column(f"best {metric}", justify="right")
    table.add_column("at epoch", justify="right")
    for row in completed[:BEST_SHOWN]:
        cells = [str(row.get(key)) for key in keys]
        table.add_row(str(row["job"]), *cells, show(metric, row["best_value"]), str(row["best_epoch"]))
    top = completed[0]
    where = ", ".join(f"{key}={top.get(key)}" for key in keys)
    best = f"best: job {top['job']}" + (f" ({where})" if where else "")
    best += f": {metric} {show(metric, top['best_value'])} at epoch {top['best_epoch']}, folder {top['folder']}/"
    return heading, table, best


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
    write_groups(sweep_dir, write_summary(sweep_dir))
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
    planned = _planned.get(Path(sweep_dir).absolute())
    if counts and planned is not None and planned > len(jobs):
        counts += f"; {planned - len(jobs)} never started"
    lines = [head, f"{sweep_dir / SWEEP_SUMMARY} lists the jobs that started: {counts or 'none'}"]
    for folder in stopped:
        if folder in resumable:
            lines.append(f"go on with: gdrun resume={folder}")
        else:
            lines.append(f"{folder} holds no checkpoint: nothing was saved, nothing is left to resume")
    print("\n".join(f"gdrun: {line}" for line in lines), file=sys.stderr)
    return True
