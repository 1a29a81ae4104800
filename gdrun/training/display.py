"""What a person sees while a run goes: a live rich display on a terminal, plain lines elsewhere.

On a terminal: a progress bar over all iterations with the epoch, the current cost, the last
validation accuracy, elapsed and remaining time. Not on a terminal (CI, a file, a batch
scheduler): one line per epoch, thinned to about one every few seconds. Either way the run
ends with a table of final and best metrics and the run folder's path. Jobs trained together
(training.vectorised) show one display for the group: its steps, how many jobs go on, the best
of their metrics.
"""

import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Optional, Sequence

if TYPE_CHECKING:  # rich is imported when a display is made: the first line comes before it
    from rich.console import Console
    from rich.table import Table

# Plain mode prints an epoch line at most this often (seconds), plus the first and the last.
PLAIN_INTERVAL = 2.0


# ---------------------------------------------------------------- before training: the first line, a status
def run_title(cfg: Any) -> str:
    """The run in one line: data, model, optimizer, learning rate, batch size (from the config alone: no torch)."""
    data, model, optim, lr, batch = (
        setting(cfg, *key) for key in (("data", "name"), ("model", "name"), ("optim", "name"), ("optim", "lr"),
                                       ("optim", "batch_size"))
    )  # fmt: skip
    lr = f"{lr:g}" if isinstance(lr, (int, float)) and not isinstance(lr, bool) else lr
    return f"{data} / {model} / {optim} lr={lr} batch={batch}"


def setting(cfg: Any, *keys: str) -> Any:
    """cfg.KEY1.KEY2, or "?" when it has no value yet (a ??? or an interpolation the checks refuse after this)."""
    try:
        for key in keys:
            cfg = getattr(cfg, key)
        return cfg
    except Exception:  # noqa: BLE001 - omegaconf's errors for ??? and bad interpolations: the checks say them
        return "?"


def first_line(cfg: Any, folder: Path) -> None:
    """What will run and where, said before torch is imported (the half second after Enter)."""
    clear_status()
    print(f"gdrun: {run_title(cfg)} -> {folder}", flush=True)


_status_shown = False


def status(text: str) -> None:
    """A short status on the terminal while nothing else moves (starting PyTorch, reading data, drawing),
    replaced by what comes next; nothing when stdout is not a terminal."""
    global _status_shown
    if not sys.stdout.isatty():
        return
    sys.stdout.write(f"\r\x1b[2K\x1b[2m  {text}\x1b[0m")
    sys.stdout.flush()
    _status_shown = True


def clear_status() -> None:
    """Remove the status line, before anything else is printed."""
    global _status_shown
    if _status_shown:
        sys.stdout.write("\r\x1b[2K")
        sys.stdout.flush()
        _status_shown = False


def process_started() -> float:
    """When this process started, on time.time()'s clock: the moment the user pressed Enter."""
    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rpartition(")")[2].split()
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return time.time() - uptime + int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: start, in ticks
    except (OSError, ValueError, IndexError, AttributeError):  # not Linux: when gdrun was first imported
        return _IMPORTED


_IMPORTED = time.time()


def make_display(
    title: str, total_epochs: int, steps_per_epoch: int, live: Optional[bool] = None, held_out: str = "validation"
):
    """A live display when stdout is a terminal, plain lines otherwise. `held_out`: what the held-out set
    is called ("test" for MNIST's official test split)."""
    from rich.console import Console

    clear_status()
    console = Console()
    live = console.is_terminal if live is None else live
    cls = LiveDisplay if live else PlainDisplay
    return cls(console, title, total_epochs, steps_per_epoch, SHORT[held_out])


# How the console names the held-out set (see gdrun.config.splits).
SHORT = {"validation": "val", "test": "test"}


def metrics_line(metrics: Dict, val: str = "val") -> str:
    """`train loss 0.1234  train acc 90.0%  val loss 0.2345  val acc 82.5%` from an epoch row (`val`: the
    held-out set's short name)."""
    parts = [f"train loss {metrics['train_loss']:.4g}"]
    if metrics.get("train_accuracy") is not None:
        parts.append(f"train acc {100 * metrics['train_accuracy']:.1f}%")
    if metrics.get("val_loss") is not None:
        parts.append(f"{val} loss {metrics['val_loss']:.4g}")
    if metrics.get("val_accuracy") is not None:
        parts.append(f"{val} acc {100 * metrics['val_accuracy']:.1f}%")
    return "  ".join(parts)


class PlainDisplay:
    def __init__(self, console: "Console", title: str, total_epochs: int, steps_per_epoch: int, val: str = "val"):
        self.console, self.total, self.val = console, total_epochs, val
        self.start = time.perf_counter()
        self.last_line = float("-inf")
        # The run's title was the first line (display.first_line): say only how long it is.
        console.print(f"{total_epochs} epochs x {steps_per_epoch} iterations", highlight=False, soft_wrap=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def steps(self, step: int, cost: Optional[float]) -> None:
        """Iteration progress: plain mode reports epochs only."""

    def epoch(self, epoch: int, metrics: Dict) -> None:
        now = time.perf_counter()
        if epoch in (0, self.total) or now - self.last_line >= PLAIN_INTERVAL:
            self.last_line = now
            elapsed, line = now - self.start, metrics_line(metrics, self.val)
            self.console.print(
                f"epoch {epoch:>{len(str(self.total))}}/{self.total}  {line}  [{elapsed:.1f}s]",
                highlight=False,
                soft_wrap=True,
            )


class LiveDisplay(PlainDisplay):
    """A bar over all iterations, shown once training starts (not before: the data may still be loading)
    and removed when the run ends or stops (the final table and the stop message say the rest)."""

    def __init__(self, console: "Console", title: str, total_epochs: int, steps_per_epoch: int, val: str = "val"):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.console, self.total, self.val = console, total_epochs, val
        self.started = False
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"),
            # the cost of the last batch, before its update: not the table's whole-training-set cost
            TextColumn("last batch cost {task.fields[cost]}"),
            TextColumn("{task.fields[val]}"),
            TimeElapsedColumn(),
            TextColumn("<"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self.task = self.progress.add_task(
            "training", total=total_epochs * steps_per_epoch, epoch=0, epochs=total_epochs, cost="-", val=""
        )

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.started:
            self.progress.stop()
        return False

    def begin(self) -> None:
        """Show the bar: training starts (epoch 0 is measured, or a resumed run's first steps are done)."""
        if not self.started:
            self.started = True
            self.progress.start()

    def steps(self, step: int, cost: Optional[float]) -> None:
        self.progress.update(self.task, completed=step, cost=f"{cost:.4g}" if cost is not None else "-")
        self.begin()

    def epoch(self, epoch: int, metrics: Dict) -> None:
        self.begin()
        val = metrics.get("val_accuracy")
        if val is None:
            val = metrics.get("train_accuracy")
            label = "train acc"
        else:
            label = f"{self.val} acc"
        self.progress.update(self.task, epoch=epoch, val=f"{label} {100 * val:.1f}%" if val is not None else "")


class NoDisplay:
    """Nothing shown: a job trained in a group, whose group shows one display for all its jobs."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def steps(self, step: int, cost: Optional[float]) -> None:
        pass

    def epoch(self, epoch: int, metrics: Dict) -> None:
        pass


# ---------------------------------------------------------------- jobs trained together
def make_group_display(title: str, jobs: int, total_epochs: int, steps_per_epoch: int, live: Optional[bool] = None):
    """One display for a group of jobs trained together: a live bar on a terminal, plain lines otherwise."""
    from rich.console import Console

    clear_status()
    console = Console()
    live = console.is_terminal if live is None else live
    cls = LiveGroupDisplay if live else PlainGroupDisplay
    return cls(console, title, jobs, total_epochs, steps_per_epoch)


def group_line(rows: Sequence[Dict], running: int, jobs: int) -> str:
    """`16 of 16 running  best train loss 0.01234  best val acc 90.0%` from the jobs' epoch rows."""
    parts = [f"{running} of {jobs} running"]
    losses = [r["train_loss"] for r in rows if r.get("train_loss") is not None]
    if losses:
        parts.append(f"best train loss {min(losses):.4g}")
    for split in ("val", "train"):
        accuracies = [r[f"{split}_accuracy"] for r in rows if r.get(f"{split}_accuracy") is not None]
        if accuracies:
            parts.append(f"best {split} acc {100 * max(accuracies):.1f}%")
            break
    return "  ".join(parts)


class PlainGroupDisplay:
    def __init__(self, console: "Console", title: str, jobs: int, total_epochs: int, steps_per_epoch: int):
        self.console, self.jobs, self.total = console, jobs, total_epochs
        self.start = time.perf_counter()
        self.last_line = float("-inf")
        console.print(
            f"gdrun: {title}: {jobs} jobs trained together, {total_epochs} epochs x {steps_per_epoch} iterations",
            highlight=False,
            soft_wrap=True,
        )

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def steps(self, step: int) -> None:
        """Iteration progress (the group's steps): plain mode reports epochs only."""

    def epoch(self, epoch: int, rows: Sequence[Dict], running: int) -> None:
        """The jobs' rows of an epoch; `running`: how many jobs go on."""
        now = time.perf_counter()
        if epoch in (0, self.total) or not running or now - self.last_line >= PLAIN_INTERVAL:
            self.last_line = now
            self.console.print(
                f"epoch {epoch:>{len(str(self.total))}}/{self.total}  {group_line(rows, running, self.jobs)}  "
                f"[{now - self.start:.1f}s]",
                highlight=False,
                soft_wrap=True,
            )


class LiveGroupDisplay(PlainGroupDisplay):
    def __init__(self, console: "Console", title: str, jobs: int, total_epochs: int, steps_per_epoch: int):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console, self.jobs, self.total = console, jobs, total_epochs
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"),
            TextColumn("{task.fields[line]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self.task = self.progress.add_task(
            f"{title} ({jobs} jobs)",
            total=total_epochs * steps_per_epoch,
            epoch=0,
            epochs=total_epochs,
            line=f"{jobs} of {jobs} running",
        )

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc):
        self.progress.stop()
        return False

    def steps(self, step: int) -> None:
        self.progress.update(self.task, completed=step)

    def epoch(self, epoch: int, rows: Sequence[Dict], running: int) -> None:
        self.progress.update(self.task, epoch=epoch, line=group_line(rows, running, self.jobs))


def final_table(
    summary: Dict, folder: Path, console: Optional["Console"] = None, waited: Optional[float] = None
) -> None:
    """The final and best metrics of a run, and where its files are. `waited`: the seconds the user
    waited for it (from Enter, pictures included), said beside the training's own time."""
    from rich.console import Console
    from rich.table import Table

    clear_status()
    console = console or Console()
    if summary.get("kind") == "lr_find":
        from gdrun.training.lr_find import print_found

        print_found(summary, folder, console)
        return
    took = f"training {summary['wall_seconds']:.1f}s"
    took = f"{waited:.1f}s ({took})" if waited is not None else took
    console.print(
        f"gdrun: {summary['status']} after {summary['epochs']} epochs, {summary['steps']} iterations in {took}",
        highlight=False,
    )
    if summary.get("early_stop"):
        total = summary.get("run", {}).get("epochs")
        console.print(
            f"gdrun: stopped early at epoch {summary['stopped_early_at']}"
            f"{f' of {total}' if total else ''}: {summary['early_stop']['reason']}",
            highlight=False,
        )
    test = summary.get("val_set") == "test"  # MNIST's held-out set is its official test split
    table = Table()
    table.add_column("metric")
    table.add_column("final", justify="right")
    table.add_column("best", justify="right")
    table.add_column("best epoch", justify="right")
    for name, value in summary["final"].items():
        if value is None or name == "lr":
            continue
        best = summary["best_by_metric"].get(name)
        shown = f"{name} (test set)" if test and name.startswith("val_") else name
        table.add_row(
            shown, _fmt(name, value), _fmt(name, best["value"]) if best else "", str(best["epoch"]) if best else ""
        )
    add_test_rows(table, summary.get("test"))
    console.print(table)
    console.print(f"run folder: {folder}", highlight=False, soft_wrap=True)


def add_test_rows(table: "Table", test: Optional[Dict]) -> None:
    """The test set's rows (evaluated once, after training): the final model's under final, the best
    checkpoint's under best, with the checkpoint's epoch."""
    if not test:
        return
    final, best = test.get("final") or {}, test.get("best") or {}
    for name, value in final.items():
        if value is None:
            continue
        chosen = best.get(name)
        epoch = "" if chosen is None else str(best.get("epoch"))
        table.add_row(f"test_{name}", _fmt(name, value), "" if chosen is None else _fmt(name, chosen), epoch)


def _fmt(name: str, value: float) -> str:
    return f"{100 * value:.2f}%" if "accuracy" in name else f"{value:.6g}"
