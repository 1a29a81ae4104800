"""The in-memory batches equal a torch DataLoader's with the same generator, in order and shuffled."""

import pytest
import torch

from gdrun.training.data import loader_batches, tensor_batches


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("n, batch_size", [(20, 5), (23, 5), (60, 1), (10, 10)])
def test_fast_batches_equal_dataloader(shuffle, n, batch_size):
    x = torch.randn(n, 3)
    y = torch.arange(n)
    fast_gen = torch.Generator().manual_seed(7) if shuffle else None
    loader_gen = torch.Generator().manual_seed(7) if shuffle else None
    loader = loader_batches(x, y, batch_size, loader_gen)
    for _epoch in range(3):  # the generator's state carries from epoch to epoch in both
        fast = list(tensor_batches(x, y, batch_size, fast_gen))
        reference = list(loader)
        assert len(fast) == len(reference)
        for (fx, fy), (rx, ry) in zip(fast, reference):
            torch.testing.assert_close(fx, rx, rtol=0, atol=0)
            torch.testing.assert_close(fy, ry, rtol=0, atol=0)


def test_shuffled_epochs_differ():
    x, y = torch.arange(50.0).view(-1, 1), torch.arange(50)
    gen = torch.Generator().manual_seed(0)
    first = torch.cat([b for _, b in tensor_batches(x, y, 10, gen)])
    second = torch.cat([b for _, b in tensor_batches(x, y, 10, gen)])
    assert sorted(first.tolist()) == sorted(second.tolist()) == list(range(50))
    assert first.tolist() != second.tolist()
