"""The search space of gdrun's Optuna sweeper, read from Hydra's override syntax into Optuna's distributions."""

import pytest

optuna = pytest.importorskip("optuna", reason='the optuna extra: pip install -e ".[optuna]" (make test does)')
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution  # noqa: E402 - after the skip

from hydra_plugins.gdrun_optuna._space import read_space  # noqa: E402 - after the skip


def test_each_sweep_syntax_is_its_distribution():
    space = read_space(
        {},
        [
            "optim.lr=tag(log, interval(0.0001, 1))",
            "optim.batch_size=choice(16, 32, full)",
            "optim.momentum=0.5,0.9",
            "optim.epochs=range(5, 50, 5)",
            "data=digits",
        ],
    )
    assert space.distributions == {
        "optim.lr": FloatDistribution(0.0001, 1.0, log=True),
        "optim.batch_size": CategoricalDistribution([16, 32, "full"]),
        "optim.momentum": CategoricalDistribution([0.5, 0.9]),
        "optim.epochs": IntDistribution(5, 45, step=5),  # Hydra's range stops before 50
    }
    assert space.fixed == ["data=digits"]
    assert space.overrides({"optim.lr": 0.01, "optim.batch_size": "full"}) == [
        "optim.lr=0.01",
        "optim.batch_size=full",
        "data=digits",
    ]


def test_the_command_line_overrides_the_presets_space():
    preset = {"optim.lr": "tag(log, interval(0.0001, 1.0))", "optim.batch_size": "choice(16, 32)"}
    space = read_space(preset, ["optim.batch_size=32", "optim.lr=interval(0.01, 0.1)"])
    assert space.distributions == {"optim.lr": FloatDistribution(0.01, 0.1)}  # narrowed, and no longer log
    assert space.fixed == ["optim.batch_size=32"]  # a plain value fixes what the preset searched
