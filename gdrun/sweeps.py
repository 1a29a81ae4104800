"""A sweep as a whole: its summary.csv after every job and its pictures at the end.

`SweepSummary` is a Hydra callback (conf/hydra/default.yaml lists it). It rewrites
summary.csv as each job ends, so the table is current even when Hydra stops a sweep after a
job raised, and draws the sweep's pictures when the multirun ends.

Light at import (no torch, no matplotlib): Hydra imports this module on every `gdrun` start.
"""

import logging
from pathlib import Path
from typing import Any, List, Optional, Sequence

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from gdrun.rundir.layout import SWEEP_SUMMARY
from gdrun.rundir.sweep_summary import read_jobs, swept_keys, write_summary

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
    """Hydra callback: the sweep's summary.csv after every job, its pictures at the end."""

    def __init__(self) -> None:
        self.failed = False

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

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._summarize(Path(config.hydra.sweep.dir), config.get("plots", True))

    @staticmethod
    def _summarize(sweep_dir: Path, plots: bool) -> None:
        try:
            summarize(sweep_dir, plots)
        except Exception:  # the jobs' own folders are complete; say so and go on
            log.warning("could not summarize the sweep in %s (each job's folder is complete)", sweep_dir, exc_info=True)
