"""Gradient checking: compare an analytic backward pass with centred finite differences."""

import warnings

import numpy as np


def numerical_gradient(f, x, dout, h=1e-5):
    """Numerical gradient of sum(f(x) * dout) with respect to x.

    Each element of x is nudged by +h and -h in turn and the change of the scalar
    sum(f(x) * dout) is divided by 2h (centred differences, error of order h**2).
    Multiplying by a random `dout` checks every output's contribution at once; an all-ones
    dout would hide some wrong backward passes.

    Parameters
    ----------
    f : callable taking x and returning an ndarray (or a scalar).
    x : ndarray of floats, modified in place during the check and restored afterwards.
        Use float64: float32 keeps about 7 digits, so a change of size h = 1e-5 is mostly
        rounding and the check can neither pass nor fail cleanly.
    dout : ndarray shaped like f(x) (or a scalar for a scalar f).
    h : float, the step; 1e-5 balances truncation error (h**2) and rounding error (eps/h)
        in float64.

    Returns
    -------
    grad : ndarray shaped like x.

    Warns
    -----
    UserWarning
        When `dout` is constant (all its elements equal, more than one of them) or `x` is
        coarser than float64: the check would run, but it could not be trusted.
    """
    if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.floating):
        raise TypeError("x must be a float ndarray: it is nudged in place")
    dout = np.asarray(dout)
    out_shape = np.shape(f(x))
    if out_shape != dout.shape:
        raise ValueError(f"dout must have the shape of f(x), {out_shape}, got {dout.shape}")
    # Warnings, not errors: the numbers are still computed, and a lesson may show a bad
    # check on purpose; stacklevel=2 points at the caller's line, the one to change.
    if dout.size > 1 and np.all(dout == dout.flat[0]):
        warnings.warn(
            "numerical_gradient: dout is constant (every element equals "
            f"{dout.flat[0].item()!r}); an all-ones or constant dout weights every output alike, "
            "which hides a backward that mixes up outputs (a transpose, a wrong reshape, "
            "gradients sent to the wrong window). Use a random dout, e.g. "
            "rng.standard_normal(out.shape).",
            UserWarning, stacklevel=2)
    if np.finfo(x.dtype).precision < np.finfo(np.float64).precision:
        # finfo says 6 for float32 (digits always exact); "about 7" is the usual figure.
        digits = 7 if x.dtype == np.float32 else np.finfo(x.dtype).precision
        warnings.warn(
            f"numerical_gradient: x is {x.dtype}, too coarse for a gradient check: {x.dtype} "
            f"keeps about {digits} significant digits: with h = 1e-5 the difference "
            "f(x+h) - f(x-h) is mostly rounding, and no h reaches the agreement a float64 "
            "check does. Check in float64 (x.astype(np.float64), and float64 weights).",
            UserWarning, stacklevel=2)
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + h
        plus = np.array(f(x), dtype=np.float64)  # a copy: f may return a view of x (Flatten does)
        x[idx] = old - h
        # Subtract before x is restored (a view would change with it), and before summing:
        # outputs the nudge did not reach then cancel exactly instead of adding rounding noise.
        diff = plus - f(x)
        x[idx] = old
        grad[idx] = np.sum(diff * dout) / (2 * h)
    return grad


# The floor of rel_error's denominator, as a fraction of the largest |a| + |b| in the arrays.
# A centred difference carries an absolute rounding error that does not shrink with the entry
# (about eps * |f| / h), so an entry a thousand times smaller than the gradient's largest can
# miss a correct backward by 1e-7 on its own; measured on lesson 5's three conv cases over 360
# draws, cs231n's fixed 1e-8 floor failed 5 correct checks (up to 7.7e-7) and this floor none
# (all under 1.4e-9). A wrong entry still shows: its error is measured against a hundredth of
# the gradient's scale, at the very least.
SCALE_FLOOR = 1e-2


def rel_error(a, b):
    """Largest elementwise relative error, max |a - b| / max(|a| + |b|, floor).

    floor = max(1e-8, SCALE_FLOOR * the largest |a| + |b|): an entry is compared with its own
    size, or with a hundredth of the largest entry's when it is smaller than that. cs231n's
    version has the fixed floor 1e-8 only, which fails correct gradients whose tiniest entries
    carry finite differences' rounding error (lesson 2).
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"cannot compare arrays of shapes {a.shape} and {b.shape}")
    if a.size == 0:
        return 0.0
    a, b = a.ravel(), b.ravel()  # 1-D even for scalars, so the overflowed entries can be indexed
    with np.errstate(over="ignore", invalid="ignore"):
        denominator = np.abs(a) + np.abs(b)
        finite = denominator[np.isfinite(denominator)]
        floor = max(1e-8, SCALE_FLOOR * float(finite.max())) if finite.size else 1e-8
        error = np.abs(a - b) / np.maximum(floor, denominator)
    # Near the float64 maximum, |a| + |b| (and then a - b) overflows to inf, which made the
    # ratio 0 or NaN. The ratio does not change when both values are halved, and halving is
    # exact (but for subnormals, far too small to count beside 1e308), so the halved pair gives
    # the right ratio, rounded as for ordinary values; the other entries keep the formula's
    # result bit for bit.
    huge = np.isinf(denominator) & np.isfinite(a) & np.isfinite(b)
    if huge.any():
        half_a, half_b = a[huge] / 2, b[huge] / 2
        error[huge] = np.abs(half_a - half_b) / np.maximum(floor / 2, np.abs(half_a) + np.abs(half_b))
    return float(np.max(error))


def below(error, bound):
    """'below 1e-08' when `error` < `bound`, else AssertionError: a printable, stable result.

    The last digits of a small gradient-check error are rounding noise and change with the CPU,
    the BLAS kernel and the NumPy version; the power of ten under which it lies does not, when
    `bound` sits well above it. The lessons print this, so their stored outputs hold anywhere.
    """
    if not error < bound:
        raise AssertionError(f"error {error:.1e} is not below {bound:.0e}")
    return f"below {bound:.0e}"
