"""Helpers the tests share: compose gdrun's real configs, run them in-process or as the real command,
check pictures, make small sweeps. Imported by test modules; test modules never import each other."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf
from PIL import Image

from gdrun.config import schema
from gdrun.rundir.files import read_csv

schema.register()

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def compose_config(*overrides: str):
    """The config `gdrun OVERRIDES` would run, composed by Hydra from the shipped conf/."""
    with initialize_config_module(config_module="gdrun.conf", version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def run_in_process(folder: Path, *overrides: str) -> dict:
    """Run an experiment as `gdrun` would, without a new process (saves torch's import per test), quietly."""
    from gdrun.jobs import run_job

    return run_job(compose_config("plots=false", *overrides), folder, quiet=True)


def gdrun_cli(*args: str, cwd: Path = REPO, timeout: int = 300, env=None, command: str = "gdrun"):
    """A real gdrun command (`python -m gdrun`, or another console script's module), with one torch thread."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "gdrun", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env
    )


def csv_rows(path: Path):
    return read_csv(path)


def assert_picture(path, min_size=(300, 200)):
    """A PNG that opens, is at least `min_size` pixels and is not blank (its pixels vary)."""
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB"), dtype=np.int32)
    assert pixels.shape[1] >= min_size[0] and pixels.shape[0] >= min_size[1], (path, pixels.shape)
    assert pixels.std() > 10, f"{path} is (nearly) blank"
    colours = (pixels[..., 0] << 16) | (pixels[..., 1] << 8) | pixels[..., 2]
    assert len(np.unique(colours)) > 20, f"{path} has almost no colours"


def read_summary(sweep_dir):
    with open(sweep_dir / "summary.csv", newline="") as f:
        return list(csv.DictReader(f))


def make_sweep(root, jobs):
    """A sweep folder as Hydra lays it out (N/ job folders with .hydra/overrides.yaml), from real short runs."""
    for number, overrides in enumerate(jobs):
        folder = root / str(number)
        run_in_process(folder, *overrides)
        (folder / ".hydra").mkdir()
        OmegaConf.save(OmegaConf.create(list(overrides)), folder / ".hydra" / "overrides.yaml")
    return root
