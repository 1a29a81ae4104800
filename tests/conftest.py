"""Shared test helpers: compose gdrun's real configs, run them in-process or as the real command."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_module

from gdrun import schema
from gdrun.metrics import read_csv

# The labs' tensors are tiny: one thread is faster, and immune to a busy second core.
torch.set_num_threads(1)
schema.register()

REPO = Path(__file__).resolve().parents[1]


def compose_config(*overrides: str):
    """The config `gdrun OVERRIDES` would run, composed by Hydra from the shipped conf/."""
    with initialize_config_module(config_module="gdrun.conf", version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def run_in_process(folder: Path, *overrides: str) -> dict:
    """Run an experiment as `gdrun` would, without a new process (saves torch's import per test)."""
    from gdrun.runner import run

    return run(compose_config("plots=false", *overrides), folder)


def gdrun_cli(*args: str, cwd: Path = REPO, timeout: int = 300, env=None) -> subprocess.CompletedProcess:
    """The real `gdrun` command, via `python -m gdrun`, with one torch thread."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "gdrun", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=env)


@pytest.fixture
def gdrun_main(monkeypatch, capsys):
    """The `gdrun` command in this process (no new torch import): returns (exit code, stdout, stderr)."""
    from gdrun.cli import main

    def call(*args: str):
        monkeypatch.setattr(sys, "argv", ["gdrun", *args])
        monkeypatch.setenv("HYDRA_FULL_ERROR", "0")  # main() sets it to 1; monkeypatch restores it
        try:
            main()
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        out, err = capsys.readouterr()
        return code, out, err

    return call


@pytest.fixture
def run_folder(tmp_path):
    return tmp_path / "run"


def csv_rows(path: Path):
    return read_csv(path)
