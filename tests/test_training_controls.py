"""Training controls: early stopping, gradient clipping, per-iteration schedules, the lr range test, bad values."""

import json
import math
import re
import shlex
from pathlib import Path

import pytest
import torch

from gdrun.training import checkpoints
from gdrun.training.controls import EarlyStop
from gdrun.training.lr_find import analyse, exponential_rates
from gdrun.training.outputs import Outputs, Progress
from gdrun.training.parts import build
from gdrun.training.runner import epoch_loop, output_settings, prepare_resume, start, train
from helpers import assert_picture, compose_config, csv_rows, gdrun_cli, run_in_process

REPO = Path(__file__).resolve().parents[1]


def summary_of(folder):
    return json.loads((folder / "summary.json").read_text())


# ---------------------------------------------------------------- early stopping
def test_early_stopping_counts_epochs_without_an_improvement_larger_than_min_delta():
    watch = EarlyStop("val_loss", patience=2, min_delta=0.1, lower_is_better=True)
    rows = [{"epoch": e, "val_loss": v} for e, v in enumerate([1.0, 0.8, 0.75, 0.72, 0.5, 0.45, 0.44])]
    state, stopped = None, None
    for previous, row in zip(rows, rows[1:]):
        state = watch.observe(state, previous, row)
        if watch.due(state):
            stopped = row["epoch"]
            break
    # 0.8 improves on 1.0 by more than 0.1; 0.75 and 0.72 do not: two epochs without, so it stops at 3.
    assert stopped == 3 and state == {"best": 0.8, "best_epoch": 1, "waited": 2}
    rising = EarlyStop("val_f1", patience=1, min_delta=0.0, lower_is_better=False)
    state = rising.observe(None, {"epoch": 0, "val_f1": 0.5}, {"epoch": 1, "val_f1": 0.6})
    assert state["best"] == 0.6 and not rising.due(state)
    assert rising.due(rising.observe(state, {"epoch": 1, "val_f1": 0.6}, {"epoch": 2, "val_f1": 0.6}))


def test_a_run_that_plateaus_stops_early_completed_with_its_best_checkpoint(tmp_path):
    # A learning rate of 1e-12 cannot move w = -15 in float32: the loss is flat from epoch 0, its best.
    summary = run_in_process(tmp_path, "lab=linreg_bgd", "optim.lr=1e-12", "optim.epochs=20", "early_stop.patience=3")
    assert summary["status"] == "completed" and summary["stopped_early_at"] == 3
    assert summary["early_stop"]["metric"] == "train_loss" and summary["early_stop"]["best_epoch"] == 0
    assert "did not fall for 3 epochs" in summary["early_stop"]["reason"]
    assert [row["epoch"] for row in csv_rows(tmp_path / "epochs.csv")] == [0, 1, 2, 3]
    assert (tmp_path / "checkpoints" / "best.pt").exists() and (tmp_path / "model.pt").exists()


def test_early_stopping_resumes_with_its_counter(tmp_path):
    """A run stopped by its epochs mid-patience and resumed with more stops where the run in one go stops."""
    run = ["data=digits", "model=mlp", "optim=adam", "optim.lr=0.01", "early_stop.patience=3"]
    run += ["early_stop.metric=val_loss", "checkpoint_min_seconds=0"]
    whole = run_in_process(tmp_path / "whole", *run, "optim.epochs=40")
    stop = whole["stopped_early_at"]
    assert stop is not None and stop < 40
    first = tmp_path / "parts"
    run_in_process(first, *run, f"optim.epochs={stop - 1}")  # ends one epoch before the stop, counter above 0
    saved = checkpoints.load(first / "checkpoints" / "last.pt")
    assert saved["progress"]["early_stop"]["waited"] > 0
    cfg = compose_config("plots=false", *run, "optim.epochs=40")
    resumed = train(cfg, first, prepare_resume(cfg, saved, first / "checkpoints" / "last.pt"))
    assert resumed["stopped_early_at"] == stop
    assert (first / "epochs.csv").read_text().count("\n") == (tmp_path / "whole" / "epochs.csv").read_text().count("\n")


def test_a_run_killed_after_it_stopped_early_resumes_to_its_end_and_a_completed_one_is_refused(tmp_path):
    from gdrun.errors import GdrunError
    from gdrun.jobs import resume_job

    run_in_process(
        tmp_path, "lab=linreg_bgd", "optim.lr=1e-12", "optim.epochs=20", "early_stop.patience=3", "plots=false"
    )
    epochs = (tmp_path / "epochs.csv").read_text()
    with pytest.raises(GdrunError, match="completed: early stopping ended it after epoch 3"):
        resume_job(tmp_path, [])
    (tmp_path / "summary.json").write_text('{"status": "running"}')  # killed after last.pt, before its summary
    summary = resume_job(tmp_path, [])
    assert summary["status"] == "completed" and summary["stopped_early_at"] == 3 and summary["epochs"] == 3
    assert (tmp_path / "epochs.csv").read_text() == epochs


@pytest.mark.slow  # starts gdrun as a process
def test_early_stop_metric_must_be_a_column_the_run_produces(tmp_path):
    result = gdrun_cli("early_stop.patience=2", "early_stop.metric=val_f1", f"hydra.run.dir={tmp_path / 'r'}")
    assert result.returncode == 2
    assert (
        "early_stop.metric=val_f1 is not a column of this run's epochs.csv; choose one of: train_loss" in result.stderr
    )
    assert not (tmp_path / "r").exists()


# ---------------------------------------------------------------- gradient clipping
def test_clipping_by_norm_bounds_each_update_and_logs_the_norm_before_clipping(tmp_path):
    clip, lr = 5.0, 0.1
    run_in_process(tmp_path, "lab=linreg_bgd", f"optim.clip_grad_norm={clip}")
    norms = [row["grad_norm"] for row in csv_rows(tmp_path / "iterations.csv")]
    path = [(row["w"], row["b"]) for row in csv_rows(tmp_path / "params.csv")]
    assert norms[0] > 10 * clip  # the first gradients are large: clipping acts
    for norm, (w0, b0), (w1, b1) in zip(norms, path, path[1:]):
        step = math.hypot(w1 - w0, b1 - b0)  # plain gradient descent: the update is lr x the clipped gradient
        assert step == pytest.approx(lr * min(norm, clip), rel=1e-4)


def test_clipping_by_value_bounds_each_coordinate_and_adds_no_column(tmp_path):
    run_in_process(tmp_path, "lab=linreg_bgd", "optim.clip_grad_value=2")
    assert list(csv_rows(tmp_path / "iterations.csv")[0]) == ["step", "epoch", "loss", "lr"]
    path = [(row["w"], row["b"]) for row in csv_rows(tmp_path / "params.csv")]
    moves = [abs(a - b) for p, q in zip(path, path[1:]) for a, b in zip(p, q)]
    assert max(moves) == pytest.approx(0.1 * 2, rel=1e-5)  # lr x the clip, reached by the first steps


# ---------------------------------------------------------------- per-iteration schedules
def test_onecycle_steps_every_iteration_as_torch_onecycle_lr(tmp_path):
    run_in_process(tmp_path, "optim.batch_size=10", "optim.epochs=3", "sched=onecycle", "optim.lr=0.5")
    logged = [row["lr"] for row in csv_rows(tmp_path / "iterations.csv")]
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.5)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.5, total_steps=18, cycle_momentum=False)
    expected = []
    for _ in range(18):  # 60 points of data=line in batches of 10, 3 epochs
        expected.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert logged == expected


def test_warmup_cosine_is_a_linear_warm_up_then_half_a_cosine(tmp_path):
    lr, warmup, total, start_factor = 0.2, 4, 18, 0.01
    run_in_process(tmp_path, "optim.batch_size=10", "optim.epochs=3", "sched=warmup_cosine", f"optim.lr={lr}",
                   f"sched.warmup_steps={warmup}", "sched.eta_min=0.001")  # fmt: skip
    logged = [row["lr"] for row in csv_rows(tmp_path / "iterations.csv")]

    def rate(k):
        if k < warmup:
            return lr * (start_factor + (1 - start_factor) * k / warmup)
        return 0.001 + (lr - 0.001) * (1 + math.cos(math.pi * (k - warmup) / (total - warmup))) / 2

    torch.testing.assert_close(logged, [rate(k) for k in range(total)], rtol=1e-9, atol=0)
    epochs = csv_rows(tmp_path / "epochs.csv")
    assert [row["lr"] for row in epochs[1:]] == [logged[0], logged[6], logged[12]]  # each epoch's first rate


@pytest.mark.parametrize("name", sorted(p.stem for p in (REPO / "conf" / "sched").glob("*.yaml")))
def test_every_schedule_is_a_target_a_run_folder_may_name(name):
    """resume= and load_run read a run's config back: its schedule must be one gdrun runs without leave."""
    from gdrun.config.targets import is_trusted

    target = compose_config(f"sched={name}").sched._target_
    assert target is None or is_trusted(target)


def test_a_per_epoch_schedule_stepped_every_iteration_counts_its_length_in_iterations(tmp_path):
    run_in_process(tmp_path, "optim.batch_size=10", "optim.epochs=2", "sched=cosine", "sched.interval=step")
    logged = [row["lr"] for row in csv_rows(tmp_path / "iterations.csv")]
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=12)  # T_max null: the run's 12 steps
    expected = []
    for _ in range(12):
        expected.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert logged == expected


class StopAfter:
    """A stop request that comes after `calls` looks (the loop looks after every step and every epoch)."""

    name = "SIGINT"

    def __init__(self, calls):
        self.calls = calls

    @property
    def requested(self):
        self.calls -= 1
        return self.calls < 0


@pytest.mark.parametrize("sched", ["onecycle", "warmup_cosine"])
def test_a_per_iteration_schedule_with_clipping_resumes_exactly_mid_epoch(tmp_path, sched):
    run = ["plots=false", "data=digits", "model=mlp", "optim.epochs=3", "optim.batch_size=64", f"sched={sched}"]
    run += ["optim.momentum=0.9", "optim.clip_grad_norm=0.5", "checkpoint_min_seconds=0"]
    run_in_process(tmp_path / "whole", *run)
    cfg = compose_config(*run)
    folder = tmp_path / "stopped"
    folder.mkdir()
    parts, progress = build(cfg), Progress()
    with Outputs(folder, parts, output_settings(cfg)) as outputs:
        start(parts, progress, outputs, cfg.diverge_factor)
        assert epoch_loop(parts, progress, outputs, StopAfter(40)) == "interrupted"  # in epoch 2 of 23 steps
    assert 0 < progress.epoch_step < parts.steps_per_epoch
    last = folder / "checkpoints" / "last.pt"
    train(cfg, folder, prepare_resume(cfg, checkpoints.load(last), last))
    assert (folder / "iterations.csv").read_text() == (tmp_path / "whole" / "iterations.csv").read_text()
    whole = torch.load(tmp_path / "whole" / "model.pt", weights_only=True)
    for key, value in torch.load(folder / "model.pt", weights_only=True).items():
        assert torch.equal(value, whole[key]), key


# ---------------------------------------------------------------- the lr range test
@pytest.mark.slow  # starts gdrun as a process
def test_lr_find_on_linreg_bgd_finds_the_lab_s_good_rates_useful(tmp_path):
    result = gdrun_cli("lab=linreg_bgd", "lr_find=true", f"hydra.run.dir={tmp_path / 'r'}")
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "r"
    summary = summary_of(folder)
    found = summary["lr_find"]
    assert summary["kind"] == "lr_find" and summary["status"] == "completed" and found["ended"] == "diverged"
    # The lab's rates: 0.1 (the lab's) and 0.2 (its practice cell) train well; both lie where the loss falls.
    assert found["useful_from"] < 0.1 and 0.2 < found["useful_to"] <= found["lowest_at"] < 2
    # Gradient descent on this quadratic is stable below 1/3 (the Hessian's largest eigenvalue is about 6).
    assert 0.1 <= found["suggested_lr"] <= 1 / 3
    assert f"suggested learning rate: {found['suggested_lr']:.3g}" in result.stdout
    rows = csv_rows(folder / "lr_find.csv")
    assert list(rows[0]) == ["step", "lr", "loss", "smoothed_loss"]
    assert [row["lr"] for row in rows] == pytest.approx(exponential_rates(1e-7, 10.0, 100)[: len(rows)])
    assert rows[0]["loss"] == pytest.approx(835.276, rel=1e-5)  # the lab's initial cost: its initial weights
    assert not (folder / "iterations.csv").exists() and not (folder / "model.pt").exists()
    assert_picture(folder / "plots" / "lr_find.png")


def test_lr_find_from_python_takes_the_same_shorthand(tmp_path):
    import gdrun

    summary = gdrun.run(["lab=linreg_bgd", "lr_find=true", "lr_find.steps=30", f"hydra.run.dir={tmp_path / 'r'}"])
    assert summary["kind"] == "lr_find" and summary["lr_find"]["steps"] == 30 and summary["steps"] <= 30
    assert (tmp_path / "r" / "plots" / "lr_find.png").exists()


def test_lr_find_reading_of_a_curve():
    rates = exponential_rates(1e-3, 10, 9)  # a decade every two steps
    found = analyse(rates, [5, 5, 4.9, 3, 1, 0.5, 0.45, 0.6, 3])
    # 4.9 is within 5 % of the (log) fall from the start: the fall begins at 3.
    assert found["useful_from"] == rates[3] and found["useful_to"] == rates[5] and found["lowest_at"] == rates[6]
    assert found["suggested_lr"] == rates[4]  # log 3 -> log 0.5 around it: the steepest fall
    assert analyse(rates, [1, 2, 3, 4, 5, 6, 7, 8, 9])["suggested_lr"] is None  # it never fell


# ---------------------------------------------------------------- bad values: exit 2, the key and the fix, no folder
@pytest.mark.parametrize(
    "overrides, said",
    [
        (["early_stop.patience=-1"], "early_stop.patience=-1 must be a whole number of epochs, 0 or more"),
        (["optim.clip_grad_norm=0"], "optim.clip_grad_norm=0.0 must be a positive number"),
        (["optim.clip_grad_norm=1", "optim.clip_grad_value=1"], "clip one way: set the other to null"),
        (["sched=warmup_cosine", "sched.warmup_steps=20"], "sched.warmup_steps=20 is not shorter than the run's 15"),
        (["sched=warmup_cosine", "sched.warmup_steps=0"], "sched.warmup_steps=0 must be a whole number of iterations"),
        (["lr_find=true", "lr_find.min=1", "lr_find.max=0.1"], "lr_find.min=1.0 must be below lr_find.max=0.1"),
        (["lr_find=true", "lr_find.steps=1"], "lr_find.steps=1 must be a whole number of iterations, 2 or more"),
        (["early_stop.patience=2", "early_stop.metric=sharpness"], "early_stop.mode=min or early_stop.mode=max"),
        (["sched=plateau", "sched.interval=step"], "sched.interval must be epoch"),
        (
            ["early_stop.patience=2", "early_stop.metric=lr", "early_stop.mode=min"],
            "early_stop.metric=lr is not a metric",
        ),
    ],
)
def test_bad_control_values_are_refused_naming_the_key(gdrun_main, tmp_path, overrides, said):
    code, _, err = gdrun_main("lab=linreg_bgd", *overrides, f"hydra.run.dir={tmp_path / 'r'}")
    assert code == 2
    assert said in err and "Traceback" not in err
    assert len(err.strip().splitlines()) <= 2
    assert not (tmp_path / "r").exists()


def readme_section():
    return (REPO / "README.md").read_text().split("## Training controls", 1)[1].split("\n## ", 1)[0]


def test_the_readme_commands_run_as_written(gdrun_main, tmp_path, monkeypatch):
    """The command block of the README's "Training controls", and its table of refusals."""
    monkeypatch.chdir(tmp_path)
    section = readme_section()
    commands = [line for line in section.split("```bash\n", 1)[1].split("```", 1)[0].splitlines() if line]
    assert len(commands) == 4
    for line in commands:
        code, out, err = gdrun_main(*shlex.split(line)[1:])
        assert code == 0, f"{line}\n{out}\n{err}"
    summaries = [json.loads(p.read_text()) for p in sorted((tmp_path / "outputs").glob("*/*/summary.json"))]
    assert [s.get("stopped_early_at") for s in summaries[:1]] == [15]  # the number the README gives
    refusals = re.findall(r"^\| `(gdrun [^`]*)`[^|]*\| (.*) \|$", section, flags=re.M)
    assert len(refusals) >= 8
    for command, said in refusals:
        if "FOLDER" in command:
            continue
        code, _, err = gdrun_main(*shlex.split(command)[1:], f"hydra.run.dir={tmp_path / 'refused'}")
        assert code == 2, command
        for part in said.strip("`").replace("`", "").split("..."):
            assert part.strip(" .;") in err, (command, part)


# ---------------------------------------------------------------- sweeps: the vectorised engine
@pytest.mark.slow  # starts gdrun as a process
def test_a_sweep_of_clipped_and_early_stopped_jobs(tmp_path):
    from gdrun.training.vectorised import batch_reason

    assert "gradient clipping is not vectorised" in batch_reason(compose_config("optim.clip_grad_norm=1"))
    assert "not vectorised" in batch_reason(compose_config("sched=onecycle"))
    assert batch_reason(compose_config("early_stop.patience=2")) is None  # the engine stops each job itself
    sweep = tmp_path / "sweep"
    result = gdrun_cli("-m", "lab=linreg_bgd", "optim.lr=1e-12,0.1", "early_stop.patience=2",
                       "optim.clip_grad_norm=null,100", "plots=false", f"hydra.sweep.dir={sweep}")  # fmt: skip
    assert result.returncode == 0, result.stderr
    said = result.stdout + result.stderr
    assert "2 jobs trained together" in said and "gradient clipping is not vectorised" in said
    summaries = [summary_of(sweep / str(n)) for n in range(4)]
    assert [s["status"] for s in summaries] == ["completed"] * 4
    # The flat ones (lr 1e-12) stop after 2 epochs, clipped or not; the others train their 15.
    assert [s.get("stopped_early_at") for s in summaries] == [2, 2, None, None]
    assert "grad_norm" in (sweep / "1" / "iterations.csv").read_text().splitlines()[0]
    # Job 0 stopped in the engine, job 1 alone (a clip of 100 never acts at that rate): the same epochs.
    assert [r["train_loss"] for r in csv_rows(sweep / "0" / "epochs.csv")] == [
        r["train_loss"] for r in csv_rows(sweep / "1" / "epochs.csv")
    ]
