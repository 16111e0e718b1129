"""Lesson 9 as learners write it: an SGD-with-momentum step, an Adam step, a training epoch.

sgd_momentum_step(params, grads, velocity, lr=, momentum=) and adam_step(params, grads, state,
lr=, beta1=, beta2=, eps=) update params in place (dicts name -> array; velocity and state are
kept by the caller, {} at the start). train_one_epoch(model, x, y, step, batch_size, rng) shuffles
with rng.permutation, steps once per mini-batch and returns the mean loss over the samples.
Written for issue 23 from the lesson's stubs, without reading cnnlib/check.
"""

import numpy as np

from cnnlib import softmax_cross_entropy

from . import IN_PLACE, Learner

# ----------------------------------------------------------------------------------------
# SGD with momentum
# ----------------------------------------------------------------------------------------


def ufunc_sgd(params, grads, velocity, lr=0.01, momentum=0.9):
    """out= ufuncs for every update."""
    for name, p in params.items():
        v = velocity.setdefault(name, np.zeros_like(p))
        np.multiply(v, momentum, out=v)
        np.add(v, grads[name], out=v)
        np.subtract(p, lr * v, out=p)


def cs231n_sgd(params, grads, velocity, lr=0.01, momentum=0.9):
    """v = mu*v - lr*g; p += v: the velocity holds -lr times the course's, the step is the same."""
    for name, p in params.items():
        v = velocity.get(name, np.zeros_like(p))
        v = momentum * v - lr * grads[name]
        velocity[name] = v
        p += v


def clearing_sgd(params, grads, velocity, lr=0.01, momentum=0.9):
    """Empties the grads dict after the update, "zeroing the gradients" PyTorch-style."""
    for name, p in params.items():
        v = velocity.setdefault(name, np.zeros_like(p))
        v *= momentum
        v += grads[name]
        p -= lr * v
    grads.clear()


def rebinding_v_sgd(params, grads, velocity, lr=0.01, momentum=0.9):
    """v = momentum * v + g makes a new local array: the caller's velocity stays at zero."""
    for name, p in params.items():
        if name not in velocity:
            velocity[name] = np.zeros_like(p)
        v = velocity[name]
        v = momentum * v + grads[name]
        p -= lr * v


def rebinding_p_sgd(params, grads, velocity, lr=0.01, momentum=0.9):
    """params[name] = p - lr * v: a new array in the dict, the model's own array untouched."""
    for name, p in params.items():
        if name not in velocity:
            velocity[name] = np.zeros_like(p)
        velocity[name] *= momentum
        velocity[name] += grads[name]
        params[name] = p - lr * velocity[name]


# ----------------------------------------------------------------------------------------
# Adam
# ----------------------------------------------------------------------------------------


def _init(state, params):
    if not state:
        state["t"] = 0
        state["m"] = {name: np.zeros_like(p) for name, p in params.items()}
        state["v"] = {name: np.zeros_like(p) for name, p in params.items()}


def replacing_adam(params, grads, state, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    """m and v replaced in the state dict instead of updated in place: the same numbers."""
    _init(state, params)
    state["t"] += 1
    t = state["t"]
    for name, p in params.items():
        g = grads[name]
        state["m"][name] = beta1 * state["m"][name] + (1 - beta1) * g
        state["v"][name] = beta2 * state["v"][name] + (1 - beta2) * g ** 2
        p -= lr * (state["m"][name] / (1 - beta1 ** t)) / (np.sqrt(state["v"][name] / (1 - beta2 ** t)) + eps)


def efficient_adam(params, grads, state, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    """The paper's "efficient" form: the corrections folded into the step size, eps on sqrt(v)."""
    _init(state, params)
    state["t"] += 1
    t = state["t"]
    lr_t = lr * np.sqrt(1 - beta2 ** t) / (1 - beta1 ** t)
    for name, p in params.items():
        m, v = state["m"][name], state["v"][name]
        m[...] = beta1 * m + (1 - beta1) * grads[name]
        v[...] = beta2 * v + (1 - beta2) * grads[name] ** 2
        p -= lr_t * m / (np.sqrt(v) + eps)


def t_per_parameter_adam(params, grads, state, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    """state["t"] += 1 inside the loop over parameters: t grows by the number of parameters."""
    _init(state, params)
    for name, p in params.items():
        state["t"] += 1
        t = state["t"]
        m, v = state["m"][name], state["v"][name]
        m[...] = beta1 * m + (1 - beta1) * grads[name]
        v[...] = beta2 * v + (1 - beta2) * grads[name] ** 2
        p -= lr * (m / (1 - beta1 ** t)) / (np.sqrt(v / (1 - beta2 ** t)) + eps)


def uncorrected_adam(params, grads, state, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    """No bias correction: m and v used as they are."""
    _init(state, params)
    state["t"] += 1
    for name, p in params.items():
        m, v = state["m"][name], state["v"][name]
        m[...] = beta1 * m + (1 - beta1) * grads[name]
        v[...] = beta2 * v + (1 - beta2) * grads[name] ** 2
        p -= lr * m / (np.sqrt(v) + eps)


def eps_inside_sqrt_adam(params, grads, state, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    """sqrt(v_hat + eps) instead of sqrt(v_hat) + eps."""
    _init(state, params)
    state["t"] += 1
    t = state["t"]
    for name, p in params.items():
        m, v = state["m"][name], state["v"][name]
        m[...] = beta1 * m + (1 - beta1) * grads[name]
        v[...] = beta2 * v + (1 - beta2) * grads[name] ** 2
        p -= lr * (m / (1 - beta1 ** t)) / np.sqrt(v / (1 - beta2 ** t) + eps)


# ----------------------------------------------------------------------------------------
# An epoch
# ----------------------------------------------------------------------------------------


def split_epoch(model, x, y, step, batch_size, rng):
    """np.split of the permutation at multiples of batch_size; a list of (loss, size) pairs."""
    order = rng.permutation(len(x))
    seen = []
    for idx in np.split(order, range(batch_size, len(x), batch_size)):
        loss, dlogits = softmax_cross_entropy(model.forward(x[idx]), y[idx])
        model.backward(dlogits)
        step(model.params(), model.grads())
        seen.append((loss, len(idx)))
    return sum(loss * n for loss, n in seen) / sum(n for _, n in seen)


def step_first_epoch(model, x, y, step, batch_size, rng):
    """Steps between the forward and the backward: each step uses the previous batch's gradients."""
    order = rng.permutation(len(x))
    total = 0.0
    for start in range(0, len(x), batch_size):
        idx = order[start:start + batch_size]
        loss, dlogits = softmax_cross_entropy(model.forward(x[idx]), y[idx])
        step(model.params(), model.grads())
        model.backward(dlogits)
        total += loss * len(idx)
    return total / len(x)


def unshuffled_epoch(model, x, y, step, batch_size, rng):
    """Batches in the data's own order: no shuffle."""
    total = 0.0
    for start in range(0, len(x), batch_size):
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        loss, dlogits = softmax_cross_entropy(model.forward(xb), yb)
        model.backward(dlogits)
        step(model.params(), model.grads())
        total += loss * len(xb)
    return total / len(x)


def batch_mean_epoch(model, x, y, step, batch_size, rng):
    """Returns the mean of the batch losses: a short last batch counts as much as a full one."""
    order = rng.permutation(len(x))
    losses = []
    for start in range(0, len(x), batch_size):
        idx = order[start:start + batch_size]
        loss, dlogits = softmax_cross_entropy(model.forward(x[idx]), y[idx])
        model.backward(dlogits)
        step(model.params(), model.grads())
        losses.append(loss)
    return float(np.mean(losses))


def shuffles_data_epoch(model, x, y, step, batch_size, rng):
    """rng.shuffle(x) and rng.shuffle(y): the caller's arrays shuffled in place, each its own way."""
    rng.shuffle(x)
    rng.shuffle(y)
    total = 0.0
    for start in range(0, len(x), batch_size):
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        loss, dlogits = softmax_cross_entropy(model.forward(xb), yb)
        model.backward(dlogits)
        step(model.params(), model.grads())
        total += loss * len(xb)
    return total / len(x)


CASES = [
    Learner("sgd_momentum", "pass", "ok-ufunc-out", "np.multiply/np.add/np.subtract with out=", fn=ufunc_sgd),
    Learner("sgd_momentum", "pass", "ok-cs231n-form", "v = mu*v - lr*g; p += v", fn=cs231n_sgd),
    Learner("sgd_momentum", "fail", "clears-grads", "grads.clear() after the update", fn=clearing_sgd,
            hint_words=IN_PLACE + (("grads",),), keys=("in_place",)),
    Learner("sgd_momentum", "fail", "velocity-rebound", "v = momentum * v + g: a new local array",
            fn=rebinding_v_sgd, hint_words=(("velocity",), ("in place", "in-place", "kept", "new array", "v[")),
            keys=("momentum_not_kept",)),
    Learner("sgd_momentum", "fail", "params-rebound", "params[name] = p - lr * v: a new array in the dict",
            fn=rebinding_p_sgd, hint_words=(("in place", "in-place", "new array", "p -="),),
            keys=("update_not_in_place",)),
    Learner("adam", "pass", "ok-replaces-m-v", "m and v replaced in the state dict", fn=replacing_adam),
    Learner("adam", "fail", "efficient-form", "the paper's efficient form: eps added to sqrt(v) unscaled",
            fn=efficient_adam, hint_words=(("eps", "epsilon"),), keys=("adam_efficient_form",)),
    Learner("adam", "fail", "t-per-parameter", "state['t'] += 1 inside the loop over parameters",
            fn=t_per_parameter_adam, hint_words=(("once", "count", "per step", "every parameter"),),
            keys=("adam_t_per_parameter",)),
    Learner("adam", "fail", "no-bias-correction", "m and v used without 1 - beta**t", fn=uncorrected_adam,
            hint_words=(("bias", "correct", "1 - beta"),), keys=("adam_no_bias_correction",)),
    Learner("adam", "fail", "eps-inside-sqrt", "sqrt(v_hat + eps)", fn=eps_inside_sqrt_adam,
            hint_words=(("eps", "epsilon"), ("sqrt", "root")), keys=("adam_eps_inside",)),
    Learner("train_epoch", "pass", "ok-np-split", "np.split at multiples of the batch size", fn=split_epoch),
    Learner("train_epoch", "fail", "step-before-backward", "step between forward and backward",
            fn=step_first_epoch, hint_words=(("before", "order", "after"),), keys=("epoch_step_before_backward",)),
    Learner("train_epoch", "fail", "no-shuffle", "batches in the data's own order", fn=unshuffled_epoch,
            hint_words=(("shuffl", "permutation"),), keys=("epoch_no_shuffle",)),
    Learner("train_epoch", "fail", "mean-of-batch-losses", "np.mean of the batch losses", fn=batch_mean_epoch,
            hint_words=(("weight", "last batch", "smaller", "size"),), keys=("epoch_unweighted_loss",)),
    Learner("train_epoch", "fail", "shuffles-x-and-y-in-place", "rng.shuffle(x), rng.shuffle(y)",
            fn=shuffles_data_epoch, hint_words=(("in place", "in-place", "changed", "shuffl", "label"),),
            keys=("in_place", "epoch_separate_shuffles")),
]
