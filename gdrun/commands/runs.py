"""`gdrun-runs [DIR]`: the runs under DIR (default outputs), newest first, one line each.

    gdrun-runs                          every run and sweep job under ./outputs
    gdrun-runs outputs/multirun --status failed,diverged

Light (no torch): it reads each folder's summary.json, .hydra/ and gdrun.log through RunFolder,
the same reader the sweep summary uses, so both say the same status.
"""

import argparse
import sys
from datetime import datetime
from pathlib import Path
from typing import List, Optional, Sequence

from gdrun.rundir.layout import find_runs
from gdrun.rundir.reader import RunFolder

COLUMNS = ("time", "status", "best", "folder", "overrides")


def started(run: RunFolder) -> float:
    """When the run began: Hydra writes .hydra/config.yaml as a job starts; else its oldest file."""
    first = run.paths.config
    if first.is_file():
        return first.stat().st_mtime
    return min((p.stat().st_mtime for p in run.path.iterdir() if p.is_file()), default=run.path.stat().st_mtime)


def best(run: RunFolder) -> str:
    """The headline metric's best value (val_accuracy, val_loss, or the training one without validation)."""
    entry = (run.summary or {}).get("best") or {}
    if entry.get("value") is None:
        return "-"
    return f"{entry['metric']} {entry['value']:.4g}"


def rows(root: Path, statuses: Optional[Sequence[str]] = None) -> List[dict]:
    """The table's rows, newest first, keeping only `statuses` when given."""
    runs = [RunFolder(path) for path in find_runs(root)]
    found = sorted(((started(run), run) for run in runs), key=lambda pair: pair[0], reverse=True)
    return [
        {
            "time": datetime.fromtimestamp(time).strftime("%Y-%m-%d %H:%M:%S"),
            "status": run.status,
            "best": best(run),
            "folder": str(run.path.relative_to(root)) if run.path != root else ".",
            "overrides": " ".join(run.overrides),
        }
        for time, run in found
        if not statuses or run.status in statuses
    ]


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
    parser.add_argument(
        "--status", help="only these statuses, comma-separated: completed, diverged, interrupted, failed"
    )
    args = parser.parse_args(argv)
    root = Path(args.dir)
    if not root.is_dir():
        parser.exit(2, f"gdrun-runs: error: no folder {root} (runs land in outputs/ of the folder gdrun ran in)\n")
    statuses = args.status.split(",") if args.status else None
    table = rows(root, statuses)
    if not table:
        print(f"no runs under {root}" + (f" with status {args.status}" if statuses else ""), file=sys.stderr)
        return
    print(format_table(table))


if __name__ == "__main__":
    main()
