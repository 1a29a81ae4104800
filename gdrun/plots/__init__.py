"""The pictures of runs, sweeps and comparisons, drawn after the fact from the files they wrote.

- `draw_run(folder)`: a run's plots/ folder (cost, accuracy, loss surface, fit, confusion, images);
- `draw_sweep(sweep_dir, jobs, keys)`: a sweep's overlaid curves, final metric and heat map;
- `draw_comparison(folders, out)`: several runs overlaid (`gdrun-report --compare`).

Importing this package is light: matplotlib (and torch, for the pictures that need a model)
come in with the first drawing, so the sweep summary can read run folders while Hydra starts.
"""

from typing import Any

from gdrun.plots.gcpause import gc_paused

__all__ = ["draw_run", "draw_sweep", "draw_comparison"]

# A run's pictures (draw_run's names) in two shares of about equal drawing time: the finishing
# worker draws them side by side (gdrun.finisher) on the cores the ended training leaves idle.
SHARES = (("cost", "accuracy", "lr_find", "task_metrics"), ("surface", "fit", "predictions"))
# A sweep's pictures (draw_sweep's names), likewise.
SWEEP_SHARES = (("learning_curves", "heatmap"), ("paths", "final_metric"))


def __getattr__(name: str) -> Any:
    if name in __all__:
        with gc_paused():
            from gdrun.plots import draw

        return getattr(draw, name)
    raise AttributeError(f"module 'gdrun.plots' has no attribute {name!r}")
