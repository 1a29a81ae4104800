"""Image datasets: MNIST and Fashion-MNIST through torchvision's own classes, and sklearn's 8x8 digits.

torchvision is imported here and only here, so runs on other data never pay for it (~1.5 s).
"""

import importlib.util
from pathlib import Path
from typing import Any, Dict, Optional

import torch

from gdrun.errors import GdrunError
from gdrun.training.data import Dataset
from gdrun.training.datasets import cache, idx


def torchvision_dataset(dataset: str, root: str, download: bool) -> Dataset:
    """The official train split for training and the test split for validation, pixels scaled to [0, 1].

    meta["official_test"]: once validation comes from the training set (data.val_split, data.folds),
    the official test split is the test set instead (training.splits).

    Reads the class's uint8 tensor once instead of calling ToTensor per image; the values are
    the same as ToTensor's (float, then divided by 255). The decoded tensors are kept in gdrun's
    cache (datasets.cache), keyed by the four raw IDX files: a second run reads them back
    without importing torchvision (~1.5 s). Missing files go through torchvision (its download).
    """
    root = str(Path(root).expanduser().resolve())
    raw = Path(root) / dataset / "raw"
    files = [path for train in (True, False) for path in idx.split_files(raw, train)]
    if all(path.is_file() for path in files):
        loaded = cache.cached(
            "torchvision", files, {"dataset": dataset}, lambda: _decode_torchvision(dataset, root, download)
        )
    elif not download:  # said at once, without importing torchvision (~1.5 s) to hear it say so
        missing = ", ".join(path.name for path in files if not path.is_file())
        raise GdrunError(
            f"{dataset} not found under data.root={root} (looked in {raw}); "
            f"place the four IDX files there, or allow data.download=true.\n  missing: {missing}"
        )
    else:
        loaded = _decode_torchvision(dataset, root, download)
    classes = list(loaded["classes"])
    # The official test split validates (gdrun.config.splits names it "test").
    val = Dataset(loaded["test_x"].float().div(255), loaded["test_y"], "multiclass", classes=classes)
    x, y = loaded["x"].float().div(255), loaded["y"]
    return Dataset(x, y, "multiclass", val=val, classes=classes, meta={"official_test": True})


def _decode_torchvision(dataset: str, root: str, download: bool) -> Dict[str, Any]:
    """Both splits through torchvision's own class: uint8 images (n, 1, 28, 28), labels, class names."""
    import torchvision

    cls = getattr(torchvision.datasets, dataset)
    train, test = [_load_split(cls, root, train, download) for train in (True, False)]
    return {
        "x": train.data.unsqueeze(1).contiguous(),
        "y": train.targets.long(),
        "test_x": test.data.unsqueeze(1).contiguous(),
        "test_y": test.targets.long(),
        "classes": [str(c) for c in train.classes],
    }


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


def digits() -> Dataset:
    """scikit-learn's 1,797 8x8 handwritten digits (shipped with the package, no network), scaled to [0, 1].

    Kept in gdrun's cache keyed by the data file scikit-learn ships (found without importing
    scikit-learn, ~1.3 s): a second run reads the tensors back.
    """
    source = digits_file()
    loaded = cache.cached("digits", [source], {}, _decode_digits) if source is not None else _decode_digits()
    x = loaded["x"] / 16.0  # pixels are 0..16
    return Dataset(x, loaded["y"], "multiclass", classes=list(loaded["classes"]))


def digits_file() -> Optional[Path]:
    """sklearn/datasets/data/digits.csv.gz, where load_digits reads it; None when it is not there."""
    spec = importlib.util.find_spec("sklearn")  # finds the package without running it
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        path = Path(location) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            return path
    return None


def _decode_digits() -> Dict[str, Any]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return {
        "x": torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1),  # (1797, 1, 8, 8), 0..16
        "y": torch.tensor(bunch.target, dtype=torch.long),
        "classes": [str(c) for c in bunch.target_names],
    }
