"""cnnlib: a convolutional neural network built from scratch in NumPy.

Every layer is a pair of pure functions, `out, cache = *_forward(...)` and
`grads = *_backward(dout, cache)`, in NCHW layout (N batch, C channels, H x W pixels).
The `*_naive` functions are plain loops written to be read; the others run the fast versions
in cnnlib/engine/ (lesson 11), tested against the loops and against finite differences.
Importing cnnlib, and training with it, change nothing outside it: no process-wide setting.
"""

import numpy as _numpy

# The course supports NumPy 2.0 and newer (pyproject.toml); older ones fail in obscure places.
if int(_numpy.__version__.split(".")[0]) < 2:
    raise ImportError(
        f"cnnlib needs NumPy 2.0 or newer, and this Python ({_numpy.__file__}) has NumPy "
        f"{_numpy.__version__}. Upgrade it with `pip install 'numpy>=2'` (in a notebook: "
        "`%pip install 'numpy>=2'`), then restart the Python session or kernel."
    )

from .activations import relu_backward, relu_forward
from .batchnorm import (
    batchnorm2d_backward,
    batchnorm2d_backward_naive,
    batchnorm2d_forward,
    batchnorm2d_forward_naive,
)
from .conv import conv2d_backward, conv2d_backward_naive, conv2d_forward, conv2d_forward_naive
from .dense import dense_backward, dense_forward
from .dropout import dropout_backward, dropout_forward
from .flatten import flatten_backward, flatten_forward, unflatten
from .gradcheck import numerical_gradient, rel_error
from .losses import softmax_cross_entropy
from .pool import (
    avgpool2d_backward,
    avgpool2d_backward_naive,
    avgpool2d_forward,
    avgpool2d_forward_naive,
    maxpool2d_backward,
    maxpool2d_backward_naive,
    maxpool2d_forward,
    maxpool2d_forward_naive,
)

__version__ = "0.1.0"

# Layer classes, the Sequential model, initialisers, optimizers and the training loop.
from .init import glorot_uniform, he_normal
from .layers import AvgPool2D, Conv2D, Dense, Flatten, Layer, MaxPool2D, ReLU
from .layers import BatchNorm2D, Dropout
from .model import Sequential, reference_cnn
from .optim import SGD, Adam
from .optim import AdamW
from .train import evaluate, fit
from .train import predict
from . import augment


def __getattr__(name):
    # `cnnlib.datasets` loads on first use: it imports scikit-learn and pooch, which take a
    # second or two that lessons without data should not pay. `cnnlib.check` is for learners'
    # own code, and loads on first use too.
    if name in ("datasets", "check"):
        import importlib

        return importlib.import_module("." + name, __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
