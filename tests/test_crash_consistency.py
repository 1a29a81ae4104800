"""A run folder survives `kill -9` at any instant: resume= then ends with the files of an uninterrupted run.

The faults are real: each run is a process of its own, killed with SIGKILL at every point where
it publishes a file (just before and just after each rename: summary.json, checkpoints, model.pt),
at random moments of its training, and while it draws its pictures. tests/faults/ does the
killing from outside gdrun's code. Most runs are children forked from this process, which has
torch imported already (a fresh interpreter per run would cost seconds each); the last test
starts real `gdrun` commands.
"""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch._dynamo  # noqa: F401 - imported once here, not in every forked run (torch.optim needs it)
from sklearn.datasets import load_digits  # noqa: F401 - likewise: the digits' reader

from gdrun.commands.gdrun import main
from gdrun.rundir.files import truncate_csv
from gdrun.rundir.loggers import EPOCH_COLUMNS, ITERATION_COLUMNS

pytestmark = pytest.mark.slow  # every test here starts gdrun as a process

FAULTS = Path(__file__).resolve().parent / "faults"
# Shuffled data, dropout and momentum: every random draw and every state must survive the kill.
RUN = ["data=digits", "model=mlp", "model.hidden=[16]", "model.dropout=0.2", "optim.momentum=0.9",
       "optim.epochs=3", "optim.batch_size=64", "checkpoint_min_seconds=0", "plots=false"]  # fmt: skip


def forked(*args: str, kill=None, trace=None, wait: bool = True):
    """`gdrun ARGS` in a forked child (faults installed there); its exit code (-9 when killed), or its pid."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            sys.path.insert(0, str(FAULTS))
            from inject import install

            install(kill, trace)
            sys.argv = ["gdrun", *args]
            sys.stdout = sys.stderr = open(os.devnull, "w")
            try:
                main()
                code = 0
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else 1
        finally:
            os._exit(code)
    if not wait:
        return pid
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def gdrun(*args: str, cwd: Path, env=None, wait: bool = True):
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(FAULTS), **(env or {})}
    command = [sys.executable, "-m", "gdrun", *args]
    if not wait:
        return subprocess.Popen(command, cwd=cwd, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return subprocess.run(command, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=300)


def outcome(folder: Path):
    """What must equal an uninterrupted run: iterations.csv, epochs.csv but its seconds, the final weights."""
    epochs = [line.rsplit(",", 1)[0] for line in (folder / "epochs.csv").read_text().splitlines()]
    weights = torch.load(folder / "model.pt", weights_only=True)
    return (folder / "iterations.csv").read_bytes(), epochs, weights


def assert_same(folder: Path, reference):
    iterations, epochs, weights = outcome(folder)
    assert iterations == reference[0]
    assert epochs == reference[1]
    assert weights.keys() == reference[2].keys()
    for key, value in weights.items():
        assert torch.equal(value, reference[2][key]), key


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run, and the files it publishes in order (the kill points)."""
    root = tmp_path_factory.mktemp("reference")
    trace = root / "trace.txt"
    assert forked(*RUN, f"hydra.run.dir={root / 'run'}", trace=str(trace)) == 0
    published = trace.read_text().splitlines()
    return outcome(root / "run"), published


def kill_points(published):
    """(n, when) for the first time each kind of file is published, and for the last publications."""
    points, seen = [], set()
    for n, path in enumerate(published, start=1):
        name = Path(path).name
        if name not in seen or n > len(published) - 4:
            seen.add(name)
            points += [(n, "before"), (n, "after")]
    return points


def test_kill_at_every_publication_then_resume_gives_the_uninterrupted_run(tmp_path, reference):
    expected, published = reference
    # The run ends by publishing its last checkpoints and the model, and summary.json last of all.
    assert Path(published[-1]).name == "summary.json" and "model.pt" in [Path(p).name for p in published[-3:]]
    points = kill_points(published)
    assert len(points) >= 12
    for n, when in points:
        folder = tmp_path / f"{n}-{when}"
        assert forked(*RUN, f"hydra.run.dir={folder}", kill=f"{n}:{when}") == -signal.SIGKILL, (n, when)
        code = forked(f"resume={folder}")
        # Only once summary.json says `completed` is there nothing left to resume.
        assert code == (2 if (n, when) == (len(published), "after") else 0), (n, when, code)
        assert_same(folder, expected)


def test_kill_at_random_moments_of_training_then_resume(tmp_path, reference):
    expected, _ = reference
    rng = random.Random(0)
    for attempt in range(6):
        folder = tmp_path / str(attempt)
        pid = forked(*RUN, f"hydra.run.dir={folder}", wait=False)
        while not (folder / "iterations.csv").exists():
            time.sleep(0.002)
        time.sleep(rng.uniform(0.0, 0.5))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        code = forked(f"resume={folder}")
        assert code in (0, 2)  # 2: it had completed before the kill
        assert_same(folder, expected)


def test_a_real_gdrun_killed_while_drawing_leaves_a_completed_run(tmp_path, reference):
    expected, _ = reference
    folder = tmp_path / "drawing"
    process = gdrun(*RUN[:-1], "plots=true", f"hydra.run.dir={folder}", cwd=tmp_path, wait=False)
    while not (folder / "plots").exists() and process.poll() is None:
        time.sleep(0.005)
    process.kill()
    process.wait()
    assert_same(folder, expected)  # every file was whole before the first picture
    resumed = gdrun(f"resume={folder}", cwd=tmp_path)
    assert resumed.returncode == 2 and "already completed" in resumed.stderr


def test_truncation_repairs_whatever_a_kill_left(tmp_path):
    path = tmp_path / "iterations.csv"
    header = ",".join(ITERATION_COLUMNS) + "\n"
    for text in ["", header, header + "1,1,0.5,0.1\n2,1,0.4", header + "1,1,0.5,0.1\n2,1,0.4,0.1\n3,1,0.3,0.1\n"]:
        path.write_text(text)
        truncate_csv(path, ITERATION_COLUMNS, "step", 1)
        assert path.read_text() == header + ("1,1,0.5,0.1\n" if text.count("\n") > 1 else "")
    epochs = tmp_path / "epochs.csv"
    epochs.write_text(",".join(EPOCH_COLUMNS) + "\n0,1.0,,,,0.1,0.0\n1,0.5,,,,0.1,0.")
    truncate_csv(epochs, EPOCH_COLUMNS, "epoch", 5)
    assert epochs.read_text().splitlines()[-1] == "0,1.0,,,,0.1,0.0"


# Training controls (early stopping, a schedule stepped every iteration, clipping): their states are
# in the checkpoints too. With min_delta 10 nothing counts as an improvement: it stops after epoch 2 of 3.
CONTROLS = [*RUN, "sched=onecycle", "optim.clip_grad_norm=0.5", "early_stop.patience=2", "early_stop.min_delta=10"]


def test_kill_with_training_controls_at_every_publication_then_resume(tmp_path):
    trace = tmp_path / "trace.txt"
    assert forked(*CONTROLS, f"hydra.run.dir={tmp_path / 'run'}", trace=str(trace)) == 0
    expected, published = outcome(tmp_path / "run"), trace.read_text().splitlines()
    assert '"stopped_early_at": 2' in (tmp_path / "run" / "summary.json").read_text()
    for n, when in kill_points(published):
        folder = tmp_path / f"{n}-{when}"
        assert forked(*CONTROLS, f"hydra.run.dir={folder}", kill=f"{n}:{when}") == -signal.SIGKILL, (n, when)
        code = forked(f"resume={folder}")
        assert code == (2 if (n, when) == (len(published), "after") else 0), (n, when, code)
        assert_same(folder, expected)
        assert '"stopped_early_at": 2' in (folder / "summary.json").read_text()
