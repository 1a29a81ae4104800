"""What a classifier gets right and wrong: a confusion matrix and a grid of images, misclassified first.

The confusion matrix is drawn from the run's classes.csv (training.finishing: the final model's
confusion counts on the validation set, else the training set, beside its per-class precision,
recall and F1), so the picture shows the very numbers the table holds. The image grid needs the
images, and a run folder from before classes.csv has none: for them the predictions are
recomputed with gdrun's own builders from model.pt and the config (the same seed holds out the
same samples). Nothing is downloaded: a dataset no longer on disk skips those pictures.
"""

import csv
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, cast

import numpy as np
from omegaconf import OmegaConf

from gdrun.plots import style
from gdrun.rundir.layout import EPOCHS
from gdrun.rundir.reader import RunFolder

log = logging.getLogger(__name__)

GRID_ROWS, GRID_COLUMNS = 4, 8
# The image grid's margins (inches) and the gaps between images (fractions of an image's side: room
# for the two-line titles above them).
GRID_MARGINS = {"left": 0.1, "right": 0.1, "top": 1.0, "bottom": 0.1}
GRID_GAPS = (0.2, 0.45)
# Samples per forward pass when predicting, so a large validation set never needs one huge activation.
CHUNK = 2_000
# Counts are written in the cells of confusion matrices up to this many classes.
MAX_ANNOTATED = 20


@dataclass
class Predictions:
    x: np.ndarray  # (n, ...) the inputs, images as (n, channels, height, width)
    true: np.ndarray  # (n,) class indices
    predicted: np.ndarray  # (n,)
    classes: List[str]
    split: str  # "validation" or "training"

    @property
    def accuracy(self) -> float:
        return float((self.true == self.predicted).mean())


def predictions(run: RunFolder) -> Optional[Predictions]:
    """The final model's classes on the validation set (else the training set); None for regression."""
    cfg = run.config
    if cfg is None or not run.paths.model.exists():
        return None
    epochs = run.columns(EPOCHS)
    if epochs is None or np.isnan(epochs["train_accuracy"][0]):
        return None  # regression: nothing to confuse
    import torch

    from gdrun.training.build import build_data, build_saved_model, model_args
    from gdrun.training.epoch import predict
    from gdrun.training.parts import threshold

    data_cfg = cast(Dict[str, Any], OmegaConf.to_container(cfg.data, resolve=True))  # cfg.data is a mapping
    if data_cfg.get("root") is not None and run.launch_dir is not None:
        data_cfg["root"] = str(run.launch_dir / Path(data_cfg["root"]).expanduser())  # relative to where gdrun ran
    if "download" in data_cfg:
        data_cfg["download"] = False
    scaling = (run.model_args or {}).get("input_scaling")  # the run's own standardization, as recorded
    data = build_data(OmegaConf.create(data_cfg), cfg.seed, torch.device("cpu"), scaling)
    split, name = (data.val, "validation") if data.val is not None else (data, "training")
    state = torch.load(run.paths.model, map_location="cpu", weights_only=True)
    model = build_saved_model(cfg.model, run.model_args or model_args(data, cfg.loss.output), state)
    cut = threshold(cfg.loss.output)  # as the run decided class 1
    with torch.no_grad():
        predicted = torch.cat(
            [predict(model(split.x[i : i + CHUNK]), split.task, cut).reshape(-1) for i in range(0, len(split), CHUNK)]
        )
    classes = data.classes or ["0", "1"]
    return Predictions(split.x.numpy(), split.y.reshape(-1).long().numpy(), predicted.long().numpy(), classes, name)


@dataclass
class Confusion:
    """Confusion counts, [i, j] = samples of true class i predicted as j, and the set they were counted on."""

    counts: np.ndarray  # (k, k) ints
    classes: List[str]
    split: str  # "validation" or "training"


def saved_confusion(run: RunFolder) -> Optional[Confusion]:
    """The confusion counts classes.csv holds (its predicted_<class> columns); None without the file."""
    path = run.paths.classes
    if not path.is_file():
        return None
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return None
    classes = [row["class"] for row in rows]
    counts = np.array([[int(row[f"predicted_{name}"]) for name in classes] for row in rows])
    val = ((run.summary or {}).get("splits") or {}).get("val")
    return Confusion(counts, classes, "validation" if val else "training")


def counted(pred: Predictions) -> Confusion:
    k = len(pred.classes)
    counts = np.zeros((k, k), dtype=int)
    np.add.at(counts, (pred.true, pred.predicted), 1)
    return Confusion(counts, pred.classes, pred.split)


def draw_predictions(run: RunFolder, out: Path, formats: Sequence[str]) -> List[Path]:
    """confusion.png for classifiers (from classes.csv when the run wrote one) and, for image data, images.png."""
    confusion = saved_confusion(run)
    written = [] if confusion is None else draw_confusion(confusion, run.title(), out, formats)
    images = len((run.model_args or {}).get("input_shape") or []) == 3
    if confusion is not None and not images:
        return written
    try:
        pred = predictions(run)
    except Exception as error:  # noqa: BLE001 - e.g. the images are no longer under data.root
        what = "images" if confusion is not None else "confusion matrix"
        log.info("no %s for %s: could not rebuild its data or model (%s)", what, run.path, error)
        return written
    if pred is None:
        return written
    if confusion is None:
        written += draw_confusion(counted(pred), run.title(), out, formats)
    if pred.x.ndim == 4:
        written += draw_images(pred, run.title(), out, formats)
    return written


def draw_confusion(confusion: Confusion, subtitle: str, out: Path, formats: Sequence[str]) -> List[Path]:
    counts, classes = confusion.counts, confusion.classes
    k = len(classes)
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    total = int(counts.sum())
    accuracy = np.trace(counts) / max(total, 1)
    size = min(4 + 0.5 * k, 10)
    longest = max(map(len, classes))
    fig = style.figure(
        size + 1.6, size, margins={"left": 0.7 + 0.07 * longest, "bottom": 0.6 + 0.05 * longest, "right": 0.2}
    )
    ax = fig.add_subplot()
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, shrink=0.8).set_label("share of the true class")
    if k <= MAX_ANNOTATED:
        for (i, j), n in np.ndenumerate(counts):
            if n:
                ax.text(
                    j,
                    i,
                    str(n),
                    ha="center",
                    va="center",
                    fontsize="small",
                    color="white" if share[i, j] > 0.6 else "black",
                )
    ax.set_xticks(
        range(k),
        classes,
        rotation=45 if longest > 2 else 0,
        ha="right" if longest > 2 else "center",
    )
    ax.set_yticks(range(k), classes)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    style.title(
        fig,
        f"Confusion matrix on the {confusion.split} set ({total} samples, accuracy {100 * accuracy:.1f}%)",
        subtitle,
    )
    return style.save(fig, out, "confusion", formats)


def draw_images(pred: Predictions, subtitle: str, out: Path, formats: Sequence[str]) -> List[Path]:
    """images.png: a grid of images, each titled with its predicted and true class, misclassified first.

    One axes holds the whole grid, laid out in inches as a grid of subplots would be: 32 axes of
    their own would cost two thirds of the picture's time.
    """
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import Rectangle

    wrong = np.flatnonzero(pred.true != pred.predicted)
    right = np.flatnonzero(pred.true == pred.predicted)
    shown = np.r_[wrong, right][: GRID_ROWS * GRID_COLUMNS]
    width, height = 1.5 * GRID_COLUMNS, 1.75 * GRID_ROWS + 0.8
    fig = style.figure(width, height, margins={})
    # Data coordinates are inches from the grid's lower left corner.
    margin = GRID_MARGINS
    area_w, area_h = width - margin["left"] - margin["right"], height - margin["top"] - margin["bottom"]
    ax = fig.add_axes((margin["left"] / width, margin["bottom"] / height, area_w / width, area_h / height))
    cell_w = area_w / (GRID_COLUMNS + (GRID_COLUMNS - 1) * GRID_GAPS[0])
    cell_h = area_h / (GRID_ROWS + (GRID_ROWS - 1) * GRID_GAPS[1])
    side = min(cell_w, cell_h)  # the images are square, centred in their cells
    frames = []
    for n, i in enumerate(shown):
        row, column = divmod(n, GRID_COLUMNS)
        left = column * cell_w * (1 + GRID_GAPS[0]) + (cell_w - side) / 2
        top = area_h - row * cell_h * (1 + GRID_GAPS[1]) - (cell_h - side) / 2
        image = pred.x[i]
        ax.imshow(
            image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0),
            cmap="gray_r",
            extent=(left, left + side, top - side, top),
        )
        frames.append(Rectangle((left, top - side), side, side))
        ok = pred.true[i] == pred.predicted[i]
        ax.annotate(
            f"pred {pred.classes[pred.predicted[i]]}\ntrue {pred.classes[pred.true[i]]}",
            (left + side / 2, top),
            xytext=(0, 6),
            textcoords="offset points",
            ha="center",
            va="baseline",
            fontsize=8,
            color="tab:green" if ok else "tab:red",
        )
    ax.add_collection(PatchCollection(frames, facecolor="none", edgecolor="black", linewidth=0.8))
    ax.set_xlim(0, area_w)
    ax.set_ylim(0, area_h)
    ax.set_axis_off()
    style.title(
        fig,
        f"{pred.split.capitalize()} images, misclassified first (red): {len(wrong)} of {len(pred.true)} wrong",
        subtitle,
    )
    return style.save(fig, out, "images", formats)
