"""Static figures for the lessons, drawn with matplotlib in colour-blind safe colours.

Every function returns the matplotlib Figure and gives it a title and labelled axes, so a
lesson can show it as is or add to it. Sequential data (images, activations) use viridis,
signed data (weights, gradients) the diverging PuOr map centred on zero, and categories
the Okabe-Ito palette; all three read correctly under the common colour-vision deficiencies.
"""

import matplotlib.pyplot as plt
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
               size=1.4):
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
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + 0.5), squeeze=False)
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
        fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8)
    return fig
