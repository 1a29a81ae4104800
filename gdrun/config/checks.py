"""Bad input, caught early and said plainly: the offending key or file and what would be valid.

`check_values` runs on the composed config before torch is imported; `explain` turns Hydra's
and OmegaConf's composition errors into one or two sentences.
"""

import dataclasses
import re
from typing import List

from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
from omegaconf import DictConfig, ListConfig
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException, ValidationError

from gdrun.errors import GdrunError

DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def check_values(cfg: DictConfig) -> None:
    """Refuse values that compose (their types are right) but cannot train."""
    problems: List[str] = []
    if not cfg.optim.lr > 0:
        problems.append(f"optim.lr={cfg.optim.lr} must be a positive number, e.g. optim.lr=0.1")
    batch = cfg.optim.batch_size
    if not (batch == "full" or (isinstance(batch, int) and not isinstance(batch, bool) and batch >= 1)):
        problems.append(f"optim.batch_size={batch} must be a whole number >= 1, or full (the whole training set)")
    if cfg.optim.epochs < 0:
        problems.append(f"optim.epochs={cfg.optim.epochs} must be 0 or more")
    if not 0 <= cfg.data.val_split < 1:
        problems.append(f"data.val_split={cfg.data.val_split} must be in [0, 1): the fraction held out")
    if not DEVICE.match(str(cfg.device)):
        problems.append(f"device={cfg.device} is not a device; use auto, cpu, cuda, cuda:N or mps")
    for key in ("fit_every", "threads"):
        if cfg[key] is not None and cfg[key] < 1:
            problems.append(f"{key}={cfg[key]} must be 1 or more (or null)")
    if cfg.checkpoint_every < 0:
        problems.append(f"checkpoint_every={cfg.checkpoint_every} must be 0 (only at the end) or more")
    if cfg.diverge_factor is not None and not cfg.diverge_factor > 1:
        problems.append(f"diverge_factor={cfg.diverge_factor} must be above 1 (or null to stop only on NaN/inf)")
    for key in ("hidden", "channels"):
        value = cfg.model.get(key)
        sizes = list(value) if isinstance(value, ListConfig) else [] if value is None else [value]
        if any(size < 1 for size in sizes):
            problems.append(f"model.{key}={value} must give layer sizes of 1 or more")
    if problems:
        raise GdrunError("; ".join(problems) + ".")


def explain(error: Exception) -> str:
    """One or two sentences for a composition error, naming the key and what is valid."""
    if isinstance(error, MissingConfigException) and error.options:
        group, _, name = (error.missing_cfg_file or "").rpartition("/")
        if group:
            return f"{group}={name} is not an option of '{group}'; choose one of: {', '.join(sorted(error.options))}."
    if isinstance(error, OverrideParseException):
        return f"could not read an override: {str(error).splitlines()[0]}. Write overrides as key=value."
    cause = error.__cause__ if isinstance(error, ConfigCompositionException) else error
    if isinstance(cause, (ConfigAttributeError, ConfigKeyError)):
        return _unknown_key(cause)
    if isinstance(cause, ValidationError):
        return f"{cause.full_key}: {str(cause).splitlines()[0]}."
    if isinstance(cause, OmegaConfBaseException):
        return str(cause).splitlines()[0]
    return str(error).strip().splitlines()[0]


def _unknown_key(error: OmegaConfBaseException) -> str:
    full_key = error.full_key or error.key
    parent = full_key.rpartition(".")[0]
    valid = ""
    if dataclasses.is_dataclass(error.object_type):
        names = [f.name for f in dataclasses.fields(error.object_type) if not f.name.startswith("_")]
        valid = f"; its keys are: {', '.join(names)}"
    where = f"'{parent}'" if parent else "the config"
    return f"{full_key} is not a key of {where}{valid}. (Use +{full_key}=... to add a new key on purpose.)"
