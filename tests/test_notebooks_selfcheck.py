"""Sanity checks on gdrun/notebooks.py, the notebook transcriptions gdrun is compared with.

Fast (shortened epochs where a full run is slow).  Run with
``python -m pytest tests/test_notebooks_selfcheck.py -q``.
"""

import functools
import math

import pytest
import torch

from gdrun.labs import notebooks as nb


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Tiny tensors: intra-op threads only add contention (10-100x slower on busy
    # 2-core machines); results are identical since nothing is big enough to split.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def hexof(t):
    return t.detach().to(torch.float32).contiguous().numpy().tobytes().hex()


@functools.lru_cache(maxsize=None)
def run(name, **kw):
    return getattr(nb, name)(**kw)


# shortened runs used by most checks: name -> kwargs
SHORT = {
    "slope": {},
    "linreg_bgd": {},
    "linreg_bgd_004": {},
    "linreg_sgd": {},
    "linreg_sgd_loader": {},
    "multilinear": {"epochs": 20},
    "multioutput": {"epochs": 20},
    "logistic_minibatch": {},
    "logistic_sgd": {},
    "logistic_high_lr": {"epochs": 5},
    "softmax_1d": {"epochs": 60},
    "shallow_net": {"epochs": 30},
    "deep_bumps": {"epochs": 100},
}


def short(name):
    return run(name, **SHORT[name])


@pytest.mark.parametrize("name", sorted(SHORT))
def test_cost_falls(name):
    r = short(name)
    ec, ic = r["epoch_costs"], r["iteration_costs"]
    assert ec.dtype == torch.float32 and ec.dim() == 1
    assert ic.dtype == torch.float32 and ic.dim() == 1
    assert torch.isfinite(ec).all() and torch.isfinite(ic).all()
    assert ec[-1] < 0.5 * ec[0], (name, ec[0].item(), ec[-1].item())
    assert r["final_cost"] < ec[0]
    # epoch-cost convention and length
    epochs = len(ec) - (1 if r["epoch_costs_kind"] == "start+final" else 0)
    if r["epoch_costs_kind"] == "start+final":
        torch.testing.assert_close(ec[-1], r["final_cost"].reshape(()))
    else:
        assert r["epoch_costs_kind"] == "start"
    # initial params are really the starting point: epoch cost 0 uses them
    assert epochs >= 1


@pytest.mark.parametrize(
    "name, kw, n, batch",
    [
        ("slope", {"iterations": 4}, 60, 60),
        ("linreg_bgd", {"iterations": 7}, 60, 60),
        ("linreg_sgd", {"epochs": 2}, 60, 1),
        ("linreg_sgd_loader", {"epochs": 2, "batch_size": 7}, 60, 7),
        ("multilinear", {"epochs": 3}, 20, 2),
        ("multilinear", {"epochs": 3, "batch_size": 3}, 20, 3),
        ("multioutput", {"epochs": 4}, 20, 5),
        ("multioutput", {"epochs": 2, "batch_size": 6}, 20, 6),
        ("softmax_1d", {"epochs": 3}, 40, 5),
        ("softmax_1d", {"epochs": 3, "batch_size": 7}, 40, 7),
        ("shallow_net", {"epochs": 2}, 40, 1),
        ("deep_bumps", {"epochs": 5}, 100, 100),
        ("deep_bumps", {"epochs": 2, "batch_size": 30}, 100, 30),
        ("logistic_minibatch", {"epochs": 3, "batch_size": 3}, 20, 3),
    ],
)
def test_iteration_count(name, kw, n, batch):
    r = run(name, **kw)
    epochs = kw.get("epochs", kw.get("iterations"))
    assert len(r["x"]) == n
    assert len(r["iteration_costs"]) == nb.n_iterations(n, batch, epochs) == epochs * math.ceil(n / batch)
    expected_epoch_len = epochs if r["epoch_costs_kind"] == "start" else epochs + 1
    assert len(r["epoch_costs"]) == expected_epoch_len


def test_000_paper_iteration_counts():
    # 000: 6 samples, batch 1 -> 6, 2 -> 3, 3 -> 2 iterations per epoch
    assert [nb.n_iterations(6, b, 1) for b in (1, 2, 3)] == [6, 3, 2]


def test_000_labels_float32_threshold():
    x, y = run("logistic_minibatch")["x"], run("logistic_minibatch")["y"]
    assert x.shape == (20, 1) and y.shape == (20, 1)
    # arange(-1, 1, 0.1)[12] is float32(0.2) and "> 0.2" compares in float32: label 0
    assert y[:, 0].tolist() == [0.0] * 13 + [1.0] * 7


@pytest.mark.parametrize("name", ["logistic_minibatch", "logistic_sgd"])
def test_000_lr_001_classifies_expected_points(name):
    r = run(name)
    w, b = r["params"]["w"], r["params"]["b"]
    pred = torch.round(torch.sigmoid(w * r["x"][:, 0] + b))
    assert pred.tolist() == r["y"][:, 0].tolist()
    assert r["accuracy"] == 1.0
    assert 0.2 < (-b / w).item() < 0.3  # decision boundary between the classes
    # saw-tooth: the iteration costs are not monotone but the epoch costs are
    assert (r["epoch_costs"][1:] <= r["epoch_costs"][:-1]).all()


def test_000_init_follows_notebook_rng():
    # Values the notebook's nn.Linear init yields when 000 runs top to bottom
    # (each model construction and every iter(DataLoader) advances the global RNG).
    expected = {
        "logistic_minibatch": ("f432c5be", "ec4b893e"),
        "logistic_sgd": ("7a0232bf", "a88e2cbf"),
        "logistic_high_lr": ("80e0b4bd", "b0d029bf"),
    }
    for name, (w, b) in expected.items():
        ip = short(name)["initial_params"]
        assert (hexof(ip["w"]), hexof(ip["b"])) == (w, b), name
    # the knobs of a lab do not move its own initial parameters
    assert hexof(run("logistic_sgd", epochs=1)["initial_params"]["w"]) == "7a0232bf"
    # and the 000 state_dict layout is linear.weight (1, 1) / linear.bias (1,)
    sd = short("logistic_minibatch")["initial_state_dict"]
    assert sd["linear.weight"].shape == (1, 1) and sd["linear.bias"].shape == (1,)


def test_000_dataloader_draws_rng():
    # The quirk the 000 inits rest on: iter() of a non-shuffling DataLoader
    # still draws from the global generator.
    torch.manual_seed(0)
    a = torch.rand(3)
    torch.manual_seed(0)
    iter(torch.utils.data.DataLoader(list(range(4)), batch_size=2))
    b = torch.rand(3)
    assert not torch.equal(a, b)


def test_001_inits_pinned():
    expected = {
        "multilinear": {"linear.weight": "88f41e3fb937f1bd", "linear.bias": "18f09a3e"},
        "multioutput": {
            "linear.weight": "9e9d07bd9aa7f1bec577dc3ef8b8603e",
            "linear.bias": "6907eabe0729eb3e",
        },
        "softmax_1d": {"0.weight": "0054f5bb5e54093f16b352bf", "0.bias": "80663cbff432c5beec4b893e"},
        "shallow_net": {
            "linear1.weight": "0054f5bb5e54093f",
            "linear1.bias": "16b352bf80663cbf",
            "linear2.weight": "d6708bbeab2a423e",
            "linear2.bias": "578a65bc",
        },
        "deep_bumps": {"linear2.bias": "8a529ebe"},
    }
    for name, params in expected.items():
        ip = short(name)["initial_params"]
        for k, h in params.items():
            assert hexof(ip[k]) == h, (name, k)


def test_linreg_data_and_fixed_inits():
    for name in ("linreg_bgd", "linreg_bgd_004", "linreg_sgd", "linreg_sgd_loader"):
        r = short(name)
        assert r["initial_params"]["w"].item() == -15.0 and r["initial_params"]["b"].item() == -10.0
    assert short("slope")["initial_params"]["w"].item() == -10.0
    # 003 and 004 use the same seed-1 data
    torch.testing.assert_close(short("linreg_bgd")["y"], short("linreg_sgd")["y"], rtol=0, atol=0)
    # 004's DataLoader section trains on noise-free data (notebook quirk)
    r = short("linreg_sgd_loader")
    torch.testing.assert_close(r["y"], 1 * r["x"] - 1, rtol=0, atol=0)


def test_004_comparison():
    bgd, sgd = short("linreg_bgd_004"), short("linreg_sgd")
    # the 004 BGD run is 003's code for 10 iterations
    torch.testing.assert_close(bgd["iteration_costs"], run("linreg_bgd", iterations=10)["iteration_costs"])
    # both start from the same whole-set cost; SGD falls faster
    assert bgd["epoch_costs"][0] == sgd["epoch_costs"][0]
    assert (sgd["epoch_costs"][1:] < bgd["epoch_costs"][1:]).all()


def test_linreg_lr_sweep_order():
    # 003 practice: lr 0.2 converges faster than 0.1 over 15 iterations
    assert run("linreg_bgd", lr=0.2)["final_cost"] < run("linreg_bgd")["final_cost"]


def test_classification_labels():
    assert torch.bincount(short("softmax_1d")["y"]).tolist() == [11, 19, 10]
    assert short("shallow_net")["y"].sum().item() == 7
    assert short("deep_bumps")["y"].sum().item() == 26


def test_functions_are_order_independent():
    a = nb.multioutput(epochs=2)
    nb.slope()
    b = nb.multioutput(epochs=2)
    for k in a["params"]:
        torch.testing.assert_close(a["params"][k], b["params"][k], rtol=0, atol=0)
    torch.testing.assert_close(a["iteration_costs"], b["iteration_costs"], rtol=0, atol=0)


def test_notebook_costs_conventions():
    d = short("deep_bumps")
    # one batch per epoch: the notebook's per-epoch total is that batch's pre-update loss
    torch.testing.assert_close(d["notebook_costs"].to(torch.float32), d["iteration_costs"])
    torch.testing.assert_close(d["notebook_costs"].to(torch.float32), d["epoch_costs"][:-1])
    s = short("shallow_net")
    sums = s["iteration_costs"].double().view(len(s["notebook_costs"]), 40).sum(1)
    torch.testing.assert_close(s["notebook_costs"], sums)
