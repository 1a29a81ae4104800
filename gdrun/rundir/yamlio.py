"""YAML as OmegaConf reads and writes it, through libyaml's C parser and emitter.

A run folder's record (`.hydra/config.yaml`, `hydra.yaml`, `overrides.yaml`) is OmegaConf's YAML:
its loader reads `1e-3` as a float and no timestamps, refuses a key given twice, and its dumper
quotes a string that would read back as another type. PyYAML's pure-Python parser and emitter
take ~7 ms for one job's hydra.yaml; a 256-job sweep writes 768 such files and its pictures and
summary read them back. These classes keep OmegaConf's rules (its own resolver, constructor and
representer classes) with libyaml doing the text: the same text, ten times faster
(tests/test_yamlio.py holds them equal to OmegaConf.to_yaml and OmegaConf.load).
"""

from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf
from omegaconf._utils import get_omega_conf_dumper, get_yaml_loader
from yaml.constructor import SafeConstructor
from yaml.representer import Representer
from yaml.resolver import Resolver

try:  # libyaml is part of PyYAML's wheels; a PyYAML built without it falls back to OmegaConf's own classes
    from yaml._yaml import CEmitter, CParser

    _C = True
except ImportError:  # pragma: no cover
    _C = False
_OmegaConfLoader = get_yaml_loader()
_OmegaConfDumper = get_omega_conf_dumper()

if _C:

    class Loader(CParser, _OmegaConfLoader):  # type: ignore[misc,valid-type]
        """OmegaConf's loader (resolvers, duplicate-key check) on libyaml's parser."""

        def __init__(self, stream: Any) -> None:
            CParser.__init__(self, stream)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)

    class Dumper(CEmitter, _OmegaConfDumper):  # type: ignore[misc,valid-type]
        """OmegaConf's dumper (its quoting of strings) on libyaml's emitter."""

        def __init__(
            self,
            stream: Any,
            default_style: Any = None,
            default_flow_style: bool = False,
            sort_keys: bool = False,
            **emitter: Any,
        ):
            CEmitter.__init__(self, stream, **emitter)
            Representer.__init__(self, default_style, default_flow_style, sort_keys)
            Resolver.__init__(self)

else:  # pragma: no cover - PyYAML without libyaml
    Loader, Dumper = _OmegaConfLoader, _OmegaConfDumper  # type: ignore[misc]


def load(text: "str | bytes") -> Any:
    """YAML text as plain data, as OmegaConf.load reads it (before it becomes a config)."""
    return yaml.load(text, Loader=Loader)


def to_yaml(cfg: Any) -> str:
    """OmegaConf.to_yaml(cfg), the same text."""
    container = OmegaConf.to_container(cfg, resolve=False, enum_to_str=True) if OmegaConf.is_config(cfg) else cfg
    return yaml.dump(container, default_flow_style=False, allow_unicode=True, sort_keys=False, Dumper=Dumper)


def save(cfg: Any, path: Path) -> None:
    """What hydra.core.utils._save_config writes (the job's own record, as Hydra's run_job writes it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_yaml(cfg), encoding="utf-8")
