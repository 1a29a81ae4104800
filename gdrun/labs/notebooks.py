"""Plain transcriptions of the course notebooks' own training code.

These functions are the *live reference* that ``gdrun-labs`` (gdrun/labs/compare.py) and the tests
compare gdrun against: each one is the notebook cell(s) of one lab, copied statement by
statement (same data generation, same order of RNG use, same manual
``w.data = w.data - lr * w.grad.data`` updates or the same nn.Module / DataLoader /
optimizer where the notebook uses those), with plotting and printing removed. Nothing here
imports gdrun: the module ships inside the package only so that the installed
``gdrun-labs`` command can run the notebooks' code beside gdrun's.

Sources (the course's notebooks, listed in docs/labs.md): 000 logistic regression (mini-batch / SGD / high lr),
001 course notes (slope, multiple linear regression, softmax, shallow net, deep net),
003 linear regression batch GD, 004 batch GD vs SGD.

Every lab function returns a dict with

``iteration_costs``  1-D float32 tensor: the loss of the batch used in each iteration,
                     computed *before* that iteration's parameter update (the notebooks'
                     convention; it is exactly what the notebook appends to its list).
``epoch_costs``      1-D float32 tensor, cost over the whole training set per epoch.
                     ``epoch_costs_kind`` says which convention it follows:
                     * ``"start"``: the notebook's own list (004's LOSS_SGD / LOSS_Loader /
                       LOSS_BGD): cost with the parameters at the START of each epoch,
                       length ``epochs`` (entry 0 = initial parameters).  ``final_cost``
                       holds the cost after the last epoch, so
                       ``cat([epoch_costs, final_cost])`` is the "start+final" list.
                     * ``"start+final"``: computed here (not by the notebook) with the
                       lab's own criterion on the whole training set, under
                       ``torch.no_grad()``, with the parameters at the start of each epoch
                       plus one entry after the last epoch: length ``epochs + 1``
                       ("evaluate before training and after every epoch").  For
                       batch-GD labs (slope, linreg_bgd) epochs == iterations.
``final_cost``       0-d tensor: whole-set cost with the final parameters.
``params``           name -> final parameter tensor.  1-input models use ``w`` and ``b``
                     (0-d tensors); nn.Module labs use the module's state_dict names.
                     nn.Module labs with one input also give ``state_dict``.
``initial_params``   same names, values before training.
``x``, ``y``         training data exactly as the notebook makes them.
``accuracy``         (classification labs) training accuracy as a float in [0, 1].
``notebook_costs``   (shallow_net, deep_bumps) the notebook's own per-epoch ``cost``
                     list: the SUM of the batch losses (``loss.item()``) seen during the
                     epoch.

Running a function re-seeds the global torch RNG exactly as the notebook does, so the
functions are independent of each other and of call order.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset

__all__ = [
    "slope",
    "linreg_bgd",
    "linreg_bgd_004",
    "linreg_sgd",
    "linreg_sgd_loader",
    "linreg_sgd_practice",
    "multilinear",
    "multioutput",
    "logistic_minibatch",
    "logistic_sgd",
    "logistic_high_lr",
    "notebook_000",
    "softmax_1d",
    "shallow_net",
    "deep_bumps",
    "n_iterations",
]


def n_iterations(n_samples: int, batch_size: int, epochs: int) -> int:
    """Iterations a DataLoader without drop_last takes: epochs * ceil(n / batch)."""
    return epochs * math.ceil(n_samples / batch_size)


def _costs(values) -> torch.Tensor:
    """List of python floats or 0-d tensors -> 1-D float32 tensor (exact)."""
    return torch.stack(
        [v.detach().reshape(()) if torch.is_tensor(v) else torch.tensor(v, dtype=torch.float32) for v in values]
    ).to(torch.float32)


def _clone_state(module: nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


# ---------------------------------------------------------------------------------------
# 001 "PyTorch Slope": y = w*x, no bias, manual update
# ---------------------------------------------------------------------------------------
def slope(iterations: int = 4, lr: float = 0.1, seed: int = 0) -> dict:
    """001 "PyTorch Slope".

    The notes show only the model/training cells; the data cell is the course's
    ``X = arange(-3, 3, 0.1).view(-1, 1); f = -3 * X; Y = f + 0.1 * randn(X.size())``.
    The seed is not shown. ``seed=0`` follows docs/course.md ("torch.manual_seed(0) in
    000 and 001"); the other reading is ``seed=1``: the notes' last ``torch.manual_seed``
    before this lab is ``manual_seed(1)`` (section "Simple Dataset") and nothing in between
    draws random numbers.
    """
    torch.manual_seed(seed)
    X = torch.arange(-3, 3, 0.1).view(-1, 1)
    f = -3 * X
    Y = f + 0.1 * torch.randn(X.size())

    # Create forward function for prediction
    def forward(x):
        return w * x

    # Create the MSE function for evaluate the result.
    def criterion(yhat, y):
        return torch.mean((yhat - y) ** 2)

    LOSS = []
    w = torch.tensor(-10.0, requires_grad=True)
    initial = {"w": w.detach().clone()}
    epoch_costs = []

    for epoch in range(iterations):
        with torch.no_grad():
            epoch_costs.append(criterion(forward(X), Y))
        Yhat = forward(X)
        loss = criterion(Yhat, Y)
        LOSS.append(loss.item())
        loss.backward()
        w.data = w.data - lr * w.grad.data  # type: ignore[union-attr]  # .grad is set by the backward() above
        w.grad.data.zero_()  # type: ignore[union-attr]  # .grad is set by the backward() above

    with torch.no_grad():
        final = criterion(forward(X), Y)
    epoch_costs.append(final)
    return {
        "iteration_costs": _costs(LOSS),
        "epoch_costs": _costs(epoch_costs),
        "epoch_costs_kind": "start+final",
        "final_cost": final,
        "params": {"w": w.detach().clone()},
        "initial_params": initial,
        "x": X,
        "y": Y,
    }


# ---------------------------------------------------------------------------------------
# 003 / 004: y = w*x + b, manual update
# ---------------------------------------------------------------------------------------
def _linreg_data():
    # 004: "torch.manual_seed(1)" then the data cell (003 has no seed; labs.md: use 1).
    torch.manual_seed(1)
    X = torch.arange(-3, 3, 0.1).view(-1, 1)
    f = 1 * X - 1
    Y = f + 0.1 * torch.randn(X.size())
    return X, f, Y


def linreg_bgd(iterations: int = 15, lr: float = 0.1, w0: float = -15.0, b0: float = -10.0) -> dict:
    """003 batch gradient descent (practice cell: ``lr=0.2``), 15 iterations."""
    X, f, Y = _linreg_data()

    def forward(x):
        return w * x + b

    def criterion(yhat, y):
        return torch.mean((yhat - y) ** 2)

    w = torch.tensor(w0, requires_grad=True)
    b = torch.tensor(b0, requires_grad=True)
    initial = {"w": w.detach().clone(), "b": b.detach().clone()}
    LOSS = []
    path = []  # get_surface.set_para_loss(w, b, loss): PRE-update w, b with that loss
    epoch_costs = []

    for epoch in range(iterations):
        with torch.no_grad():
            epoch_costs.append(criterion(forward(X), Y))
        Yhat = forward(X)
        loss = criterion(Yhat, Y)
        path.append((w.data.tolist(), b.data.tolist(), loss.tolist()))
        LOSS.append(loss.item())
        loss.backward()
        w.data = w.data - lr * w.grad.data  # type: ignore[union-attr]  # .grad is set by the backward() above
        b.data = b.data - lr * b.grad.data  # type: ignore[union-attr]  # .grad is set by the backward() above
        w.grad.data.zero_()  # type: ignore[union-attr]  # .grad is set by the backward() above
        b.grad.data.zero_()  # type: ignore[union-attr]  # .grad is set by the backward() above

    with torch.no_grad():
        final = criterion(forward(X), Y)
    epoch_costs.append(final)
    return {
        "iteration_costs": _costs(LOSS),
        "epoch_costs": _costs(epoch_costs),
        "epoch_costs_kind": "start+final",
        "final_cost": final,
        "params": {"w": w.detach().clone(), "b": b.detach().clone()},
        "initial_params": initial,
        "path": path,
        "x": X,
        "y": Y,
    }


def linreg_bgd_004(epochs: int = 10, lr: float = 0.1) -> dict:
    """004 "Train the Model: Batch Gradient Descent" (the run linreg_sgd is compared with).

    One iteration per epoch on the whole set, so the notebook's LOSS_BGD (pre-update
    loss per iteration) *is* the whole-set cost at the start of each epoch.
    """
    X, f, Y = _linreg_data()

    def forward(x):
        return w * x + b

    def criterion(yhat, y):
        return torch.mean((yhat - y) ** 2)

    w = torch.tensor(-15.0, requires_grad=True)
    b = torch.tensor(-10.0, requires_grad=True)
    initial = {"w": w.detach().clone(), "b": b.detach().clone()}
    LOSS_BGD = []

    for epoch in range(epochs):
        Yhat = forward(X)
        loss = criterion(Yhat, Y)
        LOSS_BGD.append(loss)
        loss.backward()
        w.data = w.data - lr * w.grad.data  # type: ignore[union-attr]  # .grad is set by the backward() above
        b.data = b.data - lr * b.grad.data  # type: ignore[union-attr]  # .grad is set by the backward() above
        w.grad.data.zero_()  # type: ignore[union-attr]  # .grad is set by the backward() above
        b.grad.data.zero_()  # type: ignore[union-attr]  # .grad is set by the backward() above

    with torch.no_grad():
        final = criterion(forward(X), Y)
    costs = _costs(LOSS_BGD)
    return {
        "iteration_costs": costs,
        "epoch_costs": costs.clone(),
        "epoch_costs_kind": "start",
        "final_cost": final,
        "params": {"w": w.detach().clone(), "b": b.detach().clone()},
        "initial_params": initial,
        "x": X,
        "y": Y,
    }


def linreg_sgd(epochs: int = 10, lr: float = 0.1) -> dict:
    """004 "Train the Model: Stochastic Gradient Descent" (``for x, y in zip(X, Y)``).

    Batch size 1, samples in order, on the noisy (X, Y).  ``epoch_costs`` is the
    notebook's LOSS_SGD: whole-set cost at the START of each epoch (length epochs).
    """
    X, f, Y = _linreg_data()

    def forward(x):
        return w * x + b

    def criterion(yhat, y):
        return torch.mean((yhat - y) ** 2)

    LOSS_SGD = []
    w = torch.tensor(-15.0, requires_grad=True)
    b = torch.tensor(-10.0, requires_grad=True)
    initial = {"w": w.detach().clone(), "b": b.detach().clone()}
    iteration_costs = []
    path = []

    for epoch in range(epochs):
        Yhat = forward(X)
        LOSS_SGD.append(criterion(Yhat, Y).tolist())
        for x, y in zip(X, Y):
            yhat = forward(x)
            loss = criterion(yhat, y)
            path.append((w.data.tolist(), b.data.tolist(), loss.tolist()))
            iteration_costs.append(loss.detach())
            loss.backward()
            w.data = w.data - lr * w.grad.data  # type: ignore[union-attr]  # .grad is set by the backward() above
            b.data = b.data - lr * b.grad.data  # type: ignore[union-attr]  # .grad is set by the backward() above
            w.grad.data.zero_()  # type: ignore[union-attr]  # .grad is set by the backward() above
            b.grad.data.zero_()  # type: ignore[union-attr]  # .grad is set by the backward() above

    with torch.no_grad():
        final = criterion(forward(X), Y)
    return {
        "iteration_costs": _costs(iteration_costs),
        "epoch_costs": _costs(LOSS_SGD),
        "epoch_costs_kind": "start",
        "final_cost": final,
        "params": {"w": w.detach().clone(), "b": b.detach().clone()},
        "initial_params": initial,
        "path": path,
        "x": X,
        "y": Y,
    }


class _Data004(Dataset):
    """004's Dataset class: NOTE ``y = 1 * x - 1`` with NO noise."""

    def __init__(self):
        self.x = torch.arange(-3, 3, 0.1).view(-1, 1)
        self.y = 1 * self.x - 1
        self.len = self.x.shape[0]

    def __getitem__(self, index):
        return self.x[index], self.y[index]

    def __len__(self):
        return self.len


def linreg_sgd_loader(epochs: int = 10, lr: float = 0.1, batch_size: int = 1) -> dict:
    """004 "SGD with Dataset DataLoader" (quirk: trains on the NOISE-FREE Data()).

    The DataLoader yields (x, 1*x - 1) without noise, while the recorded
    LOSS_Loader is the cost on the global noisy (X, Y) at the start of each epoch.
    ``x``/``y`` returned are the noise-free training data; ``x_cost``/``y_cost`` the
    noisy data the epoch costs use.
    """
    X, f, Y = _linreg_data()

    def forward(x):
        return w * x + b

    def criterion(yhat, y):
        return torch.mean((yhat - y) ** 2)

    dataset = _Data004()
    trainloader = DataLoader(dataset=dataset, batch_size=batch_size)
    w = torch.tensor(-15.0, requires_grad=True)
    b = torch.tensor(-10.0, requires_grad=True)
    initial = {"w": w.detach().clone(), "b": b.detach().clone()}
    LOSS_Loader = []
    iteration_costs = []

    for epoch in range(epochs):
        Yhat = forward(X)
        LOSS_Loader.append(criterion(Yhat, Y).tolist())
        for x, y in trainloader:
            yhat = forward(x)
            loss = criterion(yhat, y)
            iteration_costs.append(loss.detach())
            loss.backward()
            w.data = w.data - lr * w.grad.data  # type: ignore[union-attr]  # .grad is set by the backward() above
            b.data = b.data - lr * b.grad.data  # type: ignore[union-attr]  # .grad is set by the backward() above
            w.grad.data.zero_()  # type: ignore[union-attr]  # .grad is set by the backward() above
            b.grad.data.zero_()  # type: ignore[union-attr]  # .grad is set by the backward() above

    with torch.no_grad():
        final = criterion(forward(X), Y)
    return {
        "iteration_costs": _costs(iteration_costs),
        "epoch_costs": _costs(LOSS_Loader),
        "epoch_costs_kind": "start",
        "final_cost": final,
        "params": {"w": w.detach().clone(), "b": b.detach().clone()},
        "initial_params": initial,
        "x": dataset.x,
        "y": dataset.y,
        "x_cost": X,
        "y_cost": Y,
    }


def linreg_sgd_practice(epochs: int = 10, lr: float = 0.1) -> dict:
    """004 practice solution, verbatim including its bugs.

    w0 = -12, b0 = -10; trains with the noise-free DataLoader (batch 1); records
    ``criterion(Yhat, X)`` (prediction vs the INPUTS X, not Y) at the start of each epoch.
    """
    X, f, Y = _linreg_data()

    def forward(x):
        return w * x + b

    def criterion(yhat, y):
        return torch.mean((yhat - y) ** 2)

    dataset = _Data004()
    trainloader = DataLoader(dataset=dataset, batch_size=1)
    LOSS = []
    w = torch.tensor(-12.0, requires_grad=True)
    b = torch.tensor(-10.0, requires_grad=True)
    initial = {"w": w.detach().clone(), "b": b.detach().clone()}
    iteration_costs = []

    for epoch in range(epochs):
        Yhat = forward(X)
        LOSS.append(criterion(Yhat, X))
        for x, y in trainloader:
            yhat = forward(x)
            loss = criterion(yhat, y)
            iteration_costs.append(loss.detach())
            loss.backward()
            w.data = w.data - lr * w.grad.data  # type: ignore[union-attr]  # .grad is set by the backward() above
            b.data = b.data - lr * b.grad.data  # type: ignore[union-attr]  # .grad is set by the backward() above
            w.grad.data.zero_()  # type: ignore[union-attr]  # .grad is set by the backward() above
            b.grad.data.zero_()  # type: ignore[union-attr]  # .grad is set by the backward() above

    with torch.no_grad():
        final = criterion(forward(X), X)
    return {
        "iteration_costs": _costs(iteration_costs),
        "epoch_costs": _costs(LOSS),
        "epoch_costs_kind": "start",
        "final_cost": final,
        "params": {"w": w.detach().clone(), "b": b.detach().clone()},
        "initial_params": initial,
        "x": dataset.x,
        "y": dataset.y,
    }


# ---------------------------------------------------------------------------------------
# 001 "Multiple Linear Regression Training" / "Multiple Output Linear Regression"
# ---------------------------------------------------------------------------------------
class linear_regression(nn.Module):
    """The course's custom module (001 "PyTorch custom modules")."""

    def __init__(self, input_size, output_size):
        super(linear_regression, self).__init__()
        self.linear = nn.Linear(input_size, output_size)

    def forward(self, x):
        yhat = self.linear(x)
        return yhat


class Data2D(Dataset):
    """20 samples, both columns arange(-1, 1, 0.1); y = x @ w + b + noise * randn."""

    def __init__(self, w, b, noise_shape):
        self.x = torch.zeros(20, 2)
        self.x[:, 0] = torch.arange(-1, 1, 0.1)
        self.x[:, 1] = torch.arange(-1, 1, 0.1)
        self.w = w
        self.b = b
        self.f = torch.mm(self.x, self.w) + self.b
        self.y = self.f + 0.1 * torch.randn(noise_shape)
        self.len = self.x.shape[0]

    def __getitem__(self, index):
        return self.x[index], self.y[index]

    def __len__(self):
        return self.len


def _train_linear_module(data_set, model, epochs, lr, batch_size):
    # 001 "Multiple Linear Regression Training" cell
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    criterion = nn.MSELoss()
    train_loader = DataLoader(dataset=data_set, batch_size=batch_size)
    LOSS = []
    epoch_costs = []
    for epoch in range(epochs):
        with torch.no_grad():
            epoch_costs.append(criterion(model(data_set.x), data_set.y))
        for x, y in train_loader:
            yhat = model(x)
            loss = criterion(yhat, y)
            LOSS.append(loss.item())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        final = criterion(model(data_set.x), data_set.y)
    epoch_costs.append(final)
    return LOSS, epoch_costs, final


def multilinear(epochs: int = 100, lr: float = 0.1, batch_size: int = 2) -> dict:
    """001 "Multiple Linear Regression Training" with labs.md's data.

    Order: manual_seed(1); data (20 randn for the noise); model = linear_regression(2, 1)
    (nn.Linear default init: weight then bias); SGD lr 0.1, MSELoss, batch 2, 100 epochs.
    """
    torch.manual_seed(1)
    data_set = Data2D(torch.tensor([[1.0], [1.0]]), 1, (20, 1))
    model = linear_regression(2, 1)
    initial = _clone_state(model)
    LOSS, epoch_costs, final = _train_linear_module(data_set, model, epochs, lr, batch_size)
    return {
        "iteration_costs": _costs(LOSS),
        "epoch_costs": _costs(epoch_costs),
        "epoch_costs_kind": "start+final",
        "final_cost": final,
        "params": _clone_state(model),
        "initial_params": initial,
        "x": data_set.x,
        "y": data_set.y,
    }


MULTIOUTPUT_W = [[1.0, -1.0], [1.0, 3.0]]
MULTIOUTPUT_B = [[1.0, -1.0]]


def multioutput(epochs: int = 100, lr: float = 0.1, batch_size: int = 5) -> dict:
    """001 "Multiple Output Linear Regression Training" (data chosen here; notes fix none).

    manual_seed(1); x = 20 x 2, both columns arange(-1, 1, 0.1);
    y = x @ [[1, -1], [1, 3]] + [[1, -1]] + 0.1 * randn(20, 2);
    model = linear_regression(2, 2) built right after the data; SGD lr 0.1, MSELoss,
    batch 5 in order, 100 epochs.
    """
    torch.manual_seed(1)
    data_set = Data2D(torch.tensor(MULTIOUTPUT_W), torch.tensor(MULTIOUTPUT_B), (20, 2))
    model = linear_regression(2, 2)
    initial = _clone_state(model)
    LOSS, epoch_costs, final = _train_linear_module(data_set, model, epochs, lr, batch_size)
    return {
        "iteration_costs": _costs(LOSS),
        "epoch_costs": _costs(epoch_costs),
        "epoch_costs_kind": "start+final",
        "final_cost": final,
        "params": _clone_state(model),
        "initial_params": initial,
        "x": data_set.x,
        "y": data_set.y,
    }


# ---------------------------------------------------------------------------------------
# 000 logistic regression: the whole notebook, top to bottom
# ---------------------------------------------------------------------------------------
class Data(Dataset):
    """000's Data: x = arange(-1, 1, 0.1) (20 x 1), y = 1 where x > 0.2 (float32 compare)."""

    def __init__(self):
        self.x = torch.arange(-1, 1, 0.1).view(-1, 1)
        self.y = torch.zeros(self.x.shape[0], 1)
        self.y[self.x[:, 0] > 0.2] = 1
        self.len = self.x.shape[0]

    def __getitem__(self, index):
        return self.x[index], self.y[index]

    def __len__(self):
        return self.len


class logistic_regression(nn.Module):
    def __init__(self, n_inputs):
        super(logistic_regression, self).__init__()
        self.linear = nn.Linear(n_inputs, 1)

    def forward(self, x):
        yhat = torch.sigmoid(self.linear(x))
        return yhat


# (name, epochs, lr, batch_size) of 000's three training cells, in notebook order
NOTEBOOK_000_LABS = (
    ("logistic_minibatch", 500, 0.01, 5),
    ("logistic_sgd", 100, 0.01, 1),
    ("logistic_high_lr", 100, 1, 1),
)


def _wb(model):
    sd = model.state_dict()
    return {"w": sd["linear.weight"][0, 0].clone(), "b": sd["linear.bias"][0].clone()}


def _train_000(model, data_set, epochs, lr, batch_size):
    criterion = nn.BCELoss()
    trainloader = DataLoader(dataset=data_set, batch_size=batch_size)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    loss_values = []
    path = []  # get_surface.set_para_loss(model, loss): POST-update w, b with PRE-update loss
    epoch_costs = []
    for epoch in range(epochs):
        with torch.no_grad():
            epoch_costs.append(criterion(model(data_set.x), data_set.y))
        for x, y in trainloader:  # each iter() draws one int64 from the global RNG
            yhat = model(x)
            loss = criterion(yhat, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            path.append((list(model.parameters())[0].item(), list(model.parameters())[1].item(), loss.tolist()))
            loss_values.append(loss)
    with torch.no_grad():
        final = criterion(model(data_set.x), data_set.y)
    epoch_costs.append(final)

    # accuracy cell
    yhat = model(data_set.x)
    yhat = torch.round(yhat)
    correct = 0
    for prediction, actual in zip(yhat, data_set.y):
        if prediction == actual:
            correct += 1
    accuracy = correct / len(data_set)
    return loss_values, epoch_costs, final, path, accuracy


def notebook_000(lab="logistic_high_lr", epochs=None, lr=None, batch_size=None) -> dict:
    """Run notebook 000 top to bottom up to and including the training cell of ``lab``.

    The knobs change only ``lab``'s own cell; every earlier training cell runs with the
    notebook's values, because the earlier cells decide the RNG state in which ``lab``'s
    model is built: each ``logistic_regression(1)`` draws its nn.Linear init, and every
    ``iter(DataLoader)`` (once per epoch, and once in the batch-10 demo cell) draws one
    int64 from the global generator even without shuffling.

    ``lab=None`` runs the whole notebook, as written, once, and returns every lab's dict
    by name (what one replay per lab would give, in a third of the time).
    """
    names = [n for n, *_ in NOTEBOOK_000_LABS]
    if lab is not None and lab not in names:
        raise ValueError(f"unknown 000 lab {lab!r}; one of {names}")

    torch.manual_seed(0)
    data_set = Data()
    model = logistic_regression(1)  # "Create the logistic_regression result"
    x = torch.tensor([-1.0])
    sigma = model(x)
    x, y = data_set[2]
    sigma = model(x)
    criterion = nn.BCELoss()
    x, y = data_set[0]
    sigma = model(x)
    loss = criterion(sigma, y)
    # "Setting the Batch Size using a Data Loader"
    batch_size_demo = 10
    trainloader = DataLoader(dataset=data_set, batch_size=batch_size_demo)
    dataset_iter = iter(trainloader)
    X, y = next(dataset_iter)
    learning_rate = 0.1
    optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate)

    results = {}
    for name, nb_epochs, nb_lr, nb_bs in NOTEBOOK_000_LABS:
        this = name == lab
        e = epochs if (this and epochs is not None) else nb_epochs
        r = lr if (this and lr is not None) else nb_lr
        bs = batch_size if (this and batch_size is not None) else nb_bs
        model = logistic_regression(1)
        initial = _wb(model)
        initial_sd = _clone_state(model)
        loss_values, epoch_costs, final, path, accuracy = _train_000(model, data_set, e, r, bs)
        results[name] = {
            "iteration_costs": _costs(loss_values),
            "epoch_costs": _costs(epoch_costs),
            "epoch_costs_kind": "start+final",
            "final_cost": final,
            "params": _wb(model),
            "initial_params": initial,
            "state_dict": _clone_state(model),
            "initial_state_dict": initial_sd,
            "path": path,
            "accuracy": accuracy,
            "x": data_set.x,
            "y": data_set.y,
        }
        if this:
            return results[name]
    return results


def logistic_minibatch(epochs: int = 500, lr: float = 0.01, batch_size: int = 5) -> dict:
    """000 "Logistic Regression With Mini-Batch Gradient Descent" (2nd model built)."""
    return notebook_000("logistic_minibatch", epochs, lr, batch_size)


def logistic_sgd(epochs: int = 100, lr: float = 0.01, batch_size: int = 1) -> dict:
    """000 "Stochastic Gradient Descent" (3rd model; after the 500-epoch mini-batch cell)."""
    return notebook_000("logistic_sgd", epochs, lr, batch_size)


def logistic_high_lr(epochs: int = 100, lr: float = 1.0, batch_size: int = 1) -> dict:
    """000 "High Learning Rate" (4th model; code uses lr=1 although the text says .1)."""
    return notebook_000("logistic_high_lr", epochs, lr, batch_size)


# ---------------------------------------------------------------------------------------
# 001 "Softmax in PyTorch"
# ---------------------------------------------------------------------------------------
class _DataSoftmax(Dataset):
    def __init__(self):
        self.x = torch.arange(-2, 2, 0.1).view(-1, 1)
        self.y = torch.zeros(self.x.shape[0])
        self.y[(self.x > -1.0)[:, 0] * (self.x < 1.0)[:, 0]] = 1
        self.y[(self.x >= 1.0)[:, 0]] = 2
        self.y = self.y.type(torch.LongTensor)  # type: ignore[call-overload]  # stubs omit the tensor-type-class argument
        self.len = self.x.shape[0]

    def __getitem__(self, index):
        return self.x[index], self.y[index]

    def __len__(self):
        return self.len


def softmax_1d(epochs: int = 300, lr: float = 0.01, batch_size: int = 5) -> dict:
    """001 "Softmax in PyTorch": manual_seed(0); Data(); nn.Sequential(nn.Linear(1, 3))."""
    torch.manual_seed(0)
    data_set = _DataSoftmax()
    model = nn.Sequential(nn.Linear(1, 3))
    initial = _clone_state(model)
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    trainloader = DataLoader(dataset=data_set, batch_size=batch_size)

    LOSS = []
    epoch_costs = []
    for epoch in range(epochs):
        with torch.no_grad():
            epoch_costs.append(criterion(model(data_set.x), data_set.y))
        for x, y in trainloader:
            optimizer.zero_grad()
            yhat = model(x)
            loss = criterion(yhat, y)
            LOSS.append(loss)
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        final = criterion(model(data_set.x), data_set.y)
    epoch_costs.append(final)

    z = model(data_set.x)
    _, yhat = z.max(1)
    correct = (data_set.y == yhat).sum().item()
    accuracy = correct / len(data_set)
    return {
        "iteration_costs": _costs(LOSS),
        "epoch_costs": _costs(epoch_costs),
        "epoch_costs_kind": "start+final",
        "final_cost": final,
        "params": _clone_state(model),
        "initial_params": initial,
        "accuracy": accuracy,
        "x": data_set.x,
        "y": data_set.y,
    }


# ---------------------------------------------------------------------------------------
# 001 "Shallow neural network in PyTorch"
# ---------------------------------------------------------------------------------------
class _ShallowNet(nn.Module):
    def __init__(self, D_in, H, D_out):
        super(_ShallowNet, self).__init__()
        self.linear1 = nn.Linear(D_in, H)
        self.linear2 = nn.Linear(H, D_out)
        self.a1 = None
        self.l1 = None
        self.l2 = None

    def forward(self, x):
        self.l1 = self.linear1(x)
        self.a1 = torch.sigmoid(self.l1)
        self.l2 = self.linear2(self.a1)
        yhat = torch.sigmoid(self.linear2(self.a1))
        return yhat


def shallow_net(epochs: int = 1000, lr: float = 0.1) -> dict:
    """001 "Shallow neural network": 1 -> 2 sigmoid -> 1 sigmoid, one sample per step.

    ``iteration_costs``: each sample's loss (40 per epoch).  ``notebook_costs``: the
    notebook's ``cost`` list (sum of the 40 sample losses of the epoch).
    ``epoch_costs``: whole-set MEAN cross entropy, computed here with
    ``criterion_cross(model(X)[:, 0], Y)`` (model(X) is (40, 1) and Y is (40,), so the
    notebook's criterion would broadcast to 40 x 40 without the [:, 0]).
    """
    torch.manual_seed(0)

    def criterion_cross(outputs, labels):
        out = -1 * torch.mean(labels * torch.log(outputs) + (1 - labels) * torch.log(1 - outputs))
        return out

    # Make some data
    X = torch.arange(-20, 20, 1).view(-1, 1).type(torch.FloatTensor)  # type: ignore[call-overload]  # stubs omit the tensor-type-class argument
    Y = torch.zeros(X.shape[0])
    Y[(X[:, 0] > -4) & (X[:, 0] < 4)] = 1.0

    D_in, H, D_out = 1, 2, 1
    learning_rate = lr
    model = _ShallowNet(D_in, H, D_out)
    initial = _clone_state(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate)

    # train(Y, X, model, optimizer, criterion_cross, epochs)
    cost = []
    iteration_costs = []
    epoch_costs = []
    total = 0
    for epoch in range(epochs):
        with torch.no_grad():
            epoch_costs.append(criterion_cross(model(X)[:, 0], Y))
        total = 0
        for y, x in zip(Y, X):
            yhat = model(x)
            loss = criterion_cross(yhat, y)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            iteration_costs.append(loss.detach())
            total += loss.item()
        cost.append(total)
    with torch.no_grad():
        final = criterion_cross(model(X)[:, 0], Y)
    epoch_costs.append(final)

    with torch.no_grad():
        accuracy = ((model(X)[:, 0] > 0.5).float() == Y).float().mean().item()
    return {
        "iteration_costs": _costs(iteration_costs),
        "epoch_costs": _costs(epoch_costs),
        "epoch_costs_kind": "start+final",
        "notebook_costs": torch.tensor(cost, dtype=torch.float64),
        "final_cost": final,
        "params": _clone_state(model),
        "initial_params": initial,
        "accuracy": accuracy,
        "x": X,
        "y": Y,
    }


# ---------------------------------------------------------------------------------------
# 001 "Deep neural networks with PyTorch" (two bumps)
# ---------------------------------------------------------------------------------------
class _DataBumps(Dataset):
    def __init__(self):
        self.x = torch.linspace(-20, 20, 100).view(-1, 1)
        self.y = torch.zeros(self.x.shape[0])
        self.y[(self.x[:, 0] > -10) & (self.x[:, 0] < -5)] = 1
        self.y[(self.x[:, 0] > 5) & (self.x[:, 0] < 10)] = 1
        self.y = self.y.view(-1, 1)
        self.len = self.x.shape[0]

    def __getitem__(self, index):
        return self.x[index], self.y[index]

    def __len__(self):
        return self.len


class _DeepNet(nn.Module):
    def __init__(self, D_in, H, D_out):
        super(_DeepNet, self).__init__()
        self.linear1 = nn.Linear(D_in, H)
        self.linear2 = nn.Linear(H, D_out)

    def forward(self, x):
        x = torch.sigmoid(self.linear1(x))
        x = torch.sigmoid(self.linear2(x))
        return x


def deep_bumps(epochs: int = 600, lr: float = 0.1, batch_size: int = 100) -> dict:
    """001 "Deep neural networks": 1 -> 9 sigmoid -> 1 sigmoid, BCELoss, Adam lr 0.1.

    The notes never build ``data_set``; ``Data()`` draws no random numbers, so its
    position does not matter.  manual_seed(0) immediately before ``Net(1, 9, 1)``.
    """
    data_set = _DataBumps()
    torch.manual_seed(0)
    model = _DeepNet(1, 9, 1)
    initial = _clone_state(model)
    learning_rate = lr
    criterion = nn.BCELoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    train_loader = DataLoader(dataset=data_set, batch_size=batch_size)

    cost = []
    iteration_costs = []
    epoch_costs = []
    for epoch in range(epochs):
        with torch.no_grad():
            epoch_costs.append(criterion(model(data_set.x), data_set.y))
        total = 0
        for x, y in train_loader:
            optimizer.zero_grad()
            yhat = model(x)
            loss = criterion(yhat, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            iteration_costs.append(loss.detach())
            total += loss.item()
        cost.append(total)
    with torch.no_grad():
        final = criterion(model(data_set.x), data_set.y)
    epoch_costs.append(final)

    with torch.no_grad():
        accuracy = ((model(data_set.x) > 0.5).float() == data_set.y).float().mean().item()
    return {
        "iteration_costs": _costs(iteration_costs),
        "epoch_costs": _costs(epoch_costs),
        "epoch_costs_kind": "start+final",
        "notebook_costs": torch.tensor(cost, dtype=torch.float64),
        "final_cost": final,
        "params": _clone_state(model),
        "initial_params": initial,
        "accuracy": accuracy,
        "x": data_set.x,
        "y": data_set.y,
    }
