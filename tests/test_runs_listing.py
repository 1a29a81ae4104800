"""At the shell: `gdrun-runs` lists past runs newest first, and Hydra's completion knows gdrun's options."""

import os
import shutil
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from helpers import run_in_process

pytestmark = pytest.mark.slow  # every test here starts gdrun as a process


def gdrun_runs(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gdrun.commands.runs", *args], capture_output=True, text=True)


def age(folder: Path, when: float) -> None:
    """Give every file of a run folder the same modification time, `when` (seconds since the epoch)."""
    for path in folder.rglob("*"):
        os.utime(path, (when, when))


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """Three runs: two completed (older, newer) and one that failed without a summary.json."""
    root = tmp_path_factory.mktemp("outputs")
    run_in_process(root / "2026-01-01" / "old", "optim.epochs=2", "optim.lr=0.01")
    run_in_process(root / "multirun" / "2026-01-02" / "0", "optim.epochs=2")
    failed = root / "multirun" / "2026-01-02" / "1"
    (failed / ".hydra").mkdir(parents=True)
    (failed / ".hydra" / "config.yaml").write_text("seed: 0\n")
    (failed / ".hydra" / "overrides.yaml").write_text("- optim.lr=-1\n")
    (failed / "gdrun.log").write_text("[2026-01-02 10:00:00,000][gdrun][ERROR] - optim.lr must be positive\n")
    age(root / "2026-01-01" / "old", 1_767_261_600)  # 2026-01-01 10:00 UTC
    age(root / "multirun" / "2026-01-02" / "0", 1_767_348_000)
    age(failed, 1_767_348_060)
    return root


def test_lists_runs_newest_first_with_status_best_metric_and_overrides(outputs):
    result = gdrun_runs(str(outputs))
    assert result.returncode == 0, result.stderr
    header, *lines = result.stdout.splitlines()
    assert header.split() == ["TIME", "STATUS", "BEST", "FOLDER", "OVERRIDES"]
    # The sweep's job refused for optim.lr=-1 is not a run of the user's: left out, and said so.
    assert [line.split()[2] for line in lines] == ["completed", "completed"]
    assert "1 refused before training, listed with --all" in result.stderr
    folders = ["multirun/2026-01-02/0", "2026-01-01/old"]
    assert [next(w for w in line.split() if "/" in w) for line in lines] == folders
    assert "train_loss 1.055" in lines[0]  # the default line lab after two epochs: its best training loss
    header, *lines = gdrun_runs(str(outputs), "--all").stdout.splitlines()
    assert [line.split()[2] for line in lines] == ["failed", "completed", "completed"]
    assert lines[0].endswith("optim.lr=-1")  # the overrides the job was started with


def test_filters_by_status(outputs):
    only_failed = gdrun_runs(str(outputs), "--status", "failed").stdout.splitlines()
    assert len(only_failed) == 2 and "multirun/2026-01-02/1" in only_failed[1]
    both = gdrun_runs(str(outputs), "--status", "failed,completed").stdout.splitlines()
    assert len(both) == 4
    none = gdrun_runs(str(outputs), "--status", "diverged")
    assert none.stdout == "" and "no runs" in none.stderr
    missing = gdrun_runs(str(outputs / "nowhere"))
    assert missing.returncode == 2 and "no folder" in missing.stderr


def test_gdrun_runs_is_a_console_script():
    scripts = {e.name: e.value for e in entry_points(group="console_scripts")}
    assert scripts.get("gdrun-runs") == "gdrun.commands.runs:main"


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_hydra_shell_completion_completes_gdruns_options():
    # The README's line, `eval "$(gdrun -sc install=bash)"`, then a Tab after `gdrun logger=t`.
    script = (
        'eval "$(gdrun -sc install=bash)"; COMP_LINE="gdrun logger=t"; COMP_POINT=${#COMP_LINE}; '
        'COMP_CWORD=1; hydra_bash_completion; echo "${COMPREPLY[@]}"'
    )
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert result.stdout.split() == ["logger=tensorboard"], result.stderr
