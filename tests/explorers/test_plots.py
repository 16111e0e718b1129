"""cnnlib.plots: the confusion matrix counts, and the figures say what they show.

Figures are drawn with the non-interactive Agg backend and closed after every test.
"""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from cnnlib import plots  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


# Six samples of three classes, counted by hand: rows true, columns predicted.
Y_TRUE = np.array([0, 0, 1, 2, 2, 2])
Y_PRED = np.array([0, 1, 1, 2, 0, 2])
COUNTS = np.array([[1, 1, 0],
                   [0, 1, 0],
                   [1, 0, 2]])


def test_confusion_matrix_counts_by_hand():
    counts = plots.confusion_matrix(Y_TRUE, Y_PRED, 3)
    np.testing.assert_array_equal(counts, COUNTS)
    assert counts.dtype == np.int64
    assert counts.sum() == len(Y_TRUE) and np.trace(counts) == np.sum(Y_TRUE == Y_PRED)


def test_confusion_matrix_is_not_symmetric_in_its_arguments():
    # Swapping truth and prediction transposes the matrix: rows must be the true classes.
    np.testing.assert_array_equal(plots.confusion_matrix(Y_PRED, Y_TRUE, 3), COUNTS.T)


def test_confusion_matrix_unused_classes_and_empty_input(rng):
    counts = plots.confusion_matrix([4, 4], [4, 1], n_classes=10)
    assert counts.shape == (10, 10)
    assert counts[4, 4] == 1 and counts[4, 1] == 1 and counts.sum() == 2
    np.testing.assert_array_equal(plots.confusion_matrix(np.array([], dtype=int), np.array([], dtype=int), 4),
                                  np.zeros((4, 4)))
    # Agrees with a plain double loop on random labels.
    y_true, y_pred = rng.integers(0, 7, 500), rng.integers(0, 7, 500)
    expected = np.zeros((7, 7), dtype=int)
    for t, p in zip(y_true, y_pred):
        expected[t, p] += 1
    np.testing.assert_array_equal(plots.confusion_matrix(y_true, y_pred, 7), expected)


@pytest.mark.parametrize(
    ("y_true", "y_pred", "n_classes", "error", "match"),
    [
        ([0, 1, 2], [0, 1], 3, ValueError, "y_true has 3 labels but y_pred has 2"),
        ([0, 1, 3], [0, 1, 2], 3, ValueError, r"y_true labels must be in 0..2, got values from 0 to 3"),
        ([0, 1, 2], [0, -1, 2], 3, ValueError, r"y_pred labels must be in 0..2, got values from -1 to 2"),
        ([[0, 1]], [[0, 1]], 3, ValueError, r"y_true must be \(N,\)"),
        ([0.0, 1.0], [0, 1], 3, TypeError, "y_true must hold integer class labels"),
        ([True, False], [0, 1], 3, TypeError, "y_true must hold integer class labels"),
        ([0, 1], [0, 1], 0, ValueError, "n_classes must be an int >= 1, got 0"),
        ([0, 1], [0, 1], 2.0, ValueError, "n_classes must be an int >= 1, got 2.0"),
    ],
)
def test_confusion_matrix_bad_input(y_true, y_pred, n_classes, error, match):
    with pytest.raises(error, match=match):
        plots.confusion_matrix(np.array(y_true), np.array(y_pred), n_classes)


def test_plot_confusion_matrix_draws_and_annotates_the_counts():
    fig = plots.plot_confusion_matrix(Y_TRUE, Y_PRED, n_classes=3, title="Hand-made")
    ax = fig.axes[0]
    np.testing.assert_array_equal(ax.images[0].get_array(), COUNTS)
    assert ax.images[0].get_cmap().name in ("viridis", "cividis")
    assert ax.get_xlabel() == "predicted digit" and ax.get_ylabel() == "true digit"
    assert ax.get_title() == "Hand-made (4/6 correct)"
    # One label per cell, at (column = predicted, row = true), reading the count.
    texts = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts}
    assert texts == {(t, p): str(COUNTS[t, p]) for t in range(3) for p in range(3)}
    assert fig.axes[1].get_ylabel() == "count"  # the colour bar


def test_plot_confusion_matrix_rejects_bad_labels():
    with pytest.raises(ValueError, match="labels must be in 0..9"):
        plots.plot_confusion_matrix([0, 10], [0, 1])


def test_plot_history_plots_every_curve_against_the_epoch():
    history = {"loss": [1.0, 0.5, 0.25], "accuracy": [0.5, 0.8, 0.9],
               "val_loss": [1.1, 0.7, 0.6], "val_accuracy": [0.4, 0.7, 0.85]}
    fig = plots.plot_history(history, val_label="test")
    loss_ax, acc_ax = fig.axes
    assert fig.get_suptitle() == "Training history"
    for ax, key in ((loss_ax, "loss"), (acc_ax, "accuracy")):
        assert ax.get_title() and ax.get_xlabel() == "epoch" and key in ax.get_ylabel()
        train, val = ax.get_lines()
        np.testing.assert_array_equal(train.get_xdata(), [1, 2, 3])
        np.testing.assert_array_equal(train.get_ydata(), history[key])
        np.testing.assert_array_equal(val.get_ydata(), history["val_" + key])
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["training", "test"]
        assert train.get_color() != val.get_color() and train.get_linestyle() != val.get_linestyle()


def test_plot_history_without_validation_has_one_curve_per_panel():
    fig = plots.plot_history({"loss": [0.3], "accuracy": [0.9]})
    assert [len(ax.get_lines()) for ax in fig.axes] == [1, 1]


@pytest.mark.parametrize(
    ("history", "match"),
    [
        ({"loss": [1.0]}, "history must have the key 'accuracy'"),
        ({"loss": [], "accuracy": []}, "history holds no epochs"),
        ({"loss": [1.0, 0.5], "accuracy": [0.5]}, r"history\['accuracy'\] has 1 entries, history\['loss'\] has 2"),
        ({"loss": [1.0], "accuracy": [0.5], "val_loss": [1.0]}, "no 'val_accuracy'"),
    ],
)
def test_plot_history_bad_input(history, match):
    with pytest.raises(ValueError, match=match):
        plots.plot_history(history)


@pytest.mark.parametrize("shape", [(8, 8), (2, 1, 8, 8)])
def test_image_grid_rejects_input_that_is_not_3d(shape):
    with pytest.raises(ValueError, match=r"images must be \(K, H, W\)"):
        plots.image_grid(np.zeros(shape), suptitle="bad")


def test_image_grid_signed_limits_are_symmetric(rng):
    maps = rng.standard_normal((5, 4, 4)) + 0.7  # mostly positive: plain min/max would not centre 0
    fig = plots.image_grid(maps, suptitle="signed", signed=True, ncols=3)
    m = np.abs(maps).max()
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 5
    for ax in panels:
        assert ax.images[0].get_clim() == pytest.approx((-m, m))
        assert ax.images[0].get_cmap().name == "PuOr"
    unsigned = plots.image_grid(maps, suptitle="unsigned", cmap="viridis")
    assert unsigned.axes[0].images[0].get_clim() == pytest.approx((maps.min(), maps.max()))


def test_image_and_maps_layout_colours_and_labels(rng):
    image = rng.random((8, 8))
    grads = rng.standard_normal((16, 4, 4)) - 0.5
    fig = plots.image_and_maps(image, grads, suptitle="gradient", image_title="a digit", signed=True,
                               cbar_label="dL/da")
    image_ax, *map_axes, cbar_ax = fig.axes
    assert len(map_axes) == 16
    assert fig.get_suptitle() == "gradient"
    assert image_ax.get_title() == "a digit" and (image_ax.get_xlabel(), image_ax.get_ylabel()) == ("w", "h")
    assert image_ax.images[0].get_cmap().name == "gray_r"
    np.testing.assert_array_equal(image_ax.images[0].get_array(), image)
    m = np.abs(grads).max()
    for c, ax in enumerate(map_axes):
        assert ax.get_title() == f"c={c}"
        assert ax.images[0].get_clim() == pytest.approx((-m, m))
        assert ax.images[0].get_cmap().name == "PuOr"
        np.testing.assert_array_equal(ax.images[0].get_array(), grads[c])
    assert map_axes[8].get_xlabel() == "w" and map_axes[8].get_ylabel() == "h"  # first panel of the last row
    assert cbar_ax.get_ylabel() == "dL/da"


def test_image_and_maps_unsigned_uses_the_data_range(rng):
    acts = rng.random((3, 5, 5))
    fig = plots.image_and_maps(rng.random((8, 8)), acts, suptitle="activations")
    image_ax, *map_axes, _ = fig.axes
    assert len(map_axes) == 3
    for ax in map_axes:
        assert ax.images[0].get_cmap().name == "viridis"
        assert ax.images[0].get_clim() == pytest.approx((acts.min(), acts.max()))


def test_image_and_maps_bad_shapes():
    with pytest.raises(ValueError, match=r"image must be \(H, W\)"):
        plots.image_and_maps(np.zeros((1, 8, 8)), np.zeros((2, 4, 4)), suptitle="x")
    with pytest.raises(ValueError, match=r"maps must be \(C, H, W\)"):
        plots.image_and_maps(np.zeros((8, 8)), np.zeros((1, 2, 4, 4)), suptitle="x")


def test_image_and_maps_shared_limit(rng):
    # Two figures drawn with one limit use one colour scale, whatever their own maxima.
    small, large = 0.01 * rng.standard_normal((4, 4, 4)), 3 * rng.standard_normal((4, 4, 4))
    for maps in (small, large):
        fig = plots.image_and_maps(np.zeros((8, 8)), maps, suptitle="shared", signed=True, limit=5.0)
        assert all(ax.images[0].get_clim() == (-5.0, 5.0) for ax in fig.axes[1:-1])
    for bad in ({"limit": 0.0, "signed": True}, {"limit": np.nan, "signed": True}, {"limit": 1.0}):
        with pytest.raises(ValueError, match="limit must be a positive number and needs signed=True"):
            plots.image_and_maps(np.zeros((8, 8)), small, suptitle="bad", **bad)


def test_history_epochs_are_whole_numbers():
    history = {"loss": [1 - 0.05 * i for i in range(15)], "accuracy": [0.5 + 0.03 * i for i in range(15)]}
    fig = plots.plot_history(history)
    fig.canvas.draw()
    ticks = [t for t in fig.axes[0].get_xticks() if 1 <= t <= 15]
    assert ticks and all(float(t).is_integer() for t in ticks), ticks
    plt.close(fig)


def test_image_grid_labels_its_colour_bar():
    fig = plots.image_grid(np.arange(8.0).reshape(2, 2, 2) - 4, suptitle="weights", signed=True, colorbar=True,
                     colorbar_label="weight")
    assert fig.axes[-1].get_ylabel() == "weight"
    plt.close(fig)


def test_plot_im2col_shows_windows_as_columns_and_the_product():
    image = np.arange(16.0).reshape(4, 4)
    filters = np.array([[[-1.0, 1], [-1, 1]], [[1, 0], [0, 2]]])
    fig = plots.plot_im2col(image, filters, windows=[(0, 0), (2, 1)], title="im2col")
    ax_img, ax_mat = fig.axes
    assert fig._suptitle.get_text() == "im2col"
    for ax in (ax_img, ax_mat):
        assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    texts = [t.get_text() for t in ax_mat.texts]
    # window (2, 1) is pixels 9, 10, 13, 14: its column, and filter 1's output 9 + 2 * 14 = 37
    assert "37" in texts and "-1" in texts
    assert sum(t in ("9", "10", "13", "14") for t in texts) >= 4
    assert len(ax_img.patches) == 2  # one outline per window


@pytest.mark.parametrize("image, filters, windows", [
    (np.zeros(4), np.zeros((1, 2, 2)), [(0, 0)]),
    (np.zeros((2, 2)), np.zeros((1, 3, 3)), [(0, 0)]),
    (np.zeros((4, 4)), np.zeros((1, 2, 2)), [(3, 0)]),
    (np.zeros((4, 4)), np.zeros((1, 2, 2)), [(0, 0)] * 4),
])
def test_plot_im2col_bad_input(image, filters, windows):
    with pytest.raises(ValueError):
        plots.plot_im2col(image, filters, windows=windows)
