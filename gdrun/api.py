"""gdrun from Python (a notebook): `run` trains as the command does, `load_run` reads a run back.

    import gdrun
    summary = gdrun.run(["data=digits", "model=logistic", "hydra.run.dir=runs/digits"])
    run = gdrun.load_run(summary["folder"])
    run.config.optim.lr, run.epochs[-1]["val_accuracy"], run.model

Light at import: torch comes in with the first run or model.
"""

import copy
import logging
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Dict, Iterator, Sequence, Union

from omegaconf import DictConfig

from gdrun.errors import GdrunError
from gdrun.plots.runfolder import RunFolder

log = logging.getLogger("gdrun")

# The model weights a run folder holds, by the name load_model takes.
WEIGHTS = {"final": "model.pt", "best": "checkpoints/best.pt", "last": "checkpoints/last.pt"}


def run(overrides: Sequence[str] = ()) -> Dict:
    """Run the experiment `gdrun OVERRIDES` runs (one run, not a sweep); return its summary and `folder`.

    The overrides are the command line's, `hydra.run.dir=PATH` included. A bad setting raises
    GdrunError, any other failure its own exception, after the traceback is in the run's gdrun.log.
    """
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    from gdrun import schema
    from gdrun.cli import refuse_existing_run_folder

    overrides = list(overrides)
    if any(arg.startswith("-") for arg in overrides):
        raise GdrunError(f"gdrun.run takes overrides only (key=value, group=option), not {overrides}; "
                         f"for a sweep, call it once per setting or use the command: gdrun -m ...")
    refuse_existing_run_folder(overrides)
    schema.register()
    with initialize_config_module(config_module="gdrun.conf", job_name="gdrun", version_base="1.3"):
        # Hydra's own single run: .hydra/, callbacks and the folder as the command makes them; only
        # its logging set-up is left out, since it would replace the notebook's (see _log_file).
        job = GlobalHydra.instance().hydra.run(config_name="config", task_function=_job, overrides=overrides,
                                               with_log_configuration=False)
    return job.return_value


def _job(cfg) -> Dict:
    """The task Hydra runs: check the values, train, add the folder to the summary."""
    from hydra.core.hydra_config import HydraConfig

    from gdrun.checks import check_values
    from gdrun.cli import record_failure
    from gdrun.runner import run as train

    hydra_cfg = HydraConfig.get()
    folder = Path(hydra_cfg.runtime.output_dir)
    with _log_file(hydra_cfg.job_logging):
        try:
            check_values(cfg)
            summary = train(cfg, folder)
        except Exception as error:
            # What the command leaves too: the traceback in gdrun.log, summary.json saying `failed`.
            log.info("stopped: %s", error, exc_info=True)
            record_failure(folder, "failed", f"{type(error).__name__}: {error}")
            raise
    return {**summary, "folder": str(folder)}


@contextmanager
def _log_file(job_logging) -> Iterator[None]:
    """The run's log file, as conf/hydra/job_logging writes it, beside the caller's own logging."""
    spec = job_logging.handlers.file
    handler = logging.FileHandler(spec.filename)
    handler.setFormatter(logging.Formatter(job_logging.formatters[spec.formatter].format))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(min(level, logging.INFO))
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        handler.close()


class Run(RunFolder):
    """A finished (or stopped) run: `config`, `summary`, `epochs` and `iterations` rows, `model`."""

    @cached_property
    def model(self):
        """The final model (model.pt), built from the run's config, in eval mode."""
        return self.load_model("final")

    def weights(self, which: str = "final") -> Dict:
        """The state_dict of the run's `final` (model.pt), `best` or `last` checkpoint."""
        import torch

        from gdrun import checkpoint

        if which not in WEIGHTS:
            raise GdrunError(f"which={which!r}: choose one of {', '.join(WEIGHTS)}.")
        path = self.path / WEIGHTS[which]
        if which != "final":
            return checkpoint.load(path)["model"]
        if not path.is_file():
            raise GdrunError(f"{self.path} has no model.pt (a run that did not complete): "
                             f"load_model('last') or load_model('best') reads its checkpoints.")
        return torch.load(path, map_location="cpu", weights_only=True)

    def build_config(self) -> DictConfig:
        """A copy of the run's config to build from here: data.root made relative to where gdrun ran."""
        if self.config is None:
            raise GdrunError(f"{self.path} holds no config (.hydra/config.yaml or a checkpoint).")
        cfg = copy.deepcopy(self.config)
        if "root" in cfg.data and self.launch_dir is not None:  # a data folder relative to where gdrun ran
            cfg.data.root = str(self.launch_dir / cfg.data.root)
        return cfg

    def load_model(self, which: str = "final"):
        """The model with the run's `final` (model.pt), `best` or `last` checkpoint's weights, in eval mode."""
        import torch

        from gdrun.build import build_data, build_model

        state = self.weights(which)
        cfg = self.build_config()
        # The data gives the model's input and output sizes; building draws initial weights, so
        # it does so on a forked RNG and leaves the caller's random stream as it was.
        with torch.random.fork_rng(devices=[]):
            data = build_data(cfg.data, cfg.seed, torch.device("cpu"))
            model = build_model(cfg.model, data, cfg.loss.output)
        model.load_state_dict(state)
        return model.eval()


def load_run(path: Union[str, Path]) -> Run:
    """A run folder read back (files are read on first use)."""
    run = Run(Path(path))
    if not ((run.path / "summary.json").is_file() or (run.path / ".hydra" / "config.yaml").is_file()):
        raise GdrunError(f"{run.path} is not a gdrun run folder (no summary.json, no .hydra/config.yaml).")
    return run
