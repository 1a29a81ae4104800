"""gdrun's launcher at work: compose every job once, continue a sweep run again, train like jobs together.

In order, for a batch of jobs (a grid sweep is one batch; Optuna sends one per trial):
1. every job's config is composed (_compose.py), before any job runs: a bad override stops the
   sweep there, as Hydra's sweeper stops it;
2. a job whose folder already holds a run (the same sweep run again, which ClaimRunFolder allowed)
   is kept when it completed or diverged (a divergence is a result), resumed when it was
   interrupted or killed, run again when it failed; a job folder made by other overrides refuses
   the whole command;
3. jobs the vectorised engine can train together are (jobs.run_group), the rest run one at a time
   through Hydra's run_job and gdrun's task, as Hydra's basic launcher runs them;
4. with plots_jobs=true each job's pictures are drawn after the jobs, two processes at once.
Each job gets what Hydra's run_job gives a job: its folder, .hydra/{config,hydra,overrides}.yaml,
its gdrun.log, the callbacks' on_job_start and on_job_end with a JobReturn.
"""

import copy
import logging
import multiprocessing
import os
import shutil
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobRuntime, JobStatus, configure_log, run_job, setup_globals
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from gdrun import jobs
from gdrun.config.targets import modules_named, trusting
from gdrun.errors import FolderRefused, GdrunError
from gdrun.rundir import lock, yamlio
from gdrun.rundir.layout import is_run_folder
from gdrun.rundir.reader import DAMAGED, RunFolder
from gdrun.rundir.sweep_summary import together
from gdrun.training import signals
from hydra_plugins.gdrun_launcher._compose import JobComposer

log = logging.getLogger(__name__)

# What the vectorised engine's group_key compares: jobs equal in these train together.
SHARED = "the same data, model, optimizer, batch size and epochs"
# A job run again into its folder: what becomes of it, by the status its summary.json gives.
KEEP, RESUME, RERUN = ("completed", "diverged", "pruned"), ("interrupted", "running"), ("failed",)
# The jobs whose pictures run_job draws: the ones whose training returned.
DRAWN = ("completed", "diverged", "interrupted")
# Per-job pictures after the jobs: processes at once (spawned: no fork of a process holding torch).
PICTURE_WORKERS = 2


@dataclass
class Job:
    """One job of the batch: its number, its config (Hydra's, with the hydra node) and its folder."""

    number: int
    config: DictConfig
    folder: Path
    task: DictConfig = field(init=False)  # the config the job runs with: Hydra's, without the hydra node
    view: DictConfig = field(init=False)  # what HydraConfig.set_config would store for it: {hydra: ...}
    hydra: Optional[DictConfig] = None  # Hydra's config as the job runs ({hydra: ...}), once it has its folder
    plan: str = "new"  # new | kept | resume | rerun | damaged
    ran: bool = False  # trained (or resumed) by this command

    def __post_init__(self) -> None:
        with read_write(self.config.hydra.runtime), open_dict(self.config.hydra.runtime):
            self.config.hydra.runtime.output_dir = str(self.folder)  # what ${hydra:runtime.output_dir} reads
        # The task config (every node but hydra) and what HydraConfig.set_config would store for the job
        # ({hydra: ...}) hold the job config's own nodes, not copies: nothing changes a job's config once
        # it is composed, and copying (OmegaConf.masked_copy's deepcopy, or a pickle) cost a 256-job grid
        # 2-3 s. As in Hydra's run_job, the task's interpolations resolve without the hydra node.
        self.task = holding(self.config, lambda key: key != "hydra")
        OmegaConf.set_struct(self.task, OmegaConf.is_struct(self.config))
        self.view = holding(self.config, lambda key: key == "hydra")
        OmegaConf.set_readonly(self.view.hydra, True)
        self.view.hydra._set_parent(self.config)  # its interpolations resolve in the job config, as set_config does

    @property
    def overrides(self) -> List[str]:
        return list(self.config.hydra.overrides.task)


def holding(cfg: DictConfig, keep: Callable[[str], bool]) -> DictConfig:
    """A config of `cfg`'s top-level nodes that `keep` says yes to: the nodes themselves, now its children."""
    held = DictConfig(content={}, flags={"no_deepcopy_set_nodes": True})  # set as they are, not copied
    for key in [str(key) for key in cfg if keep(str(key))]:
        held[key] = cfg._get_node(key)
    held._set_flag("no_deepcopy_set_nodes", None)
    return held


def launch(
    config: DictConfig,
    context: HydraContext,
    task_function: TaskFunction,
    job_overrides: Sequence[Sequence[str]],
    initial_job_idx: int,
) -> List[JobReturn]:
    """Run a batch of jobs (see the module's docstring); one JobReturn per job handled, in job order."""
    setup_globals()
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    sweep_dir = Path(os.path.abspath(str(config.hydra.sweep.dir)))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    record = sweep_dir / jobs.SWEEP_RECORD
    if not record.exists():  # Hydra's basic sweeper writes it, Optuna's not: what a sweep is continued from
        OmegaConf.save(config, record)
    signals.launched(sweep_dir, "here")  # gdrun.sweeps.JOBS_RUN does not name this launcher: its jobs run here
    saved_hydra_cfg = HydraConfig.instance().cfg
    returns: Dict[int, JobReturn] = {}
    try:
        log.info(f"Launching {len(job_overrides)} jobs locally")
        batch = compose(config, context, job_overrides, initial_job_idx)
        plan(batch, sweep_dir)
        for job in batch:
            if job.plan in ("kept", "damaged"):
                returns[job.number] = kept_return(job)
        engine = jobs.vectorised_engine() if sum(job.plan in ("new", "rerun") for job in batch) > 1 else None
        groups, alone = group(batch, engine)
        for members in groups:
            if signals.requested() is not None:
                break
            returns.update(run_together(members, config, context, task_function))
        for job in sorted(alone, key=lambda job: job.number):
            if signals.requested() is not None:
                break
            returns[job.number] = run_alone(job, config, context, task_function)
        draw_pictures([job for job in batch if job.ran])
    finally:
        HydraConfig.instance().cfg = saved_hydra_cfg
        configure_log(config.hydra.hydra_logging, config.hydra.verbose)
        if signals.requested() is not None:
            command = jobs.sweep_command(sweep_dir)
            if command:
                print(f"gdrun: continue this sweep with: {command}", file=sys.stderr)
    return [returns[number] for number in sorted(returns)]


# ---------------------------------------------------------------- 1. compose  2. plan
def compose(config: DictConfig, context: HydraContext, job_overrides: Sequence[Sequence[str]], first: int) -> List[Job]:
    """Every job's config (composed once each) and folder, as Hydra's run_job will make it."""
    composer = JobComposer(context.config_loader, config)
    batch = []
    for number, overrides in enumerate(job_overrides, start=first):
        cfg = composer.compose(overrides, number)
        if "${hydra:" in str(OmegaConf.to_container(cfg.hydra.sweep)):  # the folder names it: as run_job does
            HydraConfig.instance().set_config(cfg)
        parts = (OmegaConf.select(cfg, "hydra.sweep.dir"), OmegaConf.select(cfg, "hydra.sweep.subdir"))
        batch.append(Job(number, cfg, Path(os.path.abspath(os.path.join(*map(str, parts))))))
    log.debug(f"composed {len(batch)} jobs' configs, {composer.derived} of them derived from another's")
    return batch


def plan(batch: List[Job], sweep_dir: Path) -> None:
    """What each job does when its folder already holds a run; FolderRefused for a job made by other overrides."""
    found: Dict[str, List[Job]] = {status: [] for status in ("kept", "resume", "rerun", "damaged")}
    for job in batch:
        if not is_run_folder(job.folder):
            continue
        run = RunFolder(job.folder)
        if run.status == DAMAGED:  # what it was cannot be read: left as it is, and summary.csv says what is wrong
            job.plan = "damaged"
        elif run.overrides != job.overrides:
            raise FolderRefused(
                f"hydra.sweep.dir={sweep_dir} already holds a run: its job {job.number} was made by "
                f"{' '.join(run.overrides) or 'no overrides'}, not {' '.join(job.overrides)}, and gdrun never "
                f"writes over one; choose another folder."
            )
        elif run.status in KEEP:
            job.plan = "kept"
        elif run.status in RESUME:
            job.plan = "resume"
        elif run.status in RERUN:
            job.plan = "rerun"
            try:  # held until its folder is cleared, just before it runs again
                lock.claim(job.folder)
            except GdrunError as error:
                raise FolderRefused(str(error)) from None
        else:
            job.plan = "damaged"
        found[job.plan].append(job)
    if any(found.values()):
        counts = {
            "kept (completed or diverged)": len(found["kept"]),
            "interrupted, to resume": len(found["resume"]),
            "failed, to run again": len(found["rerun"]),
            "damaged, left as they are": len(found["damaged"]),
            "new": sum(job.plan == "new" for job in batch),
        }
        said = "; ".join(f"{n} {what}" for what, n in counts.items() if n)
        print(f"gdrun: continuing the sweep in {sweep_dir}: {said}", file=sys.stderr)


def kept_return(job: Job) -> JobReturn:
    """A job kept from an earlier launch of this sweep: what it returned then (its headline metric, or None)."""
    run = RunFolder(job.folder)
    value = ((run.summary or {}).get("best") or {}).get("value") if run.status == "completed" else None
    return job_return(job, value)


# ---------------------------------------------------------------- 3. group and run
def group(batch: List[Job], engine: Optional[ModuleType]) -> "tuple[List[List[Job]], List[Job]]":
    """The groups the engine trains together, and the jobs that run alone (resumed ones too); says which and why."""
    fresh = [job for job in batch if job.plan in ("new", "rerun")]
    alone = [job for job in batch if job.plan == "resume"]
    if engine is None:
        if len(fresh) > 1:
            print(
                f"gdrun: {len(fresh)} jobs one at a time: gdrun.training.vectorised, which trains like jobs "
                f"together, is not there",
                file=sys.stderr,
            )
        return [], alone + fresh
    reasons: Dict[int, str] = {}
    keyed: Dict[Any, List[Job]] = {}
    for job in fresh:
        reason = engine.batch_reason(job.task) or own_reason(job.config)
        if reason:
            reasons[job.number] = reason
        else:
            keyed.setdefault(engine.group_key(job.task), []).append(job)
    groups = [members for members in keyed.values() if len(members) > 1]
    for members in keyed.values():
        if len(members) == 1:
            reasons[members[0].number] = f"no other job has {SHARED}"
    lonely = [job for job in fresh if job.number in reasons]
    say_groups(groups, lonely, reasons, fresh)
    return groups, alone + lonely


def own_reason(config: DictConfig) -> Optional[str]:
    """Why Hydra's settings keep a job to itself: a working directory or an environment of its own."""
    if config.hydra.job.chdir:
        return "hydra.job.chdir=true: each job runs in its own working directory"
    if config.hydra.job.env_set:
        return "hydra.job.env_set: each job sets its own environment"
    return None


def say_groups(groups: List[List[Job]], lonely: List[Job], reasons: Dict[int, str], fresh: List[Job]) -> None:
    """Once, on the console: what trains together, what runs one at a time, and why."""
    common = set.intersection(*(set(job.overrides) for job in fresh)) if fresh else set()
    parts = []
    for members in groups:
        parts.append(f"{len(members)} jobs trained together ({SHARED}: {describe(members[0].task)})")
    if lonely:
        shown = [
            f"{' '.join(o for o in job.overrides if o not in common) or f'job {job.number}'} ({reasons[job.number]})"
            for job in lonely[:5]
        ]
        more = f"; and {len(lonely) - 5} more" if len(lonely) > 5 else ""
        parts.append(f"{len(lonely)} one at a time: {'; '.join(shown)}{more}")
    print(f"gdrun: {'; '.join(parts)}", file=sys.stderr)


def describe(cfg: DictConfig) -> str:
    """What a group shares, in brief: `line / linear / gd, batch 1, 10 epochs`."""
    optim = cfg.optim
    # SGD with and without momentum are separate groups (engine.group_key): the one keeps a buffer.
    name = f"{optim.name} with momentum" if optim.get("momentum", 0) else optim.name
    return f"{cfg.data.name} / {cfg.model.name} / {name}, batch {optim.batch_size}, {optim.epochs} epochs"


def run_together(
    members: List[Job], config: DictConfig, context: HydraContext, task_function: TaskFunction
) -> Dict[int, JobReturn]:
    """A group through jobs.run_group, each job with Hydra's bookkeeping around it."""
    for job in members:
        clear_failed(job)
        log.info(f"\t#{job.number} : {' '.join(job.overrides)}")
        open_job(job, context, task_function)
    console_logging(members[0].config)
    first = members[0].task
    title = f"{first.data.name} / {first.model.name} / {first.optim.name} batch={first.optim.batch_size}"
    results: Sequence[Union[Dict, BaseException]]
    try:
        with signals.job_starting():
            results = jobs.run_group([job.task for job in members], [job.folder for job in members], title)
    except KeyboardInterrupt as stop:  # at once: before training began, or a second Ctrl-C
        if getattr(stop, "second", True):
            raise  # the whole sweep stops at once; the command then says how each job ended
        results = [stop] * len(members)
    finally:
        configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    returns, stop_after = {}, None
    with together(Path(os.path.abspath(str(config.hydra.sweep.dir)))):  # their summary.csv rows in one write
        for job, result in zip(members, results):
            job.ran = isinstance(result, dict)
            try:
                returns[job.number] = close_job(job, context, jobs.sweep_job_ended(job.folder, result, grouped=True))
            except BaseException as raised:  # noqa: BLE001 - a callback stopping the sweep: every job ends first
                stop_after = stop_after or raised
    if stop_after is not None:
        raise stop_after
    return returns


def run_alone(job: Job, config: DictConfig, context: HydraContext, task_function: TaskFunction) -> JobReturn:
    """One job as Hydra's basic launcher runs it (a resumed one through jobs.resume_job)."""
    log.info(f"\t#{job.number} : {' '.join(job.overrides)}")
    if job.plan == "resume":
        return resume(job, config, context, task_function)
    clear_failed(job)
    ret = run_job(
        hydra_context=context,
        task_function=without_pictures(task_function),
        config=job.config,
        job_dir_key="hydra.sweep.dir",
        job_subdir_key="hydra.sweep.subdir",
    )
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    job.ran = True
    return ret


def clear_failed(job: Job) -> None:
    """A failed job of this sweep runs again in an empty folder (plan checked it is this sweep's, and locked it)."""
    if job.plan == "rerun":
        shutil.rmtree(job.folder)
        lock.release(job.folder)


def without_pictures(task_function: TaskFunction) -> TaskFunction:
    """The task, drawing no pictures: a sweep's are drawn after its jobs (plots_jobs), or by gdrun-report.

    Hydra has written the job's own config (plots as given) to .hydra/config.yaml already.
    """

    def task(cfg: DictConfig) -> Any:
        cfg = copy.deepcopy(cfg)
        cfg.plots = False
        return task_function(cfg)

    return task


def resume(job: Job, config: DictConfig, context: HydraContext, task_function: TaskFunction) -> JobReturn:
    """An interrupted (or killed) job of this sweep, resumed from its checkpoint as `gdrun resume=JOB` does."""
    set_hydra_config(job)
    context.callbacks.on_job_start(config=job.config, task_function=task_function)
    console_logging(job.config)  # resume_job writes the job's gdrun.log itself
    result: Union[Dict, BaseException]
    try:
        with signals.job_starting():
            result = jobs.resume_job(job.folder, ["plots=false"])
    except KeyboardInterrupt as stop:
        if getattr(stop, "second", True):
            raise
        result = stop
    except Exception as error:  # noqa: BLE001 - a failure never takes the sweep's other jobs with it
        result = error
    finally:
        configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    job.ran = isinstance(result, dict)
    return close_job(job, context, jobs.sweep_job_ended(job.folder, result))


# ---------------------------------------------------------------- Hydra's bookkeeping around a job
def open_job(job: Job, context: HydraContext, task_function: TaskFunction) -> None:
    """What Hydra's run_job does before the task: the job's folder, its .hydra record, on_job_start."""
    config = job.config
    set_hydra_config(job)
    job.folder.mkdir(parents=True, exist_ok=True)
    if config.hydra.output_subdir is not None and job.hydra is not None:
        record = job.folder / str(config.hydra.output_subdir)
        # The files hydra.core.utils._save_config writes, the same text through libyaml (rundir.yamlio).
        yamlio.save(job.task, record / "config.yaml")
        yamlio.save(job.hydra, record / "hydra.yaml")
        yamlio.save(config.hydra.overrides.task, record / "overrides.yaml")
    context.callbacks.on_job_start(config=config, task_function=task_function)


def set_hydra_config(job: Job) -> None:
    """Hydra's current config is the job's, as HydraConfig.set_config leaves it (from the view Job made, whose
    hydra.runtime.output_dir, read by ${hydra:runtime.output_dir} and the callbacks, is the job's folder)."""
    OmegaConf.set_readonly(job.config.hydra, True)  # as set_config leaves it
    HydraConfig.instance().cfg = job.view  # type: ignore[assignment]  # what set_config stores there
    job.hydra = job.view  # its hydra.yaml, and its JobReturn's hydra_cfg


def close_job(job: Job, context: HydraContext, value: Optional[float]) -> JobReturn:
    """What Hydra's run_job does after the task: a JobReturn, on_job_end."""
    ret = job_return(job, value)
    if job.hydra is None:
        HydraConfig.instance().set_config(job.config)
    else:  # what set_config made for it when it opened (a second set_config would copy it again)
        HydraConfig.instance().cfg = job.hydra  # type: ignore[assignment]  # what set_config stored there
    context.callbacks.on_job_end(config=job.config, job_return=ret)
    return ret


def job_return(job: Job, value: Optional[float]) -> JobReturn:
    """A job's JobReturn as Hydra's run_job makes it (a job that did not complete returns None, not an error)."""
    ret = JobReturn(
        overrides=job.overrides,
        cfg=job.task,
        hydra_cfg=job.hydra,
        working_dir=os.getcwd(),
        task_name=JobRuntime.instance().get("name"),
        status=JobStatus.COMPLETED,
    )
    ret.return_value = value
    return ret


def console_logging(config: DictConfig) -> None:
    """The job's logging without its log file: run_group writes every job's gdrun.log itself."""
    if config.hydra.job_logging is None:
        return
    conf = OmegaConf.to_container(config.hydra.job_logging, resolve=False)
    assert isinstance(conf, dict)
    files = {name for name, handler in (conf.get("handlers") or {}).items() if "filename" in handler}
    for name in files:
        del conf["handlers"][name]
    for logger in [conf.get("root") or {}, *(conf.get("loggers") or {}).values()]:
        if "handlers" in logger:
            logger["handlers"] = [name for name in logger["handlers"] if name not in files]
    configure_log(OmegaConf.create(conf), config.hydra.verbose)


# ---------------------------------------------------------------- 4. pictures
def draw_pictures(ran: List[Job]) -> None:
    """Each job's pictures, when it asks (plots and plots_jobs), after the jobs: two spawned processes at once."""
    asked = [job for job in ran if job.task.plots and job.task.get("plots_jobs", False)]
    drawn = [job for job in asked if RunFolder(job.folder).status in DRAWN]
    if not drawn or signals.requested() is not None:
        return
    print(f"gdrun: drawing the pictures of {len(drawn)} jobs", file=sys.stderr)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(PICTURE_WORKERS, len(drawn)), mp_context=context) as pool:
        loggers = [OmegaConf.to_container(job.task.loggers) for job in drawn]
        list(pool.map(draw_job, [job.folder for job in drawn], [modules_named(job.task) for job in drawn], loggers))


def draw_job(folder: Path, trust: List[str], loggers: Any) -> None:
    """In a worker: a job's pictures, trusting the targets its command line named, then handed to the loggers
    that keep them (logger=mlflow), as run_job draws and hands them."""
    with trusting(trust):
        jobs.draw_pictures(folder)
    jobs.keep_pictures(folder, loggers)
