"""What a person sees while a run goes: a live rich display on a terminal, plain lines elsewhere.

On a terminal: a progress bar over all iterations with the epoch, the current cost, the last
validation accuracy, elapsed and remaining time. Not on a terminal (CI, a file, a batch
scheduler): one line per epoch, thinned to about one every few seconds. Either way the run
ends with a table of final and best metrics and the run folder's path. Jobs trained together
(training.vectorised) show one display for the group: its steps, how many jobs go on, the best
of their metrics.
"""

import time
from pathlib import Path
from typing import Dict, Optional, Sequence

from rich.console import Console
from rich.table import Table

# Plain mode prints an epoch line at most this often (seconds), plus the first and the last.
PLAIN_INTERVAL = 2.0


def make_display(title: str, total_epochs: int, steps_per_epoch: int, live: Optional[bool] = None):
    """A live display when stdout is a terminal, plain lines otherwise."""
    console = Console()
    live = console.is_terminal if live is None else live
    cls = LiveDisplay if live else PlainDisplay
    return cls(console, title, total_epochs, steps_per_epoch)


def metrics_line(metrics: Dict) -> str:
    """`train loss 0.1234  train acc 90.0%  val loss 0.2345  val acc 82.5%` from an epoch row."""
    parts = [f"train loss {metrics['train_loss']:.4g}"]
    if metrics.get("train_accuracy") is not None:
        parts.append(f"train acc {100 * metrics['train_accuracy']:.1f}%")
    if metrics.get("val_loss") is not None:
        parts.append(f"val loss {metrics['val_loss']:.4g}")
    if metrics.get("val_accuracy") is not None:
        parts.append(f"val acc {100 * metrics['val_accuracy']:.1f}%")
    return "  ".join(parts)


class PlainDisplay:
    def __init__(self, console: Console, title: str, total_epochs: int, steps_per_epoch: int):
        self.console, self.total = console, total_epochs
        self.start = time.perf_counter()
        self.last_line = float("-inf")
        console.print(
            f"gdrun: {title}: {total_epochs} epochs x {steps_per_epoch} iterations", highlight=False, soft_wrap=True
        )

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
            elapsed = now - self.start
            self.console.print(
                f"epoch {epoch:>{len(str(self.total))}}/{self.total}  {metrics_line(metrics)}  [{elapsed:.1f}s]",
                highlight=False,
                soft_wrap=True,
            )


class LiveDisplay(PlainDisplay):
    def __init__(self, console: Console, title: str, total_epochs: int, steps_per_epoch: int):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.console, self.total = console, total_epochs
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"),
            TextColumn("cost {task.fields[cost]}"),
            TextColumn("{task.fields[val]}"),
            TimeElapsedColumn(),
            TextColumn("<"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self.task = self.progress.add_task(
            title, total=total_epochs * steps_per_epoch, epoch=0, epochs=total_epochs, cost="-", val=""
        )

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc):
        self.progress.stop()
        return False

    def steps(self, step: int, cost: Optional[float]) -> None:
        self.progress.update(self.task, completed=step, cost=f"{cost:.4g}" if cost is not None else "-")

    def epoch(self, epoch: int, metrics: Dict) -> None:
        val = metrics.get("val_accuracy")
        if val is None:
            val = metrics.get("train_accuracy")
            label = "train acc"
        else:
            label = "val acc"
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
    def __init__(self, console: Console, title: str, jobs: int, total_epochs: int, steps_per_epoch: int):
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
    def __init__(self, console: Console, title: str, jobs: int, total_epochs: int, steps_per_epoch: int):
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


def final_table(summary: Dict, folder: Path, console: Optional[Console] = None) -> None:
    """The final and best metrics of a run, and where its files are."""
    console = console or Console()
    if summary.get("kind") == "lr_find":
        from gdrun.training.lr_find import print_found

        print_found(summary, folder, console)
        return
    console.print(
        f"gdrun: {summary['status']} after {summary['epochs']} epochs, {summary['steps']} iterations, "
        f"{summary['wall_seconds']:.1f}s",
        highlight=False,
    )
    if summary.get("early_stop"):
        total = summary.get("run", {}).get("epochs")
        console.print(
            f"gdrun: stopped early at epoch {summary['stopped_early_at']}"
            f"{f' of {total}' if total else ''}: {summary['early_stop']['reason']}",
            highlight=False,
        )
    table = Table()
    table.add_column("metric")
    table.add_column("final", justify="right")
    table.add_column("best", justify="right")
    table.add_column("best epoch", justify="right")
    for name, value in summary["final"].items():
        if value is None or name == "lr":
            continue
        best = summary["best_by_metric"].get(name)
        table.add_row(
            name, _fmt(name, value), _fmt(name, best["value"]) if best else "", str(best["epoch"]) if best else ""
        )
    add_test_rows(table, summary.get("test"))
    console.print(table)
    console.print(f"run folder: {folder}", highlight=False, soft_wrap=True)


def add_test_rows(table: Table, test: Optional[Dict]) -> None:
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
