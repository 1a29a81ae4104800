"""search=classification|regression: Optuna, through Hydra's sweeper, tunes lr and batch size on a toy lab."""

import json

import pytest
import yaml

from helpers import gdrun_cli

pytestmark = pytest.mark.slow  # every test here starts gdrun as a process

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


@pytest.mark.parametrize("preset", list(SEARCHES))
def test_a_four_trial_search_optimises_the_headline_metric(preset, tmp_path):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason='the optuna extra: pip install -e ".[optuna]"')
    overrides, metric, better = SEARCHES[preset]
    result = gdrun_cli(
        "-m",
        f"search={preset}",
        *overrides,
        "data.val_split=0.25",
        "optim.epochs=2",
        "plots=false",
        "hydra.sweeper.n_trials=4",
        f"hydra.sweep.dir={tmp_path}",
    )
    assert result.returncode == 0, result.stderr
    summaries = [json.loads((tmp_path / str(n) / "summary.json").read_text()) for n in range(4)]
    assert all(s["best"]["metric"] == metric for s in summaries)
    lrs = [s["run"]["lr"] for s in summaries]
    assert len(set(lrs)) == 4  # each trial drew its own rate from the log range
    completed = [s for s in summaries if s["status"] == "completed"]
    if preset == "regression":
        assert [s["status"] for s in summaries].count("diverged") == 1
    else:
        assert len(completed) == 4 and all(1e-4 <= lr <= 1.0 for lr in lrs)  # the preset's own range
    # The sweeper was told each completed run's headline metric and kept the best, the right way round.
    results = yaml.safe_load((tmp_path / "optimization_results.yaml").read_text())
    assert results["best_value"] == better(s["best"]["value"] for s in completed)
    winner = next(s for s in completed if s["best"]["value"] == results["best_value"])
    assert results["best_params"] == {"optim.lr": winner["run"]["lr"], "optim.batch_size": winner["run"]["batch_size"]}
