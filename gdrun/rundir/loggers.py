"""Loggers: where a run's metrics go. The CSV files always; TensorBoard and others when configured.

Every logger follows `Logger`; `make_loggers` builds the CSV logger and one per entry of
`cfg.loggers` (its `_target_` class, built with the run folder and the entry's other keys).
"""

from pathlib import Path
from typing import Any, List, Mapping, Optional, Protocol, Sequence, Tuple, Union

from gdrun.config.targets import current_name
from gdrun.rundir.files import CsvLog, truncate_csv, write_json
from gdrun.rundir.layout import RunPaths

ITERATION_COLUMNS = ("step", "epoch", "loss", "lr")
# With optim.clip_grad_norm: each update's gradient norm before clipping (empty for a step not taken).
GRAD_NORM = "grad_norm"
EPOCH_COLUMNS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds")


class Logger(Protocol):
    """What a run tells its loggers: its config, each epoch's costs, each epoch's metrics, the summary at the end."""

    def log_config(self, config: Mapping[str, Any]) -> None:
        """The resolved config, once, as a new run starts (not again when it is resumed)."""

    def log_iterations(
        self,
        first_step: int,
        epoch: int,
        costs: Sequence[float],
        lr: Union[float, Sequence[float]],
        grad_norms: Optional[Sequence[Optional[float]]] = None,
    ) -> None:
        """The costs of consecutive iterations (steps first_step, first_step + 1, ...) of one epoch.

        `lr`: the rate of all of them, or each one's (a schedule stepped every iteration);
        `grad_norms`: each one's gradient norm before clipping, given only with optim.clip_grad_norm.
        """

    def log_epoch(self, row: Mapping[str, Any]) -> None:
        """One epochs.csv row: the model on the whole training and validation sets."""

    def log_summary(self, summary: Mapping[str, Any]) -> None:
        """summary.json's content, when the run ends."""

    def sync(self) -> None:
        """Everything logged so far onto the disk: called before a checkpoint is published."""

    def close(self) -> None:
        """Release files; called once, last."""


class CsvLogger:
    """The two per-run metric tables: one row per iteration, one row per epoch (from epoch 0), and summary.json."""

    def __init__(
        self, folder: Path, step: int = 0, epoch: int = -1, grad_norm: bool = False, metrics: Sequence[str] = ()
    ):
        """Append to the folder's tables after cutting them back to `step` and `epoch` (a resumed run's
        checkpoint; 0 and -1 for a fresh run: only the header stays). `grad_norm`: iterations.csv has
        that column (optim.clip_grad_norm). `metrics`: the task's epoch columns after EPOCH_COLUMNS
        (train_f1, val_f1, ...); a resumed run keeps the columns its file has."""
        self.paths = RunPaths(folder)
        iteration_columns = (*ITERATION_COLUMNS, GRAD_NORM) if grad_norm else ITERATION_COLUMNS
        self.columns = epoch_columns(self.paths.epochs, tuple(metrics), fresh=epoch < 0)
        truncate_csv(self.paths.iterations, iteration_columns, "step", step)
        truncate_csv(self.paths.epochs, self.columns, "epoch", epoch)
        self.iterations = CsvLog(self.paths.iterations, iteration_columns)
        self.epochs = CsvLog(self.paths.epochs, self.columns)

    def log_config(self, config: Mapping[str, Any]) -> None:
        pass  # Hydra keeps it in .hydra/config.yaml, checkpoints in every checkpoint

    def log_iterations(
        self,
        first_step: int,
        epoch: int,
        costs: Sequence[float],
        lr: Union[float, Sequence[float]],
        grad_norms: Optional[Sequence[Optional[float]]] = None,
    ) -> None:
        tail = f",{epoch},"
        if isinstance(lr, (int, float)) and grad_norms is None:
            end = f",{lr!r}\n"
            # The hot path of a long lab: one formatted line per cost, written in one call.
            lines = [f"{first_step + i}{tail}{cost!r}{end}" for i, cost in enumerate(costs)]
        else:
            rates = [lr] * len(costs) if isinstance(lr, (int, float)) else lr
            norms = (
                [f",{'' if n is None else repr(n)}" for n in grad_norms]
                if grad_norms is not None
                else [""] * len(costs)
            )
            lines = [f"{first_step + i}{tail}{cost!r},{rates[i]!r}{norms[i]}\n" for i, cost in enumerate(costs)]
        self.iterations.write_lines("".join(lines))

    def log_epoch(self, row: Mapping[str, Any]) -> None:
        self.epochs.write([[row.get(column) for column in self.columns]])
        self.iterations.flush()
        self.epochs.flush()

    def log_summary(self, summary: Mapping[str, Any]) -> None:
        """summary.json, rewritten whole (atomically), after the tables are whole on disk: a run says
        `completed` only when every row it counts is there."""
        self.iterations.close()
        self.epochs.close()
        write_json(self.paths.summary, dict(summary))

    def sync(self) -> None:
        self.iterations.sync()
        self.epochs.sync()

    def close(self) -> None:
        self.iterations.close()
        self.epochs.close()


def epoch_columns(path: Path, metrics: Tuple[str, ...], fresh: bool) -> Tuple[str, ...]:
    """epochs.csv's columns: EPOCH_COLUMNS with the task's `metrics` after val_accuracy; for a resumed run
    whose file was written without them (an older gdrun), the file's own, so its rows are kept."""
    if not fresh and metrics and path.exists():
        with open(path, errors="replace") as f:
            if tuple(f.readline().rstrip("\n").split(",")) == EPOCH_COLUMNS:
                return EPOCH_COLUMNS
    return EPOCH_COLUMNS[:5] + metrics + EPOCH_COLUMNS[5:]  # lr and seconds stay last, as in every older file


def make_loggers(
    folder: Path,
    specs: Mapping[str, Mapping[str, Any]],
    step: int = 0,
    epoch: int = -1,
    grad_norm: bool = False,
    metrics: Sequence[str] = (),
) -> List[Logger]:
    """The CSV files always (cut back to `step`, `epoch`, with a grad_norm column or not and the task's
    `metrics` columns: see CsvLogger), plus one logger per entry of cfg.loggers: its `_target_` class,
    built with the folder."""
    # get_class, not instantiate(): instantiate would wrap a GdrunError (a missing extra) in its own.
    from hydra.utils import get_class

    extra = [
        get_class(current_name(spec["_target_"]))(folder, **{k: v for k, v in spec.items() if k != "_target_"})
        for spec in specs.values()
    ]
    return [CsvLogger(folder, step, epoch, grad_norm, metrics), *extra]


def pictures_drawn(folder: Path, specs: Mapping[str, Mapping[str, Any]]) -> None:
    """Hand the run's pictures, once drawn (after the run), to the loggers that keep them: a logger class's
    `log_pictures(folder, **settings)` (MLflow's, as artifacts)."""
    from hydra.utils import get_class

    for spec in specs.values():
        hook = getattr(get_class(current_name(spec["_target_"])), "log_pictures", None)
        if hook is not None:
            hook(folder, **{k: v for k, v in spec.items() if k != "_target_"})
