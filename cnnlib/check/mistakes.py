"""The catalogue of classic mistakes: how each one shows in a check's results, and what to say.

Each entry recognises a mistake by its signature in the cases a check ran: the learner's numbers
equal those of the mistaken formula (computed here, from the case's inputs), or the pattern of
failing cases is the mistake's (every stride-2 case fails, every stride-1 case passes). Only
then is its hint given, so a hint never guesses. Every entry is tested with a real buggy
implementation (tests/test_check_layers.py, test_check_basics.py, test_check_bridge.py and
test_check_training.py, one per section below).

Each case's `data` holds what the check saw: `arrays` (the inputs), `kwargs` (stride, pad,
size), `out` and `ref_out` (the learner's and cnnlib's forward outputs), `dout`, `grads` and
`ref_grads` (dicts by name, e.g. "dx"), `changed` (inputs changed in place), `warned`
(RuntimeWarnings), `forward_ok`, `backward_ok` (dict by name), `own_ok` (backward agrees with
finite differences of the learner's own forward; None when not tested).
"""

import itertools

import numpy as np

from ._core import TOLERANCE, rel_errors

MISTAKES = {}


def mistake(key, checks, hint):
    """Register detect(cases) -> bool for `checks` under `key`, with its hint."""
    def register(detect):
        MISTAKES[key] = {"checks": tuple(checks), "hint": hint, "detect": detect}
        return detect
    return register


def diagnose(report, check_name):
    """Add the hint of every catalogue entry whose signature the report's cases show."""
    cases = [c for c in report.cases if c.data]
    for key, entry in MISTAKES.items():
        if check_name not in entry["checks"]:
            continue
        try:
            found = entry["detect"](cases)
        except Exception as error:  # a learner's output no detector foresaw: no hint, never a crash
            report.diagnosis_errors.append(f"{key}: {type(error).__name__}: {error}")
            continue
        if found:
            text = entry["hint"]
            report.hint(size_hint(cases) if "{what}" in text else text)


def _close(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.size > 0 and bool(np.all(rel_errors(a, b) <= TOLERANCE))


def _grad(case, name):
    g = case.data.get("grads", {}).get(name)
    # Only numbers can match a mistaken formula; strings, objects and complex values match none.
    return g if isinstance(g, np.ndarray) and g.dtype.kind in "biuf" else None


def _bad(case, name):
    """Whether gradient `name`'s numbers are wrong (a right one in the wrong dtype is not)."""
    if name in case.data.get("values_ok", {}):
        return case.data["values_ok"][name] is False
    return case.data.get("backward_ok", {}).get(name) is False


def _pairs(value):
    return value if isinstance(value, tuple) else (value, value)


# ---- windows: which input elements each output read, and the terms each gradient sums ----

def _windows(case):
    """(N, C or F, H', W') output positions with their window's top-left corner in the padded input."""
    kw = case.data["kwargs"]
    x = case.data["arrays"]["x"]
    if "w" in case.data["arrays"]:
        kernel = case.data["arrays"]["w"].shape[2:]
    else:
        kernel = _pairs(kw["size"])
    stride = _pairs(kw.get("stride") or kernel)
    pad = _pairs(kw.get("pad", 0))
    return x.shape, kernel, stride, pad


def _terms(case, name):
    """(targets, values): the separate terms the gradient `name` sums, as flat indices into it.

    conv dx: dout[n, f, i, j] * w[f, c, p, q] to pixel (n, c, i*s + p, j*s + q);
    conv dw: dout[n, f, i, j] * xp[n, c, i*s + p, j*s + q] to weight (f, c, p, q);
    max-pool dx: dout[n, c, i, j] to the window's (first) maximum; avg-pool dx: dout / (KH*KW)
    to each pixel of the window. Terms on padding are dropped.
    """
    (N, C, H, W), (KH, KW), (sh, sw), (ph, pw) = _windows(case)
    dout = case.data["dout"]
    Ho, Wo = dout.shape[2:]
    n, o, i, j, p, q = np.meshgrid(np.arange(N), np.arange(dout.shape[1]), np.arange(Ho), np.arange(Wo),
                                   np.arange(KH), np.arange(KW), indexing="ij")
    r, t = i * sh + p - ph, j * sw + q - pw  # the pixel in x (unpadded) that tap (p, q) read
    inside = (r >= 0) & (r < H) & (t >= 0) & (t < W)
    arrays = case.data["arrays"]
    if "w" in arrays:
        w, x = arrays["w"], arrays["x"]
        n, o, i, j, p, q, r, t = (a[inside] for a in (n, o, i, j, p, q, r, t))
        c = np.arange(C)
        if name == "dx":
            targets = np.ravel_multi_index((n[:, None], c[None, :], r[:, None], t[:, None]), (N, C, H, W))
            values = dout[n, o, i, j][:, None] * w[o[:, None], c[None, :], p[:, None], q[:, None]]
        else:
            targets = np.ravel_multi_index((o[:, None], c[None, :], p[:, None], q[:, None]), w.shape)
            values = dout[n, o, i, j][:, None] * x[n[:, None], c[None, :], r[:, None], t[:, None]]
        return targets.ravel(), values.ravel()
    if case.data.get("pool") == "max":
        argmax = case.data["argmax"]  # (N, C, H', W') flat index in the window, cnnlib's
        take = (p * KW + q) == argmax[n, o, i, j]
    else:
        take = np.ones(p.shape, dtype=bool)
    take &= inside
    targets = np.ravel_multi_index((n[take], o[take], r[take], t[take]), (N, C, H, W))
    scale = 1.0 if case.data.get("pool") == "max" else 1.0 / (KH * KW)
    return targets, dout[n[take], o[take], i[take], j[take]] * scale


def _overwrites(case, name):
    """Whether the learner's gradient holds single terms where several should have added up."""
    got = _grad(case, name)
    if got is None or not _bad(case, name):
        return False
    want = case.data["ref_grads"][name]
    if got.shape != want.shape:
        return False
    targets, values = _terms(case, name)
    counts = np.bincount(targets, minlength=want.size)
    flat = got.ravel()
    match = np.isclose(flat[targets], values, rtol=1e-9, atol=1e-12)
    any_match = np.zeros(want.size, dtype=bool)
    np.logical_or.at(any_match, targets, match)
    wrong = rel_errors(flat, want.ravel()) > TOLERANCE
    shared = (counts >= 2) & wrong
    single_ok = (counts != 1) | ~wrong  # where only one term lands, = and += agree
    return shared.sum() >= 2 and any_match[shared].mean() >= 0.8 and single_ok.all()


# ---- the catalogue ----

@mistake("pad_crop", ["conv2d", "maxpool2d"],
         "With pad = 0, `dxp[:, :, pad:-pad, pad:-pad]` is `dxp[:, :, 0:0, 0:0]`, an empty array: -0 is 0. "
         "Cut the padding off by size instead, `dxp[:, :, pad:pad + H, pad:pad + W]` "
         "(lesson 5, 'The pad = 0 bug').")
def _pad_crop(cases):
    for c in cases:
        dx = _grad(c, "dx")
        pad = _pairs(c.data["kwargs"].get("pad", 0))
        if dx is not None and pad == (0, 0) and dx.ndim == 4 and (dx.shape[2] == 0 or dx.shape[3] == 0):
            return True
    return False


@mistake("overwrite_dx", ["conv2d", "maxpool2d", "avgpool2d"],
         "Where windows overlap (or several filters read the same pixel), a pixel's gradient is the "
         "sum of what every window sends it, but yours keeps only one of those terms: the backward "
         "assigns with `=` where it must add with `+=` (lesson 5, 'Overlapping windows add up'; for "
         "pooling, lesson 6, 'Overlapping windows: gradients add up').")
def _overwrite_dx(cases):
    return any(_overwrites(c, "dx") for c in cases)


@mistake("overwrite_dw", ["conv2d"],
         "Each weight is used by every window of every image, so dw sums dout times the input over "
         "all of them; yours keeps only one term: `dw[f] = ...` where it must be `dw[f] += ...` "
         "(lesson 5, 'The backward pass with loops').")
def _overwrite_dw(cases):
    return any(_overwrites(c, "dw") for c in cases)


def _conv_flip_forward(case):
    from ..conv import conv2d_forward_naive
    a, kw = case.data["arrays"], case.data["kwargs"]
    return conv2d_forward_naive(a["x"], a["w"][:, :, ::-1, ::-1], a["b"], **kw)[0]


@mistake("flipped_kernel", ["conv2d"],
         "Your convolution flips the kernel (out[i, j] uses w[KH-1-p, KW-1-q]): that is the convolution "
         "of mathematics, but CNN layers compute cross-correlation, w[p, q] times the pixel at "
         "(i*stride + p, j*stride + q), with no flip (lesson 4, 'One channel, one filter'). "
         "The flip belongs to the backward pass only (lesson 5).")
def _flipped_kernel(cases):
    from ..conv import conv2d_backward_naive, conv2d_forward_naive
    for c in cases:
        a, kw = c.data["arrays"], c.data["kwargs"]
        if a["w"].shape[2:] == (1, 1):
            continue
        out = c.data.get("out")
        if isinstance(out, np.ndarray) and c.data.get("forward_ok") is False and _close(out, _conv_flip_forward(c)):
            return True
        dx, dw = _grad(c, "dx"), _grad(c, "dw")
        if c.data.get("out") is None and (_bad(c, "dx") or _bad(c, "dw")):
            flipped = a["w"][:, :, ::-1, ::-1]
            cache = conv2d_forward_naive(a["x"], flipped, a["b"], **kw)[1]
            fdx, fdw, _ = conv2d_backward_naive(c.data["dout"], cache)
            if (dx is not None and _bad(c, "dx") and _close(dx, fdx)) or (
                    dw is not None and _bad(c, "dw") and _close(dw, fdw[:, :, ::-1, ::-1])):
                return True
    return False


@mistake("stride_in_backward", ["conv2d", "maxpool2d", "avgpool2d"],
         "Every case with stride 1 passes and every case with a larger stride fails in the backward: "
         "window (i, j) starts at row i*stride and column j*stride of the padded input, in the "
         "backward exactly as in the forward (lesson 5, 'The backward pass with loops').")
def _stride_in_backward(cases):
    one, more = [], []
    for c in cases:
        if c.data.get("forward_ok") is False or not c.data.get("backward_ok"):
            continue
        _, _, stride, _ = _windows(c)
        ok = all(c.data["backward_ok"].values())
        (one if stride == (1, 1) else more).append(ok)
    return bool(one) and bool(more) and all(one) and not any(more)


def _alternative_sizes(H, K, s, p):
    return {
        "pad left out": (H - K) // s + 1,
        "pad added once, not on both sides": (H + p - K) // s + 1,
        "the + 1 missing": (H + 2 * p - K) // s,
        "no division by the stride": H + 2 * p - K + 1,
        "rounded up, not down": -(-(H + 2 * p - K) // s) + 1,
    }


def _size_mistake(cases):
    for c in cases:
        out, ref = c.data.get("out"), c.data.get("ref_out")
        if not isinstance(out, np.ndarray) or out.ndim != 4 or out.shape[2:] == ref.shape[2:]:
            continue
        (_, _, H, W), (KH, KW), (sh, sw), (ph, pw) = _windows(c)
        rows, cols = _alternative_sizes(H, KH, sh, ph), _alternative_sizes(W, KW, sw, pw)
        for what in rows:
            if (rows[what], cols[what]) == out.shape[2:] and (rows[what], cols[what]) != ref.shape[2:]:
                return what
    return None


@mistake("output_size", ["conv2d", "maxpool2d", "avgpool2d"],
         "The output has the wrong height or width: H' = (H + 2*pad - KH) // stride + 1, and W' likewise "
         "(lesson 4, 'Padding and stride'). Yours matches the formula with {what}.")
def _output_size(cases):
    return _size_mistake(cases) is not None


def _ratio(got, want, factors):
    for k in factors:
        if k != 1 and _close(got * k, want):
            return k
    return None


def _averaged(cases, names):
    for c in cases:
        dout = c.data.get("dout")
        if dout is None:
            continue
        N = dout.shape[0]
        spatial = int(np.prod(dout.shape[2:])) if dout.ndim == 4 else 1
        for name in names:
            got = _grad(c, name)
            if got is not None and _bad(c, name) and got.shape == c.data["ref_grads"][name].shape:
                if _ratio(got, c.data["ref_grads"][name], {N, N * spatial, spatial}):
                    return True
    return False


@mistake("averaged", ["conv2d", "dense"],
         "A parameter gradient (dw or db: the failing cases name it) is the right sum divided by a count "
         "(N, or N*H'*W'): it is averaged where it must be summed. The loss's 1/N is already inside dout (lesson 3), and each shared weight collects "
         "every term it took part in (lesson 2, 'Backward: the chain rule').")
def _averaged_grads(cases):
    return _averaged(cases, ("dw", "db"))


@mistake("db_axes", ["conv2d", "dense"],
         "db has one number per filter (per output for dense): sum dout over every other axis, "
         "`dout.sum(axis=(0, 2, 3))` for a convolution, `dout.sum(axis=0)` for a dense layer. "
         "Yours sums over other axes (lesson 2, 'Backward: the chain rule').")
def _db_axes(cases):
    for c in cases:
        db, dout = _grad(c, "db"), c.data.get("dout")
        if db is None or dout is None or not _bad(c, "db"):
            continue
        for k in range(1, dout.ndim):
            for axes in itertools.combinations(range(dout.ndim), k):
                ref = c.data["ref_grads"]["db"]
                summed = dout.sum(axis=axes)
                if _close(db, summed) and not _close(summed.reshape(-1)[:ref.size], ref) or (
                        db.shape != ref.shape and db.shape == summed.shape and _close(db, summed)):
                    return True
    return False


@mistake("transposed_dw", ["conv2d", "dense"],
         "dw has the right numbers with two axes swapped: a gradient has the shape of what it belongs to, "
         "dense w is (D, M) so dw = x.T @ dout, and conv w is (F, C, KH, KW) (lesson 2).")
def _transposed_dw(cases):
    for c in cases:
        dw = _grad(c, "dw")
        ref = c.data.get("ref_grads", {}).get("dw")
        if dw is None or ref is None or not _bad(c, "dw"):
            continue
        axes = (1, 0) if ref.ndim == 2 else (1, 0, 2, 3)
        if ref.transpose(axes).shape == ref.shape and _close(ref.transpose(axes), ref):
            continue  # one row or one column (one filter and one channel): swapped axes look the same
        if _close(dw, ref.transpose(axes)) or (dw.size == ref.size and _close(dw, ref.transpose(axes).reshape(dw.shape))):
            return True
    return False


@mistake("dense_no_bias", ["dense"],
         "Your forward leaves the bias out: out = x @ w + b, b added to every row (lesson 2).")
def _dense_no_bias(cases):
    for c in cases:
        out = c.data.get("out")
        if isinstance(out, np.ndarray) and c.data.get("forward_ok") is False:
            a = c.data["arrays"]
            if _close(out, a["x"] @ a["w"]):
                return True
    return False


def _maxpool_variant(case, mode):
    """dx of max pooling under another rule for ties or windows, with loops (small cases)."""
    (N, C, H, W), (KH, KW), (sh, sw), (ph, pw) = _windows(case)
    x, dout = case.data["arrays"]["x"], case.data["dout"]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
    dxp = np.zeros_like(xp)
    for n, c, i, j in np.ndindex(dout.shape):
        window = xp[n, c, i * sh:i * sh + KH, j * sw:j * sw + KW]
        target = dxp[n, c, i * sh:i * sh + KH, j * sw:j * sw + KW]
        if mode == "every tie":
            target += dout[n, c, i, j] * (window == window.max())
        elif mode == "split ties":
            ties = window == window.max()
            target += dout[n, c, i, j] * ties / ties.sum()
        elif mode == "last tie":
            flat = window.ravel()
            k = len(flat) - 1 - int(np.argmax(flat[::-1]))
            target[divmod(k, KW)] += dout[n, c, i, j]
        elif mode == "decode by stride":
            p, q = divmod(int(np.argmax(window)), sw)
            if i * sh + p >= dxp.shape[2] or j * sw + q >= dxp.shape[3]:
                return None  # that decoding reads outside the image: the learner's code raised there
            dxp[n, c, i * sh + p, j * sw + q] += dout[n, c, i, j]
        elif mode == "whole window":
            target += dout[n, c, i, j]
        elif mode == "window mean":
            target += dout[n, c, i, j] / (KH * KW)
    return dxp[:, :, ph:ph + H, pw:pw + W]


def _maxpool_matches(cases, modes):
    for c in cases:
        dx = _grad(c, "dx")
        if dx is None or not _bad(c, "dx"):
            continue
        for mode in modes:
            variant = _maxpool_variant(c, mode)
            if variant is not None and _close(dx, variant):
                return True
    return False


@mistake("every_tie", ["maxpool2d"],
         "Where several pixels tie for a window's maximum, yours gives the gradient to each of them "
         "(or shares it out). Max pooling's output came from one of them: cnnlib, like PyTorch, gives "
         "all of dout to the first maximum in row-major order, np.argmax's choice (lesson 6, 'Ties').")
def _every_tie(cases):
    return _maxpool_matches(cases, ("every tie", "split ties", "last tie"))


@mistake("spread_window", ["maxpool2d"],
         "Your max-pool backward spreads dout over the whole window. Only the maximum reached the output, "
         "so only that pixel gets the gradient; the others get 0 (lesson 6, 'Max pooling backward: "
         "the gradient goes to the winner').")
def _spread_window(cases):
    return _maxpool_matches(cases, ("whole window", "window mean"))


@mistake("argmax_decoded_by_stride", ["maxpool2d"],
         "Your max-pool backward puts the gradient in the wrong cell of the window when the stride differs "
         "from the window: a flat index k inside a KH x KW window is row k // KW, column k % KW, "
         "`p, q = divmod(k, KW)`, whatever the stride; the pixel is then (i*stride + p, j*stride + q) "
         "(lesson 6, 'Max pooling backward: the gradient goes to the winner').")
def _argmax_decoded_by_stride(cases):
    if _maxpool_matches(cases, ("decode by stride",)):
        return True
    same, other = [], []  # the cases whose stride is the window's, and the others
    for c in cases:
        if c.data.get("forward_ok") is False or not c.data.get("backward_ok") or c.data.get("no_fd"):
            continue
        _, kernel, stride, _ = _windows(c)
        (same if stride == kernel else other).append(all(c.data["backward_ok"].values()))
    return bool(same) and bool(other) and all(same) and not any(other) and any(
        c.data.get("backward_error") for c in cases)


@mistake("avg_factor", ["avgpool2d"],
         "Average pooling divides each window's sum by KH*KW, the number of pixels in the window (size**2 "
         "for a square one, not size), in the forward, and so each pixel gets dout / (KH*KW) in the backward. "
         "Yours is off by a factor of KH*KW, or of one side of the window (lesson 6, 'Average pooling').")
def _avg_factor(cases):
    for c in cases:
        (_, _, _, _), (KH, KW), _, _ = _windows(c)
        for k in {KH * KW, KH, KW} - {1}:
            out = c.data.get("out")
            ref = c.data["ref_out"]
            if (isinstance(out, np.ndarray) and c.data.get("forward_ok") is False and out.shape == ref.shape
                    and (_close(out, ref * k) or _close(out * k, ref))):
                return True
            dx = _grad(c, "dx")
            if dx is not None and _bad(c, "dx") and dx.shape == c.data["ref_grads"]["dx"].shape:
                ref = c.data["ref_grads"]["dx"]
                if _close(dx, ref * k) or _close(dx * k, ref):
                    return True
    return False


def _flatten_orders(dout, shape):
    """Ways of putting a flat dout back into `shape` that are not the C order of each sample."""
    N, rest = shape[0], shape[1:]
    per_sample_f = dout.reshape(N, *rest[::-1]).transpose(0, *range(len(rest), 0, -1))
    ways = {"F order within each sample": per_sample_f,
            "F order over the whole array": dout.reshape(shape, order="F")}
    if len(rest) == 3:
        C, H, W = rest
        ways["channels-last (N, H, W, C), then transposed"] = dout.reshape(N, H, W, C).transpose(0, 3, 1, 2)
    return ways


@mistake("flatten_order", ["flatten"],
         "Your Flatten backward puts the right numbers in the wrong cells: it unflattens in another "
         "order than the forward flattened. Each number of dout must go back to the cell it came from, "
         "in the same order, not reversed: use the inverse of your forward, `dout.reshape(shape)` (the shape "
         "your forward saw) after a C-order forward, `dout.reshape(shape, order=\"F\")` after an F-order one "
         "(lesson 7, 'Does the flatten order matter?').")
def _flatten_order(cases):
    for c in cases:
        dx = _grad(c, "dx")
        if dx is None or not _bad(c, "dx") or c.data.get("mixes_samples"):
            continue
        want = c.data["ref_grads"]["dx"]
        if dx.shape == want.shape and np.array_equal(np.sort(dx, axis=None), np.sort(want, axis=None)):
            return True
    return False


@mistake("flatten_mixes_samples", ["flatten"],
         "Your Flatten mixes samples: row n of the output must hold exactly the numbers of sample n, "
         "as the dense layer treats each row as one image. Reshape to (N, -1) with the batch axis "
         "first, e.g. `x.reshape(x.shape[0], -1)` (lesson 7, 'What Flatten does').")
def _flatten_mixes(cases):
    return any(c.data.get("mixes_samples") for c in cases)


@mistake("flatten_backward_mixes_samples", ["flatten"],
         "Your Flatten backward mixes samples: row n of dout is the gradient of sample n's numbers only, "
         "so it must go back into dx[n] and nowhere else. Reshape with the batch axis first, "
         "`dout.reshape(shape)` with the shape the forward saw (lesson 7, 'What Flatten does').")
def _flatten_backward_mixes(cases):
    for c in cases:
        dx = _grad(c, "dx")
        want = c.data.get("ref_grads", {}).get("dx")
        if dx is not None and _bad(c, "dx") and not c.data.get("mixes_samples") and dx.shape == want.shape:
            per_sample = all(np.array_equal(np.sort(dx[n], axis=None), np.sort(want[n], axis=None))
                             for n in range(dx.shape[0]))
            if not per_sample and np.array_equal(np.sort(dx, axis=None), np.sort(want, axis=None)):
                return True
    return False


@mistake("flatten_four_axes", ["flatten"],
         "Your Flatten works on images but raises on other shapes: it unpacks four axes (`N, C, H, W = "
         "x.shape`). Flatten takes any (N, ...) array, e.g. (N, T, D) or an already flat (N, D): "
         "`x.reshape(x.shape[0], -1)` needs no names for the other axes, and the backward "
         "`dout.reshape(shape)` none either (lesson 7, 'Any input shape (N, ...)').")
def _flatten_four_axes(cases):
    four = [c for c in cases if c.data.get("arrays", {}).get("x") is not None and c.data["arrays"]["x"].ndim == 4]
    other = [c for c in cases if c.data.get("arrays", {}).get("x") is not None and c.data["arrays"]["x"].ndim != 4]
    return (any("unpack" in c.data.get("error", "") for c in other)
            and not any("unpack" in c.data.get("error", "") for c in four))


@mistake("flatten_first_sample", ["flatten"],
         "Every sample's dx holds sample 0's gradient: the index into the flat dout leaves out the sample's "
         "offset. Row n of dout starts at n * D in the flat buffer (D values per sample), so read "
         "`src[n * D + j]`, not `src[j]` (lesson 7, 'Do I just put the values back in reverse order?').")
def _flatten_first_sample(cases):
    for c in cases:
        dx = _grad(c, "dx")
        want = c.data.get("ref_grads", {}).get("dx")
        if (dx is not None and want is not None and _bad(c, "dx") and dx.shape == want.shape and dx.shape[0] > 1
                and all(_close(dx[n], want[0]) for n in range(dx.shape[0]))):
            return True
    return False


@mistake("relu_mask_only", ["relu"],
         "Your ReLU backward returns the mask (1 where x > 0) without dout: the chain rule multiplies "
         "the upstream gradient by the local slope, dx = dout * (x > 0) (lesson 3, 'ReLU').")
def _relu_mask_only(cases):
    for c in cases:
        dx = _grad(c, "dx")
        if dx is not None and _bad(c, "dx") and _close(dx, (c.data["arrays"]["x"] > 0).astype(float)):
            return True
    return False


@mistake("in_place", ["dense", "relu", "conv2d", "maxpool2d", "avgpool2d", "flatten", "softmax_cross_entropy"],
         "Your function changes an array it was given, in place (for example `x[x < 0] = 0`, `dout[...] = 0` "
         "or `x -= ...`). The caller still needs it: the backward and the gradient check reread x, and "
         "dout may be shared. Work on a copy or build a new array (np.maximum, np.where, x * mask).")
def _in_place(cases):
    return any(c.data.get("changed") for c in cases)


@mistake("float32", ["dense", "relu", "conv2d", "maxpool2d", "avgpool2d", "flatten", "softmax_cross_entropy"],
         "Your function returns float32 (or another dtype) for float64 inputs: keep the inputs' precision, "
         "e.g. np.zeros_like(x) or dtype=x.dtype, as a gradient check needs float64's 16 digits "
         "(lesson 2, 'float32 vs float64').")
def _wrong_dtype(cases):
    for c in cases:
        values = [c.data.get("out")] + list(c.data.get("grads", {}).values())
        for v in values:
            if isinstance(v, np.ndarray) and v.dtype != np.float64 and v.size:
                return True
    return False


@mistake("consistent_pair", ["dense", "relu", "conv2d", "maxpool2d", "avgpool2d"],
         "Your backward is right for your own forward (finite differences agree), but your forward computes "
         "something else than the layer should; fix the forward first, then its backward with it.")
def _consistent_pair(cases):
    return any(c.data.get("forward_values_ok") is False and c.data.get("own_ok") is True
               and not all(c.data.get("values_ok", {"": True}).values()) for c in cases)


@mistake("softmax_no_shift", ["softmax_cross_entropy"],
         "With logits of 1000 or more, np.exp overflows to inf and inf / inf is NaN. Subtract each row's "
         "maximum before np.exp: softmax does not change, and the largest exponent becomes exp(0) = 1 "
         "(lesson 3, 'Overflow').")
def _softmax_no_shift(cases):
    return any(c.data.get("overflow") for c in cases)


@mistake("softmax_log_underflow", ["softmax_cross_entropy"],
         "Your loss is inf where a probability underflows to 0 and np.log(0) = -inf. Compute the log of "
         "the softmax directly: log_probs = shifted - log(sum(exp(shifted))), then take "
         "-log_probs[n, y[n]] (lesson 3, 'Overflow').")
def _softmax_log_underflow(cases):
    return any(c.data.get("log_underflow") for c in cases)


@mistake("softmax_no_mean", ["softmax_cross_entropy"],
         "The loss is the mean over the batch, so its gradient carries 1/N: dlogits = (probs - onehot) / N. "
         "Yours is N times too large (lesson 3, 'The fused gradient').")
def _softmax_no_mean(cases):
    for c in cases:
        N = c.data["arrays"]["logits"].shape[0]
        if N == 1:
            continue
        dl = _grad(c, "dlogits")
        if dl is not None and _bad(c, "dlogits") and _close(dl, c.data["ref_grads"]["dlogits"] * N):
            return True
    return False


@mistake("softmax_loss_sum", ["softmax_cross_entropy"],
         "Your loss is N times too large: it sums the N samples' losses where it must average them, "
         "-mean(log_probs[n, y[n]]), so that the loss, and the learning rate that suits it, do not "
         "depend on the batch size (lesson 3, 'Softmax and cross-entropy').")
def _softmax_loss_sum(cases):
    for c in cases:
        N = c.data["arrays"]["logits"].shape[0]
        loss = c.data.get("loss")
        if N > 1 and loss is not None and c.data.get("loss_ok") is False and _close(loss, c.data["ref_loss"] * N):
            return True
    return False


@mistake("softmax_sign", ["softmax_cross_entropy"],
         "Your dlogits has the wrong sign: it is (probs - onehot) / N, positive for the wrong classes "
         "(lowering their scores lowers the loss) (lesson 3, 'The fused gradient').")
def _softmax_sign(cases):
    return any(_grad(c, "dlogits") is not None and _bad(c, "dlogits")
               and _close(-_grad(c, "dlogits"), c.data["ref_grads"]["dlogits"]) for c in cases)


@mistake("cache_layout", ["conv2d", "maxpool2d", "avgpool2d"],
         "Checked alone, your backward gets the cache of cnnlib's forward: (x, w, b, stride, pad, ...) for "
         "conv2d, (x, argmax, size, stride, pad) for max pooling, (x, size, stride) for average pooling, with "
         "size, stride and pad as (vertical, horizontal) pairs. Unpack it that way (e.g. "
         "`x, w, b, (sh, sw), (ph, pw) = cache[:5]`), or check your forward and backward together, "
         "`check.conv2d(forward=my_forward, backward=my_backward)`, so your backward gets your own cache.")
def _cache_layout(cases):
    for c in cases:
        error = c.data.get("backward_error", "")
        if c.data.get("out") is None and c.data.get("forward_ok") is None and _cache_error(error):
            return True
    return False


def _cache_error(error):
    """An error of a backward that unpacked cnnlib's cache as something else: too many or too few
    values, or a (vertical, horizontal) pair used as an int."""
    return "unpack" in error or "'tuple'" in error


ALL_LAYER_CHECKS = ("dense", "relu", "conv2d", "maxpool2d", "avgpool2d", "flatten", "softmax_cross_entropy")


@mistake("raises", ALL_LAYER_CHECKS,
         "Your code raised an exception; each failing case names the line. Run your function on that case's "
         "shapes yourself (the case's name gives them) and print the shapes of the arrays on that line: "
         "most such errors are an axis or a shape that only some cases expose (batch 1, pad 0, stride > 1, "
         "a non-square image).")
def _raises(cases):
    # A backward checked alone that trips over cnnlib's cache gets the cache_layout hint instead.
    return any(c.data.get("error") and not (c.data.get("out") is None and c.data.get("forward_ok") is None
                                            and _cache_error(c.data["error"])) for c in cases)


@mistake("return_form", ALL_LAYER_CHECKS,
         "Your function returns something of the wrong form (see the failing case): forward functions "
         "return (out, cache), a tuple of two, so the backward later gets the cache; the backward returns "
         "the gradient of each input, in the order of the inputs, (dx, dw, db) or dx alone; softmax "
         "cross-entropy returns (loss, dlogits).")
def _return_form(cases):
    return any(c.data.get("form_error") for c in cases)


def size_hint(cases):
    """The output_size hint with its {what} filled in (diagnose leaves formatting to the check)."""
    what = _size_mistake(cases)
    return MISTAKES["output_size"]["hint"].format(what=what) if what else None


# ---- lessons 2-4: gradient checking and convolution basics (checks in basics.py) ----

def _basics_same(a, b):
    """Same shape and values to 1e-9 relative, NaN matching NaN and inf matching inf."""
    if not isinstance(a, np.ndarray):
        return False
    b = np.asarray(b)
    if a.shape != b.shape or a.size == 0:
        return False
    with np.errstate(all="ignore"):
        return bool(np.allclose(a, b, rtol=1e-9, atol=1e-300, equal_nan=True))


def _numgrad_wrong(case):
    return isinstance(case.data.get("grad"), np.ndarray) and case.data.get("grad_ok") is False


def _numgrad_near(grad, target):
    from .basics import scaled_error
    return grad.shape == np.shape(target) and scaled_error(grad, target) <= TOLERANCE


@mistake("numgrad_one_sided", ["numerical_gradient"],
         "Your gradient is the one-sided difference (f(x + h) - f(x)) / h (or (f(x) - f(x - h)) / h): its error "
         "is of order h, about 1e-5 here, where the centred difference (f(x + h) - f(x - h)) / 2h has error of "
         "order h**2, about 1e-10. Probe both sides of each element (lesson 2, 'Numerical gradient with centred "
         "differences').")
def _numgrad_one_sided(cases):
    from .basics import one_sided
    for c in cases:
        if _numgrad_wrong(c):
            f, x, dout, h = (c.data[k] for k in ("f", "x", "dout", "h"))
            if any(_numgrad_near(c.data["grad"], one_sided(f, x, dout, h, forward)) for forward in (True, False)):
                return True
    return False


@mistake("numgrad_not_restored", ["numerical_gradient"],
         "x is not as it was after your function ran: after probing an element, put its saved value back, "
         "`x[idx] = old`. Not restored, every later probe starts from a shifted x; restored by adding h back "
         "(`x[idx] += h`), it drifts by rounding (lesson 2, 'Numerical gradient with centred differences').")
def _numgrad_not_restored(cases):
    return any(c.data.get("changed") for c in cases)


@mistake("numgrad_divided_by_h", ["numerical_gradient"],
         "Your gradient is twice the right one: x + h and x - h are 2h apart, so divide their difference by "
         "2 * h, not h (lesson 2, 'Numerical gradient with centred differences').")
def _numgrad_divided_by_h(cases):
    return any(_numgrad_wrong(c) and _numgrad_near(c.data["grad"] / 2, c.data["want"]) for c in cases)


@mistake("numgrad_no_dout", ["numerical_gradient"],
         "Your gradient is that of sum(f(x)), as if dout were all ones: the function to differentiate is "
         "sum(f(x) * dout), so multiply by dout before summing, `np.sum(f(x) * dout)` "
         "(lesson 2, 'Numerical gradient with centred differences').")
def _numgrad_no_dout(cases):
    return any(_numgrad_wrong(c) and _numgrad_near(c.data["grad"], c.data["ones"]) for c in cases)


@mistake("numgrad_view_kept", ["numerical_gradient"],
         "Your gradient is 0 where f returns a view of x (as Flatten's reshape does): the array you kept from "
         "f(x + h) changes when x changes again, so both sides end up equal. Reduce each side to a number right "
         "away, `plus = np.sum(f(x) * dout)`, or keep a copy, `f(x).copy()` "
         "(lesson 2, 'Numerical gradient with centred differences').")
def _numgrad_view_kept(cases):
    return any(c.data.get("view") and _numgrad_wrong(c) and not np.any(c.data["grad"]) for c in cases)


def _rel_error_variant(cases, names):
    from .basics import rel_error_variants
    for c in cases:
        if c.data.get("value_ok") is False:
            variants = rel_error_variants(c.data["a"], c.data["b"])
            got = c.data["got"]
            if any(np.isnan(got) and np.isnan(variants[n]) or got == variants[n] or
                   np.isfinite(got) and abs(got - variants[n]) <= 1e-9 * abs(variants[n]) for n in names):
                return True
    return False


@mistake("rel_error_no_floor", ["rel_error"],
         "Without the floor, two zero arrays give 0 / 0 = nan, and tiny gradients (1e-9 against 3e-9) look "
         "wildly wrong: divide by `np.maximum(1e-8, np.abs(a) + np.abs(b))` (lesson 2, the rel_error formula).")
def _rel_error_no_floor(cases):
    return _rel_error_variant(cases, ("no floor",))


@mistake("rel_error_mean", ["rel_error"],
         "You average the elementwise errors: one wrong element among many then looks small. A gradient check "
         "wants the worst element, `np.max(...)` (lesson 2, the rel_error formula).")
def _rel_error_mean(cases):
    return _rel_error_variant(cases, ("mean",))


@mistake("rel_error_abs", ["rel_error"],
         "An absolute value is missing: the error is |a - b| / max(1e-8, |a| + |b|). Without it a negative "
         "difference counts as no error at all, and a + b of opposite signs can be 0 "
         "(lesson 2, the rel_error formula).")
def _rel_error_abs(cases):
    return _rel_error_variant(cases, ("no abs in the numerator", "no abs in the denominator", "no abs",
                                      "|a + b| in the denominator"))


def _softmax_variant(cases, names):
    from .basics import softmax_variants
    for c in cases:
        if c.data.get("out_ok") is False:
            variants = softmax_variants(c.data["z"], c.data["log"])
            if any(n in variants and _basics_same(c.data["out"], variants[n]) for n in names):
                return True
    return False


@mistake("softmax_no_row_max", ["softmax", "log_softmax"],
         "With logits around 1000, np.exp overflows to inf, and inf / inf is nan. Subtract each row's maximum "
         "first, `shifted = z - z.max(axis=1, keepdims=True)`: the softmax does not change, and the largest "
         "exponent becomes exp(0) = 1 (lesson 3, 'Overflow').")
def _softmax_no_row_max(cases):
    return _softmax_variant(cases, ("no shift",))


@mistake("softmax_global_max", ["softmax", "log_softmax"],
         "You subtract the largest logit of the whole batch, `z.max()`: a row far below it (around -1000 when "
         "another is around 1000) then underflows to exp(-2000) = 0 everywhere, and 0 / 0 is nan. Each row "
         "needs its own maximum, `z.max(axis=1, keepdims=True)` (lesson 3, 'Overflow').")
def _softmax_global_max(cases):
    return _softmax_variant(cases, ("global max",))


@mistake("softmax_axis", ["softmax", "log_softmax"],
         "Each row of z is one sample, so the maximum and the sum run over axis 1, the classes, with "
         "keepdims=True so that the (N, 1) result broadcasts over the row: `z.max(axis=1, keepdims=True)`, "
         "`e.sum(axis=1, keepdims=True)`. Yours uses axis 0 or drops keepdims (lesson 3, 'Overflow').")
def _softmax_axis(cases):
    if _softmax_variant(cases, ("max over axis 0", "sum over axis 0", "max without keepdims", "sum without keepdims")):
        return True
    return any("could not be broadcast" in c.data.get("raised", "") for c in cases)


@mistake("log_softmax_of_softmax", ["log_softmax"],
         "Yours takes np.log of the softmax: where a probability is below float64's range (e**-800) it is 0 and "
         "its log is -inf. Compute the log directly, `shifted - np.log(np.exp(shifted).sum(axis=1, "
         "keepdims=True))`, which gives -800 (lesson 3, 'Why log-softmax?').")
def _log_softmax_of_softmax(cases):
    return _softmax_variant(cases, ("log of softmax",))


def _size_formula(cases, name):
    """Every case that returned a number returned the mistaken formula's value, and one was wrong for it."""
    from .basics import size_variants
    seen = wrong = False
    for c in cases:
        got = c.data.get("got")
        if "got" not in c.data or isinstance(got, bool) or not isinstance(got, (int, float, np.integer, np.floating)):
            continue
        value = size_variants(*c.data["args"])[name]
        if got != value or (name == "true division") != isinstance(got, (float, np.floating)):
            return False
        seen = True
        wrong = wrong or value != c.data["want"] or isinstance(got, (float, np.floating))
    return seen and wrong


@mistake("out_size_no_pad", ["output_size"],
         "Your sizes leave the padding out: the window slides over the padded image, H + 2*pad rows, so "
         "H' = (H + 2*pad - KH) // stride + 1 (lesson 4, 'Padding and stride').")
def _out_size_no_pad(cases):
    return _size_formula(cases, "pad left out")


@mistake("out_size_pad_once", ["output_size"],
         "Your sizes add the padding once: it goes on both sides, top and bottom (left and right), so the padded "
         "image has H + 2*pad rows: H' = (H + 2*pad - KH) // stride + 1 (lesson 4, 'Padding and stride').")
def _out_size_pad_once(cases):
    return _size_formula(cases, "pad added once")


@mistake("out_size_no_plus_one", ["output_size"],
         "Your sizes are one too small: (H + 2*pad - KH) // stride counts the steps the window takes, and the "
         "window at position 0 comes on top, so + 1 (lesson 4, 'Padding and stride').")
def _out_size_no_plus_one(cases):
    return _size_formula(cases, "no + 1")


@mistake("out_size_no_stride", ["output_size"],
         "Your sizes are right for stride 1 only: the window moves `stride` rows per step, so the number of steps "
         "is (H + 2*pad - KH) // stride, plus 1 (lesson 4, 'Padding and stride').")
def _out_size_no_stride(cases):
    return _size_formula(cases, "no division by the stride")


@mistake("out_size_true_division", ["output_size"],
         "Your sizes are floats: `/` divides exactly, but only whole windows fit. Floor division `//` rounds "
         "down and gives an int, H' = (H + 2*pad - KH) // stride + 1 (lesson 4, 'Padding and stride').")
def _out_size_true_division(cases):
    return _size_formula(cases, "true division")


def _conv_one_variant(cases, **variant):
    from .basics import conv_one_reference
    for c in cases:
        if c.data.get("out_ok") is False and isinstance(c.data.get("out"), np.ndarray):
            d = c.data
            if variant.get("flip") and np.allclose(d["k"], d["k"][::-1, ::-1]):
                continue
            if _close(d["out"], conv_one_reference(d["x"], d["k"], d["b"], d["stride"], d["pad"], **variant)):
                return True
    return False


@mistake("conv_one_flipped", ["conv2d_one_channel"],
         "Your convolution flips the kernel (out[i, j] uses k[KH-1-p, KW-1-q]): that is the convolution of "
         "mathematics, but CNN layers compute cross-correlation, k[p, q] times the pixel at "
         "(i*stride + p, j*stride + q), no flip (lesson 4, 'One channel, one filter').")
def _conv_one_flipped(cases):
    return _conv_one_variant(cases, flip=True)


@mistake("conv_one_window_start", ["conv2d_one_channel"],
         "Stride 1 works but your windows for larger strides start in the wrong place: the output has the right "
         "size, but the window of out[i, j] starts at row i*stride and column j*stride of the padded image, not "
         "at (i, j) (lesson 4, 'Padding and stride').")
def _conv_one_window_start(cases):
    return _conv_one_variant(cases, stride_in_window=False)


@mistake("conv_one_no_bias", ["conv2d_one_channel"],
         "Your output leaves the bias out: every output pixel is the sum of window times kernel, plus b "
         "(lesson 4, 'One channel, one filter').")
def _conv_one_no_bias(cases):
    for c in cases:
        d = c.data
        if d.get("out_ok") is False and isinstance(d.get("out"), np.ndarray) and _close(d["out"], d["want"] - d["b"]):
            return True
    return False


@mistake("conv_one_size", ["conv2d_one_channel"],
         "Your output has the wrong height or width: H' = (H + 2*pad - KH) // stride + 1, and W' likewise; the "
         "failing cases say which part of the formula is missing (lesson 4, 'Padding and stride').")
def _conv_one_size(cases):
    return any("that is the size" in p for c in cases for p in c.problems)


@mistake("conv_one_no_padding", ["conv2d_one_channel"],
         "Every case with pad 0 passes and every case with padding fails: pad the image with zeros on every "
         "side before sliding the window, `xp = np.pad(x, pad)`, and read the windows from xp "
         "(lesson 4, 'Padding and stride').")
def _conv_one_no_padding(cases):
    if _conv_one_size(cases):
        return False  # the padded cases fail by their size, which conv_one_size explains
    zero = [c.status == "pass" for c in cases if c.data.get("pad") == 0]
    padded = [c.status == "pass" for c in cases if c.data.get("pad", 0) > 0]
    return bool(zero) and bool(padded) and all(zero) and not any(padded)



# ---- lessons 5-7: convolution backward, pooling, Flatten and the dense weights after it (checks in bridge.py) ----


def _bridge_signature(cases, formula):
    """Every failing case that returned something returned formula(case), and at least one did.

    For the lesson-specific checks of bridge.py: each case's data holds `got` (the learner's result,
    None when it raised), `ref` and `ok`. Cases where the formula gives the right answer pass anyway.
    """
    found = False
    for c in cases:
        if c.data.get("ok") is not False or c.data.get("got") is None:
            continue
        want = formula(c)
        if want is None:
            return False
        got = c.data["got"]
        if isinstance(want, tuple):
            if not (isinstance(got, tuple) and got == want):
                return False
        elif not (isinstance(got, np.ndarray) and _close(got, want)):
            return False
        found = True
    return found


def _scatter_variant(case, assign=False, flip=False, stride_used=True, crop=True):
    """scatter_one's dx written another way: `=` for `+=`, a flipped kernel, windows 1 apart, no crop."""
    dout, w, stride, pad, (H, W) = case.data["args"]
    KH, KW = w.shape
    kernel = w[::-1, ::-1] if flip else w
    step = stride if stride_used else 1
    dxp = np.zeros((H + 2 * pad, W + 2 * pad))
    for i in range(dout.shape[0]):
        for j in range(dout.shape[1]):
            window = dxp[i * step:i * step + KH, j * step:j * step + KW]
            if assign:
                window[...] = dout[i, j] * kernel
            else:
                window += dout[i, j] * kernel
    return dxp[pad:pad + H, pad:pad + W] if crop else dxp


@mistake("scatter_pad_crop", ["scatter_one"],
         "With pad = 0 your dx is empty: `dxp[pad:-pad, pad:-pad]` is `dxp[0:0, 0:0]`, as -0 is 0. Cut the "
         "border off by size, `dxp[pad:pad + H, pad:pad + W]` (lesson 5, 'The pad = 0 bug').")
def _scatter_pad_crop(cases):
    for c in cases:
        got = c.data.get("got")
        if c.data["args"][3] == 0 and isinstance(got, np.ndarray) and got.ndim == 2 and 0 in got.shape:
            return True
    return False


@mistake("scatter_no_crop", ["scatter_one"],
         "Your dx is the padded gradient, (H + 2*pad, W + 2*pad): the padding zeros are constants, not "
         "inputs, so cut the border off before returning, `dxp[pad:pad + H, pad:pad + W]` "
         "(lesson 5, 'The forward pass, and what we want').")
def _scatter_no_crop(cases):
    return _bridge_signature(cases, lambda c: _scatter_variant(c, crop=False))


@mistake("scatter_overwrite", ["scatter_one"],
         "Where windows overlap, a pixel must collect `dout[i, j] * w` from every window that covers it, "
         "but yours keeps only the last one: `dxp[...] = ...` where it must be `dxp[...] += ...` "
         "(lesson 5, 'Overlapping windows add up').")
def _scatter_overwrite(cases):
    return _bridge_signature(cases, lambda c: _scatter_variant(c, assign=True))


@mistake("scatter_flipped", ["scatter_one"],
         "Your dx lays the kernel down rotated by 180°: output (i, j) read pixel (i*stride + p, j*stride + q) "
         "through w[p, q], so it sends back dout[i, j] * w[p, q] to that same pixel, the kernel upright "
         "(lesson 5, 'One output gradient, spread back'). The flip appears only when dx is written as a "
         "convolution of dout.")
def _scatter_flipped(cases):
    return _bridge_signature(cases, lambda c: _scatter_variant(c, flip=True))


@mistake("scatter_no_stride", ["scatter_one"],
         "Stride 1 works but larger strides do not: the window of output (i, j) starts at row i*stride and "
         "column j*stride of the padded image, in the backward as in the forward "
         "(lesson 5, 'One output gradient, spread back').")
def _scatter_no_stride(cases):
    return _bridge_signature(cases, lambda c: _scatter_variant(c, stride_used=False))


def _pool_size_formula(rule):
    def formula(c):
        H, W, size, stride = c.data["args"]
        return tuple(rule(n, size, stride) for n in (H, W))
    return formula


@mistake("pool_size_no_plus_one", ["pool_output_size"],
         "Your sizes are one too small: the first window sits at 0, and each stride step fits one more, so "
         "H' = (H - size) // stride + 1; the + 1 counts the first window (lesson 6, 'Windows and the output size').")
def _pool_size_no_plus_one(cases):
    return _bridge_signature(cases, _pool_size_formula(lambda n, k, s: (n - k) // s))


@mistake("pool_size_no_stride", ["pool_output_size"],
         "Your sizes are H - size + 1, the number of window positions for stride 1. With stride s the windows "
         "start s cells apart: H' = (H - size) // stride + 1 (lesson 6, 'Windows and the output size').")
def _pool_size_no_stride(cases):
    return _bridge_signature(cases, _pool_size_formula(lambda n, k, s: n - k + 1))


@mistake("pool_size_round_up", ["pool_output_size"],
         "Your sizes round up where a window would stick out past the edge: a window must fit completely, so "
         "divide with `//`, which rounds down, H' = (H - size) // stride + 1 (lesson 6, 'Windows and the output size').")
def _pool_size_round_up(cases):
    return _bridge_signature(cases, _pool_size_formula(lambda n, k, s: -(-(n - k) // s) + 1))


@mistake("pool_size_true_division", ["pool_output_size"],
         "Your sizes are floats, (H - size) / stride + 1: a size must be a whole number, the windows that fit. "
         "Use `//`, which rounds down and gives an int: H' = (H - size) // stride + 1 (lesson 6, 'Windows and the output size').")
def _pool_size_true_division(cases):
    for c in cases:
        got = c.data.get("got")
        if c.data.get("ok") is False and isinstance(got, tuple) and len(got) == 2:
            H, W, size, stride = c.data["args"]
            if all(isinstance(g, (float, np.floating)) for g in got) and np.allclose(
                    got, [(H - size) / stride + 1, (W - size) / stride + 1]):
                return True
    return False


@mistake("pool_size_height_width", ["pool_output_size"],
         "Your sizes mix up the height and the width: on a non-square map H' comes from H and W' from W, each "
         "with the same formula, (H - size) // stride + 1 and (W - size) // stride + 1 (lesson 6, 'Windows and the output size').")
def _pool_size_height_width(cases):
    def rule(n, k, s):
        return (n - k) // s + 1
    return any(_bridge_signature(cases, formula) for formula in (
        lambda c: (rule(c.data["args"][1], *c.data["args"][2:]), rule(c.data["args"][0], *c.data["args"][2:])),
        lambda c: (rule(c.data["args"][0], *c.data["args"][2:]),) * 2,
        lambda c: (rule(c.data["args"][1], *c.data["args"][2:]),) * 2))


def _rows(case, order, axes=None):
    """The case's weights w (D, M) with their rows read as a volume of shape `order` and moved.

    order: "CHW" or "HWC", the shape the rows are viewed as; axes: how those three axes are moved
    before flattening again (None: not moved).
    """
    w = case.data["arrays"]["w"]
    C, H, W = case.data["shape"]
    dims = {"C": C, "H": H, "W": W}
    volume = w.reshape(*(dims[a] for a in order), w.shape[1])
    if axes is not None:
        volume = volume.transpose(*axes, 3)
    return volume.reshape(w.shape)


def _every_other_order(cases, order, skip):
    for axes in itertools.permutations(range(3)):
        if axes not in skip and _bridge_signature(cases, lambda c: _rows(c, order, axes)):
            return True
    return False


@mistake("permute_unchanged", ["permute_dense_weights", "port_dense_weights"],
         "Your weights come back unchanged. The flattened vector now lists the cells in another order, so row j "
         "of the weights must be the row of the cell that now sits at position j: permute the rows "
         "(lesson 7, 'Does the flatten order matter?' and 'Channels-first vs channels-last').")
def _permute_unchanged(cases):
    return _bridge_signature(cases, lambda c: c.data["arrays"]["w"])


@mistake("permute_inverse", ["permute_dense_weights"],
         "Your rows move the other way round: you used the inverse permutation. Row j of the new weights is the "
         "row of the cell at F position j, `w[perm]` with perm[j] that cell's C position, not the row at C position "
         "j moved to its F position (lesson 7, 'Does the flatten order matter?').")
def _permute_inverse(cases):
    def inverse(c):
        shape = c.data["shape"]
        perm = np.arange(int(np.prod(shape))).reshape(shape).ravel(order="F")
        return c.data["arrays"]["w"][np.argsort(perm)]
    return _bridge_signature(cases, inverse)


@mistake("permute_axes", ["permute_dense_weights"],
         "Your rows follow another order of the cells: F order lets c change fastest, then h, then w, so the cell "
         "(c, h, w) sits at F position (w*H + h)*C + c. In NumPy: perm = np.arange(C*H*W).reshape(C, H, W)"
         ".ravel(order=\"F\"), and the new weights are w[perm] (lesson 7, 'Does the flatten order matter?').")
def _permute_axes(cases):
    return _every_other_order(cases, "CHW", {(0, 1, 2), (2, 1, 0)})


@mistake("port_inverse", ["port_dense_weights"],
         "You ported the weights the other way, NCHW to NHWC: the old rows are in the NHWC network's order, so "
         "view them as (H, W, C, M) and move C to the front, "
         "`w_nhwc.reshape(H, W, C, M).transpose(2, 0, 1, 3).reshape(C*H*W, M)` "
         "(lesson 7, 'Channels-first vs channels-last').")
def _port_inverse(cases):
    return _bridge_signature(cases, lambda c: _rows(c, "CHW", (1, 2, 0)))


@mistake("port_wrong_axes", ["port_dense_weights"],
         "Your rows move, but not to their places: the NHWC network flattened (h, w, c) with c fastest, so view "
         "the old rows as (H, W, C, M), bring C to the front and keep H before W, `.transpose(2, 0, 1, 3)`, then "
         "flatten again (lesson 7, 'Channels-first vs channels-last').")
def _port_wrong_axes(cases):
    return (_every_other_order(cases, "HWC", {(0, 1, 2), (2, 0, 1)})
            or _every_other_order(cases, "CHW", {(0, 1, 2), (1, 2, 0)}))


def _flatten_dense_variant(case, axes=(1, 2, 3), layout="DM", bias=True):
    a = case.data["arrays"]
    x, w, b = a["x"], a["w"], a["b"]
    flat = x.transpose(0, *axes).reshape(x.shape[0], -1)
    weights = w if layout == "DM" else w.reshape(w.shape[1], w.shape[0]).T
    return flat @ weights + (b if bias else 0)


@mistake("flatten_dense_axes", ["flatten_dense"],
         "Your contraction pairs the axes of x with the wrong axes of the weights. w's rows follow cnnlib's "
         "C-order flatten of (c, h, w), so view w as (C, H, W, M) and give each axis of x its own letter on both "
         "sides: `np.einsum(\"nchw,chwm->nm\", x, w.reshape(C, H, W, M))` (lesson 7, 'Is flatten + dense a "
         "tensor contraction?').")
def _flatten_dense_axes(cases):
    return any(_bridge_signature(cases, lambda c: _flatten_dense_variant(c, axes))
               for axes in itertools.permutations((1, 2, 3)) if axes != (1, 2, 3))


@mistake("flatten_dense_weight_layout", ["flatten_dense"],
         "You read w as (M, C, H, W), PyTorch's (outputs, inputs) layout. cnnlib's dense weights are "
         "(C*H*W, M), one row per cell, so the volume view is `w.reshape(C, H, W, M)` (lesson 7, 'Is flatten + "
         "dense a tensor contraction?').")
def _flatten_dense_weight_layout(cases):
    return _bridge_signature(cases, lambda c: _flatten_dense_variant(c, layout="MD"))


@mistake("flatten_dense_no_bias", ["flatten_dense"],
         "Your output leaves the bias out: the contraction gives x @ w, and the dense layer adds b to every row, "
         "`... + b` (lesson 7, 'Is flatten + dense a tensor contraction?').")
def _flatten_dense_no_bias(cases):
    return _bridge_signature(cases, lambda c: _flatten_dense_variant(c, bias=False))


# ---- lessons 8-9: layers, networks and training (checks in training.py) ----

def _flag(key):
    return lambda cases: any(c.data.get(key) for c in cases)


def _variant(key):
    return lambda cases: any(c.data.get("variants", {}).get(key) for c in cases)


mistake("layer_returns_cache", ["layer"],
        "Your layer's forward returns (out, cache), as the plain functions do. A layer keeps the cache itself "
        "(self.cache = ...) and returns out alone, so that the next layer can take it as its input (lesson 8, "
        "'From a function pair to a layer object').")(_flag("returns_cache"))

mistake("layer_returns_param_grads", ["layer"],
        "Your layer's backward returns a tuple such as (dx, dw, db). It returns dx alone, for the layer below; "
        "dw and db go into self.grads['w'] and self.grads['b'] (lesson 8, 'From a function pair to a layer "
        "object').")(_flag("returns_param_grads"))

mistake("layer_grads_keys", ["layer"],
        "grads must use the same keys as params ('w' and 'b', not 'dw' and 'db'): Sequential and the optimizer "
        "find a parameter's gradient under the parameter's name (lesson 8, 'From a function pair to a layer "
        "object').")(_flag("grads_keys"))

mistake("layer_grads_not_stored", ["layer"],
        "After backward your layer's grads are still zeros: backward computes dw and db, and must also write "
        "them into the layer, self.grads['w'][...] = dw and self.grads['b'][...] = db (lesson 8, 'From a "
        "function pair to a layer object').")(_flag("grads_not_stored"))

mistake("grads_accumulate", ["layer", "network"],
        "Each backward adds its gradients to the previous ones (grads['w'] += dw): after two passes they hold "
        "the sum. A backward replaces them, self.grads['w'][...] = dw, so that every optimizer step uses the "
        "gradient of its own batch (lesson 8, 'From a function pair to a layer object').")(_flag("grads_accumulate"))

mistake("stale_cache", ["layer"],
        "After two forward passes, your backward used the cache of the first one. Every forward must store "
        "its own cache (self.cache = ... each time, not only when it is empty): backward differentiates the "
        "last forward pass (lesson 8, 'From a function pair to a layer object').")(_flag("stale_cache"))

mistake("reversed_in_place", ["sequential"],
        "Your loop reverses the caller's list in place (layers.reverse()): afterwards the model's layers are in "
        "the wrong order, and the next forward pass runs them backwards. Loop over reversed(layers) or "
        "layers[::-1], which leave the list as it was (lesson 8, 'Sequential: forward in order, backward in "
        "reverse').")(_flag("list_changed"))

mistake("forward_order", ["sequential"],
        "run_forward must call every layer's forward once, first to last: for layer in layers (lesson 8, "
        "'Sequential: forward in order, backward in reverse').")(_flag("forward_order"))

mistake("forward_same_input", ["sequential"],
        "Every layer of yours gets the network's input x: each layer must get the previous layer's output, "
        "x = layer.forward(x), and the last output is returned (lesson 8, 'Sequential: forward in order, backward "
        "in reverse').")(lambda cases: any(c.data.get("forward_same_input") or c.data.get("forward_returns_input")
                                          for c in cases))

mistake("backward_forward_order", ["sequential"],
        "Your backward loop starts at the first layer. The chain rule runs from the loss back to the input: the "
        "last layer's backward first, as it is the one whose output dout belongs to, so loop over "
        "reversed(layers) (lesson 8, 'Sequential: forward in order, backward in reverse').")(
    _flag("backward_forward_order"))

mistake("backward_same_dout", ["sequential"],
        "Every layer of yours gets the network's dout: each layer's backward returns dx, and that dx is the dout "
        "of the layer below it, dout = layer.backward(dout) (lesson 8, 'Sequential: forward in order, backward "
        "in reverse').")(_flag("backward_same_dout"))

mistake("backward_skips_layer", ["sequential"],
        "Your backward loop leaves out a layer (e.g. reversed(layers[1:])): every layer's backward must run, "
        "the first one's too, as it fills its own grads and returns dx (lesson 8, 'Sequential: forward in "
        "order, backward in reverse').")(_flag("backward_skips_layer"))

mistake("backward_no_return", ["sequential"],
        "Your run_backward returns None: return the first layer's dx, the last value of dout (lesson 8, "
        "'Sequential: forward in order, backward in reverse').")(_flag("backward_no_return"))

mistake("update_not_in_place", ["sgd_momentum", "adam"],
        "Your step puts new arrays into params (params[name] = p - ...) or rebinds a local name (p = p - ...): "
        "the model's arrays do not change. Update them in place, p -= lr * ..., as the model reads its weights "
        "from those very arrays (lesson 9, 'Mini-batches and one optimizer step').")(
    lambda cases: any(c.data.get("not_in_place") or c.data.get("unchanged") for c in cases))

mistake("momentum_sign", ["sgd_momentum"],
        "Your velocity has the wrong sign: v = momentum * v + g, then p -= lr * v. Yours subtracts g from v "
        "and still subtracts v from p, so every step goes uphill (lesson 9, 'Momentum and Adam').")(
    _variant("momentum_sign"))

mistake("momentum_not_kept", ["sgd_momentum"],
        "Your steps are plain SGD: the velocity starts from zero at every call. Keep it in the dict you are "
        "given and update that array in place (v *= momentum; v += g), or store the new one back, "
        "velocity[name] = v (lesson 9, 'Momentum and Adam').")(_variant("momentum_not_kept"))

mistake("momentum_dampened", ["sgd_momentum"],
        "Your velocity is v = momentum * v + (1 - momentum) * g, a running mean. cnnlib (and PyTorch) add the "
        "whole gradient, v = momentum * v + g (lesson 9, 'Momentum and Adam').")(_variant("momentum_dampened"))

mistake("momentum_lag", ["sgd_momentum"],
        "Your step moves p with the velocity from before this step's gradient was added: update v first, "
        "v = momentum * v + g, then p -= lr * v (lesson 9, 'Momentum and Adam').")(_variant("momentum_lag"))

mistake("adam_no_bias_correction", ["adam"],
        "Your Adam leaves out the bias correction: m and v start at 0, so divide them by (1 - beta1**t) and "
        "(1 - beta2**t) before the step (lesson 9, 'Momentum and Adam').")(_variant("adam_no_bias_correction"))

mistake("adam_step_from_0", ["adam"],
        "Your first step gives inf or NaN: the bias correction divides by 1 - beta**t, which is 0 for t = 0. "
        "Count the steps from 1: increase t before you use it (lesson 9, 'Momentum and Adam').")(
    lambda cases: any(c.data.get("nonfinite_first") for c in cases))

mistake("adam_step_from_2", ["adam"],
        "Your bias correction uses t + 1: the first step is t = 1, so the correction of the first step is "
        "1 / (1 - beta1) for m (lesson 9, 'Momentum and Adam').")(_variant("adam_step_from_2"))

mistake("adam_not_kept", ["adam"],
        "Your m and v start from zero at every step: keep them in the state dict between calls and update "
        "those arrays (lesson 9, 'Momentum and Adam').")(_variant("adam_not_kept"))

mistake("adam_no_sqrt", ["adam"],
        "Your step divides by v_hat + eps: the step is lr * m_hat / (sqrt(v_hat) + eps), as v is a mean of "
        "squared gradients (lesson 9, 'Momentum and Adam').")(_variant("adam_no_sqrt"))

mistake("adam_eps_inside", ["adam"],
        "Your eps sits inside the square root, sqrt(v_hat + eps); cnnlib and PyTorch add it outside, "
        "sqrt(v_hat) + eps (lesson 9, 'Momentum and Adam').")(_variant("adam_eps_inside"))

mistake("adam_betas_swapped", ["adam"],
        "Your beta1 and beta2 are swapped: beta1 (0.9) averages the gradient, m; beta2 (0.999) averages its "
        "square, v (lesson 9, 'Momentum and Adam').")(_variant("adam_betas_swapped"))

mistake("epoch_no_shuffle", ["train_epoch"],
        "Your epoch takes the samples in their stored order: shuffle first, order = rng.permutation(len(x)), "
        "and cut the batches from that order (lesson 9, 'An epoch, by hand').")(
    lambda cases: any(c.data.get("variants", {}).get("epoch_no_shuffle") for c in cases))

mistake("epoch_own_rng", ["train_epoch"],
        "Your epoch shuffles, but not with the rng it is given (np.random.permutation, or a new generator): use "
        "rng.permutation(len(x)), so that the run can be repeated and compared (lesson 9, 'An epoch, by hand').")(
    _flag("own_rng"))

mistake("epoch_skips_last", ["train_epoch"],
        "Your epoch leaves out the last, smaller batch: with range(0, len(x), batch_size) the last slice "
        "order[start:start + batch_size] simply holds what is left (lesson 9, 'An epoch, by hand').")(
    _variant("epoch_skips_last"))

mistake("epoch_separate_shuffles", ["train_epoch"],
        "Your epoch shuffles x and y separately, so the images no longer meet their own labels. Draw one "
        "order and index both with it, x[idx] and y[idx] (lesson 9, 'An epoch, by hand').")(
    _variant("epoch_separate_shuffles"))

mistake("epoch_unweighted_loss", ["train_epoch"],
        "Your mean loss is the plain mean of the batch losses: a short last batch then counts as much as a full "
        "one. Weight each batch's loss by its size and divide by len(x) (lesson 9, 'An epoch, by hand').")(
    _variant("epoch_unweighted_loss"))

mistake("epoch_last_loss", ["train_epoch"],
        "Your epoch returns the last batch's loss: return the mean over the epoch, each batch's loss weighted "
        "by its size, divided by len(x) (lesson 9, 'An epoch, by hand').")(_variant("epoch_last_loss"))

mistake("training_in_place", ["layer", "train_epoch"],
        "Your code changes an array it was given, in place (x, y or dout): the caller still needs it. Build new "
        "arrays instead.")(_flag("changed"))
