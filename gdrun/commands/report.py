"""The `gdrun-report` command: redraw the pictures of run and sweep folders from their files, without training.

  gdrun-report outputs/2026-01-01/12-00-00-000000          a run's plots/
  gdrun-report outputs/multirun/2026-01-01/12-00-00-000000 a sweep: summary.csv (groups.csv over seeds), its
                                                           pictures, each job's
  gdrun-report --compare RUN_A RUN_B --out bgd_vs_sgd       several runs overlaid (lab 004: BGD against SGD), and a
                                                           table of the config keys that differ between them

matplotlib and torch are imported only once there is something to draw: `--help` answers at once.
A folder that cannot be drawn, or has damaged files, gets one line saying why; the others are drawn
as usual, and the exit status is 1.
"""

import argparse
import functools
import logging
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence

from omegaconf import OmegaConf

from gdrun.errors import GdrunError
from gdrun.rundir.layout import is_run_folder as is_run
from gdrun.rundir.layout import sweep_jobs
from gdrun.rundir.reader import RunFolder, differing, first_line, flat

log = logging.getLogger("gdrun.report")
PLOTS_LOGGER = "gdrun.plots"  # the pictures' modules log under it (gdrun.plots.predictions, ...)


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="gdrun-report",
        description="Redraw the pictures of gdrun run folders and sweep folders from the files they hold "
        "(no training): a run's plots/, a sweep's summary.csv (and groups.csv over seeds) and pictures at its root.",
    )
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="run folders and/or sweep folders")
    parser.add_argument(
        "--compare",
        action="store_true",
        help="instead of redrawing each folder, print a table of the config keys that differ between the runs "
        "given (a sweep counts as its jobs) and overlay them in --out: learning curves, and paths on one loss surface",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("comparison"),
        help="where --compare writes its pictures (default: ./comparison)",
    )
    parser.add_argument(
        "--format",
        dest="formats",
        action="append",
        choices=("png", "svg", "pdf"),
        help="file format, repeatable (default: png)",
    )
    parser.add_argument(
        "--surface-range",
        type=float,
        nargs="+",
        metavar=("W", "B"),
        help="loss surface over w in +-W and b in +-B (default: the run's surface_range, else just around the path)",
    )
    parser.add_argument("--no-jobs", action="store_true", help="for a sweep, redraw only its root, not each job")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Console entry point; returns the exit status (0 all drawn, 1 some drawing failed, 2 bad paths)."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="gdrun-report: %(message)s")
    formats = tuple(args.formats or ("png",))
    unknown = [p for p in args.paths if not is_run(p) and not sweep_jobs(p)]
    if unknown:
        for path in unknown:
            print(
                f"gdrun-report: error: {path} is neither a run folder (with summary.json, iterations.csv "
                f"or epochs.csv) nor a sweep folder (with numbered job folders)",
                file=sys.stderr,
            )
        return 2

    from gdrun.plots import draw_comparison, draw_run
    from gdrun.sweeps import summarize

    if args.compare:
        runs = [folder for path in args.paths for folder in ([path] if is_run(path) else sweep_jobs(path))]
        print_differences(runs)
        return attempt(
            f"the comparison in {args.out}",
            lambda: draw_comparison(runs, args.out, formats, args.surface_range),
            lambda: damaged(runs, check=True),
        )
    failures = 0
    for path in args.paths:
        jobs = [] if is_run(path) else sweep_jobs(path)
        if jobs:
            failures += attempt(
                f"the sweep {path}",
                functools.partial(summarize, path, True, formats, args.surface_range),
                # each job's own line says what is wrong with it, unless the jobs are not drawn
                functools.partial(damaged, jobs if args.no_jobs else [], check=False),
            )
        for folder in [path] if is_run(path) else [] if args.no_jobs else jobs:
            failures += attempt(
                f"the run {folder}",
                functools.partial(draw_run, folder, formats, args.surface_range),
                functools.partial(damaged, [folder], check=True),
            )
    return 1 if failures else 0


def differences(runs: List[Path]) -> "tuple[List[str], List[Dict[str, Any]]]":
    """The config keys (and environment entries: environment.torch, ...) whose values differ between the runs,
    and each run's values of them."""
    settings = []
    for folder in runs:
        run = RunFolder(folder)
        try:
            config = flat(run.config)
        except GdrunError:  # a target gdrun does not run from a folder: the pictures' line says so
            config = {}
        record = (run.summary or {}).get("environment") or {}
        record = {k: v for k, v in record.items() if k != "command"}  # the overrides say it, shorter
        settings.append({**config, **{f"environment.{k}": v for k, v in flat(OmegaConf.create(record)).items()}})
    return differing(settings), settings


def print_differences(runs: List[Path]) -> None:
    """A table of what tells the compared runs apart: a row per run, a column per config key that differs."""
    from rich.console import Console
    from rich.table import Table

    keys, settings = differences(runs)
    console = Console()
    if not keys:
        console.print(f"the {len(runs)} runs' configs are the same", highlight=False)
        return
    # Each run by its path below the folder they share (a sweep's jobs: 0, 1, ...).
    common = Path(os.path.commonpath([Path(run).absolute() for run in runs]))
    common = common.parent if common in [Path(run).absolute() for run in runs] else common
    table = Table(title=f"config keys that differ (runs in {common})")
    table.add_column("run", no_wrap=True)
    for key in keys:
        table.add_column(key)
    for folder, values in zip(runs, settings):
        label = str(Path(folder).absolute().relative_to(common))
        table.add_row(label, *("" if values.get(k) is None else str(values.get(k)) for k in keys))
    console.print(table)


def attempt(what: str, draw: Callable[[], List[Path]], problems: Callable[[], List[str]]) -> int:
    """Draw one thing and list the files written; when it fails, leaves a picture out, or its files
    are damaged, say why in one line and go on with the rest (returns 1)."""
    try:
        with left_out() as missing:
            written = draw()
        wrong = problems() + missing
    except Exception as error:  # one bad folder must not stop the others
        why = str(error) if isinstance(error, GdrunError) else f"{type(error).__name__}: {first_line(error)}"
        log.error("could not draw %s: %s", what, why)
        log.debug("traceback", exc_info=True)
        return 1
    drawn = ", ".join(p.name for p in written) if written else "nothing"
    if wrong:
        log.error("%s: drew %s; pictures may be missing or incomplete: %s", what, drawn, "; ".join(wrong))
        return 1
    print(f"{what}: " + (drawn if written else "nothing to draw"))
    return 0


@contextmanager
def left_out() -> Iterator[List[str]]:
    """What the pictures' modules say (at INFO) while the block runs, a line each: a picture they had
    to leave out, and why (e.g. no confusion matrix: model.pt is not a torch file). Said here only."""
    handler = Lines()
    plots = logging.getLogger(PLOTS_LOGGER)
    kept = plots.level, plots.propagate
    plots.addHandler(handler)
    plots.setLevel(logging.INFO)
    plots.propagate = False
    try:
        yield handler.lines
    finally:
        plots.removeHandler(handler)
        plots.level, plots.propagate = kept


class Lines(logging.Handler):
    """Log records kept as the first line of their message (a torch error can run over many)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: List[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage().splitlines()[0].strip())


def damaged(folders: List[Path], check: bool) -> List[str]:
    """What is wrong with the runs' files: every file read (`check`), or only their record of themselves."""
    runs = [RunFolder(folder) for folder in folders]
    named = len(runs) > 1
    return [
        f"{run.path}: {problem}" if named else problem
        for run in runs
        for problem in (run.check() if check else run.damage)
    ]


if __name__ == "__main__":
    sys.exit(main())
