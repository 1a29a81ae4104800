"""Turn the composed config into the run's parts: device, data, model, loss, optimizer, schedule.

Each part is `hydra.utils.instantiate` of its config group with the keys gdrun reads itself
taken out, and the values known only at run time (data sizes, parameters, epochs) passed
at the call.
"""

from typing import Any, Dict, Optional

import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from gdrun.config.schema import gdrun_keys
from gdrun.errors import GdrunError
from gdrun.training.data import Dataset, hold_out


def call(node: DictConfig, group: str, **runtime: Any) -> Any:
    """Instantiate a group's `_target_` with its own keys and the run-time arguments."""
    values = OmegaConf.to_container(node, resolve=True)
    assert isinstance(values, dict)
    kwargs = {k: v for k, v in values.items() if k not in gdrun_keys(group)}
    try:
        return instantiate({"_target_": node._target_, **kwargs}, **runtime, _convert_="all")
    except InstantiationException as error:
        # Our builders say what is wrong with GdrunError or ValueError: pass that sentence on.
        if isinstance(error.__cause__, (GdrunError, ValueError)):
            raise GdrunError(f"{group}={node.get('name', node._target_)}: {error.__cause__}") from error
        raise


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


def build_data(cfg: DictConfig, seed: int, device: torch.device) -> Dataset:
    """The dataset on `device`, with `val_split` of the training set held out when asked."""
    data = call(cfg, "data")
    if cfg.val_split > 0:
        data = hold_out(data, cfg.val_split, seed)
    return data.to(device)


def check_compatible(data: Dataset, data_name: str, model_cfg: DictConfig, loss_cfg: DictConfig) -> None:
    """Refuse a model or loss that cannot work on this dataset's targets, naming what would."""
    if loss_cfg.tasks and data.task not in loss_cfg.tasks:
        raise GdrunError(
            f"loss={loss_cfg.name} needs a {' or '.join(loss_cfg.tasks)} dataset, but data={data_name} is "
            f"{data.task}; leave loss unset (each dataset picks its usual loss) or choose one for {data.task}."
        )
    if model_cfg.tasks and data.task not in model_cfg.tasks:
        raise GdrunError(
            f"model={model_cfg.name} is for {' or '.join(model_cfg.tasks)} data, but data={data_name} is "
            f"{data.task}; use model=linear or model=mlp."
        )


def model_args(data: Dataset, output: str) -> Dict[str, Any]:
    """What a model builder gets besides its config: the data's input shape and outputs, the loss's
    last layer. Saved in checkpoints and summary.json, so a saved model is rebuilt without its data."""
    return {"input_shape": list(data.input_shape), "num_outputs": data.num_outputs, "output": output}


def build_model(cfg: DictConfig, args: Dict[str, Any]) -> torch.nn.Module:
    """The model its config describes, sized by `args` (see model_args)."""
    return call(
        cfg, "model", input_shape=tuple(args["input_shape"]), num_outputs=args["num_outputs"], output=args["output"]
    )


def build_loss(cfg: DictConfig) -> torch.nn.Module:
    return call(cfg, "loss")


def build_optimizer(cfg: DictConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    return call(cfg, "optim", params=model.parameters())


def build_scheduler(cfg: DictConfig, optimizer: torch.optim.Optimizer, epochs: int) -> Optional[Any]:
    """A per-epoch learning-rate schedule, or None for a constant rate."""
    if cfg._target_ is None:
        return None
    runtime = {"T_max": cfg.T_max or max(epochs, 1)} if "T_max" in cfg else {}
    return call(cfg, "sched", optimizer=optimizer, **runtime)


def build_saved_model(cfg: DictConfig, args: Dict[str, Any], state: Dict[str, Any]) -> torch.nn.Module:
    """A saved model: built from its config and construction arguments (no data), weights loaded, in eval mode.

    Building draws initial weights, so it does so on a forked RNG and leaves the caller's random
    stream as it was; the saved weights replace them anyway.
    """
    with torch.random.fork_rng(devices=[]):
        model = build_model(cfg, args)
    model.load_state_dict(state)
    return model.eval()
