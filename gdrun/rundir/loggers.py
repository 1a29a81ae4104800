"""Loggers: where a run's metrics go. The CSV files always; TensorBoard and others when configured.

Every logger follows `Logger`; `make_loggers` builds the CSV logger and one per entry of
`cfg.loggers` (its `_target_` class, built with the run folder and the entry's other keys).
"""

from pathlib import Path
from typing import Any, List, Mapping, Protocol, Sequence

from gdrun.config.targets import current_name
from gdrun.rundir.files import CsvLog, truncate_csv, write_json
from gdrun.rundir.layout import RunPaths

ITERATION_COLUMNS = ("step", "epoch", "loss", "lr")
EPOCH_COLUMNS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds")


class Logger(Protocol):
    """What a run tells its loggers: its config, each epoch's costs, each epoch's metrics, the summary at the end."""

    def log_config(self, config: Mapping[str, Any]) -> None:
        """The resolved config, once, as a new run starts (not again when it is resumed)."""

    def log_iterations(self, first_step: int, epoch: int, costs: Sequence[float], lr: float) -> None:
        """The costs of consecutive iterations (steps first_step, first_step + 1, ...) of one epoch."""

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

    def __init__(self, folder: Path, step: int = 0, epoch: int = -1):
        """Append to the folder's tables after cutting them back to `step` and `epoch` (a resumed run's
        checkpoint; 0 and -1 for a fresh run: only the header stays)."""
        self.paths = RunPaths(folder)
        truncate_csv(self.paths.iterations, ITERATION_COLUMNS, "step", step)
        truncate_csv(self.paths.epochs, EPOCH_COLUMNS, "epoch", epoch)
        self.iterations = CsvLog(self.paths.iterations, ITERATION_COLUMNS)
        self.epochs = CsvLog(self.paths.epochs, EPOCH_COLUMNS)

    def log_config(self, config: Mapping[str, Any]) -> None:
        pass  # Hydra keeps it in .hydra/config.yaml, checkpoints in every checkpoint

    def log_iterations(self, first_step: int, epoch: int, costs: Sequence[float], lr: float) -> None:
        tail = f",{epoch},"
        end = f",{lr!r}\n"
        # The hot path of a long lab: one formatted line per cost, written in one call.
        self.iterations.write_lines("".join([f"{first_step + i}{tail}{cost!r}{end}" for i, cost in enumerate(costs)]))

    def log_epoch(self, row: Mapping[str, Any]) -> None:
        self.epochs.write([[row.get(column) for column in EPOCH_COLUMNS]])
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


def make_loggers(folder: Path, specs: Mapping[str, Mapping[str, Any]], step: int = 0, epoch: int = -1) -> List[Logger]:
    """The CSV files always (cut back to `step`, `epoch`: see CsvLogger), plus one logger per entry of
    cfg.loggers: its `_target_` class, built with the folder."""
    # get_class, not instantiate(): instantiate would wrap a GdrunError (a missing extra) in its own.
    from hydra.utils import get_class

    extra = [
        get_class(current_name(spec["_target_"]))(folder, **{k: v for k, v in spec.items() if k != "_target_"})
        for spec in specs.values()
    ]
    return [CsvLogger(folder, step, epoch), *extra]


def pictures_drawn(folder: Path, specs: Mapping[str, Mapping[str, Any]]) -> None:
    """Hand the run's pictures, once drawn (after the run), to the loggers that keep them: a logger class's
    `log_pictures(folder, **settings)` (MLflow's, as artifacts)."""
    from hydra.utils import get_class

    for spec in specs.values():
        hook = getattr(get_class(current_name(spec["_target_"])), "log_pictures", None)
        if hook is not None:
            hook(folder, **{k: v for k, v in spec.items() if k != "_target_"})
