"""The IDX writer's files load through torchvision's own MNIST and FashionMNIST classes, offline."""

import numpy as np
import pytest
import torch
import torchvision

from gdrun.training.datasets.idx import make_mnist_like, write_idx_images, write_idx_labels, write_mnist_like


@pytest.mark.parametrize("name", ["MNIST", "FashionMNIST"])
def test_written_arrays_round_trip_through_torchvision(tmp_path, name):
    """Arbitrary uint8 arrays written as IDX come back unchanged from torchvision's dataset class."""
    rng = np.random.default_rng(1)
    arrays = {
        "train": (rng.integers(0, 256, (200, 28, 28), dtype=np.uint8), rng.integers(0, 10, 200, dtype=np.uint8)),
        "t10k": (rng.integers(0, 256, (50, 28, 28), dtype=np.uint8), rng.integers(0, 10, 50, dtype=np.uint8)),
    }
    raw = tmp_path / name / "raw"
    raw.mkdir(parents=True)
    for prefix, (images, labels) in arrays.items():
        write_idx_images(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx_labels(raw / f"{prefix}-labels-idx1-ubyte", labels)

    cls = getattr(torchvision.datasets, name)
    for train, prefix in [(True, "train"), (False, "t10k")]:
        ds = cls(str(tmp_path), train=train, download=False)
        images, labels = arrays[prefix]
        assert ds.data.dtype == torch.uint8
        assert tuple(ds.data.shape) == images.shape
        np.testing.assert_array_equal(ds.data.numpy(), images)
        np.testing.assert_array_equal(ds.targets.numpy(), labels)


@pytest.mark.parametrize("name", ["MNIST", "FashionMNIST"])
def test_write_mnist_like_loads_with_to_tensor(tmp_path, name):
    """write_mnist_like makes a folder the dataset class finds, and ToTensor scales its pixels to [0, 1]."""
    raw = write_mnist_like(tmp_path, n_train=200, n_test=50, dataset=name, seed=3)
    assert raw == tmp_path / name / "raw"

    cls = getattr(torchvision.datasets, name)
    to_tensor = torchvision.transforms.ToTensor()
    train = cls(str(tmp_path), train=True, download=False, transform=to_tensor)
    test = cls(str(tmp_path), train=False, download=False, transform=to_tensor)
    assert len(train) == 200 and len(test) == 50

    image, label = train[7]
    assert tuple(image.shape) == (1, 28, 28)
    assert image.dtype == torch.float32
    assert isinstance(label, int) and 0 <= label <= 9
    np.testing.assert_allclose(image[0].numpy(), train.data[7].numpy() / 255.0, atol=1e-7)

    # Train and test are separate draws from the same generator seed: the same arrays as make_mnist_like.
    x_train, y_train = make_mnist_like(200, seed=7, templates_seed=3)
    np.testing.assert_array_equal(train.data.numpy(), x_train)
    np.testing.assert_array_equal(train.targets.numpy(), y_train)
    assert not np.array_equal(train.data[:50].numpy(), test.data.numpy())


def test_idx_header_is_big_endian(tmp_path):
    """The header is the IDX magic then one big-endian uint32 per dimension."""
    write_idx_images(tmp_path / "img", np.zeros((3, 28, 28), np.uint8))
    write_idx_labels(tmp_path / "lab", np.zeros(3, np.uint8))
    assert (tmp_path / "img").read_bytes()[:16] == bytes.fromhex("00000803 00000003 0000001c 0000001c")
    assert (tmp_path / "lab").read_bytes()[:8] == bytes.fromhex("00000801 00000003")
    assert (tmp_path / "img").stat().st_size == 16 + 3 * 28 * 28


def test_same_seed_same_data_and_all_classes_present():
    """Generation is deterministic in the seed and covers the ten classes."""
    a_x, a_y = make_mnist_like(500, seed=0)
    b_x, b_y = make_mnist_like(500, seed=0)
    c_x, _ = make_mnist_like(500, seed=1)
    np.testing.assert_array_equal(a_x, b_x)
    np.testing.assert_array_equal(a_y, b_y)
    assert not np.array_equal(a_x, c_x)
    assert set(np.unique(a_y)) == set(range(10))


def test_data_is_learnable_but_not_trivial():
    """A nearest-class-mean classifier beats chance by far, yet the classes still overlap."""
    x_train, y_train = make_mnist_like(3000, seed=1)
    x_test, y_test = make_mnist_like(1000, seed=2)
    x_train = x_train.reshape(len(x_train), -1) / 255.0
    x_test = x_test.reshape(len(x_test), -1) / 255.0
    means = np.stack([x_train[y_train == c].mean(axis=0) for c in range(10)])
    dist = ((x_test[:, None, :] - means[None]) ** 2).sum(axis=-1)
    accuracy = (dist.argmin(axis=1) == y_test).mean()
    assert 0.6 < accuracy < 0.99


@pytest.mark.parametrize(
    "call",
    [
        lambda p: write_idx_images(p, np.zeros((2, 28, 28), np.float32)),
        lambda p: write_idx_images(p, np.zeros((28, 28), np.uint8)),
        lambda p: write_idx_labels(p, np.zeros((2, 1), np.uint8)),
        lambda p: write_mnist_like(p.parent, n_train=2, n_test=2, dataset="CIFAR10"),
    ],
)
def test_bad_inputs_raise(tmp_path, call):
    """Wrong dtype, wrong rank or an unknown dataset name is refused before anything is written."""
    with pytest.raises(ValueError):
        call(tmp_path / "out")
