"""What a person sees while a run goes: a live rich display on a terminal, plain lines elsewhere.

On a terminal: a progress bar over all iterations with the epoch, the current cost, the last
validation accuracy, elapsed and remaining time. Not on a terminal (CI, a file, a batch
scheduler): one line per epoch, thinned to about one every few seconds. Either way the run
ends with a table of final and best metrics and the run folder's path.
"""

import time
from pathlib import Path
from typing import Dict, Optional

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


def final_table(summary: Dict, folder: Path, console: Optional[Console] = None) -> None:
    """The final and best metrics of a run, and where its files are."""
    console = console or Console()
    console.print(
        f"gdrun: {summary['status']} after {summary['epochs']} epochs, {summary['steps']} iterations, "
        f"{summary['wall_seconds']:.1f}s",
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
    console.print(table)
    console.print(f"run folder: {folder}", highlight=False, soft_wrap=True)


def _fmt(name: str, value: float) -> str:
    return f"{100 * value:.2f}%" if "accuracy" in name else f"{value:.6g}"
