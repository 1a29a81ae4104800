"""gdrun's Optuna sweeper in Hydra's ConfigStore: hydra/sweeper=gdrun_optuna (the search presets choose it)."""

from dataclasses import dataclass, field
from typing import Any, Dict, Optional

from hydra.core.config_store import ConfigStore

from gdrun.jobs import GDRUN_OPTUNA_SWEEPER


@dataclass
class GdrunOptunaSweeperConf:
    _target_: str = GDRUN_OPTUNA_SWEEPER
    # The sampler's _target_ is built by the sweeper, not by Hydra when it builds the sweeper.
    _recursive_: bool = False
    # minimize or maximize the value each trial returns (its headline metric).
    direction: str = "minimize"
    study_name: str = "gdrun"
    # Where the study lives: null is sqlite:///SWEEP_DIR/optuna.db; any storage URL Optuna takes
    # (sqlite:///path, postgresql://..., mysql://...). The same command into the same folder continues it.
    storage: Optional[str] = None
    # How many trials the study holds when the search ends: counted in total, over every command
    # that ran this study (running it again after 20 with n_trials=30 runs 10 more).
    n_trials: int = 20
    # Trials asked at once and launched as one batch (gdrun's launcher may train them together).
    n_jobs: int = 1
    # An Optuna sampler, built with hydra.utils.instantiate; its seed moves on by the trials already in
    # the study, so a continued search does not draw its first trials' values again.
    sampler: Dict[str, Any] = field(default_factory=lambda: {"_target_": "optuna.samplers.TPESampler", "seed": None})
    # The search space, in Hydra's override syntax: key -> 'tag(log, interval(0.0001, 1))', 'choice(16, 32)'.
    params: Optional[Dict[str, str]] = None


ConfigStore.instance().store(group="hydra/sweeper", name="gdrun_optuna", node=GdrunOptunaSweeperConf, provider="gdrun")
