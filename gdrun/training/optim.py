"""Optimizers of gdrun's own; torch.optim's are named directly by the optim configs.

GD is the course notebooks' hand-written update, `w.data = w.data - lr * w.grad.data`.
torch.optim.SGD computes the same step as one fused `add_(grad, alpha=-lr)`, which rounds
differently in float32: over 600 SGD steps the costs drift apart by ~2e-6 relative, more
than float precision allows when a lab is compared with its notebook.
"""

from typing import Any, Callable

import torch
from torch.optim import Optimizer


def _undecorated(method: Callable[..., Any]) -> Callable[..., Any]:
    """The body torch's decorator wraps (functools.wraps keeps it as __wrapped__)."""
    return getattr(method, "__wrapped__", method)


class GD(Optimizer):
    """w <- w - lr * grad (and, with weight_decay, grad + weight_decay * w): no momentum, no state."""

    def __init__(self, params, lr: float, weight_decay: float = 0.0):
        super().__init__(params, {"lr": lr, "weight_decay": weight_decay})

    # torch wraps these in torch._disable_dynamo, whose first call imports torch._dynamo
    # (about 1.2-2 s here). Plain GD is never compiled, so call torch's own bodies directly;
    # a tiny lab then starts in about half the time.
    def add_param_group(self, param_group: dict) -> None:
        _undecorated(Optimizer.add_param_group)(self, param_group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        _undecorated(Optimizer.zero_grad)(self, set_to_none)

    def state_dict(self) -> dict:
        return _undecorated(Optimizer.state_dict)(self)

    def load_state_dict(self, state_dict: dict) -> None:
        _undecorated(Optimizer.load_state_dict)(self, state_dict)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, decay = group["lr"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad if decay == 0 else p.grad + decay * p
                p.sub_(lr * grad)  # lr * grad rounded first, then subtracted: the notebooks' two roundings
        return loss
