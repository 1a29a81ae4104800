"""`logger=tensorboard`: the run's metrics as TensorBoard event files, beside its CSV files.

The event files go straight into the run folder, so `tensorboard --logdir outputs` names each
run by its folder. Tags: `iteration/loss` (the cost of each iteration, by step),
`epoch/<metric>` (every epochs.csv column, learning rate included, by epoch) and, at the
end, `best/<metric>` with the run's hyperparameters for TensorBoard's HPARAMS tab.
"""

from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

from gdrun.errors import GdrunError

INSTALL_HINT = 'pip install "gdrun[tensorboard]"'


class TensorBoardLogger:
    """A gdrun.rundir.loggers.Logger writing TensorBoard scalars."""

    def __init__(self, folder: Path):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as error:  # torch raises ImportError when the tensorboard package is missing
            raise GdrunError(f"logger=tensorboard needs the tensorboard package: {INSTALL_HINT}") from error
        self.writer = SummaryWriter(log_dir=str(folder))

    def log_config(self, config: Mapping[str, Any]) -> None:
        pass  # the HPARAMS tab gets the run's settings at the end (log_summary)

    def log_iterations(
        self,
        first_step: int,
        epoch: int,
        costs: Sequence[float],
        lr: Union[float, Sequence[float]],
        grad_norms: Optional[Sequence[Optional[float]]] = None,
    ) -> None:
        for i, cost in enumerate(costs):
            self.writer.add_scalar("iteration/loss", cost, first_step + i)
        if not isinstance(lr, (int, float)):  # a rate per iteration: a schedule stepped every iteration
            for i, rate in enumerate(lr):
                self.writer.add_scalar("iteration/lr", rate, first_step + i)
        for i, norm in enumerate(grad_norms or ()):
            if norm is not None:
                self.writer.add_scalar("iteration/grad_norm", norm, first_step + i)

    def log_epoch(self, row: Mapping[str, Any]) -> None:
        for name, value in row.items():
            if name != "epoch" and value is not None:
                self.writer.add_scalar(f"epoch/{name}", value, row["epoch"])
        self.writer.flush()  # like the CSV files: every finished epoch is on disk

    def log_summary(self, summary: Mapping[str, Any]) -> None:
        """The hyperparameters and the best metrics, as one session of TensorBoard's HPARAMS tab."""
        from torch.utils.tensorboard.summary import hparams

        params = {**summary["run"], "epochs": summary["epochs"]}
        # HPARAMS takes numbers, strings and booleans; batch_size is a number or "full".
        params = {k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in params.items()}
        best = {f"best/{name}": entry["value"] for name, entry in summary["best_by_metric"].items()}
        experiment, session_start, session_end = hparams(params, best)
        file_writer = self.writer.file_writer
        assert file_writer is not None  # made by SummaryWriter's constructor
        for proto in (experiment, session_start, session_end):
            file_writer.add_summary(proto)
        for tag, value in best.items():  # HPARAMS reads a metric's value from the scalar of that tag
            self.writer.add_scalar(tag, value, summary["steps"])
        self.writer.flush()

    def sync(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
