"""A run's parts, built from its config: device, data, model, loss, optimizer, schedule, batches."""

import math
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import torch
from omegaconf import DictConfig, OmegaConf

from gdrun.errors import GdrunError
from gdrun.training.best import Best
from gdrun.training.build import (
    build_data,
    build_loss,
    build_model,
    build_optimizer,
    build_scheduler,
    check_compatible,
    model_args,
    resolve_device,
)
from gdrun.training.controls import EarlyStop, early_stop
from gdrun.training.data import Dataset, resolve_batch_size, steps_per_epoch


@dataclass
class Parts:
    """Everything a run trains with, built from its config."""

    device: torch.device
    data: Dataset
    model: torch.nn.Module  # the module whose state is saved
    model_args: Dict[str, Any]  # what build_model was given besides the config (saved with the weights)
    net: torch.nn.Module  # the module that runs: the model, or torch.compile's wrapper of it
    loss_fn: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Optional[Any]
    epochs: int
    batch_size: int
    shuffle: Optional[torch.Generator]
    threshold: float  # a binary output is class 1 above this: 0.5 for probabilities, 0 for logits
    precision: Optional[torch.dtype]  # bfloat16 under autocast (amp=true), else None
    # Training controls (gdrun.training.controls): clipping, when the schedule steps, early stopping.
    clip_grad_norm: Optional[float] = None
    clip_grad_value: Optional[float] = None
    step_schedule: bool = False  # the scheduler steps after every iteration, not every epoch
    early_stop: Optional[EarlyStop] = None

    @property
    def steps_per_epoch(self) -> int:
        return steps_per_epoch(len(self.data), self.batch_size)


def build(cfg: DictConfig) -> Parts:
    """Seed, then the parts in a fixed order (model initialisation draws from the seeded RNG)."""
    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg.device)
    data = build_data(cfg.data, cfg.seed, device)
    check_data(data, cfg.data)
    batch_size = resolve_batch_size(cfg.optim.batch_size, len(data))
    set_threads(cfg.threads, device, batch_size * data.x[0].numel())
    check_compatible(data, cfg.data.name, cfg.model, cfg.loss)
    args = model_args(data, cfg.loss.output)
    model = allocated_model(cfg.model, args, device)
    optimizer = build_optimizer(cfg.optim, model)
    epochs = int(cfg.optim.epochs)
    batches = steps_per_epoch(len(data), batch_size)
    return Parts(
        device=device,
        data=data,
        model=model,
        model_args=args,
        net=compiled(model, cfg),
        loss_fn=build_loss(cfg.loss),
        optimizer=optimizer,
        scheduler=build_scheduler(cfg.sched, optimizer, epochs, batches),
        epochs=epochs,
        batch_size=batch_size,
        shuffle=torch.Generator().manual_seed(cfg.seed) if cfg.data.shuffle else None,
        threshold=threshold(cfg.loss.output),
        precision=mixed_precision(cfg.amp, device),
        # .get: the config of a run folder from before these keys has none of them
        clip_grad_norm=cfg.optim.get("clip_grad_norm"),
        clip_grad_value=cfg.optim.get("clip_grad_value"),
        step_schedule=cfg.sched.get("interval") == "step",
        early_stop=watched(cfg.get("early_stop"), data),
    )


def watched(cfg: Optional[DictConfig], data: Dataset) -> Optional[EarlyStop]:
    """The run's early stopping (None: off); its metric by default the headline one, best.pt's."""
    if cfg is None:
        return None
    headline = Best(has_val=data.val is not None, classification=data.task != "regression").headline
    return early_stop(cfg.patience, cfg.metric, cfg.min_delta, cfg.mode, headline)


def check_data(data: Dataset, cfg: DictConfig) -> None:
    """Refuse data with no samples, or with NaN or inf in it, which would otherwise end as a 'diverged' run."""
    if len(data) == 0:
        raise GdrunError(
            f"data={cfg.name} has no training samples; check its settings (gdrun --cfg job data={cfg.name})."
        )
    problem = data.non_finite()
    if problem is None:
        return
    settings = non_finite_settings(cfg)
    source = f"{', '.join(settings)}: " if settings else ""
    raise GdrunError(f"{source}data={cfg.name} contains {problem}; the data must be finite numbers.")


def non_finite_settings(cfg: DictConfig) -> List[str]:
    """The data's settings that hold NaN or inf, as key=value."""
    values = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(values, dict)

    def non_finite(value: Any) -> bool:
        if isinstance(value, (list, tuple)):
            return any(non_finite(v) for v in value)
        return isinstance(value, float) and not math.isfinite(value)

    return [f"data.{key!s}={value}" for key, value in values.items() if non_finite(value)]


def allocated_model(cfg: DictConfig, args: Dict[str, Any], device: torch.device) -> torch.nn.Module:
    """The model on its device; one too large for the device's memory is bad input, said as such."""
    try:
        return build_model(cfg, args).to(device)
    except Exception as error:
        if not out_of_memory(error):
            raise
        sizes = [f"model.{key}={cfg[key]}" for key in ("hidden", "channels") if key in cfg]
        what = " ".join([f"model={cfg.name}", *sizes])
        raise GdrunError(
            f"{what} does not fit in this machine's {device.type} memory; give it smaller layers."
        ) from error


def out_of_memory(error: Optional[BaseException]) -> bool:
    """Whether torch failed to allocate memory (on any device), here or in what caused it."""
    while error is not None:
        if isinstance(error, (MemoryError, torch.OutOfMemoryError)) or "can't allocate memory" in str(error):
            return True
        error = error.__cause__
    return False


def threshold(output: str) -> float:
    """Where a binary output turns into class 1: 0.5 for probabilities (a sigmoid), 0 for logits."""
    return 0.5 if output == "sigmoid" else 0.0


# Below this many input numbers per batch torch's threads cost more than they save: each
# operation is a few microseconds, and threads waiting for a busy core make it milliseconds.
SMALL_BATCH = 32_768


def set_threads(threads: Optional[int], device: torch.device, batch_numbers: int) -> None:
    """torch's CPU threads: as configured, or (null) one for small batches and torch's default otherwise."""
    if threads:
        torch.set_num_threads(threads)
    elif device.type == "cpu" and batch_numbers < SMALL_BATCH:
        torch.set_num_threads(1)


def compiled(model: torch.nn.Module, cfg: DictConfig) -> torch.nn.Module:
    """torch.compile's wrapper of the model when compile=true (it shares the model's parameters)."""
    return torch.compile(model, backend=cfg.compile_backend) if cfg.compile else model  # type: ignore[return-value]


def mixed_precision(amp: bool, device: torch.device) -> Optional[torch.dtype]:
    """bfloat16 for amp=true: it needs no gradient scaling, unlike float16."""
    if not amp:
        return None
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise GdrunError(
            f"amp=true uses bfloat16, which {torch.cuda.get_device_name(device)} lacks; run without amp (amp=false)."
        )
    return torch.bfloat16
