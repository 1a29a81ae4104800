"""logger=mlflow: the run read back through MLflow's own client; a sweep's jobs in one experiment; with TensorBoard."""

import os

import pytest

from helpers import compose_config, csv_rows, gdrun_cli, run_in_process

pytestmark = pytest.mark.slow  # MLflow makes its SQLite store's tables on first use (~10 s), and a sweep starts gdrun
pytest.importorskip("mlflow", reason='the mlflow extra: pip install -e ".[mlflow]" (make test does)')
from mlflow.tracking import MlflowClient  # noqa: E402 - after the skip


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """One run with logger=[tensorboard,mlflow], from a folder of its own (the default store is ./outputs/mlflow.db)."""
    here = tmp_path_factory.mktemp("mlflow")
    before = os.getcwd()
    os.chdir(here)
    try:
        folder = here / "outputs" / "run"
        overrides = ["logger=[tensorboard,mlflow]", "data=softmax_1d", "data.val_split=0.25", "optim.epochs=3"]
        summary = run_in_process(folder, *overrides, "plots=true")
    finally:
        os.chdir(before)
    return here, folder, summary


def test_several_loggers_compose_from_a_list():
    cfg = compose_config("logger=[tensorboard,mlflow]")
    assert set(cfg.loggers) == {"tensorboard", "mlflow"}
    assert set(compose_config("logger=mlflow").loggers) == {"mlflow"}


def test_the_run_is_read_back_through_mlflows_client(logged):
    here, folder, summary = logged
    client = MlflowClient(tracking_uri=f"sqlite:///{here / 'outputs' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("gdrun")
    [run] = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED" and run.data.tags["gdrun.status"] == "completed"
    assert run.data.tags["gdrun.folder"] == str(folder)
    # The resolved config as params.
    params = run.data.params
    assert params["optim.lr"] == "0.1" and params["data.name"] == "softmax_1d" and params["optim.epochs"] == "3"
    # Each iteration's cost by step and each epoch's metrics by epoch, as the CSV files hold them.
    history = client.get_metric_history(run.info.run_id, "iteration_loss")
    iterations = csv_rows(folder / "iterations.csv")
    assert [(m.step, m.value) for m in history] == [(int(r["step"]), pytest.approx(r["loss"])) for r in iterations]
    epochs = csv_rows(folder / "epochs.csv")
    for metric in ("train_loss", "val_loss", "val_accuracy", "lr"):
        history = sorted(client.get_metric_history(run.info.run_id, metric), key=lambda m: m.step)
        assert [(m.step, m.value) for m in history] == [(int(r["epoch"]), pytest.approx(r[metric])) for r in epochs]
    best = summary["best"]
    assert run.data.metrics[f"best_{best['metric']}"] == pytest.approx(best["value"])
    # The summary, the model and the pictures as artifacts.
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"summary.json", "model.pt", "plots"} <= artifacts
    pictures = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert {f"plots/{p.name}" for p in (folder / "plots").glob("*.png")} == pictures and pictures
    # TensorBoard, the other logger, wrote its events too.
    assert list(folder.glob("events.out.tfevents.*"))


def test_a_sweeps_jobs_share_one_experiment(logged, tmp_path):
    here, _, _ = logged
    store = f"sqlite:///{here / 'outputs' / 'mlflow.db'}"  # made already: no ~10 s for its tables
    result = gdrun_cli(
        "-m",
        "logger=mlflow",
        f"loggers.mlflow.tracking_uri={store}",
        "optim.lr=0.01,0.1",
        "optim.epochs=2",
        "plots=false",
        f"hydra.sweep.dir={tmp_path}",
    )
    assert result.returncode == 0, result.stderr
    client = MlflowClient(tracking_uri=store)
    experiment = client.get_experiment_by_name(str(tmp_path))
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.data.params["optim.lr"] for r in runs) == ["0.01", "0.1"]
    assert sorted(r.info.run_name for r in runs) == ["job 0", "job 1"]
    assert all(r.info.status == "FINISHED" for r in runs)
