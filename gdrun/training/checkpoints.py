"""Self-describing checkpoints, written atomically.

A checkpoint is a dict that says what it is: weights, optimizer and scheduler state, epoch
and step, every RNG state the run draws from, the best metric so far and the resolved
config, and the fingerprint of what produced it (the settings that decide its numbers and
the identity of its data), so `resume=` refuses a checkpoint that is not its folder's own.
It is written to a temporary file in the same folder and renamed over the old one, so a crash
or `kill -9` mid-write leaves the previous checkpoint whole. It holds tensors and plain
values only, and is read with `weights_only=True`: loading a checkpoint runs no code.
"""

import copy
import hashlib
import json
import pickle
import time
from pathlib import Path
from typing import Any, Dict, Optional

import torch

from gdrun.config.targets import upgraded_container
from gdrun.errors import GdrunError
from gdrun.rundir.files import replace_atomically
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
    fingerprint: Dict[str, str],
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
        "fingerprint": fingerprint,
    }


# ---------------------------------------------------------------- whose checkpoint is it?
# The settings that decide a run's numbers. Other keys (plots, threads, checkpoint timing,
# loggers, device, optim.epochs, where the data files lie) may differ between a run and its resume.
SHAPING = ("data", "model", "loss", "optim", "sched", "seed", "amp", "compile")
NOT_SHAPING = {"optim": ("epochs",), "data": ("root", "download")}
# Evenly spaced samples of the data that go into its identity, besides shapes and sums.
DATA_SAMPLES = 1 << 16


def shaping_settings(config: Dict[str, Any]) -> Dict[str, Any]:
    """The part of a resolved config that decides the run's numbers, flattened (`optim.lr`: 0.1)."""
    flat: Dict[str, Any] = {}
    for key in SHAPING:
        value = config.get(key)
        if isinstance(value, dict):
            flat.update({f"{key}.{k}": v for k, v in value.items() if k not in NOT_SHAPING.get(key, ())})
        else:
            flat[key] = value
    return flat


def data_identity(data: Any) -> str:
    """A digest of a dataset: shapes, types, sums and evenly spaced samples of every tensor (fast on MNIST)."""
    digest = hashlib.blake2b(digest_size=16)
    splits = [data] + ([data.val] if data.val is not None else [])
    for split in splits:
        for tensor in (split.x, split.y):
            flat = tensor.detach().reshape(-1).cpu()
            stride = max(1, flat.numel() // DATA_SAMPLES)
            digest.update(f"{tuple(tensor.shape)}{tensor.dtype}{float(flat.double().sum())!r}".encode())
            digest.update(flat[::stride].contiguous().numpy().tobytes())
    return digest.hexdigest()


def fingerprint(config: Dict[str, Any], data: Any) -> Dict[str, str]:
    """What produced a checkpoint: a digest of its shaping settings and its data's identity."""
    settings = json.dumps(shaping_settings(config), sort_keys=True, default=str)
    return {"settings": hashlib.blake2b(settings.encode(), digest_size=16).hexdigest(), "data": data_identity(data)}


def check_belongs(saved: Dict[str, Any], config: Dict[str, Any], data: Any, path: Path) -> None:
    """GdrunError unless the checkpoint was written by a run with these settings on this data.

    Checkpoints of gdrun 0.1.0 carry no fingerprint: their own copy of the config is compared.
    """
    ours = shaping_settings(config)
    theirs = shaping_settings(upgraded_container(saved.get("config") or {}))
    differ = [k for k in sorted(set(ours) | set(theirs)) if ours.get(k) != theirs.get(k)]
    expected = fingerprint(config, data)
    stored = saved.get("fingerprint")
    if differ or (stored is not None and stored.get("settings") != expected["settings"]):
        shown = ", ".join(f"{k}: {theirs.get(k)!r} there, {ours.get(k)!r} here" for k in differ[:3]) or "settings"
        raise GdrunError(
            f"{path} was not written by the run in this folder ({shown}); was it copied from another run? "
            f"resume= goes on only from the folder's own checkpoint, and changes nothing when it refuses."
        )
    if stored is not None and stored.get("data") != expected["data"]:
        raise GdrunError(
            f"{path} was written on other data than this run's data gives now (the data files changed?); "
            f"resume= goes on only on the same data. Nothing was changed."
        )


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
    """torch.save to a temporary file, fsync, then rename over `path` (the temporary file goes on failure)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_atomically(path, lambda f: torch.save(obj, f))


def load(path: Path) -> Dict[str, Any]:
    """A gdrun checkpoint, or a GdrunError that says what is wrong with the file."""
    if not path.is_file():
        raise GdrunError(
            f"no checkpoint at {path}: the run saved none (did it stop before its first "
            f"epoch?) or the folder is not a gdrun run folder."
        )
    try:
        # weights_only: tensors and plain values only, so a crafted file cannot run code when read.
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "weights only" not in str(error).lower():  # a damaged or non-torch file, said below
            raise GdrunError(f"{path} is damaged (truncated or not a torch file).") from error
        # What weights_only refuses: objects whose unpickling would run code.
        raise GdrunError(
            f"{path} holds objects that would run code when loaded, which gdrun never does with a run "
            f"folder's files; it is not a checkpoint gdrun wrote."
        ) from error
    except Exception as error:  # noqa: BLE001 - truncated zip, not a torch file: said as damage
        first = f"{type(error).__name__}: {(str(error).strip().splitlines() or [''])[0]}"
        raise GdrunError(
            f"{path} is damaged (truncated or not a torch file: {first}); checkpoints/best.pt may still be whole."
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

    def due(self, epoch: int) -> bool:
        """True when last.pt is due after `epoch`: `every` divides it and the previous save is old enough."""
        if self.every <= 0 or epoch % self.every:
            return False
        return time.perf_counter() - self.last_time >= self.min_seconds

    def save_last(self, snapshot: Dict) -> None:
        atomic_save(snapshot, self.paths.last_checkpoint)
        self.last_time = time.perf_counter()
        self.save_best()

    def save_best(self) -> None:
        if self.best is not None and not self.best_written:
            atomic_save(self.best, self.paths.best_checkpoint)
            self.best_written = True
