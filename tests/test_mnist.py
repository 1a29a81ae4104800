"""MNIST and Fashion-MNIST load through torchvision's own classes from IDX files the test writes."""

import pytest
import torch
import torchvision

from gdrun.errors import GdrunError
from gdrun.training.datasets.idx import write_mnist_like
from gdrun.training.datasets.images import torchvision_dataset
from helpers import csv_rows, run_in_process


@pytest.mark.parametrize("name", ["MNIST", "FashionMNIST"])
def test_loaded_tensors_equal_torchvision_totensor(tmp_path, name):
    write_mnist_like(tmp_path, n_train=50, n_test=20, dataset=name)
    data = torchvision_dataset(name, str(tmp_path), download=False)
    reference = getattr(torchvision.datasets, name)(
        str(tmp_path), train=True, download=False, transform=torchvision.transforms.ToTensor()
    )
    assert data.x.shape == (50, 1, 28, 28) and data.val.x.shape == (20, 1, 28, 28)
    for i in (0, 17, 49):
        image, label = reference[i]
        torch.testing.assert_close(data.x[i], image, rtol=0, atol=0)
        assert int(data.y[i]) == label


def test_mnist_logistic_run_on_small_files(tmp_path):
    write_mnist_like(tmp_path / "data", n_train=600, n_test=200)
    folder = tmp_path / "run"
    summary = run_in_process(
        folder,
        "model=logistic",
        "data=mnist",
        "optim.lr=0.001",
        f"data.root={tmp_path / 'data'}",
        "data.download=false",
        "optim.epochs=2",
    )
    assert summary["steps"] == 2 * 6  # 600 images in batches of 100
    assert summary["num_params"] == 7850
    assert summary["final"]["val_accuracy"] is not None
    assert len(csv_rows(folder / "epochs.csv")) == 3
    assert not (folder / "fit.csv").exists()  # 784 inputs: no data-space picture


def test_missing_mnist_offline_says_where_it_looked(tmp_path):
    with pytest.raises(GdrunError, match=r"MNIST not found under data.root=.*MNIST/raw.*data.download=true"):
        torchvision_dataset("MNIST", str(tmp_path), download=False)
