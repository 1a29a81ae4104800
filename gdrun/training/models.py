"""Models named by the model configs' _target_.

Every builder takes `input_shape` and `num_outputs` from the dataset and `output` from the
loss (the last layer the loss needs: identity, sigmoid or log_softmax), then its own config
keys. Parameter names are short on purpose: a linear model's are `weight` and `bias`, the
names a lab's fixed initial values and the loss-surface plot use.
"""

import math
from collections import OrderedDict
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

OUTPUTS: Dict[str, Callable[[], nn.Module]] = {
    "identity": nn.Identity,
    "sigmoid": nn.Sigmoid,
    "log_softmax": lambda: nn.LogSoftmax(dim=1),
}
ACTIVATIONS: Dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
}


class Linear(nn.Linear):
    """y = out(x·Wᵀ + b) on flattened inputs; with a sigmoid out this is logistic regression."""

    def __init__(self, in_features: int, out_features: int, bias: bool, output: str):
        super().__init__(in_features, out_features, bias=bias)
        self.out = OUTPUTS[output]()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(super().forward(x.flatten(1)))


def linear(
    input_shape: Tuple[int, ...], num_outputs: int, output: str, bias: bool = True, init: Optional[Dict] = None
) -> nn.Module:
    """Linear regression, or logistic / softmax regression when the loss asks for a sigmoid or logits."""
    model = Linear(math.prod(input_shape), num_outputs, bias, output)
    return set_initial_values(model, init)


def mlp(
    input_shape: Tuple[int, ...],
    num_outputs: int,
    output: str,
    hidden: Sequence[int],
    activation: str,
    dropout: float = 0.0,
    init: Optional[Dict] = None,
) -> nn.Module:
    """Fully connected layers `hidden1`, `hidden2`, ... with one activation (and dropout), then `out`."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"model.activation={activation} is not one of {', '.join(ACTIVATIONS)}")
    layers: List[Tuple[str, nn.Module]] = [("flatten", nn.Flatten())]
    width = math.prod(input_shape)
    for i, size in enumerate(hidden, start=1):
        layers += [(f"hidden{i}", nn.Linear(width, size)), (f"act{i}", ACTIVATIONS[activation]())]
        if dropout > 0:
            layers.append((f"dropout{i}", nn.Dropout(dropout)))
        width = size
    layers += [("out", nn.Linear(width, num_outputs)), ("out_activation", OUTPUTS[output]())]
    return set_initial_values(nn.Sequential(OrderedDict(layers)), init)


def cnn(
    input_shape: Tuple[int, ...],
    num_outputs: int,
    output: str,
    channels: Sequence[int],
    hidden: int,
    init: Optional[Dict] = None,
) -> nn.Module:
    """Small convnet for images (C, H, W): [conv 3x3, ReLU, 2x2 max-pool] per channel count, then two dense layers."""
    if len(input_shape) != 3:
        raise ValueError(f"cnn needs image inputs (channels, height, width), got {input_shape}")
    blocks, size = [], input_shape[1:]
    in_channels = input_shape[0]
    for out_channels in channels:
        blocks += [nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        in_channels, size = out_channels, (size[0] // 2, size[1] // 2)
    flat = in_channels * size[0] * size[1]
    model = nn.Sequential(
        *blocks, nn.Flatten(), nn.Linear(flat, hidden), nn.ReLU(), nn.Linear(hidden, num_outputs), OUTPUTS[output]()
    )
    return set_initial_values(model, init)


def set_initial_values(model: nn.Module, init: Optional[Dict]) -> nn.Module:
    """Overwrite named parameters with fixed values (a lab's w = -15, b = -10); the rest keep their random init."""
    if not init:
        return model
    params = dict(model.named_parameters())
    unknown = sorted(set(init) - set(params))
    if unknown:
        raise ValueError(
            f"model.init names {unknown}, which this model does not have; its parameters are {sorted(params)}"
        )
    with torch.no_grad():
        for name, value in init.items():
            value = torch.as_tensor(value, dtype=params[name].dtype)
            if value.shape != params[name].shape:
                raise ValueError(
                    f"model.init.{name} has shape {list(value.shape)}, the parameter has {list(params[name].shape)}"
                )
            params[name].copy_(value)
    return model
