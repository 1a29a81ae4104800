"""lr_find=true: the learning-rate range test (Smith 2015; fastai's lr_find, Lightning's Tuner.lr_find).

From the run's initial weights, with its data, model, loss, optimizer and batches, the learning
rate grows exponentially from lr_find.min to lr_find.max over lr_find.steps iterations; each
iteration's batch cost (before its update, as iterations.csv has it) and its smoothed value (an
exponential moving average, bias-corrected) go into lr_find.csv. The test stops when the loss
diverges: the smoothed loss above lr_find.diverge times its lowest, or a cost not finite. Nothing
else is trained; summary.json says what the folder holds (`kind`: lr_find) and what was found.

What was found, from the smoothed curve (`analyse`): where the loss starts to fall (below that
the rates are too small to move it), its lowest point (past it they are too large), and between
them the rate where it falls fastest on log-log axes: the suggestion. The curve is the answer;
the suggestion is one reading of it.
"""

import math
import time
from contextlib import nullcontext
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

import torch
from omegaconf import DictConfig

from gdrun.config.schema import what_ran
from gdrun.rundir.files import replace_atomically, write_json
from gdrun.rundir.layout import RunPaths
from gdrun.training.controls import step_controls
from gdrun.training.data import tensor_batches
from gdrun.training.parts import Parts, build
from gdrun.training.signals import StopRequest

COLUMNS = ("step", "lr", "loss", "smoothed_loss")
# The loss has started to fall once it has gone this part of the way from its start to its lowest
# (on log(loss) when every loss is positive), and stopped falling once it has gone the rest.
STARTED = 0.05
# lr_find.smoothing's default with mini-batches. An average over about 1 / (1 - smoothing) steps spans
# that many steps' rates: fastai's and Lightning's 0.98 spans 4 of the 8 decades a 100-step test
# covers, and drags the curve far to the right; 0.9 spans under one. A whole-set batch has no noise: 0.
SMOOTHING = 0.9


class Row(NamedTuple):
    step: int
    lr: float
    loss: float
    smoothed_loss: float


def find_lr(cfg: DictConfig, folder: Path) -> Dict:
    """The range test of the run `cfg` describes, into `folder`: lr_find.csv and summary.json; returns the summary."""
    parts = build(cfg)
    settings = cfg.lr_find
    paths = RunPaths(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_json(paths.summary, {"status": "running", "started": datetime.now().isoformat()})
    tick = time.perf_counter()
    smoothing = settings.smoothing
    if smoothing is None:
        smoothing = 0.0 if parts.batch_size >= len(parts.data) else SMOOTHING
    with StopRequest() as stop:
        rates = exponential_rates(settings.min, settings.max, settings.steps)
        rows = range_test(parts, rates, settings.diverge, smoothing, lambda: stop.requested)
    write_rows(paths.lr_find, rows)
    found = analyse([r.lr for r in rows], [r.smoothed_loss for r in rows])
    ended = "diverged" if len(rows) < len(rates) else "reached lr_find.max"
    if stop.requested:  # the rows so far are a curve all the same; there is nothing to resume
        ended = f"stopped by {stop.name}"
    summary: Dict[str, Any] = {
        "status": "completed",
        "kind": "lr_find",
        "epochs": 0,
        "steps": len(rows),
        "final": {},
        "best": {"metric": None, "value": None, "epoch": None},
        "best_by_metric": {},
        "wall_seconds": time.perf_counter() - tick,
        "device": str(parts.device),
        "num_params": sum(p.numel() for p in parts.model.parameters()),
        "run": {**what_ran(cfg), "epochs": parts.epochs},
        "model_args": parts.model_args,
        "lr_find": {
            "min": settings.min,
            "max": settings.max,
            "steps": settings.steps,
            "diverge": settings.diverge,
            "smoothing": smoothing,
            "ended": ended,
            **found,
        },
    }
    write_json(paths.summary, summary)
    return summary


def exponential_rates(low: float, high: float, steps: int) -> List[float]:
    """`steps` rates from `low` to `high`, each the same factor above the one before."""
    return [low * (high / low) ** (i / (steps - 1)) for i in range(steps)]


def range_test(
    parts: Parts, rates: Sequence[float], diverge: float, smoothing: float, stopping: Callable[[], bool]
) -> List[Row]:
    """One update at each rate in turn, on the run's batches (epoch after epoch), until the loss diverges."""
    optimizer, model = parts.optimizer, parts.net
    controls = step_controls(optimizer, parts.clip_grad_norm, parts.clip_grad_value, None)  # clipped as the run is
    mixed = None if parts.precision is None else torch.autocast(device_type=parts.device.type, dtype=parts.precision)
    model.train()
    rows: List[Row] = []
    average, lowest = 0.0, math.inf
    for step, (rate, (x, y)) in enumerate(zip(rates, endless_batches(parts)), start=1):
        for group in optimizer.param_groups:
            group["lr"] = rate
        with mixed or nullcontext():
            loss = parts.loss_fn(model(x), y)
        cost = loss.item()
        average = smoothing * average + (1 - smoothing) * cost
        smoothed = average / (1 - smoothing**step)  # bias-corrected: the first steps are not pulled to 0
        rows.append(Row(step, rate, cost, smoothed))
        if not math.isfinite(smoothed) or smoothed > diverge * lowest:
            break
        lowest = min(lowest, smoothed)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if controls is not None:
            controls.before_update()
        optimizer.step()
        if stopping():
            break
    return rows


def endless_batches(parts: Parts) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
    """The run's batches, epoch after epoch, in the order its training would take them."""
    while True:
        yield from tensor_batches(parts.data.x, parts.data.y, parts.batch_size, parts.shuffle)


def write_rows(path: Path, rows: Sequence[Row]) -> None:
    """lr_find.csv, whole."""
    text = ",".join(COLUMNS) + "\n" + "".join(f"{r.step},{r.lr!r},{r.loss!r},{r.smoothed_loss!r}\n" for r in rows)
    replace_atomically(path, lambda f: f.write(text.encode()))


def analyse(lrs: Sequence[float], smoothed: Sequence[float]) -> Dict[str, Optional[float]]:
    """The smoothed curve read (on log(loss) when every loss is positive): where it starts to fall
    (`useful_from`: below, too small), where it has stopped falling (`useful_to`), its lowest point
    (`lowest_at`: past it, too large), and the suggestion: between the first two, the rate where it
    falls fastest against log(lr). None where the curve has no answer (it never fell)."""
    found: Dict[str, Optional[float]] = dict.fromkeys(("useful_from", "useful_to", "lowest_at", "suggested_lr"))
    finite = [(lr, loss) for lr, loss in zip(lrs, smoothed) if math.isfinite(loss)]
    if len(finite) < 3:
        return found
    rates = [lr for lr, _ in finite]
    logged = all(loss > 0 for _, loss in finite)
    ys = [math.log(loss) if logged else loss for _, loss in finite]
    low = min(range(len(ys)), key=ys.__getitem__)
    drop = ys[0] - ys[low]
    if low == 0 or drop <= 0:
        return found  # the loss never fell: every rate tried was too small, or too large
    # Where it has fallen for good: after the last point still near the start (noise dips early on).
    end = next(i for i in range(low + 1) if ys[0] - ys[i] >= (1 - STARTED) * drop)
    start = 1 + max(i for i in range(end) if ys[0] - ys[i] < STARTED * drop)
    xs = [math.log(lr) for lr in rates]
    # The slope at i from its neighbours; the steepest fall while the loss falls.
    slopes = {
        i: (ys[i + 1] - ys[i - 1]) / (xs[i + 1] - xs[i - 1]) for i in range(max(start, 1), min(end, len(xs) - 2) + 1)
    }
    steepest = min(slopes, key=slopes.__getitem__) if slopes else start
    found.update(useful_from=rates[start], useful_to=rates[end], lowest_at=rates[low], suggested_lr=rates[steepest])
    return found


def print_found(summary: Dict, folder: Path, console) -> None:
    """The range test's answer on the console: the suggested rate and the regions, and where the curve is."""
    found = summary["lr_find"]
    console.print(
        f"gdrun: lr_find {summary['status']} after {summary['steps']} iterations "
        f"({found['ended']}), {summary['wall_seconds']:.1f}s",
        highlight=False,
    )
    if found["suggested_lr"] is None:
        console.print(
            f"no suggestion: the loss did not fall between lr_find.min={found['min']:g} and the rate it stopped at; "
            f"look at the curve, and try another range",
            highlight=False,
        )
    else:
        console.print(
            f"suggested learning rate: {found['suggested_lr']:.3g} (the loss falls fastest there); "
            f"the loss falls from {found['useful_from']:.3g} to {found['useful_to']:.3g} and is lowest at "
            f"{found['lowest_at']:.3g}: rates past that are too large",
            highlight=False,
        )
    paths = RunPaths(folder)
    console.print(f"the curve: {paths.plots / 'lr_find.png'} (rows: {paths.lr_find})", highlight=False, soft_wrap=True)
