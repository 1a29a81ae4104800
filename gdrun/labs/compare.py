"""The course labs beside their notebooks: run a lab's preset, compute the notebook's numbers, compare.

For a synthetic lab the reference is computed live, by gdrun.labs.notebooks (a plain transcription
of the notebook's cells), and the comparison covers every recorded cost, iteration and epoch,
the final parameters and the accuracy, with torch.testing.assert_close's float32 tolerances.
For MNIST the reference is the accuracy the notebook reports. The command is gdrun-labs
(gdrun.commands.labs).
"""

import csv
import functools
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from gdrun.config import schema
from gdrun.errors import GdrunError
from gdrun.jobs import run_job
from gdrun.labs import notebooks
from gdrun.rundir.files import read_csv, replace_atomically
from gdrun.rundir.layout import LAB_MARK, RunPaths

DEFAULT_OUT = Path("outputs") / "labs"

# gdrun's parameter names -> the notebooks' (the transcriptions return the notebooks' own names).
WB = {"weight": "w", "bias": "b"}
MODULE = {"weight": "linear.weight", "bias": "linear.bias"}
NET = {
    "hidden1.weight": "linear1.weight",
    "hidden1.bias": "linear1.bias",
    "out.weight": "linear2.weight",
    "out.bias": "linear2.bias",
}

# The cost list each notebook plots, and how it is read from a run folder:
#   iterations    its batch's cost at every iteration, before the update (iterations.csv);
#   epoch_starts  the whole-set cost at the start of every epoch (epochs.csv without its last row);
#   epoch_sums    the sum of the epoch's batch costs (iterations.csv, summed per epoch).
NOTEBOOK_COSTS = ("iterations", "epoch_starts", "epoch_sums")

# MNIST: the test accuracy of the notebook's three runs (002); their order is unseeded, so
# gdrun agrees when it lands within a point of them.
MNIST_RUNS = (0.8249, 0.8274, 0.8294)
MNIST_MARGIN = 0.01
MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

# torch.testing.assert_close's float32 defaults. Every number compared is born float32; the
# per-epoch sums are float64 sums of float32 costs, so they are held to float32's tolerance too.
TOLERANCE = {"rtol": 1.3e-6, "atol": 1e-5}


@dataclass(frozen=True)
class Lab:
    name: str
    source: str
    # gdrun state_dict name -> the transcription's name for the same parameter
    params: Dict[str, str] = field(default_factory=dict)
    # The transcription's keyword for the run's length ("iterations" for the batch-GD labs).
    length: str = "epochs"
    notebook_costs: str = "iterations"
    synthetic: bool = True

    @property
    def command(self) -> str:
        return f"gdrun lab={self.name}"


LABS: Dict[str, Lab] = {
    lab.name: lab
    for lab in (
        Lab("slope", '001 "PyTorch Slope"', {"weight": "w"}, length="iterations"),
        Lab("linreg_bgd", "003 batch gradient descent", WB, length="iterations"),
        Lab("linreg_sgd", "004 stochastic gradient descent", WB, notebook_costs="epoch_starts"),
        Lab("multilinear", '001 "Multiple Linear Regression Training"', MODULE),
        Lab("multioutput", '001 "Multiple Output Linear Regression"', MODULE),
        Lab("logistic_minibatch", "000 mini-batch gradient descent", WB),
        Lab("logistic_sgd", "000 stochastic gradient descent", WB),
        Lab("logistic_high_lr", "000 high learning rate", WB),
        Lab("softmax_1d", '001 "Softmax in PyTorch"', {"weight": "0.weight", "bias": "0.bias"}),
        Lab("shallow_net", '001 "Shallow neural network"', NET, notebook_costs="epoch_sums"),
        Lab("deep_bumps", '001 "Deep neural networks"', NET, notebook_costs="epoch_sums"),
        Lab("mnist_logistic", "002 logistic regression on MNIST", synthetic=False),
    )
}
SYNTHETIC = tuple(name for name, lab in LABS.items() if lab.synthetic)
NOTEBOOK_000 = tuple(name for name, *_ in notebooks.NOTEBOOK_000_LABS)


# ---------------------------------------------------------------- the two sides
def run_lab(name: str, folder: Path, overrides: Sequence[str] = ()) -> Dict:
    """`gdrun lab=NAME OVERRIDES` into a fresh `folder`, in this process and quietly; its summary.

    The folder is marked as gdrun-labs's own (LAB_MARK) before anything else is written to it,
    so that the next gdrun-labs replaces it, even after a failed run, and nothing else.
    """
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    schema.register()
    overrides = [f"lab={name}", *overrides]
    with initialize_config_module(config_module="gdrun.conf", version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    clear_run_folder(folder)
    folder.mkdir(parents=True)
    (folder / LAB_MARK).write_text(
        f"Made by gdrun-labs (lab {name}): gdrun-labs replaces this folder when it runs the lab again.\n"
    )
    # What `gdrun` itself keeps of a job, so gdrun-report and the plots read this folder alike.
    paths = RunPaths(folder)
    paths.hydra.mkdir()
    OmegaConf.save(cfg, paths.config)
    OmegaConf.save(OmegaConf.create(overrides), paths.overrides)
    return run_job(cfg, folder, quiet=True)  # quiet: the run's own progress lines and table


def foreign_folder(folder: Path) -> Optional[str]:
    """Why gdrun-labs may not replace what is at `folder` (None when nothing is there, or a lab
    folder it made itself: a real folder holding its LAB_MARK)."""
    if not folder.exists() and not folder.is_symlink():
        return None
    if folder.is_dir() and not folder.is_symlink() and (folder / LAB_MARK).is_file():
        return None
    what = f"a folder gdrun-labs did not make (it holds no {LAB_MARK})" if folder.is_dir() else "not a folder"
    return f"{folder} is {what}, and gdrun-labs replaces only its own lab folders: choose another --out."


def clear_run_folder(folder: Path) -> None:
    """Remove an earlier run of a lab made by gdrun-labs (its metric files would be appended to);
    GdrunError for anything else there, which is never touched."""
    why = foreign_folder(folder)
    if why:
        raise GdrunError(why)
    if folder.exists():
        shutil.rmtree(folder)


@functools.lru_cache(maxsize=1)
def _notebook_000() -> Dict[str, Dict]:
    """Notebook 000 run once top to bottom: the three logistic labs at their full length."""
    return notebooks.notebook_000(lab=None)


def reference(name: str, epochs: Optional[int] = None) -> Dict:
    """The notebook's own numbers for lab `name`, computed now by its transcription (optionally shortened)."""
    lab = LABS[name]
    if epochs is None and name in NOTEBOOK_000:
        return _notebook_000()[name]
    kwargs = {} if epochs is None else {lab.length: epochs}
    return getattr(notebooks, name)(**kwargs)


def measure(folder: Path) -> Dict:
    """A lab run's numbers, read back from its files: costs as recorded, final parameters, accuracy."""
    paths = RunPaths(folder)
    iterations = read_csv(paths.iterations)
    epochs = read_csv(paths.epochs)
    sums: Dict[int, float] = {}
    for row in iterations:  # in order, as the notebooks' `total += loss.item()`
        sums[int(row["epoch"])] = sums.get(int(row["epoch"]), 0.0) + row["loss"]
    return {
        "iteration_costs": torch.tensor([r["loss"] for r in iterations], dtype=torch.float32),
        "epoch_costs": torch.tensor([r["train_loss"] for r in epochs], dtype=torch.float32),
        "epoch_sums": torch.tensor(list(sums.values()), dtype=torch.float64),
        "params": torch.load(paths.model, weights_only=True),
        "accuracy": epochs[-1]["train_accuracy"],
        "val_accuracy": epochs[-1]["val_accuracy"],
    }


# ---------------------------------------------------------------- comparison
def expected_epoch_costs(ref: Dict) -> torch.Tensor:
    """The reference's whole-set cost before training and after every epoch (epochs.csv's rows)."""
    if ref["epoch_costs_kind"] == "start+final":
        return ref["epoch_costs"]
    return torch.cat([ref["epoch_costs"], ref["final_cost"].reshape(1)])


def notebook_list(lab: Lab, numbers: Dict, is_reference: bool) -> torch.Tensor:
    """The cost list the notebook itself plots, from the reference or from a run's numbers."""
    if lab.notebook_costs == "iterations":
        return numbers["iteration_costs"]
    if lab.notebook_costs == "epoch_starts":
        return numbers["epoch_costs"] if is_reference else numbers["epoch_costs"][:-1]
    return numbers["notebook_costs"] if is_reference else numbers["epoch_sums"]


def pairs(lab: Lab, measured: Dict, ref: Dict) -> List[Tuple[str, torch.Tensor, torch.Tensor]]:
    """(what, gdrun's, the notebook's) for every number a lab is judged on."""
    result = [
        ("iteration costs", measured["iteration_costs"], ref["iteration_costs"]),
        ("epoch costs", measured["epoch_costs"], expected_epoch_costs(ref)),
    ]
    if lab.notebook_costs == "epoch_sums":
        result.append(("cost sums per epoch", measured["epoch_sums"], ref["notebook_costs"]))
    for ours, theirs in lab.params.items():
        expected = ref["params"][theirs]
        result.append((theirs, measured["params"][ours].reshape(expected.shape), expected))
    if "accuracy" in ref:
        result.append(
            (
                "accuracy",
                torch.tensor(measured["accuracy"], dtype=torch.float64),
                torch.tensor(ref["accuracy"], dtype=torch.float64),
            )
        )
    return result


@dataclass
class Check:
    what: str
    count: int
    bit_exact: bool
    close: bool
    max_abs: float
    max_rel: float
    # The largest |difference| / (atol + rtol·|notebook's|): at most 1 is within assert_close.
    tolerance_used: float


def check(what: str, actual: torch.Tensor, expected: torch.Tensor) -> Check:
    """Equal to the bit, or within assert_close's float32 tolerances, or neither."""
    if actual.shape != expected.shape:
        return Check(
            f"{what} (shape {list(actual.shape)}, notebook {list(expected.shape)})",
            expected.numel(),
            False,
            False,
            math.inf,
            math.inf,
            math.inf,
        )
    try:
        torch.testing.assert_close(actual, expected, rtol=TOLERANCE["rtol"], atol=TOLERANCE["atol"])
        close = True
    except AssertionError:
        close = False
    if expected.numel() == 0:
        return Check(what, 0, True, True, 0.0, 0.0, 0.0)
    diff = (actual.double() - expected.double()).abs()
    scale = expected.double().abs()
    return Check(
        what,
        expected.numel(),
        torch.equal(actual, expected),
        close,
        float(diff.max()),
        float((diff / scale.clamp_min(torch.finfo(expected.dtype).tiny)).max()),
        float((diff / (TOLERANCE["atol"] + TOLERANCE["rtol"] * scale)).max()),
    )


@dataclass
class Row:
    """One line of the table."""

    lab: str
    source: str
    notebook: str
    gdrun: str
    agreement: str
    status: str  # match, differs, skipped
    bit_exact: bool = False
    max_abs_diff: Optional[float] = None
    max_rel_diff: Optional[float] = None
    gdrun_seconds: Optional[float] = None
    notebook_seconds: Optional[float] = None
    folder: str = ""


def headline_numbers(lab: Lab, numbers: Dict, is_reference: bool) -> str:
    """`cost 1.02 → 0.319 (2000 iterations); w 2.45, b -0.688; accuracy 100%`: the headline numbers."""
    costs = notebook_list(lab, numbers, is_reference)
    unit = {"iterations": "iterations", "epoch_starts": "epoch starts", "epoch_sums": "epoch sums"}
    parts = [f"cost {float(costs[0]):.6g} → {float(costs[-1]):.6g} ({len(costs)} {unit[lab.notebook_costs]})"]
    params = numbers["params"]
    names = list(lab.params.values()) if is_reference else list(lab.params)
    if sum(params[n].numel() for n in names) <= 2:
        parts.append(", ".join(f"{theirs} {float(params[n]):.6g}" for n, theirs in zip(names, lab.params.values())))
    else:
        parts.append(f"{sum(params[n].numel() for n in names)} parameters")
    if numbers.get("accuracy") is not None:
        parts.append(f"accuracy {100 * numbers['accuracy']:.4g}%")
    return "; ".join(parts)


def agreement(checks: List[Check]) -> Tuple[str, str]:
    """(the agreement in words, match/differs)."""
    costs = sum(c.count for c in checks if "cost" in c.what)
    others = sum(c.count for c in checks if "cost" not in c.what and c.what != "accuracy")
    counted = f"{costs} costs, {others} parameter{'s' if others != 1 else ''}" + (
        ", accuracy" if any(c.what == "accuracy" for c in checks) else ""
    )
    if all(c.bit_exact for c in checks):
        return f"to the bit ({counted})", "match"
    if all(c.close for c in checks):
        worst = max(checks, key=lambda c: c.tolerance_used)
        return (
            f"float precision: {worst.what} at most {worst.max_abs:.1g} apart, "
            f"{100 * worst.tolerance_used:.0f}% of assert_close's tolerance ({counted})"
        ), "match"
    bad = [c for c in checks if not c.close]
    return "DIFFERS: " + "; ".join(f"{c.what} max abs diff {c.max_abs:.3g}" for c in bad), "differs"


def compare_synthetic(lab: Lab, folder: Path, ref: Dict, gdrun_seconds: float, ref_seconds: float) -> Row:
    measured = measure(folder)
    checks = [check(*pair) for pair in pairs(lab, measured, ref)]
    words, status = agreement(checks)
    return Row(
        lab.name,
        lab.source,
        headline_numbers(lab, ref, True),
        headline_numbers(lab, measured, False),
        words,
        status,
        bit_exact=all(c.bit_exact for c in checks),
        max_abs_diff=max(c.max_abs for c in checks),
        max_rel_diff=max(c.max_rel for c in checks),
        gdrun_seconds=gdrun_seconds,
        notebook_seconds=ref_seconds,
        folder=str(folder),
    )


# ---------------------------------------------------------------- MNIST
def mnist_missing(data_root: Path) -> Optional[str]:
    """Why MNIST cannot be read offline from `data_root` (None when its four IDX files are there)."""
    raw = data_root / "MNIST" / "raw"
    missing = [name for name in MNIST_FILES if not (raw / name).is_file()]
    if not missing:
        return None
    return f"skipped: MNIST not found under data.root ({raw} lacks {len(missing)} of its 4 IDX files)"


# The official MNIST: training and test images.
MNIST_SIZES = (60_000, 10_000)


def mnist_sizes(data_root: Path) -> Tuple[int, int]:
    """How many images the training and test IDX files under data_root hold (their headers' counts)."""
    raw = data_root / "MNIST" / "raw"
    counts = []
    for name in (MNIST_FILES[0], MNIST_FILES[2]):
        with open(raw / name, "rb") as f:
            header = f.read(8)
        counts.append(int.from_bytes(header[4:8], "big") if len(header) == 8 else 0)
    return counts[0], counts[1]


def run_mnist(lab: Lab, out: Path, data_root: Path, plots: bool) -> Row:
    notebook = "test accuracy ≈ 82.5% (its runs: " + ", ".join(f"{100 * a:.2f}%" for a in MNIST_RUNS) + ")"
    why = mnist_missing(data_root)
    if why is not None:
        return Row(lab.name, lab.source, notebook, "", why, "skipped")
    sizes = mnist_sizes(data_root)
    if sizes != MNIST_SIZES:  # another MNIST-shaped set (a sample, a test's): its accuracy is not comparable
        said = f"{sizes[0]:,} training and {sizes[1]:,} test images"
        why = (
            f"not compared: the MNIST under data.root has {said}, not the official "
            f"{MNIST_SIZES[0]:,} and {MNIST_SIZES[1]:,}; the notebook's accuracy is for the official set"
        )
        return Row(lab.name, lab.source, notebook, "", why, "skipped")
    folder = out / lab.name
    tick = time.perf_counter()
    summary = run_lab(lab.name, folder, [f"data.root={data_root}", "data.download=false", f"plots={plots}"])
    seconds = time.perf_counter() - tick
    accuracy = summary["final"]["val_accuracy"]
    lo, hi = min(MNIST_RUNS) - MNIST_MARGIN, max(MNIST_RUNS) + MNIST_MARGIN
    ok = lo <= accuracy <= hi
    words = (
        f"{'within' if ok else 'OUTSIDE'} {100 * lo:.2f}-{100 * hi:.2f}% "
        f"(a point around the notebook's runs; the shuffled order differs)"
    )
    cost = summary["final"]["train_loss"]
    gdrun = f"test accuracy {100 * accuracy:.2f}%; cost {cost:.4g} ({summary['steps']} iterations)"
    return Row(
        lab.name,
        lab.source,
        notebook,
        gdrun,
        words,
        "match" if ok else "differs",
        gdrun_seconds=seconds,
        folder=str(folder),
    )


# ---------------------------------------------------------------- references beside the runs
def _timed_reference(name: str) -> Tuple[Dict, float]:
    """In a worker: the lab's reference (only what the comparison reads) and how long it took."""
    torch.set_num_threads(1)
    tick = time.perf_counter()
    ref = reference(name)
    keep = ("iteration_costs", "epoch_costs", "epoch_costs_kind", "final_cost", "notebook_costs", "params", "accuracy")
    return {k: v for k, v in ref.items() if k in keep}, time.perf_counter() - tick


class References:
    """The notebooks' numbers, computed in a second process while gdrun runs (or here, when asked)."""

    def __init__(self, names: Sequence[str], parallel: bool):
        self.pool, self.futures = None, {}
        if parallel and names:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            # spawn, not fork: a forked torch (OpenMP) can hang in the child
            self.pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
            self.futures = {name: self.pool.submit(_timed_reference, name) for name in names}

    def ready(self, name: str) -> bool:
        return name not in self.futures or self.futures[name].done()

    def get(self, name: str) -> Tuple[Dict, float]:
        if name in self.futures:
            return self.futures[name].result()
        return _timed_reference(name)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)


# ---------------------------------------------------------------- the table
COLUMNS = ("lab", "notebook", "gdrun", "agreement")
CSV_COLUMNS = (
    "lab",
    "source",
    "command",
    "status",
    "notebook",
    "gdrun",
    "agreement",
    "bit_exact",
    "max_abs_diff",
    "max_rel_diff",
    "gdrun_seconds",
    "notebook_seconds",
    "folder",
)


def summary_line(rows: List[Row], seconds: float) -> str:
    compared = [r for r in rows if r.status != "skipped"]
    matching = [r for r in compared if r.status == "match"]
    exact = [r for r in matching if r.bit_exact]
    line = f"{len(matching)} of {len(compared)} labs match the notebooks ({len(exact)} to the bit)"
    skipped = [r.lab for r in rows if r.status == "skipped"]
    if skipped:
        line += f"; skipped: {', '.join(skipped)}"
    return line + f"; {seconds:.1f} s in all."


def write_markdown(path: Path, rows: List[Row], line: str) -> None:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = [
        "# gdrun-labs: the course labs beside their notebooks",
        "",
        "Each synthetic lab's reference is its notebook's own code, run now (gdrun.notebooks); "
        "every iteration cost, epoch cost and final parameter is compared with "
        "torch.testing.assert_close's float32 tolerances. MNIST is compared with the accuracy "
        "the notebook reports.",
        "",
        "| lab | command | notebook | gdrun | agreement |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r.lab} | `{LABS[r.lab].command}` | {cell(r.notebook)} | {cell(r.gdrun)} | {cell(r.agreement)} |"
        )
    lines += ["", line, ""]
    path.write_text("\n".join(lines))


def write_csv(path: Path, rows: List[Row]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        for r in rows:
            values = {**vars(r), "command": LABS[r.lab].command}
            writer.writerow(["" if values[c] is None else values[c] for c in CSV_COLUMNS])


def earlier_rows(path: Path) -> List[Row]:
    """The rows of an earlier labs.csv (write_csv's); [] when there is none or it cannot be read."""
    numbers = ("max_abs_diff", "max_rel_diff", "gdrun_seconds", "notebook_seconds")
    try:
        with open(path, newline="") as f:
            found = list(csv.DictReader(f))
        rows = []
        for values in found:
            fields = {c: values[c] for c in CSV_COLUMNS if c != "command"}
            fields["bit_exact"] = fields["bit_exact"] == "True"
            for name in numbers:
                fields[name] = float(fields[name]) if fields[name] else None
            rows.append(Row(**fields))  # type: ignore[arg-type]
        return [row for row in rows if row.lab in LABS]
    except (OSError, KeyError, ValueError, TypeError):  # missing, cut, or another tool's file: not kept
        return []


# Between these lines of docs/labs.md, `gdrun-labs --docs docs/labs.md` writes its table.
DOCS_BEGIN = "<!-- gdrun-labs --docs: the table below is written by the command; edit around it -->"
DOCS_END = "<!-- gdrun-labs --docs: end of the table -->"
# What in the table may differ on another machine, said under it.
MAY_VARY = (
    'Which numbers may vary by machine: the seconds; for the labs at "float precision", how far apart the '
    "costs are and what share of the tolerance that is (a matrix product sums in the order the CPU's BLAS "
    "library chooses); and MNIST's accuracy (its order is shuffled, its files downloaded). The notebook's "
    'numbers, "the same" and "to the bit" do not vary: they are float32 arithmetic done in the same order.'
)


def docs_table(rows: List[Row], line: str) -> str:
    """The labs' table as docs/labs.md shows it: each lab linked to its section, "the same" where gdrun's
    headline numbers print as the notebook's."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["| lab | notebook | gdrun | agreement |", "| --- | --- | --- | --- |"]
    for r in rows:
        gdrun, agreement = ("the same" if r.gdrun == r.notebook else r.gdrun), r.agreement
        if r.status == "skipped":  # the reason without this machine's paths
            gdrun, agreement = "skipped here", agreement.removeprefix("skipped: ").split(" (")[0]
        lines.append(f"| [{r.lab}](#{r.lab}) | {cell(r.notebook)} | {cell(gdrun)} | {cell(agreement)} |")
    return "\n".join([*lines, "", f"`gdrun-labs` said: {line}", "", MAY_VARY])


def write_docs(path: Path, rows: List[Row], line: str) -> None:
    """Put the table into the docs page `path`, between its DOCS_BEGIN and DOCS_END lines (GdrunError without)."""
    text = path.read_text()
    if DOCS_BEGIN not in text or DOCS_END not in text:
        raise GdrunError(f"{path} has no lines {DOCS_BEGIN!r} and {DOCS_END!r} to write the table between.")
    head, _, rest = text.partition(DOCS_BEGIN)
    _, _, tail = rest.partition(DOCS_END)
    page = f"{head}{DOCS_BEGIN}\n{docs_table(rows, line)}\n{DOCS_END}{tail}"
    replace_atomically(path, lambda f: f.write(page.encode()))


def print_table(rows: List[Row], line: str) -> None:
    from rich.console import Console
    from rich.table import Table

    colour = {"match": "green", "differs": "red", "skipped": "yellow"}
    table = Table(title="gdrun-labs: the course labs beside their notebooks")
    for name in COLUMNS:
        table.add_column(name, overflow="fold")
    for r in rows:
        table.add_row(r.lab, r.notebook, r.gdrun, f"[{colour[r.status]}]{r.agreement}[/]")
    console = Console()
    console.print(table)
    console.print(line, highlight=False)
