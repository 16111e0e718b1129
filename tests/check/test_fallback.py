"""check.exercise: a stub falls back to cnnlib's version and says so once; written code is used."""

import inspect

import numpy as np
import pytest

import cnnlib
import cnnlib.explorers.flatten
from cnnlib.check.fallback import exercise, fallback_name


def stub_dense_backward(dout, cache):
    """The learner's docstring."""
    # Your code here.
    raise NotImplementedError("dense_backward: not written yet")


stub_dense_backward.__name__ = "dense_backward"


def dense_case(rng):
    x, w, b = rng.standard_normal((4, 5)), rng.standard_normal((5, 3)), rng.standard_normal(3)
    out, cache = cnnlib.dense_forward(x, w, b)
    return rng.standard_normal(out.shape), cache


def test_a_stub_falls_back_and_says_so_once(rng, capsys):
    dense_backward = exercise(fallback=cnnlib.dense_backward)(stub_dense_backward)
    dout, cache = dense_case(rng)
    for _ in range(3):
        got = dense_backward(dout, cache)
        for a, b in zip(got, cnnlib.dense_backward(dout, cache)):
            np.testing.assert_array_equal(a, b)
    assert capsys.readouterr().out == \
        "dense_backward is not written yet: the cells below use cnnlib.dense_backward.\n"


def test_each_decorated_function_says_so_once_for_itself(capsys):
    def stub(x):
        raise NotImplementedError

    first, second = exercise(fallback=abs)(stub), exercise(fallback=abs)(stub)
    assert (first(-2), first(-3), second(-4)) == (2, 3, 4)
    assert capsys.readouterr().out.count("stub is not written yet") == 2


def test_a_written_function_is_used_and_nothing_is_printed(capsys):
    calls = []

    def relu_forward(x):
        calls.append(x)
        return "the learner's answer", None

    decorated = exercise(fallback=cnnlib.relu_forward)(relu_forward)
    assert decorated(np.ones(3)) == ("the learner's answer", None)
    assert len(calls) == 1
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("error", [ValueError("bad shape"), IndexError("out of range"), TypeError("no")])
def test_other_exceptions_propagate_unchanged(error, capsys):
    def wrong(x):
        raise error

    decorated = exercise(fallback=lambda x: "never used")(wrong)
    with pytest.raises(type(error)) as raised:
        decorated(1)
    assert raised.value is error
    assert capsys.readouterr().out == ""


def test_signature_name_doc_and_wrapped_are_the_learners():
    decorated = exercise(fallback=cnnlib.dense_backward)(stub_dense_backward)
    assert decorated.__wrapped__ is stub_dense_backward
    assert decorated.__exercise_fallback__ is cnnlib.dense_backward  # how the checks know this wrapper
    assert inspect.signature(decorated) == inspect.signature(stub_dense_backward)
    assert str(inspect.signature(decorated)) == "(dout, cache)"
    assert decorated.__name__ == "dense_backward" and decorated.__doc__ == "The learner's docstring."


def test_the_message_names_a_lambda_as_cnnlibs_version(capsys):
    def conv_forward(x, w, b, stride, pad):
        raise NotImplementedError

    adapted = exercise(fallback=lambda x, w, b, stride, pad: cnnlib.conv2d_forward(x, w, b, stride=stride, pad=pad))
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((1, 1, 4, 4)), rng.standard_normal((2, 1, 3, 3)), np.zeros(2)
    out, _ = adapted(conv_forward)(x, w, b, 1, 1)
    assert out.shape == (1, 2, 4, 4)
    assert capsys.readouterr().out == "conv_forward is not written yet: the cells below use cnnlib's version.\n"


def test_fallback_names():
    assert fallback_name(cnnlib.dense_backward) == "cnnlib.dense_backward"  # defined in cnnlib.dense
    assert fallback_name(cnnlib.Dense) == "cnnlib.Dense"
    assert fallback_name(cnnlib.explorers.flatten.flat_index) == "cnnlib.explorers.flatten.flat_index"
    assert fallback_name(np.maximum) == "numpy.maximum"
    assert fallback_name(lambda x: x) == "cnnlib's version"
    from cnnlib.check import training
    assert fallback_name(training.adam_step) == "cnnlib's version"


def test_bad_arguments_are_refused_by_name():
    with pytest.raises(TypeError, match="fallback must be a function or class, not int"):
        exercise(fallback=3)
    with pytest.raises(TypeError, match="decorates a function or a class, not str"):
        exercise(fallback=abs)("dense_backward")


# ---------------------------------------------------------------------------------------
# Classes: an instance switches to the fallback class at its first NotImplementedError

class StubReLU(cnnlib.Layer):
    """A learner's layer whose _forward is still a stub; Layer.forward calls it."""

    def __init__(self, label="mine"):
        super().__init__()
        self.label = label

    def _forward(self, x):
        raise NotImplementedError("ReLU: not written yet")

    def _backward(self, dout, cache):
        raise NotImplementedError("ReLU: not written yet")

    def greeting(self):
        return f"hello from {self.label}"


class FallbackReLU(cnnlib.ReLU):
    def __init__(self, label="fallback"):
        super().__init__()
        self.label = label


def test_a_class_behaves_as_the_learners_until_a_method_is_not_written(capsys):
    ReLU = exercise(fallback=FallbackReLU)(StubReLU)
    layer = ReLU(label="first")
    assert isinstance(layer, StubReLU) and ReLU.__wrapped__ is StubReLU
    assert (ReLU.__name__, ReLU.__qualname__, ReLU.__doc__) == ("StubReLU", StubReLU.__qualname__, StubReLU.__doc__)
    assert layer.greeting() == "hello from first" and capsys.readouterr().out == ""

    # Layer.forward (inherited) calls the stub _forward: the outer call, forward, is repeated
    # on a FallbackReLU built with the same arguments, and the instance stays switched.
    x = np.array([[-1.0, 2.0]])
    np.testing.assert_array_equal(layer.forward(x), [[0.0, 2.0]])
    assert capsys.readouterr().out == "StubReLU is not written yet: the cells below use " \
                                      f"{__name__}.FallbackReLU.\n"
    np.testing.assert_array_equal(layer.backward(np.ones((1, 2))), [[0.0, 1.0]])
    assert layer.label == "first"  # the fallback got the constructor's arguments
    layer.label = "changed"  # writes go to the fallback instance too
    assert object.__getattribute__(layer, "__dict__")["_exercise_fallback"].label == "changed"

    # Another instance starts as the learner's again; the message is not repeated.
    other = ReLU()
    assert other.greeting() == "hello from mine"
    other.forward(x)
    assert capsys.readouterr().out == ""


def test_a_written_class_is_used_and_nothing_is_printed(capsys):
    class Written(StubReLU):
        def _forward(self, x):
            return x * 10, x

    layer = exercise(fallback=FallbackReLU)(Written)()
    np.testing.assert_array_equal(layer.forward(np.ones(2)), [10.0, 10.0])
    assert "_exercise_fallback" not in object.__getattribute__(layer, "__dict__")
    assert capsys.readouterr().out == ""


def test_a_class_whose_constructor_is_a_stub_switches_at_once(capsys):
    class Stub:
        def __init__(self, size, *, scale=1):
            raise NotImplementedError

    class Fallback:
        def __init__(self, size, *, scale=1):
            self.size, self.scale = size, scale

        def __call__(self, x):
            return x * self.scale

    thing = exercise(fallback=Fallback)(Stub)(3, scale=2)
    assert (thing.size, thing.scale) == (3, 2)
    assert capsys.readouterr().out.startswith("Stub is not written yet")


def test_calling_an_instance_falls_back_and_other_errors_propagate(capsys):
    class Stub:
        def __call__(self, x):
            if x < 0:
                raise ValueError("negative")
            raise NotImplementedError

    decorated = exercise(fallback=lambda: (lambda x: x + 1))(Stub)
    with pytest.raises(ValueError, match="negative"):
        decorated()(-1)
    assert capsys.readouterr().out == ""
    assert decorated()(1) == 2
    assert capsys.readouterr().out == "Stub is not written yet: the cells below use cnnlib's version.\n"


def test_a_method_looked_up_before_the_switch_follows_it():
    ReLU = exercise(fallback=FallbackReLU)(StubReLU)
    layer = ReLU()
    forward = layer.forward
    layer.backward  # looked up, not called: no switch
    assert "_exercise_fallback" not in object.__getattribute__(layer, "__dict__")
    np.testing.assert_array_equal(forward(np.array([-3.0, 3.0])), [0.0, 3.0])
    assert layer.label == "fallback"  # FallbackReLU's default: the instance switched
