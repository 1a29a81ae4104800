"""`gdrun-runs [DIR]`: the runs under DIR (default outputs), newest first, one line each.

    gdrun-runs                          every run and sweep job under ./outputs
    gdrun-runs outputs/multirun --status failed,diverged
    gdrun-runs --check                  every file of every run read, rows and checkpoints too
    gdrun-runs --all                    the refused too (failed before training: a bad value, no data), as
                                        --status failed lists them

Light (no torch): it reads each folder's summary.json, .hydra/ and gdrun.log through RunFolder,
the same reader the sweep summary uses, so both say the same status. A run whose files are
damaged is listed as `damaged`, with what is wrong after its overrides; the others as usual.
Without --check the tables' rows are not read (only their header lines): junk in the middle of
a table is found by --check, and by what reads the rows (gdrun-report, gdrun.load_run).
"""

import argparse
import sys
from datetime import datetime
from pathlib import Path
from typing import List, Optional, Sequence

from gdrun.rundir.layout import find_runs
from gdrun.rundir.reader import DAMAGED, RunFolder

COLUMNS = ("time", "status", "best", "folder", "overrides")
STATUSES = ("completed", "diverged", "pruned", "interrupted", "failed", DAMAGED)


def started(run: RunFolder) -> float:
    """When the run began: Hydra writes .hydra/config.yaml as a job starts; else its oldest file."""
    first = modified(run.paths.config)
    if first is not None:
        return first
    try:
        files = [path for path in run.path.iterdir() if path.is_file()]
    except OSError:  # a folder that cannot be listed
        files = []
    times = [time for time in map(modified, files) if time is not None]
    return min(times, default=modified(run.path) or 0.0)


def modified(path: Path) -> Optional[float]:
    """When a file was last changed; None when there is none (or it went away, or cannot be looked at)."""
    try:
        return path.stat().st_mtime
    except OSError:  # e.g. summary.json's temporary file, renamed away while we list
        return None


def best(run: RunFolder) -> str:
    """The headline metric's best value (val_accuracy, val_loss, or the training one without validation)."""
    entry = (run.summary or {}).get("best") or {}
    if entry.get("value") is None:
        return "-"
    return f"{entry.get('metric') or 'best'} {entry['value']:.4g}"


def refused(run: RunFolder) -> bool:
    """A run refused before it trained (a sweep's job with a bad value or missing data): failed, with no
    metric row and no checkpoint. Not a run of the user's: listed only with --all."""
    paths = run.paths
    trained = paths.iterations.exists() or paths.epochs.exists() or paths.checkpoints.exists()
    return run.status == "failed" and not trained


def rows(root: Path, statuses: Optional[Sequence[str]] = None, check: bool = False) -> List[dict]:
    """The table's rows, newest first, keeping only `statuses` when given; `check` reads every file.
    A row's `refused` says whether the run was refused before training (see `refused`)."""
    runs = [RunFolder(path) for path in find_runs(root)]
    found = sorted(((started(run), run) for run in runs), key=lambda pair: pair[0], reverse=True)
    table = []
    for time, run in found:
        problems = run.check() if check else run.damage
        status = DAMAGED if problems else run.status
        if statuses and status not in statuses:
            continue
        table.append(
            {
                "time": datetime.fromtimestamp(time).strftime("%Y-%m-%d %H:%M:%S"),
                "status": status,
                "best": best(run),
                "folder": str(run.path.relative_to(root)) if run.path != root else ".",
                # what is wrong after the overrides: the last column, left ragged, keeps one line per run
                "overrides": " — ".join(filter(None, [" ".join(run.overrides), "; ".join(problems)])),
                "refused": not problems and refused(run),
            }
        )
    return table


def format_table(table: List[dict]) -> str:
    """Aligned columns under a header; the last column (overrides) is left ragged."""
    lines = [dict(zip(COLUMNS, (c.upper() for c in COLUMNS)))] + table
    widths = {c: max(len(str(line[c])) for line in lines) for c in COLUMNS[:-1]}
    return "\n".join(
        "  ".join([*(str(line[c]).ljust(widths[c]) for c in COLUMNS[:-1]), line[COLUMNS[-1]]]).rstrip()
        for line in lines
    )


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog="gdrun-runs", description="List gdrun's runs under DIR, newest first.")
    parser.add_argument("dir", nargs="?", default="outputs", help="where to look (default: outputs)")
    parser.add_argument("--status", help=f"only these statuses, comma-separated: {', '.join(STATUSES)}")
    parser.add_argument(
        "--check", action="store_true", help="read every file of each run (slower): junk in the tables' rows too"
    )
    parser.add_argument(
        "--all", action="store_true", help="list the runs refused before training too (a bad value, missing data)"
    )
    args = parser.parse_args(argv)
    root = Path(args.dir)
    if not root.is_dir():
        parser.exit(2, f"gdrun-runs: error: no folder {root} (runs land in outputs/ of the folder gdrun ran in)\n")
    statuses = args.status.split(",") if args.status else None
    table = rows(root, statuses, args.check)
    everything = args.all or (statuses is not None and "failed" in statuses)  # asked for failures: all of them
    hidden = 0 if everything else sum(row["refused"] for row in table)
    table = table if everything else [row for row in table if not row["refused"]]
    said = f" ({hidden} refused before training, listed with --all)" if hidden else ""
    if not table:
        print(f"no runs under {root}" + (f" with status {args.status}" if statuses else "") + said, file=sys.stderr)
        return
    print(format_table(table))
    if said:
        print(said.strip(" ()"), file=sys.stderr)


if __name__ == "__main__":
    main()
