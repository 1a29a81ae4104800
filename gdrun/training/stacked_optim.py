"""Optimizer updates of many jobs at once, each parameter stacked along a leading job axis (J, ...).

gd (gdrun's GD), sgd and adam/adamw, each job with its own hyperparameters (read from its own torch
optimizer's param_groups, where its scheduler changes them) and its own state. Every update is
torch's single-tensor update (torch/optim/sgd.py, adam.py; GD.step), operation for operation, so a
job's parameters round as in its single run on the CPU, to the bit:
- a hyperparameter every job shares stays a Python float and goes to torch's own call;
- one that differs is a (J, 1, ...) float32 tensor, and each call is written to round the same:
  `a.add_(b, alpha=c)` rounds a + c·b once (a fused multiply-add), which float64 computes exactly
  (the product of two float32 is exact there) before the one rounding to float32;
  `addcmul_(b, b, value=v)` and `addcdiv_(b, d, value=v)` take v·b as their first tensor, which
  they multiply by 1 (exact) where torch multiplies b by v; `lerp_`, `mul_` and `/` take a tensor
  weight, factor or divisor with the same kernel.
On a GPU a single run uses torch's multi-tensor (foreach) updates, which order a few operations
differently: the numbers then agree within float rounding.

`fill_state` puts one job's state into its own torch optimizer in torch's format (the state_dict
its checkpoints hold and a single run's resume loads).
"""

from typing import Callable, Dict, List, Optional, Sequence, Union

import torch
from torch import Tensor

from gdrun.training.optim import GD

Params = Dict[str, Tensor]  # name -> (J, ...) stacked parameter, in the model's parameter order
Scalar = Union[float, Tensor]  # a float shared by every job, or a (J, 1, ...) tensor with one per job

# The optimizers with a stacked update, by config _target_.
STACKED = ("gdrun.training.optim.GD", "torch.optim.SGD", "torch.optim.Adam", "torch.optim.AdamW")


class PerJob:
    """One hyperparameter of every job: a float when they all share it, else one float32 per job."""

    def __init__(self, values: Sequence[float]):
        self.values = [float(v) for v in values]
        first = self.values[0]
        self.shared: Optional[float] = first if all(v == first for v in self.values) else None
        self._shaped: Dict[tuple, Tensor] = {}

    def like(self, tensor: Tensor) -> Scalar:
        """The shared float, or the values shaped (J, 1, ...) to broadcast over `tensor` (J, ...)."""
        if self.shared is not None:
            return self.shared
        key = (tensor.dim(), tensor.dtype, tensor.device)
        if key not in self._shaped:
            shape = (-1,) + (1,) * (tensor.dim() - 1)
            self._shaped[key] = torch.tensor(self.values, dtype=tensor.dtype, device=tensor.device).view(shape)
        return self._shaped[key]

    def zero(self) -> bool:
        """Every job's value is 0 (torch then skips the operation)."""
        return self.shared == 0.0


def add_scaled(a: Tensor, b: Tensor, alpha: Scalar) -> Tensor:
    """a + alpha·b, rounded once as torch's a.add(b, alpha=alpha) rounds it (a new tensor)."""
    if isinstance(alpha, float):
        return a.add(b, alpha=alpha)
    return (a.double() + b.double() * alpha.double()).to(a.dtype)


def add_scaled_(a: Tensor, b: Tensor, alpha: Scalar) -> Tensor:
    """a += alpha·b, rounded as torch's a.add_(b, alpha=alpha)."""
    if isinstance(alpha, float):
        return a.add_(b, alpha=alpha)
    return a.copy_(add_scaled(a, b, alpha))


def addcmul_(a: Tensor, b: Tensor, c: Tensor, value: Scalar) -> Tensor:
    """a += value·b·c, as torch's a.addcmul_(b, c, value=value): (value·b)·c, then the sum."""
    if isinstance(value, float):
        return a.addcmul_(b, c, value=value)
    return a.addcmul_(b * value, c)


def addcdiv_(a: Tensor, b: Tensor, d: Tensor, value: Scalar) -> Tensor:
    """a += value·b/d, as torch's a.addcdiv_(b, d, value=value): (value·b)/d, then the sum."""
    if isinstance(value, float):
        return a.addcdiv_(b, d, value=value)
    return a.addcdiv_(b * value, d)


class Stacked:
    """The update of a group of jobs of one algorithm; its state is stacked like the parameters."""

    def __init__(self) -> None:
        self.groups: List[Dict] = []
        self._per_job: Dict[str, PerJob] = {}
        self.buffers: Dict[str, Params] = {}  # state name -> parameter name -> (J, ...)
        self.steps = 0  # updates done; every job of the stack has done all of them

    def set_groups(self, groups: Sequence[Dict]) -> None:
        """Each job's hyperparameters: its torch optimizer's param_groups[0], one per row of the stack."""
        self.groups = list(groups)
        self._per_job = {}

    def per_job(self, key: str, value: Optional[Callable[[Dict], float]] = None) -> PerJob:
        """A hyperparameter of every job, group[key] or value(group) (kept until the groups change)."""
        if key not in self._per_job:
            self._per_job[key] = PerJob([value(group) if value else group[key] for group in self.groups])
        return self._per_job[key]

    def keep(self, rows: Sequence[int]) -> None:
        """Only these rows of the stack go on (the others' jobs ended)."""
        index = torch.tensor(list(rows), dtype=torch.long)
        for params in self.buffers.values():
            for name, buffer in params.items():
                params[name] = buffer[index.to(buffer.device)]
        self.set_groups([self.groups[row] for row in rows])

    def step(self, params: Params, grads: Params) -> None:
        raise NotImplementedError

    def state_of(self, row: int, name: str) -> Dict[str, Tensor]:
        """The torch state of one job's parameter: its own copies of the stacked buffers' row."""
        return {key: params[name][row].clone() for key, params in self.buffers.items()}

    def fill_state(self, row: int, optimizer: torch.optim.Optimizer, names: Sequence[str]) -> None:
        """Put the state of the job in `row` into its torch `optimizer` (parameters in the order of `names`)."""
        optimizer.state.clear()
        if not self.buffers:
            return
        for name, param in zip(names, optimizer.param_groups[0]["params"]):
            optimizer.state[param] = self.state_of(row, name)


class StackedGD(Stacked):
    """gdrun's GD: w <- w - lr·(grad + weight_decay·w), with GD.step's two roundings. No state."""

    @torch.no_grad()
    def step(self, params: Params, grads: Params) -> None:
        lr, decay = self.per_job("lr"), self.per_job("weight_decay")
        self.steps += 1
        for name, p in params.items():
            grad = grads[name]
            if not decay.zero():
                grad = grad + decay.like(p) * p
            p.sub_(lr.like(p) * grad)


class StackedSGD(Stacked):
    """torch.optim.SGD: weight decay, momentum with dampening, Nesterov; the state is `momentum_buffer`."""

    @torch.no_grad()
    def step(self, params: Params, grads: Params) -> None:
        momentum, decay = self.per_job("momentum"), self.per_job("weight_decay")
        neg_lr = self.per_job("-lr", lambda group: -group["lr"])
        kept = self.per_job("1 - dampening", lambda group: 1 - group["dampening"])
        nesterov = self.groups[0]["nesterov"]  # the same in every job of a group (see vectorised.group_key)
        buffers = self.buffers.setdefault("momentum_buffer", {}) if momentum.shared != 0.0 else None
        self.steps += 1
        for name, p in params.items():
            grad = grads[name]
            if not decay.zero():
                grad = add_scaled(grad, p, decay.like(p))
            if buffers is not None:
                buf = buffers.get(name)
                if buf is None:
                    buf = buffers[name] = grad.detach().clone()
                else:
                    add_scaled_(buf.mul_(momentum.like(p)), grad, kept.like(p))
                grad = add_scaled(grad, buf, momentum.like(p)) if nesterov else buf
            add_scaled_(p, grad, neg_lr.like(p))


class StackedAdam(Stacked):
    """torch.optim.Adam and AdamW (decoupled weight decay), amsgrad or not.

    The state is `step`, `exp_avg`, `exp_avg_sq` (and `max_exp_avg_sq`); the bias corrections are
    computed in Python floats per job, as torch's single-tensor update computes them.
    """

    def __init__(self, decoupled: bool):
        super().__init__()
        self.decoupled = decoupled  # AdamW: the weights shrink by 1 - lr·weight_decay, the gradient is left alone

    @torch.no_grad()
    def step(self, params: Params, grads: Params) -> None:
        groups = self.groups
        self.steps += 1
        step = float(self.steps)  # torch reads its float32 step tensor back as a Python float
        beta1 = [g["betas"][0] for g in groups]
        beta2 = [g["betas"][1] for g in groups]
        corrections1 = [1 - b**step for b in beta1]
        corrections2 = [1 - b**step for b in beta2]
        neg_step_size = PerJob([-(g["lr"] / c) for g, c in zip(groups, corrections1)])
        correction2_sqrt = PerJob([c**0.5 for c in corrections2])
        weight1 = self.per_job("1 - beta1", lambda group: 1 - group["betas"][0])
        beta2s = self.per_job("beta2", lambda group: group["betas"][1])
        weight2 = self.per_job("1 - beta2", lambda group: 1 - group["betas"][1])
        eps, decay = self.per_job("eps"), self.per_job("weight_decay")
        shrink = self.per_job("1 - lr * weight_decay", lambda group: 1 - group["lr"] * group["weight_decay"])
        amsgrad = bool(groups[0]["amsgrad"])
        keys = ["exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"] if amsgrad else [])
        for key in keys:
            self.buffers.setdefault(key, {})
        for name, p in params.items():
            grad = grads[name]
            if name not in self.buffers["exp_avg"]:
                for key in keys:
                    self.buffers[key][name] = torch.zeros_like(p, memory_format=torch.preserve_format)
            exp_avg, exp_avg_sq = self.buffers["exp_avg"][name], self.buffers["exp_avg_sq"][name]
            if not decay.zero():
                if self.decoupled:
                    p.mul_(shrink.like(p))
                else:
                    grad = add_scaled(grad, p, decay.like(p))
            exp_avg.lerp_(grad, weight1.like(p))
            addcmul_(exp_avg_sq.mul_(beta2s.like(p)), grad, grad, weight2.like(p))
            if amsgrad:
                largest = self.buffers["max_exp_avg_sq"][name]
                torch.maximum(largest, exp_avg_sq, out=largest)
                denom = (largest.sqrt() / correction2_sqrt.like(p)).add_(eps.like(p))
            else:
                denom = (exp_avg_sq.sqrt() / correction2_sqrt.like(p)).add_(eps.like(p))
            addcdiv_(p, exp_avg, denom, neg_step_size.like(p))

    def state_of(self, row: int, name: str) -> Dict[str, Tensor]:
        # torch keeps `step` as a float32 CPU tensor (float64 when that is the default dtype), first.
        dtype = torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32
        return {"step": torch.tensor(float(self.steps), dtype=dtype), **super().state_of(row, name)}


def stacked_optimizer(optimizer: torch.optim.Optimizer) -> Stacked:
    """The stacked update of the algorithm of a job's torch optimizer (one of STACKED)."""
    if isinstance(optimizer, GD):
        return StackedGD()
    if isinstance(optimizer, torch.optim.SGD):
        return StackedSGD()
    if isinstance(optimizer, (torch.optim.Adam, torch.optim.AdamW)):
        # Newer torch makes AdamW an Adam with decoupled_weight_decay=True; older torch a class of its own.
        group = optimizer.param_groups[0]
        return StackedAdam(isinstance(optimizer, torch.optim.AdamW) or bool(group.get("decoupled_weight_decay")))
    raise ValueError(f"{type(optimizer).__name__} has no stacked update; these have: {', '.join(STACKED)}")
