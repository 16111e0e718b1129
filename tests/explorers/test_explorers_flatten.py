"""The flatten explorer: its index arithmetic against NumPy, and its widgets kept in step.

A picture takes about 0.2 s to draw, so the tests of the widgets' state replace it with a
caption naming what it would show (the `sketch` fixture); one test draws the real picture.
"""

import itertools

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import cnnlib.explorers.flatten  # noqa: E402
from cnnlib.explorers import flatten_explorer  # noqa: E402
from cnnlib.explorers.flatten import (  # noqa: E402
    describe,
    flat_index,
    formula,
    index_map,
    plot_index_map,
    unravel,
)

SHAPES = [(1, 1, 1), (1, 2, 5), (1, 4, 4), (2, 3, 4), (3, 4, 2), (4, 1, 3), (3, 5, 1), (5, 2, 7)]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture
def sketch(monkeypatch):
    """The explorer's picture, not drawn: the text says which order and cell it would show."""
    monkeypatch.setattr(cnnlib.explorers.flatten._Picture, "html", lambda self, order, cell: drawn(order, cell))


def drawn(order, cell):
    return f"the {order}-order map with cell {cell} highlighted"


def cells(shape):
    return itertools.product(*(range(n) for n in shape))


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("shape", SHAPES)
def test_flat_index_and_unravel_match_numpy(shape, order):
    seen = set()
    for c, h, w in cells(shape):
        i = flat_index(c, h, w, shape, order)
        assert i == np.ravel_multi_index((c, h, w), shape, order=order)
        assert unravel(i, shape, order) == (c, h, w)
        seen.add(i)
    assert seen == set(range(int(np.prod(shape))))  # a bijection onto 0..D-1
    for i in range(int(np.prod(shape))):
        assert unravel(i, shape, order) == tuple(int(k) for k in np.unravel_index(i, shape, order=order))


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("shape", SHAPES)
def test_index_map_is_what_reshape_does(shape, order):
    # Flattening the index map in the same order must give 0, 1, 2, ...: each cell holds the
    # position it is sent to.
    m = index_map(shape, order)
    assert m.shape == shape
    np.testing.assert_array_equal(m.ravel(order=order), np.arange(m.size))
    for c, h, w in cells(shape):
        assert m[c, h, w] == flat_index(c, h, w, shape, order)


def test_c_order_is_what_flatten_forward_uses():
    from cnnlib import flatten_forward

    shape = (3, 2, 5)
    x = np.arange(2 * 30, dtype=np.float64).reshape(2, *shape)
    out, _ = flatten_forward(x)
    for c, h, w in cells(shape):
        assert out[1, flat_index(c, h, w, shape, "C")] == x[1, c, h, w]


def test_formula_and_description_spell_out_the_arithmetic():
    assert formula(1, 1, 1, (2, 3, 4), "C") == "17 = (1*3 + 1)*4 + 1"
    assert formula(1, 1, 1, (2, 3, 4), "F") == "9 = (1*3 + 1)*2 + 1"
    text = describe(1, 2, 3, (2, 3, 4), "C")
    assert text.startswith("flat index 23 ↔ (c=1, h=2, w=3)")
    assert "C order: 23 = (1*3 + 2)*4 + 3" in text


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: flat_index(2, 0, 0, (2, 3, 4)), r"c = 2 is out of range.*0 <= c < 2"),
        (lambda: flat_index(0, -1, 0, (2, 3, 4)), r"h = -1 is out of range"),
        (lambda: flat_index(0, 0, 4, (2, 3, 4), "F"), r"w = 4 is out of range.*0 <= w < 4"),
        (lambda: flat_index(0, 0, 1.5, (2, 3, 4)), r"w must be an integer, got 1.5"),
        (lambda: unravel(24, (2, 3, 4)), r"i = 24 is out of range.*0 <= i < 24"),
        (lambda: unravel(-1, (2, 3, 4), "F"), r"i = -1 is out of range"),
        (lambda: unravel(0, (2, 3, 4), "K"), r"order must be 'C' or 'F', got 'K'"),
        (lambda: flat_index(0, 0, 0, (2, 3), "C"), r"shape must be \(C, H, W\).*\(2, 3\)"),
        (lambda: unravel(0, (2, 0, 4)), r"three positive integers.*\(2, 0, 4\)"),
        (lambda: index_map((2, 3.0, 4)), r"three positive integers.*3\.0"),
        (lambda: plot_index_map((8, 8, 8)), r"512 cells"),
        (lambda: plot_index_map((2, 3, 4), highlight=(0, 3, 0)), r"h = 3 is out of range"),
        (lambda: flatten_explorer((2, 3)), r"shape must be \(C, H, W\)"),
        (lambda: flatten_explorer((2, 3, 4), index=24), r"i = 24 is out of range"),
        (lambda: flatten_explorer((2, 3, 4), order="A"), r"got 'A'"),
    ],
)
def test_bad_input_gives_clear_value_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("order", ["C", "F"])
def test_plot_index_map_draws_every_cell(order):
    shape = (2, 3, 4)
    fig = plot_index_map(shape, order, highlight=(1, 2, 0))
    panels, strip = fig.axes[:2], fig.axes[2]
    assert len(fig.axes) == 3
    for k, ax in enumerate(panels):
        np.testing.assert_array_equal(ax.images[0].get_array(), index_map(shape, order)[k])
        assert ax.get_title() == f"channel c = {k}"
    np.testing.assert_array_equal(strip.images[0].get_array(), np.arange(24)[None, :])
    assert panels[0].get_xlabel() == "w" and panels[0].get_ylabel() == "h"
    assert strip.get_xlabel().startswith("position i in the flat vector")
    i = flat_index(1, 2, 0, shape, order)
    assert fig._suptitle.get_text() == f"{order} order: cell (c=1, h=2, w=0) ↔ flat index {i}"
    assert len(panels[1].patches) == 2 and len(panels[0].patches) == 0  # outline on the chosen cell only
    assert [p.get_xy() for p in strip.patches] == [(i - 0.5, -0.5)] * 2


@pytest.mark.parametrize("shape", [(2, 3, 4), (1, 4, 3), (3, 2, 5)])
def test_explorer_sliders_stay_consistent(shape, sketch):
    e = flatten_explorer(shape)
    C, H, W = shape
    assert "cnn-explorer" in e._dom_classes
    assert e.flat_slider.max == C * H * W - 1
    assert (e.c_slider.max, e.h_slider.max, e.w_slider.max) == (C - 1, H - 1, W - 1)
    for order in ("C", "F"):
        e.order_toggle.value = order
        for i in (C * H * W - 1, 0, (C * H * W) // 2 + 1):
            e.flat_slider.value = i
            assert (e.c_slider.value, e.h_slider.value, e.w_slider.value) == unravel(i, shape, order)
            assert e.flat_slider.value == i  # the echo did not move it back
            assert e.picture.value == drawn(order, e.cell)
        for c, h, w in [(C - 1, 0, W - 1), (0, H - 1, 0), (C - 1, H - 1, W - 1)]:
            e.c_slider.value = c
            assert e.flat_slider.value == flat_index(c, e.h_slider.value, e.w_slider.value, shape, order)
            e.h_slider.value = h
            assert e.flat_slider.value == flat_index(c, h, e.w_slider.value, shape, order)
            e.w_slider.value = w
            assert e.flat_slider.value == flat_index(c, h, w, shape, order)
            assert (e.c_slider.value, e.h_slider.value, e.w_slider.value) == (c, h, w)
            assert e.picture.value == drawn(order, (c, h, w))


def test_explorer_text_and_picture_follow_the_sliders():
    # The one test that draws: the picture is a PNG whose alt text names the cell, it changes
    # with the sliders, and no pyplot figure is left open.
    before = plt.get_fignums()
    e = flatten_explorer((2, 3, 4))
    assert "flat index 0 ↔ (c=0, h=0, w=0)" in e.text.value
    text, picture = e.text.value, e.picture.value
    e.flat_slider.value = 17
    assert e.text.value != text and e.picture.value != picture
    assert "flat index 17 ↔ (c=1, h=1, w=1)" in e.text.value
    assert "17 = (1*3 + 1)*4 + 1" in e.text.value
    assert e.picture.value.startswith('<img src="data:image/png;base64,')
    assert "flat index 17 ↔ (c=1, h=1, w=1)" in e.picture.value  # the image's alt text
    text = e.text.value
    e.w_slider.value = 3
    assert "flat index 19 ↔ (c=1, h=1, w=3)" in e.text.value and e.text.value != text
    assert "flat index 19 ↔ (c=1, h=1, w=3)" in e.picture.value
    assert plt.get_fignums() == before


def test_switching_order_changes_the_mapping(sketch):
    e = flatten_explorer((2, 3, 4), index=17)
    assert e.cell == (1, 1, 1)
    e.order_toggle.value = "F"
    # The cell stays; F order sends it elsewhere: (w*H + h)*C + c = (1*3 + 1)*2 + 1 = 9.
    assert e.cell == (1, 1, 1) and e.flat_slider.value == 9
    assert "F order: <code>9 = (1*3 + 1)*2 + 1</code>" in e.text.value
    assert e.picture.value == drawn("F", (1, 1, 1))
    e.flat_slider.value = 17  # in F order, 17 comes from another cell than in C order
    assert e.cell == unravel(17, (2, 3, 4), "F") == (1, 2, 2)
    e.order_toggle.value = "C"
    assert e.flat_slider.value == flat_index(1, 2, 2, (2, 3, 4), "C") == 22
    assert "flat index 22 ↔ (c=1, h=2, w=2)" in e.text.value
    assert e.picture.value == drawn("C", (1, 2, 2))


def test_explorer_with_a_single_channel_disables_the_c_slider(sketch):
    e = flatten_explorer((1, 2, 5), order="F", index=7)
    assert e.c_slider.disabled and not e.h_slider.disabled
    assert e.cell == unravel(7, (1, 2, 5), "F") == (0, 1, 3)
    assert e.picture.value == drawn("F", (0, 1, 3))
