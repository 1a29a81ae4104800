"""run(cfg, folder): one experiment from composed config to run folder, top to bottom.

build the parts (seed, device, data, model, loss, optimizer, schedule) -> evaluate epoch 0 ->
for each epoch: train, evaluate, log, checkpoint -> final model and summary. Logging, the
pictures' records, checkpoints and the display are calls out of the loop, never code in it.

A run ends `completed`, `diverged` (a cost went NaN, infinite or past the bound: the files up
to that step are kept), or `interrupted` (Ctrl-C or SIGTERM: the step in flight finishes and
checkpoints/last.pt is written, mid-epoch if need be, so `gdrun resume=FOLDER` goes on exactly).
"""

import itertools
import logging
import math
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Dict, List, Optional

import torch
from omegaconf import DictConfig, OmegaConf

from gdrun import checkpoint
from gdrun.build import (build_data, build_loss, build_model, build_optimizer, build_scheduler,
                         check_compatible, resolve_device)
from gdrun.checkpoint import Checkpoints
from gdrun.data import Dataset, resolve_batch_size, steps_per_epoch, tensor_batches
from gdrun.display import final_table, make_display
from gdrun.errors import GdrunError
from gdrun.metrics import Best, make_loggers, truncate_csv, write_json
from gdrun.record import Recorder
from gdrun.signals import StopRequest
from gdrun.train import evaluate, train_epoch

log = logging.getLogger(__name__)

# About this many fit snapshots per run when fit_every is not set.
FIT_SNAPSHOTS = 5


@dataclass
class Parts:
    """Everything a run trains with, built from its config."""

    device: torch.device
    data: Dataset
    model: torch.nn.Module  # the module whose state is saved
    net: torch.nn.Module  # the module that runs: the model, or torch.compile's wrapper of it
    loss_fn: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Optional[object]
    epochs: int
    batch_size: int
    shuffle: Optional[torch.Generator]
    threshold: float  # a binary output is class 1 above this: 0.5 for probabilities, 0 for logits
    precision: Optional[torch.dtype]  # bfloat16 under autocast (amp=true), else None


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


def build(cfg: DictConfig) -> Parts:
    """Seed, then the parts in a fixed order (model initialisation draws from the seeded RNG)."""
    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg.device)
    data = build_data(cfg.data, cfg.seed, device)
    batch_size = resolve_batch_size(cfg.optim.batch_size, len(data))
    set_threads(cfg.threads, device, batch_size * data.x[0].numel())
    check_compatible(data, cfg.data.name, cfg.model, cfg.loss)
    model = build_model(cfg.model, data, cfg.loss.output).to(device)
    optimizer = build_optimizer(cfg.optim, model)
    epochs = int(cfg.optim.epochs)
    return Parts(
        device=device, data=data, model=model, net=compiled(model, cfg), loss_fn=build_loss(cfg.loss),
        optimizer=optimizer,
        scheduler=build_scheduler(cfg.sched, optimizer, epochs), epochs=epochs,
        batch_size=batch_size,
        shuffle=torch.Generator().manual_seed(cfg.seed) if cfg.data.shuffle else None,
        threshold=0.5 if cfg.loss.output == "sigmoid" else 0.0,
        precision=mixed_precision(cfg.amp, device))


# Below this many input numbers per batch torch's threads cost more than they save: each
# operation is a few microseconds, and threads waiting for a busy core make it milliseconds.
SMALL_BATCH = 32_768


def set_threads(threads: Optional[int], device: torch.device, batch_numbers: int) -> None:
    """torch's CPU threads: as configured, or (null) one for small batches and torch's default otherwise."""
    if threads:
        torch.set_num_threads(threads)
    elif device.type == "cpu" and batch_numbers < SMALL_BATCH:
        torch.set_num_threads(1)


def compiled(model: torch.nn.Module, cfg: DictConfig) -> torch.nn.Module:
    """torch.compile's wrapper of the model when compile=true (it shares the model's parameters)."""
    return torch.compile(model, backend=cfg.compile_backend) if cfg.compile else model


def mixed_precision(amp: bool, device: torch.device) -> Optional[torch.dtype]:
    """bfloat16 for amp=true: it needs no gradient scaling, unlike float16."""
    if not amp:
        return None
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise GdrunError(f"amp=true uses bfloat16, which {torch.cuda.get_device_name(device)} lacks; "
                         f"run without amp (amp=false).")
    return torch.bfloat16


def run(cfg: DictConfig, folder: Path, resume_from: Optional[Dict] = None) -> Dict:
    """Train the experiment `cfg` describes into `folder` (or go on from a checkpoint); return its summary."""
    started = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    # Until the run ends, listings and sweep summaries see it as running, not as failed.
    write_json(folder / "summary.json", {"status": "running", "started": datetime.now().isoformat()})
    parts = build(cfg)
    best = Best(has_val=parts.data.val is not None, classification=parts.data.task != "regression")
    progress = Progress()
    if resume_from is not None:
        restore(parts, progress, best, resume_from)
        cut_files_to(folder, progress)

    config = OmegaConf.to_container(cfg, resolve=True)
    loggers = make_loggers(folder, cfg.loggers)
    fit_every = cfg.fit_every or max(1, parts.epochs // FIT_SNAPSHOTS)
    recorder = Recorder(folder, parts.model, parts.data, fit_every, resume=resume_from is not None)
    checkpoints = Checkpoints(folder / "checkpoints", cfg.checkpoint_every, cfg.checkpoint_min_seconds)

    def snapshot(shuffle_state: Optional[torch.Tensor]) -> Dict:
        """A checkpoint of now; `shuffle_state` is the generator at the start of the epoch to run next."""
        wall = progress.wall_seconds + time.perf_counter() - started
        return checkpoint.payload(model=parts.model, optimizer=parts.optimizer, scheduler=parts.scheduler,
                                  progress={**vars(progress), "wall_seconds": wall, "best": best.state()},
                                  shuffle_state=shuffle_state, config=config)

    per_epoch = steps_per_epoch(len(parts.data), parts.batch_size)
    with StopRequest() as stop, make_display(title(cfg), parts.epochs, per_epoch) as display:
        if resume_from is None:
            start(parts, progress, best, cfg.diverge_factor, loggers, recorder, display)
            checkpoints.keep_best(snapshot(_state(parts.shuffle)))
        status = fit(parts, progress, best, loggers, recorder, checkpoints, display, stop, snapshot)
        progress.stopped_by = stop.name  # read here: a signal may land after fit's last look

    if status == "completed":
        checkpoints.save_last(snapshot(_state(parts.shuffle)))
    if status != "diverged":  # a diverged model is NaN: the last good checkpoint stays instead
        torch.save(parts.model.state_dict(), folder / "model.pt")
    checkpoints.save_best()
    recorder.close()
    wall = progress.wall_seconds + time.perf_counter() - started
    summary = make_summary(status, progress, best, wall, parts, cfg)
    for logger in loggers:
        logger.log_summary(summary)
        logger.close()
    if cfg.plots:
        draw_pictures(folder)
    final_table(summary, folder)
    return summary


def start(parts: Parts, progress: Progress, best: Best, diverge_factor: Optional[float], loggers, recorder,
          display) -> None:
    """Epoch 0: the initial model on the whole data, the first point of the path and fit."""
    row = epoch_row(parts, epoch=0, seconds=0.0)
    progress.row = row
    progress.bound = math.inf if diverge_factor is None else diverge_factor * max(row["train_loss"], 1e-12)
    recorder.start(0, 0)
    log_epoch(row, loggers, display)
    best.update(row)


def fit(parts: Parts, progress: Progress, best: Best, loggers, recorder, checkpoints, display, stop,
        snapshot) -> str:
    """The epoch loop, from wherever `progress` says; returns how it ended."""
    per_epoch = steps_per_epoch(len(parts.data), parts.batch_size)
    # On the CPU a cost costs nothing to read, so divergence is caught at the very step;
    # on a GPU that would synchronise every step, so it is checked once per epoch instead.
    bound = progress.bound if parts.device.type == "cpu" else None
    for epoch in range(progress.epoch + 1, parts.epochs + 1):
        epoch_start = _state(parts.shuffle)
        lr = current_lr(parts.optimizer)
        tick = time.perf_counter()
        batches = tensor_batches(parts.data.x, parts.data.y, parts.batch_size, parts.shuffle)
        batches = itertools.islice(batches, progress.epoch_step, None)  # skip what a stopped run did
        after_step = recorder.after_step if recorder.track_params else None
        costs = train_epoch(parts.net, parts.loss_fn, parts.optimizer, batches, after_step,
                            lambda: stop.requested, bound, parts.precision)
        seconds = time.perf_counter() - tick
        first_step = progress.step + 1
        for logger in loggers:
            logger.log_iterations(first_step, epoch, costs, lr)
        progress.step += len(costs)
        progress.epoch_step += len(costs)
        display.steps(progress.step, costs[-1])

        bad = first_bad(costs, progress.bound)
        if bad is not None:
            recorder.end_epoch(first_step, epoch, last=False, partial=True)
            progress.diverged_at = first_step + bad
            progress.diverged_cost = costs[bad]
            return "diverged"
        if progress.epoch_step < per_epoch:  # stopped mid-epoch by a signal
            recorder.end_epoch(first_step, epoch, last=False, partial=True)
            checkpoints.save_last(snapshot(epoch_start))
            return "interrupted"

        progress.epoch, progress.epoch_step = epoch, 0
        recorder.end_epoch(first_step, epoch, last=epoch == parts.epochs)
        row = epoch_row(parts, epoch, seconds, lr)
        progress.row = row
        step_scheduler(parts.scheduler, row)
        log_epoch(row, loggers, display)
        if best.update(row):
            checkpoints.keep_best(snapshot(_state(parts.shuffle)))
        if stop.requested:
            checkpoints.save_last(snapshot(_state(parts.shuffle)))
            return "interrupted"
        checkpoints.maybe_save_last(epoch, lambda: snapshot(_state(parts.shuffle)))
    return "completed"


def restore(parts: Parts, progress: Progress, best: Best, saved: Dict) -> None:
    """Put a checkpoint's weights, optimizer, schedule, RNG states and progress back in place."""
    checkpoint.load_states(saved, parts.model, parts.optimizer, parts.scheduler, parts.shuffle)
    state = saved["progress"]
    for key in ("epoch", "step", "epoch_step", "row", "bound"):
        setattr(progress, key, state[key])
    progress.wall_seconds = state["wall_seconds"]
    best.load(state["best"])


def cut_files_to(folder: Path, progress: Progress) -> None:
    """Drop rows a killed run wrote after its last checkpoint, so resumed rows follow on exactly."""
    truncate_csv(folder / "iterations.csv", "step", progress.step)
    truncate_csv(folder / "params.csv", "step", progress.step)
    truncate_csv(folder / "epochs.csv", "epoch", progress.epoch)
    truncate_csv(folder / "fit.csv", "epoch", progress.epoch)


def first_bad(costs: List[float], bound: float) -> Optional[int]:
    """Index of the first cost that is NaN, infinite or not below the bound."""
    return next((i for i, cost in enumerate(costs) if not cost < bound), None)


def log_epoch(row: Dict, loggers, display) -> None:
    for logger in loggers:
        logger.log_epoch(row)
    display.epoch(row["epoch"], row)


def current_lr(optimizer: torch.optim.Optimizer) -> float:
    return float(optimizer.param_groups[0]["lr"])


def _state(generator: Optional[torch.Generator]) -> Optional[torch.Tensor]:
    return generator.get_state() if generator is not None else None


def epoch_row(parts: Parts, epoch: int, seconds: float, lr: Optional[float] = None) -> Dict:
    """One epochs.csv row: the model on the whole training set and the validation set."""
    data = parts.data
    train = evaluate(parts.net, parts.loss_fn, data.x, data.y, data.task, parts.threshold)
    row = {"epoch": epoch, "train_loss": train["loss"], "train_accuracy": train.get("accuracy"),
           "val_loss": None, "val_accuracy": None,
           "lr": current_lr(parts.optimizer) if lr is None else lr, "seconds": seconds}
    if data.val is not None:
        val = evaluate(parts.net, parts.loss_fn, data.val.x, data.val.y, data.task, parts.threshold)
        row.update(val_loss=val["loss"], val_accuracy=val.get("accuracy"))
    return row


def step_scheduler(scheduler, row: Dict) -> None:
    """Once per epoch; ReduceLROnPlateau watches the validation loss (training loss without one)."""
    if scheduler is None:
        return
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        scheduler.step(row["val_loss"] if row["val_loss"] is not None else row["train_loss"])
    else:
        scheduler.step()


def title(cfg: DictConfig) -> str:
    """The run in one line: data, model, optimizer, learning rate, batch size."""
    return (f"{cfg.data.name} / {cfg.model.name} / {cfg.optim.name} "
            f"lr={cfg.optim.lr:g} batch={cfg.optim.batch_size}")


def make_summary(status: str, progress: Progress, best: Best, wall_seconds: float, parts: Parts,
                 cfg: DictConfig) -> Dict:
    """summary.json: how the run ended, its last and best metrics, and what it was."""
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
        "num_params": sum(p.numel() for p in parts.model.parameters()),
        "run": {"data": cfg.data.name, "model": cfg.model.name, "loss": cfg.loss.name,
                "optim": cfg.optim.name, "lr": cfg.optim.lr, "batch_size": cfg.optim.batch_size,
                "epochs": parts.epochs, "seed": cfg.seed},
    }
    if status == "diverged":
        summary["diverged_at_step"] = progress.diverged_at
        summary["diverged_cost"] = progress.diverged_cost
    if status == "interrupted":
        summary["stopped_by"] = progress.stopped_by
    return summary


def draw_pictures(folder: Path) -> None:
    """The run's pictures, drawn from its files; a plotting failure never costs the run."""
    try:
        from gdrun.plots import draw_run
    except ImportError:  # plots not built yet
        return
    try:
        draw_run(folder)
    except Exception:  # noqa: BLE001 - the run's files are safe; say so and go on
        log.warning("could not draw the pictures of %s (the run's files are complete)", folder, exc_info=True)
