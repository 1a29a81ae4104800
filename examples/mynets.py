"""A model of your own for gdrun: a class (or a function) that gdrun calls with the data's sizes.

    PYTHONPATH=. gdrun data=csv data.path=cars.csv data.target=fuel data.features=[engine_litres,power_kw,consumption] \
        data.standardize=true model=custom model._target_=mynets.SmallNet +model.width=16

gdrun calls SmallNet(input_shape=..., num_outputs=..., output=..., width=16): input_shape is one
sample's shape (a tuple: (5,) for five features, (3, 32, 32) for colour images), num_outputs the
width of the last layer (one per class, one per regression target), output the last layer the
loss needs ("identity" for mse and cross entropy on logits, "sigmoid" for bce, "log_softmax" for nll).
"""

import math

from torch import nn

from gdrun.training.models import OUTPUTS  # "identity" -> nn.Identity, "sigmoid" -> nn.Sigmoid, ...


class SmallNet(nn.Module):
    """Fully connected: the flattened input, `depth` tanh layers of `width` units, then the outputs."""

    def __init__(self, input_shape, num_outputs, output, width=32, depth=2):
        super().__init__()
        layers = [nn.Flatten()]
        size = math.prod(input_shape)
        for _ in range(depth):
            layers += [nn.Linear(size, width), nn.Tanh()]
            size = width
        layers += [nn.Linear(size, num_outputs), OUTPUTS[output]()]
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        return self.layers(x)
