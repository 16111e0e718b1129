"""fit checks all of its data before the first update, and names a bad sample by its index in
the arrays the caller passed, never by its position inside a shuffled batch."""

import numpy as np
import pytest

from cnnlib import SGD, Adam, Dense, Flatten, Sequential, evaluate, fit, reference_cnn


def data(rng, n=40):
    return rng.random((n, 1, 8, 8)), rng.integers(0, 10, n)


class CountingSGD(SGD):
    """SGD that counts its steps: a refusal must come before the first."""

    def __init__(self):
        super().__init__(lr=0.1)
        self.steps = 0

    def step(self, params, grads):
        self.steps += 1
        super().step(params, grads)


def refused(model, error, match, *args, **kwargs):
    """Call fit, expect `error`, check that no weight changed and no step was taken."""
    before = {name: p.copy() for name, p in model.params().items()}
    optimizer = CountingSGD()
    with pytest.raises(error, match=match) as info:
        fit(model, *args, optimizer=optimizer, progress=False, **kwargs)
    assert optimizer.steps == 0
    for name, p in model.params().items():
        np.testing.assert_array_equal(p, before[name])
    return str(info.value)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("sample", [0, 23, 39])
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
def test_non_finite_training_inputs_are_refused_naming_the_sample(rng, value, sample, dtype):
    x, y = data(rng)
    x = x.astype(dtype)
    x[sample, 0, 5, 2] = value
    refused(reference_cnn(), ValueError,
            rf"^x holds {value} at sample {sample}, index \({sample}, 0, 5, 2\): .* drop or repair that sample",
            x, y, batch_size=8)


@pytest.mark.parametrize("shuffle", [True, False])
def test_the_sample_is_the_first_bad_one_in_the_callers_order_whatever_the_shuffle(rng, shuffle):
    x, y = data(rng)
    x[31, 0, 0, 0] = np.nan
    x[17, 0, 7, 7] = np.inf
    refused(reference_cnn(), ValueError, r"x holds inf at sample 17, index \(17, 0, 7, 7\)", x, y, shuffle=shuffle)


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_validation_inputs_are_refused_before_training(rng, value):
    x, y = data(rng)
    x_val, y_val = data(rng, 12)
    x_val[9, 0, 1, 1] = value
    refused(reference_cnn(), ValueError, rf"^validation_data: x holds {value} at sample 9, index \(9, 0, 1, 1\)",
            x, y, validation_data=(x_val, y_val))


def test_features_without_image_axes_name_the_sample_too(rng):
    x = rng.random((30, 6))
    x[12, 4] = np.nan
    model = Sequential(Dense(6, 3, rng=0))
    refused(model, ValueError, r"x holds nan at sample 12, index \(12, 4\)", x, rng.integers(0, 3, 30))
    x = rng.random(30)
    x[3] = np.inf
    with pytest.raises(ValueError, match=r"x holds inf at sample 3, index \(3,\)"):
        evaluate(model, x, rng.integers(0, 3, 30))


def test_the_check_goes_chunk_by_chunk_and_still_finds_the_right_sample(rng, monkeypatch):
    import cnnlib.train

    monkeypatch.setattr(cnnlib.train, "_FINITE_CHUNK_VALUES", 3 * 64)  # 3 samples per pass
    x, y = data(rng)
    x[-1, 0, 3, 3] = np.nan
    refused(reference_cnn(), ValueError, r"x holds nan at sample 39, index \(39, 0, 3, 3\)", x, y)
    x[-1, 0, 3, 3] = 0
    x[7, 0, 0, 1] = -np.inf
    refused(reference_cnn(), ValueError, r"x holds -inf at sample 7", x, y)


@pytest.mark.parametrize(
    "labels, match",
    [
        (lambda y: np.where(np.arange(len(y)) == 5, np.nan, y), r"got dtype float64 \(y\[5\] is nan\)"),
        (lambda y: np.where(np.arange(len(y)) == 0, -np.inf, y), r"got dtype float64 \(y\[0\] is -inf\)"),
        (lambda y: y.astype(np.float32), r"got dtype float32; y\.astype\(int\) turns these whole numbers into labels"),
        (lambda y: y + 0.5, r"got dtype float64$"),
        (lambda y: y.astype("m8[s]"), r"got dtype timedelta64\[s\]"),  # NumPy counts it as an integer
        (lambda y: y > 4, r"got dtype bool"),
        (lambda y: y.astype(object), r"got dtype object"),
    ],
    ids=["nan", "-inf", "whole floats", "fractions", "timedelta", "bool", "object"],
)
def test_labels_that_are_not_integers_are_refused_naming_a_non_finite_one(rng, labels, match):
    x, y = data(rng)
    refused(reference_cnn(), TypeError, r"^x, y: y must hold integer class labels, " + match, x, labels(y))
    refused(reference_cnn(), TypeError, r"^validation_data: y must hold integer class labels, " + match, x, y,
            validation_data=(x[:10], labels(y)[:10]))


def test_a_label_out_of_range_is_named_by_its_sample(rng):
    x, y = data(rng)
    y[26] = 10
    y[30] = -2
    refused(reference_cnn(), ValueError, r"got values from -2 to 10 \(the first outside, 10, at sample 26\)", x, y)


@pytest.mark.parametrize("kind", [np.complex128, "U3", object, "M8[s]"])
def test_inputs_that_are_not_real_numbers_are_refused(rng, kind):
    x, y = data(rng)
    bad = x.astype(kind) if kind != "M8[s]" else x.astype(np.int64).astype(kind)
    refused(reference_cnn(), TypeError, r"^x must hold real numbers, got an array of dtype", bad, y)
    refused(reference_cnn(), TypeError, r"^validation_data: x must hold real numbers", x, y,
            validation_data=(bad[:5], y[:5]))


def test_validation_data_the_model_cannot_take_is_refused_before_training(rng):
    x, y = data(rng)
    refused(reference_cnn(), ValueError,
            r"^validation_data: the model cannot take x's samples of shape \(1, 6, 6\): .*x has 144 features",
            x, y, validation_data=(x[:8, :, :6, :6], y[:8]))
    refused(reference_cnn(), ValueError, r"^the model cannot take x's samples of shape \(64,\): .*x must be 4-D",
            x.reshape(40, 64), y)


def test_validation_data_with_other_outputs_is_refused(rng):
    class Widening:
        """Gives 10 outputs for 8x8 images and 12 for 9x9 ones (a model that should not exist)."""

        params, grads = {}, {}

        def forward(self, x):
            return np.zeros((len(x), 10 if x.shape[-1] == 8 else 12))

        def backward(self, dout):
            return dout

    x, y = data(rng)
    refused(Sequential(Widening()), ValueError,
            r"validation_data: the model gives 12 outputs for each sample of its x, 10 for each sample of the training x",
            x, y, validation_data=(np.zeros((4, 1, 9, 9)), y[:4]))


def test_evaluate_checks_its_data_once_and_fit_not_every_epoch(rng, monkeypatch):
    import cnnlib.train

    x, y = data(rng)
    x[2, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"^x holds nan at sample 2"):
        evaluate(reference_cnn(), x, y)
    x[2, 0, 0, 0] = 0
    calls = []
    check = cnnlib.train._check_data
    monkeypatch.setattr(cnnlib.train, "_check_data", lambda *a, **k: calls.append(k) or check(*a, **k))
    fit(reference_cnn(), x, y, optimizer=Adam(), epochs=3, validation_data=(x[:8], y[:8]), progress=False)
    assert len(calls) == 2  # the training pair and the validation pair, once each


def test_training_that_diverges_names_samples_in_the_callers_data(rng):
    x, y = data(rng)
    model = reference_cnn()
    with np.errstate(all="ignore"), pytest.raises(ValueError) as info:
        fit(model, x, y, optimizer=SGD(lr=1e200), batch_size=8, progress=False, seed=3)
    message = str(info.value)
    assert message.startswith("training diverged in epoch 1, batch ")
    assert "though x is; after " in message and "try a smaller learning rate" in message
    samples = [int(s) for s in message.split("outputs for samples ")[1].split(" of x")[0].replace(", ...", "").split(", ")]
    order = np.random.default_rng(3).permutation(40)
    batch = int(message.split("batch ")[1].split(":")[0]) - 1
    assert set(samples) <= set(order[batch * 8:(batch + 1) * 8])  # the caller's indices, in that batch


def test_inputs_too_large_for_the_model_are_told_apart_from_divergence(rng):
    x, y = data(rng)
    with np.errstate(all="ignore"):
        with pytest.raises(ValueError, match=r"epoch 1, batch 1: .* no update has been made yet, so x's values "
                                             r"are too large for the model"):
            fit(Sequential(Flatten(), Dense(64, 10, rng=0)), x * 1e308, y, optimizer=SGD(), progress=False)
