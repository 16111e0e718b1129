import zlib

import numpy as np
import pytest


@pytest.fixture
def rng(request):
    """A generator seeded from the test's id: the same on every run, different for each test.

    (crc32, not hash(): Python salts string hashes per process.)
    """
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


def pytest_terminal_summary(terminalreporter, config):
    import labdriver

    folder = config.stash.get(labdriver.SCREENSHOTS_KEY, None)
    if folder is not None:
        terminalreporter.write_line(f"browser screenshots: {folder} ({len(list(folder.glob('*.png')))} PNG files)")
