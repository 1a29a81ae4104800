"""The one path that runs a job: check -> train -> record a failure -> pictures -> final table.

The `gdrun` command (each job of a run or sweep), `resume=`, the Python API and `gdrun-labs`
all call `run_job`; how a job's end is told to the user (and to Hydra's sweepers) is here too.
Light at import: torch comes in with the training layer, when a job starts.
"""

import contextlib
import io
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Dict, NoReturn, Optional, Sequence

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from gdrun.config.checks import check_values
from gdrun.config.targets import upgrade
from gdrun.errors import EXIT_BAD_INPUT, EXIT_DIVERGED, EXIT_FAILED, GdrunError
from gdrun.rundir.files import write_json
from gdrun.rundir.layout import RunPaths, holds_runs
from gdrun.rundir.logfile import attached

log = logging.getLogger("gdrun")


def run_job(cfg: DictConfig, folder: Path, resume_from: Optional[Dict] = None, quiet: bool = False) -> Dict:
    """Train `cfg` into `folder` (or go on from a checkpoint), draw its pictures, print its table.

    A failure is recorded before it propagates: summary.json says `failed` (or `interrupted` for a
    second Ctrl-C) with the reason, and the traceback goes to the run's gdrun.log.
    """
    from gdrun.training.runner import train

    output = contextlib.redirect_stdout(io.StringIO()) if quiet else contextlib.nullcontext()
    with output:
        try:
            check_values(cfg)
            summary = train(cfg, folder, resume_from)
        except KeyboardInterrupt:
            record_failure(folder, "interrupted", "stopped at once by a second Ctrl-C")
            raise
        except Exception as error:
            # INFO: the log file gets it with the traceback; the console gets the message once, from the caller.
            log.info("stopped: %s", error, exc_info=True)
            record_failure(folder, "failed", failure_message(error, folder))
            raise
        if cfg.plots:
            draw_pictures(folder)
        from gdrun.training.display import final_table

        final_table(summary, folder)
    return summary


def failure_message(error: BaseException, folder: Path) -> str:
    """A failure in one line: bad input as gdrun said it, anything else with its type and where the traceback is."""
    if isinstance(error, GdrunError):
        return str(error)
    return f"{type(error).__name__}: {error} (traceback in {RunPaths(folder).log})"


def record_failure(folder: Path, status: str, message: str) -> None:
    """summary.json of a run that did not complete, so listings and sweep summaries show why."""
    path = RunPaths(folder).summary
    summary = {"status": status, "error": message}
    if path.exists():  # keep what a stopped run already said about itself
        summary = {**json.loads(path.read_text()), **summary}
    folder.mkdir(parents=True, exist_ok=True)
    write_json(path, summary)


def draw_pictures(folder: Path) -> None:
    """The run's pictures, drawn from its files; a plotting failure never costs the run."""
    from gdrun.plots import draw_run

    try:
        draw_run(folder)
    except Exception:  # the run's files are safe; say so and go on
        log.warning("could not draw the pictures of %s (the run's files are complete)", folder, exc_info=True)


# ---------------------------------------------------------------- how a job ended, for the command line
def hydra_task(cfg: DictConfig, folder: Path, in_sweep: bool) -> Optional[float]:
    """One job of `gdrun` (Hydra's task): its headline metric, None if it did not complete.

    None, not NaN: the Optuna sweeper marks such a trial failed and goes on, where a NaN stops the
    whole search (optuna 2.10, the sweeper's pin, refuses to be told NaN: hydra PR #2225).
    Outside a sweep a job that did not complete ends the command with its exit status.
    """
    try:
        summary = run_job(cfg, folder)
    except GdrunError as error:
        return job_failed(folder, str(error), EXIT_BAD_INPUT, in_sweep)
    except Exception as error:  # noqa: BLE001 - a failure never takes the sweep's other jobs with it
        return job_failed(folder, failure_message(error, folder), EXIT_FAILED, in_sweep)
    return outcome(summary, folder, in_sweep)


def outcome(summary: Dict, folder: Path, in_sweep: bool) -> Optional[float]:
    """Say how a run ended; exit with its status code where that is the right thing to do."""
    status = summary["status"]
    if status == "diverged":
        print(
            f"gdrun: diverged at step {summary['diverged_at_step']} (cost {summary['diverged_cost']:.3g}); "
            f"try a smaller learning rate than optim.lr={summary['run']['lr']}. "
            f"The files up to that step are kept.",
            file=sys.stderr,
        )
        if not in_sweep:
            sys.exit(EXIT_DIVERGED)
        return None
    if status == "interrupted":
        print(
            f"gdrun: interrupted ({summary['stopped_by']}) after {summary['steps']} iterations; "
            f"go on with: gdrun resume={folder}",
            file=sys.stderr,
        )
        # A stopped sweep stops: the user asked for the whole command to end.
        sys.exit(128 + signal.Signals[summary["stopped_by"]].value)
    return summary["best"]["value"]


def job_failed(folder: Path, message: str, code: int, in_sweep: bool) -> Optional[float]:
    """End the command, or let a sweep's other jobs go on (no metric for this job: None)."""
    if not in_sweep:
        fail(message, code)
    print(f"gdrun: error in {folder}: {message}", file=sys.stderr)
    return None


def fail(message: str, code: int) -> NoReturn:
    print(f"gdrun: error: {message}", file=sys.stderr)
    sys.exit(code)


def refuse_existing_run_folder(args: Sequence[str]) -> None:
    """gdrun never writes over a run: an explicit hydra.run.dir / hydra.sweep.dir must not hold one."""
    for arg in args:
        key, _, value = arg.partition("=")
        if key not in ("hydra.run.dir", "hydra.sweep.dir") or not value:
            continue
        if holds_runs(Path(value)):
            raise GdrunError(
                f"{key}={value} already holds a run, and gdrun never writes over one; "
                f"choose another folder, or continue that run with gdrun resume={value}."
            )


# ---------------------------------------------------------------- configs read back from a run folder
def run_config(folder: Path, overrides: Sequence[str] = (), fallback: Optional[Dict] = None) -> DictConfig:
    """The config a run was started with, with `overrides` applied (old target names upgraded).

    Hydra's record of it (.hydra/config.yaml) comes first: a checkpoint copied in from another
    run then shows up as not fitting, instead of quietly continuing someone else's run here.
    A run started without Hydra has only its checkpoint's copy (`fallback`).
    """
    path = RunPaths(folder).config
    if path.is_file():
        cfg = OmegaConf.load(path)
    elif fallback is not None:
        cfg = OmegaConf.create(fallback)
    else:
        raise GdrunError(f"{folder} is not a gdrun run folder (no .hydra/config.yaml in it).")
    assert isinstance(cfg, DictConfig)
    upgrade(cfg)
    OmegaConf.set_struct(cfg, True)  # an override may change a value, not invent a key
    try:
        merged = OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides)))
    except OmegaConfBaseException as error:
        raise GdrunError(
            f"cannot apply {' '.join(overrides)} to the run's config: {str(error).splitlines()[0]}"
        ) from error
    assert isinstance(merged, DictConfig)
    return merged


def resume_job(folder: Path, overrides: Sequence[str]) -> Dict:
    """`gdrun resume=FOLDER [key=value ...]`: go on from the run's last checkpoint, in its own folder."""
    from gdrun.training import checkpoints

    paths = RunPaths(folder)
    saved = checkpoints.load(paths.last_checkpoint)
    cfg = run_config(folder, overrides, fallback=saved["config"])
    check_values(cfg)
    done = saved["progress"]
    if done["epoch"] >= cfg.optim.epochs and not done["epoch_step"]:
        raise GdrunError(
            f"{folder} already completed its {done['epoch']} epochs; "
            f"to train further, give more: gdrun resume={folder} optim.epochs={done['epoch'] + 10}"
        )
    with attached(paths.log):
        log.info("resuming %s from epoch %d, step %d", folder, done["epoch"], done["step"])
        return run_job(cfg, folder, resume_from=saved)
