"""gdrun.training.metrics against scikit-learn's own functions, and against hand computations."""

import pytest
import torch
from sklearn.metrics import (
    confusion_matrix,
    f1_score,
    mean_absolute_error,
    mean_squared_error,
    precision_recall_fscore_support,
    r2_score,
    roc_auc_score,
)
from torch.testing import assert_close

from gdrun.training import metrics
from gdrun.training.finishing import class_table

CASES = range(40)


def whole_set(out, y, task, threshold=0.0, chunk=None):
    """The metrics of a set evaluated in chunks of `chunk` samples (None: one), as evaluate_set does."""
    step = chunk or y.shape[0]
    parts = [
        metrics.chunk_stats(out[..., i : i + step, :], y[i : i + step], task, threshold)
        for i in range(0, y.shape[0], step)
    ]
    return metrics.finish(metrics.merge(parts), y, task)


@pytest.mark.parametrize("case", CASES)
def test_macro_f1_is_sklearns(case):
    g = torch.Generator().manual_seed(case)
    n, k = int(torch.randint(1, 60, (), generator=g)), int(torch.randint(2, 8, (), generator=g))
    out = torch.randn(n, k, generator=g)
    y = torch.randint(0, k, (n,), generator=g)
    got = whole_set(out, y, "multiclass", chunk=7)["f1"]
    expected = f1_score(y.numpy(), out.argmax(1).numpy(), average="macro", zero_division=0)
    assert_close(got, torch.tensor(expected, dtype=torch.float64))


@pytest.mark.parametrize("case", CASES)
def test_binary_f1_and_auc_are_sklearns_with_ties(case):
    g = torch.Generator().manual_seed(1000 + case)
    n = int(torch.randint(2, 80, (), generator=g))
    # Rounded scores: many ties between positives and negatives.
    out = (torch.randn(n, 1, generator=g) * 2).round() / 2
    y = torch.randint(0, 2, (n, 1), generator=g).float()
    y[0], y[1] = 0.0, 1.0  # both classes present
    got = whole_set(out, y, "binary", threshold=0.0, chunk=5)
    predicted = (out[:, 0] > 0).long().numpy()
    expected_f1 = f1_score(y[:, 0].long().numpy(), predicted, average="macro", zero_division=0)
    assert_close(got["f1"], torch.tensor(expected_f1, dtype=torch.float64))
    assert_close(got["auc"], torch.tensor(roc_auc_score(y[:, 0].numpy(), out[:, 0].numpy()), dtype=torch.float64))


@pytest.mark.parametrize("case", CASES)
def test_regression_metrics_are_sklearns(case):
    g = torch.Generator().manual_seed(2000 + case)
    n, d = int(torch.randint(2, 50, (), generator=g)), int(torch.randint(1, 4, (), generator=g))
    y = torch.randn(n, d, generator=g) * 3 + 1
    out = y + torch.randn(n, d, generator=g)
    got = whole_set(out, y, "regression", chunk=6)
    yn, on = y.numpy(), out.numpy()
    assert_close(got["rmse"], torch.tensor(mean_squared_error(yn, on), dtype=torch.float64).sqrt())
    assert_close(got["mae"], torch.tensor(mean_absolute_error(yn, on), dtype=torch.float64))
    assert_close(got["r2"], torch.tensor(r2_score(yn, on), dtype=torch.float64))


def test_by_hand():
    # Three classes, true 0 0 1 2, predicted 0 1 1 1: F1 = (2/3 + 2/4 + 0) / 3.
    out = torch.eye(3)[[0, 1, 1, 1]]
    f1 = whole_set(out, torch.tensor([0, 0, 1, 2]), "multiclass")["f1"]
    assert_close(f1, torch.tensor((2 / 3 + 2 / 4 + 0) / 3, dtype=torch.float64))
    # AUC: positives scored 0.8 and 0.4, negatives 0.4 and 0.1: pairs 1, 1, ½, 1 of 4.
    scores = torch.tensor([[0.8], [0.4], [0.4], [0.1]])
    auc = whole_set(scores, torch.tensor([[1.0], [1.0], [0.0], [0.0]]), "binary", threshold=0.5)["auc"]
    assert_close(auc, torch.tensor(3.5 / 4, dtype=torch.float64))
    # Regression: errors 1, -1, 2 on targets 0, 2, 4 (mean 2, SST 8): RMSE sqrt(2), MAE 4/3, R² 1 - 6/8.
    got = whole_set(torch.tensor([[1.0], [1.0], [6.0]]), torch.tensor([[0.0], [2.0], [4.0]]), "regression")
    assert_close(got["rmse"], torch.tensor(2.0, dtype=torch.float64).sqrt())
    assert_close(got["mae"], torch.tensor(4 / 3, dtype=torch.float64))
    assert_close(got["r2"], torch.tensor(0.25, dtype=torch.float64))


def test_many_jobs_at_once_equal_each_alone():
    g = torch.Generator().manual_seed(7)
    outs = torch.randn(5, 30, 4, generator=g)  # (jobs, n, classes)
    y = torch.randint(0, 4, (30,), generator=g)
    together = whole_set(outs, y, "multiclass", chunk=8)["f1"]
    alone = torch.stack([whole_set(o, y, "multiclass")["f1"] for o in outs])
    assert_close(together, alone)
    scores = torch.randn(3, 25, 1, generator=g)
    labels = (torch.rand(25, 1, generator=g) > 0.5).float()
    together = whole_set(scores, labels, "binary", chunk=4)["auc"]
    alone = torch.stack([whole_set(s, labels, "binary")["auc"] for s in scores])
    assert_close(together, alone)


def test_one_class_has_no_auc_and_constant_target_r2():
    auc = whole_set(torch.randn(6, 1), torch.ones(6, 1), "binary")["auc"]
    assert torch.isnan(auc)
    y = torch.full((4, 1), 2.0)
    assert whole_set(y.clone(), y, "regression")["r2"] == 1.0
    assert whole_set(y + 1, y, "regression")["r2"] == r2_score(y.numpy(), (y + 1).numpy())


def test_select_metric_names():
    assert metrics.headline("regression", True) == "val_loss"
    assert metrics.headline("multiclass", False) == "train_accuracy"
    assert metrics.headline("binary", True, "val_auc") == "val_auc"
    for bad, said in (("test_loss", "never chooses"), ("val_f1", "not a metric"), ("val_rmse", "no validation")):
        task, has_val = ("regression", bad != "val_rmse")
        with pytest.raises(Exception, match=said):
            metrics.headline(task, has_val, bad)
    assert metrics.better("val_rmse", 0.1, 0.2) and metrics.better("val_r2", 0.9, 0.2)


@pytest.mark.parametrize("case", CASES)
def test_classes_csv_is_sklearns_per_class_table(case):
    """classes.csv's precision, recall, F1, support and confusion counts equal scikit-learn's, a class
    never predicted (or never present) included."""
    g = torch.Generator().manual_seed(case)
    n, k = int(torch.randint(1, 80, (), generator=g)), int(torch.randint(2, 9, (), generator=g))
    true = torch.randint(0, k, (n,), generator=g)
    predicted = torch.randint(0, max(1, k - 2), (n,), generator=g)  # the last classes never predicted
    names = [f"c{i}" for i in range(k)]
    rows = class_table(true, predicted, names)
    labels = list(range(k))
    precision, recall, f1, support = precision_recall_fscore_support(
        true.numpy(), predicted.numpy(), labels=labels, zero_division=0
    )
    counts = confusion_matrix(true.numpy(), predicted.numpy(), labels=labels)
    for i, row in enumerate(rows):
        got = torch.tensor([row["precision"], row["recall"], row["f1"]], dtype=torch.float64)
        assert_close(got, torch.tensor([precision[i], recall[i], f1[i]], dtype=torch.float64))
        assert row["support"] == support[i]
        assert [row[f"predicted_{name}"] for name in names] == counts[i].tolist()
