"""Image datasets for the lessons, as NCHW float arrays in [0, 1] with int64 labels.

`load_digits` gives the 1,797 8x8 digits bundled with scikit-learn: no download, so every
lesson and test can run offline. `load_mnist` downloads the four MNIST files once (SHA-256
checked by pooch), caches them, and parses the IDX format with numpy alone, never pickle.
Both return ``(x_train, y_train), (x_test, y_test)`` like Keras does.

For a classroom, `download_mnist` (``python3 course.py download``) fetches the files ahead of
time, with a progress bar, and the environment variable ``CNNLIB_DATA_DIR`` names a folder
holding them, shared or filled in advance, that `load_mnist` then reads (it may be read-only).
"""

import gzip
import math
import os
from pathlib import Path

import numpy as np
import pooch
import sklearn.datasets
from sklearn.model_selection import train_test_split

MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
# Published SHA-256 of the gzip archives; the same values are in tensorflow-datasets'
# url_checksums/mnist.txt, and the files behind torchvision's mirror match its pinned MD5s.
MNIST_HASHES = {
    "train-images-idx3-ubyte.gz": "sha256:440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "sha256:3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "sha256:8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "sha256:f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
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
    except (OSError, EOFError) as exc:
        raise ValueError(f"{path} is not a valid gzip file: {exc}") from exc
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


def _fetch_mnist(folder, base_url, hashes, progressbar):
    """{file name: local path} of the four files, downloaded into `folder` where missing."""
    unknown = set(hashes or {}) - set(MNIST_HASHES)
    if unknown:
        raise ValueError(f"hashes has unknown file names {sorted(unknown)}")
    hashes = {**MNIST_HASHES, **(hashes or {})}
    paths = {}
    for name, known_hash in hashes.items():
        try:
            paths[name] = pooch.retrieve(
                base_url + name, known_hash, fname=name, path=folder, progressbar=progressbar
            )
        except PermissionError as exc:  # before OSError: not a network problem
            raise PermissionError(
                f"{name} is missing from {folder} (or does not match its SHA-256), and that "
                f"folder is not writable, so it cannot be downloaded there ({exc}). Ask whoever "
                f"fills the folder to run `python3 course.py download` with {DATA_DIR_ENV} "
                "pointing at it, or use a folder you can write to."
            ) from exc
        except OSError as exc:  # requests' errors (refused, DNS, HTTP, timeout) are OSErrors
            raise RuntimeError(
                f"MNIST could not be downloaded from {base_url + name} ({exc}). Connect to "
                f"the internet and try again, or download the four files {list(hashes)} by "
                f"hand from {base_url} into {folder}, or use "
                "cnnlib.datasets.load_digits(), which needs no download."
            ) from exc
    return paths


def download_mnist(*, cache_dir=None, base_url=MNIST_URL, hashes=None, progressbar=True):
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
        Show a progress bar for each file (tqdm, on standard error).

    Returns
    -------
    pathlib.Path
        The folder holding the four files.

    Raises
    ------
    As `load_mnist` and `mnist_dir`.
    """
    folder = mnist_dir(cache_dir, create=True)
    _fetch_mnist(folder, base_url, hashes, progressbar)
    return folder


def load_mnist(*, cache_dir=None, base_url=MNIST_URL, hashes=None, dtype=np.float32):
    """Download (once) and load the 70,000 MNIST digits, 60,000 train and 10,000 test.

    Parameters
    ----------
    cache_dir : str or path-like, optional
        Where the four ``.gz`` files are kept; default: the folder named by the environment
        variable ``CNNLIB_DATA_DIR`` (an absolute path to an existing folder, which may be
        read-only once filled), else ``pooch.os_cache("cnnlib")``. Files already there with
        the right hash are not downloaded again.
    base_url : str, optional
        URL of the directory holding the files; must end with ``/``.
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
        If a file cannot be downloaded (offline, server down, HTTP error).
    PermissionError
        If a file is missing from a folder that is not writable.
    ValueError
        If a file does not match its hash, or is not a well-formed IDX file, or
        ``CNNLIB_DATA_DIR`` is a relative path.
    FileNotFoundError, NotADirectoryError
        If ``CNNLIB_DATA_DIR`` names no folder, or the chosen path is a file.
    """
    dtype = _check_dtype(dtype)
    paths = _fetch_mnist(mnist_dir(cache_dir), base_url, hashes, progressbar=False)

    splits = []
    for prefix in ("train", "t10k"):
        images, (n, rows, cols) = _read_idx(paths[f"{prefix}-images-idx3-ubyte.gz"], _IMAGES_MAGIC)
        labels, (n_labels,) = _read_idx(paths[f"{prefix}-labels-idx1-ubyte.gz"], _LABELS_MAGIC)
        if n != n_labels:
            raise ValueError(f"{prefix} split has {n} images but {n_labels} labels")
        x = images.reshape(n, 1, rows, cols).astype(dtype) / dtype.type(255)  # (N, 1, 28, 28)
        splits.append((x, labels.astype(np.int64)))
    return tuple(splits)
