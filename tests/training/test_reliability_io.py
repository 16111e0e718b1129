"""Saving and loading weights: all or nothing, a clear error for any bad file, never a pickle.

Every refusal must leave the model exactly as it was (same values, same array objects), name
the file, and be a ValueError (OSError for a file that cannot be opened): never BadZipFile,
EOFError, AttributeError, a warning, or a message inviting the user to unpickle.
"""

import errno
import io
import os
import pickle
import re
import stat
import zipfile

import numpy as np
import pytest

from cnnlib import Dense, Sequential, reference_cnn


def small_model(seed=0, dtype=np.float64):
    return Sequential(Dense(3, 2, rng=seed, dtype=dtype), Dense(2, 4, rng=seed + 1, dtype=dtype))


def snapshot(model):
    return {name: (p, p.copy()) for name, p in model.params().items()}


def assert_unchanged(model, before):
    params = model.params()
    assert params.keys() == before.keys()
    for name, (array, values) in before.items():
        assert params[name] is array
        np.testing.assert_array_equal(array, values)


def refused(model, path, error=ValueError, match=None):
    """Load `path` into `model`, expect `error`, check nothing changed; return the message."""
    before = snapshot(model)
    with pytest.raises(error, match=match) as info:
        model.load_weights(path)
    assert_unchanged(model, before)
    message = str(info.value)
    assert "pickle" not in message.replace(str(tmp_path_of(path)), "").lower()
    return message


def tmp_path_of(path):
    """The folder `path` is in, whose name, taken from the test's, may say pickle."""
    return os.path.dirname(os.fspath(path))


def save_arrays(path, arrays):
    """An .npz written by NumPy itself, object arrays included (np.savez pickles them)."""
    np.savez(path, **arrays)
    return path


def good_arrays(model, rng):
    return {name: rng.standard_normal(p.shape) for name, p in model.params().items()}


@pytest.fixture(autouse=True)
def no_warnings():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a ComplexWarning used to be all a complex file got
        yield


# --- the arrays: every one checked before any is copied ----------------------------------------


BAD_KINDS = {
    "str": lambda shape: np.full(shape, "0.5"),
    "bytes": lambda shape: np.full(shape, b"0.5"),
    "complex128": lambda shape: np.full(shape, 1 + 2j),
    "complex64 real": lambda shape: np.zeros(shape, np.complex64),  # imaginary parts all zero
    "datetime": lambda shape: np.zeros(shape, "M8[s]"),
    "timedelta": lambda shape: np.zeros(shape, "m8[s]"),
    "bool": lambda shape: np.ones(shape, bool),
    "record": lambda shape: np.zeros(shape, [("a", "f8")]),
}


@pytest.mark.parametrize("kind", BAD_KINDS)
@pytest.mark.parametrize("position", ["first", "last"])
def test_an_array_of_the_wrong_kind_is_refused_before_anything_is_copied(tmp_path, rng, kind, position):
    model = small_model()
    arrays = good_arrays(model, rng)
    name = sorted(arrays)[0 if position == "first" else -1]
    arrays[name] = BAD_KINDS[kind](arrays[name].shape)
    path = save_arrays(tmp_path / "w.npz", arrays)
    message = refused(model, path)
    assert str(path) in message and name in message and str(arrays[name].dtype) in message
    assert "real floats or integers" in message


@pytest.mark.parametrize("kind", ["object of floats", "object of anything"])
def test_an_object_array_is_refused_from_its_header_and_never_unpickled(tmp_path, rng, kind):
    model = small_model()
    arrays = good_arrays(model, rng)
    name = sorted(arrays)[-1]
    marker = tmp_path / "unpickled"
    objects = np.empty(arrays[name].shape, object)
    objects[...] = 0.5
    if kind == "object of anything":
        objects.flat[0] = Alarm(str(marker))
    arrays[name] = objects
    path = save_arrays(tmp_path / "w.npz", arrays)
    message = refused(model, path, match="holds Python objects")
    assert str(path) in message and f"{name}.npy" in message
    assert not marker.exists()


class Alarm:
    """Unpickling one creates the file `path`: proof that something was unpickled."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_refused_naming_the_index(tmp_path, rng, value):
    model = small_model()
    arrays = good_arrays(model, rng)
    name = sorted(arrays)[-1]
    arrays[name][(1, 2) if arrays[name].ndim == 2 else 1] = value
    message = refused(model, save_arrays(tmp_path / "w.npz", arrays))
    at = "(1, 2)" if arrays[name].ndim == 2 else "(1,)"
    assert f"{name} holds {value} at index {at}, not a finite number" in message


def test_values_too_large_for_the_models_dtype_are_refused(tmp_path, rng):
    model = small_model(dtype=np.float32)
    arrays = good_arrays(model, rng)
    arrays["0_dense.w"][2, 1] = -1e300  # finite in float64, -inf once cast to float32
    message = refused(model, save_arrays(tmp_path / "w.npz", arrays))
    assert "0_dense.w holds -1e+300 at index (2, 1), too large for the model's float32" in message


def test_every_problem_is_listed_in_one_error(tmp_path, rng):
    model = small_model()
    arrays = good_arrays(model, rng)
    arrays["0_dense.w"] = np.zeros((3, 2), complex)
    arrays["0_dense.b"] = np.zeros(5)
    arrays["1_dense.b"][0] = np.nan
    del arrays["1_dense.w"]
    arrays["2_dense.w"] = np.zeros(1)
    message = refused(model, save_arrays(tmp_path / "w.npz", arrays))
    for part in ["missing from the file: 1_dense.w", "not in this model: 2_dense.w",
                 "0_dense.b has shape (5,) in the file, (2,) in the model",
                 "0_dense.w has dtype complex128", "1_dense.b holds nan at index (0,)"]:
        assert part in message


@pytest.mark.parametrize("dtype", ["<i4", ">i8", "u1", "<f2", ">f4", ">f8", "<f8", "longdouble"])
def test_real_arrays_of_any_width_and_byte_order_load_exactly(tmp_path, rng, dtype):
    model = small_model()
    arrays = {name: rng.integers(-3, 4, p.shape).astype(dtype) if np.dtype(dtype).kind == "u"
              else rng.integers(0, 4, p.shape).astype(dtype)
              for name, p in model.params().items()}
    before = model.params()
    model.load_weights(save_arrays(tmp_path / "w.npz", arrays))
    for name, p in model.params().items():
        assert p is before[name] and p.dtype == np.float64
        np.testing.assert_array_equal(p, arrays[name].astype(np.float64))


def test_fortran_ordered_and_compressed_files_load(tmp_path, rng):
    model = small_model()
    arrays = {name: np.asfortranarray(a) for name, a in good_arrays(model, rng).items()}
    assert not arrays["0_dense.w"].flags.c_contiguous
    np.savez_compressed(tmp_path / "w.npz", **arrays)
    model.load_weights(tmp_path / "w.npz")
    for name, p in model.params().items():
        np.testing.assert_array_equal(p, arrays[name])


# --- the file: a clear error whatever it holds -----------------------------------------------


def write(path, data):
    path.write_bytes(data)
    return path


def valid_file(tmp_path):
    model = small_model(seed=5)
    return model, model.save_weights(tmp_path / "good.npz")


@pytest.mark.parametrize(
    "content, match",
    [
        (b"", "the file is empty"),
        (b"hello, weights\n", r"the file is text, not an \.npz archive \(it starts with 'hello, weights"),
        ("0,1;é,è,ê\n".encode() * 3, r"the file is text, .*'0,1;é,è,ê\\n0,1'"),  # the 16 bytes end inside a character
        (b"\x00\x00\x00\x01" * 8, r"not an \.npz archive \(it starts with the bytes b'\\x00"),
        (bytes(range(128, 256)), r"not an \.npz archive \(it starts with the bytes"),
        (pickle.dumps({"0_dense.w": np.zeros((3, 2))}), "binary Python data, not an .npz archive"),
        (b"\x89HDF\r\n\x1a\n" + bytes(100), "an HDF5 file"),
        (b"PK\x03\x04" + bytes(40), "truncated or damaged"),
    ],
    ids=["empty", "text", "utf-8 text", "zeros", "binary", "pickle", "hdf5", "zip header only"],
)
def test_a_file_that_is_not_an_npz_archive_is_refused(tmp_path, content, match):
    path = write(tmp_path / "w.npz", content)
    message = refused(small_model(), path, match=match)
    assert message.startswith(f"cannot load weights from {path}: ")


def test_a_pickle_file_is_never_unpickled(tmp_path):
    marker = tmp_path / "unpickled"
    path = write(tmp_path / "w.npz", pickle.dumps(Alarm(str(marker))))
    refused(small_model(), path)
    assert not marker.exists()


def test_a_single_npy_array_under_an_npz_name_is_refused(tmp_path):
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((3, 2)))
    path = write(tmp_path / "w.npz", buffer.getvalue())
    refused(small_model(), path, match=r"a single array saved with np\.save \(\.npy\), not an \.npz archive")


def test_a_missing_file_or_a_directory_is_an_oserror_naming_it(tmp_path):
    model = small_model()
    message = refused(model, tmp_path / "nowhere", FileNotFoundError)
    assert str(tmp_path / "nowhere.npz") in message
    (tmp_path / "folder.npz").mkdir()
    message = refused(model, tmp_path / "folder.npz", OSError)
    assert "folder.npz" in message


def test_a_missing_file_is_named_and_said_not_to_exist(tmp_path):
    # Not the bare "[Errno 2] No such file or directory: '...'" a learner met.
    model = small_model()
    path = tmp_path / "nope.npz"
    message = refused(model, path, FileNotFoundError, match=rf"^cannot load weights from {re.escape(str(path))}: "
                                                           r"the file does not exist$")
    assert "Errno" not in message
    with pytest.raises(FileNotFoundError) as info:
        model.load_weights(path)
    assert info.value.errno == errno.ENOENT and info.value.__cause__ is None
    folder = tmp_path / "runs"
    refused(model, folder / "w", FileNotFoundError,
            match=rf"^cannot load weights from {re.escape(str(folder / 'w.npz'))}: folder {re.escape(str(folder))} "
                  r"does not exist$")
    (tmp_path / "notes").write_text("a file")
    refused(model, tmp_path / "notes" / "w.npz", NotADirectoryError,
            match=rf"{re.escape(str(tmp_path / 'notes'))} is a file, not a folder$")
    folder.mkdir()  # the folder itself given: .npz appended finds no file, and the message says why
    refused(model, folder, FileNotFoundError,
            match=rf"^cannot load weights from {re.escape(str(folder))}\.npz: the file does not exist "
                  rf"\({re.escape(str(folder))} is a folder: give the name of the \.npz file in it\)$")
    (tmp_path / "folder.npz").mkdir()
    refused(model, tmp_path / "folder.npz", IsADirectoryError, match=r"folder\.npz: it is a folder, not a file$")


@pytest.mark.parametrize("name", ["runs", "runs.npz"])
def test_saving_to_an_existing_folder_is_refused(tmp_path, name):
    # save_weights("/tmp") used to write /tmp.npz, beside the folder rather than in it.
    folder = tmp_path / name
    folder.mkdir()
    with pytest.raises(IsADirectoryError) as info:
        small_model().save_weights(folder)
    assert str(info.value) == (f"cannot save to {folder}: it is a folder; give a file's name, "
                               f"e.g. {folder / 'weights.npz'}")
    assert info.value.errno == errno.EISDIR
    assert sorted(p.name for p in tmp_path.rglob("*")) == [name]  # nothing written, in it or beside it
    with pytest.raises(IsADirectoryError):
        small_model().save_weights(str(folder))  # as a str, the way a learner types it


def zip_with(path, members):
    """A zip file with the given {member name: bytes}, duplicates allowed as a list of pairs."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about a duplicate name, which is the point
        with zipfile.ZipFile(path, "w") as archive:
            for name, data in members:
                archive.writestr(name, data)
    return path


def npy_bytes(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "members, match",
    [
        ([("0_dense.w.npy", b"not an array at all")], r"member '0_dense\.w\.npy' is not a readable \.npy array"),
        ([("notes.txt", b"trained on the digits")], r"member 'notes\.txt' is not an array \(\.npy\)"),
        ([("0_dense.w.npy", npy_bytes(np.zeros((3, 2)))), ("0_dense.w.npy", npy_bytes(np.ones((3, 2))))],
         r"two members named 0_dense\.w\.npy"),
        ([("0_dense.w.npy", npy_bytes(np.zeros((3, 2)))[:-8])], r"member '0_dense\.w\.npy' is cut short: 40 of its array's 48 bytes"),
        ([("0_dense.w.npy", npy_bytes(np.zeros((3, 2))) + b"more")], r"has more data after its array of shape \(3, 2\)"),
        ([("0_dense.w.npy", npy_bytes(np.zeros((3, 2)))[:10])], r"member '0_dense\.w\.npy' is not a readable \.npy array"),
    ],
    ids=["not npy", "not .npy name", "duplicate", "data cut short", "data after", "header cut short"],
)
def test_a_member_that_is_not_one_array_is_refused(tmp_path, members, match):
    model = small_model()
    complete = {name + ".npy": npy_bytes(p) for name, p in model.params().items()}
    names = {name for name, _ in members}
    path = zip_with(tmp_path / "w.npz", [*((n, d) for n, d in complete.items() if n not in names), *members])
    message = refused(model, path, match=match)
    assert str(path) in message


def test_a_damaged_byte_anywhere_never_loads_wrong_values(tmp_path):
    """Every byte of a saved file flipped in turn: either the same values load, or a clear error."""
    model, path = valid_file(tmp_path)
    good = path.read_bytes()
    expected = {name: p.copy() for name, p in model.params().items()}
    outcomes = set()
    for i in range(len(good)):
        damaged = write(tmp_path / "damaged.npz", good[:i] + bytes([good[i] ^ 0x5A]) + good[i + 1:])
        other = small_model(seed=9)
        before = snapshot(other)
        try:
            other.load_weights(damaged)
        except ValueError as exc:
            assert str(damaged) in str(exc) and "pickle" not in str(exc).replace(str(damaged), "").lower()
            assert_unchanged(other, before)
            outcomes.add("refused")
        else:  # a byte the zip format does not check (a timestamp, a version): harmless
            for name, p in other.params().items():
                np.testing.assert_array_equal(p, expected[name])
            outcomes.add("loaded")
    assert outcomes == {"refused", "loaded"}


@pytest.mark.parametrize("compressed", [False, True])
def test_a_file_cut_short_anywhere_is_refused(tmp_path, compressed):
    model = small_model(seed=5)
    if compressed:
        np.savez_compressed(tmp_path / "good.npz", **model.params())
    else:
        model.save_weights(tmp_path / "good.npz")
    good = (tmp_path / "good.npz").read_bytes()
    for length in range(len(good)):
        path = write(tmp_path / "cut.npz", good[:length])
        message = refused(small_model(seed=9), path)
        assert str(path) in message


# --- saving ------------------------------------------------------------------------------------


def test_save_refuses_non_finite_weights_and_writes_nothing(tmp_path):
    model = small_model()
    model.params()["1_dense.b"][2] = np.nan
    with pytest.raises(ValueError, match=r"cannot save to .*w\.npz: NaN or infinity in 1_dense\.b"):
        model.save_weights(tmp_path / "w")
    assert list(tmp_path.iterdir()) == []


def test_an_interrupted_save_leaves_the_previous_file_whole(tmp_path, monkeypatch):
    model, path = valid_file(tmp_path)
    good = path.read_bytes()

    def savez_then_fail(file, **arrays):
        file.write(b"PK\x03\x04 half an archive")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", savez_then_fail)
    with pytest.raises(OSError, match="No space left"):
        small_model(seed=1).save_weights(path)
    assert path.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.npz"]  # no temporary file left


def test_save_overwrites_with_the_permissions_np_savez_gives(tmp_path):
    model = small_model()
    np.savez(tmp_path / "numpy.npz", **model.params())
    path = model.save_weights(tmp_path / "mine")
    path = model.save_weights(path)  # over an existing file
    mode = stat.S_IMODE(os.stat(path).st_mode)
    assert mode == stat.S_IMODE(os.stat(tmp_path / "numpy.npz").st_mode)
    other = small_model(seed=3)
    other.load_weights(path)
    for name, p in other.params().items():
        np.testing.assert_array_equal(p, model.params()[name])


def test_a_float32_model_round_trips_exactly(tmp_path):
    model = reference_cnn(channels=2, dtype=np.float32, seed=4)
    other = reference_cnn(channels=2, dtype=np.float32, seed=5)
    other.load_weights(model.save_weights(tmp_path / "w"))
    for name, p in other.params().items():
        assert p.dtype == np.float32
        np.testing.assert_array_equal(p, model.params()[name])


def test_saving_into_a_missing_folder_names_the_folder_and_leaves_nothing(tmp_path):
    folder = tmp_path / "runs" / "today"
    with pytest.raises(FileNotFoundError) as info:
        small_model().save_weights(folder / "w")
    assert str(info.value) == (f"cannot save to {folder / 'w.npz'}: folder {folder} does not exist "
                               "(saving creates no folder)")
    assert info.value.errno == errno.ENOENT
    assert ".tmp" not in str(info.value) and info.value.__cause__ is None
    assert list(tmp_path.iterdir()) == []


def test_saving_under_a_file_names_that_file(tmp_path):
    (tmp_path / "runs").write_bytes(b"")
    target = tmp_path / "runs" / "today" / "w.npz"
    with pytest.raises(NotADirectoryError, match=rf"^cannot save to {re.escape(str(target))}: "
                                                 rf"{re.escape(str(tmp_path / 'runs'))} is a file, not a folder$"):
        small_model().save_weights(target)
    assert [p.name for p in tmp_path.iterdir()] == ["runs"]


def test_saving_into_a_folder_one_cannot_write_to_names_the_folder(tmp_path, monkeypatch):
    # As the kernel refuses it for a user without write access (the tests may run as root).
    real_open = os.open

    def refusing_open(path, flags, *args):
        if os.path.dirname(path) == str(tmp_path):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", refusing_open)
    with pytest.raises(PermissionError, match=rf"^cannot save to {re.escape(str(tmp_path / 'w.npz'))}: folder "
                                              rf"{re.escape(str(tmp_path))} is not writable \(permission denied\)$"):
        small_model().save_weights(tmp_path / "w")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []
