"""run(cfg, folder): one experiment from composed config to run folder, top to bottom.

seed -> device -> data -> model, loss, optimizer, schedule -> evaluate epoch 0 -> for each
epoch: train, evaluate, log, checkpoint -> final model and summary. Logging, recording for
the pictures, checkpoints and the display are calls out of the loop, never code inside it.
"""

import logging
import time
from pathlib import Path
from typing import Dict, Optional

import torch
from omegaconf import DictConfig, OmegaConf

from gdrun import checkpoint
from gdrun.build import (build_data, build_loss, build_model, build_optimizer, build_scheduler,
                         check_compatible, resolve_device)
from gdrun.data import Dataset, resolve_batch_size, steps_per_epoch, tensor_batches
from gdrun.display import final_table, make_display
from gdrun.checkpoint import Checkpoints
from gdrun.metrics import Best, make_loggers
from gdrun.record import Recorder
from gdrun.train import evaluate, train_epoch

log = logging.getLogger(__name__)

# About this many fit snapshots per run when fit_every is not set.
FIT_SNAPSHOTS = 5


def run(cfg: DictConfig, folder: Path) -> Dict:
    """Train the experiment `cfg` describes, writing everything into `folder`; return its summary."""
    started = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg.device)
    data = build_data(cfg.data, cfg.seed, device)
    check_compatible(data, cfg.data.name, cfg.model, cfg.loss)
    model = build_model(cfg.model, data, cfg.loss.output).to(device)
    loss_fn = build_loss(cfg.loss)
    optimizer = build_optimizer(cfg.optim, model)
    epochs = int(cfg.optim.epochs)
    scheduler = build_scheduler(cfg.sched, optimizer, epochs)
    batch_size = resolve_batch_size(cfg.optim.batch_size, len(data))
    shuffle = torch.Generator().manual_seed(cfg.seed) if cfg.data.shuffle else None
    # A binary output turns into class 1 above 0.5 when it is a probability, above 0 when a logit.
    threshold = 0.5 if cfg.loss.output == "sigmoid" else 0.0
    config = OmegaConf.to_container(cfg, resolve=True)

    loggers = make_loggers(folder, cfg.loggers)
    recorder = Recorder(folder, model, data, cfg.fit_every or max(1, epochs // FIT_SNAPSHOTS), resume=False)
    checkpoints = Checkpoints(folder / "checkpoints", cfg.checkpoint_every)
    best = Best(has_val=data.val is not None, classification=data.task != "regression")
    step = 0

    def snapshot(epoch: int) -> Dict:
        return checkpoint.payload(model=model, optimizer=optimizer, scheduler=scheduler, epoch=epoch,
                                  step=step, best=best.state(), shuffle=shuffle, config=config)

    with make_display(title(cfg), epochs, steps_per_epoch(len(data), batch_size)) as display:
        row = epoch_row(model, loss_fn, data, threshold, epoch=0, lr=current_lr(optimizer), seconds=0.0)
        for epoch in range(0, epochs + 1):
            if epoch > 0:
                lr = current_lr(optimizer)
                tick = time.perf_counter()
                batches = tensor_batches(data.x, data.y, batch_size, shuffle)
                after_step = recorder.after_step if recorder.track_params else None
                costs = train_epoch(model, loss_fn, optimizer, batches, after_step).tolist()
                seconds = time.perf_counter() - tick
                for logger in loggers:
                    logger.log_iterations(step + 1, epoch, costs, lr)
                recorder.end_epoch(step + 1, epoch, last=epoch == epochs)
                step += len(costs)
                display.steps(step, costs[-1])
                row = epoch_row(model, loss_fn, data, threshold, epoch, lr, seconds)
                step_scheduler(scheduler, row)
            else:
                recorder.start(step, epoch)
            for logger in loggers:
                logger.log_epoch(row)
            display.epoch(epoch, row)
            if best.update(row):
                checkpoints.keep_best(snapshot(epoch))
            checkpoints.maybe_save_last(epoch, lambda: snapshot(epoch))

    checkpoints.save_last(snapshot(epochs))
    checkpoints.save_best()
    torch.save(model.state_dict(), folder / "model.pt")
    recorder.close()
    summary = make_summary("completed", epochs, step, row, best, time.perf_counter() - started,
                           device, model, cfg)
    for logger in loggers:
        logger.log_summary(summary)
        logger.close()
    if cfg.plots:
        draw_pictures(folder)
    final_table(summary, folder)
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


def title(cfg: DictConfig) -> str:
    """The run in one line: data, model, optimizer, learning rate, batch size."""
    return (f"{cfg.data.name} / {cfg.model.name} / {cfg.optim.name} "
            f"lr={cfg.optim.lr:g} batch={cfg.optim.batch_size}")


def make_summary(status: str, epochs: int, steps: int, row: Dict, best: Best, wall_seconds: float,
                 device: torch.device, model: torch.nn.Module, cfg: DictConfig) -> Dict:
    """summary.json: how the run ended, its last and best metrics, and what it was."""
    final = {k: v for k, v in row.items() if k not in ("epoch", "seconds")}
    headline = best.by_metric.get(best.headline)
    return {
        "status": status,
        "epochs": epochs,
        "steps": steps,
        "final": final,
        "best": {"metric": best.headline, **(headline or {"value": None, "epoch": None})},
        "best_by_metric": best.by_metric,
        "wall_seconds": wall_seconds,
        "device": str(device),
        "num_params": sum(p.numel() for p in model.parameters()),
        "run": {"data": cfg.data.name, "model": cfg.model.name, "loss": cfg.loss.name,
                "optim": cfg.optim.name, "lr": cfg.optim.lr, "batch_size": cfg.optim.batch_size,
                "seed": cfg.seed},
    }


def current_lr(optimizer: torch.optim.Optimizer) -> float:
    return float(optimizer.param_groups[0]["lr"])


def epoch_row(model, loss_fn, data: Dataset, threshold: float, epoch: int, lr: float, seconds: float) -> Dict:
    """One epochs.csv row: the model on the whole training set and the validation set."""
    train = evaluate(model, loss_fn, data.x, data.y, data.task, threshold)
    row = {"epoch": epoch, "train_loss": train["loss"], "train_accuracy": train.get("accuracy"),
           "val_loss": None, "val_accuracy": None, "lr": lr, "seconds": seconds}
    if data.val is not None:
        val = evaluate(model, loss_fn, data.val.x, data.val.y, data.task, threshold)
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
