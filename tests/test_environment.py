"""summary.json's `environment`: what produced the run (versions, device, host, command, git commit); and
`gdrun-report --compare`'s table of the config keys that differ between runs."""

import platform
import socket
import subprocess
from importlib.metadata import version

from gdrun.commands import report
from gdrun.rundir.environment import COMMAND_VARIABLE, PACKAGES, git_state
from helpers import run_in_process


def git(repo, *args):
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def test_the_summary_records_the_software_machine_command_and_commit(tmp_path, monkeypatch):
    repo = tmp_path / "project"
    repo.mkdir()
    (repo / "train.py").write_text("print('mine')\n")
    git(repo, "init", "-q")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "start")
    git(repo, "add", "train.py")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "code")
    monkeypatch.chdir(repo)
    monkeypatch.setenv(COMMAND_VARIABLE, "gdrun optim.epochs=1")
    summary = run_in_process(repo / "outputs" / "run", "optim.epochs=1")
    env = summary["environment"]
    assert {name: env[name] for name in PACKAGES} == {name: version(name) for name in PACKAGES}
    assert env["python"] == platform.python_version() and env["host"] == socket.gethostname()
    assert env["device"].startswith("cpu (") and env["command"] == "gdrun optim.epochs=1"
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    # The run's own files are untracked: the tree is clean.
    assert env["git"] == {"commit": head, "dirty": False}
    (repo / "train.py").write_text("print('changed')\n")
    assert git_state.__wrapped__(str(repo)) == {"commit": head, "dirty": True}


def test_outside_a_git_tree_there_is_no_commit(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run_in_process(tmp_path / "run", "optim.epochs=1")["environment"]["git"] is None


def test_compare_prints_the_config_keys_that_differ(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    run_in_process(a, "optim.lr=0.1", "optim.epochs=2")
    run_in_process(b, "optim.lr=0.5", "optim.epochs=2", "seed=3")
    capsys.readouterr()
    assert report.main(["--compare", str(a), str(b), "--out", str(tmp_path / "cmp")]) == 0
    out = capsys.readouterr().out
    assert "config keys that differ" in out
    header = next(line for line in out.splitlines() if "optim.lr" in line)
    assert "seed" in header and "data.name" not in out and "optim.epochs" not in header
    rows = {line.split()[1]: line for line in out.splitlines() if line.startswith("│ a ") or line.startswith("│ b ")}
    assert "0.1" in rows["a"] and "0.5" in rows["b"] and "3" in rows["b"]
