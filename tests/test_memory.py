"""cnnlib asks glibc to keep freed memory for reuse, and can be told not to."""

import platform
import subprocess
import sys

import pytest

from cnnlib._memory import keep_freed_memory

GLIBC_LINUX = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


@pytest.mark.skipif(not GLIBC_LINUX, reason="mallopt is glibc's; elsewhere the call is a no-op")
def test_applies_on_glibc():
    assert keep_freed_memory() is True
    assert keep_freed_memory(largest_reused_block_mib=64, kept_mib=128) is True


def test_environment_variable_turns_it_off(monkeypatch):
    monkeypatch.setenv("CNNLIB_KEEP_FREED_MEMORY", "0")
    assert keep_freed_memory() is False


def test_import_still_works_with_it_off():
    code = "import cnnlib, numpy as np; print(cnnlib.conv2d_forward(np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2)), np.zeros(1))[0].sum())"
    env = {"CNNLIB_KEEP_FREED_MEMORY": "0", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "16.0"
