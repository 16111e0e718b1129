"""fit and evaluate: the reference network learns the digits, reproducibly.

Only the full training run is marked slow (about 2 s); the other tests use a few batches.
"""

import numpy as np
import pytest

import cnnlib
from cnnlib import (
    SGD,
    Adam,
    BatchNorm2D,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    MaxPool2D,
    ReLU,
    Sequential,
    evaluate,
    fit,
    predict,
    reference_cnn,
)
from cnnlib.datasets import load_digits


@pytest.fixture(scope="module")
def digits():
    return load_digits(dtype=np.float64)


class NoStep:
    """An optimizer that never changes anything: isolates fit's bookkeeping from learning."""

    def step(self, params, grads):
        pass


def test_fit_skips_the_gradient_of_the_images(digits, monkeypatch):
    (x, y), _ = digits
    model = reference_cnn(seed=0)
    calls = []
    backward = model.backward
    monkeypatch.setattr(model, "backward", lambda dout, **kw: calls.append(kw) or backward(dout, **kw))
    fit(model, x[:64], y[:64], optimizer=NoStep(), batch_size=32, progress=False)
    assert calls == [{"input_grad": False}] * 2


@pytest.mark.slow
def test_reference_cnn_learns_the_digits(digits):
    (x_train, y_train), (x_test, y_test) = digits
    # Measured: 98.1% test accuracy (353 of 360) in about 2 s. With 8 channels the same
    # network plateaus around 97-97.5%, too close to the 97% bar, hence the default of 16.
    model = reference_cnn(seed=0)
    history = fit(model, x_train, y_train, optimizer=Adam(lr=1e-2), epochs=15, batch_size=32,
                  seed=0, progress=False)
    loss, accuracy = evaluate(model, x_test, y_test)
    assert accuracy >= 0.97, f"test accuracy {accuracy:.4f}"
    assert loss < 0.15
    assert len(history["loss"]) == len(history["accuracy"]) == 15
    assert history["loss"][-1] < history["loss"][0] / 5
    assert history["loss"][1] < history["loss"][0] and history["accuracy"][-1] > history["accuracy"][0]
    assert history["accuracy"][-1] > 0.98  # on the training set


def test_same_seed_same_run(digits):
    (x_train, y_train), _ = digits
    x, y = x_train[:300], y_train[:300]
    runs = []
    for seed in (0, 0, 1):
        model = reference_cnn(seed=0)
        history = fit(model, x, y, optimizer=Adam(lr=1e-2), epochs=2, seed=seed, progress=False)
        runs.append((history, model.params()))
    (h0, p0), (h0_again, p0_again), (h1, _) = runs
    assert h0 == h0_again  # exactly equal floats, not approximately
    for name in p0:
        np.testing.assert_array_equal(p0[name], p0_again[name])
    assert h1["loss"] != h0["loss"]  # the seed sets the shuffle, and the shuffle matters
    assert h0["loss"][1] < h0["loss"][0]


def test_history_is_weighted_by_batch_size(digits):
    (x_train, y_train), _ = digits
    x, y = x_train[:30], y_train[:30]
    model = reference_cnn(seed=2)
    # 30 samples in batches of 7: the last batch holds 2. With the weights frozen, the epoch
    # average must equal the loss over all 30 samples at once.
    history = fit(model, x, y, optimizer=NoStep(), epochs=2, batch_size=7, progress=False)
    loss, accuracy = evaluate(model, x, y)
    assert history["loss"] == pytest.approx([loss, loss], rel=1e-12)
    assert history["accuracy"] == [accuracy, accuracy]


def test_validation_history(digits):
    (x_train, y_train), (x_test, y_test) = digits
    model = reference_cnn(seed=0)
    history = fit(model, x_train[:200], y_train[:200], optimizer=SGD(lr=0.1, momentum=0.9), epochs=3,
                  validation_data=(x_test, y_test), progress=False)
    assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 3 for v in history.values())
    assert (history["val_loss"][-1], history["val_accuracy"][-1]) == evaluate(model, x_test, y_test)
    assert history["val_accuracy"][-1] > 0.5  # 200 images and 3 epochs already beat chance (0.1)


def test_evaluate_touches_neither_params_nor_grads(digits):
    (x_train, y_train), _ = digits
    model = reference_cnn(seed=0)
    fit(model, x_train[:64], y_train[:64], optimizer=Adam(), progress=False)
    params = {k: v.copy() for k, v in model.params().items()}
    grads = {k: v.copy() for k, v in model.grads().items()}
    result = evaluate(model, x_train[:100], y_train[:100])
    assert evaluate(model, x_train[:100], y_train[:100], batch_size=1) == pytest.approx(result, rel=1e-12)
    for name in params:
        np.testing.assert_array_equal(model.params()[name], params[name])
        np.testing.assert_array_equal(model.grads()[name], grads[name])
    assert 0 <= result[1] <= 1 and result[0] > 0


def test_progress_bar_can_be_switched_off(digits, capsys):
    (x_train, y_train), _ = digits
    x, y = x_train[:64], y_train[:64]
    fit(reference_cnn(), x, y, optimizer=Adam(), epochs=2, batch_size=16, progress=True)
    out, err = capsys.readouterr()
    assert "epoch 1/2" in err and "epoch 2/2" in err
    assert "4/4" in err and "batch/s" in err and "loss=" in err
    fit(reference_cnn(), x, y, optimizer=Adam(), epochs=10, batch_size=64, progress=True)
    out, err = capsys.readouterr()
    assert "epoch  1/10" in err and "epoch 10/10" in err  # numbers right-aligned, bars in line
    fit(reference_cnn(), x, y, optimizer=Adam(), epochs=2, batch_size=16, progress=False)
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"y": np.zeros(5, dtype=int)}, ValueError, "x has 10 samples but y has 5 labels"),
        ({"y": np.zeros(10)}, TypeError, "y must hold integer class labels"),
        ({"epochs": 0}, ValueError, "epochs must be >= 1"),
        ({"epochs": 1.5}, TypeError, "epochs must be an int"),
        ({"batch_size": 0}, ValueError, "batch_size must be >= 1"),
        ({"optimizer": "adam"}, TypeError, "optimizer must have a step"),
        ({"validation_data": np.zeros((3, 1, 8, 8))}, ValueError, r"validation_data must be a pair"),
        ({"validation_data": (np.zeros((3, 1, 8, 8)), np.zeros(2, dtype=int))}, ValueError,
         "validation_data: x has 3 samples but y has 2"),
        ({"x": np.zeros((0, 1, 8, 8)), "y": np.zeros(0, dtype=int)}, ValueError, "no samples"),
    ],
)
def test_fit_bad_arguments(kwargs, error, match):
    args = {"x": np.zeros((10, 1, 8, 8)), "y": np.zeros(10, dtype=int), "optimizer": Adam(),
            "progress": False}
    args.update(kwargs)
    model = reference_cnn()
    before = model.params()["0_conv2d.w"].copy()
    with pytest.raises(error, match=match):
        fit(model, args.pop("x"), args.pop("y"), **args)
    np.testing.assert_array_equal(model.params()["0_conv2d.w"], before)  # refused before training


def test_evaluate_bad_arguments():
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        evaluate(reference_cnn(), np.zeros((2, 1, 8, 8)), np.zeros(2, dtype=int), batch_size=0)
    with pytest.raises(ValueError, match="x has 2 samples but y has 3 labels"):
        evaluate(reference_cnn(), np.zeros((2, 1, 8, 8)), np.zeros(3, dtype=int))


@pytest.mark.parametrize(
    "make_optimizer", [lambda: SGD(lr=0.1, momentum=0.9), lambda: Adam(lr=1e-2)], ids=["sgd", "adam"]
)
def test_float32_model_stays_float32(digits, make_optimizer):
    (x_train, y_train), _ = digits
    model = reference_cnn(dtype=np.float32)
    x = x_train[:128].astype(np.float32)
    history = fit(model, x, y_train[:128], optimizer=make_optimizer(), epochs=2, progress=False)
    assert all(p.dtype == np.float32 for p in model.params().values())
    assert all(g.dtype == np.float32 for g in model.grads().values())
    assert model.forward(x[:4]).dtype == np.float32  # the whole forward pass ran in float32
    assert history["loss"][1] < history["loss"][0]


def test_bad_labels_are_refused_before_any_update(digits):
    (x_train, y_train), _ = digits
    model = reference_cnn(seed=0)
    before = {k: v.copy() for k, v in model.params().items()}
    y = y_train[:64].copy()
    y[-1] = 10  # the last batch holds a class the 10-output model does not have
    with pytest.raises(ValueError, match=r"labels must be in 0..9, the model's 10 outputs; got values from 0 to 10"):
        fit(model, x_train[:64], y, optimizer=SGD(lr=0.1), batch_size=16, progress=False)
    with pytest.raises(ValueError, match=r"validation_data y: labels must be in 0..9"):
        fit(model, x_train[:64], y_train[:64], optimizer=SGD(lr=0.1), progress=False,
            validation_data=(x_train[:8], np.full(8, -1)))
    for name, value in model.params().items():
        np.testing.assert_array_equal(value, before[name])


@pytest.mark.parametrize("seed", [1.5, -1, True])
def test_fit_rejects_a_bad_seed(digits, seed):
    (x_train, y_train), _ = digits
    with pytest.raises(TypeError, match="seed must be a non-negative int"):
        fit(reference_cnn(), x_train[:8], y_train[:8], optimizer=SGD(), seed=seed, progress=False)


# --- training and eval modes, augmentation (issue 26) ---------------------------------------------


class ModeSpy:
    """A layer of one's own (no cnnlib base class) that records its `training` flag at each forward."""

    def __init__(self):
        self.params, self.grads, self.seen = {}, {}, []

    def forward(self, x):
        self.seen.append(getattr(self, "training", "absent"))
        return x

    def backward(self, dout):
        return dout


def spy_cnn():
    rng = np.random.default_rng(0)
    spy = ModeSpy()
    model = Sequential(spy, Conv2D(1, 4, 3, pad=1, rng=rng), BatchNorm2D(4), ReLU(), MaxPool2D(2), Flatten(),
                       Dropout(0.3, rng=0), Dense(64, 10, rng=rng))
    return model, spy


def test_fit_trains_in_train_mode_validates_in_eval_mode_and_restores_the_modes(digits):
    (x_train, y_train), (x_test, y_test) = digits
    model, spy = spy_cnn()
    model.eval()  # fit trains in train mode whatever mode the model was left in
    fit(model, x_train[:64], y_train[:64], optimizer=SGD(lr=0.1), epochs=2, batch_size=32,
        validation_data=(x_test[:10], y_test[:10]), progress=False)
    # the first forwards find the number of outputs (one sample each, in eval mode)
    assert spy.seen == [False, False] + [True, True, False] * 2
    assert not any(layer.training for layer in model.layers)  # as it was before fit
    model.train()
    fit(model, x_train[:32], y_train[:32], optimizer=SGD(lr=0.1), progress=False)
    assert all(layer.training for layer in model.layers)


def test_evaluate_and_predict_run_in_eval_mode_and_restore_each_layers_mode(digits):
    (x, y), _ = digits
    model, spy = spy_cnn()
    model.layers[2].training = False  # a mix: each layer's own flag comes back
    modes = [getattr(layer, "training", "absent") for layer in model.layers]
    assert modes[0] == "absent"
    running = model.layers[2].running_mean.copy()
    loss, accuracy = evaluate(model, x[:20], y[:20], batch_size=8)
    logits = predict(model, x[:20], batch_size=8)
    assert spy.seen == [False] * 6
    assert [getattr(layer, "training", "absent") for layer in model.layers] == modes  # "absent" stays absent
    np.testing.assert_array_equal(model.layers[2].running_mean, running)  # eval updates nothing
    assert logits.shape == (20, 10)
    np.testing.assert_array_equal(logits, predict(model, x[:20], batch_size=20))  # the batch does not matter
    assert accuracy == np.mean(logits.argmax(axis=1) == y[:20])


def test_modes_are_restored_when_evaluate_or_fit_fails(digits):
    (x, y), _ = digits
    model, _ = spy_cnn()

    class Broken(Exception):
        pass

    def explode(dout, **kwargs):
        raise Broken

    with pytest.raises(ValueError):
        evaluate(model, x[:4], np.array([0, 1, 2, 11]))  # a label the model has no output for
    assert all(getattr(layer, "training", True) for layer in model.layers)
    model.layers[-1].backward = explode
    with pytest.raises(Broken):
        fit(model.eval(), x[:8], y[:8], optimizer=SGD(lr=0.1), progress=False)
    assert not any(layer.training for layer in model.layers)


def test_batchnorm_running_statistics_are_updated_by_training_batches_only(digits):
    (x, y), (x_test, y_test) = digits
    model, _ = spy_cnn()
    conv_out = model.layers[1].forward(x[:64])  # what BN sees in the one training step, before the update
    fit(model, x[:64], y[:64], optimizer=SGD(lr=0.01), epochs=1, batch_size=64, progress=False,
        validation_data=(x_test[:50], y_test[:50]))
    # One batch of all 64 samples (in a shuffled order, which a mean ignores), momentum 0.1,
    # starting from 0 and 1; the validation data in eval mode added nothing.
    bn = model.layers[2]
    np.testing.assert_allclose(bn.running_mean, 0.1 * conv_out.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(bn.running_var, 0.9 + 0.1 * conv_out.var(axis=(0, 2, 3), ddof=1), rtol=1e-12)
    state = {k: v.copy() for k, v in {**model.params(), **model.buffers()}.items()}
    for _ in range(2):
        evaluate(model, x_test, y_test)
        predict(model, x_test)
    for name, value in {**model.params(), **model.buffers()}.items():
        np.testing.assert_array_equal(value, state[name])


def test_fit_applies_augment_to_training_batches_only_reproducibly(digits):
    (x, y), (x_test, y_test) = digits
    seen = []

    def augment(xb, rng):
        seen.append(xb.shape)
        return cnnlib.augment.random_shift(xb, 1, rng=rng)

    runs = []
    for _ in range(2):
        model = reference_cnn(seed=0)
        history = fit(model, x[:40], y[:40], optimizer=SGD(lr=0.1), epochs=2, batch_size=16, progress=False,
                      validation_data=(x_test[:30], y_test[:30]), augment=augment)
        runs.append((history, model.params()["0_conv2d.w"].copy()))
    assert seen == [(16, 1, 8, 8), (16, 1, 8, 8), (8, 1, 8, 8)] * 4  # training batches, never validation
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    plain = reference_cnn(seed=0)
    fit(plain, x[:40], y[:40], optimizer=SGD(lr=0.1), epochs=2, batch_size=16, progress=False)
    assert not np.array_equal(plain.params()["0_conv2d.w"], runs[0][1])  # the augmentation did something


def test_fit_refuses_a_bad_augment(digits):
    (x, y), _ = digits
    with pytest.raises(TypeError, match="augment must be a function augment"):
        fit(reference_cnn(), x[:8], y[:8], optimizer=SGD(), augment="shift", progress=False)
    with pytest.raises(ValueError, match=r"augment\(x_batch, rng\) must return an array of the batch's shape "
                                         r"\(8, 1, 8, 8\), got an array of shape \(8, 1, 6, 6\)"):
        fit(reference_cnn(), x[:8], y[:8], optimizer=SGD(), progress=False,
            augment=lambda xb, rng: cnnlib.augment.random_crop(xb, 6, rng=rng))


def test_predict_checks_its_arguments():
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        predict(reference_cnn(), np.zeros((2, 1, 8, 8)), batch_size=0)
    with pytest.raises(ValueError, match="no samples"):
        predict(reference_cnn(), np.zeros((0, 1, 8, 8)))
    with pytest.raises(TypeError, match="model must be a Sequential"):
        predict([Flatten()], np.zeros((2, 1, 8, 8)))


@pytest.mark.slow
def test_a_deeper_bn_dropout_network_learns_the_digits(digits):
    # Two conv stages, BN and dropout, AdamW, 3 epochs: measured 92.5% test accuracy (96-97%
    # with other seeds), about 3 s.
    (x_train, y_train), (x_test, y_test) = digits
    rng = np.random.default_rng(0)
    model = Sequential(Conv2D(1, 8, 3, pad=1, rng=rng), BatchNorm2D(8), ReLU(), MaxPool2D(2),
                       Conv2D(8, 16, 3, pad=1, rng=rng), BatchNorm2D(16), ReLU(), MaxPool2D(2),
                       Flatten(), Dropout(0.2, rng=1), Dense(64, 10, rng=rng))
    fit(model, x_train, y_train, optimizer=cnnlib.AdamW(lr=1e-2), epochs=3, batch_size=32, progress=False)
    _, accuracy = evaluate(model, x_test, y_test)
    assert accuracy > 0.9, accuracy
