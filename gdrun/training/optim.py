"""Optimizers of gdrun's own; torch.optim's are named directly by the optim configs.

GD is the course notebooks' hand-written update, `w.data = w.data - lr * w.grad.data`.
torch.optim.SGD computes the same step as one fused `add_(grad, alpha=-lr)`, which rounds
differently in float32: over 600 SGD steps the costs drift apart by ~2e-6 relative, more
than float precision allows when a lab is compared with its notebook.
"""

import torch
from torch.optim import Optimizer


class GD(Optimizer):
    """w <- w - lr * grad (and, with weight_decay, grad + weight_decay * w): no momentum, no state."""

    def __init__(self, params, lr: float, weight_decay: float = 0.0):
        super().__init__(params, {"lr": lr, "weight_decay": weight_decay})

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
