"""gdrun's Hydra launcher and sweeper (hydra/launcher=gdrun, hydra/sweeper=gdrun: the defaults of `gdrun -m`).

Light on purpose: Hydra imports this module at every start to find its plugins; the launcher's
work (and torch, with the first job) comes in from _core.py when a sweep launches.
"""

from typing import Optional, Sequence

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from gdrun.jobs import GDRUN_LAUNCHER


class GdrunLauncher(Launcher):
    """Runs a sweep's jobs in this process: each job's config composed once, like jobs trained together.

    Jobs that gdrun's vectorised engine can train together (the same data, model, optimizer,
    batch size and epochs) are; the others run one at a time, as Hydra's basic launcher runs them.
    Run again into its own folder, a sweep is continued: completed and diverged jobs are kept,
    interrupted ones resumed, failed ones run again. See _core.launch.
    """

    def __init__(self) -> None:
        self.config: Optional[DictConfig] = None
        self.task_function: Optional[TaskFunction] = None
        self.hydra_context: Optional[HydraContext] = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.task_function = task_function

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from hydra_plugins.gdrun_launcher import _core

        assert self.config is not None and self.hydra_context is not None and self.task_function is not None
        return _core.launch(self.config, self.hydra_context, self.task_function, job_overrides, initial_job_idx)


class GdrunSweeper(BasicSweeper):
    """Hydra's basic sweeper, every combination of the values given, whose jobs gdrun's launcher composes once.

    The basic sweeper composes each job's config before launching it, to catch a bad override
    before any job runs; gdrun's launcher composes every job before running any, so with it that
    check would only be the same work twice (~0.15 s a job). With any other launcher it stays.
    """

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        if self.config is not None and self.config.hydra.launcher.get("_target_") == GDRUN_LAUNCHER:
            return
        super().validate_batch_is_legal(batch)
