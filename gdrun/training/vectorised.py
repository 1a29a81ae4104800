"""Jobs of a sweep that differ only in numbers, trained together: one forward and one backward per step for all.

Jobs with equal `group_key` (the same data, model architecture, loss, optimizer algorithm, batch
size and epochs) may differ in the learning rate, momentum, weight decay, betas, eps, dampening,
their schedules, the seed of their initial weights and data order, model.init values. They train
in one pass: their parameters stacked along a leading job axis (J, ...), a template module run by
torch.func.functional_call under torch.vmap, one backward for all, and a stacked update
(stacked_optim) with each job's own hyperparameters and state.

Each job is still its own run. It is built as its single run builds it (training.parts.build: the
seed, its data, its initial weights, its own torch optimizer, scheduler and shuffle generator; a
job whose seed and model.init an earlier job of the group has takes that job's data and a copy of
its initial model, which build would make again, and builds only its optimizer and schedule), it
has its own `Outputs`, and it goes through the runner's own epoch bookkeeping (begin, record_steps,
close_epoch, make_summary), so its folder is the folder its single run writes and
`gdrun resume=JOB` continues it. Where it differs, and why that does not show:
- the stacked forward and backward sum in another order than the single run's matmuls, so the
  numbers agree within float rounding (torch.testing.assert_close), not always to the bit;
- a job's module and torch optimizer are refreshed from the stack when its outputs read them (at
  an epoch's end, a checkpoint), not after every step; params.csv rows are read off the stack;
- before its outputs write, the global RNG is set to the job's own (as its build left it), so
  its checkpoints record the RNG states its single run records.
A job that diverges or is stopped ends as its single run would end, and leaves the stack.
"""

import copy
import math
import time
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from omegaconf import DictConfig, ListConfig, OmegaConf
from torch import Tensor, nn
from torch.func import functional_call, vmap

from gdrun.config.targets import current_name
from gdrun.errors import GdrunError
from gdrun.rundir.files import one_sync, write_json
from gdrun.rundir.layout import RunPaths
from gdrun.training import metrics as task_metrics
from gdrun.training.build import build_optimizer, build_scheduler, resolve_device
from gdrun.training.data import Dataset, tensor_batches
from gdrun.training.display import make_group_display
from gdrun.training.epoch import EVAL_CHUNK, predict
from gdrun.training.outputs import Outputs, Progress
from gdrun.training.parts import Parts, build
from gdrun.training.runner import (
    begin,
    close_epoch,
    current_lr,
    end_of_run,
    make_row,
    make_summary,
    output_settings,
    record_steps,
    resolved,
)
from gdrun.training.signals import StopRequest
from gdrun.training.stacked_optim import STACKED, Stacked, stacked_optimizer

# ---------------------------------------------------------------- which jobs train together
# Settings each job of a group may have its own of: numbers the engine keeps per job (the seed
# draws its initial weights and data order; each job's schedule is its own torch scheduler), or
# how the job reports.
PER_JOB = (
    "seed", "model.init", "sched", "diverge_factor", "plots", "surface_range", "fit_every",
    "checkpoint_every", "checkpoint_min_seconds", "loggers",
)  # fmt: skip
# Groups whose numbers may differ per job (the stacked update takes one value per job) but for these.
NUMBERS_PER_JOB = ("optim",)
SHAPING_NUMBERS = ("optim.batch_size", "optim.epochs")
NUMBER = "<number>"
BUILT_IN_MODELS = ("gdrun.training.models.linear", "gdrun.training.models.mlp", "gdrun.training.models.cnn")


def group_key(cfg: DictConfig) -> Tuple:
    """Jobs whose keys are equal may train together: everything but the numbers that may differ."""
    key = []
    for path, value in sorted(_flat(resolved(cfg)).items()):
        if _under(path, PER_JOB):
            continue
        if _under(path, NUMBERS_PER_JOB) and path not in SHAPING_NUMBERS:
            value = _numbers_hidden(value)
        key.append((path, value))
    # SGD keeps a momentum buffer only with momentum: which state a job has is not a number.
    key.append(("optim.momentum != 0", bool(cfg.optim.get("momentum", 0))))
    return tuple(key)


def batch_reason(cfg: DictConfig) -> Optional[str]:
    """None when this job can train in a group, else a short reason why it cannot."""
    if OmegaConf.select(cfg, "search.pruner") is not None:
        return f"search.pruner={cfg.search.pruner}: each trial reports to Optuna and stops on its own"
    if cfg.amp:
        return "amp=true: autocast is not vectorised here"
    if cfg.compile:
        return "compile=true: a compiled model is not vectorised here"
    if current_name(str(cfg.model._target_)) not in BUILT_IN_MODELS:
        return f"model={cfg.model.name}: a model whose target is not one of gdrun's built-in models"
    if cfg.model.get("dropout", 0) > 0:
        return f"model.dropout={cfg.model.dropout}: dropout draws different random numbers when vectorised"
    if current_name(str(cfg.optim._target_)) not in STACKED:
        return f"optim={cfg.optim.name}: no stacked update (gd, sgd, adam and adamw have one)"
    if not str(cfg.loss._target_).startswith("torch.nn."):
        return f"loss={cfg.loss.name}: a loss that is not one of torch's"
    control = control_reason(cfg)
    if control is not None:
        return control
    try:
        device = resolve_device(cfg.device)
    except GdrunError as error:
        return str(error)
    if device.type not in ("cpu", "cuda"):
        return f"device={cfg.device} ({device.type}): a device other than the CPU or one GPU"
    return None


def control_reason(cfg: DictConfig) -> Optional[str]:
    """A training control (training.controls) the stacked update does not do; None when there is none.
    Early stopping needs nothing of the engine: each job's runner.close_epoch decides it."""
    if OmegaConf.select(cfg, "lr_find.enabled", default=False):
        return "lr_find=true: a range test runs alone"
    for key in ("clip_grad_norm", "clip_grad_value"):
        if cfg.optim.get(key) is not None:
            return f"optim.{key}={cfg.optim[key]}: gradient clipping is not vectorised"
    if cfg.sched.get("interval") == "step":
        return f"sched={cfg.sched.name}: a schedule stepped every iteration is not vectorised"
    return None


def _flat(config: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
    """A resolved config as `a.b.c` -> value, lists as tuples (hashable)."""
    flat: Dict[str, Any] = {}
    for key, value in config.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flat(value, f"{path}."))
        else:
            flat[path] = _frozen(value)
    return flat


def _frozen(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((str(k), _frozen(v)) for k, v in value.items()))
    return value


def _under(path: str, keys: Sequence[str]) -> bool:
    return any(path == key or path.startswith(key + ".") for key in keys)


def _numbers_hidden(value: Any) -> Any:
    """The value with every number (not a bool) replaced by NUMBER: its shape, not its numbers."""
    if isinstance(value, tuple):
        return tuple(_numbers_hidden(v) for v in value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return NUMBER
    return value


# ---------------------------------------------------------------- the jobs
@dataclass
class RngState:
    """The global RNG states, as a job's single run holds them while it trains (as its build left them)."""

    cpu: Tensor
    cuda: Optional[List[Tensor]]

    @classmethod
    def now(cls) -> "RngState":
        return cls(torch.get_rng_state(), torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None)

    def put(self) -> None:
        torch.set_rng_state(self.cpu)
        if self.cuda is not None:
            torch.cuda.set_rng_state_all(self.cuda)


@dataclass
class Member:
    """One job of the group: its config, parts and outputs, where it is, and its epoch in flight."""

    cfg: DictConfig
    folder: Path
    parts: Parts
    rng: RngState
    dataset: int  # which of the group's distinct datasets it trains on
    outputs: Outputs = field(init=False)
    progress: Progress = field(default_factory=Progress)
    status: Optional[str] = None  # how it ended; None while it trains
    saved_at: float = -math.inf  # when its last.pt was last written (time.perf_counter)
    stepped: bool = False  # its torch optimizer was told it stepped (see refresh)
    # The epoch in flight: its costs so far, its learning rate, its first step, its data order's generator state.
    costs: List[float] = field(default_factory=list)
    lr: float = 0.0
    first_step: int = 1
    epoch_start: Optional[Tensor] = None

    def open(self) -> None:
        """The run folder, as runner.train opens it: `running` until the job ends; its outputs, without a display."""
        self.folder.mkdir(parents=True, exist_ok=True)
        write_json(RunPaths(self.folder).summary, {"status": "running", "started": datetime.now().isoformat()})
        # last.pt between epochs is the group's to time (see Rounds); the job's own rule would write it
        # as often as if it ran alone, J times the writing in the same time.
        settings = replace(output_settings(self.cfg), display=False, checkpoint_every=0)
        self.outputs = Outputs(self.folder, self.parts, settings)

    def record_steps(self, epoch: int) -> Optional[str]:
        """The epoch's steps so far into the job's files, as runner.epoch_loop records them; how it ended, if it did."""
        parts, progress, outputs = self.parts, self.progress, self.outputs
        return record_steps(parts, progress, outputs, epoch, self.first_step, self.costs, self.lr, self.epoch_start)

    def finish(self) -> Dict:
        """The job's last files and summary.json, as runner.train ends; returns the summary."""
        parts, cfg = self.parts, self.cfg

        self.rng.put()
        ending = end_of_run(self.status or "completed", parts, self.outputs)

        def summary(status: str, progress: Progress, best: Any, wall: float) -> Dict:
            return {**make_summary(status, progress, best, wall, parts, cfg), **ending}

        return self.outputs.finish(self.status or "completed", self.progress, summary)


def build_members(cfgs: Sequence[DictConfig], folders: Sequence[Path]) -> Tuple[List[Member], List[Dataset]]:
    """Each job's parts as its single run builds them; each distinct dataset kept once."""
    members: List[Member] = []
    datasets: List[Dataset] = []
    built: Dict[Tuple, Member] = {}  # the first job of each seed and model.init
    for cfg, folder in zip(cfgs, folders):
        init = cfg.model.get("init")
        if isinstance(init, (DictConfig, ListConfig)):
            init = OmegaConf.to_container(init, resolve=True)
        origin = (cfg.seed, _frozen(init))
        if origin in built:
            sibling = built[origin]
            members.append(Member(cfg, Path(folder), sibling_parts(cfg, sibling.parts), sibling.rng, sibling.dataset))
            continue
        parts = build(cfg)
        rng = RngState.now()
        number = next((i for i, data in enumerate(datasets) if same_data(data, parts.data)), None)
        if number is None:
            number = len(datasets)
            datasets.append(parts.data)
        else:
            parts.data = datasets[number]  # the copy just built goes: one copy of each dataset
        members.append(Member(cfg, Path(folder), parts, rng, number))
        built[origin] = members[-1]
    return members, datasets


def sibling_parts(cfg: DictConfig, built: Parts) -> Parts:
    """The parts build(cfg) makes, from those a job of the group with the same seed and model.init got
    from build (before it trained): within a group, nothing else decides the data and the initial
    weights, so they are that job's (shared, copied); the optimizer and schedule are cfg's own."""
    model = copy.deepcopy(built.model)
    optimizer = build_optimizer(cfg.optim, model)
    return replace(
        built,
        model=model,
        net=model,  # batchable: not compiled
        optimizer=optimizer,
        scheduler=build_scheduler(cfg.sched, optimizer, built.epochs),
        shuffle=torch.Generator().manual_seed(cfg.seed) if built.shuffle is not None else None,
    )


def same_data(a: Dataset, b: Dataset) -> bool:
    if a.task != b.task or a.classes != b.classes or (a.val is None) != (b.val is None):
        return False
    for s, t in ((a.x, b.x), (a.y, b.y)):
        if s.shape != t.shape or s.dtype != t.dtype or not torch.equal(s, t):
            return False
    return a.val is None or b.val is None or same_data(a.val, b.val)


# ---------------------------------------------------------------- the stacked parameters
# Numbers (float32) the activations of one vmapped pass may hold: 2**26 is 256 MiB. More jobs than
# fit are run a few at a time; each job's numbers are the same either way.
ACTIVATION_BUDGET = 1 << 26


class Stack:
    """Every job's parameters stacked along a leading job axis (J, ...), and a template module that runs them."""

    def __init__(self, models: Sequence[nn.Module]):
        self.template = copy.deepcopy(models[0])
        self.names = [name for name, _ in models[0].named_parameters()]
        self.params: Dict[str, Tensor] = {
            name: torch.stack([dict(m.named_parameters())[name].detach() for m in models]) for name in self.names
        }

    def __len__(self) -> int:
        return next(iter(self.params.values())).shape[0]

    def forward(self, params: Dict[str, Tensor], x: Tensor) -> Tensor:
        """One job's model on x (called under vmap: `params` is one job's)."""
        return functional_call(self.template, params, (x,))

    def costs_and_grads(
        self, loss_fn: nn.Module, x: Tensor, y: Tensor, dim: Optional[int], per_pass: Optional[int]
    ) -> Tuple[Tensor, Dict[str, Tensor]]:
        """Each job's cost on its batch (J,) and its gradients (J, ...): one vmapped forward and one backward
        per pass of `per_pass` jobs (None: all). `dim` is x and y's job axis (None: every job's batch is x, y)."""
        self.template.train()
        jobs = len(self)
        step = per_pass or jobs
        costs, grads = [], []
        for lo in range(0, jobs, step):
            leaves = {name: p[lo : lo + step].detach().requires_grad_() for name, p in self.params.items()}
            xs, ys = (x, y) if dim is None else (x[lo : lo + step], y[lo : lo + step])

            def cost(params: Dict[str, Tensor], xb: Tensor, yb: Tensor) -> Tensor:
                return loss_fn(self.forward(params, xb), yb)

            with torch.enable_grad():
                batch_costs = vmap(cost, in_dims=(0, dim, dim))(leaves, xs, ys)
                # The jobs are independent: the gradient of the sum is each job's own (times 1, exactly).
                grads.append(torch.autograd.grad(batch_costs.sum(), list(leaves.values())))
            costs.append(batch_costs.detach())
        if len(costs) == 1:
            return costs[0], dict(zip(self.names, grads[0]))
        return torch.cat(costs), {name: torch.cat([g[i] for g in grads]) for i, name in enumerate(self.names)}

    @torch.no_grad()
    def metrics(
        self,
        rows: Optional[Tensor],
        loss_fn: nn.Module,
        data: Dataset,
        threshold: float,
        per_pass: Optional[int],
    ) -> List[Dict[str, Optional[float]]]:
        """epoch.evaluate_set's metrics of the jobs in `rows` (None: all) on the whole of `data`, every job at once.

        The same chunks of EVAL_CHUNK samples, and the same arithmetic on them, as evaluate_set.
        """
        self.template.eval()
        params = {name: p if rows is None else p[rows] for name, p in self.params.items()}
        task, n = data.task, data.x.shape[0]
        classify = task != "regression"

        def chunk(params: Dict[str, Tensor], xb: Tensor, yb: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
            out = self.forward(params, xb)
            right = (predict(out, task, threshold) == yb).sum() if classify else out.new_zeros((), dtype=torch.long)
            return loss_fn(out, yb), right, out

        losses, sizes, correct, stats = [], [], [], []
        for start in range(0, n, EVAL_CHUNK):
            xb, yb = data.x[start : start + EVAL_CHUNK], data.y[start : start + EVAL_CHUNK]
            loss, right, out = vmap(chunk, in_dims=(0, None, None), chunk_size=per_pass)(params, xb, yb)
            losses.append(loss)
            sizes.append(xb.shape[0])
            if classify:
                correct.append(right)
            # training.metrics takes a leading job axis: out is (J, chunk, outputs).
            stats.append(task_metrics.chunk_stats(out, yb, task, threshold))
        extra = task_metrics.finish(task_metrics.merge(stats), data.y, task)
        # One read from the device for every chunk's numbers of every job: (chunks, J); float32 is exact in float64.
        values = torch.stack([v.double() for v in (*losses, *correct, *extra.values())]).tolist()
        found = values[len(values) - len(extra) :]
        results = []
        for job in range(len(values[0])):
            means = [values[i][job] for i in range(len(sizes))]
            loss_value = means[0] if len(means) == 1 else sum(m * s for m, s in zip(means, sizes)) / sum(sizes)
            metrics: Dict[str, Optional[float]] = {"loss": loss_value}
            if classify:
                metrics["accuracy"] = sum(values[len(sizes) + i][job] for i in range(len(correct))) / n
            for name, per_job in zip(extra, found):
                metrics[name] = None if math.isnan(per_job[job]) else per_job[job]  # AUC of one class: none
            results.append(metrics)
        return results

    def keep(self, rows: Sequence[int]) -> None:
        """Only these rows of the stack go on (the others' jobs ended)."""
        index = torch.tensor(list(rows), dtype=torch.long)
        self.params = {name: p[index.to(p.device)] for name, p in self.params.items()}

    def flat_rows(self) -> List[List[float]]:
        """Each job's parameters in one list, as Traces.after_step lists them (params.csv), in one copy."""
        jobs = len(self)
        return torch.cat([p.detach().reshape(jobs, -1) for p in self.params.values()], dim=1).tolist()


def activation_numbers(template: nn.Module, sample: Tensor) -> int:
    """Numbers a job's model holds for one sample: the input and every module's output (an upper bound)."""
    sizes: List[int] = []

    def count(_module: nn.Module, _inputs: Any, out: Any) -> None:
        if isinstance(out, Tensor):
            sizes.append(out.numel())

    hooks = [module.register_forward_hook(count) for module in template.modules()]
    try:
        with torch.no_grad():
            template(sample)
    finally:
        for hook in hooks:
            hook.remove()
    return sample.numel() + sum(sizes)


def jobs_per_pass(numbers_per_sample: int, samples: int, jobs: int) -> Optional[int]:
    """How many jobs one vmapped pass over `samples` samples may take (None: all of them)."""
    fits = max(1, ACTIVATION_BUDGET // max(1, numbers_per_sample * samples))
    return None if fits >= jobs else fits


@dataclass
class Passes:
    """Jobs per vmapped pass (None: all): a training step keeps activations and their gradients, evaluation not."""

    train: Optional[int]
    evaluate: Optional[int]


class Rounds:
    """When the group writes its jobs' checkpoints/last.pt between epochs.

    A job's own rule (every checkpoint_every epochs, at most once per checkpoint_min_seconds),
    on the group's clock; and since J jobs' checkpoints cost J times one run's, the writing is
    kept to about a tenth of the time: after a round that took r seconds, the next waits 10·r.
    """

    SHARE = 10

    def __init__(self) -> None:
        self.cost = 0.0  # seconds the last round took

    def save(self, members: Sequence[Member]) -> None:
        now = time.perf_counter()
        due = [m for m in members if self.due(m, now)]
        with one_sync():  # the round's checkpoints published together after one sync (rundir.files)
            for member in due:
                member.rng.put()
                member.outputs.save_last(member.progress)
                member.saved_at = now
        if due:
            self.cost = time.perf_counter() - now

    def due(self, member: Member, now: float) -> bool:
        every, epoch = member.cfg.checkpoint_every, member.progress.epoch
        if every <= 0 or epoch % every:
            return False
        return now - member.saved_at >= max(member.cfg.checkpoint_min_seconds, self.SHARE * self.cost)


# ---------------------------------------------------------------- the data
class GroupData:
    """The group's training data, each distinct dataset once (concatenated), and each job's batches as rows of it."""

    def __init__(self, datasets: Sequence[Dataset], batch_size: int, shuffled: bool):
        self.x = datasets[0].x if len(datasets) == 1 else torch.cat([d.x for d in datasets])
        self.y = datasets[0].y if len(datasets) == 1 else torch.cat([d.y for d in datasets])
        self.offsets = [sum(len(d) for d in datasets[:i]) for i in range(len(datasets))]
        self.n, self.batch_size = len(datasets[0]), batch_size
        # Every job takes the same slices of one dataset: one batch, shared by all (vmap's in_dims None).
        self.shared = len(datasets) == 1 and not shuffled

    def orders(self, members: Sequence[Member]) -> Optional[Tensor]:
        """Each job's order of this epoch as rows of x (J, n), drawn from its own generator as
        tensor_batches draws it (so its generator stays in step with its single run's); None when shared."""
        if self.shared:
            return None
        index = torch.arange(self.n)
        rows = []
        for member in members:
            shuffle = member.parts.shuffle
            order = index
            if shuffle is not None:
                order = torch.cat([batch for batch, _ in tensor_batches(index, index, self.batch_size, shuffle)])
            rows.append(order + self.offsets[member.dataset])
        return torch.stack(rows).to(self.x.device)

    def batch(self, orders: Optional[Tensor], step: int) -> Tuple[Tensor, Tensor, Optional[int]]:
        """Step `step`'s batch: x and y with a leading job axis (J, B, ...) and 0, or the shared x, y and None."""
        lo, hi = step * self.batch_size, (step + 1) * self.batch_size
        if orders is None:
            return self.x[lo:hi], self.y[lo:hi], None
        rows = orders[:, lo:hi]
        return self.x[rows], self.y[rows], 0


# ---------------------------------------------------------------- training
def train_together(cfgs: Sequence[DictConfig], folders: Sequence[Path], title: str) -> List[Dict]:
    """Train jobs of equal group_key, each batchable, in one pass; write each folder as runner.train writes it.

    Returns each job's summary (runner.train's), in the order of `cfgs`. One display for the group.
    """
    members, datasets = build_members(cfgs, folders)
    first = members[0].parts
    stack = Stack([m.parts.model for m in members])
    optimizer = stacked_optimizer(first.optimizer)
    data = GroupData(datasets, first.batch_size, first.shuffle is not None)
    per_sample = activation_numbers(stack.template, first.data.x[:1])
    passes = Passes(
        train=jobs_per_pass(3 * per_sample, first.batch_size, len(members)),
        evaluate=jobs_per_pass(per_sample, min(EVAL_CHUNK, len(first.data)), len(members)),
    )
    allow_open_files(8 * len(members) + 64)
    with one_sync():
        for member in members:
            member.open()
    display = make_group_display(title, len(members), first.epochs, first.steps_per_epoch)
    with StopRequest() as stop, display, ExitStack() as opened:
        for member in members:
            opened.enter_context(member.outputs)
        lrs = [current_lr(m.parts.optimizer) for m in members]
        rows = epoch_rows(members, range(len(members)), stack, datasets, 0, 0.0, lrs, passes)
        for member, row in zip(members, rows):
            if member.parts.early_stop is not None:
                member.parts.early_stop.check(row)  # a metric the job lacks: said as its single run says it
            member.rng.put()
            begin(row, member.progress, member.outputs, member.cfg.diverge_factor)
        display.epoch(0, rows, len(members))
        train_epochs(members, stack, optimizer, data, datasets, passes, Rounds(), stop, display)
        for member in members:
            member.progress.stopped_by = stop.name  # read here: a signal may land after the loop's last look
    with one_sync():  # every job's last files, then (in each job) its summary.json, after one sync
        return [member.finish() for member in members]


def train_epochs(
    members: Sequence[Member],
    stack: Stack,
    optimizer: Stacked,
    data: GroupData,
    datasets: Sequence[Dataset],
    passes: Passes,
    rounds: Rounds,
    stop: StopRequest,
    display: Any,
) -> None:
    """runner.epoch_loop for every job at once; each member's `status` says how it ended (None: completed)."""
    active = list(members)
    for epoch in range(1, members[0].parts.epochs + 1):
        for member in active:
            member.epoch_start = member.parts.shuffle.get_state() if member.parts.shuffle is not None else None
            member.lr = current_lr(member.parts.optimizer)
            member.first_step = member.progress.step + 1
            member.costs = []
        optimizer.set_groups([m.parts.optimizer.param_groups[0] for m in active])
        tick = time.perf_counter()
        active, orders = train_steps(active, epoch, stack, optimizer, data, passes, stop, display)
        seconds = time.perf_counter() - tick
        end_epoch(active, epoch, seconds, stack, optimizer, datasets, passes, stop, display)
        rounds.save([m for m in active if m.status is None])
        active, orders = keep([i for i, m in enumerate(active) if m.status is None], active, stack, optimizer, orders)
        if not active:
            return


def train_steps(
    active: List[Member],
    epoch: int,
    stack: Stack,
    optimizer: Stacked,
    data: GroupData,
    passes: Passes,
    stop: StopRequest,
    display: Any,
) -> Tuple[List[Member], Optional[Tensor]]:
    """One epoch's steps of every job (fewer when a stop comes); returns the jobs still in the stack, their orders."""
    parts = active[0].parts
    # On the CPU the costs cost nothing to read: a job that diverges stops at that very step; on a
    # GPU that would synchronise every step, so (as runner.epoch_loop) at the end of the epoch.
    on_cpu = parts.device.type == "cpu"
    traced = active[0].outputs.after_step is not None
    orders = data.orders(active)
    on_device: List[Tensor] = []
    for step in range(parts.steps_per_epoch):
        x, y, dim = data.batch(orders, step)
        costs, grads = stack.costs_and_grads(parts.loss_fn, x, y, dim, passes.train)
        if on_cpu and take_costs(active, costs.tolist(), epoch):
            # Who diverged ended before its update, as its single run; the others go on without it.
            rows = [i for i, member in enumerate(active) if member.status is None]
            active, orders = keep(rows, active, stack, optimizer, orders)
            grads = {name: g[rows] for name, g in grads.items()}
            if not active:
                return active, orders
        elif not on_cpu:
            on_device.append(costs)
        optimizer.step(stack.params, grads)
        if traced:
            for member, values in zip(active, stack.flat_rows()):
                member.outputs.trace_params(values)
        display.steps((epoch - 1) * parts.steps_per_epoch + step + 1)
        if stop.requested:
            break
    if on_device:  # one read from the device: each job's costs of the epoch
        for member, costs_of in zip(active, torch.stack(on_device, dim=1).tolist()):
            member.costs = costs_of
    return active, orders


def end_epoch(
    active: Sequence[Member],
    epoch: int,
    seconds: float,
    stack: Stack,
    optimizer: Stacked,
    datasets: Sequence[Dataset],
    passes: Passes,
    stop: StopRequest,
    display: Any,
) -> None:
    """Each job's steps into its files; for the jobs whose epoch is whole, its row, its schedule, its checkpoints."""
    with one_sync():  # a diverged job's files, best.pt copies: published together (rundir.files)
        for number, member in enumerate(active):
            refresh(member, stack, optimizer, number)
            member.rng.put()
            member.status = member.record_steps(epoch)
        rows = [i for i, member in enumerate(active) if member.status is None]
        if not rows:
            return
        whole = [active[i] for i in rows]
        table = epoch_rows(whole, rows, stack, datasets, epoch, seconds, [m.lr for m in whole], passes)
        answer = stop.requested  # one answer for the whole group, wherever a signal lands

        def stopping(answer: bool = answer) -> bool:
            return answer

        for member, metrics in zip(whole, table):
            member.rng.put()
            member.status = close_epoch(
                member.parts, member.progress, member.outputs, member.first_step, metrics, stopping
            )
        display.epoch(epoch, table, sum(m.status is None for m in whole))


def take_costs(active: Sequence[Member], costs: List[float], epoch: int) -> bool:
    """Each job's cost of this step; True when one diverged (its steps are then written and it ends `diverged`)."""
    diverged = False
    for member, cost in zip(active, costs):
        member.costs.append(cost)
        if not cost < member.progress.bound:  # NaN fails every comparison
            member.rng.put()
            member.status = member.record_steps(epoch)
            diverged = True
    return diverged


def keep(
    rows: List[int], active: List[Member], stack: Stack, optimizer: Stacked, orders: Optional[Tensor]
) -> Tuple[List[Member], Optional[Tensor]]:
    """Only the jobs in these rows go on: the stack, the update's state and the data orders lose the others."""
    if len(rows) == len(active):
        return active, orders
    stack.keep(rows)
    optimizer.keep(rows)
    if orders is not None:
        orders = orders[torch.tensor(rows, dtype=torch.long, device=orders.device)]
    return [active[i] for i in rows], orders


def refresh(member: Member, stack: Stack, optimizer: Stacked, row: int) -> None:
    """The job's module and torch optimizer as its row of the stack has them: what its outputs read."""
    with torch.no_grad():
        for name, param in member.parts.model.named_parameters():
            param.copy_(stack.params[name][row])
    optimizer.fill_state(row, member.parts.optimizer, stack.names)
    if not member.stepped and optimizer.steps and member.parts.scheduler is not None:
        # Its update ran in the stack: one call with no gradients (which changes nothing) tells the
        # torch optimizer so, and its scheduler then steps without warning that it came first.
        member.parts.optimizer.step()
        member.stepped = True


def epoch_rows(
    members: Sequence[Member],
    rows: Sequence[int],
    stack: Stack,
    datasets: Sequence[Dataset],
    epoch: int,
    seconds: float,
    lrs: Sequence[float],
    passes: Passes,
) -> List[Dict]:
    """runner.epoch_row of each member (in row `rows[i]` of the stack), all evaluated at once per distinct dataset."""
    first = members[0].parts
    found: Dict[int, Dict] = {}
    for number, dataset in enumerate(datasets):
        mine = [i for i, member in enumerate(members) if member.dataset == number]
        if not mine:
            continue
        device = next(iter(stack.params.values())).device
        index = (
            None
            if [rows[i] for i in mine] == list(range(len(stack)))
            else torch.tensor([rows[i] for i in mine], device=device)
        )
        train = stack.metrics(index, first.loss_fn, dataset, first.threshold, passes.evaluate)
        val: Sequence[Optional[Dict[str, Optional[float]]]] = [None] * len(mine)
        if dataset.val is not None:
            val = stack.metrics(index, first.loss_fn, dataset.val, first.threshold, passes.evaluate)
        for i, train_metrics, val_metrics in zip(mine, train, val):
            found[i] = make_row(epoch, train_metrics, val_metrics, lrs[i], seconds)
    return [found[i] for i in range(len(members))]


def allow_open_files(count: int) -> None:
    """Raise this process's limit on open files towards `count`: every job keeps its metric files open."""
    try:
        import resource
    except ImportError:  # not on this system (Windows): its limit is high
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= count:
        return
    wanted = count if hard == resource.RLIM_INFINITY else min(count, hard)
    if wanted > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
