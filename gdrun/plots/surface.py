"""The loss surface of a one- or two-parameter model and the path gradient descent took across it.

For a linear model with one input (y = w·x, or y = w·x + b, through a sigmoid for logistic
regression) the cost over a (w, b) grid is computed from the training points in data.csv
with the run's own loss function (built from its config, reduction="none"), so the surface
at the path's points is the cost the run saw: for batch gradient descent, iterations.csv.
The path is params.csv: (w, b) before the first step and after every step.
"""

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from omegaconf import OmegaConf

from gdrun.plots import style
from gdrun.rundir.layout import DATA, PARAMS
from gdrun.rundir.reader import RunFolder

# Model outputs a surface can be drawn for: what turns w·x + b into the loss's input.
OUTPUTS = {"identity": lambda z: z, "sigmoid": lambda z: z.sigmoid()}
GRID = 101  # points per axis of the contour map (odd: 0 is on the grid)
GRID_3D = 41  # of the 3-D view, where more points only slow the drawing
# Grid points x data points evaluated at once: bounds the memory of one chunk (~8 MB in float32).
CHUNK = 2_000_000
# The default range is +-(this much more than the path's largest |value|), rounded up.
MARGIN = 1.15
# Room left between a path's start and the picture's edge, as a share of the range.
EDGE = 0.04
# A run that did not complete frames the surface with its points within this many times its start (+1).
NEAR_START = 10


@dataclass
class Problem:
    """What the surface needs: the training points, the loss, the parameter names and the path."""

    x: np.ndarray  # (n,) training inputs
    y: np.ndarray  # (n,) training targets
    loss: Dict[str, Any]  # the run's loss settings (its _target_, name and output), as plain data
    names: List[str]  # ["w"] or ["w", "b"]
    path: np.ndarray  # (steps + 1, len(names)): the parameters before training and after each step
    run: RunFolder  # whose config builds the loss function (read, renamed and trusted as `config` is)

    def same_surface(self, other: "Problem") -> bool:
        """True when two runs' paths can share one picture: same points, loss and parameters."""
        return (
            self.names == other.names
            and self.loss.get("name") == other.loss.get("name")
            and self.loss.get("output") == other.loss.get("output")
            and self.x.shape == other.x.shape
            and np.array_equal(self.x, other.x)
            and np.array_equal(self.y, other.y)
        )


def problem(run: RunFolder) -> Optional[Problem]:
    """The run's surface problem, or None when it has no surface to draw (more than two parameters, ...)."""
    params, points, settings = run.columns(PARAMS), run.columns(DATA), run.settings
    if params is None or points is None or settings is None:
        return None
    names = [k for k in params if k not in ("step", "epoch")]
    if names not in (["w"], ["w", "b"]) or set(points) != {"split", "x1", "y1"}:
        return None  # e.g. two weights of a two-feature plane: not the w, b picture
    loss = settings.get("loss")
    if "${" in repr(loss) and run.config is not None:  # an interpolation of the user's: the config resolves it
        loss = OmegaConf.to_container(run.config.loss, resolve=True)
    if not isinstance(loss, dict) or loss.get("output") not in OUTPUTS:
        return None
    train = points["split"] == "train"
    return Problem(
        x=points["x1"][train].astype(np.float32),
        y=points["y1"][train].astype(np.float32),
        loss=loss,
        names=names,
        path=np.column_stack([params[n] for n in names]),
        run=run,
    )


def cost_function(problem: Problem) -> Callable[..., np.ndarray]:
    """cost(w[, b]) on arrays of any (equal) shape: the run's loss over all training points, vectorised."""
    import torch
    from torch.nn.functional import binary_cross_entropy_with_logits

    from gdrun.training.build import call

    cfg = problem.run.config
    if cfg is None:
        raise ValueError(f"{problem.run.path}: its config cannot be read, so its loss function cannot be built")
    loss = call(cfg.loss, "loss", reduction="none")
    out = OUTPUTS[cfg.loss.output]
    if cfg.loss.output == "sigmoid" and cfg.loss.get("_target_") == "torch.nn.BCELoss":
        # BCELoss of sigmoid(z): where sigmoid rounds to 0 or 1, BCELoss clamps log(0) to -100, which draws
        # staircase bands and a saw-tooth ridge that are not the function. The same cost from the logits
        # is smooth everywhere and equal wherever the run's own computation did not saturate.
        loss, out = partial(binary_cross_entropy_with_logits, reduction="none"), OUTPUTS["identity"]
    # float64: a float32 cost of large logits is rounded into steps of its own
    x, y = torch.from_numpy(problem.x).double(), torch.from_numpy(problem.y).double()
    chunk = max(1, CHUNK // len(x))

    @torch.no_grad()
    def cost(w: np.ndarray, b: Optional[np.ndarray] = None) -> np.ndarray:
        w_flat = torch.as_tensor(np.ravel(w), dtype=torch.float64)
        b_flat = torch.zeros_like(w_flat) if b is None else torch.as_tensor(np.ravel(b), dtype=torch.float64)
        parts = []
        for start in range(0, len(w_flat), chunk):
            wc, bc = w_flat[start : start + chunk, None], b_flat[start : start + chunk, None]
            prediction = out(wc * x + bc)  # (grid points, n)
            parts.append(loss(prediction, y.expand_as(prediction)).mean(dim=1))
        return torch.cat(parts).numpy().reshape(np.shape(w))

    return cost


def ranges(paths: List[np.ndarray], surface_range: Optional[Sequence[float]]) -> List[Tuple[float, float]]:
    """Per parameter (lo, hi): +-surface_range when given (one value for all, or one per parameter), else
    symmetric about 0 and wide enough for every path, as the labs draw it (w in +-15, b in +-13)."""
    width = paths[0].shape[1]
    if surface_range:
        half = list(surface_range) * width if len(surface_range) == 1 else list(surface_range)[:width]
    else:
        stacked = np.concatenate(paths)
        stacked = stacked[np.isfinite(stacked).all(axis=1)]
        half = [style.nice_ceiling(MARGIN * np.abs(stacked[:, i]).max()) if len(stacked) else 1.0 for i in range(width)]
    return [(-float(h), float(h)) for h in half]


def showing(box: List[Tuple[float, float]], points: Sequence[np.ndarray]) -> List[Tuple[float, float]]:
    """`box` widened just enough that markers at `points` (a path's start) on or near its edge are drawn whole,
    not cut in half by it (the labs start on their grid's edge: w = -15 of w in ±15)."""
    widened = []
    for i, (lo, hi) in enumerate(box):
        pad, reach = EDGE * (hi - lo), 0.1 * (hi - lo)  # points further out stay out: the box was asked for
        values = [float(p[i]) for p in points if np.isfinite(p[i]) and lo - reach <= p[i] <= hi + reach]
        if values and min(values) < lo + pad:
            lo = min(values) - pad
        if values and max(values) > hi - pad:
            hi = max(values) + pad
        widened.append((lo, hi))
    return widened


def framed(paths: List[Tuple[np.ndarray, str]]) -> List[np.ndarray]:
    """The paths the default range must contain: the completed runs' whole paths; without any, the
    points of the others that stay near their start (a diverged path flies off to 1e9 and would
    shrink the surface to a dot)."""
    completed = [path for path, status in paths if status == "completed"]
    if completed:
        return completed
    near = []
    for path, _ in paths:
        bound = NEAR_START * (np.abs(path[0]) + 1)
        near.append(path[(np.abs(path) <= bound).all(axis=1)])
    return near


def levels(cost: np.ndarray) -> Tuple[np.ndarray, object]:
    """Contour levels and colour norm: logarithmic when the cost spans decades (valleys stay visible)."""
    from matplotlib.colors import LogNorm, Normalize

    finite = cost[np.isfinite(cost)]
    hi = finite.max()
    if style.spans_decades(finite):
        lo = max(finite[finite > 0].min(), hi * 1e-6)
        return np.geomspace(lo, hi, 25), LogNorm(lo, hi)
    return np.linspace(finite.min(), hi, 25), Normalize(finite.min(), hi)


@dataclass
class Walk:
    """One path to draw: the parameters over training, its label and colour."""

    path: np.ndarray
    label: str
    color: object
    linestyle: str = "-"


def draw_contour(ax, fig, cost: Callable, box: List[Tuple[float, float]], walks: List[Walk]) -> None:
    """The contour map of the cost over (w, b) with each path, its start and end marked."""
    from matplotlib.colors import LogNorm
    from matplotlib.ticker import LogLocator

    w, b = np.meshgrid(np.linspace(*box[0], GRID), np.linspace(*box[1], GRID))
    c = cost(w, b)
    lv, norm = levels(c)
    cmap = style.SEQUENCE if len(walks) == 1 else style.BACKDROP  # several coloured paths: a grey surface
    filled = ax.contourf(
        w, b, np.clip(c, lv[0], lv[-1]), levels=lv, norm=norm, cmap=cmap, alpha=1 if len(walks) == 1 else 0.6
    )
    ax.contour(w, b, c, levels=lv[::3], colors="white", linewidths=0.4, alpha=0.5)
    log_scale = isinstance(norm, LogNorm)
    bar = fig.colorbar(filled, ax=ax, shrink=0.9, ticks=LogLocator() if log_scale else None)
    if log_scale:
        style.log_labels(bar.ax.yaxis)
    bar.set_label("cost over the training set" + (" (log scale)" if log_scale else ""))
    for walk in walks:
        p = walk.path
        few = len(p) <= 200
        ax.plot(
            p[:, 0],
            p[:, 1],
            color=walk.color,
            ls=walk.linestyle,
            lw=1.3,
            marker="." if few else None,
            ms=4,
            label=walk.label,
        )
        ax.plot(*p[0], marker="o", ms=9, mfc=style.START_COLOR, mec="black", ls="none")
        ax.plot(*last_finite(p), marker="*", ms=15, mfc=walk.color, mec="black", ls="none")
    start, end = walks[0].path[0], last_finite(walks[0].path)
    ax.plot(
        [],
        [],
        marker="o",
        ms=8,
        mfc=style.START_COLOR,
        mec="black",
        ls="none",
        label=f"start  w={start[0]:.3g}, b={start[1]:.3g}",
    )
    ax.plot(
        [],
        [],
        marker="*",
        ms=12,
        mfc=walks[0].color,
        mec="black",
        ls="none",
        label=f"end  w={end[0]:.3g}, b={end[1]:.3g}" if len(walks) == 1 else "end of each path",
    )
    ax.set_xlim(*box[0])
    ax.set_ylim(*box[1])
    ax.set_xlabel("w (slope)")
    ax.set_ylabel("b (bias)")
    ax.legend(fontsize="small", loc="upper right", framealpha=0.85)


def draw_3d(ax, cost: Callable, box: List[Tuple[float, float]], walk: Walk) -> None:
    """The same cost as a surface in 3-D, with the path lying on it."""
    w, b = np.meshgrid(np.linspace(*box[0], GRID_3D), np.linspace(*box[1], GRID_3D))
    c = cost(w, b)
    ax.computed_zorder = False  # draw the path over the surface, not hidden behind it
    ax.plot_surface(w, b, c, cmap=style.SEQUENCE, linewidth=0, alpha=0.85, antialiased=False, zorder=1)
    p = walk.path[np.isfinite(walk.path).all(axis=1)]
    inside = (p[:, 0] >= box[0][0]) & (p[:, 0] <= box[0][1]) & (p[:, 1] >= box[1][0]) & (p[:, 1] <= box[1][1])
    p = p[inside]
    if len(p):
        z = cost(p[:, 0], p[:, 1])
        ax.plot(p[:, 0], p[:, 1], z, color=walk.color, lw=2, zorder=2)
        ax.scatter(*p[0], z[0], color=style.START_COLOR, edgecolor="black", s=60, depthshade=False, zorder=3)
        ax.scatter(*p[-1], z[-1], color=walk.color, marker="*", edgecolor="black", s=160, depthshade=False, zorder=3)
    ax.set_xlabel("w (slope)")
    ax.set_ylabel("b (bias)")
    ax.set_zlabel("cost", labelpad=10)
    ax.view_init(elev=35, azim=-60)


def draw_curve(ax, cost: Callable, box: List[Tuple[float, float]], walks: List[Walk]) -> None:
    """One parameter: the cost against w, with the values w took on it, start and end marked."""
    w = np.linspace(*box[0], 400)
    c = cost(w)
    ax.plot(w, c, color="gray", lw=1.5, label="cost over the training set")
    for walk in walks:
        p = walk.path[:, 0][np.isfinite(walk.path[:, 0])]
        z = cost(p)
        ax.plot(
            p,
            z,
            color=walk.color,
            ls=walk.linestyle,
            marker="o" if len(p) <= 60 else None,
            ms=4,
            lw=1,
            label=walk.label,
        )
        ax.plot(
            p[0],
            z[0],
            marker="o",
            ms=10,
            mfc=style.START_COLOR,
            mec="black",
            ls="none",
            label=f"start  w={p[0]:.3g}" if len(walks) == 1 else None,
        )
        ax.plot(
            p[-1],
            z[-1],
            marker="*",
            ms=15,
            mfc=walk.color,
            mec="black",
            ls="none",
            label=f"end  w={p[-1]:.3g}" if len(walks) == 1 else None,
        )
    ax.set_xlim(*box[0])
    ax.set_xlabel("w (slope)")
    ax.set_ylabel("cost over the training set")  # linear, the parabola of the labs
    ax.grid(alpha=0.3)
    style.legend(ax)


def last_finite(path: np.ndarray) -> np.ndarray:
    ok = np.isfinite(path).all(axis=1)
    return path[ok][-1] if ok.any() else path[0]


def draw_surface(
    run: RunFolder, out: Path, formats: Sequence[str], surface_range: Optional[Sequence[float]] = None
) -> List[Path]:
    """loss_surface.png: contour map with the path and a 3-D view (w, b), or the cost curve (w only)."""
    prob = problem(run)
    if prob is None:
        return []
    cost = cost_function(prob)
    box = ranges(
        framed([(prob.path, run.status)]), surface_range or (run.config.get("surface_range") if run.config else None)
    )
    box = showing(box, [prob.path[0]])
    steps = len(prob.path) - 1
    ending = "" if run.status == "completed" else f", {run.status}"
    walk = Walk(prob.path, f"path of gradient descent ({steps} steps{ending})", style.END_COLOR)
    if prob.names == ["w"]:
        fig = style.figure(8, 5, margins={})
        draw_curve(fig.add_subplot(), cost, box, [walk])
        style.title(fig, "Cost against the slope w, with the values w took", run.title())
    else:
        fig = style.figure(13, 5.8, margins={"right": 0.4, "wspace": 0.02})
        draw_contour(fig.add_subplot(1, 2, 1), fig, cost, box, [walk])
        draw_3d(fig.add_subplot(1, 2, 2, projection="3d"), cost, box, walk)
        style.title(fig, "Loss surface over (w, b) with the path gradient descent took", run.title())
    return style.save(fig, out, "loss_surface", formats)


def draw_paths(
    runs: List[Tuple[RunFolder, str, object, str]],
    out: Path,
    subtitle: str,
    formats: Sequence[str],
    surface_range: Optional[Sequence[float]] = None,
    scale: Optional[style.ColorScale] = None,
    styles: Sequence[Tuple[str, str]] = (),
) -> List[Path]:
    """paths.png: several runs' paths on one loss surface (a sweep of learning rates, BGD against SGD).

    `runs` are (run, label, colour, line style); runs with the same label (a setting's seeds) share a
    legend entry, and with `scale` the colours are read off a colour bar instead; `styles` are
    (label, line style) legend entries for a key told apart by line style. A path that did not
    complete is drawn until it leaves the picture, with a cross there (crosses that would cover each
    other as one, with a count). The surface spans `surface_range`, else the one the runs' configs
    share (a lab's grid), else the completed paths that went downhill (one whose cost grew is left
    to run off it). Drawn only when the runs' paths lie on the same surface: the same points, loss
    and parameters. The legend goes below the surface when it is long.
    """
    from gdrun.plots.curves import Stop, stop_markers

    found = [(problem(run), run, label, color, dashes) for run, label, color, dashes in runs]
    # Runs that stopped before writing a path get a legend entry; a completed run without one
    # (more than two parameters) means there is no common surface to draw.
    pathless = [(run, label, color) for p, run, label, color, _ in found if p is None]
    drawn = [(p, run, label, color, dashes) for p, run, label, color, dashes in found if p is not None]
    if len(drawn) < 2 or any(run.status == "completed" for run, _, _ in pathless):
        return []
    first = drawn[0][0]
    if not all(first.same_surface(d[0]) for d in drawn[1:]):
        return []
    cost = cost_function(first)
    downhill = [(p.path, run.status) for p, run, *_ in drawn if run.status == "completed" and descends(cost, p.path)]
    frame = downhill or [(p.path, run.status) for p, run, *_ in drawn]
    box = ranges(framed(frame), surface_range or shared_range([run for _, run, *_ in drawn]))
    box = showing(box, [p.path[0] for p, *_ in drawn])
    walks, stops, named = [], [], set()
    for p, run, label, color, dashes in drawn:
        path = p.path
        name = label if run.status == "completed" or styles else f"{label} ({run.status})"
        if scale is not None or name in named:
            name = f"_{name}"  # matplotlib leaves a label starting with _ out of the legend
        named.add(name)
        if run.status != "completed":
            path, end = leaving(path, box)
            if not len(path):  # not even a finite start: nothing to draw
                continue
            stops.append(Stop(end[0], float(cost(end[:1])[0]) if len(end) == 1 else end[1], color, run.status))
        walks.append(Walk(path, name, color, dashes))
    one = first.names == ["w"]
    fig = style.figure(10, 6.5) if not one else style.figure(10, 5.5)
    ax = fig.add_subplot()
    if one:
        draw_curve(ax, cost, box, walks)
    else:
        draw_contour(ax, fig, cost, box, walks)
    ends = np.array([(s.x, s.y) for s in stops]).reshape(-1, 2)
    for artist in list(ax.lines):  # a stopped path's end is where it leaves: a cross there, not a star
        xy = np.asarray(artist.get_xydata())
        if artist.get_marker() == "*" and xy.shape == (1, 2) and np.isclose(ends, xy).all(axis=1).any():
            artist.remove()
    if stops:
        stop_markers(ax, stops)
    for run, label, color in pathless:
        ax.plot([], [], color=color, marker="X", ls="none", label=f"{label} ({run.status}): no path")
    handles, labels = ax.get_legend_handles_labels()
    for text, dashes in styles:
        handles.append(ax.plot([], [], color="gray", ls=dashes)[0])
        labels.append(text)
    if stops:
        handles.append(ax.plot([], [], marker="X", ms=9, ls="none", color="gray", mec=style.FAILED_COLOR)[0])
        labels.append("where a path that did not complete leaves the picture (×N: N paths)")
    legend = ax.get_legend()
    if legend is not None:
        legend.remove()
    if scale is not None:
        scale.bar(fig, [ax])
    if len(labels) > style.LEGEND_INSIDE:  # under the figure, where the layout makes room for all of it
        columns = 1 + (len(labels) - 1) // 8
        fig.legend(handles, labels, fontsize="small", loc="outside lower center", ncols=columns)
    elif labels:
        ax.legend(handles, labels, fontsize="small", loc="best", framealpha=0.85)
    style.title(fig, "Paths of gradient descent on the loss surface", subtitle)
    return style.save(fig, out, "paths", formats)


def shared_range(runs: List[RunFolder]) -> Optional[List[float]]:
    """The runs' surface_range when they all have the same one (a lab's sweep: the notebook's grid), else None."""
    ranges_given = []
    for run in runs:
        settings = run.settings
        ranges_given.append(list(settings.get("surface_range") or []) if settings is not None else [])
    same = all(r == ranges_given[0] for r in ranges_given)
    return ranges_given[0] if ranges_given and same and ranges_given[0] else None


def descends(cost: Callable, path: np.ndarray) -> bool:
    """True when the path ends lower on the surface than it started (its last finite point)."""
    start, end = path[0], last_finite(path)
    return bool(cost(*end[:, None]) <= cost(*start[:, None]))


def leaving(path: np.ndarray, box: List[Tuple[float, float]]) -> Tuple[np.ndarray, np.ndarray]:
    """A path up to where it first leaves `box` (the point on the edge where it does), or up to its last
    finite point; and that point."""
    ok = np.isfinite(path).all(axis=1)
    path = path[: int(np.argmin(ok)) if not ok.all() else len(path)]
    if not len(path):
        return path, np.zeros(len(box))
    lo, hi = np.array([b[0] for b in box]), np.array([b[1] for b in box])
    outside = ((path < lo) | (path > hi)).any(axis=1)
    if not outside.any():
        return path, path[-1]
    i = int(np.argmax(outside))
    if i == 0:
        return path[:1], path[0]
    a, b = path[i - 1], path[i]
    with np.errstate(divide="ignore", invalid="ignore"):
        shares = np.where(b > hi, (hi - a) / (b - a), np.where(b < lo, (lo - a) / (b - a), 1.0))
    edge = a + float(np.clip(shares.min(), 0, 1)) * (b - a)
    return np.vstack([path[:i], edge]), edge
