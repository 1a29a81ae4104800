"""A sweep's pictures drawn by the painter processes are the ones the command would draw; a broken painter's
share is drawn by the command instead."""

import pytest

from gdrun.plots.draw import SWEEP_PICTURES
from gdrun.plots.painters import SHARES, Painters
from gdrun.sweeps import summarize
from helpers import assert_picture, make_sweep


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    return make_sweep(root, [["lab=linreg_bgd", "optim.epochs=3", f"optim.lr={lr}"] for lr in (0.05, 0.1, 0.2)])


def pictures(folder):
    return sorted(p.name for p in folder.glob("*.png"))


def test_the_shares_cover_every_picture_once():
    names = [name for share in SHARES for name in share]
    assert sorted(names) == sorted(SWEEP_PICTURES)


@pytest.mark.slow
def test_painters_draw_what_the_command_draws(sweep, tmp_path):
    here = summarize(sweep, plots=True)
    expected = pictures(sweep)
    assert {"learning_curves.png", "paths.png", "final_metric.png"} <= set(expected)
    for png in sweep.glob("*.png"):
        png.unlink()
    painters = Painters()
    try:
        drawn, left = painters.draw(sweep, ("png",), None, [])
    finally:
        painters.close()
    assert left == set()
    assert pictures(sweep) == expected and sorted(p.name for p in drawn) == expected
    assert sorted(p.name for p in here if p.suffix == ".png") == expected
    for png in sweep.glob("*.png"):
        assert_picture(png)


@pytest.mark.slow
def test_a_broken_painter_leaves_its_share_to_the_command(sweep):
    for png in sweep.glob("*.png"):
        png.unlink()
    painters = Painters()
    painters.pools[1].shutdown(wait=True)  # the surface's painter is gone
    try:
        written = summarize(sweep, plots=True, rebuild=False, painters=painters)
    finally:
        painters.close()
    assert "paths.png" in {p.name for p in written} and (sweep / "paths.png").exists()
    assert (sweep / "learning_curves.png").exists()
