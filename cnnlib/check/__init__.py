"""Check your own layers: `from cnnlib import check`, then e.g. `check.conv2d(backward=my_conv_backward)`.

Each check runs your functions on a fixed set of small float64 cases (pad 0 and more, strides
1 to 3, non-square images and kernels, batch 1, overlapping windows, tied maxima, large logits),
compares them with cnnlib's and with finite differences of your own forward, and returns a
Report: `report.passed`, `report.hints` (one explanation per classic mistake it recognised,
pointing to the lesson that explains it) and `report.mistakes` (their keys in the catalogue),
`print(report)`, or the report itself as the last line of a notebook cell for a table. Your
exceptions are caught and reported with the line of your code that raised; a stub that raises
NotImplementedError is reported as not written yet.

The catalogue of recognised mistakes is `cnnlib/check/mistakes.py`; the lessons' working
functions, which the exercise editions fall back to, are `cnnlib/check/reference.py`.
"""

from . import reference
from ._core import TOLERANCE, Case, Report
from .basics import conv2d_one_channel, log_softmax, numerical_gradient, output_size, rel_error, softmax
from .bridge import flatten_dense, permute_dense_weights, pool_output_size, port_dense_weights, scatter_one
from .fallback import exercise
from .layers import avgpool2d, batchnorm2d, conv2d, dense, dropout, flatten, maxpool2d, relu, softmax_cross_entropy
from .training import adam, adamw, layer, network, sequential, sgd_momentum, sgd_weight_decay, train_epoch

__all__ = ["TOLERANCE", "Case", "Report", "avgpool2d", "conv2d", "dense", "exercise", "flatten", "maxpool2d",
           "relu", "softmax_cross_entropy", "conv2d_one_channel", "log_softmax", "numerical_gradient", "output_size",
           "rel_error", "softmax", "flatten_dense", "permute_dense_weights", "pool_output_size", "port_dense_weights",
           "scatter_one", "adam", "layer", "network", "sequential", "sgd_momentum", "train_epoch", "reference",
           "batchnorm2d", "dropout", "sgd_weight_decay", "adamw"]
