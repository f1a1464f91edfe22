"""RandomResizedCrop, ColorJitter and Lighting: hand-computed results on tiny images, the same
draws under the same NumPy seed, uint8 and float images alike."""
from __future__ import annotations

import numpy as np
import pytest

import plugrad.data.transform as T
from plugrad.data.transform.color import (
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
)


def test_brightness_contrast_saturation_by_hand():
    img = np.array([[[10, 20, 30], [200, 100, 250]]], np.uint8)  # one row, two BGR pixels
    assert adjust_brightness(img, 1.5).tolist() == [[[15, 30, 45], [255, 150, 255]]]
    gray = img.astype(np.float64) @ [0.114, 0.587, 0.299]  # 21.85, 156.25
    mean = gray.mean()
    expected = np.floor(np.clip(img * 0.5 + mean * 0.5, 0, 255) + 0.5)
    assert adjust_contrast(img, 0.5).tolist() == expected.tolist()
    grey = adjust_saturation(img, 0.0)
    assert grey.tolist() == np.floor(np.repeat(gray[..., None], 3, axis=2) + 0.5).tolist()
    assert adjust_saturation(img.astype(np.float32), 1.0).tolist() == img.tolist()


def test_hue_rotates_primaries_and_keeps_greys():
    red = np.array([[[0, 0, 255]]], np.uint8)
    assert adjust_hue(red, 1 / 3).tolist() == [[[0, 255, 0]]]  # red -> green
    assert adjust_hue(red, -1 / 3).tolist() == [[[255, 0, 0]]]  # red -> blue
    grey = np.full((2, 2, 3), 77.0, np.float32)
    assert np.array_equal(adjust_hue(grey, 0.3), grey)


def test_color_jitter_is_reproducible_and_keeps_dtype_and_labels():
    img = (np.arange(4 * 5 * 3) * 7 % 256).astype(np.uint8).reshape(4, 5, 3)
    jitter = T.ColorJitter(0.4, 0.4, 0.4, 0.1)
    np.random.seed(1)
    a, label = jitter.apply((img, 3))
    np.random.seed(1)
    b = jitter.apply(img)
    assert label == 3 and a.dtype == np.uint8 and np.array_equal(a, b)
    assert not np.array_equal(a, img)
    assert T.ColorJitter().apply(img.astype(np.float32)).tolist() == img.tolist()


def test_lighting_adds_one_pca_shift_per_image():
    img = np.full((2, 3, 3), 100.0, np.float32)
    np.random.seed(4)
    out = T.Lighting(0.1).apply(img)
    np.random.seed(4)
    alpha = np.random.normal(0.0, 0.1, size=3)
    eigvec = np.array([[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140],
                       [-0.5836, -0.6948, 0.4203]])
    rgb = eigvec @ (alpha * [0.2175, 0.0188, 0.0045]) * 255
    assert np.allclose(out, 100.0 + rgb[::-1], atol=1e-4)
    assert T.Lighting(0.0).apply(img) is img


def test_random_resized_crop_draws_a_window_and_resizes_it():
    img = np.arange(8 * 10, dtype=np.float32).reshape(8, 10, 1)
    crop = T.RandomResizedCrop((4, 4), scale_range=(0.25, 0.25), ratio_range=(1.0, 1.0),
                               interpolation="nearest")
    np.random.seed(0)
    out = crop.apply(img)
    # area 80 / 4 = 20, square: w = h = round(sqrt(20)) = 4, so nearest resize is the crop
    x, y = crop._x, crop._y
    assert out.shape == (4, 4, 1) and (crop._w, crop._h) == (4, 4)
    assert np.array_equal(out, img[y:y + 4, x:x + 4])
    np.random.seed(0)
    assert np.array_equal(crop.apply(img), out)


def test_random_resized_crop_falls_back_to_the_centre():
    img = np.zeros((4, 40, 3), np.uint8)  # ratio 10, far outside (3/4, 4/3): no draw fits
    crop = T.RandomResizedCrop(2, scale_range=(0.9, 1.0))
    out = crop.apply(img)
    assert out.shape == (2, 2, 3) and out.dtype == np.uint8
    assert (crop._w, crop._h) == (5, 4) and crop._x == (40 - 5) // 2


@pytest.mark.parametrize("call, words", [
    (lambda: T.ColorJitter(brightness=-1), ["brightness", "non-negative"]),
    (lambda: T.ColorJitter(hue=0.7), ["hue", "at most 0.5"]),
    (lambda: T.Lighting(-0.1), ["Lighting", "scale"]),
    (lambda: T.RandomResizedCrop(4, scale_range=(0.5, 0.1)), ["scale_range", "low <= high"]),
    (lambda: T.RandomResizedCrop(0), ["output_size", "positive"]),
])
def test_bad_arguments(call, words):
    with pytest.raises(ValueError) as info:
        call()
    assert all(w in str(info.value) for w in words), str(info.value)
