"""A run's parts, built from its config: device, data, model, loss, optimizer, schedule, batches."""

from dataclasses import dataclass
from typing import Any, Dict, Optional

import torch
from omegaconf import DictConfig

from gdrun.errors import GdrunError
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

    @property
    def steps_per_epoch(self) -> int:
        return steps_per_epoch(len(self.data), self.batch_size)


def build(cfg: DictConfig) -> Parts:
    """Seed, then the parts in a fixed order (model initialisation draws from the seeded RNG)."""
    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg.device)
    data = build_data(cfg.data, cfg.seed, device)
    batch_size = resolve_batch_size(cfg.optim.batch_size, len(data))
    set_threads(cfg.threads, device, batch_size * data.x[0].numel())
    check_compatible(data, cfg.data.name, cfg.model, cfg.loss)
    args = model_args(data, cfg.loss.output)
    model = build_model(cfg.model, args).to(device)
    optimizer = build_optimizer(cfg.optim, model)
    epochs = int(cfg.optim.epochs)
    return Parts(
        device=device,
        data=data,
        model=model,
        model_args=args,
        net=compiled(model, cfg),
        loss_fn=build_loss(cfg.loss),
        optimizer=optimizer,
        scheduler=build_scheduler(cfg.sched, optimizer, epochs),
        epochs=epochs,
        batch_size=batch_size,
        shuffle=torch.Generator().manual_seed(cfg.seed) if cfg.data.shuffle else None,
        threshold=threshold(cfg.loss.output),
        precision=mixed_precision(cfg.amp, device),
    )


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
