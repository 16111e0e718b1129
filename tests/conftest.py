"""Fixtures shared by every test folder (layers, training, engine, check, explorers, course).

pytest puts this folder on sys.path for the conftest, so the helpers beside it (gradutil,
labdriver, lesson8_layers, learners) import from any test folder. The test files' names must
stay unique across folders: the folders are not packages.
"""

import re
import zlib

import numpy as np
import pytest


# Fixtures that run a test once per way of computing the same thing; rng ignores them.
MODES = ("slicing", "products", "chunking")


@pytest.fixture
def rng(request):
    """A generator seeded from the test's id: the same on every run, different for each test.

    (crc32, not hash(): Python salts string hashes per process.)
    """
    key = seed_key(request.node.nodeid, getattr(request.node, "callspec", None))
    return np.random.default_rng(zlib.crc32(key.encode()))


def seed_key(nodeid, callspec):
    """The test's id without the ids of MODES: however the batch is split or multiplied, a
    test sees the same numbers (the ones it saw before these fixtures existed), so its runs
    differ only in the way of computing. The id is also taken without the test's folder, so
    a test draws what it drew before the tests moved into folders."""
    nodeid = re.sub(r"^tests/\w+/(?=test_)", "tests/", nodeid)
    if callspec is None or not any(mode in callspec.params for mode in MODES):
        return nodeid
    test_id = callspec.id
    for mode in MODES:
        if mode in callspec.params:
            test_id = _without(test_id, callspec.params[mode])
    return nodeid.split("[")[0] + (f"[{test_id}]" if test_id else "")


def _without(test_id, part):
    """test_id ("a-b-c", pytest's parameter ids joined by "-") without the id `part`."""
    if test_id == part:
        return ""
    if test_id.startswith(part + "-"):
        return test_id[len(part) + 1:]
    if test_id.endswith("-" + part):
        return test_id[:-len(part) - 1]
    return test_id.replace(f"-{part}-", "-", 1)


@pytest.fixture(params=["whole batch", "3 slices"])
def slicing(request, monkeypatch):
    """Run a test twice: with the batch in one piece, and split into up to 3 slices at any size.

    The fast layers split large batches across the CPU cores (cnnlib/engine/parallel.py); the tests'
    small arrays would never be split, so "3 slices" lowers the threshold to force it (3, so a
    batch of 5 splits unevenly: 1, 2 and 2 images). Returns the number of slices allowed.
    """
    import cnnlib.engine.parallel

    if request.param == "whole batch":
        monkeypatch.setenv("CNNLIB_THREADS", "1")
        return 1
    monkeypatch.setenv("CNNLIB_THREADS", "3")
    monkeypatch.setattr(cnnlib.engine.parallel, "MIN_SLICE_WORK", 1)
    return 3


@pytest.fixture(params=["per-image products", "one product"])
def products(request, monkeypatch):
    """Run a conv test twice: with its matrix products image by image, and one per chunk.

    cnnlib.engine.conv picks by the output size (PER_IMAGE_MIN_PIXELS); the tests' small maps would
    always get one product, so the first run lowers the threshold to force the other way.
    """
    import cnnlib.engine.conv

    monkeypatch.setattr(cnnlib.engine.conv, "PER_IMAGE_MIN_PIXELS", 1 if request.param == "per-image products" else 10**9)
    return request.param


@pytest.fixture(params=["whole slices", "2-image chunks"])
def chunking(request, monkeypatch):
    """Run a conv test twice: each slice of the batch in one chunk, and 2 images at a time.

    cnnlib.engine.conv goes through the batch a chunk of images at a time (CHUNK_BYTES); the tests'
    small images would always fit in one chunk, so the second run forces chunks of 2 images
    (a slice of 5 is then cut 2, 2, 1): dw must add up across chunks, and the backward must
    copy the windows again.
    """
    import cnnlib.engine.conv

    if request.param == "whole slices":
        monkeypatch.setattr(cnnlib.engine.conv, "CHUNK_BYTES", 1 << 62)
    else:
        monkeypatch.setattr(cnnlib.engine.conv, "images_per_chunk", lambda n, image_bytes, out_hw: 2)
    return request.param


@pytest.fixture
def no_detector_breaks(monkeypatch):
    """Every report a test makes is read by every catalogue entry of cnnlib.check without an error.

    diagnose() keeps a detector's error in report.diagnosis_errors rather than failing a learner's
    check; here that list must stay empty.
    """
    from cnnlib.check import basics, bridge, layers, mistakes, training

    made = []
    real = mistakes.diagnose

    def diagnose(report, name):
        real(report, name)
        made.append(report)

    for module in (mistakes, basics, bridge, layers, training):
        if hasattr(module, "diagnose"):
            monkeypatch.setattr(module, "diagnose", diagnose)
    yield
    for report in made:
        assert report.diagnosis_errors == [], report.diagnosis_errors


def pytest_terminal_summary(terminalreporter, config):
    import labdriver

    # Under pytest-xdist the browser tests run in a worker process, so this (in the main one)
    # goes by their reports: a browser test that got past its set-up took screenshots.
    reports = (report for kind in terminalreporter.stats.values() for report in kind)
    if any(getattr(report, "when", None) == "call" and report.nodeid.startswith("tests/course/test_browser.py")
           for report in reports):
        folder = labdriver.screenshot_folder()
        terminalreporter.write_line(f"browser screenshots: {folder} ({len(list(folder.glob('*.png')))} PNG files)")


# The units pytest-xdist hands out whole (a test file, a test class, a notebook) that take
# longest, longest first: `course.py test` keeps the collection order (--no-loadscope-reorder),
# and the two workers finish together when the long units start first and the short ones fill
# in at the end. Seconds are from one run of `python3 course.py test` on 2 cores; the order
# only has to be about right.
LONGEST_FIRST = [
    "tests/course/test_browser.py::TestLessons",  # 200 s
    "tests/course/test_browser.py::TestEditions",  # 160 s
    "tests/course/test_exercises.py",  # 90-140 s: each edition solved, in a fresh kernel
    "notebooks/12-batch-normalisation.ipynb",  # 27 s
    "notebooks/10-what-the-network-learned.ipynb",
    "notebooks/exercises/12-batch-normalisation.ipynb",
    "notebooks/13-regularisation.ipynb",
    "notebooks/exercises/13-regularisation.ipynb",
    "notebooks/11-how-a-numpy-cnn-trains-fast.ipynb",
    "notebooks/14-a-deeper-cnn.ipynb",
    "notebooks/exercises/11-how-a-numpy-cnn-trains-fast.ipynb",  # 14 s
    "tests/engine/test_benchmark_script.py",  # 12 s
    "tests/course/test_browser.py",  # the canary, beside the browser's classes
]


def pytest_collection_modifyitems(items):
    rank = {unit: k for k, unit in enumerate(LONGEST_FIRST)}
    # A stable sort: within a unit, and among the units not listed, the collection order stays.
    items.sort(key=lambda item: rank.get(item.nodeid.rsplit("::", 1)[0], len(rank)))
