"""gdrun from Python: run() as the command runs, load_run() reads the folder back; `import gdrun` stays light."""

import json
import subprocess
import sys

import pytest
import torch

import gdrun
from gdrun.errors import GdrunError


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("api") / "digits"
    summary = gdrun.run(
        ["data=digits", "model=logistic", "optim.epochs=2", "plots=false", "threads=1", f"hydra.run.dir={folder}"]
    )
    return folder, summary


def test_run_takes_the_command_lines_overrides_and_returns_the_summary(digits_run):
    folder, summary = digits_run
    assert summary["folder"] == str(folder) and summary["status"] == "completed"
    assert summary == {**json.loads((folder / "summary.json").read_text()), "folder": str(folder)}
    assert summary["best"]["metric"] == "val_accuracy" and summary["run"]["data"] == "digits"
    # The folder the command leaves: Hydra's record of the run, the log, the metric files.
    for name in (".hydra/config.yaml", ".hydra/overrides.yaml", "gdrun.log", "epochs.csv", "model.pt"):
        assert (folder / name).exists(), name


def test_load_run_gives_back_config_metrics_and_model(digits_run):
    folder, summary = digits_run
    run = gdrun.load_run(folder)
    assert run.config.optim.epochs == 2 and run.config.model.name == "logistic"
    assert run.summary["best"] == summary["best"] and run.status == "completed"
    assert [row["epoch"] for row in run.epochs] == [0, 1, 2]
    assert len(run.iterations) == summary["steps"]
    rng = torch.get_rng_state()
    model = run.model
    assert torch.equal(torch.get_rng_state(), rng)  # building the model left the caller's RNG alone
    torch.testing.assert_close(model.state_dict(), torch.load(folder / "model.pt", weights_only=True))
    best = run.load_model("best")
    saved = torch.load(folder / "checkpoints" / "best.pt", weights_only=False)["model"]
    torch.testing.assert_close(best.state_dict(), saved)
    x = torch.zeros(3, 64)
    assert model(x).shape == (3, 10)


def test_bad_inputs_raise(tmp_path, digits_run):
    with pytest.raises(GdrunError, match="positive"):
        gdrun.run(["optim.lr=-1", f"hydra.run.dir={tmp_path / 'bad'}"])
    assert not (tmp_path / "bad").exists()  # as the command: bad input leaves no run behind
    with pytest.raises(Exception, match="lrr"):
        gdrun.run(["optim.lrr=0.1", f"hydra.run.dir={tmp_path / 'typo'}"])
    with pytest.raises(GdrunError, match="already holds a run"):
        gdrun.run([f"hydra.run.dir={digits_run[0]}"])
    with pytest.raises(GdrunError, match="not a gdrun run folder"):
        gdrun.load_run(tmp_path)
    with pytest.raises(GdrunError, match="choose one of"):
        gdrun.load_run(digits_run[0]).load_model("newest")


@pytest.mark.slow
def test_import_gdrun_is_light():
    code = "import sys, gdrun; gdrun.run; print(sorted(m for m in ('torch', 'hydra') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_run_leaves_the_callers_process_as_it_found_it(tmp_path):
    import os

    torch.manual_seed(1234)
    torch.set_num_threads(2)
    rng, environ = torch.get_rng_state(), dict(os.environ)
    try:
        gdrun.run(["lab=linreg_bgd", "plots=false", "seed=7", f"hydra.run.dir={tmp_path / 'run'}"])
        assert torch.equal(torch.get_rng_state(), rng)  # the run seeded torch with 7 and drew from it
        assert torch.get_num_threads() == 2  # the lab preset set threads=1
        assert dict(os.environ) == environ
    finally:
        torch.set_num_threads(1)


def test_a_saved_model_loads_without_its_data(digits_run, monkeypatch):
    folder, summary = digits_run
    assert summary["model_args"] == {"input_shape": [1, 8, 8], "num_outputs": 10, "output": "identity"}

    def no_data(*args, **kwargs):
        raise AssertionError("the model was built from its data")

    monkeypatch.setattr("gdrun.training.build.build_data", no_data)
    model = gdrun.load_run(folder).load_model("best")
    assert model(torch.zeros(3, 1, 8, 8)).shape == (3, 10)
