"""`_target_` names read back from run folders that older gdrun versions wrote.

gdrun 0.1.0 kept its builders in a flat package (`gdrun.models.linear`, `gdrun.optim.GD`, ...);
they now live in sub-packages. A config read from a run folder goes through `upgrade` so that
`resume=`, `eval=`, `gdrun.load_run` and `gdrun-report` work on folders made by 0.1.0.
"""

from typing import Any, Dict

from omegaconf import DictConfig, ListConfig, OmegaConf

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


def upgrade(cfg: DictConfig) -> DictConfig:
    """The config with every old `_target_` renamed, in place; returns it."""
    _walk(cfg)
    return cfg


def _walk(node: Any) -> None:
    if isinstance(node, DictConfig):
        for key in node.keys():
            value = node._get_node(key)
            if key == "_target_" and isinstance(node[key], str):
                node[key] = current_name(node[key])
            elif isinstance(value, (DictConfig, ListConfig)):
                _walk(value)
    elif isinstance(node, ListConfig):
        for item in node:
            _walk(item)


def upgraded_container(cfg: Dict[str, Any]) -> Dict[str, Any]:
    """A plain dict config (a checkpoint's copy) with its old targets renamed."""
    node = OmegaConf.create(cfg)
    return OmegaConf.to_container(upgrade(node))  # type: ignore[return-value]
