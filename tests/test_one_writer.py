"""Nothing writes over a run or mixes two: the resolved output folder is refused when it holds a run,
one process writes a folder at a time, and resume= takes only the folder's own checkpoint, changing
nothing when it refuses. Received folders are read as data: nothing in them runs."""

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from helpers import REPO, run_in_process

LINE = ["data=line", "optim.epochs=3", "plots=false"]


def snapshot(folder: Path):
    """Every file under `folder` with its bytes' digest and its modification time."""
    return {
        p.relative_to(folder): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def existing(tmp_path, gdrun_main):
    folder = tmp_path / "runs" / "existing"
    assert gdrun_main(f"hydra.run.dir={folder}", *LINE)[0] == 0
    return folder


@pytest.mark.parametrize(
    "spelling",
    [
        "hydra.run.dir={folder}",
        "++hydra.run.dir={folder}",
        "hydra.run.dir=${{hydra:runtime.cwd}}/{relative}",
        "hydra.run.dir={relative}",
        "hydra.run.dir={folder}/",
        "hydra.run.dir={folder}/../existing",
    ],
)
def test_an_existing_run_is_never_written_over_however_its_folder_is_spelled(
    existing, gdrun_main, monkeypatch, spelling
):
    monkeypatch.chdir(existing.parent.parent)
    before = snapshot(existing)
    argument = spelling.format(folder=existing, relative=existing.relative_to(existing.parent.parent))
    code, _, err = gdrun_main(argument, *LINE)
    assert code == 2 and "already holds a run" in err, err
    assert snapshot(existing) == before


def test_an_empty_run_dir_inside_a_run_folder_is_refused(existing, gdrun_main, monkeypatch):
    monkeypatch.chdir(existing)
    before = snapshot(existing)
    code, _, err = gdrun_main("hydra.run.dir=", *LINE)
    assert code == 2 and "already holds a run" in err
    assert snapshot(existing) == before


def test_a_sweep_into_a_folder_that_holds_one_is_refused(tmp_path, gdrun_main):
    sweep = tmp_path / "sweep"
    assert gdrun_main("-m", f"hydra.sweep.dir={sweep}", "optim.lr=0.1,0.2", *LINE)[0] == 0
    before = snapshot(sweep)
    code, _, err = gdrun_main("-m", f"hydra.sweep.dir={sweep}", "optim.lr=0.3", *LINE)
    assert code == 2 and "already holds a run" in err
    assert snapshot(sweep) == before


def gdrun_process(*args: str, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "gdrun", *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


LONG = ["data=digits", "model=mlp", "optim.batch_size=1", "optim.epochs=3", "checkpoint_min_seconds=0", "plots=false"]


@pytest.mark.slow
def test_two_runs_started_together_into_one_new_folder_one_is_refused(tmp_path):
    folder = tmp_path / "new"
    first, second = (gdrun_process(f"hydra.run.dir={folder}", *LINE, cwd=tmp_path) for _ in range(2))
    results = sorted([(p.wait(timeout=120), p.stderr.read()) for p in (first, second)], key=lambda r: r[0])
    assert [code for code, _ in results] == [0, 2], results
    assert "another gdrun process" in results[1][1] or "already holds a run" in results[1][1]
    steps = [line.split(",")[0] for line in (folder / "iterations.csv").read_text().splitlines()[1:]]
    assert steps == ["1", "2", "3"]  # one run's rows, not two mixed


@pytest.mark.slow
def test_a_second_resume_of_a_folder_being_resumed_is_refused(tmp_path, gdrun_main):
    folder = tmp_path / "run"
    code, _, _ = gdrun_main(f"hydra.run.dir={folder}", *LONG[:-2], "optim.epochs=1", "plots=false")
    assert code == 0
    per_epoch = len((folder / "iterations.csv").read_text().splitlines()) - 1
    first = gdrun_process(f"resume={folder}", "optim.epochs=3", cwd=tmp_path)
    deadline = time.monotonic() + 60
    while "resuming" not in (folder / "gdrun.log").read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    code, _, err = gdrun_main(f"resume={folder}", "optim.epochs=3")
    assert code == 2 and "another gdrun process" in err
    assert first.wait(timeout=120) == 0, first.stderr.read()
    steps = [int(line.split(",")[0]) for line in (folder / "iterations.csv").read_text().splitlines()[1:]]
    assert steps == list(range(1, len(steps) + 1)) and len(steps) == 3 * per_epoch


def test_a_checkpoint_from_another_run_is_refused_and_nothing_changes(tmp_path, gdrun_main):
    mine, other = tmp_path / "mine", tmp_path / "other"
    assert gdrun_main(f"hydra.run.dir={mine}", "data=digits", "model=logistic", "optim.batch_size=4",
                      "optim.epochs=1", "plots=false")[0] == 0  # fmt: skip
    run_in_process(other, "data=digits", "model=logistic", "optim.batch_size=32", "optim.epochs=1")
    (mine / "checkpoints" / "last.pt").write_bytes((other / "checkpoints" / "last.pt").read_bytes())
    before = snapshot(mine)
    code, _, err = gdrun_main(f"resume={mine}", "optim.epochs=2")
    assert code == 2 and "was not written by the run in this folder" in err and "optim.batch_size" in err
    assert snapshot(mine) == before


def test_a_refused_resume_of_a_completed_run_changes_nothing(tmp_path, gdrun_main):
    folder = tmp_path / "run"
    assert gdrun_main(f"hydra.run.dir={folder}", *LINE)[0] == 0
    before = snapshot(folder)
    for arguments in (["optim.lr=0.5", "optim.epochs=5"], [], ["model.bias=false"]):
        code, _, err = gdrun_main(f"resume={folder}", *arguments)
        assert code == 2, err
    assert snapshot(folder) == before


def test_a_crafted_pickle_in_a_received_folder_runs_nothing(tmp_path, gdrun_main):
    folder = tmp_path / "received"
    assert gdrun_main(f"hydra.run.dir={folder}", *LINE)[0] == 0
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"format": "gdrun-checkpoint-1", "model": Payload()}, folder / "checkpoints" / "last.pt")
    code, _, err = gdrun_main(f"resume={folder}", "optim.epochs=5")
    assert code == 2 and "would run code" in err
    import gdrun

    with pytest.raises(gdrun.errors.GdrunError):
        gdrun.load_run(folder).load_model("last")
    assert not marker.exists()


@pytest.mark.parametrize("command", ["eval", "resume", "load_run"])
def test_a_crafted_target_in_a_received_folder_runs_nothing(tmp_path, gdrun_main, command):
    import gdrun

    folder = tmp_path / "received"
    assert gdrun_main(f"hydra.run.dir={folder}", *LINE)[0] == 0
    victim = tmp_path / "precious.txt"
    victim.write_text("a week of notes")
    config = folder / ".hydra" / "config.yaml"
    text = config.read_text().replace("_target_: gdrun.training.datasets.synthetic.line",
                                      f"_target_: builtins.open\n  _args_: [{victim}, w]")  # fmt: skip
    config.write_text(text)
    if command == "load_run":
        with pytest.raises(gdrun.errors.GdrunError, match="builtins.open"):
            gdrun.load_run(folder).evaluate()
    else:
        code, _, err = gdrun_main(f"{command}={folder}", *(["optim.epochs=5"] if command == "resume" else []))
        assert code == 2 and "builtins.open" in err and "trust=builtins" in err, err
    assert victim.read_text() == "a week of notes"


def test_a_folder_made_with_ones_own_model_loads_when_trusted(tmp_path, gdrun_main, monkeypatch):
    import gdrun

    package = tmp_path / "mymodels"
    package.mkdir()
    (package / "__init__.py").write_text(
        "from gdrun.training.models import linear\n\ndef build(input_shape, num_outputs, output, bias, init=None):\n"
        "    return linear(input_shape, num_outputs, output, bias, init=init)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    folder = tmp_path / "mine"
    assert gdrun_main(f"hydra.run.dir={folder}", *LINE, "model._target_=mymodels.build")[0] == 0
    code, _, err = gdrun_main(f"eval={folder}")
    assert code == 2 and "trust=mymodels" in err
    code, out, err = gdrun_main(f"eval={folder}", "trust=mymodels")
    assert code == 0, err
    assert gdrun.load_run(folder, trust=["mymodels"]).model is not None


def test_the_lock_is_on_the_folder_and_creates_no_file(tmp_path):
    from gdrun.rundir import lock

    folder = tmp_path / "run"
    lock.claim(folder)
    try:
        assert list(folder.iterdir()) == []
        code = "import sys; from gdrun.rundir import lock; lock.claim(sys.argv[1])"
        other = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True, cwd=REPO)
        assert other.returncode == 1 and "another gdrun process" in other.stderr
    finally:
        lock.release(folder)
