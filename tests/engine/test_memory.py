"""The allocator setting (cnnlib/engine/memory.py): applied only when a program calls it (not
by importing cnnlib, a layer or fit), and CNNLIB_KEEP_FREED_MEMORY=0 turns it off."""

import os
import platform
import subprocess
import sys
import textwrap

import pytest

from cnnlib.engine.memory import keep_freed_memory

GLIBC_LINUX = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.skipif(not GLIBC_LINUX, reason="mallopt is glibc's; elsewhere the call is a no-op")
def test_applies_on_glibc():
    assert keep_freed_memory() is True
    assert keep_freed_memory(largest_reused_block_mib=64, kept_mib=128) is True


def test_environment_variable_turns_it_off(monkeypatch):
    monkeypatch.setenv("CNNLIB_KEEP_FREED_MEMORY", "0")
    assert keep_freed_memory() is False


def _run(code, **env):
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": ROOT, "CNNLIB_THREADS": "1", **env}
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env,
                         check=True)
    return out.stdout.strip()


def test_import_layers_and_fit_leave_malloc_alone():
    # A process-wide setting is never a side effect of `import cnnlib`, of running a layer or
    # of training: the engine keeps its own memory (cnnlib/engine/arrays.py) and needs none.
    code = """
        import ctypes
        import numpy as np
        calls = []
        real_cdll = ctypes.CDLL

        class Spy:  # stands in for libc's mallopt (the process's own symbols, CDLL(None)), counting calls
            argtypes = None
            def __call__(self, *args):
                calls.append(args)
                return 1
        ctypes.CDLL = lambda name, *a, **k: type("C", (), {"mallopt": Spy()})() if name is None else real_cdll(name, *a, **k)
        import cnnlib
        cnnlib.conv2d_forward(np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2)), np.zeros(1))
        print(len(calls), end=" ")
        model = cnnlib.Sequential(cnnlib.Flatten(), cnnlib.Dense(4, 2, rng=np.random.default_rng(0)))
        cnnlib.fit(model, np.ones((4, 1, 2, 2)), np.array([0, 1, 0, 1]), optimizer=cnnlib.SGD(lr=0.1),
                   progress=False)
        print(len(calls))
    """
    assert _run(code) == "0 0"
    assert _run(code, CNNLIB_KEEP_FREED_MEMORY="0") == "0 0"


def test_import_still_works_with_it_off():
    code = "import cnnlib, numpy as np; print(cnnlib.conv2d_forward(np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2)), np.zeros(1))[0].sum())"
    assert _run(code, CNNLIB_KEEP_FREED_MEMORY="0") == "16.0"
