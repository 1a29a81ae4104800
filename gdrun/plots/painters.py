"""A sweep's pictures drawn by two other processes, started when the sweep starts.

Drawing a sweep's pictures costs a small sweep as much as its training: importing matplotlib
(~0.4 s), and ~1 s of drawing (the loss surface needs torch as well). The command's own process
is busy with the jobs until the end, while the second core is mostly idle. So each painter is
started with the sweep and imports what it needs there; at the end the two draw their share of the
pictures side by side from the files the jobs left (gdrun.plots.draw.draw_sweep, `only` the
pictures of their share). A painter that cannot start or fails leaves its pictures to the
command's process (Painters.draw returns what is left to draw). A painter ignores Ctrl-C: the
command decides what a stop means (a stopped sweep's pictures wait for gdrun-report).
"""

import logging
import multiprocessing
import signal
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import List, Optional, Sequence, Set, Tuple

log = logging.getLogger(__name__)

# Each painter's pictures (draw_sweep's names), about equal work: the surface needs torch.
SHARES: Tuple[Tuple[str, ...], ...] = (("learning_curves", "final_metric", "heatmap"), ("paths",))


def _quiet_child() -> None:
    """A painter's initializer: the terminal's Ctrl-C reaches the whole process group; the command handles it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _warm(share: Tuple[str, ...]) -> None:
    """Import what drawing this share needs, while the sweep trains."""
    from gdrun.plots import draw  # noqa: F401 - matplotlib comes with it

    if "paths" in share:
        import torch  # noqa: F401 - the loss surface is evaluated with the run's own loss


def _draw(
    sweep_dir: Path,
    share: Tuple[str, ...],
    formats: Sequence[str],
    surface_range: Optional[Sequence[float]],
    trust: List[str],
) -> List[Path]:
    """In a painter: this share of the sweep's pictures, from its folder alone."""
    from gdrun.config.targets import trusting
    from gdrun.plots.draw import draw_sweep
    from gdrun.rundir.sweep_summary import read_jobs, swept_keys

    jobs = read_jobs(sweep_dir)
    with trusting(trust):
        return draw_sweep(sweep_dir, jobs, swept_keys(jobs), formats, surface_range, only=set(share))


class Painters:
    """Two painter processes (spawned: never a fork of a process holding torch), warming up from now on."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.pools = []
        self.ready: List[Future] = []
        for share in SHARES:
            pool = ProcessPoolExecutor(max_workers=1, mp_context=context, initializer=_quiet_child)
            self.pools.append(pool)
            self.ready.append(pool.submit(_warm, share))

    def draw(
        self,
        sweep_dir: Path,
        formats: Sequence[str],
        surface_range: Optional[Sequence[float]],
        trust: List[str],
    ) -> "tuple[List[Path], Set[str]]":
        """The pictures the painters drew, and the names of those they could not draw (for the caller to draw)."""
        futures: List[Tuple[Tuple[str, ...], Optional[Future]]] = []
        for share, pool in zip(SHARES, self.pools):
            try:
                futures.append((share, pool.submit(_draw, sweep_dir, share, formats, surface_range, trust)))
            except RuntimeError as error:  # a painter that died (BrokenProcessPool) or was shut down
                log.debug("no painter for %s (%s)", share, error)
                futures.append((share, None))
        written: List[Path] = []
        left: Set[str] = set()
        for share, future in futures:
            try:
                if future is None:
                    raise RuntimeError("no painter")
                written += future.result()
            except Exception as error:  # noqa: BLE001 - a broken painter: the command draws its share
                log.debug("a painter could not draw %s (%s); drawing them here", share, error)
                left.update(share)
        return written, left

    def close(self) -> None:
        """Stop the painters (now, not after work they were given and nobody waits for)."""
        for pool in self.pools:
            pool.shutdown(wait=False, cancel_futures=True)
