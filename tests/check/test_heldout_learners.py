"""A blind test of cnnlib.check: held-out learner code (tests/learners) and the verdicts it deserves.

The learners were written without reading cnnlib/check. A correct one must pass with no hint; one
with a classic mistake must fail with at least one hint, and some hint must be about that mistake
(it must contain the words its Learner lists); a stub must be reported NOT WRITTEN YET. Every
report's mistakes are exactly the catalogue keys its Learner lists: a hint for another mistake
would be a wrong hint.
test_heldout_selfcheck.py shows, without the checker, that each learner is what it claims.
"""

import numpy as np
import pytest

import cnnlib
import cnnlib.check as check  # an import error fails every test here: none is skipped
from learners import all_cases, errors, flatten

pytestmark = pytest.mark.usefixtures("no_detector_breaks")  # see conftest.py

CASES = all_cases()
FIRST_WORD = {"pass": "PASSED", "fail": "FAILED", "not written": "NOT WRITTEN YET"}


def _run(learner):
    run_check = getattr(check, learner.check, None)
    if run_check is None:  # renamed or removed: a failure, never a skip
        pytest.fail(f"cnnlib.check has no {learner.check}, which the held-out learner {learner.id} is checked with")
    with np.errstate(all="ignore"):  # the overflowing softmax must be reported, not warned about
        return learner.call(run_check)


def _hint_about(hints, groups):
    """True when one hint contains a word of every group (case-insensitive)."""
    return any(all(any(word in hint.lower() for word in group) for group in groups) for hint in hints)


@pytest.mark.parametrize("learner", CASES, ids=lambda c: c.id)
def test_verdict(learner):
    report = _run(learner)
    first = str(report).splitlines()[0]
    assert report.passed == (learner.verdict == "pass"), f"{learner.note}\n{report}"
    if learner.verdict == "not written":
        assert first == f"check.{learner.check}: NOT WRITTEN YET", str(report)
    else:
        assert first.startswith(f"check.{learner.check}: {FIRST_WORD[learner.verdict]} ("), str(report)


# Two gaps this test found when cnnlib.check landed (no hint for a function that raises or returns
# the wrong number of values; a mixing flatten also blamed for its exact inverse) are fixed.
@pytest.mark.parametrize("learner", CASES, ids=lambda c: c.id)
def test_the_mistakes_found_are_the_learners_and_only_those(learner):
    report = _run(learner)
    assert sorted(report.mistakes) == sorted(learner.keys), f"{learner.note}\n{report}"
    assert len(report.hints) == len(report.mistakes)


@pytest.mark.parametrize("learner", [c for c in CASES if c.verdict == "fail"], ids=lambda c: c.id)
def test_hint_names_the_mistake(learner):
    report = _run(learner)
    assert report.hints, f"no hint for: {learner.note}\n{report}"
    assert _hint_about(report.hints, learner.hint_words), (
        f"{learner.note}: no hint mentions {learner.hint_words}; hints were:\n" + "\n".join(report.hints))


MIXERS = [c for c in CASES if c.mistake.startswith("mixes-samples")]


@pytest.mark.parametrize("learner", MIXERS, ids=lambda c: c.id)
def test_a_backward_that_undoes_its_own_forward_is_not_blamed(learner):
    # The forward mixes samples; the backward is its exact inverse (tests/learners/flatten.py),
    # so the forward is the one thing to fix.
    report = _run(learner)
    assert not any("backward" in hint.lower() for hint in report.hints), "\n".join(report.hints)


def test_a_decorated_stub_is_not_written_and_a_decorated_solution_passes():
    # Exercise editions wrap the learner's function in check.exercise(fallback=...); the check
    # must see the stub through __wrapped__, not the fallback's correct answer.
    stub = check.exercise(fallback=cnnlib.relu_backward)(errors.stub_relu_backward)
    assert str(check.relu(backward=stub)).splitlines()[0] == "check.relu: NOT WRITTEN YET"
    solution = check.exercise(fallback=cnnlib.flatten_backward)(flatten.f_order_backward)
    assert not check.flatten(backward=solution).passed  # still the learner's (wrong) code
    solution = check.exercise(fallback=cnnlib.flatten_forward)(flatten.c_forward)
    assert check.flatten(forward=solution).passed


@pytest.mark.parametrize("learner", [CASES[0], next(c for c in CASES if c.verdict == "fail")], ids=lambda c: c.id)
def test_reports_repeat_and_the_html_says_the_same(learner):
    first, second = _run(learner), _run(learner)
    assert str(first) == str(second)  # seeded: nbval compares them from run to run
    word = FIRST_WORD[learner.verdict]
    assert word in first._repr_html_()
