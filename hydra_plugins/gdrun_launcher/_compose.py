"""Each job's config composed once: by Hydra for the first job of each shape, derived for the others.

Hydra composes a job's config from scratch (~0.15 s: the defaults tree, every YAML file, the
schemas), and its basic sweeper and launcher each do it once per job. Most jobs of a sweep differ
from another only in plain values (optim.lr=0.1 against optim.lr=0.01): such a job's config is
the other's with those values set, as Hydra would set them (OmegaConf.update into the typed,
struct config, so a misspelled key or a wrong type still fails), and its record of itself
(hydra.overrides.task, hydra.job.override_dirname) rewritten as Hydra writes it. Anything else
(a group choice such as optim=adam, +key, ~key, a dict or list value, a hydra.* key) is composed
by Hydra. tests/test_gdrun_launcher.py checks that both give the same YAML.
"""

import pickle
from typing import Dict, List, Optional, Sequence, Tuple

from hydra._internal.config_loader_impl import get_overrides_dirname
from hydra.core.config_loader import ConfigLoader
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, OverrideType
from omegaconf import DictConfig, OmegaConf, open_dict, read_write
from omegaconf.errors import OmegaConfBaseException

# A job's shape: per override, ("value", key) for a plain value that may differ between jobs of the
# same shape, or ("fixed", the override as typed) for one that must be the same.
Shape = Tuple[Tuple[str, str], ...]


class JobComposer:
    """Compose the configs of a sweep's jobs, each once; `derived` counts the ones not composed by Hydra."""

    def __init__(self, config_loader: ConfigLoader, master: DictConfig):
        self.loader = config_loader
        self.master = master  # the sweep's config, as Hydra composed it for the multirun
        self.parser = OverridesParser.create()
        # Untouched copies of the first job of each shape, pickled: unpickling one is ~5x faster than
        # copy.deepcopy of the config, the largest part of a derived job's cost in a 256-job grid.
        self.templates: Dict[Shape, bytes] = {}
        self.derived = 0
        # Each distinct override parsed once, each key's group-ness looked up once: a 256-job grid has 37
        # distinct overrides among its 1,280, and Hydra's parser takes ~1 ms for one.
        self.parsed: Dict[str, Override] = {}
        self.groups: Dict[str, bool] = {}

    def compose(self, overrides: Sequence[str], number: int) -> DictConfig:
        """Job `number`'s config, as Hydra's launchers make it (load_sweep_config, then hydra.job.id and num)."""
        parsed = [self.parse(override) for override in overrides]
        shape = self.shape(parsed)
        template = self.templates.get(shape) if shape is not None else None
        cfg = derive(template, parsed, shape, self.master) if template is not None and shape is not None else None
        if cfg is None:  # the first of its shape, or a value Hydra should refuse in its own words
            cfg = self.loader.load_sweep_config(self.master, list(overrides))
            if shape is not None and shape not in self.templates:
                self.templates[shape] = pickle.dumps(cfg)
        else:
            self.derived += 1
        with open_dict(cfg):
            cfg.hydra.job.id = number
            cfg.hydra.job.num = number
        return cfg

    def parse(self, override: str) -> Override:
        """One override as Hydra's parser reads it (OverrideParseException for a bad one, as Hydra says it)."""
        if override not in self.parsed:
            self.parsed[override] = self.parser.parse_overrides([override])[0]
        return self.parsed[override]

    def shape(self, overrides: List[Override]) -> Optional[Shape]:
        """Which overrides are plain values another job's config may take; None when none can be derived."""
        if any(o.is_sweep_override() for o in overrides):
            return None
        groups = [self.is_group(o) for o in overrides]
        shape: List[Tuple[str, str]] = []
        for i, override in enumerate(overrides):
            key = override.key_or_group
            others = [o.key_or_group for j, o in enumerate(overrides) if j != i and not groups[j]]
            plain = (
                override.type == OverrideType.CHANGE
                and override.package is None
                and not override.is_hydra_override()
                and not groups[i]
                and isinstance(override.value(), (str, int, float, bool, type(None)))
                # the same key twice, or a key inside another's: the order of the two would matter
                and not any(k == key or k.startswith(key + ".") or key.startswith(k + ".") for k in others)
            )
            assert override.input_line is not None
            shape.append(("value", key) if plain else ("fixed", override.input_line))
        return tuple(shape)

    def is_group(self, override: Override) -> bool:
        """A config group choice (optim=adam, hydra/launcher=basic): it changes which files make the config."""
        key = override.key_or_group
        if key not in self.groups:
            repository = getattr(self.loader, "repository", None)  # ConfigLoaderImpl's: every group on the path
            exists = repository is not None and repository.group_exists(key)
            self.groups[key] = "/" in key or key in self.master.hydra.runtime.choices or exists
        return self.groups[key]


def derive(template: bytes, overrides: List[Override], shape: Shape, master: DictConfig) -> Optional[DictConfig]:
    """`template` (a job of the same shape, pickled) with these overrides' values; None when OmegaConf refuses one."""
    cfg = pickle.loads(template)  # a config gdrun pickled itself, a moment ago
    try:
        for (kind, key), override in zip(shape, overrides):
            if kind == "value":  # the fixed ones are the template's own
                OmegaConf.update(cfg, key, override.value(), merge=True)
    except OmegaConfBaseException:  # a misspelled key, a wrong type: Hydra composes it and says why
        return None
    task = [o for o in overrides if not o.is_hydra_override()]
    naming = cfg.hydra.job.config.override_dirname
    with read_write(cfg.hydra), open_dict(cfg.hydra):
        cfg.hydra.overrides.task = [o.input_line for o in task]
        cfg.hydra.job.override_dirname = get_overrides_dirname(
            overrides=task, kv_sep=naming.kv_sep, item_sep=naming.item_sep, exclude_keys=naming.exclude_keys
        )
    OmegaConf.copy_cache(from_config=master, to_config=cfg)  # ${now:...} as the sweep resolved it, as Hydra does
    return cfg
