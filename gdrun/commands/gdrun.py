"""The `gdrun` command: Hydra composes the config, gdrun.jobs runs each job.

Nothing here imports torch: `gdrun --help`, `gdrun --cfg job` and configuration errors
answer in a fraction of a second. torch comes in with the training layer, once a run starts.

Exit status: 0 completed; 1 an unexpected failure (traceback in the run's gdrun.log);
2 bad input (said in one or two sentences); 3 diverged; 128 + the signal when interrupted
(130 for Ctrl-C, 143 for SIGTERM).
"""

import gc
import os
import signal
import sys
from pathlib import Path
from typing import List, Optional

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from gdrun import jobs
from gdrun.config import schema
from gdrun.config.checks import explain
from gdrun.errors import EXIT_BAD_INPUT, GdrunError

schema.register()


def main() -> None:
    """Console entry point: quick help, resume=/eval= of a run folder, or a Hydra run or sweep."""
    args = sys.argv[1:]
    if any(arg in ("--help", "-h") for arg in args):
        print(help_text())
        return
    # Hydra prints composition errors with a stack trace; let them reach us to say them plainly
    # (unless the user asked for Hydra's full errors).
    full_errors = os.environ.get("HYDRA_FULL_ERROR") == "1"
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        command = next((a for a in args if a.startswith(("resume=", "eval="))), None)
        if command is not None:
            key, _, path = command.partition("=")
            rest = [a for a in args if a != command]
            sys.exit(resume_command(Path(path), rest) if key == "resume" else eval_command(Path(path), rest))
        jobs.refuse_existing_run_folder(args)
        hydra_main()
    except GdrunError as error:
        jobs.fail(str(error), EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        jobs.fail("stopped at once (second Ctrl-C); checkpoints/last.pt is the last one saved.", 128 + signal.SIGINT)
    except Exception as error:  # composition errors, said in a sentence
        if full_errors:
            raise
        jobs.fail(explain(error), EXIT_BAD_INPUT)
    finally:
        # Python's last garbage collection at exit scans every object torch and Hydra made
        # (~0.5 s here); nothing of ours needs it, so hand them all to the permanent generation.
        # Not once triton is loaded (torch.optim and torchvision bring it in through
        # torch._dynamo): its nanobind extension then reports the uncollected objects as leaks.
        if "triton" not in sys.modules:
            gc.freeze()


@hydra.main(version_base="1.3", config_path="pkg://gdrun.conf", config_name="config")
def hydra_main(cfg: DictConfig) -> Optional[float]:
    """One job; returns its headline metric (what Hydra's sweepers optimise), None if it did not complete."""
    hydra_cfg = HydraConfig.get()
    folder = Path(hydra_cfg.runtime.output_dir)
    return jobs.hydra_task(cfg, folder, in_sweep=hydra_cfg.mode == RunMode.MULTIRUN)


def resume_command(folder: Path, overrides: List[str]) -> int:
    """`gdrun resume=FOLDER [key=value ...]`: go on from the run's last checkpoint."""
    summary = jobs.resume_job(folder, overrides)
    jobs.outcome(summary, folder, in_sweep=False)
    return 0


def eval_command(folder: Path, overrides: List[str]) -> int:
    """`gdrun eval=FOLDER`: the run's saved model on its training and validation data."""
    if overrides:
        raise GdrunError(f"eval takes only the run folder; drop {' '.join(overrides)}.")
    from rich.console import Console
    from rich.table import Table

    from gdrun.api import load_run

    row = load_run(folder).evaluate()
    table = Table(title=f"gdrun eval: {folder}")
    for column in ("split", "loss", "accuracy"):
        table.add_column(column, justify="right" if column != "split" else "left")
    for split in ("train", "val"):
        if row[f"{split}_loss"] is not None:
            accuracy = row[f"{split}_accuracy"]
            table.add_row(split, f"{row[f'{split}_loss']:.6g}", "" if accuracy is None else f"{100 * accuracy:.2f}%")
    Console().print(table)
    return 0


GROUPS = ("data", "model", "loss", "optim", "sched", "lab", "logger", "search")
HELP = """gdrun: gradient-descent experiments in PyTorch, one folder per run under outputs/.

Usage: gdrun [-m] [GROUP=OPTION ...] [KEY=VALUE ...]

  gdrun                                      the default: a noisy line fitted by batch gradient descent
  gdrun model=logistic data=mnist optim.lr=0.001
  gdrun lab=linreg_bgd optim.lr=0.2          a course lab, with one setting changed
  gdrun -m optim.lr=0.01,0.1,1 optim.batch_size=1,10,full    a sweep: every combination
  gdrun resume=RUN_FOLDER [optim.epochs=N]   go on from a stopped run's last checkpoint
  gdrun eval=RUN_FOLDER                      a run's saved model on its training and validation data

Config groups (GROUP=OPTION):
{groups}

Top-level keys: seed=0  device=auto|cpu|cuda|mps  plots=true  threads=null  fit_every=null
  surface_range=null  checkpoint_every=1  checkpoint_min_seconds=2  diverge_factor=1e6
Settings of a group: optim.lr, optim.batch_size (a number or full), optim.epochs, optim.momentum, ...
  gdrun --cfg job [overrides]    shows the whole composed config; gdrun --hydra-help for Hydra's flags.
Exit status: 0 completed, 1 failed, 2 bad input, 3 diverged, 130 interrupted (Ctrl-C), 143 SIGTERM.

Other commands: gdrun-report PATH... (redraw pictures, --compare runs), gdrun-runs [DIR] (list runs),
  gdrun-labs [NAME...] (run the course labs and compare them with the notebooks).
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
