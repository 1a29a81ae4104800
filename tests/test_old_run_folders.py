"""Run folders written by gdrun 0.1.0 (tests/fixtures/v0_1_0, whose configs name the old flat targets)
still work: eval=, resume= (an interrupted one completes, a completed one trains further),
gdrun.load_run(...).model and gdrun-report."""

import json
import shutil

import pytest
import torch

import gdrun
from gdrun.commands.report import main as report
from helpers import FIXTURES, csv_rows

V010 = FIXTURES / "v0_1_0"


@pytest.fixture
def old(tmp_path):
    """A copy of the 0.1.0 folders (resume appends to a folder; the fixtures stay as they are)."""
    shutil.copytree(V010, tmp_path / "v0_1_0")
    return tmp_path / "v0_1_0"


def test_the_fixtures_name_the_old_targets():
    assert "_target_: gdrun.models.linear" in (V010 / "completed" / ".hydra" / "config.yaml").read_text()
    assert "_target_: gdrun.datasets.images.digits" in (V010 / "interrupted" / ".hydra" / "config.yaml").read_text()


@pytest.mark.parametrize("name", ["completed", "interrupted", "lab_slope", "sweep/0"])
def test_eval_of_an_old_folder(old, gdrun_main, name):
    code, out, err = gdrun_main(f"eval={old / name}")
    assert code == 0, err
    assert "train" in out


def test_resume_completes_an_interrupted_old_run(old, gdrun_main):
    folder = old / "interrupted"
    code, out, err = gdrun_main(f"resume={folder}", "plots=false")
    assert code == 0, err
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs"] == 6
    steps = [row["step"] for row in csv_rows(folder / "iterations.csv")]
    assert steps == list(range(1, 6 * 360 + 1))  # 1437 training digits in batches of 4, six epochs
    assert [row["epoch"] for row in csv_rows(folder / "epochs.csv")] == list(range(7))


def test_resume_trains_a_completed_old_run_further(old, gdrun_main):
    folder = old / "completed"
    code, _, err = gdrun_main(f"resume={folder}", "optim.epochs=8", "plots=false")
    assert code == 0, err
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs"] == 8 and summary["steps"] == 8
    assert summary["model_args"] == {"input_shape": [1], "num_outputs": 1, "output": "identity"}


@pytest.mark.parametrize("name", ["completed", "interrupted", "lab_slope", "sweep/1"])
def test_load_run_builds_the_model_of_an_old_folder(old, name):
    run = gdrun.load_run(old / name)
    model = run.model
    state = torch.load(old / name / "model.pt", weights_only=True)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, state[key])
    assert not model.training


def test_report_redraws_old_runs_and_sweeps(old, capsys):
    assert report([str(old / "completed"), str(old / "sweep"), str(old / "lab_slope")]) == 0
    assert (old / "completed" / "plots" / "cost.png").is_file()
    assert (old / "sweep" / "learning_curves.png").is_file()
    assert (old / "sweep" / "0" / "plots" / "cost.png").is_file()
    assert report(["--compare", str(old / "sweep"), "--out", str(old / "cmp")]) == 0
    assert (old / "cmp" / "learning_curves.png").is_file()
