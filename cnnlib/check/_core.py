"""What every check is made of: calling the learner's code safely, comparing arrays, the report.

A check never raises because of the learner's code: an exception from it becomes a failed case
that names the line it came from, and a NotImplementedError stub becomes "not written yet".
Only a wrong call of the check itself (not a function, an unknown keyword) raises.
"""

import html
import inspect
import os
import sys
import traceback
import warnings

import numpy as np

# One pass/fail rule for every comparison in the course: the largest elementwise relative error,
# |a - b| / max(1e-8, |a| + |b|) (cnnlib.rel_error), at most 1e-7. In float64 a correct gradient
# lands near 1e-10 against centred differences and near 1e-15 against another exact formula; a
# wrong one lands near 1e-2 or above, so the rule has room on both sides.
TOLERANCE = 1e-7

_CNNLIB_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_NUMPY_DIR = os.path.dirname(os.path.abspath(np.__file__))
_STDLIB_DIR = os.path.dirname(os.path.abspath(os.__file__))


class NotWritten(Exception):
    """The learner's function raised NotImplementedError: it is a stub. `where` names the line."""

    def __init__(self, where=""):
        super().__init__(where)
        self.where = where


class LearnerError(Exception):
    """The learner's code raised; the message names the exception and the line it came from."""


def learner_function(fn, what, *, allow_class=False):
    """Return fn unwrapped (an exercise fallback's original), refusing what is not callable."""
    if fn is None:
        return None
    if not callable(fn) or (isinstance(fn, type) and not allow_class):
        raise TypeError(f"{what} must be a function, got {fn!r}")
    return inspect.unwrap(fn)


def _learner_frame(tb):
    """The innermost traceback frame in the learner's code (not cnnlib, NumPy or Python's own)."""
    frames = traceback.extract_tb(tb)
    for frame in reversed(frames):
        path = os.path.abspath(frame.filename)
        if not (path.startswith(_CNNLIB_DIR) or path.startswith(_NUMPY_DIR) or path.startswith(_STDLIB_DIR)):
            return frame
    return frames[-1] if frames else None


def _where(error):
    frame = _learner_frame(error.__traceback__)
    if frame is None:
        return ""
    line = (frame.line or "").strip()
    return f" in {frame.name}, line {frame.lineno}" + (f": `{line}`" if line else "")


def _describe_exception(error):
    return f"{type(error).__name__}{_where(error)}: {error}"


def _check_call(fn, args, kwargs):
    """LearnerError when fn cannot take the arguments the check gives (a signature that differs
    from cnnlib's), saying how the check calls it; otherwise the error would point at the check."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return
    try:
        signature.bind(*args, **kwargs)
    except TypeError as error:
        given = ", ".join(["dout" if i == 0 and len(args) == 2 and not kwargs else f"arg{i + 1}"
                           for i in range(len(args))] + [f"{k}=" for k in kwargs])
        name = getattr(fn, "__name__", "your function")
        raise LearnerError(f"TypeError: the check calls {name} with {len(args)} positional argument(s)"
                           f"{' and ' + ', '.join(k + '=' for k in kwargs) if kwargs else ''}, "
                           f"but yours is {name}{signature} ({error}); give it cnnlib's signature") from None


def call(fn, *args, **kwargs):
    """Call the learner's fn on copies of its array arguments.

    Returns (result, changed, warned): `changed` names the array arguments fn changed in place,
    `warned` lists the RuntimeWarnings it raised (overflow, invalid value, ...). Raises NotWritten
    for a NotImplementedError and LearnerError for any other exception.
    """
    originals = {}
    named = list(enumerate(args)) + list(kwargs.items())
    for key, value in named:
        if isinstance(value, np.ndarray):
            originals[key] = value.copy()
    _check_call(fn, args, kwargs)
    with warnings.catch_warnings(record=True) as caught, np.errstate(over="warn", invalid="warn", divide="warn", under="ignore"):
        warnings.simplefilter("always")
        try:
            result = fn(*args, **kwargs)
        except NotImplementedError as error:
            raise NotWritten(_where(error)) from None
        except Exception as error:  # the learner's bug, reported, never raised out of the check
            raise LearnerError(_describe_exception(error)) from None
    changed = []
    for key, value in named:
        if key in originals and not np.array_equal(value, originals[key], equal_nan=True):
            changed.append(key)
            value[...] = originals[key]  # so the next comparison sees the inputs as they were
    warned = sorted({str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)})
    return result, changed, warned


def takes(fn, name):
    """Whether fn accepts a keyword argument `name` (explicitly or through **kwargs)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return True
    if name in params and params[name].kind != inspect.Parameter.POSITIONAL_ONLY:
        return True
    return any(p.kind == inspect.Parameter.VAR_KEYWORD for p in params.values())


def rel_errors(a, b):
    """Elementwise |a - b| / max(1e-8, |a| + |b|), NaN where either side is not finite."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    with np.errstate(all="ignore"):
        err = np.array(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b)), dtype=np.float64)
    same = (a == b) | (np.isnan(a) & np.isnan(b))  # inf == inf, and NaN where NaN was expected
    err[~(np.isfinite(a) & np.isfinite(b)) & ~same] = np.inf
    err[same] = 0.0
    return err


def as_array(value, what):
    """value as a float ndarray, or a message saying why it is not one."""
    if isinstance(value, np.ndarray):
        if not (np.issubdtype(value.dtype, np.floating) or np.issubdtype(value.dtype, np.integer)):
            return None, f"{what} has dtype {value.dtype}, not a number type"
        return value, None
    if np.isscalar(value) and isinstance(value, (int, float, np.number)):
        return np.asarray(value), None
    return None, f"{what} should be an ndarray, got {type(value).__name__}"


def compare(what, got, want, *, where=None, dtype=None):
    """None if got matches want (shape, dtype when given, values within TOLERANCE), else a message.

    where(index) -> str describes an element's place (e.g. "a corner pixel").
    """
    got, message = as_array(got, what)
    if message:
        return message
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
    if where is not None:
        described = where(worst)
        if described:
            place += f", {described}"
    wrong = int(np.count_nonzero(err > TOLERANCE))
    return (f"{what}: {wrong} of {got.size} values wrong; the worst is {place}: "
            f"{_fmt(got[worst])} where {_fmt(want[worst])} was expected")


def _fmt(v):
    v = float(v) + 0.0  # -0.0 prints as 0
    if not np.isfinite(v):
        return str(v)
    return f"{v:.4g}"


def pixel_place(index, hw, read=None):
    """'a corner pixel', 'an edge pixel' or 'an inner pixel' for index (..., h, w) of an image."""
    h, w = int(index[-2]), int(index[-1])
    H, W = hw
    if read is not None and not read[h, w]:
        return "a pixel no window reads"
    on_row, on_col = h in (0, H - 1), w in (0, W - 1)
    if on_row and on_col:
        return "a corner pixel"
    if on_row or on_col:
        return "an edge pixel"
    return "an inner pixel"


class Case:
    """One case of a check: its name, status ('pass', 'fail', 'skip', 'not written') and why."""

    def __init__(self, name):
        self.name = name
        self.status = "pass"
        self.problems = []
        self.data = {}  # what the diagnosis reads: inputs, the learner's outputs, the expected ones

    def fail(self, problem):
        self.status = "fail"
        self.problems.append(problem)

    def skip(self, reason):
        self.status = "skip"
        self.problems = [reason]

    @property
    def detail(self):
        return "; ".join(self.problems)


class Report:
    """What a check found: one row per case, and a hint for each mistake it recognised.

    Attributes
    ----------
    name : str, e.g. "conv2d".
    cases : list of Case.
    hints : list of str, one short explanation per recognised mistake.
    passed : bool, True when every case that ran passed (skipped cases aside) and at least one ran.
    """

    def __init__(self, name, what=""):
        self.name = name
        self.what = what
        self.cases = []
        self.hints = []
        self.notes = []
        self.not_written = None  # the stub's name, once one raised NotImplementedError
        self.stub_where = ""  # " in name, line N: `raise ...`", the line that raised it
        self.diagnosis_errors = []  # catalogue entries that could not read these results (a cnnlib bug)

    def case(self, name):
        case = Case(name)
        self.cases.append(case)
        return case

    def hint(self, text):
        if text not in self.hints:
            self.hints.append(text)

    def note(self, text):
        if text not in self.notes:
            self.notes.append(text)

    @property
    def ran(self):
        return [c for c in self.cases if c.status in ("pass", "fail")]

    @property
    def failed(self):
        return [c for c in self.cases if c.status == "fail"]

    @property
    def passed(self):
        return self.not_written is None and bool(self.ran) and not self.failed

    def _stub_text(self):
        where = f" ({self.stub_where.strip()})" if self.stub_where else ""
        return (f"{self.not_written} still raises NotImplementedError{where}. Write it, delete that line "
                "once your code is above it, then run this check again.")

    def status_line(self):
        if self.not_written is not None:
            return f"check.{self.name}: NOT WRITTEN YET"
        n = len(self.ran)
        skipped = [c for c in self.cases if c.status == "skip"]
        if self.passed and skipped:
            return (f"check.{self.name}: PASSED ({n} case{'s' if n != 1 else ''}; {len(skipped)} skipped, "
                    "see below)")
        if self.passed:
            return f"check.{self.name}: PASSED ({n} case{'s' if n != 1 else ''})"
        if not self.ran:
            return f"check.{self.name}: FAILED (no case could run)"
        return f"check.{self.name}: FAILED ({len(self.failed)} of {n} cases)"

    def __str__(self):
        lines = [self.status_line()]
        if self.not_written is not None:
            lines.append(f"  {self._stub_text()}")
            return "\n".join(lines)
        if self.what:
            lines.append(f"  {self.what}")
        for c in self.cases:
            mark = {"pass": "ok  ", "fail": "FAIL", "skip": "skip"}[c.status]
            lines.append(f"  [{mark}] {c.name}")
            for problem in c.problems:
                lines.append(f"         {problem}")
        for text in self.notes:
            lines.append(f"  Note: {text}")
        for text in self.hints:
            lines.append(f"  Hint: {text}")
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self):
        e = html.escape
        # Okabe-Ito blue for a pass and vermillion for a fail, each with its own symbol, so the
        # table reads the same without colour.
        colours = {"pass": "#0072B2", "fail": "#D55E00", "skip": "#666666"}
        marks = {"pass": "&#10003; ok", "fail": "&#10007; FAIL", "skip": "&ndash; skipped"}
        status = self.status_line()
        head_colour = colours["pass"] if self.passed else colours["fail"]
        parts = [f'<div class="cnnlib-check"><p style="font-weight:bold;color:{head_colour}">{e(status)}</p>']
        if self.not_written is not None:
            parts.append(f"<p>{e(self._stub_text())}</p></div>")
            return "".join(parts)
        if self.what:
            parts.append(f"<p>{e(self.what)}</p>")
        parts.append('<table><tr><th style="text-align:left">case</th><th style="text-align:left">result</th>'
                     '<th style="text-align:left">what went wrong</th></tr>')
        for c in self.cases:
            parts.append(f'<tr><td style="text-align:left">{e(c.name)}</td>'
                         f'<td style="text-align:left;color:{colours[c.status]};font-weight:bold">{marks[c.status]}</td>'
                         f'<td style="text-align:left">{"<br>".join(e(p) for p in c.problems)}</td></tr>')
        parts.append("</table>")
        for text in self.notes:
            parts.append(f"<p><b>Note:</b> {e(text)}</p>")
        for text in self.hints:
            parts.append(f"<p><b>Hint:</b> {e(text)}</p>")
        parts.append("</div>")
        return "".join(parts)


def directional_fd(f, arrays, key, dout, direction, h=1e-5):
    """Centred difference of sum(f(arrays) * dout) along `direction` for arrays[key].

    Two calls of f instead of 2 * size: <grad, direction> is compared instead of every element,
    which a wrong gradient fails unless it is wrong only orthogonally to a random direction.
    """
    base = arrays[key]
    plus = dict(arrays, **{key: base + h * direction})
    minus = dict(arrays, **{key: base - h * direction})
    return float(np.sum((np.asarray(f(plus), dtype=np.float64) - np.asarray(f(minus), dtype=np.float64)) * dout)
                 / (2 * h))


def scalar_error(a, b):
    """|a - b| / max(1e-8, |a| + |b|); inf when either is NaN or infinite (and they differ), so that
    a NaN never passes a `> tolerance` test by comparing False."""
    a, b = float(a), float(b)
    if not (np.isfinite(a) and np.isfinite(b)):
        return 0.0 if a == b else np.inf
    return abs(a - b) / max(1e-8, abs(a) + abs(b))


def _check_kwargs(check_name, kwargs, allowed):
    unknown = set(kwargs) - set(allowed)
    if unknown:
        raise TypeError(f"check.{check_name}() got unexpected keyword argument(s) {sorted(unknown)}; "
                        f"it takes {', '.join(allowed)}")
