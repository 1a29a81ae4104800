"""A run read back from its folder: its config, its checkpoint, its model on its data."""

from pathlib import Path
from typing import Dict, Optional, Sequence

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from gdrun.errors import GdrunError


def run_config(folder: Path, overrides: Sequence[str] = (), fallback: Optional[Dict] = None) -> DictConfig:
    """The config a run was started with, with `overrides` applied.

    Hydra's record of it (.hydra/config.yaml) comes first: a checkpoint copied in from another
    run then shows up as not fitting, instead of quietly continuing someone else's run here.
    A run started from Python without Hydra has only its checkpoint's copy (`fallback`).
    """
    path = folder / ".hydra" / "config.yaml"
    if path.is_file():
        cfg = OmegaConf.load(path)
    elif fallback is not None:
        cfg = OmegaConf.create(fallback)
    else:
        raise GdrunError(f"{folder} is not a gdrun run folder (no .hydra/config.yaml in it).")
    OmegaConf.set_struct(cfg, True)  # an override may change a value, not invent a key
    try:
        return OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides)))
    except OmegaConfBaseException as error:
        raise GdrunError(f"cannot apply {' '.join(overrides)} to the run's config: "
                         f"{str(error).splitlines()[0]}") from error


def evaluate_run(folder: Path) -> Dict:
    """The run's final model (model.pt, else its last checkpoint) on its training and validation data."""
    from gdrun.api import load_run
    from gdrun.runner import build, epoch_row

    run = load_run(folder)
    which = "final" if (folder / "model.pt").is_file() else "last"
    state = run.weights(which)
    parts = build(run.build_config())
    try:
        parts.model.load_state_dict(state)
    except RuntimeError as error:
        raise GdrunError(f"the {which} weights of {folder} do not fit the model the run's config builds: "
                         f"{str(error).splitlines()[0]}") from error
    return epoch_row(parts, epoch=-1, seconds=0.0)
