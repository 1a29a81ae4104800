"""MNIST logistic regression as a hand-written loop over preloaded tensors: the speed floor for gdrun.

Run: python bench/handwritten.py DATA_ROOT [--epochs 5] [--device cuda] [--seed N] [--threads N]

Same model, loss, optimizer, batch size and epochs as the notebook (Linear(784, 10), cross
entropy, SGD lr 0.001, batch 100, 5 epochs, shuffled), but the images are one float tensor
scaled by 1/255 (what ToTensor gives) and batches are slices of a fresh random permutation per
epoch, so there is no per-sample Python work. The last line printed is RESULT {json}.
"""

import time

START = time.perf_counter()  # before importing torch, so wall time covers the whole script

import argparse
import json

import torch
import torchvision


def load(root, train, device):
    """Return (N×784 float images in [0, 1], N int64 labels) read through torchvision's MNIST class."""
    ds = torchvision.datasets.MNIST(root, train=train, download=False)
    return ds.data.view(len(ds), -1).float().div_(255).to(device), ds.targets.to(device)


def train_epoch(model, optimizer, loss_fn, x, y, batch_size):
    """One pass over x in random order; returns the last batch loss as a tensor (no sync per step)."""
    perm = torch.randperm(len(x), device=x.device)
    for start in range(0, len(x), batch_size):
        idx = perm[start : start + batch_size]
        optimizer.zero_grad()
        loss = loss_fn(model(x[idx]), y[idx])
        loss.backward()
        optimizer.step()
    return loss


@torch.no_grad()
def accuracy(model, x, y):
    """Percent of x classified correctly, in one batch."""
    return 100.0 * (model(x).argmax(dim=1) == y).sum().item() / len(y)


def main():
    """Train, evaluate every epoch, print per-epoch times and a RESULT line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", help="folder holding MNIST/raw/*-ubyte")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--lr", type=float, default=0.001)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=None, help="default: unseeded, like the notebook")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads; default: torch's choice")
    args = parser.parse_args()

    if args.threads is not None:
        torch.set_num_threads(args.threads)

    if args.seed is not None:
        torch.manual_seed(args.seed)
    device = torch.device(args.device)
    x_train, y_train = load(args.root, True, device)
    x_test, y_test = load(args.root, False, device)
    model = torch.nn.Linear(784, 10).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
    loss_fn = torch.nn.CrossEntropyLoss()

    epochs = []
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        loss = train_epoch(model, optimizer, loss_fn, x_train, y_train, args.batch_size)
        loss = loss.item()  # the sync point: on a GPU the epoch's kernels have finished after this
        t1 = time.perf_counter()
        acc = accuracy(model, x_test, y_test)
        t2 = time.perf_counter()
        epochs.append(
            {"epoch": epoch, "train_seconds": t1 - t0, "eval_seconds": t2 - t1, "loss": loss, "val_accuracy": acc}
        )
        print(f"epoch {epoch}: loss {loss:.4f}, test accuracy {acc:.2f} %, train {t1 - t0:.3f} s, eval {t2 - t1:.3f} s")

    wall = time.perf_counter() - START
    print(f"final accuracy {acc:.2f} %, wall time {wall:.2f} s")
    result = {"accuracy": acc, "wall_seconds": wall, "torch_threads": torch.get_num_threads(), "epochs": epochs}
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
