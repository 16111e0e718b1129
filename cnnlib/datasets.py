"""Image datasets for the lessons, as NCHW float arrays in [0, 1] with int64 labels.

`load_digits` gives the 1,797 8x8 digits bundled with scikit-learn: no download, so every
lesson and test can run offline. `load_mnist` downloads the four MNIST files once, from the
first of two mirrors that works (each file checked against its pinned SHA-256), caches them,
and parses the IDX format with numpy alone, never pickle. `load_fashion_mnist` (Zalando's
clothes, the same format) and `load_cifar10` (32x32 colour photographs, the binary version,
plain bytes) do the same with the same cache, checks and errors.
All return ``(x_train, y_train), (x_test, y_test)`` like Keras does.

For a classroom, `download_mnist` (``python3 course.py download``), `download_fashion_mnist`
and `download_cifar10` fetch the files ahead of time, with a progress bar, and the
environment variable ``CNNLIB_DATA_DIR`` names a folder holding them, shared or filled in
advance, that the loaders then read (it may be read-only). MNIST's files sit in that folder
itself, Fashion-MNIST's in its subfolder ``fashion-mnist`` (their file names are MNIST's),
CIFAR-10's in ``cifar-10``.
"""

import contextlib
import errno
import gzip
import hashlib
import math
import os
import re
import sys
import tarfile
import tempfile
import urllib.parse
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pooch
import sklearn.datasets
from sklearn.model_selection import train_test_split

# Mirrors of the original files, tried in order: the first that serves a file whose SHA-256
# is the pinned one gives it. PyTorch's (torchvision's), then TensorFlow's (tensorflow-datasets').
MNIST_URLS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
MNIST_URL = MNIST_URLS[0]
# Published SHA-256 of the gzip archives, the only judge of a file from any mirror: the same
# values are in tensorflow-datasets' url_checksums/mnist.txt (for the second mirror), and the
# files behind torchvision's mirror match its pinned MD5s.
MNIST_HASHES = {
    "train-images-idx3-ubyte.gz": "sha256:440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "sha256:3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "sha256:8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "sha256:f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}

# Zalando's own location (http only), where torchvision and tensorflow-datasets download them
# from too. The SHA-256 are tensorflow-datasets' (tensorflow_datasets/url_checksums/
# fashion_mnist.txt, which also gives the sizes: 26,421,880, 29,515, 4,422,102 and 5,148
# bytes); torchvision pins the same files by MD5.
FASHION_MNIST_URLS = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)
FASHION_MNIST_HASHES = {
    "train-images-idx3-ubyte.gz": "sha256:3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    "train-labels-idx1-ubyte.gz": "sha256:a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    "t10k-images-idx3-ubyte.gz": "sha256:346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
    "t10k-labels-idx1-ubyte.gz": "sha256:67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
}
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                         "Bag", "Ankle boot")

# Alex Krizhevsky's page, the only official source. The binary version: fixed-size records of
# plain bytes, so nothing is unpickled (the python version is pickles). Its SHA-256 is
# tensorflow-datasets' (tensorflow_datasets/url_checksums/cifar10.txt, 170,052,171 bytes).
CIFAR10_URLS = ("https://www.cs.toronto.edu/~kriz/",)
CIFAR10_HASHES = {
    "cifar-10-binary.tar.gz": "sha256:c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
}
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

DATA_DIR_ENV = "CNNLIB_DATA_DIR"
_IMAGES_MAGIC, _LABELS_MAGIC = 2051, 2049  # IDX: unsigned bytes, 3 dims / 1 dim
_N_DIGITS, _N_CLASSES = 1797, 10


def _check_dtype(dtype):
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    return dtype


def load_digits(*, test_size=360, dtype=np.float32):
    """Load scikit-learn's 8x8 handwritten digits, split into train and test.

    The split is stratified and seeded (``random_state=0``), so every call and every
    learner gets the same images in the same order, with all ten digits in both parts.

    Parameters
    ----------
    test_size : int, optional
        Number of test images. Stratification needs every class in both parts, so it
        must lie in 10..1787.
    dtype : {np.float32, np.float64}, optional
        Floating dtype of the images.

    Returns
    -------
    (x_train, y_train), (x_test, y_test) : tuple of tuples
        ``x_* : (N, 1, 8, 8) ndarray`` of `dtype` in [0, 1]; ``y_* : (N,) int64 ndarray``
        of digits 0..9. N is ``1797 - test_size`` for train and `test_size` for test.
    """
    dtype = _check_dtype(dtype)
    valid = isinstance(test_size, (int, np.integer)) and not isinstance(test_size, bool)
    if not (valid and _N_CLASSES <= test_size <= _N_DIGITS - _N_CLASSES):
        raise ValueError(
            f"test_size must be an integer in {_N_CLASSES}..{_N_DIGITS - _N_CLASSES} "
            f"(each of the 10 digits needs a place in both splits), got {test_size!r}"
        )
    digits = sklearn.datasets.load_digits()
    # Each pixel counts the inked cells of a 4x4 block (0..16), so /16 maps onto [0, 1].
    x = (digits.data / 16.0).astype(dtype).reshape(-1, 1, 8, 8)  # (1797, 1, 8, 8)
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(  # (N_train, 1, 8, 8), (N_test, 1, 8, 8)
        x, y, test_size=test_size, stratify=y, random_state=0
    )
    return (x_train, y_train), (x_test, y_test)


def _read_idx(path, magic):
    """Return the uint8 payload of an IDX file and its dimensions from the header."""
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise ValueError(f"{path} is not a valid gzip file: {exc}") from exc
    except OSError as exc:
        raise _local_error(exc, "read", path, Path(path).name) from exc
    ndim = magic - 2048  # the low byte of the magic number is the number of dimensions
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path} is too short ({len(data)} bytes) to hold an IDX header")
    found, *dims = np.frombuffer(data, dtype=">u4", count=1 + ndim).tolist()
    if found != magic:
        raise ValueError(f"{path} has IDX magic number {found}, expected {magic}")
    if len(data) - header != math.prod(dims):
        raise ValueError(
            f"{path}: header promises {'x'.join(map(str, dims))} bytes of data, "
            f"found {len(data) - header}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header), dims


def mnist_dir(cache_dir=None, *, create=False):
    """The folder MNIST's files are kept in: `cache_dir` if given, else the folder named by
    the environment variable ``CNNLIB_DATA_DIR``, else ``pooch.os_cache("cnnlib")``.

    A folder named by ``CNNLIB_DATA_DIR`` must be an absolute path (notebooks and scripts run
    from different folders) and must already exist, unless `create` is true: a missing shared
    folder is more likely a typing mistake than a wish for a new one.

    Raises
    ------
    ValueError
        If ``CNNLIB_DATA_DIR`` is a relative path.
    FileNotFoundError
        If the folder named by ``CNNLIB_DATA_DIR`` does not exist and `create` is false.
    NotADirectoryError
        If the chosen path exists but is not a folder.
    """
    if cache_dir is not None:
        folder, source = Path(cache_dir), "cache_dir"
    elif os.environ.get(DATA_DIR_ENV, "").strip():
        folder = Path(os.environ[DATA_DIR_ENV].strip()).expanduser()
        source = f"{DATA_DIR_ENV} (from the environment)"
        if not folder.is_absolute():
            raise ValueError(
                f"{DATA_DIR_ENV} must be an absolute path, got {str(folder)!r}: notebooks and "
                "scripts run from different folders, so a relative path would mean different places"
            )
        if not folder.exists() and not create:
            raise FileNotFoundError(
                f"{DATA_DIR_ENV} names the folder {folder}, which does not exist. Fix the "
                f"variable, or fill the folder first with `python3 course.py download` "
                f"(cnnlib.datasets.download_mnist()), or unset {DATA_DIR_ENV} to use the "
                "default cache."
            )
    else:
        folder, source = Path(pooch.os_cache("cnnlib")), "the default cache"
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"{source} names {folder}, which is a file, not a folder")
    return folder


class _Dataset(NamedTuple):
    """A dataset the download machinery fetches: what its messages and folders need to know."""

    title: str  # its name in messages
    urls_name: str  # the module constant listing its URLs, read at each call (tests replace it)
    hashes_name: str  # the module constant pinning its files' SHA-256
    subfolder: str  # its folder inside the data folder; MNIST's files sit in the data folder itself
    megabytes: int  # what its files take on disk
    download: str  # the function that fetches it ahead of time
    command: str  # the command line that does

    def urls(self):
        return globals()[self.urls_name]

    def hashes(self):
        return globals()[self.hashes_name]


_MNIST = _Dataset("MNIST", "MNIST_URLS", "MNIST_HASHES", "", 12, "download_mnist", "python3 course.py download")
_FASHION_MNIST = _Dataset("Fashion-MNIST", "FASHION_MNIST_URLS", "FASHION_MNIST_HASHES", "fashion-mnist", 31,
                         "download_fashion_mnist", "python3 course.py download --all")
_CIFAR10 = _Dataset("CIFAR-10", "CIFAR10_URLS", "CIFAR10_HASHES", "cifar-10", 170, "download_cifar10",
                   "python3 course.py download --all")


def _dataset_dir(dataset, cache_dir, *, create=False):
    """The folder `dataset`'s files are kept in: `cache_dir` itself if given, else its subfolder of
    mnist_dir() (the variable's folder or pooch's cache), checked as mnist_dir checks."""
    folder = mnist_dir(cache_dir, create=create)
    if cache_dir is None and dataset.subfolder:
        folder = folder / dataset.subfolder
        if folder.exists() and not folder.is_dir():
            raise NotADirectoryError(f"{folder} is a file, not a folder: {dataset.title}'s files are kept in a "
                                     f"folder of that name")
    return folder


def _urls(base_url, dataset=_MNIST):
    """The folder URLs to try, in order, each ending with "/"."""
    if base_url is None:
        urls = dataset.urls()
    elif isinstance(base_url, str):
        urls = (base_url,)
    elif isinstance(base_url, (list, tuple)) and base_url and all(isinstance(url, str) for url in base_url):
        urls = tuple(base_url)
    else:
        raise TypeError(f"base_url must be a URL (str), a non-empty list of URLs tried in order, or None for "
                        f"{dataset.urls_name}; got {base_url!r}")
    for url in urls:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"base_url must be the http:// or https:// URL of a folder, got {url!r}")
    return tuple(url if url.endswith("/") else url + "/" for url in urls)


def _hashes(hashes, dataset=_MNIST):
    """The dataset's pinned hashes (MNIST_HASHES, ...) with the entries of `hashes` in their place, each checked."""
    pinned = dataset.hashes()
    if hashes is None:
        return dict(pinned)
    if not isinstance(hashes, Mapping):
        raise TypeError(f"hashes must be a dict of file name -> 'sha256:<hex>', got {type(hashes).__name__}")
    unknown = set(hashes) - set(pinned)
    if unknown:
        raise ValueError(f"hashes has unknown file names {sorted(unknown, key=str)}")
    for name, value in hashes.items():
        if not (isinstance(value, str) and re.fullmatch(r"sha256:[0-9a-fA-F]{64}", value)):
            raise ValueError(f"hashes[{name!r}] must be 'sha256:' then 64 hex digits, got {value!r}")
    return {**pinned, **hashes}


def _fetch(dataset, folder, base_url, hashes, progressbar, download=True):
    """{file name: local path} of the dataset's files, downloaded into `folder` where missing.

    A file is kept if its SHA-256 is the pinned one, else fetched from each URL in turn
    until one serves the right bytes. It is written under a hidden temporary name and takes
    its own name only once its hash is checked, so an interrupted or failed download never
    leaves a file that a later call would trust (the temporary file is removed). With
    download=False a file missing (or not matching) is a FileNotFoundError instead.
    """
    urls = _urls(base_url, dataset)
    hashes = _hashes(hashes, dataset)
    paths = {}
    for name, known_hash in hashes.items():
        path = folder / name
        if not path.exists() or _sha256(path) != _hex(known_hash):
            if not download:
                state = "does not match its pinned SHA-256" if path.exists() else "is missing"
                raise FileNotFoundError(
                    f"{name} {state} in {folder}, and download=False: fetch {dataset.title} with "
                    f"cnnlib.datasets.{dataset.download}() (`{dataset.command}`), or load it with download=True")
            _download(name, folder, urls, known_hash, progressbar, dataset)
        paths[name] = path
    return paths


def _hex(known_hash):
    return known_hash.split(":", 1)[1].lower()


def _sha256(path):
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as file:
            for block in iter(lambda: file.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise _local_error(exc, "read", path, path.name) from exc
    return digest.hexdigest()


def _download(name, folder, urls, known_hash, progressbar, dataset=_MNIST):
    """Fetch `name` into `folder` from the first of `urls` that serves the right bytes."""
    import requests  # as pooch does: only a download pays for importing it

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _local_error(exc, "create the folder", folder, name, dataset) from exc
    failures, last = [], None  # (url, why, kind), in the order tried; the last request's error
    for url in urls:
        source = url + name
        try:
            fd, part = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".part")
        except OSError as exc:
            raise _local_error(exc, "write to", folder, name, dataset) from exc
        try:
            try:
                with open(fd, "wb") as file:
                    pooch.HTTPDownloader(progressbar=progressbar)(source, file, None)
            except requests.RequestException as exc:  # before OSError, which it subclasses
                failures.append((source, *_network_failure(exc)))
                last = exc
            except OSError as exc:  # the local disk's, not the network's: another URL would fail alike
                raise _local_error(exc, "write to", folder, name, dataset) from exc
            else:
                got = _sha256(part)
                if got == _hex(known_hash):
                    try:
                        os.replace(part, folder / name)
                    except OSError as exc:
                        raise _local_error(exc, "write to", folder, name, dataset) from exc
                    return
                failures.append((source, f"it served a file whose SHA-256 is {got[:16]}..., not the pinned "
                                         f"{_hex(known_hash)[:16]}... (damaged or changed)", "hash"))
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.remove(part)
        if progressbar and url != urls[-1]:
            print(f"{source} failed: {failures[-1][1]}; trying the next URL", file=sys.stderr)
    raise _download_failed(name, folder, urls, failures, known_hash, dataset) from last


def _network_failure(exc):
    """(why, kind) of a failed request: in a few words, as requests' own message runs to lines;
    kind "network" for a connection that failed or broke off, "http" for a server's refusal."""
    import requests

    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return f"the server answered HTTP {exc.response.status_code} {exc.response.reason}", "http"
    if isinstance(exc, requests.Timeout):
        return "no answer in time (timed out)", "network"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return "the connection broke off during the download", "network"
    cause = re.search(r"\[Errno -?\d+\] [^'\")]+", str(exc))
    cause = cause.group(0) if cause else str(exc)
    if isinstance(exc, requests.ConnectionError):
        return f"could not connect ({cause})", "network"
    return f"the download failed ({type(exc).__name__}: {cause})", "network"


def _download_failed(name, folder, urls, failures, known_hash, dataset=_MNIST):
    """The error once every URL failed for `name`, listing each with its reason.

    ValueError when a URL served bytes other than the pinned ones: waiting will not mend a
    changed file. Otherwise RuntimeError; it says to check the connection only when a
    connection failed, not when servers answered with an HTTP error.
    """
    tried = "".join(f"\n  {url}: {why}" for url, why, _ in failures)
    kinds = {kind for *_, kind in failures}
    names = list(dataset.hashes())
    files = f"the file {names[0]}" if len(names) == 1 else f"the {_COUNTS.get(len(names), len(names))} files {names}"
    by_hand = (f"download {files} by hand from {' or '.join(urls)} into {folder}, "
               "or use cnnlib.datasets.load_digits(), which needs no download.")
    if "hash" in kinds:
        return ValueError(f"{dataset.title} could not be downloaded: {name} does not match its pinned SHA-256 "
                          f"({known_hash}) from any URL tried:{tried}\nNothing was kept. Try again later, or "
                          f"{by_hand}")
    advice = "Check the internet connection and try again, or " if "network" in kinds else "Try again later, or "
    return RuntimeError(f"{dataset.title} could not be downloaded: every URL tried for {name} failed:{tried}\n"
                        f"{advice}{by_hand}")


_COUNTS = {2: "two", 3: "three", 4: "four"}


def _local_error(exc, doing, path, name, dataset=_MNIST):
    """`exc`, an OSError of the local disk, as the same kind of error naming `path` and the cause.

    `doing` is "read", "write to" or "create the folder"; `name` the file of `dataset` it was
    for. The advice is never the network's: another URL, or a better connection, would fail alike.
    """
    number = getattr(exc, "errno", None)
    if isinstance(exc, PermissionError) or number in (errno.EACCES, errno.EPERM):
        why = "permission denied"
    elif number == errno.ENOTDIR:
        blocker = next((p for p in (*reversed(Path(path).parents), Path(path)) if p.is_file()), None)
        why = f"{blocker} is a file, not a folder" if blocker else "a part of the path is not a folder"
    elif number == errno.EISDIR:
        why = "it is a folder, not a file"
    elif number == errno.EROFS:
        why = "read-only file system"
    else:
        why = exc.strerror or str(exc)
    elsewhere = f"use another folder (cache_dir=..., or {DATA_DIR_ENV})"
    if doing == "read":
        advice = f"{name} is there but cannot be read: make it readable, or {elsewhere}"
    elif why == "permission denied":
        advice = (f"{name} is missing from it (or does not match its SHA-256) and cannot be downloaded there: "
                  f"ask whoever fills that folder to run `{dataset.command}` with {DATA_DIR_ENV} "
                  f"pointing at it, or {elsewhere}")
    elif number == errno.ENOSPC:
        advice = (f"{name} could not be stored: free some space, or {elsewhere} ({dataset.title} takes "
                  f"{dataset.megabytes} MB)")
    else:
        advice = f"{name} could not be stored: {elsewhere}"
    cls = type(exc) if type(exc).__module__ == "builtins" else OSError
    error = cls(f"cannot {doing} {path}: {why}. {advice}.")
    error.errno = number
    return error


def download_mnist(*, cache_dir=None, base_url=None, hashes=None, progressbar=True):
    """Fetch MNIST's four files ahead of time, so that `load_mnist` needs no network later.

    For a classroom: run it once (``python3 course.py download``) with ``CNNLIB_DATA_DIR``
    naming a shared folder, which it creates if needed, then give every learner's Jupyter the
    same ``CNNLIB_DATA_DIR``; the folder can be read-only for them. Files already there with
    the right hash are kept.

    Parameters
    ----------
    cache_dir, base_url, hashes
        As for `load_mnist`.
    progressbar : bool, optional
        Show a progress bar for each file (tqdm, on standard error), and a line for each URL
        that fails before the next is tried.

    Returns
    -------
    pathlib.Path
        The folder holding the four files.

    Raises
    ------
    As `load_mnist`, but for FileNotFoundError: a missing ``CNNLIB_DATA_DIR`` folder is
    created. Catch ``(OSError, RuntimeError, ValueError)`` for all that is not a mistake in
    the call itself (TypeError).
    """
    folder = mnist_dir(cache_dir, create=True)
    _fetch(_MNIST, folder, base_url, hashes, progressbar)
    return folder


def load_mnist(*, cache_dir=None, base_url=None, hashes=None, dtype=np.float32):
    """Download (once) and load the 70,000 MNIST digits, 60,000 train and 10,000 test.

    Parameters
    ----------
    cache_dir : str or path-like, optional
        Where the four ``.gz`` files are kept; default: the folder named by the environment
        variable ``CNNLIB_DATA_DIR`` (an absolute path to an existing folder, which may be
        read-only once filled), else ``pooch.os_cache("cnnlib")``. Files already there with
        the right hash are not downloaded again.
    base_url : str or list of str, optional
        URL of a folder holding the files (http or https; a missing final ``/`` is added),
        or several, tried in order. Default: the mirrors in `MNIST_URLS`, tried in order.
        A file from any URL must match its SHA-256 in `hashes`.
    hashes : dict, optional
        File name -> ``"sha256:<hex>"``, overriding entries of `MNIST_HASHES`.
    dtype : {np.float32, np.float64}, optional
        Floating dtype of the images.

    Returns
    -------
    (x_train, y_train), (x_test, y_test) : tuple of tuples
        ``x_* : (N, 1, 28, 28) ndarray`` of `dtype` in [0, 1]; ``y_* : (N,) int64 ndarray``.

    Raises
    ------
    RuntimeError
        If every URL failed for a file, for a network reason (offline, a name that does not
        resolve, no answer in time) or an HTTP error (server down, 404): the message names
        each URL tried and why, and says to check the connection only if a connection failed.
    ValueError
        If a URL served a file that does not match its SHA-256 and no other URL served the
        right one (nothing is kept); if a file that matches its hash is not well-formed
        gzipped IDX (possible only with `hashes` of one's own); if ``CNNLIB_DATA_DIR`` is a
        relative path; or for a bad argument value: a `base_url` that is not http(s), a
        `hashes` entry with an unknown file name or not ``"sha256:"`` and 64 hex digits.
    OSError
        For a problem of the local disk, never of the network; the message names the path and
        the cause. Its subclasses say which:

        - FileNotFoundError: ``CNNLIB_DATA_DIR`` names a folder that does not exist;
        - NotADirectoryError: the chosen folder, or a folder above it, is a file;
        - PermissionError: a file is missing (or does not match its hash) and the folder
          cannot be created or written to, or a file there cannot be read;
        - OSError itself (or another subclass) for the rest, e.g. a full disk (errno
          ENOSPC), a read-only file system (EROFS), a folder where a file should be
          (IsADirectoryError).
    TypeError
        For a mistake in the call: `dtype` not float32 or float64, `cache_dir` not a path,
        `base_url` not a str or a list of them, `hashes` not a dict.

    Everything but a mistake in the call is caught by ``except (OSError, RuntimeError,
    ValueError)``. A failed download never leaves a file that a later call would trust:
    each file is written under a temporary name, removed on failure, and takes its own name
    only once its hash is checked.
    """
    dtype = _check_dtype(dtype)
    paths = _fetch(_MNIST, mnist_dir(cache_dir), base_url, hashes, progressbar=False)
    return _idx_splits(paths, dtype)


def _idx_splits(paths, dtype):
    """((x_train, y_train), (x_test, y_test)) from the four IDX files of MNIST's layout."""
    splits = []
    for prefix in ("train", "t10k"):
        images, (n, rows, cols) = _read_idx(paths[f"{prefix}-images-idx3-ubyte.gz"], _IMAGES_MAGIC)
        labels, (n_labels,) = _read_idx(paths[f"{prefix}-labels-idx1-ubyte.gz"], _LABELS_MAGIC)
        if n != n_labels:
            raise ValueError(f"{prefix} split has {n} images but {n_labels} labels")
        x = images.reshape(n, 1, rows, cols).astype(dtype) / dtype.type(255)  # (N, 1, 28, 28)
        splits.append((x, labels.astype(np.int64)))
    return tuple(splits)


def download_fashion_mnist(*, cache_dir=None, base_url=None, hashes=None, progressbar=True):
    """Fetch Fashion-MNIST's four files ahead of time, so that `load_fashion_mnist` needs no network.

    As `download_mnist`, into the subfolder ``fashion-mnist`` of the data folder (unless
    `cache_dir` names the folder itself). Returns that folder, a pathlib.Path; raises as
    `load_fashion_mnist`, but a missing ``CNNLIB_DATA_DIR`` folder is created.
    """
    folder = _dataset_dir(_FASHION_MNIST, cache_dir, create=True)
    _fetch(_FASHION_MNIST, folder, base_url, hashes, progressbar)
    return folder


def load_fashion_mnist(*, cache_dir=None, base_url=None, hashes=None, dtype=np.float32, download=True):
    """Download (once) and load Zalando's Fashion-MNIST: 70,000 28x28 grey images of clothes
    in 10 classes (FASHION_MNIST_CLASSES), 60,000 train and 10,000 test.

    A drop-in replacement for MNIST (same sizes, same file format), much harder to fit.

    Parameters
    ----------
    cache_dir : str or path-like, optional
        The folder the four ``.gz`` files are kept in; default: the subfolder
        ``fashion-mnist`` of the folder `load_mnist` uses (``CNNLIB_DATA_DIR``, else
        ``pooch.os_cache("cnnlib")``), as the file names are MNIST's.
    base_url, hashes
        As for `load_mnist`, with `FASHION_MNIST_URLS` (Zalando's) and `FASHION_MNIST_HASHES`.
    dtype : {np.float32, np.float64}, optional
    download : bool, default True. False never touches the network: a file missing from the
        folder (or not matching its hash) is a FileNotFoundError.

    Returns
    -------
    (x_train, y_train), (x_test, y_test) : tuple of tuples
        ``x_* : (N, 1, 28, 28) ndarray`` of `dtype` in [0, 1]; ``y_* : (N,) int64 ndarray``
        of classes 0..9.

    Raises
    ------
    As `load_mnist` (RuntimeError, ValueError, OSError, TypeError), and FileNotFoundError
    with download=False. Catch ``(OSError, RuntimeError, ValueError)`` for all that is not a
    mistake in the call itself.
    """
    dtype = _check_dtype(dtype)
    folder = _dataset_dir(_FASHION_MNIST, cache_dir)
    paths = _fetch(_FASHION_MNIST, folder, base_url, hashes, progressbar=False, download=_flag(download))
    return _idx_splits(paths, dtype)


def download_cifar10(*, cache_dir=None, base_url=None, hashes=None, progressbar=True):
    """Fetch CIFAR-10's archive (170 MB) ahead of time, so that `load_cifar10` needs no network.

    As `download_mnist`, into the subfolder ``cifar-10`` of the data folder (unless
    `cache_dir` names the folder itself). Returns that folder, a pathlib.Path; raises as
    `load_cifar10`, but a missing ``CNNLIB_DATA_DIR`` folder is created.
    """
    folder = _dataset_dir(_CIFAR10, cache_dir, create=True)
    _fetch(_CIFAR10, folder, base_url, hashes, progressbar)
    return folder


def load_cifar10(*, cache_dir=None, base_url=None, hashes=None, dtype=np.float32, download=True):
    """Download (once) and load CIFAR-10: 60,000 32x32 colour photographs in 10 classes
    (CIFAR10_CLASSES), 50,000 train and 10,000 test.

    The archive is the binary version (``cifar-10-binary.tar.gz``), records of plain bytes
    read straight from the archive: nothing is unpickled, nothing extracted to disk.

    Parameters
    ----------
    cache_dir : str or path-like, optional
        The folder the archive is kept in; default: the subfolder ``cifar-10`` of the folder
        `load_mnist` uses (``CNNLIB_DATA_DIR``, else ``pooch.os_cache("cnnlib")``).
    base_url, hashes
        As for `load_mnist`, with `CIFAR10_URLS` and `CIFAR10_HASHES`.
    dtype : {np.float32, np.float64}, optional. The training images take 614 MB in float32,
        twice that in float64.
    download : bool, default True. False never touches the network: an archive missing from
        the folder (or not matching its hash) is a FileNotFoundError.

    Returns
    -------
    (x_train, y_train), (x_test, y_test) : tuple of tuples
        ``x_* : (N, 3, 32, 32) ndarray`` of `dtype` in [0, 1], channels red, green, blue;
        ``y_* : (N,) int64 ndarray`` of classes 0..9.

    Raises
    ------
    As `load_mnist` (RuntimeError, ValueError, OSError, TypeError), and FileNotFoundError
    with download=False. ValueError also for an archive that matches its hash but is not
    CIFAR-10's binary version (possible only with `hashes` of one's own). Catch
    ``(OSError, RuntimeError, ValueError)`` for all that is not a mistake in the call itself.
    """
    dtype = _check_dtype(dtype)
    folder = _dataset_dir(_CIFAR10, cache_dir)
    paths = _fetch(_CIFAR10, folder, base_url, hashes, progressbar=False, download=_flag(download))
    path = paths["cifar-10-binary.tar.gz"]
    batches = _read_cifar10(path)
    return tuple(_cifar10_split(batches, names, path, dtype) for names in _CIFAR10_BATCHES)


def _flag(download):
    if not isinstance(download, (bool, np.bool_)):
        raise TypeError(f"download must be True or False, got {download!r}")
    return bool(download)


_CIFAR10_FOLDER = "cifar-10-batches-bin/"  # inside the archive
_CIFAR10_BATCHES = ([f"data_batch_{i}.bin" for i in range(1, 6)], ["test_batch.bin"])  # train, test
# One record per image: its label byte, then the red, green and blue 32x32 planes, row by row.
_CIFAR10_RECORD = 1 + 3 * 32 * 32


def _read_cifar10(path):
    """{batch file name: its bytes} for the six batch files in the archive at `path`.

    One pass through the archive, reading the regular files it is looking for into memory;
    nothing is written to disk, so no name in the archive can point anywhere.
    """
    wanted = {_CIFAR10_FOLDER + name for names in _CIFAR10_BATCHES for name in names}
    found = {}
    try:
        with tarfile.open(path, "r:gz") as archive:
            for member in archive:
                if member.name in wanted and member.isfile():
                    found[member.name.removeprefix(_CIFAR10_FOLDER)] = archive.extractfile(member).read()
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:  # BadGzipFile is an OSError
        raise ValueError(f"{path} is not a readable tar.gz archive: {exc}") from exc
    except OSError as exc:
        raise _local_error(exc, "read", path, Path(path).name, _CIFAR10) from exc
    if missing := sorted(wanted - {_CIFAR10_FOLDER + name for name in found}):
        raise ValueError(f"{path} has no {', '.join(missing)}: it is not CIFAR-10's binary version")
    return found


def _cifar10_split(batches, names, path, dtype):
    """(x, y) from the batch files `names`, stacked in order."""
    records = []
    for name in names:
        data = batches[name]
        if not data or len(data) % _CIFAR10_RECORD:
            raise ValueError(f"{path}: {name} holds {len(data)} bytes, not a whole number of {_CIFAR10_RECORD}-byte "
                             "records (a label byte and a 3x32x32 image)")
        records.append(np.frombuffer(data, dtype=np.uint8).reshape(-1, _CIFAR10_RECORD))  # (n, 3073)
    records = np.concatenate(records)  # (N, 3073)
    labels = records[:, 0].astype(np.int64)
    if labels.max() >= len(CIFAR10_CLASSES):
        raise ValueError(f"{path}: a label is {labels.max()}, CIFAR-10's are 0..9")
    x = records[:, 1:].reshape(-1, 3, 32, 32).astype(dtype)  # (N, 3, 32, 32)
    x /= dtype.type(255)  # in place: CIFAR-10's training images take 614 MB in float32
    return x, labels
