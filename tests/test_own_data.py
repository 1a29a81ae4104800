"""Your own data and models: CSV, NumPy and image-folder datasets, custom builders, config folders.

The data is real and written by the tests: scikit-learn's wine table as CSV, its digits as PNG
files in class folders. The README's commands of "Your own data and models" run as written,
in a copy of examples/.
"""

import json
import os
import re
import runpy
import shlex
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

import gdrun
from gdrun.commands.gdrun import help_text
from gdrun.errors import GdrunError
from gdrun.plots.predictions import predictions
from gdrun.rundir.reader import RunFolder
from gdrun.training.build import build_data, build_loss, build_model, check_compatible, model_args
from gdrun.training.datasets import cache
from helpers import REPO, assert_picture, compose_config, gdrun_cli, read_summary

CPU = torch.device("cpu")
WINE_FEATURES = ["alcohol", "malic_acid", "ash", "magnesium", "flavanoids", "color_intensity", "proline"]


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def own_cache(cache_root, monkeypatch):
    """gdrun's cache in a folder of the tests'; GDRUN_TRUST as it was, whatever a run adds to it."""
    monkeypatch.setenv("GDRUN_CACHE", str(cache_root))
    monkeypatch.setenv("GDRUN_TRUST", "")


@pytest.fixture(scope="module")
def wine_csv(tmp_path_factory) -> Path:
    """scikit-learn's wine table with named cultivars, a whole-number column and a decimal target."""
    from sklearn.datasets import load_wine

    bunch = load_wine()
    folder = tmp_path_factory.mktemp("wine")
    path = folder / "wine.csv"
    columns = [bunch.feature_names.index(name) for name in WINE_FEATURES]
    lines = [",".join([*WINE_FEATURES, "label", "cultivar"])]
    for row, label in zip(bunch.data, bunch.target):
        lines.append(",".join([*(f"{row[c]:g}" for c in columns), str(label), f"cultivar_{'abc'[label]}"]))
    path.write_text("\n".join(lines) + "\n")
    return path


def write_digits(folder: Path, count: int = 300, split: bool = False) -> Path:
    """scikit-learn's 8x8 digits as PNG files, one folder per digit (train/ and val/ when `split`)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    for i, (pixels, label) in enumerate(zip(bunch.images[:count], bunch.target[:count])):
        part = ("val" if i % 4 == 0 else "train") if split else ""
        out = folder / part / str(label)
        out.mkdir(parents=True, exist_ok=True)
        Image.fromarray((pixels * 255 / 16).astype(np.uint8)).save(out / f"{i:04d}.png")
    return folder


@pytest.fixture(scope="module")
def digits_folder(tmp_path_factory) -> Path:
    return write_digits(tmp_path_factory.mktemp("digits") / "digits")


def built(*overrides):
    cfg = compose_config(*overrides)
    return cfg, build_data(cfg.data, cfg.seed, CPU)


def refused(gdrun_main, *args):
    """Run gdrun in-process; assert it refused with exit 2 and a sentence or two, no traceback; return that."""
    code, out, err = gdrun_main(*args)
    message = err.strip()
    assert code == 2, out + err
    assert message.startswith("gdrun: error:") and "Traceback" not in out + err, message
    assert len(message.splitlines()) <= 2, message
    return message


# ---------------------------------------------------------------- data=csv
def test_csv_task_and_class_names_follow_the_target(wine_csv):
    cfg, data = built("data=csv", f"data.path={wine_csv}", "data.target=cultivar")
    assert data.task == "multiclass" and data.classes == ["cultivar_a", "cultivar_b", "cultivar_c"]
    assert data.x.shape == (142, len(WINE_FEATURES) + 1) and data.y.dtype == torch.long and len(data.val) == 36
    assert cfg.loss.name == "auto" and data.meta["features"] == [*WINE_FEATURES, "label"]
    assert "label" in data.meta["features"]  # every other column, the whole-number one included

    _, labels = built("data=csv", f"data.path={wine_csv}", "data.target=label", f"data.features={WINE_FEATURES}")
    assert labels.task == "multiclass" and labels.classes == ["0", "1", "2"]

    _, amounts = built("data=csv", f"data.path={wine_csv}", "data.target=alcohol", "data.features=[flavanoids]")
    assert amounts.task == "regression" and amounts.y.shape == (142, 1) and amounts.input_shape == (1,)

    _, two = built("data=csv", f"data.path={wine_csv}", "data.target=label", "data.features=[proline]")
    _, forced = built(
        "data=csv", f"data.path={wine_csv}", "data.target=label", "data.features=[proline]", "data.task=regression"
    )
    assert two.task == "multiclass" and forced.task == "regression" and forced.y.dtype == torch.float32


def test_the_loss_follows_the_inferred_task(wine_csv, tmp_path):
    for target, task, loss in (("cultivar", "multiclass", "cross_entropy"), ("alcohol", "regression", "mse_loss")):
        cfg, data = built("data=csv", f"data.path={wine_csv}", f"data.target={target}", "data.features=[proline]")
        assert data.task == task
        check_compatible(data, cfg.data.name, cfg.model, cfg.loss)
        model = build_model(cfg.model, model_args(data, cfg.loss.output))
        out = model(data.x)
        expected = getattr(torch.nn.functional, loss)(out, data.y)
        torch.testing.assert_close(build_loss(cfg.loss)(out, data.y), expected)
    binary = tmp_path / "binary.csv"
    binary.write_text("x,spam\n" + "".join(f"{i},{'yes' if i % 3 else 'no'}\n" for i in range(30)))
    cfg, data = built("data=csv", f"data.path={binary}", "data.task=binary")
    assert data.task == "binary" and data.classes == ["no", "yes"] and data.y.shape == (24, 1)
    out = torch.zeros(len(data), 1)
    torch.testing.assert_close(
        build_loss(cfg.loss)(out, data.y), torch.nn.functional.binary_cross_entropy_with_logits(out, data.y)
    )


def test_a_csv_run_standardizes_records_and_reads_back(gdrun_main, wine_csv, tmp_path):
    folder = tmp_path / "run"
    args = ["data=csv", f"data.path={wine_csv}", "data.target=cultivar", f"data.features={WINE_FEATURES}"]
    code, out, err = gdrun_main(*args, "data.standardize=true", "optim.epochs=5", f"hydra.run.dir={folder}")
    assert code == 0, err
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["best"]["value"] > 0.8
    scaling = summary["model_args"]["input_scaling"]
    assert scaling["features"] == WINE_FEATURES

    # The recorded numbers are the training rows' (val_split's rows left out), with the population std.
    _, raw = built(*args)
    torch.testing.assert_close(torch.tensor(scaling["mean"]), raw.x.double().mean(0).float())
    torch.testing.assert_close(torch.tensor(scaling["std"]), raw.x.double().std(0, unbiased=False).float())

    run = gdrun.load_run(folder)
    evaluated = run.evaluate()
    assert evaluated["val_accuracy"] == pytest.approx(summary["final"]["val_accuracy"])
    assert evaluated["val_loss"] == pytest.approx(summary["final"]["val_loss"], rel=1e-5)
    assert gdrun_main(f"eval={folder}")[0] == 0

    # New rows scaled by the recorded numbers give the run's own predictions.
    raw_val = raw.val.x
    scaled = (raw_val - torch.tensor(scaling["mean"])) / torch.tensor(scaling["std"])
    pred = predictions(RunFolder(folder))
    assert pred is not None and pred.classes == ["cultivar_a", "cultivar_b", "cultivar_c"]
    assert (run.model(scaled).argmax(1).numpy() == pred.predicted).all()
    for name in ("confusion", "accuracy", "cost"):
        assert_picture(folder / "plots" / f"{name}.png")


def test_recorded_scaling_is_used_and_a_difference_said(wine_csv, caplog):
    cfg = compose_config("data=csv", f"data.path={wine_csv}", "data.target=cultivar", "data.standardize=true")
    data = build_data(cfg.data, cfg.seed, CPU)
    recorded = dict(data.meta["input_scaling"])
    again = build_data(cfg.data, cfg.seed, CPU, scaling=recorded)
    torch.testing.assert_close(again.x, data.x)
    assert "differ" not in caplog.text
    shifted = {**recorded, "mean": [m + 1.0 for m in recorded["mean"]]}
    moved = build_data(cfg.data, cfg.seed, CPU, scaling=shifted)
    assert "differ from the ones the run recorded" in caplog.text
    torch.testing.assert_close(moved.x, data.x - 1.0 / torch.tensor(recorded["std"], dtype=torch.float32))


def test_one_feature_regression_draws_fit_and_loss_surface(gdrun_main, wine_csv, tmp_path):
    folder = tmp_path / "run"
    code, _, err = gdrun_main(
        "data=csv", f"data.path={wine_csv}", "data.target=flavanoids", "data.features=[alcohol]",
        "data.standardize=true", "optim.epochs=5", f"hydra.run.dir={folder}",
    )  # fmt: skip
    assert code == 0, err
    for name in ("fit", "loss_surface", "cost"):
        assert_picture(folder / "plots" / f"{name}.png")


def test_resume_of_a_csv_run_ends_as_one_run(wine_csv, tmp_path):
    args = ["data=csv", f"data.path={wine_csv}", "data.target=cultivar", "data.standardize=true", "plots=false"]
    whole = gdrun.run([*args, "optim.epochs=4", f"hydra.run.dir={tmp_path / 'whole'}"])
    gdrun.run([*args, "optim.epochs=2", f"hydra.run.dir={tmp_path / 'half'}"])
    from gdrun.jobs import resume_job

    resumed = resume_job(tmp_path / "half", ["optim.epochs=4"])
    assert resumed["final"]["train_loss"] == whole["final"]["train_loss"]


def test_bad_cells_are_named_and_can_be_dropped(gdrun_main, wine_csv, tmp_path):
    lines = wine_csv.read_text().splitlines()
    holes = tmp_path / "holes.csv"
    lines[5] = ",".join(["" if i == 1 else cell for i, cell in enumerate(lines[5].split(","))])
    lines[9] = lines[9].replace(lines[9].split(",")[0], "NaN", 1)
    holes.write_text("\n".join(lines) + "\n")
    message = refused(gdrun_main, "data=csv", f"data.path={holes}", f"hydra.run.dir={tmp_path / 'a'}")
    assert "in 2 of its 178 rows" in message and "line 6, column malic_acid" in message
    assert "data.drop_missing=true" in message
    cfg, data = built("data=csv", f"data.path={holes}", "data.target=cultivar", "data.drop_missing=true")
    assert len(data) + len(data.val) == 176


@pytest.mark.parametrize(
    "make, overrides, words",
    [
        (None, ["data.path=nowhere.csv"], ["data.path=nowhere.csv", "does not exist"]),
        ("wine", ["data.target=colour"], ["data.target=colour is not a column", "its columns are: alcohol"]),
        ("text", [], ["column name", "line 2 holds 'Al'", "data.features=[height]"]),
        ("comma", [], ["line 2 holds '1,5'", "decimal comma"]),
        ("one_class", ["data.target=kind"], ["single class (a)", "at least two"]),
        ("no_header", [], ["no header row", "its first line holds numbers"]),
        ("empty", [], ["is empty", "header row"]),
        ("short_row", [], ["line 3: 1 cells", "names 2 columns"]),
        ("texts", [], ["40 different texts", "data.task=multiclass"]),
        ("inf", [], ["line 2 holds 'inf'", "not a finite number"]),
    ],
)
def test_bad_csv_files_are_refused_in_a_sentence(gdrun_main, wine_csv, tmp_path, make, overrides, words):
    files = {
        "wine": wine_csv.read_text(),
        "text": "name,height,weight\nAl,1.8,80\nBob,1.6,60\n",
        "comma": "x;y\n1,5;2\n2,5;3\n",
        "one_class": "x,kind\n1,a\n2,a\n3,a\n",
        "no_header": "1.0,2.0\n3.0,4.0\n",
        "empty": "",
        "short_row": "x,y\n1,2\n3\n",
        "texts": "x,name\n" + "".join(f"{i},n{i}\n" for i in range(40)),
        "inf": "x,y\ninf,1\n2,3\n",
    }
    path = tmp_path / "table.csv"
    if make is not None:
        path.write_text(files[make])
    message = refused(gdrun_main, "data=csv", f"data.path={path}", *overrides, f"hydra.run.dir={tmp_path / 'run'}")
    for word in words:
        assert word in message, message


# ---------------------------------------------------------------- data=npz
def test_npz_arrays_with_a_validation_pair_of_their_own(tmp_path):
    from sklearn.datasets import load_iris

    bunch = load_iris()
    path = tmp_path / "iris.npz"
    names = np.array(bunch.target_names)[bunch.target]
    np.savez(path, inputs=bunch.data[::2], labels=names[::2], vx=bunch.data[1::2], vy=names[1::2])
    cfg, data = built(
        "data=npz", f"data.path={path}", "data.x=inputs", "data.y=labels", "data.x_val=vx", "data.y_val=vy"
    )
    assert cfg.data.val_split == 0.2  # not used: the file has its own validation arrays
    assert len(data) == 75 and len(data.val) == 75 and data.classes == ["setosa", "versicolor", "virginica"]
    with pytest.raises(GdrunError, match="data.x=x: .* has no array of that name; its arrays are: inputs"):
        built("data=npz", f"data.path={path}")
    regression = tmp_path / "line.npz"
    np.savez(regression, x=np.linspace(0, 1, 50), y=np.linspace(0, 2, 50))
    _, line = built("data=npz", f"data.path={regression}")
    assert line.task == "regression" and line.input_shape == (1,) and len(line) == 40


# ---------------------------------------------------------------- data=image_folder
def test_image_folder_run_names_its_classes_in_the_pictures(gdrun_main, digits_folder, tmp_path):
    folder = tmp_path / "run"
    code, _, err = gdrun_main(
        "data=image_folder", f"data.path={digits_folder}", "model=cnn", "model.channels=[8]", "optim=adam",
        "optim.lr=0.01", "optim.epochs=3", f"hydra.run.dir={folder}",
    )  # fmt: skip
    assert code == 0, err
    pred = predictions(RunFolder(folder))
    assert pred is not None and pred.classes == [str(d) for d in range(10)] and pred.x.shape[1:] == (1, 8, 8)
    assert pred.accuracy > 0.5
    for name in ("images", "confusion"):
        assert_picture(folder / "plots" / f"{name}.png")


def test_train_and_val_folders_resizing_and_colour(tmp_path):
    split = write_digits(tmp_path / "split", count=120, split=True)
    _, data = built("data=image_folder", f"data.path={split}")
    assert (len(data), len(data.val)) == (90, 30) and data.meta["own_split"]
    _, grey = built("data=image_folder", f"data.path={split}", "data.size=[16,12]", "data.grayscale=false")
    assert grey.input_shape == (3, 16, 12) and len(grey.val) == 30
    torch.testing.assert_close(grey.x[:, 0], grey.x[:, 2])  # gray pictures in three equal channels


def test_the_cache_is_rebuilt_when_a_source_changes(tmp_path):
    source = tmp_path / "table.csv"
    source.write_text("x,y\n1,2\n")
    calls = []

    def build():
        calls.append(1)
        return {"x": torch.tensor([len(calls)])}

    assert cache.cached("test", [source], {"size": 1}, build)["x"].item() == 1
    assert cache.cached("test", [source], {"size": 1}, build)["x"].item() == 1 and len(calls) == 1
    assert cache.cached("test", [source], {"size": 2}, build)["x"].item() == 2  # other settings: own entry
    time.sleep(0.01)
    source.write_text("x,y\n1,2\n3,4\n")
    assert cache.cached("test", [source], {"size": 1}, build)["x"].item() == 3
    entries = sorted(p.name for p in (cache.cache_dir() / "test").glob("*.pt"))
    assert len(entries) == 2  # the entry of the old file is gone, the other setting's stays


def test_a_changed_image_folder_is_decoded_again(tmp_path):
    folder = write_digits(tmp_path / "digits", count=40)
    _, before = built("data=image_folder", f"data.path={folder}", "data.val_split=0")
    image = next((folder / "3").glob("*.png"))
    Image.fromarray(np.full((8, 8), 255, dtype=np.uint8)).save(image)
    os.utime(image, ns=(time.time_ns(), time.time_ns() + 10**9))
    _, after = built("data=image_folder", f"data.path={folder}", "data.val_split=0")
    assert not torch.equal(before.x, after.x) and after.x.max() == 1.0


@pytest.mark.parametrize("case", ["empty", "no_classes", "one_class", "mixed_sizes", "broken"])
def test_bad_image_folders_are_refused_in_a_sentence(gdrun_main, tmp_path, case):
    folder = tmp_path / "pictures"
    folder.mkdir()
    pixel = Image.fromarray(np.zeros((8, 8), dtype=np.uint8))
    if case == "no_classes":
        pixel.save(folder / "loose.png")
    if case in ("one_class", "mixed_sizes", "broken"):
        (folder / "cat").mkdir()
        pixel.save(folder / "cat" / "1.png")
    if case in ("mixed_sizes", "broken"):
        (folder / "dog").mkdir()
        Image.fromarray(np.zeros((10, 12), dtype=np.uint8)).save(folder / "dog" / "2.png")
    if case == "broken":
        (folder / "dog" / "3.png").write_bytes(b"not a picture")
        pixel.save(folder / "dog" / "2.png")
    words = {
        "empty": ["holds no class folders", "sub-folder named after it"],
        "no_classes": ["holds no class folders"],
        "one_class": ["one class folder (cat)", "at least two"],
        "mixed_sizes": ["differ in size", "is 8x8", "is 10x12", "data.size=[8,8]"],
        "broken": ["3.png is not an image"],
    }[case]
    message = refused(gdrun_main, "data=image_folder", f"data.path={folder}", f"hydra.run.dir={tmp_path / 'run'}")
    for word in words:
        assert word in message, message


# ---------------------------------------------------------------- your own model and dataset
NETS = """
import math
from torch import nn
from gdrun.training.models import OUTPUTS


class Net(nn.Module):
    def __init__(self, input_shape, num_outputs, output, width=8):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Flatten(), nn.Linear(math.prod(input_shape), width), nn.Tanh(), nn.Linear(width, num_outputs),
            OUTPUTS[output](),
        )

    def forward(self, x):
        return self.layers(x)


def table(n=60, seed=0):
    import numpy as np
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    return x, np.where(x[:, 0] + x[:, 1] > 0, "up", "down")
"""


@pytest.fixture
def own_module(tmp_path, monkeypatch):
    package = tmp_path / "code"
    package.mkdir()
    (package / "ownnets.py").write_text(NETS)
    monkeypatch.syspath_prepend(str(package))
    yield "ownnets"
    sys.modules.pop("ownnets", None)


def test_a_model_class_of_your_own_with_its_own_keys(gdrun_main, own_module, wine_csv, tmp_path):
    folder = tmp_path / "run"
    code, _, err = gdrun_main(
        "data=csv", f"data.path={wine_csv}", "data.target=cultivar", "data.standardize=true",
        "model=custom", f"model._target_={own_module}.Net", "+model.width=4", "optim.epochs=3",
        f"hydra.run.dir={folder}",
    )  # fmt: skip
    assert code == 0, err
    cfg = OmegaConf.load(folder / ".hydra" / "config.yaml")  # as written: reading it back needs trust=
    assert set(cfg.model) == {"_target_", "name", "tasks", "init", "width"}  # no key of model=linear's
    assert cfg.model.name == f"{own_module}.Net"
    assert_picture(folder / "plots" / "confusion.png")  # the run's own pictures rebuild its model
    assert sum(p.numel() for p in gdrun.load_run(folder, trust=[own_module]).model.parameters()) == 8 * 4 + 4 + 5 * 3
    os.environ["GDRUN_TRUST"] = ""
    message = refused(gdrun_main, f"eval={folder}")
    assert f"trust={own_module}" in message
    assert gdrun_main(f"eval={folder}", f"trust={own_module}")[0] == 0


def test_init_works_for_a_model_of_your_own(own_module, wine_csv):
    cfg = compose_config(
        "data=csv", f"data.path={wine_csv}", "model=custom", f"model._target_={own_module}.Net", "+model.width=1"
    )
    cfg.model.init = {"layers.1.bias": [0.5]}  # a parameter name with dots: no command-line dict key
    data = build_data(cfg.data, cfg.seed, CPU)
    model = build_model(cfg.model, model_args(data, cfg.loss.output))
    assert model.layers[1].bias.item() == 0.5


def test_a_target_without_model_custom_or_gdrun_arguments_is_explained(gdrun_main, own_module, tmp_path):
    message = refused(gdrun_main, f"model._target_={own_module}.Net", f"hydra.run.dir={tmp_path / 'a'}")
    assert "does not take bias" in message and "model=custom" in message
    message = refused(gdrun_main, "model=custom", "model._target_=torch.nn.Linear", f"hydra.run.dir={tmp_path / 'b'}")
    assert "does not take input_shape" in message and "num_outputs" in message
    message = refused(gdrun_main, "model=custom", "model._target_=nowhere.Net", f"hydra.run.dir={tmp_path / 'c'}")
    assert "could not be imported" in message and "PYTHONPATH" in message


def test_a_dataset_function_of_your_own(gdrun_main, own_module, tmp_path):
    cfg, data = built("data=custom", f"data._target_={own_module}.table", "+data.n=100")
    assert data.task == "multiclass" and data.classes == ["down", "up"] and len(data) == 80
    _, wine = built("data=custom", "data._target_=sklearn.datasets.load_wine", "+data.standardize=true")
    assert wine.classes == ["class_0", "class_1", "class_2"] and "input_scaling" in wine.meta
    assert wine.meta["input_scaling"]["features"][0] == "alcohol"
    code, _, err = gdrun_main(
        "data=custom", f"data._target_={own_module}.table", "optim.epochs=2", f"hydra.run.dir={tmp_path / 'r'}"
    )
    assert code == 0, err


# ---------------------------------------------------------------- your own config folder
def test_a_config_folder_of_your_own_lists_composes_and_runs(gdrun_main, own_module, tmp_path):
    conf = tmp_path / "conf"
    (conf / "data").mkdir(parents=True)
    (conf / "model").mkdir()
    (conf / "data" / "updown.yaml").write_text(f"_target_: {own_module}.table\nn: 80\n")  # no name, no tasks
    (conf / "model" / "tiny.yaml").write_text(f"_target_: {own_module}.Net\nwidth: 3\n")
    for args in (["--config-dir", str(conf)], [f"--config-dir={conf}"], [f"hydra.searchpath=[file://{conf}]"]):
        text = help_text(args)
        assert f"From {conf}:" in text and re.search(r"data +updown", text) and re.search(r"model +tiny", text)
    assert "updown" not in help_text([])
    folder = tmp_path / "run"
    code, _, err = gdrun_main(
        "--config-dir", str(conf), "data=updown", "model=tiny", "loss=auto", "optim.epochs=2", f"hydra.run.dir={folder}"
    )
    assert code == 0, err
    cfg = OmegaConf.load(folder / ".hydra" / "config.yaml")  # as written: reading it back needs trust=
    assert cfg.data.name == f"{own_module}.table" and cfg.model.width == 3 and cfg.data.val_split == 0.0


def test_a_two_job_sweep_over_your_data(gdrun_main, wine_csv, tmp_path):
    code, _, err = gdrun_main(
        "-m", "hydra/launcher=basic", "data=csv", f"data.path={wine_csv}", "data.target=cultivar",
        "data.standardize=true", "optim.epochs=2", "optim.lr=0.01,0.1", "plots=false", f"hydra.sweep.dir={tmp_path}",
    )  # fmt: skip
    assert code == 0, err
    rows = read_summary(tmp_path)
    assert [r["status"] for r in rows] == ["completed", "completed"]
    assert [r["optim.lr"] for r in rows] == ["0.01", "0.1"]


def test_every_new_option_builds_without_a_path(cache_root):
    """data=csv, npz and image_folder alone read samples gdrun writes into its cache."""
    for name, classes in (("csv", 3), ("npz", 3), ("image_folder", 10), ("custom", 3)):
        _, data = built(f"data={name}")
        assert data.task == "multiclass" and len(data.classes) == classes
    assert (cache_root / "samples" / "iris.csv").is_file()


# ---------------------------------------------------------------- the README's commands, as written
def readme_commands():
    """The command block of the README's "Your own data and models", one command a line."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Your own data and models", 1)[1].split("\n## ", 1)[0]
    block = section.split("```\n", 2)[1]
    return [line for line in block.splitlines() if line.strip()]


def test_the_readme_commands_run_as_written(gdrun_main, tmp_path, monkeypatch):
    commands = readme_commands()
    assert commands[0] == "cd examples" and len(commands) >= 8
    copy = shutil.copytree(REPO / "examples", tmp_path / "examples")
    monkeypatch.chdir(copy)
    for line in commands[1:]:
        words = shlex.split(line)
        if words[0] == "PYTHONPATH=.":
            monkeypatch.syspath_prepend(str(copy))
            words = words[1:]
        if words[0] == "python":
            monkeypatch.setattr(sys, "argv", words[1:])
            runpy.run_path(words[1], run_name="__main__")
            continue
        assert words[0] == "gdrun", line
        code, out, err = gdrun_main(*words[1:])
        assert code == 0, f"{line}\n{out}\n{err}"
    for module in ("mynets", "mydata"):
        sys.modules.pop(module, None)
    runs = sorted((copy / "outputs").glob("*/*/summary.json"))
    assert len(runs) == 6 and all(json.loads(p.read_text())["status"] == "completed" for p in runs)
    images = next(p.parent for p in runs if (p.parent / "plots" / "images.png").exists())
    assert_picture(images / "plots" / "images.png")
    sweep = next((copy / "outputs" / "multirun").glob("*/*"))
    assert [r["status"] for r in read_summary(sweep)] == ["completed", "completed"]


@pytest.mark.slow
def test_config_folder_in_help_and_tab_completion_of_the_real_command():
    conf = REPO / "examples" / "conf"
    result = gdrun_cli("--help", "--config-dir", str(conf))
    assert result.returncode == 0 and "cars, waves" in result.stdout and "smallnet" in result.stdout
    env = {"COMP_LINE": f"gdrun hydra.searchpath=[file://{conf}] data=", "COMP_POINT": "200"}
    completion = gdrun_cli("-sc", "query=bash", env=env)
    assert "data=cars" in completion.stdout and "data=waves" in completion.stdout and "data=csv" in completion.stdout
