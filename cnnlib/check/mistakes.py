"""The catalogue of classic mistakes: one entry per mistake, in one place.

An entry has a key (what report.mistakes lists), the checks it applies to, its hint, and either
the mistaken formula or a small pattern detector:

- formula(case) gives the numbers the mistake produces on that case's inputs, as a dict name ->
  value ({"dw": ...}), or a list of such dicts, one per way it can be written (loop orders), in
  the same order for every case (None for a way that does not apply). It is found when, for
  one way, in every case where its numbers differ from the right ones and the learner's code
  produced that result, the learner's result is those numbers, and there is at least one such
  case. The one comparison is _core.same.
- detect(cases) -> bool reads what the checks record in each Case (see _core.Case).

Every check consults every entry that lists it, so a mistake recognised by one check is
recognised by all of them; the checks record their cases in shared forms (a one-channel
convolution as a batch of one image with one filter, and so on) to make that work. A hint is
given only when its entry is found: when none is, the failing cases say what differs and where.
"""

import itertools

import numpy as np

from .. import gradcheck
from . import reference as ref
from ._core import TOLERANCE, same

CATALOGUE = {}

LAYERS = ("dense", "relu", "conv2d", "maxpool2d", "avgpool2d", "flatten")
ARRAYS = LAYERS + ("batchnorm2d", "dropout", "softmax_cross_entropy", "softmax", "log_softmax", "conv2d_one_channel", "scatter_one",
                   "permute_dense_weights", "flatten_dense", "port_dense_weights")
ALL = ARRAYS + ("numerical_gradient", "rel_error", "output_size", "pool_output_size", "layer", "sequential",
                "network", "sgd_momentum", "adam", "train_epoch", "sgd_weight_decay", "adamw")
OPTIMIZERS = ("sgd_momentum", "adam", "sgd_weight_decay", "adamw")
CONV = ("conv2d", "conv2d_one_channel", "scatter_one")
SIZES = ("output_size", "pool_output_size", "conv2d", "conv2d_one_channel", "maxpool2d", "avgpool2d")


class Mistake:
    def __init__(self, key, checks, hint, formula=None, detect=None, last_resort=False):
        self.key, self.checks, self.hint, self.formula, self.detect = key, tuple(checks), hint, formula, detect
        self.last_resort = last_resort  # said only when no other entry is found: a broader reading of the same signs

    def found(self, cases):
        if self.detect is not None and self.detect(cases):
            return True
        return self.formula is not None and _explains(self.formula, cases)


def entry(key, checks, hint, formula=None, detect=None, last_resort=False):
    CATALOGUE[key] = Mistake(key, checks, hint, formula, detect, last_resort)


def diagnose(report, check):
    """Give the hint of every entry for `check` that the failing report's cases show."""
    if report.passed or report.stubs:
        return
    cases = [c for c in report.cases if c.status != "skip"]
    for key, mistake in sorted(CATALOGUE.items(), key=lambda item: item[1].last_resort):
        if check not in mistake.checks or (mistake.last_resort and report.mistakes):
            continue
        try:
            with np.errstate(all="ignore"):
                found = mistake.found(cases)
        except Exception as error:  # a learner's output no entry foresaw: no hint, never a crash
            report.diagnosis_errors.append(f"{key}: {type(error).__name__}: {error}")
            continue
        if found:
            report.hint(key, mistake.hint)


def _explains(formula, cases):
    """Whether one way of the mistake gives the learner's results in every case where it shows."""
    ways = [formula(c) if c.got else None for c in cases]
    ways = [[w] if isinstance(w, dict) else list(w or []) for w in ways]
    for k in range(max(map(len, ways), default=0)):
        verdicts = [_verdict(c, w[k]) for c, w in zip(cases, ways) if k < len(w) and w[k]]
        verdicts = [v for v in verdicts if v is not None]
        if verdicts and all(verdicts):
            return True
    return False


def _verdict(c, way):
    """None when this way of the mistake shows nothing here (it gives the right numbers, or the
    learner's code gave no such result); else whether the learner's results are all its numbers."""
    given = [n for n, v in way.items() if v is not None and n in c.got]
    if all(same(way[n], c.want.get(n)) for n in given):
        return None
    return all(same(c.got[n], way[n]) for n in given)


# ---- what the formulas read -------------------------------------------------------------------
def _conv(c):
    """(x, w, b, stride, pad) of a convolution case (conv2d, conv2d_one_channel, scatter_one)."""
    i = c.inputs
    return i["x"], i["w"], i["b"], c.settings.get("stride", 1), c.settings.get("pad", 0)


def _pool(c):
    size = c.settings["size"]
    return c.inputs["x"], size, c.settings.get("stride") or size, c.settings.get("pad", 0)


def _grads(c, **slip):
    if "dout" not in c.inputs:
        return None
    x, w, _, stride, pad = _conv(c)
    return ref.conv_grads(c.inputs["dout"], x, w, stride, pad, **slip)


def _pool_dx(c, rule, **slip):
    """dx of the case's max pooling under `rule`, or of its average pooling with `slip` (see reference)."""
    if "dout" not in c.inputs:
        return None
    x, size, stride, pad = _pool(c)
    if c.check == "maxpool2d":
        return {"dx": ref.maxpool_dx(x, c.inputs["dout"], size, stride, pad, rule=rule)}
    return {"dx": ref.avgpool_dx(x.shape, c.inputs["dout"], size, stride, **slip)}


def _only(names, grads):
    return None if grads is None else {n: grads[n] for n in names}


def _sizes(rule):
    def formula(c):
        axes = c.settings.get("axes")
        if not axes:
            return None
        sizes = tuple(ref.out_size(*axis, rule=rule) for axis in axes)
        return {"size": sizes[0] if len(sizes) == 1 else sizes}
    return formula


def _averaged(c):
    """dw or db divided by N, N*H'*W' or H'*W', in that order."""
    dout = c.inputs.get("dout")
    if dout is None:
        return None
    N, spatial = dout.shape[0], int(np.prod(dout.shape[2:]))
    return [{n: c.want[n] / k} if n in c.want else None for n in ("dw", "db") for k in (N, N * spatial, spatial)]


def _no_hint_for_cache(c):
    return "unpack" not in (c.error or "") and "'tuple'" not in (c.error or "")


# ---- every check ------------------------------------------------------------------------------
entry("exits", ALL,
      "Your code calls sys.exit() (or exit(), quit()): in a notebook that only stops the cell, and in a "
      "program it stops everything. Raise an exception instead (raise ValueError(...)) where an input is "
      "wrong, or return the result.",
      detect=lambda cases: any((c.error or "").startswith("SystemExit") for c in cases))
entry("returns_none", ALL,
      "A function of yours returns None: the `return` line is missing (or a `return` without a value, or "
      "a decorator around it that does not return what it calls). Every forward, backward, step or loop "
      "you write returns its result.",
      detect=lambda cases: any("none" in c.facts for c in cases))
entry("in_place", ARRAYS + OPTIMIZERS + ("layer", "train_epoch", "sequential", "network"),
      "Your code changes an array it was given, in place (for example `x[x < 0] = 0`, `dout[...] = 0`, "
      "`x -= ...`, `x.shape = ...`, or grads.clear()): the failing case names it. The caller still needs "
      "it: the backward and the gradient check reread x, and dout, the cache or grads may be shared. "
      "Work on a copy, or build a new array (np.maximum, np.where, x * mask, x.reshape(...)).",
      detect=lambda cases: any(not n.endswith("layers") for c in cases for n in c.changed))
entry("float32", ARRAYS,
      "Your function returns float32 (or another dtype) for float64 inputs: keep the inputs' precision, "
      "e.g. np.zeros_like(x) or dtype=x.dtype, as a gradient check needs float64's 16 digits "
      "(lesson 2, 'float32 vs float64').",
      detect=lambda cases: any(isinstance(v, np.ndarray) and v.dtype.kind in "biuf" and v.dtype != np.float64
                               and v.size and n not in c.wrong for c in cases for n, v in c.got.items()))
entry("np_matrix", ALL,
      "Your function returns a np.matrix, not an ndarray: `*` is then a matrix product and every "
      "reduction keeps two axes, so the layers after it go wrong. Use plain arrays and `@` "
      "(np.asarray(...) turns a matrix back into one).",
      detect=lambda cases: any(isinstance(v, np.matrix) for c in cases for v in c.got.values()))
entry("return_form", ALL,
      "Your function returns something of the wrong form (see the failing case): forward functions "
      "return (out, cache), a tuple of two, so the backward later gets the cache; the backward returns "
      "the gradient of each input, in the order of the inputs, (dx, dw, db) or dx alone; softmax "
      "cross-entropy returns (loss, dlogits).",
      detect=lambda cases: any("form" in c.facts for c in cases))

# ---- convolution and pooling ------------------------------------------------------------------
entry("pad_crop", ("conv2d", "maxpool2d", "scatter_one"),
      "With pad = 0, `dxp[:, :, pad:-pad, pad:-pad]` is `dxp[:, :, 0:0, 0:0]`, an empty array: -0 is 0. "
      "Cut the padding off by size instead, `dxp[:, :, pad:pad + H, pad:pad + W]` "
      "(lesson 5, 'The pad = 0 bug').",
      formula=lambda c: ({"dx": c.want["dx"][..., 0:0, 0:0]} if "dx" in c.want and ref.pair(
          c.settings.get("pad", 0)) == (0, 0) else None))
entry("no_crop", ("conv2d", "scatter_one"),
      "Your dx is the padded gradient, (H + 2*pad, W + 2*pad): the padding zeros are constants, not "
      "inputs, so cut the border off before returning, `dxp[pad:pad + H, pad:pad + W]` "
      "(lesson 5, 'The forward pass, and what we want').",
      formula=lambda c: _only(["dx"], _grads(c, crop=False)))
entry("overwrite_dx", ("conv2d", "scatter_one", "maxpool2d", "avgpool2d"),
      "Where windows overlap (or several filters read the same pixel), a pixel's gradient is the sum of what "
      "every window sends it, but yours keeps only one of those terms: the backward assigns with `=` where it "
      "must add with `+=` (lesson 5, 'Overlapping windows add up'; for pooling, lesson 6, 'Overlapping "
      "windows: gradients add up').",
      formula=lambda c: [_only(["dx"], _grads(c, assign=a)) for a in ("dx f, windows", "dx windows, f", "dx windows")]
      if "w" in c.inputs else _pool_dx(c, "assign", assign=True))
entry("overwrite_dw", ("conv2d",),
      "Each weight is used by every window of every image, so dw sums dout times the input over all of "
      "them; yours keeps only one term: `dw[f] = ...` where it must be `dw[f] += ...` "
      "(lesson 5, 'The backward pass with loops').",
      formula=lambda c: [_only(["dw"], _grads(c, assign=a)) for a in ("dw n, windows", "dw windows")])
entry("dx_one_filter", ("conv2d",),
      "Your dx holds only filter 0's part: every filter f read the pixel, so dx sums dout[n, f, i, j] * w[f] "
      "over all F filters (`for f in range(F)`, or an einsum over f) (lesson 5, 'The backward pass with "
      "loops').",
      formula=lambda c: _only(["dx"], _grads(c, filters=[0])) if c.inputs["w"].shape[0] > 1 else None)
entry("dw_one_sample", ("conv2d", "dense"),
      "Your dw holds only sample 0's part: a weight is shared by every image of the batch, so dw sums the "
      "terms of all N samples (lesson 2, 'Backward: the chain rule'; lesson 5, 'The backward pass with "
      "loops').",
      formula=lambda c: None if "dout" not in c.inputs or len(c.inputs["dout"]) < 2 else (
          _only(["dw"], _grads(c, samples=[0])) if "b" in c.inputs and c.inputs["w"].ndim == 4 else
          {"dw": c.inputs["x"][:1].T @ c.inputs["dout"][:1]}))
entry("flipped_kernel", CONV,
      "Your convolution flips the kernel (out[i, j] uses w[KH-1-p, KW-1-q]): that is the convolution of "
      "mathematics, but CNN layers compute cross-correlation, w[p, q] times the pixel at (i*stride + p, "
      "j*stride + q), with no flip (lesson 4, 'One channel, one filter'). In the backward, dout[i, j] * w "
      "goes back onto the window upright; the flip appears only when dx is written as a convolution of dout "
      "(lesson 5).",
      formula=lambda c: None if np.array_equal(c.inputs["w"], c.inputs["w"][:, :, ::-1, ::-1]) else [
          {"out": ref.conv_forward(*_conv(c), flip=True)}, _only(["dx"], _grads(c, flip=True)),
          _only(["dw"], _grads(c, flip=True))])
entry("stride_ignored", CONV + ("maxpool2d", "avgpool2d"),
      "Window (i, j) starts at row i*stride and column j*stride of the padded input, in the forward and in "
      "the backward alike; yours starts it at (i, j), which is right for stride 1 only (lesson 4, 'Padding "
      "and stride'; lesson 5, 'The backward pass with loops'; lesson 6, 'Max pooling backward').",
      formula=lambda c: [{"out": ref.conv_forward(*_conv(c), step=1)}, _only(["dx"], _grads(c, step=1)),
                         _only(["dw"], _grads(c, step=1))] if "w" in c.inputs else _pool_dx(c, "no stride", step=1))
entry("edge_padding", ("conv2d", "conv2d_one_channel"),
      "Your padding repeats the image (np.pad's mode='edge', 'reflect', 'symmetric' or 'wrap'); a "
      "convolution pads with zeros, np.pad's default, mode='constant' (lesson 4, 'Padding and stride').",
      formula=lambda c: [{"out": ref.conv_forward(*_conv(c), mode=m)} for m in ("edge", "reflect", "symmetric",
                                                                                   "wrap")])

def _only_padded_fail(cases):
    padded = [ref.pair(c.settings.get("pad", 0)) != (0, 0) for c in cases]
    return any(padded) and not all(padded) and all((c.status == "fail") == p for c, p in zip(cases, padded))


entry("no_padding", ("conv2d", "conv2d_one_channel"),
      "Every case with pad 0 passes and every case with padding fails: pad the image with zeros on every side "
      "before sliding the window, `xp = np.pad(x, ...)`, and read the windows from xp (lesson 4, 'Padding and "
      "stride').",
      detect=_only_padded_fail, last_resort=True)

_SIZE_FORMULA = ("The right size is H' = (H + 2*pad - K) // stride + 1 along each axis, K the window's "
                 "side (for pooling without padding, (H - size) // stride + 1)")
_SIZE_LESSONS = " (lesson 4, 'Padding and stride'; lesson 6, 'Windows and the output size')."
for _key, _rule, _text in [
        ("size_no_pad", "no pad", "Your output size leaves the padding out: the window slides over the padded "
                                  "image, H + 2*pad rows."),
        ("size_pad_once", "pad once", "Your output size adds the padding once: it goes on both sides, top "
                                      "and bottom (left and right), so the padded image has H + 2*pad rows."),
        ("size_no_plus_one", "no + 1", "Your output size is one too small: (H + 2*pad - K) // stride counts the "
                                       "steps the window takes, and the window at position 0 comes on top, so + 1."),
        ("size_no_stride", "no stride", "Your output size is right for stride 1 only: the window moves `stride` "
                                        "rows per step, so the number of steps is (H + 2*pad - K) // stride."),
        ("size_rounded_up", "rounded up", "Your output size rounds up where a window would stick out past the "
                                          "edge: a window must fit completely, so divide with `//`, which rounds "
                                          "down."),
        ("size_true_division", "true division", "Your sizes are floats: `/` divides exactly, but only whole "
                                                "windows fit. Floor division `//` rounds down and gives an int.")]:
    entry(_key, SIZES, f"{_text} {_SIZE_FORMULA}{_SIZE_LESSONS}", formula=_sizes(_rule))
entry("size_height_width", ("pool_output_size",),
      "Your sizes mix up the height and the width: on a non-square map H' comes from H and W' from W, each "
      "with the same formula, (H - size) // stride + 1 and (W - size) // stride + 1 (lesson 6, 'Windows and "
      "the output size').",
      formula=lambda c: [{"size": (a, b)} for h, w in [_sizes("right")(c)["size"]] for a, b in
                         ((w, h), (h, h), (w, w))])
entry("averaged", ("conv2d", "dense"),
      "A parameter gradient (dw or db: the failing cases name it) is the right sum divided by a count (N, or "
      "N*H'*W'): it is averaged where it must be summed. The loss's 1/N is already inside dout (lesson 3), "
      "and each shared weight collects every term it took part in (lesson 2, 'Backward: the chain rule').",
      formula=_averaged)
entry("db_axes", ("conv2d", "dense"),
      "db has one number per filter (per output for dense): sum dout over every other axis, "
      "`dout.sum(axis=(0, 2, 3))` for a convolution, `dout.sum(axis=0)` for a dense layer. Yours sums over "
      "other axes (lesson 2, 'Backward: the chain rule').",
      formula=lambda c: "dout" in c.inputs and [
          {"db": c.inputs["dout"].sum(axis=axes)} for k in range(1, c.inputs["dout"].ndim + 1)
          for axes in itertools.combinations(range(c.inputs["dout"].ndim), k)])
entry("db_keepdims", ("conv2d", "dense"),
      "Your db has extra axes of length 1, e.g. (1, M) from `dout.sum(axis=0, keepdims=True)`: a gradient "
      "has the shape of its parameter, b is (M,) (or (F,)), so drop keepdims (lesson 2, 'Backward: the chain "
      "rule').",
      formula=lambda c: "db" in c.want and [{"db": c.want["db"].reshape(s)} for s in
                                            ((1, -1), (-1, 1), (1, -1, 1, 1))])
entry("transposed_dw", ("conv2d", "dense"),
      "dw has the right numbers with two axes swapped: a gradient has the shape of what it belongs to, "
      "dense w is (D, M) so dw = x.T @ dout, and conv w is (F, C, KH, KW) (lesson 2).",
      formula=lambda c: "dw" in c.want and {"dw": np.swapaxes(c.want["dw"], 0, 1)})
entry("grads_order", ("conv2d", "dense"),
      "Your backward returns the right gradients in another order: it returns the gradient of each input "
      "in the order of the inputs, (dx, dw, db), as x, w, b (lesson 2, 'Backward: the chain rule').",
      formula=lambda c: "dx" in c.want and [dict(zip(("dx", "dw", "db"), (c.want[n] for n in p)))
                                            for p in itertools.permutations(("dx", "dw", "db"))])
entry("no_bias", ("dense", "conv2d", "conv2d_one_channel", "flatten_dense"),
      "Your output leaves the bias out: every output is the weighted sum plus b, the same b added to every "
      "row of a dense layer and to every pixel of filter f's map (lesson 2; lesson 4, 'One channel, one "
      "filter'; lesson 7).",
      formula=lambda c: "out" in c.want and "b" in c.inputs and {
          "out": c.want["out"] - (np.asarray(c.inputs["b"])[:, None, None] if c.want["out"].ndim == 4
                                  else c.inputs["b"])})
entry("consistent_pair", ("dense", "relu", "conv2d", "maxpool2d", "avgpool2d", "batchnorm2d"),
      "Your backward is right for your own forward (finite differences agree), but your forward computes "
      "something else than the layer should; fix the forward first, then its backward with it.",
      detect=lambda cases: any("out" in c.wrong and "own fd ok" in c.facts and c.wrong - {"out", "size"}
                               for c in cases))
entry("cache_layout", ("conv2d", "maxpool2d", "avgpool2d"),
      "Checked alone, your backward gets the cache of cnnlib's forward: (x, w, b, stride, pad, ...) for "
      "conv2d, (x, argmax, size, stride, pad) for max pooling, (x, size, stride) for average pooling, with "
      "size, stride and pad as (vertical, horizontal) pairs. Unpack it that way (e.g. "
      "`x, w, b, (sh, sw), (ph, pw) = cache[:5]`), or check your forward and backward together, "
      "`check.conv2d(forward=my_forward, backward=my_backward)`, so your backward gets your own cache.",
      detect=lambda cases: any("backward alone" in c.facts and c.error and not _no_hint_for_cache(c)
                               for c in cases))
entry("cache_mismatch", LAYERS,
      "Your backward cannot read the cache your forward returns, but runs on cnnlib's: the two disagree "
      "on the cache's layout. Make the forward store what the backward unpacks: for a convolution, "
      "(x, w, b, (stride, stride), (pad, pad)), as lessons 4 and 5 do.",
      detect=lambda cases: any("cache mismatch" in c.facts for c in cases))
entry("every_tie", ("maxpool2d",),
      "Where several pixels tie for a window's maximum, yours gives the gradient to each of them (or shares "
      "it out). Max pooling's output came from one of them: cnnlib, like PyTorch, gives all of dout to the "
      "first maximum in row-major order, np.argmax's choice (lesson 6, 'Ties').",
      formula=lambda c: [_pool_dx(c, r) for r in ("every tie", "split ties", "last tie")])
entry("spread_window", ("maxpool2d",),
      "Your max-pool backward spreads dout over the whole window. Only the maximum reached the output, so "
      "only that pixel gets the gradient; the others get 0 (lesson 6, 'Max pooling backward: the gradient "
      "goes to the winner').",
      formula=lambda c: [_pool_dx(c, r) for r in ("whole window", "window mean")])
entry("argmax_decoded_by_stride", ("maxpool2d",),
      "Your max-pool backward puts the gradient in the wrong cell of the window when the stride differs "
      "from the window: a flat index k inside a KH x KW window is row k // KW, column k % KW, "
      "`p, q = divmod(k, KW)`, whatever the stride; the pixel is then (i*stride + p, j*stride + q) "
      "(lesson 6, 'Max pooling backward: the gradient goes to the winner').",
      formula=lambda c: _pool_dx(c, "decode by stride"))
entry("window_row_column_swapped", ("maxpool2d",),
      "Your max-pool backward swaps the winner's row and column in its window: flat index k is row k // KW, "
      "column k % KW, `p, q = divmod(k, KW)` in that order (lesson 6, 'Max pooling backward').",
      formula=lambda c: _pool_dx(c, "row and column swapped"))
entry("avg_factor", ("avgpool2d",),
      "Average pooling divides each window's sum by KH*KW, the number of pixels in the window (size**2 for "
      "a square one, not size), in the forward, and so each pixel gets dout / (KH*KW) in the backward. Yours "
      "is off by a factor of KH*KW, or of one side of the window (lesson 6, 'Average pooling').",
      formula=lambda c: [{n: c.want[n] * k} if n in c.want else None for n in ("out", "dx")
                         for KH, KW in [ref.pair(c.settings["size"])]
                         for k in (KH * KW, KH, KW, 1 / (KH * KW), 1 / KH, 1 / KW)])

# ---- Flatten, dense, ReLU ----------------------------------------------------------------------


def _sorted_rows(a):
    return np.sort(a.reshape(a.shape[0], -1), axis=1)


def _dx_permuted(c, per_sample):
    dx, want = c.got.get("dx"), c.want.get("dx")
    if "dx" not in c.wrong or "mixes samples" in c.facts or not isinstance(dx, np.ndarray) or dx.shape != want.shape:
        return False
    whole = np.array_equal(np.sort(dx, axis=None), np.sort(want, axis=None))
    return whole and np.array_equal(_sorted_rows(dx), _sorted_rows(want)) == per_sample


entry("flatten_order", ("flatten",),
      "Your Flatten backward puts the right numbers in the wrong cells: it unflattens in another order than "
      "the forward flattened. Each number of dout must go back to the cell it came from, in the same order, "
      "not reversed: use the inverse of your forward, `dout.reshape(shape)` (the shape your forward saw) "
      "after a C-order forward, `dout.reshape(shape, order=\"F\")` after an F-order one (lesson 7, 'Does the "
      "flatten order matter?').",
      detect=lambda cases: any(_dx_permuted(c, True) for c in cases))
entry("flatten_mixes_samples", ("flatten",),
      "Your Flatten mixes samples: row n of the output must hold exactly the numbers of sample n, as the "
      "dense layer treats each row as one image. Reshape to (N, -1) with the batch axis first, e.g. "
      "`x.reshape(x.shape[0], -1)` (lesson 7, 'What Flatten does').",
      detect=lambda cases: any("mixes samples" in c.facts for c in cases))
entry("flatten_backward_mixes_samples", ("flatten",),
      "Your Flatten backward mixes samples: row n of dout is the gradient of sample n's numbers only, so it "
      "must go back into dx[n] and nowhere else. Reshape with the batch axis first, `dout.reshape(shape)` "
      "with the shape the forward saw (lesson 7, 'What Flatten does').",
      detect=lambda cases: any(_dx_permuted(c, False) for c in cases))
entry("flatten_four_axes", ("flatten",),
      "Your Flatten works on images but raises on other shapes: it unpacks four axes (`N, C, H, W = "
      "x.shape`). Flatten takes any (N, ...) array, e.g. (N, T, D) or an already flat (N, D): "
      "`x.reshape(x.shape[0], -1)` needs no names for the other axes, and the backward `dout.reshape(shape)` "
      "none either (lesson 7, 'Any input shape (N, ...)').",
      detect=lambda cases: (any("unpack" in (c.error or "") for c in cases if c.inputs["x"].ndim != 4)
                            and not any("unpack" in (c.error or "") for c in cases if c.inputs["x"].ndim == 4)))
entry("flatten_wanted_order", ("flatten",),
      "Your forward flattens each sample, but not in the order the check asks for (its order= argument): in "
      "F order use `x.reshape(x.shape[0], -1, order=\"F\")` and unflatten with `dout.reshape(shape, order=\"F\")`; "
      "in C order the same without order= (lesson 7, 'Does the flatten order matter?').",
      detect=lambda cases: any("wanted order" in c.facts for c in cases))
entry("flatten_first_sample", ("flatten",),
      "Every sample's dx holds sample 0's gradient: the index into the flat dout leaves out the sample's "
      "offset. Row n of dout starts at n * D in the flat buffer (D values per sample), so read "
      "`src[n * D + j]`, not `src[j]` (lesson 7, 'Do I just put the values back in reverse order?').",
      formula=lambda c: "dx" in c.want and len(c.want["dx"]) > 1 and {
          "dx": np.broadcast_to(c.want["dx"][:1], c.want["dx"].shape)})
entry("relu_mask_only", ("relu",),
      "Your ReLU backward returns the mask (1 where x > 0) without dout: the chain rule multiplies the "
      "upstream gradient by the local slope, dx = dout * (x > 0) (lesson 3, 'ReLU').",
      formula=lambda c: "dx" in c.want and {"dx": (c.inputs["x"] > 0).astype(float)})
entry("relu_slope_at_zero", ("relu",),
      "Where x is exactly 0 your backward lets dout through (x >= 0, or np.heaviside(x, 1)): ReLU's slope "
      "at 0 is taken as 0 in this course (and in cnnlib and PyTorch), so dx = dout * (x > 0) "
      "(lesson 3, 'ReLU').",
      formula=lambda c: "dx" in c.want and {"dx": c.inputs["dout"] * (c.inputs["x"] >= 0)})

# ---- softmax ------------------------------------------------------------------------------------


def _softmax_slip(c, **slip):
    """What softmax, log_softmax or softmax cross-entropy gives with a slip in its log-softmax."""
    if c.check == "softmax_cross_entropy":
        logits, y = c.inputs["logits"], c.inputs["y"]
        log_probs = slip.pop("log_probs")(logits) if "log_probs" in slip else ref.log_softmax(logits, **slip)
        onehot = np.eye(logits.shape[1])[y]
        return {"loss": ref.cross_entropy(logits, y, log_probs), "dlogits": (np.exp(log_probs) - onehot) / len(y)}
    z = c.inputs["z"]
    if "log_probs" in slip:
        return {"out": slip["log_probs"](z)} if c.check == "log_softmax" else None
    return {"out": ref.log_softmax(z, **slip) if c.check == "log_softmax" else ref.softmax(z, **slip)}


SOFTMAX = ("softmax", "log_softmax", "softmax_cross_entropy")
entry("softmax_no_shift", SOFTMAX,
      "With logits of 1000 or more, np.exp overflows to inf, and inf / inf is NaN. Subtract each row's "
      "maximum first, `shifted = z - z.max(axis=1, keepdims=True)`: the softmax does not change, and the "
      "largest exponent becomes exp(0) = 1 (lesson 3, 'Overflow').",
      formula=lambda c: _softmax_slip(c, shift="none"),
      detect=lambda cases: any("overflow encountered in exp" in w for c in cases for w in c.warned))
entry("softmax_global_max", SOFTMAX,
      "You subtract the largest logit of the whole batch, `z.max()`: a row far below it (around -1000 when "
      "another is around 1000) then underflows to exp(-2000) = 0 everywhere, and 0 / 0 is nan. Each row "
      "needs its own maximum, `z.max(axis=1, keepdims=True)` (lesson 3, 'Overflow').",
      formula=lambda c: _softmax_slip(c, shift="global"))
entry("softmax_axis", ("softmax", "log_softmax"),
      "Each row of z is one sample, so the maximum and the sum run over axis 1, the classes, with "
      "keepdims=True so that the (N, 1) result broadcasts over the row: `z.max(axis=1, keepdims=True)`, "
      "`e.sum(axis=1, keepdims=True)`. Yours uses axis 0 or drops keepdims (lesson 3, 'Overflow').",
      formula=lambda c: [_softmax_slip(c, **s) if "keepdims" not in str(s) or len(set(c.inputs["z"].shape)) == 1
                         else None for s in ({"shift": "column"}, {"axis": 0}, {"shift": "row, no keepdims"},
                                             {"keepdims": False})],
      detect=lambda cases: any("could not be broadcast" in (c.error or "") for c in cases))
entry("log_of_softmax", ("log_softmax", "softmax_cross_entropy"),
      "You take np.log of the softmax: where a probability is below float64's range (e**-800) it is 0 and "
      "its log is -inf, so the loss is inf. Compute the log directly, `shifted - np.log(np.exp(shifted)"
      ".sum(axis=1, keepdims=True))`, which gives -800 (lesson 3, 'Why log-softmax?').",
      formula=lambda c: _softmax_slip(c, log_probs=lambda z: np.log(ref.softmax(z))))
entry("softmax_no_mean", ("softmax_cross_entropy",),
      "The loss is the mean over the batch, so its gradient carries 1/N: dlogits = (probs - onehot) / N. "
      "Yours is N times too large (lesson 3, 'The fused gradient').",
      formula=lambda c: {"dlogits": c.want["dlogits"] * len(c.inputs["y"])})
entry("softmax_loss_sum", ("softmax_cross_entropy",),
      "Your loss is N times too large: it sums the N samples' losses where it must average them, "
      "-mean(log_probs[n, y[n]]), so that the loss, and the learning rate that suits it, do not depend on "
      "the batch size (lesson 3, 'Softmax and cross-entropy').",
      formula=lambda c: {"loss": c.want["loss"] * len(c.inputs["y"])})
entry("softmax_sign", ("softmax_cross_entropy",),
      "Your dlogits has the wrong sign: it is (probs - onehot) / N, positive for the wrong classes "
      "(lowering their scores lowers the loss) (lesson 3, 'The fused gradient').",
      formula=lambda c: {"dlogits": -c.want["dlogits"]})

# ---- lesson 2: the gradient check's own tools ---------------------------------------------------


def _numgrad(c, h_factor=1.0, one_sided=None, ones=False):
    f, x, dout, h = (c.inputs[k] for k in ("f", "x", "dout", "h"))
    d = np.ones_like(np.asarray(dout, dtype=float)) if ones else dout
    grad, xv = np.zeros(x.shape), x.copy()
    for idx in np.ndindex(x.shape):
        old = xv[idx]
        xv[idx] = old + (0 if one_sided == "backward" else h)
        up = float(np.sum(np.asarray(f(xv), dtype=np.float64) * d))
        xv[idx] = old - (0 if one_sided == "forward" else h)
        down = float(np.sum(np.asarray(f(xv), dtype=np.float64) * d))
        xv[idx] = old
        grad[idx] = (up - down) / (h * h_factor if one_sided else 2 * h * h_factor)
    return {"grad": grad}


def _scale_close(a, b):
    """Within TOLERANCE of b's largest element: a centred difference's rounding stays far below it."""
    return (isinstance(a, np.ndarray) and a.shape == np.shape(b)
            and np.max(np.abs(a - b), initial=0) <= TOLERANCE * max(1e-8, np.max(np.abs(b), initial=0)))


def _numgrad_entry(key, hint, *slips):
    entry(key, ("numerical_gradient",), hint,
          detect=lambda cases: any("grad" in c.wrong and any(_scale_close(c.got["grad"], _numgrad(c, **s)["grad"])
                                                             for s in slips) for c in cases))


_numgrad_entry("numgrad_one_sided",
               "Your gradient is the one-sided difference (f(x + h) - f(x)) / h (or (f(x) - f(x - h)) / h): its "
               "error is of order h, about 1e-5 here, where the centred difference (f(x + h) - f(x - h)) / 2h "
               "has error of order h**2, about 1e-10. Probe both sides of each element (lesson 2, 'Numerical "
               "gradient with centred differences').", {"one_sided": "forward"}, {"one_sided": "backward"})
_numgrad_entry("numgrad_divided_by_h",
               "Your gradient is twice the right one: x + h and x - h are 2h apart, so divide their difference "
               "by 2 * h, not h (lesson 2, 'Numerical gradient with centred differences').", {"h_factor": 0.5})
_numgrad_entry("numgrad_no_dout",
               "Your gradient is that of sum(f(x)), as if dout were all ones: the function to differentiate is "
               "sum(f(x) * dout), so multiply by dout before summing, `np.sum(f(x) * dout)` (lesson 2, "
               "'Numerical gradient with centred differences').", {"ones": True})
entry("numgrad_not_restored", ("numerical_gradient",),
      "x is not as it was after your function ran: after probing an element, put its saved value back, "
      "`x[idx] = old`. Not restored, every later probe starts from a shifted x; restored by adding h back "
      "(`x[idx] += h`), it drifts by rounding (lesson 2, 'Numerical gradient with centred differences').",
      detect=lambda cases: any(c.changed for c in cases))
entry("numgrad_view_kept", ("numerical_gradient",),
      "Your gradient is 0 where f returns a view of x (as Flatten's reshape does): the array you kept from "
      "f(x + h) changes when x changes again, so both sides end up equal. Reduce each side to a number right "
      "away, `plus = np.sum(f(x) * dout)`, or keep a copy, `f(x).copy()` (lesson 2, 'Numerical gradient "
      "with centred differences').",
      detect=lambda cases: any(c.settings.get("view") and "grad" in c.wrong and isinstance(c.got["grad"], np.ndarray)
                               and not np.any(c.got["grad"]) for c in cases))


def _rel_error_slip(c, slip):
    a, b = (np.asarray(c.inputs[k], dtype=np.float64) for k in "ab")
    top, bottom = {"no abs top": (a - b, np.abs(a) + np.abs(b)), "no abs bottom": (np.abs(a - b), a + b),
                   "no abs": (a - b, a + b), "abs of sum": (np.abs(a - b), np.abs(a + b))}.get(
        slip, (np.abs(a - b), np.abs(a) + np.abs(b)))
    floor = 1e-8 if slip == "fixed floor" else max(1e-8, gradcheck.SCALE_FLOOR * np.max(np.abs(a) + np.abs(b)))
    errors = top / (bottom if slip == "no floor" else np.maximum(floor, bottom))
    return {"value": float(np.mean(errors) if slip == "mean" else np.max(errors))}

entry("rel_error_no_floor", ("rel_error",), "Without the floor, two zero arrays give 0 / 0 = nan and tiny gradients "
      "look wildly wrong: divide by `np.maximum(floor, np.abs(a) + np.abs(b))` (lesson 2, the rel_error formula).",
      formula=lambda c: _rel_error_slip(c, "no floor"))
entry("rel_error_fixed_floor", ("rel_error",), "Your floor is cs231n's fixed 1e-8; the course's grows with the "
      "gradient, `floor = max(1e-8, 0.01 * np.max(np.abs(a) + np.abs(b)))` (lesson 2, the rel_error formula).",
      detect=lambda cases: all("value" in c.got and same(c.got["value"], _rel_error_slip(c, "fixed floor")["value"])
                               for c in cases))  # only when every case gives cs231n's number
entry("rel_error_mean", ("rel_error",), "You average the elementwise errors: one wrong element among many then "
      "looks small. A gradient check wants the worst element, `np.max(...)` (lesson 2, the rel_error formula).",
      formula=lambda c: _rel_error_slip(c, "mean"))
entry("rel_error_abs", ("rel_error",),
      "An absolute value is missing: the error is |a - b| / max(|a| + |b|, floor). Without it a negative "
      "difference counts as no error at all, and a + b of opposite signs can be 0 (lesson 2, the rel_error "
      "formula).",
      formula=lambda c: [_rel_error_slip(c, s) for s in ("no abs top", "no abs bottom", "no abs", "abs of sum")])

# ---- lesson 7: the dense weights after a Flatten ------------------------------------------------


def _weights(c, order, axes=None):
    return {"w": ref.rows(c.inputs["w"], c.inputs["shape"], order, axes)}


def _other_orders(c, order, skip):
    return [_weights(c, order, axes) for axes in itertools.permutations(range(3)) if axes not in skip]


entry("permute_unchanged", ("permute_dense_weights", "port_dense_weights"),
      "Your weights come back unchanged. The flattened vector now lists the cells in another order, so row j "
      "of the weights must be the row of the cell that now sits at position j: permute the rows (lesson 7, "
      "'Does the flatten order matter?' and 'Channels-first vs channels-last').",
      formula=lambda c: {"w": c.inputs["w"]})
entry("permute_inverse", ("permute_dense_weights",),
      "Your rows move the other way round: you used the inverse permutation. Row j of the new weights is the "
      "row of the cell at F position j, `w[perm]` with perm[j] that cell's C position, not the row at C "
      "position j moved to its F position (lesson 7, 'Does the flatten order matter?').",
      formula=lambda c: {"w": c.inputs["w"][np.argsort(np.arange(len(c.inputs["w"])).reshape(
          c.inputs["shape"]).ravel(order="F"))]})
entry("permute_axes", ("permute_dense_weights",),
      "Your rows follow another order of the cells: F order lets c change fastest, then h, then w, so the "
      "cell (c, h, w) sits at F position (w*H + h)*C + c. In NumPy: perm = np.arange(C*H*W).reshape(C, H, W)"
      ".ravel(order=\"F\"), and the new weights are w[perm] (lesson 7, 'Does the flatten order matter?').",
      formula=lambda c: _other_orders(c, "CHW", {(0, 1, 2), (2, 1, 0)}))
entry("port_inverse", ("port_dense_weights",),
      "You ported the weights the other way, NCHW to NHWC: the old rows are in the NHWC network's order, so "
      "view them as (H, W, C, M) and move C to the front, "
      "`w_nhwc.reshape(H, W, C, M).transpose(2, 0, 1, 3).reshape(C*H*W, M)` (lesson 7, 'Channels-first vs "
      "channels-last').",
      formula=lambda c: _weights(c, "CHW", (1, 2, 0)))
entry("port_wrong_axes", ("port_dense_weights",),
      "Your rows move, but not to their places: the NHWC network flattened (h, w, c) with c fastest, so view "
      "the old rows as (H, W, C, M), bring C to the front and keep H before W, `.transpose(2, 0, 1, 3)`, then "
      "flatten again (lesson 7, 'Channels-first vs channels-last').",
      formula=lambda c: (_other_orders(c, "HWC", {(0, 1, 2), (2, 0, 1)})
                         + _other_orders(c, "CHW", {(0, 1, 2), (1, 2, 0)})))


def _contraction(c, axes=(1, 2, 3), layout="DM"):
    x, w, b = (c.inputs[k] for k in ("x", "w", "b"))
    weights = w if layout == "DM" else w.reshape(w.shape[1], w.shape[0]).T
    return {"out": x.transpose(0, *axes).reshape(len(x), -1) @ weights + b}


entry("flatten_dense_axes", ("flatten_dense",),
      "Your contraction pairs the axes of x with the wrong axes of the weights. w's rows follow cnnlib's "
      "C-order flatten of (c, h, w), so view w as (C, H, W, M) and give each axis of x its own letter on both "
      "sides: `np.einsum(\"nchw,chwm->nm\", x, w.reshape(C, H, W, M))` (lesson 7, 'Is flatten + dense a "
      "tensor contraction?').",
      formula=lambda c: [_contraction(c, axes) for axes in itertools.permutations((1, 2, 3)) if axes != (1, 2, 3)])
entry("flatten_dense_weight_layout", ("flatten_dense",),
      "You read w as (M, C, H, W), PyTorch's (outputs, inputs) layout. cnnlib's dense weights are (C*H*W, M), "
      "one row per cell, so the volume view is `w.reshape(C, H, W, M)` (lesson 7, 'Is flatten + dense a "
      "tensor contraction?').",
      formula=lambda c: _contraction(c, layout="MD"))

# ---- lesson 8: layers, the two loops, a network -------------------------------------------------
entry("layer_returns_cache", ("layer",),
      "Your layer's forward returns (out, cache), as the plain functions do. A layer keeps the cache itself "
      "(self.cache = ...) and returns out alone, so that the next layer can take it as its input (lesson 8, "
      "'From a function pair to a layer object').",
      detect=lambda cases: any(isinstance(c.got.get("out"), tuple) and len(c.got["out"]) == 2 for c in cases))
entry("layer_returns_param_grads", ("layer",),
      "Your layer's backward returns a tuple such as (dx, dw, db). It returns dx alone, for the layer below; "
      "dw and db go into self.grads['w'] and self.grads['b'] (lesson 8, 'From a function pair to a layer "
      "object').",
      detect=lambda cases: any(isinstance(c.got.get("dx"), tuple) for c in cases))
entry("layer_grads_keys", ("layer",),
      "grads must use the same keys as params ('w' and 'b', not 'dw' and 'db'): Sequential and the optimizer "
      "find a parameter's gradient under the parameter's name (lesson 8, 'From a function pair to a layer "
      "object').",
      detect=lambda cases: any(c.got.get("keys") not in (None, c.want.get("keys")) for c in cases))
entry("layer_grads_not_stored", ("layer",),
      "After backward your layer's grads are still zeros: backward computes dw and db, and must also write "
      "them into the layer, self.grads['w'][...] = dw and self.grads['b'][...] = db (lesson 8, 'From a "
      "function pair to a layer object').",
      formula=lambda c: "grads" in c.want and {"grads": {k: np.zeros_like(v) for k, v in c.want["grads"].items()}})
entry("grads_accumulate", ("layer", "network"),
      "Each backward adds its gradients to the previous ones (grads['w'] += dw): after two passes they hold "
      "the sum. A backward replaces them, self.grads['w'][...] = dw, so that every optimizer step uses the "
      "gradient of its own batch (lesson 8, 'From a function pair to a layer object').",
      formula=lambda c: "grads before" in c.inputs and "grads" in c.want and {
          "grads": {k: v + c.inputs["grads before"][k] for k, v in c.want["grads"].items()}})
entry("stale_cache", ("layer",),
      "After two forward passes, your backward used the cache of the first one. Every forward must store "
      "its own cache (self.cache = ... each time, not only when it is empty): backward differentiates the "
      "last forward pass (lesson 8, 'From a function pair to a layer object').",
      formula=lambda c: "stale" in c.inputs and dict(zip(("dx", "grads"), ref.layer_pass(*c.inputs["stale"])[1:])))
entry("layers_changed", ("sequential",),
      "Your loop changes the caller's list of layers in place (layers.reverse(), layers.pop(...)): afterwards "
      "the model's layers are in the wrong order, or gone, and the next pass runs the wrong network. Loop "
      "over reversed(layers) or layers[::-1], which leave the list as it was (lesson 8, 'Sequential: forward "
      "in order, backward in reverse').",
      detect=lambda cases: any(n.endswith("layers") for c in cases for n in c.changed))
entry("forward_order", ("sequential",),
      "run_forward must call every layer's forward once, first to last: for layer in layers (lesson 8, "
      "'Sequential: forward in order, backward in reverse').",
      detect=lambda cases: any("forward order" in c.wrong for c in cases))
entry("forward_same_input", ("sequential",),
      "Every layer of yours gets the network's input x: each layer must get the previous layer's output, "
      "x = layer.forward(x), and the last output is returned (lesson 8, 'Sequential: forward in order, "
      "backward in reverse').",
      formula=lambda c: "forward inputs" in c.want and {"forward inputs": [c.inputs["x"]] * len(
          c.got["forward inputs"])})
entry("backward_forward_order", ("sequential",),
      "Your backward loop starts at the first layer. The chain rule runs from the loss back to the input: "
      "the last layer's backward first, as it is the one whose output dout belongs to, so loop over "
      "reversed(layers) (lesson 8, 'Sequential: forward in order, backward in reverse').",
      detect=lambda cases: any(len(c.want.get("backward order", [])) > 1 and c.got["backward order"][:1] == [0]
                               for c in cases))
entry("backward_same_dout", ("sequential",),
      "Every layer of yours gets the network's dout: each layer's backward returns dx, and that dx is the "
      "dout of the layer below it, dout = layer.backward(dout) (lesson 8, 'Sequential: forward in order, "
      "backward in reverse').",
      formula=lambda c: "backward inputs" in c.want and {"backward inputs": [c.inputs["dout"]] * len(
          c.got["backward inputs"])})
entry("backward_skips_layer", ("sequential",),
      "Your backward loop leaves out a layer (e.g. reversed(layers[1:])): every layer's backward must run, "
      "the first one's too, as it fills its own grads and returns dx (lesson 8, 'Sequential: forward in "
      "order, backward in reverse').",
      detect=lambda cases: any("backward order" in c.wrong and not c.error
                               and set(c.got["backward order"]) < set(c.want["backward order"])
                               and c.got["backward order"] == [k for k in c.want["backward order"]
                                                               if k in c.got["backward order"]] for c in cases))
entry("returns_list", ("sequential", "network", "layer"),
      "Your function returns a list (or tuple) of arrays, e.g. every layer's output: return the last "
      "layer's output alone, the array itself (lesson 8, 'Sequential: forward in order, backward in "
      "reverse').",
      detect=lambda cases: any(isinstance(v, (list, tuple)) and v and same(v[-1], c.want.get(n))
                               for c in cases for n, v in c.got.items() if n in ("out", "dx")))
entry("returns_not_array", ("sequential", "network", "layer"),
      "Your function returns something that is not an array (a string, a number, a dict...): a forward "
      "returns the output array and a backward the array dx (lesson 8, 'Sequential: forward in order, "
      "backward in reverse').",
      detect=lambda cases: any(isinstance(v, (str, bytes, dict, int, float)) for c in cases
                               for n, v in c.got.items() if n in ("out", "dx")))
entry("params_not_dict", ("network",),
      "Your model's params() (or grads()) returns a list: it returns a dict name -> array, the same names in "
      "params() and grads(), so that an optimizer can match each parameter with its gradient "
      "(lesson 8, 'Sequential: forward in order, backward in reverse').",
      detect=lambda cases: any("not a dict" in c.facts for c in cases))

# ---- lesson 9: optimizer steps and the epoch ----------------------------------------------------


def _history(c, **slip):
    i = c.inputs
    if "start" not in i:
        return None
    history = ref.sgd_history if c.check.startswith("sgd") else ref.adam_history
    return {"params": history(i["start"], i["grads"], **dict(i["settings"], **slip))}


entry("update_not_in_place", OPTIMIZERS,
      "Your step puts new arrays into params (params[name] = p - ...) or rebinds a local name (p = p - ...): "
      "the model's arrays do not change. Update them in place, p -= lr * ..., as the model reads its weights "
      "from those very arrays (lesson 9, 'Mini-batches and one optimizer step').",
      detect=lambda cases: any(c.facts & {"rebound", "unchanged"} for c in cases))

for _key, _slip, _text in [
        ("momentum_sign", {"sign": -1.0}, "Your velocity has the wrong sign: v = momentum * v + g, then p -= lr * v. "
         "Yours subtracts g from v and still subtracts v from p, so every step goes uphill"),
        ("momentum_not_kept", {"keep": False}, "Your steps are plain SGD: the velocity starts from zero at every "
         "call. Keep it in the dict you are given and update that array in place (v *= momentum; v += g), or "
         "store the new one back, velocity[name] = v"),
        ("momentum_dampened", {"dampen": True}, "Your velocity is v = momentum * v + (1 - momentum) * g, a running "
         "mean. cnnlib (and PyTorch) add the whole gradient, v = momentum * v + g"),
        ("momentum_lag", {"lag": True}, "Your step moves p with the velocity from before this step's gradient was "
         "added: update v first, v = momentum * v + g, then p -= lr * v")]:
    entry(_key, ("sgd_momentum", "sgd_weight_decay"), _text + " (lesson 9, 'Momentum and Adam').",
          formula=lambda c, _slip=_slip: _history(c, **_slip))

for _key, _slip, _text in [
        ("adam_no_bias_correction", {"correct": False}, "Your Adam leaves out the bias correction: m and v start "
         "at 0, so divide them by (1 - beta1**t) and (1 - beta2**t) before the step"),
        ("adam_step_from_0", {"t_shift": -1}, "Your first step gives inf or NaN: the bias correction divides by "
         "1 - beta**t, which is 0 for t = 0. Count the steps from 1: increase t before you use it"),
        ("adam_step_from_2", {"t_shift": 1}, "Your bias correction uses t + 1: the first step is t = 1, so the "
         "correction of the first step is 1 / (1 - beta1) for m"),
        ("adam_not_kept", {"keep": False}, "Your m and v start from zero at every step: keep them in the state "
         "dict between calls and update those arrays"),
        ("adam_no_sqrt", {"sqrt": False}, "Your step divides by v_hat + eps: the step is lr * m_hat / "
         "(sqrt(v_hat) + eps), as v is a mean of squared gradients"),
        ("adam_eps_inside", {"eps_inside": True}, "Your eps sits inside the square root, sqrt(v_hat + eps); cnnlib "
         "and PyTorch add it outside, sqrt(v_hat) + eps"),
        ("adam_betas_swapped", {"swap": True}, "Your beta1 and beta2 are swapped: beta1 (0.9) averages the "
         "gradient, m; beta2 (0.999) averages its square, v"),
        ("adam_efficient_form", {"efficient": True}, "Your step is the Adam paper's 'efficient' form, the bias "
         "corrections folded into the step size, lr * sqrt(1 - beta2**t) / (1 - beta1**t) * m / (sqrt(v) + eps): "
         "the same method, but eps then acts on the uncorrected sqrt(v), so the numbers differ a little, most "
         "where gradients are small. The course (cnnlib, PyTorch) uses m_hat / (sqrt(v_hat) + eps)"),
        ("adam_t_per_parameter", {"t_per_parameter": True}, "Your step count t goes up once per parameter, not "
         "once per step (state['t'] += 1 inside the loop over params): with P parameters it grows P times too "
         "fast and the bias correction fades too soon. Increase t once, before the loop")]:
    entry(_key, ("adam", "adamw"), _text + " (lesson 9, 'Momentum and Adam').",
          formula=lambda c, _slip=_slip: _history(c, **_slip))


def _epoch(slip):
    return lambda c: "epoch" in c.inputs and dict(zip(("params", "loss"), c.inputs["epoch"](slip)))


for _key, _slip, _text in [
        ("epoch_no_shuffle", "no shuffle", "Your epoch takes the samples in their stored order: shuffle first, "
         "order = rng.permutation(len(x)), and cut the batches from that order"),
        ("epoch_skips_last", "skips last", "Your epoch leaves out the last, smaller batch: with range(0, len(x), "
         "batch_size) the last slice order[start:start + batch_size] simply holds what is left"),
        ("epoch_separate_shuffles", "separate shuffles", "Your epoch shuffles x and y separately, so the images "
         "no longer meet their own labels. Draw one order and index both with it, x[idx] and y[idx]"),
        ("epoch_unweighted_loss", "unweighted loss", "Your mean loss is the plain mean of the batch losses: a "
         "short last batch then counts as much as a full one. Weight each batch's loss by its size and divide "
         "by len(x)"),
        ("epoch_last_loss", "last loss", "Your epoch returns the last batch's loss: return the mean over the "
         "epoch, each batch's loss weighted by its size, divided by len(x)"),
        ("epoch_step_before_backward", "step first", "Your epoch calls step before backward: each step then "
         "uses the gradients of the batch before (zeros at the first step). For every batch: forward, loss, "
         "backward, and only then step(model.params(), model.grads())")]:
    entry(_key, ("train_epoch",), _text + " (lesson 9, 'An epoch, by hand').", formula=_epoch(_slip))
entry("epoch_own_rng", ("train_epoch",),
      "Your epoch shuffles, but not with the rng it is given (np.random.permutation, or a new generator): use "
      "rng.permutation(len(x)), so that the run can be repeated and compared (lesson 9, 'An epoch, by hand').",
      detect=lambda cases: any("own rng" in c.facts for c in cases))

# ---- lesson 12: batch normalisation --------------------------------------------------------------
def _bn(c, names, **slip):
    """The numbers `names` of batch normalisation on this case under a slip (reference.batchnorm), or None."""
    if "gamma" not in c.inputs:
        return None
    i = c.inputs
    result = ref.batchnorm(i["x"], i["gamma"], i["beta"], dout=i.get("dout"), **c.settings, **slip)
    return {n: result[n] for n in names if n in result} or None


_TRAINING, _EVAL, _RUNNING, _GRAPH = ("lesson 12, 'The forward pass, in training'", "lesson 12, '... and in eval mode'",
                                      "lesson 12, 'Running statistics'", "lesson 12, 'What the mean and the variance "
                                      "contribute'")
for _key, _names, _slips, _text in [
        ("bn_per_sample", ["out"], [{"axes": (1, 2, 3)}, {"axes": (2, 3)}], "Your mean and variance are each "
         f"sample's own (over axis=(1, 2, 3), or (2, 3)): batch normalisation takes one mean and one variance per "
         f"channel over the whole batch and every position, axis=(0, 2, 3), the same for every sample ({_TRAINING})"),
        ("bn_channels_pooled", ["out"], [{"axes": (0, 1, 2, 3)}], "Your mean and variance pool every channel "
         "(x.mean() over all axes): each channel is a feature of its own, with its own scale, so it gets its own "
         f"statistics, over axis=(0, 2, 3), one number per channel ({_TRAINING})"),
        ("bn_batch_axis", ["out"], [{"axes": (0,)}], "Your statistics run over the batch axis only, axis=0, the rule "
         "for (N, D) features: a channel of images shares one mean and variance over the batch and every position, "
         f"axis=(0, 2, 3) ({_TRAINING})"),
        ("bn_unbiased_variance", ["out"], [{"ddof": 1}], "Your forward normalises with the unbiased variance "
         "(ddof=1, dividing by M - 1): it normalises with the batch's own, biased variance, dividing by M = N*H*W; "
         f"the unbiased one goes into running_var only ({_TRAINING})"),
        ("bn_eps", ["out"], [{"eps_rule": "outside"}, {"eps_rule": "none"}], "Your eps is not inside the square "
         "root: x_hat = (x - mean) / np.sqrt(var + eps), not / (sqrt(var) + eps), nor / x.std(), which has no eps "
         f"({_TRAINING})"),
        ("bn_eval_batch_stats", ["out"], [{"batch_in_eval": True}], "In eval mode (training=False) your forward "
         "normalises with the batch's own statistics: it must use running_mean and running_var, so that a sample's "
         f"output does not depend on the others in its batch and a batch of one works ({_EVAL})"),
        ("bn_running_var_biased", ["running_var"], [{"running_ddof": 0}], "Your running_var follows the batch's "
         "biased variance: cnnlib and PyTorch move it towards the unbiased one, var * M / (M - 1) with M = N*H*W, "
         f"an estimate of the data's ({_RUNNING})"),
        ("bn_momentum_swapped", ["running_mean", "running_var"], [{"swap": True}, {"swap": True, "running_ddof": 0}],
         "Your running statistics give the weight `momentum` to the old value: in PyTorch's sense, cnnlib's, "
         f"momentum weighs the new batch, running = (1 - momentum) * running + momentum * batch ({_RUNNING})"),
        ("bn_running_not_in_place", ["running_mean", "running_var"], [{"update": False}], "After a training step "
         "the caller's running_mean and running_var are as they were: `running_mean = ...` makes a new array. "
         "Update the arrays you are given in place, running_mean *= 1 - momentum; running_mean += momentum * mean "
         f"({_TRAINING})"),
        ("bn_backward_constants", ["dx"], [{"through": ""}], "Your dx takes the batch's mean and variance as "
         "constants, dout * gamma / sqrt(var + eps): right in eval mode only. In training every value also moves "
         f"the mean and the variance, and dx must go through both ({_GRAPH})"),
        ("bn_backward_mean_constant", ["dx"], [{"through": "var"}], "Your dx goes through the variance but takes "
         "the mean as a constant: in training the mean depends on every value, so dx also has a path through it, "
         f"dmean collecting every value's pull on the mean and each value getting dmean / M ({_GRAPH})"),
        ("bn_backward_var_constant", ["dx"], [{"through": "mean"}], "Your dx goes through the mean but takes the "
         "variance as a constant: in training the variance depends on every value, so dx also has a path through "
         f"it, dvar collecting every value's pull and each value getting dvar * 2 * (x - mean) / M ({_GRAPH})")]:
    entry(_key, ("batchnorm2d",), _text + ".", formula=lambda c, _n=_names, _s=_slips: [_bn(c, _n, **s) for s in _s])

# ---- lesson 13: dropout and weight decay ----------------------------------------------------------


def _dropped(c):
    return c.settings.get("training", True) and c.settings.get("p", 0) > 0


def _redrawn(c):
    """dx wrong, but dout through a dropout mask of its own: the backward drew a mask again."""
    dx, want = c.got.get("dx"), c.want.get("dx")
    if "dx" not in c.wrong or not _dropped(c) or not isinstance(dx, np.ndarray) or dx.shape != want.shape:
        return False
    return 0 < np.mean(dx != 0) < 1 and same(dx, c.inputs["dout"] * (dx != 0) / (1 - c.settings["p"]))


_DROPOUT, _DECAY, _ADAMW = ("lesson 13, 'Dropout'", "lesson 13, 'Weight decay'",
                            "lesson 13, 'Adam and weight decay: L2 is not decay'")
entry("dropout_no_rescale", ("dropout",),
      "Your dropout keeps the kept values as they are (in the forward, or in the backward): inverted dropout "
      "scales them by 1 / (1 - p), in the forward and so in the backward, so that each value's expected output "
      f"is its input and eval mode needs no change ({_DROPOUT}).",
      formula=lambda c: _dropped(c) and [{n: c.want[n] * (1 - c.settings["p"])} if n in c.want else None
                                         for n in ("out", "dx")])
entry("dropout_scaled_in_eval", ("dropout",),
      "In eval mode your dropout scales x (by 1 / (1 - p) or by 1 - p): inverted dropout does all its scaling in "
      f"training, so eval returns x as it is ({_DROPOUT}).",
      formula=lambda c: c.settings.get("training") is False and [{"out": c.inputs["x"] * k} for k in (
          1 / (1 - c.settings["p"]), 1 - c.settings["p"])])
entry("dropout_mask_redrawn", ("dropout",),
      "Your backward draws a mask of its own: it must send dout through the values the forward kept, with the "
      f"mask the forward put in the cache, or gradients reach values that were dropped ({_DROPOUT}).",
      detect=lambda cases: any(_redrawn(c) for c in cases))
entry("dropout_own_rng", ("dropout",),
      "Your mask does not come from the rng argument (np.random.rand, or a generator made inside the function): "
      "draw it with rng.random(x.shape) >= p, so that a run repeats from its seed and each call draws a new mask "
      f"({_DROPOUT}).", detect=lambda cases: any("own rng" in c.facts for c in cases))
entry("dropout_keeps_p", ("dropout",),
      "Your dropout keeps each value with probability p: p is the probability of dropping it (PyTorch's p; "
      f"cs231n's keeps with p), so keep = rng.random(x.shape) >= p and scale by 1 / (1 - p) ({_DROPOUT}).",
      detect=lambda cases: any("keeps p" in c.facts for c in cases))
entry("weight_decay_ignored", ("sgd_weight_decay", "adamw"),
      "Your step leaves weight_decay out: the weights shrink towards 0 at every step, through weight_decay * p "
      f"added to the gradient (SGD) or p *= 1 - lr * weight_decay (AdamW) ({_DECAY}).",
      formula=lambda c: _history(c, weight_decay=0.0))
entry("sgd_decay_outside_momentum", ("sgd_weight_decay",),
      "Your weight decay is on the wrong side of the momentum: torch.optim.SGD, and cnnlib, add weight_decay * p "
      "to the gradient first, g = grad + weight_decay * p, then v = momentum * v + g; yours takes the decay off p "
      f"beside the momentum step, so the velocity never carries it ({_DECAY}).",
      formula=lambda c: _history(c, decay_outside=True))
for _key, _decay, _text in [
        ("adamw_l2", "L2", "Your AdamW adds weight_decay * p to the gradient, Adam's L2: Adam then divides the decay "
         "by sqrt(v) like the rest, and weights with large gradients barely decay. AdamW decouples it, p *= 1 - lr * "
         "weight_decay, then Adam's step with the loss's gradient alone"),
        ("adamw_decay_without_lr", "no lr", "Your decay is p *= 1 - weight_decay, the paper's form, where the "
         "decay is not multiplied by the learning rate; torch.optim.AdamW, and cnnlib, take p *= 1 - lr * "
         "weight_decay"),
        ("adamw_decay_after", "after", "Your decay comes after Adam's step: torch.optim.AdamW, and cnnlib, shrink p "
         "first, p *= 1 - lr * weight_decay, then take Adam's step")]:
    entry(_key, ("adamw",), f"{_text} ({_ADAMW}).", formula=lambda c, _decay=_decay: _history(c, decay=_decay))

# Last: the broadest reading of an exception, said when no entry above explains the failure.
entry("raises", ALL,
      "Your code raised an exception; each failing case names the line. Run your function on that case's "
      "shapes yourself (the case's name gives them) and print the shapes of the arrays on that line: "
      "most such errors are an axis or a shape that only some cases expose (batch 1, pad 0, stride > 1, "
      "a non-square image).",
      detect=lambda cases: any(c.error and not c.error.startswith("SystemExit") and "cache mismatch" not in c.facts
                               and (_no_hint_for_cache(c) or "backward alone" not in c.facts) for c in cases),
      last_resort=True)
