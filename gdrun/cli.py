"""The `gdrun` command: Hydra composes the config, `gdrun.runner.run` trains.

Nothing here imports torch: `gdrun --help`, `gdrun --cfg job` and configuration errors
answer in a fraction of a second. torch comes in with gdrun.runner, once a run starts.

Exit status: 0 completed; 1 an unexpected failure (traceback in the run's gdrun.log);
2 bad input (said in one or two sentences); 3 diverged; 128 + the signal when interrupted
(130 for Ctrl-C, 143 for SIGTERM).
"""

import gc
import logging
import os
import signal
import sys
from pathlib import Path
from typing import List, Optional

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from gdrun import schema
from gdrun.checks import check_values, explain
from gdrun.errors import GdrunError

schema.register()
log = logging.getLogger("gdrun")

EXIT_FAILED, EXIT_BAD_INPUT, EXIT_DIVERGED = 1, 2, 3
RUN_FILES = ("summary.json", "iterations.csv")


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
            sys.exit(resume(Path(path), rest) if key == "resume" else evaluate(Path(path), rest))
        refuse_existing_run_folder(args)
        hydra_main()
    except GdrunError as error:
        fail(str(error), EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        fail("stopped at once (second Ctrl-C); checkpoints/last.pt is the last one saved.",
             128 + signal.SIGINT)
    except Exception as error:  # noqa: BLE001 - composition errors, said in a sentence
        if full_errors:
            raise
        fail(explain(error), EXIT_BAD_INPUT)
    finally:
        # Python's last garbage collection at exit scans every object torch and Hydra made
        # (~0.5 s here); nothing of ours needs it, so hand them all to the permanent generation.
        # Not once triton is loaded (torch.optim and torchvision bring it in through
        # torch._dynamo): its nanobind extension then reports the uncollected objects as leaks.
        if "triton" not in sys.modules:
            gc.freeze()


@hydra.main(version_base="1.3", config_path="pkg://gdrun.conf", config_name="config")
def hydra_main(cfg: DictConfig):
    """One job; returns its headline metric (what Hydra's sweepers optimise), None if it did not complete.

    None, not NaN: the Optuna sweeper marks such a trial failed and goes on, where a NaN stops the
    whole search (optuna 2.10, the sweeper's pin, refuses to be told NaN: hydra PR #2225).
    """
    hydra_cfg = HydraConfig.get()
    folder = Path(hydra_cfg.runtime.output_dir)
    in_sweep = hydra_cfg.mode == RunMode.MULTIRUN
    try:
        check_values(cfg)
        from gdrun.runner import run

        summary = run(cfg, folder)
    except KeyboardInterrupt:
        record_failure(folder, "interrupted", "stopped at once by a second Ctrl-C")
        raise
    except GdrunError as error:
        return job_failed(folder, str(error), EXIT_BAD_INPUT, in_sweep)
    except Exception as error:  # noqa: BLE001 - a failure never takes the sweep's other jobs with it
        return job_failed(folder, f"{type(error).__name__}: {error} (traceback in {folder / 'gdrun.log'})",
                          EXIT_FAILED, in_sweep)
    return outcome(summary, folder, in_sweep)


def outcome(summary: dict, folder: Path, in_sweep: bool) -> Optional[float]:
    """Say how a run ended; exit with its status code where that is the right thing to do."""
    status = summary["status"]
    if status == "diverged":
        print(f"gdrun: diverged at step {summary['diverged_at_step']} (cost {summary['diverged_cost']:.3g}); "
              f"try a smaller learning rate than optim.lr={summary['run']['lr']}. "
              f"The files up to that step are kept.", file=sys.stderr)
        if not in_sweep:
            sys.exit(EXIT_DIVERGED)
        return None
    if status == "interrupted":
        print(f"gdrun: interrupted ({summary['stopped_by']}) after {summary['steps']} iterations; "
              f"go on with: gdrun resume={folder}", file=sys.stderr)
        # A stopped sweep stops: the user asked for the whole command to end.
        sys.exit(128 + signal.Signals[summary["stopped_by"]].value)
    return summary["best"]["value"]


def job_failed(folder: Path, message: str, code: int, in_sweep: bool) -> Optional[float]:
    """Record the failure in the run folder; end the command, or let a sweep's other jobs go on."""
    # INFO: the log file gets it with the traceback; the console gets `message` once, below.
    log.info("stopped: %s", message, exc_info=sys.exc_info()[0] is not None)
    record_failure(folder, "failed", message)
    if not in_sweep:
        fail(message, code)
    print(f"gdrun: error in {folder}: {message}", file=sys.stderr)
    return None


def record_failure(folder: Path, status: str, message: str) -> None:
    """summary.json of a run that did not complete, so listings and sweep summaries show why."""
    from gdrun.metrics import write_json

    path = folder / "summary.json"
    summary = {"status": status, "error": message}
    if path.exists():  # keep what a stopped run already said about itself
        import json

        summary = {**json.loads(path.read_text()), **summary}
    write_json(path, summary)


def fail(message: str, code: int) -> None:
    print(f"gdrun: error: {message}", file=sys.stderr)
    sys.exit(code)


def refuse_existing_run_folder(args: List[str]) -> None:
    """gdrun never writes over a run: an explicit hydra.run.dir / hydra.sweep.dir must not hold one."""
    for arg in args:
        key, _, value = arg.partition("=")
        if key not in ("hydra.run.dir", "hydra.sweep.dir") or not value:
            continue
        folder = Path(value)
        runs = [p for name in RUN_FILES for p in ([folder / name] + list(folder.glob(f"*/{name}")))]
        if any(p.exists() for p in runs):
            raise GdrunError(f"{key}={value} already holds a run, and gdrun never writes over one; "
                             f"choose another folder, or continue that run with gdrun resume={value}.")


def resume(folder: Path, overrides: List[str]) -> int:
    """`gdrun resume=FOLDER [key=value ...]`: go on from the run's last checkpoint, in its own folder."""
    from gdrun import checkpoint, saved

    saved_checkpoint = checkpoint.load(folder / "checkpoints" / "last.pt")
    cfg = saved.run_config(folder, overrides, fallback=saved_checkpoint["config"])
    check_values(cfg)
    done = saved_checkpoint["progress"]
    if done["epoch"] >= cfg.optim.epochs and not done["epoch_step"]:
        raise GdrunError(f"{folder} already completed its {done['epoch']} epochs; "
                         f"to train further, give more: gdrun resume={folder} optim.epochs={done['epoch'] + 10}")
    log_to(folder)
    log.info("resuming %s from epoch %d, step %d", folder, done["epoch"], done["step"])
    from gdrun.runner import run

    summary = run(cfg, folder, resume_from=saved_checkpoint)
    outcome(summary, folder, in_sweep=False)
    return 0


def evaluate(folder: Path, overrides: List[str]) -> int:
    """`gdrun eval=FOLDER`: the run's saved model on its training and validation data."""
    if overrides:
        raise GdrunError(f"eval takes only the run folder; drop {' '.join(overrides)}.")
    from rich.console import Console
    from rich.table import Table

    from gdrun.saved import evaluate_run

    row = evaluate_run(folder)
    table = Table(title=f"gdrun eval: {folder}")
    for column in ("split", "loss", "accuracy"):
        table.add_column(column, justify="right" if column != "split" else "left")
    for split in ("train", "val"):
        if row[f"{split}_loss"] is not None:
            accuracy = row[f"{split}_accuracy"]
            table.add_row(split, f"{row[f'{split}_loss']:.6g}", "" if accuracy is None else f"{100 * accuracy:.2f}%")
    Console().print(table)
    return 0


def log_to(folder: Path) -> None:
    """Outside Hydra (resume): append this session's log to the run's own gdrun.log."""
    handler = logging.FileHandler(folder / "gdrun.log")
    handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.INFO)


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
