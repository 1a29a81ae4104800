"""Image datasets: MNIST and Fashion-MNIST through torchvision's own classes, and sklearn's 8x8 digits.

torchvision is imported here and only here, so runs on other data never pay for it (~1.5 s).
"""

from pathlib import Path

import torch

from gdrun.errors import GdrunError
from gdrun.training.data import Dataset


def torchvision_dataset(dataset: str, root: str, download: bool) -> Dataset:
    """The official train split for training and the test split for validation, pixels scaled to [0, 1].

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
    return Dataset(x, y, "multiclass", val=val, classes=classes)


def _load_split(cls, root: str, train: bool, download: bool):
    try:
        return cls(root, train=train, download=download)
    except RuntimeError as error:
        where = Path(root) / cls.__name__ / "raw"
        hint = (
            "the download failed (no network?): place the four IDX files there"
            if download
            else "place the four IDX files there, or allow data.download=true"
        )
        raise GdrunError(
            f"{cls.__name__} not found under data.root={root} (looked in {where}); "
            f"{hint}.\n  torchvision said: {str(error).splitlines()[0]}"
        ) from error


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
