"""The pooling explorer: window geometry, winners and routed gradients against hand-worked
values and against cnnlib.pool, the figures, the widget's controls, and its error messages.

A picture takes about 0.3 s to draw, so the test of the widget's state replaces it with a text
naming what it would show (the `sketch` fixture); one test draws the real picture.
"""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from cnnlib import avgpool2d_backward, avgpool2d_forward, maxpool2d_backward, maxpool2d_forward  # noqa: E402
import cnnlib.explorers.pool  # noqa: E402
from cnnlib.explorers import pool_explorer  # noqa: E402
from cnnlib.explorers.pool import (  # noqa: E402
    describe_window,
    plot_pool_routing,
    plot_pool_window,
    pool_window,
    route_gradient,
)

# 4x4, 2x2 windows side by side: maxima 4 at (1, 0), 5 at (1, 3), 6 at (3, 0), 7 at (2, 2).
X4 = np.array([[1, 3, 2, 0],
               [4, 2, 1, 5],
               [0, 1, 7, 2],
               [6, 2, 3, 3]], dtype=float)

# 4x4 with ties: window 0 has 5 twice, window 1 is all zeros, window 3 has 8 twice.
XTIE = np.array([[1, 5, 0, 0],
                 [5, 2, 0, 0],
                 [3, 1, 4, 8],
                 [0, 2, 8, 1]], dtype=float)

# 5x5, 3x3 windows with stride 2 overlap on the middle row and column; the 9 at (2, 2)
# is in all four windows and wins each one.
X5 = np.array([[1, 2, 0, 1, 3],
               [0, 4, 1, 2, 0],
               [2, 1, 9, 0, 1],
               [0, 3, 2, 5, 1],
               [1, 0, 2, 1, 4]], dtype=float)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture
def sketch(monkeypatch):
    """The explorer's picture, not drawn: plot_pool_window gives a text naming its setting, and
    that text is the picture."""
    monkeypatch.setattr(cnnlib.explorers.pool, "plot_pool_window", lambda x, **setting: drawn(**setting))
    monkeypatch.setattr(cnnlib.explorers.pool, "_png_html", lambda fig, alt: fig)


def drawn(size, stride, mode, window, dout):
    return f"{mode} pooling, size {size}, stride {stride}, window {window}, dout {dout}"


@pytest.mark.parametrize("x, size, stride, window, rows, cols, winner, value", [
    (X4, 2, None, 0, (0, 2), (0, 2), (1, 0), 4.0),
    (X4, 2, None, 1, (0, 2), (2, 4), (1, 3), 5.0),
    (X4, 2, None, 2, (2, 4), (0, 2), (3, 0), 6.0),
    (X4, 2, None, 3, (2, 4), (2, 4), (2, 2), 7.0),
    # Ties: the first maximum in row-major order wins.
    (XTIE, 2, 2, 0, (0, 2), (0, 2), (0, 1), 5.0),
    (XTIE, 2, 2, 1, (0, 2), (2, 4), (0, 2), 0.0),
    (XTIE, 2, 2, 3, (2, 4), (2, 4), (2, 3), 8.0),
    # Overlapping 3x3 windows, stride 2: all four share (2, 2).
    (X5, 3, 2, 0, (0, 3), (0, 3), (2, 2), 9.0),
    (X5, 3, 2, 1, (0, 3), (2, 5), (2, 2), 9.0),
    (X5, 3, 2, 2, (2, 5), (0, 3), (2, 2), 9.0),
    (X5, 3, 2, 3, (2, 5), (2, 5), (2, 2), 9.0),
    # Overlapping 2x2 windows with stride 1 on X4: a 3x3 output, window 4 is its centre.
    (X4, 2, 1, 4, (1, 3), (1, 3), (2, 2), 7.0),
    (X4, 2, 1, 5, (1, 3), (2, 4), (2, 2), 7.0),
    # Stride larger than the window leaves gaps: window 1 starts at column 3.
    (X5, 2, 3, 1, (0, 2), (3, 5), (0, 4), 3.0),
    # Non-square window (rows, columns) and stride.
    (X5, (2, 3), (3, 1), 4, (3, 5), (1, 4), (3, 3), 5.0),
])
def test_window_geometry_and_winner_by_hand(x, size, stride, window, rows, cols, winner, value):
    pw = pool_window(x, size=size, stride=stride, mode="max", window=window)
    assert pw.rows == rows and pw.cols == cols
    assert pw.winner == winner
    assert pw.value == value
    assert x[rows[0]:rows[1], cols[0]:cols[1]].max() == value
    # Window k is output cell divmod(k, W').
    assert pw.out_pos == divmod(window, pw.out.shape[1])
    assert pw.n_windows == pw.out.size


def test_output_shapes_and_values_by_hand():
    assert pool_window(X4, size=2).out.tolist() == [[4, 5], [6, 7]]
    assert pool_window(X4, size=2, mode="avg").out.tolist() == [[2.5, 2.0], [2.25, 3.75]]
    assert pool_window(X5, size=3, stride=2).out.tolist() == [[9, 9], [9, 9]]
    assert pool_window(X4, size=2, stride=1).out.shape == (3, 3)
    assert pool_window(X5, size=2, stride=3).out.shape == (2, 2)  # (5 - 2) // 3 + 1


def test_max_dx_is_dout_at_the_winner_only():
    pw = pool_window(X4, size=2, window=2, dout=-1.5)
    expected = np.zeros((4, 4))
    expected[3, 0] = -1.5
    np.testing.assert_array_equal(pw.dx, expected)


def test_avg_dx_spreads_dout_evenly_by_hand():
    pw = pool_window(X5, size=3, stride=2, mode="avg", window=3, dout=0.9)
    expected = np.zeros((5, 5))
    expected[2:5, 2:5] = 0.1
    np.testing.assert_allclose(pw.dx, expected)
    assert pw.winner is None
    assert pw.value == pytest.approx(X5[2:5, 2:5].mean())


def test_overlapping_windows_sum_at_the_shared_winner():
    dout = np.array([[0.5, -1.0], [2.0, -0.3]])
    dx = route_gradient(X5, dout, size=3, stride=2)
    expected = np.zeros((5, 5))
    expected[2, 2] = 0.5 - 1.0 + 2.0 - 0.3
    np.testing.assert_allclose(dx, expected)
    # The "so far" sum after windows 0 and 1 only.
    np.testing.assert_allclose(route_gradient(X5, dout, size=3, stride=2, upto=1)[2, 2], -0.5)


def _cases(rng):
    """(image, size, stride): hand-made inputs, a real digit, and small integers full of ties."""
    from cnnlib.datasets import load_digits

    (x_train, _), _ = load_digits()
    digit = x_train[0, 0].astype(np.float64)
    ints = rng.integers(0, 3, size=(7, 6)).astype(np.float64)
    return [(X4, 2, 2), (X4, 2, 1), (XTIE, 2, 2), (X5, 3, 2), (X5, 2, 3), (X5, (2, 3), (3, 1)),
            (digit, 2, 2), (digit, 3, 2), (digit, 3, 1), (ints, 2, 1), (ints, 3, 2), (ints, (3, 2), (1, 2))]


def _one_hot(shape, k, value):
    dout = np.zeros(shape)
    dout.flat[k] = value
    return dout[None, None]  # (1, 1, H', W')


@pytest.mark.parametrize("mode", ["max", "avg"])
def test_each_windows_dx_equals_cnnlib_backward_of_a_one_hot_dout(rng, mode):
    for x, size, stride in _cases(rng):
        if mode == "max":
            out, cache = maxpool2d_forward(x[None, None], size=size, stride=stride)
        else:
            out, cache = avgpool2d_forward(x[None, None], size=size, stride=stride)
        backward = maxpool2d_backward if mode == "max" else avgpool2d_backward
        for k in range(out.size):
            value = float(rng.standard_normal())
            pw = pool_window(x, size=size, stride=stride, mode=mode, window=k, dout=value)
            np.testing.assert_array_equal(pw.out, out[0, 0])
            expected = backward(_one_hot(out.shape[2:], k, value), cache)[0, 0]
            np.testing.assert_allclose(pw.dx, expected, rtol=0, atol=1e-12,
                                       err_msg=f"{mode} size {size} stride {stride} window {k}")


@pytest.mark.parametrize("mode", ["max", "avg"])
def test_route_gradient_equals_cnnlib_backward(rng, mode):
    for x, size, stride in _cases(rng):
        forward, backward = ((maxpool2d_forward, maxpool2d_backward) if mode == "max"
                             else (avgpool2d_forward, avgpool2d_backward))
        out, cache = forward(x[None, None], size=size, stride=stride)
        dout = rng.standard_normal(out.shape)
        np.testing.assert_allclose(route_gradient(x, dout[0, 0], size=size, stride=stride, mode=mode),
                                   backward(dout, cache)[0, 0], rtol=0, atol=1e-12)


def test_leading_axes_of_length_one_are_accepted():
    a = pool_window(X4[None, None], size=2, window=3)
    b = pool_window(X4, size=2, window=3)
    assert a.winner == b.winner and a.rows == b.rows
    np.testing.assert_array_equal(a.dx, b.dx)


def test_describe_window_mentions_winner_tie_and_overlap():
    text = describe_window(XTIE, size=2, window=0)
    assert "max is 5 at row 0, column 1" in text
    assert "2 cells tie" in text
    text = describe_window(X5, size=3, stride=2, window=2)
    assert "also wins windows 0, 1, 3" in text
    text = describe_window(X4, size=2, mode="avg", window=3, dout=2.0)
    assert "average is 3.75" in text and "2/4 = 0.5" in text


def test_plot_pool_window_panels_titles_and_marks():
    fig = plot_pool_window(X4, size=2, window=1)
    assert "Max pooling" in fig.get_suptitle() and "window 1" in fig.get_suptitle()
    assert len(fig.axes) == 4
    for ax in fig.axes:
        assert ax.get_title() and ax.get_xlabel() == "column" and ax.get_ylabel() == "row"
    # The winner's circle sits on (row 1, column 3): Circle centres are (column, row).
    circles = [p for p in fig.axes[0].patches if isinstance(p, matplotlib.patches.Circle)]
    assert [tuple(c.center) for c in circles] == [(3, 1)]
    # The window outline spans columns 2..3 and rows 0..1 (cell edges at +-0.5).
    rect = [p for p in fig.axes[0].patches if isinstance(p, matplotlib.patches.Rectangle)][0]
    assert (rect.get_x(), rect.get_y(), rect.get_width(), rect.get_height()) == (1.5, -0.5, 2, 2)
    # The dx panel shows the window's gradient: one 1 at (1, 3).
    shown = fig.axes[2].images[0].get_array()
    assert shown[1, 3] == 1 and np.count_nonzero(shown) == 1


def _fills(ax):
    """(row, column, facecolor) of every filled rectangle on ax, the row and column of its cell."""
    return [(round(p.get_y() + 0.5), int(np.floor(p.get_x() + 0.5)), matplotlib.colors.to_hex(p.get_facecolor()))
            for p in ax.patches if isinstance(p, matplotlib.patches.Rectangle) and p.get_fill()]


def test_plot_pool_routing_shows_the_summed_dx():
    dout = np.array([[0.5, -1.0], [2.0, -0.3]])
    fig = plot_pool_routing(X5, dout, size=3, stride=2)
    assert "backward" in fig.get_suptitle()
    assert len(fig.axes) == 3
    texts = [t.get_text() for t in fig.axes[2].texts]
    assert texts.count("1.2") == 1 and texts.count("0") == 24
    circles = [p for p in fig.axes[0].patches if isinstance(p, matplotlib.patches.Circle)]
    assert len(circles) == 4 and all(tuple(c.center) == (2, 2) for c in circles)
    # dx speaks dout's colour language: the centre, which wins all four windows, is filled with
    # one stripe in each window's colour, in dout's order, and no other cell is filled.
    dout_colours = [colour for _, _, colour in _fills(fig.axes[1])]
    assert len(set(dout_colours)) == 4
    assert _fills(fig.axes[2]) == [(2, 2, colour) for colour in dout_colours]


def test_plot_pool_routing_colours_each_dx_cell_like_its_windows_dout_cell():
    dout = np.array([[0.5, -1.0], [2.0, -0.3]])
    fig = plot_pool_routing(X4, dout, size=2, stride=2)
    dout_colour = {(r, c): colour for r, c, colour in _fills(fig.axes[1])}
    # Each window's dout reaches its winner, drawn in that window's colour, its value written in.
    winners = {(0, 0): (1, 0), (0, 1): (1, 3), (1, 0): (3, 0), (1, 1): (2, 2)}
    assert sorted(_fills(fig.axes[2])) == sorted((*winners[cell], colour) for cell, colour in dout_colour.items())
    texts = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in fig.axes[2].texts}
    assert [texts[winners[cell]] for cell in sorted(winners)] == ["0.5", "-1", "2", "-0.3"]
    # Average pooling: every cell of a window is filled in its colour.
    fig = plot_pool_routing(X4, dout, size=2, stride=2, mode="avg")
    filled = {(r, c): colour for r, c, colour in _fills(fig.axes[2])}
    assert len(filled) == 16 and filled[(0, 0)] == filled[(1, 1)] == dout_colour[(0, 0)]
    assert filled[(3, 3)] == dout_colour[(1, 1)]
    plt.close("all")


def test_explorer_controls_and_class():
    # The one test that draws: the picture is a PNG whose alt text is the caption, redrawn when
    # a control moves.
    box = pool_explorer(X4, size=2, stride=2)
    assert "cnn-explorer" in box._dom_classes
    assert [box.mode.description, box.size.description, box.stride.description, box.window.description] == [
        "mode", "size", "stride", "window"]
    assert box.window.max == 3
    assert box.picture.value.startswith('<img src="data:image/png;base64,')
    assert "max is 4 at row 1, column 0" in box.caption.value and "max is 4 at row 1, column 0" in box.picture.value
    picture = box.picture.value
    box.window.value = 3
    assert box.picture.value.startswith('<img src="data:image/png;base64,') and box.picture.value != picture
    assert "max is 7 at row 2, column 2" in box.picture.value


def test_setting_a_controls_value_changes_what_is_displayed(sketch):
    box = pool_explorer(X4, size=2, stride=2)
    assert box.picture.value == drawn(2, 2, "max", 0, 1.0)

    box.window.value = 3
    assert "max is 7 at row 2, column 2" in box.caption.value
    assert box.picture.value == drawn(2, 2, "max", 3, 1.0)

    box.mode.value = "avg"
    assert "average is 3.75" in box.caption.value
    assert box.picture.value == drawn(2, 2, "avg", 3, 1.0)

    # Stride 1 makes 3x3 = 9 windows; the slider's range follows and window 3 stays put.
    box.mode.value = "max"
    box.stride.value = 1
    assert box.window.max == 8 and box.window.value == 3
    assert "Window 3 of 0..8" in box.caption.value and "rows 1..2, columns 0..1" in box.caption.value
    assert box.picture.value == drawn(2, 1, "max", 3, 1.0)

    # A 4x4 window leaves one window; the index is pulled back into range.
    box.size.value = 4
    assert box.window.max == 0 and box.window.value == 0
    assert "max is 7 at row 2, column 2" in box.caption.value
    assert box.picture.value == drawn(4, 1, "max", 0, 1.0)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(mode="min"), ValueError, "mode must be 'max' or 'avg', got 'min'"),
    (dict(window=4), ValueError, "window 4 is out of range.*4 windows, numbered 0..3"),
    (dict(window=-1), ValueError, "window -1 is out of range"),
    (dict(window=1.0), TypeError, "window must be an int"),
    (dict(size=5), ValueError, r"size \(5, 5\) is larger than the input \(4, 4\)"),
    (dict(size=0), ValueError, "size must be >= 1, got 0"),
    (dict(stride=0), ValueError, "stride must be >= 1, got 0"),
    (dict(dout=float("nan")), ValueError, "dout must be a finite number"),
])
def test_pool_window_rejects_bad_settings(kwargs, error, match):
    with pytest.raises(error, match=match):
        pool_window(X4, **kwargs)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match=r"x must be one image.*got shape \(2, 4, 4\)"):
        pool_window(np.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match="x must be finite"):
        pool_window(np.full((4, 4), np.nan))
    with pytest.raises(TypeError, match="x must hold real numbers"):
        pool_window(np.zeros((4, 4), dtype=bool))
    with pytest.raises(ValueError, match=r"dout must have the output's shape \(2, 2\), got \(3, 3\)"):
        route_gradient(X4, np.zeros((3, 3)), size=2)


def test_explorer_rejects_bad_settings():
    with pytest.raises(TypeError, match="size must be an int"):
        pool_explorer(X4, size=(2, 2))
    with pytest.raises(ValueError, match="stride must be in 1..4"):
        pool_explorer(X4, stride=5)
    with pytest.raises(ValueError, match="mode must be 'max' or 'avg'"):
        pool_explorer(X4, mode="sum")
    with pytest.raises(ValueError, match="window 9 is out of range"):
        pool_explorer(X4, window=9)
