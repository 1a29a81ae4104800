"""The names of a run's metrics and which way each is better: light (no torch), for the sweep's tables too.

An epoch metric's column is `<split>_<metric>`: split train, val or test; metric loss, accuracy,
or a task's own (training.metrics computes them): f1 and auc for classifiers, rmse, mae and r2
for regression.
"""

from typing import Optional

SPLITS = ("train", "val", "test")
# The metrics each task adds to loss (and accuracy), in epochs.csv's order.
TASK_METRICS = {"regression": ("rmse", "mae", "r2"), "binary": ("f1", "auc"), "multiclass": ("f1",)}
LOWER_IS_BETTER = ("loss", "rmse", "mae")
HIGHER_IS_BETTER = ("accuracy", "f1", "auc", "r2")


def metric_of(column: str) -> Optional[str]:
    """`val_rmse` -> `rmse`; None for a column that is no split's metric (epoch, lr, seconds)."""
    split, _, metric = column.partition("_")
    if split in SPLITS and metric in (*LOWER_IS_BETTER, *HIGHER_IS_BETTER):
        return metric
    return None


def lower_is_better(column: str) -> bool:
    """Loss, RMSE and MAE (and a bare `loss`, `rmse`, ...): lower is better; accuracy, F1, AUC and R²: higher."""
    return (metric_of(column) or column) in LOWER_IS_BETTER


def better(column: str, value: float, than: float) -> bool:
    """Whether `value` of metric `column` beats `than` (lower loss, higher accuracy, ...)."""
    return value < than if lower_is_better(column) else value > than
