"""Ctrl-C and SIGTERM sent to a sweep, under each launcher: the jobs in flight save and say so.

The sweep stops with 128 + the signal; every job that started has summary.json and its row in
summary.csv saying `interrupted` (or `completed`), no job starts after the signal, no worker
outlives the command, and what it prints is what happened. A stop during start-up claims no
checkpoint. The tests marked slow start real sweeps; the others send the signal to pytest itself.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from gdrun import jobs, sweeps
from gdrun.rundir.layout import RunPaths
from gdrun.training import signals
from helpers import read_summary

# Long enough to be caught mid-training (an epoch is 360 steps, ~0.4 s; last.pt after each), short enough to resume.
JOBS = ["data=digits", "model=mlp", "optim.batch_size=4", "optim.epochs=6", "checkpoint_min_seconds=0", "plots=false"]
JOBLIB = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
# launcher: (its plugin's module, its options, the jobs); submitit_local starts every job at once: two, for two cores.
LAUNCHERS = {
    "basic": (None, ["hydra/launcher=basic"], "seed=0,1,2,3"),
    "joblib": ("hydra_plugins.hydra_joblib_launcher", JOBLIB, "seed=0,1,2,3"),
    "submitit_local": ("hydra_plugins.hydra_submitit_launcher", ["hydra/launcher=submitit_local"], "seed=0,1"),
}


def start(cwd: Path, *args: str) -> subprocess.Popen:
    """`gdrun ARGS` as a process in a session of its own (so whatever it leaves can be found and ended)."""
    return subprocess.Popen(
        [sys.executable, "-m", "gdrun", *args],
        cwd=cwd,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def wait_for(condition, seconds: float, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert process.poll() is None, f"gdrun ended first: {process.communicate()}"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def processes_in(folder: Path):
    """Live processes started in `folder` or naming it: the command's workers, whichever launcher."""
    try:
        import psutil
    except ImportError:
        psutil = None
    found = []
    if psutil is not None:
        for process in psutil.process_iter(["pid", "cmdline", "cwd", "status"]):
            info = process.info
            if info["status"] != psutil.STATUS_ZOMBIE and (
                str(folder) in " ".join(info["cmdline"] or ()) or (info["cwd"] or "").startswith(str(folder))
            ):
                found.append((info["pid"], " ".join(info["cmdline"] or ())))
        return found
    for entry in Path("/proc").iterdir():
        try:
            if not entry.name.isdigit() or (entry / "stat").read_text().rpartition(")")[2].split()[0] == "Z":
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            cwd = os.readlink(entry / "cwd")
        except OSError:  # ended meanwhile, or not ours to read
            continue
        if str(folder) in cmdline or cwd.startswith(str(folder)):
            found.append((int(entry.name), cmdline))
    return found


def end_all(process: subprocess.Popen, folder: Path) -> None:
    """Whatever a failed test leaves running: the command's session, and anything started in `folder`."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
    for pid, _ in processes_in(folder):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def stop_a_sweep(tmp_path: Path, launcher: str, signum: int):
    """Start a sweep, send `signum` to the command once a job has saved a checkpoint; (exit status, stderr, jobs)."""
    module, options, seeds = LAUNCHERS[launcher]
    if module:
        pytest.importorskip(module, reason='the launcher extras: pip install -e ".[parallel,slurm]" (make test does)')
    sweep = tmp_path / "sweep"
    process = start(tmp_path, "-m", *options, *JOBS, seeds, f"hydra.sweep.dir={sweep}")
    try:
        wait_for(lambda: any(sweep.glob("*/checkpoints/last.pt")), 90, process)
        process.send_signal(signum)
        _, err = process.communicate(timeout=60)
        # No worker outlives the command (resource trackers take a moment to see it gone).
        deadline = time.monotonic() + 10
        while processes_in(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not processes_in(tmp_path), f"left running: {processes_in(tmp_path)}"
    finally:
        end_all(process, tmp_path)
    jobs = sorted((p for p in sweep.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    return process.returncode, err, jobs


def check_stopped_sweep(code: int, err: str, jobs, signum: int):
    """What every launcher leaves after a stop; returns the interrupted jobs that can be resumed."""
    assert code == 128 + signum, err
    statuses = {job.name: json.loads((job / "summary.json").read_text())["status"] for job in jobs}
    assert set(statuses.values()) <= {"interrupted", "completed"} and "interrupted" in statuses.values(), statuses
    assert {row["job"]: row["status"] for row in read_summary(jobs[0].parent)} == statuses
    resumable = [job for job in jobs if statuses[job.name] == "interrupted" and (job / "checkpoints/last.pt").exists()]
    assert resumable, statuses
    name = signal.Signals(signum).name
    assert "second Ctrl-C" not in err and "Traceback" not in err, err
    assert f"sweep stopped ({name}) after its jobs in flight saved their checkpoints" in err, err
    for job in resumable:
        assert f"go on with: gdrun resume={job}" in err, err
    return resumable


@pytest.mark.slow
@pytest.mark.parametrize("launcher", list(LAUNCHERS))
def test_ctrl_c_stops_a_sweep_after_its_jobs_in_flight_save_and_they_resume(tmp_path, gdrun_main, launcher):
    code, err, jobs = stop_a_sweep(tmp_path, launcher, signal.SIGINT)
    resumable = check_stopped_sweep(code, err, jobs, signal.SIGINT)
    if launcher != "submitit_local":  # four jobs, at most two in flight: the others never started
        assert len(jobs) < 4
    code, _, err = gdrun_main(f"resume={resumable[0]}")
    assert code == 0, err
    assert json.loads((resumable[0] / "summary.json").read_text())["status"] == "completed"


@pytest.mark.slow
@pytest.mark.parametrize("launcher", list(LAUNCHERS))
def test_sigterm_stops_a_sweep_and_its_workers(tmp_path, launcher):
    code, err, jobs = stop_a_sweep(tmp_path, launcher, signal.SIGTERM)
    check_stopped_sweep(code, err, jobs, signal.SIGTERM)


def torch_loaded(pid: int) -> bool:
    return "libtorch" in Path(f"/proc/{pid}/maps").read_text()


def holds_sigterm(pid: int) -> bool:
    """gdrun's main() holds SIGTERM: the command is past Python's imports and in charge of its signals."""
    status = Path(f"/proc/{pid}/status").read_text()
    caught = next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(caught, 16) & (1 << (signal.SIGTERM - 1)))


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the process's state from /proc")
@pytest.mark.parametrize("moment", ["composing", "setting up the job"])
def test_ctrl_c_during_start_up_claims_no_checkpoint(tmp_path, moment):
    run = tmp_path / "run"
    process = start(tmp_path, *JOBS, f"hydra.run.dir={run}")
    try:
        if moment == "composing":  # ~0.3 s in: Hydra composing the config
            wait_for(lambda: holds_sigterm(process.pid), 30, process)
        else:  # Hydra has made the run folder; torch is about to be imported
            wait_for(lambda: (run / ".hydra").exists(), 30, process)
        assert not torch_loaded(process.pid)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        end_all(process, tmp_path)
    assert process.returncode == 130, err
    assert "nothing was saved" in err and "Traceback" not in err, err
    assert "go on with" not in err and "last checkpoint" not in err and "second Ctrl-C" not in err, err
    assert not (run / "checkpoints").exists()


def launch(sweep_dir: Path, launcher_target: str) -> None:
    """What Hydra does at a sweep's start, as far as a stop is concerned (in this process, as the command)."""
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep_dir)}, "launcher": {"_target_": launcher_target}}})
    sweeps.SweepSummary().on_multirun_start(config)


def test_a_job_set_up_after_a_stop_never_starts(tmp_path, capsys):
    """Hydra made the next job's folder as SIGTERM came (between jobs): the job does not start, its folder goes."""
    done, folder = tmp_path / "sweep" / "0", tmp_path / "sweep" / "1"
    for job in (done, folder):
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "overrides.yaml").write_text(f"- seed={job.name}\n")
        RunPaths(job).log.touch()
    RunPaths(done).summary.write_text('{"status": "completed"}')
    signals.hold_for_command()
    try:
        launch(tmp_path / "sweep", "hydra._internal.core_plugins.basic_launcher.BasicLauncher")
        signal.raise_signal(signal.SIGTERM)  # a request: nothing in flight here
        assert jobs.hydra_task(OmegaConf.create({}), folder, in_sweep=True) is None
        assert not folder.exists()
        assert sweeps.report_stop(launch_ended=True)
    finally:
        signals.release()
    err = capsys.readouterr().err
    assert "sweep stopped (SIGTERM) between jobs; no other job starts" in err, err
    assert "lists the jobs that started: 1 completed" in err, err


def test_a_sweep_on_a_cluster_is_left_to_run_and_the_command_stops_at_once(tmp_path, capsys):
    signals.hold_for_command()
    try:
        launch(tmp_path / "sweep", "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher")
        with pytest.raises(signals.Interrupted):  # the command cannot wait for jobs it does not reach
            signal.raise_signal(signal.SIGINT)
        assert sweeps.report_stop(launch_ended=False)
    finally:
        signals.release()
    err = capsys.readouterr().err
    assert "go on there" in err and "scancel" in err, err
