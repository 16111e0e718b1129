"""Working versions of the lessons' functions, built on cnnlib: what the checks compare with, what
the exercise editions fall back to while a stub is not written, and (through keyword switches)
the numbers a classic mistake gives, which the catalogue (mistakes.py) matches against.

Each function has the lesson's signature and cache. The switches default to the right formula.
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .. import activations, conv, dense as dense_mod, flatten as flatten_mod, layers as layers_mod, losses, optim, pool


def pair(v):
    return tuple(int(a) for a in v) if isinstance(v, (tuple, list)) else (int(v), int(v))


def out_size(H, K, stride=1, pad=0, rule="right"):
    """H' of a window of K sliding over H + 2*pad by `stride`, or what a classic slip gives."""
    return {"right": lambda: (H + 2 * pad - K) // stride + 1,
            "no pad": lambda: (H - K) // stride + 1,
            "pad once": lambda: (H + pad - K) // stride + 1,
            "no + 1": lambda: (H + 2 * pad - K) // stride,
            "no stride": lambda: H + 2 * pad - K + 1,
            "rounded up": lambda: -(-(H + 2 * pad - K) // stride) + 1,
            "true division": lambda: (H + 2 * pad - K) / stride + 1}[rule]()


# ---- lesson 4-5: convolution, and its slips -------------------------------------------------
def conv_forward(x, w, b, stride=1, pad=0, *, flip=False, step=None, mode="constant"):
    """out (N, F, H', W'): flip turns the kernel 180 degrees, step=(1, 1) starts window (i, j) at
    (i, j) whatever the stride, mode is np.pad's (zeros unless told)."""
    (sh, sw), (ph, pw) = pair(stride), pair(pad)
    KH, KW = w.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), mode=mode)
    Ho, Wo = out_size(x.shape[2], KH, sh, ph), out_size(x.shape[3], KW, sw, pw)
    rh, rw = pair(step) if step is not None else (sh, sw)
    windows = sliding_window_view(xp, (KH, KW), axis=(2, 3))[:, :, ::rh, ::rw][:, :, :Ho, :Wo]
    if windows.shape[2:4] != (Ho, Wo):
        return None  # those windows run off the image: that slip raises in the learner's code
    kernel = w[:, :, ::-1, ::-1] if flip else w
    return np.einsum("ncijpq,fcpq->nfij", windows, kernel) + np.asarray(b)[:, None, None]


def conv_grads(dout, x, w, stride=1, pad=0, *, flip=False, step=None, assign=None, filters=None, samples=None,
               crop=True):
    """{dx, dw, db} by a loop over the windows. assign: how `=` in place of `+=` lands, by loop
    order: "dx f, windows" (filters outer), "dx windows, f", "dx windows" (the filters summed in
    one assignment), "dw n, windows", "dw windows" (samples summed). filters / samples: the only
    filters (samples) whose terms are kept in dx (dw). crop=False keeps the padding border of dx."""
    (sh, sw), (ph, pw) = pair(stride), pair(pad)
    rh, rw = pair(step) if step is not None else (sh, sw)
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    kernel = w[:, :, ::-1, ::-1] if flip else w
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    dxp, dw = np.zeros(xp.shape), np.zeros(w.shape)
    Ho, Wo = dout.shape[2:]
    if (Ho - 1) * rh + KH > xp.shape[2] or (Wo - 1) * rw + KW > xp.shape[3]:
        return None
    keep_f = np.isin(np.arange(F), range(F) if filters is None else filters)
    keep_n = np.isin(np.arange(N), range(N) if samples is None else samples)
    order = [(f, i, j) for f in range(F) for i in range(Ho) for j in range(Wo)]
    if assign == "dx windows, f":
        order = [(f, i, j) for i in range(Ho) for j in range(Wo) for f in range(F)]
    for f, i, j in order:
        r, t = i * rh, j * rw
        term = dout[:, f, i, j][:, None, None, None] * kernel[f] * keep_f[f]
        if assign == "dx windows":
            term = np.einsum("nf,fcpq->ncpq", dout[:, :, i, j] * keep_f, kernel)
            if f == 0:
                dxp[:, :, r:r + KH, t:t + KW] = term
        elif assign in ("dx f, windows", "dx windows, f"):
            if keep_f[f]:
                dxp[:, :, r:r + KH, t:t + KW] = term
        else:
            dxp[:, :, r:r + KH, t:t + KW] += term
        window = xp[:, :, r:r + KH, t:t + KW]
        if assign == "dw n, windows":
            dw[f] = dout[N - 1, f, i, j] * window[N - 1]
        elif assign == "dw windows":
            dw[f] = np.einsum("n,ncpq->cpq", dout[:, f, i, j], window)
        else:
            dw[f] += np.einsum("n,ncpq->cpq", dout[:, f, i, j] * keep_n, window)
    if flip:
        dw = dw[:, :, ::-1, ::-1]
    return {"dx": dxp[:, :, ph:ph + H, pw:pw + W] if crop else dxp, "dw": dw, "db": dout.sum(axis=(0, 2, 3))}


# ---- lesson 6: pooling, and its slips -------------------------------------------------------
def maxpool_dx(x, dout, size, stride=None, pad=0, rule="first"):
    """dx of max pooling by loops, dout going to the "first" maximum (cnnlib's and PyTorch's) or by a
    slip: "every tie", "split ties", "last tie", "whole window", "window mean", "decode by stride"
    (divmod(k, stride)), "row and column swapped", "no stride" (windows at (i, j)), "assign" (=)."""
    (KH, KW) = pair(size)
    (sh, sw) = pair(stride if stride is not None else size)
    (ph, pw) = pair(pad)
    N, C, H, W = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
    dxp = np.zeros(xp.shape)
    for n, c, i, j in np.ndindex(dout.shape):
        r, t = i * sh, j * sw
        window = xp[n, c, r:r + KH, t:t + KW]
        target = dxp[n, c, r:r + KH, t:t + KW]
        g = dout[n, c, i, j]
        ties = window == window.max()
        k = window.size - 1 - int(np.argmax(window.ravel()[::-1])) if rule == "last tie" else int(np.argmax(window))
        spread = {"every tie": ties, "split ties": ties / ties.sum(), "whole window": 1.0, "window mean": 1 / (KH * KW)}
        if rule in spread:
            target += g * spread[rule]
        elif rule in ("decode by stride", "no stride"):
            p, q = divmod(k, sw) if rule == "decode by stride" else divmod(k, KW)
            a, e = (r + p, t + q) if rule == "decode by stride" else (i + p, j + q)
            if a >= xp.shape[2] or e >= xp.shape[3]:
                return None  # outside the image: that slip raises in the learner's code
            dxp[n, c, a, e] += g
        else:
            p, q = divmod(k, KW)[::-1 if rule == "row and column swapped" else 1]
            if p >= target.shape[0] or q >= target.shape[1]:
                return None  # swapped out of a non-square window: that slip lands elsewhere
            target[p, q] = g if rule == "assign" else target[p, q] + g
    return dxp[:, :, ph:ph + H, pw:pw + W]


def avgpool_dx(shape, dout, size, stride=None, step=None, assign=False):
    """dx of average pooling, each pixel of a window getting dout / (KH*KW); step=(1, 1) puts window
    (i, j) at (i, j); assign: = in place of +=."""
    KH, KW = pair(size)
    sh, sw = pair(step if step is not None else (stride if stride is not None else size))
    dx = np.zeros(shape)
    for i, j in np.ndindex(dout.shape[2:]):
        if i * sh + KH > shape[2] or j * sw + KW > shape[3]:
            return None
        part = dout[:, :, i, j][:, :, None, None] / (KH * KW) + dx[:, :, i * sh:i * sh + KH, j * sw:j * sw + KW] * (
            not assign)
        dx[:, :, i * sh:i * sh + KH, j * sw:j * sw + KW] = part
    return dx


def pool_output_size(H, W, size, stride):
    """Lesson 6: (H', W') of a size x size pooling window moved by `stride`."""
    return out_size(H, size, stride), out_size(W, size, stride)


def maxpool_forward_loop(x, size=2, stride=None):
    """Lesson 6: out and the cache (x, argmax, size, stride), with int size and stride."""
    stride = size if stride is None else stride
    out, cache = pool.maxpool2d_forward(x, size=size, stride=stride)
    return out, (x, cache[1].astype(int), size, stride)


def maxpool_backward_loop(dout, cache):
    x, argmax, size, stride = cache
    return pool.maxpool2d_backward(dout, (x, argmax, (size, size), (stride, stride), (0, 0)))


def avgpool_forward_loop(x, size=2, stride=None):
    """Lesson 6: out and the cache (x, size, stride), with int size and stride."""
    stride = size if stride is None else stride
    return pool.avgpool2d_forward(x, size=size, stride=stride)[0], (x, size, stride)


def avgpool_backward_loop(dout, cache):
    x, size, stride = cache
    return pool.avgpool2d_backward(dout, (x, (size, size), (stride, stride)))


def scatter_one(dout, w, stride, pad, shape):
    """Lesson 5: dout (H', W'), w (KH, KW) -> dx (H, W), one channel and one filter."""
    _, cache = conv.conv2d_forward(np.zeros((1, 1, *shape)), w[None, None], np.zeros(1), stride=stride, pad=pad)
    return conv.conv2d_backward(np.asarray(dout, dtype=np.float64)[None, None], cache)[0][0, 0]


# ---- lesson 3: softmax ----------------------------------------------------------------------
def _shifted(z, shift):
    return z - {"row": lambda: z.max(axis=1, keepdims=True), "global": lambda: z.max(),
                "column": lambda: z.max(axis=0, keepdims=True), "none": lambda: 0.0,
                "row, no keepdims": lambda: z.max(axis=1)}[shift]()


def log_softmax(z, shift="row", axis=1, keepdims=True):
    """Lesson 3: log-probabilities of each row, computed without taking the log of a softmax.
    shift: "row" (each row's maximum), "global" (the batch's), "column", "none", "row, no keepdims";
    axis and keepdims of the sum (a slip may use the wrong ones)."""
    with np.errstate(all="ignore"):
        shifted = _shifted(z, shift)
        return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=keepdims))


def softmax(z, shift="row", axis=1, keepdims=True):
    """Lesson 3: the probabilities of each row, stable for logits of any size (switches: log_softmax's)."""
    with np.errstate(all="ignore"):
        e = np.exp(_shifted(z, shift))
        return e / e.sum(axis=axis, keepdims=keepdims)


def cross_entropy(logits, y, log_probs=None):
    """The batch mean of -log p[n, y[n]]; log_probs from a slip replaces log_softmax's."""
    lp = log_softmax(logits) if log_probs is None else log_probs
    with np.errstate(all="ignore"):
        return float(-np.mean(lp[np.arange(len(y)), y]))


# ---- lesson 7: Flatten and the dense weights after it ---------------------------------------
def flatten_forward_F(x):
    """Lesson 7: Flatten in F order within each sample; the cache is x's shape."""
    x = np.asarray(x)
    cells = np.arange(x[0].size).reshape(x.shape[1:]).ravel(order="F")  # C position of each F position
    return flatten_mod.flatten_forward(x)[0][:, cells], x.shape


def flatten_backward_F(dout, shape):
    cells = np.arange(int(np.prod(shape[1:]))).reshape(shape[1:]).ravel(order="F")
    flat = np.empty_like(dout)
    flat[:, cells] = dout
    return flatten_mod.flatten_backward(flat, shape)


def permute_dense_weights(w, shape):
    """Lesson 7: w (C*H*W, M) for a C-order Flatten -> the rows for an F-order one."""
    return w[np.arange(w.shape[0]).reshape(shape).ravel(order="F")]


def flatten_dense(x, w, b):
    """Lesson 7: dense(flatten(x)), (N, C, H, W) -> (N, M)."""
    return dense_mod.dense_forward(flatten_mod.flatten_forward(x)[0], w, b)[0]


def port_dense_weights(w_nhwc, shape):
    """Lesson 7: dense weights after a channels-last Flatten -> after cnnlib's channels-first one."""
    C, H, W = shape
    return w_nhwc.reshape(H, W, C, -1).transpose(2, 0, 1, 3).reshape(w_nhwc.shape)


def rows(w, shape, order="CHW", axes=None):
    """w (D, M) with its rows read as a volume laid out as `order` and its axes moved by `axes`."""
    dims = dict(zip("CHW", shape))
    volume = w.reshape(*(dims[a] for a in order), w.shape[1])
    return (volume if axes is None else volume.transpose(*axes, 3)).reshape(w.shape)


# ---- lessons 8-9: layers, loops, optimizers, the epoch --------------------------------------
def dense_with(w, b):
    """A cnnlib.Dense whose params are the arrays w (D, M) and b (M,) themselves (MyDense's fallback)."""
    w, b = np.asarray(w), np.asarray(b)
    layer = layers_mod.Dense(*w.shape, dtype=w.dtype)
    layer._set_params(w=w, b=b)
    return layer


def layer_pass(kind, args, x, dout):
    """out, dx and the parameter gradients of one forward/backward of a "dense" or "relu" layer."""
    if kind == "relu":
        out, cache = activations.relu_forward(x)
        return out, activations.relu_backward(dout, cache), {}
    out, cache = dense_mod.dense_forward(x, *args)
    dx, dw, db = dense_mod.dense_backward(dout, cache)
    return out, dx, {"w": dw, "b": db}


def run_forward(layers, x):
    """Every layer's forward in order, each on the previous one's output."""
    for layer in layers:
        x = layer.forward(x)
    return x


def run_backward(layers, dout):
    """Every layer's backward in reverse order, each on the dx of the layer above; the first's dx."""
    for layer in reversed(layers):
        dout = layer.backward(dout)
    return dout


def sgd_momentum_step(params, grads, velocity, lr=0.01, momentum=0.9, weight_decay=0.0):
    """One step of cnnlib.SGD(lr, momentum, weight_decay), its velocity kept in the dict `velocity`."""
    opt = optim.SGD(lr=lr, momentum=momentum, weight_decay=weight_decay)
    opt.velocity = velocity
    opt.step(params, grads)


def adam_step(params, grads, state, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, kind=optim.Adam):
    """One step of cnnlib.Adam (or `kind`), its state in the dict `state`: "t" (int), "m" and "v" (dicts of arrays)."""
    if not state:
        state.update(t=0, m={name: np.zeros_like(p) for name, p in params.items()},
                     v={name: np.zeros_like(p) for name, p in params.items()})
    opt = kind(lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay)
    opt.m, opt.v = state["m"], state["v"]
    opt.t = {name: state["t"] for name in params}
    opt.step(params, grads)
    state["t"] += 1


def adamw_step(params, grads, state, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01):
    """Lesson 13: one step of cnnlib.AdamW, its state as adam_step's."""
    adam_step(params, grads, state, lr, beta1, beta2, eps, weight_decay, optim.AdamW)


def sgd_history(start, grads_seq, lr, momentum, weight_decay=0.0, sign=1.0, keep=True, dampen=False, lag=False,
                decay_outside=False):
    """The parameters after each SGD-with-momentum step; the switches are classic slips: sign -1
    subtracts g from v, keep=False forgets v between calls, dampen scales g by 1 - momentum, lag
    moves p with the velocity from before g was added, decay_outside takes lr * weight_decay * p off
    p beside the momentum step instead of adding weight_decay * p to g."""
    params, state, history = {k: p.copy() for k, p in start.items()}, {}, []
    for grads in grads_seq:
        for name, p in params.items():
            g = grads[name] + (0.0 if decay_outside else weight_decay) * p
            old = state.get(name, np.zeros_like(p)) if keep else np.zeros_like(p)
            v = state[name] = momentum * old + sign * ((1 - momentum) * g if dampen else g)
            p -= lr * (old if lag else v) + (lr * weight_decay * p if decay_outside else 0.0)
        history.append({k: p.copy() for k, p in params.items()})
    return history


def adam_history(start, grads_seq, lr, beta1, beta2, eps, weight_decay=0.0, correct=True, t_shift=0, keep=True,
                 sqrt=True, eps_inside=False, swap=False, efficient=False, t_per_parameter=False, decay="first"):
    """The parameters after each Adam step (AdamW's with weight_decay); the switches are classic slips (see
    the catalogue): decay "L2" (Adam's weight_decay * p added to g), "no lr" (p *= 1 - weight_decay), "after"
    (the decay after the step)."""
    if swap:
        beta1, beta2 = beta2, beta1
    params, state, history, count = {k: p.copy() for k, p in start.items()}, {}, [], 0
    with np.errstate(all="ignore"):
        for step, grads in enumerate(grads_seq, start=1):
            for name, p in params.items():
                count += 1
                t = (count if t_per_parameter else step) + t_shift
                g = grads[name] + (weight_decay * p if decay == "L2" else 0.0)
                if decay in ("first", "no lr"):
                    p *= 1 - (lr if decay == "first" else 1.0) * weight_decay
                m, v = state.get(name, (0.0, 0.0)) if keep else (0.0, 0.0)
                m, v = beta1 * m + (1 - beta1) * g, beta2 * v + (1 - beta2) * g * g
                state[name] = (m, v)
                m_hat, v_hat = (m / (1 - beta1 ** t), v / (1 - beta2 ** t)) if correct else (m, v)
                if efficient:  # Kingma and Ba, section 2: the corrections folded into the step size
                    p -= lr * np.sqrt(1 - beta2 ** t) / (1 - beta1 ** t) * m / (np.sqrt(v) + eps)
                elif eps_inside:
                    p -= lr * m_hat / np.sqrt(v_hat + eps)
                else:
                    p -= lr * m_hat / ((np.sqrt(v_hat) if sqrt else v_hat) + eps)
                p *= 1 - lr * weight_decay if decay == "after" else 1.0
            history.append({k: p.copy() for k, p in params.items()})
    return history


def train_one_epoch(model, x, y, step, batch_size, rng):
    """One epoch as cnnlib.fit runs it, with step(params, grads) for the update; the mean loss."""
    order = rng.permutation(len(x))
    loss_sum = 0.0
    for start in range(0, len(x), batch_size):
        idx = order[start:start + batch_size]
        loss, dlogits = losses.softmax_cross_entropy(model.forward(x[idx]), y[idx])
        model.backward(dlogits, input_grad=False)
        step(model.params(), model.grads())
        loss_sum += loss * len(idx)
    return loss_sum / len(x)


def epoch(make_model, x, y, batch_size, seed, lr, slip=None):
    """(final params, returned loss) of one epoch with plain SGD under the right loop or a slip:
    "no shuffle", "separate shuffles", "skips last", "unweighted loss", "last loss", "step first"."""
    model, rng, n = make_model(), np.random.default_rng(seed), len(x)
    order_x = np.arange(n) if slip == "no shuffle" else rng.permutation(n)
    order_y = rng.permutation(n) if slip == "separate shuffles" else order_x
    stop = n - n % batch_size if slip == "skips last" else n
    seen = []
    for start in range(0, stop, batch_size):
        ix, iy = order_x[start:start + batch_size], order_y[start:start + batch_size]
        loss, dlogits = losses.softmax_cross_entropy(model.forward(x[ix]), y[iy])
        if slip == "step first":
            for name, p in model.params().items():
                p -= lr * model.grads()[name]
        model.backward(dlogits, input_grad=False)
        if slip != "step first":
            for name, p in model.params().items():
                p -= lr * model.grads()[name]
        seen.append((loss, len(ix)))
    losses_ = [loss for loss, _ in seen]
    mean = {"unweighted loss": lambda: float(np.mean(losses_)), "last loss": lambda: float(losses_[-1]),
            "skips last": lambda: sum(l * k for l, k in seen) / max(1, sum(k for _, k in seen))}.get(
        slip, lambda: sum(l * k for l, k in seen) / n)()
    return {k: p.copy() for k, p in model.params().items()}, float(mean)


# ---- lesson 12: batch normalisation, and its slips --------------------------------------------
def batchnorm(x, gamma, beta, training=True, running_mean=None, running_var=None, momentum=0.1, eps=1e-5, dout=None,
              axes=(0, 2, 3), ddof=0, eps_rule="inside", batch_in_eval=False, running_ddof=1, swap=False,
              update=True, through="mean var"):
    """{"out"}, with "running_mean" and "running_var" (training with them) and "dx" (training, given
    dout), of batch normalisation or of a slip: the statistics that normalise over `axes` with `ddof`,
    eps_rule "outside" (sqrt(var) + eps) or "none", batch_in_eval (eval normalises with the batch's
    own), running_ddof 0 (the running variance from the biased one), swap (momentum weighs the old
    value), update=False (the running arrays left as they were), through: the statistics dx goes
    through ("mean var"; "mean", "var" or "" take the others as constants)."""
    C, batch, shape = x.shape[1], training or batch_in_eval, (1, x.shape[1], 1, 1)
    mean = x.mean(axis=axes, keepdims=True) if batch else running_mean.reshape(shape)
    var = x.var(axis=axes, ddof=ddof, keepdims=True) if batch else running_var.reshape(shape)
    s = {"inside": lambda: 1 / np.sqrt(var + eps), "outside": lambda: 1 / (np.sqrt(var) + eps),
         "none": lambda: 1 / np.sqrt(var)}[eps_rule]()
    x_hat = (x - mean) * s
    result = {"out": gamma.reshape(shape) * x_hat + beta.reshape(shape)}
    if training and running_mean is not None:
        w = 1 - momentum if swap else momentum
        stats = (x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3), ddof=running_ddof))
        for name, old, stat in zip(("running_mean", "running_var"), (running_mean, running_var), stats):
            result[name] = (1 - w) * old + w * stat if update else old
    if training and dout is not None:
        g = dout * gamma.reshape(shape)
        result["dx"] = s * (g - ("mean" in through) * g.mean(axis=(0, 2, 3), keepdims=True)
                            - ("var" in through) * x_hat * (g * x_hat).mean(axis=(0, 2, 3), keepdims=True))
    return result
