"""The model a sweep chooses, as the course notes choose it: by validation, then reported on the test set.

At the end of a sweep (grid or search) `write_best` reads summary.csv and picks the completed job
whose headline metric is best: each job's `best_value`, the validation metric of its best
checkpoint (lowest val_loss for regression, highest val_accuracy for classification, or the
job's select.metric). When the sweep repeats settings over seeds or folds (data.fold: k-fold
cross-validation), it picks the setting with the best mean over them, then that setting's best
job. The test set plays no part in the choice: its numbers are only reported.

It writes, at the sweep's root, best.json (the metric, the job, its settings, its validation and
test metrics, its folder; with the cross-validated mean when repeated) and best_model.pt (that job's
best checkpoint's weights as a plain state_dict: `model.load_state_dict(torch.load(path))`).
Light at import (torch only when best_model.pt is written): sweeps.py imports it on every start.
"""

from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from gdrun.config.metric_names import lower_is_better
from gdrun.rundir.files import write_json
from gdrun.rundir.layout import SWEEP_BEST, SWEEP_BEST_MODEL, RunPaths
from gdrun.rundir.reader import RunFolder
from gdrun.rundir.sweep_summary import REPEAT_KEYS, group_rows, number, setting_keys, split_overrides, summary_keys

TEST_PREFIX = "test_"


def candidates(rows: Sequence[Dict], metric: str) -> List[Dict]:
    """The completed jobs judged by `metric` with a value for it."""
    return [
        row
        for row in rows
        if row.get("status") == "completed"
        and row.get("best_metric") == metric
        and number(row.get("best_value")) is not None
    ]


def headline(rows: Sequence[Dict]) -> Optional[str]:
    """The metric the completed jobs were judged by (the most common best_metric; of equally common ones, the
    first job's), None when none completed."""
    names = Counter(row["best_metric"] for row in rows if row.get("status") == "completed" and row.get("best_metric"))
    return names.most_common(1)[0][0] if names else None


def best_of(rows: Sequence[Dict], metric: str) -> Dict:
    """The row with the best best_value (the first of equals, in job order)."""
    sign = 1.0 if lower_is_better(metric) else -1.0
    return min(rows, key=lambda row: (sign * float(row["best_value"]), int(row["job"])))


def choose(rows: Sequence[Dict]) -> Optional[Dict]:
    """best.json's content from summary.csv's rows, or None when no job completed."""
    metric = headline(rows)
    if metric is None:
        return None
    judged = candidates(rows, metric)
    if not judged:
        return None
    keys = summary_keys(rows)
    settings = setting_keys(keys)
    repeated = [key for key in keys if key in REPEAT_KEYS]
    chosen: Dict = {"metric": metric, "lower_is_better": lower_is_better(metric)}
    if repeated:  # cross-validated (or repeated over seeds): the setting with the best mean, then its best job
        groups = [g for g in group_rows(judged, keys) if g.get("best_value_mean") is not None]
        sign = 1.0 if lower_is_better(metric) else -1.0
        group = min(groups, key=lambda g: sign * g["best_value_mean"])
        members = [row for row in judged if all(repr(row.get(k)) == repr(group[k]) for k in settings)]
        chosen["over"] = repeated
        chosen["mean"] = {
            key[: -len("_mean")].replace("best_value", metric): value
            for key, value in group.items()
            if key.endswith("_mean") and (key.startswith("best_value") or key.startswith(TEST_PREFIX))
        }
        chosen["std"] = group.get("best_value_std")
        chosen["ci95"] = group.get("best_value_ci95")
        chosen["jobs"] = [int(row["job"]) for row in members]
        row = best_of(members, metric)
    else:
        row = best_of(judged, metric)
    chosen.update(job_record(row, settings))
    return chosen


def job_record(row: Dict, settings: Sequence[str]) -> Dict:
    """The chosen job: its number, settings, overrides, validation value and epoch, test metrics, folder."""
    return {
        "job": int(row["job"]),
        "settings": {key: row.get(key) for key in settings},
        "overrides": split_overrides(str(row.get("overrides") or "")),
        "validation": {"value": row["best_value"], "epoch": row.get("best_epoch")},
        "test": {k[len(TEST_PREFIX) :]: v for k, v in row.items() if k.startswith(TEST_PREFIX) and v is not None}
        or None,
        "folder": str(row["folder"]),
    }


def write_best(sweep_dir: Path, rows: Sequence[Dict]) -> List[Path]:
    """best.json and best_model.pt at the sweep's root (see the module); returns the files written."""
    sweep_dir = Path(sweep_dir)
    chosen = choose(rows)
    if chosen is None:
        return []
    job = RunPaths(sweep_dir / chosen["folder"])
    chosen["folder"] = str(job.root.absolute())
    written = [sweep_dir / SWEEP_BEST]
    if job.best_checkpoint.is_file():
        save_weights(job.best_checkpoint, sweep_dir / SWEEP_BEST_MODEL)
        chosen["model"] = SWEEP_BEST_MODEL
        chosen["model_args"] = RunFolder(job.root).model_args
        written.append(sweep_dir / SWEEP_BEST_MODEL)
    write_json(sweep_dir / SWEEP_BEST, chosen)  # last: it names best_model.pt only once that is whole
    return written


def save_weights(checkpoint: Path, out: Path) -> None:
    """A checkpoint's weights alone, as a plain state_dict (torch.load(out, weights_only=True) reads it)."""
    from gdrun.training import checkpoints

    checkpoints.atomic_save(checkpoints.load(checkpoint)["model"], out)


def chosen_line(best: Dict) -> str:
    """The console's closing line on the chosen model: which job, by what, and its test result."""
    metric = best["metric"]
    where = ", ".join(f"{k}={v}" for k, v in best["settings"].items())
    value, epoch = show(metric, best["validation"]["value"]), best["validation"]["epoch"]
    if best.get("over"):
        over = " × ".join(best["over"])
        line = f"chosen: {where or 'the setting'} by its mean {metric} {show(metric, best['mean'].get(metric))} "
        line += f"over {over} ({len(best['jobs'])} jobs); its model: job {best['job']}"
        line += f" ({metric} {value} at epoch {epoch})"
    else:
        line = f"chosen model: job {best['job']}" + (f" ({where})" if where else "")
        line += f" by {metric} {value} at epoch {epoch}"
    test = best.get("test")
    if test:
        shown = ", ".join(f"{name} {show(name, value)}" for name, value in test.items())
        line += f"; on the test set: {shown}"
    else:
        line += "; no test set (data.test_split, or data.val_split on data with an official test split)"
    if best.get("model"):
        line += f"; weights in {best['model']}"
    return line


def show(metric: str, value: Optional[float]) -> str:
    if value is None:
        return "?"
    return f"{100 * value:.2f}%" if metric.endswith("accuracy") else f"{value:.4g}"
