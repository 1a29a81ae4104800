"""Self-describing checkpoints, written atomically.

A checkpoint is a dict that says what it is: weights, optimizer and scheduler state, epoch
and step, every RNG state the run draws from, the best metric so far and the resolved
config. It is written to a temporary file in the same folder and renamed over the old one,
so a crash or `kill -9` mid-write leaves the previous checkpoint whole.
"""

import copy
import os
import time
from pathlib import Path
from typing import Any, Callable, Dict, Optional

import torch

from gdrun.errors import GdrunError
from gdrun.rundir.layout import RunPaths

FORMAT = "gdrun-checkpoint-1"


def payload(
    *,
    model,
    optimizer,
    scheduler,
    progress: Dict,
    shuffle_state: Optional[torch.Tensor],
    config: Dict,
    model_args: Dict,
) -> Dict[str, Any]:
    """The checkpoint dict, holding copies of the states: later training steps do not change it.

    `shuffle_state` is the data-order generator at the start of the epoch the run does next
    (mid-epoch: the current one, which a resumed run replays and skips the steps done).
    """
    rng: Dict[str, Any] = {"torch": torch.get_rng_state(), "shuffle": shuffle_state}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    return {
        "format": FORMAT,
        "model": copy.deepcopy(model.state_dict()),
        "model_args": model_args,  # with config.model: the model, rebuilt without its data
        "optimizer": copy.deepcopy(optimizer.state_dict()),
        "scheduler": copy.deepcopy(scheduler.state_dict()) if scheduler is not None else None,
        "epoch": progress["epoch"],
        "step": progress["step"],
        "progress": copy.deepcopy(progress),
        "rng": rng,
        "config": config,  # never changed during a run: shared, not copied
    }


def load_states(saved: Dict[str, Any], model, optimizer, scheduler, shuffle: Optional[torch.Generator]) -> None:
    """Put a checkpoint's states back into freshly built parts (GdrunError if they do not fit)."""
    try:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
    except (RuntimeError, ValueError, KeyError) as error:
        raise GdrunError(
            f"the checkpoint does not fit the model and optimizer its config builds "
            f"(was it copied from another run?): {str(error).splitlines()[0]}"
        ) from error
    if scheduler is not None and saved.get("scheduler"):
        scheduler.load_state_dict(saved["scheduler"])
    torch.set_rng_state(saved["rng"]["torch"])
    if shuffle is not None and saved["rng"].get("shuffle") is not None:
        shuffle.set_state(saved["rng"]["shuffle"])
    if "cuda" in saved["rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(saved["rng"]["cuda"])


def atomic_save(obj: Any, path: Path) -> None:
    """torch.save to a temporary file, fsync, then rename over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load(path: Path) -> Dict[str, Any]:
    """A gdrun checkpoint, or a GdrunError that says what is wrong with the file."""
    if not path.is_file():
        raise GdrunError(
            f"no checkpoint at {path}: the run saved none (did it stop before its first "
            f"epoch?) or the folder is not a gdrun run folder."
        )
    try:
        # weights_only=False: a checkpoint also holds RNG states and the config (our own files).
        saved = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # truncated zip, not a torch file, unpickling errors
        raise GdrunError(
            f"{path} is damaged (truncated or not a torch file): {error}. checkpoints/best.pt may still be whole."
        ) from error
    if not isinstance(saved, dict) or saved.get("format") != FORMAT:
        raise GdrunError(
            f"{path} is not a gdrun checkpoint (no '{FORMAT}' format mark); resume takes the folder of a gdrun run."
        )
    return saved


class Checkpoints:
    """checkpoints/last.pt every `every` epochs (at most once per `min_seconds`) and best.pt.

    The best checkpoint is kept in memory when the headline metric improves and written with
    the next last.pt, so a long run of small improvements costs no disk writes.
    """

    def __init__(self, paths: RunPaths, every: int, min_seconds: float):
        # Tiny labs run hundreds of epochs a second; a checkpoint per epoch would cost more than
        # the training. A crash loses at most `min_seconds` of work (and at most `every` epochs).
        self.paths, self.every, self.min_seconds = paths, every, min_seconds
        self.best: Optional[Dict] = None
        self.best_written = True
        self.last_time = float("-inf")

    def keep_best(self, snapshot: Dict) -> None:
        self.best, self.best_written = snapshot, False

    def maybe_save_last(self, epoch: int, snapshot: Callable[[], Dict]) -> None:
        """Save last.pt if `every` divides `epoch` and the previous save is old enough."""
        if self.every <= 0 or epoch % self.every or time.perf_counter() - self.last_time < self.min_seconds:
            return
        self.save_last(snapshot())

    def save_last(self, snapshot: Dict) -> None:
        atomic_save(snapshot, self.paths.last_checkpoint)
        self.last_time = time.perf_counter()
        self.save_best()

    def save_best(self) -> None:
        if self.best is not None and not self.best_written:
            atomic_save(self.best, self.paths.best_checkpoint)
            self.best_written = True
