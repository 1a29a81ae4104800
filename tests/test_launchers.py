"""Sweeps through Hydra's launcher plugins: joblib's processes, submitit's local jobs, the SLURM preset.

Every launcher leaves the run-folder contract in each job folder and the sweep summary at the
sweep's root; a failed job's traceback is in its own folder, which is inside the sweep folder.
"""

import json
from pathlib import Path

import pytest

from gdrun.rundir.reader import RunFolder
from helpers import gdrun_cli

pytestmark = pytest.mark.slow  # every test here starts gdrun as a process

# What every job folder holds, whichever launcher ran it (README, "The run folder").
CONTRACT = (
    "summary.json",
    "iterations.csv",
    "epochs.csv",
    "model.pt",
    "checkpoints/last.pt",
    "checkpoints/best.pt",
    "gdrun.log",
    ".hydra/config.yaml",
    ".hydra/overrides.yaml",
)
LAUNCHERS = {
    "joblib": ("hydra_plugins.hydra_joblib_launcher", ["hydra.launcher.n_jobs=2"]),
    "submitit_local": ("hydra_plugins.hydra_submitit_launcher", []),
}


@pytest.fixture(scope="module", params=list(LAUNCHERS))
def sweep(request, tmp_path_factory):
    """A two-job sweep (two learning rates) run by the launcher, as the README shows it."""
    module, options = LAUNCHERS[request.param]
    pytest.importorskip(module, reason='the launcher extras: pip install -e ".[parallel,slurm]" (make test does)')
    folder = tmp_path_factory.mktemp(request.param) / "sweep"
    result = gdrun_cli(
        "-m",
        f"hydra/launcher={request.param}",
        *options,
        "optim.lr=0.1,0.01",
        "optim.epochs=2",
        "plots=false",
        f"hydra.sweep.dir={folder}",
    )
    assert result.returncode == 0, result.stderr
    return request.param, folder


def test_every_job_leaves_the_run_folder_contract(sweep):
    launcher, folder = sweep
    jobs = sorted(p for p in folder.iterdir() if p.is_dir() and p.name.isdigit())
    assert [p.name for p in jobs] == ["0", "1"]
    for job in jobs:
        missing = [name for name in CONTRACT if not (job / name).exists()]
        assert not missing, f"{launcher} job {job.name} lacks {missing}"
    summaries = [json.loads((job / "summary.json").read_text()) for job in jobs]
    assert [(s["status"], s["run"]["lr"]) for s in summaries] == [("completed", 0.1), ("completed", 0.01)]
    if launcher == "submitit_local":  # what each job printed, beside the jobs
        printed = [p.read_text() for p in folder.glob(".submitit/*/*_0_log.out")]
        assert len(printed) == 2 and all("run folder:" in text for text in printed)


def test_every_launcher_writes_the_sweep_summary(sweep):
    launcher, folder = sweep
    lines = (folder / "summary.csv").read_text().splitlines()
    assert len(lines) == 3 and all(",completed," in line for line in lines[1:]), launcher


def test_a_failed_jobs_traceback_is_in_the_sweep_folder(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason='pip install -e ".[slurm]"')
    folder = tmp_path / "sweep"
    gdrun_cli("-m", "hydra/launcher=submitit_local", "optim.lr=-1", "plots=false", f"hydra.sweep.dir={folder}")
    job = RunFolder(folder / "0")
    assert job.status == "failed" and "optim.lr" in job.error
    assert "Traceback (most recent call last)" in (job.path / "gdrun.log").read_text()


def test_slurm_preset_becomes_the_sbatch_options_it_documents(tmp_path, monkeypatch):
    """The preset's settings reach sbatch; nothing is submitted (submitit needs `srun` on PATH to start)."""
    submitit = pytest.importorskip("submitit", reason='pip install -e ".[slurm]"')
    from hydra import compose, initialize_config_module
    from hydra.utils import instantiate

    fake_srun = tmp_path / "bin" / "srun"
    fake_srun.parent.mkdir()
    fake_srun.write_text("#!/bin/sh\nexit 1\n")
    fake_srun.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake_srun.parent}:{Path('/usr/bin')}")
    with initialize_config_module(config_module="gdrun.conf", version_base="1.3"):
        cfg = compose(
            config_name="config",
            return_hydra_config=True,
            overrides=[
                "hydra/launcher=slurm",
                "hydra.launcher.partition=gpu",
                "hydra.launcher.gpus_per_node=1",
                f"hydra.sweep.dir={tmp_path / 'sweep'}",
            ],
        )
    launcher = instantiate(cfg.hydra.launcher)
    launcher.setup(hydra_context=None, task_function=None, config=cfg)
    executors = []

    def capture(executor, fn, *args):
        executors.append(executor)
        raise StopIteration  # stop before anything is submitted

    monkeypatch.setattr(submitit.AutoExecutor, "map_array", capture)
    with pytest.raises(StopIteration):
        launcher.launch([["optim.lr=0.1"]], initial_job_idx=0)
    sbatch = executors[0]._executor._make_submission_file_text("gdrun", "uid")
    for option in (
        "--partition=gpu",
        "--gpus-per-node=1",
        "--cpus-per-task=2",
        "--mem=4GB",
        "--time=60",
        "--job-name=gdrun",
        f"--output={tmp_path / 'sweep'}/.submitit/",
    ):
        assert f"#SBATCH {option}" in sbatch
