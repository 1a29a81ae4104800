"""Fixtures shared by the tests; plain helpers are in helpers.py."""

import sys

import pytest
import torch

# The labs' tensors are tiny: one thread is faster, and immune to a busy second core.
torch.set_num_threads(1)


@pytest.fixture
def gdrun_main(monkeypatch, capsys):
    """The `gdrun` command in this process (no new torch import): returns (exit code, stdout, stderr)."""
    from gdrun.commands.gdrun import main

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
