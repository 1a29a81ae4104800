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
