"""Learning curves: one run's cost per iteration and accuracy per epoch; several runs overlaid.

The per-epoch cost (epochs.csv) is the whole training set's cost with the parameters at the
end of each epoch. cost.png's axis counts the parameter updates done: epoch e's row sits at
the updates done by its end, and iteration k's batch cost (taken before its update) at k - 1,
so 15 iterations of batch gradient descent span 0..15, epochs 0..15 on the top axis; there
the epochs' points fall exactly on the per-iteration curve, and for mini-batches they run
through the saw-tooth.
"""

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from gdrun.config.splits import held_out_name
from gdrun.plots import style
from gdrun.rundir.layout import EPOCHS, ITERATIONS
from gdrun.rundir.reader import RunFolder

# Runs longer than four times this many iterations get a panel zoomed on about this many first ones.
ZOOM_ITERATIONS = 40


def epoch_steps(iteration_epochs: np.ndarray, epochs: np.ndarray) -> np.ndarray:
    """Where each epochs.csv row sits on the updates axis: the iterations done by the end of its epoch.

    `iteration_epochs` is iterations.csv's epoch column, `epochs` epochs.csv's."""
    return np.searchsorted(np.sort(iteration_epochs), epochs, side="right")


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
    # iteration k's cost is taken before its update, with k - 1 updates done
    steps, costs = iterations["step"][:upto] - 1, style.finite(iterations["loss"][:upto])
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
                label=f"{held_out_name(run.config)} set, after each epoch",
            )
            shown.append(val)
    zoomed = upto < len(iterations["step"])
    ax.set_xlabel(
        f"parameter updates done: the first {upto} iterations, zoomed"
        if zoomed
        else "parameter updates done (iteration k's batch cost at k - 1, before its update)"
    )
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # no "iteration 1.25" on short runs
    style.cost_scale(ax, np.concatenate(shown))
    if per_epoch:
        top = ax.secondary_xaxis("top", functions=(lambda s: s / per_epoch, lambda e: e * per_epoch))
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
    ends = []  # (last value, colour) of each line, labelled below
    for column, label, color, ls in (
        ("train_accuracy", "training set", style.EPOCH_COLOR, "-"),
        ("val_accuracy", f"{held_out_name(run.config)} set", style.VAL_COLOR, "--"),
    ):
        values = 100 * style.finite(epochs[column])
        if np.isfinite(values).any():
            ax.plot(x, values, color=color, ls=ls, marker="o" if len(x) <= 60 else None, ms=4, label=label)
            ends.append((float(values[np.isfinite(values)][-1]), color))
    end_labels(ax, x[-1], ends)
    ax.set_xlabel("epoch (0 = before training)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("accuracy (%)")
    # room above 100% for the highest line's end label
    ax.set_ylim(-2, 108 if ends and max(value for value, _ in ends) > 88 else 102)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="lower right")  # even with one line: it says which set
    style.title(fig, "Accuracy per epoch", run.title())
    return style.save(fig, out, "accuracy", formats)


def end_labels(ax: Axes, x: float, ends: List[Tuple[float, Any]]) -> None:
    """Each line's last value written at its end: the highest above its line, the others below theirs,
    so two close lines (train 97.2%, validation 95.3%) never print on top of each other."""
    ends = sorted(ends, reverse=True)
    for i, (value, color) in enumerate(ends):
        above = i == 0
        ax.annotate(
            f"{value:.1f}%",
            (x, value),
            textcoords="offset points",
            xytext=(-2, 6 if above else -7),
            ha="right",
            va="bottom" if above else "top",
            color=color,
            fontsize="small",
        )


@dataclass
class Line:
    """One setting in an overlay: its run (and its repetitions: other seeds), label, colour and line style.

    A line with repetitions is drawn as the mean of its completed runs with a band over their range;
    a run that did not complete is drawn on its own, ending in a cross. `panel` names the row of
    panels the line goes in (a swept key's value); lines with the same panel share a row.
    """

    run: RunFolder
    label: str
    color: object
    linestyle: str = "-"
    repeats: List[RunFolder] = field(default_factory=list)
    panel: str = ""

    @property
    def runs(self) -> List[RunFolder]:
        return [self.run, *self.repeats]


@dataclass
class Stop:
    """Where a run that did not complete stopped, on one panel: its last finite value."""

    x: float
    y: float
    color: object
    status: str


@dataclass
class Drawn:
    """What the panels of an overlay hold, for its legend: a handle per label, the bands, the stops."""

    legend: Dict[str, Any] = field(default_factory=dict)  # label -> handle, in the order first drawn
    val: bool = False
    band: bool = False
    stops: Dict[Axes, List[Stop]] = field(default_factory=dict)


def draw_overlay(
    lines: List[Line],
    out: Path,
    name: str,
    subtitle: str,
    formats: Sequence[str],
    scale: Optional[style.ColorScale] = None,
    styles: Sequence[Tuple[str, str]] = (),
) -> List[Path]:
    """Learning curves of several runs on one figure: cost per iteration (left) and per epoch (right), a row of
    the two per `Line.panel`.

    Runs whose epochs hold different numbers of iterations (batch sizes) share the left panel by epoch,
    each iteration placed at the share of its epoch done. With `scale` the lines' colours are read off
    a colour bar instead of a legend entry each; `styles` are (label, line style) legend entries for
    a key told apart by line style.
    """
    if not lines:
        return []
    panels = list(dict.fromkeys(line.panel for line in lines))
    fig = style.figure(14 if len(lines) > style.LEGEND_INSIDE or scale else 12, 1.2 + 4.2 * len(panels))
    drawn = Drawn()
    axes: List[Axes] = []
    for row, panel in enumerate(panels):
        per_iteration = fig.add_subplot(len(panels), 2, 2 * row + 1)
        per_epoch = fig.add_subplot(len(panels), 2, 2 * row + 2)
        axes += [per_iteration, per_epoch]
        members = [line for line in lines if line.panel == panel]
        draw_row(per_iteration, per_epoch, members, drawn, len(lines) > 8, len(panels) == 1)
        where = f"{panel}: " if panel else ""
        # pad: room for the crosses of runs that stopped above the panel's top
        per_iteration.set_title(f"{where}cost of each iteration's batch", fontsize=10, pad=9)
        per_epoch.set_title(f"{where}whole training set after each epoch", fontsize=10, pad=9)
    for ax, stops in drawn.stops.items():
        stop_markers(ax, stops)
    handles, labels = ([], []) if scale else (list(drawn.legend.values()), list(drawn.legend))
    extra: List[Tuple[Any, str]] = [(Line2D([], [], color="gray", ls=dashes), text) for text, dashes in styles]
    if drawn.val:
        extra.append((Line2D([], [], color="gray", ls=":"), f"dotted: {held_out_name(lines[0].run.config)} set"))
    if drawn.band:
        extra.append((Patch(color="gray", alpha=0.3), "line: mean of a setting's runs (seeds); band: their range"))
    if drawn.stops:
        cross = Line2D([], [], marker="X", ms=9, ls="none", color="gray", mec=style.FAILED_COLOR)
        extra.append((cross, "where a run stopped (diverged, ...); ×N: N runs there"))
    handles += [handle for handle, _ in extra]
    labels += [text for _, text in extra]
    if scale:  # the lines' colours on a bar; what else there is to say, below the panels
        scale.bar(fig, axes)
        if handles:
            fig.legend(handles, labels, loc="outside lower center", fontsize="small", ncols=min(len(labels), 3))
    elif len(labels) > style.LEGEND_INSIDE:  # beside the top row, where it covers no curve
        axes[1].legend(
            handles,
            labels,
            fontsize="small" if len(labels) <= 20 else "x-small",
            loc="upper left",
            bbox_to_anchor=(1.02, 1.0),
            ncols=1 + len(labels) // 30,
        )
    elif len(labels) > 1:
        axes[-1].legend(handles, labels, fontsize="small", loc="best")
    style.title(fig, "Learning curves", subtitle)
    return style.save(fig, out, name, formats)


def draw_row(per_iteration: Axes, per_epoch: Axes, lines: List[Line], drawn: Drawn, many: bool, said: bool) -> None:
    """One row of an overlay: each line per iteration (or by epoch, see draw_overlay) and per epoch. `said`:
    the legend says how each line's runs ended (one row; with several, a line's label is in each)."""
    lengths = epoch_lengths([run for line in lines for run in line.runs])
    per_step = lengths.pop(None, None)
    framing: Dict[Axes, List[np.ndarray]] = {per_iteration: [], per_epoch: []}  # the completed runs' costs
    beside: Dict[Axes, List[np.ndarray]] = {per_iteration: [], per_epoch: []}  # the others'
    for line in lines:
        kw: Dict[str, Any] = dict(color=line.color, ls=line.linestyle, lw=1.1 if many else 1.5)
        done = [run for run in line.runs if run.status == "completed"]
        stopped = [run for run in line.runs if run.status != "completed"]
        label = line_label(line, done, stopped) if said else line.label
        curves: Dict[Axes, List[Optional[Tuple[np.ndarray, np.ndarray]]]] = {
            per_iteration: [iteration_curve(run, None if per_step else lengths.get(id(run), 1)) for run in line.runs],
            per_epoch: [epoch_curve(run) for run in line.runs],
        }
        if all(c is None for cs in curves.values() for c in cs):  # failed before its first iteration
            handle = per_epoch.plot([], [], marker="X", ls="none", color=line.color)[0]
            drawn.legend.setdefault(f"{label}: no data", handle)
            continue
        for ax, found in curves.items():
            marker = "o" if ax is per_epoch and max(len(c[0]) for c in found if c is not None) <= 30 else None
            complete = [c for run, c in zip(line.runs, found) if c is not None and run.status == "completed"]
            if complete:
                x, mean, lo, hi = mean_and_range(complete)
                drawn.legend.setdefault(label, ax.plot(x, mean, marker=marker, ms=3, **kw)[0])
                framing[ax].append(mean)
                if len(complete) > 1:
                    ax.fill_between(x, lo, hi, color=line.color, alpha=0.2, lw=0)
                    framing[ax] += [lo, hi]
                    drawn.band = True
            for run, c in zip(line.runs, found):
                if c is None or run.status == "completed":
                    continue
                # beside a mean, a thin line of its own; alone, the line itself
                own = {**kw, "lw": 0.9, "alpha": 0.7} if complete else kw
                drawn.legend.setdefault(label, ax.plot(*c, marker=marker, ms=3, **own)[0])
                beside[ax].append(c[1])
                ok = np.isfinite(c[1])
                if ok.any():
                    drawn.stops.setdefault(ax, []).append(Stop(c[0][ok][-1], c[1][ok][-1], line.color, run.status))
        drawn.val |= draw_val(per_epoch, line, done, kw["lw"] * 0.8)
    for ax in (per_iteration, per_epoch):
        frame_costs(ax, framing[ax], beside[ax])
        ax.grid(alpha=0.3)
    per_iteration.set_xlabel("iteration" if per_step else "epoch (each iteration at the share of its epoch done)")
    per_epoch.set_xlabel("epoch (0 = before training)")
    for ax in (per_iteration, per_epoch):  # no "iteration 1.5", no "epoch 0.25"
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def line_label(line: Line, done: List[RunFolder], stopped: List[RunFolder]) -> str:
    """The line's label, with how many of its runs are averaged and how the others ended."""
    ended = ", ".join(f"{n} {status}" for status, n in Counter(run.status for run in stopped).items())
    if len(line.runs) == 1:
        return line.label if not stopped else f"{line.label} ({stopped[0].status})"
    said = f"mean of {len(done)}" + (f"; {ended}" if ended else "")
    return f"{line.label} ({said})"


def draw_val(ax: Axes, line: Line, done: List[RunFolder], lw: float) -> bool:
    """The validation cost per epoch, dotted (the mean of the completed runs); True when there is one."""
    curves = [c for c in (epoch_curve(run, "val_loss") for run in done) if c is not None]
    if not curves:
        return False
    x, mean, _, _ = mean_and_range(curves)
    if not np.isfinite(mean).any():
        return False
    ax.plot(x, mean, color=line.color, ls=":", lw=lw)
    return True


def epoch_length(run: RunFolder) -> Tuple[Optional[int], bool]:
    """(iterations in the run's longest epoch, whether that epoch is whole); (None, False) without iterations.

    An epoch is known whole when the run went past it or completed: a run that diverged in its first
    epoch says nothing of how long an epoch is.
    """
    iterations = run.columns(ITERATIONS)
    if iterations is None or not len(iterations["epoch"]):
        return None, False
    epochs, counts = np.unique(iterations["epoch"], return_counts=True)
    return int(counts.max()), len(epochs) > 1 or run.status == "completed"


def epoch_lengths(runs: List[RunFolder]) -> Dict[Any, int]:
    """Iterations per epoch: {None: L} when every run's whole epochs hold L (one iteration axis serves them
    all), else {id(run): L} per run: its own, or for a run without a whole epoch, that of a run with the
    same batch size (its own partial count without one)."""
    found = {id(run): epoch_length(run) for run in runs}
    whole = {length for length, known in found.values() if known and length}
    if len(whole) <= 1:
        return {None: whole.pop() if whole else 1}
    by_batch: Dict[str, int] = {}
    for run in runs:
        length, known = found[id(run)]
        if known and length:
            by_batch[repr(run.what.get("batch_size"))] = length
    return {
        id(run): length if known else by_batch.get(repr(run.what.get("batch_size")), length or 1)
        for run, (length, known) in zip(runs, found.values())
        if length
    }


def iteration_curve(run: RunFolder, length: Optional[int]) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """(x, cost of each iteration's batch): x the iteration (`length` None), or the epochs done when the
    iteration began: epoch e's k-th iteration at e - 1 + k / `length`."""
    iterations = run.columns(ITERATIONS)
    if iterations is None:
        return None
    costs = style.finite(iterations["loss"])
    if length is None:
        return iterations["step"], costs
    epochs = iterations["epoch"]
    _, first, inverse = np.unique(epochs, return_index=True, return_inverse=True)
    return epochs - 1 + (np.arange(len(epochs)) - first[inverse]) / length, costs


def epoch_curve(run: RunFolder, column: str = "train_loss") -> Optional[Tuple[np.ndarray, np.ndarray]]:
    epochs = run.columns(EPOCHS)
    if epochs is None:
        return None
    return epochs["epoch"], style.finite(epochs[column])


def mean_and_range(curves: List[Tuple[np.ndarray, np.ndarray]]) -> Tuple[np.ndarray, ...]:
    """(x, mean, min, max) over the curves' common first points (finite values only; nan where none is)."""
    n = min(len(x) for x, _ in curves)
    values = np.stack([y[:n] for _, y in curves])
    ok = np.isfinite(values)
    count = ok.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(ok, values, 0).sum(axis=0) / count
    lo = np.where(count > 0, np.where(ok, values, np.inf).min(axis=0), np.nan)
    hi = np.where(count > 0, np.where(ok, values, -np.inf).max(axis=0), np.nan)
    return curves[0][0][:n], mean, lo, hi


def frame_costs(ax: Axes, framing: List[np.ndarray], beside: List[np.ndarray]) -> None:
    """The cost axis, framing the runs that completed: log when their costs span decades, and their range,
    so a diverging run's climb to 1e12 does not flatten them (it leaves the top of the panel). Without a
    completed run, everything drawn."""
    shown = np.concatenate(framing or beside) if framing or beside else np.array([])
    style.cost_scale(ax, shown)
    if not framing:
        return
    kept = np.concatenate(framing)
    kept = kept[np.isfinite(kept)]
    if ax.get_yscale() == "log":
        kept = kept[kept > 0]
    if kept.size == 0:
        return
    lo, hi = float(kept.min()), float(kept.max())
    if ax.get_yscale() == "log":
        top = hi * (hi / lo) ** 0.08 if hi > lo else hi * 2
        bottom = lo / (hi / lo) ** 0.05 if hi > lo else lo / 2
    else:
        pad = 0.08 * (hi - lo) if hi > lo else abs(hi) * 0.1 or 1.0
        top, bottom = hi + pad, lo - pad
    current = ax.get_ylim()
    ax.set_ylim(max(bottom, current[0]), min(top, current[1]))


# Stop markers closer than this (a fraction of the panel's width or height) are drawn as one, with a count.
STOP_RADIUS = 0.035


def stop_markers(ax: Axes, stops: List[Stop]) -> None:
    """A cross where each run stopped, those that would cover each other drawn as one marked ×N; a run
    that stopped above the panel's top (a diverging cost) is marked at the top edge."""
    bottom, top = ax.get_ylim()
    ax.get_xlim()  # settles the view limits, so the transform below is the one drawn
    placed = [(stop, min(max(stop.y, bottom), top)) for stop in stops]
    points = ax.transAxes.inverted().transform(ax.transData.transform([(s.x, y) for s, y in placed]))
    clusters: List[List[int]] = []
    for i, point in enumerate(points):
        for cluster in clusters:
            if np.abs(points[cluster[0]] - point).max() < STOP_RADIUS:
                cluster.append(i)
                break
        else:
            clusters.append([i])
    for cluster in clusters:
        stop, y = placed[cluster[0]]
        colors = {repr(placed[i][0].color) for i in cluster}
        color = stop.color if len(colors) == 1 else "gray"
        ax.plot(stop.x, y, marker="X", ms=10, color=color, mec=style.FAILED_COLOR, ls="none", clip_on=False, zorder=5)
        if len(cluster) > 1:
            ax.annotate(
                f"×{len(cluster)}",
                (stop.x, y),
                xytext=(7, -3 if y >= top else 3),
                textcoords="offset points",
                fontsize="small",
                color=style.FAILED_COLOR,
                va="top" if y >= top else "bottom",
                annotation_clip=False,
            )


def stop_marker(ax, run: RunFolder, x: np.ndarray, y: np.ndarray, color, label: Optional[str] = None) -> None:
    """Where a run that did not complete stopped: a cross at its last finite value."""
    ok = np.isfinite(y)
    if run.status != "completed" and ok.any():
        ax.plot(x[ok][-1], y[ok][-1], marker="X", ms=10, color=color, mec=style.FAILED_COLOR, ls="none", label=label)
