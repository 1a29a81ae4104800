"""The epoch loop's branches, in-process and fast: completed, diverged at its step, interrupted mid-epoch."""

import json
import signal

from gdrun.training.outputs import Outputs, Progress
from gdrun.training.parts import build
from gdrun.training.runner import epoch_loop, output_settings, start
from gdrun.training.signals import StopRequest
from helpers import compose_config, csv_rows, run_in_process


def loop(folder, stop, *overrides):
    """build -> start -> epoch_loop, as runner.train does, with a StopRequest we control."""
    cfg = compose_config("plots=false", *overrides)
    parts = build(cfg)
    progress = Progress()
    outputs = Outputs(folder, parts, output_settings(cfg))
    with outputs:
        start(parts, progress, outputs, cfg.diverge_factor)
        status = epoch_loop(parts, progress, outputs, stop)
    return status, progress, outputs


def test_a_divergent_step_ends_the_loop_before_its_update(tmp_path):
    summary = run_in_process(tmp_path, "lab=linreg_bgd", "optim.lr=10")
    assert summary["status"] == "diverged"
    steps = csv_rows(tmp_path / "iterations.csv")
    assert steps[-1]["step"] == summary["diverged_at_step"] < 15
    assert not (steps[-2]["loss"] >= 1e6 * csv_rows(tmp_path / "epochs.csv")[0]["train_loss"])
    assert not (tmp_path / "model.pt").exists()  # NaN weights are not saved; the last good checkpoint is


def test_a_stop_request_ends_the_epoch_after_the_current_step_and_saves_a_checkpoint(tmp_path):
    stop = StopRequest()
    stop.signum = signal.SIGINT  # as if Ctrl-C had come before the first step
    status, progress, outputs = loop(tmp_path, stop, "data=digits", "model=logistic", "optim.epochs=2")
    assert status == "interrupted"
    assert progress.step == 1 and progress.epoch == 0 and progress.epoch_step == 1
    assert outputs.paths.last_checkpoint.is_file()


def test_a_full_run_completes_every_epoch(tmp_path):
    status, progress, _ = loop(tmp_path, StopRequest(), "lab=linreg_bgd")
    assert status == "completed" and progress.epoch == 15 and progress.step == 15


def test_the_summary_records_how_to_rebuild_the_model(tmp_path):
    run_in_process(tmp_path, "data=plane2", "optim.epochs=1")
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["model_args"]["input_shape"] == [2]
