"""Datasets as tensors, the validation split, and the batches of one epoch.

Data that fits in memory sits in one tensor on the training device and a batch is a slice
(in order) or an index (shuffled) of it: no per-sample Python, no collate. The batches are
the ones a torch DataLoader with the same generator would give; `loader_batches` is that
DataLoader, kept for checks and for data that needs per-sample transforms.
"""

import math
from dataclasses import dataclass, field
from typing import Iterator, List, Optional, Tuple

import torch

from gdrun.errors import GdrunError

Batch = Tuple[torch.Tensor, torch.Tensor]
TASKS = ("regression", "binary", "multiclass")


@dataclass
class Dataset:
    """Inputs x (n, ...) and targets y: float (n, outputs) for regression and binary, long (n,) for multiclass."""

    x: torch.Tensor
    y: torch.Tensor
    task: str
    val: Optional["Dataset"] = None
    classes: Optional[List[str]] = None
    meta: dict = field(default_factory=dict)
    # The test set (training.splits): evaluated once, after training, never during it.
    test: Optional["Dataset"] = None

    def __len__(self) -> int:
        return self.x.shape[0]

    @property
    def input_shape(self) -> Tuple[int, ...]:
        return tuple(self.x.shape[1:])

    @property
    def num_outputs(self) -> int:
        """Width of the model's last layer: one per class, one for binary, one per regression target."""
        if self.task == "multiclass":
            assert self.classes is not None, "a multiclass dataset names its classes"
            return len(self.classes)
        return self.y.shape[1]

    def non_finite(self) -> Optional[str]:
        """Where the data holds NaN or inf, e.g. "NaN in its targets y (60 of 60 values)"; None if nowhere."""
        parts = [("inputs x", self.x), ("targets y", self.y)]
        if self.val is not None:
            parts += [("validation inputs x", self.val.x), ("validation targets y", self.val.y)]
        if self.test is not None:
            parts += [("test inputs x", self.test.x), ("test targets y", self.test.y)]
        for part, tensor in parts:
            # One sum is ~20x cheaper than isfinite() of every value (MNIST: 30 ms), and is NaN or inf
            # whenever a value is; when it only overflowed, the look at each value below finds nothing.
            if not tensor.is_floating_point() or bool(torch.isfinite(tensor.sum())):
                continue
            for kind, bad in (("NaN", torch.isnan(tensor)), ("inf", torch.isinf(tensor))):
                if bool(bad.any()):
                    return f"{kind} in its {part} ({int(bad.sum()):,} of {tensor.numel():,} values)"
        return None

    def to(self, device: torch.device) -> "Dataset":
        val = self.val.to(device) if self.val is not None else None
        test = self.test.to(device) if self.test is not None else None
        return Dataset(self.x.to(device), self.y.to(device), self.task, val, self.classes, self.meta, test)


def hold_out(data: Dataset, fraction: float, seed: int) -> Dataset:
    """Move a random `fraction` of the training set into a validation set (replacing any official split)."""
    n = len(data)
    n_val = int(round(n * fraction))
    if n and n_val == n:
        example = f", e.g. data.val_split=0.2 ({n - round(n * 0.2):,} left to train on)" if n >= 5 else ""
        raise GdrunError(
            f"data.val_split={fraction} holds out all {n:,} samples of the training set, leaving 0 to train on; "
            f"use a smaller fraction{example}, or 0 for no validation set."
        )
    if n and n_val == 0:
        raise GdrunError(
            f"data.val_split={fraction} holds out none of the {n:,} samples ({n:,} x {fraction} rounds to 0); "
            f"use at least {1 / n:.2g} to hold some out, or 0 for no validation set."
        )
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
    val_idx, train_idx = order[:n_val].sort().values, order[n_val:].sort().values
    val = Dataset(data.x[val_idx], data.y[val_idx], data.task, classes=data.classes)
    return Dataset(data.x[train_idx], data.y[train_idx], data.task, val, data.classes, data.meta, data.test)


def resolve_batch_size(batch_size, n: int) -> int:
    """`full` means the whole training set per step (batch gradient descent)."""
    return n if batch_size == "full" else int(batch_size)


def steps_per_epoch(n: int, batch_size: int) -> int:
    return math.ceil(n / batch_size)


def tensor_batches(
    x: torch.Tensor, y: torch.Tensor, batch_size: int, generator: Optional[torch.Generator]
) -> Iterator[Batch]:
    """One epoch of batches; shuffled when a generator is given, exactly as DataLoader(generator=...) does.

    Per epoch a DataLoader draws from its generator one int64 (the workers' base seed), the
    RandomSampler's permutation, and, when the sampler runs out, a second permutation it
    slices to nothing (`randperm(n)[:num_samples % n]`). We draw the same three, so the
    generator's state, and every later epoch's order, stay in step with the DataLoader's.
    """
    n = x.shape[0]
    if generator is None:
        for start in range(0, n, batch_size):
            yield x[start : start + batch_size], y[start : start + batch_size]
        return
    torch.empty((), dtype=torch.int64).random_(generator=generator)
    order = torch.randperm(n, generator=generator).to(x.device)
    torch.randperm(n, generator=generator)
    for start in range(0, n, batch_size):
        index = order[start : start + batch_size]
        yield x[index], y[index]


def loader_batches(
    x: torch.Tensor, y: torch.Tensor, batch_size: int, generator: Optional[torch.Generator]
) -> torch.utils.data.DataLoader:
    """The same epoch through torch's DataLoader (the reference the fast path must equal)."""
    dataset = torch.utils.data.TensorDataset(x, y)
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=generator is not None, generator=generator
    )
