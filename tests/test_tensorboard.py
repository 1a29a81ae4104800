"""logger=tensorboard: event files in the run folder, read back with TensorBoard's own reader."""

import sys

import pytest

from gdrun.errors import GdrunError
from helpers import csv_rows, run_in_process

pytest.importorskip("tensorboard", reason='the tensorboard extra: pip install -e ".[tensorboard]" (make test does)')
# After the skip, so that a machine without the extra skips this module instead of failing on import.
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402 - after the skip
from tensorboard.plugins.hparams import plugin_data_pb2  # noqa: E402 - after the skip


def test_event_files_hold_the_runs_metrics_and_hyperparameters(run_folder):
    summary = run_in_process(
        run_folder, "logger=tensorboard", "data=softmax_1d", "data.val_split=0.25", "optim.epochs=3"
    )
    assert (run_folder / "iterations.csv").exists() and (run_folder / "epochs.csv").exists()  # CSV always
    events = EventAccumulator(str(run_folder))
    events.Reload()

    def scalars(tag):
        return [(s.step, s.value) for s in events.Scalars(tag)]

    # TensorBoard keeps 32-bit floats: equal to the CSV files to float32 precision.
    iterations = csv_rows(run_folder / "iterations.csv")
    assert scalars("iteration/loss") == [(int(r["step"]), pytest.approx(r["loss"], rel=1e-6)) for r in iterations]
    epochs = csv_rows(run_folder / "epochs.csv")
    for metric in ("train_loss", "val_loss", "val_accuracy", "lr"):
        assert scalars(f"epoch/{metric}") == [(int(r["epoch"]), pytest.approx(r[metric], rel=1e-6)) for r in epochs]
    best = summary["best"]
    assert scalars(f"best/{best['metric']}") == [(summary["steps"], pytest.approx(best["value"], rel=1e-6))]

    hparams = events.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(hparams["_hparams_/session_start_info"])
    values = start.session_start_info.hparams
    assert values["lr"].number_value == pytest.approx(0.1) and values["optim"].string_value == "sgd"
    assert values["data"].string_value == "softmax_1d" and values["epochs"].number_value == 3
    experiment = plugin_data_pb2.HParamsPluginData.FromString(hparams["_hparams_/experiment"]).experiment
    assert f"best/{best['metric']}" in {m.name.tag for m in experiment.metric_infos}


def test_a_missing_tensorboard_is_a_clear_error(tmp_path, monkeypatch):
    from gdrun.rundir.tensorboard import TensorBoardLogger

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import now fails as if not installed
    with pytest.raises(GdrunError, match=r'pip install "gdrun\[tensorboard\]"'):
        TensorBoardLogger(tmp_path)
