"""Model selection as the course teaches it: train / validation / test sets, k folds, a sweep's chosen model
(best.json, best_model.pt) chosen by validation alone, the test set evaluated once at the end."""

import json

import numpy as np
import pytest
import torch
from sklearn.metrics import precision_recall_fscore_support

from gdrun.rundir.sweep_summary import read_summary
from gdrun.sweeps import summarize
from gdrun.training.build import build_data
from gdrun.training.datasets import idx
from gdrun.training.splits import fold_indices, stratified_take
from helpers import compose_config, csv_rows, gdrun_cli, make_sweep, run_in_process


def data_of(*overrides):
    cfg = compose_config(*overrides)
    return build_data(cfg.data, cfg.seed, torch.device("cpu"))


def rows_of(x):
    return {tuple(row) for row in x.reshape(len(x), -1).tolist()}


# ---------------------------------------------------------------- the splits
def test_folds_are_disjoint_cover_the_training_set_and_are_stratified():
    labels = torch.tensor([0] * 30 + [1] * 12 + [2] * 7)[torch.randperm(49, generator=torch.Generator().manual_seed(3))]
    folds = fold_indices(49, labels, 4, seed=5)
    joined = torch.cat(folds)
    assert sorted(joined.tolist()) == list(range(49))  # disjoint and covering
    assert max(map(len, folds)) - min(map(len, folds)) <= 1
    for c, count in ((0, 30), (1, 12), (2, 7)):
        per_fold = [int((labels[f] == c).sum()) for f in folds]
        assert sum(per_fold) == count and max(per_fold) - min(per_fold) <= 1
    assert [f.tolist() for f in fold_indices(49, labels, 4, seed=5)] == [f.tolist() for f in folds]  # seeded


def test_digits_folds_through_the_config_cover_what_the_test_set_leaves():
    base = ["data=digits", "data.test_split=0.2", "data.folds=3"]
    sets = [data_of(*base, f"data.fold={i}") for i in range(3)]
    test = rows_of(sets[0].test.x)
    assert all(rows_of(s.test.x) == test for s in sets)  # one test set for every fold
    vals = [rows_of(s.val.x) for s in sets]
    assert sum(len(s.val) for s in sets) == 1797 - len(sets[0].test)
    assert all(not (a & b) for i, a in enumerate(vals) for b in vals[i + 1 :])  # disjoint folds
    for s, val in zip(sets, vals):
        assert not (val & rows_of(s.x)) and not (val & test) and not (rows_of(s.x) & test)
        assert len(s) + len(s.val) + len(s.test) == 1797


def test_test_split_is_stratified_seeded_and_disjoint_from_validation():
    data = data_of("data=digits", "data.test_split=0.2", "data.val_split=0.25")
    assert (len(data.test), len(data.val), len(data)) == (359, 360, 1078)  # 20 % of all, then 25 % of the rest
    counts = torch.bincount(data.test.y, minlength=10)
    whole = torch.bincount(torch.cat([data.y, data.val.y, data.test.y]), minlength=10)
    assert ((counts - whole * 0.2).abs() <= 1).all()  # every class in its proportion
    assert not (rows_of(data.test.x) & rows_of(data.val.x))
    again = data_of("data=digits", "data.test_split=0.2", "data.val_split=0.25")
    assert torch.equal(again.test.x, data.test.x) and torch.equal(again.val.x, data.val.x)
    kept, taken = stratified_take(10, None, 0.3, seed=1)  # regression: plain random, round(n * fraction)
    assert len(taken) == 3 and sorted([*kept.tolist(), *taken.tolist()]) == list(range(10))


def test_no_test_split_keeps_the_old_sets():
    old = data_of("data=digits")
    assert old.test is None and (len(old), len(old.val)) == (1438, 359)


@pytest.fixture
def mnist_root(tmp_path):
    idx.write_mnist_like(tmp_path / "data", n_train=300, n_test=100)
    return tmp_path / "data"


def test_mnist_official_test_split_becomes_the_test_set_with_val_split(mnist_root):
    common = ["data=mnist", f"data.root={mnist_root}", "data.download=false"]
    as_before = data_of(*common)
    assert as_before.test is None and len(as_before.val) == 100  # the official test split validates, as before
    data = data_of(*common, "data.val_split=0.2")
    assert torch.equal(data.test.x, as_before.val.x) and (len(data), len(data.val)) == (240, 60)


def test_image_folder_test_subfolder(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("test", 3)):
        for label in ("a", "b"):
            folder = tmp_path / "images" / split / label
            folder.mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 255, (5, 5), dtype=np.uint8)).save(folder / f"{i}.png")
    common = ["data=image_folder", f"data.path={tmp_path / 'images'}"]
    data = data_of(*common)  # val_split 0.2 by default: validation from train/, test/ the test set
    assert (len(data), len(data.val), len(data.test)) == (10, 2, 6)
    validated = data_of(*common, "data.val_split=0")
    assert validated.test is None and len(validated.val) == 6


# ---------------------------------------------------------------- one run
def test_a_run_tests_once_at_the_end_and_eval_reads_any_split(tmp_path):
    folder = tmp_path / "run"
    summary = run_in_process(folder, "data=digits", "model=logistic", "optim.epochs=3", "data.test_split=0.2")
    assert summary["splits"] == {"train": 1150, "val": 288, "test": 359}
    test = summary["test"]
    assert set(test["final"]) == {"loss", "accuracy", "f1"} and test["best"]["epoch"] == summary["best"]["epoch"]
    assert not any(key.startswith("test_") for key in csv_rows(folder / "epochs.csv")[0])  # never during training
    code = gdrun_cli(f"eval={folder}", "split=test", "weights=final")
    assert code.returncode == 0, code.stderr
    from gdrun import load_run

    evaluated = load_run(folder).evaluate(("test",), "final")
    assert evaluated["test_loss"] == pytest.approx(test["final"]["loss"], rel=1e-6)
    assert evaluated["test_f1"] == pytest.approx(test["final"]["f1"])


def test_classes_csv_is_sklearns_per_class_table_of_the_final_model(tmp_path):
    folder = tmp_path / "run"
    summary = run_in_process(folder, "data=digits", "model=logistic", "optim.epochs=2")
    rows = csv_rows(folder / "classes.csv")
    assert [r["class"] for r in rows] == list(range(10))  # read back as numbers
    counts = np.array([[r[f"predicted_{j}"] for j in range(10)] for r in rows]).astype(int)
    true = np.repeat(np.arange(10), counts.sum(axis=1))
    predicted = np.concatenate([np.repeat(np.arange(10), row) for row in counts])
    precision, recall, f1, support = precision_recall_fscore_support(true, predicted, zero_division=0)
    for i, row in enumerate(rows):
        assert (row["precision"], row["recall"], row["f1"], row["support"]) == pytest.approx(
            (precision[i], recall[i], f1[i], support[i])
        )
    assert counts.sum() == summary["splits"]["val"]
    assert np.trace(counts) / counts.sum() == pytest.approx(summary["final"]["val_accuracy"])
    assert np.mean(f1) == pytest.approx(summary["final"]["val_f1"])  # epochs.csv's macro F1, the same numbers


def test_regression_metrics_by_hand(tmp_path):
    folder = tmp_path / "run"
    summary = run_in_process(folder, "lab=linreg_sgd", "optim.epochs=2", "data.val_split=0.25", "data.test_split=0.2")
    final = summary["final"]
    assert final["val_rmse"] == pytest.approx(final["val_loss"] ** 0.5, rel=1e-5)  # loss=mse: RMSE² is the loss
    assert final["train_rmse"] == pytest.approx(final["train_loss"] ** 0.5, rel=1e-5)
    assert final["val_mae"] <= final["val_rmse"] and final["val_r2"] <= 1
    assert summary["test"]["final"]["rmse"] == pytest.approx(summary["test"]["final"]["loss"] ** 0.5, rel=1e-5)
    header = list(csv_rows(folder / "epochs.csv")[0])
    assert header[5:] == ["train_rmse", "train_mae", "train_r2", "val_rmse", "val_mae", "val_r2", "lr", "seconds"]


def test_select_metric_is_the_headline(tmp_path):
    summary = run_in_process(
        tmp_path / "run", "data=digits", "model=logistic", "optim.epochs=2", "select.metric=val_f1"
    )
    assert summary["best"]["metric"] == "val_f1"
    assert summary["best"]["value"] == summary["best_by_metric"]["val_f1"]["value"]


@pytest.mark.parametrize(
    "overrides, said",
    [
        (["select.metric=test_accuracy"], "the test set never chooses a model"),
        (["select.metric=val_precision"], "select.metric=val_precision must be a training or validation metric"),
        (["select.metric=val_rmse"], "is not a metric of this multiclass run"),
        (["data.fold=1"], "data.fold=1 needs data.folds"),
        (["data.folds=3", "data.fold=3"], "data.fold=3 must be a fold of data.folds=3: 0 to 2"),
        (["data.folds=1"], "data.folds=1 must be 0 (no cross-validation) or a whole number of folds, 2 or more"),
        (["data.test_split=1.5"], "data.test_split=1.5 must be in [0, 1)"),
    ],
)
def test_bad_selection_values_are_refused(gdrun_main, tmp_path, overrides, said):
    run = tmp_path / "run"
    code, out, err = gdrun_main("data=digits", "model=logistic", "optim.epochs=1", *overrides, f"hydra.run.dir={run}")
    assert code == 2 and said in err and len(err.strip().splitlines()) <= 2, err
    assert "Traceback" not in out + err and not run.exists()


def test_official_test_split_refuses_test_split(gdrun_main, mnist_root, tmp_path):
    run = tmp_path / "run"
    code, _, err = gdrun_main(
        "data=mnist", f"data.root={mnist_root}", "data.download=false", "data.test_split=0.2", f"hydra.run.dir={run}"
    )
    assert code == 2 and "set data.val_split" in err and not run.exists(), err


# ---------------------------------------------------------------- a sweep's chosen model
LRS = (0.0005, 0.005, 0.05)


def mnist_sweep(root, data_root):
    common = ["data=mnist", f"data.root={data_root}", "data.download=false", "model=logistic"]
    common += ["data.val_split=0.2", "optim.epochs=2", "optim.batch_size=20"]
    make_sweep(root, [[*common, f"optim.lr={lr}"] for lr in LRS])
    summarize(root, plots=False)
    return root


def test_best_json_is_the_summarys_best_job_with_its_weights(tmp_path, mnist_root):
    sweep = mnist_sweep(tmp_path / "sweep", mnist_root)
    best = json.loads((sweep / "best.json").read_text())
    rows = read_summary(sweep)
    top = max(rows, key=lambda row: row["best_value"])
    assert best["metric"] == "val_accuracy" and best["job"] == top["job"]
    assert best["settings"] == {"optim.lr": top["optim.lr"]}
    assert best["validation"] == {"value": top["best_value"], "epoch": top["best_epoch"]}
    job_summary = json.loads((sweep / str(top["job"]) / "summary.json").read_text())
    assert best["test"] == {k: v for k, v in job_summary["test"]["best"].items() if k != "epoch"}
    assert all(top[f"test_{k}"] == pytest.approx(v) for k, v in best["test"].items())  # summary.csv's test columns
    weights = torch.load(sweep / "best_model.pt", weights_only=True)
    checkpoint = torch.load(sweep / str(top["job"]) / "checkpoints" / "best.pt", weights_only=True)
    torch.testing.assert_close(weights, checkpoint["model"], rtol=0, atol=0)


def test_corrupted_test_labels_change_no_choice(tmp_path, mnist_root):
    clean = mnist_sweep(tmp_path / "clean", mnist_root)
    raw = mnist_root / "MNIST" / "raw"
    corrupt_root = tmp_path / "corrupt_data"
    (corrupt_root / "MNIST").mkdir(parents=True)
    import shutil

    shutil.copytree(raw, corrupt_root / "MNIST" / "raw")
    _, test_labels = idx.split_files(corrupt_root / "MNIST" / "raw", train=False)
    labels = np.frombuffer(test_labels.read_bytes()[8:], dtype=np.uint8)
    idx.write_idx_labels(test_labels, (labels + 1) % 10)  # every test label wrong
    corrupt = mnist_sweep(tmp_path / "corrupt", corrupt_root)
    ours, theirs = (json.loads((s / "best.json").read_text()) for s in (clean, corrupt))
    assert ours["job"] == theirs["job"] and ours["validation"] == theirs["validation"]
    torch.testing.assert_close(
        torch.load(clean / "best_model.pt", weights_only=True),
        torch.load(corrupt / "best_model.pt", weights_only=True),
        rtol=0,
        atol=0,
    )
    assert ours["test"]["accuracy"] != theirs["test"]["accuracy"]  # the test set was read, and only reported


def test_cross_validation_selects_on_the_mean_over_folds(tmp_path):
    common = ["data=digits", "model=logistic", "optim.epochs=1", "data.folds=3", "data.test_split=0.2"]
    jobs = [[*common, f"optim.lr={lr}", f"data.fold={fold}"] for lr in (0.01, 0.3) for fold in range(3)]
    sweep = make_sweep(tmp_path / "cv", jobs)
    summarize(sweep, plots=False)
    groups = csv_rows(sweep / "groups.csv")
    assert [g["n"] for g in groups] == [3, 3] and "test_accuracy_mean" in groups[0]
    best = json.loads((sweep / "best.json").read_text())
    chosen = max(groups, key=lambda g: g["best_value_mean"])
    assert best["over"] == ["data.fold"] and best["settings"] == {"optim.lr": chosen["optim.lr"]}
    assert best["mean"]["val_accuracy"] == pytest.approx(chosen["best_value_mean"])
    assert best["mean"]["test_accuracy"] == pytest.approx(chosen["test_accuracy_mean"])
    rows = [r for r in read_summary(sweep) if r["optim.lr"] == chosen["optim.lr"]]
    assert sorted(best["jobs"]) == sorted(r["job"] for r in rows)
    assert best["validation"]["value"] == max(r["best_value"] for r in rows)


def test_a_run_trained_further_is_tested_again_with_its_best_checkpoint(tmp_path):
    from gdrun import load_run
    from gdrun.jobs import resume_job

    folder = tmp_path / "run"
    run_in_process(folder, "data=digits", "model=logistic", "optim.epochs=2", "data.test_split=0.2")
    summary = resume_job(folder, ["optim.epochs=3"])
    assert summary["epochs"] == 3 and summary["test"]["best"]["epoch"] == summary["best"]["epoch"]
    evaluated = load_run(folder).evaluate(("test",), "best")
    assert evaluated["test_accuracy"] == pytest.approx(summary["test"]["best"]["accuracy"])
    assert evaluated["test_loss"] == pytest.approx(summary["test"]["best"]["loss"], rel=1e-6)
