"""Learning curves: one run's cost per iteration and accuracy per epoch; several runs overlaid.

The per-epoch cost (epochs.csv) is the whole training set's cost with the parameters at the
end of each epoch. On the iteration axis it sits where the next iteration would start, so
for batch gradient descent it falls exactly on the per-iteration curve (whose cost is taken
before each update), and for mini-batches it runs through the saw-tooth.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.ticker import MaxNLocator

from gdrun.plots import style
from gdrun.rundir.layout import EPOCHS, ITERATIONS
from gdrun.rundir.reader import RunFolder

# Runs longer than four times this many iterations get a panel zoomed on about this many first ones.
ZOOM_ITERATIONS = 40


def epoch_steps(iteration_epochs: np.ndarray, epochs: np.ndarray) -> np.ndarray:
    """Where each epochs.csv row sits on the iteration axis: 1 + the iterations done by the end of its epoch.

    `iteration_epochs` is iterations.csv's epoch column, `epochs` epochs.csv's."""
    return 1 + np.searchsorted(np.sort(iteration_epochs), epochs, side="right")


def uniform_epoch_length(iteration_epochs: np.ndarray) -> Optional[int]:
    """Iterations per epoch when every epoch has the same number (all but the last), else None."""
    sizes = set(np.unique(iteration_epochs, return_counts=True)[1].tolist())
    return sizes.pop() if len(sizes) == 1 else None


def draw_cost(run: RunFolder, out: Path, formats: Sequence[str]) -> List[Path]:
    """cost.png: the cost of every iteration's batch, with the whole training set's cost per epoch over it.

    A long mini-batch run gets a second panel zoomed on its first iterations, where the
    saw-tooth of the batches' costs (one tooth per epoch) can be seen.
    """
    iterations = run.columns(ITERATIONS)
    if iterations is None:
        return []
    count = len(iterations["step"])
    per_epoch = uniform_epoch_length(iterations["epoch"])
    zoom = ZOOM_ITERATIONS if count > 4 * ZOOM_ITERATIONS and (per_epoch or 2) > 1 else None
    if zoom and per_epoch:
        zoom = per_epoch * max(2, zoom // per_epoch)  # whole epochs
    fig = style.figure(8, 8.5 if zoom else 5, margins={"top": 1.15, "hspace": 0.45})
    ax = fig.add_subplot(2 if zoom else 1, 1, 1)
    cost_panel(ax, run, count, per_epoch)
    style.legend(ax)
    if zoom:
        cost_panel(fig.add_subplot(2, 1, 2), run, zoom, per_epoch)
    style.title(fig, "Learning curve: cost per iteration", run.title())
    return style.save(fig, out, "cost", formats)


def cost_panel(ax, run: RunFolder, upto: int, per_epoch: Optional[int]) -> None:
    """The per-iteration and per-epoch costs over the first `upto` iterations."""
    iterations, epochs = run.columns(ITERATIONS), run.columns(EPOCHS)
    assert iterations is not None  # draw_cost draws panels only for a run with iterations.csv
    steps, costs = iterations["step"][:upto], style.finite(iterations["loss"][:upto])
    in_view = epochs["epoch"] <= iterations["epoch"][upto - 1] if epochs is not None else np.array([], bool)
    few = len(steps) <= 60
    ax.plot(
        steps,
        costs,
        color=style.ITERATION_COLOR,
        lw=1 if few else 0.8,
        marker="." if few else None,
        label="cost of each iteration's batch (before its update)",
    )
    shown = [costs]
    if in_view.any():
        assert epochs is not None  # in_view is empty without epochs.csv
        at = epoch_steps(iterations["epoch"], epochs["epoch"][in_view])
        train = style.finite(epochs["train_loss"][in_view])
        # Open circles on a thin dashed line: for batch GD they sit exactly on the iteration curve.
        ms = 7 if len(at) <= 40 else 3 if len(at) <= 200 else 0
        ax.plot(
            at,
            train,
            color=style.EPOCH_COLOR,
            marker="o",
            ms=ms,
            mfc="none",
            mew=1.5,
            lw=1,
            ls="--",
            label="whole training set, after each epoch (first point: before training)",
        )
        shown.append(train)
        val = style.finite(epochs["val_loss"][in_view])
        if np.isfinite(val).any():
            ax.plot(
                at,
                val,
                color=style.VAL_COLOR,
                marker="s",
                ms=ms,
                mfc="none",
                mew=1.5,
                lw=1,
                ls=":",
                label="validation set, after each epoch",
            )
            shown.append(val)
    zoomed = upto < len(iterations["step"])
    ax.set_xlabel("iteration (one parameter update each)" + (f": the first {upto}, zoomed" if zoomed else ""))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # no "iteration 1.25" on short runs
    style.cost_scale(ax, np.concatenate(shown))
    if per_epoch:
        top = ax.secondary_xaxis("top", functions=(lambda s: (s - 1) / per_epoch, lambda e: 1 + e * per_epoch))
        top.set_xlabel(f"epoch ({per_epoch} iteration{'s' if per_epoch > 1 else ''} each)")
        top.xaxis.set_major_locator(MaxNLocator(integer=True))
    if not zoomed:
        stop_marker(ax, run, steps, costs, style.FAILED_COLOR, label=f"{run.status} here")
    ax.grid(alpha=0.3)


def draw_accuracy(run: RunFolder, out: Path, formats: Sequence[str]) -> List[Path]:
    """accuracy.png: training and validation accuracy per epoch (classification only)."""
    epochs = run.columns(EPOCHS)
    if epochs is None or np.isnan(epochs["train_accuracy"]).all():
        return []
    fig = style.figure(7, 4.5, margins={})
    ax = fig.add_subplot()
    x = epochs["epoch"]
    for column, label, color, ls in (
        ("train_accuracy", "training set", style.EPOCH_COLOR, "-"),
        ("val_accuracy", "validation set", style.VAL_COLOR, "--"),
    ):
        values = 100 * style.finite(epochs[column])
        if np.isfinite(values).any():
            ax.plot(x, values, color=color, ls=ls, marker="o" if len(x) <= 60 else None, ms=4, label=label)
            last = values[np.isfinite(values)][-1]
            ax.annotate(
                f"{last:.1f}%",
                (x[-1], last),
                textcoords="offset points",
                xytext=(-2, 6),
                ha="right",
                color=color,
                fontsize="small",
            )
    ax.set_xlabel("epoch (0 = before training)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(-2, 102)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="lower right")  # even with one line: it says which set
    style.title(fig, "Accuracy per epoch", run.title())
    return style.save(fig, out, "accuracy", formats)


@dataclass
class Line:
    """One run in an overlay: its label (the swept or differing values), colour and line style."""

    run: RunFolder
    label: str
    color: object
    linestyle: str = "-"


def draw_overlay(lines: List[Line], out: Path, name: str, subtitle: str, formats: Sequence[str]) -> List[Path]:
    """Learning curves of several runs on one figure: cost per iteration (left) and per epoch (right)."""
    if not lines:
        return []
    fig = style.figure(13, 5.2)
    per_iteration, per_epoch = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    shown: Dict[Axes, List[np.ndarray]] = {per_iteration: [], per_epoch: []}
    any_val = False
    for line in lines:
        run = line.run
        label = line.label if run.status == "completed" else f"{line.label} ({run.status})"
        kw: Dict[str, Any] = dict(color=line.color, ls=line.linestyle, lw=1.4)
        iterations, epochs = run.columns(ITERATIONS), run.columns(EPOCHS)
        if iterations is None and epochs is None:  # failed before its first iteration: a legend entry only
            per_epoch.plot([], [], marker="X", ls="none", color=line.color, label=f"{label}: no data")
            continue
        if iterations is not None:
            steps, costs = iterations["step"], style.finite(iterations["loss"])
            per_iteration.plot(steps, costs, label=label, **kw)
            shown[per_iteration].append(costs)
            stop_marker(per_iteration, run, steps, costs, line.color)
        if epochs is not None:
            x, train = epochs["epoch"], style.finite(epochs["train_loss"])
            per_epoch.plot(x, train, marker="o" if len(x) <= 30 else None, ms=3, label=label, **kw)
            shown[per_epoch].append(train)
            stop_marker(per_epoch, run, x, train, line.color)
            val = style.finite(epochs["val_loss"])
            if np.isfinite(val).any():
                any_val = True
                per_epoch.plot(x, val, color=line.color, ls=":", lw=1.2)
                shown[per_epoch].append(val)
    if any_val:
        per_epoch.plot([], [], color="gray", ls=":", label="dotted: validation set")
    per_iteration.set_xlabel("iteration")
    per_iteration.set_title("cost of each iteration's batch", fontsize=10)
    per_epoch.set_xlabel("epoch (0 = before training)")
    per_epoch.xaxis.set_major_locator(MaxNLocator(integer=True))
    per_epoch.set_title("whole training set after each epoch", fontsize=10)
    for ax, values in shown.items():
        style.cost_scale(ax, np.concatenate(values) if values else np.array([]))
        ax.grid(alpha=0.3)
    per_epoch.legend(
        fontsize="small" if len(lines) <= 20 else "x-small",
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        ncols=1 + len(lines) // 30,
    )
    style.title(fig, "Learning curves", subtitle)
    return style.save(fig, out, name, formats)


def stop_marker(ax, run: RunFolder, x: np.ndarray, y: np.ndarray, color, label: Optional[str] = None) -> None:
    """Where a run that did not complete stopped: a cross at its last finite value."""
    ok = np.isfinite(y)
    if run.status != "completed" and ok.any():
        ax.plot(x[ok][-1], y[ok][-1], marker="X", ms=10, color=color, mec=style.FAILED_COLOR, ls="none", label=label)
