"""A run as a trial of an Optuna search that prunes (search.pruner=median): its headline metric after every
epoch told to the trial, and the run stopped when Optuna's pruner says so (summary.json: `pruned`).

The job finds its trial through its config (search.storage, search.study, search.trial: set for each
trial by gdrun's Optuna sweeper) and uses Optuna's own Trial on the study's storage, so it works in
whichever process or machine the launcher runs it, as long as that can reach the storage.
"""

import logging
from typing import Any, Callable, Dict, Optional

log = logging.getLogger("gdrun")

# An epoch's row -> True when the trial is to stop now.
Prune = Callable[[Dict[str, Any]], bool]


def make_pruner(name: str, startup_trials: int, warmup_epochs: int) -> Any:
    """Optuna's pruner for search.pruner (gdrun.config.schema.PRUNERS)."""
    import optuna

    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=startup_trials, n_warmup_steps=warmup_epochs)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner()
    if name == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner()
    raise ValueError(f"search.pruner={name} is not a pruner")  # check_values refused it before


def trial_pruner(search: Any, headline: str) -> Optional[Prune]:
    """What the epoch loop asks after each epoch, for a trial of a pruning search; None for any other run."""
    if search is None or search.get("pruner") is None or search.get("trial") is None:
        return None
    import optuna

    storage = optuna.storages.get_storage(search.storage)
    study = optuna.load_study(
        study_name=search.study,
        storage=storage,
        pruner=make_pruner(search.pruner, search.startup_trials, search.warmup_epochs),
    )
    trial_id = storage.get_trial_id_from_study_id_trial_number(
        storage.get_study_id_from_name(search.study), search.trial
    )
    if storage.get_trial(trial_id).state != optuna.trial.TrialState.RUNNING:
        # A trial told already (a pruned run resumed by hand): the run trains on, reporting nothing.
        log.info("trial %d of study %s has ended: this run no longer reports to it", search.trial, search.study)
        return None
    trial = optuna.trial.Trial(study, trial_id)

    def prune(row: Dict[str, Any]) -> bool:
        value = row.get(headline)
        if value is None:
            return False
        trial.report(float(value), step=int(row["epoch"]))
        return trial.should_prune()

    return prune
