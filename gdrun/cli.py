"""The `gdrun` command: Hydra composes the config, `gdrun.runner.run` trains.

Nothing here imports torch: `gdrun --help`, `gdrun --cfg job` and configuration errors
answer in a fraction of a second. torch comes in with gdrun.runner, once a run starts.
"""

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from gdrun import schema
from gdrun.errors import GdrunError

schema.register()
log = logging.getLogger("gdrun")


def main() -> None:
    """Console entry point: gdrun's own quick help, or Hydra."""
    if any(arg in ("--help", "-h") for arg in sys.argv[1:]):
        print(help_text())
        return
    hydra_main()


@hydra.main(version_base="1.3", config_path="pkg://gdrun.conf", config_name="config")
def hydra_main(cfg: DictConfig):
    """Run one job; return its headline metric (what Hydra's sweepers optimise)."""
    hydra_cfg = HydraConfig.get()
    folder = Path(hydra_cfg.runtime.output_dir)
    try:
        from gdrun.runner import run

        summary = run(cfg, folder)
    except GdrunError as error:
        log.exception("gdrun stopped")  # the full traceback goes to the run's log file only
        print(f"gdrun: error: {error}", file=sys.stderr)
        if hydra_cfg.mode == RunMode.RUN:
            raise SystemExit(2)
        return None  # in a sweep the other jobs go on
    return summary["best"]["value"]


GROUPS = ("data", "model", "loss", "optim", "sched", "lab")
HELP = """gdrun: gradient-descent experiments in PyTorch, one folder per run under outputs/.

Usage: gdrun [-m] [GROUP=OPTION ...] [KEY=VALUE ...]

  gdrun                                      the default: a noisy line fitted by batch gradient descent
  gdrun model=logistic data=mnist optim.lr=0.001
  gdrun lab=linreg_bgd optim.lr=0.2          a course lab, with one setting changed
  gdrun -m optim.lr=0.01,0.1,1 optim.batch_size=1,10,full    a sweep: every combination

Config groups (GROUP=OPTION):
{groups}

Top-level keys: seed=0  device=auto|cpu|cuda|mps  plots=true  fit_every=null  checkpoint_every=1
Settings of a group: optim.lr, optim.batch_size (a number or full), optim.epochs, optim.momentum, ...
  gdrun --cfg job [overrides]    shows the whole composed config; gdrun --hydra-help for Hydra's flags.
"""


def help_text() -> str:
    """The groups and their options, read from the config files themselves (no composition: fast)."""
    from importlib.resources import files

    conf = files("gdrun.conf")
    lines = []
    for group in GROUPS:
        names = sorted(p.name[:-5] for p in conf.joinpath(group).iterdir() if p.name.endswith(".yaml"))
        lines.append(f"  {group:<6} {', '.join(names) if names else '(none yet)'}")
    return HELP.format(groups="\n".join(lines))
