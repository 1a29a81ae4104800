"""Data space: the training points with the model's prediction at a few moments of training.

From data.csv (the points) and fit.csv (the model's raw output on a grid at a few epochs):
- one input, regression: the fitted line (or curve) at each snapshot, labelled by epoch;
- one input, two classes: the probability of class 1 at each snapshot, with the threshold;
- one input, several classes: the class probabilities at the end and the predicted class
  regions at each snapshot;
- two inputs: the fitted plane (one per target) or the decision regions, at the end.
"""

from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from gdrun.plots import style
from gdrun.rundir.layout import DATA, EPOCHS, FIT
from gdrun.rundir.reader import RunFolder

# At most this many snapshots drawn (evenly spread, always the first and the last).
MAX_SNAPSHOTS = 6
CLASS_COLORS = "tab10"


class Fit:
    """data.csv and fit.csv as arrays, and what kind of problem they show."""

    def __init__(
        self, points: Dict[str, np.ndarray], grid: Dict[str, np.ndarray], classification: bool, probabilities: bool
    ):
        self.inputs = sum(k.startswith("x") for k in grid)
        xs = [f"x{i + 1}" for i in range(self.inputs)]
        outs = [k for k in grid if k.startswith("out")]
        self.split = points["split"]
        self.x = np.column_stack([points[k] for k in xs])  # (points, inputs)
        self.y = np.column_stack([points[k] for k in points if k.startswith("y")])  # (points, targets)
        self.epoch = grid["epoch"].astype(int)
        self.grid = np.column_stack([grid[k] for k in xs])  # (grid rows, inputs)
        self.out = np.column_stack([grid[k] for k in outs])  # (grid rows, outputs)
        self.classification = classification
        self.classes = max(len(outs), 2) if classification else 0
        if classification and len(outs) == 1 and not probabilities:
            self.out = 1 / (1 + np.exp(-self.out))  # logits of a bce_logits model -> P(class 1)
        elif len(outs) > 1 and classification:
            # Softmax of logits, or of log-probabilities (nll), is the class probabilities either way.
            shifted = np.exp(self.out - self.out.max(axis=1, keepdims=True))
            self.out = shifted / shifted.sum(axis=1, keepdims=True)

    def snapshots(self) -> List[int]:
        epochs = sorted(set(self.epoch.tolist()))
        if len(epochs) <= MAX_SNAPSHOTS:
            return epochs
        picks = np.linspace(0, len(epochs) - 1, MAX_SNAPSHOTS).round().astype(int)
        return [epochs[i] for i in sorted(set(picks))]

    def at(self, epoch: int):
        """The grid and the model's output on it at one snapshot."""
        rows = self.epoch == epoch
        return self.grid[rows], self.out[rows]

    def predicted_class(self, out: np.ndarray) -> np.ndarray:
        return (out[:, 0] > 0.5).astype(int) if out.shape[1] == 1 else out.argmax(axis=1)


def load(run: RunFolder) -> Optional[Fit]:
    points, grid, epochs = run.columns(DATA), run.columns(FIT), run.columns(EPOCHS)
    if points is None or grid is None:
        return None
    classification = epochs is not None and not np.isnan(epochs["train_accuracy"][0])
    probabilities = run.config is None or run.config.loss.output == "sigmoid"
    return Fit(points, grid, classification, probabilities)


def draw_fit(run: RunFolder, out: Path, formats: Sequence[str]) -> List[Path]:
    """fit.png: the data and the model's prediction over it at a few moments of training."""
    fit = load(run)
    if fit is None:
        return []
    if fit.inputs == 1 and not fit.classification:
        fig, what = line_fit(fit), "The fitted function in data space, at several epochs"
    elif fit.inputs == 1 and fit.classes == 2:
        fig, what = binary_fit(fit), "The probability of class 1 in data space, at several epochs"
    elif fit.inputs == 1:
        fig, what = multiclass_fit(fit), "Class probabilities and predicted class regions in data space"
    elif not fit.classification:
        fig, what = plane_fit(fit), "The fitted plane in data space, at the start and at the end"
    else:
        fig, what = region_fit(fit), "Decision regions in data space at the end"
    style.title(fig, what, run.title())
    return style.save(fig, out, "fit", formats)


def scatter_points(ax, fit: Fit, column: int, **kw) -> None:
    """The training points (filled) and the validation points (hollow) against one target column."""
    for split, marker, face, label in (
        ("train", "o", "black", "training points"),
        ("val", "^", "none", "validation points"),
    ):
        rows = fit.split == split
        if rows.any():
            ax.scatter(
                fit.x[rows, 0],
                fit.y[rows, column],
                s=16,
                marker=marker,
                facecolors=face,
                edgecolors="black",
                alpha=0.7,
                label=label,
                zorder=3,
                **kw,
            )


def epoch_label(epoch: int, snapshots: List[int]) -> str:
    suffix = " (start)" if epoch == snapshots[0] == 0 else " (end)" if epoch == snapshots[-1] else ""
    return f"epoch {epoch}{suffix}"


def snapshot_lines(ax, fit: Fit, column: int) -> None:
    """The model's output at each snapshot, light (early) to dark (late), the last one thicker."""
    shown = fit.snapshots()
    for epoch, color in zip(shown, style.colors(len(shown))):
        grid, out = fit.at(epoch)
        ax.plot(
            grid[:, 0],
            out[:, column],
            color=color,
            lw=2.4 if epoch == shown[-1] else 1.3,
            label=epoch_label(epoch, shown),
        )


def line_fit(fit: Fit):
    targets = fit.y.shape[1]
    fig = style.figure(7.5 * targets, 5, margins={"wspace": 0.25})
    for j in range(targets):
        ax = fig.add_subplot(1, targets, j + 1)
        scatter_points(ax, fit, j)
        snapshot_lines(ax, fit, j)
        # The data's range with a margin: an early line far off the data leaves the frame, the data stays legible.
        lo, hi = fit.y[:, j].min(), fit.y[:, j].max()
        margin = 0.3 * max(hi - lo, 1e-6)
        ax.set_ylim(lo - margin, hi + margin)
        ax.set_xlabel("x")
        ax.set_ylabel("y" if targets == 1 else f"y{j + 1}")
        ax.grid(alpha=0.3)
        style.legend(ax)
    return fig


def binary_fit(fit: Fit):
    fig = style.figure(9.5, 5, margins={"right": 2.4})  # the legend stands right of the plot
    ax = fig.add_subplot()
    grid, out = fit.at(fit.snapshots()[-1])
    shade_regions(ax, grid[:, 0], fit.predicted_class(out) == 1, "tab:orange", "predicted class 1 at the end")
    scatter_points(ax, fit, 0)
    snapshot_lines(ax, fit, 0)
    ax.axhline(0.5, color="gray", ls="--", lw=1, label="threshold 0.5")
    ax.set_xlabel("x")
    ax.set_ylabel("y (points), P(y = 1 | x) (lines)")
    ax.set_ylim(-0.08, 1.08)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5))
    return fig


def shade_regions(ax, x: np.ndarray, inside: np.ndarray, color, label: Optional[str]) -> None:
    """Shade the stretches of x where `inside` holds, edge to edge (one legend entry for all of them)."""
    edges = np.flatnonzero(np.diff(np.r_[0, inside.astype(int), 0]))
    middles = np.r_[x[0], (x[1:] + x[:-1]) / 2, x[-1]]  # stretch i covers middles[i] to middles[i + 1]
    for start, stop in zip(edges[::2], edges[1::2]):
        ax.axvspan(middles[start], middles[stop], color=color, alpha=0.15, lw=0, label=label)
        label = None


def multiclass_fit(fit: Fit):
    from matplotlib import colormaps
    from matplotlib.colors import BoundaryNorm, ListedColormap

    palette = [colormaps[CLASS_COLORS](k) for k in range(fit.classes)]
    fig = style.figure(10.5, 7, margins={"left": 1.3, "right": 2.4, "hspace": 0.08})
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 2])
    shown = fit.snapshots()
    grid, out = fit.at(shown[-1])
    x = grid[:, 0]
    predicted = fit.predicted_class(out)
    for k, color in enumerate(palette):
        top.plot(x, out[:, k], color=color, lw=2, label=f"P(class {k} | x)")
        shade_regions(top, x, predicted == k, color, None)
        rows = (fit.split == "train") & (fit.y[:, 0] == k)
        top.scatter(
            fit.x[rows, 0],
            np.full(rows.sum(), 1.06),
            color=color,
            edgecolors="black",
            s=22,
            zorder=3,
            label=f"training points of class {k}",
        )
    top.set_ylabel(f"probability at epoch {shown[-1]}\n(shading: predicted class)")
    top.set_ylim(-0.03, 1.12)
    top.grid(alpha=0.3)
    top.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5))

    rows = np.array([fit.predicted_class(fit.at(e)[1]) for e in shown])
    cmap = ListedColormap(palette)
    bottom.pcolormesh(
        x,
        np.arange(len(shown)),
        rows,
        cmap=cmap,
        norm=BoundaryNorm(np.arange(-0.5, fit.classes), fit.classes),
        shading="nearest",
    )
    bottom.set_yticks(np.arange(len(shown)), [f"epoch {e}" for e in shown])
    bottom.set_ylabel("predicted class\nover training")
    bottom.set_xlabel("x")
    return fig


def plane_fit(fit: Fit):
    """Two inputs, regression: per target a 3-D view of the points, the first and the last fitted plane."""
    targets = fit.y.shape[1]
    fig = style.figure(7 * targets, 6, margins={"left": 0.2, "right": 0.4, "bottom": 0.2, "wspace": 0.05})
    shown = fit.snapshots()
    for j in range(targets):
        ax = fig.add_subplot(1, targets, j + 1, projection="3d")
        for epoch, color, alpha in ((shown[0], "lightgray", 0.35), (shown[-1], "tab:blue", 0.45)):
            grid, out = fit.at(epoch)
            n1 = len(np.unique(grid[:, 0]))  # the grid is x1-major: n1 rows of n2 values of x2
            surface = [a.reshape(n1, -1) for a in (grid[:, 0], grid[:, 1], out[:, j])]
            ax.plot_surface(*surface, color=color, alpha=alpha, linewidth=0, antialiased=False)
            ax.plot([], [], color=color, lw=6, alpha=0.6, label=f"fitted plane, {epoch_label(epoch, shown)}")
        train = fit.split == "train"
        ax.scatter(
            fit.x[train, 0],
            fit.x[train, 1],
            fit.y[train, j],
            color="black",
            s=14,
            depthshade=False,
            label="training points",
        )
        ax.set_xlabel("x1")
        ax.set_ylabel("x2")
        ax.set_zlabel("y" if targets == 1 else f"y{j + 1}")
        ax.legend(fontsize="small", loc="upper left")
    return fig


def region_fit(fit: Fit):
    """Two inputs, classification: the predicted class over the plane at the end, and the points."""
    from matplotlib import colormaps
    from matplotlib.colors import BoundaryNorm, ListedColormap

    palette = [colormaps[CLASS_COLORS](k) for k in range(fit.classes)]
    fig = style.figure(7.5, 6, margins={})
    ax = fig.add_subplot()
    grid, out = fit.at(fit.snapshots()[-1])
    n1 = len(np.unique(grid[:, 0]))
    predicted = fit.predicted_class(out).reshape(n1, -1)
    ax.contourf(
        grid[:, 0].reshape(n1, -1),
        grid[:, 1].reshape(n1, -1),
        predicted,
        levels=np.arange(-0.5, fit.classes),
        cmap=ListedColormap(palette),
        alpha=0.25,
        norm=BoundaryNorm(np.arange(-0.5, fit.classes), fit.classes),
    )
    for k, color in enumerate(palette):
        rows = (fit.split == "train") & (fit.y[:, 0] == k)
        ax.scatter(
            fit.x[rows, 0],
            fit.x[rows, 1],
            color=color,
            edgecolors="black",
            s=20,
            label=f"class {k} (shading: predicted)",
        )
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    style.legend(ax)
    return fig
