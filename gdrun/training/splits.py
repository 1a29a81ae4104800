"""Training, validation and test sets, and k-fold cross-validation: which samples go where.

The order of `arrange`, as the course notes split data:
1. the test set: a dataset's official test split (MNIST's, an image folder's test/) once
   validation comes from elsewhere (data.val_split or data.folds), else `data.test_split` of the
   whole data, stratified for classification;
2. validation: fold `data.fold` of a `data.folds`-fold split of what is left, stratified, or
   `data.val_split` of it held out (training.data.hold_out, unchanged), or the dataset's own.
Every split is drawn from torch.Generator(seed): the same seed gives the same sets.
The test set is only ever evaluated at the end of a run (training.finishing), never during it.
"""

from typing import List, Optional, Tuple

import torch
from omegaconf import DictConfig

from gdrun.errors import GdrunError
from gdrun.training.data import Dataset, hold_out


def arrange(data: Dataset, cfg: DictConfig, seed: int) -> Dataset:
    """The dataset as built, with its test and validation sets as the data config asks (see the module)."""
    test_split, folds = float(cfg.get("test_split", 0.0)), int(cfg.get("folds", 0))
    if data.meta.get("official_test"):
        if test_split > 0:
            raise GdrunError(
                f"data={cfg.name} has an official test split, which is its test set once validation comes from "
                f"the training data: set data.val_split (e.g. 0.1) instead of data.test_split."
            )
        if cfg.val_split > 0 or folds:  # validation from the training set: the official split becomes the test set
            data = Dataset(data.x, data.y, data.task, None, data.classes, data.meta, test=data.val)
    elif test_split > 0:
        data = hold_out_test(data, test_split, seed)
    if folds:
        if data.meta.get("own_split"):
            raise GdrunError(
                f"data.folds={folds}: data={cfg.name} has a validation set of its own (an npz's x_val, a folder's "
                f"val/); k-fold cross-validation needs its validation folds from the training data alone."
            )
        return fold_split(data, folds, int(cfg.get("fold", 0)), seed)
    if cfg.val_split > 0 and not data.meta.get("own_split"):
        return hold_out(data, cfg.val_split, seed)
    return data


def class_labels(data: Dataset) -> Optional[torch.Tensor]:
    """Each sample's class (n,) for classification, to stratify by; None for regression."""
    if data.task == "regression":
        return None
    return data.y.reshape(len(data), -1)[:, 0].long()


def subset(data: Dataset, index: torch.Tensor) -> Dataset:
    return Dataset(data.x[index], data.y[index], data.task, classes=data.classes)


def taken_per_class(counts: torch.Tensor, fraction: float) -> torch.Tensor:
    """How many of each class to take: `fraction` of each, rounded so the total is round(n · fraction)
    (the classes with the largest remainders get the rounding's extra samples)."""
    quota = counts.double() * fraction
    taken = quota.floor().long()
    extra = int(round(float(counts.sum()) * fraction)) - int(taken.sum())
    if extra > 0:
        taken[(quota - taken).argsort(descending=True, stable=True)[:extra]] += 1
    return taken


def stratified_take(
    n: int, labels: Optional[torch.Tensor], fraction: float, seed: int
) -> Tuple[torch.Tensor, torch.Tensor]:
    """(kept, taken) sorted sample indices: a random `fraction` taken, the same fraction of every class
    when `labels` are given."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    if labels is None:
        taken = order[: int(round(n * fraction))]
    else:
        classes, counts = labels.unique(return_counts=True)
        per_class = taken_per_class(counts, fraction)
        taken = torch.cat([order[labels[order] == c][:k] for c, k in zip(classes.tolist(), per_class.tolist())])
    mask = torch.zeros(n, dtype=torch.bool)
    mask[taken] = True
    return (~mask).nonzero().squeeze(1), mask.nonzero().squeeze(1)


def hold_out_test(data: Dataset, fraction: float, seed: int) -> Dataset:
    """`fraction` of the whole data as the test set (stratified for classification); the rest to train on."""
    n = len(data)
    kept, taken = stratified_take(n, class_labels(data), fraction, seed)
    if len(taken) == 0 or len(kept) == 0:
        what = "none" if len(taken) == 0 else "all"
        raise GdrunError(
            f"data.test_split={fraction} holds out {what} of the {n:,} samples; use a fraction that leaves both a "
            f"test set and a training set (at least {1 / max(n, 1):.2g}, below 1), or 0 for no test set."
        )
    train = subset(data, kept)
    return Dataset(train.x, train.y, data.task, None, data.classes, data.meta, test=subset(data, taken))


def fold_indices(n: int, labels: Optional[torch.Tensor], folds: int, seed: int) -> List[torch.Tensor]:
    """The k folds' sample indices (sorted): disjoint, covering 0..n-1, sizes within one of each other.

    A random order, grouped by class when `labels` are given (stratified: each class dealt round the
    folds in turn), then sample i of that order goes to fold i mod k.
    """
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    if labels is not None:
        order = order[labels[order].argsort(stable=True)]
    fold_of = torch.empty(n, dtype=torch.long)
    fold_of[order] = torch.arange(n) % folds
    return [(fold_of == i).nonzero().squeeze(1) for i in range(folds)]


def fold_split(data: Dataset, folds: int, fold: int, seed: int) -> Dataset:
    """Fold `fold` of a `folds`-fold split of the training set as validation, the other folds to train on."""
    n = len(data)
    if folds > n:
        raise GdrunError(f"data.folds={folds} is more than the {n:,} training samples; use at most {n} folds.")
    chosen = fold_indices(n, class_labels(data), folds, seed)[fold]
    mask = torch.ones(n, dtype=torch.bool)
    mask[chosen] = False
    train = subset(data, mask.nonzero().squeeze(1))
    return Dataset(train.x, train.y, data.task, subset(data, chosen), data.classes, data.meta, test=data.test)
