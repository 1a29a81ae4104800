"""A sweep's tables at its folder's root: `summary.csv`, one row per job, and `groups.csv`, one per setting.

summary.csv lists every job, whatever became of it: a job that raised has no summary.json and
appears as `failed` with the last error of its gdrun.log; one that diverged appears with its own
status; one whose files are damaged appears as `damaged`, with what is wrong in its error cell.
As each job ends, `update_summary` reads that job's folder alone and puts its row among the rows
summary.csv already holds, under a lock file at the sweep's root: jobs that end at once in a
parallel launcher's workers each add their own row, and no job re-reads the others' folders; jobs
that end together in one process (a group trained at once) put their rows in together.
`write_summary` builds the table from every job folder (gdrun-report, a stopped sweep).

A job with a test set adds test_<metric> columns: its best checkpoint's test metrics.

groups.csv is for a sweep that repeats settings over seeds or folds (REPEAT_KEYS): one row per setting of
the other swept keys, with the mean, sample standard deviation and 95 % t-interval of each
metric over the setting's completed jobs.

Light (no torch, no matplotlib): it runs between Hydra's jobs.
"""

import csv
import fcntl
import io
import math
import os
import statistics
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from gdrun.rundir.files import replace_atomically
from gdrun.rundir.layout import SWEEP_GROUPS, SWEEP_LOCK, SWEEP_SUMMARY, is_run_folder, sweep_jobs
from gdrun.rundir.reader import RunFolder, differing

METRICS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy")
# Swept keys whose values repeat one setting (another seed, another fold) rather than change it:
# groups.csv and the sweep's pictures average over them.
REPEAT_KEYS = ("seed", "data.fold")
# groups.csv's statistics, for `best_value` and every final metric present: <metric>_<stat>.
STATS = ("mean", "std", "ci95")
# t_{0.975, df} for df = 1..30 (scipy.special.stdtrit, rounded to 4 digits): the 95 % t-interval's
# factor when scipy cannot be imported. Beyond 30 degrees of freedom the normal 1.96 stands in, a
# little narrow (t_{0.975, 40} is 2.02).
T_975 = (
    12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.306, 2.2622, 2.2281,
    2.201, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.093, 2.086,
    2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423,
)  # fmt: skip


@dataclass
class Job:
    """One job of a sweep: its number (its folder's name), its folder, and its override values."""

    number: int
    run: RunFolder
    values: Dict[str, object]


# Overrides that are no setting of a job: which trial of which Optuna study it reports to (search.trial, ...,
# set by gdrun's Optuna sweeper when it prunes; job N is trial N). Never a swept key.
NOT_SETTINGS = ("search.storage", "search.study", "search.trial")


def parse_value(text: str):
    """An override's value as a number when it is one (`0.1`, `5`), else the text (`full`, `adam`)."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def override_values(overrides: Sequence[str]) -> Dict[str, object]:
    """`["optim.lr=0.1", "+x=full"]` as `{"optim.lr": 0.1, "x": "full"}` (not a search's bookkeeping: NOT_SETTINGS)."""
    pairs = (o.lstrip("+~").split("=", 1) for o in overrides if "=" in o)
    return {key: parse_value(value) for key, value in pairs if not key.startswith(NOT_SETTINGS)}


def split_overrides(text: str) -> List[str]:
    """summary.csv's overrides cell back into overrides: a piece without `=` belongs to the one before it
    (`model.hidden=[64, 32]` was one override with a space in its value)."""
    overrides: List[str] = []
    for piece in text.split(" "):
        if "=" in piece or not overrides:
            overrides.append(piece)
        else:
            overrides[-1] += " " + piece
    return [o for o in overrides if o]


def read_job(folder: Path) -> Job:
    run = RunFolder(folder)
    return Job(int(folder.name), run, override_values(run.overrides))


def read_jobs(sweep_dir: Path) -> List[Job]:
    """The jobs under a sweep folder (its numbered sub-folders), in job order."""
    return [read_job(folder) for folder in sweep_jobs(sweep_dir)]


def swept_keys(jobs: List[Job]) -> List[str]:
    """The override keys whose values differ between jobs: what the sweep varied."""
    return differing([job.values for job in jobs])


def setting_keys(keys: Sequence[str]) -> List[str]:
    """The swept keys that change a setting: all but the repetitions (seed, data.fold)."""
    return [key for key in keys if key not in REPEAT_KEYS]


# ---------------------------------------------------------------- summary.csv
def job_row(job: Job) -> Dict:
    """A job's own cells: overrides, status, final and best metrics, wall time, error (not the swept values,
    which depend on the other jobs: see `with_swept`). A new column is a new entry here."""
    run, summary = job.run, job.run.summary or {}  # a damaged summary.json reads as None
    best, final = summary.get("best") or {}, summary.get("final") or {}
    return {
        "job": job.number,
        "overrides": " ".join(run.overrides),
        "status": run.status,
        "epochs": summary.get("epochs"),
        "steps": summary.get("steps"),
        **{f"final_{m}": final.get(m) for m in METRICS},
        "best_metric": best.get("metric"),
        "best_value": best.get("value"),
        "best_epoch": best.get("epoch"),
        **test_cells(summary),
        "wall_seconds": summary.get("wall_seconds"),
        "error": run.error,
        "folder": run.path.name,
    }


def test_cells(summary: Dict) -> Dict:
    """test_<metric> of the job's best checkpoint (the model validation chose) on the test set, when it has one."""
    best = (summary.get("test") or {}).get("best") or {}
    return {f"test_{name}": value for name, value in best.items() if name != "epoch"}


def with_swept(row: Dict, values: Dict[str, object], keys: Sequence[str]) -> Dict:
    """A job's row with its swept values as columns, after its overrides."""
    head = {"job": row["job"], "overrides": row["overrides"]}
    return {**head, **{key: values.get(key) for key in keys}, **{k: v for k, v in row.items() if k not in head}}


# summary.csv's columns that hold text, whatever it looks like (folder "3" is a name).
TEXT = ("overrides", "status", "best_metric", "error", "folder")


@dataclass
class Row:
    """A job's row in the making: its own cells (numbers, or text read back from summary.csv) and overrides."""

    number: int
    cells: Dict
    values: Dict[str, object]


def row_of(job: Job) -> Row:
    return Row(job.number, job_row(job), job.values)


@contextmanager
def sweep_lock(sweep_dir: Path) -> Iterator[None]:
    """Hold the sweep's summary lock (flock on SWEEP_LOCK at its root): one writer of its tables at a time.

    Not the sweep folder itself: the command holds that one (rundir.lock) while its workers write.
    On a file system without locks the writers go on unlocked, as they would have before; a folder
    that is not there has nothing to write.
    """
    if not Path(sweep_dir).is_dir():
        yield
        return
    fd = os.open(Path(sweep_dir) / SWEEP_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:  # ENOLCK: some network file systems
            pass
        yield
    finally:
        os.close(fd)  # drops the lock


def write_summary(sweep_dir: Path, jobs: Optional[List[Job]] = None) -> List[Dict]:
    """summary.csv at the sweep's root from every job folder present (`jobs`, when they are read already);
    returns the rows."""
    with sweep_lock(sweep_dir):
        return write_rows(sweep_dir, [row_of(job) for job in (read_jobs(sweep_dir) if jobs is None else jobs)])


def update_summary(sweep_dir: Path, folder: Path) -> List[Dict]:
    """Put one job's row into summary.csv, reading only its folder and summary.csv; returns the rows.

    A sweep without summary.csv yet (its first job, or a sweep continued from an older gdrun) is
    read from its job folders once. A folder that holds no run (a job that never started) takes
    its row out. Inside `together`, the row waits for the block's end (and nothing is returned).
    """
    waiting = _together.get(os.path.abspath(sweep_dir))
    if waiting is not None:
        waiting.append(Path(folder))
        return []
    return put_rows(sweep_dir, [Path(folder)])


# Sweep folder (absolute): the job folders whose rows wait for their `together` block to end.
_together: Dict[str, List[Path]] = {}


@contextmanager
def together(sweep_dir: Path) -> Iterator[None]:
    """The rows update_summary is given inside the block go into summary.csv at its end, in one read and one
    write, however the block ends: the jobs the vectorised engine trained together end together, and 256
    of them would otherwise read and write the growing table 256 times. A process killed inside the block
    leaves their rows out; the job folders are complete, and the sweep continued (or gdrun-report) puts
    them in."""
    key = os.path.abspath(sweep_dir)
    _together[key] = []
    try:
        yield
    finally:
        folders = _together.pop(key)
        if folders:
            put_rows(sweep_dir, folders)


def put_rows(sweep_dir: Path, folders: Sequence[Path]) -> List[Dict]:
    """The rows of these job folders into summary.csv, under its lock; returns the rows."""
    sweep_dir = Path(sweep_dir)
    with sweep_lock(sweep_dir):
        numbers = {int(folder.name) for folder in folders}
        rows = read_rows(sweep_dir)
        if rows is None:
            rows = [row_of(read_job(other)) for other in sweep_jobs(sweep_dir) if int(other.name) not in numbers]
        rows = [row for row in rows if row.number not in numbers]
        rows += [row_of(read_job(folder)) for folder in folders if is_run_folder(folder)]
        return write_rows(sweep_dir, rows)


def complete_summary(sweep_dir: Path) -> List[Dict]:
    """summary.csv with a row for every job folder, at a sweep's end: the rows there are kept; jobs
    without one (never ended through the callback) or still `running` there are read from their folders."""
    sweep_dir = Path(sweep_dir)
    with sweep_lock(sweep_dir):
        rows = read_rows(sweep_dir)
        if rows is None:
            return write_rows(sweep_dir, [row_of(job) for job in read_jobs(sweep_dir)])
        kept = {row.number: row for row in rows if row.cells.get("status") not in ("running", None)}
        folders = sweep_jobs(sweep_dir)
        numbers = {int(folder.name) for folder in folders}
        fresh = [row_of(read_job(folder)) for folder in folders if int(folder.name) not in kept]
        return write_rows(sweep_dir, [row for number, row in kept.items() if number in numbers] + fresh)


def read_rows(sweep_dir: Path) -> Optional[List[Row]]:
    """summary.csv's rows as Rows (cells as job_row makes them; the swept-value columns left out: write_rows
    makes them again from the overrides); None when there is none, or it cannot be read as gdrun writes it."""
    path = Path(sweep_dir) / SWEEP_SUMMARY
    try:
        with open(path, newline="") as f:
            table = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    if table and not {"job", "overrides", "status"} <= set(table[0]):
        return None
    rows = []
    for cells in table:
        try:
            number = int(cells["job"])
        except (TypeError, ValueError):
            return None
        rows.append(Row(number, cells, override_values(split_overrides(cells.get("overrides") or ""))))
    swept = {key for row in rows for key in row.values}
    for row in rows:
        row.cells = {k: cell(k, v) for k, v in row.cells.items() if k not in swept and k is not None}
        row.cells["job"] = row.number
    return rows


def write_rows(sweep_dir: Path, rows: List[Row]) -> List[Dict]:
    """summary.csv, atomically, from the jobs' rows in job order, with the values the jobs differ in as columns."""
    rows = sorted(rows, key=lambda row: row.number)
    keys = differing([row.values for row in rows])
    table = [with_swept(row.cells, row.values, keys) for row in rows]
    if table:
        columns: List[str] = []
        for line in table:  # a row read back from an older summary.csv may lack a newer column
            columns += [k for k in line if k not in columns]
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows({k: "" if v is None else v for k, v in line.items()} for line in table)
        data = text.getvalue().encode()
        replace_atomically(Path(sweep_dir) / SWEEP_SUMMARY, lambda f: f.write(data))
    return table


def read_summary(sweep_dir: Path) -> List[Dict]:
    """summary.csv's rows as write_summary returns them (numbers as numbers, empty cells as None); [] without one."""
    rows = sorted(read_rows(sweep_dir) or [], key=lambda row: row.number)
    keys = differing([row.values for row in rows])
    return [with_swept(row.cells, row.values, keys) for row in rows]


def summary_keys(rows: Sequence[Dict]) -> List[str]:
    """The keys a sweep varied, from its summary rows' overrides."""
    return differing([override_values(split_overrides(str(row.get("overrides") or ""))) for row in rows])


def cell(column: str, text: Optional[str]):
    """A cell read back from summary.csv as job_row made it: None (empty, or missing), a number, or text."""
    return None if text is None or text == "" else text if column in TEXT else parse_value(text)


# ---------------------------------------------------------------- groups.csv
def number(value) -> Optional[float]:
    """A cell as a finite float, else None (empty, text, nan, inf)."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def t_975(df: int) -> float:
    """The 0.975 quantile of Student's t with `df` degrees of freedom: scipy's when it can be imported, else
    T_975 (df up to 30) and 1.96 beyond."""
    try:
        return _scipy_t_975(df)
    except ImportError:
        return T_975[df - 1] if df <= len(T_975) else 1.96


@lru_cache(maxsize=None)
def _scipy_t_975(df: int) -> float:
    # scipy.special's inverse t distribution, which scipy.stats.t.ppf calls: ~0.3 s to import, not ~1.3 s.
    from scipy.special import stdtrit

    return float(stdtrit(df, 0.975))


def describe(values: Sequence[float]) -> Tuple[Optional[float], Optional[float], Optional[float]]:
    """(mean, sample standard deviation (ddof=1), half-width of the 95 % t-interval t_{0.975, n-1} * std / sqrt(n));
    None for what `values` are too few for."""
    n = len(values)
    if n == 0:
        return None, None, None
    mean = statistics.fmean(values)
    if n == 1:
        return mean, None, None
    std = statistics.stdev(values)
    return mean, std, t_975(n - 1) * std / math.sqrt(n)


def repeated_metrics(rows: Sequence[Dict]) -> List[str]:
    """best_value and the final metrics that some completed job has a value for, in summary.csv's order."""
    completed = [row for row in rows if row.get("status") == "completed"]
    columns: List[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    wanted = ["best_value"] + [c for c in columns if c.startswith(("final_", "test_"))]
    return [m for m in wanted if any(number(row.get(m)) is not None for row in completed)]


def group_rows(rows: Sequence[Dict], keys: Sequence[str]) -> List[Dict]:
    """groups.csv's rows from summary.csv's: one per setting of the swept keys but REPEAT_KEYS, in the order
    first met; `n` completed of `jobs`, and <metric>_mean, _std, _ci95 over the completed ones."""
    settings = setting_keys(keys)
    groups: Dict[Tuple, List[Dict]] = {}
    for row in rows:
        groups.setdefault(tuple(repr(row.get(key)) for key in settings), []).append(row)
    metrics = repeated_metrics(rows)
    out = []
    for members in groups.values():
        completed = [row for row in members if row.get("status") == "completed"]
        line: Dict = {key: members[0].get(key) for key in settings}
        line.update(n=len(completed), jobs=len(members))
        for metric in metrics:
            values = [x for x in (number(row.get(metric)) for row in completed) if x is not None]
            line.update(zip((f"{metric}_{stat}" for stat in STATS), describe(values)))
        out.append(line)
    return out


def write_groups(sweep_dir: Path, rows: Sequence[Dict]) -> Optional[List[Dict]]:
    """groups.csv when the sweep varied a repeat key (seed, data.fold); returns its rows, None without one."""
    keys = summary_keys(rows)
    if not any(key in REPEAT_KEYS for key in keys):
        return None
    groups = group_rows(rows, keys)
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=list(groups[0]), restval="")
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in line.items()} for line in groups)
    data = text.getvalue().encode()
    with sweep_lock(sweep_dir):
        replace_atomically(Path(sweep_dir) / SWEEP_GROUPS, lambda f: f.write(data))
    return groups
