"""Tests for cnnlib.datasets.

load_digits runs on the data bundled with scikit-learn. load_mnist runs against tiny IDX
files served from 127.0.0.1, so nothing here touches the internet.
"""

import contextlib
import errno
import gzip
import hashlib
import http.server
import os
import re
import shutil
import socket
import stat
import tempfile
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
def serving(served, requested, cut_short=()):
    """Serve the folder `served` on 127.0.0.1 until the block ends; yields the base URL.

    The files named in `cut_short` are announced whole (Content-Length) but only half sent
    before the connection closes, as when a download breaks off.
    """

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(served), **kwargs)

        def do_GET(self):
            requested.append(self.path)
            name = self.path.lstrip("/")
            if name not in cut_short:
                return super().do_GET()
            data = (served / name).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True

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
    assert message.startswith("MNIST could not be downloaded: every URL tried for train-images-idx3-ubyte.gz failed:")
    assert re.search(rf"\n  {re.escape(url)}train-images-idx3-ubyte\.gz: could not connect \(\[Errno \d+\] Connection "
                     r"refused\)\n", message)
    assert str(cache) in message
    assert "cnnlib.datasets.load_digits()" in message
    assert "Check the internet connection" in message
    assert isinstance(info.value.__cause__, OSError)
    assert not cache.exists() or list(cache.iterdir()) == []  # no partial or temporary file


def test_mnist_http_error_raises_runtime_error(tiny_mnist, server, tmp_path):
    served, _, hashes = tiny_mnist
    (served / "t10k-images-idx3-ubyte.gz").unlink()
    url, _ = server
    with pytest.raises(RuntimeError, match=r"t10k-images-idx3-ubyte\.gz: the server answered HTTP 404") as info:
        load_mnist(base_url=url, cache_dir=tmp_path / "cache", hashes=hashes)
    assert "internet" not in str(info.value)  # the server answered: the connection is fine


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

    refuse_files_in(shared, monkeypatch)
    monkeypatch.setenv("CNNLIB_DATA_DIR", str(shared))
    with pytest.raises(PermissionError) as info:
        load_mnist(base_url=_dead_url(), hashes=hashes)
    message = str(info.value)
    assert message.startswith(f"cannot write to {shared}: permission denied. t10k-labels-idx1-ubyte.gz is missing "
                              "from it (or does not match its SHA-256) and cannot be downloaded there")
    assert "python3 course.py download" in message and "internet" not in message


def refuse_files_in(folder, monkeypatch, error=errno.EACCES):
    """Make creating a file in `folder` fail with `error`, as the kernel does for a user without write
    access (the tests may run as root, who can write anywhere)."""
    real_mkstemp = tempfile.mkstemp

    def mkstemp(*args, dir=None, **kwargs):
        if dir is not None and os.path.samefile(dir, folder):
            raise OSError(error, os.strerror(error), os.path.join(dir, ".hidden.part"))
        return real_mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)


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
    namespace = runpy.run_path(str(Path(__file__).resolve().parents[2] / "course.py"),
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


# ------------------------------------- mirrors: tried in order, every file checked against its hash


def _leftovers(folder):
    """Files in `folder` other than complete MNIST files: temporary or partial downloads."""
    return sorted(p.name for p in folder.iterdir() if p.name not in MNIST_FILES) if folder.exists() else []


def _bad_copy(tiny_mnist, tmp_path, names):
    """A folder serving the tiny files, with the files `names` changed (same size, other bytes)."""
    served, _, _ = tiny_mnist
    bad = tmp_path / "bad"
    shutil.copytree(served, bad)
    for name in names:
        data = bytearray((bad / name).read_bytes())
        data[-1] ^= 0xFF
        (bad / name).write_bytes(bytes(data))
    return bad


def test_the_default_urls_are_pytorchs_then_tensorflows_mirror():
    assert cnnlib.datasets.MNIST_URLS == ("https://ossci-datasets.s3.amazonaws.com/mnist/",
                                          "https://storage.googleapis.com/cvdf-datasets/mnist/")
    assert cnnlib.datasets.MNIST_URL == cnnlib.datasets.MNIST_URLS[0]
    assert load_mnist.__kwdefaults__["base_url"] is None and download_mnist.__kwdefaults__["base_url"] is None


def test_a_dead_first_mirror_falls_over_to_the_second(tiny_mnist, server, no_data_dir, tmp_path, monkeypatch):
    _, arrays, hashes = tiny_mnist
    url, requested = server
    monkeypatch.setattr(cnnlib.datasets, "MNIST_URLS", (_dead_url(), url))
    cache = tmp_path / "cache"
    _assert_tiny_mnist(load_mnist(cache_dir=cache, hashes=hashes), arrays)
    assert sorted(requested) == sorted("/" + name for name in MNIST_FILES)
    assert sorted(p.name for p in cache.iterdir()) == sorted(MNIST_FILES)


def test_a_file_missing_or_wrong_on_the_first_mirror_comes_from_the_second(tiny_mnist, no_data_dir, tmp_path):
    served, arrays, hashes = tiny_mnist
    first = _bad_copy(tiny_mnist, tmp_path, ["train-labels-idx1-ubyte.gz"])  # wrong bytes
    (first / "t10k-images-idx3-ubyte.gz").unlink()  # 404
    from_first, from_second = [], []
    with serving(first, from_first) as url1, serving(served, from_second) as url2:
        cache = download_mnist(cache_dir=tmp_path / "cache", base_url=[url1, url2], hashes=hashes, progressbar=False)
    assert sorted(from_first) == sorted("/" + name for name in MNIST_FILES)
    assert sorted(from_second) == ["/t10k-images-idx3-ubyte.gz", "/train-labels-idx1-ubyte.gz"]
    assert _leftovers(cache) == []
    _assert_tiny_mnist(load_mnist(cache_dir=cache, base_url=_dead_url(), hashes=hashes), arrays)


def test_download_mnist_says_which_url_failed_before_trying_the_next(tiny_mnist, server, no_data_dir, tmp_path, capfd):
    url, _ = server
    dead = _dead_url()
    download_mnist(cache_dir=tmp_path / "cache", base_url=[dead, url], hashes=tiny_mnist[2])
    err = capfd.readouterr().err
    assert f"{dead}train-images-idx3-ubyte.gz failed: could not connect" in err and "trying the next URL" in err
    assert err.count("100%") == 4


def test_when_every_url_fails_the_error_names_each_and_why(tiny_mnist, no_data_dir, tmp_path):
    served, _, hashes = tiny_mnist
    gone = tmp_path / "empty"
    gone.mkdir()
    dead = _dead_url()
    with serving(gone, []) as empty:
        with pytest.raises(RuntimeError) as info:
            load_mnist(cache_dir=tmp_path / "cache", base_url=(dead, empty), hashes=hashes)
        message = str(info.value)
        assert re.search(rf"failed:\n  {re.escape(dead)}train-images-idx3-ubyte\.gz: could not connect \(.*\)\n"
                         rf"  {re.escape(empty)}train-images-idx3-ubyte\.gz: the server answered HTTP 404 File not "
                         r"found\nCheck the internet connection and try again, or download the four files", message)
        assert f"by hand from {dead} or {empty} into {tmp_path / 'cache'}" in message
        # servers that answer, if only with 404, say nothing of the connection
        with pytest.raises(RuntimeError, match=r"HTTP 404.*\nTry again later, or download") as info:
            load_mnist(cache_dir=tmp_path / "cache", base_url=[empty, empty], hashes=hashes)
        assert "internet" not in str(info.value)
    assert _leftovers(tmp_path / "cache") == []


def test_wrong_bytes_from_every_url_is_a_value_error_and_nothing_is_kept(tiny_mnist, no_data_dir, tmp_path):
    _, _, hashes = tiny_mnist
    bad = _bad_copy(tiny_mnist, tmp_path, ["t10k-images-idx3-ubyte.gz"])
    dead = _dead_url()
    cache = tmp_path / "cache"
    with serving(bad, []) as url:
        with pytest.raises(ValueError) as info:
            load_mnist(cache_dir=cache, base_url=[url, dead], hashes=hashes)
    message = str(info.value)
    assert message.startswith("MNIST could not be downloaded: t10k-images-idx3-ubyte.gz does not match its pinned "
                              f"SHA-256 ({hashes['t10k-images-idx3-ubyte.gz']}) from any URL tried:")
    assert f"\n  {url}t10k-images-idx3-ubyte.gz: it served a file whose SHA-256 is " in message
    assert f"\n  {dead}t10k-images-idx3-ubyte.gz: could not connect" in message
    assert "t10k-images-idx3-ubyte.gz" not in os.listdir(cache) and _leftovers(cache) == []


def test_a_download_that_breaks_off_leaves_no_file_a_later_load_would_trust(tiny_mnist, no_data_dir, tmp_path):
    served, arrays, hashes = tiny_mnist
    cache = tmp_path / "cache"
    with serving(served, [], cut_short={"train-images-idx3-ubyte.gz"}) as url:
        with pytest.raises(RuntimeError, match=r"train-images-idx3-ubyte\.gz: the connection broke off during the "
                                               r"download\nCheck the internet connection"):
            load_mnist(cache_dir=cache, base_url=url, hashes=hashes)
    assert list(cache.iterdir()) == []  # neither the half file nor its temporary name
    with serving(served, []) as url:
        _assert_tiny_mnist(load_mnist(cache_dir=cache, base_url=url, hashes=hashes), arrays)


def test_a_cached_file_that_does_not_match_is_fetched_again(tiny_mnist, server, no_data_dir, tmp_path):
    _, arrays, hashes = tiny_mnist
    url, requested = server
    cache = tmp_path / "cache"
    download_mnist(cache_dir=cache, base_url=url, hashes=hashes, progressbar=False)
    (cache / "train-labels-idx1-ubyte.gz").write_bytes(b"half a file")
    _assert_tiny_mnist(load_mnist(cache_dir=cache, base_url=url, hashes=hashes), arrays)
    assert requested[4:] == ["/train-labels-idx1-ubyte.gz"]


def test_a_base_url_without_its_final_slash_works(tiny_mnist, server, no_data_dir, tmp_path):
    url, _ = server
    _assert_tiny_mnist(load_mnist(cache_dir=tmp_path / "c", base_url=url.rstrip("/"), hashes=tiny_mnist[2]),
                       tiny_mnist[1])


@pytest.mark.parametrize("kwargs, error, match", [
    ({"base_url": 8080}, TypeError, r"base_url must be a URL \(str\), a non-empty list of URLs tried in order, or "
                                    r"None for MNIST_URLS; got 8080"),
    ({"base_url": []}, TypeError, r"base_url must be a URL"),
    ({"base_url": "ftp://example.org/mnist/"}, ValueError, r"base_url must be the http:// or https:// URL of a "
                                                           r"folder, got 'ftp://example.org/mnist/'"),
    ({"base_url": "storage.googleapis.com/cvdf-datasets/mnist/"}, ValueError, "http:// or https://"),
    ({"hashes": ["sha256:0"]}, TypeError, r"hashes must be a dict of file name -> 'sha256:<hex>', got list"),
    ({"hashes": {"t10k-labels-idx1-ubyte.gz": "md5:" + "0" * 32}}, ValueError,
     r"hashes\['t10k-labels-idx1-ubyte\.gz'\] must be 'sha256:' then 64 hex digits, got 'md5:0+'"),
])
def test_bad_base_url_or_hashes_are_refused_before_any_download(server, no_data_dir, tmp_path, kwargs, error, match):
    _, requested = server
    for call in (load_mnist, download_mnist):
        with pytest.raises(error, match=match):
            call(cache_dir=tmp_path / "cache", **kwargs)
    assert requested == [] and not (tmp_path / "cache").exists()


# ----------------------------------------- the local disk's errors are named as such, never the network's


def _assert_local(message, *expected):
    for part in expected:
        assert part in message, (part, message)
    assert "internet" not in message and "downloaded from" not in message and "http" not in message


def test_a_full_disk_is_named_with_the_folder(tiny_mnist, server, no_data_dir, tmp_path, monkeypatch):
    url, _ = server
    cache = tmp_path / "cache"
    cache.mkdir()
    real_mkstemp = tempfile.mkstemp

    def mkstemp_on_a_full_disk(*args, dir=None, **kwargs):
        fd, path = real_mkstemp(*args, dir=dir, **kwargs)
        os.close(fd)
        return os.open("/dev/full", os.O_WRONLY), path  # the kernel's own ENOSPC on the first write

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp_on_a_full_disk)
    with pytest.raises(OSError) as info:
        load_mnist(cache_dir=cache, base_url=[url, _dead_url()], hashes=tiny_mnist[2])
    assert type(info.value) is OSError and info.value.errno == errno.ENOSPC
    assert str(info.value).startswith(f"cannot write to {cache}: No space left on device. "
                                      "train-images-idx3-ubyte.gz could not be stored: free some space")
    _assert_local(str(info.value))
    assert list(cache.iterdir()) == []  # the temporary file is gone with the error


def test_a_cache_dir_below_a_file_is_named(no_data_dir, tmp_path):
    (tmp_path / "data").write_bytes(b"")
    with pytest.raises(NotADirectoryError) as info:
        load_mnist(cache_dir=tmp_path / "data" / "mnist", base_url=_dead_url())
    assert str(info.value).startswith(f"cannot create the folder {tmp_path / 'data' / 'mnist'}: "
                                      f"{tmp_path / 'data'} is a file, not a folder. ")
    _assert_local(str(info.value))


def test_a_folder_that_cannot_be_created_says_permission_denied(no_data_dir, tmp_path, monkeypatch):
    target = tmp_path / "locked" / "mnist"
    real_mkdir = os.mkdir

    def mkdir(path, *args, **kwargs):  # as for a user without write access to tmp_path
        if os.fspath(path).startswith(str(tmp_path / "locked")):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", mkdir)
    with pytest.raises(PermissionError) as info:
        download_mnist(cache_dir=target, base_url=_dead_url(), progressbar=False)
    assert str(info.value).startswith(f"cannot create the folder {target}: permission denied. ")
    _assert_local(str(info.value), "use another folder (cache_dir=..., or CNNLIB_DATA_DIR)")


def test_a_folder_where_a_file_should_be_is_named(tiny_mnist, no_data_dir, tmp_path):
    cache = tmp_path / "cache"
    (cache / "train-images-idx3-ubyte.gz").mkdir(parents=True)
    with pytest.raises(IsADirectoryError) as info:
        load_mnist(cache_dir=cache, base_url=_dead_url(), hashes=tiny_mnist[2])
    path = cache / "train-images-idx3-ubyte.gz"
    assert str(info.value).startswith(f"cannot read {path}: it is a folder, not a file.")
    _assert_local(str(info.value))


# ------------------------------------------------------- the documented exceptions, and only those


def test_the_docstrings_list_the_exceptions_the_tests_above_raise():
    def raises(function):
        section = function.__doc__.split("Raises\n    ------\n")[1].split("\n\n    Everything")[0]
        return re.findall(r"^    (\w+Error)$", section, flags=re.M), re.findall(r"- (\w+Error):", section)

    assert raises(load_mnist) == (["RuntimeError", "ValueError", "OSError", "TypeError"],
                                  ["FileNotFoundError", "NotADirectoryError", "PermissionError"])
    assert "except (OSError, RuntimeError, ValueError)" in " ".join(load_mnist.__doc__.split())
    assert "As `load_mnist`" in download_mnist.__doc__
