"""A run's record written and read through libyaml (rundir.yamlio) is OmegaConf's YAML, to the byte."""

import pytest
import yaml
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from gdrun.config.schema import register
from gdrun.rundir import yamlio

TRICKY = {
    "float_as_typed": "1e-3",  # a string that OmegaConf's loader would read as a float: quoted
    "date": "2026-12-01",  # would read as a timestamp in plain YAML: quoted
    "yes": "true",
    "number": "0.1",
    "empty": "",
    "unicode": "λ · ü",
    "long": "word " * 40,
    "nested": {"list": [1, 2.5, None, "x", {"k": "v"}], "inf": float("inf")},
    "multiline": "one\ntwo",
}


@pytest.fixture(scope="module")
def full_config():
    register()
    with initialize_config_module(config_module="gdrun.conf", version_base="1.3"):
        return compose("config", ["lab=linreg_sgd", "optim.lr=0.001"], return_hydra_config=True)


def test_the_text_is_omegaconfs(full_config):
    assert yamlio.to_yaml(full_config) == OmegaConf.to_yaml(full_config)
    assert yamlio.to_yaml(full_config.hydra) == OmegaConf.to_yaml(full_config.hydra)
    tricky = OmegaConf.create(TRICKY)
    assert yamlio.to_yaml(tricky) == OmegaConf.to_yaml(tricky)


def test_it_reads_what_omegaconf_reads(full_config):
    text = OmegaConf.to_yaml(full_config) + "hand: 1e-3\nwhen: 2026-12-01\n"
    assert yamlio.load(text) == OmegaConf.to_container(OmegaConf.create(text))
    assert yamlio.load(yamlio.to_yaml(OmegaConf.create(TRICKY))) == TRICKY


def test_a_key_given_twice_is_refused_as_omegaconf_refuses_it():
    with pytest.raises(yaml.YAMLError, match="duplicate key"):
        yamlio.load("lr: 0.1\nlr: 0.2\n")
