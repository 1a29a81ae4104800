"""Image datasets: MNIST and Fashion-MNIST through torchvision's own classes, and sklearn's 8x8 digits.

torchvision is imported here and only here, so runs on other data never pay for it (~1.5 s).
"""

from pathlib import Path

import torch

from gdrun.errors import GdrunError
from gdrun.training.data import Dataset
from gdrun.training.datasets import idx


def torchvision_dataset(dataset: str, root: str, download: bool) -> Dataset:
    """The official train split for training and the test split for validation, pixels scaled to [0, 1].

    meta["official_test"]: once validation comes from the training set (data.val_split, data.folds),
    the official test split is the test set instead (training.splits).

    Reads the class's uint8 tensor once instead of calling ToTensor per image; the values are
    the same as ToTensor's (float, then divided by 255).
    """
    import torchvision

    cls = getattr(torchvision.datasets, dataset)
    root = str(Path(root).expanduser().resolve())
    splits = [_load_split(cls, root, train, download) for train in (True, False)]
    (x, y), (vx, vy) = [_as_tensors(split) for split in splits]
    classes = [str(c) for c in splits[0].classes]
    val = Dataset(vx, vy, "multiclass", classes=classes)
    return Dataset(x, y, "multiclass", val=val, classes=classes, meta={"official_test": True})


def _load_split(cls, root: str, train: bool, download: bool):
    raw = Path(root) / cls.__name__ / "raw"
    try:
        split = cls(root, train=train, download=download)
    except Exception as error:  # RuntimeError when a file is missing; a damaged one fails in many ways
        _refuse_damaged(raw, train)
        if not isinstance(error, RuntimeError):
            raise
        hint = (
            "the download failed (no network?): place the four IDX files there"
            if download
            else "place the four IDX files there, or allow data.download=true"
        )
        raise GdrunError(
            f"{cls.__name__} not found under data.root={root} (looked in {raw}); "
            f"{hint}.\n  torchvision said: {str(error).splitlines()[0]}"
        ) from error
    _refuse_mismatched(split, raw, train)
    return split


def _damaged(path: Path, problem: str) -> GdrunError:
    return GdrunError(
        f"{path} is damaged: {problem}; delete it and run again with data.download=true (or put a good copy there)."
    )


def _refuse_damaged(raw: Path, train: bool) -> None:
    """Name the split's file that torchvision could not read, and why (truncated, wrong magic number)."""
    for path, images in zip(idx.split_files(raw, train), (True, False)):
        problem = idx.idx_problem(path, images) if path.is_file() else None
        if problem is not None:
            raise _damaged(path, problem)


def _refuse_mismatched(split, raw: Path, train: bool) -> None:
    """Files that read well but do not belong together: a label per image, each label a class."""
    images, labels = idx.split_files(raw, train)
    n, m = len(split.data), len(split.targets)
    if n != m:
        raise _damaged(labels, f"it has {m:,} labels for the {n:,} images of {images.name}")
    if m and int(split.targets.max()) >= len(split.classes):
        label = int(split.targets.max())
        raise _damaged(labels, f"it has label {label}, but {type(split).__name__} has {len(split.classes)} classes")


def _as_tensors(split) -> tuple:
    x = split.data.unsqueeze(1).float().div(255)  # (n, 1, 28, 28) in [0, 1], as ToTensor
    return x, split.targets.long()


def digits() -> Dataset:
    """scikit-learn's 1,797 8x8 handwritten digits (shipped with the package, no network), scaled to [0, 1]."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0  # pixels are 0..16
    y = torch.tensor(bunch.target, dtype=torch.long)
    return Dataset(x, y, "multiclass", classes=[str(c) for c in bunch.target_names])
