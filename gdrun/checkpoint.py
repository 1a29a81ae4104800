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
from typing import Any, Dict, Optional

import torch

FORMAT = "gdrun-checkpoint-1"


def rng_state(shuffle: Optional[torch.Generator]) -> Dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "shuffle": shuffle.get_state() if shuffle is not None else None}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Dict[str, Any], shuffle: Optional[torch.Generator]) -> None:
    torch.set_rng_state(state["torch"])
    if shuffle is not None and state.get("shuffle") is not None:
        shuffle.set_state(state["shuffle"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def payload(*, model, optimizer, scheduler, epoch: int, step: int, best: Dict,
            shuffle: Optional[torch.Generator], config: Dict) -> Dict[str, Any]:
    """The checkpoint dict, holding copies of the states: later training steps do not change it."""
    return {
        "format": FORMAT,
        "model": copy.deepcopy(model.state_dict()),
        "optimizer": copy.deepcopy(optimizer.state_dict()),
        "scheduler": copy.deepcopy(scheduler.state_dict()) if scheduler is not None else None,
        "epoch": epoch,
        "step": step,
        "best": copy.deepcopy(best),
        "rng": rng_state(shuffle),
        "config": config,  # never changed during a run: shared, not copied
    }


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
    """A checkpoint dict; weights_only=False because it holds RNG states and the config."""
    return torch.load(path, map_location="cpu", weights_only=False)


class Checkpoints:
    """checkpoints/last.pt every `every` epochs (at most once per MIN_SECONDS) and best.pt.

    The best checkpoint is kept in memory when the headline metric improves and written with
    the next last.pt, so a long run of small improvements costs no disk writes.
    """

    # Tiny labs run hundreds of epochs a second; a checkpoint per epoch would cost more than
    # the training. A crash loses at most this much time (and at most `every` epochs).
    MIN_SECONDS = 2.0

    def __init__(self, folder: Path, every: int):
        self.folder, self.every = folder, every
        self.best: Optional[Dict] = None
        self.best_written = True
        self.last_time = float("-inf")

    def keep_best(self, snapshot: Dict) -> None:
        self.best, self.best_written = snapshot, False

    def maybe_save_last(self, epoch: int, snapshot) -> None:
        """Save last.pt if `every` divides `epoch` and the previous save is old enough."""
        if self.every <= 0 or epoch % self.every or time.perf_counter() - self.last_time < self.MIN_SECONDS:
            return
        self.save_last(snapshot())

    def save_last(self, snapshot: Dict) -> None:
        atomic_save(snapshot, self.folder / "last.pt")
        self.last_time = time.perf_counter()
        self.save_best()

    def save_best(self) -> None:
        if self.best is not None and not self.best_written:
            atomic_save(self.best, self.folder / "best.pt")
            self.best_written = True
