"""What a run does once training has ended: the test set, evaluated once, and the per-class table.

The test set (training.splits) is evaluated here and nowhere else: with the final weights and
with the best checkpoint's (the one validation chose), after the last epoch, so it never
influences training, the best checkpoint, early stopping or a search. classes.csv is the final
model's precision, recall, F1 and support per class on the validation set (the training set
without one), with its confusion counts, from scikit-learn's own functions; plots/predictions.py
draws confusion.png from it.
"""

import contextlib
import copy
import csv
import importlib
import io
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import torch

from gdrun.rundir.files import replace_atomically
from gdrun.rundir.layout import RunPaths
from gdrun.training import checkpoints
from gdrun.training.data import Dataset
from gdrun.training.epoch import evaluate_set, predict
from gdrun.training.parts import Parts

# classes.csv's columns before the confusion counts (one `predicted_<class>` column per class).
CLASS_COLUMNS = ("class", "precision", "recall", "f1", "support")
# classes.csv from the predictions: scikit-learn's part, a task the command's end-of-run worker may run.
CLASS_TABLE = "gdrun.training.finishing:write_class_table"

# The command's end-of-run worker (gdrun.finisher), while jobs.run_job lends it (`worker`): scikit-learn's
# import (~1 s) then happens there, beside torch's in this process, and a cached run imports neither.
_worker: Optional[Any] = None


@contextlib.contextmanager
def worker(finisher: Optional[Any]) -> Iterator[None]:
    """Lend the end-of-run worker to the runs of this block (None: every task runs in this process)."""
    global _worker
    _worker = finisher
    try:
        yield
    finally:
        _worker = None


def end_of_run_task(task: str, *args: Any) -> None:
    """`task`(*args) done before this returns: by the lent worker, else here (gdrun.finisher.call's way)."""
    if _worker is not None:
        _worker.submit(task, *args)
        _worker.wait()
        return
    module, _, name = task.partition(":")
    getattr(importlib.import_module(module), name)(*args)


def after_training(status: str, parts: Parts, paths: RunPaths, best: Optional[Dict], best_epoch: Optional[int]) -> Dict:
    """summary.json's additions at the end of a run: `splits` (sizes), and `test` once it completed with a
    test set; writes classes.csv for a classifier that did not diverge. `best`: the best checkpoint in
    memory (None: read checkpoints/best.pt)."""
    data = parts.data
    added: Dict[str, Any] = {"splits": split_sizes(data)}
    if status == "diverged":  # NaN weights: nothing to measure
        return added
    if data.task != "regression":
        true, predicted, names = class_predictions(parts)
        end_of_run_task(CLASS_TABLE, str(paths.root), true, predicted, names)
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
def class_predictions(parts: Parts) -> Tuple[List[int], List[int], List[str]]:
    """The final model's predicted and true classes on the validation set (else the training set), and
    the class names: what classes.csv is computed from."""
    data = parts.data
    split = data.val if data.val is not None else data
    parts.net.eval()
    chunks = [
        predict(parts.net(split.x[i : i + 10_000]), split.task, parts.threshold).reshape(-1)
        for i in range(0, len(split), 10_000)
    ]
    predicted = torch.cat(chunks).long().cpu().tolist()
    true = split.y.reshape(-1).long().cpu().tolist()
    return true, predicted, list(data.classes or ["0", "1"])


def write_class_table(folder: str, true: List[int], predicted: List[int], names: List[str]) -> None:
    """classes.csv: per class, precision, recall, F1 and support, and how many of the class were predicted
    as each class. scikit-learn's precision_recall_fscore_support and confusion_matrix, imported here (by
    the end-of-run worker when there is one); a class never predicted has precision 0 (zero_division=0)."""
    write_classes(RunPaths(Path(folder)), class_table(true, predicted, names))


def class_table(true: List[int], predicted: List[int], names: List[str]) -> List[Dict]:
    """classes.csv's rows (see write_class_table)."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    labels = list(range(len(names)))
    precision, recall, f1, support = precision_recall_fscore_support(true, predicted, labels=labels, zero_division=0)
    counts = confusion_matrix(true, predicted, labels=labels)
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
