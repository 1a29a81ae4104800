"""A run's pictures: each one drawn for the runs it applies to and only those, as real, non-blank PNGs.

Short real runs (plots=false), then draw_run on their folders, as the runner does after a run.
"""

import logging

import numpy as np
import pytest

from gdrun.plots import draw_run
from gdrun.plots.surface import cost_function, problem
from gdrun.rundir.logfile import last_error
from gdrun.rundir.reader import RunFolder, read_columns
from helpers import assert_picture, csv_rows, run_in_process

PICTURES = {"cost", "accuracy", "loss_surface", "fit", "confusion", "images", "metrics"}
# Which pictures each kind of run gets; every other picture must not be drawn.
RUNS = {
    "line": (["data=line", "optim.epochs=5"], {"cost", "loss_surface", "fit"}),
    "slope": (["data=slope_line", "model.bias=false"], {"cost", "loss_surface", "fit"}),
    "logistic": (["data=logistic_1d", "optim.epochs=5"], {"cost", "accuracy", "loss_surface", "fit", "confusion"}),
    "softmax": (["data=softmax_1d", "optim.epochs=5"], {"cost", "accuracy", "fit", "confusion"}),
    "plane2": (["data=plane2", "optim.epochs=3"], {"cost", "fit"}),
    "plane2_held_out": (["data=plane2", "optim.epochs=3", "data.val_split=0.25"], {"cost", "fit", "metrics"}),
    "digits": (
        ["data=digits", "model=logistic", "optim.epochs=1"],
        {"metrics", "cost", "accuracy", "confusion", "images"},
    ),
}


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    """Each kind of run, trained briefly and drawn once: name -> (folder, files written)."""
    root = tmp_path_factory.mktemp("pictures")
    out = {}
    for name, (overrides, _) in RUNS.items():
        folder = root / name
        run_in_process(folder, *overrides)
        out[name] = folder, draw_run(folder)
    return out


@pytest.mark.parametrize("name", RUNS)
def test_each_picture_is_drawn_where_it_applies_and_only_there(drawn, name):
    folder, written = drawn[name]
    expected = RUNS[name][1]
    assert {p.stem for p in written} == expected
    assert {p.stem for p in (folder / "plots").glob("*.png")} == expected
    for path in written:
        assert path.parent == folder / "plots" and path.suffix == ".png"
        assert_picture(path)


def test_loss_surface_is_the_cost_the_run_saw(drawn):
    """The surface at the path's points is the whole-set cost: for batch GD each iteration's cost,
    and for mini-batches the per-epoch cost of epochs.csv (BCE through a sigmoid)."""
    line = RunFolder(drawn["line"][0])
    prob = problem(line)
    cost = cost_function(prob)
    costs = [r["loss"] for r in line.iterations]
    np.testing.assert_allclose(cost(prob.path[:-1, 0], prob.path[:-1, 1]), costs, rtol=1e-5)

    logistic = RunFolder(drawn["logistic"][0])
    prob = problem(logistic)
    ends = {int(r["epoch"]): [r["w"], r["b"]] for r in csv_rows(logistic.path / "params.csv")}  # last row wins
    w, b = np.array([ends[e] for e in sorted(ends)]).T
    np.testing.assert_allclose(cost_function(prob)(w, b), [r["train_loss"] for r in logistic.epochs], rtol=1e-5)


def test_surface_range_sets_the_grid_and_the_default_contains_the_path(drawn):
    from gdrun.plots.surface import ranges

    path = problem(RunFolder(drawn["line"][0])).path
    assert ranges([path], [15, 13]) == [(-15.0, 15.0), (-13.0, 13.0)]
    assert ranges([path], [4]) == [(-4.0, 4.0), (-4.0, 4.0)]
    for (lo, hi), values in zip(ranges([path], None), path.T):
        assert lo < values.min() and values.max() < hi


def test_plots_false_draws_nothing_and_plots_true_draws_after_the_run(tmp_path, caplog):
    run_in_process(tmp_path / "off", "data=line", "optim.epochs=2")
    assert not (tmp_path / "off" / "plots").exists()
    with caplog.at_level(logging.WARNING):
        run_in_process(tmp_path / "on", "data=line", "optim.epochs=2", "plots=true")
    assert {p.name for p in (tmp_path / "on" / "plots").iterdir()} == {"cost.png", "loss_surface.png", "fit.png"}
    assert "could not draw" not in caplog.text


def test_svg_and_pdf_on_request(drawn, tmp_path):
    written = draw_run(drawn["slope"][0], formats=("svg", "pdf"))
    assert {p.suffix for p in written} == {".svg", ".pdf"}
    assert all(p.stat().st_size > 1000 for p in written)


def test_columns_hold_what_the_rows_hold(drawn, tmp_path):
    """RunFolder.columns (numpy arrays, what the pictures read) agree with RunFolder.table's dict rows:
    empty cells (no validation set) as nan, data.csv's split as text; a row still being written is left out."""
    run = RunFolder(drawn["logistic"][0])
    for name in ("iterations.csv", "epochs.csv", "params.csv", "data.csv", "fit.csv"):
        rows, columns = run.table(name), run.columns(name)
        assert list(columns) == list(rows[0]), name
        for key, column in columns.items():
            cells = [row[key] for row in rows]
            if key == "split":
                assert column.tolist() == cells
            else:
                np.testing.assert_array_equal(column, [np.nan if cell is None else cell for cell in cells])
    partial = tmp_path / "iterations.csv"
    partial.write_text("step,epoch,loss,lr\n1,0,0.5,0.1\n2,0,0.4")
    assert read_columns(partial)["step"].tolist() == [1.0]
    partial.write_text("step,epoch,loss,lr\n")
    assert read_columns(partial) is None


def test_log_axes_are_labelled_in_plain_text():
    """Powers of ten with Unicode superscripts, as matplotlib would label them, but without mathtext."""
    from matplotlib.figure import Figure

    from gdrun.plots.style import PowerOfTenLabels

    ax = Figure().add_subplot()
    ax.set_yscale("log")
    ax.set_ylim(0.005, 20)
    labels = PowerOfTenLabels()
    labels.set_axis(ax.yaxis)
    labels.set_locs([0.01, 0.1, 1, 10])
    assert [labels(v) for v in (0.01, 0.1, 1, 10)] == ["10⁻²", "10⁻¹", "10⁰", "10¹"]


def test_drawing_leaves_garbage_collection_on(drawn):
    import gc

    draw_run(drawn["line"][0])
    assert gc.isenabled()


def test_last_error_reads_the_exception_at_the_end_of_a_traceback():
    log = (
        "[2026-01-01 12:00:00,000][gdrun][INFO] - starting\n"
        "[2026-01-01 12:00:01,000][gdrun][ERROR] - the job failed\n"
        "Traceback (most recent call last):\n"
        '  File "x.py", line 1, in <module>\n'
        "    boom()\n"
        "RuntimeError: out of memory\n"
    )
    assert last_error(log) == "RuntimeError: out of memory"
    assert last_error("[t][gdrun][WARNING] - cost went NaN\n") == "cost went NaN"
    assert last_error("[t][gdrun][INFO] - all fine\n") is None
