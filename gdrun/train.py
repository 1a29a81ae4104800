"""One training epoch and one evaluation: the two functions every run is made of."""

from typing import Callable, Dict, Iterable, Optional, Tuple

import torch
from torch import nn

# Evaluate in chunks of this many samples, so a large set never needs one huge activation.
EVAL_CHUNK = 10_000


def train_epoch(model: nn.Module, loss_fn: nn.Module, optimizer: torch.optim.Optimizer,
                batches: Iterable[Tuple[torch.Tensor, torch.Tensor]],
                after_step: Optional[Callable[[], None]] = None,
                stop: Optional[Callable[[], bool]] = None,
                bound: Optional[float] = None) -> torch.Tensor:
    """One pass over `batches`; returns each batch's cost, computed before its update, as a 1-D tensor.

    Costs stay on the device until the epoch ends: no host synchronisation per iteration,
    unless a divergence `bound` is given (on the CPU, where reading a cost is free): then a
    cost that is NaN, infinite or not below the bound ends the epoch before its update. A
    true `stop()` (Ctrl-C) ends it after the current step.
    """
    model.train()
    costs = []
    for x, y in batches:
        loss = loss_fn(model(x), y)
        costs.append(loss.detach())
        if bound is not None and not loss.item() < bound:  # NaN fails every comparison
            break
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if after_step is not None:
            after_step()
        if stop is not None and stop():
            break
    return torch.stack(costs)


@torch.no_grad()
def evaluate(model: nn.Module, loss_fn: nn.Module, x: torch.Tensor, y: torch.Tensor,
             task: str, threshold: float) -> Dict[str, float]:
    """Mean loss over the whole set and, for classification, the fraction classified right.

    `threshold` is where a binary output turns into class 1: 0.5 for probabilities, 0 for logits.
    """
    model.eval()
    losses, sizes, correct = [], [], 0
    for start in range(0, x.shape[0], EVAL_CHUNK):
        xb, yb = x[start:start + EVAL_CHUNK], y[start:start + EVAL_CHUNK]
        out = model(xb)
        losses.append(loss_fn(out, yb))
        sizes.append(xb.shape[0])
        if task != "regression":
            correct += int((predict(out, task, threshold) == yb).sum())
    # One chunk: the loss exactly as criterion(model(X), Y) gives it (the labs compare to the bit);
    # several: the size-weighted mean of the chunks' means.
    loss = losses[0].item() if len(losses) == 1 else sum(
        l.item() * n for l, n in zip(losses, sizes)) / sum(sizes)
    metrics = {"loss": loss}
    if task != "regression":
        metrics["accuracy"] = correct / x.shape[0]
    return metrics


def predict(out: torch.Tensor, task: str, threshold: float) -> torch.Tensor:
    """Class predictions from model outputs: above `threshold` for binary, arg-max for multiclass."""
    if task == "binary":
        return (out > threshold).to(out.dtype)
    return out.argmax(dim=1)
