"""Which pictures a run, a sweep or a comparison of runs gets, each drawn from the files alone."""

from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from gdrun.plots import style
from gdrun.plots.curves import Line, draw_accuracy, draw_cost, draw_overlay
from gdrun.plots.fitted import draw_fit
from gdrun.plots.gcpause import gc_paused
from gdrun.plots.lr_find import draw_lr_find
from gdrun.plots.predictions import draw_predictions
from gdrun.plots.surface import draw_paths, draw_surface
from gdrun.plots.sweep_charts import (
    LINESTYLES,
    MAX_PANELS,
    MAX_PATHS,
    best_value_of,
    draw_final_metric,
    draw_heatmap,
    label,
    palette,
    settings_of,
    values_of,
)
from gdrun.plots.task_metrics import draw_task_metrics
from gdrun.rundir.reader import RunFolder, differing, flat, shared, title_line
from gdrun.rundir.sweep_summary import setting_keys

FORMATS = ("png",)


def draw_run(
    folder: Path,
    formats: Sequence[str] = FORMATS,
    surface_range: Optional[Sequence[float]] = None,
    only: Optional[Sequence[str]] = None,
) -> List[Path]:
    """A run's pictures in its plots/ folder (those named in `only`, else all), each where it applies
    (a confusion matrix for a classifier, ...); returns the files written."""
    run = RunFolder(folder)
    out = run.paths.plots
    pictures: Dict[str, Callable[[], List[Path]]] = {
        "cost": lambda: draw_cost(run, out, formats),
        "accuracy": lambda: draw_accuracy(run, out, formats),
        "surface": lambda: draw_surface(run, out, formats, surface_range),
        "fit": lambda: draw_fit(run, out, formats),
        "predictions": lambda: draw_predictions(run, out, formats),
        "lr_find": lambda: draw_lr_find(run, out, formats),
        "task_metrics": lambda: draw_task_metrics(run, out, formats),
    }
    return drawn(pictures, only)


def draw_sweep(
    sweep_dir: Path,
    jobs: List,
    keys: Sequence[str],
    formats: Sequence[str] = FORMATS,
    surface_range: Optional[Sequence[float]] = None,
    only: Optional[Sequence[str]] = None,
) -> List[Path]:
    """A sweep's pictures at its root (those named in `only`, else all): overlaid learning curves and paths,
    final metric, heat map.

    A setting repeated over seeds is one line (their mean, with a band); lines are coloured by the
    first swept key (on a colour bar when it is a number with many values), a second key gets a row
    of learning-curve panels per value (few values) or a line style, and the rest are named.
    """
    if not jobs:
        return []
    swept = " × ".join(keys) if keys else "nothing"
    subtitle = f"{len(jobs)} jobs sweeping {swept} · {title_line(shared([job.run for job in jobs]))}"
    settings = setting_keys(keys)
    colors = palette(jobs, settings[0] if settings else None)
    second = settings[1] if len(settings) > 1 else None
    panel_key = second if second and len(values_of(jobs, second)) <= MAX_PANELS else None
    dashes = {repr(v): LINESTYLES[i % len(LINESTYLES)] for i, v in enumerate(values_of(jobs, second))} if second else {}
    named = [key for key in settings if key != panel_key]  # what a line's label says
    repeated = [key for key in keys if key not in settings]

    def name(job, keys: Sequence[str]) -> str:
        """A setting's label; for a sweep of seeds alone, `every seed`."""
        return label(job, keys) if keys or not repeated else f"every {' × '.join(repeated)}"

    def look(job) -> Tuple[object, str]:
        value = job.values.get(settings[0]) if settings else None
        return colors.color(value), dashes.get(repr(job.values.get(second)), "-") if second else "-"

    # Past MAX_PATHS jobs over a second key told apart by line style, the curves and paths are those at the
    # best job's value of that key: 256 lines of an lr × momentum grid cover each other, and 16 line styles
    # cannot be told apart. final_metric.png and heatmap.png show every pair.
    shown, sliced = jobs, ""
    if second and not panel_key and len(jobs) > MAX_PATHS:
        chosen = best_value_of(jobs, second)
        shown = [job for job in jobs if repr(job.values.get(second)) == repr(chosen)]
        sliced = (
            f"\nat {second}={style.format_value(chosen)} (the best job's): {len(shown)} of {len(jobs)} jobs; "
            "every pair's result is in final_metric.png and heatmap.png"
        )
    lines = []
    for setting in settings_of(shown, settings):
        first, *repeats = setting.jobs
        color, linestyle = look(first)
        panel = f"{panel_key}={style.format_value(first.values.get(panel_key))}" if panel_key else ""
        linestyle = "-" if panel_key or sliced else linestyle
        lines.append(Line(first.run, name(first, named), color, linestyle, [job.run for job in repeats], panel))
    values = values_of(jobs, second) if second and not sliced else []
    styles = [(f"{second}={style.format_value(v)}", dashes[repr(v)]) for v in values]
    # With a colour bar for the first key the curves have no legend entries: the line styles get theirs.
    curve_styles = styles if not panel_key and colors.scale is not None else []
    # Paths: one legend entry per value of the first key (seeds and the second key's values share it).
    looks = [look(job) for job in shown]
    walks = [
        (job.run, name(job, settings[:1]), color, dashes if styles else "-")
        for job, (color, dashes) in zip(shown, looks)
    ]
    pictures: Dict[str, Callable[[], List[Path]]] = {
        "learning_curves": lambda: draw_overlay(
            lines, sweep_dir, "learning_curves", subtitle + sliced, formats, colors.scale, curve_styles
        ),
        "final_metric": lambda: draw_final_metric(jobs, keys, sweep_dir, subtitle, formats),
        "heatmap": lambda: draw_heatmap(jobs, keys, sweep_dir, subtitle, formats),
        "paths": lambda: draw_paths(walks, sweep_dir, subtitle + sliced, formats, surface_range, colors.scale, styles),
    }
    return drawn(pictures, only)


def drawn(pictures: Dict[str, Callable[[], List[Path]]], only: Optional[Sequence[str]]) -> List[Path]:
    """The pictures named in `only` (else all) drawn, in order; the files written."""
    unknown = set(only or ()) - set(pictures)
    if unknown:
        raise ValueError(f"no picture named {', '.join(sorted(unknown))}; they are {', '.join(pictures)}")
    with gc_paused():
        return [path for name, draw in pictures.items() if only is None or name in only for path in draw()]


def draw_comparison(
    folders: Sequence[Path],
    out: Path,
    formats: Sequence[str] = FORMATS,
    surface_range: Optional[Sequence[float]] = None,
) -> List[Path]:
    """Several runs overlaid, each labelled by the settings that differ between them (e.g. BGD against SGD)."""
    runs = [RunFolder(folder) for folder in folders]
    settings = [flat(run.config) for run in runs]
    keys = [k for k in differing(settings) if not k.startswith(("hydra.", "plots"))]
    labels = [
        ", ".join(f"{k}={style.format_value(s.get(k))}" for k in keys) or run.path.name
        for run, s in zip(runs, settings)
    ]
    palette = [f"C{i % 10}" for i in range(len(runs))]
    subtitle = f"{len(runs)} runs · {title_line(shared(runs))}"
    lines = [Line(run, name, color) for run, name, color in zip(runs, labels, palette)]
    walks = [(line.run, line.label, line.color, line.linestyle) for line in lines]
    with gc_paused():
        return [
            *draw_overlay(lines, out, "learning_curves", subtitle, formats),
            *draw_paths(walks, out, subtitle, formats, surface_range),
        ]
