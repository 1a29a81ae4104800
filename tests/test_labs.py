"""The lab presets take the notebooks' own steps: every recorded cost and the final parameters
equal the notebook transcriptions' (gdrun.notebooks), and gdrun-labs says so.

Long labs are shortened, the same way on both sides: shallow_net's 1000 epochs of 40 steps.
"""

import csv
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from gdrun.commands.labs import main as labs_command
from gdrun.labs import compare as labs
from gdrun.labs import notebooks as nb
from gdrun.training.datasets.idx import write_mnist_like
from helpers import compose_config, csv_rows, run_in_process

LAB_CONF = Path(__file__).resolve().parents[1] / "conf" / "lab"

# Epochs each lab runs here (None: the notebook's own length).
SHORT = {name: None for name in labs.SYNTHETIC} | {"shallow_net": 30}
# Training accuracy at the notebooks' full length: the 1-D logistic labs classify all 20 points.
ACCURACY = {"logistic_minibatch": 1.0, "logistic_sgd": 1.0, "logistic_high_lr": 1.0, "softmax_1d": 0.975}


def test_every_lab_has_a_preset_that_names_its_source_and_command():
    assert sorted(p.stem for p in LAB_CONF.glob("*.yaml")) == sorted(labs.LABS)
    for name in labs.LABS:
        lines = (LAB_CONF / f"{name}.yaml").read_text().splitlines()
        assert lines[0] == "# @package _global_"
        assert lines[1].startswith(f"# Lab {name}: ") and "docs/course.md" in lines[1]
        assert any(
            line.strip() == f"#   gdrun lab={name}" or line.startswith(f"#   gdrun lab={name} ") for line in lines[:4]
        ), name


@pytest.mark.parametrize("name", labs.SYNTHETIC)
def test_lab_equals_its_notebook(name, tmp_path):
    epochs = SHORT[name]
    run_in_process(tmp_path, f"lab={name}", *([f"optim.epochs={epochs}"] if epochs else []))
    ref = labs.reference(name, epochs)
    lab = labs.LABS[name]

    # The preset's stored initial values are the ones the notebook draws under its seed.
    init = compose_config(f"lab={name}").model.init
    for ours, theirs in lab.params.items():
        expected = ref["initial_params"][theirs]
        stored = torch.tensor(OmegaConf.to_container(init[ours]), dtype=torch.float32).reshape(expected.shape)
        torch.testing.assert_close(stored, expected, rtol=0, atol=0, msg=f"initial {theirs}")

    measured = labs.measure(tmp_path)
    for what, actual, expected in labs.pairs(lab, measured, ref):
        torch.testing.assert_close(actual, expected, **labs.TOLERANCE, msg=lambda m, what=what: f"{name} {what}: {m}")
    if name in ACCURACY:
        assert measured["accuracy"] == ref["accuracy"] == ACCURACY[name]


def test_practice_learning_rate_is_an_override(tmp_path):
    """003's practice cell, `gdrun lab=linreg_bgd optim.lr=0.2`: the command line wins over the lab."""
    run_in_process(tmp_path, "lab=linreg_bgd", "optim.lr=0.2")
    measured, ref = labs.measure(tmp_path), nb.linreg_bgd(lr=0.2)
    torch.testing.assert_close(measured["iteration_costs"], ref["iteration_costs"])
    torch.testing.assert_close(measured["params"]["weight"].reshape(()), ref["params"]["w"])
    assert [r["lr"] for r in csv_rows(tmp_path / "iterations.csv")] == [0.2] * 15


def test_batch_gd_arm_of_the_004_comparison_is_004s_own(tmp_path):
    """`gdrun -m lab=linreg_sgd optim.batch_size=full,1`: the full-batch job is 004's LOSS_BGD run."""
    run_in_process(tmp_path, "lab=linreg_sgd", "optim.batch_size=full")
    measured, ref = labs.measure(tmp_path), nb.linreg_bgd_004()
    torch.testing.assert_close(measured["epoch_costs"][:-1], ref["epoch_costs"])
    torch.testing.assert_close(measured["params"]["bias"].reshape(()), ref["params"]["b"])


def test_mnist_lab_is_the_users_own_spelling():
    lab = OmegaConf.to_container(compose_config("lab=mnist_logistic"), resolve=True)
    spelled = OmegaConf.to_container(compose_config("model=logistic", "data=mnist", "optim.lr=0.001"), resolve=True)
    assert lab == spelled


def test_mnist_found_only_with_its_four_files(tmp_path):
    assert labs.mnist_missing(tmp_path).startswith("skipped: MNIST not found under data.root")
    write_mnist_like(tmp_path, n_train=20, n_test=10, dataset="MNIST")
    assert labs.mnist_missing(tmp_path) is None


def test_gdrun_labs_writes_and_prints_the_table(tmp_path, capsys):
    out = tmp_path / "labs"
    code = labs_command(
        [
            "slope",
            "linreg_sgd",
            "mnist_logistic",
            "--out",
            str(out),
            "--data-root",
            str(tmp_path / "no-data"),
            "--jobs",
            "1",
        ]
    )
    assert code == 0
    rows = list(csv.DictReader(open(out / "labs.csv")))
    assert [(r["lab"], r["status"]) for r in rows] == [
        ("slope", "match"),
        ("linreg_sgd", "match"),
        ("mnist_logistic", "skipped"),
    ]
    assert rows[1]["agreement"].startswith("to the bit")
    assert rows[2]["agreement"].startswith("skipped: MNIST not found under data.root")
    assert (out / "slope" / "iterations.csv").exists()
    markdown = (out / "labs.md").read_text()
    assert "| linreg_sgd | `gdrun lab=linreg_sgd` |" in markdown and "2 of 2 labs match" in markdown
    printed = capsys.readouterr().out
    assert "2 of 2 labs match the notebooks" in printed

    # A second run replaces the lab's run folder instead of appending to its files.
    assert labs_command(["slope", "--out", str(out), "--jobs", "1"]) == 0
    assert len(csv_rows(out / "slope" / "iterations.csv")) == 4
