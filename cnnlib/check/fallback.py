"""`exercise(fallback)`: use the learner's function or class, or cnnlib's while it is a stub.

The exercise editions (notebooks/exercises/) put `@check.exercise(fallback=cnnlib.dense_backward)`
above every stub the learner is asked to write, so the cells below it run before it is written.

A decorated function is the learner's, wrapped with `functools.wraps` (its name, docstring,
signature and `__wrapped__` are the learner's; `__exercise_fallback__` is the fallback, so a check
tests the learner's function itself, and can run the fallback in place of a forward not written
yet). A call runs the learner's function; when that raises NotImplementedError, the first time
prints "dense_backward is not written yet: the cells below use cnnlib.dense_backward." and every
such call returns fallback(*args, **kwargs). Any other exception propagates unchanged: a written
function that is wrong must fail where the learner can see it.

A decorated class is a subclass of the learner's (same name, qualname, module and docstring), so
`isinstance` and the learner's methods work as written. The first time a call on an instance
raises NotImplementedError (its constructor, a method, or calling it), that instance switches: it
builds fallback(*args, **kwargs) from its constructor's arguments, repeats the call there, and
from then on sends every attribute read, write and method call to it. Only the outermost call
switches (a method the learner's method calls on self passes the error up), so the repeated
call is the one the caller made. The message is printed once per decorated class; other
instances are not affected; special methods other than __call__ stay the learner's.
"""

import functools
import inspect

__all__ = ["exercise"]


def exercise(fallback):
    """Decorator: use the learner's function or class, or `fallback` while it is not written.

    fallback: a function taking the learner's function's arguments (e.g. cnnlib.dense_backward, or
    a lambda adapting a cnnlib function to the lesson's signature) or, for a class, a callable
    building an instance from the same constructor arguments (e.g. cnnlib.Dense). A TypeError if
    fallback is not callable, or if what is decorated is neither a function nor a class.

    >>> import numpy as np, cnnlib
    >>> @exercise(fallback=cnnlib.relu_forward)
    ... def relu_forward(x):
    ...     raise NotImplementedError("relu_forward: not written yet")
    >>> out, cache = relu_forward(np.array([-1.0, 2.0]))
    relu_forward is not written yet: the cells below use cnnlib.relu_forward.
    >>> out
    array([0., 2.])
    """
    if not callable(fallback):
        raise TypeError(f"check.exercise: fallback must be a function or class, not {type(fallback).__name__} "
                        f"{fallback!r}")

    def decorate(obj):
        if inspect.isclass(obj):
            return _exercise_class(obj, fallback)
        if callable(obj):
            return _exercise_function(obj, fallback)
        raise TypeError(f"check.exercise decorates a function or a class, not {type(obj).__name__} {obj!r}")

    return decorate


def fallback_name(fallback):
    """How the message names `fallback`: its public cnnlib name if it has one.

    ``cnnlib.dense_backward`` for a function defined in cnnlib.dense and exported by cnnlib;
    ``module.qualname`` for other named objects; "cnnlib's version" for a lambda, an object
    without a qualified name (a partial, a callable instance) or one of cnnlib.check's
    references (the lessons' own signatures, built on cnnlib).
    """
    qualname = getattr(fallback, "__qualname__", None)
    module = getattr(fallback, "__module__", None)
    if not isinstance(qualname, str) or "<lambda>" in qualname or "<locals>" in qualname:
        return "cnnlib's version"
    if isinstance(module, str) and module.startswith("cnnlib.check"):
        return "cnnlib's version"  # the lessons' signatures built on cnnlib: its path tells a learner nothing
    if isinstance(module, str) and module.split(".")[0] == "cnnlib":
        import cnnlib

        if getattr(cnnlib, qualname, None) is fallback:
            return f"cnnlib.{qualname}"
    if not module or module == "__main__":
        return qualname
    return f"{module}.{qualname}"


def _message(obj, fallback):
    return f"{obj.__name__} is not written yet: the cells below use {fallback_name(fallback)}."


def _exercise_function(function, fallback):
    said = False

    @functools.wraps(function)
    def learner_or_fallback(*args, **kwargs):
        nonlocal said
        try:
            return function(*args, **kwargs)
        except NotImplementedError:
            if not said:
                said = True
                print(_message(function, fallback))
        return fallback(*args, **kwargs)

    learner_or_fallback.__exercise_fallback__ = fallback  # the checks test `function` itself (see _core)
    return learner_or_fallback


# Per-instance bookkeeping, kept in the instance's __dict__ under names no lesson uses.
_ARGS, _TARGET, _DEPTH = "_exercise_args", "_exercise_fallback", "_exercise_depth"
_OWN = frozenset({_ARGS, _TARGET, _DEPTH, "__class__", "__dict__"})


def _exercise_class(cls, fallback):
    said = False

    def switch(instance):
        """Build the fallback instance from the constructor's arguments; say so once per class."""
        nonlocal said
        args, kwargs = object.__getattribute__(instance, _ARGS)
        if not said:
            said = True
            print(_message(cls, fallback))
        target = fallback(*args, **kwargs)
        object.__getattribute__(instance, "__dict__")[_TARGET] = target
        return target

    def guarded(instance, name, method, args, kwargs):
        """Call `method`; on NotImplementedError in the outermost call, switch and repeat it."""
        state = object.__getattribute__(instance, "__dict__")
        state[_DEPTH] = state.get(_DEPTH, 0) + 1
        try:
            return method(*args, **kwargs)
        except NotImplementedError:
            if state[_DEPTH] > 1:
                raise  # the outermost call switches and repeats itself on the fallback
        finally:
            state[_DEPTH] -= 1
        target = state.get(_TARGET)
        if target is None:
            target = switch(instance)
        return getattr(target, name)(*args, **kwargs)

    class Exercise(cls):
        def __init__(self, *args, **kwargs):
            state = object.__getattribute__(self, "__dict__")
            state[_ARGS] = (args, kwargs)
            state[_DEPTH] = 1  # a method the constructor calls leaves the switch to it
            try:
                super().__init__(*args, **kwargs)
            except NotImplementedError:
                switch(self)
            finally:
                state[_DEPTH] = 0

        def __getattribute__(self, name):
            state = object.__getattribute__(self, "__dict__")
            target = state.get(_TARGET)
            if name in _OWN:
                return object.__getattribute__(self, name)
            if target is not None:
                return getattr(target, name)
            value = super().__getattribute__(name)
            if inspect.ismethod(value) and value.__self__ is self and not name.startswith("__"):
                @functools.wraps(value)
                def method(*args, **kwargs):
                    if state.get(_TARGET) is not None:  # switched since this method was looked up
                        return getattr(state[_TARGET], name)(*args, **kwargs)
                    return guarded(self, name, value, args, kwargs)

                return method
            return value

        def __setattr__(self, name, value):
            target = object.__getattribute__(self, "__dict__").get(_TARGET)
            if target is not None:
                setattr(target, name, value)
            else:
                super().__setattr__(name, value)

        def __delattr__(self, name):
            target = object.__getattribute__(self, "__dict__").get(_TARGET)
            if target is not None:
                delattr(target, name)
            else:
                super().__delattr__(name)

    if any("__call__" in vars(klass) for klass in cls.__mro__):  # instances of cls are callable
        def __call__(self, *args, **kwargs):
            target = object.__getattribute__(self, "__dict__").get(_TARGET)
            if target is not None:
                return target(*args, **kwargs)
            return guarded(self, "__call__", functools.partial(cls.__call__, self), args, kwargs)

        Exercise.__call__ = __call__

    for attribute in ("__module__", "__name__", "__qualname__", "__doc__"):
        setattr(Exercise, attribute, getattr(cls, attribute))
    Exercise.__wrapped__ = cls
    Exercise.__exercise_fallback__ = fallback
    return Exercise
