"""Pooling explorer: step through the windows of max or average pooling one at a time.

`pool_window` does the arithmetic for one window (where it sits, which cell wins, what
gradient it sends back), `route_gradient` adds those up over every window, `plot_pool_window`
and `plot_pool_routing` draw them, and `pool_explorer` puts sliders on `plot_pool_window`.

Everything here works on one channel of one sample, an H x W image, and computes with its own
small loops rather than calling cnnlib.pool, so that the tests can hold the two against
each other. Shapes: KH x KW window (`size`), H' x W' output, H' = (H - KH) // stride + 1.
Windows are numbered row by row over the output: window k is output cell
(i, j) = divmod(k, W'), and its top-left input cell is (i * stride_h, j * stride_w).
Max pooling sends a window's gradient to its first maximum in row-major order, as cnnlib
and PyTorch do when several cells tie.
"""

import base64
import html
import io
import numbers
from collections import namedtuple

import matplotlib.patheffects as path_effects
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Circle, Rectangle

from .._validate import as_pair
from ..plots import DIVERGING, GREYS, OKABE_ITO, symmetric_limits

MODES = ("max", "avg")

PoolWindow = namedtuple("PoolWindow", ["index", "n_windows", "out_pos", "rows", "cols", "winner", "value",
                                       "out", "dx"])
PoolWindow.__doc__ = """One pooling window and the gradient it sends back.

index : int, k, the window's number in row-major order over the output.
n_windows : int, H' * W'.
out_pos : (i, j), the output cell the window produces.
rows, cols : (start, stop) half-open ranges of the input rows and columns it covers.
winner : (row, col) of the input cell that holds the window's first maximum (None for "avg").
value : float, out[i, j].
out : (H', W') ndarray, the whole pooled output.
dx : (H, W) ndarray, the gradient this window alone sends to the input for its dout.
"""

# Window outline, winner marker and highlight: Okabe-Ito orange and blue, each drawn over a
# contrasting stroke so they stay visible on white paper and on black ink alike.
_OUTLINE = OKABE_ITO[0]
_MARK = OKABE_ITO[4]
# One colour per window in plot_pool_routing (yellow left out: it vanishes on white).
_WINDOW_COLOURS = [OKABE_ITO[i] for i in (0, 4, 5, 2, 6, 1, 7)]

_Geometry = namedtuple("_Geometry", ["H", "W", "KH", "KW", "sh", "sw", "Ho", "Wo"])


def _as_image(x):
    """x as a float64 (H, W) array; leading axes of length 1, e.g. (1, 1, 8, 8), are dropped."""
    a = np.asarray(x)
    if a.dtype == np.bool_ or not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise TypeError(f"x must hold real numbers, got an array of dtype {a.dtype}")
    shape = a.shape
    while a.ndim > 2 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 2 or a.size == 0:
        raise ValueError(
            f"x must be one image, (H, W) or with leading axes of length 1 such as (1, 1, H, W), "
            f"got shape {shape}"
        )
    if not np.all(np.isfinite(a)):
        raise ValueError("x must be finite: pooling a NaN or an infinity shows nothing useful")
    return a.astype(np.float64)


def _geometry(shape, size, stride):
    KH, KW = as_pair(size, "size", minimum=1)
    sh, sw = (KH, KW) if stride is None else as_pair(stride, "stride", minimum=1)
    H, W = shape
    if KH > H or KW > W:
        raise ValueError(f"size {(KH, KW)} is larger than the input {(H, W)}: no window fits")
    return _Geometry(H, W, KH, KW, sh, sw, (H - KH) // sh + 1, (W - KW) // sw + 1)


def _check_mode(mode):
    if mode not in MODES:
        raise ValueError(f"mode must be 'max' or 'avg', got {mode!r}")
    return mode


def _check_window(window, geo):
    n = geo.Ho * geo.Wo
    if isinstance(window, bool) or not isinstance(window, numbers.Integral):
        raise TypeError(f"window must be an int, got {window!r}")
    if not 0 <= window < n:
        raise ValueError(
            f"window {window} is out of range: size {(geo.KH, geo.KW)}, stride {(geo.sh, geo.sw)} on a "
            f"{geo.H}x{geo.W} input give {geo.Ho}x{geo.Wo} = {n} windows, numbered 0..{n - 1}"
        )
    return int(window)


def _check_dout(dout):
    if isinstance(dout, bool) or not isinstance(dout, numbers.Real) or not np.isfinite(dout):
        raise ValueError(f"dout must be a finite number (this window's upstream gradient), got {dout!r}")
    return float(dout)


def _box(geo, k):
    """(rows, cols) half-open ranges of window k."""
    i, j = divmod(k, geo.Wo)
    r0, c0 = i * geo.sh, j * geo.sw
    return (r0, r0 + geo.KH), (c0, c0 + geo.KW)


def _winner(img, geo, k):
    (r0, r1), (c0, c1) = _box(geo, k)
    a = int(np.argmax(img[r0:r1, c0:c1]))  # flat index of the first maximum, row by row
    return r0 + a // geo.KW, c0 + a % geo.KW


def _pool(img, geo, mode):
    out = np.empty((geo.Ho, geo.Wo))
    for k in range(geo.Ho * geo.Wo):
        (r0, r1), (c0, c1) = _box(geo, k)
        win = img[r0:r1, c0:c1]
        out.flat[k] = win.max() if mode == "max" else win.mean()
    return out


def _add_contribution(dx, img, geo, mode, k, dout):
    """Add window k's share of the gradient, for upstream gradient `dout`, into dx (H, W)."""
    if mode == "max":
        dx[_winner(img, geo, k)] += dout  # only the winner moved the output
    else:
        (r0, r1), (c0, c1) = _box(geo, k)
        dx[r0:r1, c0:c1] += dout / (geo.KH * geo.KW)  # every cell counted 1/(KH*KW)


def pool_window(x, *, size=2, stride=None, mode="max", window=0, dout=1.0):
    """Where pooling window `window` sits, what it outputs, and the gradient it sends back.

    Parameters
    ----------
    x : (H, W) ndarray, one channel of one image; (1, H, W) and (1, 1, H, W) work too.
    size : int or (int, int), the window KH x KW.
    stride : int or (int, int), default `size`.
    mode : {"max", "avg"}
    window : int, k in 0..H'*W'-1, counted row by row over the output.
    dout : float, the upstream gradient dL/dout[i, j] of this window's output cell.

    Returns
    -------
    PoolWindow (see its docstring). For "max", dx is `dout` at the winner and 0 elsewhere;
    for "avg", dout / (KH*KW) on every cell of the window.
    """
    img = _as_image(x)
    geo = _geometry(img.shape, size, stride)
    mode = _check_mode(mode)
    k = _check_window(window, geo)
    dout = _check_dout(dout)
    rows, cols = _box(geo, k)
    out = _pool(img, geo, mode)
    dx = np.zeros_like(img)
    _add_contribution(dx, img, geo, mode, k, dout)
    winner = _winner(img, geo, k) if mode == "max" else None
    return PoolWindow(k, geo.Ho * geo.Wo, divmod(k, geo.Wo), rows, cols, winner, float(out.flat[k]), out, dx)


def route_gradient(x, dout, *, size=2, stride=None, mode="max", upto=None):
    """Backpropagate `dout` through pooling window by window: the sum of every window's dx.

    Parameters
    ----------
    x : (H, W) ndarray (or with leading axes of length 1).
    dout : (H', W') ndarray, dL/dout; a number means that value in every output cell.
    size, stride, mode : as for pool_window.
    upto : int, optional; add only windows 0..upto (the explorer's "so far" panel).

    Returns
    -------
    dx : (H, W) ndarray. A cell that wins several overlapping windows receives the sum of
    their douts.
    """
    img = _as_image(x)
    geo = _geometry(img.shape, size, stride)
    mode = _check_mode(mode)
    n = geo.Ho * geo.Wo
    if np.ndim(dout) == 0:
        dout = np.full((geo.Ho, geo.Wo), _check_dout(dout))
    dout = np.asarray(dout, dtype=np.float64)
    if dout.shape != (geo.Ho, geo.Wo):
        raise ValueError(f"dout must have the output's shape {(geo.Ho, geo.Wo)}, got {dout.shape}")
    last = n - 1 if upto is None else _check_window(upto, geo)
    dx = np.zeros_like(img)
    for k in range(last + 1):
        _add_contribution(dx, img, geo, mode, k, dout.flat[k])
    return dx


def _fmt(v):
    """A short label for a number: 1, 0.25, -0.5, 0.94 (two decimals at most)."""
    s = f"{v:.2f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def _annotate(ax, a, im=None, *, skip_zero=False, fontsize=8):
    """Write every value of the (h, w) array `a` in its cell, dark on light and light on dark."""
    for (r, c), v in np.ndenumerate(a):
        if skip_zero and v == 0:
            continue
        colour = "black"
        if im is not None:
            red, green, blue, _ = im.cmap(im.norm(v))
            colour = "white" if 0.299 * red + 0.587 * green + 0.114 * blue < 0.5 else "black"
        ax.text(c, r, _fmt(v), ha="center", va="center", fontsize=fontsize, color=colour)


def _pixel_axes(ax, title):
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("column")
    ax.set_ylabel("row")
    ax.set_xticks([])
    ax.set_yticks([])


def _outline(ax, rows, cols, colour, *, inset=0.0, width=2.5):
    """Draw a window's boundary; `inset` (in cells) keeps overlapping outlines apart."""
    rect = Rectangle((cols[0] - 0.5 + inset, rows[0] - 0.5 + inset), cols[1] - cols[0] - 2 * inset,
                     rows[1] - rows[0] - 2 * inset, fill=False, edgecolor=colour, linewidth=width)
    rect.set_path_effects([path_effects.withStroke(linewidth=width + 2, foreground="black" if colour != "black"
                                                   else "white"), path_effects.Normal()])
    ax.add_patch(rect)


def _circle(ax, cell, colour, *, radius=0.42, width=2.0):
    ring = Circle((cell[1], cell[0]), radius, fill=False, edgecolor=colour, linewidth=width)
    ring.set_path_effects([path_effects.withStroke(linewidth=width + 2, foreground="white"),
                           path_effects.Normal()])
    ax.add_patch(ring)


def _fontsize(shape):
    return 8 if max(shape) <= 6 else 6.5


def _mode_name(mode):
    return "Max" if mode == "max" else "Average"


def plot_pool_window(x, *, size=2, stride=None, mode="max", window=0, dout=1.0, annotate=None, cmap=GREYS):
    """Draw one pooling window: the input, the output, and the gradient it sends back.

    Four panels: the input with window `window` outlined (and, for max pooling, its winning
    cell circled); the pooled output with the window's cell outlined; the dx this window
    sends back for upstream gradient `dout`; and the dx summed over windows 0..window with
    the same dout in each, which shows overlapping windows adding up.

    Parameters
    ----------
    x, size, stride, mode, window, dout : as for pool_window.
    annotate : bool, write the numbers in the cells; default when H and W are at most 8.
    cmap : colour map of the input and output panels (default gray_r, for digits).

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    img = _as_image(x)
    pw = pool_window(img, size=size, stride=stride, mode=mode, window=window, dout=dout)
    geo = _geometry(img.shape, size, stride)
    so_far = route_gradient(img, dout, size=size, stride=stride, mode=mode, upto=pw.index)
    if annotate is None:
        annotate = max(img.shape) <= 8
    fs = _fontsize(img.shape)

    fig, axes = plt.subplots(1, 4, figsize=(10, 3.1))
    vmin, vmax = float(img.min()), float(img.max())
    if vmin == vmax:
        vmax = vmin + 1.0
    im = axes[0].imshow(img, cmap=cmap, vmin=vmin, vmax=vmax)
    _outline(axes[0], pw.rows, pw.cols, _OUTLINE)
    if pw.winner is not None:
        _circle(axes[0], pw.winner, _MARK)
    if annotate:
        _annotate(axes[0], img, im, fontsize=fs)
    _pixel_axes(axes[0], f"input x ({geo.H}x{geo.W}), window {pw.index}")

    im = axes[1].imshow(pw.out, cmap=cmap, vmin=vmin, vmax=vmax)
    _outline(axes[1], (pw.out_pos[0], pw.out_pos[0] + 1), (pw.out_pos[1], pw.out_pos[1] + 1), _OUTLINE)
    if annotate:
        _annotate(axes[1], pw.out, im, fontsize=_fontsize(pw.out.shape))
    _pixel_axes(axes[1], f"output ({geo.Ho}x{geo.Wo}), cell {pw.out_pos}")

    lo, hi = symmetric_limits(so_far)
    for ax, dx, title in ((axes[2], pw.dx, f"dx from window {pw.index}"),
                          (axes[3], so_far, f"dx from windows 0..{pw.index}")):
        im = ax.imshow(dx, cmap=DIVERGING, vmin=lo, vmax=hi)
        _outline(ax, pw.rows, pw.cols, _OUTLINE, width=1.5)
        if annotate:
            _annotate(ax, dx, im, skip_zero=True, fontsize=fs)
        _pixel_axes(ax, title)
    stride_pair = (geo.sh, geo.sw)
    fig.suptitle(f"{_mode_name(mode)} pooling, size {(geo.KH, geo.KW)}, stride {stride_pair}: window "
                 f"{pw.index} of 0..{pw.n_windows - 1}, dout = {_fmt(dout)} in each window")
    fig.tight_layout()
    return fig


def plot_pool_routing(x, dout, *, size=2, stride=None, mode="max"):
    """Draw every window at once: where each window sits, its winner, and where its dout lands.

    Three panels, one colour language: colour says which window, the written numbers say how
    much. The input with each window outlined in its own colour (overlapping outlines are
    drawn inset so both stay visible) and, for max pooling, each window's winning cell circled
    in that colour; dout with each cell in its window's colour; and dx, the sum of what every
    window sent back (route_gradient), each cell filled with the colour of every window that
    sent it something (one stripe per window where several did), the cells no window reached
    left white.

    Parameters
    ----------
    x : (H, W) ndarray, small (say up to 8x8) so the numbers fit.
    dout : (H', W') ndarray, the upstream gradient.
    size, stride, mode : as for pool_window.

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    img = _as_image(x)
    geo = _geometry(img.shape, size, stride)
    mode = _check_mode(mode)
    dx = route_gradient(img, dout, size=size, stride=stride, mode=mode)
    dout = np.asarray(dout, dtype=np.float64)
    overlap = geo.sh < geo.KH or geo.sw < geo.KW
    fs = _fontsize(img.shape)

    fig, axes = plt.subplots(1, 3, figsize=(9, 3.3))
    axes[0].imshow(np.zeros_like(img), cmap=GREYS, vmin=0, vmax=1)
    _annotate(axes[0], img, fontsize=fs)
    for k in range(geo.Ho * geo.Wo):
        colour = _WINDOW_COLOURS[k % len(_WINDOW_COLOURS)]
        rows, cols = _box(geo, k)
        # Windows that share cells are drawn a little inside one another, by their order.
        inset = 0.06 + 0.07 * (k % 3) if overlap else 0.06
        _outline(axes[0], rows, cols, colour, inset=inset, width=2.0)
        if mode == "max":
            _circle(axes[0], _winner(img, geo, k), colour, radius=0.42 - (0.09 * (k % 3) if overlap else 0))
    what = "winners circled" if mode == "max" else "every cell shares"
    _pixel_axes(axes[0], f"x, windows outlined, {what}")

    axes[1].imshow(np.zeros_like(dout), cmap=GREYS, vmin=0, vmax=1)
    for k in range(geo.Ho * geo.Wo):
        i, j = divmod(k, geo.Wo)
        axes[1].add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor=_WINDOW_COLOURS[k % len(_WINDOW_COLOURS)],
                                    alpha=0.45, edgecolor="black"))
    _annotate(axes[1], dout, fontsize=_fontsize(dout.shape) + 1)
    _pixel_axes(axes[1], f"dout ({geo.Ho}x{geo.Wo}), one colour per window")

    # dx in the same language: each cell in the colour of the windows that sent it a gradient,
    # one vertical stripe per window where several did (a winner of overlapping windows).
    senders = {}
    for k in range(geo.Ho * geo.Wo):
        if mode == "max":
            cells = [_winner(img, geo, k)]
        else:
            (r0, r1), (c0, c1) = _box(geo, k)
            cells = [(r, c) for r in range(r0, r1) for c in range(c0, c1)]
        for cell in cells:
            senders.setdefault(cell, []).append(k)
    axes[2].imshow(np.zeros_like(dx), cmap=GREYS, vmin=0, vmax=1)
    for (r, c), ks in senders.items():
        width = 1 / len(ks)
        for n, k in enumerate(ks):
            axes[2].add_patch(Rectangle((c - 0.5 + n * width, r - 0.5), width, 1, alpha=0.45, linewidth=0,
                                        facecolor=_WINDOW_COLOURS[k % len(_WINDOW_COLOURS)]))
        axes[2].add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, edgecolor="black"))
    _annotate(axes[2], dx, fontsize=fs)
    for text in axes[2].texts:  # a number over several stripes gets a white backing to stay legible
        c, r = text.get_position()
        if len(senders.get((round(r), round(c)), ())) > 1:
            text.set_bbox(dict(facecolor="white", edgecolor="none", pad=1.5))
    _pixel_axes(axes[2], f"dx ({geo.H}x{geo.W}), coloured by window")
    rule = "each dout goes to its window's max" if mode == "max" else "each dout is shared out evenly"
    fig.suptitle(f"{_mode_name(mode)} pooling backward, size {(geo.KH, geo.KW)}, stride {(geo.sh, geo.sw)}: {rule}")
    fig.tight_layout()
    return fig


def describe_window(x, *, size=2, stride=None, mode="max", window=0, dout=1.0):
    """One or two sentences, as plain text, on what window `window` does (the explorer's caption)."""
    img = _as_image(x)
    pw = pool_window(img, size=size, stride=stride, mode=mode, window=window, dout=dout)
    geo = _geometry(img.shape, size, stride)
    where = (f"Window {pw.index} of 0..{pw.n_windows - 1} makes output cell {pw.out_pos} from rows "
             f"{pw.rows[0]}..{pw.rows[1] - 1}, columns {pw.cols[0]}..{pw.cols[1] - 1}.")
    if mode == "avg":
        n = geo.KH * geo.KW
        return (f"{where} Its average is {_fmt(pw.value)}; dout = {_fmt(dout)} is shared out as "
                f"{_fmt(dout)}/{n} = {dout / n:.3g} to each of its {n} cells.")
    r, c = pw.winner
    text = f"{where} Its max is {_fmt(pw.value)} at row {r}, column {c}; dout = {_fmt(dout)} goes there only."
    (r0, r1), (c0, c1) = _box(geo, pw.index)
    ties = int(np.sum(img[r0:r1, c0:c1] == pw.value))
    if ties > 1:
        text += f" {ties} cells tie for the max; the first, row by row, takes the gradient."
    others = [k for k in range(pw.n_windows) if k != pw.index and _winner(img, geo, k) == pw.winner]
    if others:
        text += (f" That cell also wins window{'s' if len(others) > 1 else ''} "
                 f"{', '.join(map(str, others))}, so its dx is the sum of their douts.")
    return text


def _png_html(fig, alt):
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)  # the picture lives in the HTML now; an open figure would also show below the cell
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}" style="max-width:100%">'


def pool_explorer(x, *, size=2, stride=2, mode="max", window=0, dout=1.0):
    """An ipywidgets explorer that steps through the windows of max or average pooling.

    Controls: a "mode" dropdown (max or average), "size" and "stride" sliders (square
    windows), and a "window" slider over the output cells, row by row. Below them a caption
    (describe_window) and the picture of plot_pool_window for the current setting. The
    window slider's range follows size and stride.

    Parameters
    ----------
    x : (H, W) ndarray, one image, e.g. an 8x8 digit; (1, H, W) and (1, 1, H, W) work too.
    size, stride : int, the starting window size and stride.
    mode : {"max", "avg"}
    window : int, the starting window.
    dout : float, the upstream gradient each window's output cell receives.

    Returns
    -------
    ipywidgets.VBox with CSS class "cnn-explorer"; its attributes `mode`, `size`, `stride`,
    `window` (the controls), `caption` and `picture` (HTML widgets) are there for scripts
    and tests.
    """
    import ipywidgets as widgets

    img = _as_image(x)
    for name, value in (("size", size), ("stride", stride)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{name} must be an int (the explorer's windows are square), got {value!r}")
    largest = min(img.shape)
    if not 1 <= stride <= largest:
        raise ValueError(f"stride must be in 1..{largest} for a {img.shape[0]}x{img.shape[1]} input, got {stride}")
    pw = pool_window(img, size=size, stride=stride, mode=mode, window=window, dout=dout)
    dout = float(dout)

    style = {"description_width": "initial"}
    mode_box = widgets.Dropdown(options=[("max", "max"), ("average", "avg")], value=mode, description="mode",
                                style=style)
    size_box = widgets.IntSlider(value=size, min=1, max=largest, description="size", continuous_update=False,
                                 style=style)
    stride_box = widgets.IntSlider(value=stride, min=1, max=largest, description="stride",
                                   continuous_update=False, style=style)
    window_box = widgets.IntSlider(value=window, min=0, max=pw.n_windows - 1, description="window",
                                   continuous_update=False, style=style)
    caption = widgets.HTML()
    picture = widgets.HTML()
    busy = [False]  # set while the window slider's range is adjusted, to draw once, not twice

    def settings():
        return dict(size=size_box.value, stride=stride_box.value, mode=mode_box.value, window=window_box.value,
                    dout=dout)

    def redraw(_change=None):
        if busy[0]:
            return
        s = settings()
        text = describe_window(img, **s)
        caption.value = f"<p>{html.escape(text)}</p>"
        picture.value = _png_html(plot_pool_window(img, **s), text)

    def regrid(_change=None):
        # A new size or stride changes how many windows there are; keep the index in range.
        n = _geometry(img.shape, size_box.value, stride_box.value)
        busy[0] = True
        try:
            window_box.max = n.Ho * n.Wo - 1
            window_box.value = min(window_box.value, window_box.max)
        finally:
            busy[0] = False
        redraw()

    mode_box.observe(redraw, names="value")
    window_box.observe(redraw, names="value")
    size_box.observe(regrid, names="value")
    stride_box.observe(regrid, names="value")
    redraw()

    box = widgets.VBox([widgets.HBox([mode_box, size_box, stride_box]), window_box, caption, picture])
    box.add_class("cnn-explorer")
    box.mode, box.size, box.stride, box.window = mode_box, size_box, stride_box, window_box
    box.caption, box.picture = caption, picture
    return box
