"""One training epoch and one evaluation of a whole set: the two functions every run is made of."""

import math
from contextlib import nullcontext
from typing import Callable, Dict, Iterable, List, Optional, Tuple

import torch
from torch import nn

from gdrun.training import metrics
from gdrun.training.controls import StepControls

# Evaluate in chunks of this many samples, so a large set never needs one huge activation.
EVAL_CHUNK = 10_000


def train_epoch(
    model: nn.Module,
    loss_fn: nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Iterable[Tuple[torch.Tensor, torch.Tensor]],
    after_step: Optional[Callable[[], None]] = None,
    stop: Optional[Callable[[], bool]] = None,
    bound: Optional[float] = None,
    precision: Optional[torch.dtype] = None,
    controls: Optional[StepControls] = None,
) -> List[float]:
    """One pass over `batches`; returns each batch's cost, computed before its update.

    With a divergence `bound` (on the CPU, where reading a cost is free) each cost is read at
    once, and one that is NaN, infinite or not below the bound ends the epoch before its
    update. Without one (on a GPU) costs stay on the device and are read in one copy at the
    end: no host synchronisation per iteration. A true `stop()` (Ctrl-C) ends the epoch after
    the current step. `precision` (torch.bfloat16) runs forward and loss under autocast.
    `controls` clip the gradients before each update and step a per-iteration schedule after it.
    """
    model.train()
    costs: list = []
    mixed = None if precision is None else torch.autocast(device_type=_device_type(model), dtype=precision)
    for x, y in batches:
        with mixed or nullcontext():
            loss = loss_fn(model(x), y)
        if bound is None:
            costs.append(loss.detach())
        else:
            cost = loss.item()
            costs.append(cost)
            if not cost < bound:  # NaN fails every comparison
                break
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if controls is not None:
            controls.before_update()
        optimizer.step()
        if controls is not None:
            controls.after_update()
        if after_step is not None:
            after_step()
        if stop is not None and stop():
            break
    if bound is None and costs:
        return torch.stack(costs).tolist()
    return costs


@torch.no_grad()
def evaluate_set(
    model: nn.Module, loss_fn: nn.Module, x: torch.Tensor, y: torch.Tensor, task: str, threshold: float
) -> Dict[str, Optional[float]]:
    """Mean loss over the whole set and, for classification, the fraction classified right, plus the
    task's metrics (training.metrics: f1, auc; rmse, mae, r2).

    `threshold` is where a binary output turns into class 1: 0.5 for probabilities, 0 for logits.
    """
    model.eval()
    losses, sizes, correct, stats = [], [], [], []
    for start in range(0, x.shape[0], EVAL_CHUNK):
        xb, yb = x[start : start + EVAL_CHUNK], y[start : start + EVAL_CHUNK]
        out = model(xb)
        losses.append(loss_fn(out, yb))
        sizes.append(xb.shape[0])
        if task != "regression":
            correct.append((predict(out, task, threshold) == yb).sum())
        stats.append(metrics.chunk_stats(out.detach(), yb, task, threshold))
    extra = metrics.finish(metrics.merge(stats), y, task)
    # One read from the device for all chunks' numbers (one sync, not one per number); a float32 loss
    # is exact in float64.
    values = torch.stack([v.double() for v in (*losses, *correct, *extra.values())]).tolist()
    losses, correct, found = values[: len(sizes)], values[len(sizes) : len(values) - len(extra)], values[-len(extra) :]
    # One chunk: the loss exactly as criterion(model(X), Y) gives it (the labs compare to the bit);
    # several: the size-weighted mean of the chunks' means.
    loss = losses[0] if len(losses) == 1 else sum(mean * n for mean, n in zip(losses, sizes)) / sum(sizes)
    result = {"loss": loss}
    if task != "regression":
        result["accuracy"] = sum(correct) / x.shape[0]
    result.update((name, None if math.isnan(value) else value) for name, value in zip(extra, found))  # AUC of one class
    return result


def _device_type(model: nn.Module) -> str:
    return next(model.parameters()).device.type


def predict(out: torch.Tensor, task: str, threshold: float) -> torch.Tensor:
    """Class predictions from model outputs: above `threshold` for binary, arg-max for multiclass."""
    if task == "binary":
        return (out > threshold).to(out.dtype)
    return out.argmax(dim=1)
