"""Typed schemas for every config group, registered in Hydra's ConfigStore.

Each YAML option under conf/ starts from one of these schemas (its defaults list names
`/schema/<group>/<name>@_here_`), so a misspelled key or a wrong type fails when the
config is composed, before torch is even imported. Keep this module free of heavy imports:
the CLI imports it on every start.
"""

from dataclasses import Field, dataclass, field, fields
from typing import Any, Callable, Dict, List, Optional, Sequence, Set

from omegaconf import MISSING

# Field metadata marking a key that gdrun reads itself; every other key of a group is an
# argument of the group's `_target_` (hydra.utils.instantiate passes it on).
OWN = {"gdrun": True}


def own(default: Any = MISSING, **kwargs: Any) -> Any:
    """A key gdrun reads itself, not passed to the group's `_target_`."""
    if "default_factory" in kwargs:
        return field(metadata=OWN, **kwargs)
    return field(default=default, metadata=OWN, **kwargs)


def own_keys(schema: type) -> Set[str]:
    """The keys of a schema that gdrun reads itself (marked with `own`), `_target_` included."""
    marked: List[Field] = [f for f in fields(schema) if f.metadata.get("gdrun")]
    return {"_target_", *(f.name for f in marked)}


# group -> option name -> schema; each schema class adds itself with @option.
SCHEMAS: Dict[str, Dict[str, type]] = {}


def option(group: str, name: str) -> Callable[[type], type]:
    """Register a dataclass as the schema of `group` option `name` (YAMLs extend /schema/GROUP/NAME@_here_)."""

    def add(schema: type) -> type:
        SCHEMAS.setdefault(group, {})[name] = schema
        return schema

    return add


# ---------------------------------------------------------------- data
@dataclass
class DataConf:
    """Keys every dataset has; the rest are the arguments of its `_target_`."""

    _target_: str = MISSING
    # A config of your own may leave it out: it is then the _target_'s name.
    name: str = own("${._target_}")
    # Visit the training set in a new random order every epoch (real data) or in order (labs).
    shuffle: bool = own(False)
    # Fraction of the training set held out for validation; 0 keeps the dataset's own split.
    val_split: float = own(0.0)
    # Fraction of the whole data held out first as the test set (stratified for classification), on
    # data without an official test split; evaluated once after training, never used to choose.
    test_split: float = own(0.0)
    # k-fold cross-validation: fold `fold` of a `folds`-fold split of the training set is the
    # validation set (0: off; then val_split applies). Sweep data.fold=0,...,K-1 for the estimate.
    folds: int = own(0)
    fold: int = own(0)
    # The usual training budget for this dataset: optim.batch_size / optim.epochs default to it.
    batch_size: Any = own("full")
    epochs: int = own(10)


@dataclass
class GridConf(DataConf):
    """1-D inputs on a grid: arange(start, stop, step), or linspace(start, stop, num) when num is set."""

    start: float = -3.0
    stop: float = 3.0
    step: float = 0.1
    num: Optional[int] = None


@option("data", "line")
@dataclass
class LineConf(GridConf):
    _target_: str = "gdrun.training.datasets.synthetic.line"
    slope: float = 1.0
    intercept: float = -1.0
    noise: float = 0.1
    seed: int = 1


@option("data", "plane")
@dataclass
class PlaneConf(DataConf):
    _target_: str = "gdrun.training.datasets.synthetic.plane"
    start: float = -1.0
    stop: float = 1.0
    step: float = 0.1
    # features x outputs; Y = X @ weights + bias + noise * randn
    weights: List[List[float]] = field(default_factory=lambda: [[1.0], [1.0]])
    bias: List[float] = field(default_factory=lambda: [1.0])
    noise: float = 0.1
    seed: int = 1


@option("data", "bumps")
@dataclass
class BumpsConf(GridConf):
    """Binary labels: 1 where x lies strictly inside one of the intervals."""

    _target_: str = "gdrun.training.datasets.synthetic.bumps"
    intervals: List[List[float]] = field(default_factory=lambda: [[0.2, float("inf")]])


@option("data", "classes")
@dataclass
class ClassesConf(GridConf):
    """Multiclass labels on a 1-D grid: the class is the number of edges at or below x."""

    _target_: str = "gdrun.training.datasets.synthetic.classes"
    edges: List[float] = field(default_factory=lambda: [-1.0, 1.0])


@option("data", "torchvision")
@dataclass
class TorchvisionConf(DataConf):
    _target_: str = "gdrun.training.datasets.images.torchvision_dataset"
    dataset: str = "MNIST"
    root: str = "data"
    download: bool = True
    shuffle: bool = True


@option("data", "digits")
@dataclass
class DigitsConf(DataConf):
    _target_: str = "gdrun.training.datasets.images.digits"
    shuffle: bool = True
    val_split: float = 0.2


@dataclass
class FileDataConf(DataConf):
    """Data read from a file or folder of the user's: a relative `path` is read from `root`."""

    # null: a small sample gdrun writes into its cache (see each option's YAML), to try the option on.
    path: Optional[str] = None
    # Where a relative path is read from; "." is the folder gdrun runs in (a run folder records it,
    # so eval=, gdrun.load_run and gdrun-report find the file from anywhere).
    root: str = "."
    shuffle: bool = own(True)
    # Held out when the data has no validation set of its own (an npz's x_val, a folder's val/).
    val_split: float = own(0.2)
    batch_size: Any = own(32)
    epochs: int = own(20)


@option("data", "csv")
@dataclass
class CsvConf(FileDataConf):
    """A table with a header row: `target` is the column to predict, `features` the inputs."""

    _target_: str = "gdrun.training.datasets.tabular.csv"
    # null: the last column.
    target: Optional[str] = None
    # null: every column but the target.
    features: Optional[List[str]] = None
    # regression, binary or multiclass; null: inferred from the target column (decimals: regression;
    # whole numbers or text with at most 20 distinct values: classification).
    task: Optional[str] = None
    # Leave out the rows with an empty or NaN cell in a column used, instead of refusing the file.
    drop_missing: bool = False
    # Scale each feature by the training set's mean and standard deviation (recorded in summary.json).
    standardize: bool = own(False)


@option("data", "npz")
@dataclass
class NpzConf(FileDataConf):
    """Arrays in a NumPy .npz file: inputs `x`, targets `y`, and an optional validation pair."""

    _target_: str = "gdrun.training.datasets.tabular.npz"
    x: str = "x"
    y: str = "y"
    x_val: Optional[str] = None
    y_val: Optional[str] = None
    # As data=csv's: null infers it from y (floats: regression; integers or text: classification).
    task: Optional[str] = None
    standardize: bool = own(False)


@option("data", "image_folder")
@dataclass
class ImageFolderConf(FileDataConf):
    """Images in one sub-folder per class (torchvision's ImageFolder); train/ and val/ when present."""

    _target_: str = "gdrun.training.datasets.folders.image_folder"
    # [height, width] to resize every image to; null: keep their size (they must all have the same).
    size: Optional[List[int]] = None
    # One channel; null: when every image is grayscale.
    grayscale: Optional[bool] = None


@option("data", "custom")
@dataclass
class CustomDataConf(DataConf):
    """Your own dataset builder: `_target_` and any keys you add (+data.KEY=VALUE, or in your YAML).

    The builder returns a gdrun.training.data.Dataset, or arrays: (x, y), (x, y, x_val, y_val), a
    dict with those keys, or an object with .data and .target (scikit-learn's loaders).
    """


# ---------------------------------------------------------------- model
@dataclass
class ModelConf:
    """Every model's builder also receives input_shape, num_outputs and output from the data and loss."""

    _target_: str = MISSING
    # A config of your own may leave it out: it is then the _target_'s name.
    name: str = own("${._target_}")
    # Tasks the model makes sense for; empty means any.
    tasks: List[str] = own(default_factory=list)
    # Fixed initial values by state_dict name, e.g. {weight: [[-15.0]], bias: [-10.0]}; gdrun sets
    # them after the builder made the model, so they work for any model.
    init: Any = own(None)


@option("model", "linear")
@dataclass
class LinearConf(ModelConf):
    _target_: str = "gdrun.training.models.linear"
    bias: bool = True


@option("model", "mlp")
@dataclass
class MLPConf(ModelConf):
    _target_: str = "gdrun.training.models.mlp"
    hidden: List[int] = field(default_factory=lambda: [16])
    activation: str = "relu"
    dropout: float = 0.0


@option("model", "cnn")
@dataclass
class CNNConf(ModelConf):
    _target_: str = "gdrun.training.models.cnn"
    channels: List[int] = field(default_factory=lambda: [16, 32])
    hidden: int = 64


@option("model", "custom")
@dataclass
class CustomModelConf(ModelConf):
    """Your own model builder: `_target_(input_shape, num_outputs, output, **your keys)`; no other keys."""


# ---------------------------------------------------------------- loss
@option("loss", "loss")
@dataclass
class LossConf:
    _target_: str = MISSING
    name: str = own()
    # What the model's last layer must give this loss: identity, sigmoid or log_softmax.
    output: str = own("identity")
    # Tasks whose targets this loss accepts.
    tasks: List[str] = own(default_factory=list)


@option("loss", "auto")
@dataclass
class AutoLossConf(LossConf):
    """The usual loss of the data's task, for data whose task is known only once it is read (data=csv):
    cross entropy for classes, mean squared error for numbers, BCE on logits for data.task=binary."""

    _target_: str = "gdrun.training.datasets.tabular.UsualLoss"
    name: str = own("auto")
    output: str = own("identity")
    # The task the data declares (data.task), or null: told by the targets (class indices or numbers).
    task: Optional[str] = "${oc.select:data.task,null}"


# ---------------------------------------------------------------- optim
@dataclass
class OptimConf:
    """The optimization settings as a user thinks of them; the rest are the algorithm's arguments."""

    _target_: str = MISSING
    name: str = own()
    lr: float = 0.1
    # An integer, or "full" for the whole training set per step (batch gradient descent).
    batch_size: Any = own("${data.batch_size}")
    epochs: int = own("${data.epochs}")  # an interpolation, resolved to an int
    weight_decay: float = 0.0
    # Clip the gradients before each update, for every optimizer: their total 2-norm to at most this
    # (iterations.csv then gains grad_norm, the norm before clipping), or each element to +-this
    # (torch.nn.utils.clip_grad_norm_ / clip_grad_value_). null: no clipping; one of the two at most.
    clip_grad_norm: Optional[float] = own(None)
    clip_grad_value: Optional[float] = own(None)


@option("optim", "gd")
@dataclass
class GDConf(OptimConf):
    """Plain gradient descent, w <- w - lr * grad, the update the course notebooks write by hand."""

    _target_: str = "gdrun.training.optim.GD"
    name: str = "gd"


@option("optim", "sgd")
@dataclass
class SGDConf(OptimConf):
    _target_: str = "torch.optim.SGD"
    name: str = "sgd"
    momentum: float = 0.0
    dampening: float = 0.0
    nesterov: bool = False


@option("optim", "adam")
@dataclass
class AdamConf(OptimConf):
    _target_: str = "torch.optim.Adam"
    name: str = "adam"
    lr: float = 0.001
    betas: List[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    amsgrad: bool = False


@option("optim", "adamw")
@dataclass
class AdamWConf(AdamConf):
    _target_: str = "torch.optim.AdamW"
    name: str = "adamw"
    weight_decay: float = 0.01


@option("optim", "rmsprop")
@dataclass
class RMSpropConf(OptimConf):
    _target_: str = "torch.optim.RMSprop"
    name: str = "rmsprop"
    lr: float = 0.01
    alpha: float = 0.99
    eps: float = 1e-8
    momentum: float = 0.0
    centered: bool = False


@option("optim", "adagrad")
@dataclass
class AdagradConf(OptimConf):
    _target_: str = "torch.optim.Adagrad"
    name: str = "adagrad"
    lr: float = 0.01
    lr_decay: float = 0.0
    initial_accumulator_value: float = 0.0
    eps: float = 1e-10


# ---------------------------------------------------------------- sched
@option("sched", "none")
@dataclass
class SchedConf:
    """A learning-rate schedule stepped once per epoch; no _target_ means a constant rate."""

    _target_: Optional[str] = None
    name: str = own("none")
    # When the schedule steps: after every epoch, or after every iteration (onecycle, warmup_cosine).
    # Its lengths (T_max, total_steps, ...) count these; a null length is the whole run.
    interval: str = own("epoch")


@option("sched", "step")
@dataclass
class StepLRConf(SchedConf):
    _target_: Optional[str] = "torch.optim.lr_scheduler.StepLR"
    name: str = "step"
    step_size: int = 10
    gamma: float = 0.1


@option("sched", "exponential")
@dataclass
class ExponentialLRConf(SchedConf):
    _target_: Optional[str] = "torch.optim.lr_scheduler.ExponentialLR"
    name: str = "exponential"
    gamma: float = 0.95


@option("sched", "cosine")
@dataclass
class CosineConf(SchedConf):
    _target_: Optional[str] = "torch.optim.lr_scheduler.CosineAnnealingLR"
    name: str = "cosine"
    # Epochs of one half cosine; null means the run's optim.epochs.
    T_max: Optional[int] = None
    eta_min: float = 0.0


@option("sched", "plateau")
@dataclass
class PlateauConf(SchedConf):
    _target_: Optional[str] = "torch.optim.lr_scheduler.ReduceLROnPlateau"
    name: str = "plateau"
    mode: str = "min"
    factor: float = 0.1
    patience: int = 5
    threshold: float = 1e-4
    min_lr: float = 0.0


@option("sched", "onecycle")
@dataclass
class OneCycleConf(SchedConf):
    """torch's OneCycleLR, stepped every iteration: up from max_lr/div_factor to max_lr, then down."""

    _target_: Optional[str] = "torch.optim.lr_scheduler.OneCycleLR"
    name: str = "onecycle"
    interval: str = own("step")
    max_lr: float = "${optim.lr}"  # type: ignore[assignment]  # the peak rate: optim.lr
    # Iterations of the whole cycle; null: the run's (optim.epochs x steps per epoch).
    total_steps: Optional[int] = None
    pct_start: float = 0.3
    anneal_strategy: str = "cos"
    div_factor: float = 25.0
    final_div_factor: float = 1e4
    three_phase: bool = False
    # Cycle momentum (SGD's) or beta1 (Adam's) against the rate; null: when the optimizer has one
    # (optim=sgd with optim.momentum above 0, adam, adamw), else off.
    cycle_momentum: Optional[bool] = None
    base_momentum: float = 0.85
    max_momentum: float = 0.95


@option("sched", "warmup_cosine")
@dataclass
class WarmupCosineConf(SchedConf):
    """A linear warm-up from lr x start_factor to lr, then half a cosine down to eta_min; every iteration."""

    _target_: Optional[str] = "gdrun.training.schedules.warmup_cosine"
    name: str = "warmup_cosine"
    interval: str = own("step")
    # Iterations of the warm-up; null: a tenth of the run (at least 1).
    warmup_steps: Optional[int] = None
    start_factor: float = 0.01
    eta_min: float = 0.0
    # Iterations of warm-up and cosine together; null: the run's (optim.epochs x steps per epoch).
    total_steps: Optional[int] = None


# ---------------------------------------------------------------- training controls
@dataclass
class EarlyStopConf:
    """Stop a run when a metric of epochs.csv stops improving (Lightning's EarlyStopping)."""

    # Epochs without an improvement after which the run stops; null: never (the default).
    patience: Optional[int] = None
    # A column of epochs.csv (val_loss, val_accuracy, ...); null: the headline metric, best.pt's.
    metric: Optional[str] = None
    # An improvement must be larger than this.
    min_delta: float = 0.0
    # min or max: which way is better; null: from the metric's name (loss, error: min; accuracy, f1: max).
    mode: Optional[str] = None


@dataclass
class LrFindConf:
    """lr_find=true (short for lr_find.enabled=true): a learning-rate range test instead of training."""

    enabled: bool = False
    # Iterations of the test; the rate grows exponentially from min to max over them.
    steps: int = 100
    min: float = 1e-7
    max: float = 10.0
    # Stop once the smoothed loss is above this many times its lowest (or not finite).
    diverge: float = 4.0
    # The exponential moving average's weight of the past, for the smoothed loss; null: 0.9 with
    # mini-batches, 0 with the whole set per step (no batch noise to smooth). fastai uses 0.98.
    smoothing: Optional[float] = None


# ---------------------------------------------------------------- top level
# search.pruner: the pruners a search may stop trials with (gdrun.training.pruning builds them).
PRUNERS = ("median", "hyperband", "successive_halving")


@dataclass
class SearchConf:
    """A run as a trial of an Optuna search (search=..., hydra_plugins/gdrun_optuna): what it reports to."""

    # Stop unpromising trials early (null: every trial runs all its epochs): median, hyperband,
    # successive_halving. Each trial then reports its headline metric after every epoch.
    pruner: Optional[str] = None
    # median: trials that end before any trial is pruned, and epochs a trial runs before it can be.
    startup_trials: int = 5
    warmup_epochs: int = 0
    # Set for each trial by gdrun's Optuna sweeper when it prunes: the study and the trial's number.
    storage: Optional[str] = None
    study: Optional[str] = None
    trial: Optional[int] = None


@dataclass
class SelectConf:
    """Model selection: the metric best.pt follows, a search optimises and a sweep's best.json chooses by."""

    # An epochs.csv column of the training or validation set: val_loss, val_accuracy, val_f1, val_auc,
    # val_rmse, val_mae, val_r2 (lower is better for loss, rmse and mae); null: val_accuracy for
    # classification, val_loss for regression (train_ without a validation set). Never a test_ metric.
    metric: Optional[str] = None


@dataclass
class Config:
    seed: int = 0
    # auto picks cuda, then mps, then cpu; or name one (cpu, cuda, cuda:1, mps).
    device: str = "auto"
    # Draw the pictures in plots/ after the run (from the files the run wrote).
    plots: bool = True
    # In a sweep (gdrun -m), draw each job's pictures too, after the jobs, two processes at once. Off:
    # a sweep draws only its own pictures at its root (with plots), and gdrun-report SWEEP_DIR the jobs'.
    plots_jobs: bool = False
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
    # early_stop.patience=N: stop when early_stop.metric has not improved for N epochs.
    early_stop: EarlyStopConf = field(default_factory=EarlyStopConf)
    # lr_find=true: a learning-rate range test instead of training (lr_find.steps, lr_find.min, lr_find.max).
    lr_find: LrFindConf = field(default_factory=LrFindConf)
    select: SelectConf = field(default_factory=SelectConf)
    # A trial of an Optuna search with pruning (search.pruner=median): see SearchConf.
    search: SearchConf = field(default_factory=SearchConf)
    # Each group is typed by its base schema; an option's own schema (a subclass) replaces it.
    data: DataConf = MISSING
    model: ModelConf = MISSING
    loss: LossConf = MISSING
    optim: OptimConf = MISSING
    sched: SchedConf = MISSING


# The base schema of each group: its `own` keys are the ones gdrun reads itself.
BASES = {"data": DataConf, "model": ModelConf, "loss": LossConf, "optim": OptimConf, "sched": SchedConf}


def gdrun_keys(group: str) -> Set[str]:
    """The keys of a group's config that gdrun reads itself; the rest go to its `_target_`.

    Those of every option's schema, not only the chosen one's: a config read back from a run
    folder has lost its schema, and a key gdrun reads (data.standardize) is never a target's.
    """
    keys = own_keys(BASES[group])
    for schema in SCHEMAS.get(group, {}).values():
        keys |= own_keys(schema)
    return keys


# Keys a command line may set as a whole, short for one key inside: `lr_find=true` is lr_find.enabled=true
# (lr_find is a node with keys of its own, and Hydra takes no true/false as a config group's option).
SHORTHANDS = {"lr_find": "lr_find.enabled"}


def expand_shorthands(overrides: Sequence[str]) -> List[str]:
    """The overrides with each shorthand (`lr_find=true`, `lr_find=true,false`) written out in full."""
    expanded = []
    for override in overrides:
        key, equals, value = override.partition("=")
        name = key.lstrip("+~")
        full = SHORTHANDS.get(name) if equals else None
        expanded.append(f"{key[: len(key) - len(name)]}{full}={value}" if full else override)
    return expanded


def what_ran(cfg: Any) -> Dict[str, Any]:
    """A run's settings in brief (summary.json's `run`): data, model, loss, optim, lr, batch_size, seed."""
    return {
        "data": cfg.data.name,
        "model": cfg.model.name,
        "loss": cfg.loss.name,
        "optim": cfg.optim.name,
        "lr": cfg.optim.lr,
        "batch_size": cfg.optim.batch_size,
        "seed": cfg.seed,
    }


# Options whose schema takes keys of your own (`+model.width=64`, or a key in your YAML).
OPEN = {("data", "custom"), ("model", "custom")}
# Options that are a schema alone, with no YAML file: loss=auto, which data=csv and the other
# options of your data pick (a YAML in conf/loss/ would be one more loss to test on every dataset).
CODE_OPTIONS = {("loss", "auto")}


def register() -> None:
    """Store the top-level schema and one schema per group option under schema/<group>/<name>.

    An option's schema is closed (a misspelled key fails); `data` and `model` start open, so a
    YAML of your own with only a `_target_` and its keys composes (an option's closed schema
    closes them again), and so do the custom options.
    """
    from hydra.core.config_store import ConfigStore  # here: reading a run's settings needs no Hydra
    from omegaconf import OmegaConf

    cs = ConfigStore.instance()

    def store(schema: Any, name: str, group: Optional[str] = None) -> Any:
        """The schema's node as the store keeps it (the flags are set on that one: ConfigStore.store makes
        the config from a dataclass itself, and would copy a config handed to it, ~1 ms a schema at every
        start)."""
        cs.store(group=group, name=name, node=schema)
        folder: Any = cs.repo
        for part in group.split("/") if group else ():
            folder = folder[part]
        return folder[f"{name}.yaml"].node

    root = store(Config, "gdrun_schema")
    for group in ("data", "model"):
        OmegaConf.set_struct(root._get_node(group), False)
    for group, schemas in SCHEMAS.items():
        for name, schema in schemas.items():
            places = [f"schema/{group}", *([group] if (group, name) in CODE_OPTIONS else [])]
            for place in places:
                OmegaConf.set_struct(store(schema, name, place), (group, name) not in OPEN)
