"""Short real runs end to end: the run folder's files and columns, iteration counts, reproducibility."""

import json
import math

import pytest
import torch

from gdrun.rundir.loggers import EPOCH_COLUMNS, ITERATION_COLUMNS
from gdrun.training.models import linear
from helpers import csv_rows, run_in_process


def header(path):
    return tuple(path.read_text().splitlines()[0].split(","))


@pytest.mark.parametrize(
    "overrides, task",
    [
        (["data=line", "optim.epochs=3"], "regression"),
        (["data=logistic_1d", "optim.epochs=3"], "binary"),
        (["data=digits", "model=logistic", "optim.epochs=2"], "multiclass"),
    ],
)
def test_run_folder_contract(run_folder, overrides, task):
    summary = run_in_process(run_folder, *overrides)
    assert header(run_folder / "iterations.csv") == ITERATION_COLUMNS
    task_columns = {
        "regression": ("train_rmse", "train_mae", "train_r2", "val_rmse", "val_mae", "val_r2"),
        "binary": ("train_f1", "train_auc", "val_f1", "val_auc"),
        "multiclass": ("train_f1", "val_f1"),
    }[task]
    assert header(run_folder / "epochs.csv") == EPOCH_COLUMNS[:5] + task_columns + ("lr", "seconds")
    iterations = csv_rows(run_folder / "iterations.csv")
    epochs = csv_rows(run_folder / "epochs.csv")
    assert [r["step"] for r in iterations] == list(range(1, len(iterations) + 1))
    assert [r["epoch"] for r in epochs] == list(range(summary["epochs"] + 1))
    classification = task != "regression"
    assert all((r["train_accuracy"] is not None) == classification for r in epochs)
    assert all(math.isfinite(r["loss"]) for r in iterations)

    on_disk = json.loads((run_folder / "summary.json").read_text())
    assert on_disk["status"] == "completed" and on_disk["steps"] == len(iterations)
    for key in ("epochs", "steps", "final", "best", "wall_seconds", "device", "num_params"):
        assert key in on_disk
    assert on_disk["best"]["metric"] == (
        "val_accuracy" if task == "multiclass" else "train_accuracy" if classification else "train_loss"
    )

    for name in ("last.pt", "best.pt"):
        ckpt = torch.load(run_folder / "checkpoints" / name, weights_only=False)
        for key in ("model", "optimizer", "scheduler", "epoch", "step", "rng", "config"):
            assert key in ckpt
    assert torch.load(run_folder / "checkpoints" / "last.pt", weights_only=False)["step"] == len(iterations)


def test_model_pt_loads_into_the_model_the_config_builds(run_folder):
    run_in_process(run_folder, "data=plane2", "optim.epochs=2")
    state = torch.load(run_folder / "model.pt", weights_only=True)
    model = linear((2,), 2, "identity")
    model.load_state_dict(state)
    assert model.weight.shape == (2, 2)


@pytest.mark.parametrize("batch_size, per_epoch", [("full", 1), (1, 60), (7, 9), (60, 1), (100, 1)])
def test_iterations_per_epoch(run_folder, batch_size, per_epoch):
    summary = run_in_process(run_folder, "data=line", "optim.epochs=2", f"optim.batch_size={batch_size}")
    assert summary["steps"] == 2 * per_epoch == 2 * math.ceil(60 / (60 if batch_size == "full" else batch_size))


def test_seeded_runs_are_identical(tmp_path):
    overrides = ["data=digits", "model=mlp", "optim.epochs=2", "seed=3"]
    run_in_process(tmp_path / "a", *overrides)
    run_in_process(tmp_path / "b", *overrides)
    for name in ("iterations.csv", "params.csv", "fit.csv"):
        if (tmp_path / "a" / name).exists():
            assert (tmp_path / "a" / name).read_text() == (tmp_path / "b" / name).read_text()
    assert (tmp_path / "a" / "iterations.csv").read_text() == (tmp_path / "b" / "iterations.csv").read_text()
    epochs = [csv_rows(tmp_path / x / "epochs.csv") for x in "ab"]
    assert [{k: v for k, v in r.items() if k != "seconds"} for r in epochs[0]] == [
        {k: v for k, v in r.items() if k != "seconds"} for r in epochs[1]
    ]


def test_cost_is_recorded_before_the_update(run_folder):
    """Batch GD: iteration k's cost is the whole-set cost at the start of epoch k."""
    run_in_process(run_folder, "data=line", "optim.epochs=4")
    costs = [r["loss"] for r in csv_rows(run_folder / "iterations.csv")]
    starts = [r["train_loss"] for r in csv_rows(run_folder / "epochs.csv")][:-1]
    assert costs == starts


def test_loss_surface_path_and_fit_snapshots_are_recorded(run_folder):
    run_in_process(run_folder, "data=line", "optim.epochs=10", "fit_every=5")
    params = csv_rows(run_folder / "params.csv")
    assert [r["step"] for r in params] == list(range(11))
    assert sorted({r["epoch"] for r in csv_rows(run_folder / "fit.csv")}) == [0, 5, 10]
    assert len(csv_rows(run_folder / "data.csv")) == 60


def test_scheduler_changes_the_logged_learning_rate(run_folder):
    run_in_process(run_folder, "data=line", "optim.epochs=3", "sched=step", "sched.step_size=1", "sched.gamma=0.5")
    assert [r["lr"] for r in csv_rows(run_folder / "iterations.csv")] == [0.1, 0.05, 0.025]


def test_val_split_holds_out_part_of_the_training_set(run_folder):
    summary = run_in_process(run_folder, "data=logistic_1d", "data.val_split=0.25", "optim.epochs=1")
    assert summary["steps"] == 3  # 15 training points in batches of 5
    assert summary["final"]["val_accuracy"] is not None


def test_params_csv_names_each_number_of_a_two_number_weight(run_folder):
    run_in_process(run_folder, "data=plane", "model.bias=false", "optim.epochs=1")
    lines = (run_folder / "params.csv").read_text().splitlines()
    assert lines[0] == "step,epoch,w1,w2" and all(len(line.split(",")) == 4 for line in lines)
