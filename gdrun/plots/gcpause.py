"""Python's garbage collector paused while pictures are drawn (why: see gc_paused)."""

import gc
from contextlib import contextmanager
from typing import Iterator


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
