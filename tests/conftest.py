import zlib

import numpy as np
import pytest


@pytest.fixture
def rng(request):
    """A generator seeded from the test's id: the same on every run, different for each test.

    (crc32, not hash(): Python salts string hashes per process.)
    """
    key = request.node.nodeid
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None and "slicing" in callspec.params:
        # Whole batch or sliced, a test sees the same numbers (the ones it saw before the
        # slicing fixture existed), so its two runs differ only in how the batch is split.
        slicing = callspec.params["slicing"]
        rest = callspec.id.replace(f"{slicing}-", "", 1) if callspec.id != slicing else ""
        key = key.split("[")[0] + (f"[{rest}]" if rest else "")
    return np.random.default_rng(zlib.crc32(key.encode()))


@pytest.fixture(params=["whole batch", "3 slices"])
def slicing(request, monkeypatch):
    """Run a test twice: with the batch in one piece, and split into up to 3 slices at any size.

    The fast layers split large batches across the CPU cores (cnnlib/_parallel.py); the tests'
    small arrays would never be split, so "3 slices" lowers the threshold to force it (3, so a
    batch of 5 splits unevenly: 1, 2 and 2 images). Returns the number of slices allowed.
    """
    import cnnlib._parallel

    if request.param == "whole batch":
        monkeypatch.setenv("CNNLIB_THREADS", "1")
        return 1
    monkeypatch.setenv("CNNLIB_THREADS", "3")
    monkeypatch.setattr(cnnlib._parallel, "MIN_SLICE_WORK", 1)
    return 3


def pytest_terminal_summary(terminalreporter, config):
    import labdriver

    folder = config.stash.get(labdriver.SCREENSHOTS_KEY, None)
    if folder is not None:
        terminalreporter.write_line(f"browser screenshots: {folder} ({len(list(folder.glob('*.png')))} PNG files)")
