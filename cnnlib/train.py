"""Training loop: fit a classifier in mini-batches, and evaluate it.

One training step is the whole story of the course in four lines:

    logits = model.forward(x_batch)                           # (B, K)
    loss, dlogits = softmax_cross_entropy(logits, y_batch)    # dL/dlogits, (B, K)
    model.backward(dlogits, input_grad=False)                 # every layer's grads, not the images'
    optimizer.step(model.params(), model.grads())             # move the weights downhill

An epoch runs it once on every batch of a fresh shuffle of the training set.

fit runs the model in training mode (BatchNorm2D normalises with each batch's statistics,
Dropout drops), evaluate and predict in eval mode (running statistics, no dropout); each puts
every layer's `training` flag back as it found it when it returns, or fails.
"""

import contextlib
import numbers
from collections.abc import Mapping

import numpy as np
from tqdm.auto import tqdm

from ._validate import as_array, positive_int
from .losses import softmax_cross_entropy


def fit(model, x, y, *, optimizer, epochs=1, batch_size=32, validation_data=None, shuffle=True, seed=0,
        progress=True, augment=None):
    """Train `model` on (x, y) with softmax cross-entropy.

    Parameters
    ----------
    model : Sequential (anything with forward, backward(dout, input_grad=False), params and
        grads).
    x : (N, ...) ndarray, the inputs, e.g. (N, 1, 8, 8) images.
    y : (N,) ndarray of integer labels.
    optimizer : SGD, Adam, or anything with step(params, grads).
    epochs, batch_size : int >= 1; the last batch of an epoch may be smaller.
    validation_data : (x_val, y_val), optional, evaluated after every epoch.
    shuffle : bool, visit the samples in a new random order every epoch.
    seed : int, seeds that order, so a run is reproducible.
    progress : bool, show a tqdm progress bar per epoch.
    augment : callable or None. augment(x_batch, rng) -> an array of x_batch's shape, applied
        to every training batch (never to validation data), e.g.
        ``lambda xb, rng: cnnlib.augment.random_shift(xb, 1, rng=rng)``. rng is a Generator
        seeded from `seed` apart from the shuffle's, so a run is reproducible and the batches
        are the same with or without augmentation.

    Returns
    -------
    history : dict of lists with one entry per epoch: "loss" and "accuracy" (training batches,
        averaged weighted by batch size), and "val_loss" and "val_accuracy" with validation_data.
        The training figures are measured batch by batch while the weights still change, so
        they lag behind what evaluate() on the training set would give at the epoch's end.

    The training batches run in training mode and the validation data in eval mode (see
    Sequential.train); when fit returns, or fails, every layer's mode is what it was before.
    """
    _check_model(model, "fit")
    x, y = _check_data(x, y)
    epochs, batch_size = positive_int(epochs, "epochs"), positive_int(batch_size, "batch_size")
    if isinstance(optimizer, type):  # its step would be called unbound, grads missing
        raise TypeError(f"optimizer must be an optimizer object, got the class {optimizer.__name__}: pass an "
                        f"optimizer instance, e.g. SGD(0.1) or Adam()")
    if not callable(getattr(optimizer, "step", None)):
        raise TypeError(f"optimizer must have a step(params, grads) method (SGD, Adam), got {optimizer!r}")
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise ValueError("validation_data must be a pair (x_val, y_val)")
        x_val, y_val = _check_data(*validation_data, name="validation_data")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise TypeError(f"seed must be a non-negative int, got {seed!r}")
    if augment is not None and not callable(augment):
        raise TypeError(f"augment must be a function augment(x_batch, rng) -> array, or None; got {augment!r}")
    # Anything that would stop training halfway, after some updates, is checked first: a
    # label the network has no output for, or validation images it cannot take (found only
    # at the first epoch's end otherwise). One small forward pass tells how many classes.
    n_classes = _n_outputs(model, x, "")
    _check_labels(y, n_classes, "y")
    if validation_data is not None:
        if (n_val := _n_outputs(model, x_val, "validation_data: ")) != n_classes:
            raise ValueError(f"validation_data: the model gives {n_val} outputs for each sample of its x, "
                             f"{n_classes} for each sample of the training x")
        _check_labels(y_val, n_classes, "validation_data y")
    rng = np.random.default_rng(seed)
    augment_rng = np.random.default_rng([seed, 1])  # its own stream: the shuffle stays the same
    history = {"loss": [], "accuracy": []}
    if validation_data is not None:
        history.update(val_loss=[], val_accuracy=[])
    n = len(x)
    with _mode(model, training=True):
        for epoch in range(epochs):
            order = rng.permutation(n) if shuffle else np.arange(n)
            loss_sum, correct = 0.0, 0
            batches = range(0, n, batch_size)
            # Right-aligned epoch numbers keep the bars of "epoch  9/15" and "epoch 10/15" in line.
            desc = f"epoch {epoch + 1:>{len(str(epochs))}}/{epochs}"
            with tqdm(batches, desc=desc, unit="batch", disable=not progress) as bar:
                for start in bar:
                    idx = order[start:start + batch_size]
                    xb = x[idx] if augment is None else _augmented(augment, x[idx], augment_rng)
                    loss, correct_b = _step(model, optimizer, xb, y[idx], idx, epoch, start // batch_size,
                                            len(batches))
                    # Weighting by the batch size makes the epoch average exact when the last batch is short.
                    loss_sum += loss * len(idx)
                    correct += correct_b
                    bar.set_postfix(loss=f"{loss_sum / min(start + batch_size, n):.4f}", refresh=False)
                history["loss"].append(loss_sum / n)
                history["accuracy"].append(correct / n)
                if validation_data is not None:
                    val_loss, val_acc = _evaluate(model, x_val, y_val, 256)
                    history["val_loss"].append(val_loss)
                    history["val_accuracy"].append(val_acc)
                    bar.set_postfix(loss=f"{loss_sum / n:.4f}", val_acc=f"{val_acc:.4f}", refresh=False)
    return history


def _step(model, optimizer, xb, yb, idx, epoch, batch, n_batches):
    """One training step on the batch (xb, yb) at positions idx of x: (loss, number correct)."""
    logits = model.forward(xb)  # (B, K)
    try:
        loss, dlogits = softmax_cross_entropy(logits, yb)
    except ValueError:
        _raise_if_diverged(logits, idx, epoch, batch, n_batches)
        raise
    model.backward(dlogits, input_grad=False)  # no one uses dL/d(images)
    optimizer.step(model.params(), model.grads())
    return loss, int(np.sum(logits.argmax(axis=1) == yb))


def _augmented(augment, xb, rng):
    """augment(xb, rng), checked to be an array of xb's shape."""
    out = augment(xb, rng)
    if not isinstance(out, np.ndarray) or out.shape != xb.shape:
        what = f"an array of shape {out.shape}" if isinstance(out, np.ndarray) else type(out).__name__
        raise ValueError(f"augment(x_batch, rng) must return an array of the batch's shape {xb.shape}, "
                         f"got {what}")
    return out


def evaluate(model, x, y, *, batch_size=256):
    """Mean softmax cross-entropy and accuracy of `model` on (x, y); no gradients, no updates.

    Parameters
    ----------
    model : Sequential
    x : (N, ...) ndarray
    y : (N,) ndarray of integer labels.
    batch_size : int >= 1, how many samples go through at once (bounds the memory used).

    Returns
    -------
    loss : float
    accuracy : float in [0, 1], the fraction of samples whose largest logit is the label's.

    The model runs in eval mode (BatchNorm2D's running statistics, no dropout); every layer's
    mode is put back afterwards, also when evaluate fails.
    """
    _check_model(model, "evaluate")
    x, y = _check_data(x, y)
    batch_size = positive_int(batch_size, "batch_size")
    return _evaluate(model, x, y, batch_size)


def predict(model, x, *, batch_size=256):
    """The model's outputs for x, e.g. (N, K) logits, computed in eval mode in batches.

    Parameters
    ----------
    model : Sequential
    x : (N, ...) ndarray
    batch_size : int >= 1, how many samples go through at once (bounds the memory used).

    Returns
    -------
    ndarray, the outputs of every batch stacked, e.g. (N, K); logits.argmax(axis=1) are the
    predicted classes. BatchNorm2D uses its running statistics and Dropout drops nothing, so
    a sample's output does not depend on the others in its batch; every layer's mode is put
    back afterwards.
    """
    _check_model(model, "predict")
    x = as_array(x, "x")
    x, _ = _check_data(x, np.zeros(len(x) if x.ndim else 0, dtype=np.int64))  # no labels to check
    batch_size = positive_int(batch_size, "batch_size")
    with _mode(model, training=False):
        outs = [model.forward(x[start:start + batch_size]) for start in range(0, len(x), batch_size)]
    return np.concatenate(outs)  # (N, K)


_ABSENT = object()


@contextlib.contextmanager
def _mode(model, *, training):
    """Run the block with every layer of `model` in training or eval mode, then put each
    layer's flag back as it was (also when the block fails).

    A model that is not a Sequential (no list of layers) is left alone: its modes are its own.
    """
    layers = getattr(model, "layers", None)
    layers = list(layers) if isinstance(layers, (list, tuple)) else []
    before = [getattr(layer, "training", _ABSENT) for layer in layers]
    try:
        for layer in layers:
            layer.training = training
        yield
    finally:
        for layer, mode in zip(layers, before):
            if mode is _ABSENT:
                with contextlib.suppress(AttributeError):
                    del layer.training
            else:
                layer.training = mode


def _check_model(model, caller):
    """TypeError unless `model` can be trained (fit) or run (evaluate): a Sequential, or like one.

    The slips caught are a learner's: the list of layers itself, the class or function that
    makes a model rather than the model, a single layer; Python's own messages for them
    ('list' object has no attribute 'forward', 'dict' object is not callable) name no cure.
    """
    if isinstance(model, (list, tuple)):
        raise TypeError(f"model must be a Sequential, got a {type(model).__name__} of {len(model)} items: wrap the "
                        f"layers in Sequential: {caller}(Sequential([...]), ...)")
    if isinstance(model, type) or (callable(model) and not hasattr(model, "forward")):
        what = "class" if isinstance(model, type) else "function"
        name = getattr(model, "__name__", repr(model))
        raise TypeError(f"model must be a model object, got the {what} {name}, which makes one: call it, "
                        f"{caller}({name}(...), ...)")
    needed = ("forward", "backward", "params", "grads") if caller == "fit" else ("forward",)
    if missing := [part for part in needed if not callable(getattr(model, part, None))]:
        if callable(getattr(model, "forward", None)) and isinstance(getattr(model, "params", None), Mapping):
            raise TypeError(f"model is a single layer ({type(model).__name__}), not a model: wrap it in "
                            f"Sequential: {caller}(Sequential([layer]), ...)")
        raise TypeError(f"model must be a Sequential (or have the methods {', '.join(needed)}); "
                        f"{type(model).__name__} has no method {' and no method '.join(missing)}")


def _evaluate(model, x, y, batch_size):
    """evaluate() on data already checked (fit checks its validation data once, not every epoch)."""
    loss_sum, correct = 0.0, 0
    with _mode(model, training=False):
        for start in range(0, len(x), batch_size):
            logits = model.forward(x[start:start + batch_size])  # (B, K)
            yb = y[start:start + batch_size]
            loss, _ = softmax_cross_entropy(logits, yb)
            loss_sum += loss * len(yb)
            correct += int(np.sum(logits.argmax(axis=1) == yb))
    return loss_sum / len(x), correct / len(x)


def _check_data(x, y, name=None):
    """x, y as arrays after checking they are N samples of real numbers, finite, and N labels.

    `name` is "validation_data" for fit's validation pair, None for the data itself; the
    errors name the first bad sample by its index in the array the caller passed.
    """
    where = f"{name}: " if name else ""
    pair = where or "x, y: "
    x, y = as_array(x, f"{name} x" if name else "x"), as_array(y, f"{name} y" if name else "y")
    if x.ndim < 1 or y.ndim != 1:
        hint = ""
        if y.ndim == 2 and y.shape[1] == 1:
            hint = "; y.ravel() gives the (N,) labels"
        elif y.ndim == 2 and y.size and np.array_equal(y.sum(axis=1), np.ones(len(y))) and np.all((y == 0) | (y == 1)):
            hint = "; y looks one-hot (a row of K per sample): y.argmax(axis=1) gives the (N,) labels"
        raise ValueError(f"{pair}x must be (N, ...) and y must be (N,), got shapes {x.shape} and {y.shape}{hint}")
    if len(x) != len(y):
        raise ValueError(f"{pair}x has {len(x)} sample{'s' * (len(x) != 1)} but y has "
                         f"{len(y)} label{'s' * (len(y) != 1)}: one label per sample")
    if len(x) == 0:
        raise ValueError(f"{pair}no samples (x has shape {x.shape})")
    if x.dtype.kind not in "biuf":
        raise TypeError(f"{where}x must hold real numbers, got an array of dtype {x.dtype}")
    if y.dtype.kind not in "iu":  # timedelta64 counts as an integer to NumPy; bool is no label
        hint = ""
        if y.dtype.kind == "f":
            bad = _first_non_finite(y)
            hint = (f" (y[{bad}] is {y[bad]})" if bad is not None else
                    "; y.astype(int) turns these whole numbers into labels" if np.array_equal(y, np.round(y))
                    else "")
        raise TypeError(f"{pair}y must hold integer class labels, got dtype {y.dtype}{hint}")
    if x.dtype.kind == "f" and (bad := _first_non_finite(x)) is not None:
        at = (bad, *(int(i) for i in np.argwhere(~np.isfinite(x[bad : bad + 1]))[0][1:]))
        raise ValueError(
            f"{where}x holds {x[at]} at sample {bad}, index {at}: the model's outputs for it, and "
            "in training every weight it reaches, would be NaN; drop or repair that sample")
    return x, y


# Samples per isfinite pass: bounds the temporary boolean array whatever the data's size.
_FINITE_CHUNK_VALUES = 1 << 22


def _first_non_finite(a):
    """Index of the first sample (along axis 0) of float array `a` with a NaN or inf, or None."""
    per_sample = max(1, a[0].size)
    step = max(1, _FINITE_CHUNK_VALUES // per_sample)
    for start in range(0, len(a), step):
        finite = np.isfinite(a[start:start + step]).reshape(-1, per_sample).all(axis=1)
        if not finite.all():
            return start + int(np.argmin(finite))
    return None


def _n_outputs(model, x, where):
    """The model's number of outputs K for one sample of x; `where` prefixes the error.

    The output must be (1, K) logits: a model ending in a (N, C, H, W) layer would otherwise
    have its labels checked against W, and be refused for "labels out of range".
    """
    try:
        # In eval mode: a sample of one trains no BatchNorm2D, and updates no running statistics.
        with _mode(model, training=False):
            out = model.forward(x[:1])
    except ValueError as exc:
        raise ValueError(f"{where}the model cannot take x's samples of shape {x.shape[1:]}: {exc}") from exc
    if not isinstance(out, np.ndarray):  # Sequential names the layer itself; a model of one's own cannot
        what = "None" if out is None else f"a {type(out).__name__}"
        raise TypeError(f"{where}the model's forward returned {what}, not an array of logits (N, K)")
    if out.ndim != 2:
        raise ValueError(
            f"{where}the model's output for one sample has shape {out.shape}; the loss needs logits (N, K), "
            "one row of K class scores per sample: end the model with Flatten() and Dense(features, K)")
    return out.shape[-1]


def _check_labels(y, n_classes, name):
    low, high = y.min(), y.max()
    if low < 0 or high >= n_classes:
        bad = int(np.argmax((y < 0) | (y >= n_classes)))
        raise ValueError(f"{name}: labels must be in 0..{n_classes - 1}, the model's {n_classes} outputs; "
                         f"got values from {low} to {high} (the first outside, {y[bad]}, at sample {bad})")


def _raise_if_diverged(logits, idx, epoch, batch, n_batches):
    """Raise a ValueError naming the samples, in the caller's data, whose logits are not finite.

    The data were checked finite before training, so non-finite logits mean that the
    weights overflowed, or, before any update, that x's values are too large for the
    model: the loss function's own message would give positions inside a shuffled batch,
    which mean nothing to the caller.
    """
    bad_rows = ~np.isfinite(logits).all(axis=1)
    if not bad_rows.any():
        return
    samples = ", ".join(str(int(i)) for i in idx[bad_rows][:5]) + (", ..." if bad_rows.sum() > 5 else "")
    updates = epoch * n_batches + batch
    why = (f"after {updates} update{'s' * (updates > 1)} the weights have overflowed: try a smaller learning rate" if updates
           else "no update has been made yet, so x's values are too large for the model: scale them")
    raise ValueError(
        f"training diverged in epoch {epoch + 1}, batch {batch + 1}: the model's outputs for samples "
        f"{samples} of x are not finite (NaN or inf), though x is; {why}")
