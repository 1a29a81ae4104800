"""`logger=mlflow`: the run as an MLflow run, beside its CSV files.

    params     the resolved config, flattened (optim.lr, data.name, ...)
    metrics    iteration_loss by step (each iteration's cost); train_loss, train_accuracy, val_loss,
               val_accuracy, lr and seconds by epoch (from epoch 0); best_<metric> at the end
    tags       gdrun.status, gdrun.folder, gdrun.headline; the git commit (mlflow.source.git.commit)
    artifacts  summary.json, model.pt, and the pictures once they are drawn (plots/)

The tracking store is $MLFLOW_TRACKING_URI, else `tracking_uri`, else SQLite in outputs/mlflow.db
(artifacts in outputs/mlartifacts/) under the folder gdrun runs in: `mlflow ui --backend-store-uri
sqlite:///outputs/mlflow.db`. A sweep's jobs go to one experiment named after the sweep folder; a
single run to `experiment` (default: gdrun). The run's MLflow id is kept in its folder (mlflow.json),
so resume= goes on logging into the same MLflow run. mlflow is imported only here, when the logger is
made: it costs seconds.
"""

import fcntl
import json
import os
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Union

from gdrun.errors import GdrunError
from gdrun.rundir.files import write_json
from gdrun.rundir.layout import PLOTS, SWEEP_RECORD, RunPaths

INSTALL_HINT = 'pip install "gdrun[mlflow]"'
# The default store, under the folder gdrun runs in (where Hydra's outputs/ is).
DEFAULT_STORE = Path("outputs") / "mlflow.db"
DEFAULT_ARTIFACTS = Path("outputs") / "mlartifacts"
DEFAULT_EXPERIMENT = "gdrun"
# MLflow takes at most this many metrics (and 100 params) in one batch.
METRICS_PER_BATCH = 1000
PARAMS_PER_BATCH = 100
# How a gdrun status ends an MLflow run.
RUN_STATUS = {"completed": "FINISHED", "diverged": "FINISHED", "pruned": "FINISHED", "interrupted": "KILLED"}


def client_for(uri: str) -> Any:
    try:
        from mlflow.tracking import MlflowClient
    except ImportError as error:
        raise GdrunError(f"logger=mlflow needs the mlflow package: {INSTALL_HINT}") from error
    return MlflowClient(tracking_uri=uri)


def default_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{DEFAULT_STORE.absolute()}"


def sqlite_file(uri: str) -> Optional[Path]:
    """The file of a local SQLite store (`sqlite:///path`); None for any other store (a server)."""
    prefix = "sqlite:///"
    return Path(uri[len(prefix) :]).absolute() if uri.startswith(prefix) else None


@contextmanager
def held(path: Path) -> Iterator[None]:
    """An exclusive flock on `path` while the block runs: jobs starting at once (a parallel sweep's) make the
    store and the sweep's experiment once (MLflow's first use of a SQLite file creates its tables: ~10 s)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:  # a file system without locks: go on unlocked
            pass
        yield
    finally:
        os.close(fd)


def sweep_of(folder: Path) -> Optional[Path]:
    """The sweep folder a job folder belongs to (SWEEP_DIR/N, with Hydra's multirun.yaml at its root), else None."""
    folder = folder.absolute()
    return folder.parent if folder.name.isdigit() and (folder.parent / SWEEP_RECORD).is_file() else None


def experiment_name(folder: Path, experiment: Optional[str]) -> str:
    """The experiment given, else one per sweep (its folder, relative to here when it is below), else gdrun."""
    if experiment:
        return experiment
    sweep = sweep_of(folder)
    if sweep is None:
        return DEFAULT_EXPERIMENT
    try:
        return str(sweep.relative_to(Path.cwd()))
    except ValueError:
        return str(sweep)


def flat(config: Mapping[str, Any], prefix: str = "") -> Dict[str, str]:
    """A nested config as MLflow params: dotted keys, values as text."""
    params: Dict[str, str] = {}
    for key, value in config.items():
        if isinstance(value, Mapping):
            params.update(flat(value, f"{prefix}{key}."))
        else:
            params[f"{prefix}{key}"] = str(value)[:6000]  # MLflow's longest param value
    return params


class MlflowLogger:
    """A gdrun.rundir.loggers.Logger writing one MLflow run (see the module's docstring)."""

    def __init__(self, folder: Path, tracking_uri: Optional[str] = None, experiment: Optional[str] = None):
        self.paths = RunPaths(folder)
        self.ended = False
        record = self.paths.mlflow
        if record.is_file():  # resume=: the same MLflow run goes on
            saved = json.loads(record.read_text())
            self.uri, self.run_id = saved["tracking_uri"], saved["run_id"]
            self.client = client_for(self.uri)
            self.client.update_run(self.run_id, status="RUNNING")
            return
        self.uri = tracking_uri or default_uri()
        name = experiment_name(folder, experiment)
        store = sqlite_file(self.uri)
        with held(store.with_suffix(".lock")) if store is not None else nullcontext():
            self.client = client_for(self.uri)
            found = self.client.get_experiment_by_name(name)
            if found is not None:
                experiment_id = found.experiment_id
            else:
                # A local store keeps its artifacts beside it (MLflow's default is ./mlruns, wherever gdrun
                # was started); a server decides for itself.
                location = (store.parent / DEFAULT_ARTIFACTS.name).as_uri() if store is not None else None
                experiment_id = self.client.create_experiment(name, artifact_location=location)
        sweep = sweep_of(folder)
        run_name = f"job {Path(folder).name}" if sweep else Path(folder).name
        tags = {"gdrun.folder": str(Path(folder).absolute()), "gdrun.status": "running"}
        run = self.client.create_run(experiment_id, run_name=run_name, tags=tags)
        self.run_id = run.info.run_id
        write_json(record, {"tracking_uri": self.uri, "experiment_id": experiment_id, "run_id": self.run_id})

    def log_config(self, config: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        params = [Param(key, value) for key, value in flat(config).items()]
        for i in range(0, len(params), PARAMS_PER_BATCH):
            self.client.log_batch(self.run_id, params=params[i : i + PARAMS_PER_BATCH])

    def log_iterations(
        self,
        first_step: int,
        epoch: int,
        costs: Sequence[float],
        lr: Union[float, Sequence[float]],
        grad_norms: Optional[Sequence[Optional[float]]] = None,
    ) -> None:
        stamp = int(time.time() * 1000)
        points = [("iteration_loss", cost, first_step + i) for i, cost in enumerate(costs)]
        if not isinstance(lr, (int, float)):  # a schedule stepped every iteration: each step's rate
            points += [("iteration_lr", rate, first_step + i) for i, rate in enumerate(lr)]
        if grad_norms is not None:  # optim.clip_grad_norm: each update's norm before clipping
            points += [("grad_norm", n, first_step + i) for i, n in enumerate(grad_norms) if n is not None]
        self._metrics(points, stamp)

    def log_epoch(self, row: Mapping[str, Any]) -> None:
        stamp = int(time.time() * 1000)
        self._metrics([(k, v, row["epoch"]) for k, v in row.items() if k != "epoch" and v is not None], stamp)

    def log_summary(self, summary: Mapping[str, Any]) -> None:
        """The best metrics, the status and commit as tags, summary.json and model.pt as artifacts; the run ends."""
        best = [(f"best_{name}", entry["value"], entry["epoch"]) for name, entry in summary["best_by_metric"].items()]
        self._metrics(best, int(time.time() * 1000))
        status = str(summary["status"])
        self.client.set_tag(self.run_id, "gdrun.status", status)
        self.client.set_tag(self.run_id, "gdrun.headline", str(summary["best"]["metric"]))
        git = (summary.get("environment") or {}).get("git") or {}
        if git.get("commit"):
            self.client.set_tag(self.run_id, "mlflow.source.git.commit", git["commit"])
        for path in (self.paths.summary, self.paths.model):
            if path.is_file():
                self.client.log_artifact(self.run_id, str(path))
        self.client.set_terminated(self.run_id, status=RUN_STATUS.get(status, "FAILED"))
        self.ended = True

    def sync(self) -> None:
        pass  # every call above is written to the store when it returns

    def close(self) -> None:
        if not self.ended:  # closed by a failure before the summary
            self.client.set_terminated(self.run_id, status="FAILED")

    @staticmethod
    def log_pictures(folder: Path, **settings: Any) -> None:
        """After the pictures are drawn (the run has ended): plots/ into the run's artifacts."""
        paths = RunPaths(folder)
        if not paths.mlflow.is_file() or not paths.plots.is_dir():
            return
        saved = json.loads(paths.mlflow.read_text())
        client_for(saved["tracking_uri"]).log_artifacts(saved["run_id"], str(paths.plots), artifact_path=PLOTS)

    def _metrics(self, points: List[Any], stamp: int) -> None:
        from mlflow.entities import Metric

        metrics = [Metric(key, float(value), stamp, int(step)) for key, value, step in points]
        for i in range(0, len(metrics), METRICS_PER_BATCH):
            self.client.log_batch(self.run_id, metrics=metrics[i : i + METRICS_PER_BATCH])
