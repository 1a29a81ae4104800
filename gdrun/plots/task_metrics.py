"""metrics.png: the task's metrics per epoch (F1 and AUC for classifiers; RMSE, MAE and R² for regression).

One panel per metric, the training and validation sets as lines, the epoch of the best checkpoint
marked, and, for a run with a test set, the best checkpoint's test value as a point at that epoch:
where the chosen model ends up on data it never saw. Drawn from epochs.csv and summary.json alone.
"""

from pathlib import Path
from typing import List, Sequence

import numpy as np
from matplotlib.ticker import MaxNLocator

from gdrun.config.metric_names import TASK_METRICS
from gdrun.plots import style
from gdrun.rundir.layout import EPOCHS
from gdrun.rundir.reader import RunFolder

NAMES = {"f1": "macro F1", "auc": "ROC AUC", "rmse": "RMSE", "mae": "MAE", "r2": "R²"}


def draw_task_metrics(run: RunFolder, out: Path, formats: Sequence[str]) -> List[Path]:
    """metrics.png for a run with a validation set whose epochs.csv has the task's metrics (older runs have none)."""
    epochs = run.columns(EPOCHS)
    if epochs is None:
        return []
    found = [m for m in dict.fromkeys(sum(TASK_METRICS.values(), ())) if f"train_{m}" in epochs]
    # Where they help: a run evaluated on held-out data. Without it (the labs) the training set's
    # RMSE is the cost curve again (loss=mse), and F1 tells little beside accuracy.png.
    found = [m for m in found if np.isfinite(epochs.get(f"val_{m}", np.array([np.nan]))).any()]
    if not found:
        return []
    summary = run.summary or {}
    best_epoch = (summary.get("best") or {}).get("epoch")
    test = ((summary.get("test") or {}).get("best")) or {}
    fig = style.figure(max(7.0, 4.2 * len(found) + 0.6), 4.5, margins={})  # one panel: as wide as accuracy.png
    axes = fig.subplots(1, len(found), squeeze=False)[0]
    x = epochs["epoch"]
    for ax, metric in zip(axes, found):
        drawn = []
        for split, label, color, ls in (
            ("train", "training set", style.EPOCH_COLOR, "-"),
            ("val", "validation set", style.VAL_COLOR, "--"),
        ):
            values = style.finite(epochs[f"{split}_{metric}"])
            if np.isfinite(values).any():
                ax.plot(x, values, color=color, ls=ls, marker="o" if len(x) <= 60 else None, ms=3, label=label)
                drawn.append(values[np.isfinite(values)])
        scale(ax, metric, np.concatenate(drawn))
        if best_epoch is not None:
            ax.axvline(best_epoch, color="gray", lw=1, ls=":", label=f"best checkpoint (epoch {best_epoch})")
            if test.get(metric) is not None:
                ax.plot([best_epoch], [test[metric]], "D", color="black", ms=6, label=f"its test {test[metric]:.4g}")
        ax.set_title(NAMES.get(metric, metric), fontsize="medium")
        ax.set_xlabel("epoch (0 = before training)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize="x-small")
    style.title(fig, "The task's metrics per epoch", run.title())
    return style.save(fig, out, "metrics", formats)


# R² of an untrained model can be hugely negative; below this the axis is cut, so the useful range shows.
R2_FLOOR = -1.0


def scale(ax, metric: str, values: np.ndarray) -> None:
    """RMSE and MAE on a log axis when they span decades (as the cost); R² cut at R2_FLOOR; F1 and AUC in [0, 1]."""
    if metric in ("rmse", "mae"):
        style.cost_scale(ax, values, NAMES[metric])
    elif metric == "r2":
        low = max(float(values.min()), R2_FLOOR)
        ax.set_ylim(low - 0.05 * (1 - low), 1 + 0.05 * (1 - low))
        ax.set_ylabel("R²" + (f" (cut at {R2_FLOOR:g})" if values.min() < R2_FLOOR else ""))
    else:
        ax.set_ylim(-0.02, 1.02)
        ax.set_ylabel(NAMES[metric])
