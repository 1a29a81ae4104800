"""The first minute with gdrun: an answer before torch is imported, decoded data kept in a cache so a
second run imports neither scikit-learn nor torchvision, a closing line with the time waited, MNIST's
held-out set called "test", and no run folder for a refused command."""

import json
import os
import re
import subprocess
import sys

import pytest
import torch

from gdrun.training.datasets import images
from gdrun.training.datasets.idx import write_mnist_like
from helpers import REPO, gdrun_cli

pytestmark = pytest.mark.slow  # each test starts processes that import torch


def python(code: str, env: dict) -> str:
    """Run `code` in a new Python (gdrun's), return its stdout."""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **env}, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_first_line_comes_before_torch_is_imported(tmp_path):
    # -X importtime writes a line as each import ends, on stderr; stdout goes to the same pipe,
    # unbuffered, so the order of the output is the order of the events.
    result = subprocess.run(
        [sys.executable, "-u", "-X", "importtime", "-m", "gdrun", "plots=false", "optim.epochs=1",
         f"hydra.run.dir={tmp_path / 'run'}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout
    lines = result.stdout.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("gdrun: line / linear / gd lr=0.1 batch=full"))
    # the first of torch's modules to finish importing
    torch_imported = next(i for i, line in enumerate(lines) if re.search(r"\|\s+torch(\.|$)", line))
    assert first < torch_imported
    assert str(tmp_path / "run") in lines[first]  # and where the run goes


def test_digits_are_read_back_from_the_cache_without_scikit_learn(tmp_path):
    env = {"GDRUN_CACHE": str(tmp_path / "cache")}
    code = (
        "import sys; from gdrun.training.datasets.images import digits; data = digits(); "
        "print(len(data), float(data.x.max()), 'sklearn' in sys.modules)"
    )
    assert python(code, env).split() == ["1797", "1.0", "True"]  # decoded by scikit-learn, then kept
    assert python(code, env).split() == ["1797", "1.0", "False"]  # read back: no scikit-learn
    source = images.digits_file()
    assert source is not None and source.name == "digits.csv.gz"  # the entry is keyed by sklearn's own file
    assert len(list((tmp_path / "cache" / "digits").glob("*.pt"))) == 1


def test_a_second_digits_run_imports_no_scikit_learn_from_start_to_end(tmp_path):
    """The whole run, its per-class table and pictures included (drawn here: no worker), not just its data."""
    env = {**os.environ, "GDRUN_CACHE": str(tmp_path / "cache"), "GDRUN_FINISHER": "0", "OMP_NUM_THREADS": "1"}
    imported = []
    for run in ("first", "second"):
        result = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "gdrun", "data=digits", "model=mlp", "optim.epochs=1",
             f"hydra.run.dir={tmp_path / run}"],
            cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-2000:]
        assert (tmp_path / run / "classes.csv").exists() and (tmp_path / run / "plots" / "confusion.png").exists()
        imported.append({m.group(1) for m in re.finditer(r"\|\s+(sklearn|torchvision)(?:\.|\n|$)", result.stderr)})
    assert imported == [{"sklearn"}, set()]  # the first run decoded the digits with scikit-learn; then none


def test_mnist_is_read_back_from_the_cache_and_rebuilt_when_its_files_change(tmp_path):
    root = tmp_path / "data"
    write_mnist_like(root, n_train=30, n_test=10)
    env = {"GDRUN_CACHE": str(tmp_path / "cache")}
    code = (
        "import sys; from gdrun.training.datasets.images import torchvision_dataset as load; "
        f"data = load('MNIST', {str(root)!r}, False); "
        "print(len(data), len(data.val), float(data.x.max()) <= 1.0, 'torchvision' in sys.modules)"
    )
    assert python(code, env).split() == ["30", "10", "True", "True"]
    assert python(code, env).split() == ["30", "10", "True", "False"]  # no torchvision the second time
    write_mnist_like(root, n_train=40, n_test=10, seed=1)  # new files: the entry is rebuilt, the old one removed
    assert python(code, env).split() == ["40", "10", "True", "True"]
    assert len(list((tmp_path / "cache" / "torchvision").glob("*.pt"))) == 1


def test_cached_mnist_equals_torchvisions_own_reading(tmp_path, monkeypatch):
    import torchvision

    monkeypatch.setenv("GDRUN_CACHE", str(tmp_path / "cache"))
    write_mnist_like(tmp_path, n_train=20, n_test=8)
    first, second = (images.torchvision_dataset("MNIST", str(tmp_path), False) for _ in range(2))
    official = torchvision.datasets.MNIST(str(tmp_path), train=True)
    expected = official.data.unsqueeze(1).float() / 255  # what ToTensor gives, image by image
    for data in (first, second):
        torch.testing.assert_close(data.x, expected, rtol=0, atol=0)
        assert torch.equal(data.y, official.targets)


def test_a_run_says_the_time_waited_and_calls_mnists_held_out_set_test(tmp_path):
    write_mnist_like(tmp_path / "data", n_train=40, n_test=20)
    result = gdrun_cli(
        "data=mnist", f"data.root={tmp_path / 'data'}", "data.download=false", "optim.epochs=1", "optim.batch_size=20",
        f"hydra.run.dir={tmp_path / 'run'}", "plots=false", cwd=tmp_path, env={"GDRUN_CACHE": str(tmp_path / "c")},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    closing = next(line for line in result.stdout.splitlines() if line.startswith("gdrun: completed"))
    waited, training = closing.split(" in ")[1].split("s (training ")
    assert float(waited) >= float(training.rstrip("s)"))
    assert "test acc" in result.stdout and "val_accuracy (test set)" in result.stdout
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["val_set"] == "test"


@pytest.mark.parametrize(
    "overrides",
    [
        ("data=mnist", "data.root=nowhere", "data.download=false"),  # missing files
        ("model=cnn",),  # a model that does not fit the data (1-D points)
        ("optim.lr=-1",),  # a bad value
    ],
)
def test_a_refused_command_leaves_no_run_folder(tmp_path, overrides):
    result = gdrun_cli(*overrides, "plots=false", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert not (tmp_path / "outputs").exists() or not any((tmp_path / "outputs").rglob("summary.json"))


def test_help_names_the_other_commands():
    result = gdrun_cli("--help")
    assert all(name in result.stdout for name in ("gdrun-report", "gdrun-runs", "gdrun-labs"))


def readme_python_example() -> str:
    """The README's Python example (the code block of its "From Python" section), as written."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("## From Python") :]
    start = section.index("```python\n") + len("```python\n")
    return section[start : section.index("\n```", start)]


def test_the_readmes_python_example_runs_as_written_twice(tmp_path):
    # A new process in an empty folder, as a reader would paste it; twice: no fixed folder in the way.
    code = readme_python_example()
    assert "gdrun.run(" in code and "gdrun.load_run(" in code
    env = {"OMP_NUM_THREADS": "1", "GDRUN_CACHE": str(tmp_path / "cache")}
    for _ in range(2):
        result = subprocess.run(
            [sys.executable, "-c", code + "\nprint('RAN', summary['folder'])"], cwd=tmp_path, capture_output=True,
            text=True, timeout=300, env={**os.environ, **env},
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert "RAN" in result.stdout
    assert len(list((tmp_path / "outputs").glob("*/*/summary.json"))) == 2
