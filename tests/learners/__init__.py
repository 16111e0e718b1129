"""Held-out learner implementations for a blind test of cnnlib.check.

Each module holds functions written the way different learners write them from scratch, in
styles cnnlib does not use, correct ones and ones carrying a classic mistake, and a module-level
`CASES` list saying what cnnlib.check should make of each. They were written without reading
cnnlib/check, so that they test the checker rather than echo it.

A `Learner` says which check to run (`check.<check>(forward=..., backward=...)`, or
`check.<check>(fn, *args, **options)`), the verdict expected ("pass", "fail" or "not written"),
and for a mistake, words a hint about it should contain: `hint_words` is a tuple of groups,
and some hint must contain at least one word of every group (case-insensitive). `keys` are the
catalogue keys `report.mistakes` must hold; they were added after the checker was written, the
functions and their hint words before.
"""

from dataclasses import dataclass
from typing import Callable, Optional

VERDICTS = ("pass", "fail", "not written")


@dataclass(frozen=True)
class Learner:
    check: str
    verdict: str
    mistake: str
    note: str
    forward: Optional[Callable] = None
    backward: Optional[Callable] = None
    fn: Optional[Callable] = None  # softmax_cross_entropy's single function
    hint_words: tuple = ()
    args: tuple = ()  # further positional arguments of the check, after fn
    options: tuple = ()  # keyword arguments of the check, as (name, value) pairs
    build: bool = False  # fn() builds the check's first argument afresh for every run (a model)
    keys: tuple = ()  # catalogue keys report.mistakes must hold

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")
        if (self.fn is None) == (self.forward is None and self.backward is None):
            raise ValueError(f"{self.mistake}: give fn alone, or forward and/or backward")
        if self.verdict == "fail" and not (self.hint_words and self.keys):
            raise ValueError(f"{self.mistake}: a buggy learner needs hint_words and keys")

    @property
    def id(self):
        return f"{self.check}-{self.mistake}"

    def call(self, run_check):
        """Run `run_check` (the check function) on this learner's code."""
        if self.fn is not None:
            return run_check(self.fn() if self.build else self.fn, *self.args, **dict(self.options))
        pair = {k: v for k, v in (("forward", self.forward), ("backward", self.backward)) if v is not None}
        return run_check(**pair, **dict(self.options))


def all_cases():
    """Every Learner of every module, in a fixed order."""
    from . import conv, dense_relu, errors, flatten, network, optim, pool, sizes, softmax

    modules = (conv, pool, flatten, dense_relu, softmax, errors, network, optim, sizes)
    return [case for module in modules for case in module.CASES]


# Words the hints for the commonest mistakes should use; one group of alternatives each.
ADD = ("+=", "add", "accumulat", "overlap")
AVERAGE = ("average", "mean", "divid", "/ n", "/n", "batch", "1/n")
IN_PLACE = (("in place", "in-place", "modif", "changed", "changes", "overwr", "copy"),)
NONE = (("none", "return"),)
