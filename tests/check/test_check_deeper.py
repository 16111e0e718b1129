"""Issue 26's checks: check.batchnorm2d, check.dropout, check.sgd_weight_decay and check.adamw.

Every classic mistake of lessons 12 and 13 is a real learner function (tests/learners/deeper.py):
each gets its verdict and exactly its catalogue keys, with a hint that names it; the correct ones
pass with no hint, whatever way they are written. The learners are first shown, without the
checker, to be what they claim.
"""

import re
import warnings

import numpy as np
import pytest

import cnnlib
from cnnlib import check
from learners import deeper

pytestmark = pytest.mark.usefixtures("no_detector_breaks")  # see conftest.py
CASES = deeper.CASES
NEW = ("batchnorm2d", "dropout", "sgd_weight_decay", "adamw")


def run(learner):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return learner.call(getattr(check, learner.check))


# ---- the learners are what they claim, checked without cnnlib.check -------------------------

def _bn_numbers(forward, backward, r):
    """out, the running statistics and the gradients of forward/backward on one training and one eval batch."""
    x, gamma, beta, dout = r.normal(1, 2, (3, 2, 4, 5)), r.uniform(0.5, 1.5, 2), r.standard_normal(2), None
    numbers = []
    for training in (True, False):
        stats = [r.standard_normal(2), r.uniform(0.5, 2, 2)]
        given = x.copy()
        out, cache = forward(given, gamma, beta, training=training, running_mean=stats[0], running_var=stats[1],
                             momentum=0.2)
        numbers += [out, *stats, given]
        if backward is not None:
            dout = r.standard_normal(x.shape)
            numbers += list(backward(dout, cache))
    return numbers


def _dropout_numbers(forward, backward, r):
    x, numbers = r.uniform(0.5, 1.5, (30, 40)), []
    for kwargs in ({"p": 0.3}, {"p": 0.5, "training": False}):
        out, cache = forward(x, rng=np.random.default_rng(3), **kwargs)
        again, _ = forward(x, rng=np.random.default_rng(3), **kwargs)
        keep = out != 0
        scale = 1 / (1 - kwargs["p"]) if kwargs.get("training", True) else 1.0
        ok = np.allclose(out, x * keep * scale) and np.array_equal(out, again)
        if kwargs.get("training", True):  # one generator, two calls: two masks
            rng = np.random.default_rng(4)
            ok &= not np.array_equal(forward(x, rng=rng, **kwargs)[0], forward(x, rng=rng, **kwargs)[0])
        ok &= abs(keep.mean() - (1 - kwargs["p"])) < 0.05 if kwargs.get("training", True) else keep.all()
        if backward is not None:
            dout = r.standard_normal(x.shape)
            ok &= np.allclose(backward(dout, cache), dout * keep * scale)
        numbers.append(ok)
    return numbers


def _optimizer_numbers(fn, name, r):
    settings = {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.1} if name == "sgd_weight_decay" else {
        "lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.1}
    theirs = cnnlib.SGD(**settings) if name == "sgd_weight_decay" else cnnlib.AdamW(**settings)
    start = {"a": r.standard_normal((3, 2)), "b": r.standard_normal(2)}
    mine, expected, state = {k: p.copy() for k, p in start.items()}, {k: p.copy() for k, p in start.items()}, {}
    arrays, ok = dict(mine), True
    for _ in range(3):
        grads = {k: r.standard_normal(p.shape) for k, p in start.items()}
        given = {k: g.copy() for k, g in grads.items()}
        fn(mine, given, state, **settings)
        theirs.step(expected, grads)
        ok &= all(np.array_equal(given[k], grads[k]) and mine[k] is arrays[k] for k in grads)
        ok &= all(np.allclose(mine[k], expected[k], rtol=1e-10, atol=1e-12) for k in start)
    return ok


def _same_as_cnnlib(learner):
    r = np.random.default_rng(5)
    if learner.check in ("sgd_weight_decay", "adamw"):
        return _optimizer_numbers(learner.fn, learner.check, r)
    if learner.check == "dropout":
        return all(_dropout_numbers(learner.forward or cnnlib.dropout_forward, learner.backward, r))
    mine = _bn_numbers(learner.forward or cnnlib.batchnorm2d_forward, learner.backward, r)
    ref = _bn_numbers(cnnlib.batchnorm2d_forward, learner.backward and cnnlib.batchnorm2d_backward,
                      np.random.default_rng(5))
    return all(np.shape(a) == np.shape(b) and np.allclose(a, b, rtol=1e-9, atol=1e-11) for a, b in zip(mine, ref))


@pytest.mark.parametrize("learner", CASES, ids=lambda c: c.id)
def test_each_learner_is_what_it_claims(learner):
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            agrees = _same_as_cnnlib(learner)
        except Exception:
            agrees = False
    assert agrees == (learner.verdict == "pass"), learner.note


def test_the_set_covers_the_new_checks_and_every_new_entry():
    from cnnlib.check import mistakes

    assert {c.check for c in CASES} == set(NEW)
    new_keys = {k for k, m in mistakes.CATALOGUE.items() if set(m.checks) <= set(NEW)}
    assert new_keys <= {k for c in CASES for k in c.keys}, new_keys - {k for c in CASES for k in c.keys}


# ---- the verdicts and the mistakes named ---------------------------------------------------

@pytest.mark.parametrize("learner", CASES, ids=lambda c: c.id)
def test_verdict_and_keys(learner):
    report = run(learner)
    first = str(report).splitlines()[0]
    assert first.startswith(f"check.{learner.check}: {'PASSED' if learner.verdict == 'pass' else 'FAILED'} ("), \
        f"{learner.note}\n{report}"
    assert sorted(report.mistakes) == sorted(learner.keys), f"{learner.note}\n{report}"
    assert not report.diagnosis_errors


@pytest.mark.parametrize("learner", [c for c in CASES if c.verdict == "fail"], ids=lambda c: c.id)
def test_the_hint_names_the_mistake(learner):
    hints = [h.lower() for h in run(learner).hints]
    assert any(all(any(w in h for w in group) for group in learner.hint_words) for h in hints), (
        f"{learner.note}: no hint mentions {learner.hint_words}:\n" + "\n".join(hints))


def test_a_backward_through_neither_statistic_is_named_whatever_forward_it_gets():
    for forward in (None, deeper.lesson_bn_forward, deeper.loop_bn_forward):
        report = check.batchnorm2d(**({"forward": forward} if forward else {}), backward=deeper.constants_bn_backward)
        assert report.mistakes == ["bn_backward_constants"], str(report)
        assert [c.status for c in report.cases] == ["fail", "fail", "fail", "pass", "pass"]  # eval: right there


def test_what_fails_where():
    """The running statistics fail only where they move; eval's slips only in eval; decay only with decay."""
    statuses = lambda report: "".join("F" if c.status == "fail" else "." for c in report.cases)  # noqa: E731
    assert statuses(check.batchnorm2d(forward=deeper.biased_running_bn_forward)) == "FF..."
    assert statuses(check.batchnorm2d(forward=deeper.batch_stats_in_eval_bn_forward)) == "...FF"
    assert statuses(check.dropout(forward=deeper.eval_scaled_dropout_forward)) == "..F."
    assert statuses(check.sgd_weight_decay(deeper.no_decay_sgd_step)) == "FFF."
    assert statuses(check.adamw(deeper.l2_adamw_step)) == "FFF."
    assert statuses(check.sgd_weight_decay(deeper.decay_outside_sgd_step)) == "FF.."  # with momentum only


def test_the_checks_own_arrays_stay_as_they_were():
    from cnnlib.check import layers

    before = [(label, {k: v.copy() for k, v in a.items()}, {k: np.copy(v) for k, v in kw.items()
                                                             if isinstance(v, np.ndarray)})
              for label, a, kw, _ in layers._bn_cases()]
    report = check.batchnorm2d(forward=deeper.lesson_bn_forward, backward=deeper.compact_bn_backward)
    assert report.passed
    for case, (label, arrays, stats) in zip(report.cases, before):
        assert case.name == label
        for k, v in {**arrays, **stats}.items():
            assert np.array_equal(case.inputs.get(k, case.settings.get(k)), v), (label, k)


def test_a_dropout_mask_is_judged_by_its_share_not_by_cnnlibs_draw():
    def uniform_dropout(x, *, p, training=True, rng=None):  # another draw than cnnlib's, right
        if not training or p == 0:
            return x, (None, 1.0, x.shape)
        keep = rng.uniform(0, 1, x.shape) < 1 - p
        return x * keep / (1 - p), (keep, 1 / (1 - p), x.shape)

    out, _ = uniform_dropout(np.ones((40, 50)), p=0.3, rng=np.random.default_rng([check._core.SEED, 960]))
    assert not np.array_equal(out != 0, cnnlib.dropout_forward(np.ones((40, 50)), p=0.3, rng=np.random.default_rng(
        [check._core.SEED, 960]))[0] != 0)
    assert check.dropout(forward=uniform_dropout, backward=cnnlib.dropout_backward).passed

    def half_dropout(x, *, p, training=True, rng=None):  # keeps half whatever p is
        return uniform_dropout(x, p=0.5, training=training, rng=rng)[0] * (0.5 / (1 - p)), None

    report = check.dropout(forward=half_dropout)
    assert not report.passed and "forward kept 48.9% of the values, where each is kept with probability 1 - p = 0.7" \
        in str(report), str(report)


# ---- stubs, fallbacks and junk -------------------------------------------------------------

def _stub(*args, **kwargs):
    raise NotImplementedError


@pytest.mark.parametrize("name, fallback", [("batchnorm2d", cnnlib.batchnorm2d_forward),
                                            ("dropout", cnnlib.dropout_forward)])
def test_stubs_are_not_written_and_a_backward_runs_on_the_fallbacks_cache(name, fallback):
    stub = check.exercise(fallback=fallback)(_stub)
    assert str(getattr(check, name)(forward=stub)).splitlines()[0] == f"check.{name}: NOT WRITTEN YET"
    assert str(getattr(check, name)(forward=stub, backward=_stub)).splitlines()[0] == f"check.{name}: NOT WRITTEN YET"
    backward = deeper.compact_bn_backward if name == "batchnorm2d" else deeper.lesson_dropout_backward
    report = getattr(check, name)(forward=stub, backward=backward)
    assert report.passed and "is not written yet: the backward was checked on the cache of its fallback" in \
        report.notes[0], str(report)


@pytest.mark.parametrize("name", ["sgd_weight_decay", "adamw"])
def test_optimizer_stubs_are_not_written(name):
    assert str(getattr(check, name)(_stub)).splitlines()[0] == f"check.{name}: NOT WRITTEN YET"


def test_the_fallbacks_are_cnnlibs_own():
    params = {"w": np.ones(3)}
    for step, optimizer, kwargs in ((check.reference.sgd_momentum_step, cnnlib.SGD(0.1, 0.9, 0.2), {}),
                                    (check.reference.adamw_step, cnnlib.AdamW(0.1, weight_decay=0.2), {})):
        mine, theirs, state = {"w": np.ones(3)}, {"w": np.ones(3)}, {}
        for g in (np.array([1.0, -2.0, 0.5]), np.array([0.0, 1.0, 3.0])):
            step(mine, {"w": g}, state, lr=0.1, weight_decay=0.2, **({"momentum": 0.9} if optimizer.__class__ is
                                                                    cnnlib.SGD else {}), **kwargs)
            optimizer.step(theirs, {"w": g})
        assert np.array_equal(mine["w"], theirs["w"]) and params


with warnings.catch_warnings():
    warnings.simplefilter("ignore", PendingDeprecationWarning)
    JUNK = [None, "s", 3, (1, 2), [np.zeros(2)], {"a": 1}, np.zeros(0), np.zeros((2, 2), dtype=complex),
            np.array([object()]), np.asmatrix(np.zeros((2, 2))), np.full((4, 3), np.nan), (np.zeros(3), None)]


@pytest.mark.parametrize("value", JUNK, ids=lambda v: type(v).__name__)
def test_whatever_a_learner_returns_the_new_checks_report_and_never_raise(value):
    runs = [check.sgd_weight_decay, check.adamw, lambda f: check.batchnorm2d(forward=f, backward=f),
            lambda f: check.dropout(forward=f, backward=f), lambda f: check.batchnorm2d(backward=f),
            lambda f: check.dropout(backward=f)]
    for run_check in runs:
        for result in (value, (value, value)):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                report = run_check(lambda *args, **kwargs: result)
            assert not report.passed and not report.diagnosis_errors, str(report)
            assert str(report) and report._repr_html_()


# ---- what a passing report prints ----------------------------------------------------------

@pytest.mark.parametrize("learner", [c for c in CASES if c.verdict == "pass"], ids=lambda c: c.id)
def test_a_passing_report_prints_its_cases_and_nothing_else(learner):
    """No measured number in a PASSED report: the same text on every CPU, BLAS and NumPy."""
    report = run(learner)
    lines = str(report).splitlines()
    assert lines[0] == f"check.{learner.check}: PASSED ({len(report.cases)} cases)"
    assert lines[2:] == [f"  [ok  ] {c.name}" for c in report.cases]
    assert not re.search(r"\d\.\d{3}", "\n".join(lines)), lines


def test_the_checks_show_their_signatures_and_refuse_wrong_calls():
    import inspect

    for name in NEW:
        assert name in check.__all__
        params = inspect.signature(getattr(check, name)).parameters.values()
        assert params and not any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params)
    with pytest.raises(TypeError, match=r"check.batchnorm2d\(forward=my_forward\)"):
        check.batchnorm2d(deeper.lesson_bn_forward)
    with pytest.raises(TypeError, match=r"check.dropout\(\) needs forward=, backward= or both"):
        check.dropout()
    with pytest.raises(TypeError, match=r"check.adamw\(fn\)"):
        check.adamw(deeper.lesson_adamw_step, 0.1)
