"""Optimizers: turn gradients into parameter updates.

    opt.step(model.params(), model.grads())   # updates every parameter array in place

Both take dicts name -> array with the same names; any state (velocity, moment estimates)
is kept per name, so one optimizer object serves one model for the whole of its training.
The update rules are PyTorch's (torch.optim.SGD with dampening 0 and nesterov False,
torch.optim.Adam, torch.optim.AdamW), and the tests check them against it.

Weight decay shrinks every weight towards 0 at every step. SGD and Adam do it as PyTorch's
weight_decay does, by adding the gradient of the L2 penalty (weight_decay / 2) * ||p||^2,
that is weight_decay * p, to the gradient before anything else; AdamW decouples it, taking
lr * weight_decay * p off the weight directly, outside Adam's per-element scaling (with Adam,
the penalty's gradient is divided by sqrt(v) like the rest, so weights with large gradients
are barely decayed). Like PyTorch, they decay every parameter they are given, biases too.
"""

import numbers

import numpy as np


class Optimizer:
    """Base class: checks the arguments of step() and hands each (name, param, grad) on."""

    def step(self, params, grads):
        """Update every array of `params` in place using `grads` (dicts with the same names).

        Parameters
        ----------
        params : dict[str, ndarray], the live parameter arrays, e.g. model.params().
        grads : dict[str, ndarray], their gradients, e.g. model.grads().
        """
        if params.keys() != grads.keys():
            missing, extra = sorted(params.keys() - grads.keys()), sorted(grads.keys() - params.keys())
            raise ValueError(f"params and grads must have the same names; no gradient for {missing}, "
                             f"gradients of unknown parameters {extra}")
        checked = {}
        for name, p in params.items():
            if not isinstance(p, np.ndarray) or not np.issubdtype(p.dtype, np.floating):
                raise TypeError(f"parameter {name} must be a float ndarray (it is updated in place), "
                                f"got {type(p).__name__}")
            checked[name] = np.asarray(grads[name])
            if checked[name].shape != p.shape:
                raise ValueError(f"gradient of {name} has shape {checked[name].shape}, the parameter has shape {p.shape}")
        self._step(params, checked)

    @staticmethod
    def _state(store, name, p):
        """The state array kept for parameter `name` in `store`, zeros on first use."""
        if name not in store:
            store[name] = np.zeros_like(p)
        elif store[name].shape != p.shape:
            raise ValueError(f"this optimizer holds state of shape {store[name].shape} for {name}, which now "
                             f"has shape {p.shape}: use a new optimizer for a new model")
        return store[name]


class SGD(Optimizer):
    """Stochastic gradient descent, with optional momentum and weight decay.

    Without momentum: p -= lr * g. With momentum mu, a velocity accumulates past gradients,
    v = mu * v + g, and p -= lr * v: steps grow along directions the gradient keeps
    pointing in and cancel out along directions where it flips sign. With weight decay wd,
    g is first replaced by g + wd * p (the L2 penalty's gradient), before the momentum.

    Parameters
    ----------
    lr : float > 0, the learning rate.
    momentum : float in [0, 1).
    weight_decay : float >= 0, default 0.
    """

    def __init__(self, lr=0.01, momentum=0.0, weight_decay=0.0):
        self.lr = _check_number(lr, "lr", low=0.0, low_open=True)
        self.momentum = _check_number(momentum, "momentum", low=0.0, high=1.0)
        self.weight_decay = _check_number(weight_decay, "weight_decay", low=0.0)
        self.velocity = {}

    def _step(self, params, grads):
        for name, p in params.items():
            g = grads[name]
            if self.weight_decay:
                g = g + self.weight_decay * p  # a new array: the model's grads stay the loss's
            if self.momentum:
                v = self._state(self.velocity, name, p)
                v *= self.momentum
                v += g
                g = v
            p -= self.lr * g


class Adam(Optimizer):
    """Adam: SGD with a per-element step size.

    It keeps running means of the gradient (m, the direction) and of its square (v, the
    scale), corrects both for starting at zero, and steps by lr * m_hat / (sqrt(v_hat) + eps),
    so each parameter moves by roughly lr whatever the size of its gradient.

    Parameters
    ----------
    lr : float > 0
    beta1, beta2 : float in [0, 1), decay rates of the two running means.
    eps : float > 0, keeps the division finite where v is 0.
    weight_decay : float >= 0, default 0: the L2 penalty's gradient weight_decay * p added to
        g, as torch.optim.Adam does (AdamW decouples it instead).
    """

    _decoupled = False  # AdamW's

    def __init__(self, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0):
        self.lr = _check_number(lr, "lr", low=0.0, low_open=True)
        self.beta1 = _check_number(beta1, "beta1", low=0.0, high=1.0)
        self.beta2 = _check_number(beta2, "beta2", low=0.0, high=1.0)
        self.eps = _check_number(eps, "eps", low=0.0, low_open=True)
        self.weight_decay = _check_number(weight_decay, "weight_decay", low=0.0)
        self.m, self.v, self.t = {}, {}, {}

    def _step(self, params, grads):
        for name, p in params.items():
            g = grads[name]
            if self.weight_decay and self._decoupled:
                p *= 1 - self.lr * self.weight_decay  # AdamW: the decay bypasses m and v
            elif self.weight_decay:
                g = g + self.weight_decay * p  # L2: the decay goes through m and v like the loss's gradient
            m, v = self._state(self.m, name, p), self._state(self.v, name, p)
            # Steps are counted per parameter (as PyTorch does), so one that joins later
            # still gets the bias correction of its own first step.
            t = self.t[name] = self.t.get(name, 0) + 1
            m *= self.beta1
            m += (1 - self.beta1) * g
            v *= self.beta2
            v += (1 - self.beta2) * g * g
            # m and v start at 0, so early on they underestimate; dividing by 1 - beta**t fixes that.
            m_hat = m / (1 - self.beta1 ** t)
            v_hat = v / (1 - self.beta2 ** t)
            p -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov and Hutter), as torch.optim.AdamW.

    Each step first shrinks the weights, p -= lr * weight_decay * p, then takes Adam's step
    with the loss's gradient alone. Adam with L2 (Adam(weight_decay=...)) puts the decay into
    g instead, where Adam's division by sqrt(v) shrinks it for exactly the weights whose
    gradients are large; here every weight decays at the same rate.

    Parameters
    ----------
    lr : float > 0
    beta1, beta2 : float in [0, 1)
    eps : float > 0
    weight_decay : float >= 0, default 0.01 (PyTorch's default).
    """

    _decoupled = True

    def __init__(self, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01):
        super().__init__(lr, beta1, beta2, eps, weight_decay)


def _check_number(value, name, *, low, high=None, low_open=False):
    """Return `value` as a float after checking low <= value < high (low < value if low_open)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r}")
    value = float(value)
    too_low = value <= low if low_open else value < low
    if not np.isfinite(value) or too_low or (high is not None and value >= high):
        interval = ("(" if low_open else "[") + f"{low:g}, " + (f"{high:g})" if high is not None else "inf)")
        raise ValueError(f"{name} must be in {interval}, got {value!r}")
    return value
