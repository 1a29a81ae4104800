"""What a run does once training has ended: the test set, evaluated once, and the per-class table.

The test set (training.splits) is evaluated here and nowhere else: with the final weights and
with the best checkpoint's (the one validation chose), after the last epoch, so it never
influences training, the best checkpoint, early stopping or a search. classes.csv is the final
model's precision, recall, F1 and support per class on the validation set (the training set
without one), with its confusion counts, by scikit-learn's formulas (held equal to its functions by
tests/test_metrics.py); plots/predictions.py draws confusion.png from it.
"""

import copy
import csv
import io
from typing import Any, Dict, List, Optional, Tuple

import torch

from gdrun.rundir.files import replace_atomically
from gdrun.rundir.layout import RunPaths
from gdrun.training import checkpoints, metrics
from gdrun.training.data import Dataset
from gdrun.training.epoch import evaluate_set, predict
from gdrun.training.parts import Parts

# classes.csv's columns before the confusion counts (one `predicted_<class>` column per class).
CLASS_COLUMNS = ("class", "precision", "recall", "f1", "support")


def after_training(status: str, parts: Parts, paths: RunPaths, best: Optional[Dict], best_epoch: Optional[int]) -> Dict:
    """summary.json's additions at the end of a run: `splits` (sizes), and `test` once it completed with a
    test set; writes classes.csv for a classifier that did not diverge. `best`: the best checkpoint in
    memory (None: read checkpoints/best.pt)."""
    data = parts.data
    added: Dict[str, Any] = {"splits": split_sizes(data)}
    if status == "diverged":  # NaN weights: nothing to measure
        return added
    if data.task != "regression":
        write_classes(paths, class_table(*class_predictions(parts)))
    if status == "completed" and data.test is not None:
        added["test"] = test_metrics(parts, best_weights(best, paths), best_epoch)
    return added


def split_sizes(data: Dataset) -> Dict[str, Optional[int]]:
    return {
        "train": len(data),
        "val": len(data.val) if data.val is not None else None,
        "test": len(data.test) if data.test is not None else None,
    }


def best_weights(best: Optional[Dict], paths: RunPaths) -> Optional[Dict]:
    """The best checkpoint's state_dict: from memory, else from checkpoints/best.pt (a resumed run), else None."""
    if best is not None:
        return best["model"]
    if paths.best_checkpoint.is_file():
        return checkpoints.load(paths.best_checkpoint)["model"]
    return None


def test_metrics(parts: Parts, best_state: Optional[Dict], best_epoch: Optional[int]) -> Dict:
    """The final model's and the best checkpoint's metrics on the test set: {"final": {...}, "best": {"epoch", ...}}."""
    test, threshold = parts.data.test, parts.threshold
    assert test is not None
    result: Dict[str, Any] = {
        "final": evaluate_set(parts.net, parts.loss_fn, test.x, test.y, test.task, threshold),
    }
    if best_state is not None:
        model = copy.deepcopy(parts.model)
        model.load_state_dict(best_state)
        result["best"] = {
            "epoch": best_epoch,
            **evaluate_set(model, parts.loss_fn, test.x, test.y, test.task, threshold),
        }
    return result


@torch.no_grad()
@torch.no_grad()
def class_predictions(parts: Parts) -> Tuple[torch.Tensor, torch.Tensor, List[str]]:
    """The final model's true and predicted classes on the validation set (else the training set), and
    the class names: what classes.csv is counted from."""
    data = parts.data
    split = data.val if data.val is not None else data
    parts.net.eval()
    chunks = [
        predict(parts.net(split.x[i : i + 10_000]), split.task, parts.threshold).reshape(-1)
        for i in range(0, len(split), 10_000)
    ]
    return split.y.reshape(-1).long().cpu(), torch.cat(chunks).long().cpu(), list(data.classes or ["0", "1"])


def class_table(true: torch.Tensor, predicted: torch.Tensor, names: List[str]) -> List[Dict]:
    """classes.csv's rows: per class, precision, recall, F1 and support, and how many of the class were
    predicted as each class (the confusion counts confusion.png draws).

    scikit-learn's precision_recall_fscore_support(zero_division=0) formulas on the confusion counts:
    precision tp / predicted, recall tp / support, F1 2·tp / (predicted + support), 0 where the
    denominator is 0; tests/test_metrics.py holds them equal to scikit-learn's own. Counted here rather
    than by scikit-learn: importing sklearn.metrics costs ~1.2 s, more than a small run's training,
    and a run whose data is cached imports no scikit-learn at all (issue 13).
    """
    counts = metrics.confusion(predicted, true, len(names))
    tp, support, guessed = counts.diagonal().double(), counts.sum(1).double(), counts.sum(0).double()
    precision = torch.where(guessed > 0, tp / guessed.clamp(min=1), 0.0)
    recall = torch.where(support > 0, tp / support.clamp(min=1), 0.0)
    f1 = metrics.class_f1(counts)
    rows = []
    for i, name in enumerate(names):
        row = {"class": name, "precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i])}
        row["support"] = int(support[i])
        row.update({f"predicted_{other}": int(counts[i, j]) for j, other in enumerate(names)})
        rows.append(row)
    return rows


def write_classes(paths: RunPaths, rows: List[Dict]) -> None:
    """classes.csv, whole (atomically), with Python's csv module (a class name may hold a comma)."""
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    data = text.getvalue().encode()
    replace_atomically(paths.classes, lambda f: f.write(data))
