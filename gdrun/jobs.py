"""The one path that runs a job: check -> train -> record a failure -> pictures -> final table.

The `gdrun` command (each job of a run or sweep), `resume=`, the Python API and `gdrun-labs`
all call `run_job`; how a job's end is told to the user (and to Hydra's sweepers) is here too.
Light at import: torch comes in with the training layer, when a job starts.
"""

import contextlib
import errno
import importlib
import io
import json
import logging
import shlex
import shutil
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Dict, List, NoReturn, Optional, Sequence, Union

import yaml
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from gdrun import finisher
from gdrun.config.checks import check_values
from gdrun.config.metric_names import lower_is_better
from gdrun.config.targets import modules_named, trusting, upgrade
from gdrun.errors import (
    EXIT_BAD_INPUT,
    EXIT_DIVERGED,
    EXIT_FAILED,
    EXIT_MACHINE,
    FolderRefused,
    GdrunError,
    MachineError,
)
from gdrun.plots import SHARES
from gdrun.rundir import lock, yamlio
from gdrun.rundir.files import write_json
from gdrun.rundir.layout import SWEEP_RECORD, RunPaths, holds_runs, is_run_folder, is_sweep_folder
from gdrun.rundir.logfile import attached
from gdrun.rundir.loggers import pictures_drawn
from gdrun.training import signals
from gdrun.training.display import clear_status

if TYPE_CHECKING:
    from gdrun.training.runner import Resume

log = logging.getLogger("gdrun")


def run_job(cfg: DictConfig, folder: Path, resume: Optional["Resume"] = None, quiet: bool = False) -> Dict:
    """Train `cfg` into `folder` (or go on from `resume`), draw its pictures, print its table.

    The folder is this process's alone while the job runs (see rundir.lock). A failure is recorded
    before it propagates: summary.json says `failed` (or `interrupted` for a second Ctrl-C) with
    the reason, and the traceback goes to the run's gdrun.log. A fault of the machine (a full
    disk) is raised as MachineError, its temporary files removed.
    """
    from gdrun.training import display  # the console, without torch

    started = job_started()
    output = contextlib.redirect_stdout(io.StringIO()) if quiet else contextlib.nullcontext()
    held_before = lock.holds(folder)
    with output:
        display.first_line(cfg, folder)  # before torch is imported: an answer within half a second
        worker = None
        try:
            check_values(cfg)
            lock.claim(folder)
            # The pictures' imports (matplotlib, ...) start now in a second process, beside torch's here;
            # a range test's answer is its picture, plots or not.
            worker = finisher.shared() if cfg.plots or lr_find_asked(cfg) else None
            display.status("starting PyTorch...")
            from gdrun.training.lr_find import find_lr
            from gdrun.training.runner import train

            # lr_find=true: a learning-rate range test instead of training (training.lr_find)
            summary = find_lr(cfg, folder) if lr_find_asked(cfg) else train(cfg, folder, resume)
        except KeyboardInterrupt:
            record_failure(folder, "interrupted", "stopped at once by a second Ctrl-C")
            raise
        except OSError as error:
            if error.errno not in MACHINE_ERRNOS:
                log.info("stopped: %s", error, exc_info=True)
                record_failure(folder, "failed", failure_message(error, folder))
                raise
            raise machine_failure(error, folder) from error
        except Exception as error:
            # INFO: the log file gets it with the traceback; the console gets the message once, from the caller.
            log.info("stopped: %s", error, exc_info=True)
            record_failure(folder, "failed", failure_message(error, folder))
            raise
        finally:
            if not held_before:
                lock.release(folder)
        if worker is not None:
            # The pictures read the run back from its folder; the targets this command line named
            # (a model class of the user's own) are the user's, so they are trusted for that.
            display.status("drawing the pictures...")
            where = Path(folder).absolute()
            log_file = RunPaths(where).log
            for share in SHARES:  # drawn side by side by the worker, when it has the cores
                worker.submit(
                    DRAW, str(where), share, trust=modules_named(cfg), log_path=log_file if log_file.exists() else None
                )
            worker.wait()
            keep_pictures(folder, cfg.loggers)
        display.final_table(summary, folder, waited=time.time() - started)
    return summary


def lr_find_asked(cfg: DictConfig) -> bool:
    """lr_find=true: the job is a learning-rate range test (a config from before lr_find has none)."""
    return bool(OmegaConf.select(cfg, "lr_find.enabled", default=False))


# The end-of-run task that draws a run's pictures (run by gdrun.finisher's worker process).
DRAW = "gdrun.jobs:draw_pictures"
_jobs_started = 0


def job_started() -> float:
    """When the user started waiting for this job: the process's start for its first job (the Enter
    of `gdrun ...`), now for the later ones of a process that runs several (labs, the Python API)."""
    from gdrun.training.display import process_started

    global _jobs_started
    _jobs_started += 1
    return process_started() if _jobs_started == 1 else time.time()


# A full disk, a quota, an I/O error, a read-only file system: the machine's fault, not the input's.
MACHINE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS}


def machine_failure(error: OSError, folder: Path) -> MachineError:
    """Say a fault of the machine in a sentence; record it where the disk still allows; clean up."""
    cause = error.strerror or str(error)
    message = f"could not write {folder}: {cause}"
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        message += f"; free some space, then go on with: gdrun resume={folder}"
    with contextlib.suppress(OSError):
        log.info("stopped: %s", message, exc_info=True)
    try:
        record_failure(folder, "failed", message)
    except OSError:  # no room for a new file: overwrite the old summary's bytes, which need no new space
        with contextlib.suppress(OSError), open(RunPaths(folder).summary, "r+b") as f:
            f.write((json.dumps({"status": "failed", "error": message}, indent=2) + "\n").encode())
            f.truncate()
    remove_temporary_files(folder)
    return MachineError(message)


def remove_temporary_files(folder: Path) -> None:
    """The `.NAME.tmp` files a failed write may have left (rename-over writes clean up after themselves)."""
    paths = RunPaths(folder)
    for directory in (paths.root, paths.checkpoints):
        for tmp in directory.glob(".*.tmp") if directory.is_dir() else ():
            with contextlib.suppress(OSError):
                tmp.unlink()


def discard_refused(folder: Path) -> None:
    """Remove the folder of a run refused before it trained: only Hydra's record, its log and a failed
    summary are in it. A folder with metric rows or a checkpoint is a run and stays."""
    paths = RunPaths(folder)
    if paths.iterations.exists() or paths.epochs.exists() or paths.checkpoints.exists():
        return
    expected = {paths.hydra, paths.log, paths.summary}
    if all(child in expected for child in folder.iterdir()):
        shutil.rmtree(folder, ignore_errors=True)
        with contextlib.suppress(OSError):
            folder.parent.rmdir()  # outputs/DATE/ when it held only this one


def failure_message(error: BaseException, folder: Path) -> str:
    """A failure in one line: bad input as gdrun said it, anything else with its type and where the traceback is."""
    if isinstance(error, GdrunError):
        return str(error)
    return f"{type(error).__name__}: {error} (traceback in {RunPaths(folder).log})"


def record_failure(folder: Path, status: str, message: str) -> None:
    """summary.json of a run that did not complete, so listings and sweep summaries show why."""
    path = RunPaths(folder).summary
    summary = {"status": status, "error": message}
    try:  # keep what a stopped run already said about itself
        summary = {**json.loads(path.read_text()), **summary}
    except (OSError, ValueError, TypeError):  # no summary yet, or a damaged one: ours replaces it
        pass
    folder.mkdir(parents=True, exist_ok=True)
    write_json(path, summary)


def draw_pictures(folder: Union[str, Path], only: Optional[Sequence[str]] = None) -> None:
    """The run's pictures (those named in `only`, else all), drawn from its files; a plotting failure
    never costs the run."""
    from gdrun.plots import draw_run

    try:
        draw_run(Path(folder), only=only)
    except Exception:  # the run's files are safe; say so and go on
        log.warning("could not draw the pictures of %s (the run's files are complete)", folder, exc_info=True)


def keep_pictures(folder: Path, loggers: Any) -> None:
    """The run's pictures to the loggers that keep them (logger=mlflow); a logger's failure never costs the run."""
    try:
        pictures_drawn(folder, loggers)
    except Exception:  # noqa: BLE001 - the run and its pictures are on disk; only the logger's copy is missing
        log.warning("could not hand the pictures of %s to its loggers", folder, exc_info=True)


# ---------------------------------------------------------------- how a job ended, for the command line
def hydra_task(cfg: DictConfig, folder: Path, in_sweep: bool) -> Optional[float]:
    """One job of `gdrun` (Hydra's task): its headline metric, None if it did not complete.

    gdrun's Optuna sweeper reads how the job ended from its folder (hydra_plugins/gdrun_optuna).
    Outside a sweep a job that did not complete ends the command with its exit status. A sweep
    stopped by Ctrl-C or SIGTERM starts no new job (see training.signals).
    """
    signum = signals.requested()
    if signum is not None:
        # Hydra made the folder and wrote its record before calling us; a job that never starts leaves none.
        paths = RunPaths(folder)
        shutil.rmtree(paths.hydra, ignore_errors=True)
        paths.log.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            folder.rmdir()  # only when nothing else is in it
        if in_sweep:
            return None
        name = signal.Signals(signum).name
        print(f"gdrun: stopped by {name} before the run began: nothing was saved.", file=sys.stderr)
        sys.exit(128 + signum)
    try:
        with signals.job_starting():
            summary = run_job(cfg, folder)
    except KeyboardInterrupt as stop:  # at once: before training began (nothing to save), or a second Ctrl-C
        signum, second = getattr(stop, "signum", signal.SIGINT), getattr(stop, "second", True)
        how = "at once by a second Ctrl-C" if second else f"by {signal.Signals(signum).name} before training began"
        paths = RunPaths(folder)
        try:
            ended = json.loads(paths.summary.read_text())["status"] in ("completed", "diverged")
        except (OSError, ValueError, LookupError, TypeError):  # no summary yet, or one that cannot be read
            ended = False
        if ended:  # stopped while drawing its pictures: the run itself had ended, and says so
            said = f"stopped {how} while drawing the pictures; the run had ended (gdrun-report {folder} draws them)"
        elif paths.last_checkpoint.exists():
            record_failure(folder, "interrupted", f"stopped {how}; its last checkpoint is kept")
            said = f"stopped {how}; its last checkpoint is kept: go on with gdrun resume={folder}"
        else:
            record_failure(folder, "interrupted", f"stopped {how}; nothing was saved")
            said = f"stopped {how}; nothing was saved: the folder holds no checkpoint"
        if second and in_sweep:
            raise  # the whole sweep stops at once; the command then says how each job ended
        return job_failed(folder, said, 128 + signum, in_sweep)
    except MachineError as error:  # a full disk: said in a sentence, exit 4
        return job_failed(folder, str(error), EXIT_MACHINE, in_sweep)
    except GdrunError as error:
        if not in_sweep:  # bad input is not a run: leave no folder behind (a sweep keeps its jobs' record)
            discard_refused(folder)
        return job_failed(folder, str(error), EXIT_BAD_INPUT, in_sweep)
    except Exception as error:  # noqa: BLE001 - a failure never takes the sweep's other jobs with it
        return job_failed(folder, failure_message(error, folder), EXIT_FAILED, in_sweep)
    return outcome(summary, folder, in_sweep)


def outcome(summary: Dict, folder: Path, in_sweep: bool, told: bool = False) -> Optional[float]:
    """Say how a run ended (unless `told`: its group's line said it); exit with its status code where that is
    the right thing to do."""
    status = summary["status"]
    if status == "diverged":
        if not told:
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
        stopped_by = summary.get("stopped_by") or "SIGINT"
        if in_sweep:  # the sweep stops after its jobs in flight; its end says how to resume each
            print(
                f"gdrun: {folder}: interrupted ({stopped_by}) after {summary['steps']} iterations, checkpoint saved",
                file=sys.stderr,
            )
            return None
        print(
            f"gdrun: interrupted ({stopped_by}) after {summary['steps']} iterations; go on with: gdrun resume={folder}",
            file=sys.stderr,
        )
        sys.exit(128 + signal.Signals[stopped_by].value)
    return summary["best"]["value"]


def job_failed(folder: Path, message: str, code: int, in_sweep: bool) -> Optional[float]:
    """End the command, or let a sweep's other jobs go on (no metric for this job: None)."""
    clear_status()
    if code > 128:  # stopped by a signal: said as what happened, not as an error
        print(f"gdrun: {folder}: {message}", file=sys.stderr)
        if not in_sweep:
            sys.exit(code)
        return None
    if not in_sweep:
        fail(message, code)
    print(f"gdrun: error in {folder}: {message}", file=sys.stderr)
    return None


def fail(message: str, code: int) -> NoReturn:
    clear_status()
    print(f"gdrun: error: {message}", file=sys.stderr)
    sys.exit(code)


def refusal(key: str, folder: Path) -> str:
    """Why `key=folder` is refused (it holds a run, or a sweep's jobs), and how to go on with what is there."""
    said = f"{key}={folder} already holds a run, and gdrun never writes over one; choose another folder, or continue"
    if is_run_folder(folder) or not is_sweep_folder(folder):
        return f"{said} that run with gdrun resume={folder}."
    command = sweep_command(folder)
    return f"{said} that sweep with: {command}" if command else f"{said} that sweep with the command that started it."


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


# What a resumed run may change: how long it trains and how it reports, never what it computes.
RESUME_MAY_CHANGE = (
    "optim.epochs", "plots", "threads", "device", "checkpoint_every", "checkpoint_min_seconds",
    "fit_every", "diverge_factor", "loggers", "logger",
)  # fmt: skip


def resume_job(folder: Path, arguments: Sequence[str]) -> Dict:
    """`gdrun resume=FOLDER [trust=PREFIX] [key=value ...]`: go on from the run's last checkpoint, in its folder.

    Whatever a kill left: a run killed before its first checkpoint starts again in its folder, one
    killed after its last epoch but before summary.json is finished. Refusals (a second writer, a
    checkpoint from another run, a setting that would change what the run computes) write nothing.
    """
    trust, overrides = split_trust(arguments)
    with trusting(trust):
        return _resume(folder, overrides)


def split_trust(arguments: Sequence[str]) -> "tuple[List[str], List[str]]":
    """`trust=a.b,c` arguments (the targets a received folder may name: see config.targets) and the rest."""
    trust = [p for a in arguments if a.startswith("trust=") for p in a.partition("=")[2].split(",") if p]
    return trust, [a for a in arguments if not a.startswith("trust=")]


def _resume(folder: Path, overrides: Sequence[str]) -> Dict:
    from gdrun.rundir.reader import RunFolder
    from gdrun.training import checkpoints
    from gdrun.training.runner import prepare_resume

    paths = RunPaths(folder)
    if not is_run_folder(folder):
        raise GdrunError(f"{folder} is not a gdrun run folder (no summary.json, .hydra/ or metric files in it).")
    refuse_changes(overrides)
    saved = checkpoints.load(paths.last_checkpoint) if paths.last_checkpoint.exists() else None
    cfg = run_config(folder, overrides, fallback=saved["config"] if saved else None)
    check_values(cfg)
    held_before = lock.holds(folder)
    lock.claim(folder)  # one writer: a second resume= of this folder is refused here
    try:
        status = RunFolder(folder).status
        resume = None
        if saved is not None:
            done = saved["progress"]
            if status == "completed" and done.get("stopped_early_at") is not None:
                raise GdrunError(
                    f"{folder} completed: early stopping ended it after epoch {done['stopped_early_at']}, and "
                    f"checkpoints/best.pt holds its best model; to train on, start a new run with a larger "
                    f"early_stop.patience."
                )
            if status == "completed" and done["epoch"] >= cfg.optim.epochs and not done["epoch_step"]:
                raise GdrunError(
                    f"{folder} already completed its {done['epoch']} epochs; "
                    f"to train further, give more: gdrun resume={folder} optim.epochs={done['epoch'] + 10}"
                )
            resume = prepare_resume(cfg, saved, paths.last_checkpoint)
        elif status == "completed":
            raise GdrunError(
                f"{folder} completed, but its checkpoints/last.pt is missing: there is nothing to go on from."
            )
        with attached(paths.log):
            if resume is None:  # killed before its first checkpoint: nothing that counts was done
                log.info("starting %s again: it stopped before its first checkpoint", folder)
            else:
                log.info("resuming %s from epoch %d, step %d", folder, resume.progress.epoch, resume.progress.step)
            return run_job(cfg, folder, resume)
    finally:
        if not held_before:
            lock.release(folder)


def refuse_changes(overrides: Sequence[str]) -> None:
    """resume= goes on with the run's own settings; only how long it trains and how it reports may change."""
    for override in overrides:
        key = override.lstrip("+~").partition("=")[0]
        if not any(key == k or key.startswith(k + ".") for k in RESUME_MAY_CHANGE):
            raise GdrunError(
                f"resume= goes on with the run's own settings, and {key} would change what it computes; "
                f"start a new run for that (gdrun ... {override}). resume= may change: {', '.join(RESUME_MAY_CHANGE)}."
            )


class ClaimRunFolder(Callback):
    """Hydra callback: the output folder, resolved as Hydra will resolve it, is checked and locked before
    Hydra writes anything into it. gdrun never writes over a run, however its folder is spelled
    (`++hydra.run.dir`, interpolations, a relative or empty path) and whoever else starts at once."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        claim_new_folder(resolved_dir(config, "hydra.run.dir"), "hydra.run.dir")

    def on_run_end(self, config: DictConfig, **kwargs: Any) -> None:
        lock.release(resolved_dir(config, "hydra.run.dir"))

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        folder = resolved_dir(config, "hydra.sweep.dir")
        if is_sweep_folder(folder) and not is_run_folder(folder):
            claim_same_sweep(config, folder)  # the same sweep again: gdrun's launcher continues it
        else:
            claim_new_folder(folder, "hydra.sweep.dir")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        lock.release(resolved_dir(config, "hydra.sweep.dir"))


def claim_new_folder(folder: Path, key: str) -> None:
    """Lock a folder for a new run or sweep; FolderRefused if it holds one or another process has it."""
    try:
        if holds_runs(folder):
            raise GdrunError(refusal(key, folder))
        lock.claim(folder)  # a second process starting with the same folder is refused here
        if holds_runs(folder):  # another process finished a run there just before we took the lock
            lock.release(folder)
            raise GdrunError(f"{key}={folder} already holds a run, and gdrun never writes over one.")
    except GdrunError as error:
        raise FolderRefused(str(error)) from None


def resolved_dir(config: DictConfig, key: str) -> Path:
    """The absolute folder Hydra will make of `key` (hydra.run.dir, hydra.sweep.dir), interpolations resolved."""
    HydraConfig.instance().set_config(config)  # ${hydra:...} interpolations read it; Hydra sets it again later
    value = OmegaConf.select(config, key, default=None)
    if value is None:  # ??? or null
        raise FolderRefused(f"{key} has no value; give a folder, e.g. {key}=outputs/my_run.")
    return Path(str(value)).absolute()


# ---------------------------------------------------------------- a sweep run again: continued, not written over
# gdrun's own launcher (hydra_plugins/gdrun_launcher), the default of `gdrun -m`: the one that continues a sweep.
GDRUN_LAUNCHER = "hydra_plugins.gdrun_launcher.gdrun_launcher.GdrunLauncher"
# gdrun's Optuna sweeper (hydra_plugins/gdrun_optuna, search=...): its study continues with any launcher (new
# trials, new folders), and its budget and trials at once may change when it is continued.
GDRUN_OPTUNA_SWEEPER = "hydra_plugins.gdrun_optuna.gdrun_optuna.GdrunOptunaSweeper"
SEARCH_MAY_CHANGE = ("n_trials", "n_jobs")
# Overrides that only say how and where a sweep runs, left out of the command that continues it.
NOT_REPEATED = ("hydra.mode=", "hydra.sweep.dir=", "hydra/launcher=", "hydra.launcher.")


def claim_same_sweep(config: DictConfig, folder: Path) -> None:
    """Lock a sweep folder to continue it: only the same sweep (its overrides, its sweeper's settings), only
    through gdrun's launcher; anything else is refused (FolderRefused) before Hydra writes a byte."""
    try:
        lock.claim(folder)  # one writer: a second command continuing this sweep at once is refused here
        try:
            refuse_another_sweep(config, folder)
        except GdrunError:
            lock.release(folder)
            raise
    except GdrunError as error:
        raise FolderRefused(str(error)) from None


def refuse_another_sweep(config: DictConfig, folder: Path) -> None:
    """GdrunError unless `config` is the sweep whose jobs `folder` holds, run by gdrun's launcher."""
    record, key = sweep_record(folder), "hydra.sweep.dir"
    if record is None:
        raise GdrunError(
            f"{key}={folder} already holds a run (a sweep's jobs, without a readable {SWEEP_RECORD}), and gdrun "
            f"never writes over one; choose another folder."
        )
    command = sweep_command(folder, record)
    theirs, ours = record["overrides"]["task"], list(config.hydra.overrides.task)
    if theirs != ours:
        raise GdrunError(
            f"{key}={folder} already holds a run: the jobs of another sweep ({shlex.join(theirs)}, not "
            f"{shlex.join(ours)}), and gdrun never writes over one; choose another folder, or continue that sweep "
            f"with: {command}"
        )
    search = config.hydra.sweeper.get("_target_") == GDRUN_OPTUNA_SWEEPER
    ignored = SEARCH_MAY_CHANGE if search else ()
    if {k: v for k, v in record["sweeper"].items() if k not in ignored} != {
        k: v for k, v in sweeper_settings(config.hydra.sweeper).items() if k not in ignored
    }:
        raise GdrunError(
            f"{key}={folder} already holds a run: the jobs of a sweep with other hydra.sweeper settings, and gdrun "
            f"never writes over one; choose another folder, or continue that sweep with: {command}"
        )
    if config.hydra.launcher.get("_target_") != GDRUN_LAUNCHER and not search:
        launcher = config.hydra.runtime.choices.get("hydra/launcher")
        raise GdrunError(
            f"{key}={folder} holds this sweep's jobs; gdrun's own launcher (the default) continues a sweep, where "
            f"hydra/launcher={launcher} would run every job again over its folder: continue it with: {command}"
        )


def sweep_record(folder: Path) -> Optional[Dict[str, Any]]:
    """A sweep folder's multirun.yaml in brief: {"overrides": {"hydra": [...], "task": [...]}, "sweeper": {...}}.

    None when it is missing or unreadable. Read as plain YAML (libyaml's parser where PyYAML has it): fast.
    """
    try:
        hydra = yamlio.load((Path(folder) / SWEEP_RECORD).read_bytes())["hydra"]
        overrides = {part: [str(o) for o in hydra["overrides"][part]] for part in ("hydra", "task")}
        return {"overrides": overrides, "sweeper": sweeper_settings(hydra["sweeper"])}
    except (OSError, yaml.YAMLError, KeyError, TypeError):  # missing, cut, or not Hydra's
        return None


def sweeper_settings(sweeper: Any) -> Dict[str, Any]:
    """A sweeper's settings as plain values, which class runs them aside (gdrun's sweeper is Hydra's basic one)."""
    if OmegaConf.is_config(sweeper):
        sweeper = OmegaConf.to_container(sweeper, resolve=False, enum_to_str=True)
    return {key: value for key, value in dict(sweeper or {}).items() if key != "_target_"}


def sweep_command(folder: Path, record: Optional[Dict[str, Any]] = None) -> Optional[str]:
    """The command that continues the sweep in `folder` (from its multirun.yaml); None when that cannot be read."""
    record = record or sweep_record(folder)
    if record is None:
        return None
    hydra = [o for o in record["overrides"]["hydra"] if not o.lstrip("+~").startswith(NOT_REPEATED)]
    task = record["overrides"]["task"]
    return shlex.join(["gdrun", "-m", *hydra, *task, f"hydra.sweep.dir={Path(folder).absolute()}"])


# ---------------------------------------------------------------- a sweep's jobs trained together
ENGINE = "gdrun.training.vectorised"


def vectorised_engine() -> Optional[ModuleType]:
    """The engine that trains a sweep's like jobs together, when it is there; None sends every job one at a time.

    Feature detection while gdrun.training.vectorised is being written: it counts once it has
    group_key, batch_reason and train_together.
    """
    try:
        engine = importlib.import_module(ENGINE)
    except ModuleNotFoundError as error:
        if error.name != ENGINE:
            raise  # the engine is there, and something it imports is not: say so
        return None
    needed = ("group_key", "batch_reason", "train_together")
    return engine if all(callable(getattr(engine, name, None)) for name in needed) else None


def run_group(cfgs: Sequence[DictConfig], folders: Sequence[Path], title: str) -> List[Union[Dict, Exception]]:
    """Train jobs together (the vectorised engine); each job's summary, or the error that ended it.

    Each job as run_job treats it: its values checked first (a job refused is left out, the others
    train), its folder this process's alone while it trains, its gdrun.log (every line of the shared
    training goes to each job's), a failure recorded in its summary.json with the traceback in its
    log, its final table. No pictures: a sweep's are drawn after its jobs, when asked. Ctrl-C at
    once (KeyboardInterrupt) is recorded in every job as `interrupted`, and raised.
    """
    engine = vectorised_engine()
    if engine is None:
        raise RuntimeError(f"run_group needs {ENGINE}, which is not there")
    results: List[Union[Dict, Exception, None]] = [None] * len(cfgs)
    held_before = [lock.holds(folder) for folder in folders]
    ready: List[int] = []
    try:
        for i, (cfg, folder) in enumerate(zip(cfgs, folders)):
            try:
                check_values(cfg)
            except GdrunError as error:
                with attached(RunPaths(folder).log):
                    log.info("stopped: %s", error, exc_info=True)
                record_failure(folder, "failed", failure_message(error, folder))
                results[i] = error
                continue
            try:
                lock.claim(folder)
            except GdrunError as error:  # another process writes it: nothing of ours goes there
                results[i] = error
                continue
            ready.append(i)
        stopped: Optional[Exception] = None
        with contextlib.ExitStack() as logs:
            for i in ready:
                logs.enter_context(attached(RunPaths(folders[i]).log))
            try:
                summaries = engine.train_together([cfgs[i] for i in ready], [folders[i] for i in ready], title)
            except KeyboardInterrupt:
                for i in ready:
                    record_failure(folders[i], "interrupted", "stopped at once by a second Ctrl-C")
                raise
            except Exception as error:  # noqa: BLE001 - recorded in every job of the group, as run_job records one
                stopped = error
            else:
                for i, summary in zip(ready, summaries):
                    results[i] = summary
        if stopped is not None:
            for i in ready:
                results[i] = group_failure(stopped, folders[i])
    finally:
        for folder, held in zip(folders, held_before):
            if not held:
                lock.release(folder)
    print(f"gdrun: {title}: {group_account(results)}", file=sys.stderr)
    return [result if result is not None else RuntimeError("the job was not trained") for result in results]


def group_account(results: Sequence[Union[Dict, Exception, None]]) -> str:
    """A trained group in one line (not a table per job: the sweep's account at its end compares them):
    `14 completed, best train_loss 0.00792; 2 diverged (steps 3-6); 1 failed`."""
    summaries = [result for result in results if isinstance(result, dict)]
    said = []
    completed = [s for s in summaries if s["status"] == "completed"]
    if completed:
        lower = lower_is_better(str(completed[0]["best"]["metric"]))
        top = (min if lower else max)(completed, key=lambda s: s["best"]["value"])
        said.append(f"{len(completed)} completed, best {top['best']['metric']} {top['best']['value']:.4g}")
    diverged = sorted(s["diverged_at_step"] for s in summaries if s["status"] == "diverged")
    if diverged:
        steps = f"step {diverged[0]}" if diverged[0] == diverged[-1] else f"steps {diverged[0]}-{diverged[-1]}"
        said.append(f"{len(diverged)} diverged ({steps}; their files up to it are kept)")
    others = Counter(s["status"] for s in summaries if s["status"] not in ("completed", "diverged"))
    said += [f"{n} {status}" for status, n in others.items()]
    failed = sum(isinstance(result, Exception) for result in results)
    if failed:
        said.append(f"{failed} failed")
    return "; ".join(said) or "nothing trained"


def group_failure(error: Exception, folder: Path) -> Exception:
    """One job's record of the error that stopped its group, as run_job records one (a machine fault: MachineError)."""
    with attached(RunPaths(folder).log):
        if isinstance(error, OSError) and error.errno in MACHINE_ERRNOS:
            return machine_failure(error, folder)
        log.info("stopped: %s", error, exc_info=error)
    record_failure(folder, "failed", failure_message(error, folder))
    return error


def sweep_job_ended(folder: Path, result: Union[Dict, BaseException], grouped: bool = False) -> Optional[float]:
    """What a job that gdrun's launcher ran (with others, or resumed) returns to Hydra, said as hydra_task says it.

    Its headline metric; None when it did not complete. A first Ctrl-C before training began is
    recorded in the job as `interrupted`. A job trained in a group (`grouped`) had its divergence
    said in the group's line (run_group), not once more here.
    """
    if isinstance(result, dict):
        return outcome(result, folder, in_sweep=True, told=grouped)
    if isinstance(result, KeyboardInterrupt):
        signum = getattr(result, "signum", signal.SIGINT)
        how = f"stopped by {signal.Signals(signum).name} before training began"
        if RunPaths(folder).last_checkpoint.exists():
            record_failure(folder, "interrupted", f"{how}; its last checkpoint is kept")
            said = f"{how}; its last checkpoint is kept: go on with gdrun resume={folder}"
        else:
            record_failure(folder, "interrupted", f"{how}; nothing was saved")
            said = f"{how}; nothing was saved: the folder holds no checkpoint"
        return job_failed(folder, said, 128 + signum, in_sweep=True)
    if isinstance(result, MachineError):
        return job_failed(folder, str(result), EXIT_MACHINE, in_sweep=True)
    if isinstance(result, GdrunError):
        return job_failed(folder, str(result), EXIT_BAD_INPUT, in_sweep=True)
    return job_failed(folder, failure_message(result, folder), EXIT_FAILED, in_sweep=True)
