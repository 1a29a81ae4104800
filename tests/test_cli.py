"""The real command: the default run, a two-job sweep, --cfg, --help, and errors without tracebacks."""

import json

import pytest

from helpers import gdrun_cli

pytestmark = pytest.mark.slow  # every test here starts gdrun as a process


def test_default_run_offline(tmp_path):
    result = gdrun_cli(f"hydra.run.dir={tmp_path}", "plots=false")
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["final"]["train_loss"] < 0.05
    assert "run folder:" in result.stdout and "Traceback" not in result.stdout + result.stderr
    assert (tmp_path / "gdrun.log").exists()


def test_two_job_multirun(tmp_path):
    result = gdrun_cli("-m", "optim.lr=0.1,0.01", "optim.epochs=2", "plots=false", f"hydra.sweep.dir={tmp_path}")
    assert result.returncode == 0, result.stderr
    jobs = sorted(p for p in tmp_path.iterdir() if p.is_dir() and p.name.isdigit())
    assert [p.name for p in jobs] == ["0", "1"]
    lrs = [json.loads((p / "summary.json").read_text())["run"]["lr"] for p in jobs]
    assert lrs == [0.1, 0.01]


def test_cfg_job_and_help_answer_without_running(tmp_path):
    cfg = gdrun_cli("--cfg", "job", "data=mnist", "model=logistic")
    assert cfg.returncode == 0 and "dataset: MNIST" in cfg.stdout
    help_ = gdrun_cli("--help")
    assert help_.returncode == 0 and "mnist" in help_.stdout and "sgd" in help_.stdout


def test_unknown_key_is_refused_before_any_run(tmp_path):
    result = gdrun_cli("optim.lrr=0.1", f"hydra.run.dir={tmp_path / 'run'}")
    assert result.returncode != 0
    assert "lrr" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()
