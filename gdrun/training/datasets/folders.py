"""data=image_folder: a folder of images, one sub-folder per class, through torchvision's own ImageFolder.

ImageFolder finds the classes (sorted sub-folder names) and the image files; the images are
decoded once into one uint8 tensor and kept in gdrun's cache (datasets/cache.py), so a second
run reads tensors instead of thousands of files. A `train/` sub-folder with `val/` and/or `test/`
beside it holds the training set and those sets; a test/ without val/ is the validation set until
data.val_split holds validation out of train/ (then test/ is the test set, as MNIST's official split).
Otherwise the whole folder is the training set and data.val_split holds some out.
"""

import logging
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from gdrun.errors import GdrunError
from gdrun.training.data import Dataset
from gdrun.training.datasets import cache
from gdrun.training.datasets.tabular import source_path

log = logging.getLogger("gdrun")

# PIL modes of one channel: such images load as one channel unless data.grayscale=false.
GRAY_MODES = {"1", "L", "LA", "I", "I;16", "F"}
SPLITS = ("train", "val", "test")
# How many of scikit-learn's digits the sample folder holds (data.path not set).
SAMPLE_DIGITS = 600


def image_folder(path: Optional[str], root: str, size: Optional[Sequence[int]], grayscale: Optional[bool]) -> Dataset:
    """The folder's images as (n, channels, height, width) floats in [0, 1], classes named by its sub-folders."""
    if path is None:
        folder = cache.sample("digits", _write_digits, "data=image_folder")
    else:
        folder = source_path(path, root, kind="folder")
    names = [name for name in SPLITS if (folder / name).is_dir()]
    split = names[:1] == ["train"] and len(names) > 1
    parts = [folder / name for name in names] if split else [folder]
    # The old key (True: train/ and val/) for the layout it named, so its cached tensors stay valid.
    layout = (names == ["train", "val"]) or (names if split else False)
    settings = {"size": list(size) if size is not None else None, "grayscale": grayscale, "split": layout}
    loaded = cache.cached("image_folder", [folder], settings, lambda: _load(parts, size, grayscale))
    classes = list(loaded["classes"])
    x, y = loaded["x"].float().div(255), loaded["y"]
    meta = {"source": str(folder)}
    if not split:
        return Dataset(x, y, "multiclass", classes=classes, meta=meta)
    val, test = (
        Dataset(loaded[f"x_{name}"].float().div(255), loaded[f"y_{name}"], "multiclass", classes=classes)
        if f"x_{name}" in loaded
        else None
        for name in ("val", "test")
    )
    if val is None:  # test/ alone: the validation set until data.val_split holds one out of train/
        return Dataset(x, y, "multiclass", test, classes, {**meta, "official_test": True})
    return Dataset(x, y, "multiclass", val, classes, {**meta, "own_split": True}, test)


def _load(parts: List[Path], size: Optional[Sequence[int]], grayscale: Optional[bool]) -> Dict:
    """Decode every image of the folder (or of train/ and val/, test/) once: uint8 tensors, labels, class names;
    x_val, y_val and x_test, y_test for the sub-folders after the first."""
    from torchvision.datasets import ImageFolder

    found = []
    for part in parts:
        try:
            found.append(ImageFolder(str(part), loader=_open))
        except FileNotFoundError as error:
            raise GdrunError(_no_images(part, str(error))) from None
    classes = found[0].classes
    if len(classes) < 2:
        raise GdrunError(
            f"{parts[0]} has one class folder ({classes[0]}): a classifier needs at least two, each a sub-folder "
            f"of images named after its class."
        )
    samples = [(path, label) for path, label in found[0].samples]
    ends = [len(samples)]
    for part, other in zip(parts[1:], found[1:]):
        unknown = sorted(set(other.classes) - set(classes))
        if unknown:
            raise GdrunError(f"{part} has class folders that {parts[0]} lacks: {', '.join(unknown)}.")
        samples += [(path, classes.index(other.classes[label])) for path, label in other.samples]
        ends.append(len(samples))
    images = _decode([path for path, _ in samples], size, grayscale)
    labels = torch.tensor([label for _, label in samples], dtype=torch.long)
    loaded = {"x": images[: ends[0]], "y": labels[: ends[0]], "classes": classes}
    for part, start, end in zip(parts[1:], ends, ends[1:]):
        loaded.update({f"x_{part.name}": images[start:end], f"y_{part.name}": labels[start:end]})
    return loaded


def _open(path: str):
    """ImageFolder's loader: the image as it is stored (its mode tells gray from colour)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            return image
    except (UnidentifiedImageError, OSError) as error:
        raise GdrunError(f"{path} is not an image gdrun can read ({error}); remove it or replace it.") from None


def _decode(paths: List[str], size: Optional[Sequence[int]], grayscale: Optional[bool]) -> torch.Tensor:
    """(n, channels, height, width) uint8: one channel for gray images (or grayscale=true), three for colour."""
    from PIL import Image

    arrays: List[np.ndarray] = []
    first: Optional[Tuple[str, Tuple[int, int]]] = None
    for path in paths:
        image = _open(path)
        if size is None:
            if first is None:
                first = (path, image.size)
            elif image.size != first[1]:
                (w1, h1), (w2, h2) = first[1], image.size
                raise GdrunError(
                    f"the images differ in size: {first[0]} is {h1}x{w1} (height x width), {path} is {h2}x{w2}; "
                    f"give data.size=[{h1},{w1}] to resize them all to one size."
                )
        else:
            image = image.resize((int(size[1]), int(size[0])), Image.Resampling.BILINEAR)
        gray = grayscale if grayscale is not None else image.mode in GRAY_MODES
        if gray:
            arrays.append(np.asarray(image.convert("L"))[None])
        else:
            arrays.append(np.asarray(image.convert("RGB")).transpose(2, 0, 1))
    if grayscale is None and len({a.shape[0] for a in arrays}) > 1:  # some gray, some colour: colour
        arrays = [np.repeat(a, 3, axis=0) if a.shape[0] == 1 else a for a in arrays]
    return torch.from_numpy(np.stack(arrays))


def _no_images(folder: Path, said: str) -> str:
    """What torchvision's ImageFolder found missing, said with what a class folder is."""
    layout = f"put each class's images in a sub-folder named after it ({folder}/cat/1.png, {folder}/dog/2.png)"
    if "class folder" in said:
        return f"{folder} holds no class folders: {layout}."
    extensions = ".png, .jpg, .jpeg, .bmp, .gif, .tif, .webp, ..."
    return f"{folder}: {said.split('. ')[0]}; {layout}, as {extensions} files."


def _write_digits(path: Path) -> None:
    """scikit-learn's 8x8 digits as PNG files in class folders 0/ to 9/ (white ink on black, as MNIST)."""
    from PIL import Image
    from sklearn.datasets import load_digits

    bunch = load_digits()
    for i, (pixels, label) in enumerate(zip(bunch.images[:SAMPLE_DIGITS], bunch.target[:SAMPLE_DIGITS])):
        folder = path / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray((pixels * 255 / 16).astype(np.uint8)).save(folder / f"{i:04d}.png")
