"""Tests for cnnlib.datasets.

load_digits runs on the data bundled with scikit-learn. load_mnist runs against tiny IDX
files served from 127.0.0.1, so nothing here touches the internet.
"""

import contextlib
import gzip
import hashlib
import http.server
import os
import re
import shutil
import socket
import stat
import threading

import numpy as np
import pytest
import sklearn.datasets

import cnnlib.datasets
from cnnlib.datasets import MNIST_HASHES, download_mnist, load_digits, load_mnist, mnist_dir

MNIST_FILES = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
]


# ---------------------------------------------------------------------------- load_digits


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_digits_shapes_dtypes_and_range(dtype):
    (x_train, y_train), (x_test, y_test) = load_digits(dtype=dtype)
    assert x_train.shape == (1437, 1, 8, 8)
    assert x_test.shape == (360, 1, 8, 8)
    assert y_train.shape == (1437,) and y_test.shape == (360,)
    assert x_train.dtype == dtype and x_test.dtype == dtype
    assert y_train.dtype == np.int64 and y_test.dtype == np.int64
    for x in (x_train, x_test):
        assert x.min() == 0.0 and x.max() == 1.0
        # scaled by 16 exactly, not by 255 or by the per-image maximum
        np.testing.assert_array_equal(x * 16, np.round(x * 16))


def test_digits_default_dtype_is_float32():
    (x_train, _), (x_test, _) = load_digits()
    assert x_train.dtype == np.float32 and x_test.dtype == np.float32


def test_digits_every_class_in_both_splits_in_proportion():
    (_, y_train), (_, y_test) = load_digits()
    full = np.bincount(sklearn.datasets.load_digits().target, minlength=10)
    assert set(np.unique(y_train)) == set(range(10))
    assert set(np.unique(y_test)) == set(range(10))
    # stratified: each class's share of the test set matches its share of the full set
    np.testing.assert_allclose(np.bincount(y_test, minlength=10), full * 360 / 1797, atol=1)


def test_digits_is_deterministic():
    (a_x, a_y), (a_xt, a_yt) = load_digits()
    (b_x, b_y), (b_xt, b_yt) = load_digits()
    for a, b in [(a_x, b_x), (a_y, b_y), (a_xt, b_xt), (a_yt, b_yt)]:
        np.testing.assert_array_equal(a, b)


def test_digits_train_and_test_partition_the_full_set():
    (x_train, y_train), (x_test, y_test) = load_digits(dtype=np.float64)
    x = np.concatenate([x_train, x_test]).reshape(1797, 64) * 16  # (1797, 64)
    ours = np.column_stack([x, np.concatenate([y_train, y_test])])
    digits = sklearn.datasets.load_digits()
    theirs = np.column_stack([digits.data, digits.target])
    # rows with counts, so a sample duplicated into both splits (or dropped) is caught
    ours_rows, ours_counts = np.unique(ours, axis=0, return_counts=True)
    theirs_rows, theirs_counts = np.unique(theirs, axis=0, return_counts=True)
    np.testing.assert_array_equal(ours_rows, theirs_rows)
    np.testing.assert_array_equal(ours_counts, theirs_counts)


def test_digits_custom_test_size():
    (x_train, y_train), (x_test, y_test) = load_digits(test_size=100)
    assert x_train.shape == (1697, 1, 8, 8) and y_train.shape == (1697,)
    assert x_test.shape == (100, 1, 8, 8) and y_test.shape == (100,)


@pytest.mark.parametrize("dtype", [np.int64, np.float16, "uint8"])
def test_digits_rejects_non_float32_64_dtype(dtype):
    with pytest.raises(TypeError, match="dtype must be float32 or float64, got"):
        load_digits(dtype=dtype)


@pytest.mark.parametrize("test_size", [0, 9, 1788, 1797, -5, 0.2, True, "360"])
def test_digits_rejects_bad_test_size(test_size):
    with pytest.raises(ValueError, match=f"test_size .* got {re.escape(repr(test_size))}$"):
        load_digits(test_size=test_size)


# ----------------------------------------------------------------------------- load_mnist


def _write_idx_gz(path, magic, array):
    header = np.array([magic, *array.shape], dtype=">u4").tobytes()
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def _sha256(path):
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def tiny_mnist(tmp_path):
    """Five train and three test 28x28 images as IDX gz files, with their hashes."""
    served = tmp_path / "served"
    served.mkdir()
    rng = np.random.default_rng(0)
    arrays = {
        "train": (rng.integers(0, 256, (5, 28, 28), dtype=np.uint8), np.array([3, 1, 4, 1, 5])),
        "t10k": (rng.integers(0, 256, (3, 28, 28), dtype=np.uint8), np.array([9, 2, 6])),
    }
    arrays["train"][0][0, 0, :2] = [0, 255]  # both ends of the scale appear
    for prefix, (images, labels) in arrays.items():
        _write_idx_gz(served / f"{prefix}-images-idx3-ubyte.gz", 2051, images)
        _write_idx_gz(served / f"{prefix}-labels-idx1-ubyte.gz", 2049, labels)
    hashes = {name: _sha256(served / name) for name in MNIST_FILES}
    return served, arrays, hashes


@pytest.fixture
def server(tiny_mnist, monkeypatch):
    """Serve the tiny files on 127.0.0.1; yields the base URL and the list of paths GET."""
    # a proxy set in the environment must not intercept requests to the local server
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    requested = []
    with serving(tiny_mnist[0], requested) as url:
        yield url, requested


@contextlib.contextmanager
def serving(served, requested):
    """Serve the folder `served` on 127.0.0.1 until the block ends; yields the base URL."""

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(served), **kwargs)

        def do_GET(self):
            requested.append(self.path)
            super().do_GET()

        def log_message(self, format, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mnist_parses_served_files_exactly(tiny_mnist, server, tmp_path, dtype):
    _, arrays, hashes = tiny_mnist
    url, requested = server
    (x_train, y_train), (x_test, y_test) = load_mnist(
        base_url=url, cache_dir=tmp_path / "cache", hashes=hashes, dtype=dtype
    )
    assert sorted(requested) == sorted("/" + name for name in MNIST_FILES)
    for (x, y), prefix, n in [((x_train, y_train), "train", 5), ((x_test, y_test), "t10k", 3)]:
        images, labels = arrays[prefix]
        assert x.shape == (n, 1, 28, 28) and x.dtype == dtype
        assert y.shape == (n,) and y.dtype == np.int64
        np.testing.assert_array_equal(x[:, 0], images.astype(dtype) / dtype(255))
        np.testing.assert_array_equal(y, labels)
    assert x_train[0, 0, 0, 0] == 0.0 and x_train[0, 0, 0, 1] == 1.0
    assert x_train.max() == 1.0


def test_mnist_second_call_reads_the_cache(tiny_mnist, server, tmp_path):
    url, requested = server
    kwargs = dict(base_url=url, cache_dir=tmp_path / "cache", hashes=tiny_mnist[2])
    first = load_mnist(**kwargs)
    assert len(requested) == 4
    second = load_mnist(**kwargs)
    assert len(requested) == 4
    for split_a, split_b in zip(first, second):
        for a, b in zip(split_a, split_b):
            np.testing.assert_array_equal(a, b)
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == sorted(MNIST_FILES)


def test_mnist_wrong_hash_raises_naming_the_file(tiny_mnist, server, tmp_path):
    url, _ = server
    hashes = {**tiny_mnist[2], "train-labels-idx1-ubyte.gz": "sha256:" + "0" * 64}
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte\.gz.*does not match"):
        load_mnist(base_url=url, cache_dir=tmp_path / "cache", hashes=hashes)
    assert not (tmp_path / "cache" / "train-labels-idx1-ubyte.gz").exists()


def _bad_magic(path):
    _write_idx_gz(path, 2052, np.zeros((5, 28, 28), np.uint8))


def _truncated(path):
    data = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(data[:-10]))


def _not_gzip(path):
    path.write_bytes(b"<html>not found</html>")


def _short_header(path):
    path.write_bytes(gzip.compress(b"\x00\x00\x08"))


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (_bad_magic, "magic number 2052, expected 2051"),
        (_truncated, "header promises 5x28x28 bytes of data, found 3910"),
        (_not_gzip, "not a valid gzip file"),
        (_short_header, "too short"),
    ],
)
def test_mnist_malformed_idx_raises_value_error(tiny_mnist, server, tmp_path, corrupt, message):
    served, _, hashes = tiny_mnist
    target = served / "train-images-idx3-ubyte.gz"
    corrupt(target)
    hashes = {**hashes, target.name: _sha256(target)}
    url, _ = server
    with pytest.raises(ValueError, match=f"train-images-idx3-ubyte.gz.*{message}"):
        load_mnist(base_url=url, cache_dir=tmp_path / "cache", hashes=hashes)


def test_mnist_label_count_must_match_image_count(tiny_mnist, server, tmp_path):
    served, _, hashes = tiny_mnist
    target = served / "t10k-labels-idx1-ubyte.gz"
    _write_idx_gz(target, 2049, np.array([1, 2]))
    hashes = {**hashes, target.name: _sha256(target)}
    with pytest.raises(ValueError, match="t10k split has 3 images but 2 labels"):
        load_mnist(base_url=server[0], cache_dir=tmp_path / "cache", hashes=hashes)


def test_mnist_offline_raises_runtime_error_with_advice(tmp_path, monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    with socket.socket() as sock:  # a port that was free a moment ago has no listener now
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cache = tmp_path / "cache"
    url = f"http://127.0.0.1:{port}/"
    with pytest.raises(RuntimeError) as info:
        load_mnist(base_url=url, cache_dir=cache)
    message = str(info.value)
    assert f"could not be downloaded from {url}" in message
    assert str(cache) in message
    assert "cnnlib.datasets.load_digits()" in message
    assert "internet" in message
    assert isinstance(info.value.__cause__, OSError)


def test_mnist_http_error_raises_runtime_error(tiny_mnist, server, tmp_path):
    served, _, hashes = tiny_mnist
    (served / "t10k-images-idx3-ubyte.gz").unlink()
    url, _ = server
    with pytest.raises(RuntimeError, match=r"t10k-images-idx3-ubyte\.gz.*404"):
        load_mnist(base_url=url, cache_dir=tmp_path / "cache", hashes=hashes)


def test_mnist_rejects_bad_dtype_and_unknown_hash_names_before_downloading(server, tmp_path):
    url, requested = server
    with pytest.raises(TypeError, match="float32 or float64, got int32"):
        load_mnist(base_url=url, cache_dir=tmp_path / "cache", dtype=np.int32)
    with pytest.raises(ValueError, match="unknown file names.*train-images.gz"):
        load_mnist(base_url=url, cache_dir=tmp_path / "cache", hashes={"train-images.gz": "x"})
    assert requested == []


def test_mnist_default_hashes_are_four_sha256_digests():
    assert sorted(MNIST_HASHES) == sorted(MNIST_FILES)
    for value in MNIST_HASHES.values():
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", value), value
    assert len(set(MNIST_HASHES.values())) == 4


# ------------------------------------------- a classroom's MNIST: download_mnist, CNNLIB_DATA_DIR


def _dead_url():
    """A URL on 127.0.0.1 where nothing listens: any download attempt fails at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/"


@pytest.fixture
def no_data_dir(monkeypatch):
    monkeypatch.delenv("CNNLIB_DATA_DIR", raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")


def _assert_tiny_mnist(loaded, arrays):
    (x_train, y_train), (x_test, y_test) = loaded
    np.testing.assert_array_equal(x_train[:, 0], arrays["train"][0] / np.float32(255))
    np.testing.assert_array_equal(y_train, arrays["train"][1])
    np.testing.assert_array_equal(x_test[:, 0], arrays["t10k"][0] / np.float32(255))
    np.testing.assert_array_equal(y_test, arrays["t10k"][1])


def test_download_then_load_from_the_data_dir_with_the_server_stopped(tiny_mnist, no_data_dir, tmp_path,
                                                                      monkeypatch, capfd):
    served, arrays, hashes = tiny_mnist
    shared = tmp_path / "class" / "mnist"  # does not exist yet: download_mnist creates it
    requested = []
    with serving(served, requested) as url:
        assert download_mnist(cache_dir=shared, base_url=url, hashes=hashes) == shared
    assert sorted(requested) == sorted("/" + name for name in MNIST_FILES)
    assert sorted(p.name for p in shared.iterdir()) == sorted(MNIST_FILES)
    # pooch's progress bar is tqdm's, on standard error, one bar per file
    assert capfd.readouterr().err.count("100%") == 4

    monkeypatch.setenv("CNNLIB_DATA_DIR", str(shared))
    _assert_tiny_mnist(load_mnist(base_url=url, hashes=hashes), arrays)  # the server is gone
    assert len(requested) == 4


def test_download_mnist_takes_the_data_dir_from_the_environment(tiny_mnist, server, no_data_dir, tmp_path,
                                                                monkeypatch, capfd):
    url, requested = server
    shared = tmp_path / "shared"
    monkeypatch.setenv("CNNLIB_DATA_DIR", str(shared))
    assert download_mnist(base_url=url, hashes=tiny_mnist[2], progressbar=False) == shared
    assert sorted(p.name for p in shared.iterdir()) == sorted(MNIST_FILES)
    assert capfd.readouterr().err == ""
    # a second run finds the files there with the right hashes and downloads nothing
    download_mnist(base_url=url, hashes=tiny_mnist[2], progressbar=False)
    assert len(requested) == 4


def test_load_mnist_reads_a_read_only_prefilled_folder(tiny_mnist, no_data_dir, tmp_path, monkeypatch):
    served, arrays, hashes = tiny_mnist
    shared = tmp_path / "prefilled"
    shutil.copytree(served, shared)
    for path in [*shared.iterdir(), shared]:
        path.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH | (stat.S_IXUSR if path.is_dir() else 0))
    before = {p.name: p.stat().st_mtime_ns for p in shared.iterdir()}, shared.stat().st_mtime_ns
    monkeypatch.setenv("CNNLIB_DATA_DIR", str(shared))
    try:
        _assert_tiny_mnist(load_mnist(base_url=_dead_url(), hashes=hashes), arrays)
        # root may write to a read-only folder: check that nothing was written, not only that it worked
        after = {p.name: p.stat().st_mtime_ns for p in shared.iterdir()}, shared.stat().st_mtime_ns
        assert after == before
    finally:
        shared.chmod(0o755)


def test_a_read_only_folder_missing_a_file_says_so(tiny_mnist, no_data_dir, tmp_path, monkeypatch):
    served, _, hashes = tiny_mnist
    shared = tmp_path / "prefilled"
    shutil.copytree(served, shared)
    (shared / "t10k-labels-idx1-ubyte.gz").unlink()

    # pooch's own check of a folder it must write to, as it fails for a user without write access
    # (the tests may run as root, who can write anywhere)
    def not_writable(path, env=None):
        raise PermissionError(f"[Errno 13] Permission denied | Pooch could not write to data cache folder '{path}'.")

    monkeypatch.setattr("pooch.core.make_local_storage", not_writable)
    monkeypatch.setenv("CNNLIB_DATA_DIR", str(shared))
    with pytest.raises(PermissionError) as info:
        load_mnist(base_url=_dead_url(), hashes=hashes)
    message = str(info.value)
    assert "t10k-labels-idx1-ubyte.gz is missing from " + str(shared) in message
    assert "not writable" in message and "python3 course.py download" in message


def test_a_data_dir_that_does_not_exist_is_refused_by_load_mnist(no_data_dir, tmp_path, monkeypatch):
    missing = tmp_path / "typo"
    monkeypatch.setenv("CNNLIB_DATA_DIR", str(missing))
    with pytest.raises(FileNotFoundError, match=rf"CNNLIB_DATA_DIR names the folder {re.escape(str(missing))}, "
                                                r"which does not exist.*course\.py download"):
        load_mnist(base_url=_dead_url())
    assert not missing.exists()


def test_a_data_dir_that_is_a_file_is_refused(no_data_dir, tmp_path, monkeypatch):
    a_file = tmp_path / "mnist.gz"
    a_file.write_bytes(b"")
    monkeypatch.setenv("CNNLIB_DATA_DIR", str(a_file))
    for call in (lambda: load_mnist(base_url=_dead_url()), lambda: download_mnist(base_url=_dead_url())):
        with pytest.raises(NotADirectoryError, match=rf"CNNLIB_DATA_DIR .*names {re.escape(str(a_file))}, "
                                                     "which is a file, not a folder"):
            call()
    with pytest.raises(NotADirectoryError, match="cache_dir names .*which is a file"):
        download_mnist(cache_dir=a_file, base_url=_dead_url())


def test_a_relative_data_dir_is_refused(no_data_dir, monkeypatch):
    monkeypatch.setenv("CNNLIB_DATA_DIR", "data/mnist")
    with pytest.raises(ValueError, match="CNNLIB_DATA_DIR must be an absolute path, got 'data/mnist'"):
        load_mnist(base_url=_dead_url())


def test_the_folder_is_the_argument_then_the_variable_then_poochs_cache(no_data_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(cnnlib.datasets.pooch, "os_cache", lambda project: tmp_path / "default" / project)
    assert mnist_dir() == tmp_path / "default" / "cnnlib"
    monkeypatch.setenv("CNNLIB_DATA_DIR", "  ")  # blank counts as unset
    assert mnist_dir() == tmp_path / "default" / "cnnlib"
    monkeypatch.setenv("CNNLIB_DATA_DIR", str(tmp_path))
    assert mnist_dir() == tmp_path
    assert mnist_dir(tmp_path / "mine") == tmp_path / "mine"
    monkeypatch.setenv("CNNLIB_DATA_DIR", "~")
    assert mnist_dir() == type(tmp_path)(os.path.expanduser("~"))


def test_course_py_download_runs_download_mnist_in_the_course_python(tiny_mnist, server, no_data_dir, tmp_path,
                                                                     monkeypatch, capsys):
    import runpy
    from pathlib import Path

    url, requested = server
    namespace = runpy.run_path(str(Path(__file__).resolve().parent.parent / "course.py"),
                               run_name="course_under_test")["main"].__globals__
    commands = []
    namespace.update(setup=lambda: "the-course-python", say=lambda message: None,
                     run=lambda command: commands.append(command) or 0)
    assert namespace["main"](["download"]) == 0
    [(python, flag, code)] = commands
    assert (python, flag) == ("the-course-python", "-c")

    # The code it hands to the course's Python, run here against the local server.
    monkeypatch.setitem(download_mnist.__kwdefaults__, "base_url", url)
    monkeypatch.setitem(download_mnist.__kwdefaults__, "hashes", tiny_mnist[2])
    monkeypatch.setitem(download_mnist.__kwdefaults__, "progressbar", False)
    monkeypatch.setenv("CNNLIB_DATA_DIR", str(tmp_path / "class"))
    exec(code, {})
    assert f"[course] MNIST is in {tmp_path / 'class'}" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "class").iterdir()) == sorted(MNIST_FILES)
    assert len(requested) == 4

    monkeypatch.setitem(download_mnist.__kwdefaults__, "base_url", _dead_url())
    monkeypatch.setenv("CNNLIB_DATA_DIR", str(tmp_path / "other"))
    with pytest.raises(SystemExit, match=r"^\[course\] MNIST was not downloaded: MNIST could not be downloaded"):
        exec(code, {})
    with pytest.raises(SystemExit, match="takes no extra arguments"):
        namespace["main"](["download", "now"])
