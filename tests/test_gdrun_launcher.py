"""gdrun's own launcher, the default of `gdrun -m`: each job's config composed once, like jobs trained
together, a sweep run again into its folder continued.

Held against Hydra: a derived config is the YAML Hydra composes, and a sweep leaves the job folders
Hydra's basic launcher leaves. Most tests run the real command in this process (gdrun_main); the
ones that start processes are marked slow.
"""

import hashlib
import json
import os
import shlex
import signal
import threading
import time
from pathlib import Path
from typing import Dict, List

import pytest
import yaml
from omegaconf import OmegaConf, open_dict

from gdrun import jobs
from gdrun.rundir.layout import RunPaths
from gdrun.training import runner
from helpers import read_summary, run_in_process

LINE = ["data=line", "optim.epochs=2", "plots=false"]
BASIC = "hydra._internal.core_plugins.basic_launcher.BasicLauncher"


@pytest.fixture
def no_engine(monkeypatch):
    """gdrun.training.vectorised absent: every job runs one at a time."""
    monkeypatch.setattr(jobs, "vectorised_engine", lambda: None)


class FakeEngine:
    """Stands in for gdrun.training.vectorised: groups by batch size, keeps seed=7 to itself, trains each job alone."""

    def __init__(self, fail: bool = False):
        self.groups: List[List[int]] = []
        self.fail = fail

    def group_key(self, cfg):
        return (str(cfg.optim.batch_size),)

    def batch_reason(self, cfg):
        return "seed=7: kept to itself by this test" if cfg.seed == 7 else None

    def train_together(self, cfgs, folders, title):
        self.groups.append([int(folder.name) for folder in folders])
        if self.fail:
            raise RuntimeError("the engine broke")
        return [runner.train(cfg, folder, None) for cfg, folder in zip(cfgs, folders)]


def snapshot(folder: Path) -> Dict[str, tuple]:
    """Every file under `folder`: its bytes' digest and its modification time."""
    return {
        str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def job_folders(sweep: Path) -> List[Path]:
    return sorted((p for p in sweep.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))


def status(folder: Path) -> str:
    return json.loads(RunPaths(folder).summary.read_text())["status"]


def epochs_without_seconds(folder: Path) -> List[List[str]]:
    """epochs.csv without its wall-clock column."""
    rows = [line.split(",") for line in RunPaths(folder).epochs.read_text().splitlines()]
    drop = rows[0].index("seconds")
    return [row[:drop] + row[drop + 1 :] for row in rows]


# ---------------------------------------------------------------- the default, and its configs
def test_gdrun_launcher_and_sweeper_are_the_defaults_and_others_still_selectable():
    from hydra import compose, initialize_config_module

    with initialize_config_module(config_module="gdrun.conf", version_base="1.3"):
        default = compose("config", return_hydra_config=True)
        basic = compose("config", overrides=["hydra/launcher=basic"], return_hydra_config=True)
        joblib = compose("config", overrides=["hydra/launcher=joblib"], return_hydra_config=True)
    assert default.hydra.launcher._target_ == jobs.GDRUN_LAUNCHER
    assert default.hydra.sweeper._target_ == "hydra_plugins.gdrun_launcher.gdrun_launcher.GdrunSweeper"
    assert basic.hydra.launcher._target_ == BASIC
    assert joblib.hydra.launcher._target_.endswith("JoblibLauncher")
    assert default.plots_jobs is False


def test_the_optuna_presets_keep_their_sweeper_with_gdrun_launcher():
    from hydra import compose, initialize_config_module

    with initialize_config_module(config_module="gdrun.conf", version_base="1.3"):
        cfg = compose("config", overrides=["search=classification"], return_hydra_config=True)
    assert cfg.hydra.sweeper._target_ == jobs.GDRUN_OPTUNA_SWEEPER
    assert cfg.hydra.launcher._target_ == jobs.GDRUN_LAUNCHER


GRID = [
    "lab=linreg_sgd",
    "optim=gd,sgd",  # a group choice: each composed by Hydra
    "optim.lr=0.1,0.01",
    "optim.batch_size=1,full",  # an int and a string, in an untyped key
    "surface_range=[1,2]",  # a list: the same in every job
    "optim.epochs=3,${data.epochs}",  # an interpolation
    "data.shuffle=true,false",
    "+hydra.job.env_set.GDRUN_TEST=x",
]


def test_derived_configs_are_the_yaml_hydra_composes(tmp_path):
    """Every job of a grid: the config derived from another job's is Hydra's own composition, to the byte."""
    from hydra import initialize_config_module
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.types import RunMode

    from hydra_plugins.gdrun_launcher._compose import JobComposer

    with initialize_config_module(config_module="gdrun.conf", version_base="1.3", job_name="gdrun"):
        loader = GlobalHydra.instance().config_loader()
        arguments = [*GRID, f"hydra.sweep.dir={tmp_path}", "hydra.job.config.override_dirname.exclude_keys=[optim.lr]"]
        master = loader.load_configuration("config", overrides=arguments, run_mode=RunMode.MULTIRUN)
        parser = OverridesParser.create(config_loader=loader)
        task = [a for a in arguments if not a.lstrip("+").startswith("hydra.")]
        batch = BasicSweeper.split_arguments(parser.parse_overrides(task), None)[0]
        composer = JobComposer(loader, master)
        for number, overrides in enumerate(batch):
            derived = composer.compose(overrides, number)
            composed = loader.load_sweep_config(master, list(overrides))
            with open_dict(composed):
                composed.hydra.job.id = composed.hydra.job.num = number
            assert OmegaConf.to_yaml(derived) == OmegaConf.to_yaml(composed), overrides
    assert len(batch) == 32 and composer.derived == 32 - 2  # composed by Hydra: the first of each optim


def test_a_wrong_type_in_one_job_stops_the_sweep_before_any_job_runs(tmp_path, gdrun_main):
    sweep = tmp_path / "sweep"
    code, _, err = gdrun_main("-m", *LINE, "optim.lr=0.1,0.2,fast", f"hydra.sweep.dir={sweep}")
    assert code == 2 and "optim.lr" in err and "fast" in err and "Traceback" not in err, err
    assert not list(sweep.glob("*/summary.json"))


# ---------------------------------------------------------------- the same folders as Hydra's basic launcher
def run_both(tmp_path, gdrun_main, *grid: str) -> Dict[str, Path]:
    """The grid swept by gdrun's launcher (the default) and by Hydra's basic launcher; each sweep folder."""
    sweeps = {}
    for launcher in ("gdrun", "basic"):
        sweeps[launcher] = tmp_path / launcher
        choice = [] if launcher == "gdrun" else ["hydra/launcher=basic"]
        code, _, err = gdrun_main("-m", *choice, *grid, f"hydra.sweep.dir={sweeps[launcher]}")
        assert code == 0, err
    return sweeps


def assert_same_jobs(ours: Path, basic: Path, exact: bool = True) -> None:
    """The job folders of two sweeps of one grid hold the same files, records and (but for wall-clock times) metrics."""
    assert [p.name for p in job_folders(ours)] == [p.name for p in job_folders(basic)]
    for mine, theirs in zip(job_folders(ours), job_folders(basic)):
        files = {str(p.relative_to(mine)) for p in mine.rglob("*") if p.is_file()}
        assert files == {str(p.relative_to(theirs)) for p in theirs.rglob("*") if p.is_file()}, mine
        for name in ("config.yaml", "overrides.yaml"):
            assert (mine / ".hydra" / name).read_bytes() == (theirs / ".hydra" / name).read_bytes(), (mine, name)
        a, b = (yaml.safe_load((f / ".hydra" / "hydra.yaml").read_text())["hydra"] for f in (mine, theirs))
        assert a["job"] == b["job"] and a["overrides"]["task"] == b["overrides"]["task"]
        assert a["runtime"]["output_dir"] == str(mine) and b["runtime"]["output_dir"] == str(theirs)
        if not RunPaths(theirs).iterations.exists():  # a job that failed before training
            pass
        elif exact:
            assert RunPaths(mine).iterations.read_bytes() == RunPaths(theirs).iterations.read_bytes(), mine
            assert epochs_without_seconds(mine) == epochs_without_seconds(theirs), mine
        else:  # trained together: the same numbers within float rounding
            import numpy as np

            for name in ("iterations.csv", "epochs.csv"):
                x, y = (np.genfromtxt(f / name, delimiter=",", names=True) for f in (mine, theirs))
                for column in x.dtype.names:
                    if column != "seconds":
                        np.testing.assert_allclose(x[column], y[column], rtol=1e-5, atol=1e-7, err_msg=f"{mine}/{name}")
        summaries = [json.loads(RunPaths(f).summary.read_text()) for f in (mine, theirs)]
        assert [s["status"] for s in summaries] == [summaries[1]["status"]] * 2
    assert read_summary(ours)[0].keys() == read_summary(basic)[0].keys()
    assert [r["status"] for r in read_summary(ours)] == [r["status"] for r in read_summary(basic)]


def test_a_grid_one_job_at_a_time_writes_what_hydras_basic_launcher_writes(tmp_path, gdrun_main, no_engine):
    grid = ["lab=linreg_sgd", "optim.epochs=2", "plots=false", "optim.lr=0.1,0.01", "optim.batch_size=1,full"]
    sweeps = run_both(tmp_path, gdrun_main, *grid)
    assert_same_jobs(sweeps["gdrun"], sweeps["basic"])


def test_the_engine_absent_every_job_runs_one_at_a_time_and_it_says_so(tmp_path, gdrun_main, no_engine):
    code, _, err = gdrun_main("-m", *LINE, "optim.lr=0.1,0.01,0.001", f"hydra.sweep.dir={tmp_path / 's'}")
    assert code == 0, err
    assert "3 jobs one at a time: gdrun.training.vectorised, which trains like jobs together, is not there" in err
    assert [r["status"] for r in read_summary(tmp_path / "s")] == ["completed"] * 3


def test_like_jobs_train_together_and_the_console_says_what_was_batched(tmp_path, gdrun_main, monkeypatch):
    engine = FakeEngine()
    monkeypatch.setattr(jobs, "vectorised_engine", lambda: engine)
    grid = [*LINE, "optim.batch_size=1,full", "optim.lr=0.1,-1", "seed=0,7"]
    sweeps = run_both(tmp_path, gdrun_main, *grid)
    # jobs: 0 bs=1 lr=.1 s0, 1 .. s7, 2 bs=1 lr=-1 s0, 3 .. s7, 4 full lr=.1 s0, 5 .. s7, 6 full lr=-1 s0, 7 .. s7;
    # groups [0, 2] and [4, 6], whose jobs 2 and 6 are refused (optim.lr=-1) before the others train
    assert engine.groups == [[0], [4]]
    code, _, err = gdrun_main("-m", *grid, f"hydra.sweep.dir={tmp_path / 'again'}")
    assert code == 0
    said = next(line for line in err.splitlines() if "trained together" in line)
    assert said.startswith("gdrun: 2 jobs trained together (the same data, model, optimizer, batch size and epochs: ")
    assert "line / linear / gd, batch 1, 2 epochs" in said and "batch full" in said
    assert "; 4 one at a time: optim.batch_size=1 optim.lr=0.1 seed=7 (seed=7: kept to itself by this test)" in said
    # A job refused in its group (lr=-1) fails alone, recorded as run_job records it; the others trained.
    failed = sweeps["gdrun"] / "2"
    assert status(failed) == "failed" and "optim.lr" in json.loads(RunPaths(failed).summary.read_text())["error"]
    assert "Traceback" in RunPaths(failed).log.read_text()
    assert_same_jobs(sweeps["gdrun"], sweeps["basic"])
    assert [r["status"] for r in read_summary(sweeps["gdrun"])] == ["completed", "completed", "failed", "failed"] * 2


def test_an_engine_failure_is_recorded_in_every_job_of_its_group_and_the_sweep_goes_on(
    tmp_path, gdrun_main, monkeypatch
):
    monkeypatch.setattr(jobs, "vectorised_engine", lambda: FakeEngine(fail=True))
    sweep = tmp_path / "sweep"
    code, _, err = gdrun_main("-m", *LINE, "optim.lr=0.1,0.01", "seed=0,7", f"hydra.sweep.dir={sweep}")
    assert code == 0, err
    rows = read_summary(sweep)
    assert [r["status"] for r in rows] == ["failed", "completed", "failed", "completed"]
    for job in (sweep / "0", sweep / "2"):
        assert "RuntimeError: the engine broke" in rows[int(job.name)]["error"]
        assert RunPaths(job).log.read_text().count("Traceback") == 1  # its own log, once
        assert (job / ".hydra" / "config.yaml").exists()
    assert f"gdrun: error in {sweep / '0'}: RuntimeError: the engine broke" in err


def test_the_vectorised_engine_gives_the_folders_of_jobs_run_one_at_a_time(tmp_path, gdrun_main):
    if jobs.vectorised_engine() is None:
        pytest.skip("gdrun.training.vectorised is not there yet")
    grid = ["lab=linreg_sgd", "optim.epochs=3", "plots=false", "optim.lr=0.1,0.01,0.02", "seed=0,1"]
    sweeps = run_both(tmp_path, gdrun_main, *grid)
    assert_same_jobs(sweeps["gdrun"], sweeps["basic"], exact=False)


# ---------------------------------------------------------------- continuing a sweep
SWEEP = ["data=line", "optim.batch_size=1", "optim.epochs=30", "checkpoint_min_seconds=0", "plots=false"]


def ctrl_c_once(path: Path, done: threading.Event) -> threading.Thread:
    """Ctrl-C to this process (the command gdrun_main runs) as soon as `path` exists, unless the command ended."""

    def watch() -> None:
        while not done.is_set():
            if path.exists():
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.005)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_a_sweep_run_again_keeps_its_results_resumes_the_interrupted_and_runs_the_failed(
    tmp_path, gdrun_main, monkeypatch, no_engine
):
    sweep = tmp_path / "sweep"
    real_train = runner.train

    def flaky(cfg, folder, resume=None):
        if cfg.optim.lr == 0.02:
            raise RuntimeError("a fault that passes")
        return real_train(cfg, folder, resume)

    # jobs: 0 completes, 1 fails, 2 diverges, 3 is stopped by Ctrl-C after its first checkpoint
    monkeypatch.setattr(runner, "train", flaky)
    done = threading.Event()
    watcher = ctrl_c_once(sweep / "3" / "checkpoints" / "last.pt", done)
    try:
        code, _, err = gdrun_main("-m", *SWEEP, "optim.lr=0.01,0.02,1000,0.03", f"hydra.sweep.dir={sweep}")
    finally:
        done.set()
        watcher.join()
    monkeypatch.setattr(runner, "train", real_train)
    assert code == 130, err
    assert [status(job) for job in job_folders(sweep)] == ["completed", "failed", "diverged", "interrupted"]
    command = next(line for line in err.splitlines() if line.startswith("gdrun: continue this sweep with: "))
    arguments = shlex.split(command.partition(": continue this sweep with: ")[2])
    assert arguments == ["gdrun", "-m", *SWEEP, "optim.lr=0.01,0.02,1000,0.03", f"hydra.sweep.dir={sweep}"]
    kept = {n: snapshot(sweep / n) for n in ("0", "2")}

    code, _, err = gdrun_main(*arguments[1:])  # the command it printed
    assert code == 0, err
    assert (
        f"continuing the sweep in {sweep}: 2 kept (completed or diverged); 1 interrupted, to resume; "
        f"1 failed, to run again" in err
    )
    assert {n: snapshot(sweep / n) for n in ("0", "2")} == kept  # untouched: bytes and times
    assert [status(job) for job in job_folders(sweep)] == ["completed", "completed", "diverged", "completed"]
    assert "a fault that passes" not in RunPaths(sweep / "1").log.read_text()  # cleared, then run again
    rows = read_summary(sweep)
    assert [r["status"] for r in rows] == ["completed", "completed", "diverged", "completed"]
    assert all(r["best_value"] for r in rows if r["status"] == "completed")
    # The resumed job ends as if it had never stopped.
    straight = tmp_path / "straight"
    run_in_process(straight, *SWEEP, "optim.lr=0.03")
    assert RunPaths(sweep / "3").iterations.read_bytes() == RunPaths(straight).iterations.read_bytes()

    # Once complete, the same command again changes nothing.
    everything = snapshot(sweep)
    code, _, err = gdrun_main(*arguments[1:])
    assert code == 0, err
    assert {k: v for k, v in snapshot(sweep).items() if "/" in k} == {k: v for k, v in everything.items() if "/" in k}


def test_another_sweep_into_a_sweeps_folder_is_refused_and_changes_nothing(tmp_path, gdrun_main):
    sweep = tmp_path / "sweep"
    assert gdrun_main("-m", *LINE, "optim.lr=0.1,0.01", f"hydra.sweep.dir={sweep}")[0] == 0
    before = snapshot(sweep)
    again = f"gdrun -m {' '.join(LINE)} optim.lr=0.1,0.01 hydra.sweep.dir={sweep}"
    code, _, err = gdrun_main("-m", *LINE, "optim.lr=0.1,0.5", f"hydra.sweep.dir={sweep}")
    assert code == 2, err
    assert f"hydra.sweep.dir={sweep} already holds a run: the jobs of another sweep" in err
    assert f"continue that sweep with: {again}" in err and "resume=" not in err
    code, _, err = gdrun_main("-m", "hydra/launcher=basic", *LINE, "optim.lr=0.1,0.01", f"hydra.sweep.dir={sweep}")
    assert code == 2 and "gdrun's own launcher (the default) continues a sweep" in err, err
    assert f"continue it with: {again}" in err
    code, _, err = gdrun_main(*LINE, f"hydra.run.dir={sweep}")  # a single run into it
    assert code == 2 and f"continue that sweep with: {again}" in err, err
    assert snapshot(sweep) == before


def test_a_job_folder_made_by_other_overrides_refuses_the_sweep(tmp_path, gdrun_main):
    sweep = tmp_path / "sweep"
    assert gdrun_main("-m", *LINE, "optim.lr=0.1,0.01", f"hydra.sweep.dir={sweep}")[0] == 0
    (sweep / "1" / ".hydra" / "overrides.yaml").write_text("- optim.lr=0.5\n")
    before = snapshot(sweep)
    code, _, err = gdrun_main("-m", *LINE, "optim.lr=0.1,0.01", f"hydra.sweep.dir={sweep}")
    assert code == 2 and "its job 1 was made by optim.lr=0.5" in err, err
    assert {k: v for k, v in snapshot(sweep).items() if "/" in k} == {k: v for k, v in before.items() if "/" in k}


# ---------------------------------------------------------------- pictures
def test_a_sweep_draws_its_own_pictures_not_each_jobs_and_gdrun_report_draws_those(tmp_path, gdrun_main, no_engine):
    from gdrun.commands import report

    sweep = tmp_path / "sweep"
    code, _, err = gdrun_main("-m", "data=line", "optim.epochs=2", "optim.lr=0.1,0.01", f"hydra.sweep.dir={sweep}")
    assert code == 0, err
    assert (sweep / "learning_curves.png").exists()
    assert not any(RunPaths(job).plots.exists() for job in job_folders(sweep))
    assert report.main([str(sweep)]) == 0
    assert all((RunPaths(job).plots / "cost.png").exists() for job in job_folders(sweep))


@pytest.mark.slow
def test_plots_jobs_draws_each_jobs_pictures_after_the_jobs(tmp_path, gdrun_main, no_engine):
    sweep = tmp_path / "sweep"
    code, _, err = gdrun_main(
        "-m", "data=line", "optim.epochs=2", "plots_jobs=true", "optim.lr=0.1,0.01,0.02", f"hydra.sweep.dir={sweep}"
    )
    assert code == 0, err
    assert "drawing the pictures of 3 jobs" in err
    for job in job_folders(sweep):
        assert {p.name for p in RunPaths(job).plots.iterdir()} >= {"cost.png", "fit.png", "loss_surface.png"}
    config = yaml.safe_load((sweep / "0" / ".hydra" / "config.yaml").read_text())
    assert config["plots"] is True and config["plots_jobs"] is True


@pytest.mark.slow
def test_an_installed_wheel_ships_the_launcher_and_sweeps_with_it(tmp_path):
    """`pip install gdrun` (a wheel, not the editable repo): Hydra finds gdrun's launcher in any directory."""
    import subprocess
    import sys

    from helpers import REPO

    wheel_dir, target, work = tmp_path / "wheel", tmp_path / "site", tmp_path / "elsewhere"
    work.mkdir()
    pip = [sys.executable, "-m", "pip"]
    build = [*pip, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheel_dir), str(REPO)]
    subprocess.run(build, check=True, capture_output=True)
    wheel = next(wheel_dir.glob("gdrun-*.whl"))
    install = [*pip, "install", "--no-deps", "-q", "--target", str(target), str(wheel)]
    subprocess.run(install, check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": str(target), "OMP_NUM_THREADS": "1"}
    where = "import hydra_plugins.gdrun_launcher as p; print(p.__file__)"
    found = subprocess.run([sys.executable, "-c", where], cwd=work, env=env, capture_output=True, text=True)
    assert found.stdout.startswith(str(target)), found
    sweep = work / "sweep"
    result = subprocess.run(
        [sys.executable, "-m", "gdrun", "-m", *LINE, "optim.lr=0.1,0.01", f"hydra.sweep.dir={sweep}"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    hydra = yaml.safe_load((sweep / "1" / ".hydra" / "hydra.yaml").read_text())["hydra"]
    assert hydra["launcher"]["_target_"] == jobs.GDRUN_LAUNCHER
    assert [r["status"] for r in read_summary(sweep)] == ["completed", "completed"]


@pytest.mark.slow
def test_ctrl_c_to_a_sweep_prints_the_command_that_continues_it(tmp_path, gdrun_main):
    """A real command stopped by Ctrl-C (its jobs trained together when the engine is there), then continued."""
    import subprocess
    import sys

    sweep = tmp_path / "sweep"
    longer = ["optim.epochs=100" if a.startswith("optim.epochs=") else a for a in SWEEP]
    arguments = ["-m", *longer, "optim.lr=0.01,0.02,0.03", f"hydra.sweep.dir={sweep}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "gdrun", *arguments], cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 120
        while not list(sweep.glob("*/checkpoints/last.pt")):
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.02)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err
    command = next(line for line in err.splitlines() if line.startswith("gdrun: continue this sweep with: "))
    assert shlex.split(command.partition(" with: ")[2]) == ["gdrun", *arguments]
    assert "interrupted" in {status(job) for job in job_folders(sweep)}
    code, _, err = gdrun_main(*arguments)
    assert code == 0, err
    assert [r["status"] for r in read_summary(sweep)] == ["completed"] * 3
