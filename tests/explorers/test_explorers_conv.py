"""The convolution explorer: its index arithmetic, its formula text, its figure and its sliders.

A figure takes about 0.2 s to draw, so the tests of the widget's state replace it with an empty
one whose title names what it would show (the `sketch` fixture); one test draws the real figure.
"""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

import cnnlib.explorers.conv  # noqa: E402

from cnnlib import conv2d_forward  # noqa: E402
from cnnlib.explorers import conv_explorer  # noqa: E402
from cnnlib.explorers.conv import (  # noqa: E402
    ConvExplorer,
    Window,
    formula_text,
    output_size,
    plot_receptive_field,
    vertical_edge_kernel,
    window_bounds,
)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture
def digit(rng):
    return rng.uniform(0.0, 1.0, (8, 8))


@pytest.fixture
def sketch(monkeypatch):
    """plot_receptive_field, not drawn: an empty figure whose title names the setting it shows."""
    def sketch(image, kernel_size, stride, pad, out_row, out_col, **options):
        fig = Figure()
        fig.suptitle(drawn(kernel_size, stride, pad, out_row, out_col))
        return fig

    monkeypatch.setattr(cnnlib.explorers.conv, "plot_receptive_field", sketch)


def drawn(kernel_size, stride, pad, out_row, out_col):
    return f"kernel {kernel_size}, stride {stride}, pad {pad}, output cell ({out_row}, {out_col})"


# (image shape, kernel, stride, pad, out_row, out_col, window worked out by hand)
HAND_WINDOWS = [
    ((8, 8), 3, 1, 0, 0, 0, Window(0, 3, 0, 3)),
    ((8, 8), 3, 1, 1, 7, 7, Window(7, 10, 7, 10)),  # last cell of a "same" conv: ends on the padding
    ((8, 8), 3, 2, 1, 1, 2, Window(2, 5, 4, 7)),  # rows 2*1 .. 2*1+3, cols 2*2 .. 2*2+3
    ((8, 8), 3, 2, 1, 3, 3, Window(6, 9, 6, 9)),  # H' = 4; row 9 of the 10 padded rows is never read
    ((8, 8), 5, 3, 2, 2, 1, Window(6, 11, 3, 8)),  # H' = (8 + 4 - 5) // 3 + 1 = 3
    ((8, 8), (3, 2), (2, 1), (0, 2), 2, 3, Window(4, 7, 3, 5)),  # non-square kernel, pairs
    ((7, 5), 1, 3, 0, 2, 1, Window(6, 7, 3, 4)),  # 1x1 kernel, stride 3
]


@pytest.mark.parametrize("shape, kernel, stride, pad, i, j, expected", HAND_WINDOWS)
def test_window_bounds_hand_worked(shape, kernel, stride, pad, i, j, expected):
    assert window_bounds(shape, kernel, stride, pad, i, j) == expected


SETTINGS = [
    ((8, 8), 3, 1, 0),
    ((8, 8), 3, 1, 1),
    ((8, 8), 3, 2, 1),
    ((8, 8), 5, 3, 2),
    ((8, 8), 8, 1, 0),  # kernel exactly as large as the image: one window
    ((8, 8), 2, 2, 0),
    ((7, 5), 3, 2, 1),
    ((7, 5), 4, 3, 3),
    ((6, 9), 1, 1, 0),
]


@pytest.mark.parametrize("shape, kernel, stride, pad", SETTINGS)
def test_output_size_matches_cnnlib(rng, shape, kernel, stride, pad):
    x = rng.standard_normal((1, 1, *shape))
    w = rng.standard_normal((1, 1, kernel, kernel))
    out, _ = conv2d_forward(x, w, np.zeros(1), stride=stride, pad=pad)
    assert out.shape[2:] == (output_size(shape[0], kernel, stride, pad), output_size(shape[1], kernel, stride, pad))


@pytest.mark.parametrize("shape, kernel, stride, pad", SETTINGS)
def test_every_window_is_the_slice_cnnlib_reads(rng, shape, kernel, stride, pad):
    # The outlined window, times the kernel, must give exactly the output cell it is drawn for.
    x = rng.standard_normal(shape)
    w = rng.standard_normal((kernel, kernel))
    out = conv2d_forward(x[None, None], w[None, None], np.zeros(1), stride=stride, pad=pad)[0][0, 0]
    xp = np.pad(x, pad)
    for (i, j), value in np.ndenumerate(out):
        win = window_bounds(shape, kernel, stride, pad, i, j)
        patch = xp[win.row_start:win.row_stop, win.col_start:win.col_stop]
        assert patch.shape == (kernel, kernel)
        assert np.isclose(np.sum(patch * w), value)


def test_formula_text():
    assert formula_text(8, 3, 2, 1) == "H' = (8 + 2*1 - 3) // 2 + 1 = 4"
    assert formula_text(8, 3) == "H' = (8 + 2*0 - 3) // 1 + 1 = 6"
    assert formula_text(5, 2, 1, 0, name="W") == "W' = (5 + 2*0 - 2) // 1 + 1 = 4"
    assert formula_text(8, 9, 3, 1) == "H' = (8 + 2*1 - 9) // 3 + 1 = 1"


def test_kernel_larger_than_padded_image_is_a_clear_error():
    with pytest.raises(ValueError, match=r"kernel size 9 is larger than the padded image, 8 \+ 2\*0 = 8"):
        output_size(8, 9, 1, 0)
    with pytest.raises(ValueError, match="larger than the padded image"):
        formula_text(8, 11, 1, 1)
    with pytest.raises(ValueError, match="larger than the padded image"):
        window_bounds((8, 5), 6, 1, 0, 0, 0)  # fits the 8 rows, not the 5 columns
    with pytest.raises(ValueError, match="larger than the padded image"):
        plot_receptive_field(np.zeros((8, 8)), kernel_size=9, stride=1, pad=0)
    assert output_size(8, 10, 1, 1) == 1  # the same kernel fits once the padding is there


def test_bad_arguments_name_the_value():
    with pytest.raises(ValueError, match=r"out_row 4 is outside the output, which has H' = 4 rows \(0..3\)"):
        window_bounds((8, 8), 3, 2, 1, 4, 0)
    with pytest.raises(ValueError, match="out_col 6"):
        window_bounds((8, 8), 3, 1, 0, 0, 6)
    with pytest.raises(ValueError, match="stride must be >= 1, got 0"):
        output_size(8, 3, 0, 0)
    with pytest.raises(ValueError, match="pad must be >= 0, got -1"):
        output_size(8, 3, 1, -1)
    with pytest.raises(TypeError, match="stride must be an int, got 1.5"):
        output_size(8, 3, 1.5, 0)
    with pytest.raises(ValueError, match=r"x\[n, 0\]"):
        plot_receptive_field(np.zeros((1, 8, 8)))


def test_vertical_edge_kernel():
    np.testing.assert_array_equal(vertical_edge_kernel(3), [[-1, 0, 1]] * 3)
    np.testing.assert_array_equal(vertical_edge_kernel((2, 2)), [[-1, 1]] * 2)
    np.testing.assert_array_equal(vertical_edge_kernel(1), [[1]])


def test_figure_outlines_the_window_and_the_cell(digit):
    fig = plot_receptive_field(digit, kernel_size=3, stride=2, pad=1, out_row=1, out_col=2)
    ax_in, ax_k, ax_out = fig.axes[:3]
    assert fig.get_suptitle() == "H' = (8 + 2*1 - 3) // 2 + 1 = 4"
    boxes = [(p.get_xy(), p.get_width(), p.get_height()) for p in ax_in.patches if isinstance(p, Rectangle)]
    assert ((3.5, 1.5), 3, 3) in boxes  # window cols 4..6, rows 2..4 of the padded image
    assert ((0.5, 0.5), 8, 8) in boxes  # the dashed border of the unpadded image
    cells = [(p.get_xy(), p.get_width()) for p in ax_out.patches]
    assert cells == [((1.5, 0.5), 1)]
    assert ax_out.get_images()[0].get_array().shape == (4, 4)
    assert ax_in.get_images()[0].get_array().shape == (10, 10)
    for ax in (ax_in, ax_k, ax_out):
        assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    # The output title reports the value of the highlighted cell, as cnnlib computes it.
    out = conv2d_forward(digit[None, None], vertical_edge_kernel(3)[None, None], np.zeros(1), stride=2, pad=1)[0]
    assert f"out[1, 2] = {out[0, 0, 1, 2]:.2f}" in ax_out.get_title()


def test_figure_non_square_shows_both_formulas(digit):
    fig = plot_receptive_field(digit, kernel_size=(3, 2), stride=(2, 1), pad=(0, 2), out_row=2, out_col=3)
    assert fig.get_suptitle() == "H' = (8 + 2*0 - 3) // 2 + 1 = 3    W' = (8 + 2*2 - 2) // 1 + 1 = 11"


def test_explorer_is_a_styled_widget_with_described_sliders(digit):
    # The one test that draws: the caption is the figure's title, redrawn when a slider moves.
    before = plt.get_fignums()
    ex = conv_explorer(digit)
    assert isinstance(ex, ConvExplorer)
    assert "cnn-explorer" in ex._dom_classes
    descriptions = [s.description for s in (ex.kernel_slider, ex.stride_slider, ex.pad_slider, ex.row_slider,
                                             ex.col_slider)]
    assert all(descriptions) and len(set(descriptions)) == 5
    assert "H' = (8 + 2*1 - 3) // 1 + 1 = 8" in ex.text.value
    assert ex.output_shape == (8, 8) and ex.row_slider.max == 7 and ex.col_slider.max == 7
    assert ex.caption == "H' = (8 + 2*1 - 3) // 1 + 1 = 8"
    ex.stride_slider.value = 2
    assert ex.caption == "H' = (8 + 2*1 - 3) // 2 + 1 = 4"
    assert plt.get_fignums() == before  # each figure is closed once shown


def test_moving_sliders_changes_text_window_and_figure(digit, sketch):
    ex = conv_explorer(digit, kernel_size=3, stride=1, pad=1)
    before_text = ex.text.value
    assert ex.caption == drawn(3, 1, 1, 0, 0)
    ex.stride_slider.value = 2
    assert "H' = (8 + 2*1 - 3) // 2 + 1 = 4" in ex.text.value
    assert ex.text.value != before_text
    assert ex.caption == drawn(3, 2, 1, 0, 0)
    assert ex.row_slider.max == 3 and ex.col_slider.max == 3
    ex.row_slider.value = 1
    ex.col_slider.value = 2
    assert ex.window == Window(2, 5, 4, 7)
    assert "output cell (1, 2) reads padded rows 2..4, columns 4..6" in ex.text.value
    assert ex.caption == drawn(3, 2, 1, 1, 2)
    ex.kernel_slider.value = 5
    assert "H' = (8 + 2*1 - 5) // 2 + 1 = 3" in ex.text.value
    assert ex.window == Window(2, 7, 4, 9)
    assert ex.caption == drawn(5, 2, 1, 1, 2)


def test_shrinking_output_clamps_the_cell(digit, sketch):
    ex = conv_explorer(digit, kernel_size=3, stride=1, pad=1, out_row=7, out_col=6)
    assert ex.window == Window(7, 10, 6, 9)
    ex.stride_slider.value = 3  # H' = (8 + 2 - 3) // 3 + 1 = 3
    assert ex.row_slider.max == 2 and ex.row_slider.value == 2 and ex.col_slider.value == 2
    assert ex.window == Window(6, 9, 6, 9)
    assert "output cell (2, 2)" in ex.text.value
    assert ex.caption == drawn(3, 3, 1, 2, 2)


def test_explorer_reports_a_kernel_that_does_not_fit(digit, sketch):
    ex = conv_explorer(digit, kernel_size=3, stride=1, pad=0)
    ex.kernel_slider.value = 9  # larger than the unpadded 8x8 image: no crash, a message
    assert ex.message.startswith("kernel size 9 is larger than the padded image, 8 + 2*0 = 8")
    assert "No output" in ex.text.value and "H'" not in ex.text.value
    assert ex.window is None and ex.output_shape is None and ex.caption == ""
    assert ex.row_slider.disabled and ex.col_slider.disabled
    ex.pad_slider.value = 1  # now 8 + 2 = 10 >= 9: one more window row and column
    assert ex.message == "" and not ex.row_slider.disabled
    assert ex.output_shape == (2, 2)
    assert "H' = (8 + 2*1 - 9) // 1 + 1 = 2" in ex.text.value
    assert ex.window == Window(0, 9, 0, 9)
    assert ex.caption == drawn(9, 1, 1, 0, 0)


def test_explorer_can_start_on_a_kernel_that_does_not_fit(digit, sketch):
    ex = conv_explorer(digit, kernel_size=9, pad=0)
    assert "larger than the padded image" in ex.text.value and ex.window is None
    assert ex.caption == ""


def test_explorer_refuses_out_of_range_starting_values(digit):
    with pytest.raises(ValueError, match="out_row 4 is outside the output"):
        conv_explorer(digit, kernel_size=3, stride=2, pad=1, out_row=4)
    with pytest.raises(ValueError, match="stride = 9 is beyond its slider, which goes up to 4"):
        conv_explorer(digit, stride=9)
    with pytest.raises(ValueError, match=r"got shape \(1, 1, 8, 8\)"):
        conv_explorer(digit[None, None])
