"""Bad input, caught early and said plainly: the offending key or file and what would be valid.

`check_values` runs on the composed config before torch is imported; `explain` turns Hydra's
and OmegaConf's composition errors into one or two sentences.
"""

import dataclasses
import math
import re
from importlib.resources import files
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, cast

from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf
from omegaconf.errors import (
    ConfigAttributeError,
    ConfigKeyError,
    InterpolationResolutionError,
    MissingMandatoryValue,
    OmegaConfBaseException,
    ValidationError,
)

from gdrun.config.metric_names import metric_of
from gdrun.config.schema import CODE_OPTIONS, PRUNERS
from gdrun.errors import GdrunError

DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
# The activations gdrun.training.models builds (a test keeps the two lists equal).
ACTIVATIONS = ("relu", "sigmoid", "tanh", "gelu")
# The torchvision datasets stored as MNIST's four IDX files, the ones data=mnist's loader reads.
IDX_DATASETS = ("MNIST", "FashionMNIST", "KMNIST")
# torch.manual_seed takes [-2**63, 2**64); a negative seed is a typo, so gdrun takes [0, 2**64).
MAX_SEED = 2**64 - 1
# The most numbers gdrun builds a model, or a synthetic grid, with: 2**31 is 8 GiB of float32
# before gradients and optimizer state; past it a size is a typo (model.hidden=[1000000000]).
MAX_NUMBERS = 2**31
# The tasks a dataset can have (gdrun.training.data.TASKS; this layer imports no torch).
TASKS = ("regression", "binary", "multiclass")
# The largest side an image is resized to (data.size): past it a size is a typo.
MAX_SIDE = 10_000
# Values to show for a key that has no value (`???`) when its schema's default is no example.
EXAMPLES = {"optim.batch_size": "32", "optim.epochs": "10"}


class Rule(NamedTuple):
    """A key's valid values: a test, and what they are in words (said after "must be")."""

    ok: Callable[[Any], bool]
    valid: str


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _whole(low: int, high: Optional[int] = None) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and low <= v and (high is None or v <= high)


def _at_least(low: float) -> Callable[[Any], bool]:
    return lambda v: _finite(v) and v >= low


def _above(low: float) -> Callable[[Any], bool]:
    return lambda v: _finite(v) and v > low


def _fraction(v: Any) -> bool:
    """In [0, 1)."""
    return _finite(v) and 0 <= v < 1


def _or_null(test: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: v is None or test(v)


def _image_size(v: Any) -> bool:
    """[height, width], whole numbers from 1 to MAX_SIDE."""
    return isinstance(v, (list, ListConfig)) and len(v) == 2 and all(_whole(1, MAX_SIDE)(side) for side in v)


def _names(v: Any) -> bool:
    """A non-empty list of column names."""
    return isinstance(v, (list, ListConfig)) and len(v) > 0 and all(isinstance(name, str) and name for name in v)


# The training controls (gdrun.training.controls, schedules, lr_find).
CONTROL_RULES: Dict[str, Rule] = {
    "optim.clip_grad_norm": Rule(
        _or_null(_above(0)), "a positive number, e.g. optim.clip_grad_norm=1.0 (or null: no clipping)"
    ),
    "optim.clip_grad_value": Rule(
        _or_null(_above(0)), "a positive number, e.g. optim.clip_grad_value=0.5 (or null: no clipping)"
    ),
    "early_stop.patience": Rule(
        _or_null(_whole(0)), "a whole number of epochs, 0 or more, e.g. early_stop.patience=5 (or null: off)"
    ),
    "early_stop.min_delta": Rule(_at_least(0), "0 or more: how much a change must be to count as an improvement"),
    "early_stop.mode": Rule(_or_null(lambda v: v in ("min", "max")), "min or max (or null: from the metric's name)"),
    "sched.interval": Rule(lambda v: v in ("epoch", "step"), "epoch or step: when the schedule steps"),
    "sched.warmup_steps": Rule(
        _or_null(_whole(1)), "a whole number of iterations, 1 or more (or null: a tenth of the run)"
    ),
    "sched.start_factor": Rule(
        lambda v: _finite(v) and 0 < v <= 1, "in (0, 1]: the warm-up's first rate over optim.lr"
    ),
    "sched.total_steps": Rule(_or_null(_whole(1)), "a whole number of iterations, 1 or more (or null: the whole run)"),
    "sched.max_lr": Rule(_above(0), "a positive, finite number: the peak rate (by default optim.lr)"),
    "sched.pct_start": Rule(lambda v: _finite(v) and 0 < v < 1, "in (0, 1): the part of the cycle spent rising"),
    "sched.div_factor": Rule(_above(0), "a positive number: the first rate is max_lr / div_factor"),
    "sched.final_div_factor": Rule(
        _above(0), "a positive number: the last rate is max_lr / div_factor / final_div_factor"
    ),
    "sched.anneal_strategy": Rule(lambda v: v in ("cos", "linear"), "cos or linear"),
    "lr_find.steps": Rule(_whole(2), "a whole number of iterations, 2 or more, e.g. lr_find.steps=100"),
    "lr_find.min": Rule(_above(0), "a positive number, e.g. lr_find.min=1e-7"),
    "lr_find.max": Rule(_above(0), "a positive number, e.g. lr_find.max=10"),
    "lr_find.diverge": Rule(
        _above(1), "above 1: the test stops when the smoothed loss passes this many times its lowest"
    ),
    "lr_find.smoothing": Rule(_or_null(_fraction), "in [0, 1): the weight of the past in the smoothed loss, e.g. 0.98"),
}
SEED = Rule(_whole(0, MAX_SEED), f"a whole number from 0 to 2**64 - 1 ({MAX_SEED}), the seeds torch takes")
# Checked wherever the key is present: each optimizer, schedule, model and dataset has its own.
RULES: Dict[str, Rule] = {
    "seed": SEED,
    "data.seed": SEED,
    "optim.lr": Rule(_above(0), "a positive, finite number, e.g. optim.lr=0.1"),
    "optim.epochs": Rule(_whole(0), "0 or more"),
    "optim.weight_decay": Rule(_at_least(0), "0 or more (0: no decay)"),
    "optim.momentum": Rule(_at_least(0), "0 or more (0: none; 0.9 is usual)"),
    "optim.dampening": Rule(lambda v: _finite(v) and 0 <= v <= 1, "in [0, 1]"),
    "optim.eps": Rule(_above(0), "a small positive number, e.g. 1e-8 (it keeps a division away from 0)"),
    "optim.alpha": Rule(_fraction, "in [0, 1): the decay of the squared gradients' running average, e.g. 0.99"),
    "optim.lr_decay": Rule(_at_least(0), "0 or more"),
    "optim.initial_accumulator_value": Rule(_at_least(0), "0 or more"),
    "sched.step_size": Rule(_whole(1), "a whole number of epochs, 1 or more"),
    "sched.gamma": Rule(_above(0), "a positive number: the learning rate's factor per step, e.g. 0.1"),
    "sched.T_max": Rule(_or_null(_whole(1)), "a whole number of epochs, 1 or more (or null: optim.epochs)"),
    "sched.eta_min": Rule(_at_least(0), "0 or more: the lowest learning rate"),
    "sched.factor": Rule(lambda v: _finite(v) and 0 < v < 1, "in (0, 1): the learning rate's factor, e.g. 0.1"),
    "sched.patience": Rule(_whole(0), "a whole number of epochs, 0 or more"),
    "sched.threshold": Rule(_at_least(0), "0 or more"),
    "sched.min_lr": Rule(_at_least(0), "0 or more: the lowest learning rate"),
    "sched.mode": Rule(lambda v: v in ("min", "max"), "min or max"),
    "model.dropout": Rule(_fraction, "in [0, 1): the fraction of units dropped"),
    "model.activation": Rule(lambda v: v in ACTIVATIONS, f"one of: {', '.join(ACTIVATIONS)}"),
    "data.val_split": Rule(_fraction, "in [0, 1): the fraction held out"),
    "data.test_split": Rule(_fraction, "in [0, 1): the fraction of the data held out as the test set"),
    "data.folds": Rule(
        lambda v: v == 0 or _whole(2)(v), "0 (no cross-validation) or a whole number of folds, 2 or more"
    ),
    "data.fold": Rule(_whole(0), "a fold's number, 0 to data.folds - 1"),
    "data.start": Rule(_finite, "a finite number"),
    "data.stop": Rule(_finite, "a finite number"),
    "data.step": Rule(_finite, "a finite number"),
    "data.num": Rule(_or_null(_whole(1, MAX_NUMBERS)), "a whole number of points from 1 to 2**31 (or null)"),
    "data.dataset": Rule(lambda v: v in IDX_DATASETS, f"one of: {', '.join(IDX_DATASETS)}"),
    "data.task": Rule(_or_null(lambda v: v in TASKS), f"one of: {', '.join(TASKS)} (or null: inferred from the data)"),
    "data.size": Rule(_or_null(_image_size), f"[height, width] in pixels, each from 1 to {MAX_SIDE:,} (or null)"),
    "data.features": Rule(_or_null(_names), "a list of column names, e.g. data.features=[age,height] (or null: all)"),
    "select.metric": Rule(
        _or_null(lambda v: isinstance(v, str) and metric_of(v) is not None and not v.startswith("test_")),
        "a training or validation metric, e.g. select.metric=val_f1 (val_loss, val_accuracy, val_auc, val_rmse, "
        "val_mae, val_r2; never a test_ one: the test set never chooses a model), or null",
    ),
    "fit_every": Rule(_or_null(_whole(1)), "1 or more (or null)"),
    "threads": Rule(_or_null(_whole(1)), "1 or more (or null)"),
    "checkpoint_every": Rule(_whole(0), "0 (only at the end) or more"),
    "checkpoint_min_seconds": Rule(_at_least(0), "0 or more seconds"),
    "search.pruner": Rule(_or_null(lambda v: v in PRUNERS), f"one of: {', '.join(PRUNERS)} (or null: no pruning)"),
    "search.startup_trials": Rule(_whole(0), "a whole number of trials, 0 or more"),
    "search.warmup_epochs": Rule(_whole(0), "a whole number of epochs, 0 or more"),
    "diverge_factor": Rule(_or_null(lambda v: v > 1), "above 1 (or null to stop only on NaN/inf)"),
    **CONTROL_RULES,
}
# A key whose values are a few names: listed when a value is not even plain ASCII.
CHOICES = {
    "model.activation": ", ".join(ACTIVATIONS),
    "data.dataset": ", ".join(IDX_DATASETS),
    "data.task": ", ".join(TASKS),
    "sched.mode": "min, max",
    "device": "auto, cpu, cuda, cuda:N, mps",
}
_ABSENT = object()


def check_values(cfg: DictConfig) -> None:
    """Refuse values that compose (their types are right) but cannot train.

    Read from plain containers of the config, once unresolved (for `???`) and once resolved: every
    job of a sweep is checked, and walking OmegaConf's nodes key by key cost a 256-job grid ~1 s.
    """
    missing = _missing_keys(OmegaConf.to_container(cfg, resolve=False))
    if missing:
        raise GdrunError(no_value(missing, [_example(cfg, key) for key in missing]))
    try:
        plain = OmegaConf.to_container(cfg, resolve=True)
    except InterpolationResolutionError as error:
        raise GdrunError(f"{error.full_key} could not be resolved: {str(error).splitlines()[0]}.") from error
    assert isinstance(plain, dict)  # a DictConfig's container: string keys
    plain = cast(Dict[str, Any], plain)
    problems: List[str] = []
    for key, rule in RULES.items():
        value = _select(plain, key, _ABSENT)
        if value is not _ABSENT and not rule.ok(value):
            problems.append(f"{key}={value} must be {rule.valid}")
    batch = plain["optim"]["batch_size"]
    if not (batch == "full" or _whole(1)(batch)):
        problems.append(f"optim.batch_size={batch} must be a whole number >= 1, or full (the whole training set)")
    if not DEVICE.match(str(plain["device"])):
        problems.append(f"device={plain['device']} is not a device; use auto, cpu, cuda, cuda:N or mps")
    problems += _model_problems(plain["model"]) + _optim_problems(plain["optim"]) + _data_problems(plain["data"])
    problems += _control_problems(plain)
    problems += _split_problems(plain["data"])
    surface = plain.get("surface_range")
    if surface is not None and not (1 <= len(surface) <= 2 and all(_above(0)(v) for v in surface)):
        problems.append(f"surface_range={surface} must be one or two positive numbers, [W] or [W, B] (or null)")
    if problems:
        raise GdrunError("; ".join(problems) + ".")


def _select(plain: Dict[str, Any], key: str, default: Any) -> Any:
    """The value at a dotted key of a plain container, else `default` (OmegaConf.select on plain data)."""
    node: Any = plain
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def _split_problems(data: Dict[str, Any]) -> List[str]:
    """A fold past the folds, or a fold without folds (the validation set would silently be val_split's)."""
    folds, fold = data.get("folds", 0), data.get("fold", 0)
    if not (_whole(0)(folds) and _whole(0)(fold)) or (folds == 0 and fold == 0):
        return []
    if folds == 0:
        return [f"data.fold={fold} needs data.folds, the number of folds, e.g. data.folds=5 data.fold={fold}"]
    if fold >= folds:
        return [f"data.fold={fold} must be a fold of data.folds={folds}: 0 to {folds - 1}"]
    return []


def _model_problems(model: Dict[str, Any]) -> List[str]:
    problems = []
    for key in ("hidden", "channels"):
        value = model.get(key)
        sizes = list(value) if isinstance(value, list) else [] if value is None else [value]
        if any(size < 1 for size in sizes):
            problems.append(f"model.{key}={value} must give layer sizes of 1 or more")
    init = model.get("init")
    if init is not None and not isinstance(init, dict):
        problems.append(
            f"model.init={init} must be a mapping of parameter name -> values, "
            "e.g. model.init={weight: [[-15.0]], bias: [-10.0]} (or null)"
        )
    return problems


def _optim_problems(optim: Dict[str, Any]) -> List[str]:
    problems = []
    betas = optim.get("betas")
    if betas is not None and not (len(betas) == 2 and all(_fraction(b) for b in betas)):
        problems.append(f"optim.betas={betas} must be two numbers in [0, 1), e.g. optim.betas=[0.9,0.999]")
    if optim.get("nesterov") and not (_above(0)(optim.get("momentum")) and optim.get("dampening") == 0):
        problems.append(
            f"optim.nesterov=true needs optim.momentum above 0 and optim.dampening=0 "
            f"(they are {optim.get('momentum')} and {optim.get('dampening')})"
        )
    return problems


def _control_problems(cfg: Dict[str, Any]) -> List[str]:
    """Training controls that cannot go together (each key's own values are RULES')."""
    problems = []
    optim, sched = cfg["optim"], cfg["sched"]
    if optim.get("clip_grad_norm") is not None and optim.get("clip_grad_value") is not None:
        problems.append(
            "optim.clip_grad_norm and optim.clip_grad_value are both set; clip one way: "
            "set the other to null (e.g. optim.clip_grad_value=null)"
        )
    if sched.get("interval") == "step" and str(sched.get("_target_")).endswith("ReduceLROnPlateau"):
        problems.append("sched=plateau watches a metric of each epoch, so sched.interval must be epoch")
    warmup, total = sched.get("warmup_steps"), sched.get("total_steps")
    if _whole(1)(warmup) and _whole(1)(total) and warmup >= total:
        problems.append(
            f"sched.warmup_steps={warmup} must be fewer than sched.total_steps={total}, the warm-up's and cosine's "
            f"iterations together (e.g. sched.warmup_steps={max(1, total // 10)})"
        )
    low, high = (_select(cfg, f"lr_find.{k}", None) for k in ("min", "max"))
    if _above(0)(low) and _above(0)(high) and low >= high:
        problems.append(f"lr_find.min={low} must be below lr_find.max={high}: the rates tried grow from min to max")
    return problems


def _data_problems(data: Dict[str, Any]) -> List[str]:
    """A synthetic dataset's grid, intervals, edges and weights, which torch would refuse or silently misshape."""
    problems = []
    grid: List[Any] = [data.get(k) for k in ("start", "stop", "step")]
    if all(_finite(v) for v in grid) and data.get("num") is None:
        start, stop, step = grid
        points = math.ceil((stop - start) / step) if step else 0
        where = f"from data.start={start} to data.stop={stop}"
        if step == 0:
            problems.append(f"data.step={step} must not be 0: it is the distance between the points {where}")
        elif start == stop:
            problems.append(f"data.start={start} and data.stop={stop} leave no room for a point; make them differ")
        elif points < 1:
            problems.append(
                f"data.step={step} gives no points {where}; give it the sign of data.stop - data.start "
                f"(data.step={-step})"
            )
        elif points > MAX_NUMBERS:
            problems.append(f"data.step={step} gives {points:,} points {where}; at most 2**31, so a larger step")
    intervals = data.get("intervals")
    if intervals is not None and not all(len(pair) == 2 and pair[0] < pair[1] for pair in intervals):
        problems.append(
            f"data.intervals={intervals} must be pairs [lo, hi] with lo < hi, e.g. [[-10.0,-5.0],[5.0,10.0]]"
        )
    edges = data.get("edges")
    if edges is not None and not (all(_finite(e) for e in edges) and all(a < b for a, b in zip(edges, edges[1:]))):
        problems.append(f"data.edges={edges} must be finite numbers in increasing order, e.g. [-1.0,1.0]")
    weights, bias = data.get("weights"), data.get("bias")
    if weights is not None:
        widths = {len(row) for row in weights}
        if len(weights) == 0 or len(widths) != 1 or 0 in widths:
            problems.append(
                f"data.weights={weights} must be a table: one row per input feature, "
                "each with one number per output (all rows the same length)"
            )
        elif bias is not None and len(bias) != widths.pop():
            problems.append(
                f"data.bias={bias} must give one number per output: data.weights has {len(weights[0])} column(s)"
            )
    return problems


def no_value(keys: Sequence[str], examples: Sequence[str]) -> str:
    """`optim.lr has no value; give one, e.g. optim.lr=0.1.`"""
    given = " ".join(f"{key}={example}" for key, example in zip(keys, examples))
    if len(keys) == 1:
        return f"{keys[0]} has no value; give one, e.g. {given}."
    return f"{', '.join(keys)} have no value; give them, e.g. {given}."


def _missing_keys(node: Any, prefix: str = "") -> List[str]:
    """Full keys whose value is `???`, in an unresolved container (where an interpolation is its text)."""
    found: List[str] = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        full = f"{prefix}.{key}" if prefix and isinstance(key, str) else f"{prefix}[{key}]" if prefix else str(key)
        if value == MISSING:
            found.append(full)
        elif isinstance(value, (dict, list)):
            found += _missing_keys(value, full)
    return found


def _example(cfg: DictConfig, key: str) -> str:
    parent, _, name = key.rpartition(".")
    node = OmegaConf.select(cfg, parent) if parent else cfg
    return _default(OmegaConf.get_type(node) if isinstance(node, DictConfig) else None, name, key)


def _default(schema: Any, name: str, key: str) -> str:
    """A value to give `key` as an example: its schema's default when that is a plain value."""
    if key in EXAMPLES:
        return EXAMPLES[key]
    field = next((f for f in dataclasses.fields(schema) if f.name == name), None) if _is_schema(schema) else None
    if field is not None and field.default is not dataclasses.MISSING and field.default != MISSING:
        value = field.default
    elif field is not None and field.default_factory is not dataclasses.MISSING:
        value = field.default_factory()
    else:
        return "..."
    if isinstance(value, bool):
        return str(value).lower()
    if value is None or (isinstance(value, str) and ("${" in value or not value)):
        return "..."
    return str(value).replace(" ", "")


def _is_schema(schema: Any) -> bool:
    return isinstance(schema, type) and dataclasses.is_dataclass(schema)


def explain(error: Exception) -> str:
    """One or two sentences for a composition error, naming the key and what is valid."""
    if isinstance(error, MissingConfigException) and error.options:
        group, _, name = (error.missing_cfg_file or "").rpartition("/")
        if group:
            return f"{group}={name} is not an option of '{group}'; choose one of: {listed(group, error.options)}."
    if isinstance(error, OverrideParseException):
        if not error.override.isascii():
            return _not_ascii(error.override)
        return f"could not read an override: {str(error).splitlines()[0]}. Write overrides as key=value."
    cause = error.__cause__ if isinstance(error, ConfigCompositionException) else error
    if isinstance(cause, (ConfigAttributeError, ConfigKeyError)):
        return _unknown_key(cause)
    if isinstance(cause, MissingMandatoryValue) and cause.full_key:
        return no_value([cause.full_key], [_default(cause.object_type, str(cause.key), cause.full_key)])
    if isinstance(cause, ValidationError):
        return f"{cause.full_key}: {str(cause).splitlines()[0]}."
    if isinstance(cause, OmegaConfBaseException):
        return str(cause).splitlines()[0]
    return str(error).strip().splitlines()[0]


def _not_ascii(override: str) -> str:
    """Hydra's lexer reads unquoted values in ASCII only; say so, and what the key takes."""
    key, sep, value = override.partition("=")
    name = key.lstrip("+~")
    if not sep or not name.isascii():
        return f"{key} is not a key: keys are plain ASCII names, e.g. optim.lr=0.1."
    options = _group_options(name)
    if options:
        return f"{name}={value} is not an option of '{name}'; choose one of: {listed(name, options)}."
    # A sweep's comma-separated values are quoted one by one: a quoted "a,b" would be one value.
    items = [value] if any(c in value for c in "[]{}()'\"") else value.split(",")
    quoted = ",".join(item if item.isascii() else f'"{item}"' for item in items)
    choices = f" {name} is one of: {CHOICES[name]}." if name in CHOICES else ""
    return f"{name}={value} is not plain ASCII: write values in ASCII, or quoted ('{name}={quoted}').{choices}"


def listed(group: str, options: Sequence[str]) -> str:
    """A group's options for a sentence: sorted, and `custom` last, said as what it is."""
    names = sorted(set(options) - {"custom"})
    if "custom" not in options:
        return ", ".join(names)
    return f"{', '.join(names)}, or custom for a {group} builder of your own ({group}=custom {group}._target_=...)"


def _group_options(group: str) -> List[str]:
    """The options of a config group (its YAML files, and loss=auto), or none when `group` is not a group."""
    folder = files("gdrun.conf").joinpath(group)
    if not folder.is_dir():
        return []
    names = [p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml")]
    return sorted(names + [name for g, name in CODE_OPTIONS if g == group])


def _unknown_key(error: OmegaConfBaseException) -> str:
    full_key = error.full_key or error.key
    parent = full_key.rpartition(".")[0]
    valid = ""
    if dataclasses.is_dataclass(error.object_type):
        names = [f.name for f in dataclasses.fields(error.object_type) if not f.name.startswith("_")]
        valid = f"; its keys are: {', '.join(names)}"
    where = f"'{parent}'" if parent else "the config"
    return f"{full_key} is not a key of {where}{valid}. (Use +{full_key}=... to add a new key on purpose.)"
