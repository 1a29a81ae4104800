"""Turn the composed config into the run's parts: device, data, model, loss, optimizer, schedule.

Each part is `hydra.utils.instantiate` of its config group with the keys gdrun reads itself
taken out, and the values known only at run time (data sizes, parameters, epochs) passed
at the call.
"""

import logging
import platform
import re
from typing import Any, Dict, List, Optional

import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from gdrun.config.schema import gdrun_keys
from gdrun.errors import GdrunError
from gdrun.training.data import Dataset
from gdrun.training.datasets.tabular import as_dataset
from gdrun.training.models import set_initial_values
from gdrun.training.splits import arrange

log = logging.getLogger("gdrun")

# What gdrun passes a builder besides its config keys, said when a builder of one's own refuses them.
RUNTIME = {
    "model": "input_shape (a tuple), num_outputs (an int) and output (identity, sigmoid or log_softmax)",
}


def call(node: DictConfig, group: str, **runtime: Any) -> Any:
    """Instantiate a group's `_target_` with its own keys and the run-time arguments."""
    values = OmegaConf.to_container(node, resolve=True)
    assert isinstance(values, dict)
    kwargs = {k: v for k, v in values.items() if k not in gdrun_keys(group)}
    name = node.get("name", node._target_)
    try:
        built = instantiate({"_target_": node._target_, **kwargs}, **runtime, _convert_="all")
    except InstantiationException as error:
        # Our builders say what is wrong with GdrunError or ValueError: pass that sentence on.
        if isinstance(error.__cause__, (GdrunError, ValueError)):
            raise GdrunError(f"{group}={name}: {error.__cause__}") from error
        said = refused_call(group, str(node._target_), error.__cause__, sorted(map(str, kwargs)), sorted(runtime))
        if said is not None:
            raise GdrunError(said) from error
        raise
    return built


def refused_call(
    group: str, target: str, cause: Optional[BaseException], keys: List[str], runtime: List[str]
) -> Optional[str]:
    """A target that cannot be imported, or that refuses the arguments it was given, said in a sentence."""
    if isinstance(cause, ImportError):
        first = str(cause).splitlines()[1:2] or [str(cause)]
        return (
            f"{group}._target_={target} could not be imported ({first[0].strip()}); is the module's folder on "
            f"PYTHONPATH (or its package installed), and is the name spelled as in the code?"
        )
    if not isinstance(cause, TypeError):
        return None
    unexpected = re.search(r"unexpected keyword argument '(\w+)'", str(cause))
    if unexpected and unexpected.group(1) in runtime:
        return (
            f"{group}._target_={target} does not take {unexpected.group(1)}: gdrun calls a {group} builder with "
            f"{RUNTIME.get(group, ', '.join(runtime))}, then its own keys."
        )
    if unexpected:
        key = unexpected.group(1)
        return (
            f"{group}._target_={target} does not take {key}, which {group}.{key} passes it; for a builder of your "
            f"own start from {group}=custom, which has no keys of another option: "
            f"gdrun {group}=custom {group}._target_={target} +{group}.KEY=VALUE."
        )
    missing = re.search(r"missing \d+ required (?:positional|keyword-only) arguments?: (.+)$", str(cause))
    if missing:
        needed = [m.strip("' ") for m in re.split(r", | and ", missing.group(1))]
        given = " ".join(f"+{group}.{key}=..." for key in needed)
        return (
            f"{group}._target_={target} needs {', '.join(needed)}; give {'them' if len(needed) > 1 else 'it'}: {given}."
        )
    return f"{group}._target_={target} refused its arguments ({', '.join([*keys, *runtime])}): {cause}"


def resolve_device(name: str) -> torch.device:
    """`auto` is the first of cuda, mps, cpu that this machine has."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise GdrunError(f"device={name} is not a device name; use auto, cpu, cuda, cuda:N or mps.") from error
    present = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}
    if not present.get(device.type, False) or (
        device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count()
    ):
        raise GdrunError(f"device={name} is not present on this machine; use device=auto or device=cpu.")
    return device


def describe_device(device: torch.device) -> str:
    """The device and what it is, for the run's record: `cuda:0 (NVIDIA A100-SXM4-40GB)`, `cpu (Intel(R) ...)`."""
    if device.type == "cuda":
        return f"cuda:{device.index or 0} ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({cpu_model()})"
    return str(device)


def cpu_model() -> str:
    """The processor's model name (Linux's /proc/cpuinfo), else what Python's platform module says."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def build_data(cfg: DictConfig, seed: int, device: torch.device, scaling: Optional[Dict[str, Any]] = None) -> Dataset:
    """The dataset on `device`: its test and validation sets as asked (training.splits: data.test_split,
    data.val_split unless the data has a validation set of its own, data.folds), features standardized when asked.

    `scaling`: a run's recorded standardization (summary.json's model_args.input_scaling), used
    instead of the numbers computed again; a difference between them is said in a warning.
    """
    data = as_dataset(call(cfg, "data"), str(cfg._target_))
    data = arrange(data, cfg, seed)
    if cfg.get("standardize"):
        data = standardized(data, scaling, str(cfg.name))
    return data.to(device)


def standardized(data: Dataset, recorded: Optional[Dict[str, Any]], name: str) -> Dataset:
    """Every input number scaled by the training set's mean and standard deviation (a constant one: by 1),
    the numbers kept in meta["input_scaling"] with the feature names."""
    flat = data.x.reshape(len(data), -1).double()
    mean, std = flat.mean(0), flat.std(0, unbiased=False)
    std[std == 0] = 1.0
    if recorded is not None:
        saved_mean = torch.tensor(recorded["mean"], dtype=torch.float64).reshape(-1)
        saved_std = torch.tensor(recorded["std"], dtype=torch.float64).reshape(-1)
        same = saved_mean.shape == mean.shape and torch.allclose(saved_mean, mean) and torch.allclose(saved_std, std)
        if not same:
            log.warning(
                "data=%s: the training set's means and standard deviations differ from the ones the run recorded "
                "(its data changed since?); scaling by the recorded ones",
                name,
            )
        mean, std = saved_mean, saved_std

    def scale(x: torch.Tensor) -> torch.Tensor:
        return ((x.reshape(len(x), -1).double() - mean) / std).to(x.dtype).reshape(x.shape)

    features = data.meta.get("features") or [f"x{i + 1}" for i in range(len(mean))]
    meta = {**data.meta, "input_scaling": {"features": features, "mean": mean.tolist(), "std": std.tolist()}}
    val = None if data.val is None else Dataset(scale(data.val.x), data.val.y, data.val.task, classes=data.classes)
    test = None if data.test is None else Dataset(scale(data.test.x), data.test.y, data.task, classes=data.classes)
    return Dataset(scale(data.x), data.y, data.task, val, data.classes, meta, test)


def check_compatible(data: Dataset, data_name: str, model_cfg: DictConfig, loss_cfg: DictConfig) -> None:
    """Refuse a model or loss that cannot work on this dataset's targets, naming what would."""
    if loss_cfg.tasks and data.task not in loss_cfg.tasks:
        raise GdrunError(
            f"loss={loss_cfg.name} needs a {' or '.join(loss_cfg.tasks)} dataset, but data={data_name} is "
            f"{data.task}; leave loss unset (each dataset picks its usual loss) or choose one for {data.task} "
            f"(loss=auto picks it from the data)."
        )
    if loss_cfg.name == "auto" and loss_cfg.get("task") is None and data.task == "binary":
        raise GdrunError(
            f"data={data_name} is binary (0/1 float targets), which loss=auto cannot tell from numbers to regress; "
            f"name the loss: loss=bce_logits."
        )
    if model_cfg.tasks and data.task not in model_cfg.tasks:
        raise GdrunError(
            f"model={model_cfg.name} is for {' or '.join(model_cfg.tasks)} data, but data={data_name} is "
            f"{data.task}; use model=linear or model=mlp."
        )


def model_args(data: Dataset, output: str) -> Dict[str, Any]:
    """What a model builder gets besides its config: the data's input shape and outputs, the loss's
    last layer. Saved in checkpoints and summary.json, so a saved model is rebuilt without its data.

    With data.standardize, also `input_scaling` (features, mean, std): what the model's inputs
    were scaled by, which new inputs need too ((x - mean) / std); the builder is not given it.
    """
    args = {"input_shape": list(data.input_shape), "num_outputs": data.num_outputs, "output": output}
    if "input_scaling" in data.meta:
        args["input_scaling"] = data.meta["input_scaling"]
    return args


def build_model(cfg: DictConfig, args: Dict[str, Any]) -> torch.nn.Module:
    """The model its config describes, sized by `args` (see model_args), with model.init's values set."""
    model = call(
        cfg, "model", input_shape=tuple(args["input_shape"]), num_outputs=args["num_outputs"], output=args["output"]
    )
    if not isinstance(model, torch.nn.Module):
        raise GdrunError(f"model._target_={cfg._target_} returned {type(model).__name__}, not a torch.nn.Module.")
    init = OmegaConf.to_container(cfg.init, resolve=True) if isinstance(cfg.get("init"), DictConfig) else None
    try:
        return set_initial_values(model, init)  # type: ignore[arg-type]
    except ValueError as error:
        raise GdrunError(f"model={cfg.name}: {error}") from error


def build_loss(cfg: DictConfig) -> torch.nn.Module:
    return call(cfg, "loss")


def build_optimizer(cfg: DictConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    return call(cfg, "optim", params=model.parameters())


def build_scheduler(
    cfg: DictConfig, optimizer: torch.optim.Optimizer, epochs: int, steps_per_epoch: int = 1
) -> Optional[Any]:
    """A learning-rate schedule stepped every epoch or every iteration (sched.interval), or None for a
    constant rate. A length left null (T_max, total_steps) is the whole run, in those intervals."""
    if cfg._target_ is None:
        return None
    length = max(epochs * (steps_per_epoch if cfg.get("interval") == "step" else 1), 1)
    runtime: Dict[str, Any] = {}
    for key in ("T_max", "total_steps"):
        if key in cfg:
            runtime[key] = cfg[key] or length
    if "cycle_momentum" in cfg and cfg.cycle_momentum is None:
        runtime["cycle_momentum"] = has_momentum(optimizer)
    return call(cfg, "sched", optimizer=optimizer, **runtime)


def has_momentum(optimizer: torch.optim.Optimizer) -> bool:
    """An optimizer with a momentum to cycle: SGD's when above 0, or Adam's beta1."""
    group = optimizer.param_groups[0]
    return "betas" in group or bool(group.get("momentum", 0))


def build_saved_model(cfg: DictConfig, args: Dict[str, Any], state: Dict[str, Any]) -> torch.nn.Module:
    """A saved model: built from its config and construction arguments (no data), weights loaded, in eval mode.

    Building draws initial weights, so it does so on a forked RNG and leaves the caller's random
    stream as it was; the saved weights replace them anyway.
    """
    with torch.random.fork_rng(devices=[]):
        model = build_model(cfg, args)
    model.load_state_dict(state)
    return model.eval()
