"""search=classification|regression: gdrun's Optuna sweeper tunes lr and batch size on a toy lab, its study kept in
optuna.db (read back with optuna.load_study), continued by the same command, going on past failed trials, pruning."""

import json

import pytest
import yaml

from helpers import gdrun_cli, read_summary

pytestmark = pytest.mark.slow  # every test here starts gdrun as a process
optuna = pytest.importorskip("optuna", reason='the optuna extra: pip install -e ".[optuna]" (make test does)')
TrialState = optuna.trial.TrialState

# The preset, the lab and its ranges, what the runs return to the sweeper, and which way is better.
# The regression range reaches rates at which the line lab diverges: with the sampler's seed 0,
# the first of its four trials does, and the search must go on past it.
SEARCHES = {
    "classification": (["data=logistic_1d", "optim.batch_size=choice(5,10,full)"], "val_accuracy", max),
    "regression": (
        ["data=line", "optim.lr=tag(log,interval(0.01,100))", "optim.batch_size=choice(6,full)"],
        "val_loss",
        min,
    ),
}


def search(folder, *overrides, preset="classification"):
    """A short search into `folder`; the command's result."""
    return gdrun_cli(
        "-m",
        f"search={preset}",
        *overrides,
        "data.val_split=0.25",
        "plots=false",
        f"hydra.sweep.dir={folder}",
    )


def study_of(folder):
    return optuna.load_study(study_name="gdrun", storage=f"sqlite:///{folder / 'optuna.db'}")


def summaries(folder, n):
    return [json.loads((folder / str(number) / "summary.json").read_text()) for number in range(n)]


@pytest.mark.parametrize("preset", list(SEARCHES))
def test_a_four_trial_search_optimises_the_headline_metric(preset, tmp_path):
    overrides, metric, better = SEARCHES[preset]
    result = search(tmp_path, *overrides, "optim.epochs=2", "hydra.sweeper.n_trials=4", preset=preset)
    assert result.returncode == 0, result.stderr
    runs = summaries(tmp_path, 4)
    assert all(s["best"]["metric"] == metric for s in runs)
    lrs = [s["run"]["lr"] for s in runs]
    assert len(set(lrs)) == 4  # each trial drew its own rate from the log range
    completed = [s for s in runs if s["status"] == "completed"]
    trials = study_of(tmp_path).trials
    if preset == "regression":
        assert [s["status"] for s in runs].count("diverged") == 1
        # A divergence is told as pruned: samplers count it among the bad trials (a failed one they ignore).
        diverged = next(t for t, s in zip(trials, runs) if s["status"] == "diverged")
        assert diverged.state == TrialState.PRUNED and diverged.user_attrs["status"] == "diverged"
    else:
        assert len(completed) == 4 and all(1e-4 <= lr <= 1.0 for lr in lrs)  # the preset's own range
    # Optuna was told each completed run's headline metric, job N being trial N.
    for trial, summary in zip(trials, runs):
        assert trial.params["optim.lr"] == summary["run"]["lr"]
        if summary["status"] == "completed":
            assert trial.state == TrialState.COMPLETE and trial.value == summary["best"]["value"]
        assert trial.user_attrs["folder"] == str(tmp_path / str(trial.number))
    # The best trial, the right way round, with its number and folder.
    results = yaml.safe_load((tmp_path / "optimization_results.yaml").read_text())
    assert results["best_value"] == better(s["best"]["value"] for s in completed)
    winner = next(
        n for n, s in enumerate(runs) if s["status"] == "completed" and s["best"]["value"] == results["best_value"]
    )
    assert results["best_trial"] == winner and results["best_folder"] == str(tmp_path / str(winner))
    assert results["best_params"] == {
        "optim.lr": runs[winner]["run"]["lr"],
        "optim.batch_size": runs[winner]["run"]["batch_size"],
    }


def test_the_same_command_continues_the_study_to_n_trials_in_total(tmp_path):
    common = ["data=logistic_1d", "optim.batch_size=choice(5,10,full)", "optim.epochs=2"]
    first = search(tmp_path, *common, "hydra.sweeper.n_trials=4")
    assert first.returncode == 0, first.stderr
    assert len(study_of(tmp_path).trials) == 4
    again = search(tmp_path, *common, "hydra.sweeper.n_trials=6")
    assert again.returncode == 0, again.stderr
    trials = study_of(tmp_path).trials
    assert [t.number for t in trials] == list(range(6)) and all(t.state == TrialState.COMPLETE for t in trials)
    # The continued sampler draws anew: the two new trials are not the first two again.
    assert len({t.params["optim.lr"] for t in trials}) == 6
    assert [row["job"] for row in read_summary(tmp_path)] == [str(n) for n in range(6)]
    assert [s["run"]["lr"] for s in summaries(tmp_path, 6)] == [t.params["optim.lr"] for t in trials]
    assert yaml.safe_load((tmp_path / "optimization_results.yaml").read_text())["n_trials"] == 6


def test_a_failed_trial_is_told_failed_and_the_search_goes_on(tmp_path):
    # Brute force tries both settings; optim.lr=-1 is refused as the job starts: a failed trial.
    result = search(
        tmp_path,
        "data=line",
        "optim.lr=choice(-1,0.1)",
        "optim.batch_size=full",
        "optim.epochs=2",
        "hydra.sweeper.n_trials=5",
        "hydra.sweeper.sampler._target_=optuna.samplers.BruteForceSampler",
        preset="regression",
    )
    assert result.returncode == 0, result.stderr
    trials = study_of(tmp_path).trials
    assert len(trials) == 2  # the sampler ran out of settings before n_trials, and said so
    states = {t.params["optim.lr"]: (t.state, t.user_attrs["status"]) for t in trials}
    assert states == {-1: (TrialState.FAIL, "failed"), 0.1: (TrialState.COMPLETE, "completed")}
    assert "tried every setting" in result.stderr


def test_pruning_stops_unpromising_trials(tmp_path):
    result = search(
        tmp_path,
        "data=line",
        "optim.lr=tag(log,interval(0.0001,0.5))",
        "optim.batch_size=full",
        "optim.epochs=10",
        "search.pruner=median",
        "search.startup_trials=1",
        "hydra.sweeper.n_trials=5",
        preset="regression",
    )
    assert result.returncode == 0, result.stderr
    runs = summaries(tmp_path, 5)
    trials = study_of(tmp_path).trials
    pruned = [n for n, s in enumerate(runs) if s["status"] == "pruned"]
    assert pruned, [s["status"] for s in runs]
    for n in pruned:
        assert runs[n]["epochs"] < 10 and trials[n].state == TrialState.PRUNED
        # Each epoch's headline metric was reported, up to the epoch that stopped it.
        epochs = runs[n]["epochs"]
        assert sorted(trials[n].intermediate_values) == list(range(1, epochs + 1))
    completed = [n for n, s in enumerate(runs) if s["status"] == "completed"]
    assert completed and all(len(trials[n].intermediate_values) == 10 for n in completed)
    assert {row["status"] for row in read_summary(tmp_path)} == {"completed", "pruned"}


@pytest.mark.parametrize("launcher", ["gdrun", "basic"])
def test_a_trial_left_unfinished_is_finished_first_when_the_search_is_continued(launcher, tmp_path):
    common = ["data=logistic_1d", "optim.batch_size=full", "optim.epochs=2", f"hydra/launcher={launcher}"]
    first = search(tmp_path, *common, "hydra.sweeper.n_trials=1")
    assert first.returncode == 0, first.stderr
    # A command that stopped after asking trial 1 (killed before its job could end) leaves it RUNNING.
    study = study_of(tmp_path)
    left = study.ask({"optim.lr": optuna.distributions.FloatDistribution(1e-4, 1.0, log=True)})
    left.set_user_attr("sweep_dir", str(tmp_path))
    again = search(tmp_path, *common, "hydra.sweeper.n_trials=2")
    assert again.returncode == 0, again.stderr
    trials = study_of(tmp_path).trials
    if launcher == "gdrun":  # resumed in its own folder: the study holds the two trials asked
        assert [(t.number, t.state) for t in trials] == [(0, TrialState.COMPLETE), (1, TrialState.COMPLETE)]
        redone = trials[1]
    else:  # another launcher never writes over a folder: its settings start again as trial 2
        assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE]
        redone = trials[2]
    assert redone.params["optim.lr"] == left.params["optim.lr"]
    summary = json.loads((tmp_path / str(redone.number) / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["run"]["lr"] == left.params["optim.lr"]
