"""torchvision's raw MNIST (IDX) files: write small ones for offline runs and tests; say what is wrong with one."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

# IDX magic numbers: two zero bytes, the element type (0x08 = unsigned byte), the number of dims.
_IMAGES_MAGIC = 0x00000803
_LABELS_MAGIC = 0x00000801

# torchvision.datasets.MNIST looks in root/<ClassName>/raw/ for these four *uncompressed* files
# (its _check_exists strips the ".gz" of each resource and only checks that the file exists).
_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
DATASETS = ("MNIST", "FashionMNIST")


def split_files(raw: str | os.PathLike, train: bool) -> tuple[Path, Path]:
    """The image and label files of one split, as torchvision's MNIST class reads them."""
    prefix = "train" if train else "test"
    return Path(raw) / _FILES[f"{prefix}_images"], Path(raw) / _FILES[f"{prefix}_labels"]


def idx_problem(path: str | os.PathLike, images: bool) -> str | None:
    """What is wrong with an IDX image (or label) file, in a few words; None if its header and size agree."""
    expected = _IMAGES_MAGIC if images else _LABELS_MAGIC
    with open(path, "rb") as f:
        head = f.read(4)
        if len(head) < 4:
            return f"it is truncated: {len(head)} bytes, too short for its header"
        magic = int.from_bytes(head, "big")
        if magic != expected:
            kind = "image" if images else "label"
            return f"it does not start with the IDX {kind} file's magic number 0x{expected:08x} (it has 0x{magic:08x})"
        ndim = magic & 0xFF
        dims_bytes = f.read(4 * ndim)
    if len(dims_bytes) < 4 * ndim:
        return f"it is truncated: {4 + len(dims_bytes)} bytes, too short for its header"
    dims = [int(d) for d in np.frombuffer(dims_bytes, dtype=">u4")]
    needed = 4 * (1 + ndim) + math.prod(dims)
    size = Path(path).stat().st_size
    if size != needed:
        state = "truncated" if size < needed else "longer than its header says"
        shape = " x ".join(map(str, dims))
        return f"it is {state}: {size:,} bytes, where the {shape} values of its header need {needed:,}"
    return None


def write_idx_images(path: str | os.PathLike, images: np.ndarray) -> None:
    """Write an N×28×28 uint8 array as an IDX3 image file."""
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise ValueError(f"images must be uint8 N×H×W, got {images.dtype} {images.shape}")
    _write_idx(path, _IMAGES_MAGIC, images)


def write_idx_labels(path: str | os.PathLike, labels: np.ndarray) -> None:
    """Write a length-N uint8 array as an IDX1 label file."""
    labels = np.asarray(labels)
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise ValueError(f"labels must be uint8 of shape (N,), got {labels.dtype} {labels.shape}")
    _write_idx(path, _LABELS_MAGIC, labels)


def _write_idx(path: str | os.PathLike, magic: int, array: np.ndarray) -> None:
    """Write the big-endian IDX header (magic, then one uint32 per dim) followed by the raw bytes."""
    header = np.array([magic, *array.shape], dtype=">u4")
    with open(path, "wb") as f:
        f.write(header.tobytes())
        f.write(np.ascontiguousarray(array).tobytes())


def make_mnist_like(n: int, seed: int = 0, templates_seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Return n learnable 28×28 uint8 images and their uint8 labels 0-9."""
    templates = _class_templates(np.random.default_rng(templates_seed))  # 10×28×28 float in [0, 1]
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)

    # Shift each image by up to ±2 pixels so that a linear model cannot be perfect (as with real digits);
    # padding once and slicing per shift keeps it vectorised over the 25 possible shifts.
    padded = np.pad(templates, ((0, 0), (2, 2), (2, 2)))
    shifts = rng.integers(0, 5, size=(n, 2))
    images = np.empty((n, 28, 28), dtype=np.float32)
    for dy in range(5):
        for dx in range(5):
            sel = np.flatnonzero((shifts[:, 0] == dy) & (shifts[:, 1] == dx))
            images[sel] = padded[labels[sel], dy : dy + 28, dx : dx + 28]

    # Per-image contrast and a faint copy of another class's template make some samples ambiguous,
    # which keeps accuracy after 5 epochs at lr 0.001 in the same range as real MNIST (~80-90 %).
    contrast = rng.uniform(0.5, 1.0, size=(n, 1, 1)).astype(np.float32)
    other = (labels + rng.integers(1, 10, size=n)) % 10
    mix = rng.uniform(0.0, 0.6, size=(n, 1, 1)).astype(np.float32)
    images *= contrast
    images += mix * templates[other]
    # float32 normals and in-place ops keep 60,000 images to about a second (float64 takes 3x longer).
    noise = rng.standard_normal(size=images.shape, dtype=np.float32)
    noise *= 0.25
    images += noise
    np.clip(images, 0.0, 1.0, out=images)
    images *= 255
    return images.astype(np.uint8), labels


def _class_templates(rng: np.random.Generator) -> np.ndarray:
    """Return 10 distinct 28×28 templates in [0, 1], each a few random bright strokes inside the 20×20 centre."""
    yy, xx = np.mgrid[0:28, 0:28].astype(np.float32)
    templates = np.zeros((10, 28, 28), dtype=np.float32)
    for c in range(10):
        # Gaussian blobs along a random walk look like pen strokes and, unlike white noise, overlap
        # between classes the way digit shapes do.
        point = rng.uniform(9, 19, size=2)
        for _ in range(8):
            point = np.clip(point + rng.normal(0, 3, size=2), 5, 22)
            templates[c] += np.exp(-((yy - point[0]) ** 2 + (xx - point[1]) ** 2) / (2 * 1.8**2))
    return np.clip(templates, 0.0, 1.0)


def write_mnist_like(
    root: str | os.PathLike,
    n_train: int = 60_000,
    n_test: int = 10_000,
    dataset: str = "MNIST",
    seed: int = 0,
) -> Path:
    """Write train and test IDX files under root/<dataset>/raw/ and return that folder."""
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")
    raw = Path(root) / dataset / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    # Train and test share the class templates (templates_seed) but draw different samples (seed).
    x_train, y_train = make_mnist_like(n_train, seed=2 * seed + 1, templates_seed=seed)
    x_test, y_test = make_mnist_like(n_test, seed=2 * seed + 2, templates_seed=seed)
    write_idx_images(raw / _FILES["train_images"], x_train)
    write_idx_labels(raw / _FILES["train_labels"], y_train)
    write_idx_images(raw / _FILES["test_images"], x_test)
    write_idx_labels(raw / _FILES["test_labels"], y_test)
    return raw
