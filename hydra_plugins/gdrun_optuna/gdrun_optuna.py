"""gdrun's Optuna sweeper (hydra/sweeper=gdrun_optuna): the sweeper of `gdrun -m search=...`.

Light on purpose: Hydra imports this module at every start to find its plugins; optuna (and the
search, _search.py) comes in when a search starts.
"""

from pathlib import Path
from typing import Any, List, Optional, Sequence

from hydra.core.plugins import Plugins
from hydra.plugins.launcher import Launcher
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from gdrun.errors import FolderRefused, GdrunError
from gdrun.jobs import GDRUN_LAUNCHER
from gdrun.rundir.layout import is_run_folder

INSTALL_HINT = 'pip install "gdrun[optuna]"'


class GdrunOptunaSweeper(Sweeper):
    """An Optuna study driven by ask-and-tell: n_jobs trials asked at once and handed to the launcher as one
    batch; kept in optuna.db in the sweep folder (or hydra.sweeper.storage), so the same command continues it."""

    def __init__(self, **settings: Any) -> None:
        # The settings as composed (the sampler's _target_ not built yet: its seed moves on in a continued study).
        self.settings = OmegaConf.create(settings)
        self.config: Optional[DictConfig] = None
        self.hydra_context: Optional[HydraContext] = None
        self.launcher: Optional[Launcher] = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            config=config, hydra_context=hydra_context, task_function=task_function
        )

    def sweep(self, arguments: List[str]) -> None:
        try:
            from hydra_plugins.gdrun_optuna import _search
        except ModuleNotFoundError as error:
            if error.name != "optuna":
                raise
            raise GdrunError(f"search=... needs Optuna: {INSTALL_HINT}") from error
        assert self.config is not None and self.launcher is not None
        checked = CheckedLauncher(self, self.launcher)
        _search.search(self.settings, self.config, checked, arguments)


class CheckedLauncher(Launcher):
    """The configured launcher, the first batch's configs composed first (as Hydra's basic sweeper does), so a
    bad override stops the search before a job runs; gdrun's launcher composes every job itself before any runs."""

    def __init__(self, sweeper: GdrunOptunaSweeper, launcher: Launcher) -> None:
        self.sweeper, self.launcher = sweeper, launcher
        config = sweeper.config
        self.checked = config is not None and config.hydra.launcher.get("_target_") == GDRUN_LAUNCHER

    def setup(self, **kwargs: Any) -> None:  # set up by the sweeper already
        pass

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[Any]:
        if not self.checked:
            self.sweeper.validate_batch_is_legal(job_overrides)
            self.checked = True
        if self.sweeper.config is not None and self.sweeper.config.hydra.launcher.get("_target_") != GDRUN_LAUNCHER:
            refuse_taken(Path(str(self.sweeper.config.hydra.sweep.dir)), initial_job_idx, len(job_overrides))
        return self.launcher.launch(job_overrides, initial_job_idx)


def refuse_taken(sweep_dir: Path, first: int, count: int) -> None:
    """FolderRefused when a trial's folder (SWEEP_DIR/N) holds a run already: another launcher than gdrun's
    would write over it (gdrun's own keeps, resumes or refuses it)."""
    for number in range(first, first + count):
        folder = sweep_dir.absolute() / str(number)
        if is_run_folder(folder):
            raise FolderRefused(
                f"hydra.sweep.dir={sweep_dir.absolute()}: trial {number}'s folder {folder} already holds a run (of "
                f"another study?), and gdrun never writes over one; choose another folder or hydra.sweeper.study_name."
            )
