"""An Optuna search on the ask-and-tell API: n_jobs trials asked at once, launched as one batch, told how each ended.

Job N of the sweep folder is trial N of the study, so a row of summary.csv, a job folder and a
trial in optuna-dashboard name each other. How a job ended (its summary.json) is what Optuna is told:

    completed    its headline metric (summary.json's best value)
    pruned       PRUNED: the pruner stopped it (search.pruner)
    diverged     PRUNED: a result, not an accident; samplers count a pruned trial among the bad
                 ones (a failed trial they ignore), so the search learns to avoid what diverges
    failed       FAIL, and the search goes on
    interrupted  nothing: the trial stays RUNNING, and the same command run again finishes it
                 first (gdrun's launcher resumes the job from its checkpoint; another launcher
                 starts its settings again as a new trial)

Each trial also carries gdrun's status and folder as user attributes (user_attrs: status, folder).
"""

import logging
import os
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import optuna
from hydra.core.utils import JobReturn, JobStatus
from hydra.plugins.launcher import Launcher
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from optuna.trial import Trial, TrialState

from gdrun.config.schema import PRUNERS
from gdrun.errors import GdrunError
from gdrun.jobs import GDRUN_LAUNCHER
from gdrun.rundir.layout import SWEEP_RECORD, SWEEP_RESULTS, SWEEP_STUDY
from gdrun.rundir.reader import RunFolder
from gdrun.training import signals
from hydra_plugins.gdrun_optuna._space import Space, read_space

log = logging.getLogger(__name__)

# gdrun's status of a job -> what Optuna is told (see the module's docstring); None: left RUNNING.
TOLD = {"pruned": TrialState.PRUNED, "diverged": TrialState.PRUNED, "failed": TrialState.FAIL}
UNFINISHED = ("interrupted", "running")
# A trial started again as a new one (its settings enqueued) is FAIL with this status: not counted.
RESTARTED = "interrupted, started again as a new trial"


def storage_url(storage: Optional[str], sweep_dir: Path) -> str:
    """The study's storage: the one given, else optuna.db (SQLite) in the sweep folder."""
    return storage or f"sqlite:///{sweep_dir / SWEEP_STUDY}"


class Study:
    """The study, with the storage calls ask-and-tell leaves out (a trial by its number, its user attributes)."""

    def __init__(self, settings: DictConfig, url: str):
        """Made or loaded; its sampler seeded past the trials it holds, so a continued search draws anew."""
        direction, name = str(settings.direction), str(settings.study_name)
        self.url, self.storage = url, optuna.storages.get_storage(url)
        self.study = optuna.create_study(
            study_name=name,
            storage=self.storage,
            direction=optuna.study.StudyDirection[direction.upper()],
            load_if_exists=True,
        )
        if self.study.direction.name.lower() != direction:
            raise GdrunError(
                f"hydra.sweeper.direction={direction}: the study {name} in {url} is set to "
                f"{self.study.direction.name.lower()}, and a study keeps its direction; give another "
                f"hydra.sweeper.study_name or hydra.sweep.dir."
            )
        self.id = self.storage.get_study_id_from_name(name)
        sampler = OmegaConf.to_container(settings.sampler, resolve=True)
        assert isinstance(sampler, dict)
        if sampler.get("seed") is not None:
            sampler["seed"] = int(sampler["seed"]) + len(self.study.trials)
        self.study.sampler = instantiate(sampler)

    @property
    def name(self) -> str:
        return self.study.study_name

    def trial(self, number: int) -> Trial:
        return Trial(self.study, self.storage.get_trial_id_from_study_id_trial_number(self.id, number))

    def counted(self) -> int:
        """The trials n_trials counts: all the study holds but the interrupted ones started again as new trials
        (and the new ones waiting to be asked: enqueued settings)."""
        trials = self.study.get_trials(deepcopy=False)
        return sum(t.state != TrialState.WAITING and t.user_attrs.get("status") != RESTARTED for t in trials)

    def unfinished(self, sweep_dir: Path) -> List[Trial]:
        """This folder's trials left RUNNING by a command that stopped (this command holds the folder's lock)."""
        running = self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        return [self.trial(t.number) for t in running if t.user_attrs.get("sweep_dir") == str(sweep_dir)]


def search(settings: DictConfig, config: DictConfig, launcher: Launcher, arguments: Sequence[str]) -> None:
    """Run trials until the study holds hydra.sweeper.n_trials of them, then write optimization_results.yaml."""
    refuse_bad_settings(settings, config)
    sweep_dir = Path(os.path.abspath(str(config.hydra.sweep.dir)))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(config, sweep_dir / SWEEP_RECORD)  # the command's record: what continues this search
    study = Study(settings, storage_url(settings.storage, sweep_dir))
    space = read_space(dict(settings.params or {}), arguments)
    pruning = OmegaConf.select(config, "search.pruner") is not None
    waiting = finish_first(study, sweep_dir, in_place=config.hydra.launcher.get("_target_") == GDRUN_LAUNCHER)
    while signals.requested() is None:
        batch, waiting = waiting[: settings.n_jobs], waiting[settings.n_jobs :]
        if not batch:
            wanted = min(int(settings.n_jobs), int(settings.n_trials) - study.counted())
            if wanted <= 0:
                break
            batch = [ask(study, space, sweep_dir) for _ in range(wanted)]
        exhausted = False
        for first, trials in consecutive(batch):
            overrides = [space.overrides(trial.params) + trial_keys(study, trial, pruning) for trial in trials]
            returns = launcher.launch(overrides, initial_job_idx=first)
            exhausted |= any([tell(study, trial, ret, sweep_dir) for trial, ret in zip(trials, returns)])
        if exhausted:
            print("gdrun: the sampler has tried every setting of the space: the search ends", file=sys.stderr)
            break
    write_results(study, sweep_dir)


def refuse_bad_settings(settings: DictConfig, config: DictConfig) -> None:
    """GdrunError, before the study or any trial, for a setting every trial would fail on."""
    problems = []
    if settings.direction not in ("minimize", "maximize"):
        problems.append(f"hydra.sweeper.direction={settings.direction} must be minimize or maximize")
    for key in ("n_trials", "n_jobs"):
        if not (isinstance(settings[key], int) and settings[key] >= 1):
            problems.append(f"hydra.sweeper.{key}={settings[key]} must be a whole number, 1 or more")
    pruner = OmegaConf.select(config, "search.pruner")
    if pruner is not None and pruner not in PRUNERS:
        problems.append(f"search.pruner={pruner} must be one of: {', '.join(PRUNERS)} (or null: no pruning)")
    if problems:
        raise GdrunError("; ".join(problems) + ".")


def finish_first(study: Study, sweep_dir: Path, in_place: bool) -> List[Trial]:
    """This folder's trials a stopped command left unfinished: to run first (gdrun's launcher resumes each in
    its folder), or, with another launcher, told FAIL and their settings asked again as new trials."""
    stale = study.unfinished(sweep_dir)
    if not stale:
        return []
    how = "resumed first" if in_place else "started again as new trials"
    print(f"gdrun: continuing the study {study.name}: {len(stale)} unfinished trial(s) {how}", file=sys.stderr)
    if in_place:
        return stale
    for trial in stale:
        trial.set_user_attr("status", RESTARTED)
        study.study.tell(trial, state=TrialState.FAIL)
        study.study.enqueue_trial(trial.params, user_attrs={"restarts": trial.number})
    return []


def ask(study: Study, space: Space, sweep_dir: Path) -> Trial:
    """A new trial (an enqueued one first), its values drawn from the space, marked as this sweep folder's."""
    trial = study.study.ask(fixed_distributions=space.distributions)
    trial.set_user_attr("sweep_dir", str(sweep_dir))
    return trial


def trial_keys(study: Study, trial: Trial, pruning: bool) -> List[str]:
    """What a trial needs to report to the study and be pruned (search.*): only when the search prunes."""
    if not pruning:
        return []
    return [f"search.storage={quoted(study.url)}", f"search.study={quoted(study.name)}", f"search.trial={trial.number}"]


def quoted(text: str) -> str:
    """`text` as a quoted value of Hydra's override syntax: a URL's `=`, `,` or spaces stay its own."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def consecutive(trials: List[Trial]) -> List[Tuple[int, List[Trial]]]:
    """The batch in runs of consecutive trial numbers, each with its first: job N is trial N (another
    command asking trials of a shared study at once can leave gaps)."""
    runs: List[Tuple[int, List[Trial]]] = []
    for trial in sorted(trials, key=lambda t: t.number):
        if runs and runs[-1][0] + len(runs[-1][1]) == trial.number:
            runs[-1][1].append(trial)
        else:
            runs.append((trial.number, [trial]))
    return runs


def tell(study: Study, trial: Trial, ret: JobReturn, sweep_dir: Path) -> bool:
    """Tell Optuna how the trial's job ended, read from its folder (see the module's docstring); True when
    the sampler says the space is exhausted (a grid or brute-force sampler that has tried every setting)."""
    folder = job_folder(ret, sweep_dir, trial.number)
    run = RunFolder(folder)
    status = run.status if run.summary is not None else ("failed" if ret.status == JobStatus.FAILED else "running")
    trial.set_user_attr("status", status)
    trial.set_user_attr("folder", str(folder))
    if status in UNFINISHED:
        return False  # finished when the search is continued
    value = ((run.summary or {}).get("best") or {}).get("value") if status == "completed" else None
    try:
        if value is not None:
            study.study.tell(trial, float(value))
        else:
            study.study.tell(trial, state=TOLD.get(status, TrialState.FAIL))
    except RuntimeError as error:  # the sampler stops the study: it can only say so by raising outside optimize()
        if "Study.stop" not in str(error):
            raise
        return True  # the trial is told all the same (Optuna records it before the sampler's word)
    return False


def job_folder(ret: JobReturn, sweep_dir: Path, number: int) -> Path:
    """The job's folder, as the launcher made it (hydra.runtime.output_dir); SWEEP_DIR/N when it does not say."""
    output_dir = OmegaConf.select(ret.hydra_cfg, "hydra.runtime.output_dir") if ret.hydra_cfg is not None else None
    return Path(os.path.abspath(str(output_dir))) if output_dir else sweep_dir / str(number)


def write_results(study: Study, sweep_dir: Path) -> None:
    """optimization_results.yaml: the best trial (its parameters, value, number and folder) and the study; said too."""
    trials = study.study.get_trials(deepcopy=False)
    counts: Dict[str, int] = {}
    for t in trials:
        counts[t.state.name.lower()] = counts.get(t.state.name.lower(), 0) + 1
    completed = [t for t in trials if t.state == TrialState.COMPLETE]
    best = study.study.best_trial if completed else None
    results: Dict[str, Any] = {
        "name": "optuna",
        "study_name": study.name,
        "storage": study.url,
        "direction": study.study.direction.name.lower(),
        "n_trials": len(trials),
        "trials": counts,
        "best_params": dict(best.params) if best else None,
        "best_value": best.value if best else None,
        "best_trial": best.number if best else None,
        "best_folder": best.user_attrs.get("folder") if best else None,
    }
    OmegaConf.save(OmegaConf.create(results), sweep_dir / SWEEP_RESULTS)
    said = ", ".join(f"{n} {state}" for state, n in counts.items())
    line = f"gdrun: study {study.name}: {len(trials)} trials ({said})"
    if best is not None:
        params = ", ".join(f"{k}={v}" for k, v in best.params.items())
        line += f"; best: trial {best.number} ({params}): {best.value:.6g}, folder {best.user_attrs.get('folder')}"
    print(line, file=sys.stderr)
    print(f"gdrun: the study: optuna-dashboard {study.url}", file=sys.stderr)
