"""`_target_` names read back from run folders: renamed from older versions, and trusted or not.

gdrun 0.1.0 kept its builders in a flat package (`gdrun.models.linear`, `gdrun.optim.GD`, ...);
they now live in sub-packages. A config read from a run folder goes through `upgrade` so that
`resume=`, `eval=`, `gdrun.load_run` and `gdrun-report` work on folders made by 0.1.0.

A run folder may come from someone else, and a `_target_` names code that building the run
calls. So a config read back from a folder may name only gdrun's own builders and torch's
optimizers, schedulers and losses, unless the user allows more: `trust=PREFIX[,PREFIX]` on the
command line (resume=, eval=), the GDRUN_TRUST environment variable, or
`gdrun.load_run(path, trust=[...])`. A config composed from the command line is the user's own
and is not checked.
"""

import os
import re
from contextlib import contextmanager
from typing import Any, Dict, Iterator, List, Sequence

from omegaconf import DictConfig, ListConfig, OmegaConf

from gdrun.errors import GdrunError

# What a run folder's config may name without the user's leave.
BUILT_IN = tuple(
    re.compile(pattern)
    for pattern in (
        r"gdrun\.training\.(datasets\.\w+|models|optim|schedules)\.\w+$",
        r"gdrun\.rundir\.tensorboard\.\w+$",
        r"gdrun\.rundir\.mlflow_logger\.\w+$",
        r"torch\.optim\.[A-Z]\w*$",
        r"torch\.optim\.lr_scheduler\.[A-Z]\w*$",
        r"torch\.nn\.[A-Z]\w*Loss$",
    )
)
TRUST_VARIABLE = "GDRUN_TRUST"
_allowed: List[str] = []  # prefixes allowed for now by `trusting`

# Old prefix -> new prefix, longest first where one is a prefix of another.
RENAMED: Dict[str, str] = {
    "gdrun.datasets.": "gdrun.training.datasets.",
    "gdrun.models.": "gdrun.training.models.",
    "gdrun.optim.": "gdrun.training.optim.",
    "gdrun.tensorboard.": "gdrun.rundir.tensorboard.",
    "gdrun.display.ConsoleFormatter": "gdrun.rundir.logfile.ConsoleFormatter",
    "gdrun.sweep.SweepSummary": "gdrun.sweeps.SweepSummary",
}


def current_name(target: str) -> str:
    """The name a target has today (itself when it was never renamed)."""
    for old, new in RENAMED.items():
        if target.startswith(old):
            return new + target[len(old) :]
    return target


def modules_named(cfg: Any) -> List[str]:
    """The modules of every `_target_` in a config (a command line's own), to trust when reading its folder back."""
    if isinstance(cfg, (DictConfig, ListConfig)):
        cfg = OmegaConf.to_container(cfg, resolve=False)
    found: List[str] = []
    if isinstance(cfg, dict):
        for key, value in cfg.items():
            if key == "_target_" and isinstance(value, str):
                found.append(value.rpartition(".")[0] or value)
            else:
                found += modules_named(value)
    elif isinstance(cfg, list):
        for item in cfg:
            found += modules_named(item)
    return found


def allowed_prefixes() -> List[str]:
    """What the user allows beyond the built-in targets: GDRUN_TRUST and `trusting`'s prefixes."""
    from_environment = [p.strip() for p in os.environ.get(TRUST_VARIABLE, "").split(",") if p.strip()]
    return [*from_environment, *_allowed]


def is_trusted(target: str) -> bool:
    if any(pattern.match(target) for pattern in BUILT_IN):
        return True
    return any(target == prefix or target.startswith(prefix.rstrip(".") + ".") for prefix in allowed_prefixes())


@contextmanager
def trusting(prefixes: Sequence[str]) -> Iterator[None]:
    """Allow targets under these prefixes (`mypkg.models`) while the block runs."""
    added = [p for p in prefixes if p]
    _allowed.extend(added)
    try:
        yield
    finally:
        for prefix in added:
            _allowed.remove(prefix)


def upgrade(cfg: DictConfig, where: str = "the run folder's config") -> DictConfig:
    """A config read back from a folder: old targets renamed (in place), every target trusted; returns it.

    GdrunError names the first target that is not trusted and how to allow it.
    """
    _walk(cfg, "", where)
    return cfg


def _walk(node: Any, key_path: str, where: str) -> None:
    if isinstance(node, DictConfig):
        for key in node.keys():
            value = node._get_node(key)
            if key == "_target_" and isinstance(node[key], str):
                node[key] = current_name(node[key])
                _check(node[key], f"{key_path}_target_", where)
            elif isinstance(value, (DictConfig, ListConfig)):
                _walk(value, f"{key_path}{key!s}.", where)
    elif isinstance(node, ListConfig):
        for index, item in enumerate(node):
            _walk(item, f"{key_path}{index}.", where)


def _check(target: str, key: str, where: str) -> None:
    if is_trusted(target):
        return
    prefix = target.rpartition(".")[0] or target
    raise GdrunError(
        f"{key}={target} in {where} is code gdrun does not run from a run folder unless you allow it "
        f"(it runs its own builders and torch's optimizers, schedulers and losses); if you trust this "
        f"folder, add trust={prefix} (or set {TRUST_VARIABLE}={prefix})."
    )


def upgraded_container(cfg: Dict[str, Any], where: str = "a checkpoint's config") -> Dict[str, Any]:
    """A plain dict config (a checkpoint's copy), upgraded as `upgrade` does."""
    node = OmegaConf.create(cfg)
    return OmegaConf.to_container(upgrade(node, where))  # type: ignore[return-value]
