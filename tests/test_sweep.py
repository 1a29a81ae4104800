"""A sweep's root: summary.csv with one row per job (failed and diverged ones too) and the sweep's pictures."""

import json
import logging
import shutil

import pytest
from hydra.core.utils import JobReturn, JobStatus
from hydra.types import RunMode
from omegaconf import OmegaConf

from gdrun.plots import draw_sweep
from gdrun.rundir.sweep_summary import read_jobs, swept_keys, write_summary
from gdrun.sweeps import SweepSummary
from helpers import assert_picture, gdrun_cli, make_sweep, read_summary

CRASH_LOG = """[2026-01-01 12:00:00,000][gdrun.runner][INFO] - starting
[2026-01-01 12:00:01,000][gdrun.sweep][ERROR] - the job failed: CUDA out of memory
Traceback (most recent call last):
  File "gdrun/runner.py", line 1, in run
    train()
RuntimeError: CUDA out of memory
"""


@pytest.mark.slow
def test_a_real_two_job_multirun_gets_its_summary_and_pictures(tmp_path):
    result = gdrun_cli("-m", "data=line", "optim.epochs=2", "optim.lr=0.1,0.01", f"hydra.sweep.dir={tmp_path}")
    assert result.returncode == 0, result.stderr
    rows = read_summary(tmp_path)
    assert [r["job"] for r in rows] == ["0", "1"] and [r["optim.lr"] for r in rows] == ["0.1", "0.01"]
    for row in rows:
        assert row["status"] == "completed" and row["error"] == ""
        assert float(row["final_train_loss"]) > 0 and float(row["wall_seconds"]) > 0
        assert row["best_metric"] == "train_loss" and row["overrides"].startswith("data=line optim.epochs=2")
    for name in ("learning_curves", "final_metric", "paths"):
        assert_picture(tmp_path / f"{name}.png")
    assert not (tmp_path / "heatmap.png").exists()  # one swept key: no heat map


def test_failed_and_diverged_jobs_are_listed_and_drawn_as_such(tmp_path):
    sweep = make_sweep(
        tmp_path,
        [
            ["data=line", "optim.epochs=2", f"optim.lr={lr}", f"optim.batch_size={bs}"]
            for lr in (0.1, 0.01)
            for bs in ("full", 5)
        ],
    )
    shutil.rmtree(sweep / "3")  # job 3 crashed before writing anything but Hydra's record and its log
    (sweep / "3" / ".hydra").mkdir(parents=True)
    OmegaConf.save(
        OmegaConf.create(["data=line", "optim.epochs=2", "optim.lr=0.01", "optim.batch_size=5"]),
        sweep / "3" / ".hydra" / "overrides.yaml",
    )
    (sweep / "3" / "gdrun.log").write_text(CRASH_LOG)
    summary = json.loads((sweep / "2" / "summary.json").read_text())
    summary.update(status="diverged", diverged_at_step=2, diverged_cost=float("inf"))
    (sweep / "2" / "summary.json").write_text(json.dumps(summary))

    assert len(write_summary(sweep)) == 4
    on_disk = read_summary(sweep)
    assert [r["status"] for r in on_disk] == ["completed", "completed", "diverged", "failed"]
    assert on_disk[3]["error"] == "RuntimeError: CUDA out of memory"
    assert on_disk[2]["error"].startswith("diverged at step 2")
    assert [(r["optim.lr"], r["optim.batch_size"]) for r in on_disk] == [
        ("0.1", "full"),
        ("0.1", "5"),
        ("0.01", "full"),
        ("0.01", "5"),
    ]

    jobs = read_jobs(sweep)
    assert swept_keys(jobs) == ["optim.lr", "optim.batch_size"]
    written = draw_sweep(sweep, jobs, swept_keys(jobs))
    assert {p.stem for p in written} == {"learning_curves", "final_metric", "heatmap", "paths"}
    for path in written:
        assert_picture(path)


def test_the_callback_records_a_job_that_raised(tmp_path, caplog):
    make_sweep(tmp_path, [["data=line", "optim.epochs=1"]])
    config = OmegaConf.create({"plots": False, "hydra": {"mode": RunMode.MULTIRUN, "sweep": {"dir": str(tmp_path)}}})
    job = JobReturn(status=JobStatus.FAILED, _return_value=RuntimeError("boom"))
    with caplog.at_level(logging.ERROR):
        SweepSummary().on_job_end(config, job)
    assert "boom" in caplog.text  # into the job's gdrun.log, where the summary finds it
    assert [r["status"] for r in read_summary(tmp_path)] == ["completed"]
    single = OmegaConf.create({"plots": False, "hydra": {"mode": RunMode.RUN, "sweep": {"dir": str(tmp_path / "x")}}})
    SweepSummary().on_job_end(single, JobReturn(status=JobStatus.COMPLETED, _return_value=1.0))
    assert not (tmp_path / "x").exists()  # a single run has no sweep to summarize
