"""The ways a test runs the same computation (conftest's slicing, products and chunking
fixtures), and the choices conv makes: per-image products or one product per chunk, and how
many images go in a chunk."""

import itertools
from types import SimpleNamespace

import numpy as np
import pytest

import cnnlib
import cnnlib.engine.conv as engine
from conftest import _without, seed_key
from test_conv import CASES, make


@pytest.mark.parametrize("n, out_hw, expected", [
    (5, (10, 10), 1),  # 100 pixels: a product per image
    (5, (1, 100), 1),
    (5, (9, 12), 1),
    (5, (9, 11), 5),  # 99 pixels: one product for all 5 images
    (5, (1, 1), 5),
    (1, (2, 2), 1),  # one image: the same either way
    (0, (1, 1), 1),  # an empty batch has no images to put in one product
])
def test_conv_multiplies_per_image_only_for_large_maps(n, out_hw, expected):
    assert engine.PER_IMAGE_MIN_PIXELS == 100
    assert engine.images_per_product(n, out_hw) == expected


@pytest.mark.parametrize("test_id, part, expected", [
    ("3 slices", "3 slices", ""),
    ("3 slices-one product-pad 1", "3 slices", "one product-pad 1"),
    ("one product-3 slices-pad 1", "3 slices", "one product-pad 1"),
    ("pad 1-3 slices", "3 slices", "pad 1"),
    ("pad 1-fast", "3 slices", "pad 1-fast"),
])
def test_without_removes_one_id(test_id, part, expected):
    assert _without(test_id, part) == expected


VALUES = {"slicing": ("whole batch", "3 slices"), "products": ("per-image products", "one product"),
          "chunking": ("whole slices", "2-image chunks")}


def runs(nodeid, case, modes):
    """(nodeid, callspec) of each run of a test, the way pytest names them."""
    out = []
    for values in itertools.product(*(VALUES[m] for m in modes)):
        params = dict(zip(modes, values), **({"case": case} if case else {}))
        test_id = "-".join(values + ((case,) if case else ()))
        out.append((f"{nodeid}[{test_id}]", SimpleNamespace(id=test_id, params=params)))
    return out


def test_runs_lists_every_combination():
    assert len(runs("t.py::test_x", "pad 1", ("slicing", "products", "chunking"))) == 8
    assert len(runs("t.py::test_x", None, ("slicing",))) == 2


@pytest.mark.parametrize("modes", [("slicing", "products", "chunking"), ("slicing", "products"), ("slicing",)])
@pytest.mark.parametrize("case", ["pad 1", None])
def test_every_run_of_a_test_gets_the_same_seed(modes, case):
    keys = {seed_key(nodeid, callspec) for nodeid, callspec in runs("tests/layers/test_conv.py::test_x", case, modes)}
    assert keys == {"tests/test_conv.py::test_x" + (f"[{case}]" if case else "")}  # as before the folders


def test_different_tests_get_different_seeds():
    modes = ("slicing", "products", "chunking")
    a = {seed_key(*run) for run in runs("tests/layers/test_conv.py::test_x", "pad 1", modes)}
    b = {seed_key(*run) for run in runs("tests/layers/test_conv.py::test_x", "pad 0", modes)}
    c = {seed_key(*run) for run in runs("tests/layers/test_conv.py::test_y", "pad 1", modes)}
    assert len(a | b | c) == 3
    assert seed_key("tests/test_flatten.py::test_z[a-b]", None) == "tests/test_flatten.py::test_z[a-b]"


def test_a_test_draws_what_it_drew_before_the_tests_moved_into_folders():
    assert seed_key("tests/layers/test_flatten.py::test_z[a-b]", None) == "tests/test_flatten.py::test_z[a-b]"
    assert seed_key("tests/test_sanity.py::test_z", None) == "tests/test_sanity.py::test_z"


@pytest.mark.parametrize("n, image_bytes, out_hw, expected", [
    (64, 1, (10, 10), 3 << 20),
    (64, 1 << 20, (10, 10), 3),  # 3 MiB of im2col matrix per chunk
    (64, (1 << 20) + 1, (10, 10), 2),
    (64, 3 << 20, (32, 32), 1),
    (64, 10 << 20, (32, 32), 1),  # an image larger than a chunk still goes through, alone
    (64, 1 << 20, (9, 11), 64),  # 99 pixels: small maps are never cut
    (0, 1 << 20, (9, 11), 1),
])
def test_images_per_chunk(n, image_bytes, out_hw, expected):
    assert engine.CHUNK_BYTES == 3 << 20
    assert engine.images_per_chunk(n, image_bytes, out_hw) == expected


@pytest.mark.parametrize("parts, m, expected", [
    ([slice(0, 5)], 2, [(0, 2), (2, 4), (4, 5)]),
    ([slice(0, 3), slice(3, 9)], 3, [(0, 3), (3, 6), (6, 9)]),
    ([slice(0, 3), slice(3, 6)], 2, [(0, 2), (2, 3), (3, 5), (5, 6)]),  # chunks never span two slices
    ([slice(0, 4)], 8, [(0, 4)]),
    ([slice(0, 0)], 2, [(0, 0)]),  # an empty batch: one empty chunk, whose dw and db are zeros
])
def test_chunks_cover_the_slices_in_order(parts, m, expected):
    assert [(c.start, c.stop) for c in engine.chunks(parts, m)] == expected


@pytest.mark.parametrize("stride, g, F, tap_channels, expected", [
    ((1, 1), 1, 32, 144, True),  # the benchmark's layer: 16 -> 32 channels, 3x3
    ((1, 1), 1, 72, 144, True),  # 2F == C*KH*KW
    ((1, 1), 1, 73, 144, False),
    ((1, 1), 1, 8, 9, False),  # 1 -> 8 channels, 3x3: runs were slower
    ((1, 1), 5, 32, 144, False),  # small maps, one product for 5 images
    ((2, 1), 1, 32, 144, False),  # runs need stride 1
    ((1, 2), 1, 32, 144, False),
])
def test_the_backward_goes_by_runs_only_where_it_paid(stride, g, F, tap_channels, expected):
    assert engine.by_runs(stride, g, F, tap_channels) == expected


def _spy(monkeypatch, name):
    """Replace cnnlib.engine.conv.<name> by a wrapper that counts its calls; returns the counter."""
    calls = []
    original = getattr(engine, name)

    def spy(*args, **kwargs):
        calls.append(name)
        return original(*args, **kwargs)
    monkeypatch.setattr(engine, name, spy)
    return calls


def _forward_backward(rng, x_shape, w_shape, stride, pad):
    x, w, b = make(rng, x_shape, w_shape)
    out, cache = cnnlib.conv2d_forward(x, w, b, stride=stride, pad=pad)
    dout = rng.standard_normal(out.shape)
    grads = cnnlib.conv2d_backward(dout, cache)
    for got, expected in zip(grads, cnnlib.conv2d_backward_naive(dout, cache)):
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
    return cache


@pytest.mark.parametrize("min_pixels, expected", [
    (1, {"non-square, pad 0": "dx_by_runs", "batch 3, stride 1, pad pair": "dx_by_runs",
         "more filters than taps": "dx_by_taps", "stride 2, pad 1": "dx_by_taps"}),
    (10**9, {"non-square, pad 0": "dx_by_channel_runs", "batch 3, stride 1, pad pair": "dx_by_channel_runs",
             "more filters than taps": "dx_by_channel_runs",  # no rule on F for small maps
             "stride 2, pad 1": "dx_by_taps", "stride and pad pairs": "dx_by_taps"}),
], ids=["per-image products", "one product"])  # conftest's two `products` modes
def test_the_test_cases_reach_every_way_back_to_dx(rng, monkeypatch, min_pixels, expected):
    monkeypatch.setenv("CNNLIB_THREADS", "1")
    monkeypatch.setattr(engine, "PER_IMAGE_MIN_PIXELS", min_pixels)
    ways = {}
    for case in CASES:
        spies = [_spy(monkeypatch, name) for name in ("dx_by_runs", "dx_by_channel_runs", "dx_by_taps")]
        _forward_backward(rng, *case.values)
        ways[case.id] = set().union(*spies)
    for case_id, way in expected.items():
        assert ways[case_id] == {way}, case_id


def test_channel_runs_go_by_blocks_of_images_within_chunk_bytes(rng, monkeypatch):
    # 5 images of 2 channels, 3x3 kernel, 6x7 padded to 8x9: the product's 9 taps x 2 channels
    # x 72 pixels take 10,368 bytes per image in float64.
    monkeypatch.setenv("CNNLIB_THREADS", "1")
    monkeypatch.setattr(engine, "PER_IMAGE_MIN_PIXELS", 10**9)
    monkeypatch.setattr(engine, "CHUNK_BYTES", 2 * 10368 + 100)  # blocks of 2, 2 and 1 images
    products = []
    original = np.matmul
    monkeypatch.setattr(engine.np, "matmul", lambda a, b, **kw: (products.append(b.shape), original(a, b, **kw))[1])
    _forward_backward(rng, (5, 2, 6, 7), (4, 2, 3, 3), 1, 1)  # and dx, dw, db match the loops
    assert products[-3:] == [(4, 2 * 72), (4, 2 * 72), (4, 72)]  # dout widened, block by block


@pytest.mark.parametrize("stride, chunk, expected", [
    (2, None, 1),  # one chunk: the forward's im2col matrix is kept and used again
    (2, 2, 3 + 3),  # chunks of 2 of 5 images: the backward copies each chunk's windows again
    (1, None, 1),  # by runs (see by_runs): the backward needs no im2col matrix
    (1, 2, 3),
])
def test_the_backward_copies_windows_only_when_none_were_kept(rng, monkeypatch, stride, chunk, expected):
    monkeypatch.setenv("CNNLIB_THREADS", "1")
    monkeypatch.setattr(engine, "PER_IMAGE_MIN_PIXELS", 1)
    if chunk:
        monkeypatch.setattr(engine, "images_per_chunk", lambda n, image_bytes, out_hw: chunk)
    calls = _spy(monkeypatch, "im2col")
    cache = _forward_backward(rng, (5, 8, 6, 7), (4, 8, 3, 3), stride, 1)  # 2F <= C*KH*KW
    assert len(calls) == expected
    kept = [cols for _, cols in cache[5]]
    assert (kept[0] is not None) == (expected == 1 and stride == 2)


@pytest.mark.parametrize("forward_chunk, backward_chunk, copies", [
    (None, 2, 0),  # the forward's one whole-slice matrix serves the backward
    (2, None, 3),  # chunks 2, 2, 1: each chunk's windows are copied again
])
def test_the_backward_goes_by_the_forwards_chunks(rng, monkeypatch, forward_chunk, backward_chunk, copies):
    # Whatever images_per_chunk says by the time of the backward: each kept matrix belongs to
    # one chunk of the forward.
    monkeypatch.setenv("CNNLIB_THREADS", "1")
    x, w, b = make(rng, (5, 2, 6, 7), (3, 2, 3, 2))
    with monkeypatch.context() as forward_only:
        forward_only.setattr(engine, "CHUNK_BYTES", 1 << 62)
        if forward_chunk:
            forward_only.setattr(engine, "images_per_chunk", lambda n, image_bytes, out_hw: forward_chunk)
        out, cache = cnnlib.conv2d_forward(x, w, b, stride=2, pad=1)
    assert [(c.stop - c.start, cols is not None) for c, cols in cache[5]] == (
        [(5, True)] if forward_chunk is None else [(2, False), (2, False), (1, False)])
    if backward_chunk:
        monkeypatch.setattr(engine, "images_per_chunk", lambda n, image_bytes, out_hw: backward_chunk)
    calls = _spy(monkeypatch, "im2col")
    dout = rng.standard_normal(out.shape)
    for got, expected in zip(cnnlib.conv2d_backward(dout, cache), cnnlib.conv2d_backward_naive(dout, cache)):
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
    assert len(calls) == copies


@pytest.mark.parametrize("w_shape, way", [
    ((4, 8, 3, 3), "dx_by_runs"),
    ((17, 8, 2, 1), "dx_by_taps"),  # 2F > C*KH*KW
])
def test_an_empty_batch_gives_empty_maps_and_zero_weight_gradients(rng, monkeypatch, w_shape, way):
    monkeypatch.setattr(engine, "PER_IMAGE_MIN_PIXELS", 1)  # the per-image path, where runs go
    calls = _spy(monkeypatch, way)
    x, w, b = make(rng, (0, 8, 6, 7), w_shape)
    out, cache = cnnlib.conv2d_forward(x, w, b, pad=1)
    assert out.shape == (0, w_shape[0], 6 + 3 - w_shape[2], 7 + 3 - w_shape[3])
    dx, dw, db = cnnlib.conv2d_backward(np.zeros(out.shape), cache)
    assert calls == [way]
    assert dx.shape == x.shape
    assert dw.shape == w.shape and not dw.any()
    assert db.shape == b.shape and not db.any()
