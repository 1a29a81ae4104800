"""The course notebook's MNIST logistic regression (seed 002, "CPU version"/"GPU version"), as one script.

Run: python bench/notebook_mnist.py DATA_ROOT [--device cuda]

The body is the notebook's code, cell for cell, with three changes a benchmark needs: the data
root comes from the command line, download=False (no network here), and the model/tensors move
to --device only when it is given (the notebook's GPU version). The last line printed is
RESULT {json} with the final test accuracy (percent) and the wall time since start.
"""

import time

START = time.perf_counter()  # before importing torch, so wall time covers the whole script

import argparse
import json

import torch
import torch.nn as nn
import torchvision.datasets as dsets
import torchvision.transforms as transforms

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("root", help="folder holding MNIST/raw/*-ubyte")
parser.add_argument("--device", default=None, help="cuda for the notebook's GPU version; default: CPU version")
args = parser.parse_args()

"""
STEP 1: LOADING DATASET
"""

train_dataset = dsets.MNIST(root=args.root, train=True, transform=transforms.ToTensor(), download=False)

test_dataset = dsets.MNIST(root=args.root, train=False, transform=transforms.ToTensor())

"""
STEP 2: MAKING DATASET ITERABLE
"""

batch_size = 100
n_iters = 3000
num_epochs = n_iters / (len(train_dataset) / batch_size)
num_epochs = int(num_epochs)

train_loader = torch.utils.data.DataLoader(dataset=train_dataset, batch_size=batch_size, shuffle=True)

test_loader = torch.utils.data.DataLoader(dataset=test_dataset, batch_size=batch_size, shuffle=False)

"""
STEP 3: CREATE MODEL CLASS
"""


class LogisticRegressionModel(nn.Module):
    def __init__(self, input_size, num_classes):
        super(LogisticRegressionModel, self).__init__()
        self.linear = nn.Linear(input_dim, output_dim)

    def forward(self, x):
        out = self.linear(x)
        return out


"""
STEP 4: INSTANTIATE MODEL CLASS
"""
input_dim = 28 * 28
output_dim = 10

model = LogisticRegressionModel(input_dim, output_dim)

# GPU version only: "2 things must be on GPU: model, tensors".
device = torch.device(args.device) if args.device else None
if device is not None:
    model.to(device)

"""
STEP 5: INSTANTIATE LOSS CLASS
"""
criterion = nn.CrossEntropyLoss()


"""
STEP 6: INSTANTIATE OPTIMIZER CLASS
"""
learning_rate = 0.001

optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate)

"""
STEP 7: TRAIN THE MODEL
"""
accuracy = float("nan")
iter = 0
for epoch in range(num_epochs):
    for i, (images, labels) in enumerate(train_loader):
        # Load images as Variable
        images = images.view(-1, 28 * 28).requires_grad_()
        labels = labels
        if device is not None:
            images = images.to(device)
            labels = labels.to(device)

        # Clear gradients w.r.t. parameters
        optimizer.zero_grad()

        # Forward pass to get output/logits
        # 100 x 10
        outputs = model(images)

        # Calculate Loss: softmax --> cross entropy loss
        loss = criterion(outputs, labels)

        # Getting gradients w.r.t. parameters
        loss.backward()

        # Updating parameters
        optimizer.step()

        iter += 1

        if iter % 500 == 0:
            # Calculate Accuracy
            correct = 0
            total = 0
            # Iterate through test dataset
            for images, labels in test_loader:
                # Load images to a Torch Variable
                if device is not None:
                    images = images.view(-1, 28 * 28).to(device)
                else:
                    images = images.view(-1, 28 * 28).requires_grad_()

                # Forward pass only to get logits/output
                outputs = model(images)

                # Get predictions from the maximum value
                # 100 x 1
                _, predicted = torch.max(outputs.data, 1)

                # Total number of labels
                total += labels.size(0)

                # Total correct predictions
                correct += (predicted.cpu() == labels.cpu()).sum()

            accuracy = 100 * correct.item() / total

            # Print Loss
            print("Iteration: {}. Loss: {}. Accuracy: {}".format(iter, loss.item(), accuracy))

wall = time.perf_counter() - START
print(f"final accuracy {accuracy:.2f} %, wall time {wall:.2f} s")
print("RESULT " + json.dumps({"accuracy": accuracy, "wall_seconds": wall, "iterations": iter}))
