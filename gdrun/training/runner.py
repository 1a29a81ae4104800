"""train(cfg, folder): one experiment from composed config to run folder, top to bottom.

build the parts -> evaluate epoch 0 -> for each epoch: train, evaluate, log, checkpoint ->
final model and summary. Everything written goes through `Outputs`; the loop only trains.

A run ends `completed`, `diverged` (a cost went NaN, infinite or past the bound: the files up
to that step are kept), or `interrupted` (Ctrl-C or SIGTERM: the step in flight finishes and
checkpoints/last.pt is written, mid-epoch if need be, so `gdrun resume=FOLDER` goes on exactly).
"""

import itertools
import math
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Union

import torch
from omegaconf import DictConfig, OmegaConf

from gdrun.config.schema import what_ran
from gdrun.config.splits import held_out_name
from gdrun.rundir.environment import environment
from gdrun.rundir.files import write_json
from gdrun.rundir.layout import RunPaths
from gdrun.training import checkpoints, display
from gdrun.training.best import Best
from gdrun.training.build import describe_device
from gdrun.training.controls import EarlyStop, step_controls
from gdrun.training.data import tensor_batches
from gdrun.training.epoch import evaluate_set, train_epoch
from gdrun.training.finishing import after_training
from gdrun.training.outputs import Outputs, Progress, Settings
from gdrun.training.parts import Parts, build
from gdrun.training.pruning import Prune, trial_pruner
from gdrun.training.signals import StopRequest


@dataclass
class Resume:
    """A run about to go on: its checkpoint, and its parts built with the checkpoint's states in them."""

    saved: Dict[str, Any]
    parts: Parts
    progress: Progress


def prepare_resume(cfg: DictConfig, saved: Dict[str, Any], path: Path) -> Resume:
    """Build the run's parts and put the checkpoint (at `path`) into them, writing nothing.

    GdrunError when the checkpoint is not the folder's own (its fingerprint: the settings and the
    data that produced it) or does not fit the model and optimizer the config builds.
    """
    parts = build(cfg)
    checkpoints.check_belongs(saved, resolved(cfg), parts.data, path)
    checkpoints.load_states(saved, parts.model, parts.optimizer, parts.scheduler, parts.shuffle)
    state = saved["progress"]
    progress = Progress(**{key: state[key] for key in ("epoch", "step", "epoch_step", "row", "bound", "wall_seconds")})
    # Early stopping's counter (checkpoints of runs before it have none).
    progress.early_stop, progress.stopped_early_at = state.get("early_stop"), state.get("stopped_early_at")
    return Resume(saved, parts, progress)


def train(cfg: DictConfig, folder: Path, resume: Optional[Resume] = None) -> Dict:
    """Train the experiment `cfg` describes into `folder` (or go on from `resume`); return its summary."""
    if resume is None:
        display.status(f"reading the data ({cfg.data.name})...")
    parts = resume.parts if resume else build(cfg)
    progress = resume.progress if resume else Progress()
    first = None if resume else epoch_row(parts, epoch=0, seconds=0.0)
    if first is not None and parts.early_stop is not None:
        parts.early_stop.check(first)  # before the folder is made: a metric the run lacks leaves no run behind
    folder.mkdir(parents=True, exist_ok=True)
    # Until the run ends, listings and sweep summaries see it as running, not as failed.
    write_json(RunPaths(folder).summary, {"status": "running", "started": datetime.now().isoformat()})
    outputs = Outputs(folder, parts, output_settings(cfg), resume.saved["progress"] if resume else None)
    prune = trial_pruner(cfg.get("search"), outputs.best.headline)  # None unless a trial of a pruning search
    with StopRequest() as stop, outputs:
        if first is not None:
            begin(first, progress, outputs, cfg.diverge_factor)
        status = epoch_loop(parts, progress, outputs, stop, prune)
        progress.stopped_by = stop.name  # read here: a signal may land after the loop's last look

    ending = end_of_run(status, parts, outputs)

    def summary(status: str, progress: Progress, best: Best, wall: float) -> Dict:
        return {**make_summary(status, progress, best, wall, parts, cfg), **ending}

    return outputs.finish(status, progress, summary)


def end_of_run(status: str, parts: Parts, outputs: Outputs) -> Dict:
    """The test set evaluated once and classes.csv (training.finishing); summary.json's additions."""
    headline = outputs.best.by_metric.get(outputs.best.headline) or {}
    return after_training(status, parts, outputs.paths, outputs.checkpoints.best, headline.get("epoch"))


def resolved(cfg: DictConfig) -> Dict[str, Any]:
    """The config as plain values, interpolations resolved (what checkpoints keep)."""
    config = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(config, dict)
    return {str(k): v for k, v in config.items()}


def output_settings(cfg: DictConfig) -> Settings:
    """What the run's outputs need from its config."""
    return Settings(
        title=title(cfg),
        config=resolved(cfg),
        loggers=cfg.loggers,
        fit_every=cfg.fit_every,
        checkpoint_every=cfg.checkpoint_every,
        checkpoint_min_seconds=cfg.checkpoint_min_seconds,
        select_metric=OmegaConf.select(cfg, "select.metric", default=None),
    )


def start(parts: Parts, progress: Progress, outputs: Outputs, diverge_factor: Optional[float]) -> None:
    """Epoch 0: the initial model on the whole data; the divergence bound from its cost."""
    begin(epoch_row(parts, epoch=0, seconds=0.0), progress, outputs, diverge_factor)


def begin(row: Dict, progress: Progress, outputs: Outputs, diverge_factor: Optional[float]) -> None:
    """Epoch 0 from its row (the initial model's metrics): the divergence bound from its cost, its files."""
    progress.row = row
    progress.bound = math.inf if diverge_factor is None else diverge_factor * max(row["train_loss"], 1e-12)
    outputs.start(row, progress)


def epoch_loop(
    parts: Parts, progress: Progress, outputs: Outputs, stop: StopRequest, prune: Optional[Prune] = None
) -> str:
    """The epochs, from wherever `progress` says; returns how the run ended (`pruned`: `prune` said so)."""
    # On the CPU a cost costs nothing to read, so divergence is caught at the very step;
    # on a GPU that would synchronise every step, so it is checked once per epoch instead.
    bound = progress.bound if parts.device.type == "cpu" else None
    if progress.stopped_early_at is not None:  # stopped early, killed before its summary: it is complete
        return "completed"
    every_step = parts.scheduler if parts.step_schedule else None  # a schedule stepped after each update
    controls = step_controls(parts.optimizer, parts.clip_grad_norm, parts.clip_grad_value, every_step)
    for epoch in range(progress.epoch + 1, parts.epochs + 1):
        epoch_start = parts.shuffle.get_state() if parts.shuffle is not None else None
        lr = current_lr(parts.optimizer)
        tick = time.perf_counter()
        batches = tensor_batches(parts.data.x, parts.data.y, parts.batch_size, parts.shuffle)
        batches = itertools.islice(batches, progress.epoch_step, None)  # skip what a stopped run did
        costs = train_epoch(
            parts.net,
            parts.loss_fn,
            parts.optimizer,
            batches,
            outputs.after_step,
            lambda: stop.requested,
            bound,
            parts.precision,
            controls,
        )
        seconds = time.perf_counter() - tick
        first_step = progress.step + 1
        rates, norms = controls.take(len(costs), lr) if controls is not None else (lr, None)
        ended = record_steps(parts, progress, outputs, epoch, first_step, costs, rates, epoch_start, norms)
        if ended is not None:
            return ended
        row = epoch_row(parts, epoch, seconds, lr)
        ended = close_epoch(parts, progress, outputs, first_step, row, lambda: stop.requested)
        if ended is not None:
            return ended
        if prune is not None and prune(row) and epoch < parts.epochs:
            return "pruned"
    return "completed"


def record_steps(
    parts: Parts,
    progress: Progress,
    outputs: Outputs,
    epoch: int,
    first_step: int,
    costs: List[float],
    lr: Union[float, List[float]],
    epoch_start: Optional[torch.Tensor],
    norms: Optional[List[Optional[float]]] = None,
) -> Optional[str]:
    """The costs of an epoch's steps (first_step, ...) into the files; how the run ended if the epoch ended it.

    `lr`: the epoch's rate, or each step's (a per-iteration schedule); `norms`: each step's gradient
    norm before clipping (optim.clip_grad_norm), else None.

    `diverged` at the first bad cost; `interrupted` when a stop cut the epoch short (last.pt then
    keeps `epoch_start`, the data order of the epoch, which a resumed run replays); else None.
    """
    progress.step += len(costs)
    progress.epoch_step += len(costs)
    outputs.iterations(first_step, epoch, costs, lr, progress.step, norms)

    bad = first_bad(costs, progress.bound)
    if bad is not None:
        outputs.cut_epoch(first_step, epoch)
        progress.diverged_at, progress.diverged_cost = first_step + bad, costs[bad]
        return "diverged"
    if progress.epoch_step < parts.steps_per_epoch:  # stopped mid-epoch by a signal
        outputs.cut_epoch(first_step, epoch)
        outputs.save_last(progress, shuffle_state=epoch_start)
        return "interrupted"
    return None


def close_epoch(
    parts: Parts, progress: Progress, outputs: Outputs, first_step: int, row: Dict, stopping: Callable[[], bool]
) -> Optional[str]:
    """A whole epoch done (its epochs.csv `row`): the schedule's step, its files, last.pt when due;
    `completed` when early stopping says so, `interrupted` when `stopping()` (a stop has come: last.pt
    is then written), else None."""
    stop_early = stops_early(parts.early_stop, progress, row)
    progress.epoch, progress.epoch_step = row["epoch"], 0
    progress.row = row
    if not parts.step_schedule:
        step_scheduler(parts.scheduler, row)
    outputs.end_epoch(first_step, row, progress)
    if stop_early:
        return "completed"
    if stopping():
        outputs.save_last(progress)
        return "interrupted"
    outputs.maybe_save_last(progress)
    return None


def stops_early(early_stop: Optional[EarlyStop], progress: Progress, row: Dict) -> bool:
    """Early stopping's counter moved on by epoch `row` (called while progress.row is still the epoch
    before: epoch 0's is the first best); True, with progress.stopped_early_at set, when the run stops."""
    if early_stop is None:
        return False
    assert progress.row is not None  # epoch 0's row at least
    progress.early_stop = early_stop.observe(progress.early_stop, progress.row, row)
    if not early_stop.due(progress.early_stop):
        return False
    progress.stopped_early_at = row["epoch"]
    return True


def first_bad(costs: List[float], bound: float) -> Optional[int]:
    """Index of the first cost that is NaN, infinite or not below the bound."""
    return next((i for i, cost in enumerate(costs) if not cost < bound), None)


def current_lr(optimizer: torch.optim.Optimizer) -> float:
    return float(optimizer.param_groups[0]["lr"])


def epoch_row(parts: Parts, epoch: int, seconds: float, lr: Optional[float] = None) -> Dict:
    """One epochs.csv row: the model on the whole training set and the validation set."""
    data = parts.data
    train_metrics = evaluate_set(parts.net, parts.loss_fn, data.x, data.y, data.task, parts.threshold)
    val = None
    if data.val is not None:
        val = evaluate_set(parts.net, parts.loss_fn, data.val.x, data.val.y, data.task, parts.threshold)
    return make_row(epoch, train_metrics, val, current_lr(parts.optimizer) if lr is None else lr, seconds)


def make_row(epoch: int, train: Dict[str, Any], val: Optional[Dict[str, Any]], lr: float, seconds: float) -> Dict:
    """One epochs.csv row from evaluate_set's metrics of the training set and of the validation set (None: none).

    The task's metrics (train_f1, val_f1, train_rmse, ...) come after val_accuracy, lr and seconds last."""
    extra = [name for name in train if name not in ("loss", "accuracy")]
    return {
        "epoch": epoch,
        "train_loss": train["loss"],
        "train_accuracy": train.get("accuracy"),
        "val_loss": val["loss"] if val is not None else None,
        "val_accuracy": val.get("accuracy") if val is not None else None,
        **{f"train_{name}": train[name] for name in extra},
        **{f"val_{name}": val.get(name) if val is not None else None for name in extra},
        "lr": lr,
        "seconds": seconds,
    }


def step_scheduler(scheduler: Optional[object], row: Dict) -> None:
    """Once per epoch; ReduceLROnPlateau watches the validation loss (training loss without one)."""
    if scheduler is None:
        return
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        scheduler.step(row["val_loss"] if row["val_loss"] is not None else row["train_loss"])
    else:
        scheduler.step()  # type: ignore[attr-defined]


def title(cfg: DictConfig) -> str:
    """The run in one line: data, model, optimizer, learning rate, batch size."""
    return display.run_title(cfg)


def make_summary(
    status: str, progress: Progress, best: Best, wall_seconds: float, parts: Parts, cfg: DictConfig
) -> Dict:
    """summary.json: how the run ended, its last and best metrics, what it was and how its model is built."""
    final = {k: v for k, v in (progress.row or {}).items() if k not in ("epoch", "seconds")}
    headline = best.by_metric.get(best.headline)
    summary = {
        "status": status,
        "epochs": progress.epoch,
        "steps": progress.step,
        "final": final,
        "best": {"metric": best.headline, **(headline or {"value": None, "epoch": None})},
        "best_by_metric": best.by_metric,
        "wall_seconds": wall_seconds,
        "device": str(parts.device),
        "environment": environment(describe_device(parts.device)),
        "num_params": sum(p.numel() for p in parts.model.parameters()),
        "run": {**what_ran(cfg), "epochs": parts.epochs},
        "val_set": held_out_name(cfg),  # "test" when the held-out set is the dataset's official test split
        "model_args": parts.model_args,
    }
    if status == "diverged":
        summary["diverged_at_step"] = progress.diverged_at
        summary["diverged_cost"] = progress.diverged_cost
    if status == "interrupted":
        summary["stopped_by"] = progress.stopped_by
    if progress.stopped_early_at is not None and parts.early_stop is not None and progress.early_stop is not None:
        summary["stopped_early_at"] = progress.stopped_early_at
        summary["early_stop"] = parts.early_stop.summary(progress.early_stop, progress.stopped_early_at)
    return summary
