"""A sweep's pictures: the final metric against each swept value, and a heat map of two swept keys.

Jobs that did not complete are drawn as such (a red cross, a grey cell named by their
status), never left out. The overlaid learning curves and paths are curves.py's and
surface.py's, shared with `gdrun-report --compare`.
"""

from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np

from gdrun.plots import style

# The line styles that tell apart the values of a second swept key.
LINESTYLES = ("-", "--", ":", "-.")
# More lines than this in a final-metric panel, or values than this on a heat map's axis (a
# search's sampled values), and they are drawn as one cloud of points, and no heat map.
MAX_GROUPS = 8
MAX_CELLS = 12


def values_of(jobs, key: str) -> List:
    """A swept key's distinct values: numbers sorted, anything else (`full`, `adam`) in sweep order."""
    seen = []
    for job in jobs:
        if job.values.get(key) not in seen:
            seen.append(job.values.get(key))
    return sorted(seen) if all(is_number(v) for v in seen) else seen


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def label(job, keys: Sequence[str]) -> str:
    return ", ".join(f"{key}={style.format_value(job.values.get(key))}" for key in keys) or f"job {job.number}"


def line_styles(jobs, keys: Sequence[str]) -> List[Tuple[object, str]]:
    """Per job (colour, line style): colour by the first swept key's value, style by the second's."""
    if not keys:
        return [(c, "-") for c in style.colors(len(jobs))]
    first = values_of(jobs, keys[0])
    palette = dict(zip(map(repr, first), style.colors(len(first))))
    second = values_of(jobs, keys[1]) if len(keys) > 1 else [None]
    dashes = {repr(v): LINESTYLES[i % len(LINESTYLES)] for i, v in enumerate(second)}
    return [
        (palette[repr(job.values.get(keys[0]))], dashes[repr(job.values.get(keys[1]))] if len(keys) > 1 else "-")
        for job in jobs
    ]


def headline(jobs) -> str:
    """The metric the sweep is judged by: the completed jobs' headline (train_loss, val_accuracy, ...)."""
    names = [job.run.headline for job in jobs if job.run.headline]
    return names[0] if names else "train_loss"


def final_value(job, metric: str) -> float:
    """A job's final metric; nan when it did not complete or has no finite value."""
    value = job.run.final(metric) if job.run.status == "completed" else None
    return float(value) if value is not None and np.isfinite(value) else np.nan


def axis_for(ax, key: str, values: List) -> Dict:
    """Place a swept key's values on the x axis: numbers as numbers (log for learning rates and spans of
    decades), anything else as evenly spaced categories; returns value -> x position."""
    if all(is_number(v) for v in values):
        positions = {repr(v): float(v) for v in values}
        positive = all(v > 0 for v in values)
        if positive and (key.endswith("lr") or style.spans_decades(np.array(values, dtype=float))):
            ax.set_xscale("log")
            style.log_labels(ax.xaxis)
        if len(values) <= MAX_CELLS:  # a tick at each value swept; a search's sampled values get the usual ticks
            ax.set_xticks([float(v) for v in values], [style.format_value(v) for v in values])
            ax.minorticks_off()
    else:
        positions = {repr(v): float(i) for i, v in enumerate(values)}
        ax.set_xticks(range(len(values)), [style.format_value(v) for v in values])
        ax.set_xlim(-0.5, len(values) - 0.5)
    ax.set_xlabel(key)
    return positions


def draw_final_metric(jobs, keys: Sequence[str], out: Path, subtitle: str, formats: Sequence[str]) -> List[Path]:
    """final_metric.png: per swept key, the final metric against its value, one line per other values."""
    if not keys:
        return []
    metric = headline(jobs)
    fig = style.figure(max(9, 6.5 * len(keys)), 4.8)
    for panel, key in enumerate(keys):
        ax = fig.add_subplot(1, len(keys), panel + 1)
        positions = axis_for(ax, key, values_of(jobs, key))
        others = [k for k in keys if k != key]
        groups: Dict[str, list] = {}
        for job in jobs:
            groups.setdefault(label(job, others) if others else "", []).append(job)
        cloud = len(groups) > MAX_GROUPS  # a search samples new values each trial: one cloud of points
        if cloud:
            groups = {"every job (the other keys vary)": list(jobs)}
        shown: List[np.ndarray] = []
        stopped: Dict[float, List[str]] = {}
        for (name, members), color in zip(groups.items(), style.colors(len(groups))):
            members = sorted(members, key=lambda j: positions[repr(j.values.get(key))])
            x = [positions[repr(j.values.get(key))] for j in members]
            y = np.array([final_value(j, metric) for j in members])
            ax.plot(x, y, marker="o", ls="none" if cloud else "-", color=color, label=name or None)
            shown.append(y)
            for xi, j, yi in zip(x, members, y):
                if np.isnan(yi):
                    stopped.setdefault(xi, []).append(j.run.status)
        for xi, statuses in stopped.items():  # at the top edge of the plot, where a value would be off the chart
            ax.plot(
                xi,
                0.96,
                transform=ax.get_xaxis_transform(),
                marker="X",
                ms=11,
                ls="none",
                color=style.FAILED_COLOR,
                mec="black",
            )
            ax.annotate(
                "\n".join(statuses),
                (xi, 0.96),
                xycoords=ax.get_xaxis_transform(),
                xytext=(0, -10),
                textcoords="offset points",
                ha="center",
                va="top",
                fontsize="x-small",
                color=style.FAILED_COLOR,
            )
        if any(np.isnan(final_value(j, metric)) for j in jobs):
            ax.plot(
                [],
                [],
                marker="X",
                ms=9,
                ls="none",
                color=style.FAILED_COLOR,
                mec="black",
                label="did not complete (status below)",
            )
        values = np.concatenate(shown)
        if metric.endswith("loss"):
            style.cost_scale(ax, values, f"final {metric}")
        else:
            ax.set_ylabel(f"final {metric}")
        ax.grid(alpha=0.3)
        style.legend(ax)
        if len(ax.get_legend_handles_labels()[1]) == 1:
            ax.legend(fontsize="small")
    style.title(fig, f"Final {metric} against each swept value", subtitle)
    return style.save(fig, out, "final_metric", formats)


def draw_heatmap(jobs, keys: Sequence[str], out: Path, subtitle: str, formats: Sequence[str]) -> List[Path]:
    """heatmap.png when exactly two keys were swept: the final metric for each pair of values."""
    if len(keys) != 2 or any(len(values_of(jobs, key)) > MAX_CELLS for key in keys):
        return []  # a search's sampled values fill few cells of a huge grid: nothing to read
    from matplotlib.colors import LogNorm
    from matplotlib.patches import Rectangle

    metric = headline(jobs)
    columns, rows = values_of(jobs, keys[0]), values_of(jobs, keys[1])
    grid = np.full((len(rows), len(columns)), np.nan)
    notes: Dict[Tuple[int, int], str] = {}
    for job in jobs:
        i, j = rows.index(job.values.get(keys[1])), columns.index(job.values.get(keys[0]))
        grid[i, j] = final_value(job, metric)
        if np.isnan(grid[i, j]):
            notes[i, j] = job.run.status
    fig = style.figure(max(9.0, 2.5 + 1.3 * len(columns)), 2.2 + 0.9 * len(rows))  # wide enough for the title
    ax = fig.add_subplot()
    finite = grid[np.isfinite(grid)]
    log_norm = metric.endswith("loss") and style.spans_decades(finite)
    image = ax.imshow(
        np.ma.masked_invalid(grid),
        cmap=style.SEQUENCE + ("" if metric.endswith("loss") else "_r"),
        norm=LogNorm() if log_norm else None,
        aspect="auto",
    )
    better = "lower" if metric.endswith("loss") else "higher"
    bar = fig.colorbar(image, ax=ax)
    if log_norm:
        style.log_labels(bar.ax.yaxis)
    bar.set_label(f"final {metric} ({better} is better{', log scale' if log_norm else ''})")
    for i, j in notes:  # jobs that did not complete: a grey cell named by their status
        ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, color="lightgray"))
    for (i, j), value in np.ndenumerate(grid):
        text = notes.get((i, j)) or (f"{value:.3g}" if np.isfinite(value) else "")
        color = style.FAILED_COLOR if (i, j) in notes else readable_on(image.cmap(image.norm(value)))
        ax.text(
            j,
            i,
            text,
            ha="center",
            va="center",
            fontsize="small",
            color=color,
            fontweight="bold" if (i, j) in notes else None,
        )
    ax.set_xticks(range(len(columns)), [style.format_value(v) for v in columns])
    ax.set_yticks(range(len(rows)), [style.format_value(v) for v in rows])
    ax.set_xlabel(keys[0])
    ax.set_ylabel(keys[1])
    style.title(fig, f"Final {metric} for each pair of swept values", subtitle)
    return style.save(fig, out, "heatmap", formats)


def readable_on(background) -> str:
    """Black text on a light cell, white on a dark one."""
    r, g, b = background[:3]
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"
