"""Tiny labs (20-60 samples, batch 1-5): time per iteration of a plain PyTorch loop vs gdrun, in-process.

Run: python bench/tiny.py [--repeats 5]   (bench/run.py calls it; the last line is RESULT {json})

With so few samples an iteration costs tens of microseconds, so what is measured is per-step
overhead: Python, autograd, the optimizer and whatever gdrun adds around them. Each case is run
once untimed (warm-up), then the variants alternate, repeats times.
"""

import argparse
import json
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch


@dataclass(frozen=True)
class Case:
    """One tiny lab: its gdrun preset name, data size, batch size, epochs, learning rate and loss."""

    lab: str
    samples: int
    batch_size: int
    epochs: int
    lr: float
    loss: str  # "mse" or "bce"
    features: int = 1

    @property
    def iterations(self):
        """Optimizer steps in the whole run: ceil(samples / batch) per epoch."""
        return self.epochs * -(-self.samples // self.batch_size)


# The labs of docs/course.md with the fewest samples and smallest batches.
CASES = [
    Case("linreg_sgd", samples=60, batch_size=1, epochs=10, lr=0.1, loss="mse"),
    Case("logistic_minibatch", samples=20, batch_size=5, epochs=500, lr=0.01, loss="bce"),
    Case("multilinear", samples=20, batch_size=2, epochs=100, lr=0.1, loss="mse", features=2),
]


def make_data(case):
    """Return the lab's (X, Y) as float tensors of shape samples×features and samples×1."""
    if case.lab == "linreg_sgd":
        torch.manual_seed(1)
        x = torch.arange(-3, 3, 0.1).view(-1, 1)
        return x, x - 1 + 0.1 * torch.randn(x.size())
    if case.lab == "logistic_minibatch":
        x = torch.arange(-1, 1, 0.1).view(-1, 1)
        return x, (x > 0.2).float()
    torch.manual_seed(1)
    x = torch.arange(-1, 1, 0.1).view(-1, 1).repeat(1, 2)
    return x, x.sum(dim=1, keepdim=True) + 1 + 0.1 * torch.randn(len(x), 1)


def make_model(case):
    """Linear(features, 1), followed by a sigmoid for the BCE lab."""
    linear = torch.nn.Linear(case.features, 1)
    if case.lab == "linreg_sgd":
        with torch.no_grad():  # the lab's starting point w = -15, b = -10
            linear.weight.fill_(-15.0)
            linear.bias.fill_(-10.0)
    return torch.nn.Sequential(linear, torch.nn.Sigmoid()) if case.loss == "bce" else linear


def hand_slices(case):
    """Seconds for the plain loop: slice batches in order, nn module, torch.optim.SGD, record each loss."""
    x, y = make_data(case)
    model = make_model(case)
    loss_fn = torch.nn.BCELoss() if case.loss == "bce" else torch.nn.MSELoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=case.lr)
    costs = []
    t0 = time.perf_counter()
    for _ in range(case.epochs):
        for start in range(0, case.samples, case.batch_size):
            loss = loss_fn(model(x[start : start + case.batch_size]), y[start : start + case.batch_size])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            costs.append(loss.item())  # the labs record the cost of every iteration
    return time.perf_counter() - t0


def hand_loader(case):
    """Seconds for the course notebooks' own style: the same loop fed by DataLoader(TensorDataset)."""
    x, y = make_data(case)
    model = make_model(case)
    loss_fn = torch.nn.BCELoss() if case.loss == "bce" else torch.nn.MSELoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=case.lr)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=case.batch_size)
    costs = []
    t0 = time.perf_counter()
    for _ in range(case.epochs):
        for xb, yb in loader:
            loss = loss_fn(model(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            costs.append(loss.item())
    return time.perf_counter() - t0


def _gdrun_timed(case):
    """(seconds of gdrun's epoch loop, seconds of its whole run) for the lab, in-process.

    The epoch loop (gdrun.training.runner.epoch_loop) is what the hand-written loops are timed on: training plus
    what gdrun does around every epoch (evaluating the whole set, writing every metric row,
    checkpoints). The whole run adds building data and model, the final files and table.
    Config composition stays outside both (start-up is bench/run.py's start-up section).
    """
    import contextlib
    import io

    from hydra import compose, initialize_config_module

    from gdrun.config import schema
    from gdrun.training import runner

    schema.register()
    with initialize_config_module(config_module="gdrun.conf", version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"lab={case.lab}", "plots=false"])
    loop_seconds = []
    fit = runner.epoch_loop

    def timed_fit(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fit(*args, **kwargs)
        finally:
            loop_seconds.append(time.perf_counter() - t0)

    runner.epoch_loop = timed_fit
    try:
        with tempfile.TemporaryDirectory() as folder, contextlib.redirect_stdout(io.StringIO()):
            t0 = time.perf_counter()
            summary = runner.train(cfg, Path(folder))
            whole = time.perf_counter() - t0
    finally:
        runner.epoch_loop = fit
    assert summary["steps"] == case.iterations, summary["steps"]
    return loop_seconds[0], whole


_last_whole = {}


def gdrun_loop(case):
    """Seconds of gdrun's epoch loop (see _gdrun_timed); also keeps the whole run's seconds."""
    loop, whole = _gdrun_timed(case)
    _last_whole[case.lab] = whole
    return loop


VARIANTS = {"hand": hand_slices, "hand_dataloader": hand_loader, "gdrun": gdrun_loop}


def main():
    """Time every case and variant, alternating, and print a RESULT line with the raw seconds."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch.set_num_threads for the whole process (default 1, as gdrun's tiny lab presets set)",
    )
    args = parser.parse_args()
    # The thread count is process-wide: a gdrun run that sets it would change it for the hand-written
    # runs after it too, so it is fixed once here for every variant.
    torch.set_num_threads(args.threads)

    results = []
    for case in CASES:
        seconds = {name: [] for name in VARIANTS}
        seconds["gdrun_whole_run"] = []  # the same gdrun runs, timed from build to final table
        errors = {}
        for rep in range(args.repeats + 1):  # rep 0 is the warm-up and is not kept
            names = list(VARIANTS)
            names = names[rep % len(names) :] + names[: rep % len(names)]  # rotate so no variant always goes first
            for name in names:
                s = None
                if name not in errors:  # a variant that failed once is not retried
                    try:
                        s = VARIANTS[name](case)
                    except Exception as exc:  # noqa: BLE001 - a failing gdrun is reported, not fatal
                        errors[name] = f"{type(exc).__name__}: {exc}"
                if rep > 0:
                    seconds[name].append(s)  # None marks a failed repeat, keeping repeats aligned
                    if name == "gdrun":
                        seconds["gdrun_whole_run"].append(_last_whole.pop(case.lab, None))
        results.append({**asdict(case), "iterations": case.iterations, "seconds": seconds, "errors": errors})
        for name, values in seconds.items():
            values = [v for v in values if v is not None]
            if values:
                us = statistics.median(values) / case.iterations * 1e6
                print(f"{case.lab:20s} {name:16s} {us:8.1f} µs/iteration (median of {len(values)})")
            else:
                print(f"{case.lab:20s} {name:16s} failed: {errors.get(name)}")
    print("RESULT " + json.dumps({"torch_threads": torch.get_num_threads(), "cases": results}))


if __name__ == "__main__":
    main()
