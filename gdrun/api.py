"""gdrun from Python (a notebook): `run` trains as the command does, `load_run` reads a run back.

    import gdrun
    summary = gdrun.run(["data=digits", "model=logistic"])
    run = gdrun.load_run(summary["folder"])
    run.config.optim.lr, run.epochs[-1]["val_accuracy"], run.model

`run` leaves the caller's process as it found it: torch's global random state, its thread
count and the environment are put back afterwards. Light at import: torch comes in with the
first run or model.
"""

import copy
import logging
import os
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Sequence, Union

from omegaconf import DictConfig

from gdrun.config.targets import trusting
from gdrun.errors import FolderRefused, GdrunError
from gdrun.rundir.layout import RunPaths, is_run_folder
from gdrun.rundir.logfile import attached
from gdrun.rundir.reader import RunFolder

log = logging.getLogger("gdrun")


def run(overrides: Sequence[str] = ()) -> Dict:
    """Run the experiment `gdrun OVERRIDES` runs (one run, not a sweep); return its summary and `folder`.

    The overrides are the command line's, `hydra.run.dir=PATH` included. A bad setting raises
    GdrunError, any other failure its own exception, after the traceback is in the run's gdrun.log.
    """
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    from gdrun.config import schema

    overrides = schema.expand_shorthands(overrides)  # lr_find=true: lr_find.enabled=true
    if any(arg.startswith("-") for arg in overrides):
        raise GdrunError(
            f"gdrun.run takes overrides only (key=value, group=option), not {overrides}; "
            f"for a sweep, call it once per setting or use the command: gdrun -m ..."
        )
    schema.register()
    with (
        caller_state_kept(),
        initialize_config_module(config_module="gdrun.conf", job_name="gdrun", version_base="1.3"),
    ):
        # Hydra's own single run: .hydra/, callbacks and the folder as the command makes them; only
        # its logging set-up is left out, since it would replace the notebook's (see _task).
        hydra = GlobalHydra.instance().hydra
        assert hydra is not None
        try:
            job = hydra.run(
                config_name="config", task_function=_task, overrides=overrides, with_log_configuration=False
            )
        except FolderRefused as refused:
            raise GdrunError(str(refused)) from None
    return job.return_value


def _task(cfg: DictConfig) -> Dict:
    """The task Hydra runs: the job, with the run's gdrun.log beside the caller's own logging."""
    from hydra.core.hydra_config import HydraConfig

    from gdrun.jobs import discard_refused, run_job  # Hydra's modules come with it: `import gdrun` stays light

    folder = Path(HydraConfig.get().runtime.output_dir)
    try:
        with attached(RunPaths(folder).log):
            summary = run_job(cfg, folder)
    except GdrunError:
        discard_refused(folder)  # bad input is not a run: no folder is left behind
        raise
    return {**summary, "folder": str(folder)}


@contextmanager
def caller_state_kept() -> Iterator[None]:
    """torch's global RNG states and thread count, and os.environ, as they were before the block."""
    import torch

    environ = dict(os.environ)
    threads = torch.get_num_threads()
    with torch.random.fork_rng(devices=range(torch.cuda.device_count()) if torch.cuda.is_initialized() else []):
        try:
            yield
        finally:
            torch.set_num_threads(threads)
            os.environ.clear()
            os.environ.update(environ)


class Run(RunFolder):
    """A finished (or stopped) run: `config`, `summary`, `epochs` and `iterations` rows, `model`.

    `trust`: prefixes of `_target_`s this folder may name beyond gdrun's and torch's own (see
    gdrun.config.targets), e.g. ["mypkg.models"] for a folder made with a model class of your own.
    """

    WEIGHTS = ("final", "best", "last")

    def __init__(self, path: Path, trust: Sequence[str] = ()):
        super().__init__(path)
        self.trust = list(trust)

    @cached_property
    def config(self) -> Optional[DictConfig]:
        with trusting(self.trust):
            return RunFolder.config.func(self)  # type: ignore[attr-defined]

    @cached_property
    def model(self) -> Any:
        """The final model (model.pt), built from the run's config, in eval mode."""
        return self.load_model("final")

    def weights(self, which: str = "final") -> Dict:
        """The state_dict of the run's `final` (model.pt), `best` or `last` checkpoint."""
        import torch

        from gdrun.training import checkpoints

        if which not in self.WEIGHTS:
            raise GdrunError(f"which={which!r}: choose one of {', '.join(self.WEIGHTS)}.")
        if which == "best":
            return checkpoints.load(self.paths.best_checkpoint)["model"]
        if which == "last":
            return checkpoints.load(self.paths.last_checkpoint)["model"]
        if not self.paths.model.is_file():
            raise GdrunError(
                f"{self.path} has no model.pt (a run that did not complete): "
                f"load_model('last') or load_model('best') reads its checkpoints."
            )
        try:
            return torch.load(self.paths.model, map_location="cpu", weights_only=True)
        except Exception as error:  # noqa: BLE001 - a cut, foreign or crafted file: said as damage
            raise GdrunError(f"{self.paths.model} is damaged or not a model gdrun saved: {error}") from error

    def build_config(self) -> DictConfig:
        """A copy of the run's config to build from here: data.root made relative to where gdrun ran."""
        if self.config is None:
            raise GdrunError(f"{self.path} holds no config (.hydra/config.yaml or a checkpoint).")
        cfg = copy.deepcopy(self.config)
        if "root" in cfg.data and self.launch_dir is not None:  # a data folder relative to where gdrun ran
            cfg.data.root = str(self.launch_dir / cfg.data.root)
        return cfg

    def saved_model_args(self) -> Dict[str, Any]:
        """The model's construction arguments: from summary.json or a checkpoint; for a folder of
        gdrun 0.1.0, which recorded none, from the run's data (built once, on a forked RNG)."""
        if self.model_args is not None:
            return self.model_args
        from gdrun.training import checkpoints

        for path in (self.paths.last_checkpoint, self.paths.best_checkpoint):
            if path.is_file():
                args = checkpoints.load(path).get("model_args")
                if args is not None:
                    return args
        import torch

        from gdrun.training.build import build_data, model_args

        cfg = self.build_config()
        with torch.random.fork_rng(devices=[]):
            return model_args(build_data(cfg.data, cfg.seed, torch.device("cpu")), cfg.loss.output)

    def recorded_scaling(self) -> Optional[Dict[str, Any]]:
        """The input standardization the run trained with (data.standardize=true), as its summary records it."""
        return (self.model_args or {}).get("input_scaling")

    def load_model(self, which: str = "final") -> Any:
        """The model with the run's `final` (model.pt), `best` or `last` weights, in eval mode."""
        from gdrun.training.build import build_saved_model

        state = self.weights(which)
        try:
            return build_saved_model(self.build_config().model, self.saved_model_args(), state)
        except RuntimeError as error:
            raise GdrunError(
                f"the {which} weights of {self.path} do not fit the model the run's config builds: "
                f"{str(error).splitlines()[0]}"
            ) from error

    def evaluate(self, splits: Sequence[str] = ("train", "val"), which: Optional[str] = None) -> Dict:
        """The run's model on its `splits` (any of train, val, test): `<split>_<metric>` for loss, accuracy
        and the task's metrics (None for a split the run has not). `which` weights: final, best or last
        (None: final, else the last checkpoint). The data is rebuilt as the run built it (the same seed
        holds out the same validation and test samples)."""
        import torch

        from gdrun.training.build import build_data, build_loss
        from gdrun.training.epoch import evaluate_set
        from gdrun.training.parts import threshold

        unknown = [split for split in splits if split not in SPLITS]
        if unknown:
            raise GdrunError(f"split={','.join(unknown)}: choose among {', '.join(SPLITS)} (or all).")
        which = which or ("final" if self.paths.model.is_file() else "last")
        model = self.load_model(which)
        cfg = self.build_config()
        with torch.random.fork_rng(devices=[]):
            # The run's recorded standardization, not one computed again (a changed file is warned of).
            data = build_data(cfg.data, cfg.seed, torch.device("cpu"), self.recorded_scaling())
        loss_fn = build_loss(cfg.loss)
        result: Dict[str, Any] = {"weights": which}
        parts = {"train": data, "val": data.val, "test": data.test}
        for split in splits:
            part = parts[split]
            metrics = (
                {}
                if part is None
                else evaluate_set(model, loss_fn, part.x, part.y, data.task, threshold(cfg.loss.output))
            )
            result[f"{split}_loss"] = metrics.pop("loss", None)
            result[f"{split}_accuracy"] = metrics.pop("accuracy", None)
            result.update({f"{split}_{name}": value for name, value in metrics.items()})
        return result


# The sets a run's model can be evaluated on (Run.evaluate, gdrun eval=FOLDER split=...).
SPLITS = ("train", "val", "test")


def load_run(path: Union[str, Path], trust: Sequence[str] = ()) -> Run:
    """A run folder read back (files are read on first use). Reading it runs no code of the folder's:
    its config may name only gdrun's and torch's own builders, plus the prefixes in `trust`."""
    if not is_run_folder(Path(path)):
        raise GdrunError(f"{path} is not a gdrun run folder (no summary.json, no .hydra/config.yaml).")
    return Run(Path(path), trust)
