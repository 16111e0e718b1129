"""How a layer's backward is called: the rules Layer.backward and Sequential.backward share.

input_grad=False means nothing will use dx (the first layer of a network in training):
- a layer without weights then has nothing to compute, so its backward is not called;
- a backward that takes the input_grad keyword is told, and may skip dx (Conv2D and Dense
  do); one that does not, a learner's own for example, computes dx, which is dropped.
"""

import functools
import inspect


def run_backward(backward, *args, input_grad, params):
    """dx = backward(*args) by the rules above, or None when input_grad is False.

    Parameters
    ----------
    backward : callable, a layer's backward (or a Layer's _backward).
    *args : what it takes before the flag: (dout,) or (dout, cache).
    input_grad : bool, already checked.
    params : the layer's dict of parameters, empty for a layer without weights.
    """
    if not input_grad and not params:
        return None  # no weights to train and no one wants dx: nothing to compute
    dx = call_backward(backward, *args, input_grad=input_grad)
    return dx if input_grad else None


def call_backward(backward, *args, input_grad):
    """backward(*args, input_grad=input_grad) if `backward` takes that keyword, else
    backward(*args), which computes dx whatever the flag (the caller then drops it)."""
    function = getattr(backward, "__func__", backward)  # a method: its class's function, one per class
    try:
        takes_flag = _takes_input_grad(function)
    except TypeError:  # an unhashable callable, which lru_cache cannot keep: read it every time
        takes_flag = _takes_input_grad.__wrapped__(function)
    return backward(*args, input_grad=input_grad) if takes_flag else backward(*args)


@functools.lru_cache(maxsize=None)  # 30 us per read: 5 a step were 8% of a digits step
def _takes_input_grad(function):
    try:
        return "input_grad" in inspect.signature(function).parameters
    except (TypeError, ValueError):  # e.g. a builtin, which has no signature to read
        return False
