"""Every option of every config group composes and builds; bad keys and types fail at composition."""

from pathlib import Path

import pytest
import torch
from hydra.errors import ConfigCompositionException

from gdrun.errors import GdrunError
from gdrun.training.build import (
    build_data,
    build_loss,
    build_model,
    build_optimizer,
    build_scheduler,
    check_compatible,
    model_args,
)
from gdrun.training.datasets.idx import write_mnist_like
from helpers import compose_config

CONF = Path(__file__).resolve().parents[1] / "conf"


def options(group: str):
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.fixture(scope="module")
def image_root(tmp_path_factory):
    """MNIST and Fashion-MNIST in torchvision's raw IDX layout, small."""
    root = tmp_path_factory.mktemp("images")
    for name in ("MNIST", "FashionMNIST"):
        write_mnist_like(root, n_train=120, n_test=40, dataset=name)
    return root


def data_overrides(name: str, image_root: Path):
    return [f"data={name}"] + (
        [f"data.root={image_root}", "data.download=false"] if name in ("mnist", "fashion_mnist") else []
    )


@pytest.mark.parametrize("name", options("data"))
def test_every_dataset_builds_with_its_usual_loss(name, image_root):
    cfg = compose_config(*data_overrides(name, image_root))
    data = build_data(cfg.data, cfg.seed, torch.device("cpu"))
    assert len(data) > 0 and data.task in ("regression", "binary", "multiclass")
    check_compatible(data, cfg.data.name, cfg.model, cfg.loss)
    model = build_model(cfg.model, model_args(data, cfg.loss.output))
    loss = build_loss(cfg.loss)(model(data.x[:4]), data.y[:4])
    assert torch.isfinite(loss)


MODEL_DATA = [
    (model, data)
    for model in options("model")
    for data in ("line", "logistic_1d", "softmax_1d", "digits")
    # cnn is for images, logistic for classification (their refusals: test_reliability.py)
    if not (model == "cnn" and data != "digits") and not (model == "logistic" and data == "line")
]


@pytest.mark.parametrize("name, data", MODEL_DATA)
def test_every_model_builds_for_each_task(name, data):
    cfg = compose_config(f"data={data}", f"model={name}")
    built = build_data(cfg.data, cfg.seed, torch.device("cpu"))
    model = build_model(cfg.model, model_args(built, cfg.loss.output))
    out = model(built.x[:3])
    assert out.shape == (3, built.num_outputs)


def test_logistic_regression_on_mnist_shapes_is_linear_784_to_10(image_root):
    cfg = compose_config("model=logistic", *data_overrides("mnist", image_root))
    data = build_data(cfg.data, cfg.seed, torch.device("cpu"))
    model = build_model(cfg.model, model_args(data, cfg.loss.output))
    assert [tuple(p.shape) for p in model.parameters()] == [(10, 784), (10,)]
    assert cfg.loss.name == "cross_entropy" and cfg.optim.name == "sgd"
    assert (cfg.optim.batch_size, cfg.optim.epochs, cfg.data.shuffle) == (100, 5, True)


@pytest.mark.parametrize("name", options("loss"))
def test_every_loss_builds(name):
    data = {
        "mse": "line",
        "bce": "logistic_1d",
        "bce_logits": "logistic_1d",
        "cross_entropy": "softmax_1d",
        "nll": "softmax_1d",
    }[name]
    cfg = compose_config(f"data={data}", f"loss={name}")
    built = build_data(cfg.data, cfg.seed, torch.device("cpu"))
    model = build_model(cfg.model, model_args(built, cfg.loss.output))
    assert torch.isfinite(build_loss(cfg.loss)(model(built.x), built.y))


@pytest.mark.parametrize("name", options("optim"))
def test_every_optimizer_builds_and_keeps_batch_size_and_epochs(name):
    cfg = compose_config("optim.batch_size=7", "optim.epochs=3", f"optim={name}", "optim.lr=0.05")
    assert (cfg.optim.batch_size, cfg.optim.epochs, cfg.optim.lr) == (7, 3, 0.05)
    optimizer = build_optimizer(cfg.optim, torch.nn.Linear(1, 1))
    assert optimizer.param_groups[0]["lr"] == 0.05


@pytest.mark.parametrize("name", options("sched"))
def test_every_schedule_builds(name):
    cfg = compose_config(f"sched={name}")
    optimizer = build_optimizer(cfg.optim, torch.nn.Linear(1, 1))
    scheduler = build_scheduler(cfg.sched, optimizer, epochs=5)
    assert (scheduler is None) == (name == "none")


def test_dataset_picks_usual_loss_and_user_choice_wins():
    assert compose_config("data=logistic_1d").loss.name == "bce"
    assert compose_config("data=softmax_1d").loss.name == "cross_entropy"
    assert compose_config("data=logistic_1d", "loss=bce_logits").loss.name == "bce_logits"


@pytest.mark.parametrize(
    "override, error",
    [
        ("optim.lrr=0.1", ConfigCompositionException),
        ("optim.lr=fast", ConfigCompositionException),
        ("data.nosie=0.2", ConfigCompositionException),
        ("model=logistc", Exception),
    ],
)
def test_bad_keys_and_types_fail_at_composition(override, error):
    with pytest.raises(error):
        compose_config(override)


def test_mismatched_loss_and_data_is_refused_with_the_fix():
    cfg = compose_config("data=softmax_1d", "loss=bce")
    data = build_data(cfg.data, cfg.seed, torch.device("cpu"))
    with pytest.raises(GdrunError, match="loss=bce needs a binary dataset.*multiclass"):
        check_compatible(data, cfg.data.name, cfg.model, cfg.loss)
