"""Typed schemas for every config group, registered in Hydra's ConfigStore.

Each YAML option under conf/ starts from one of these schemas (its defaults list names
`/schema/<group>/<name>@_here_`), so a misspelled key or a wrong type fails when the
config is composed, before torch is even imported. Keep this module free of heavy imports:
the CLI imports it on every start.
"""

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


# ---------------------------------------------------------------- data
@dataclass
class DataConf:
    """Keys every dataset has; the rest are the arguments of its `_target_`."""

    _target_: str = MISSING
    name: str = MISSING
    # Visit the training set in a new random order every epoch (real data) or in order (labs).
    shuffle: bool = False
    # Fraction of the training set held out for validation; 0 keeps the dataset's own split.
    val_split: float = 0.0
    # The usual training budget for this dataset: optim.batch_size / optim.epochs default to it.
    batch_size: Any = "full"
    epochs: int = 10


@dataclass
class GridConf(DataConf):
    """1-D inputs on a grid: arange(start, stop, step), or linspace(start, stop, num) when num is set."""

    start: float = -3.0
    stop: float = 3.0
    step: float = 0.1
    num: Optional[int] = None


@dataclass
class LineConf(GridConf):
    _target_: str = "gdrun.datasets.synthetic.line"
    slope: float = 1.0
    intercept: float = -1.0
    noise: float = 0.1
    seed: int = 1


@dataclass
class PlaneConf(DataConf):
    _target_: str = "gdrun.datasets.synthetic.plane"
    start: float = -1.0
    stop: float = 1.0
    step: float = 0.1
    # features x outputs; Y = X @ weights + bias + noise * randn
    weights: List[List[float]] = field(default_factory=lambda: [[1.0], [1.0]])
    bias: List[float] = field(default_factory=lambda: [1.0])
    noise: float = 0.1
    seed: int = 1


@dataclass
class BumpsConf(GridConf):
    """Binary labels: 1 where x lies strictly inside one of the intervals."""

    _target_: str = "gdrun.datasets.synthetic.bumps"
    intervals: List[List[float]] = field(default_factory=lambda: [[0.2, float("inf")]])


@dataclass
class ClassesConf(GridConf):
    """Multiclass labels on a 1-D grid: the class is the number of edges at or below x."""

    _target_: str = "gdrun.datasets.synthetic.classes"
    edges: List[float] = field(default_factory=lambda: [-1.0, 1.0])


@dataclass
class TorchvisionConf(DataConf):
    _target_: str = "gdrun.datasets.images.torchvision_dataset"
    dataset: str = "MNIST"
    root: str = "data"
    download: bool = True
    shuffle: bool = True


@dataclass
class DigitsConf(DataConf):
    _target_: str = "gdrun.datasets.images.digits"
    shuffle: bool = True
    val_split: float = 0.2


# ---------------------------------------------------------------- model
@dataclass
class ModelConf:
    """Every model's builder also receives input_shape, num_outputs and output from the data and loss."""

    _target_: str = MISSING
    name: str = MISSING
    # Tasks the model makes sense for; empty means any.
    tasks: List[str] = field(default_factory=list)
    # Fixed initial values by state_dict name, e.g. {weight: [[-15.0]], bias: [-10.0]}.
    init: Any = None


@dataclass
class LinearConf(ModelConf):
    _target_: str = "gdrun.models.linear"
    bias: bool = True


@dataclass
class MLPConf(ModelConf):
    _target_: str = "gdrun.models.mlp"
    hidden: List[int] = field(default_factory=lambda: [16])
    activation: str = "relu"
    dropout: float = 0.0


@dataclass
class CNNConf(ModelConf):
    _target_: str = "gdrun.models.cnn"
    channels: List[int] = field(default_factory=lambda: [16, 32])
    hidden: int = 64


# ---------------------------------------------------------------- loss
@dataclass
class LossConf:
    _target_: str = MISSING
    name: str = MISSING
    # What the model's last layer must give this loss: identity, sigmoid or log_softmax.
    output: str = "identity"
    # Tasks whose targets this loss accepts.
    tasks: List[str] = field(default_factory=list)


# ---------------------------------------------------------------- optim
@dataclass
class OptimConf:
    """The optimization settings as a user thinks of them; the rest are the algorithm's arguments."""

    _target_: str = MISSING
    name: str = MISSING
    lr: float = 0.1
    # An integer, or "full" for the whole training set per step (batch gradient descent).
    batch_size: Any = "${data.batch_size}"
    epochs: int = "${data.epochs}"  # type: ignore[assignment]  # interpolation, resolved to int
    weight_decay: float = 0.0


@dataclass
class GDConf(OptimConf):
    """Plain gradient descent, w <- w - lr * grad, the update the course notebooks write by hand."""

    _target_: str = "gdrun.optim.GD"
    name: str = "gd"


@dataclass
class SGDConf(OptimConf):
    _target_: str = "torch.optim.SGD"
    name: str = "sgd"
    momentum: float = 0.0
    dampening: float = 0.0
    nesterov: bool = False


@dataclass
class AdamConf(OptimConf):
    _target_: str = "torch.optim.Adam"
    name: str = "adam"
    lr: float = 0.001
    betas: List[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    amsgrad: bool = False


@dataclass
class AdamWConf(AdamConf):
    _target_: str = "torch.optim.AdamW"
    name: str = "adamw"
    weight_decay: float = 0.01


@dataclass
class RMSpropConf(OptimConf):
    _target_: str = "torch.optim.RMSprop"
    name: str = "rmsprop"
    lr: float = 0.01
    alpha: float = 0.99
    eps: float = 1e-8
    momentum: float = 0.0
    centered: bool = False


@dataclass
class AdagradConf(OptimConf):
    _target_: str = "torch.optim.Adagrad"
    name: str = "adagrad"
    lr: float = 0.01
    lr_decay: float = 0.0
    initial_accumulator_value: float = 0.0
    eps: float = 1e-10


# ---------------------------------------------------------------- sched
@dataclass
class SchedConf:
    """A learning-rate schedule stepped once per epoch; no _target_ means a constant rate."""

    _target_: Optional[str] = None
    name: str = "none"


@dataclass
class StepLRConf(SchedConf):
    _target_: Optional[str] = "torch.optim.lr_scheduler.StepLR"
    name: str = "step"
    step_size: int = 10
    gamma: float = 0.1


@dataclass
class ExponentialLRConf(SchedConf):
    _target_: Optional[str] = "torch.optim.lr_scheduler.ExponentialLR"
    name: str = "exponential"
    gamma: float = 0.95


@dataclass
class CosineConf(SchedConf):
    _target_: Optional[str] = "torch.optim.lr_scheduler.CosineAnnealingLR"
    name: str = "cosine"
    # Epochs of one half cosine; null means the run's optim.epochs.
    T_max: Optional[int] = None
    eta_min: float = 0.0


@dataclass
class PlateauConf(SchedConf):
    _target_: Optional[str] = "torch.optim.lr_scheduler.ReduceLROnPlateau"
    name: str = "plateau"
    mode: str = "min"
    factor: float = 0.1
    patience: int = 5
    threshold: float = 1e-4
    min_lr: float = 0.0


# ---------------------------------------------------------------- top level
@dataclass
class Config:
    seed: int = 0
    # auto picks cuda, then mps, then cpu; or name one (cpu, cuda, cuda:1, mps).
    device: str = "auto"
    # Draw the pictures in plots/ after the run (from the files the run wrote).
    plots: bool = True
    # The loss surface's grid in plots/ (models with parameters w, b): w in +-W and b in +-B for
    # [W, B] ([W] for both); null: symmetric about 0 and just wide enough for the path.
    surface_range: Optional[List[float]] = None
    # CPU threads for torch (null: one for batches of under 32,768 input numbers, torch's default
    # otherwise). One thread is fastest for the labs' small models, and far faster when another
    # process competes for the cores.
    threads: Optional[int] = None
    # torch.compile the model (backend: inductor, or eager/aot_eager to check a model compiles).
    compile: bool = False
    compile_backend: str = "inductor"
    # Automatic mixed precision: forward and loss in bfloat16 under torch.autocast (CPU, or a
    # GPU with bfloat16: compute capability 8.0 or more).
    amp: bool = False
    # Epochs between two snapshots of the fitted function in fit.csv (null: about 5 in a run).
    fit_every: Optional[int] = None
    # Epochs between two checkpoints/last.pt writes (0: only at the end).
    checkpoint_every: int = 1
    # Stop as diverged when a cost is NaN or infinite, or above this many times the initial
    # training cost (null: NaN/inf only).
    diverge_factor: Optional[float] = 1e6
    # Do not write checkpoints/last.pt more often than this (seconds): a tiny lab runs hundreds
    # of epochs a second, and a checkpoint per epoch would cost more than the training.
    checkpoint_min_seconds: float = 2.0
    # Loggers besides the CSV files, which are always written: name -> {_target_: a class built
    # with the run folder}. The logger group sets it (logger=tensorboard, conf/logger/).
    loggers: Dict[str, Any] = field(default_factory=dict)
    data: Any = MISSING
    model: Any = MISSING
    loss: Any = MISSING
    optim: Any = MISSING
    sched: Any = MISSING


SCHEMAS = {
    "data": {"line": LineConf, "plane": PlaneConf, "bumps": BumpsConf, "classes": ClassesConf,
             "torchvision": TorchvisionConf, "digits": DigitsConf},
    "model": {"linear": LinearConf, "mlp": MLPConf, "cnn": CNNConf},
    "loss": {"loss": LossConf},
    "optim": {"gd": GDConf, "sgd": SGDConf, "adam": AdamConf, "adamw": AdamWConf, "rmsprop": RMSpropConf,
              "adagrad": AdagradConf},
    "sched": {"none": SchedConf, "step": StepLRConf, "exponential": ExponentialLRConf,
              "cosine": CosineConf, "plateau": PlateauConf},
}

# Keys of each group that gdrun reads itself; the others are passed to the group's _target_.
GDRUN_KEYS = {
    "data": {"_target_", "name", "shuffle", "val_split", "batch_size", "epochs"},
    "model": {"_target_", "name", "tasks"},
    "loss": {"_target_", "name", "output", "tasks"},
    "optim": {"_target_", "name", "batch_size", "epochs"},
    "sched": {"_target_", "name"},
}


def register() -> None:
    """Store the top-level schema and one schema per group option under schema/<group>/<name>."""
    cs = ConfigStore.instance()
    cs.store(name="gdrun_schema", node=Config)
    for group, schemas in SCHEMAS.items():
        for name, node in schemas.items():
            cs.store(group=f"schema/{group}", name=name, node=node)
