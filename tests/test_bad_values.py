"""Every bad value is named: exit status 2, one or two sentences naming the key or file and what is valid."""

import numpy as np
import pytest
import torch
from omegaconf.errors import MissingMandatoryValue

from gdrun.config.checks import ACTIVATIONS, explain
from gdrun.errors import GdrunError
from gdrun.training import models, parts
from gdrun.training.datasets.idx import split_files, write_idx_labels, write_mnist_like
from helpers import compose_config

BAD_VALUES = [
    # (arguments, words the message must contain)
    (["seed=18446744073709551616"], ["seed=18446744073709551616", "2**64 - 1"]),
    (["seed=-1"], ["seed=-1", "from 0"]),
    (["data.seed=-3"], ["data.seed=-3", "from 0"]),
    (["model=mlp", "model.hidden=[1000000000]"], ["model.hidden=[1000000000]", "2**31"]),
    (["model=mlp", "model.hidden=[100000,100000]"], ["model.hidden=[100000, 100000]", "2**31"]),
    (["data=digits", "model=cnn", "model.hidden=1000000000"], ["model.hidden=1000000000", "2**31"]),
    (["data=digits", "model=cnn", "model.channels=[4,4,4,4]"], ["model.channels=[4, 4, 4, 4]", "at most 3"]),
    (["model.init=5"], ["model.init=5", "mapping"]),
    (["model.init=[1,2]"], ["model.init=[1, 2]", "mapping"]),
    (["model.init={weight: abc}"], ["model.init.weight=abc", "numbers"]),
    (["model.init={weight: [[nan]]}"], ["model.init.weight contains NaN"]),
    (["model.init={weight: [[1.0]], bias: [inf]}"], ["model.init.bias contains inf"]),
    (["optim.batch_size=full", "data.val_split=0.999"], ["data.val_split=0.999", "leaving 0 to train on"]),
    (["data.val_split=0.001"], ["data.val_split=0.001", "none of the 60 samples"]),
    (["optim.lr=???"], ["optim.lr has no value; give one, e.g. optim.lr=0.1"]),
    (["optim=adam", "optim.lr=???"], ["optim.lr has no value; give one, e.g. optim.lr=0.001"]),
    (["data.epochs=???"], ["data.epochs has no value", "data.epochs=10"]),
    (["optim.lr=${nowhere}"], ["optim.lr", "nowhere"]),
    (["optim.lr=inf"], ["optim.lr=inf", "finite"]),
    (["optim.lr=nan"], ["optim.lr=nan", "positive"]),
    (["optim.lr=-inf"], ["optim.lr=-inf", "positive"]),
    (["optim.weight_decay=-0.1"], ["optim.weight_decay=-0.1", "0 or more"]),
    (["optim=sgd", "optim.momentum=-0.9"], ["optim.momentum=-0.9", "0 or more"]),
    (["optim=sgd", "optim.dampening=2"], ["optim.dampening=2.0", "[0, 1]"]),
    (["optim=sgd", "optim.nesterov=true"], ["optim.nesterov=true", "optim.momentum", "optim.dampening=0"]),
    (["optim=adam", "optim.betas=[0.9,1.0]"], ["optim.betas=[0.9, 1.0]", "[0, 1)"]),
    (["optim=adam", "optim.betas=[-0.1,0.999]"], ["optim.betas=[-0.1, 0.999]", "[0, 1)"]),
    (["optim=adamw", "optim.betas=[0.9]"], ["optim.betas=[0.9]", "two numbers"]),
    (["optim=adam", "optim.eps=0"], ["optim.eps=0.0", "positive"]),
    (["optim=adamw", "optim.eps=-1e-8"], ["optim.eps=-1e-08", "positive"]),
    (["optim=rmsprop", "optim.alpha=1.0"], ["optim.alpha=1.0", "[0, 1)"]),
    (["optim=rmsprop", "optim.momentum=-1"], ["optim.momentum=-1.0", "0 or more"]),
    (["optim=adagrad", "optim.lr_decay=-1"], ["optim.lr_decay=-1.0", "0 or more"]),
    (["optim=adagrad", "optim.initial_accumulator_value=-1"], ["optim.initial_accumulator_value=-1.0"]),
    (["optim=adagrad", "optim.eps=nan"], ["optim.eps=nan", "positive"]),
    (["sched=step", "sched.step_size=0"], ["sched.step_size=0", "1 or more"]),
    (["sched=step", "sched.gamma=0"], ["sched.gamma=0.0", "positive"]),
    (["sched=exponential", "sched.gamma=-0.5"], ["sched.gamma=-0.5", "positive"]),
    (["sched=cosine", "sched.T_max=0"], ["sched.T_max=0", "1 or more"]),
    (["sched=cosine", "sched.eta_min=-1"], ["sched.eta_min=-1.0", "0 or more"]),
    (["sched=plateau", "sched.factor=1.0"], ["sched.factor=1.0", "(0, 1)"]),
    (["sched=plateau", "sched.factor=0"], ["sched.factor=0.0", "(0, 1)"]),
    (["sched=plateau", "sched.patience=-1"], ["sched.patience=-1", "0 or more"]),
    (["sched=plateau", "sched.mode=up"], ["sched.mode=up", "min or max"]),
    (["checkpoint_min_seconds=-1"], ["checkpoint_min_seconds=-1.0", "0 or more"]),
    (["checkpoint_min_seconds=nan"], ["checkpoint_min_seconds=nan", "0 or more"]),
    (["diverge_factor=nan"], ["diverge_factor=nan", "above 1"]),
    (["surface_range=[0]"], ["surface_range=[0.0]", "positive"]),
    (["surface_range=[1,2,3]"], ["surface_range=[1.0, 2.0, 3.0]", "[W, B]"]),
    (["data.step=0"], ["data.step=0.0", "must not be 0"]),
    (["data.step=-0.1"], ["data.step=-0.1", "no points", "data.step=0.1"]),
    (["data.start=1", "data.stop=1"], ["data.start=1.0", "data.stop=1.0"]),
    (["data.step=1e-12"], ["data.step=1e-12", "2**31"]),
    (["data.start=nan"], ["data.start=nan", "finite"]),
    (["data.stop=inf"], ["data.stop=inf", "finite"]),
    (["data.num=0"], ["data.num=0", "1 to 2**31"]),
    (["data=pulse", "data.step=-0.5"], ["data.step=-0.5", "no points"]),
    (["data=plane", "data.step=0"], ["data.step=0.0", "must not be 0"]),
    (["data=plane", "data.bias=[1,2]"], ["data.bias=[1.0, 2.0]", "one number per output"]),
    (["data=plane", "data.weights=[[1.0],[1.0,2.0]]"], ["data.weights=[[1.0], [1.0, 2.0]]", "table"]),
    (["data=bumps", "data.intervals=[[5.0,1.0]]"], ["data.intervals=[[5.0, 1.0]]", "lo < hi"]),
    (["data=pulse", "data.intervals=[[nan,4.0]]"], ["data.intervals=[[nan, 4.0]]", "lo < hi"]),
    (["data=softmax_1d", "data.edges=[1.0,-1.0]"], ["data.edges=[1.0, -1.0]", "increasing"]),
    (["data=mnist", "data.dataset=CIFAR10"], ["data.dataset=CIFAR10", "MNIST, FashionMNIST"]),
    (["data.noise=nan"], ["data.noise=nan", "data=line contains NaN in its targets y"]),
    (["data=line", "data.slope=inf"], ["data.slope=inf", "contains inf"]),
    (["data=plane", "data.weights=[[nan],[1.0]]"], ["data.weights=[[nan], [1.0]]", "contains NaN"]),
    (["model=mlp", "model.dropout=-0.5"], ["model.dropout=-0.5", "[0, 1)"]),
    (["model=mlp", "model.dropout=1.0"], ["model.dropout=1.0", "[0, 1)"]),
    (["model=mlp", "model.activation=relü"], ["model.activation=relü", "ASCII", "quoted", "relu, sigmoid, tanh"]),
    (["model=mlp", "model.activation=swish"], ["model.activation=swish", "relu, sigmoid, tanh, gelu"]),
    (["model=mlpü"], ["model=mlpü", "cnn, linear, logistic, mlp"]),
    (["data.name=café"], ["data.name=café", "ASCII"]),
    (["optim.lrü=0.1"], ["optim.lrü", "ASCII"]),
]


def assert_named(result, words):
    code, out, err = result
    assert code == 2, out + err
    message = err.strip()
    assert message.startswith("gdrun: error:") and "Traceback" not in out + err, message
    assert len(message.splitlines()) <= 2, message
    for word in words:
        assert word in message, message


@pytest.mark.parametrize("args, words", BAD_VALUES, ids=[" ".join(a) for a, _ in BAD_VALUES])
def test_bad_value_is_named(gdrun_main, tmp_path, args, words):
    assert_named(gdrun_main(*args, f"hydra.run.dir={tmp_path / 'run'}", "plots=false"), words)


def truncate(path):
    path.write_bytes(path.read_bytes()[:1000])


def wrong_magic(path):
    data = bytearray(path.read_bytes())
    data[3] ^= 2  # an image file's 0x00000803 becomes a label file's 0x00000801, and the other way
    path.write_bytes(bytes(data))


def header_only(path):
    path.write_bytes(path.read_bytes()[:2])


def label_out_of_range(path):
    data = bytearray(path.read_bytes())
    data[8] = 12  # the first label (after the 8-byte header): MNIST has classes 0-9
    path.write_bytes(bytes(data))


def one_label_short(path):
    write_idx_labels(path, np.zeros(49, dtype=np.uint8))


IDX_DAMAGE = [
    # (train split?, images file?, damage, words)
    (True, True, truncate, ["train-images-idx3-ubyte is damaged", "truncated", "data.download=true"]),
    (False, True, wrong_magic, ["t10k-images-idx3-ubyte is damaged", "magic number 0x00000803"]),
    (True, False, wrong_magic, ["train-labels-idx1-ubyte is damaged", "magic number 0x00000801"]),
    (False, False, header_only, ["t10k-labels-idx1-ubyte is damaged", "truncated"]),
    (True, False, label_out_of_range, ["train-labels-idx1-ubyte is damaged", "label 12", "10 classes"]),
    (True, False, one_label_short, ["train-labels-idx1-ubyte is damaged", "49 labels for the 50 images"]),
]


@pytest.mark.parametrize(
    "train, images, damage, words",
    IDX_DAMAGE,
    ids=[f"{d.__name__}-{'train' if t else 'test'}" for t, _, d, _ in IDX_DAMAGE],
)
def test_damaged_idx_file_is_named_with_its_path(gdrun_main, tmp_path, train, images, damage, words):
    raw = write_mnist_like(tmp_path / "data", n_train=50, n_test=20)
    path = split_files(raw, train)[0 if images else 1]
    damage(path)
    result = gdrun_main(
        "data=mnist",
        "model=logistic",
        f"data.root={tmp_path / 'data'}",
        "data.download=false",
        f"hydra.run.dir={tmp_path / 'run'}",
        "plots=false",
    )
    assert_named(result, [str(path.parent), *words])


def test_missing_value_met_elsewhere_is_explained():
    cfg = compose_config("optim=sgd", "optim.lr=???")
    with pytest.raises(MissingMandatoryValue) as caught:
        cfg.optim.lr  # noqa: B018 - reading it is the point
    assert explain(caught.value) == "optim.lr has no value; give one, e.g. optim.lr=0.1."


def test_a_model_larger_than_memory_is_bad_input(monkeypatch):
    def too_large(cfg, args):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory")

    monkeypatch.setattr(parts, "build_model", too_large)
    cfg = compose_config("model=mlp", "model.hidden=[500000000]")
    with pytest.raises(GdrunError, match=r"model=mlp model.hidden=\[500000000\] does not fit .* memory"):
        parts.allocated_model(cfg.model, {}, torch.device("cpu"))


def test_the_activations_checked_are_the_ones_built():
    assert set(ACTIVATIONS) == set(models.ACTIVATIONS)
