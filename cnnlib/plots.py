"""Static figures for the lessons, drawn with matplotlib in colour-blind safe colours.

Every function returns the matplotlib Figure and gives it a title and labelled axes, so a
lesson can show it as is or add to it. Sequential data (images, activations) use viridis,
signed data (weights, gradients) the diverging PuOr map centred on zero, and categories
the Okabe-Ito palette; all three read correctly under the common colour-vision deficiencies.
"""

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator
import numpy as np

SEQUENTIAL = "viridis"
DIVERGING = "PuOr"
GREYS = "gray_r"  # digits as ink on paper
# Okabe & Ito (2008), "Color Universal Design": eight colours distinguishable by all viewers.
OKABE_ITO = ["#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#000000"]


def symmetric_limits(a):
    """Return ``(-m, m)`` with ``m = max |a|`` (1 if a is all zero), to centre a diverging map."""
    m = float(np.max(np.abs(a))) if np.size(a) else 0.0
    return (-m, m) if m > 0 else (-1.0, 1.0)


def image_grid(images, *, titles=None, suptitle, ncols=8, cmap=GREYS, signed=False, colorbar=False,
               colorbar_label=None, size=1.4):
    """Show a stack of 2-D images in a grid, one panel each.

    Parameters
    ----------
    images : (K, H, W) ndarray
        The images, e.g. digits ``x[:K, 0]`` or the C feature maps of one sample.
    titles : sequence of str, optional
        One short title per panel.
    suptitle : str
        The figure's title.
    signed : bool
        Use the diverging map with limits symmetric about zero (for weights and gradients).
    colorbar : bool
        Add one colour bar shared by all panels (shared limits are used either way).
    colorbar_label : str, optional
        What the colours measure, e.g. "weight"; written along the colour bar.

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    images = np.asarray(images)
    if images.ndim != 3:
        raise ValueError(f"images must be (K, H, W), got shape {images.shape}")
    k = images.shape[0]
    ncols = max(1, min(ncols, k))
    nrows = -(-k // ncols)
    # Constrained layout makes room for multi-line panel titles under the figure title.
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + 0.5), squeeze=False,
                             layout="constrained")
    if signed:
        cmap = DIVERGING if cmap == GREYS else cmap
        vmin, vmax = symmetric_limits(images)
    else:
        vmin, vmax = float(images.min()), float(images.max())
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= k:
            ax.axis("off")
            continue
        im = ax.imshow(images[i], cmap=cmap, vmin=vmin, vmax=vmax)
        if titles is not None:
            ax.set_title(titles[i], fontsize=9)
    # Pixel axes: w runs left to right, h top to bottom, as in the (h, w) index.
    axes[-1, 0].set_xlabel("w")
    axes[-1, 0].set_ylabel("h")
    fig.suptitle(suptitle)
    if colorbar:
        fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, label=colorbar_label)
    return fig


def confusion_matrix(y_true, y_pred, n_classes=10):
    """Count how often each true class was predicted as each class.

    Parameters
    ----------
    y_true, y_pred : (N,) ndarray of integer labels in 0..n_classes-1.
    n_classes : int >= 1, K.

    Returns
    -------
    counts : (K, K) int64 ndarray; ``counts[t, p]`` is the number of samples of true class t
        predicted as p. Rows are true classes, so the diagonal holds the correct predictions,
        ``counts.sum()`` is N and ``counts.trace()`` the number right.
    """
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 1:
        raise ValueError(f"n_classes must be an int >= 1, got {n_classes!r}")
    n_classes = int(n_classes)
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if y.ndim != 1:
            raise ValueError(f"{name} must be (N,), one label per sample, got shape {y.shape}")
        if y.dtype == np.bool_ or not np.issubdtype(y.dtype, np.integer):
            raise TypeError(f"{name} must hold integer class labels, got dtype {y.dtype}")
        if y.size and (y.min() < 0 or y.max() >= n_classes):
            raise ValueError(f"{name} labels must be in 0..{n_classes - 1}, got values from {y.min()} to {y.max()}")
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true has {len(y_true)} labels but y_pred has {len(y_pred)}")
    # Each (true, predicted) pair gets its own bin, t * K + p, which is the flat index of counts[t, p].
    flat = np.bincount(y_true.astype(np.int64) * n_classes + y_pred, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes).astype(np.int64)


def plot_confusion_matrix(y_true, y_pred, *, n_classes=10, class_name="digit", title="Confusion matrix",
                          cmap="cividis"):
    """Draw the confusion matrix as a heat map with every count written in its cell.

    Parameters
    ----------
    y_true, y_pred : (N,) ndarray of integer labels in 0..n_classes-1.
    n_classes : int >= 1, K.
    class_name : str, names the axes: "predicted <class_name>" and "true <class_name>".
    title : str; the number of correct predictions is appended to it.
    cmap : str, a sequential colour map (cividis or viridis).

    Returns
    -------
    fig : matplotlib.figure.Figure, with the (K, K) counts as its image (``fig.axes[0].images[0]``).
    """
    counts = confusion_matrix(y_true, y_pred, n_classes)
    fig, ax = plt.subplots(figsize=(4.8, 4.2))
    im = ax.imshow(counts, cmap=cmap, vmin=0)
    # Light text on the dark end of the map, dark text on the light end, so every count reads.
    dark = counts < counts.max() / 2
    for (t, p), c in np.ndenumerate(counts):
        ax.text(p, t, str(c), ha="center", va="center", fontsize=8, color="white" if dark[t, p] else "black")
    ticks = np.arange(n_classes)
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)
    ax.set_xlabel(f"predicted {class_name}")
    ax.set_ylabel(f"true {class_name}")
    ax.set_title(f"{title} ({np.trace(counts)}/{counts.sum()} correct)")
    fig.colorbar(im, ax=ax, shrink=0.8, label="count")
    return fig


def plot_history(history, *, val_label="validation", title="Training history"):
    """Plot the loss and the accuracy per epoch, for training and (if present) validation.

    Parameters
    ----------
    history : dict of lists, as returned by `cnnlib.fit`: "loss" and "accuracy", and
        optionally "val_loss" and "val_accuracy", one entry per epoch.
    val_label : str, the name of the held-out data in the legend (e.g. "validation", "test").
    title : str, the figure's title.

    Returns
    -------
    fig : matplotlib.figure.Figure with two axes: loss, then accuracy, against the epoch (1, 2, ...).
    """
    for key in ("loss", "accuracy"):
        if key not in history:
            raise ValueError(f"history must have the key {key!r} (as cnnlib.fit returns), got keys {sorted(history)}")
    n = len(history["loss"])
    if n == 0:
        raise ValueError("history holds no epochs")
    has_val = "val_loss" in history or "val_accuracy" in history
    keys = ["loss", "accuracy"] + (["val_loss", "val_accuracy"] if has_val else [])
    for key in keys:
        if key not in history:
            raise ValueError(f"history has validation entries but no {key!r}")
        if len(history[key]) != n:
            raise ValueError(f"history[{key!r}] has {len(history[key])} entries, history['loss'] has {n}")
    epochs = np.arange(1, n + 1)
    fig, axes = plt.subplots(1, 2, figsize=(8, 3))
    panels = [("loss", "loss (mean cross-entropy)"), ("accuracy", "accuracy (fraction correct)")]
    for ax, (key, ylabel) in zip(axes, panels):
        # Colour and line style both differ, so the two curves stay apart in grey print too.
        ax.plot(epochs, history[key], color=OKABE_ITO[4], marker="o", markersize=3, label="training")
        if has_val:
            ax.plot(epochs, history["val_" + key], color=OKABE_ITO[5], linestyle="--", marker="s",
                    markersize=3, label=val_label)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
        ax.set_ylabel(ylabel)
        ax.set_title(key.capitalize())
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def image_and_maps(image, maps, *, suptitle, image_title="input", signed=False, ncols=8,
                   cbar_label="value", limit=None, size=0.8):
    """Show one input image beside a stack of feature maps computed from it.

    The image (a digit, in grey) fills the left column; the maps fill a grid to its right,
    all with one colour scale: PuOr centred on zero when `signed` (gradients), viridis from
    the smallest to the largest value otherwise (activations).

    Parameters
    ----------
    image : (H, W) ndarray, e.g. ``x[n, 0]``.
    maps : (C, H', W') ndarray, e.g. the C feature maps of that sample, or their gradients.
    suptitle : str, the figure's title.
    image_title : str, the title above the image.
    signed : bool, use the diverging map with limits symmetric about zero.
    ncols : int, maps per row.
    cbar_label : str, what the colour bar measures.
    limit : float > 0, optional
        With `signed`, draw the maps from -limit to +limit instead of +-max|maps|, so that
        several figures share one scale and their colours can be compared.

    Returns
    -------
    fig : matplotlib.figure.Figure; ``fig.axes[0]`` is the image, then one axes per map,
        then the colour bar.
    """
    image, maps = np.asarray(image), np.asarray(maps)
    if image.ndim != 2:
        raise ValueError(f"image must be (H, W), got shape {image.shape}")
    if maps.ndim != 3:
        raise ValueError(f"maps must be (C, H, W), got shape {maps.shape}")
    c = maps.shape[0]
    ncols = max(1, min(ncols, c))
    nrows = -(-c // ncols)
    span = nrows  # the image is as tall as the grid of maps, and square
    # Each map cell is `size` wide and a little taller (room for its title); the extra inches
    # hold the colour bar and the figure's title.
    fig = plt.figure(figsize=(size * (ncols + span) + 1.3, size * 1.3 * span + 0.6))
    grid = fig.add_gridspec(nrows, ncols + 1, width_ratios=[span] + [1] * ncols,
                            wspace=0.2, hspace=0.45, left=0.04, right=0.88, top=0.8, bottom=0.08)
    ax_img = fig.add_subplot(grid[:, 0])
    ax_img.imshow(image, cmap=GREYS)
    ax_img.set_title(image_title, fontsize=9)
    ax_img.set_xlabel("w")
    ax_img.set_ylabel("h")
    ax_img.set_xticks([])
    ax_img.set_yticks([])
    if limit is not None and not (signed and np.isfinite(limit) and limit > 0):
        raise ValueError(f"limit must be a positive number and needs signed=True, got limit={limit!r}, "
                         f"signed={signed!r}")
    if signed:
        vmin, vmax = symmetric_limits(maps) if limit is None else (-float(limit), float(limit))
        cmap = DIVERGING
    else:
        cmap, vmin, vmax = SEQUENTIAL, float(maps.min()), float(maps.max())
    map_axes = []
    for i in range(c):
        ax = fig.add_subplot(grid[i // ncols, 1 + i % ncols])
        im = ax.imshow(maps[i], cmap=cmap, vmin=vmin, vmax=vmax)
        ax.set_title(f"c={i}", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
        map_axes.append(ax)
    map_axes[(nrows - 1) * ncols].set_xlabel("w", fontsize=8)
    map_axes[(nrows - 1) * ncols].set_ylabel("h", fontsize=8)
    fig.colorbar(im, ax=map_axes, shrink=0.9, label=cbar_label)
    fig.suptitle(suptitle)
    return fig


def plot_im2col(image, filters, *, windows=((0, 0), (1, 2), (2, 1)), title=None):
    """Picture im2col for one grey image: windows become columns, filters rows, one product.

    Left, the image with a few windows outlined; right, the matrix product laid out so that
    row f of the filter matrix and column (i, j) of the window matrix meet at output f, (i, j).
    Stride 1, no padding; every number is printed in its cell.

    Parameters
    ----------
    image : (H, W) ndarray, small (e.g. 4x4) so that every number can be read.
    filters : (F, KH, KW) ndarray.
    windows : sequence of (i, j), the windows to outline (at most 3), each in its own colour.
    title : str, optional; the figure's title.

    Returns
    -------
    fig : matplotlib.figure.Figure; ``fig.axes[0]`` the image, ``fig.axes[1]`` the product.
    """
    from matplotlib.patches import Rectangle

    image, filters = np.asarray(image), np.asarray(filters)
    if image.ndim != 2 or filters.ndim != 3:
        raise ValueError(f"image must be (H, W) and filters (F, KH, KW), got shapes {image.shape} and "
                         f"{filters.shape}")
    (H, W), (F, KH, KW) = image.shape, filters.shape
    Ho, Wo = H - KH + 1, W - KW + 1
    if Ho < 1 or Wo < 1:
        raise ValueError(f"a {KH}x{KW} filter does not fit in a {H}x{W} image")
    windows = [tuple(int(v) for v in ij) for ij in windows]
    if len(windows) > 3 or any(not (0 <= i < Ho and 0 <= j < Wo) for i, j in windows):
        raise ValueError(f"windows must be at most 3 positions (i, j) with i < {Ho}, j < {Wo}, got {windows}")
    K, P = KH * KW, Ho * Wo
    cols = np.stack([image[i:i + KH, j:j + KW].ravel() for i in range(Ho) for j in range(Wo)], axis=1)
    w2 = filters.reshape(F, K)
    out = w2 @ cols
    colour = {i * Wo + j: OKABE_ITO[n] for n, (i, j) in enumerate(windows)}

    def fmt(v):
        return f"{v:.0f}" if float(v).is_integer() else f"{v:.1f}"

    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(3.2 + 0.5 * (K + P), 0.5 * (K + F) + 2.2),
                                   width_ratios=[W, K + P + 1.5], constrained_layout=True)
    ax0.imshow(np.zeros_like(image, dtype=float), cmap=GREYS, vmin=0, vmax=1)
    for (h, w), v in np.ndenumerate(image):
        ax0.text(w, h, fmt(v), ha="center", va="center", fontsize=9)
    for n, (i, j) in enumerate(windows):
        inset = 0.06 * (n + 1)
        ax0.add_patch(Rectangle((j - 0.5 + inset, i - 0.5 + inset), KW - 2 * inset, KH - 2 * inset,
                                fill=False, lw=2.5, ec=OKABE_ITO[n]))
    ax0.set_title(f"image {H}x{W}, {KH}x{KW} windows", fontsize=10)
    ax0.set_xlabel("column")
    ax0.set_ylabel("row")
    ax0.set_xticks(range(W))
    ax0.set_yticks(range(H))

    def grid(x0, y0, values, fills):
        for (r, c), v in np.ndenumerate(values):
            ax1.add_patch(Rectangle((x0 + c, y0 + r), 1, 1, fc=fills(r, c), ec="0.5", lw=0.8))
            ax1.text(x0 + c + 0.5, y0 + r + 0.5, fmt(v), ha="center", va="center", fontsize=8)

    x_cols, y_out = K + 1.5, K + 1  # cols top right, w2 bottom left, out bottom right
    grid(x_cols, 0, cols, lambda r, c: colour.get(c, "white"))
    grid(0, y_out, w2, lambda r, c: "0.9")
    grid(x_cols, y_out, out, lambda r, c: colour.get(c, "white"))
    ax1.text(x_cols + P / 2, -0.4, f"window matrix: one column per window ({K} x {P})",
             ha="center", va="bottom", fontsize=9)
    ax1.text(K / 2, y_out - 0.4, f"filter matrix:\none row per filter ({F} x {K})",
             ha="center", va="bottom", fontsize=9)
    ax1.text(x_cols + P / 2, y_out + F + 0.3, f"output = filters @ windows ({F} x {P})",
             ha="center", va="top", fontsize=9)
    ax1.set_xlim(-0.2, x_cols + P + 0.2)
    ax1.set_ylim(y_out + F + 1.2, -1.2)
    ax1.set_aspect("equal")
    ax1.set_xticks([x_cols + c + 0.5 for c in range(P)], [f"{c // Wo},{c % Wo}" for c in range(P)], fontsize=8)
    ax1.set_yticks([r + 0.5 for r in range(K)] + [y_out + f + 0.5 for f in range(F)],
                   [f"{r // KW},{r % KW}" for r in range(K)] + [f"filter {f}" for f in range(F)], fontsize=8)
    ax1.set_xlabel("window (i, j): its top-left corner")
    ax1.set_ylabel("pixel (p, q) in the window  /  filter")
    for side in ("top", "right"):
        ax1.spines[side].set_visible(False)
    ax1.set_title("windows become columns, filters rows: one matrix product", fontsize=10)
    fig.suptitle(title or "im2col: a convolution as one matrix product")
    return fig
