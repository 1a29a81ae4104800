"""Jobs trained together (training.vectorised) leave the folders their single runs leave, numbers within float rounding.

Each test trains a few short jobs in one group and compares every job's files with the same job
run alone (helpers.run_in_process): iterations.csv and epochs.csv (but the wall-clock seconds),
the final weights, the checkpoints' weights and optimizer states, summary.json's outcome.
"""

import json
import signal

import pytest
import torch

from gdrun.training import vectorised
from gdrun.training.signals import StopRequest
from gdrun.training.vectorised import batch_reason, group_key, train_together
from helpers import compose_config, csv_rows, run_in_process


def together(root, base, variants):
    """Train one job per variant (overrides on top of `base`) in one group; their folders."""
    cfgs = [compose_config("plots=false", *base, *variant) for variant in variants]
    assert len({group_key(cfg) for cfg in cfgs}) == 1
    assert all(batch_reason(cfg) is None for cfg in cfgs)
    folders = [root / f"job{i}" for i in range(len(cfgs))]
    summaries = train_together(cfgs, folders, "test")
    assert [s["status"] for s in summaries] == [read_summary(f)["status"] for f in folders]
    return folders


def alone(root, base, variant, name):
    folder = root / name
    run_in_process(folder, *base, *variant)
    return folder


def read_summary(folder):
    return json.loads((folder / "summary.json").read_text())


def files(folder):
    """The folder's files, but the log a resumed run writes."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.name != "gdrun.log")


def numbers(rows, column):
    """A metric column as float32 (the precision it was computed in), empty cells left out."""
    return torch.tensor([r[column] for r in rows if r[column] is not None], dtype=torch.float32)


def assert_same_run(folder, reference):
    """The job's folder equals its single run's: the same files, the same numbers within float rounding."""
    ours, theirs = read_summary(folder), read_summary(reference)
    for key in ("status", "epochs", "steps", "diverged_at_step", "num_params", "run", "best_by_metric"):
        if key == "best_by_metric":
            assert {m: b["epoch"] for m, b in ours[key].items()} == {m: b["epoch"] for m, b in theirs[key].items()}
        else:
            assert ours.get(key) == theirs.get(key), key
    assert files(folder) == files(reference)
    for which in ("final", "best"):  # the test set, evaluated once at the end
        if "test" in theirs:
            torch.testing.assert_close(ours["test"][which], theirs["test"][which])
    for name, columns in (
        ("iterations.csv", ("step", "epoch", "loss", "lr")),
        ("epochs.csv", None),  # every column but the wall-clock seconds: the task's metrics too
        ("params.csv", None),
        ("fit.csv", None),
    ):
        if not (reference / name).exists():
            continue
        rows, expected = csv_rows(folder / name), csv_rows(reference / name)
        assert len(rows) == len(expected), name
        for column in columns or [c for c in expected[0].keys() if c != "seconds"]:
            torch.testing.assert_close(numbers(rows, column), numbers(expected, column), msg=f"{name} {column}")
    if (reference / "model.pt").exists():
        torch.testing.assert_close(
            torch.load(folder / "model.pt", weights_only=True), torch.load(reference / "model.pt", weights_only=True)
        )
    for name in ("last.pt", "best.pt"):
        ckpt = torch.load(folder / "checkpoints" / name, weights_only=True)
        expected = torch.load(reference / "checkpoints" / name, weights_only=True)
        torch.testing.assert_close(ckpt["model"], expected["model"])
        torch.testing.assert_close(ckpt["optimizer"], expected["optimizer"])  # torch.optim's own format
        assert ckpt["scheduler"] == expected["scheduler"]
        assert ckpt["fingerprint"] == expected["fingerprint"]
        assert torch.equal(ckpt["rng"]["torch"], expected["rng"]["torch"])
        for key in ("epoch", "step"):
            assert ckpt[key] == expected[key], (name, key)


def assert_each_equals_alone(tmp_path, base, variants, folders):
    for i, (variant, folder) in enumerate(zip(variants, folders)):
        assert_same_run(folder, alone(tmp_path, base, variant, f"alone{i}"))


@pytest.mark.parametrize(
    "base, variants",
    [
        pytest.param(
            ["lab=linreg_sgd", "optim.epochs=3"], [["optim.lr=0.01"], ["optim.lr=0.05"], ["optim.lr=0.1"]], id="gd"
        ),
        pytest.param(
            ["data=digits", "model=mlp", "optim.epochs=2", "optim=sgd"],
            [
                ["optim.lr=0.1", "optim.momentum=0.9", "optim.nesterov=true"],
                ["optim.lr=0.05", "optim.momentum=0.5", "optim.nesterov=true", "optim.weight_decay=0.001"],
                ["optim.lr=0.2", "optim.momentum=0.3", "optim.nesterov=true", "optim.weight_decay=0.01"],
            ],
            id="sgd-nesterov-mlp",
        ),
        pytest.param(
            ["data=plane2", "optim.epochs=3", "optim=sgd", "optim.momentum=0.9", "optim.batch_size=7"],
            [["optim.lr=0.01", "optim.dampening=0.5"], ["optim.lr=0.05", "optim.dampening=0.0"]],
            id="sgd-dampening-linear",
        ),
        pytest.param(
            ["data=digits", "model=logistic", "optim.epochs=2", "optim=adam"],
            [
                ["optim.lr=0.001"],
                ["optim.lr=0.01", "optim.betas=[0.8,0.99]", "optim.eps=1e-6", "optim.weight_decay=0.001"],
            ],
            id="adam",
        ),
        pytest.param(
            ["data=digits", "model=mlp", "optim.epochs=2", "optim=adamw", "optim.amsgrad=true"],
            [["optim.lr=0.001", "optim.weight_decay=0.0"], ["optim.lr=0.01", "optim.weight_decay=0.1"]],
            id="adamw-amsgrad-mlp",
        ),
        pytest.param(
            ["data=digits", "model=logistic", "optim.epochs=2", "data.test_split=0.2"],
            [["optim.lr=0.05"], ["optim.lr=0.5"]],
            id="test-split-multiclass",
        ),
        pytest.param(
            ["data=logistic_1d", "optim.epochs=3", "data.test_split=0.25", "data.val_split=0.25"],
            [["optim.lr=0.5"], ["optim.lr=2.0"]],
            id="test-split-binary-auc",
        ),
        pytest.param(
            ["lab=linreg_sgd", "optim.epochs=2", "data.test_split=0.2", "data.val_split=0.25"],
            [["optim.lr=0.01"], ["optim.lr=0.05"]],
            id="test-split-regression",
        ),
    ],
)
def test_each_job_equals_its_single_run(tmp_path, base, variants):
    folders = together(tmp_path, base, variants)
    assert_each_equals_alone(tmp_path, base, variants, folders)


def test_shuffled_data_with_a_seed_per_job(tmp_path):
    """Different seeds: different initial weights, data orders and (val_split) training sets, all in one group."""
    base = ["data=digits", "model=mlp", "optim.epochs=2"]
    variants = [["seed=0"], ["seed=1"], ["seed=2"]]
    folders = together(tmp_path, base, variants)
    assert_each_equals_alone(tmp_path, base, variants, folders)


def test_a_schedule_of_its_own_per_job(tmp_path):
    base = ["data=line", "optim.epochs=5", "sched=step"]
    variants = [["sched.step_size=1", "sched.gamma=0.5"], ["sched.step_size=2", "sched.gamma=0.1"]]
    folders = together(tmp_path, base, variants)
    assert [r["lr"] for r in csv_rows(folders[0] / "iterations.csv")] == [0.1, 0.05, 0.025, 0.0125, 0.00625]
    assert_each_equals_alone(tmp_path, base, variants, folders)


def test_one_job_diverges_at_its_own_step_and_the_other_goes_on(tmp_path):
    base = ["lab=linreg_bgd"]
    variants = [["optim.lr=0.1"], ["optim.lr=10"]]
    good, bad = together(tmp_path, base, variants)
    assert read_summary(good)["status"] == "completed" and read_summary(good)["steps"] == 15
    summary = read_summary(bad)
    assert summary["status"] == "diverged"
    assert csv_rows(bad / "iterations.csv")[-1]["step"] == summary["diverged_at_step"] < 15
    assert not (bad / "model.pt").exists()
    assert_each_equals_alone(tmp_path, base, variants, [good, bad])


class StopAfter(StopRequest):
    """A Ctrl-C that comes at the engine's `looks`-th look (one look per step, one at each epoch's end)."""

    looks = 0

    @property
    def requested(self) -> bool:
        StopAfter.seen += 1
        if StopAfter.seen >= StopAfter.looks:
            self.signum = signal.SIGINT
        return self.signum is not None


@pytest.mark.parametrize(
    "looks, steps, epoch_step",
    [
        pytest.param(50, 45 + 4, 4, id="mid-epoch"),  # epoch 1: 45 steps and its end; then 4 steps of epoch 2
        pytest.param(46, 45, 0, id="at-an-epoch-end"),  # at the end of epoch 1: its checkpoint is whole
    ],
)
def test_a_stop_checkpoints_every_job_and_resume_completes_each(
    tmp_path, monkeypatch, gdrun_main, looks, steps, epoch_step
):
    base = ["data=digits", "model=mlp", "optim.epochs=2", "optim=sgd", "optim.momentum=0.9"]
    variants = [["seed=0", "optim.lr=0.05"], ["seed=1", "optim.lr=0.1"]]
    StopAfter.seen, StopAfter.looks = 0, looks
    monkeypatch.setattr(vectorised, "StopRequest", StopAfter)
    folders = together(tmp_path, base, variants)
    for folder in folders:
        summary = read_summary(folder)
        assert summary["status"] == "interrupted" and summary["stopped_by"] == "SIGINT"
        assert summary["steps"] == steps and summary["epochs"] == 1
        saved = torch.load(folder / "checkpoints" / "last.pt", weights_only=True)
        assert saved["step"] == steps and saved["progress"]["epoch_step"] == epoch_step
        assert saved["optimizer"]["state"]  # the momentum buffers, in torch.optim's format
    monkeypatch.undo()
    for folder in folders:
        code, _, err = gdrun_main(f"resume={folder}")
        assert code == 0, err
    assert_each_equals_alone(tmp_path, base, variants, folders)


def test_batch_reason_says_why_a_job_trains_alone():
    assert batch_reason(compose_config("data=digits", "model=mlp")) is None
    dropout = batch_reason(compose_config("data=digits", "model=mlp", "model.dropout=0.2"))
    assert dropout is not None and "model.dropout=0.2" in dropout and "random" in dropout
    rmsprop = batch_reason(compose_config("optim=rmsprop"))
    assert rmsprop is not None and rmsprop.startswith("optim=rmsprop")
    assert "amp" in (batch_reason(compose_config("amp=true")) or "")


def test_group_key_separates_what_is_not_a_number():
    key = group_key(compose_config("data=digits", "model=mlp", "optim.lr=0.1", "seed=0"))
    # Numbers of the optimizer, the seed, the schedule: the same group.
    assert key == group_key(compose_config("data=digits", "model=mlp", "optim.lr=0.3", "seed=5"))
    assert key == group_key(compose_config("data=digits", "model=mlp", "sched=step", "sched.gamma=0.5"))
    # The batch size, the architecture, the algorithm: another group.
    assert key != group_key(compose_config("data=digits", "model=mlp", "optim.batch_size=64"))
    assert key != group_key(compose_config("data=digits", "model=mlp", "model.hidden=[64]"))
    assert key != group_key(compose_config("data=digits", "model=logistic"))
    assert key != group_key(compose_config("data=digits", "model=mlp", "optim=adam"))
    sgd = group_key(compose_config("data=digits", "model=mlp", "optim=sgd", "optim.momentum=0.5"))
    assert sgd == group_key(compose_config("data=digits", "model=mlp", "optim=sgd", "optim.momentum=0.9"))
    assert sgd != group_key(compose_config("data=digits", "model=mlp", "optim=sgd", "optim.momentum=0"))
