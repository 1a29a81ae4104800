"""A sweep's pictures: the final metric against each swept value, and a heat map of two swept keys.

Jobs that repeat a setting over seeds (sweep_summary.REPEAT_KEYS) are one point: the mean of
those that completed, with a band for its 95 % t-interval and a dot per seed. Jobs that did not
complete are drawn as such (a red cross, a grey cell named by their status), never left out;
crosses that would cover each other are drawn as one, with a count. The overlaid learning
curves and paths are curves.py's and surface.py's, shared with `gdrun-report --compare`; how a
sweep's lines are coloured and grouped is here.
"""

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from gdrun.config.metric_names import lower_is_better
from gdrun.plots import style
from gdrun.rundir.sweep_summary import REPEAT_KEYS, describe, setting_keys

# The line styles that tell apart the values of a second swept key.
LINESTYLES = ("-", "--", ":", "-.")
# More lines than this in a final-metric panel, or values than this on a heat map's axis (a
# search's sampled values), and they are drawn as one cloud of points, and no heat map.
MAX_GROUPS = 8
MAX_CELLS = 12
# A heat map with more values than MAX_CELLS on an axis (up to this many) is drawn when it is a grid (at
# least half its pairs swept, as a 16 x 16 lr x momentum grid), without numbers in its cells.
MAX_GRID = 24
# A second swept key with at most this many values gets a row of learning-curve panels per value.
MAX_PANELS = 4
# A sweep with more jobs than this, over two keys (the second on line styles), gets learning_curves.png and
# paths.png at one value of the second key (the best job's): 256 curves and paths of an lr × momentum grid
# cover each other, and 16 line styles cannot be told apart.
MAX_PATHS = 24
# Labels of stopped jobs closer than this (a fraction of the panel's width) are said as one.
LABEL_SPACING = 0.1


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


@dataclass
class Palette:
    """The colours of a swept key's values: named in a legend, or read off a colour bar (`scale`) when the
    key is a number with more values than a legend can hold."""

    colors: Dict[str, object]  # repr(value) -> colour
    scale: Optional[style.ColorScale] = None

    def color(self, value) -> object:
        return self.colors[repr(value)]


def palette(jobs, key: Optional[str]) -> Palette:
    """Colours for `key`'s values, light (small) to dark (large); one colour when no key is swept."""
    if key is None:
        return Palette({repr(None): style.colors(1)[0]})
    values = values_of(jobs, key)
    if len(values) > style.MAX_LEGEND and all(is_number(v) for v in values):
        scale = style.color_scale(key, [float(v) for v in values])
        return Palette({repr(v): scale.color(float(v)) for v in values}, scale)
    return Palette(dict(zip(map(repr, values), style.colors(len(values)))))


@dataclass
class Setting:
    """The jobs that share the values of the swept keys but the repetitions (seed, data.fold)."""

    values: Dict[str, object]
    jobs: List


def settings_of(jobs, keys: Sequence[str]) -> List[Setting]:
    """The jobs grouped by their values of `keys`, in the order first met."""
    found: Dict[Tuple, Setting] = {}
    for job in jobs:
        values = {key: job.values.get(key) for key in keys}
        found.setdefault(tuple(map(repr, values.values())), Setting(values, [])).jobs.append(job)
    return list(found.values())


def headline(jobs) -> str:
    """The metric the sweep is judged by: the completed jobs' headline (train_loss, val_accuracy, ...)."""
    names = [job.run.headline for job in jobs if job.run.headline]
    return names[0] if names else "train_loss"


def final_value(job, metric: str) -> float:
    """A job's final metric; nan when it did not complete or has no finite value."""
    value = job.run.final(metric) if job.run.status == "completed" else None
    return float(value) if value is not None and np.isfinite(value) else np.nan


def best_value_of(jobs, key: str):
    """`key`'s value in the best job, as the sweep's account names it (the best value of its headline metric
    among the completed jobs); the first value when none completed."""
    metric = headline(jobs)
    scored = []
    for job in jobs:
        best = (job.run.summary or {}).get("best") or {}
        value = best.get("value") if job.run.status == "completed" and best.get("metric") == metric else None
        if isinstance(value, (int, float)) and np.isfinite(value):
            scored.append((value if lower_is_better(metric) else -value, job.number, job))
    if not scored:
        return values_of(jobs, key)[0]
    return min(scored, key=lambda entry: entry[:2])[2].values.get(key)


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
    """final_metric.png: per swept key, the final metric against its value, one line per other values; a
    setting repeated over seeds as their mean, with its 95 % interval as a band and a dot per seed."""
    if not keys:
        return []
    metric = headline(jobs)
    settings = setting_keys(keys)
    repeats = [key for key in keys if key in REPEAT_KEYS]
    axes_keys = settings or repeats  # a sweep of seeds alone: the metric against the seed
    fig = style.figure(max(9, 6.5 * len(axes_keys)), 4.8)
    for panel, key in enumerate(axes_keys):
        ax = fig.add_subplot(1, len(axes_keys), panel + 1)
        metric_panel(ax, fig, jobs, key, [k for k in settings if k != key], metric, repeats)
    style.title(fig, f"Final {metric} against each swept value", subtitle)
    return style.save(fig, out, "final_metric", formats)


def metric_panel(ax, fig, jobs, key: str, others: List[str], metric: str, repeats: List[str]) -> None:
    """One panel of final_metric.png: the metric against `key`'s values, a line per setting of `others`."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    positions = axis_for(ax, key, values_of(jobs, key))
    lines = settings_of(jobs, others)
    colors = palette(jobs, others[0]) if len(others) == 1 else None
    # More lines than a legend can name, and no colour bar to read them off (a search samples new
    # values each trial): one cloud of points.
    cloud = len(lines) > MAX_GROUPS and (colors is None or colors.scale is None)
    if cloud:
        lines, colors = [Setting({}, list(jobs))], None
    fallback = style.colors(len(lines))
    shown: List[np.ndarray] = []
    stopped: Dict[float, Counter] = {}
    band = dots = False
    for i, line in enumerate(lines):
        color = colors.color(line.values[others[0]]) if colors else fallback[i]
        name = ", ".join(f"{k}={style.format_value(v)}" for k, v in line.values.items())
        if cloud:
            name = "every job (the other keys vary)"
        points = settings_of(line.jobs, [key])
        points.sort(key=lambda p: positions[repr(p.values[key])])
        x, mean, lo, hi = [], [], [], []
        for point in points:
            at = positions[repr(point.values[key])]
            values = [v for v in (final_value(job, metric) for job in point.jobs) if np.isfinite(v)]
            ended = Counter(job.run.status for job in point.jobs if job.run.status != "completed")
            if ended:
                stopped.setdefault(at, Counter()).update(ended)
            if len(values) > 1 and not cloud:
                ax.plot([at] * len(values), values, ls="none", marker=".", ms=5, color=color, alpha=0.6)
                shown.append(np.array(values))
                dots = True
            m, _, ci = describe(values) if not cloud else (np.nan, None, None)
            for v in values if cloud else [m]:
                x.append(at)
                mean.append(np.nan if v is None else v)
                lo.append(np.nan if ci is None or v is None else v - ci)
                hi.append(np.nan if ci is None or v is None else v + ci)
        y = np.array(mean, dtype=float)
        joined = not cloud and key not in REPEAT_KEYS  # one seed's value has nothing to do with the next's
        lw = 1.0 if len(lines) > MAX_GROUPS else 1.5
        ax.plot(x, y, marker="o", ms=5, lw=lw, ls="-" if joined else "none", color=color, label=name or None)
        shown.append(y)
        if np.isfinite(lo).any():
            ax.fill_between(x, lo, hi, color=color, alpha=0.2, lw=0)
            shown += [np.array(lo), np.array(hi)]
            band = True
    if key in REPEAT_KEYS:  # a sweep of seeds alone: their mean across the panel
        finals = [v for v in (final_value(job, metric) for job in jobs) if np.isfinite(v)]
        m, _, ci = describe(finals)
        if m is not None:
            ax.axhline(m, color="gray", lw=1, ls="--", label=f"mean over {len(finals)} {repeats[0]}s")
            if ci is not None:
                ax.axhspan(m - ci, m + ci, color="gray", alpha=0.15, lw=0)
                band = True
    drawn = np.concatenate(shown) if shown else np.array([])
    if metric.endswith("loss"):
        style.cost_scale(ax, drawn, f"final {metric}")
    else:
        ax.set_ylabel(f"final {metric}")
    ax.grid(alpha=0.3)
    stop_labels(ax, stopped)
    handles, labels = ax.get_legend_handles_labels()
    if colors is not None and colors.scale is not None:
        colors.scale.bar(fig, [ax])
        handles, labels = handles[len(lines) :], labels[len(lines) :]  # the colour bar names the lines
    if dots:
        handles.append(Line2D([], [], ls="none", marker=".", color="gray"))
        labels.append(f"a dot per {' × '.join(repeats) or 'repetition'}")
    if band:
        handles.append(Patch(color="gray", alpha=0.3))
        labels.append("band: 95% t-interval of the mean")
    if stopped:
        handles.append(Line2D([], [], marker="X", ms=9, ls="none", color=style.FAILED_COLOR, mec="black"))
        labels.append("jobs that did not complete (how many, below)")
    if len(labels) > 3:  # beside the panel, where it covers no point
        ax.legend(handles, labels, fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0))
    elif len(labels) > 1 or (labels and (band or stopped)):
        ax.legend(handles, labels, fontsize="small", loc="best")


def stop_labels(ax, stopped: Dict[float, Counter]) -> None:
    """Jobs that did not complete, at the top edge of the panel (where a value would be off the chart): a
    cross at each value, and their count by status under it; neighbours too close to label apart share one
    label (`9 diverged`) under their middle."""
    if not stopped:
        return
    lo, hi = ax.get_ylim()  # room above the values for the crosses and their counts
    log = ax.get_yscale() == "log"
    ax.set_ylim(lo, hi * (hi / lo) ** 0.18 if log and lo > 0 else hi + 0.18 * (hi - lo))
    xs = sorted(stopped)
    top = ax.get_xaxis_transform()  # x in data, y in axes fraction
    for x in xs:
        ax.plot(x, 0.96, transform=top, marker="X", ms=10, ls="none", color=style.FAILED_COLOR, mec="black")
    ax.get_xlim()  # settles the view limits, so the transforms below are the ones drawn
    to_fraction = ax.transData + ax.transAxes.inverted()
    fractions = to_fraction.transform([(x, 1.0) for x in xs])[:, 0]
    runs: List[List[int]] = [[0]]
    for i in range(1, len(xs)):
        if fractions[i] - fractions[runs[-1][-1]] < LABEL_SPACING:
            runs[-1].append(i)
        else:
            runs.append([i])
    for run in runs:
        counts: Counter = Counter()
        for i in run:
            counts.update(stopped[xs[i]])
        middle = (fractions[run[0]] + fractions[run[-1]]) / 2
        at = to_fraction.inverted().transform([(middle, 0.5)])[0, 0]  # back to data: it stays if the limits move
        ax.annotate(
            "\n".join(f"{n} {status}" for status, n in counts.items()),
            (at, 0.96),
            xycoords=top,
            xytext=(0, -10),
            textcoords="offset points",
            ha="center",
            va="top",
            fontsize="x-small",
            color=style.FAILED_COLOR,
        )


def draw_heatmap(jobs, keys: Sequence[str], out: Path, subtitle: str, formats: Sequence[str]) -> List[Path]:
    """heatmap.png when exactly two keys were swept (besides seeds): the final metric for each pair of values,
    the mean over seeds when they repeat each pair."""
    keys = setting_keys(keys)
    if len(keys) != 2 or not is_grid(jobs, keys):
        return []  # a search's sampled values fill few cells of a huge grid: nothing to read
    from matplotlib.colors import LogNorm
    from matplotlib.patches import Rectangle

    metric = headline(jobs)
    columns, rows = values_of(jobs, keys[0]), values_of(jobs, keys[1])
    grid = np.full((len(rows), len(columns)), np.nan)
    notes: Dict[Tuple[int, int], str] = {}  # cells no job of completed: their statuses
    shares: Dict[Tuple[int, int], str] = {}  # cells some jobs of did not complete: `3 of 5`
    repeated = False
    for setting in settings_of(jobs, keys):
        i, j = rows.index(setting.values[keys[1]]), columns.index(setting.values[keys[0]])
        values = [v for v in (final_value(job, metric) for job in setting.jobs) if np.isfinite(v)]
        repeated |= len(setting.jobs) > 1
        if values:
            grid[i, j] = np.mean(values)
            if len(values) < len(setting.jobs):
                shares[i, j] = f"{len(values)} of {len(setting.jobs)} completed"
        else:
            counts = Counter(job.run.status for job in setting.jobs)
            notes[i, j] = "\n".join(f"{n} {s}" if len(setting.jobs) > 1 else s for s, n in counts.items())
    what = f"Final {metric} for each pair of swept values" + (", mean over seeds" if repeated else "")
    # wide enough for the title lines (~0.085 inch a character at their size)
    labelled = max(len(columns), len(rows)) <= MAX_CELLS
    cell = (1.3, 0.9) if labelled else (0.45, 0.35)  # inches: room for a number, or just for a colour
    width = max(9.0, 2.5 + cell[0] * len(columns), 0.085 * max(len(what), len(subtitle)))
    fig = style.figure(width, 2.2 + cell[1] * len(rows))
    ax = fig.add_subplot()
    finite = grid[np.isfinite(grid)]
    log_norm = lower_is_better(metric) and style.spans_decades(finite)
    image = ax.imshow(
        np.ma.masked_invalid(grid),
        cmap=style.SEQUENCE + ("" if lower_is_better(metric) else "_r"),
        norm=LogNorm() if log_norm else None,
        aspect="auto",
    )
    better = "lower" if lower_is_better(metric) else "higher"
    bar = fig.colorbar(image, ax=ax)
    if log_norm:
        style.log_labels(bar.ax.yaxis)
    mean = "mean " if repeated else ""
    bar.set_label(f"{mean}final {metric} ({better} is better{', log scale' if log_norm else ''})")
    for i, j in notes:  # jobs that did not complete: a grey cell named by their status
        ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, color="lightgray"))
    for (i, j), value in np.ndenumerate(grid) if labelled else ():
        text = notes.get((i, j)) or (f"{value:.3g}" if np.isfinite(value) else "")
        if (i, j) in shares:
            text += f"\n({shares[i, j]})"
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
    if not labelled and notes:
        ax.set_title(
            "grey: no job of the pair completed (diverged, failed, ...)", fontsize="small", color=style.FAILED_COLOR
        )
    ax.set_xticks(range(len(columns)), [style.format_value(v) for v in columns], rotation=0 if labelled else 90)
    ax.set_yticks(range(len(rows)), [style.format_value(v) for v in rows])
    ax.set_xlabel(keys[0])
    ax.set_ylabel(keys[1])
    style.title(fig, what, subtitle)
    return style.save(fig, out, "heatmap", formats)


def is_grid(jobs, keys: Sequence[str]) -> bool:
    """Two keys whose values a heat map can show: at most MAX_CELLS each, or up to MAX_GRID when at least
    half the pairs were swept."""
    sizes = [len(values_of(jobs, key)) for key in keys]
    if max(sizes) <= MAX_CELLS:
        return True
    pairs = {tuple(repr(job.values.get(key)) for key in keys) for job in jobs}
    return max(sizes) <= MAX_GRID and 2 * len(pairs) >= sizes[0] * sizes[1]


def readable_on(background) -> str:
    """Black text on a light cell, white on a dark one."""
    r, g, b = background[:3]
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"
