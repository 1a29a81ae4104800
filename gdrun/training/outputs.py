"""Everything a run writes while it trains, behind one object: the loop calls it, never a file.

Metric files and other loggers, the live display, the parameter path and fit snapshots the
pictures need, checkpoints, and the best metric so far. The loop says what happened (the
start, an epoch's costs, an epoch's end, a stop) and `Outputs` decides what to write where.
"""

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import torch

from gdrun.rundir.files import truncate_csv
from gdrun.rundir.layout import RunPaths
from gdrun.rundir.loggers import Logger, make_loggers
from gdrun.training import checkpoints
from gdrun.training.best import Best
from gdrun.training.checkpoints import Checkpoints
from gdrun.training.display import make_display
from gdrun.training.parts import Parts
from gdrun.training.traces import Traces

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


@dataclass
class Settings:
    """The run's output settings, as the config gives them."""

    title: str
    config: Dict[str, Any]  # the resolved config, saved in every checkpoint
    loggers: Dict[str, Any]
    fit_every: Optional[int]
    checkpoint_every: int
    checkpoint_min_seconds: float


class Outputs:
    """The run folder being written: loggers, display, traces for the pictures, checkpoints, best metric."""

    def __init__(self, folder: Path, parts: Parts, settings: Settings, resume: bool):
        self.paths = RunPaths(folder)
        self.parts, self.config = parts, settings.config
        self.started = time.perf_counter()
        has_val = parts.data.val is not None
        self.best = Best(has_val=has_val, classification=parts.data.task != "regression")
        self.loggers: List[Logger] = make_loggers(folder, settings.loggers)
        fit_every = settings.fit_every or max(1, parts.epochs // FIT_SNAPSHOTS)
        self.traces = Traces(folder, parts.model, parts.data, fit_every, resume=resume)
        self.checkpoints = Checkpoints(self.paths, settings.checkpoint_every, settings.checkpoint_min_seconds)
        self.display = make_display(settings.title, parts.epochs, parts.steps_per_epoch)

    def __enter__(self) -> "Outputs":
        self.display.__enter__()
        return self

    def __exit__(self, *exc: Any) -> bool:
        return self.display.__exit__(*exc)

    @property
    def after_step(self) -> Optional[Callable[[], None]]:
        """What to call after each optimizer step (the parameter path), or None when nothing is traced."""
        return self.traces.after_step if self.traces.track_params else None

    # ------------------------------------------------------------ the loop's calls
    def start(self, row: Dict, progress: Progress) -> None:
        """Epoch 0: the initial model's metrics, the first point of the path and of the fit."""
        self.traces.start(0, 0)
        self._log_epoch(row)
        self.best.update(row)
        self.checkpoints.keep_best(self.snapshot(progress))

    def iterations(self, first_step: int, epoch: int, costs: List[float], lr: float, step: int) -> None:
        """The costs of the iterations just done (steps first_step, ...); `step` is the run's total now."""
        for logger in self.loggers:
            logger.log_iterations(first_step, epoch, costs, lr)
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
        """checkpoints/last.pt now; `shuffle_state` is the data order of the epoch to run next (default: now)."""
        self.checkpoints.save_last(self.snapshot(progress, shuffle_state))

    def maybe_save_last(self, progress: Progress) -> None:
        self.checkpoints.maybe_save_last(progress.epoch, lambda: self.snapshot(progress))

    def finish(self, status: str, progress: Progress, summary: Callable[[str, Progress, Best, float], Dict]) -> Dict:
        """The last checkpoints, model.pt, summary.json; returns the summary."""
        if status == "completed":
            self.save_last(progress)
        if status != "diverged":  # a diverged model is NaN: the last good checkpoint stays instead
            torch.save(self.parts.model.state_dict(), self.paths.model)
        self.checkpoints.save_best()
        self.traces.close()
        result = summary(status, progress, self.best, self.wall_seconds(progress))
        for logger in self.loggers:
            logger.log_summary(result)
            logger.close()
        return result

    # ------------------------------------------------------------ resuming
    def restore(self, saved: Dict, progress: Progress) -> None:
        """Put a checkpoint's states and progress back, and cut the files back to what it covers."""
        parts = self.parts
        checkpoints.load_states(saved, parts.model, parts.optimizer, parts.scheduler, parts.shuffle)
        state = saved["progress"]
        for key in ("epoch", "step", "epoch_step", "row", "bound", "wall_seconds"):
            setattr(progress, key, state[key])
        self.best.load(state["best"])
        self.cut_files_to(progress)

    def cut_files_to(self, progress: Progress) -> None:
        """Drop rows a killed run wrote after its last checkpoint, so resumed rows follow on exactly."""
        truncate_csv(self.paths.iterations, "step", progress.step)
        truncate_csv(self.paths.params, "step", progress.step)
        truncate_csv(self.paths.epochs, "epoch", progress.epoch)
        truncate_csv(self.paths.fit, "epoch", progress.epoch)

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
