"""The `gdrun` command: Hydra composes the config, gdrun.jobs runs each job.

Nothing here imports torch: `gdrun --help`, `gdrun --cfg job` and configuration errors
answer in a fraction of a second. torch comes in with the training layer, once a run starts.

Exit status: 0 completed; 1 an unexpected failure (traceback in the run's gdrun.log);
2 bad input (said in one or two sentences); 3 diverged; 4 the machine failed the run (a full
disk, an I/O error); 128 + the signal when interrupted
(130 for Ctrl-C, 143 for SIGTERM).
"""

import atexit
import contextlib
import os
import shlex
import signal
import sys
import threading
from importlib.resources import files
from pathlib import Path
from typing import List, NoReturn, Optional, Sequence, Union

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from gdrun import jobs, sweeps
from gdrun.config import schema
from gdrun.config.checks import explain
from gdrun.errors import EXIT_BAD_INPUT, EXIT_MACHINE, FolderRefused, GdrunError, MachineError
from gdrun.rundir.environment import COMMAND_VARIABLE
from gdrun.rundir.layout import RunPaths
from gdrun.training import signals

schema.register()


def main() -> None:
    """Console entry point: quick help, resume=/eval= of a run folder, or a Hydra run or sweep."""
    args = sys.argv[1:] = schema.expand_shorthands(sys.argv[1:])  # lr_find=true: lr_find.enabled=true
    os.environ.setdefault(COMMAND_VARIABLE, shlex.join(["gdrun", *args]))  # each run's record (environment)
    if any(arg in ("--help", "-h") for arg in args):
        print(help_text(args))
        return
    # Hydra prints composition errors with a stack trace; let them reach us to say them plainly
    # (unless the user asked for Hydra's full errors).
    full_errors = os.environ.get("HYDRA_FULL_ERROR") == "1"
    os.environ["HYDRA_FULL_ERROR"] = "1"
    signals.hold_for_command()  # Ctrl-C and SIGTERM ask politely, for the whole command (training.signals)
    resumed: Optional[Path] = None  # resume='s folder: what a stop leaves there is said after it
    try:
        command = next((a for a in args if a.startswith(("resume=", "eval="))), None)
        if command is not None:
            key, _, path = command.partition("=")
            rest = [a for a in args if a != command]
            resumed = Path(path) if key == "resume" else None
            sys.exit(resume_command(Path(path), rest) if key == "resume" else eval_command(Path(path), rest))
        hydra_main()
        if signals.requested() is not None:  # a sweep's jobs stopped as asked, or the run had just completed
            sys.exit(stopped(launch_ended=True, resumed=None))
    except (GdrunError, FolderRefused) as error:
        jobs.fail(str(error), EXIT_BAD_INPUT)
    except MachineError as error:
        jobs.fail(str(error), EXIT_MACHINE)
    except KeyboardInterrupt:  # stopped at once: before anything was saved, or a second Ctrl-C
        sys.exit(stopped(launch_ended=False, resumed=resumed))
    except Exception as error:  # composition errors, said in a sentence
        if signals.requested() is not None:  # a launcher gave up while its jobs were stopping
            sys.exit(stopped(launch_ended=False, resumed=resumed))
        if full_errors:
            raise
        jobs.fail(explain(error), EXIT_BAD_INPUT)
    finally:
        signals.release()


def console() -> NoReturn:
    """The `gdrun` command's process: main(), then an exit without tearing the interpreter down."""
    code: Union[int, str, None] = 0
    try:
        main()
    except SystemExit as stop:
        code = stop.code
    quick_exit(code)


def quick_exit(code: Union[int, str, None]) -> NoReturn:
    """Exit once everything is said and written, skipping Python's teardown of the interpreter.

    That teardown frees, one by one, every module and object torch, Hydra and matplotlib made,
    and runs the cyclic collector over them: 1.3 s here after `import torch, torch._dynamo` alone,
    for nothing, since every file of the run is already written whole and synced. What an exit
    must still do is done first: the exit handlers run (logging's flush and close, the finishing
    worker's end, loggers' close), the standard streams flushed. While other (non-daemon) threads
    run, the usual exit is taken instead.
    """
    main_thread = threading.main_thread()
    if any(thread is not main_thread and not thread.daemon for thread in threading.enumerate()):
        # A library's threads still run (joblib's executor): they end through Python's own shutdown,
        # which first calls the hooks that tell them to (threading._register_atexit), then joins them.
        sys.exit(code)
    atexit._run_exitfuncs()
    if isinstance(code, str):  # sys.exit("message"): said on stderr, status 1, as Python does
        print(code, file=sys.stderr)
        code = 1
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code or 0)


def stopped(launch_ended: bool, resumed: Optional[Path]) -> int:
    """Say how a stopped command ended (each job has said its own part); returns 128 + the signal."""
    signum = signals.requested() or signal.SIGINT
    how = "at once by a second Ctrl-C" if signals.stopped_at_once() else f"by {signal.Signals(signum).name}"
    if sweeps.report_stop(launch_ended):
        return 128 + signum
    if resumed is not None:
        last = RunPaths(resumed).last_checkpoint
        said = f"{last} is the last checkpoint saved: go on with gdrun resume={resumed}"
        said = said if last.exists() else f"{resumed} holds no checkpoint"
    elif launch_ended:
        said = "the run had completed, nothing was lost"
    else:
        said = "that was before any training step: nothing was saved, nothing is left to resume"
    print(f"gdrun: stopped {how}; {said}.", file=sys.stderr)
    return 128 + signum


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


def eval_command(folder: Path, arguments: List[str]) -> int:
    """`gdrun eval=FOLDER [split=train,val,test|all] [weights=final|best|last] [trust=PREFIX]`: the run's
    saved model on its sets (by default training and validation; the test set only when asked)."""
    trust, overrides = jobs.split_trust(arguments)
    options = dict(o.split("=", 1) for o in overrides if o.startswith(("split=", "weights=")))
    rest = [o for o in overrides if not o.startswith(("split=", "weights="))]
    if rest:
        raise GdrunError(f"eval takes only the run folder (and split=, weights=, trust=...); drop {' '.join(rest)}.")
    from rich.console import Console
    from rich.table import Table

    from gdrun.api import SPLITS, load_run

    asked = options.get("split", "train,val")
    splits = SPLITS if asked == "all" else tuple(asked.split(","))
    row = load_run(folder, trust).evaluate(splits, options.get("weights"))
    metrics = list(dict.fromkeys(key.split("_", 1)[1] for key in row if "_" in key))
    metrics = [m for m in metrics if any(row.get(f"{split}_{m}") is not None for split in splits)]
    table = Table(title=f"gdrun eval: {folder} ({row['weights']} weights)")
    table.add_column("split")
    for metric in metrics:
        table.add_column(metric, justify="right")
    for split in splits:
        if row.get(f"{split}_loss") is None:
            continue
        cells = [row.get(f"{split}_{metric}") for metric in metrics]
        table.add_row(
            split,
            *(
                "" if v is None else f"{100 * v:.2f}%" if m == "accuracy" else f"{v:.6g}"
                for m, v in zip(metrics, cells)
            ),
        )
    Console().print(table)
    return 0


GROUPS = ("data", "model", "loss", "optim", "sched", "lab", "logger", "search")
HELP = """gdrun: gradient-descent experiments in PyTorch, one folder per run under outputs/.

Usage: gdrun [-m] [GROUP=OPTION ...] [KEY=VALUE ...]

  gdrun                                      the default: a noisy line fitted by batch gradient descent
  gdrun model=logistic data=mnist optim.lr=0.001
  gdrun lab=linreg_bgd optim.lr=0.2          a course lab, with one setting changed
  gdrun -m optim.lr=0.01,0.1,1 optim.batch_size=1,10,full    a sweep: every combination
  gdrun data=csv data.path=FILE.csv data.target=COLUMN     a table of yours (data=npz, data=image_folder too)
  gdrun --config-dir DIR data=mydata model=custom model._target_=pkg.module.Net    configs and models of yours
  gdrun resume=RUN_FOLDER [optim.epochs=N]   go on from a stopped run's last checkpoint
  gdrun eval=RUN_FOLDER [split=test]         a run's saved model on its training and validation (or test) data
  gdrun lab=linreg_bgd lr_find=true          a learning-rate range test: plots/lr_find.png, no training

Config groups (GROUP=OPTION):
{groups}

Top-level keys: seed=0  device=auto|cpu|cuda|mps  plots=true  threads=null  fit_every=null
  surface_range=null  checkpoint_every=1  checkpoint_min_seconds=2  diverge_factor=1e6
Settings of a group: optim.lr, optim.batch_size (a number or full), optim.epochs, optim.momentum, ...
  gdrun --cfg job [overrides]    shows the whole composed config; gdrun --hydra-help for Hydra's flags.
Training controls: early_stop.patience=N (early_stop.metric, early_stop.min_delta), optim.clip_grad_norm=X,
  optim.clip_grad_value=X, sched=onecycle|warmup_cosine (every iteration), lr_find=true (lr_find.steps/min/max)
Exit status: 0 completed, 1 failed, 2 bad input, 3 diverged, 4 a full disk or I/O error,
  130 interrupted (Ctrl-C), 143 SIGTERM.

Other commands: gdrun-report PATH... (redraw pictures, --compare runs), gdrun-runs [DIR] (list runs),
  gdrun-labs [NAME...] (run the course labs and compare them with the notebooks).
"""


def help_text(args: Sequence[str] = ()) -> str:
    """The groups and their options, read from the config files themselves (no composition: fast),
    with those of the config folders the command line adds (--config-dir DIR, hydra.searchpath=[...])."""
    conf = files("gdrun.conf")
    lines = []
    for group in GROUPS:
        names = sorted(
            [p.name[:-5] for p in conf.joinpath(group).iterdir() if p.name.endswith(".yaml")]
            + [name for g, name in schema.CODE_OPTIONS if g == group]
        )
        lines.append(f"  {group:<6} {', '.join(names) if names else '(none yet)'}")
    for folder in config_folders(args):
        groups = sorted(p for p in folder.iterdir() if p.is_dir() and any(p.glob("*.yaml"))) if folder.is_dir() else []
        lines.append(f"From {folder}:" if groups else f"From {folder}: no group folders with YAML files in it")
        for path in groups:
            names = sorted(p.stem for p in path.glob("*.yaml"))
            lines.append(f"  {path.name:<6} {', '.join(names)}")
    return HELP.format(groups="\n".join(lines))


def config_folders(args: Sequence[str]) -> List[Path]:
    """The config folders a command line adds: --config-dir DIR (-cd DIR) and hydra.searchpath's file:// entries."""
    folders: List[str] = []
    for i, arg in enumerate(args):
        flag, equals, value = arg.partition("=")
        if flag in ("--config-dir", "-cd"):
            given = value if equals else (args[i + 1] if i + 1 < len(args) else "")
            folders.append(given)
        elif flag.lstrip("+") == "hydra.searchpath" and equals:
            for entry in value.strip().strip("[]").split(","):
                entry = entry.strip().strip("'\"")
                if entry.startswith("pkg://"):
                    continue  # a package's configs: Hydra finds them, they are not the user's folder
                folders.append(entry.removeprefix("file://"))
    return [Path(folder).expanduser().absolute() for folder in folders if folder]
