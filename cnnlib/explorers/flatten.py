"""Flatten explorer: which (c, h, w) cell of a feature volume lands at which flat index.

Shapes: one sample's feature volume (C, H, W), flattened to D = C*H*W entries.

In C order (NumPy's default, and cnnlib's flatten_forward) the last axis varies fastest:
cell (c, h, w) goes to i = (c*H + h)*W + w. In F order the first axis varies fastest:
i = (w*H + h)*C + c. Either is a fixed relabelling of the same numbers; the index functions
here spell the arithmetic out and are checked against np.ravel_multi_index / np.unravel_index.
"""

import base64
import functools
import html
import io
import math
import operator

import numpy as np

from ..plots import SEQUENTIAL

ORDERS = ("C", "F")
_MAX_CELLS = 256  # beyond this a picture of every cell is unreadable
_MAX_LABELS = 64  # beyond this the index numbers no longer fit in the cells


def _check_shape(shape):
    """Return shape as a tuple (C, H, W) of positive ints, or raise ValueError."""
    try:
        dims = tuple(operator.index(s) for s in shape)
    except TypeError:
        raise ValueError(f"shape must be (C, H, W), three positive integers, got {shape!r}") from None
    if len(dims) != 3 or min(dims) < 1:
        raise ValueError(f"shape must be (C, H, W), three positive integers, got {shape!r}")
    return dims


def _check_order(order):
    if order not in ORDERS:
        raise ValueError(f"order must be 'C' or 'F', got {order!r}")
    return order


def _check_int(value, name):
    try:
        return operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer, got {value!r}") from None


def flat_index(c, h, w, shape, order="C"):
    """Flat position of cell (c, h, w) of a (C, H, W) volume.

    Parameters
    ----------
    c, h, w : int, with 0 <= c < C, 0 <= h < H, 0 <= w < W.
    shape : (C, H, W) tuple of positive ints.
    order : "C" (w varies fastest, as flatten_forward) or "F" (c varies fastest).

    Returns
    -------
    i : int in 0..C*H*W-1; (c*H + h)*W + w in C order, (w*H + h)*C + c in F order.
    """
    C, H, W = _check_shape(shape)
    _check_order(order)
    for name, value, size in (("c", c, C), ("h", h, H), ("w", w, W)):
        value = _check_int(value, name)
        if not 0 <= value < size:
            raise ValueError(f"{name} = {value} is out of range for shape {(C, H, W)}: need 0 <= {name} < {size}")
    c, h, w = int(c), int(h), int(w)
    if order == "C":
        return (c * H + h) * W + w
    return (w * H + h) * C + c


def unravel(i, shape, order="C"):
    """The (c, h, w) cell that flat position i of a (C, H, W) volume came from.

    Parameters
    ----------
    i : int in 0..C*H*W-1.
    shape : (C, H, W) tuple of positive ints.
    order : "C" or "F", as in flat_index.

    Returns
    -------
    (c, h, w) : tuple of ints, with flat_index(c, h, w, shape, order) == i.
    """
    C, H, W = _check_shape(shape)
    _check_order(order)
    i = _check_int(i, "i")
    D = C * H * W
    if not 0 <= i < D:
        raise ValueError(f"flat index i = {i} is out of range for shape {(C, H, W)}: need 0 <= i < {D}")
    # Peel off the fastest axis first with divmod, the inverse of the nested products above.
    if order == "C":
        rest, w = divmod(i, W)
        c, h = divmod(rest, H)
    else:
        rest, c = divmod(i, C)
        w, h = divmod(rest, H)
    return c, h, w


def index_map(shape, order="C"):
    """(C, H, W) int array holding each cell's own flat index in the given order."""
    shape = _check_shape(shape)
    _check_order(order)
    return np.arange(math.prod(shape)).reshape(shape, order=order)


def formula(c, h, w, shape, order="C"):
    """The index arithmetic for one cell as text, e.g. "17 = (1*3 + 1)*4 + 1" for C order."""
    C, H, W = _check_shape(shape)
    i = flat_index(c, h, w, shape, order)
    if order == "C":
        return f"{i} = ({c}*{H} + {h})*{W} + {w}"
    return f"{i} = ({w}*{H} + {h})*{C} + {c}"


def describe(c, h, w, shape, order="C"):
    """One line linking a cell and its flat index, e.g.
    "flat index 17 ↔ (c=1, h=1, w=1), C order: 17 = (1*3 + 1)*4 + 1"."""
    i = flat_index(c, h, w, shape, order)
    return f"flat index {i} ↔ (c={c}, h={h}, w={w}), {order} order: {formula(c, h, w, shape, order)}"


def plot_index_map(shape=(2, 3, 4), order="C", highlight=None, *, fig=None):
    """Draw a (C, H, W) volume as C grids coloured by flat index, above the flat vector.

    Parameters
    ----------
    shape : (C, H, W) tuple of positive ints, at most 256 cells in all.
    order : "C" or "F", the order the volume is flattened in.
    highlight : (c, h, w) tuple, optional; this cell and its flat position are outlined
        and joined by an arrow.
    fig : matplotlib Figure to draw into, optional (default: a new pyplot figure).

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    shape = _check_shape(shape)
    _check_order(order)
    if highlight is not None:
        _check_cell(highlight, shape, order)
    if math.prod(shape) > _MAX_CELLS:
        raise ValueError(f"shape {shape} has {math.prod(shape)} cells; draw at most {_MAX_CELLS} so every cell stays visible")
    if fig is None:
        fig = plt.figure(figsize=(8, 3.2), layout="constrained")
    panels, strip = _draw_map(fig, shape, order)
    _draw_highlight(fig, panels, strip, shape, order, highlight)
    return fig


def _check_cell(cell, shape, order):
    if len(cell) != 3:
        raise ValueError(f"highlight must be a cell (c, h, w), got {cell!r}")
    flat_index(*cell, shape, order)  # raises ValueError for a cell outside the volume


def _draw_map(fig, shape, order):
    """The colour-coded grids and flat strip, without any highlight; returns (panels, strip)."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import Normalize

    C, H, W = shape
    D = C * H * W
    idx = index_map(shape, order)
    norm = Normalize(vmin=0, vmax=max(D - 1, 1))
    cmap = plt.get_cmap(SEQUENTIAL)
    grid = fig.add_gridspec(2, C, height_ratios=[max(H, 2), 1.4])
    panels = [fig.add_subplot(grid[0, k]) for k in range(C)]
    strip = fig.add_subplot(grid[1, :])
    labels = D <= _MAX_LABELS

    def label(ax, x, y, value, size):
        # Dark text on the light end of viridis, light text on the dark end.
        colour = "black" if norm(value) > 0.55 else "white"
        ax.text(x, y, str(value), ha="center", va="center", fontsize=size, color=colour)

    for k, ax in enumerate(panels):
        ax.imshow(idx[k], cmap=cmap, norm=norm)
        ax.set_title(f"channel c = {k}", fontsize=9)
        ax.set_xticks(range(W))
        ax.set_yticks(range(H))
        ax.tick_params(labelsize=7, length=0)
        if labels:
            for h in range(H):
                for w in range(W):
                    label(ax, w, h, int(idx[k, h, w]), 8)
    panels[0].set_xlabel("w")
    panels[0].set_ylabel("h")

    strip.imshow(np.arange(D)[None, :], cmap=cmap, norm=norm, aspect="auto")
    strip.set_yticks([])
    strip.set_xticks(range(0, D, max(1, D // 12)))
    strip.tick_params(labelsize=7)
    fastest = "w" if order == "C" else "c"
    strip.set_xlabel(f"position i in the flat vector ({order} order: {fastest} varies fastest)")
    if labels:
        for i in range(D):
            label(strip, i, 0, i, 7 if D <= 32 else 6)
    return panels, strip


def _draw_highlight(fig, panels, strip, shape, order, cell):
    """Outline `cell` and its flat position, join them by an arrow and set the title.

    Returns the artists added, so a caller can remove them and highlight another cell.
    """
    from matplotlib.patches import ConnectionPatch, Rectangle

    if cell is None:
        fig.suptitle(f"{order} order: a (C, H, W) = {shape} volume and its flat vector of {math.prod(shape)}")
        return []
    c, h, w = (int(v) for v in cell)
    i = flat_index(c, h, w, shape, order)
    artists = []
    for ax, xy in ((panels[c], (w - 0.5, h - 0.5)), (strip, (i - 0.5, -0.5))):
        # A black outline with a white core stays visible on both ends of the colour map.
        artists.append(ax.add_patch(Rectangle(xy, 1, 1, fill=False, edgecolor="black", linewidth=3.5)))
        artists.append(ax.add_patch(Rectangle(xy, 1, 1, fill=False, edgecolor="white", linewidth=1.2)))
    artists.append(fig.add_artist(ConnectionPatch(xyA=(w, h + 0.5), coordsA=panels[c].transData, xyB=(i, -0.5),
                                                  coordsB=strip.transData, arrowstyle="->", color="black",
                                                  linewidth=1.2)))
    fig.suptitle(f"{order} order: cell (c={c}, h={h}, w={w}) ↔ flat index {i}")
    return artists


class _Picture:
    """The explorer's index maps, drawn once per order; only the highlight is redrawn.

    The figures are plain matplotlib Figures, not pyplot ones, so nothing is left open.
    """

    def __init__(self, shape):
        self.shape = shape
        self._maps = {}
        self._highlight = []

    def html(self, order, cell):
        """The map with `cell` highlighted, as an <img> tag holding a PNG."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        if order not in self._maps:
            fig = Figure(figsize=(7, 2.8), dpi=90, layout="constrained")
            FigureCanvasAgg(fig)  # attaches itself as fig.canvas
            panels, strip = _draw_map(fig, self.shape, order)
            _draw_highlight(fig, panels, strip, self.shape, order, None)  # a title to leave room for
            fig.draw_without_rendering()  # let the layout engine place the axes once ...
            fig.set_layout_engine("none")  # ... and keep them there, a highlight needs no new layout
            self._maps[order] = (fig, panels, strip)
        fig, panels, strip = self._maps[order]
        for artist in self._highlight:
            artist.remove()
        self._highlight = _draw_highlight(fig, panels, strip, self.shape, order, cell)
        buffer = io.BytesIO()
        fig.canvas.print_png(buffer)  # one draw; savefig would draw twice
        data = base64.b64encode(buffer.getvalue()).decode("ascii")
        alt = html.escape(describe(*cell, self.shape, order))
        return f'<img src="data:image/png;base64,{data}" alt="{alt}">'


@functools.cache
def _make_widget_class():
    # Built on first use so that importing this module does not import ipywidgets.
    import ipywidgets as widgets

    class FlattenExplorer(widgets.VBox):
        """A flat-index slider and c/h/w sliders kept in step, an order toggle, and the picture.

        Attributes: flat_slider, c_slider, h_slider, w_slider (IntSlider), order_toggle
        (ToggleButtons), text (HTML with the index arithmetic), picture (HTML with the figure).
        """

        def __init__(self, shape, order, index):
            super().__init__()
            self.shape = shape
            C, H, W = shape
            c, h, w = unravel(index, shape, order)
            # A picture takes about 0.15 s to draw: update on release, not on every step of a drag.
            slow = {"continuous_update": False}
            self.order_toggle = widgets.ToggleButtons(options=list(ORDERS), value=order, description="order",
                                                      tooltips=["C order: w varies fastest", "F order: c varies fastest"])
            self.flat_slider = widgets.IntSlider(value=index, min=0, max=C * H * W - 1, description="flat index",
                                                 style={"description_width": "initial"}, **slow)
            self.c_slider = widgets.IntSlider(value=c, min=0, max=C - 1, description="c", disabled=C == 1,
                                              **slow)
            self.h_slider = widgets.IntSlider(value=h, min=0, max=H - 1, description="h", disabled=H == 1,
                                              **slow)
            self.w_slider = widgets.IntSlider(value=w, min=0, max=W - 1, description="w", disabled=W == 1,
                                              **slow)
            self.text = widgets.HTML()
            self.picture = widgets.HTML()
            self._picture = _Picture(shape)
            # Setting one side's sliders from the other fires their observers too; this flag
            # makes those echoes return at once instead of bouncing back and forth.
            self._syncing = False
            self.flat_slider.observe(self._flat_moved, names="value")
            for slider in (self.c_slider, self.h_slider, self.w_slider):
                slider.observe(self._cell_moved, names="value")
            self.order_toggle.observe(self._order_changed, names="value")
            self.children = [
                self.order_toggle,
                self.flat_slider,
                widgets.HBox([self.c_slider, self.h_slider, self.w_slider]),
                self.text,
                self.picture,
            ]
            self.add_class("cnn-explorer")
            self._refresh()

        @property
        def cell(self):
            return self.c_slider.value, self.h_slider.value, self.w_slider.value

        def _set_quietly(self, pairs):
            self._syncing = True
            try:
                for slider, value in pairs:
                    slider.value = value
            finally:
                self._syncing = False

        def _flat_moved(self, change):
            if self._syncing:
                return
            c, h, w = unravel(change["new"], self.shape, self.order_toggle.value)
            self._set_quietly([(self.c_slider, c), (self.h_slider, h), (self.w_slider, w)])
            self._refresh()

        def _cell_moved(self, change):
            if self._syncing:
                return
            self._set_quietly([(self.flat_slider, flat_index(*self.cell, self.shape, self.order_toggle.value))])
            self._refresh()

        def _order_changed(self, change):
            # Keep the chosen cell and show where the new order puts it.
            self._set_quietly([(self.flat_slider, flat_index(*self.cell, self.shape, change["new"]))])
            self._refresh()

        def _refresh(self):
            order, (c, h, w) = self.order_toggle.value, self.cell
            i = self.flat_slider.value
            rule = "(c*H + h)*W + w" if order == "C" else "(w*H + h)*C + c"
            self.text.value = (
                f"<b>flat index {i} ↔ (c={c}, h={h}, w={w})</b>, "
                f"{order} order: <code>{formula(c, h, w, self.shape, order)}</code> "
                f"(i = {rule} for (C, H, W) = {self.shape})"
            )
            self.picture.value = self._picture.html(order, (c, h, w))

    return FlattenExplorer


def flatten_explorer(shape=(2, 3, 4), *, order="C", index=0):
    """Interactive map between the cells of a (C, H, W) volume and its flat vector.

    Move the "flat index" slider to see which (c, h, w) cell an entry came from, or the c, h, w
    sliders to see where a cell goes; the "order" toggle switches between C and F order. The
    two sets of sliders always agree, and the text and picture follow them.

    Parameters
    ----------
    shape : (C, H, W) tuple of positive ints, at most 256 cells.
    order : "C" or "F", the starting order.
    index : int, the starting flat index.

    Returns
    -------
    explorer : ipywidgets.VBox subclass with CSS class "cnn-explorer"; its sliders are
        flat_slider, c_slider, h_slider, w_slider and its toggle order_toggle.
    """
    shape = _check_shape(shape)
    _check_order(order)
    if math.prod(shape) > _MAX_CELLS:
        raise ValueError(f"shape {shape} has {math.prod(shape)} cells; the explorer shows at most {_MAX_CELLS}")
    unravel(index, shape, order)  # a clear ValueError for a bad starting index
    return _make_widget_class()(shape, order, _check_int(index, "index"))
