import zlib

import numpy as np
import pytest


@pytest.fixture
def rng(request):
    """A generator seeded from the test's id: the same on every run, different for each test.

    (crc32, not hash(): Python salts string hashes per process.)
    """
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))
