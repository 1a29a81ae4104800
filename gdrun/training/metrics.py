"""The evaluation metrics beyond loss and accuracy, computed in torch from a set's model outputs.

Per epoch: macro F1 for classification, ROC AUC for binary classifiers, RMSE, MAE and R² for
regression (`epochs.csv`: train_f1, val_f1, train_rmse, ...). They are computed here in torch,
not with scikit-learn, because they run every epoch and a run on cached data must not import
scikit-learn (~1.2 s); tests/test_metrics.py checks each against scikit-learn's own function.

The numbers come in two stages, so a set can be evaluated in chunks and many jobs at once (the
vectorised engine): `chunk_stats` turns one chunk's outputs into additive counts and sums,
`merge` adds the chunks', and `finish` turns them into the metrics. Every tensor may carry
leading job dimensions (J, ...) before the sample axis; the targets are the same for all jobs.
"""

from typing import Dict, List, Optional, Sequence

import torch
from torch import Tensor

from gdrun.config.metric_names import TASK_METRICS, better, lower_is_better, metric_of
from gdrun.errors import GdrunError

__all__ = ["better", "lower_is_better", "metric_of"]  # re-exported: the names of the metrics computed here


def task_metrics(task: str) -> Sequence[str]:
    return TASK_METRICS[task]


def epoch_columns(task: str) -> List[str]:
    """The task's columns in epochs.csv after loss and accuracy: train_ ones, then val_ ones (as runner.make_row)."""
    return [f"{split}_{name}" for split in ("train", "val") for name in TASK_METRICS[task]]


def headline(task: str, has_val: bool, chosen: Optional[str] = None) -> str:
    """The run's headline metric, the one best.pt follows and a sweep selects on.

    `chosen` (select.metric) when given; else validation accuracy for classification and
    validation loss for regression, the training set's when there is no validation set.
    GdrunError when `chosen` is not one of this run's epoch metrics.
    """
    split = "val" if has_val else "train"
    if chosen is None:
        return f"{split}_{'loss' if task == 'regression' else 'accuracy'}"
    metric = metric_of(chosen)
    own = ("loss", *(("accuracy",) if task != "regression" else ()), *TASK_METRICS[task])
    if chosen.startswith("test_"):
        raise GdrunError(
            f"select.metric={chosen}: the test set never chooses a model; choose on validation, "
            f"e.g. select.metric=val_{metric or 'loss'}."
        )
    if metric not in own:
        raise GdrunError(
            f"select.metric={chosen} is not a metric of this {task} run; choose one of "
            f"{', '.join(f'{split}_{m}' for m in own)}."
        )
    if chosen.startswith("val_") and not has_val:
        raise GdrunError(
            f"select.metric={chosen}, but the run has no validation set; set data.val_split (e.g. 0.2) "
            f"or use train_{metric}."
        )
    return chosen


# ---------------------------------------------------------------- per chunk
def class_indices(out: Tensor, y: Tensor, task: str, threshold: float) -> "tuple[Tensor, Tensor]":
    """Predicted (..., n) and true (n,) class indices: above `threshold` for binary, arg-max for multiclass."""
    if task == "binary":
        return (out[..., 0] > threshold).long(), y[:, 0].long()
    return out.argmax(dim=-1), y


def confusion(predicted: Tensor, true: Tensor, classes: int) -> Tensor:
    """(..., k, k) counts, [i, j] = samples of true class i predicted as j, from (..., n) and (n,) indices.

    One bincount for all jobs: sample s of job j counts at j·k² + true_s·k + predicted_js.
    """
    lead = predicted.shape[:-1]
    jobs = int(torch.tensor(lead).prod()) if lead else 1
    flat = predicted.reshape(jobs, -1)
    offsets = torch.arange(jobs, device=flat.device)[:, None] * classes * classes
    index = offsets + true[None, :] * classes + flat
    return torch.bincount(index.reshape(-1), minlength=jobs * classes * classes).reshape(*lead, classes, classes)


def chunk_stats(out: Tensor, y: Tensor, task: str, threshold: float) -> Dict[str, Tensor]:
    """One chunk's additive numbers: its confusion counts (and binary scores), or its error sums per output.

    out (..., n, outputs) the model's outputs; y (n, outputs) or (n,) the targets.
    """
    if task == "regression":
        error = out.double() - y.double()
        return {"sse": error.square().sum(dim=-2), "sae": error.abs().sum(dim=-2)}
    predicted, true = class_indices(out, y, task, threshold)
    stats = {"confusion": confusion(predicted, true, 2 if task == "binary" else out.shape[-1])}
    if task == "binary":
        stats["scores"] = out[..., 0].double()
    return stats


def merge(chunks: List[Dict[str, Tensor]]) -> Dict[str, Tensor]:
    """The chunks' numbers as one set's: counts and sums added, scores put end to end."""
    if len(chunks) == 1:
        return chunks[0]
    merged = {}
    for name in chunks[0]:
        parts = [c[name] for c in chunks]
        merged[name] = torch.cat(parts, dim=-1) if name == "scores" else torch.stack(parts).sum(dim=0)
    return merged


# ---------------------------------------------------------------- the metrics
def finish(stats: Dict[str, Tensor], y: Tensor, task: str) -> Dict[str, Tensor]:
    """The task's metrics (TASK_METRICS) from a whole set's `stats` and its targets y: tensors (...,) per job."""
    if task == "regression":
        n, outputs = y.shape[0], stats["sse"].shape[-1]
        return {
            "rmse": root_mean_squared_error(stats["sse"], n * outputs),
            "mae": stats["sae"].sum(dim=-1) / (n * outputs),
            "r2": r2(stats["sse"], y),
        }
    result = {"f1": macro_f1(stats["confusion"])}
    if task == "binary":
        result["auc"] = roc_auc(stats["scores"], y[:, 0])
    return result


def macro_f1(counts: Tensor) -> Tensor:
    """Macro F1 from (..., k, k) confusion counts: the mean over classes of F1_c = 2·TP_c / (2·TP_c + FP_c + FN_c).

    2·TP + FP + FN is the class's true count plus its predicted count. A class neither present nor
    predicted has no F1 and is left out of the mean, as scikit-learn's f1_score(average="macro")
    leaves out labels in neither y_true nor y_pred.
    """
    present = (counts.sum(dim=-1) + counts.sum(dim=-2)) > 0
    return class_f1(counts).sum(dim=-1) / present.sum(dim=-1).clamp(min=1)


def class_f1(counts: Tensor) -> Tensor:
    """(..., k) F1 of each class from (..., k, k) confusion counts: 2·TP_c / (true_c + predicted_c), 0 for a
    class neither present nor predicted (scikit-learn's zero_division=0)."""
    counts = counts.double()
    tp = counts.diagonal(dim1=-2, dim2=-1)
    seen = counts.sum(dim=-1) + counts.sum(dim=-2)  # true + predicted, per class
    return torch.where(seen > 0, 2 * tp / seen.clamp(min=1), torch.zeros_like(tp))


def root_mean_squared_error(sse: Tensor, count: int) -> Tensor:
    """RMSE = sqrt(Σ (ŷ - y)² / (n · outputs)): the root of the mean squared error over every target number
    (scikit-learn's sqrt(mean_squared_error), whose default averages the outputs' MSEs, equal weights)."""
    return (sse.sum(dim=-1) / count).sqrt()


def r2(sse: Tensor, y: Tensor) -> Tensor:
    """R² = mean over outputs j of 1 - SSE_j / SST_j, SST_j = Σ (y_j - mean(y_j))² (scikit-learn's r2_score,
    multioutput="uniform_average"). A constant target (SST_j = 0) scores 1 when fitted exactly, else 0,
    as scikit-learn's force_finite=True."""
    y = y.double().reshape(y.shape[0], -1)
    sst = y.var(dim=0, correction=0) * y.shape[0]
    # Where SST is 0 the division gives inf or NaN, which `where` leaves out.
    score = torch.where(sst > 0, 1 - sse / sst, (sse == 0).double())
    return score.mean(dim=-1)


def roc_auc(scores: Tensor, labels: Tensor) -> Tensor:
    """ROC AUC = P(score of a positive > score of a negative) + ½ P(equal): the Mann-Whitney statistic over
    all n₊·n₋ pairs, which is the area under the ROC curve with ties as scikit-learn's roc_auc_score draws them.

    For each positive, the negatives below it and those equal to it come from two binary searches in
    the sorted negative scores. NaN when the set holds one class only (no curve).
    """
    positive = labels > 0.5
    pos, neg = scores[..., positive].contiguous(), scores[..., ~positive].contiguous()
    n_pos, n_neg = pos.shape[-1], neg.shape[-1]
    if n_pos == 0 or n_neg == 0:
        return torch.full(scores.shape[:-1], float("nan"), dtype=torch.float64, device=scores.device)
    neg = neg.sort(dim=-1).values
    below = torch.searchsorted(neg, pos, side="left")
    up_to = torch.searchsorted(neg, pos, side="right")
    return (below + up_to).sum(dim=-1).double() / (2.0 * n_pos * n_neg)
