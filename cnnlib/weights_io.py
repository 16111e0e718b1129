"""Saving a model's weights to an .npz file and loading them back: what
Sequential.save_weights and Sequential.load_weights run.

The file is what np.savez writes, one array per name ("0_conv2d.w", and buffers such as
"1_batchnorm2d.running_mean"), so NumPy alone can read it, and it is never unpickled. Saving
is all or nothing (a temporary file replaces the old one in one step), and so is loading:
every array in the file is checked against the model before a single value is copied, and
any problem is an error that names the file, never a half-loaded model.
"""

import codecs
import errno
import math
import os
import secrets
import struct
import zipfile
import zlib
from collections import namedtuple
from pathlib import Path

import numpy as np

from ._validate import KIND_NAMES


def save_weights(model, path):
    """Save `model`'s parameters and buffers to an .npz file: what Sequential.save_weights runs.

    Parameters
    ----------
    model : Sequential (anything with params() and buffers()).
    path : str or Path, the file; ".npz" is appended when it does not end with it already,
        as np.savez does. An existing folder is refused (IsADirectoryError): the file
        would land beside it, not in it.

    Returns
    -------
    Path, the file written.

    Raises
    ------
    ValueError
        If a parameter or buffer holds NaN or infinity (training diverged): load_weights
        would refuse the file, so none is written.
    OSError
        If the file cannot be written, e.g. FileNotFoundError when its folder does not
        exist (saving creates no folder), PermissionError, or a full disk.

    A save interrupted halfway (a full disk, a stopped kernel) leaves the previous file
    as it was, never a truncated one: the arrays go to a temporary file, which then
    replaces the old one in one step.
    """
    given, path = Path(path), _npz_path(path)
    for candidate in dict.fromkeys((given, path)):  # the path as given, and with .npz added
        if candidate.is_dir():
            # Appending .npz to a folder's name would write a file beside it, not in it.
            error = IsADirectoryError(f"cannot save to {candidate}: it is a folder; give a file's name, "
                                      f"e.g. {candidate / 'weights.npz'}")
            error.errno = errno.EISDIR
            raise error
    arrays = _arrays(model)
    if bad := [name for name, a in arrays.items() if not np.isfinite(a).all()]:
        raise ValueError(f"cannot save to {path}: NaN or infinity in {', '.join(bad)} "
                         "(training diverged?); load_weights would refuse the file")
    # O_EXCL: never write into a file someone else made; 0o666 and the umask give the
    # permissions np.savez's own file would have had.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except (FileNotFoundError, NotADirectoryError, PermissionError) as exc:
        raise _folder_error(exc, path) from None  # the temporary file means nothing to the caller
    try:
        with os.fdopen(fd, "wb") as file:
            np.savez(file, **arrays)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_weights(model, path):
    """Copy the arrays of an .npz file into `model`'s parameters and buffers, in place, once
    all of them are checked: what Sequential.load_weights runs.

    Parameters
    ----------
    model : Sequential (anything with params() and buffers()).
    path : str or Path, taken as save_weights takes it (".npz" is added when missing).

    Raises
    ------
    OSError
        If the file cannot be opened (FileNotFoundError when it does not exist).
    ValueError
        If the file is not an .npz archive of arrays (empty, truncated, a single .npy, a
        text file, a member that is not an array), or its arrays do not fit the model:
        every name and shape must be the model's, every dtype a real float or integer,
        every value finite and within the range of the model array's dtype. All of the
        file is checked before a single value is copied, so on any error the model is
        left exactly as it was. The model's buffers (BatchNorm2D's running statistics)
        must be in the file like its parameters; a model without any, as every model
        was before BatchNorm2D, needs none, so files saved before buffers existed load
        as they always did.

    Nothing is ever unpickled. Copying in place, rather than replacing the arrays, keeps
    every reference to them, an optimizer's for example, valid.
    """
    given, path = Path(path), _npz_path(path)
    arrays = _arrays(model)
    stored = _read_npz(path, arrays, given)
    problems = []
    if missing := sorted(arrays.keys() - stored.keys()):
        problems.append(f"missing from the file: {', '.join(missing)}")
    if extra := sorted(stored.keys() - arrays.keys()):
        problems.append(f"not in this model: {', '.join(extra)}")
    staged = {}
    for name in sorted(arrays.keys() & stored.keys()):
        problem, staged[name] = _stage(stored[name], arrays[name])
        if problem:
            problems.append(f"{name} {problem}")
    if problems:
        raise ValueError(f"weights in {path} do not fit this model: " + "; ".join(problems))
    for name, a in arrays.items():  # same shapes and dtypes: no copy below can fail
        a[...] = staged[name]


def _arrays(model):
    """Everything save_weights saves: the parameters, then the buffers."""
    arrays = model.params()
    for name, b in model.buffers().items():
        if name in arrays:
            raise ValueError(f"{name} is both a parameter and a buffer of its layer; save_weights "
                             "needs one name per array")
        arrays[name] = b
    return arrays


def _folder_error(exc, path):
    """`exc`, raised when creating a file in `path`'s folder, reworded to name that folder."""
    folder = path.parent
    if isinstance(exc, PermissionError):
        why = f"folder {folder} is not writable (permission denied)"
    elif file := _file_in_the_way(folder):
        why = f"{file} is a file, not a folder"
    else:
        why = f"folder {folder} does not exist (saving creates no folder)"
    return _reworded(exc, f"cannot save to {path}: {why}")


def _open_error(exc, path, given):
    """`exc`, raised when opening `path` (`given` before .npz was added), reworded to say why."""
    if isinstance(exc, IsADirectoryError):
        why = "it is a folder, not a file"
    elif isinstance(exc, PermissionError):
        why = "the file is not readable (permission denied)"
    elif file := _file_in_the_way(path.parent):
        why = f"{file} is a file, not a folder"
    elif not path.parent.is_dir():
        why = f"folder {path.parent} does not exist"
    elif given.is_dir():
        why = f"the file does not exist ({given} is a folder: give the name of the .npz file in it)"
    else:
        why = "the file does not exist"
    return _reworded(exc, f"cannot load weights from {path}: {why}")


def _file_in_the_way(folder):
    """The first of `folder` and its parents that is a file rather than a folder, or None."""
    return next((p for p in (*reversed(folder.parents), folder) if p.is_file()), None)


def _reworded(exc, message):
    """An error of `exc`'s type and errno saying `message`, which names the caller's path
    (not a temporary file's, nor the bare '[Errno 2] No such file or directory')."""
    error = type(exc)(message)
    error.errno = exc.errno
    return error


def _npz_path(path):
    """`path` as a Path ending in .npz, the way np.savez names the file it writes."""
    path = Path(path)
    return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")


# How a file that is not a zip archive begins, to say what it is instead.
_NOT_NPZ = (
    (b"\x93NUMPY", "a single array saved with np.save (.npy), not an .npz archive of named "
                   "arrays as save_weights and np.savez write"),
    ((b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05"), "binary Python data, not an .npz archive of arrays"),
    (b"\x89HDF", "an HDF5 file (Keras .h5?), not an .npz archive of arrays"),
)
_ZIP_STARTS = (b"PK\x03\x04", b"PK\x05\x06")  # a first member, or an empty archive


def _read_npz(path, arrays, given):
    """The members of the .npz file `path` (`given` before .npz was added) as {name: _Member},
    checked one by one.

    A member's data is read only when its name is a key of `arrays` (the model's parameters
    and buffers) and its header gives that array's shape and a real dtype: no file can make
    load_weights read an array it will refuse, nor a larger one than the model's.
    """
    try:
        with open(path, "rb") as file:
            start = file.read(16)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError) as exc:
        raise _open_error(exc, path, given) from None
    if not start.startswith(_ZIP_STARTS):
        raise ValueError(f"cannot load weights from {path}: the file is {_what_file(start)}")
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if duplicated := sorted({n for n in names if names.count(n) > 1}):
                raise _NpzError(f"it holds two members named {', '.join(duplicated)}")
            stored = {}
            for member in names:
                if not member.endswith(".npy"):
                    raise _NpzError(f"its member {member!r} is not an array (.npy)")
                name = member.removesuffix(".npy")
                with archive.open(member) as file:
                    stored[name] = _read_member(file, member, arrays.get(name))
            return stored
    except _NpzError as exc:
        raise ValueError(f"cannot load weights from {path}: {exc}") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, struct.error,
            OverflowError, NotImplementedError, RuntimeError) as exc:
        # A zip cut short has no directory; a damaged member fails its CRC, ends early or
        # points outside the file (OSError from seek); an encrypted or unusually compressed
        # one cannot be read. The file itself opened above, so none of these is a missing file.
        raise ValueError(f"cannot load weights from {path}: the file is truncated or damaged "
                         f"({type(exc).__name__}: {exc})") from None


class _NpzError(Exception):
    """A problem with an .npz file's contents, reported by _read_npz with the file's name."""


_Member = namedtuple("_Member", ["shape", "dtype", "array"])  # array None: data not read


def _read_member(file, member, target):
    """One .npy member of an .npz as a _Member; its data is read only when it may fit `target`,
    the model's array of that name (a parameter or a buffer; None when the model has none).

    The header comes first: an object dtype is refused from it alone, as its data would be
    a pickle. The member must end with its array; reading up to that end lets zipfile check
    the member's CRC, so a damaged byte is refused rather than loaded.
    """
    try:
        version = np.lib.format.read_magic(file)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(file)
        elif version == (2, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(file)
        else:  # 3.0 exists for field names in UTF-8, which no array of weights has
            raise ValueError(f"format version {version[0]}.{version[1]}, not 1.0 or 2.0")
    except ValueError as exc:
        raise _NpzError(f"its member {member!r} is not a readable .npy array ({exc})") from None
    if dtype.hasobject:
        raise _NpzError(f"its member {member!r} holds Python objects (dtype {dtype}), not numbers")
    if target is None or shape != target.shape or dtype.kind not in "iuf":
        return _Member(shape, dtype, None)
    size = math.prod(shape) * dtype.itemsize
    data = file.read(size)
    if len(data) < size:
        raise _NpzError(f"its member {member!r} is cut short: {len(data)} of its array's {size} bytes")
    if file.read(1):
        raise _NpzError(f"its member {member!r} has more data after its array of shape {shape}")
    array = np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran_order else "C")
    return _Member(shape, dtype, array)


def _stage(member, target):
    """(problem, staged): `member`'s array cast to `target`'s dtype, or what keeps it from fitting.

    `target` is the model's array of that name, a parameter or a buffer. The problem is None
    when the member has target's shape, a real float or integer dtype, and finite values that
    stay finite in target's dtype (1e300 does not fit a float32); the staged array is then a
    new array ready to be copied into target.
    """
    if member.dtype.kind not in "iuf":
        kind = "booleans" if member.dtype.kind == "b" else KIND_NAMES.get(member.dtype.kind, "not numbers")
        return f"has dtype {member.dtype} ({kind}) in the file; weights must be real floats or integers", None
    if member.shape != target.shape:
        return f"has shape {member.shape} in the file, {target.shape} in the model", None
    with np.errstate(over="ignore", invalid="ignore"):
        staged = member.array.astype(target.dtype)
    finite = np.isfinite(staged)
    if not finite.all():
        at = tuple(int(i) for i in np.argwhere(~finite)[0])
        value = member.array[at]
        why = "not a finite number" if not np.isfinite(value) else f"too large for the model's {target.dtype}"
        return f"holds {value} at index {at}, {why}", None
    return None, staged


def _what_file(start):
    """What a file that starts with the bytes `start` is, for load_weights' error message."""
    if not start:
        return "empty"
    for magic, what in _NOT_NPZ:
        if start.startswith(magic):
            return what
    try:
        # Incremental: the 16 bytes may end inside a character, which is no reason to doubt the rest.
        text = codecs.getincrementaldecoder("utf-8")().decode(start)
    except UnicodeDecodeError:
        text = None
    if text is None or not all(ch.isprintable() or ch.isspace() for ch in text):
        return f"not an .npz archive (it starts with the bytes {start!r})"
    return f"text, not an .npz archive (it starts with {text!r})"
