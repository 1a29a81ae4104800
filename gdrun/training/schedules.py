"""Learning-rate schedules of gdrun's own, made of torch's schedulers (sched=warmup_cosine).

A schedule's `interval` (sched.interval: epoch or step) says when the loop steps it; its
lengths count those intervals, and a length left null is the whole run (see build_scheduler).
"""

from typing import Optional

import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, SequentialLR


def warmup_cosine(
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    warmup_steps: Optional[int] = None,
    start_factor: float = 0.01,
    eta_min: float = 0.0,
) -> SequentialLR:
    """lr x start_factor rising linearly to lr over `warmup_steps`, then half a cosine down to
    `eta_min` over the rest of `total_steps`: torch's LinearLR then CosineAnnealingLR.

    ValueError (said by gdrun as sched=warmup_cosine: ...) when the warm-up does not fit in the run.
    """
    warmup = warmup_steps if warmup_steps is not None else max(1, total_steps // 10)
    if warmup >= total_steps:
        raise ValueError(
            f"sched.warmup_steps={warmup} is not shorter than the run's {total_steps} iterations "
            f"(optim.epochs x steps per epoch); give fewer, e.g. sched.warmup_steps={max(1, total_steps // 10)}"
        )
    rise = LinearLR(optimizer, start_factor=start_factor, end_factor=1.0, total_iters=warmup)
    fall = CosineAnnealingLR(optimizer, T_max=total_steps - warmup, eta_min=eta_min)
    return SequentialLR(optimizer, [rise, fall], milestones=[warmup])
