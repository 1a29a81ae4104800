"""The pictures of runs, sweeps and comparisons, drawn after the fact from the files they wrote.

- `draw_run(folder)`: a run's plots/ folder (cost, accuracy, loss surface, fit, confusion, images);
- `draw_sweep(sweep_dir, jobs, keys)`: a sweep's overlaid curves, final metric and heat map;
- `draw_comparison(folders, out)`: several runs overlaid (`gdrun-report --compare`).

Importing this package is light: matplotlib (and torch, for the pictures that need a model)
come in with the first drawing, so gdrun.sweep can read run folders while Hydra starts.
"""

import gc
from contextlib import contextmanager
from typing import Iterator

__all__ = ["draw_run", "draw_sweep", "draw_comparison"]


@contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused while matplotlib is imported and pictures are drawn.

    Both allocate enough objects to set off full collections, and with torch (and Hydra) loaded
    each one walks some 2.5e5 objects: ~0.12 s apiece, a third of the pictures' time. What the
    figures leave behind is collected as usual afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def __getattr__(name: str):
    if name in __all__:
        with gc_paused():
            from gdrun.plots import draw

        return getattr(draw, name)
    raise AttributeError(f"module 'gdrun.plots' has no attribute {name!r}")
