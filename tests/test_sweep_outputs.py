"""A sweep's own outputs: summary.csv a row at a time (parallel jobs included), groups.csv over seeds,
pictures that average seeds and stay legible, and the account the console gives at the end."""

import csv
import json
import math
import multiprocessing
import shutil
import statistics
import sys
import time

import numpy as np
import pytest
from omegaconf import OmegaConf

from gdrun.commands.report import main as report
from gdrun.rundir import sweep_summary
from gdrun.rundir.layout import SWEEP_GROUPS, SWEEP_LOCK
from gdrun.rundir.sweep_summary import (
    group_rows,
    read_jobs,
    swept_keys,
    t_975,
    update_summary,
    write_groups,
    write_summary,
)
from gdrun.sweeps import report_sweep, summarize
from helpers import assert_picture, gdrun_cli, make_sweep, read_summary

# summary.csv's columns, besides the swept keys (which come after `overrides`).
COLUMNS = [
    "job", "overrides", "status", "epochs", "steps", "final_train_loss", "final_train_accuracy",
    "final_val_loss", "final_val_accuracy", "best_metric", "best_value", "best_epoch", "wall_seconds",
    "error", "folder",
]  # fmt: skip
STATS = ("mean", "std", "ci95")


def fake_job(folder, overrides, status="completed", value=0.5, metric="val_accuracy"):
    """A job folder as a sweep leaves it (summary.json, Hydra's overrides), without training: known numbers."""
    (folder / ".hydra").mkdir(parents=True)
    OmegaConf.save(OmegaConf.create(list(overrides)), folder / ".hydra" / "overrides.yaml")
    final = {"train_loss": 1 - value, "val_loss": 2 - value, "train_accuracy": value, "val_accuracy": value}
    summary = {"status": status, "epochs": 3, "steps": 30, "wall_seconds": 1.0}
    if status == "completed":
        summary.update(final=final, best={"metric": metric, "value": value, "epoch": 3})
    else:
        summary.update(diverged_at_step=7, diverged_cost=float("inf"))
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder


# ---------------------------------------------------------------- summary.csv, a job at a time
def test_each_job_adds_its_own_row_reading_no_other_job(tmp_path, monkeypatch):
    """As jobs end, each one's row goes in from its folder alone; the table is the one write_summary makes."""
    done = make_sweep(tmp_path / "done", [["data=line", "optim.epochs=1", f"optim.lr={lr}"] for lr in (0.1, 0.01, 0.5)])
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    opened = []
    real = sweep_summary.RunFolder

    def spy(path):
        opened.append(path.name)
        return real(path)

    monkeypatch.setattr(sweep_summary, "RunFolder", spy)
    for number in range(3):
        (done / str(number)).rename(sweep / str(number))  # the job's folder, complete as it ends
        opened.clear()
        rows = update_summary(sweep, sweep / str(number))
        assert opened == [str(number)], opened
        assert [row["job"] for row in rows] == list(range(number + 1))
    header = (sweep / "summary.csv").read_text().splitlines()[0].split(",")
    assert header == COLUMNS[:2] + ["optim.lr"] + COLUMNS[2:]
    monkeypatch.setattr(sweep_summary, "RunFolder", real)
    incremental = (sweep / "summary.csv").read_bytes()
    assert write_summary(sweep) == rows  # every job folder read again: the same table
    assert (sweep / "summary.csv").read_bytes() == incremental
    assert [r["optim.lr"] for r in read_summary(sweep)] == ["0.1", "0.01", "0.5"]
    assert not list(sweep.glob(".*.tmp"))  # written whole, by rename


def test_a_job_that_never_started_has_no_row_and_values_with_spaces_survive(tmp_path):
    sweep = tmp_path / "sweep"
    fake_job(sweep / "0", ["model.hidden=[64, 32]", "optim.lr=0.1"])
    fake_job(sweep / "1", ["model.hidden=[8]", "optim.lr=0.1"])
    update_summary(sweep, sweep / "0")
    rows = update_summary(sweep, sweep / "1")
    assert [row["model.hidden"] for row in rows] == ["[64, 32]", "[8]"]
    assert "optim.lr" not in rows[0]  # the same in every job: not swept
    rows = update_summary(sweep, sweep / "2")  # set up after a stop, then removed: nothing to list
    assert [row["job"] for row in rows] == [0, 1]


def test_jobs_ending_together_put_their_rows_in_one_write_even_when_stopped(tmp_path):
    sweep = tmp_path / "sweep"
    fake_job(sweep / "0", ["optim.lr=0.5"])
    update_summary(sweep, sweep / "0")
    for number in (1, 2, 3):
        fake_job(sweep / str(number), [f"optim.lr={number / 10}"], value=number / 10)
    with pytest.raises(KeyboardInterrupt), sweep_summary.together(sweep):
        before = (sweep / "summary.csv").read_bytes()
        for number in (1, 2):
            assert update_summary(sweep, sweep / str(number)) == []  # waits for the block's end
        assert (sweep / "summary.csv").read_bytes() == before
        raise KeyboardInterrupt  # a stop inside the block: the rows given so far still go in
    assert [row["job"] for row in read_summary(sweep)] == ["0", "1", "2"]
    update_summary(sweep, sweep / "3")  # outside a block: at once, as before
    assert [row["job"] for row in read_summary(sweep)] == ["0", "1", "2", "3"]
    incremental = (sweep / "summary.csv").read_bytes()
    write_summary(sweep)  # the same table as every folder read again
    assert (sweep / "summary.csv").read_bytes() == incremental


def end_jobs_at_once(sweep, numbers, start):
    """A launcher's worker: wait for the common start, then end each job as the callback does."""
    while time.time() < start:
        time.sleep(0.001)
    for number in numbers:
        update_summary(sweep, sweep / str(number))


def test_jobs_ending_at_once_in_other_processes_each_keep_their_row(tmp_path):
    sweep = tmp_path / "sweep"
    fake_job(sweep / "0", ["optim.lr=0.0"])
    update_summary(sweep, sweep / "0")  # summary.csv lists job 0: from here each job adds only its own row
    for number in range(1, 25):
        fake_job(sweep / str(number), [f"optim.lr={number / 100}"], value=number / 100)
    start = time.time() + 3  # the processes have started by then (spawned: a fresh interpreter each)
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=end_jobs_at_once, args=(sweep, range(1 + w, 25, 4), start), daemon=True)
        for w in range(4)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    rows = read_summary(sweep)
    assert sorted(int(row["job"]) for row in rows) == list(range(25))  # without the lock: rows lost, renames fail
    assert (sweep / SWEEP_LOCK).exists() and not list(sweep.glob(".*.tmp"))


class_text = '''
import shutil
from pathlib import Path
from hydra.experimental.callback import Callback

class SummaryBeforeEnd(Callback):
    """Runs before gdrun's own on_multirun_end (Hydra calls *_end callbacks in reverse order)."""

    def on_multirun_end(self, config, **kwargs):
        sweep = Path(str(config.hydra.sweep.dir))
        shutil.copy(sweep / "summary.csv", sweep / "as-the-jobs-left-it.csv")
'''


@pytest.mark.slow
def test_a_joblib_sweep_of_two_workers_lists_every_job_once(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher", reason='pip install -e ".[parallel]"')
    (tmp_path / "before_end.py").write_text(class_text)
    sweep = tmp_path / "sweep"
    lrs = [0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    result = gdrun_cli(
        "-m",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "+hydra.callbacks.before_end._target_=before_end.SummaryBeforeEnd",
        "data=line",
        "optim.epochs=1",
        "plots=false",
        "threads=1",
        f"optim.lr={','.join(map(str, lrs))}",
        f"hydra.sweep.dir={sweep}",
        env={"PYTHONPATH": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    for table in ("as-the-jobs-left-it.csv", "summary.csv"):  # the workers' rows alone, then completed
        with open(sweep / table) as f:
            rows = list(csv.DictReader(f))
        assert sorted(int(row["job"]) for row in rows) == list(range(len(lrs))), table
        assert sorted(float(row["optim.lr"]) for row in rows) == lrs
        assert {row["status"] for row in rows} == {"completed"}
    assert "gdrun: sweep ended: 9 jobs sweeping optim.lr: 9 completed" in result.stdout


# ---------------------------------------------------------------- groups.csv
def seed_sweep(root):
    """seed=0..3 x optim.lr=0.1,0.01: val accuracies known; lr=0.01's seed 3 diverged."""
    accuracy = {0.1: [0.80, 0.85, 0.90, 0.95], 0.01: [0.50, 0.60, 0.55, None]}
    number = 0
    for lr, values in accuracy.items():
        for seed, value in enumerate(values):
            status = "completed" if value is not None else "diverged"
            fake_job(root / str(number), [f"seed={seed}", f"optim.lr={lr}"], status, value or 0.0)
            number += 1
    return root, accuracy


def test_groups_csv_gives_mean_std_and_t_interval_per_setting(tmp_path):
    sweep, accuracy = seed_sweep(tmp_path / "sweep")
    rows = write_summary(sweep)
    groups = write_groups(sweep, rows)
    header = (sweep / SWEEP_GROUPS).read_text().splitlines()[0].split(",")
    stats = [f"{m}_{s}" for m in ("best_value", *[f"final_{n}" for n in sweep_summary.METRICS]) for s in STATS]
    assert header == ["optim.lr", "n", "jobs", *stats]
    assert [(g["optim.lr"], g["n"], g["jobs"]) for g in groups] == [(0.1, 4, 4), (0.01, 3, 4)]
    for group, values in zip(groups, accuracy.values()):
        done = [v for v in values if v is not None]
        mean, std = statistics.fmean(done), statistics.stdev(done)
        t = {4: 3.182446305284263, 3: 4.302652729911275}[len(done)]  # t_{0.975, n-1}, from tables
        for column in ("best_value", "final_val_accuracy"):
            assert group[f"{column}_mean"] == pytest.approx(mean)
            assert group[f"{column}_std"] == pytest.approx(std)
            assert group[f"{column}_ci95"] == pytest.approx(t * std / math.sqrt(len(done)), rel=1e-6)
        assert group["final_train_loss_mean"] == pytest.approx(1 - mean)
    # lr=0.1 by hand: mean 0.875, std = sqrt(((-.075)^2 + (-.025)^2 + .025^2 + .075^2) / 3) = 0.0645497...
    assert groups[0]["best_value_std"] == pytest.approx(0.06454972243679)
    assert groups[0]["best_value_ci95"] == pytest.approx(3.182446305 * 0.06454972243679 / 2, rel=1e-6)
    on_disk = read_summary(sweep)
    assert [r["status"] for r in on_disk].count("diverged") == 1


def test_t_quantiles_without_scipy_come_from_a_table(monkeypatch):
    monkeypatch.setitem(sys.modules, "scipy.special", None)  # `import scipy.special` now fails
    sweep_summary._scipy_t_975.cache_clear()
    try:
        assert t_975(3) == 3.1824 and t_975(30) == 2.0423 and t_975(31) == 1.96
    finally:
        sweep_summary._scipy_t_975.cache_clear()
    monkeypatch.undo()
    assert t_975(3) == pytest.approx(3.182446305, rel=1e-9)  # scipy's, when it is there


def test_one_seed_per_setting_has_no_spread_and_no_seed_no_groups(tmp_path):
    rows = [
        {"job": 0, "overrides": "seed=0 optim.lr=0.1", "seed": 0, "optim.lr": 0.1},
        {"job": 1, "overrides": "seed=1 optim.lr=0.2", "seed": 1, "optim.lr": 0.2},
    ]
    rows[0].update(status="completed", best_value=1.0)
    rows[1].update(status="diverged", best_value=None)
    groups = group_rows(rows, ["seed", "optim.lr"])
    assert groups[0]["best_value_mean"] == 1.0 and groups[0]["best_value_std"] is None
    assert groups[1]["n"] == 0 and groups[1]["best_value_mean"] is None
    sweep = tmp_path / "sweep"
    fake_job(sweep / "0", ["optim.lr=0.1"])
    fake_job(sweep / "1", ["optim.lr=0.2"])
    assert write_groups(sweep, write_summary(sweep)) is None and not (sweep / SWEEP_GROUPS).exists()


# ---------------------------------------------------------------- the account on the console
def test_the_console_says_how_the_sweep_went_and_where_its_files_are(tmp_path, capsys):
    sweep, _ = seed_sweep(tmp_path / "sweep")
    written = summarize(sweep, plots=False)
    report_sweep(sweep, written, planned=10)
    out = capsys.readouterr().out
    assert "gdrun: sweep ended: 8 jobs sweeping seed × optim.lr: 7 completed, 1 diverged, 2 skipped" in out
    assert "best setting: optim.lr=0.1: mean val_accuracy 87.50% ± 10.27% (95% CI)" in out
    assert f"sweep folder: {sweep}" in out and "summary.csv, groups.csv" in out
    shutil.rmtree(sweep)
    for number in range(4):  # no seeds: the best job
        fake_job(sweep / str(number), [f"optim.lr=0.0{number + 1}"], value=0.1 * number)
    report_sweep(sweep, summarize(sweep, plots=False))
    out = capsys.readouterr().out
    assert "gdrun: sweep ended: 4 jobs sweeping optim.lr: 4 completed" in out
    assert "best: job 3 (optim.lr=0.04): val_accuracy 30.00% at epoch 3, folder 3/" in out


# ---------------------------------------------------------------- pictures
def test_stop_crosses_that_would_cover_each_other_are_one_with_a_count():
    from matplotlib.figure import Figure

    from gdrun.plots.curves import Stop, stop_markers

    ax = Figure().add_subplot()
    ax.plot([0, 10], [0, 10])
    stop_markers(ax, [Stop(5, 5, "C0", "diverged") for _ in range(5)] + [Stop(1, 9, "C1", "diverged")])
    crosses = [line for line in ax.lines if line.get_marker() == "X"]
    assert len(crosses) == 2
    assert [text.get_text() for text in ax.texts] == ["×5"]


def test_seeds_are_averaged_and_many_values_get_a_colour_bar(tmp_path):
    from gdrun.plots import draw_sweep
    from gdrun.plots.sweep_charts import palette, settings_of

    sweep = make_sweep(
        tmp_path,
        [["data=line", "optim.epochs=2", f"seed={seed}", f"optim.lr={lr}"] for lr in (0.05, 0.5) for seed in (0, 1)],
    )
    jobs = read_jobs(sweep)
    keys = swept_keys(jobs)
    assert keys == ["seed", "optim.lr"]
    assert [len(s.jobs) for s in settings_of(jobs, ["optim.lr"])] == [2, 2]
    written = draw_sweep(sweep, jobs, keys)
    assert {p.stem for p in written} == {"learning_curves", "final_metric", "paths"}  # no heat map of seed x lr
    for path in written:
        assert_picture(path)
    assert palette(jobs, "optim.lr").scale is None  # two values: named in a legend

    class Job:
        def __init__(self, lr):
            self.values = {"optim.lr": lr}

    many = palette([Job(10.0**-k) for k in range(8)], "optim.lr")
    assert many.scale is not None and many.scale.log  # eight learning rates: a colour bar, log scale
    colors = [many.color(10.0**-k) for k in range(8)]
    assert len({tuple(np.round(c, 6)) for c in colors}) == 8


def test_gdrun_report_redraws_a_seed_sweep_with_its_groups_and_every_jobs_pictures(tmp_path):
    sweep = make_sweep(tmp_path, [["data=line", "optim.epochs=2", f"seed={seed}"] for seed in (0, 1, 2)])
    assert report([str(sweep)]) == 0
    assert (sweep / SWEEP_GROUPS).is_file() and (sweep / "learning_curves.png").is_file()
    lines = (sweep / SWEEP_GROUPS).read_text().splitlines()
    assert len(lines) == 2 and lines[1].startswith("3,3,")  # one setting: every seed, all completed
    for job in ("0", "1", "2"):
        assert {p.name for p in (sweep / job / "plots").glob("*.png")} == {"cost.png", "loss_surface.png", "fit.png"}


@pytest.mark.slow
def test_a_real_seed_sweep_ends_with_its_account_after_the_jobs_tables(tmp_path):
    sweep = tmp_path / "sweep"
    result = gdrun_cli(
        "-m",
        "hydra/launcher=basic",
        "data=digits",
        "model=logistic",
        "optim.epochs=1",
        "seed=0,1",
        "optim.lr=0.01,0.1",
        f"hydra.sweep.dir={sweep}",
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.rindex("gdrun: sweep ended: 4 jobs sweeping seed × optim.lr: 4 completed") > out.rindex("run folder:")
    assert "best setting: optim.lr=0.1: mean val_accuracy" in out
    assert (
        out.rstrip()
        .splitlines()[-1]
        .strip()
        .startswith("summary.csv, groups.csv, best.json, best_model.pt; pictures: learning_curves.png")
    )
    groups = (sweep / SWEEP_GROUPS).read_text().splitlines()
    assert groups[0].startswith("optim.lr,n,jobs,best_value_mean,") and len(groups) == 3
    for name in ("learning_curves", "final_metric"):
        assert_picture(sweep / f"{name}.png")


def test_a_heat_map_is_drawn_for_a_grid_not_for_a_searchs_scattered_samples():
    from types import SimpleNamespace

    from gdrun.plots.sweep_charts import is_grid

    def jobs(pairs):
        return [SimpleNamespace(values={"optim.lr": lr, "optim.momentum": m}) for lr, m in pairs]

    keys = ["optim.lr", "optim.momentum"]
    grid = [(lr, m) for lr in range(16) for m in range(16)]
    assert is_grid(jobs(grid), keys)  # a 16 x 16 grid: its stability region at a glance
    assert is_grid(jobs(grid[::2]), keys)  # half its pairs still reads as a grid
    assert not is_grid(jobs([(i, i % 3) for i in range(20)]), keys)  # 20 sampled rates: scattered cells
    assert not is_grid(jobs([(lr, m) for lr in range(30) for m in range(2)]), keys)  # more than MAX_GRID values
    assert is_grid(jobs([(i, i % 3) for i in range(6)]), keys)  # a few values each: as before


@pytest.mark.slow  # three short runs, and a worker's imports
def test_a_sweeps_pictures_are_the_same_from_the_worker_and_from_this_process(tmp_path):
    from gdrun.finisher import Finisher

    jobs = [["lab=slope", "optim.epochs=3", f"optim.lr={lr}"] for lr in (0.01, 0.1, 0.3)]
    here = make_sweep(tmp_path / "here", jobs)
    there = tmp_path / "there"
    shutil.copytree(here, there)
    drawn_here = summarize(here, plots=True)
    worker = Finisher()  # forks a child per share where it can (gdrun.finisher)
    try:
        drawn_there = summarize(there, plots=True, worker=worker)
    finally:
        worker.close()
    assert sorted(p.name for p in drawn_there) == sorted(p.name for p in drawn_here)
    assert {"learning_curves.png", "paths.png"} <= {p.name for p in drawn_here}
    for path in drawn_there:
        if path.suffix == ".png":
            assert_picture(path)


def test_a_large_two_key_sweep_shows_its_curves_and_paths_at_the_best_jobs_second_value(tmp_path):
    from gdrun.plots.sweep_charts import best_value_of

    sweep = tmp_path / "sweep"
    settings = [(0.1, 0.0, 0.80), (0.1, 0.9, 0.95), (0.5, 0.0, 0.90), (0.5, 0.9, None)]
    for number, (lr, momentum, value) in enumerate(settings):
        overrides = [f"optim.lr={lr}", f"optim.momentum={momentum}"]
        fake_job(sweep / str(number), overrides, status="completed" if value else "diverged", value=value or 0.0)
    jobs = read_jobs(sweep)
    assert best_value_of(jobs, "optim.momentum") == 0.9  # job 1: the highest val_accuracy; job 3 diverged
    assert best_value_of(jobs, "optim.lr") == 0.1
    for job in jobs:  # a metric where lower is better: the lowest wins
        summary = json.loads((job.run.path / "summary.json").read_text())
        if "best" in summary:
            summary["best"]["metric"] = "train_loss"
            (job.run.path / "summary.json").write_text(json.dumps(summary))
    assert best_value_of(read_jobs(sweep), "optim.momentum") == 0.0  # job 0: value 0.80, the lowest
