"""cnnlib.augment: shifts, crops and flips, checked image by image against plain slicing."""

import numpy as np
import pytest

from cnnlib.augment import random_crop, random_flip, random_shift


def shifted(image, dy, dx):
    """image (C, H, W) moved down by dy and right by dx, zeros where nothing moved in."""
    C, H, W = image.shape
    out = np.zeros_like(image)
    out[:, max(dy, 0):H + min(dy, 0), max(dx, 0):W + min(dx, 0)] = \
        image[:, max(-dy, 0):H - max(dy, 0), max(-dx, 0):W - max(dx, 0)]
    return out


def find_shift(out, image, max_shift):
    """The (dy, dx) that turns image into out, or None."""
    (sy, sx) = max_shift
    matches = [(dy, dx) for dy in range(-sy, sy + 1) for dx in range(-sx, sx + 1)
               if np.array_equal(out, shifted(image, dy, dx))]
    return matches[0] if len(matches) == 1 else None


@pytest.mark.parametrize("shape, max_shift", [((40, 2, 6, 5), 2), ((30, 1, 8, 8), (1, 3)), ((5, 3, 4, 7), 0)])
def test_random_shift_moves_each_image_as_a_whole_with_zero_fill(rng, shape, max_shift):
    x = rng.uniform(1, 2, size=shape)  # no zeros: every zero in the output was filled in
    out = random_shift(x, max_shift, rng=np.random.default_rng(0))
    assert out.shape == x.shape and out.dtype == x.dtype and out is not x
    pair = (max_shift, max_shift) if isinstance(max_shift, int) else max_shift
    shifts = [find_shift(out[n], x[n], pair) for n in range(len(x))]
    assert None not in shifts  # every image is one shift of itself, the same for all its channels
    if pair != (0, 0):
        # every allowed shift turns up, so the whole range -max..max is used on both axes
        assert {dy for dy, _ in shifts} == set(range(-pair[0], pair[0] + 1))
        assert {dx for _, dx in shifts} == set(range(-pair[1], pair[1] + 1))
    else:
        np.testing.assert_array_equal(out, x)


def test_random_crop_cuts_windows_of_the_padded_images(rng):
    x = rng.uniform(1, 2, size=(50, 3, 5, 6))
    out = random_crop(x, (4, 3), pad=1, rng=np.random.default_rng(1))
    assert out.shape == (50, 3, 4, 3)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    corners = set()
    for n in range(len(x)):
        found = [(i, j) for i in range(7 - 4 + 1) for j in range(8 - 3 + 1)
                 if np.array_equal(out[n], xp[n, :, i:i + 4, j:j + 3])]
        assert len(found) == 1
        corners.add(found[0])
    assert len(corners) > 10  # positions vary from image to image
    # without padding, a crop of the whole image is the image
    np.testing.assert_array_equal(random_crop(x, (5, 6), rng=np.random.default_rng(0)), x)


def test_random_flip_mirrors_about_half_the_images_left_to_right(rng):
    x = rng.normal(size=(200, 2, 3, 4))
    out = random_flip(x, rng=np.random.default_rng(2))
    flipped = np.array([np.array_equal(o, xi[:, :, ::-1]) for o, xi in zip(out, x)])
    kept = np.array([np.array_equal(o, xi) for o, xi in zip(out, x)])
    assert np.all(flipped ^ kept)
    assert 70 < flipped.sum() < 130
    np.testing.assert_array_equal(random_flip(x, p=0, rng=np.random.default_rng(0)), x)
    np.testing.assert_array_equal(random_flip(x, p=1, rng=np.random.default_rng(0)), x[..., ::-1])


@pytest.mark.parametrize("augment", [
    lambda x, rng: random_shift(x, 2, rng=rng),
    lambda x, rng: random_crop(x, 4, pad=2, rng=rng),
    lambda x, rng: random_flip(x, rng=rng),
], ids=["shift", "crop", "flip"])
def test_deterministic_given_rng_new_array_input_untouched_dtype_kept(rng, augment):
    x = rng.normal(size=(8, 2, 5, 5)).astype(np.float32)
    original = x.copy()
    a = augment(x, np.random.default_rng(3))
    b = augment(x, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32
    np.testing.assert_array_equal(x, original)
    assert not np.shares_memory(a, x)
    gen = np.random.default_rng(3)
    assert not np.array_equal(augment(x, gen), augment(x, gen))  # the next call draws anew
    assert augment(np.zeros((0, 2, 5, 5)), gen).shape[0] == 0  # an empty batch is a batch


def test_bad_arguments_are_refused():
    x = np.zeros((2, 1, 4, 4))
    with pytest.raises(TypeError, match="rng must be a np.random.Generator.*an int seed would give every batch "
                                        "the same transformations"):
        random_shift(x, 1, rng=0)
    with pytest.raises(TypeError, match="rng must be a np.random.Generator"):
        random_flip(x, rng=None)
    with pytest.raises(ValueError, match=r"x must be 4-D \(N, C, H, W\)"):
        random_shift(np.zeros((4, 4)), 1, rng=np.random.default_rng())
    with pytest.raises(ValueError, match="max_shift must be >= 0"):
        random_shift(x, -1, rng=np.random.default_rng())
    with pytest.raises(ValueError, match=r"size \(6, 6\) is larger than the padded images \(5, 5\)"):
        random_crop(np.zeros((2, 1, 3, 3)), 6, pad=1, rng=np.random.default_rng())
    with pytest.raises(ValueError, match=r"p must be a probability in \[0, 1\]"):
        random_flip(x, p=1.5, rng=np.random.default_rng())
    with pytest.raises(TypeError, match="p must be a number"):
        random_flip(x, p="0.5", rng=np.random.default_rng())
