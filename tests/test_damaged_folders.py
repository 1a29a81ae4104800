"""Readers that never crash: a damaged or foreign file makes a damaged run, said in a sentence, never a traceback.

gdrun-runs lists it as `damaged` (and every other run as usual), gdrun.load_run reads what can be read,
gdrun-report says in one line what is wrong and draws the rest, the sweep summary lists the job,
and gdrun-labs never deletes a folder it did not make.
"""

import json
import logging
import os
import shutil

import pytest
import torch
from omegaconf import OmegaConf

import gdrun
from gdrun.commands import labs as labs_command
from gdrun.commands import report as report_command
from gdrun.commands import runs as runs_command
from gdrun.rundir.files import read_csv
from gdrun.rundir.layout import HYDRA, LAB_MARK
from gdrun.rundir.reader import RunFolder, read_columns
from gdrun.rundir.sweep_summary import write_summary
from helpers import compose_config, csv_rows, make_sweep, read_summary, run_in_process

LINE = ("data=line", "optim.epochs=2")


@pytest.fixture(scope="module")
def healthy(tmp_path_factory):
    """One short real run with Hydra's record of it (.hydra/config, overrides and hydra.yaml), to copy and damage."""
    folder = tmp_path_factory.mktemp("healthy") / "run"
    run_in_process(folder, *LINE)
    (folder / HYDRA).mkdir()
    OmegaConf.save(compose_config("plots=false", *LINE), folder / HYDRA / "config.yaml")
    OmegaConf.save(OmegaConf.create(list(LINE)), folder / HYDRA / "overrides.yaml")
    record = {"hydra": {"runtime": {"cwd": str(folder.parent)}}}
    OmegaConf.save(OmegaConf.create(record), folder / HYDRA / "hydra.yaml")
    return folder


def copy(healthy, folder):
    shutil.copytree(healthy, folder)
    return folder


def write(path, text):
    path.write_bytes(text if isinstance(text, bytes) else text.encode())


def cut_summary(folder):
    text = (folder / "summary.json").read_text()
    write(folder / "summary.json", text[: len(text) // 2])


def replace_with_folder(path):
    path.unlink()
    path.mkdir()  # reading it raises IsADirectoryError: an OSError, as a file we may not read


def junk_rows(folder):
    lines = (folder / "epochs.csv").read_text().splitlines(keepends=True)
    lines[2] = lines[2].replace(",", ",x7", 1)  # a number cell turned into junk
    write(folder / "epochs.csv", "".join(lines[:2] + ["\x00\x01 garbage\n"] + lines[2:]))


# How each folder is damaged, and the start of what gdrun-runs says is wrong with it.
DAMAGE = {
    "cut_summary": (cut_summary, "summary.json is cut short"),
    "list_summary": (lambda f: write(f / "summary.json", "[1, 2]"), "summary.json holds a list"),
    "binary_summary": (lambda f: write(f / "summary.json", bytes(range(256))), "summary.json holds bytes"),
    "foreign_summary": (lambda f: write(f / "summary.json", '{"accuracy": 0.9}'), "summary.json has no status"),
    "wrong_value": (
        lambda f: write(f / "summary.json", '{"status": "completed", "best": {"metric": "x", "value": "high"}}'),
        "summary.json has a best.value that is not a number",
    ),
    "unreadable_summary": (lambda f: replace_with_folder(f / "summary.json"), "summary.json cannot be read"),
    "bad_config": (
        lambda f: write(f / HYDRA / "config.yaml", "data: {x: 1\nmodel: ["),
        ".hydra/config.yaml is not valid YAML",
    ),
    "list_config": (lambda f: write(f / HYDRA / "config.yaml", "- a\n- b\n"), ".hydra/config.yaml holds a list"),
    "bad_overrides": (
        lambda f: write(f / HYDRA / "overrides.yaml", "- a=1\n  b: ["),
        ".hydra/overrides.yaml is not valid YAML",
    ),
    "bad_hydra": (lambda f: write(f / HYDRA / "hydra.yaml", b"\x00\x01junk"), ".hydra/hydra.yaml is not valid YAML"),
    "junk_table": (
        lambda f: write(f / "iterations.csv", bytes(range(1, 200))),
        "iterations.csv does not begin with a line of column names",
    ),
}


@pytest.fixture(scope="module")
def outputs(healthy, tmp_path_factory):
    """An outputs folder: two healthy runs, one killed mid-row, one with junk rows, and one of each DAMAGE."""
    root = tmp_path_factory.mktemp("outputs")
    copy(healthy, root / "ok")
    copy(healthy, root / "sweep" / "0")
    killed = copy(healthy, root / "killed")
    write(killed / "iterations.csv", (killed / "iterations.csv").read_text() + "3,1,0.12")  # no newline: cut
    junk_rows(copy(healthy, root / "junk_rows"))
    for name, (damage, _) in DAMAGE.items():
        damage(copy(healthy, root / name))
    return root


def listing(capsys, *args):
    """gdrun-runs in this process: {folder: (its status, its line)}."""
    runs_command.main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    header, *lines = out.splitlines()
    assert header.split()[:4] == ["TIME", "STATUS", "BEST", "FOLDER"]
    found = {}
    for line in lines:  # TIME (two words), STATUS, BEST (`-` or two words), FOLDER, OVERRIDES and why
        words = line.split()
        found[next(w for w in words[3:] if w in FOLDERS)] = (words[2], line)
    return found


FOLDERS = {"ok", "killed", "junk_rows", "sweep/0", *DAMAGE}


def test_gdrun_runs_lists_every_run_and_each_damaged_one_with_why(outputs, capsys):
    found = listing(capsys, outputs)
    assert set(found) == FOLDERS
    for name in ("ok", "killed", "junk_rows", "sweep/0"):  # a row cut by a kill is no damage
        assert found[name][0] == "completed", found[name]
    for name, (_, why) in DAMAGE.items():
        status, line = found[name]
        assert status == "damaged" and why in line, line
    assert "data=line optim.epochs=2 — summary.json holds a list" in found["list_summary"][1]

    only = listing(capsys, outputs, "--status", "damaged")
    assert set(only) == set(found) - {"ok", "killed", "junk_rows", "sweep/0"}


def test_gdrun_runs_check_reads_the_rows_too(outputs, capsys):
    status, line = listing(capsys, outputs, "--check")["junk_rows"]
    assert status == "damaged"
    assert "epochs.csv has a line without 13 cells, left out (line 3)" in line
    assert "epochs.csv has a cell in train_loss that is not a number, read as empty ('x72.04" in line
    assert listing(capsys, outputs, "--check")["killed"][0] == "completed"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_gdrun_runs_lists_a_run_whose_summary_it_may_not_read(healthy, tmp_path, capsys):
    folder = copy(healthy, tmp_path / "locked")
    (folder / "summary.json").chmod(0)
    try:
        status, line = listing(capsys, tmp_path)["locked"]
    finally:
        (folder / "summary.json").chmod(0o644)
    assert status == "damaged" and "summary.json cannot be read (Permission denied)" in line


def test_load_run_reads_what_it_can_and_says_what_is_wrong(healthy, tmp_path):
    folder = copy(healthy, tmp_path / "run")
    rows = (folder / "iterations.csv").read_text()
    write(folder / "iterations.csv", rows + "3,1,0.5\n4,1,abc,0.1\n5,1")  # a junk cell, then a row cut by a kill
    junk_rows(folder)
    cut_summary(folder)
    run = gdrun.load_run(folder)
    assert [row["step"] for row in run.iterations] == [1.0, 2.0, 4.0]  # the short row 3 and the cut row 5 left out
    assert run.iterations[-1]["loss"] is None and run.iterations[-1]["lr"] == 0.1
    assert [row["epoch"] for row in run.epochs] == [0.0, 1.0, 2.0] and run.epochs[1]["train_loss"] is None
    assert run.summary is None and run.status == "damaged" and run.error.startswith("summary.json is cut short")
    assert run.config.optim.epochs == 2  # the files that are whole still read
    assert any("iterations.csv has a line without 4 cells" in p for p in run.problems)


@pytest.mark.parametrize(
    "checkpoint, why",
    [
        (b"PK\x03\x04 not a zip", "is not a checkpoint torch can read safely"),
        ({"weights": torch.zeros(2)}, "is not a gdrun checkpoint (it holds no config)"),
    ],
)
def test_a_foreign_checkpoint_is_no_config(healthy, tmp_path, checkpoint, why):
    """A run without Hydra's record takes its config from checkpoints/last.pt: a foreign one gives none."""
    folder = copy(healthy, tmp_path / "run")
    shutil.rmtree(folder / HYDRA)
    last = folder / "checkpoints" / "last.pt"
    if isinstance(checkpoint, bytes):
        write(last, checkpoint)
    else:
        torch.save(checkpoint, last)
    run = gdrun.load_run(folder)
    assert run.config is None and len(run.problems) == 1 and run.problems[0].startswith(f"checkpoints/last.pt {why}")
    assert run.summary["status"] == "completed" and len(run.iterations) == 2
    assert RunFolder(folder).check() == run.problems


def test_tables_drop_cut_rows_quietly_and_say_what_junk_they_met(tmp_path):
    path = tmp_path / "params.csv"
    write(path, "step,w\n0,1.5\n1,2.5\n2,2.")  # killed in the middle of "2.75"
    problems = []
    assert read_csv(path, problems) == [{"step": 0.0, "w": 1.5}, {"step": 1.0, "w": 2.5}] and problems == []
    assert read_columns(path, problems)["w"].tolist() == [1.5, 2.5] and problems == []

    write(path, "split,x1\ntrain,1\nval,oops\ntrain\n")  # a text column stays text; junk in a number column
    rows = read_csv(path, problems)
    assert [r["split"] for r in rows] == ["train", "val"] and [r["x1"] for r in rows] == [1.0, None]
    columns = read_columns(path, problems)
    assert columns["split"].tolist() == ["train", "val"] and columns["x1"][0] == 1.0 and columns["x1"][1] != 1.0
    assert (
        problems
        == [
            "params.csv has a line without 2 cells, left out (line 4)",
            "params.csv has a cell in x1 that is not a number, read as empty ('oops')",
        ]
        * 2
    )

    write(path, b"\x89PNG\r\n\x1a\n\x00junk")
    assert read_csv(path) == [] and read_columns(path) is None


@pytest.fixture
def live_log_handlers(monkeypatch):
    """The root logger without handlers earlier tests left on streams now closed (a command's console
    handler on a test's captured stderr), which would print a `--- Logging error ---` traceback."""
    root = logging.getLogger()
    live = [h for h in root.handlers if not getattr(getattr(h, "stream", None), "closed", False)]
    monkeypatch.setattr(root, "handlers", live)


@pytest.mark.usefixtures("live_log_handlers")
def test_report_says_what_is_wrong_in_one_line_per_folder_and_draws_the_rest(healthy, tmp_path, caplog, capsys):
    ok = copy(healthy, tmp_path / "ok")
    rows = copy(healthy, tmp_path / "junk_rows")
    junk_rows(rows)
    summary = copy(healthy, tmp_path / "cut_summary")
    cut_summary(summary)
    config = copy(healthy, tmp_path / "bad_config")
    write(config / HYDRA / "config.yaml", "data: [")
    classifier = tmp_path / "classifier"  # its model.pt is not a torch file (confusion.png reads classes.csv)
    run_in_process(classifier, "data=logistic_1d", "optim.epochs=2")
    write(classifier / "model.pt", b"not a torch file")

    foreign = copy(healthy, tmp_path / "foreign")  # its config names code gdrun does not run from a folder
    cfg = OmegaConf.load(foreign / HYDRA / "config.yaml")
    cfg.model._target_ = "os.system"
    OmegaConf.save(cfg, foreign / HYDRA / "config.yaml")

    caplog.set_level(logging.WARNING, logger="gdrun.report")
    folders = [ok, rows, summary, config, classifier, foreign]
    assert report_command.main([str(f) for f in folders]) == 1
    out, err = capsys.readouterr()
    messages = [record.getMessage() for record in caplog.records]
    assert "Traceback" not in out + err + caplog.text
    assert len(messages) == 5 and all("\n" not in message for message in messages)  # one line per folder
    said = {f.name: m for m in messages for f in folders if m.startswith(f"the run {f}: ")}
    assert messages[-1].startswith(f"could not draw the run {foreign}: model._target_=os.system in ")
    assert said["junk_rows"].endswith(
        "epochs.csv has a line without 13 cells, left out (line 3); epochs.csv has a "
        "cell in train_loss that is not a number, read as empty ('x72.04123854637146')"
    )
    drew = "drew cost.png, loss_surface.png, fit.png; pictures may be missing or incomplete: "
    assert said["cut_summary"].startswith(f"the run {summary}: {drew}summary.json is cut short (")
    assert ".hydra/config.yaml is not valid YAML (while parsing a flow node)" in said["bad_config"]
    assert "loss_surface.png" not in said["bad_config"]  # it needs the config
    assert "model.pt is not a file torch.save wrote" in said["classifier"]
    assert "confusion.png" in said["classifier"]  # drawn from classes.csv: no need of the damaged model.pt
    assert f"the run {ok}: cost.png" in out
    assert (ok / "plots" / "cost.png").is_file() and (rows / "plots" / "cost.png").is_file()


def test_sweep_summary_lists_a_damaged_job(tmp_path):
    sweep = make_sweep(tmp_path, [[*LINE, f"optim.lr={lr}"] for lr in (0.1, 0.01, 0.2)])
    cut_summary(sweep / "1")
    write(sweep / "2" / HYDRA / "overrides.yaml", "- [")
    rows = write_summary(sweep)
    assert [row["status"] for row in rows] == ["completed", "damaged", "damaged"]
    assert rows[1]["error"].startswith("summary.json is cut short") and rows[1]["optim.lr"] == 0.01
    assert rows[2]["error"].startswith(".hydra/overrides.yaml is not valid YAML") and rows[2]["overrides"] == ""
    assert [row["status"] for row in read_summary(sweep)] == ["completed", "damaged", "damaged"]


def test_gdrun_labs_refuses_an_out_that_is_a_file(tmp_path, capsys):
    out = tmp_path / "labs"
    out.write_text("mine")
    assert labs_command.main(["slope", "--out", str(out), "--jobs", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--out {out} is a file" in err
    assert out.read_text() == "mine"


def test_gdrun_labs_never_deletes_a_folder_it_did_not_make(tmp_path, capsys):
    out = tmp_path / "labs"
    mine = out / "slope"
    run_in_process(mine, *LINE)  # the user's own run, where gdrun-labs would put lab slope
    before = {p.relative_to(mine): p.read_bytes() for p in mine.rglob("*") if p.is_file()}
    assert labs_command.main(["slope", "--out", str(out), "--jobs", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{mine} is a folder gdrun-labs did not make" in err and "another --out" in err
    assert {p.relative_to(mine): p.read_bytes() for p in mine.rglob("*") if p.is_file()} == before
    assert not (out / "labs.csv").exists()  # refused before anything ran


def test_gdrun_labs_replaces_its_own_lab_folder(tmp_path, capsys):
    out = tmp_path / "labs"
    assert labs_command.main(["slope", "--out", str(out), "--jobs", "1"]) == 0
    assert (out / "slope" / LAB_MARK).is_file()
    (out / "slope" / "stale.txt").write_text("from the first run")
    assert labs_command.main(["slope", "--out", str(out), "--jobs", "1"]) == 0
    assert (out / "slope" / LAB_MARK).is_file() and not (out / "slope" / "stale.txt").exists()
    assert len(csv_rows(out / "slope" / "iterations.csv")) == 4  # replaced, not appended to
    assert json.loads((out / "slope" / "summary.json").read_text())["status"] == "completed"
    capsys.readouterr()
