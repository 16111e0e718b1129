"""`exercise(fallback)`: use the learner's function or class, or cnnlib's while it is a stub.

The exercise editions of the lessons (notebooks/exercises/) put this decorator above every
stub the learner is asked to write::

    @check.exercise(fallback=cnnlib.dense_backward)
    def dense_backward(dout, cache):
        # Your code here.
        raise NotImplementedError("dense_backward: not written yet")

so the cells below the stub still run before it is written: a call that raises
NotImplementedError is answered by the fallback instead, and the notebook says so once.

Functions
---------
The decorated function is the learner's function wrapped with `functools.wraps`: its name,
docstring, `inspect.signature` and `__wrapped__` are the learner's, and `__exercise_fallback__`
is the fallback, so a check tests the learner's function itself (and reports a stub as not
written), and can use the fallback in place of a forward that is not written yet. A call runs the learner's function; if that
raises NotImplementedError, the first such call prints::

    dense_backward is not written yet: the cells below use cnnlib.dense_backward.

and every such call returns ``fallback(*args, **kwargs)``. Any other exception propagates
unchanged: a written function that is wrong must fail where the learner can see it.

Classes
-------
The decorated class is a subclass of the learner's class (same name, qualname, module and
docstring; `__wrapped__` is the learner's class), so `isinstance` and the learner's own
methods work as written. Each instance follows one rule:

    The first time a call on the instance raises NotImplementedError (its constructor, a
    method, or calling the instance), the instance switches: it builds
    ``fallback(*args, **kwargs)`` with the arguments it was constructed with, and from then
    on every attribute read and write and every method call on it goes to that fallback
    instance. The call that raised is repeated on the fallback instance and its result
    returned.

Only the outermost call switches: a method the learner's method calls on ``self`` (e.g.
`Layer.forward` calling the learner's `_forward`) passes the NotImplementedError up to it,
so the repeated call is the one the caller made, and it exists on the fallback. The message
is printed once per decorated class, at the first instance that switches; other instances
are not affected. Special methods other than ``__call__`` (``__repr__``, ``__len__``, ...)
are looked up on the class by Python and stay the learner's.

The only state kept is each decorated object's "already said" flag and, per instance, the
constructor arguments, the call depth and the fallback instance once switched.
"""

import functools
import inspect

__all__ = ["exercise"]


def exercise(fallback):
    """Decorator: use the learner's function or class, or `fallback` while it is not written.

    Parameters
    ----------
    fallback : callable
        What to use instead: a function taking the same arguments as the learner's function
        (e.g. ``cnnlib.dense_backward``, or a lambda adapting a cnnlib function to the
        lesson's signature), or, for a class, a callable that builds an instance from the
        same constructor arguments (e.g. ``cnnlib.Dense``).

    Returns
    -------
    decorate : callable
        Applied to the learner's function or class; see the module docstring for what the
        decorated object does.

    Raises
    ------
    TypeError
        If `fallback` is not callable, or `decorate` is given something that is neither a
        class nor a function.

    Examples
    --------
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
