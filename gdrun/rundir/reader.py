"""A run folder read back: its metric files, config, status and error, for pictures and sweep tables.

Light on purpose (no torch, no matplotlib at import): the sweep summary reads job folders with
it between Hydra's jobs, and `gdrun-report --help` must answer at once.

Never raises on a damaged or foreign file: what cannot be read reads as missing, and the run says
what is wrong in a sentence per file (`damage`, `problems`). A run whose summary.json, Hydra
record (.hydra/*.yaml) or table headers are damaged has the status `damaged`.
"""

import json
import zipfile
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from gdrun.config.schema import what_ran
from gdrun.config.targets import upgrade, upgraded_container
from gdrun.errors import GdrunError
from gdrun.rundir import yamlio
from gdrun.rundir.files import csv_header_problem, csv_lines, junk_cells, read_csv, split_rows, unreadable
from gdrun.rundir.layout import TABLES, RunPaths
from gdrun.rundir.logfile import last_error

if TYPE_CHECKING:
    import numpy as np

# The status of a run whose own record of itself cannot be read.
DAMAGED = "damaged"


class RunFolder:
    """One run's folder: each file read once, on first use; a missing or damaged file reads as None."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.paths = RunPaths(self.path)
        self._columns: Dict[str, Optional[Dict]] = {}
        self._problems: List[Tuple[str, str]] = []  # (file, what is wrong with it), in the order found

    # ------------------------------------------------------------ what is wrong with the files
    def _note(self, path: Path, sentence: str) -> None:
        """Record a sentence on one of the run's files (once)."""
        entry = (self._name(path), sentence)
        if entry not in self._problems:
            self._problems.append(entry)

    def _name(self, path: Path) -> str:
        """The file's name in the run folder (`.hydra/config.yaml`), as sentences about it begin."""
        return path.relative_to(self.path).as_posix()

    @property
    def problems(self) -> List[str]:
        """What is wrong with the files read so far, a sentence each (see `check` to read them all)."""
        return [sentence for _, sentence in self._problems]

    @cached_property
    def damage(self) -> List[str]:
        """What is wrong with the files that say what the run was and how it ended (summary.json,
        .hydra/'s config, overrides and hydra.yaml, the tables' header lines); [] for a sound run.

        Cheap enough for a listing of many runs: no table rows, no checkpoint.
        """
        record = [self.paths.summary, self.paths.config, self.paths.overrides, self.paths.hydra_config]
        _ = self.summary, self.overrides, self.launch_dir, self._config_yaml
        for path in (self.path / name for name in TABLES):
            wrong = csv_header_problem(path) if path.exists() else None
            if wrong:
                self._note(path, wrong)
                record.append(path)
        names = {self._name(path) for path in record}
        return [sentence for name, sentence in self._problems if name in names]

    def check(self) -> List[str]:
        """Read every file the pictures and tables read (rows and config too); what is wrong with them."""
        _ = self.damage, self.error
        for name in TABLES:
            self.columns(name)
        try:
            _ = self.config
        except GdrunError as error:  # a target gdrun does not run from a folder: said as gdrun says it
            self._note(self.paths.config if self.paths.config.exists() else self.paths.last_checkpoint, str(error))
        said = {name for name, _ in self._problems}
        for path in (self.paths.model, self.paths.last_checkpoint, self.paths.best_checkpoint):
            # torch.save writes a zip archive: anything else was cut short or is not torch's (read without torch)
            if path.exists() and self._name(path) not in said and not zipfile.is_zipfile(path):
                self._note(path, f"{self._name(path)} is not a file torch.save wrote (cut short, or something else)")
        return self.problems

    # ------------------------------------------------------------ the tables
    def table(self, name: str) -> Optional[List[Dict]]:
        """A CSV of the run as dicts, or None when the run did not write it (or wrote no rows)."""
        path = self.path / name
        if not path.exists():
            return None
        problems: List[str] = []
        rows = read_csv(path, problems)
        for sentence in problems:
            self._note(path, sentence)
        return rows or None

    def columns(self, name: str) -> Optional[Dict[str, "np.ndarray"]]:
        """A CSV of the run as one array per column (see read_columns), read once; None when the run
        did not write it (or wrote no rows). What the pictures read."""
        if name not in self._columns:
            problems: List[str] = []
            self._columns[name] = read_columns(self.path / name, problems)
            for sentence in problems:
                self._note(self.path / name, sentence)
        return self._columns[name]

    @cached_property
    def iterations(self) -> Optional[List[Dict]]:
        return self.table(self.paths.iterations.name)

    @cached_property
    def epochs(self) -> Optional[List[Dict]]:
        return self.table(self.paths.epochs.name)

    # ------------------------------------------------------------ the record
    @cached_property
    def summary(self) -> Optional[Dict]:
        """summary.json as written; None when there is none, or when it is damaged (see `damage`)."""
        path = self.paths.summary
        if not path.exists():
            return None
        try:
            text = path.read_bytes().decode("utf-8")
            summary = json.loads(text)
        except OSError as error:
            self._note(path, unreadable(path, error))
            return None
        except UnicodeDecodeError:
            self._note(path, f"{path.name} holds bytes that are not text")
            return None
        except json.JSONDecodeError as error:
            # gdrun writes an object, so text that opens one and does not close it was cut short
            cut = text.lstrip().startswith("{") and not text.rstrip().endswith("}")
            what = "is empty" if not text.strip() else "is cut short" if cut else "is not valid JSON"
            self._note(path, f"{path.name} {what} ({error})")
            return None
        except (ValueError, RecursionError) as error:  # a number of 5000 digits, lists nested too deep
            self._note(path, f"{path.name} is not valid JSON ({first_line(error)})")
            return None
        wrong = summary_problem(summary)
        if wrong:
            self._note(path, f"{path.name} {wrong}")
            return None
        return summary

    def _yaml(self, path: Path, kind: type, what: str) -> Any:
        """A YAML file of Hydra's record read as plain data of `kind`; None when absent or damaged."""
        if not path.exists():
            return None
        name = self._name(path)
        try:
            data = yamlio.load(path.read_bytes())  # OmegaConf's YAML, on libyaml: for listings of many runs
        except OSError as error:
            self._note(path, f"{name} cannot be read ({error.strerror or error})")
            return None
        except yaml.YAMLError as error:
            self._note(path, f"{name} is not valid YAML ({first_line(error)})")
            return None
        if not isinstance(data, kind):
            self._note(path, f"{name} holds {kind_of(data)}, not {what}")
            return None
        return data

    @cached_property
    def _config_yaml(self) -> Optional[Dict]:
        """.hydra/config.yaml as plain data (a quick check; `config` is the config itself)."""
        return self._yaml(self.paths.config, dict, "a config (a mapping)")

    @cached_property
    def settings(self) -> Optional[Dict]:
        """The job's config as plain data, for reading values across many runs (a sweep's 256 jobs) without
        building 256 OmegaConf trees: `.hydra/config.yaml` as written, else `config` as a container. Never
        built from: targets are neither renamed nor trusted here (`config` does that)."""
        if self.paths.config.exists():
            return self._config_yaml
        cfg = self.config
        return None if cfg is None else OmegaConf.to_container(cfg)  # type: ignore[return-value]

    @cached_property
    def config(self) -> Optional[DictConfig]:
        """The job's config: Hydra's `.hydra/config.yaml`, else the resolved one in the last checkpoint.

        Targets renamed since the folder was written (gdrun 0.1.0's `gdrun.models.linear`, ...)
        are read under their current names. None when neither is there or can be read; a target
        gdrun does not run from a folder is a GdrunError (gdrun.config.targets), not damage.
        """
        path = self.paths.config
        if path.exists():
            if self._config_yaml is None:
                return None
            try:
                cfg = OmegaConf.create(self._config_yaml)  # read as OmegaConf.load reads it (rundir.yamlio)
                return upgrade(cfg)  # a GdrunError (a target not trusted) is not damage: it goes on up
            except (OSError, yaml.YAMLError, OmegaConfBaseException) as error:  # what the quick check let by
                self._note(path, f"{self._name(path)} is not a config OmegaConf reads ({first_line(error)})")
                return None
        checkpoint = self.paths.last_checkpoint
        if checkpoint.exists():  # a run started without Hydra's command line (tests)
            return self._checkpoint_config(checkpoint)
        return None

    def _checkpoint_config(self, checkpoint: Path) -> Optional[DictConfig]:
        import torch

        name = self._name(checkpoint)
        try:
            # weights_only: tensors and plain data, which a gdrun checkpoint is; a foreign pickle runs no code
            saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
        except Exception as error:  # noqa: BLE001 - a truncated zip, not a torch file, a pickle of other objects
            self._note(checkpoint, f"{name} is not a checkpoint torch can read safely ({first_line(error)})")
            return None
        if not isinstance(saved, dict) or not isinstance(saved.get("config"), dict):
            self._note(checkpoint, f"{name} is not a gdrun checkpoint (it holds no config)")
            return None
        return OmegaConf.create(upgraded_container(saved["config"]))

    @cached_property
    def model_args(self) -> Optional[Dict[str, Any]]:
        """What the model was built with besides its config (input shape, outputs, output layer); None before 0.2."""
        return (self.summary or {}).get("model_args")

    @cached_property
    def launch_dir(self) -> Optional[Path]:
        """The directory gdrun was started in, which relative paths in the config (data.root) are relative to."""
        path = self.paths.hydra_config
        record = self._yaml(path, dict, "Hydra's record (a mapping)")
        if record is None:
            return None
        hydra = record.get("hydra")
        runtime = hydra.get("runtime") if isinstance(hydra, dict) else None
        cwd = runtime.get("cwd") if isinstance(runtime, dict) else None
        if not isinstance(cwd, str):
            self._note(path, f"{self._name(path)} has no hydra.runtime.cwd (where gdrun ran)")
            return None
        return Path(cwd)

    @cached_property
    def overrides(self) -> List[str]:
        """The command-line overrides of the job, as Hydra recorded them (`optim.lr=0.1`)."""
        path = self.paths.overrides
        overrides = self._yaml(path, list, "a list of overrides")
        if overrides is not None and not all(isinstance(o, str) for o in overrides):
            self._note(path, f"{self._name(path)} holds items that are not overrides")
            return []
        return overrides or []

    @property
    def status(self) -> str:
        """summary.json's status (completed, diverged, ...); `failed` when the run never wrote one,
        `damaged` when its record cannot be read (see `damage`)."""
        if self.damage:
            return DAMAGED
        return (self.summary or {}).get("status", "failed")

    @cached_property
    def error(self) -> Optional[str]:
        """Why a run did not complete: what is damaged, else summary.json's own word, else the end of gdrun.log."""
        if self.damage:
            return "; ".join(self.damage)
        if self.status == "completed":
            return None
        summary = self.summary or {}
        if summary.get("error"):
            return str(summary["error"])
        if summary.get("diverged_at_step") is not None:
            return f"diverged at step {summary['diverged_at_step']} (cost {summary.get('diverged_cost')})"
        if summary.get("stopped_by"):
            return f"stopped by {summary['stopped_by']}"
        log = self.paths.log
        reason = None
        if log.exists():
            try:
                reason = last_error(log.read_text(errors="replace"))
            except OSError as error:
                self._note(log, unreadable(log, error))
        return reason or ("no summary.json and no error in gdrun.log" if not summary else None)

    @property
    def headline(self) -> Optional[str]:
        """The metric the run was judged by (summary.json's best.metric: val_accuracy, train_loss, ...)."""
        return ((self.summary or {}).get("best") or {}).get("metric")

    def final(self, metric: str) -> Optional[float]:
        return ((self.summary or {}).get("final") or {}).get(metric)

    @cached_property
    def what(self) -> Dict:
        """What was run: data, model, loss, optim, lr, batch_size (summary.json's `run`, else the config)."""
        if self.summary and self.summary.get("run"):
            return self.summary["run"]
        cfg = self.config
        if cfg is None:
            return {}
        try:
            return what_ran(cfg)
        except (OmegaConfBaseException, AttributeError, KeyError):  # a config without gdrun's keys
            return {}

    def title(self) -> str:
        """The run in one line for a figure's title: `data=line · model=linear · ... · lr=0.1 · batch=full`."""
        return title_line(self.what) or self.path.name


# summary.json's fields that hold one number (or null), and those that hold an object (or null).
NUMBERS = ("epochs", "steps", "wall_seconds", "num_params", "diverged_at_step")
OBJECTS = ("final", "best", "best_by_metric", "run", "model_args")


def summary_problem(summary: Any) -> Optional[str]:
    """Why parsed JSON is not a summary gdrun wrote (said after the file's name); None when it is."""
    if not isinstance(summary, dict):
        return f"holds {kind_of(summary)}, not the object gdrun writes"
    if not isinstance(summary.get("status"), str):
        return "has no status (it is not a summary gdrun wrote)"
    for key in OBJECTS:
        if summary.get(key) is not None and not isinstance(summary[key], dict):
            return f"has a {key} that is not an object"
    best, final = summary.get("best") or {}, summary.get("final") or {}
    numbers = [(key, summary.get(key)) for key in NUMBERS]
    numbers += [("best.value", best.get("value")), ("best.epoch", best.get("epoch"))]
    numbers += [(f"final.{key}", value) for key, value in final.items()]
    for key, value in numbers:
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            return f"has a {key} that is not a number ({str(value)[:20]!r})"
    if best.get("metric") is not None and not isinstance(best["metric"], str):
        return "has a best.metric that is not a name"
    return None


def kind_of(data: Any) -> str:
    """`a list`, `a number`, ...: what a file held instead, in words."""
    kinds = {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return "nothing" if data is None else kinds.get(type(data), f"a {type(data).__name__}")


def first_line(error: BaseException) -> str:
    """An exception's message in one sentence (YAML's run over several lines, torch's over several sentences)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    return lines[0].split(". ")[0].removesuffix(".")


def read_columns(path: Path, problems: Optional[List[str]] = None) -> Optional[Dict[str, "np.ndarray"]]:
    """A run's CSV as {column: array}: numbers as floats (an empty cell, or junk, as nan), text (data.csv's
    split) as str; None when there is no such file or no row in it. Never raises on a damaged file: a row
    cut by a kill is left out, and what was wrong is added to `problems` (as files.read_csv says it).

    numpy parses all-number files in C, several times faster than a dict per row: it counts for
    the thousands of rows of a mini-batch run's iterations.csv, params.csv and fit.csv.
    """
    import numpy as np  # here: this module stays light for the sweep summary and `gdrun-report --help`

    if not path.exists():
        return None
    problems = [] if problems is None else problems
    header, lines = csv_lines(path, problems)
    if not any(line.strip() for line in lines):
        return None
    try:
        numbers = np.loadtxt(lines, delimiter=",", ndmin=2, comments=None)  # (rows, columns)
        if numbers.shape[1] == len(header):
            return dict(zip(header, numbers.T))
    except ValueError:  # empty cells (no validation set), text, junk, or rows of other lengths
        pass
    rows = split_rows(path.name, header, lines, problems)
    if not rows:
        return None
    return {name: column_array(path.name, name, column, problems) for name, column in zip(header, np.array(rows).T)}


def column_array(name: str, column_name: str, column: "np.ndarray", problems: List[str]) -> "np.ndarray":
    """A column of CSV cells as floats (empty: nan) when its cells are numbers, else as text; in a
    column of numbers, a cell that is not one is junk: nan, and said in `problems`."""
    import numpy as np

    try:
        return np.where(column == "", "nan", column).astype(float)
    except ValueError:
        pass
    values = np.full(len(column), np.nan)
    junk = []
    for i, cell in enumerate(column.tolist()):
        try:
            values[i] = float(cell) if cell else np.nan
        except ValueError:
            junk.append(i)
    if len(junk) == np.count_nonzero(column != ""):
        return column  # text: data.csv's split
    problems.append(junk_cells(name, column_name, len(junk), column[junk[0]]))
    return values


# The fields of summary.json's `run` that name a run in titles, and their short names there.
TITLE_FIELDS = {"data": "data", "model": "model", "loss": "loss", "optim": "optim", "lr": "lr", "batch_size": "batch"}


def title_line(what: Dict) -> str:
    """`data=line · model=linear · loss=mse · optim=gd · lr=0.1 · batch=full` from the fields given."""
    return " · ".join(
        f"{short}={what[key]:g}" if isinstance(what[key], float) else f"{short}={what[key]}"
        for key, short in TITLE_FIELDS.items()
        if key in what
    )


def shared(runs: List["RunFolder"]) -> Dict:
    """The title fields every run has in common (what a sweep or comparison did not vary)."""
    whats = [run.what for run in runs if run.what]
    if not whats:
        return {}
    return {k: v for k, v in whats[0].items() if all(w.get(k) == v for w in whats[1:])}


def differing(settings: List[Dict]) -> List[str]:
    """The keys whose values are not the same in every dict, in first-seen order: what tells runs apart."""
    keys: List[str] = []
    for setting in settings:
        keys += [k for k in setting if k not in keys]
    return [k for k in keys if len({repr(s.get(k)) for s in settings}) > 1]


def flat(config: Optional[DictConfig]) -> Dict:
    """A config as `{"optim.lr": 0.1, "data.name": "line", ...}`, interpolations resolved when they can be."""
    if config is None:
        return {}
    try:
        tree = OmegaConf.to_container(config, resolve=True)
    except Exception:  # noqa: BLE001 - an interpolation that needs Hydra's resolvers (${hydra:...})
        tree = OmegaConf.to_container(config, resolve=False)
    out: Dict = {}

    def walk(node: Dict, prefix: str) -> None:
        for key, value in node.items():
            if isinstance(value, dict) and value:
                walk(value, f"{prefix}{key}.")
            else:
                out[f"{prefix}{key}"] = value

    assert isinstance(tree, dict)
    walk(tree, "")
    return out
