"""lr_find.png: a learning-rate range test's loss against the rate, its regions and its suggestion.

Drawn from lr_find.csv and summary.json's `lr_find` (gdrun.training.lr_find), so any old test
is drawn again without running it.
"""

from pathlib import Path
from typing import List, Sequence

import numpy as np

from gdrun.plots import style
from gdrun.rundir.layout import LR_FIND
from gdrun.rundir.reader import RunFolder

# The regions' colours: too small, useful, too large.
REGIONS = ("tab:gray", "tab:green", "tab:red")


def draw_lr_find(run: RunFolder, out: Path, formats: Sequence[str]) -> List[Path]:
    """lr_find.png for a run folder holding a range test; [] for any other."""
    rows = run.columns(LR_FIND)
    found = (run.summary or {}).get("lr_find")
    if rows is None or not isinstance(found, dict):
        return []
    lrs, losses, smoothed = rows["lr"], style.finite(rows["loss"]), style.finite(rows["smoothed_loss"])
    fig = style.figure(8, 5.5, margins={"top": 1.15, "bottom": 0.7})
    ax = fig.add_subplot(1, 1, 1)
    if found.get("smoothing"):
        ax.plot(lrs, losses, color=style.ITERATION_COLOR, lw=0.8, alpha=0.45, label="cost of each iteration's batch")
        ax.plot(lrs, smoothed, color=style.ITERATION_COLOR, lw=2, label=f"smoothed ({found['smoothing']:g})")
    else:  # the whole set per step: no noise, nothing smoothed
        ax.plot(lrs, losses, color=style.ITERATION_COLOR, lw=2, label="cost of each iteration (the whole set)")
    ax.set_xscale("log")
    style.log_labels(ax.xaxis)
    style.cost_scale(ax, np.concatenate([losses, smoothed]), label="loss")
    low, high = float(lrs.min()), float(lrs.max())
    marks = [found.get(key) for key in ("useful_from", "useful_to", "lowest_at")]
    if all(isinstance(mark, (int, float)) for mark in marks):
        useful_from, useful_to, lowest_at = (float(mark or 0) for mark in marks)
        spans = [
            (low, useful_from, "too small: the loss hardly moves"),
            (useful_from, useful_to, "useful: the loss falls"),
            (lowest_at, high, "too large: past the lowest loss"),
        ]
        for (start, end, name), color in zip(spans, REGIONS):
            ax.axvspan(start, end, color=color, alpha=0.15, lw=0, label=name)
    # The blow-up at the end may reach any height: the view stops a little above where the test began.
    top = np.nanmax(smoothed[: max(1, len(smoothed) // 2)])
    if np.isfinite(top) and top > 0:
        ax.set_ylim(top=top * (3 if ax.get_yscale() == "log" else 1.3))
    suggested = found.get("suggested_lr")
    if suggested is not None:
        ax.axvline(suggested, color="black", ls="--", lw=1.2, label=f"suggested: {suggested:.3g} (steepest fall)")
    ax.set_xlim(low, high)
    ax.set_xlabel("learning rate (log scale)")
    ax.grid(True, which="major", alpha=0.3)
    style.legend(ax, loc="lower left")  # small rates keep the first loss: the curve starts high on the left
    style.title(fig, "Learning-rate range test: loss against the rate", run.title())
    return style.save(fig, out, "lr_find", formats)
