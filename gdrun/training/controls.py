"""Training controls besides the optimizer: early stopping, gradient clipping, per-iteration schedules.

- `EarlyStop` watches one column of epochs.csv (early_stop.metric) and says when it has not improved
  by more than early_stop.min_delta for early_stop.patience epochs. Its state is a plain dict the
  run's progress keeps, so every checkpoint holds the patience counter and resume= goes on exactly.
- `StepControls` is what happens around each update: the gradients clipped between backward and
  step (optim.clip_grad_norm / clip_grad_value), a per-iteration schedule stepped after it, and each
  step's learning rate and gradient norm kept for iterations.csv.
"""

import math
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch

from gdrun.errors import GdrunError

# A metric's name says which way is better by its last word (val_loss, val_f1, train_r2).
LOWER_IS_BETTER = ("loss", "error", "mse", "rmse", "mae", "perplexity")
HIGHER_IS_BETTER = ("accuracy", "acc", "f1", "auc", "r2", "precision", "recall")

# Columns of epochs.csv that are no metric of the model.
NOT_WATCHED = ("epoch", "seconds", "lr")


@dataclass(frozen=True)
class EarlyStop:
    """Stop when `metric` has not improved by more than `min_delta` for `patience` epochs."""

    metric: str
    patience: int
    min_delta: float
    lower_is_better: bool

    def check(self, row: Dict[str, Any]) -> None:
        """GdrunError unless the run's epoch rows (`row`: the first) have a value for the metric."""
        if row.get(self.metric) is not None and self.metric not in NOT_WATCHED:
            return
        given = sorted(name for name, value in row.items() if value is not None and name not in NOT_WATCHED)
        why = "is not a column of this run's epochs.csv"
        if self.metric in NOT_WATCHED:
            why = "is not a metric of the model"
        elif self.metric in row:
            why = "has no value in this run" + (
                " (it has no validation set: data.val_split=0.2 holds one out)"
                if self.metric.startswith("val_")
                else ""
            )
        raise GdrunError(
            f"early_stop.metric={self.metric} {why}; choose one of: {', '.join(given)} "
            f"(or leave it unset: the headline metric)."
        )

    def observe(self, state: Optional[Dict[str, Any]], previous: Dict[str, Any], row: Dict[str, Any]) -> Dict[str, Any]:
        """The state after epoch `row` (`state` None: none yet, and `previous`, epoch 0's row, is the first best)."""
        if state is None:
            state = {"best": previous[self.metric], "best_epoch": previous["epoch"], "waited": 0}
        value = row[self.metric]
        if self.improves(value, state["best"]):
            return {"best": value, "best_epoch": row["epoch"], "waited": 0}
        return {**state, "waited": state["waited"] + 1}

    def improves(self, value: Optional[float], best: Optional[float]) -> bool:
        if value is None or not math.isfinite(value):
            return False
        if best is None or not math.isfinite(best):
            return True
        return value < best - self.min_delta if self.lower_is_better else value > best + self.min_delta

    def due(self, state: Dict[str, Any]) -> bool:
        """True when the run should stop now."""
        return state["waited"] >= max(self.patience, 1)  # as Lightning's: patience 0 stops at the first miss

    def summary(self, state: Dict[str, Any], epoch: int) -> Dict[str, Any]:
        """summary.json's `early_stop`: what was watched, its best, and the reason in a sentence."""
        better = "fall" if self.lower_is_better else "rise"
        by = f" by more than {self.min_delta:g}" if self.min_delta else ""
        reason = (
            f"{self.metric} did not {better}{by} for {state['waited']} epochs after its best, "
            f"{state['best']:.6g} at epoch {state['best_epoch']} (early_stop.patience={self.patience})"
        )
        return {
            "metric": self.metric,
            "mode": "min" if self.lower_is_better else "max",
            "patience": self.patience,
            "min_delta": self.min_delta,
            "best": state["best"],
            "best_epoch": state["best_epoch"],
            "reason": reason,
        }


def early_stop(patience: Optional[int], metric: Optional[str], min_delta: float, mode: Optional[str], headline: str):
    """The run's EarlyStop (None when patience is null); `metric` null watches the `headline` metric."""
    if patience is None:
        return None
    name = metric or headline
    return EarlyStop(name, patience, min_delta, lower_is_better(name, mode))


def lower_is_better(metric: str, mode: Optional[str]) -> bool:
    """early_stop.mode when given, else from the metric's last word; GdrunError when it says neither."""
    if mode is not None:
        return mode == "min"
    word = metric.rsplit("_", 1)[-1].lower()
    if word in LOWER_IS_BETTER:
        return True
    if word in HIGHER_IS_BETTER:
        return False
    raise GdrunError(
        f"early_stop.metric={metric}: gdrun cannot tell from its name whether higher or lower is better; "
        f"say which: early_stop.mode=min or early_stop.mode=max."
    )


# ---------------------------------------------------------------- around each update
class StepControls:
    """Clipping between backward and step, a per-iteration schedule after it, each step's lr and gradient norm."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        clip_norm: Optional[float],
        clip_value: Optional[float],
        scheduler: Optional[Any],
    ):
        self.optimizer = optimizer
        self.params = [p for group in optimizer.param_groups for p in group["params"]]
        self.clip_norm, self.clip_value, self.scheduler = clip_norm, clip_value, scheduler
        self.lrs: List[float] = []  # the rate each update of the epoch used (per-iteration schedules)
        self.norms: List[torch.Tensor] = []  # each update's gradient norm before clipping (clip_norm)

    def before_update(self) -> None:
        """Clip the gradients just computed; keep their norm (on the device: read once per epoch)."""
        if self.clip_norm is not None:
            self.norms.append(torch.nn.utils.clip_grad_norm_(self.params, self.clip_norm).detach())
        elif self.clip_value is not None:
            torch.nn.utils.clip_grad_value_(self.params, self.clip_value)

    def after_update(self) -> None:
        """The update used this rate; the schedule moves on to the next iteration's."""
        if self.scheduler is None:
            return
        self.lrs.append(float(self.optimizer.param_groups[0]["lr"]))
        if not past_end(self.scheduler):
            self.scheduler.step()

    def take(self, steps: int, lr: float) -> Tuple[Union[float, List[float]], Optional[List[Optional[float]]]]:
        """The epoch's rates (one per step, or `lr` for all) and norms (None: not clipping by norm) for
        `steps` costs; a cost whose update never ran (divergence) gets the current rate and no norm."""
        rates: Union[float, List[float]] = lr
        if self.scheduler is not None:
            now = float(self.optimizer.param_groups[0]["lr"])
            rates = self.lrs + [now] * (steps - len(self.lrs))
        norms: Optional[List[Optional[float]]] = None
        if self.clip_norm is not None:
            read: Sequence[float] = torch.stack(self.norms).tolist() if self.norms else []
            norms = [*read, *([None] * (steps - len(read)))]
        self.lrs, self.norms = [], []
        return rates, norms


def past_end(scheduler: Any) -> bool:
    """A OneCycleLR at its last iteration (a resumed run given more epochs): its last rate stays."""
    total = getattr(scheduler, "total_steps", None)
    return total is not None and scheduler.last_epoch >= total


def step_controls(
    optimizer: torch.optim.Optimizer, clip_norm: Optional[float], clip_value: Optional[float], scheduler: Optional[Any]
) -> Optional[StepControls]:
    """The run's StepControls, or None when nothing happens around its updates (the labs: the fast path)."""
    if clip_norm is None and clip_value is None and scheduler is None:
        return None
    return StepControls(optimizer, clip_norm, clip_value, scheduler)
