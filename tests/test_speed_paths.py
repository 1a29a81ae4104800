"""The fast paths give the numbers the plain ones do: block-copied costs, torch.compile, mixed precision.

The GPU behaviour (costs kept on the device, read once per epoch) is the `bound=None` path of
train_epoch, checked here on the CPU; compile and amp are checked on the CPU as far as it can.
"""

import copy

import torch

from gdrun.training.data import tensor_batches
from gdrun.training.epoch import train_epoch
from helpers import csv_rows, run_in_process


def test_costs_read_once_per_epoch_equal_costs_read_every_step():
    torch.manual_seed(0)
    x, y = torch.randn(50, 3), torch.randn(50, 1)
    model = torch.nn.Linear(3, 1)
    twin = copy.deepcopy(model)
    per_step = train_epoch(
        model,
        torch.nn.MSELoss(),
        torch.optim.SGD(model.parameters(), lr=0.1),
        tensor_batches(x, y, 7, None),
        bound=float("inf"),
    )
    per_epoch = train_epoch(
        twin, torch.nn.MSELoss(), torch.optim.SGD(twin.parameters(), lr=0.1), tensor_batches(x, y, 7, None), bound=None
    )
    assert per_step == per_epoch and len(per_step) == 8
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), twin.parameters()))


def test_compiled_model_takes_the_same_steps(tmp_path):
    run_in_process(tmp_path / "plain", "data=digits", "model=mlp", "optim.epochs=2")
    run_in_process(
        tmp_path / "compiled", "data=digits", "model=mlp", "optim.epochs=2", "compile=true", "compile_backend=eager"
    )
    plain = [r["loss"] for r in csv_rows(tmp_path / "plain" / "iterations.csv")]
    compiled = [r["loss"] for r in csv_rows(tmp_path / "compiled" / "iterations.csv")]
    torch.testing.assert_close(torch.tensor(compiled), torch.tensor(plain))
    state = torch.load(tmp_path / "compiled" / "model.pt", weights_only=True)
    assert not any(key.startswith("_orig_mod") for key in state)  # saved as the plain model


def test_mixed_precision_trains(tmp_path):
    summary = run_in_process(tmp_path / "amp", "data=digits", "model=logistic", "optim.epochs=3", "amp=true")
    epochs = csv_rows(tmp_path / "amp" / "epochs.csv")
    assert summary["status"] == "completed"
    assert epochs[-1]["train_loss"] < epochs[0]["train_loss"] and summary["final"]["val_accuracy"] > 0.5
