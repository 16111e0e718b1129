"""Fashion-MNIST and CIFAR-10 loaders (issue 26), against tiny files generated here and served
from 127.0.0.1: nothing here touches the internet. The download machinery itself (mirrors,
temporary files, local-disk errors) is MNIST's, tested in test_datasets.py; these tests check
that the new datasets use it, with their own names, folders, hashes and formats.
"""

import errno
import io
import os
import pickle
import re
import tarfile
import tempfile

import numpy as np
import pytest

import cnnlib.datasets
from cnnlib.datasets import (
    CIFAR10_CLASSES,
    CIFAR10_HASHES,
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_HASHES,
    MNIST_HASHES,
    download_cifar10,
    download_fashion_mnist,
    download_mnist,
    load_cifar10,
    load_fashion_mnist,
    load_mnist,
)
from test_datasets import MNIST_FILES, _dead_url, _sha256, _write_idx_gz, serving

CIFAR = "cifar-10-binary.tar.gz"


@pytest.fixture(autouse=True)
def local_only(monkeypatch):
    """No CNNLIB_DATA_DIR from the environment, and no proxy between the tests and 127.0.0.1."""
    monkeypatch.delenv("CNNLIB_DATA_DIR", raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")


# ---------------------------------------------------------------------------------- Fashion-MNIST


@pytest.fixture
def tiny_fashion(tmp_path):
    """Four train and two test 28x28 images in Fashion-MNIST's (MNIST's) IDX gz files."""
    served = tmp_path / "fashion-served"
    served.mkdir()
    rng = np.random.default_rng(26)
    arrays = {"train": (rng.integers(0, 256, (4, 28, 28), dtype=np.uint8), np.array([9, 0, 3, 7])),
              "t10k": (rng.integers(0, 256, (2, 28, 28), dtype=np.uint8), np.array([5, 8]))}
    for prefix, (images, labels) in arrays.items():
        _write_idx_gz(served / f"{prefix}-images-idx3-ubyte.gz", 2051, images)
        _write_idx_gz(served / f"{prefix}-labels-idx1-ubyte.gz", 2049, labels)
    return served, arrays, {name: _sha256(served / name) for name in MNIST_FILES}


def assert_fashion(loaded, arrays, dtype=np.float32):
    for (x, y), prefix in zip(loaded, ("train", "t10k")):
        images, labels = arrays[prefix]
        assert x.shape == (len(images), 1, 28, 28) and x.dtype == dtype and y.dtype == np.int64
        np.testing.assert_array_equal(x[:, 0], images.astype(dtype) / dtype(255))
        np.testing.assert_array_equal(y, labels)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fashion_mnist_parses_served_files(tiny_fashion, tmp_path, dtype):
    served, arrays, hashes = tiny_fashion
    requested = []
    with serving(served, requested) as url:
        loaded = load_fashion_mnist(cache_dir=tmp_path / "cache", base_url=url, hashes=hashes, dtype=dtype)
    assert sorted(requested) == sorted("/" + name for name in MNIST_FILES)
    assert_fashion(loaded, arrays, dtype)
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == sorted(MNIST_FILES)  # cache_dir itself


def test_fashion_mnist_and_mnist_share_a_data_dir_without_clashing(tiny_fashion, tmp_path, monkeypatch):
    # The same four file names: Fashion-MNIST's go to the subfolder fashion-mnist.
    served, arrays, hashes = tiny_fashion
    mnist_served = tmp_path / "mnist-served"
    mnist_served.mkdir()
    for name in MNIST_FILES:
        _write_idx_gz(mnist_served / name, 2051 if "images" in name else 2049,
                      np.ones((3, 28, 28)) if "images" in name else np.array([1, 1, 1]))
    mnist_hashes = {name: _sha256(mnist_served / name) for name in MNIST_FILES}
    shared = tmp_path / "class"
    monkeypatch.setenv("CNNLIB_DATA_DIR", str(shared))
    with serving(served, []) as url, serving(mnist_served, []) as mnist_url:
        assert download_fashion_mnist(base_url=url, hashes=hashes, progressbar=False) == shared / "fashion-mnist"
        assert download_mnist(base_url=mnist_url, hashes=mnist_hashes, progressbar=False) == shared
    assert sorted(p.name for p in (shared / "fashion-mnist").iterdir()) == sorted(MNIST_FILES)
    dead = _dead_url()  # both load from the shared folder, the servers gone
    assert_fashion(load_fashion_mnist(base_url=dead, hashes=hashes), arrays)
    (x_mnist, y_mnist), _ = load_mnist(base_url=dead, hashes=mnist_hashes)
    np.testing.assert_array_equal(y_mnist, [1, 1, 1])


def test_fashion_mnist_download_false_never_downloads(tiny_fashion, tmp_path):
    served, arrays, hashes = tiny_fashion
    requested = []
    cache = tmp_path / "cache"
    with serving(served, requested) as url:
        with pytest.raises(FileNotFoundError, match=re.escape(
                f"train-images-idx3-ubyte.gz is missing in {cache}, and download=False: fetch Fashion-MNIST with "
                "cnnlib.datasets.download_fashion_mnist() (`python3 course.py download --all`), or load it with "
                "download=True")):
            load_fashion_mnist(cache_dir=cache, base_url=url, hashes=hashes, download=False)
        assert requested == [] and not cache.exists()
        download_fashion_mnist(cache_dir=cache, base_url=url, hashes=hashes, progressbar=False)
        (cache / "t10k-labels-idx1-ubyte.gz").write_bytes(b"changed")
        with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte.gz does not match its pinned SHA-256"):
            load_fashion_mnist(cache_dir=cache, base_url=url, hashes=hashes, download=False)
        assert len(requested) == 4
        assert_fashion(load_fashion_mnist(cache_dir=cache, base_url=url, hashes=hashes), arrays)  # fetched again
    assert_fashion(load_fashion_mnist(cache_dir=cache, hashes=hashes, download=False), arrays)
    with pytest.raises(TypeError, match="download must be True or False, got 'no'"):
        load_fashion_mnist(cache_dir=cache, hashes=hashes, download="no")


def test_fashion_mnist_failures_name_fashion_mnist(tiny_fashion, tmp_path):
    served, _, hashes = tiny_fashion
    dead = _dead_url()
    with pytest.raises(RuntimeError) as info:
        load_fashion_mnist(cache_dir=tmp_path / "cache", base_url=dead, hashes=hashes)
    message = str(info.value)
    assert message.startswith("Fashion-MNIST could not be downloaded: every URL tried for "
                              "train-images-idx3-ubyte.gz failed:")
    assert f"download the four files {list(FASHION_MNIST_HASHES)} by hand from {dead}" in message
    wrong = {**hashes, "train-labels-idx1-ubyte.gz": "sha256:" + "1" * 64}
    with serving(served, []) as url:
        with pytest.raises(ValueError, match=r"^Fashion-MNIST could not be downloaded: train-labels-idx1-ubyte\.gz "
                                             r"does not match its pinned SHA-256"):
            load_fashion_mnist(cache_dir=tmp_path / "cache", base_url=url, hashes=wrong)
    with pytest.raises(TypeError, match="or None for FASHION_MNIST_URLS; got 5"):
        load_fashion_mnist(cache_dir=tmp_path / "cache", base_url=5)
    with pytest.raises(ValueError, match=r"hashes has unknown file names \['cifar-10-binary.tar.gz'\]"):
        load_fashion_mnist(cache_dir=tmp_path / "cache", hashes={CIFAR: "sha256:" + "0" * 64})


# ------------------------------------------------------------------------------------------ CIFAR-10


def cifar_batch(rng, n):
    """n records of CIFAR-10's binary format, and the images and labels they hold."""
    images = rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n).astype(np.uint8)
    records = np.concatenate([labels[:, None], images.reshape(n, -1)], axis=1)  # (n, 3073)
    return records.tobytes(), images, labels


def write_tar_gz(path, members):
    """A tar.gz archive at `path` holding {name: bytes} as regular files."""
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


@pytest.fixture
def tiny_cifar(tmp_path):
    """A cifar-10-binary.tar.gz of five 2-image training batches and a 3-image test batch."""
    served = tmp_path / "cifar-served"
    served.mkdir()
    rng = np.random.default_rng(10)
    members, train_x, train_y = {}, [], []
    for i in range(1, 6):
        data, images, labels = cifar_batch(rng, 2)
        members[f"cifar-10-batches-bin/data_batch_{i}.bin"] = data
        train_x.append(images)
        train_y.append(labels)
    data, test_x, test_y = cifar_batch(rng, 3)
    members["cifar-10-batches-bin/test_batch.bin"] = data
    members["cifar-10-batches-bin/batches.meta.txt"] = "\n".join(CIFAR10_CLASSES).encode()
    write_tar_gz(served / CIFAR, members)
    arrays = {"train": (np.concatenate(train_x), np.concatenate(train_y)), "test": (test_x, test_y)}
    return served, arrays, {CIFAR: _sha256(served / CIFAR)}, members


def assert_cifar(loaded, arrays, dtype=np.float32):
    for (x, y), split in zip(loaded, ("train", "test")):
        images, labels = arrays[split]
        assert x.shape == (len(images), 3, 32, 32) and x.dtype == dtype and y.dtype == np.int64
        np.testing.assert_array_equal(x, images.astype(dtype) / dtype(255))
        np.testing.assert_array_equal(y, labels)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cifar10_parses_served_archive(tiny_cifar, tmp_path, dtype):
    served, arrays, hashes, _ = tiny_cifar
    requested = []
    with serving(served, requested) as url:
        loaded = load_cifar10(cache_dir=tmp_path / "cache", base_url=url, hashes=hashes, dtype=dtype)
    assert requested == ["/" + CIFAR]
    assert_cifar(loaded, arrays, dtype)
    (x_train, _), _ = loaded
    assert x_train.shape == (10, 3, 32, 32)
    assert os.listdir(tmp_path / "cache") == [CIFAR]  # the archive only: nothing extracted


def test_cifar10_channels_are_the_red_green_blue_planes_in_order(tmp_path):
    # One image whose red plane is 255, green 0, blue rows counting up: the layout of a record.
    image = np.zeros((3, 32, 32), dtype=np.uint8)
    image[0] = 255
    image[2] = np.arange(32, dtype=np.uint8)[:, None]
    record = bytes([7]) + image.tobytes()
    members = {f"cifar-10-batches-bin/data_batch_{i}.bin": record for i in range(1, 6)}
    members["cifar-10-batches-bin/test_batch.bin"] = record
    write_tar_gz(tmp_path / CIFAR, members)
    (x, y), _ = load_cifar10(cache_dir=tmp_path, base_url=_dead_url(), hashes={CIFAR: _sha256(tmp_path / CIFAR)})
    assert x.shape == (5, 3, 32, 32) and list(y) == [7] * 5
    assert np.all(x[:, 0] == 1) and np.all(x[:, 1] == 0)
    np.testing.assert_array_equal(x[0, 2, :, 5], np.arange(32, dtype=np.float32) / np.float32(255))


def test_cifar10_goes_to_its_own_subfolder_and_loads_offline(tiny_cifar, tmp_path, monkeypatch):
    served, arrays, hashes, _ = tiny_cifar
    shared = tmp_path / "class"
    monkeypatch.setenv("CNNLIB_DATA_DIR", str(shared))
    with serving(served, []) as url:
        assert download_cifar10(base_url=url, hashes=hashes, progressbar=False) == shared / "cifar-10"
    assert os.listdir(shared / "cifar-10") == [CIFAR]
    assert_cifar(load_cifar10(hashes=hashes, download=False), arrays)
    assert_cifar(load_cifar10(base_url=_dead_url(), hashes=hashes), arrays)


def test_cifar10_download_false_never_downloads(tiny_cifar, tmp_path):
    served, _, hashes, _ = tiny_cifar
    requested = []
    with serving(served, requested) as url:
        with pytest.raises(FileNotFoundError, match=r"cifar-10-binary\.tar\.gz is missing in .*download=False: "
                                                    r"fetch CIFAR-10 with cnnlib\.datasets\.download_cifar10\(\)"):
            load_cifar10(cache_dir=tmp_path / "cache", base_url=url, hashes=hashes, download=False)
    assert requested == []


def _replace(members, **changes):
    out = dict(members)
    for name, data in changes.items():
        key = f"cifar-10-batches-bin/{name}.bin"
        if data is None:
            del out[key]
        else:
            out[key] = data
    return out


@pytest.mark.parametrize("make, message", [
    (lambda path, m: path.write_bytes(b"<html>not found</html>"), "is not a readable tar.gz archive"),
    (lambda path, m: path.write_bytes(b"\x1f\x8b" + b"\x00" * 40), "is not a readable tar.gz archive"),
    (lambda path, m: write_tar_gz(path, _replace(m, test_batch=None)),
     r"has no cifar-10-batches-bin/test_batch\.bin: it is not CIFAR-10's binary version"),
    (lambda path, m: write_tar_gz(path, _replace(m, data_batch_3=b"\x01" * 3072)),
     r"data_batch_3\.bin holds 3072 bytes, not a whole number of 3073-byte records"),
    (lambda path, m: write_tar_gz(path, _replace(m, data_batch_2=b"")), r"data_batch_2\.bin holds 0 bytes"),
    (lambda path, m: write_tar_gz(path, _replace(m, test_batch=bytes([10]) + bytes(3072))),
     r"a label is 10, CIFAR-10's are 0\.\.9"),
])
def test_cifar10_malformed_archives_are_value_errors(tiny_cifar, tmp_path, make, message):
    _, _, _, members = tiny_cifar
    path = tmp_path / CIFAR
    make(path, members)
    with pytest.raises(ValueError, match=message):
        load_cifar10(cache_dir=tmp_path, base_url=_dead_url(), hashes={CIFAR: _sha256(path)})


def test_cifar10_never_unpickles_and_never_follows_links(tiny_cifar, tmp_path):
    # The python version (pickles) in place of the binary one is refused as not the binary
    # version, and an object whose unpickling would run code is never unpickled.
    class Boom:
        def __reduce__(self):
            return (os.system, ("echo unpickled > " + str(tmp_path / "ran"),))

    write_tar_gz(tmp_path / CIFAR, {"cifar-10-batches-py/data_batch_1": pickle.dumps(Boom()),
                                    "cifar-10-batches-bin/data_batch_1.bin": pickle.dumps({"labels": [1]})})
    with pytest.raises(ValueError, match="it is not CIFAR-10's binary version"):
        load_cifar10(cache_dir=tmp_path, base_url=_dead_url(), hashes={CIFAR: _sha256(tmp_path / CIFAR)})
    assert not (tmp_path / "ran").exists()
    # a member that is a link, not a file, is not read (nor anything it points at)
    _, _, _, members = tiny_cifar
    path = tmp_path / "linked" / CIFAR
    path.parent.mkdir()
    with tarfile.open(path, "w:gz") as archive:
        for name, data in _replace(members, test_batch=None).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("cifar-10-batches-bin/test_batch.bin")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        archive.addfile(link)
    with pytest.raises(ValueError, match=r"has no cifar-10-batches-bin/test_batch\.bin"):
        load_cifar10(cache_dir=path.parent, base_url=_dead_url(), hashes={CIFAR: _sha256(path)})
    assert sorted(os.listdir(path.parent)) == [CIFAR]


def test_cifar10_failures_name_cifar10(tiny_cifar, tmp_path, monkeypatch):
    served, _, hashes, _ = tiny_cifar
    dead = _dead_url()
    with pytest.raises(RuntimeError) as info:
        load_cifar10(cache_dir=tmp_path / "cache", base_url=dead, hashes=hashes)
    message = str(info.value)
    assert message.startswith(f"CIFAR-10 could not be downloaded: every URL tried for {CIFAR} failed:")
    assert f"download the file {CIFAR} by hand from {dead} into {tmp_path / 'cache'}" in message

    cache = tmp_path / "full"
    cache.mkdir()
    real_mkstemp = tempfile.mkstemp

    def mkstemp_on_a_full_disk(*args, dir=None, **kwargs):
        fd, path = real_mkstemp(*args, dir=dir, **kwargs)
        os.close(fd)
        return os.open("/dev/full", os.O_WRONLY), path

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp_on_a_full_disk)
    with serving(served, []) as url:
        with pytest.raises(OSError) as info:
            load_cifar10(cache_dir=cache, base_url=url, hashes=hashes)
    assert info.value.errno == errno.ENOSPC
    assert "free some space, or use another folder (cache_dir=..., or CNNLIB_DATA_DIR) (CIFAR-10 takes 170 MB)" \
        in str(info.value)
    assert list(cache.iterdir()) == []


def test_a_file_where_the_subfolder_should_be_is_named(tmp_path, monkeypatch):
    (tmp_path / "cifar-10").write_bytes(b"")
    monkeypatch.setenv("CNNLIB_DATA_DIR", str(tmp_path))
    with pytest.raises(NotADirectoryError, match=r"cifar-10 is a file, not a folder: CIFAR-10's files are kept"):
        load_cifar10(base_url=_dead_url())


# --------------------------------------------------------------------------------- the pinned files


def test_the_pinned_urls_hashes_and_classes():
    assert cnnlib.datasets.FASHION_MNIST_URLS == ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)
    assert cnnlib.datasets.CIFAR10_URLS == ("https://www.cs.toronto.edu/~kriz/",)
    assert sorted(FASHION_MNIST_HASHES) == sorted(MNIST_HASHES)  # the same names, other files
    assert set(FASHION_MNIST_HASHES.values()).isdisjoint(MNIST_HASHES.values())
    assert list(CIFAR10_HASHES) == [CIFAR]
    for value in [*FASHION_MNIST_HASHES.values(), *CIFAR10_HASHES.values()]:
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", value), value
    assert len(FASHION_MNIST_CLASSES) == len(CIFAR10_CLASSES) == 10
    assert FASHION_MNIST_CLASSES[9] == "Ankle boot" and CIFAR10_CLASSES[0] == "airplane"
    for function in (load_fashion_mnist, load_cifar10):
        assert function.__kwdefaults__["download"] is True and function.__kwdefaults__["base_url"] is None
