"""A dataset of your own for gdrun: a function that returns its inputs and targets as arrays.

    PYTHONPATH=. gdrun --config-dir conf data=waves model=mlp optim=adam optim.lr=0.02 optim.epochs=300

gdrun calls waves(**the keys of its YAML) and takes (x, y): x (n, features), y (n,) or (n, outputs)
as floats for regression (whole numbers or text would be classes). It may also return
(x, y, x_val, y_val), a dict with those keys, or a gdrun.training.data.Dataset.
"""

import numpy as np


def waves(n=200, frequency=3.0, noise=0.1, seed=0):
    """y = sin(frequency * x) + noise on n points x in [-1, 1]."""
    rng = np.random.default_rng(seed)
    x = np.linspace(-1, 1, n, dtype=np.float32).reshape(-1, 1)
    y = np.sin(frequency * x) + noise * rng.standard_normal(x.shape).astype(np.float32)
    return x, y
