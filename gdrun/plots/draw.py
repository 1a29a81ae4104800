"""Which pictures a run, a sweep or a comparison of runs gets, each drawn from the files alone."""

from pathlib import Path
from typing import List, Optional, Sequence

from gdrun.plots import style
from gdrun.plots.curves import Line, draw_accuracy, draw_cost, draw_overlay
from gdrun.plots.fitted import draw_fit
from gdrun.plots.gcpause import gc_paused
from gdrun.plots.predictions import draw_predictions
from gdrun.plots.surface import draw_paths, draw_surface
from gdrun.plots.sweep_charts import draw_final_metric, draw_heatmap, label, line_styles
from gdrun.rundir.reader import RunFolder, differing, flat, shared, title_line

FORMATS = ("png",)


def draw_run(
    folder: Path, formats: Sequence[str] = FORMATS, surface_range: Optional[Sequence[float]] = None
) -> List[Path]:
    """A run's pictures in its plots/ folder, each where it applies; returns the files written."""
    run = RunFolder(folder)
    out = run.paths.plots
    with gc_paused():
        return [
            *draw_cost(run, out, formats),
            *draw_accuracy(run, out, formats),
            *draw_surface(run, out, formats, surface_range),
            *draw_fit(run, out, formats),
            *draw_predictions(run, out, formats),
        ]


def draw_sweep(
    sweep_dir: Path,
    jobs: List,
    keys: Sequence[str],
    formats: Sequence[str] = FORMATS,
    surface_range: Optional[Sequence[float]] = None,
) -> List[Path]:
    """A sweep's pictures at its root: overlaid learning curves and paths, final metric, heat map."""
    if not jobs:
        return []
    swept = " × ".join(keys) if keys else "nothing"
    subtitle = f"{len(jobs)} jobs sweeping {swept} · {title_line(shared([job.run for job in jobs]))}"
    styles = line_styles(jobs, keys)
    lines = [Line(job.run, label(job, keys), color, dashes) for job, (color, dashes) in zip(jobs, styles)]
    walks = [(line.run, line.label, line.color, line.linestyle) for line in lines]
    with gc_paused():
        return [
            *draw_overlay(lines, sweep_dir, "learning_curves", subtitle, formats),
            *draw_final_metric(jobs, keys, sweep_dir, subtitle, formats),
            *draw_heatmap(jobs, keys, sweep_dir, subtitle, formats),
            *draw_paths(walks, sweep_dir, subtitle, formats, surface_range),
        ]


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
