"""The search space, read from Hydra's override syntax (as hydra-optuna-sweeper read it) into Optuna's distributions.

    optim.lr=tag(log, interval(0.0001, 1))   FloatDistribution(0.0001, 1, log=True)
    optim.batch_size=choice(16, 32, full)    CategoricalDistribution([16, 32, 'full'])
    optim.lr=0.01,0.1,1                      CategoricalDistribution([0.01, 0.1, 1])
    optim.epochs=range(5, 50, 5)             IntDistribution(5, 45, step=5): 50 left out, as Hydra's range does
    optim.batch_size=32                      a fixed value: every trial gets it

hydra.sweeper.params comes first, the command line after it: a key given in both takes the command
line's (a plain value there fixes a key the preset searches).
"""

from dataclasses import dataclass
from typing import Dict, List, Sequence

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import IntervalSweep, Override, RangeSweep, Transformer
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from gdrun.errors import GdrunError


@dataclass
class Space:
    """What each trial draws (key -> distribution) and the overrides every trial gets as they are."""

    distributions: Dict[str, BaseDistribution]
    fixed: List[str]

    def overrides(self, params: Dict[str, object]) -> List[str]:
        """A trial's overrides: its drawn values (key=value, as Hydra reads them back), then the fixed ones."""
        return [f"{key}={value}" for key, value in params.items()] + self.fixed


def read_space(params: Dict[str, str], arguments: Sequence[str]) -> Space:
    """The search space of hydra.sweeper.params and the command line's overrides."""
    lines = [f"{key}={value}" for key, value in params.items()] + list(arguments)
    by_key: Dict[str, Override] = {}
    for override in OverridesParser.create().parse_overrides(lines):
        by_key.pop(override.get_key_element(), None)  # the later one wins, in its own place
        by_key[override.get_key_element()] = override
    distributions: Dict[str, BaseDistribution] = {}
    fixed: List[str] = []
    for key, override in by_key.items():
        if override.is_sweep_override():
            distributions[key] = distribution(override)
        else:
            assert override.input_line is not None
            fixed.append(override.input_line)
    return Space(distributions, fixed)


def distribution(override: Override) -> BaseDistribution:
    """Optuna's distribution for one swept key: choice and a,b,c are categorical, interval and range numeric."""
    value = override.value()
    if override.is_choice_sweep() or (override.is_range_sweep() and isinstance(value, RangeSweep) and value.shuffle):
        choices = list(override.sweep_iterator(transformer=Transformer.encode))
        if not all(isinstance(c, (str, int, float, bool, type(None))) for c in choices):
            raise GdrunError(f"{override.input_line}: an Optuna search chooses among plain values, not lists or dicts")
        return CategoricalDistribution(choices)  # type: ignore[arg-type]
    if override.is_range_sweep():  # Hydra's range stops before `stop`, as Python's does; Optuna's high is included
        assert isinstance(value, RangeSweep) and value.start is not None and value.stop is not None
        values = [v for v in override.sweep_iterator() if isinstance(v, (int, float))]
        if not values:
            raise GdrunError(f"{override.input_line}: the range holds no value")
        if any(isinstance(v, float) for v in (value.start, value.stop, value.step)):
            return FloatDistribution(float(values[0]), float(values[-1]), step=float(value.step))
        return IntDistribution(int(values[0]), int(values[-1]), step=int(value.step))
    if override.is_interval_sweep():
        assert isinstance(value, IntervalSweep) and value.start is not None and value.end is not None
        log = "log" in value.tags
        if isinstance(value.start, int) and isinstance(value.end, int):
            return IntDistribution(value.start, value.end, log=log)
        return FloatDistribution(float(value.start), float(value.end), log=log)
    raise GdrunError(f"{override.input_line}: an Optuna search takes choice(...), a,b,c, range(...) or interval(...)")
