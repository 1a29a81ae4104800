"""`gdrun-report`: the same pictures again from a run's files alone, sweeps redrawn, runs compared."""

import shutil
import subprocess
import sys

import pytest
from PIL import Image

from gdrun.commands.report import main
from helpers import assert_picture, gdrun_cli, make_sweep, read_summary, run_in_process


def pictures(folder):
    """File name -> pixel size of every PNG in a folder."""
    return {p.name: Image.open(p).size for p in sorted(folder.glob("*.png"))}


@pytest.mark.slow
def test_report_redraws_a_real_runs_pictures_from_its_files_alone(tmp_path, capsys):
    run = tmp_path / "run"
    result = gdrun_cli(f"hydra.run.dir={run}", "data=logistic_1d", "optim.epochs=3")
    assert result.returncode == 0, result.stderr
    drawn = pictures(run / "plots")
    assert set(drawn) == {"cost.png", "accuracy.png", "loss_surface.png", "fit.png", "confusion.png"}
    shutil.rmtree(run / "plots")
    shutil.rmtree(run / "checkpoints")  # Hydra's record of the config, the CSVs and model.pt are all it needs

    assert main([str(run)]) == 0
    assert pictures(run / "plots") == drawn
    for path in (run / "plots").iterdir():
        assert_picture(path)
    assert "cost.png" in capsys.readouterr().out


@pytest.mark.slow
def test_the_command_starts_without_matplotlib_or_torch():
    code = (
        "import sys\nfrom gdrun.commands.report import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "assert 'matplotlib' not in sys.modules and 'torch' not in sys.modules, 'heavy import at start-up'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "--compare" in result.stdout


def test_report_redraws_a_sweep_root_and_each_job(tmp_path):
    sweep = make_sweep(tmp_path, [["data=line", "optim.epochs=2", f"optim.batch_size={bs}"] for bs in ("full", 20)])
    assert main([str(sweep)]) == 0
    assert [r["optim.batch_size"] for r in read_summary(sweep)] == ["full", "20"]
    assert set(pictures(sweep)) == {"learning_curves.png", "final_metric.png", "paths.png"}
    for job in ("0", "1"):
        assert set(pictures(sweep / job / "plots")) == {"cost.png", "loss_surface.png", "fit.png"}


def test_report_refuses_a_folder_that_is_neither_a_run_nor_a_sweep(tmp_path, capsys):
    assert main([str(tmp_path)]) == 2
    assert "neither a run folder" in capsys.readouterr().err


def test_runs_given_together_are_overlaid_bgd_against_sgd(tmp_path):
    """Lab 004's comparison: batch gradient descent and SGD from the same start, on one picture."""
    for name, batch in (("bgd", "full"), ("sgd", 1)):
        run_in_process(tmp_path / name, "data=line", "optim.epochs=2", f"optim.batch_size={batch}")
    out = tmp_path / "bgd_vs_sgd"
    assert main(["--compare", str(tmp_path / "bgd"), str(tmp_path / "sgd"), "--out", str(out)]) == 0
    assert set(pictures(out)) == {"learning_curves.png", "paths.png"}
    for path in out.iterdir():
        assert_picture(path)
    assert not (tmp_path / "bgd" / "plots").exists()  # comparing does not redraw each run
