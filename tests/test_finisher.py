"""gdrun.finisher: end-of-run tasks run in a second process, and in this one when that process is not there."""

import logging

import pytest

from gdrun import finisher
from helpers import gdrun_cli


def test_the_worker_runs_tasks_and_says_a_failure(tmp_path, caplog):
    source = tmp_path / "source.txt"
    source.write_text("rows\n")
    worker = finisher.Finisher(preload=())
    try:
        assert worker.alive()
        worker.submit("shutil:copyfile", str(source), str(tmp_path / "copy.txt"))
        worker.submit("shutil:copyfile", str(tmp_path / "missing.txt"), str(tmp_path / "never.txt"))
        with caplog.at_level(logging.WARNING, logger="gdrun"):
            worker.wait()
        assert (tmp_path / "copy.txt").read_text() == "rows\n"
        assert "FileNotFoundError" in caplog.text and not (tmp_path / "never.txt").exists()
    finally:
        worker.close()
    assert not worker.alive()


def test_a_task_runs_here_when_the_worker_is_gone(tmp_path):
    source = tmp_path / "source.txt"
    source.write_text("rows\n")
    worker = finisher.Finisher(preload=())
    assert worker.process is not None
    worker.process.kill()
    worker.process.wait()
    worker.submit("shutil:copyfile", str(source), str(tmp_path / "copy.txt"))
    worker.wait()
    assert (tmp_path / "copy.txt").read_text() == "rows\n"
    here = finisher.Finisher(start=False)  # no process at all (no free core): the same, in this process
    here.submit("shutil:copyfile", str(source), str(tmp_path / "again.txt"))
    here.wait()
    assert (tmp_path / "again.txt").read_text() == "rows\n"


@pytest.mark.slow  # two gdrun commands
def test_a_runs_pictures_are_the_same_from_the_worker_and_from_this_process(tmp_path):
    drawn = {}
    for mode in ("1", "0"):
        folder = tmp_path / f"run{mode}"
        result = gdrun_cli("lab=slope", f"hydra.run.dir={folder}", env={"GDRUN_FINISHER": mode})
        assert result.returncode == 0, result.stderr
        drawn[mode] = sorted(p.name for p in (folder / "plots").iterdir())
    assert drawn["1"] == drawn["0"] == ["cost.png", "fit.png", "loss_surface.png"]


def rendezvous(mine: str, theirs: str) -> None:
    """A task that leaves `mine` and then needs `theirs`, left by another task: it ends only when both
    run at the same time (and fails, rather than hangs, when they do not)."""
    import time
    from pathlib import Path

    Path(mine).touch()
    waited = 0.0
    while not Path(theirs).exists():
        if waited > 20:
            raise TimeoutError(f"{theirs} never came: the tasks did not run side by side")
        time.sleep(0.05)
        waited += 0.05


@pytest.mark.skipif(not finisher.FORK, reason="tasks run side by side where the worker forks (Linux)")
def test_the_workers_tasks_run_side_by_side(tmp_path, caplog):
    worker = finisher.Finisher(preload=())
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    try:
        worker.submit("test_finisher:rendezvous", a, b)
        worker.submit("test_finisher:rendezvous", b, a)
        with caplog.at_level(logging.WARNING, logger="gdrun"):
            worker.wait()
    finally:
        worker.close()
    assert "failed" not in caplog.text


@pytest.mark.skipif(not finisher.FORK, reason="tasks run in children of the worker where it forks (Linux)")
def test_a_task_whose_process_dies_is_answered_for_not_waited_for(tmp_path, caplog):
    worker = finisher.Finisher(preload=())
    try:
        # The child exits at once without answering; the task must not then run here (it would end pytest).
        worker.submit("os:_exit", 3)
        with caplog.at_level(logging.WARNING, logger="gdrun"):
            worker.wait()
        assert "the task's process exited with status 3 before answering" in caplog.text
        assert worker.alive()  # the worker goes on for the next task
        source = tmp_path / "source.txt"
        source.write_text("rows\n")
        worker.submit("shutil:copyfile", str(source), str(tmp_path / "copy.txt"))
        worker.wait()
        assert (tmp_path / "copy.txt").read_text() == "rows\n"
    finally:
        worker.close()


def test_idle_cores_from_two_readings_of_the_cpu_times(monkeypatch):
    monkeypatch.setattr(finisher.os, "cpu_count", lambda: 2)
    # user nice system idle iowait irq softirq steal: 200 ticks over two cores, 90 idle + 10 waiting
    before = [1000, 0, 500, 4000, 100, 0, 10, 50]
    after = [1080, 0, 520, 4090, 110, 0, 10, 50]
    assert finisher.idle_cores(before, after) == pytest.approx(1.0)
    assert finisher.idle_cores(before, [1000, 0, 500, 4010, 100, 0, 10, 50]) is None  # too soon to tell
    assert finisher.idle_cores(None, after) is None  # no /proc/stat
    busy = [1190, 0, 500, 4000, 100, 0, 10, 60]  # both cores working (10 ticks stolen by the host)
    assert finisher.idle_cores(before, busy) == 0.0
    monkeypatch.setenv("GDRUN_FINISHER", "0")
    assert not finisher.spare_core()


@pytest.mark.skipif(not finisher.FORK, reason="tasks run in children of the worker where it forks (Linux)")
def test_a_task_that_exits_its_child_is_answered_for_and_the_worker_goes_on(tmp_path, caplog):
    worker = finisher.Finisher(preload=())
    try:
        worker.submit("sys:exit", 3)  # SystemExit passes `attempt`: the child must still end, not serve on
        with caplog.at_level(logging.WARNING, logger="gdrun"):
            worker.wait()
        assert "the task's process exited with status 1 before answering" in caplog.text
        source = tmp_path / "source.txt"
        source.write_text("rows\n")
        worker.submit("shutil:copyfile", str(source), str(tmp_path / "copy.txt"))
        assert worker.wait() == [str(tmp_path / "copy.txt")]  # copyfile's result, from the worker
    finally:
        worker.close()
