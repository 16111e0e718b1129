"""Weight initialisation: random starting weights whose scale keeps signals in range.

If every weight started at 0, every filter would compute the same thing and receive the same
gradient forever. Random weights break that symmetry; their spread is set by the fan-in (how
many inputs feed one output) so that activations neither blow up nor fade layer after layer:

- He (Kaiming) normal, std = sqrt(2 / fan_in), for layers followed by ReLU (ReLU zeroes
  about half its inputs, the 2 makes up for it);
- Glorot (Xavier) uniform, limit = sqrt(6 / (fan_in + fan_out)), for layers with no ReLU
  after them, such as the dense layer that produces the logits.

For a conv layer with w of shape (F, C, KH, KW), fan_in = C*KH*KW and fan_out = F*KH*KW;
for a dense layer with w of shape (D, M), fan_in = D and fan_out = M.
"""

import numbers

import numpy as np

from ._validate import as_shape

INITS = ("he", "glorot")


def as_generator(rng):
    """Return a np.random.Generator: `rng` itself, a new one seeded with the int `rng`, or,
    for None, a new one seeded from the operating system (different weights every run).

    Passing one Generator to several layers makes them draw one after the other from the same
    stream, so each gets different weights; passing the same int to each would give copies.
    """
    if rng is None or isinstance(rng, np.random.Generator):
        return np.random.default_rng(rng)
    if isinstance(rng, bool) or not isinstance(rng, numbers.Integral):
        raise TypeError(f"rng must be an int seed, a np.random.Generator or None, got {rng!r}")
    return np.random.default_rng(int(rng))


def he_normal(shape, fan_in, rng):
    """He normal initialisation: samples of N(0, 2 / fan_in).

    Parameters
    ----------
    shape : tuple of int, the shape of the weight array.
    fan_in : int, the number of inputs that feed one output.
    rng : int or np.random.Generator

    Returns
    -------
    w : ndarray of `shape`, float64.
    """
    shape = as_shape(shape, "shape")
    _check_fan(fan_in, "fan_in")
    return as_generator(rng).normal(0.0, np.sqrt(2.0 / fan_in), size=shape)


def glorot_uniform(shape, fan_in, fan_out, rng):
    """Glorot uniform initialisation: samples of U(-limit, limit), limit = sqrt(6 / (fan_in + fan_out)).

    Parameters
    ----------
    shape : tuple of int, the shape of the weight array.
    fan_in, fan_out : int, the number of inputs to one output and of outputs of one input.
    rng : int or np.random.Generator

    Returns
    -------
    w : ndarray of `shape`, float64.
    """
    shape = as_shape(shape, "shape")
    _check_fan(fan_in, "fan_in")
    _check_fan(fan_out, "fan_out")
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return as_generator(rng).uniform(-limit, limit, size=shape)


def init_weights(init, shape, fan_in, fan_out, rng, dtype):
    """Weights drawn by the initialiser named `init` ("he" or "glorot"), cast to `dtype`."""
    if init not in INITS:
        raise ValueError(f"init must be one of {', '.join(map(repr, INITS))}, got {init!r}")
    dtype = check_float_dtype(dtype)
    w = he_normal(shape, fan_in, rng) if init == "he" else glorot_uniform(shape, fan_in, fan_out, rng)
    return w.astype(dtype, copy=False)


def check_float_dtype(dtype):
    """Return np.dtype(dtype) if it is float32 or float64, the two precisions the layers support.

    Either byte order is taken ('>f4' is float32 all the same) and the machine's own returned.
    """
    try:
        dtype = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"dtype must be np.float32 or np.float64, got {dtype!r}") from exc
    if dtype.kind == "f":
        dtype = dtype.newbyteorder("=")
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"dtype must be np.float32 or np.float64, got {dtype}")
    return dtype


def _check_fan(fan, name):
    if isinstance(fan, bool) or not isinstance(fan, numbers.Integral) or fan < 1:
        raise ValueError(f"{name} must be a positive int, got {fan!r}")
