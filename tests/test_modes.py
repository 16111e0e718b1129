"""The ways a test runs the same computation (conftest's slicing and products fixtures), and
the choice conv makes between per-image products and one product per slice."""

from types import SimpleNamespace

import pytest

import cnnlib.conv
from conftest import _without, seed_key


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
    assert cnnlib.conv.PER_IMAGE_MIN_PIXELS == 100
    assert cnnlib.conv._images_per_product(n, out_hw) == expected


@pytest.mark.parametrize("test_id, part, expected", [
    ("3 slices", "3 slices", ""),
    ("3 slices-one product-pad 1", "3 slices", "one product-pad 1"),
    ("one product-3 slices-pad 1", "3 slices", "one product-pad 1"),
    ("pad 1-3 slices", "3 slices", "pad 1"),
    ("pad 1-fast", "3 slices", "pad 1-fast"),
])
def test_without_removes_one_id(test_id, part, expected):
    assert _without(test_id, part) == expected


def runs(nodeid, case, modes):
    """(nodeid, callspec) of each run of a test, the way pytest names them."""
    out = []
    for slicing in ("whole batch", "3 slices"):
        for products in ("per-image products", "one product"):
            params = {"slicing": slicing, "products": products, **({"case": case} if case else {})}
            ids = [params[m] for m in modes] + ([case] if case else [])
            test_id = "-".join(ids)
            out.append((f"{nodeid}[{test_id}]", SimpleNamespace(id=test_id, params=params)))
            if "products" not in modes:
                break
    return out


@pytest.mark.parametrize("modes", [("slicing", "products"), ("slicing",)])
@pytest.mark.parametrize("case", ["pad 1", None])
def test_every_run_of_a_test_gets_the_same_seed(modes, case):
    keys = {seed_key(nodeid, callspec) for nodeid, callspec in runs("tests/test_conv.py::test_x", case, modes)}
    assert keys == {"tests/test_conv.py::test_x" + (f"[{case}]" if case else "")}


def test_different_tests_get_different_seeds():
    a = {seed_key(*run) for run in runs("tests/test_conv.py::test_x", "pad 1", ("slicing", "products"))}
    b = {seed_key(*run) for run in runs("tests/test_conv.py::test_x", "pad 0", ("slicing", "products"))}
    c = {seed_key(*run) for run in runs("tests/test_conv.py::test_y", "pad 1", ("slicing", "products"))}
    assert len(a | b | c) == 3
    assert seed_key("tests/test_flatten.py::test_z[a-b]", None) == "tests/test_flatten.py::test_z[a-b]"
