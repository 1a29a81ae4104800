"""gdrun's launcher and sweeper in Hydra's ConfigStore: hydra/launcher=gdrun, hydra/sweeper=gdrun.

conf/hydra/default.yaml makes both the default of `gdrun -m`; hydra/launcher=basic (Hydra's own,
one job at a time), joblib, submitit_local, slurm, and search=... (Optuna's sweeper) replace them.
"""

from dataclasses import dataclass
from typing import Dict, Optional

from hydra.core.config_store import ConfigStore

from gdrun.jobs import GDRUN_LAUNCHER


@dataclass
class GdrunLauncherConf:
    # Each job's config composed once; like jobs trained together by gdrun's vectorised engine, the
    # others one at a time in this process; a sweep run again into its folder continued.
    _target_: str = GDRUN_LAUNCHER


@dataclass
class GdrunSweeperConf:
    # Hydra's basic sweeper (every combination of the comma-separated values) without its second
    # composition of each job's config when gdrun's launcher composes them.
    _target_: str = "hydra_plugins.gdrun_launcher.gdrun_launcher.GdrunSweeper"
    max_batch_size: Optional[int] = None
    params: Optional[Dict[str, str]] = None


ConfigStore.instance().store(group="hydra/launcher", name="gdrun", node=GdrunLauncherConf, provider="gdrun")
ConfigStore.instance().store(group="hydra/sweeper", name="gdrun", node=GdrunSweeperConf, provider="gdrun")
