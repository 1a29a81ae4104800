"""`gdrun-labs`: run the course labs' presets and compare each with its notebook's own code.

  gdrun-labs                         every lab
  gdrun-labs slope shallow_net       the ones named
  gdrun-labs --data-root ~/data      MNIST from ~/data/MNIST/raw/ (skipped when not found)

  gdrun-labs --docs docs/labs.md     and the table into that page (between its gdrun-labs lines)

The table is printed and written to OUT/labs.md and OUT/labs.csv; labs named on the command line
replace their own rows of an earlier table there, the others' rows are kept. Lab NAME's run folder
is OUT/NAME/, which a later gdrun-labs replaces. It replaces only folders it made itself (they hold
its mark, layout.LAB_MARK): anything else at OUT/NAME is left alone and the command stops first.
How each lab is judged: gdrun.labs.compare.
"""

import argparse
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import torch

from gdrun.errors import EXIT_BAD_INPUT
from gdrun.labs.compare import (
    DEFAULT_OUT,
    LABS,
    References,
    Row,
    compare_synthetic,
    earlier_rows,
    foreign_folder,
    mnist_missing,
    print_table,
    run_lab,
    run_mnist,
    summary_line,
    write_csv,
    write_docs,
    write_markdown,
)

TABLES = ("labs.md", "labs.csv")  # under --out, beside the labs' run folders


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="gdrun-labs", description="Run the course labs and compare each with its notebook's own code."
    )
    parser.add_argument("labs", nargs="*", metavar="LAB", help=f"labs to run (default: all): {', '.join(LABS)}")
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="folder for labs.md, labs.csv and one run folder per lab (default: outputs/labs)",
    )
    parser.add_argument(
        "--data-root",
        type=Path,
        default=Path("data"),
        help="where MNIST/raw/ is looked for (default: ./data); MNIST is skipped when absent",
    )
    parser.add_argument("--plots", action="store_true", help="draw each run's pictures into its plots/ folder")
    parser.add_argument(
        "--docs",
        type=Path,
        help="also write the table into this page (docs/labs.md), between its gdrun-labs lines",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        choices=(1, 2),
        default=2,
        help="2 (default): compute the notebooks' numbers in a second process while gdrun runs; 1: one process",
    )
    args = parser.parse_args(argv)
    unknown = [name for name in args.labs if name not in LABS]
    if unknown:
        parser.error(f"unknown lab {', '.join(unknown)}; the labs are {', '.join(LABS)}")
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Console entry point: run the labs, compare, print and write the table; 1 when one differs."""
    args = parse_args(argv)
    started = time.perf_counter()
    torch.set_num_threads(1)  # the labs' tensors are tiny: one thread is fastest (the presets say so too)
    names = args.labs or list(LABS)
    out = args.out
    data_root = args.data_root.expanduser().resolve()
    refusals = refuse(out, [n for n in names if LABS[n].synthetic or mnist_missing(data_root) is None])
    if refusals:
        for sentence in refusals:
            print(f"gdrun-labs: error: {sentence}", file=sys.stderr)
        return EXIT_BAD_INPUT
    synthetic = [n for n in names if LABS[n].synthetic]
    references = References(synthetic, parallel=args.jobs > 1 and len(synthetic) > 1)
    rows: Dict[str, Row] = {}
    waiting: Dict[str, float] = {}  # labs gdrun has run, in order, awaiting their reference: gdrun's seconds

    def compare_waiting(block: bool) -> None:
        """Compare the runs whose reference is ready (all of them when `block`), in order."""
        for name in list(waiting):
            if not block and not references.ready(name):
                return
            ref, ref_seconds = references.get(name)
            rows[name] = compare_synthetic(LABS[name], out / name, ref, waiting.pop(name), ref_seconds)
            report(rows[name])

    try:
        for name in names:
            lab = LABS[name]
            try:
                if lab.synthetic:
                    tick = time.perf_counter()
                    run_lab(name, out / name, [f"plots={args.plots}"])
                    waiting[name] = time.perf_counter() - tick
                else:
                    rows[name] = run_mnist(lab, out, data_root, args.plots)
                    report(rows[name])
            except Exception as error:  # noqa: BLE001 - one broken lab must not hide the others' results
                rows[name] = Row(
                    name,
                    lab.source,
                    "",
                    "",
                    f"FAILED: {type(error).__name__}: {error}",
                    "differs",
                    folder=str(out / name),
                )
                report(rows[name])
            compare_waiting(block=False)
        compare_waiting(block=True)
    finally:
        references.close()
    table = with_earlier(out, [rows[name] for name in names])
    line = summary_line(table, time.perf_counter() - started)
    if args.docs is not None:
        write_docs(args.docs, table, line)
    write_markdown(out / TABLES[0], table, line)
    write_csv(out / TABLES[1], table)
    print_table(table, line)
    print(f"table: {out / TABLES[0]}, {out / TABLES[1]}")
    return 0 if all(r.status != "differs" for r in table) else 1


def with_earlier(out: Path, rows: List[Row]) -> List[Row]:
    """This command's rows, with those of the labs it did not run kept from OUT's earlier table, in LABS' order:
    `gdrun-labs slope` after a full run updates slope's row and keeps the rest."""
    ran = {row.lab for row in rows}
    kept = [row for row in earlier_rows(out / TABLES[1]) if row.lab not in ran]
    order = list(LABS)
    return sorted([*rows, *kept], key=lambda row: order.index(row.lab))


def refuse(out: Path, names: Sequence[str]) -> List[str]:
    """Why the labs `names` cannot be written under `out` (creating it), a sentence each; [] when they can.

    Checked before any lab runs: an --out that is a file, or a folder at OUT/NAME that gdrun-labs
    did not make, stops the command with nothing touched.
    """
    if out.exists() and not out.is_dir():
        return [f"--out {out} is a file, not a folder; choose a folder for the labs' table and run folders."]
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        return [f"cannot make the --out folder {out} ({error.strerror or error}); choose another --out."]
    refusals = [why for why in (foreign_folder(out / name) for name in names) if why]
    refusals += [
        f"{out / name} is not a file gdrun-labs can write its table to; choose another --out."
        for name in TABLES
        if (out / name).exists() and not (out / name).is_file()
    ]
    return refusals


def report(row: Row) -> None:
    """One line per lab as it is judged."""
    timing = (
        ""
        if row.gdrun_seconds is None
        else f"  [gdrun {row.gdrun_seconds:.1f} s, notebook {row.notebook_seconds or 0:.1f} s]"
    )
    print(f"{row.lab:<20} {row.agreement}{timing}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
