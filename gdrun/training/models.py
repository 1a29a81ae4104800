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

from gdrun.config.checks import MAX_NUMBERS

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
    width = math.prod(input_shape)
    widths = [width, *hidden, num_outputs]
    check_size(sum((a + 1) * b for a, b in zip(widths, widths[1:])), f"model.hidden={list(hidden)}")
    layers: List[Tuple[str, nn.Module]] = [("flatten", nn.Flatten())]
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
    in_channels, size = input_shape[0], input_shape[1:]
    count = 0
    for k, out_channels in enumerate(channels):
        if min(size) < 2:  # a 2x2 max-pool of a 1-pixel-wide map is empty
            raise ValueError(
                f"model.channels={list(channels)} asks for {len(channels)} conv-and-pool blocks, but each halves "
                f"the {input_shape[1]}x{input_shape[2]} images and {k} leave 1 pixel; give at most {k} channel counts"
            )
        count += in_channels * out_channels * 9 + out_channels
        in_channels, size = out_channels, (size[0] // 2, size[1] // 2)
    flat = in_channels * size[0] * size[1]
    count += (flat + 1) * hidden + (hidden + 1) * num_outputs
    check_size(count, f"model.channels={list(channels)} and model.hidden={hidden}")
    blocks: List[nn.Module] = []
    for in_channels, out_channels in zip([input_shape[0], *channels], channels):
        blocks += [nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
    model = nn.Sequential(
        *blocks, nn.Flatten(), nn.Linear(flat, hidden), nn.ReLU(), nn.Linear(hidden, num_outputs), OUTPUTS[output]()
    )
    return set_initial_values(model, init)


def check_size(parameters: int, setting: str) -> None:
    """Refuse a model too large to be meant before torch tries to allocate it."""
    if parameters > MAX_NUMBERS:
        raise ValueError(
            f"{setting} makes a model of {parameters:,} parameters; gdrun builds at most 2**31 = {MAX_NUMBERS:,} "
            "(8 GiB of float32): give smaller layers"
        )


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
            shape = list(params[name].shape)
            try:
                tensor = torch.as_tensor(value, dtype=params[name].dtype)
            except (TypeError, ValueError, RuntimeError) as error:
                raise ValueError(
                    f"model.init.{name}={value} must be numbers: a number, or nested lists of them shaped {shape}"
                ) from error
            if tensor.shape != params[name].shape:
                raise ValueError(f"model.init.{name} has shape {list(tensor.shape)}, the parameter has {shape}")
            if not bool(torch.isfinite(tensor).all()):
                kind, bad = ("NaN", torch.isnan(tensor)) if bool(torch.isnan(tensor).any()) else ("inf", tensor.isinf())
                raise ValueError(
                    f"model.init.{name} contains {kind} ({int(bad.sum())} of {tensor.numel()} values); "
                    "give finite numbers"
                )
            params[name].copy_(tensor)
    return model
