"""What the pictures need beyond the metrics, written during the run so plots never retrain.

- `params.csv`: for models with one or two trainable numbers (slope; slope and bias; 1-D
  logistic regression), the parameters after every step (step 0 = initial values): the path
  drawn on the loss surface.
- `data.csv` and `fit.csv`: for datasets with one or two input features, the points, and the
  model's output on a grid over them at a few epochs: the fitted line/curve/plane over time.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import torch

from gdrun.rundir.files import CsvLog, replace_atomically, truncate_csv
from gdrun.rundir.layout import RunPaths
from gdrun.training.data import Dataset


@dataclass(frozen=True)
class Done:
    """How far a run folder's files go: the last step and epoch they hold (0, -1 for a fresh run)."""

    step: int = 0
    epoch: int = -1


# Short names for a linear model's parameters, the w and b of the labs and the plots.
PARAM_NAMES = {"weight": "w", "bias": "b"}
GRID_POINTS_1D = 200
GRID_POINTS_2D = 30
MAX_DATA_ROWS = 20_000


def low_dimensional(data: Dataset) -> bool:
    """Data a person can see as points: one or two input features."""
    return data.x[0].numel() <= 2 and len(data) <= MAX_DATA_ROWS


class Traces:
    """Collects the parameter path and fit snapshots of one run and appends them to the run folder."""

    def __init__(self, folder: Path, model: torch.nn.Module, data: Dataset, fit_every: int, done: Done):
        """`done`: the (step, epoch) the files already hold and keep; rows after it are cut first."""
        self.model, self.data, self.fit_every = model, data, fit_every
        paths = RunPaths(folder)
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        self.params = [p for _, p in named]
        self.track_params = sum(p.numel() for p in self.params) <= 2
        self.scalars = all(p.numel() == 1 for p in self.params)
        self.path: List[List[float]] = []
        self.params_log: Optional[CsvLog] = None
        if self.track_params:
            names = [column for n, p in named for column in _columns(n, p.numel())]
            columns = ["step", "epoch", *names]
            truncate_csv(paths.params, columns, "step", done.step)
            self.params_log = CsvLog(paths.params, columns)
        self.grid = _grid(data) if low_dimensional(data) else None
        self.fit_log = None
        if self.grid is not None:
            outputs = [f"out{i + 1}" for i in range(data.num_outputs)]
            inputs = [f"x{i + 1}" for i in range(self.grid.shape[1])]
            columns = ["epoch", *inputs, *outputs]
            truncate_csv(paths.fit, columns, "epoch", done.epoch)
            self.fit_log = CsvLog(paths.fit, columns)
            _write_points(paths.data, data)  # whole again on resume: a kill may have cut it

    def after_step(self) -> None:
        """Keep the parameters after this step: at most two numbers, read as floats (~1 us)."""
        if self.scalars:
            self.path.append([p.item() for p in self.params])
        else:  # one weight tensor of two numbers
            self.path.append([v for p in self.params for v in p.detach().view(-1).tolist()])

    def start(self, step: int, epoch: int) -> None:
        """The initial point of the path and the first snapshot of the fit."""
        if self.track_params:
            self.after_step()
            self._flush_path(step, epoch)
        self.after_epoch(epoch, last=False)

    def end_epoch(self, first_step: int, epoch: int, last: bool, partial: bool = False) -> None:
        """Write the epoch's path; snapshot the fit unless the epoch was cut short (stop, divergence)."""
        if self.track_params:
            self._flush_path(first_step, epoch)
        if not partial:
            self.after_epoch(epoch, last)

    def _flush_path(self, first_step: int, epoch: int) -> None:
        assert self.params_log is not None  # only called when track_params
        self.params_log.write([first_step + i, epoch, *values] for i, values in enumerate(self.path))
        self.params_log.flush()
        self.path.clear()

    @torch.no_grad()
    def after_epoch(self, epoch: int, last: bool) -> None:
        """A snapshot of the fitted function at epoch 0, every `fit_every` epochs and at the end."""
        if self.fit_log is None or self.grid is None or not (last or epoch % self.fit_every == 0):
            return
        self.model.eval()
        out = self.model(self.grid.to(self.data.x.device).view(-1, *self.data.input_shape)).cpu()
        rows = torch.cat([self.grid, out.reshape(len(out), -1)], dim=1).tolist()
        self.fit_log.write([epoch, *row] for row in rows)
        self.fit_log.flush()

    def sync(self) -> None:
        """Every row so far onto the disk (before a checkpoint that counts them)."""
        for log in (self.params_log, self.fit_log):
            if log is not None:
                log.sync()

    def close(self) -> None:
        for log in (self.params_log, self.fit_log):
            if log is not None:
                log.close()


def _columns(name: str, size: int) -> List[str]:
    """params.csv columns of one parameter tensor: `w`, or `w1, w2` when it holds two numbers."""
    short = PARAM_NAMES.get(name.split(".")[-1], name)
    return [short] if size == 1 else [f"{short}{i + 1}" for i in range(size)]


def _grid(data: Dataset) -> torch.Tensor:
    """Points covering the data's input range with a 10 % margin: a line for 1-D inputs, a square grid for 2-D."""
    x = data.x.reshape(len(data), -1).float().cpu()
    lo, hi = x.min(0).values, x.max(0).values
    margin = 0.1 * (hi - lo).clamp(min=1e-6)
    lo, hi = lo - margin, hi + margin
    if x.shape[1] == 1:
        return torch.linspace(float(lo[0]), float(hi[0]), GRID_POINTS_1D).view(-1, 1)
    a = torch.linspace(float(lo[0]), float(hi[0]), GRID_POINTS_2D)
    b = torch.linspace(float(lo[1]), float(hi[1]), GRID_POINTS_2D)
    return torch.cartesian_prod(a, b)


def _write_points(path: Path, data: Dataset) -> None:
    """The training (and validation) points as `split,x1[,x2],y1[,y2]` rows, written whole (atomically)."""
    splits = [("train", data)] + ([("val", data.val)] if data.val is not None else [])
    width_x = data.x[0].numel()
    width_y = 1 if data.y.dim() == 1 else data.y.shape[1]
    lines = [",".join(["split", *[f"x{i + 1}" for i in range(width_x)], *[f"y{i + 1}" for i in range(width_y)]])]
    for name, split in splits:
        xs = split.x.reshape(len(split), -1).cpu().tolist()
        ys = split.y.reshape(len(split), -1).cpu().tolist()
        lines += [",".join([name, *map(repr, x), *map(repr, y)]) for x, y in zip(xs, ys)]
    text = ("\n".join(lines) + "\n").encode()
    replace_atomically(path, lambda f: f.write(text))
