"""Tables and arrays of the user's as datasets: data=csv, data=npz, and what a builder of your own returns.

A CSV file is read with Python's own `csv` module (quoting, embedded separators and newlines,
a `;` or tab separator found by its Sniffer); the numbers are gdrun's to check, because a bad
cell must be named by its column and line. The task follows from the target when not given:
decimals are regression; whole numbers or text with few distinct values are classes (kept by
name, sorted), trained as `multiclass` even when there are two (data.task=binary for a single
sigmoid output). `UsualLoss` (loss=auto) then picks the loss that task takes.
"""

import csv as csvlib
import logging
import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gdrun.errors import GdrunError
from gdrun.training.data import TASKS, Dataset
from gdrun.training.datasets import cache

log = logging.getLogger("gdrun")

# Whole numbers or texts with at most this many distinct values are classes; more whole numbers
# are a quantity (regression), more texts are refused (data.task=multiclass forces classes).
CLASS_LIMIT = 20
# Cells that mean "no value" (compared in lower case, spaces stripped).
MISSING_CELLS = {"", "na", "n/a", "nan", "null", "?"}
WHOLE = re.compile(r"^[+-]?\d+$")
DECIMAL_COMMA = re.compile(r"^[+-]?\d+,\d+$")
# How much of a CSV file the Sniffer reads to find its separator.
SNIFF_BYTES = 64 * 1024


# ---------------------------------------------------------------- paths
def source_path(path: Optional[str], root: str, kind: str = "file") -> Path:
    """data.path resolved against data.root; GdrunError when there is nothing there."""
    resolved = (Path(root).expanduser() / Path(str(path)).expanduser()).resolve()
    if kind == "folder" and not resolved.is_dir():
        what = "is a file, not a folder" if resolved.exists() else "does not exist"
        raise GdrunError(f"data.path={path}: {resolved} {what}; give the folder that holds one sub-folder per class.")
    if kind == "file" and not resolved.is_file():
        what = "is a folder, not a file" if resolved.is_dir() else "does not exist"
        raise GdrunError(f"data.path={path}: {resolved} {what}.")
    return resolved


# ---------------------------------------------------------------- data=csv
def csv(
    path: Optional[str],
    root: str,
    target: Optional[str],
    features: Optional[Sequence[str]],
    task: Optional[str],
    drop_missing: bool,
) -> Dataset:
    """A CSV table with a header row: `features` (default: every other column) -> `target` (default: the last)."""
    if path is None:
        file = cache.sample("iris.csv", _write_iris, "data=csv")
    else:
        file = source_path(path, root)
    columns = list(features) if features is not None else None
    settings = {"target": target, "features": columns, "task": task, "drop_missing": drop_missing}
    table = cache.cached("csv", [file], settings, lambda: _read_csv(file, target, columns, task, drop_missing))
    if table["dropped"]:
        log.warning("data.drop_missing: left out %d rows of %s with empty or NaN cells", table["dropped"], file)
    meta = {"source": str(file), "features": table["features"], "target": table["target"]}
    return Dataset(table["x"], table["y"], table["task"], classes=table["classes"], meta=meta)


def _read_csv(
    file: Path, target: Optional[str], features: Optional[List[str]], task: Optional[str], drop_missing: bool
) -> Dict[str, Any]:
    header, rows, lines = _read_rows(file)
    target = header[-1] if target is None else target
    _check_columns(file, header, [target], "data.target")
    if features is None:
        features = [name for name in header if name != target]
        if not features:
            raise GdrunError(
                f"{file} has only the column {target}: gdrun needs at least one feature column besides it."
            )
    _check_columns(file, header, features, "data.features")
    if target in features:
        raise GdrunError(f"data.target={target} is also one of data.features: a column cannot predict itself.")
    used = [header.index(name) for name in [*features, target]]
    keep, dropped = _rows_with_values(file, header, rows, lines, used, drop_missing)
    rows, lines = [rows[i] for i in keep], [lines[i] for i in keep]
    if not rows:
        raise GdrunError(f"{file} has no rows left once those with empty or NaN cells are dropped.")
    columns, text = [], []
    for name in features:
        try:
            columns.append(_numbers(file, name, [row[header.index(name)] for row in rows], lines))
        except GdrunError as error:
            text.append((name, str(error)))
    if text:  # name the first, and the columns that would do
        numeric = [name for name in features if name not in dict(text)]
        suggestion = f"data.features=[{','.join(numeric)}]" if numeric else "data.features=[...]"
        raise GdrunError(text[0][1].replace("data.features=[...]", suggestion))
    x = torch.tensor(np.stack(columns, axis=1), dtype=torch.float32)
    values = np.array([row[header.index(target)].strip() for row in rows])
    y, task, classes = targets(_typed(values), task, f"data.target={target}")
    return {
        "x": x,
        "y": y,
        "task": task,
        "classes": classes,
        "features": features,
        "target": target,
        "dropped": dropped,
    }


def _read_rows(file: Path) -> Tuple[List[str], List[List[str]], List[int]]:
    """The header and the non-blank rows, each with its line number in the file."""
    try:
        with open(file, newline="", encoding="utf-8-sig") as f:
            head = f.read(SNIFF_BYTES)
            f.seek(0)
            try:
                dialect: Any = csvlib.Sniffer().sniff(head, delimiters=",;\t")
            except csvlib.Error:  # one column, or too little text to tell: commas
                dialect = csvlib.excel
            reader = csvlib.reader(f, dialect)
            header = next(reader, None)
            rows, lines = [], []
            for row in reader:
                if row:
                    rows.append(row)
                    lines.append(reader.line_num)
    except UnicodeDecodeError as error:
        raise GdrunError(f"{file} is not text in UTF-8 (byte {error.start}): gdrun reads CSV files in UTF-8.") from None
    except csvlib.Error as error:
        raise GdrunError(f"{file} is not a CSV table: {error}.") from None
    if header is None or not any(cell.strip() for cell in header):
        raise GdrunError(f"{file} is empty: a CSV file needs a header row naming its columns, then rows of data.")
    header = [cell.strip() for cell in header]
    if all(_is_number(cell) for cell in header):
        raise GdrunError(
            f"{file} has no header row: its first line holds numbers ({', '.join(header[:4])}), not column names; "
            f"add a first line naming the columns."
        )
    for number, name in enumerate(header, start=1):
        if not name:
            raise GdrunError(f"{file}: column {number} has no name in the header row; name every column.")
        if header.count(name) > 1:
            raise GdrunError(f"{file}: the header row names two columns {name}; give every column its own name.")
    if not rows:
        raise GdrunError(f"{file} has a header row but no rows of data.")
    for row, line in zip(rows, lines):
        if len(row) != len(header):
            raise GdrunError(
                f"{file}, line {line}: {len(row)} cells, where the header row names {len(header)} columns; "
                f"every row needs one cell per column (empty cells too: a,,c)."
            )
    return header, rows, lines


def _check_columns(file: Path, header: List[str], names: Sequence[str], key: str) -> None:
    for name in names:
        if name not in header:
            shown = f"data.features={list(names)} names {name}, which" if key == "data.features" else f"{key}={name}"
            raise GdrunError(f"{shown} is not a column of {file}; its columns are: {', '.join(header)}.")


def _rows_with_values(
    file: Path, header: List[str], rows: List[List[str]], lines: List[int], used: List[int], drop: bool
) -> Tuple[List[int], int]:
    """The rows whose used cells all hold a value, and how many were left out (GdrunError unless `drop`)."""
    missing = [i for i, row in enumerate(rows) if any(row[c].strip().lower() in MISSING_CELLS for c in used)]
    if missing and not drop:
        first = rows[missing[0]]
        column = next(header[c] for c in used if first[c].strip().lower() in MISSING_CELLS)
        shown = repr(first[header.index(column)])
        raise GdrunError(
            f"{file} has empty or NaN cells in {len(missing)} of its {len(rows)} rows (the first: line "
            f"{lines[missing[0]]}, column {column}, holds {shown}); fill them, or leave those rows out with "
            f"data.drop_missing=true."
        )
    gone = set(missing)
    return [i for i in range(len(rows)) if i not in gone], len(missing)


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _numbers(file: Path, name: str, cells: List[str], lines: List[int]) -> np.ndarray:
    """A feature column as float64; GdrunError naming the first cell that is not a finite number."""
    try:
        values = np.array(cells, dtype=np.str_).astype(np.float64)
        bad = np.flatnonzero(~np.isfinite(values))
        first = int(bad[0]) if len(bad) else None
    except ValueError:  # find the first cell numpy could not read
        first = next(i for i, cell in enumerate(cells) if not _is_number(cell))
        values = np.empty(0)
    if first is None:
        return values
    cell = cells[first].strip()
    hint = " (a decimal comma? write 1.5, not 1,5)" if DECIMAL_COMMA.match(cell) else ""
    what = "is not a finite number" if _is_number(cell) else "is not a number"
    raise GdrunError(
        f"column {name} of {file} is not numeric: line {lines[first]} holds {cell!r}, which {what}{hint}; "
        f"features must be numbers: leave the column out with data.features=[...] or encode it as numbers."
    )


def _typed(values: np.ndarray) -> np.ndarray:
    """Text cells as whole numbers, decimals or text, whichever they all are."""
    if all(WHOLE.match(v) for v in values):
        return values.astype(np.int64)
    if all(_is_number(v) for v in values):
        return values.astype(np.float64)
    return values


# ---------------------------------------------------------------- targets and tasks
def targets(
    values: np.ndarray, task: Optional[str], what: str, names: Optional[Sequence[str]] = None
) -> Tuple[torch.Tensor, str, Optional[List[str]]]:
    """Targets as gdrun trains on them, their task and class names.

    Decimals: regression, float (n, outputs). Whole numbers or texts: classes, long indices (n,)
    for multiclass, float (n, 1) of 0/1 for binary; `names` are the classes' names when the
    values are indices into them (scikit-learn's target_names).
    """
    if task is not None and task not in TASKS:
        raise GdrunError(f"data.task={task} is not a task; use one of: {', '.join(TASKS)} (or null to infer it).")
    numeric = values.dtype.kind in "biuf"
    if task is None:
        task = _inferred_task(values, what)
    if task == "regression":
        if not numeric:
            first = next(v for v in values.reshape(-1) if not _is_number(str(v)))
            raise GdrunError(f"{what} holds text ({str(first)!r}), which regression cannot predict; it needs numbers.")
        y = torch.tensor(values.astype(np.float64), dtype=torch.float32)
        return (y.view(-1, 1) if y.dim() == 1 else y.reshape(len(y), -1)), task, None
    if values.ndim != 1:
        raise GdrunError(f"{what} has shape {list(values.shape)}: classes need one value per sample.")
    if values.dtype.kind == "f" and not np.all(np.isfinite(values)):
        raise GdrunError(f"{what} holds NaN or inf, which is no class.")
    kept = _kept_names(values, names)
    if kept is not None:
        classes, index = kept, values.astype(np.int64)
    else:
        found, index = np.unique(values, return_inverse=True)
        classes = [_class_name(v) for v in found]
    present = len(np.unique(index))
    if present < 2:
        only = classes[int(index[0])] if len(index) else "none"
        raise GdrunError(
            f"{what} has a single class ({only}) in its {len(values)} rows: a classifier needs at least two."
        )
    if task == "binary":
        if len(classes) != 2:
            raise GdrunError(
                f"data.task=binary needs exactly two classes, and {what} has {len(classes)} "
                f"({', '.join(classes[:5])}{', ...' if len(classes) > 5 else ''}); use data.task=multiclass."
            )
        return torch.tensor(index, dtype=torch.float32).view(-1, 1), task, classes
    return torch.tensor(index, dtype=torch.long), "multiclass", classes


def _inferred_task(values: np.ndarray, what: str) -> str:
    if values.dtype.kind == "f" or values.ndim != 1:
        return "regression"
    distinct = len(np.unique(values))
    if distinct <= CLASS_LIMIT:
        return "multiclass"
    if values.dtype.kind in "biu":
        return "regression"
    raise GdrunError(
        f"{what} holds {distinct} different texts: too many to be classes (gdrun takes at most {CLASS_LIMIT} "
        f"unless told); give data.task=multiclass to train on them as classes, or choose another target."
    )


def _kept_names(values: np.ndarray, names: Optional[Sequence[str]]) -> Optional[List[str]]:
    """`names` when the values are whole numbers indexing them."""
    if names is None or values.dtype.kind not in "biu" or not len(values):
        return None
    if values.min() < 0 or values.max() >= len(names):
        return None
    return [str(name) for name in names]


def _class_name(value: Any) -> str:
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


class UsualLoss(nn.Module):
    """loss=auto: cross entropy on class indices, mean squared error on numbers, BCE on logits for binary.

    Built before the data is read, so with no declared task it follows the targets' type, which
    gdrun's datasets set by task (class indices are integers; regression targets are floats).
    """

    def __init__(self, task: Optional[str] = None, reduction: str = "mean"):
        super().__init__()
        self.task, self.reduction = task, reduction

    def forward(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.task == "binary":
            return F.binary_cross_entropy_with_logits(out, target, reduction=self.reduction)
        if self.task == "multiclass" or not target.is_floating_point():
            return F.cross_entropy(out, target.long(), reduction=self.reduction)
        return F.mse_loss(out, target, reduction=self.reduction)


# ---------------------------------------------------------------- data=npz
def npz(
    path: Optional[str],
    root: str,
    x: str,
    y: str,
    x_val: Optional[str],
    y_val: Optional[str],
    task: Optional[str],
) -> Dataset:
    """Arrays of a NumPy .npz file: inputs (n, ...) and targets (n,) or (n, outputs), and a validation pair."""
    if path is None:
        file = cache.sample("wine.npz", _write_wine, "data=npz")
    else:
        file = source_path(path, root)
    if (x_val is None) != (y_val is None):
        raise GdrunError("data.x_val and data.y_val go together: name both validation arrays, or neither.")
    names = [x, y] + ([x_val, y_val] if x_val is not None and y_val is not None else [])
    try:
        with np.load(file, allow_pickle=False) as archive:
            missing = [name for name in names if name not in archive.files]
            if missing:
                key = {x: "data.x", y: "data.y", x_val: "data.x_val", y_val: "data.y_val"}[missing[0]]
                raise GdrunError(
                    f"{key}={missing[0]}: {file} has no array of that name; its arrays are: {', '.join(archive.files)}."
                )
            arrays = [archive[name] for name in names]
    except GdrunError:
        raise
    except ValueError as error:  # an object array, which loading would unpickle
        raise GdrunError(
            f"{file} holds Python objects, which gdrun does not load (they could run code): {error}."
        ) from None
    except (OSError, EOFError, KeyError) as error:  # not a zip, cut short
        raise GdrunError(f"{file} is not a NumPy .npz file gdrun can read ({error}).") from None
    val = arrays[2:] if len(arrays) == 4 else [None, None]
    return from_arrays(arrays[0], arrays[1], val[0], val[1], task=task, names=names, source=str(file))


def from_arrays(
    x: Any,
    y: Any,
    x_val: Any = None,
    y_val: Any = None,
    task: Optional[str] = None,
    names: Sequence[str] = ("x", "y", "x_val", "y_val"),
    classes: Optional[Sequence[str]] = None,
    features: Optional[Sequence[str]] = None,
    source: Optional[str] = None,
) -> Dataset:
    """A Dataset from arrays (numpy, torch, lists): x (n, ...) numbers; y as `targets` reads it."""
    parts = [_array(a) for a in (x, y, x_val, y_val)]
    pairs = [(0, 1)] + ([(2, 3)] if parts[2] is not None else [])
    for i, j in pairs:
        xs, ys = parts[i], parts[j]
        assert xs is not None and ys is not None
        if xs.dtype.kind not in "biuf":
            raise GdrunError(f"{names[i]} holds {xs.dtype} values: the inputs must be numbers.")
        if xs.ndim < 1 or len(xs) == 0:
            raise GdrunError(f"{names[i]} holds no samples (shape {list(xs.shape)}).")
        if len(xs) != len(ys):
            raise GdrunError(f"{names[i]} has {len(xs)} samples but {names[j]} has {len(ys)}: one target per input.")
        bad = np.argwhere(~np.isfinite(xs.astype(np.float64)))
        if len(bad):
            raise GdrunError(f"{names[i]}{list(bad[0])} is {xs[tuple(bad[0])]}: the inputs must be finite numbers.")
    train_y, val_y = parts[1], parts[3]
    assert train_y is not None
    together = train_y if val_y is None else np.concatenate([train_y, val_y])
    encoded, task, class_names = targets(together, task, names[1], classes)
    inputs = [torch.tensor(parts[i].astype(np.float32)) for i, _ in pairs]  # type: ignore[union-attr]
    if inputs[0].dim() == 1:
        inputs = [t.view(-1, 1) for t in inputs]
    n = len(train_y)
    val = Dataset(inputs[1], encoded[n:], task, classes=class_names) if val_y is not None else None
    meta: Dict[str, Any] = {"features": list(features) if features is not None else None}
    if source is not None:
        meta["source"] = source
    if val is not None:
        meta["own_split"] = True
    return Dataset(inputs[0], encoded[:n], task, val, class_names, meta)


def _array(value: Any) -> Optional[np.ndarray]:
    if value is None:
        return None
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


# ---------------------------------------------------------------- data=custom
def as_dataset(value: Any, target: str) -> Dataset:
    """What a dataset builder of your own returned, as a Dataset.

    A gdrun Dataset as it is; (x, y) or (x, y, x_val, y_val); a dict with those keys (and `classes`);
    or an object with .data and .target (scikit-learn's loaders; target_names name the classes).
    """
    if isinstance(value, Dataset):
        return value
    if isinstance(value, dict) and "x" in value and "y" in value:
        unknown = set(value) - {"x", "y", "x_val", "y_val", "classes", "features"}
        if unknown:
            raise GdrunError(
                f"data._target_={target} returned a dict with {', '.join(sorted(map(str, unknown)))}; "
                f"its keys are x, y and optionally x_val, y_val, classes, features."
            )
        return from_arrays(**value)
    if isinstance(value, (tuple, list)) and len(value) in (2, 4):
        return from_arrays(*value)
    if hasattr(value, "data") and hasattr(value, "target"):
        return from_arrays(
            value.data,
            value.target,
            classes=getattr(value, "target_names", None),
            features=getattr(value, "feature_names", None),
        )
    raise GdrunError(
        f"data._target_={target} returned {type(value).__name__}; a dataset builder returns a "
        f"gdrun.training.data.Dataset, (x, y), (x, y, x_val, y_val), a dict with those keys, "
        f"or an object with .data and .target."
    )


# ---------------------------------------------------------------- samples (data.path not set)
def _write_iris(path: Path) -> None:
    """scikit-learn's iris table (150 flowers, 4 measurements, 3 species) as a CSV file."""
    from sklearn.datasets import load_iris

    bunch = load_iris()
    names = [name.replace(" (cm)", "").replace(" ", "_") for name in bunch.feature_names]
    with open(path, "w", newline="") as f:
        writer = csvlib.writer(f)
        writer.writerow([*names, "species"])
        for row, label in zip(bunch.data, bunch.target):
            writer.writerow([*(f"{v:g}" for v in row), bunch.target_names[label]])


def _write_wine(path: Path) -> None:
    """scikit-learn's wine measurements (178 wines, 13 features, 3 cultivars) as x and y arrays."""
    from sklearn.datasets import load_wine

    bunch = load_wine()
    with open(path, "wb") as f:
        np.savez(f, x=bunch.data.astype(np.float32), y=bunch.target.astype(np.int64))
