"""Everything a run writes while it trains, behind one object: the loop calls it, never a file.

Metric files and other loggers, the live display, the parameter path and fit snapshots the
pictures need, checkpoints, and the best metric so far. The loop says what happened (the
start, an epoch's costs, an epoch's end, a stop) and `Outputs` decides what to write where.
"""

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Union

import torch

from gdrun.config.splits import held_out_name
from gdrun.rundir.layout import RunPaths
from gdrun.rundir.loggers import Logger, make_loggers
from gdrun.training import checkpoints, metrics
from gdrun.training.best import Best
from gdrun.training.checkpoints import Checkpoints
from gdrun.training.display import NoDisplay, make_display
from gdrun.training.parts import Parts
from gdrun.training.traces import Done, Traces

# About this many fit snapshots per run when fit_every is not set.
FIT_SNAPSHOTS = 5


@dataclass
class Progress:
    """Where a run is; saved in every checkpoint, so a resumed run continues from exactly here."""

    epoch: int = 0  # epochs completed
    step: int = 0  # iterations completed
    epoch_step: int = 0  # iterations completed in the epoch after `epoch` (when stopped mid-epoch)
    row: Optional[Dict] = None  # the last epochs.csv row
    bound: float = math.inf  # a cost at or above this means divergence
    wall_seconds: float = 0.0  # spent in earlier sessions of this run
    diverged_at: Optional[int] = None  # the step whose cost diverged
    diverged_cost: Optional[float] = None
    stopped_by: Optional[str] = None  # the signal that interrupted the run
    early_stop: Optional[Dict] = None  # early stopping's best and patience counter (controls.EarlyStop)
    stopped_early_at: Optional[int] = None  # the epoch after which early stopping ended the run


@dataclass
class Settings:
    """The run's output settings, as the config gives them."""

    title: str
    config: Dict[str, Any]  # the resolved config, saved in every checkpoint
    loggers: Dict[str, Any]
    fit_every: Optional[int]
    checkpoint_every: int
    checkpoint_min_seconds: float
    # False: no display of its own (jobs trained together show one display for the group).
    display: bool = True
    # select.metric: the headline metric best.pt follows (None: the task's usual one).
    select_metric: Optional[str] = None


class Outputs:
    """The run folder being written: loggers, display, traces for the pictures, checkpoints, best metric."""

    def __init__(self, folder: Path, parts: Parts, settings: Settings, resumed: Optional[Dict] = None):
        """Open the folder's files for a fresh run, or (`resumed`: the checkpoint's progress) for a run
        that goes on: every file is first cut back to what the checkpoint covers."""
        self.paths = RunPaths(folder)
        self.parts, self.config = parts, settings.config
        self.fingerprint = checkpoints.fingerprint(settings.config, parts.data)
        self.started = time.perf_counter()
        has_val = parts.data.val is not None
        headline = metrics.headline(parts.data.task, has_val, settings.select_metric)
        self.best = Best(has_val=has_val, classification=parts.data.task != "regression", headline=headline)
        done = Done(resumed["step"], resumed["epoch"]) if resumed else Done()
        if resumed:
            self.best.load(resumed["best"])
        grad_norm = parts.clip_grad_norm is not None  # iterations.csv gains the column
        columns = metrics.epoch_columns(parts.data.task)
        self.loggers: List[Logger] = make_loggers(
            folder, settings.loggers, done.step, done.epoch, grad_norm=grad_norm, metrics=columns
        )
        if not resumed:
            for logger in self.loggers:
                logger.log_config(settings.config)
        fit_every = settings.fit_every or max(1, parts.epochs // FIT_SNAPSHOTS)
        self.traces = Traces(folder, parts.model, parts.data, fit_every, done)
        self.checkpoints = Checkpoints(self.paths, settings.checkpoint_every, settings.checkpoint_min_seconds)
        self.display = (
            make_display(settings.title, parts.epochs, parts.steps_per_epoch, held_out=held_out_name(settings.config))
            if settings.display
            else NoDisplay()
        )

    def __enter__(self) -> "Outputs":
        self.display.__enter__()
        return self

    def __exit__(self, *exc: Any) -> bool:
        if exc[0] is not None:  # the run failed: no summary comes, and each logger closes as it can
            for logger in self.loggers:
                logger.close()
        return self.display.__exit__(*exc)

    @property
    def after_step(self) -> Optional[Callable[[], None]]:
        """What to call after each optimizer step (the parameter path), or None when nothing is traced."""
        return self.traces.after_step if self.traces.track_params else None

    def trace_params(self, values: List[float]) -> None:
        """The parameters after a step, as `after_step` would read them, from a caller that holds them
        already (the vectorised engine reads every job's in one copy)."""
        self.traces.path.append(values)

    # ------------------------------------------------------------ the loop's calls
    def start(self, row: Dict, progress: Progress) -> None:
        """Epoch 0: the initial model's metrics, the first point of the path and of the fit."""
        self.traces.start(0, 0)
        self._log_epoch(row)
        self.best.update(row)
        self.checkpoints.keep_best(self.snapshot(progress))

    def iterations(
        self,
        first_step: int,
        epoch: int,
        costs: List[float],
        lr: Union[float, List[float]],
        step: int,
        norms: Optional[List[Optional[float]]] = None,
    ) -> None:
        """The costs of the iterations just done (steps first_step, ...); `step` is the run's total now.
        `lr`: one rate, or each step's; `norms`: each step's gradient norm before clipping, or None."""
        extra = {"grad_norms": norms} if norms is not None else {}  # loggers of one's own may not take it
        for logger in self.loggers:
            logger.log_iterations(first_step, epoch, costs, lr, **extra)
        self.display.steps(step, costs[-1] if costs else None)

    def cut_epoch(self, first_step: int, epoch: int) -> None:
        """An epoch ended early (divergence or a stop): keep its path, no fit snapshot."""
        self.traces.end_epoch(first_step, epoch, last=False, partial=True)

    def end_epoch(self, first_step: int, row: Dict, progress: Progress) -> None:
        """A whole epoch done: its path and fit, its metrics, and best.pt's copy when the headline improved."""
        epoch = row["epoch"]
        self.traces.end_epoch(first_step, epoch, last=epoch == self.parts.epochs)
        self._log_epoch(row)
        if self.best.update(row):
            self.checkpoints.keep_best(self.snapshot(progress))

    def save_last(self, progress: Progress, shuffle_state: Optional[torch.Tensor] = None) -> None:
        """checkpoints/last.pt now; `shuffle_state` is the data order of the epoch to run next (default: now).

        The rows it counts are forced onto the disk first: a checkpoint never gets ahead of the files.
        """
        self.traces.sync()
        for logger in self.loggers:
            logger.sync()
        self.checkpoints.save_last(self.snapshot(progress, shuffle_state))

    def maybe_save_last(self, progress: Progress) -> None:
        if self.checkpoints.due(progress.epoch):
            self.save_last(progress)

    def finish(self, status: str, progress: Progress, summary: Callable[[str, Progress, Best, float], Dict]) -> Dict:
        """The last checkpoints, model.pt, the files closed whole, then summary.json; returns the summary.

        summary.json comes last: a run says `completed` only once every other file is whole, and a
        kill before that leaves a run that resume= finishes.
        """
        if status == "completed":
            self.save_last(progress)
        if status != "diverged":  # a diverged model is NaN: the last good checkpoint stays instead
            checkpoints.atomic_save(self.parts.model.state_dict(), self.paths.model)
        self.checkpoints.save_best()
        self.traces.close()
        result = summary(status, progress, self.best, self.wall_seconds(progress))
        for logger in self.loggers:
            logger.log_summary(result)
            logger.close()
        return result

    # ------------------------------------------------------------ helpers
    def wall_seconds(self, progress: Progress) -> float:
        return progress.wall_seconds + time.perf_counter() - self.started

    def snapshot(self, progress: Progress, shuffle_state: Optional[torch.Tensor] = None) -> Dict:
        """A checkpoint of now; `shuffle_state` is the generator at the start of the epoch to run next."""
        parts = self.parts
        if shuffle_state is None and parts.shuffle is not None:
            shuffle_state = parts.shuffle.get_state()
        state = {**vars(progress), "wall_seconds": self.wall_seconds(progress), "best": self.best.state()}
        return checkpoints.payload(
            fingerprint=self.fingerprint,
            model=parts.model,
            optimizer=parts.optimizer,
            scheduler=parts.scheduler,
            progress=state,
            shuffle_state=shuffle_state,
            config=self.config,
            model_args=parts.model_args,
        )

    def _log_epoch(self, row: Dict) -> None:
        for logger in self.loggers:
            logger.log_epoch(row)
        self.display.epoch(row["epoch"], row)
