"""What every check is made of: the harness that runs learner code, the comparisons, the report.

A check never raises because of the learner's code (SystemExit and an exception whose message
itself raises included): an exception becomes a failed case naming the line it came from, and
NotImplementedError a stub, "not written yet". Only a wrong call of the check itself raises, a
TypeError that names the argument and shows the right call.
"""

import copy
import functools
import html
import inspect
import os
import re
import time
import traceback
import warnings

import numpy as np

# One pass/fail rule: a relative error of at most 1e-7, by cnnlib.rel_error against centred
# differences (its floor grows with the gradient's scale), element by element between two exact
# results (rel_errors). A correct gradient lands near 1e-10; a wrong one near 1e-2 or above.
TOLERANCE = 1e-7
SEED = 20261206  # every case's numbers come from np.random.default_rng([SEED, case number])
SLOW = 3.0  # seconds of the learner's code in one case, past which the report says how long it took

_HERE = os.path.dirname(os.path.abspath(__file__))
_NOT_LEARNER = tuple(os.path.dirname(os.path.abspath(m.__file__)) for m in (np, os, functools))
_NOT_LEARNER += (os.path.dirname(_HERE),)


def rng(i):
    return np.random.default_rng([SEED, i])


class NotWritten(Exception):
    """Raised inside a check when it meets a stub: the report says NOT WRITTEN YET."""


# ---- the harness ----------------------------------------------------------------------------
def learner_function(fn, what, *, classes=False):
    """(what the check runs, its fallback): through check.exercise's wrapper, the learner's own
    function or class and the fallback; any other callable as it is (a functools.wraps decorator
    included: it is what runs when the learner calls the function). A TypeError for what is not
    callable."""
    if fn is None:
        return None, None
    if not callable(fn) or (isinstance(fn, type) and not classes):
        raise TypeError(f"{what} must be a function{' or a class' if classes else ''}, got {fn!r}")
    fallback = getattr(fn, "__exercise_fallback__", None)
    return (fn.__wrapped__, fallback) if fallback is not None else (fn, None)


def _copy(value):
    """The arguments the learner gets: arrays copied, containers rebuilt around copies, a generator cloned
    (every call with it draws the same numbers), other objects shared."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, np.random.Generator):
        return copy.deepcopy(value)
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    return type(value)(_copy(v) for v in value) if type(value) in (list, tuple) else value


def _unchanged(given, original):
    if isinstance(original, np.ndarray):
        return (isinstance(given, np.ndarray) and given.shape == original.shape and given.dtype == original.dtype
                and np.array_equal(given, original, equal_nan=original.dtype.kind in "fc"))
    if isinstance(original, dict):
        return (isinstance(given, dict) and list(given) == list(original)
                and all(_unchanged(given[k], v) for k, v in original.items()))
    if type(original) in (list, tuple):
        return len(given) == len(original) and all(_unchanged(a, b) for a, b in zip(given, original))
    return given is original or isinstance(original, np.random.Generator)  # a clone that drew


def _where(error):
    """' in fn, line N: `code`' for the innermost frame of the learner's code."""
    frames = traceback.extract_tb(error.__traceback__)
    mine = [f for f in frames if not os.path.abspath(f.filename).startswith(_NOT_LEARNER)]
    frame = (mine or frames or [None])[-1]
    line = frame and (frame.line or "").strip()
    return frame and f" in {frame.name}, line {frame.lineno}" + (f": `{line}`" if line else "") or ""


def describe(error):
    """The exception's type, the learner's line and its message, even when str(error) raises."""
    try:
        message = str(error)
    except Exception as inner:  # the learner's own __str__ may raise
        message = f"(its message could not be printed: str() raised {type(inner).__name__})"
    if isinstance(error, SystemExit):
        return f"SystemExit{_where(error)}: the code called sys.exit({message!s})"
    return f"{type(error).__name__}{_where(error)}" + (f": {message}" if message else "")


def _signature_problem(fn, args, kwargs):
    """A message when fn cannot take the arguments the check gives it (its signature differs from cnnlib's)."""
    try:
        signature = inspect.signature(fn)
        signature.bind(*args, **kwargs)
    except TypeError as error:
        name, keywords = getattr(fn, "__name__", "your function"), "".join(f", {k}=" for k in kwargs)
        return (f"TypeError: the check calls {name} with {len(args)} positional argument(s){keywords}, "
                f"but yours is {name}{signature} ({error}); give it cnnlib's signature")
    except ValueError:  # no signature to read (a builtin): just call it
        pass


class Outcome:
    """What one call of the learner's code did: its value, or the exception (error, or stub:
    NotImplementedError), the arguments it changed in place, NumPy's warnings, the time it took."""

    def __init__(self, value=None, error=None, stub=None, changed=(), warned=(), seconds=0.0):
        self.value, self.error, self.stub, self.changed, self.warned = value, error, stub, changed, warned
        self.seconds, self.ok = seconds, error is None and stub is None


def attempt(fn, args=(), kwargs=None, *, names=None, keep=()):
    """Call the learner's fn(*args, **kwargs) the one way every check does.

    Every argument not named in `keep` is given as a copy (arrays copied, lists, tuples and dicts
    rebuilt around copies), compared with the check's own after the call and named in
    `changed` if it differs, so the check's numbers stay as they were and what the learner's code
    returned (perhaps its changed argument itself) is left as it is. `keep` names the arguments
    meant to be changed (params, velocity, a model), passed as they are.
    """
    kwargs = dict(kwargs or {})
    names = list(names or [f"argument {i + 1}" for i in range(len(args))])
    problem = _signature_problem(fn, args, kwargs)
    if problem:
        return Outcome(error=problem)
    given = [a if n in keep else _copy(a) for n, a in zip(names, args)]
    given_kw = {k: v if k in keep else _copy(v) for k, v in kwargs.items()}
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught, \
            np.errstate(over="warn", invalid="warn", divide="warn", under="ignore"):
        warnings.simplefilter("always")
        try:
            value = fn(*given, **given_kw)
            error = stub = None
        except NotImplementedError as e:
            value, error, stub = None, None, _where(e)
        except (Exception, SystemExit) as e:  # the learner's bug, reported, never raised out of the check
            value, error, stub = None, describe(e), None
    seconds = time.perf_counter() - start
    changed = [n for n, g, a in zip(names, given, args) if n not in keep and not _unchanged(g, a)]
    changed += [k for k, v in kwargs.items() if k not in keep and not _unchanged(given_kw[k], v)]
    warned = sorted({str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)})
    return Outcome(value, error, stub, changed, warned, seconds)


def read(obj, name):
    """obj.<name> read as learner code (a property may raise): an Outcome."""
    return attempt(lambda: getattr(obj, name))


def choose(case, fn, kwargs, implicit, who):
    """The keywords of this case that fn can take, or None (the case skipped) when it cannot express
    the case; implicit[key] is what a function without that keyword is taken to do."""
    chosen = {}
    for key, value in kwargs.items():
        if takes(fn, key):
            chosen[key] = value
        elif isinstance(value, (np.ndarray, np.random.Generator)):
            return case.skip(f"skipped: your {who} has no `{key}` parameter, and this case needs it")
        elif value != implicit.get(key, object()):
            return case.skip(f"skipped: your {who} has no `{key}` parameter, and this case needs {key} {value}")
    return chosen


def takes(fn, name):
    """Whether fn accepts a keyword argument `name` (explicitly or through **kwargs)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return True
    if name in params and params[name].kind != inspect.Parameter.POSITIONAL_ONLY:
        return True
    return any(p.kind == inspect.Parameter.VAR_KEYWORD for p in params.values())


# ---- comparing ------------------------------------------------------------------------------
def rel_errors(a, b):
    """Elementwise |a - b| / max(1e-8, |a| + |b|): 0 where equal (inf == inf, NaN where NaN was
    expected), inf where only one side is finite."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    with np.errstate(all="ignore"):
        err = np.array(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b)), dtype=np.float64)
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    err[~(np.isfinite(a) & np.isfinite(b)) & ~same] = np.inf
    err[same] = 0.0
    return err


def scalar_error(a, b):
    return float(rel_errors(float(a), float(b)))


def _numeric(v):
    if isinstance(v, (bool, np.bool_)):
        return False
    if isinstance(v, np.ndarray):
        return v.dtype.kind in "biuf"
    return isinstance(v, (int, float, np.integer, np.floating))


def same(a, b):
    """The one rule for "the same result": same structure and shape, numbers within TOLERANCE
    (a float where an int was expected is not the same: a size is a whole number)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if not (_numeric(a) and _numeric(b)):
        return a is b
    if not isinstance(a, np.ndarray) and not isinstance(b, np.ndarray):
        if isinstance(a, (float, np.floating)) != isinstance(b, (float, np.floating)):
            return False
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and (a.size == 0 or bool(np.all(rel_errors(a, b) <= TOLERANCE)))


def pair_text(got, want):
    """got and want with enough significant digits (at least 4) to tell them apart."""
    g, w = float(got) + 0.0, float(want) + 0.0  # + 0.0: -0.0 prints as 0
    for digits in range(4, 18):
        a, b = f"{g:.{digits}g}", f"{w:.{digits}g}"
        if a != b:
            return a, b
    return a, b


def array_problem(what, got):
    """Why got is not an array of numbers, or None."""
    if got is None:
        return f"{what} is None"
    if isinstance(got, np.ndarray) and type(got) is not np.ndarray:
        return f"{what} is a {type(got).__module__}.{type(got).__name__}, not a plain ndarray"
    if isinstance(got, np.ndarray) and got.dtype.kind not in "biuf":
        return f"{what} has dtype {got.dtype}, not a number type"
    if not isinstance(got, np.ndarray) and not _numeric(got):
        return f"{what} should be an ndarray, got {type(got).__name__}"
    return None


def compare(what, got, want, *, where=None, dtype=None):
    """None if got matches want (shape, dtype when given, values within TOLERANCE), else a message.

    where(index) -> str describes an element's place (e.g. "a corner pixel").
    """
    problem = array_problem(what, got)
    if problem:
        return problem
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        return f"{what} has shape {got.shape}, expected {want.shape}"
    if dtype is not None and got.dtype != dtype:
        return f"{what} has dtype {got.dtype}, expected {np.dtype(dtype).name}: keep the inputs' precision"
    if got.size == 0:
        return None
    err = rel_errors(got, want)
    worst = np.unravel_index(int(np.argmax(err)), err.shape)
    if err[worst] <= TOLERANCE:
        return None
    place = f"{what}[{', '.join(str(int(i)) for i in worst)}]" if got.ndim else what
    described = where(worst) if where is not None else None
    if described:
        place += f", {described}"
    wrong = int(np.count_nonzero(err > TOLERANCE))
    a, b = pair_text(got[worst], want[worst])
    return f"{what}: {wrong} of {got.size} values wrong; the worst is {place}: {a} where {b} was expected"


def pixel_place(index, hw, read=None):
    """'a corner pixel', 'an edge pixel', 'an inner pixel' or 'a pixel no window reads'."""
    h, w = int(index[-2]), int(index[-1])
    if read is not None and not read[h, w]:
        return "a pixel no window reads"
    on_row, on_col = h in (0, hw[0] - 1), w in (0, hw[1] - 1)
    return "a corner pixel" if on_row and on_col else "an edge pixel" if on_row or on_col else "an inner pixel"


def directional_fd(f, arrays, key, dout, direction, h=1e-5):
    """Centred difference of sum(f(arrays) * dout) along `direction` for arrays[key]: two calls of
    f instead of 2 * size, which a wrong gradient fails unless it is wrong only orthogonally to a
    random direction."""
    def loss(sign):
        return np.sum(np.asarray(f(dict(arrays, **{key: arrays[key] + sign * h * direction})), dtype=np.float64) * dout)
    return float((loss(1) - loss(-1)) / (2 * h))


# ---- cases and reports ----------------------------------------------------------------------
class Case:
    """One case of a check, and everything the catalogue reads about it.

    inputs, settings: what the learner's code was given (arrays; stride, pad, size, ...).
    got, want: the learner's results and the right ones, by name ("out", "dx", "loss", ...).
    wrong: the names in got whose values (not just dtype) differ from want.
    changed: the arguments the learner's code changed in place ("forward's x", ...).
    error: the first exception the learner's code raised here, described; warned: NumPy's warnings.
    facts: what the check noticed beyond values: "none" (returned None), "form" (a result of the
    wrong kind), "own fd ok" / "own fd wrong" (the backward against finite differences of the
    learner's own forward), "backward alone" (run on a cache not its forward's), "cache mismatch"
    (it raised on its forward's cache and ran on cnnlib's), "mixes samples", "own order" and
    "wanted order" (Flatten's rows), "not a dict" (params or grads), "rebound" (an update put new
    arrays in place of the given ones), "unchanged" (no update), "own rng" (another shuffle, or a
    dropout mask not drawn from rng), "keeps p" (dropout keeping each value with probability p).
    """

    def __init__(self, check, name):
        self.check, self.name = check, name
        self.status, self.problems = "pass", []
        self.inputs, self.settings, self.got, self.want = {}, {}, {}, {}
        self.wrong, self.changed, self.facts, self.error, self.warned = set(), [], set(), None, []

    def fail(self, problem):
        self.status = "fail"
        if problem not in self.problems:
            self.problems.append(problem)

    def skip(self, reason):
        self.status, self.problems = "skip", [reason]

    def judge(self, name, got, want, *, label=None, prefix="", where=None, dtype=np.float64):
        """Record the learner's `got` for `name` against `want`; fail the case if they differ."""
        self.got[name], self.want[name] = got, want
        if not same(got, want):
            self.wrong.add(name)
        problem = compare(label or name, got, want, where=where, dtype=dtype)
        if problem:
            self.fail(prefix + problem)
        return problem is None

    def ran(self, outcome, what, report, name=None, returns=True):
        """Take one Outcome into the case: True when the value can be used (returns=False: a
        function that returns nothing, such as an optimizer step). A stub stops the check."""
        if outcome.stub is not None:
            report.stub(name or what or "fn", outcome.stub)
            raise NotWritten
        who = f"{what} " if what else ""
        for name in outcome.changed:
            self.changed.append(f"{who}{name}")
            self.fail(f"{who}changed its input {name} in place")
        if outcome.warned:
            self.warned += outcome.warned
            self.fail("NumPy warned: " + "; ".join(outcome.warned))
        report.time(self, outcome.seconds)
        if outcome.error is not None:
            self.error = self.error or outcome.error
            self.fail(f"{who}raised {outcome.error}")
            return False
        if outcome.value is None and returns:
            self.fail(f"{who}returned None: a `return` is missing")
            self.facts.add("none")
            return False
        return True

    detail = property(lambda self: "; ".join(self.problems))


class Report:
    """What a check found: one row per case, and a hint for each mistake it recognised.

    name: e.g. "conv2d". cases: list of Case. hints: one explanation per recognised mistake, and
    mistakes: their catalogue keys, in the same order (tests compare keys, not text). passed:
    every case that ran passed (skipped cases aside) and at least one ran.
    """

    def __init__(self, name, what=""):
        self.name, self.what = name, what
        self.cases, self.hints, self.mistakes, self.notes = [], [], [], []
        self.stubs = []  # (name, " in fn, line N: `raise ...`") of each function still raising NotImplementedError
        self.diagnosis_errors = []  # catalogue entries that could not read these results (a cnnlib bug)
        self._seconds = {}

    def case(self, name):
        case = Case(self.name, name)
        self.cases.append(case)
        return case

    def hint(self, key, text):
        if key not in self.mistakes:
            self.mistakes.append(key)
            self.hints.append(text)

    def note(self, text):
        if text not in self.notes:
            self.notes.append(text)

    def stub(self, name, where):
        if name not in [n for n, _ in self.stubs]:
            self.stubs.append((name, where))

    def time(self, case, seconds):
        self._seconds[case.name] = self._seconds.get(case.name, 0.0) + seconds
        if self._seconds[case.name] > SLOW:
            self.notes[:] = [n for n in self.notes if not n.startswith(f"case '{case.name}' took")]
            self.note(f"case '{case.name}' took {self._seconds[case.name]:.0f} s of your code's time; a loop "
                      "over every element of a large array is the usual reason.")

    not_written = property(lambda self: " and ".join(name for name, _ in self.stubs) or None)
    ran = property(lambda self: [c for c in self.cases if c.status in ("pass", "fail")])
    failed = property(lambda self: [c for c in self.cases if c.status == "fail"])
    passed = property(lambda self: not self.stubs and bool(self.ran) and not self.failed)

    def _stub_text(self):
        if len(self.stubs) == 1:
            name, where = self.stubs[0]
            where = f" ({where.strip()})" if where else ""
            return (f"{name} still raises NotImplementedError{where}. Write it, delete that line once your code "
                    "is above it, then run this check again.")
        names = " and ".join(name + "".join(f" (line {n})" for n in re.findall(r", line (\d+)", where)[:1])
                             for name, where in self.stubs)
        return (f"{names} still raise NotImplementedError. Write them, delete those lines once your code is above "
                "them, then run this check again.")

    def status_line(self):
        if self.stubs:
            return f"check.{self.name}: NOT WRITTEN YET"
        n, skipped = len(self.ran), sum(c.status == "skip" for c in self.cases)
        cases = f"{n} case{'s' if n != 1 else ''}"
        if self.passed:
            return f"check.{self.name}: PASSED ({cases}" + (f"; {skipped} skipped, see below)" if skipped else ")")
        if not n:
            return f"check.{self.name}: FAILED (no case could run)"
        return f"check.{self.name}: FAILED ({len(self.failed)} of {n} cases)"

    def __str__(self):
        lines = [self.status_line()]
        if self.stubs:
            return "\n".join(lines + [f"  {self._stub_text()}"])
        lines += [f"  {self.what}"] if self.what else []
        for c in self.cases:
            lines.append(f"  [{ {'pass': 'ok  ', 'fail': 'FAIL', 'skip': 'skip'}[c.status]}] {c.name}")
            lines += [f"         {p}" for p in c.problems]
        lines += [f"  Note: {t}" for t in self.notes] + [f"  Hint: {t}" for t in self.hints]
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self):
        e = html.escape
        # Okabe-Ito blue for a pass and vermillion for a fail, each with its own symbol, so the
        # table reads the same without colour.
        colours = {"pass": "#0072B2", "fail": "#D55E00", "skip": "#666666"}
        marks = {"pass": "&#10003; ok", "fail": "&#10007; FAIL", "skip": "&ndash; skipped"}
        head = colours["pass"] if self.passed else colours["fail"]
        parts = [f'<div class="cnnlib-check"><p style="font-weight:bold;color:{head}">{e(self.status_line())}</p>']
        if self.stubs:
            return "".join(parts + [f"<p>{e(self._stub_text())}</p></div>"])
        parts += [f"<p>{e(self.what)}</p>"] if self.what else []
        parts.append('<table><tr><th style="text-align:left">case</th><th style="text-align:left">result</th>'
                     '<th style="text-align:left">what went wrong</th></tr>')
        for c in self.cases:
            parts.append(f'<tr><td style="text-align:left">{e(c.name)}</td>'
                         f'<td style="text-align:left;color:{colours[c.status]};font-weight:bold">{marks[c.status]}</td>'
                         f'<td style="text-align:left">{"<br>".join(e(p) for p in c.problems)}</td></tr>')
        parts.append("</table>")
        parts += [f"<p><b>Note:</b> {e(t)}</p>" for t in self.notes]
        parts += [f"<p><b>Hint:</b> {e(t)}</p>" for t in self.hints]
        return "".join(parts + ["</div>"])


# ---- the checks' own arguments --------------------------------------------------------------
def shown(check):
    """help() and inspect show the check's named parameters; it keeps *args and **kwargs only to
    refuse a wrong call with a message of its own (see refuse)."""
    params = inspect.signature(check).parameters.values()
    check.__signature__ = inspect.Signature([p for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)])
    return check


def refuse(name, form, args=(), unknown=None):
    """TypeError for a wrong call of check.<name>: what was wrong, and the right form."""
    if args:
        raise TypeError(f"check.{name} got {len(args)} positional argument(s) too many ({args[0]!r}...); "
                        f"call it as {form}")
    if unknown:
        raise TypeError(f"check.{name} got unexpected keyword argument(s) {sorted(unknown)}; call it as {form}")
