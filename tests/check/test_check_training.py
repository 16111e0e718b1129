"""cnnlib.check's lesson 8-9 checks (training.py): each passes a correct implementation and
fails a buggy one with the catalogue's hint for its mistake."""

import warnings

import numpy as np
import pytest

import cnnlib
from cnnlib import check
from cnnlib.check.fallback import exercise
from lesson8_layers import MyDense, MyReLU  # lesson 8's, as a learner writes them

pytestmark = pytest.mark.usefixtures("no_detector_breaks")  # see conftest.py


def first_line(report):
    return str(report).splitlines()[0]


def assert_passed(report, name):
    assert report.passed, str(report)
    assert first_line(report).startswith(f"check.{name}: PASSED")
    assert not report.hints, report.hints


def assert_mistake(report, key):
    assert not report.passed
    assert key in report.mistakes, str(report)


# ---- lesson 8: the learner's layers -------------------------------------------------------


class DenseFromScratch:
    """Written without cnnlib's functions, grads replaced rather than written into: passes."""

    def __init__(self, w, b):
        self.params = {"w": w, "b": b}
        self.grads = {"w": np.zeros_like(w), "b": np.zeros_like(b)}

    def forward(self, x):
        self.x = x
        return x @ self.params["w"] + self.params["b"]

    def backward(self, dout):
        self.grads = {"w": self.x.T @ dout, "b": dout.sum(axis=0)}
        return dout @ self.params["w"].T


class DenseReturnsCache(MyDense):
    def forward(self, x):
        out, self.cache = cnnlib.dense_forward(x, self.params["w"], self.params["b"])
        return out, self.cache


class DenseReturnsParamGrads(MyDense):
    def backward(self, dout):
        dx, dw, db = cnnlib.dense_backward(dout, self.cache)
        self.grads["w"][...] = dw
        self.grads["b"][...] = db
        return dx, dw, db


class DenseGradKeys(MyDense):
    def __init__(self, w, b):
        super().__init__(w, b)
        self.grads = {"dw": np.zeros_like(w), "db": np.zeros_like(b)}

    def backward(self, dout):
        dx, self.grads["dw"][...], self.grads["db"][...] = cnnlib.dense_backward(dout, self.cache)
        return dx


class DenseGradsNotStored(MyDense):
    def backward(self, dout):
        dx, dw, db = cnnlib.dense_backward(dout, self.cache)
        return dx


class DenseAccumulates(MyDense):
    def backward(self, dout):
        dx, dw, db = cnnlib.dense_backward(dout, self.cache)
        self.grads["w"] += dw
        self.grads["b"] += db
        return dx


class DenseStaleCache(MyDense):
    def forward(self, x):
        out, cache = cnnlib.dense_forward(x, self.params["w"], self.params["b"])
        if self.cache is None:
            self.cache = cache
        return out

    def backward(self, dout):
        dx = super().backward(dout)
        self.cache = None
        return dx


class ReLUInPlace(MyReLU):
    def forward(self, x):
        self.cache = x.copy()
        x[x < 0] = 0
        return x

    def backward(self, dout):
        return dout * (self.cache > 0)


class StubDense:
    def __init__(self, w, b):
        self.params = {"w": w, "b": b}
        self.grads = {"w": np.zeros_like(w), "b": np.zeros_like(b)}

    def forward(self, x):
        raise NotImplementedError("MyDense.forward: not written yet")

    def backward(self, dout):
        raise NotImplementedError("MyDense.backward: not written yet")


def test_layer_passes_the_lessons_layers():
    assert_passed(check.layer(MyDense, "dense"), "layer")
    assert_passed(check.layer(MyReLU, "relu"), "layer")
    report = check.layer(DenseFromScratch, "dense")
    assert_passed(report, "layer")


@pytest.mark.parametrize("cls, key", [
    (DenseReturnsCache, "layer_returns_cache"),
    (DenseReturnsParamGrads, "layer_returns_param_grads"),
    (DenseGradKeys, "layer_grads_keys"),
    (DenseGradsNotStored, "layer_grads_not_stored"),
    (DenseAccumulates, "grads_accumulate"),
    (DenseStaleCache, "stale_cache"),
])
def test_layer_recognises_dense_mistakes(cls, key):
    report = check.layer(cls, "dense")
    assert first_line(report).startswith("check.layer: FAILED")
    assert_mistake(report, key)


def test_layer_relu_in_place():
    assert_mistake(check.layer(ReLUInPlace, "relu"), "in_place")


def test_layer_stub_and_fallback():
    report = check.layer(StubDense, "dense")
    assert first_line(report) == "check.layer: NOT WRITTEN YET"
    assert "StubDense still raises NotImplementedError (in forward, line" in str(report)
    decorated = exercise(fallback=check.training.dense_with)(StubDense)
    assert first_line(check.layer(decorated, "dense")) == "check.layer: NOT WRITTEN YET"


def test_layer_wrong_call():
    with pytest.raises(TypeError):
        check.layer(MyDense)
    with pytest.raises(TypeError):
        check.layer(MyDense, "conv")
    with pytest.raises(TypeError):
        check.layer(42, "dense")


def test_dense_with_holds_the_given_arrays(rng):
    w, b = rng.standard_normal((5, 3)), rng.standard_normal(3)
    layer = check.training.dense_with(w, b)
    assert layer.params["w"] is w and layer.params["b"] is b
    x = rng.standard_normal((2, 5))
    assert np.allclose(layer.forward(x), x @ w + b)


# ---- lesson 8: the two loops --------------------------------------------------------------

def run_forward(layers, x):
    for layer in layers:
        x = layer.forward(x)
    return x


def run_backward(layers, dout):
    for layer in reversed(layers):
        dout = layer.backward(dout)
    return dout


def forward_same_input(layers, x):
    out = x
    for layer in layers:
        out = layer.forward(x)
    return out


def forward_reversed(layers, x):
    for layer in reversed(layers):
        x = layer.forward(x)
    return x


def backward_forward_order(layers, dout):
    for layer in layers:
        dout = layer.backward(dout)
    return dout


def backward_same_dout(layers, dout):
    dx = None
    for layer in reversed(layers):
        dx = layer.backward(dout)
    return dx


def backward_reverses_list(layers, dout):
    layers.reverse()
    for layer in layers:
        dout = layer.backward(dout)
    return dout


def backward_skips_first(layers, dout):
    for layer in reversed(layers[1:]):
        dout = layer.backward(dout)
    return dout


def backward_no_return(layers, dout):
    for layer in reversed(layers):
        dout = layer.backward(dout)


def test_sequential_passes():
    assert_passed(check.sequential(forward=run_forward, backward=run_backward), "sequential")
    assert_passed(check.sequential(forward=run_forward), "sequential")
    assert_passed(check.sequential(backward=run_backward), "sequential")


@pytest.mark.parametrize("kwargs, key", [
    ({"forward": forward_same_input}, "forward_same_input"),
    ({"forward": forward_reversed}, "forward_order"),
    ({"backward": backward_forward_order}, "backward_forward_order"),
    ({"backward": backward_same_dout}, "backward_same_dout"),
    ({"backward": backward_reverses_list}, "layers_changed"),
    ({"backward": backward_skips_first}, "backward_skips_layer"),
    ({"backward": backward_no_return}, "returns_none"),
])
def test_sequential_recognises_mistakes(kwargs, key):
    report = check.sequential(**kwargs)
    assert first_line(report).startswith("check.sequential: FAILED")
    assert_mistake(report, key)


def test_sequential_stub_and_wrong_call():
    def stub(layers, x):
        raise NotImplementedError("run_forward: not written yet")

    assert first_line(check.sequential(forward=stub)) == "check.sequential: NOT WRITTEN YET"
    decorated = exercise(fallback=check.training.run_forward)(stub)
    assert first_line(check.sequential(forward=decorated)) == "check.sequential: NOT WRITTEN YET"
    with pytest.raises(TypeError):
        check.sequential()
    with pytest.raises(TypeError):
        check.sequential(run_forward=run_forward)


# ---- lesson 8: a whole network of the learner's layers --------------------------------------

def mlp(cls_dense=MyDense, cls_relu=MyReLU, seed=0):
    r = np.random.default_rng(seed)
    return cnnlib.Sequential(cls_dense(r.standard_normal((5, 6)), r.standard_normal(6)), cls_relu(),
                             cls_dense(r.standard_normal((6, 3)), r.standard_normal(3)))


def test_network_passes_own_and_cnnlib_layers():
    model = mlp()
    before = {k: p.copy() for k, p in model.params().items()}
    assert_passed(check.network(model, (5,)), "network")
    assert all(np.array_equal(before[k], p) for k, p in model.params().items())
    cnn = cnnlib.Sequential(cnnlib.Conv2D(1, 2, 3, pad=1, rng=0), cnnlib.ReLU(), cnnlib.MaxPool2D(2),
                            cnnlib.Flatten(), cnnlib.Dense(8, 3, rng=1))
    assert_passed(check.network(cnn, (1, 4, 4)), "network")


class DenseWrongDw(MyDense):
    def backward(self, dout):
        dx, dw, db = cnnlib.dense_backward(dout, self.cache)
        self.grads["w"][...] = 2 * dw
        self.grads["b"][...] = db
        return dx


def test_network_recognises_mistakes():
    report = check.network(mlp(DenseWrongDw), (5,))
    assert not report.passed and "0_densewrongdw.w" in str(report)
    assert_mistake(check.network(mlp(DenseAccumulates), (5,)), "grads_accumulate")


def test_network_wrong_call():
    with pytest.raises(TypeError):
        check.network(mlp())
    with pytest.raises(TypeError):
        check.network(object(), (5,))


# ---- lesson 9: optimizer steps ------------------------------------------------------------

def sgd_momentum_step(params, grads, velocity, lr=0.01, momentum=0.9):
    for name, p in params.items():
        if name not in velocity:
            velocity[name] = np.zeros_like(p)
        v = velocity[name]
        v *= momentum
        v += grads[name]
        p -= lr * v


def sgd_other_convention(params, grads, velocity, lr=0.01, momentum=0.9):
    for name, p in params.items():
        v = velocity.get(name, np.zeros_like(p))
        velocity[name] = v = momentum * v - lr * grads[name]
        p += v


def sgd_sign(params, grads, velocity, lr=0.01, momentum=0.9):
    for name, p in params.items():
        v = velocity.setdefault(name, np.zeros_like(p))
        v *= momentum
        v -= grads[name]
        p -= lr * v


def sgd_not_kept(params, grads, velocity, lr=0.01, momentum=0.9):
    for name, p in params.items():
        v = velocity.get(name, np.zeros_like(p))
        v = momentum * v + grads[name]  # never stored back
        p -= lr * v


def sgd_dampened(params, grads, velocity, lr=0.01, momentum=0.9):
    for name, p in params.items():
        v = velocity.setdefault(name, np.zeros_like(p))
        v *= momentum
        v += (1 - momentum) * grads[name]
        p -= lr * v


def sgd_lag(params, grads, velocity, lr=0.01, momentum=0.9):
    for name, p in params.items():
        v = velocity.setdefault(name, np.zeros_like(p))
        p -= lr * v
        v *= momentum
        v += grads[name]


def sgd_not_in_place(params, grads, velocity, lr=0.01, momentum=0.9):
    for name, p in list(params.items()):
        v = velocity.setdefault(name, np.zeros_like(p))
        v *= momentum
        v += grads[name]
        params[name] = p - lr * v


def test_sgd_momentum_passes():
    assert_passed(check.sgd_momentum(sgd_momentum_step), "sgd_momentum")
    assert_passed(check.sgd_momentum(sgd_other_convention), "sgd_momentum")
    assert_passed(check.sgd_momentum(check.training.sgd_momentum_step), "sgd_momentum")


@pytest.mark.parametrize("fn, key", [
    (sgd_sign, "momentum_sign"), (sgd_not_kept, "momentum_not_kept"), (sgd_dampened, "momentum_dampened"),
    (sgd_lag, "momentum_lag"), (sgd_not_in_place, "update_not_in_place"),
])
def test_sgd_momentum_recognises_mistakes(fn, key):
    report = check.sgd_momentum(fn)
    assert first_line(report).startswith("check.sgd_momentum: FAILED")
    assert_mistake(report, key)


def adam_step(params, grads, state, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    if not state:
        state["t"] = 0
        state["m"] = {name: np.zeros_like(p) for name, p in params.items()}
        state["v"] = {name: np.zeros_like(p) for name, p in params.items()}
    state["t"] += 1
    t = state["t"]
    for name, p in params.items():
        g, m, v = grads[name], state["m"][name], state["v"][name]
        m *= beta1
        m += (1 - beta1) * g
        v *= beta2
        v += (1 - beta2) * g * g
        m_hat = m / (1 - beta1 ** t)
        v_hat = v / (1 - beta2 ** t)
        p -= lr * m_hat / (np.sqrt(v_hat) + eps)


def adam_variant(correct=True, t0=0, keep=True, sqrt=True, eps_inside=False, swap=False):
    def step(params, grads, state, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
        b1, b2 = (beta2, beta1) if swap else (beta1, beta2)
        if not state or not keep:
            state.setdefault("t", t0)
            state["m"] = {name: np.zeros_like(p) for name, p in params.items()}
            state["v"] = {name: np.zeros_like(p) for name, p in params.items()}
        t = state["t"] + 1
        for name, p in params.items():
            g, m, v = grads[name], state["m"][name], state["v"][name]
            m[...] = b1 * m + (1 - b1) * g
            v[...] = b2 * v + (1 - b2) * g * g
            m_hat, v_hat = (m / (1 - b1 ** t), v / (1 - b2 ** t)) if correct else (m, v)
            if eps_inside:
                p -= lr * m_hat / np.sqrt(v_hat + eps)
            else:
                p -= lr * m_hat / ((np.sqrt(v_hat) if sqrt else v_hat) + eps)
        state["t"] += 1
    return step


def adam_from_0(params, grads, state, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    if not state:
        state.update(t=0, m={n: np.zeros_like(p) for n, p in params.items()},
                     v={n: np.zeros_like(p) for n, p in params.items()})
    t = state["t"]
    for name, p in params.items():
        g, m, v = grads[name], state["m"][name], state["v"][name]
        m[...] = beta1 * m + (1 - beta1) * g
        v[...] = beta2 * v + (1 - beta2) * g * g
        p -= lr * (m / (1 - beta1 ** t)) / (np.sqrt(v / (1 - beta2 ** t)) + eps)
    state["t"] += 1


def test_adam_passes():
    assert_passed(check.adam(adam_step), "adam")
    assert_passed(check.adam(adam_variant()), "adam")
    assert_passed(check.adam(check.training.adam_step), "adam")


@pytest.mark.parametrize("fn, key", [
    (adam_variant(correct=False), "adam_no_bias_correction"),
    (adam_from_0, "adam_step_from_0"),
    (adam_variant(t0=1), "adam_step_from_2"),
    (adam_variant(keep=False), "adam_not_kept"),
    (adam_variant(sqrt=False), "adam_no_sqrt"),
    (adam_variant(eps_inside=True), "adam_eps_inside"),
    (adam_variant(swap=True), "adam_betas_swapped"),
])
def test_adam_recognises_mistakes(fn, key):
    report = check.adam(fn)
    assert first_line(report).startswith("check.adam: FAILED")
    assert_mistake(report, key)


def test_optimizer_stubs_and_wrong_calls():
    def stub(params, grads, state, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
        raise NotImplementedError("adam_step: not written yet")

    assert first_line(check.adam(stub)) == "check.adam: NOT WRITTEN YET"
    def sgd_stub(params, grads, velocity, lr=0.01, momentum=0.9):
        raise NotImplementedError("sgd_momentum_step: not written yet")

    decorated = exercise(fallback=check.training.sgd_momentum_step)(sgd_stub)
    assert first_line(check.sgd_momentum(decorated)) == "check.sgd_momentum: NOT WRITTEN YET"
    with pytest.raises(TypeError):
        check.adam()
    with pytest.raises(TypeError):
        check.sgd_momentum(sgd_momentum_step, lr=0.1)


def test_reference_steps_agree_with_cnnlib_optimizers(rng):
    params = {"a": rng.standard_normal((3, 2)), "b": rng.standard_normal(2)}
    ours, theirs = {k: p.copy() for k, p in params.items()}, {k: p.copy() for k, p in params.items()}
    sgd_state, adam_state = {}, {}
    sgd, adam = cnnlib.SGD(lr=0.1, momentum=0.9), cnnlib.Adam(lr=0.01)
    ours2, theirs2 = {k: p.copy() for k, p in params.items()}, {k: p.copy() for k, p in params.items()}
    for _ in range(3):
        grads = {k: rng.standard_normal(p.shape) for k, p in params.items()}
        sgd_momentum_step(ours, grads, sgd_state, lr=0.1, momentum=0.9)
        sgd.step(theirs, grads)
        adam_step(ours2, grads, adam_state, lr=0.01)
        adam.step(theirs2, grads)
    for k in params:
        assert np.array_equal(ours[k], theirs[k]) and np.array_equal(ours2[k], theirs2[k])


# ---- lesson 9: the epoch ----------------------------------------------------------------

def train_one_epoch(model, x, y, step, batch_size, rng):
    order = rng.permutation(len(x))
    loss_sum = 0.0
    for start in range(0, len(x), batch_size):
        idx = order[start:start + batch_size]
        loss, dlogits = cnnlib.softmax_cross_entropy(model.forward(x[idx]), y[idx])
        model.backward(dlogits, input_grad=False)
        step(model.params(), model.grads())
        loss_sum += loss * len(idx)
    return loss_sum / len(x)


def epoch_variant(kind):
    def epoch(model, x, y, step, batch_size, rng):
        n = len(x)
        order = np.arange(n) if kind == "no_shuffle" else (
            np.random.default_rng(12345).permutation(n) if kind == "own_rng" else rng.permutation(n))
        order_y = rng.permutation(n) if kind == "separate" else order
        stop = (n // batch_size) * batch_size if kind == "skip_last" else n
        losses = []
        for start in range(0, stop, batch_size):
            ix, iy = order[start:start + batch_size], order_y[start:start + batch_size]
            loss, dlogits = cnnlib.softmax_cross_entropy(model.forward(x[ix]), y[iy])
            model.backward(dlogits)
            step(model.params(), model.grads())
            losses.append((loss, len(ix)))
        if kind == "unweighted":
            return float(np.mean([l for l, _ in losses]))
        if kind == "last":
            return losses[-1][0]
        return sum(l * k for l, k in losses) / sum(k for _, k in losses)
    return epoch


def test_train_epoch_passes():
    assert_passed(check.train_epoch(train_one_epoch), "train_epoch")
    assert_passed(check.train_epoch(check.training.train_one_epoch), "train_epoch")
    assert_passed(check.train_epoch(epoch_variant("right")), "train_epoch")


@pytest.mark.parametrize("kind, key", [
    ("no_shuffle", "epoch_no_shuffle"), ("own_rng", "epoch_own_rng"), ("separate", "epoch_separate_shuffles"),
    ("skip_last", "epoch_skips_last"), ("unweighted", "epoch_unweighted_loss"), ("last", "epoch_last_loss"),
])
def test_train_epoch_recognises_mistakes(kind, key):
    report = check.train_epoch(epoch_variant(kind))
    assert first_line(report).startswith("check.train_epoch: FAILED")
    assert_mistake(report, key)


def test_train_epoch_stub_and_wrong_call():
    def stub(model, x, y, step, batch_size, rng):
        raise NotImplementedError("train_one_epoch: not written yet")

    assert first_line(check.train_epoch(stub)) == "check.train_epoch: NOT WRITTEN YET"
    with pytest.raises(TypeError):
        check.train_epoch()


def test_reports_are_deterministic():
    assert str(check.train_epoch(epoch_variant("separate"))) == str(check.train_epoch(epoch_variant("separate")))
    assert str(check.adam(adam_from_0)) == str(check.adam(adam_from_0))
    assert str(check.sequential(backward=backward_same_dout)) == str(check.sequential(backward=backward_same_dout))


# ---- found by an outside review: hints only for wrong numbers, NaN never passes ----

def test_a_right_step_that_zeroes_the_grads_gets_no_momentum_hint():
    from cnnlib.check import training

    def sgd_zeroing(params, grads, velocity, lr=0.01, momentum=0.9):
        training.sgd_momentum_step(params, grads, velocity, lr=lr, momentum=momentum)
        for g in grads.values():
            g[...] = 0  # PyTorch's zero_grad habit: changes the caller's grads, the numbers are right

    def adam_zeroing(params, grads, state, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
        training.adam_step(params, grads, state, lr=lr, beta1=beta1, beta2=beta2, eps=eps)
        for g in grads.values():
            g[...] = 0

    for run, fn in ((check.sgd_momentum, sgd_zeroing), (check.adam, adam_zeroing)):
        report = run(fn)
        assert not report.passed
        assert not any(key in report.mistakes
                       for key in ("momentum_not_kept", "momentum_dampened", "adam_eps_inside")), str(report)


def test_an_epoch_returning_a_nan_loss_fails():
    from cnnlib.check import training

    def epoch(model, x, y, step, batch_size, rng):
        training.train_one_epoch(model, x, y, step, batch_size, rng)
        return float(np.mean([]))  # the losses were never collected

    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        report = check.train_epoch(epoch)
    assert not report.passed, str(report)


def test_network_refuses_an_input_shape_that_is_not_a_tuple():
    with pytest.raises(TypeError, match="input_shape"):
        check.network(cnnlib.Sequential(cnnlib.Dense(3, 2, rng=np.random.default_rng(0))), 5)
