"""Runs survive bad input, divergence and interruption, and resume exactly."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from gdrun.training.checkpoints import atomic_save
from helpers import REPO, gdrun_cli, run_in_process

BAD_INPUTS = [
    # (arguments, words the message must contain)
    (["model=logistc"], ["model=logistc", "cnn, linear, logistic, mlp"]),
    (["optim.lrr=0.1"], ["optim.lrr", "lr"]),
    (["optim.lr=fast"], ["optim.lr", "fast"]),
    (["optim.lr=0"], ["optim.lr=0.0", "positive"]),
    (["optim.batch_size=0"], ["optim.batch_size=0", "full"]),
    (["optim.batch_size=-5"], ["optim.batch_size=-5"]),
    (["optim.batch_size=ten"], ["optim.batch_size=ten", "full"]),
    (["optim.epochs=-1"], ["optim.epochs=-1"]),
    (["data.val_split=1.0"], ["data.val_split=1.0", "[0, 1)"]),
    (["device=gpu"], ["device=gpu", "cpu"]),
    (["device=cuda:7"], ["device=cuda:7", "not present"]),
    (["optim=adam", "optim.momentum=0.9"], ["optim.momentum", "betas"]),
    (["data.val_split=[1"], ["override"]),
    (["data=digits", "loss=bce"], ["loss=bce", "multiclass"]),
    (["data=line", "loss=cross_entropy"], ["loss=cross_entropy", "regression"]),
    (["data=line", "model=logistic"], ["model=logistic", "regression"]),
    (["data=line", "model=cnn"], ["cnn needs image inputs"]),
    (["model=mlp", "model.hidden=[0]"], ["model.hidden"]),
    (["model=mlp", "model.activation=swish"], ["swish", "relu"]),
    (["model.init={weight: [[1.0, 2.0]]}"], ["model.init.weight", "shape"]),
    (
        ["data=mnist", "data.download=false", "data.root=/nonexistent/mnist"],
        ["MNIST not found under data.root=/nonexistent/mnist", "MNIST/raw", "data.download=true"],
    ),
]


@pytest.mark.parametrize("args, words", BAD_INPUTS, ids=[" ".join(a) for a, _ in BAD_INPUTS])
def test_bad_input_is_one_plain_message(gdrun_main, tmp_path, args, words):
    code, out, err = gdrun_main(*args, f"hydra.run.dir={tmp_path / 'run'}")
    assert code == 2, out + err
    message = err.strip()
    assert message.startswith("gdrun: error:") and "Traceback" not in out + message
    assert len(message.splitlines()) <= 2, message
    for word in words:
        assert word in message


@pytest.mark.slow
def test_divergence_stops_at_once_and_keeps_the_files(tmp_path):
    result = gdrun_cli("optim.lr=10", f"hydra.run.dir={tmp_path}", "plots=false")
    assert result.returncode == 3
    assert "smaller learning rate" in result.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "diverged"
    rows = (tmp_path / "iterations.csv").read_text().splitlines()[1:]
    assert summary["diverged_at_step"] == len(rows) < 15  # stopped at the step, not after 15
    assert (tmp_path / "epochs.csv").exists() and (tmp_path / "checkpoints" / "last.pt").exists()


@pytest.mark.slow
def test_sweep_goes_on_past_a_diverged_job(tmp_path):
    result = gdrun_cli("-m", "optim.lr=10,0.1", "optim.epochs=3", "plots=false", f"hydra.sweep.dir={tmp_path}")
    assert result.returncode == 0, result.stderr
    statuses = [json.loads((tmp_path / n / "summary.json").read_text())["status"] for n in "01"]
    assert statuses == ["diverged", "completed"]


@pytest.mark.slow
def test_a_failing_job_does_not_stop_the_sweep(tmp_path):
    result = gdrun_cli(
        "-m", "data=line", "model=logistic,linear", "optim.epochs=2", "plots=false", f"hydra.sweep.dir={tmp_path}"
    )
    assert result.returncode == 0, result.stderr
    first = json.loads((tmp_path / "0" / "summary.json").read_text())
    assert first["status"] == "failed" and "model=logistic" in first["error"]
    assert json.loads((tmp_path / "1" / "summary.json").read_text())["status"] == "completed"


INTERRUPTIBLE = ["data=digits", "model=mlp", "model.dropout=0.2", "optim.epochs=150", "seed=5", "plots=false"]


def start_and_signal(folder, signum, after_rows, extra=()):
    """Start a real gdrun process, send `signum` once epochs.csv has `after_rows` lines; return its result."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "gdrun", *INTERRUPTIBLE, *extra, f"hydra.run.dir={folder}"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    epochs = folder / "epochs.csv"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if epochs.exists() and len(epochs.read_text().splitlines()) >= after_rows:
            process.send_signal(signum)
            break
        time.sleep(0.01)
    out, err = process.communicate(timeout=120)
    return process.returncode, out, err


def assert_same_run(resumed, reference):
    assert (resumed / "iterations.csv").read_text() == (reference / "iterations.csv").read_text()

    def without_seconds(folder):  # wall-clock time is the one column that may differ
        return [line.rsplit(",", 1)[0] for line in (folder / "epochs.csv").read_text().splitlines()]

    assert without_seconds(resumed) == without_seconds(reference)
    a = torch.load(resumed / "model.pt", weights_only=True)
    b = torch.load(reference / "model.pt", weights_only=True)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reference") / "run"
    run_in_process(folder, *INTERRUPTIBLE)
    return folder


@pytest.mark.slow
def test_sigint_then_resume_equals_an_uninterrupted_run(gdrun_main, tmp_path, reference_run):
    folder = tmp_path / "run"
    code, _, err = start_and_signal(folder, signal.SIGINT, after_rows=4)
    assert code == 130, err
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["stopped_by"] == "SIGINT"
    assert (folder / "checkpoints" / "last.pt").exists()
    code, _, err = gdrun_main(f"resume={folder}")
    assert code == 0, err
    assert json.loads((folder / "summary.json").read_text())["status"] == "completed"
    assert_same_run(folder, reference_run)


@pytest.mark.slow
def test_sigkill_then_resume_drops_unsaved_rows_and_equals_an_uninterrupted_run(gdrun_main, tmp_path, reference_run):
    folder = tmp_path / "run"
    code, _, _ = start_and_signal(folder, signal.SIGKILL, after_rows=6, extra=["checkpoint_min_seconds=0"])
    assert code == -signal.SIGKILL
    code, _, err = gdrun_main(f"resume={folder}")
    assert code == 0, err
    assert_same_run(folder, reference_run)


def test_resume_refuses_bad_checkpoints(gdrun_main, tmp_path):
    folder, other = tmp_path / "run", tmp_path / "other"
    assert gdrun_main(f"hydra.run.dir={folder}", "optim.epochs=2", "plots=false")[0] == 0
    run_in_process(other, "data=plane2", "optim.epochs=2")
    last = folder / "checkpoints" / "last.pt"
    whole = last.read_bytes()

    last.write_bytes(whole[: len(whole) // 2])
    code, _, err = gdrun_main(f"resume={folder}", "optim.epochs=4")
    assert code == 2 and "damaged" in err

    torch.save({"weight": torch.zeros(1)}, last)
    code, _, err = gdrun_main(f"resume={folder}", "optim.epochs=4")
    assert code == 2 and "not a gdrun checkpoint" in err

    last.write_bytes((other / "checkpoints" / "last.pt").read_bytes())
    code, _, err = gdrun_main(f"resume={folder}", "optim.epochs=4")
    assert code == 2 and "was not written by the run in this folder" in err

    last.unlink()
    code, _, err = gdrun_main(f"resume={folder}")
    assert code == 2 and "last.pt is missing" in err


def test_resume_of_a_completed_run_says_how_to_train_further(gdrun_main, tmp_path):
    folder = tmp_path / "run"
    run_in_process(folder, "optim.epochs=2")
    code, _, err = gdrun_main(f"resume={folder}")
    assert code == 2 and "optim.epochs=" in err
    code, _, err = gdrun_main(f"resume={folder}", "optim.epochs=4")
    assert code == 0, err
    assert len((folder / "iterations.csv").read_text().splitlines()) == 1 + 4


def test_atomic_save_leaves_the_previous_checkpoint_whole(tmp_path):
    path = tmp_path / "last.pt"
    atomic_save({"step": 1}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("crash while writing")

    with pytest.raises(RuntimeError):
        atomic_save({"step": 2, "bad": Unpicklable()}, path)
    assert torch.load(path, weights_only=False) == {"step": 1}


def test_a_run_never_writes_over_another(gdrun_main, tmp_path):
    folder = tmp_path / "run"
    assert gdrun_main(f"hydra.run.dir={folder}", "optim.epochs=2", "plots=false")[0] == 0
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    code, _, err = gdrun_main(f"hydra.run.dir={folder}", "optim.epochs=3", "plots=false")
    assert code == 2 and "never writes over" in err
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == before


@pytest.mark.slow
def test_runs_started_together_get_their_own_folders(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "gdrun", "optim.epochs=1", "plots=false"]
    processes = [
        subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(2)
    ]
    assert [p.wait(timeout=120) for p in processes] == [0, 0]
    assert len(list((tmp_path / "outputs").rglob("summary.json"))) == 2


def test_eval_prints_the_saved_models_metrics(gdrun_main, tmp_path):
    folder = tmp_path / "run"
    summary = run_in_process(folder, "data=digits", "model=logistic", "optim.epochs=2")
    code, out, err = gdrun_main(f"eval={folder}")
    assert code == 0, err
    assert f"{100 * summary['final']['val_accuracy']:.2f}%" in out


@pytest.mark.slow
def test_a_run_in_progress_says_running(tmp_path):
    folder = tmp_path / "run"
    code, _, _ = start_and_signal(folder, signal.SIGKILL, after_rows=2)
    assert code == -signal.SIGKILL
    assert json.loads((folder / "summary.json").read_text())["status"] == "running"
