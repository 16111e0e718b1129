"""Explore how a convolution window moves over an image as kernel size, stride and pad change.

The small functions at the top hold the index arithmetic (the output size, where the window
of one output cell sits, the output-size formula as text) so they can be tested without
drawing anything. `plot_receptive_field` draws one setting as a static figure, and
`conv_explorer` puts sliders around that same figure.

Coordinates are rows and columns of the *padded* image, the array the forward pass slides
over: the window of output cell (i, j) is ``xp[i*stride : i*stride + KH, j*stride : j*stride + KW]``,
exactly the slice `cnnlib.conv2d_forward_naive` takes.
"""

import html
import numbers
from typing import NamedTuple

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import clear_output, display
from matplotlib.colors import ListedColormap
from matplotlib.patches import Rectangle

from .._validate import as_pair
from ..conv import conv2d_forward
from ..plots import DIVERGING, GREYS, OKABE_ITO, symmetric_limits

WINDOW_COLOUR = OKABE_ITO[2]  # bluish green: stands out on grey ink and on both ends of PuOr
PAD_COLOUR = OKABE_ITO[1]  # sky blue, a light tint over the zero padding


def _int(value, name, minimum):
    # bool is an int subclass; pad=True is always a mistake.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def output_size(size, kernel_size, stride=1, pad=0):
    """Output length along one axis, ``(size + 2*pad - kernel_size) // stride + 1``.

    Parameters
    ----------
    size : int, the input length (H or W).
    kernel_size : int, the kernel length along the same axis (KH or KW).
    stride : int >= 1
    pad : int >= 0, zeros added on *each* side.

    Returns
    -------
    int, H' (or W'), at least 1.

    Raises
    ------
    ValueError
        If the kernel is longer than the padded input, so not even one window fits.
    """
    size = _int(size, "size", 1)
    kernel_size = _int(kernel_size, "kernel_size", 1)
    stride = _int(stride, "stride", 1)
    pad = _int(pad, "pad", 0)
    padded = size + 2 * pad
    if kernel_size > padded:
        raise ValueError(
            f"kernel size {kernel_size} is larger than the padded image, {size} + 2*{pad} = {padded} "
            f"pixels: no window fits. Use a smaller kernel or more padding."
        )
    return (padded - kernel_size) // stride + 1


def formula_text(size, kernel_size, stride=1, pad=0, name="H"):
    """The output-size formula with the numbers filled in, e.g. ``"H' = (8 + 2*1 - 3) // 2 + 1 = 4"``.

    `name` is the axis, "H" or "W". Raises the same ValueError as `output_size` when the
    kernel does not fit.
    """
    out = output_size(size, kernel_size, stride, pad)
    return f"{name}' = ({size} + 2*{pad} - {kernel_size}) // {stride} + 1 = {out}"


class Window(NamedTuple):
    """Half-open bounds of one window in padded-image coordinates.

    ``xp[row_start:row_stop, col_start:col_stop]`` is the window.
    """

    row_start: int
    row_stop: int
    col_start: int
    col_stop: int


def window_bounds(image_shape, kernel_size=3, stride=1, pad=0, out_row=0, out_col=0):
    """Where the window of output cell (out_row, out_col) sits in the padded image.

    Parameters
    ----------
    image_shape : (H, W), the unpadded image size.
    kernel_size, stride, pad : int or (vertical, horizontal) pair of ints.
    out_row, out_col : int, the output cell (i, j), with 0 <= i < H' and 0 <= j < W'.

    Returns
    -------
    Window
        ``Window(i*sh, i*sh + KH, j*sw, j*sw + KW)``. Subtract the pad to get image
        coordinates; negative ones, or ones >= H (W), fall on the padding.

    Raises
    ------
    ValueError
        If the kernel does not fit in the padded image, or the cell is outside the output.
    """
    if len(image_shape) != 2:
        raise ValueError(f"image_shape must be (H, W), got {tuple(image_shape)!r}")
    (kh, kw) = as_pair(kernel_size, "kernel_size", minimum=1)
    (sh, sw) = as_pair(stride, "stride", minimum=1)
    (ph, pw) = as_pair(pad, "pad", minimum=0)
    out_h = output_size(image_shape[0], kh, sh, ph)
    out_w = output_size(image_shape[1], kw, sw, pw)
    i = _int(out_row, "out_row", 0)
    j = _int(out_col, "out_col", 0)
    if i >= out_h:
        raise ValueError(f"out_row {i} is outside the output, which has H' = {out_h} rows (0..{out_h - 1})")
    if j >= out_w:
        raise ValueError(f"out_col {j} is outside the output, which has W' = {out_w} columns (0..{out_w - 1})")
    return Window(i * sh, i * sh + kh, j * sw, j * sw + kw)


def vertical_edge_kernel(kernel_size=3):
    """A kernel that responds to left-to-right changes: every row runs from -1 to +1.

    Parameters
    ----------
    kernel_size : int or (KH, KW)

    Returns
    -------
    (KH, KW) ndarray of float64
        Each row is ``linspace(-1, 1, KW)``, e.g. ``[-1, 0, 1]`` for KW = 3, so the output is
        positive where ink starts (dark to the right) and negative where it ends. A kernel
        one column wide cannot see a left-right change; it is all ones and copies the pixels.
    """
    kh, kw = as_pair(kernel_size, "kernel_size", minimum=1)
    row = np.ones(1) if kw == 1 else np.linspace(-1.0, 1.0, kw)
    return np.tile(row, (kh, 1))


def _check_image(image):
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2:
        raise ValueError(
            f"image must be one 2-D (H, W) image, e.g. x[n, 0] of an (N, 1, H, W) batch; got shape {image.shape}"
        )
    return image


def _convolve(image, kernel, stride, pad):
    # One image, one channel, one filter, no bias: the (H', W') map cnnlib computes.
    out, _ = conv2d_forward(image[None, None], kernel[None, None], np.zeros(1), stride=stride, pad=pad)
    return out[0, 0]


def plot_receptive_field(image, kernel_size=3, stride=1, pad=1, out_row=0, out_col=0, *, kernel=None,
                         figsize=(10, 3.6)):
    """Draw the padded image with one window outlined, the kernel, and the output map.

    Parameters
    ----------
    image : (H, W) ndarray, one image (e.g. an 8x8 digit, ``x[n, 0]``).
    kernel_size, stride, pad : int or (vertical, horizontal) pair of ints.
    out_row, out_col : int, the output cell whose window is outlined.
    kernel : (KH, KW) ndarray, optional
        The filter to apply; by default `vertical_edge_kernel(kernel_size)`.

    Returns
    -------
    fig : matplotlib.figure.Figure
        Three panels; the suptitle holds the output-size formula with the numbers filled in.

    Raises
    ------
    ValueError
        If the kernel does not fit in the padded image, the cell is outside the output, or
        `kernel` does not have shape `kernel_size`.
    """
    image = _check_image(image)
    kh, kw = as_pair(kernel_size, "kernel_size", minimum=1)
    sh, sw = as_pair(stride, "stride", minimum=1)
    ph, pw = as_pair(pad, "pad", minimum=0)
    win = window_bounds(image.shape, (kh, kw), (sh, sw), (ph, pw), out_row, out_col)
    kernel = vertical_edge_kernel((kh, kw)) if kernel is None else np.asarray(kernel, dtype=np.float64)
    if kernel.shape != (kh, kw):
        raise ValueError(f"kernel must have shape kernel_size = {(kh, kw)}, got {kernel.shape}")
    H, W = image.shape
    xp = np.pad(image, ((ph, ph), (pw, pw)))  # (H + 2ph, W + 2pw)
    out = _convolve(image, kernel, (sh, sw), (ph, pw))  # (H', W')
    value = out[out_row, out_col]

    fig, (ax_in, ax_k, ax_out) = plt.subplots(1, 3, figsize=figsize, width_ratios=[1.2, 0.8, 1.0])

    ax_in.imshow(xp, cmap=GREYS, vmin=min(0.0, float(image.min())), vmax=max(1.0, float(image.max())))
    if ph or pw:
        # Tint the padding ring so the zeros it adds are not mistaken for blank paper.
        ring = np.ones_like(xp)
        ring[ph:ph + H, pw:pw + W] = 0.0
        ax_in.imshow(np.ma.masked_equal(ring, 0.0), cmap=ListedColormap([PAD_COLOUR]),
                     alpha=0.35, vmin=0.0, vmax=1.0)
        ax_in.add_patch(Rectangle((pw - 0.5, ph - 0.5), W, H, fill=False, edgecolor=PAD_COLOUR, lw=1.5,
                                  linestyle="--"))
    ax_in.add_patch(Rectangle((win.col_start - 0.5, win.row_start - 0.5), kw, kh, fill=False,
                              edgecolor=WINDOW_COLOUR, lw=3))
    ax_in.set_title(f"padded input {H + 2 * ph}x{W + 2 * pw}\nwindow rows {win.row_start}..{win.row_stop - 1}, "
                    f"cols {win.col_start}..{win.col_stop - 1}", fontsize=10)
    ax_in.set_xlabel("column of padded image")
    ax_in.set_ylabel("row of padded image")

    lo, hi = symmetric_limits(kernel)
    ax_k.imshow(kernel, cmap=DIVERGING, vmin=lo, vmax=hi)
    if kh * kw <= 25:
        for (r, c), v in np.ndenumerate(kernel):
            # White on the dark ends of the map, black on its light middle.
            ax_k.text(c, r, f"{v:.2g}", ha="center", va="center", fontsize=9,
                      color="white" if abs(v) > 0.6 * hi else "black")
    ax_k.set_title(f"kernel {kh}x{kw}", fontsize=10)
    ax_k.set_xlabel("q (kernel column)")
    ax_k.set_ylabel("p (kernel row)")

    lo, hi = symmetric_limits(out)
    im = ax_out.imshow(out, cmap=DIVERGING, vmin=lo, vmax=hi)
    ax_out.add_patch(Rectangle((out_col - 0.5, out_row - 0.5), 1, 1, fill=False, edgecolor=WINDOW_COLOUR, lw=3))
    ax_out.set_title(f"output {out.shape[0]}x{out.shape[1]}\nout[{out_row}, {out_col}] = {value:.2f}",
                     fontsize=10)
    ax_out.set_xlabel("column j")
    ax_out.set_ylabel("row i")
    fig.colorbar(im, ax=ax_out, shrink=0.8)

    for ax in (ax_in, ax_k, ax_out):
        # Integer ticks only: every tick is one pixel index.
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.yaxis.get_major_locator().set_params(integer=True)
    text = formula_text(H, kh, sh, ph, "H")
    if (W, kw, sw, pw) != (H, kh, sh, ph):
        text += "    " + formula_text(W, kw, sw, pw, "W")
    fig.suptitle(text)
    fig.tight_layout()
    return fig


class ConvExplorer(widgets.VBox):
    """Sliders for kernel size, stride, pad and the output cell, around `plot_receptive_field`.

    Made by `conv_explorer`. The widgets are attributes so code (and tests) can move them:
    ``kernel_slider``, ``stride_slider``, ``pad_slider``, ``row_slider``, ``col_slider``;
    ``text`` is the HTML widget with the formula and the window, ``plot`` the Output widget
    with the figure. After every change, ``window`` holds the current `Window` (None when
    the kernel does not fit), ``output_shape`` the (H', W') and ``message`` the error text
    (empty when the setting is valid).
    """

    def __init__(self, image, *, kernel_size=3, stride=1, pad=1, out_row=0, out_col=0, max_kernel=None,
                 max_stride=4, max_pad=3, figsize=(10, 3.6)):
        self.image = _check_image(image)
        H, W = self.image.shape
        max_kernel = max(H, W) + 1 if max_kernel is None else _int(max_kernel, "max_kernel", 1)
        max_stride = _int(max_stride, "max_stride", 1)
        max_pad = _int(max_pad, "max_pad", 0)
        # Sliders clamp out-of-range values silently; refuse them here instead.
        for name, value, low, high in [("kernel_size", kernel_size, 1, max_kernel), ("stride", stride, 1, max_stride),
                                       ("pad", pad, 0, max_pad)]:
            if _int(value, name, low) > high:
                raise ValueError(f"{name} = {value} is beyond its slider, which goes up to {high}")
        self.figsize = figsize
        self.window, self.output_shape, self.message, self.caption = None, None, "", ""
        style = {"description_width": "initial"}
        self.kernel_slider = widgets.IntSlider(kernel_size, min=1, max=max_kernel, description="kernel size",
                                               style=style, continuous_update=False)
        self.stride_slider = widgets.IntSlider(stride, min=1, max=max_stride, description="stride", style=style,
                                               continuous_update=False)
        self.pad_slider = widgets.IntSlider(pad, min=0, max=max_pad, description="pad", style=style,
                                            continuous_update=False)
        self.row_slider = widgets.IntSlider(0, min=0, max=0, description="output row i", style=style,
                                            continuous_update=False)
        self.col_slider = widgets.IntSlider(0, min=0, max=0, description="output column j", style=style,
                                            continuous_update=False)
        self.text = widgets.HTML()
        self.plot = widgets.Output()
        self._quiet = False
        self._set_ranges()
        if self.message == "":
            # Validate the requested cell now rather than letting the slider clamp it.
            window_bounds(self.image.shape, kernel_size, stride, pad, out_row, out_col)
            self._quiet = True
            self.row_slider.value, self.col_slider.value = out_row, out_col
            self._quiet = False
        super().__init__([
            widgets.HBox([self.kernel_slider, self.stride_slider, self.pad_slider]),
            widgets.HBox([self.row_slider, self.col_slider]),
            self.text,
            self.plot,
        ])
        self.add_class("cnn-explorer")
        for slider in (self.kernel_slider, self.stride_slider, self.pad_slider, self.row_slider, self.col_slider):
            slider.observe(self._on_change, names="value")
        self.refresh()

    def _set_ranges(self):
        """Fit the output-cell sliders to the current output size; record an error if none fits."""
        H, W = self.image.shape
        k, s, p = self.kernel_slider.value, self.stride_slider.value, self.pad_slider.value
        try:
            self.output_shape = (output_size(H, k, s, p), output_size(W, k, s, p))
        except ValueError as error:
            self.output_shape, self.window, self.message = None, None, str(error)
            self.row_slider.disabled = self.col_slider.disabled = True
            return
        self.message = ""
        self.row_slider.disabled = self.col_slider.disabled = False
        # Shrinking max clamps the value, which fires the value observer: keep it quiet here.
        self._quiet = True
        try:
            self.row_slider.max = self.output_shape[0] - 1
            self.col_slider.max = self.output_shape[1] - 1
        finally:
            self._quiet = False

    def _on_change(self, change):
        if self._quiet:
            return
        if change["owner"] in (self.kernel_slider, self.stride_slider, self.pad_slider):
            self._set_ranges()
        self.refresh()

    def refresh(self):
        """Redraw the text and the figure for the current slider values."""
        if self.message:
            self.text.value = f"<b>No output:</b> {html.escape(self.message, quote=False)}"
            self.caption = ""
            with self.plot:
                clear_output(wait=True)
            return
        H, W = self.image.shape
        k, s, p = self.kernel_slider.value, self.stride_slider.value, self.pad_slider.value
        i, j = self.row_slider.value, self.col_slider.value
        self.window = window_bounds(self.image.shape, k, s, p, i, j)
        win = self.window
        lines = [formula_text(H, k, s, p, "H"), formula_text(W, k, s, p, "W"),
                 f"output cell ({i}, {j}) reads padded rows {win.row_start}..{win.row_stop - 1}, "
                 f"columns {win.col_start}..{win.col_stop - 1}"]
        self.text.value = "<br>".join(f"<code>{html.escape(line, quote=False)}</code>" for line in lines)
        fig = plot_receptive_field(self.image, k, s, p, i, j, figsize=self.figsize)
        self.caption = fig.get_suptitle()
        with self.plot:
            clear_output(wait=True)
            display(fig)
        plt.close(fig)


def conv_explorer(image, *, kernel_size=3, stride=1, pad=1, out_row=0, out_col=0, **options):
    """An ipywidgets explorer: slide a convolution window over `image`.

    Sliders set the kernel size, stride and pad (the kernel is `vertical_edge_kernel`) and
    which output cell to show; the figure outlines that cell's window on the padded image and
    the cell on the output map, and the text fills the numbers into
    ``H' = (H + 2*pad - KH) // stride + 1``. A kernel larger than the padded image shows a
    message instead of a figure.

    Parameters
    ----------
    image : (H, W) ndarray, e.g. one 8x8 digit ``x[n, 0]``.
    kernel_size, stride, pad, out_row, out_col : int, the starting setting.
    **options : max_kernel, max_stride, max_pad (slider ranges) and figsize.

    Returns
    -------
    ConvExplorer, an ipywidgets VBox with CSS class "cnn-explorer"; display it (or leave it
    last in a cell).
    """
    return ConvExplorer(image, kernel_size=kernel_size, stride=stride, pad=pad, out_row=out_row, out_col=out_col,
                        **options)
