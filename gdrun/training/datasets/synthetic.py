"""The course labs' synthetic datasets, generated exactly as the notebooks generate them.

Every builder draws its noise from its own torch.Generator seeded by the config, which gives
the same numbers as the notebooks' `torch.manual_seed(seed)` followed by `torch.randn`.
"""

from typing import Optional, Sequence

import torch

from gdrun.training.data import Dataset


def grid(start: float, stop: float, step: float, num: Optional[int]) -> torch.Tensor:
    """Inputs as a column (n, 1): arange(start, stop, step), or linspace(start, stop, num) when num is set."""
    if num is not None:
        return torch.linspace(start, stop, num).view(-1, 1)
    return torch.arange(start, stop, step).view(-1, 1)


def line(
    start: float, stop: float, step: float, num: Optional[int], slope: float, intercept: float, noise: float, seed: int
) -> Dataset:
    """y = slope·x + intercept + noise·randn, as labs 001 (slope only), 003 and 004."""
    x = grid(start, stop, step, num)
    generator = torch.Generator().manual_seed(seed)
    f = slope * x + intercept
    y = f + noise * torch.randn(x.size(), generator=generator)
    return Dataset(x, y, task="regression")


def plane(
    start: float,
    stop: float,
    step: float,
    weights: Sequence[Sequence[float]],
    bias: Sequence[float],
    noise: float,
    seed: int,
) -> Dataset:
    """Y = X·weights + bias + noise·randn, every input column arange(start, stop, step)."""
    w = torch.tensor(weights, dtype=torch.float32)  # (features, outputs)
    column = torch.arange(start, stop, step).view(-1, 1)
    x = column.repeat(1, w.shape[0])
    generator = torch.Generator().manual_seed(seed)
    f = x @ w + torch.tensor(bias, dtype=torch.float32)
    y = f + noise * torch.randn(f.size(), generator=generator)
    return Dataset(x, y, task="regression")


def bumps(start: float, stop: float, step: float, num: Optional[int], intervals: Sequence[Sequence[float]]) -> Dataset:
    """Binary labels (n, 1): 1 where lo < x < hi for one of the intervals, else 0 (labs 000, 001)."""
    x = grid(start, stop, step, num)
    y = torch.zeros(x.shape[0], 1)
    for lo, hi in intervals:
        y[(x[:, 0] > lo) & (x[:, 0] < hi)] = 1
    return Dataset(x, y, task="binary")


def classes(start: float, stop: float, step: float, num: Optional[int], edges: Sequence[float]) -> Dataset:
    """Class labels (n,): 0 for x <= edges[0], k for the k-th interval, last class for x >= edges[-1].

    The boundaries are the softmax notebook's: `y[x > -1] = 1` then `y[x >= 1] = 2`.
    """
    x = grid(start, stop, step, num)
    y = torch.zeros(x.shape[0], dtype=torch.long)
    y[x[:, 0] > edges[0]] = 1
    for k, edge in enumerate(edges[1:], start=2):
        y[x[:, 0] >= edge] = k
    return Dataset(x, y, task="multiclass", classes=[str(k) for k in range(len(edges) + 1)])
