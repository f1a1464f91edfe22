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
    # MegEngine casts the clipped float32 result back with astype: fractions are cut off
    assert adjust_brightness(img, 1.5).tolist() == [[[15, 30, 45], [255, 150, 255]]]
    assert adjust_brightness(np.array([[[3, 5, 7]]], np.uint8), 0.5).tolist() == [[[1, 2, 3]]]
    gray = img.astype(np.float64) @ [0.114, 0.587, 0.299]  # 21.85, 156.25
    mean = gray.mean()
    expected = np.floor(np.clip(img * 0.5 + mean * 0.5, 0, 255))
    assert adjust_contrast(img, 0.5).tolist() == expected.tolist()
    grey = adjust_saturation(img, 0.0)
    assert grey.tolist() == np.floor(np.repeat(gray[..., None], 3, axis=2)).tolist()
    assert adjust_saturation(img.astype(np.float32), 1.0).tolist() == img.tolist()
    floats = adjust_brightness(np.array([[[3.0, 5.0, 7.0]]], np.float32), 0.5)
    assert floats.dtype == np.float32 and floats.tolist() == [[[1.5, 2.5, 3.5]]]


def test_hue_turns_in_opencvs_8_bit_hsv_by_hand():
    red = np.array([[[0, 0, 255]]], np.uint8)  # BGR
    # red has hue 0; alpha 1/3 adds uint8(85) of 256 steps. Back, OpenCV reads 255 as the
    # full turn: 85 * 6 / 255 = 2 exactly, sector 2 at its start, so pure green
    assert adjust_hue(red, 1 / 3).tolist() == [[[0, 255, 0]]]
    # alpha -1/3: int(-85) -> 171 steps; 171 * 6 / 255 = 4.0235..., sector 4 with f = 0.0235:
    # B = v = 255, G = v (1 - s) = 0, R = v (1 - s (1 - f)) = 255 * 0.0235 = 6.0 -> 6
    assert adjust_hue(red, -1 / 3).tolist() == [[[255, 0, 6]]]
    grey = np.full((2, 2, 3), 77.0, np.float32)
    assert np.array_equal(adjust_hue(grey, 0.3), grey)
    # as MegEngine, a float image is cast to uint8 before its hue turns
    assert adjust_hue(np.array([[[0.9, 0.9, 255.0]]], np.float32), 1 / 3).tolist() \
        == [[[0.0, 255.0, 0.0]]]


def test_hue_matches_opencv_where_it_is_installed():
    cv2 = pytest.importorskip("cv2")
    img = np.random.default_rng(0).integers(0, 256, (64, 64, 3)).astype(np.uint8)
    for alpha in (-0.5, -0.37, 0.013, 0.2, 0.49):  # MegEngine's HueTransform, step by step
        hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV_FULL)
        hue = ((hsv[..., 0].astype(int) + int(alpha * 255)) % 256).astype(np.uint8)
        expected = cv2.cvtColor(cv2.merge([hue, hsv[..., 1], hsv[..., 2]]),
                                cv2.COLOR_HSV2BGR_FULL)
        # float32 rounding in OpenCV's vector code moves a rare pixel by one level
        assert np.abs(adjust_hue(img, alpha).astype(int) - expected).max() <= 1


def test_color_jitter_draws_in_megengines_order():
    img = np.full((1, 1, 3), 100, np.uint8)
    jitter = T.ColorJitter(brightness=0.5, contrast=0.2, hue=0.1)
    np.random.seed(7)
    out = jitter.apply(img)
    # MegEngine: first the order of the active steps, then each step's factor in that order
    np.random.seed(7)
    order = np.random.permutation(3)
    ranges = [(0.5, 1.5), (0.8, 1.2), (-0.1, 0.1)]
    factors = {int(i): np.random.uniform(*ranges[i]) for i in order}
    steps = [step for step, _ in jitter._steps]
    assert steps == [(adjust_brightness, adjust_contrast, adjust_hue)[i] for i in order]
    assert dict(jitter._steps)[adjust_hue] == factors[2]
    assert dict(jitter._steps)[adjust_brightness] == factors[0]
    expected = img
    for i in order:  # a grey pixel: hue leaves it, contrast keeps it (its own mean)
        if i == 0:
            expected = np.clip(expected.astype(np.float32) * np.float32(factors[0]), 0, 255) \
                .astype(np.uint8)
    assert out.tolist() == expected.tolist()


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
    alpha = np.random.normal(0.0, 0.1 * 255, size=3)
    eigvec_rgb = np.array([[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140],
                           [-0.5836, -0.6948, 0.4203]])
    rgb = eigvec_rgb @ (alpha * [0.2175, 0.0188, 0.0045])
    assert np.allclose(out, 100.0 + rgb[::-1], atol=1e-4)  # the image's channels are B, G, R
    assert T.Lighting(0.0).apply(img) is img
    np.random.seed(4)
    cut = T.Lighting(0.1).apply(np.full((1, 1, 3), 100, np.uint8))
    assert cut.tolist() == [[np.floor(np.clip(100.0 + rgb[::-1], 0, 255)).tolist()]]


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


def test_random_resized_crop_accepts_megengines_ranges():
    crop = T.RandomResizedCrop(3, scale_range=(0.0, 2.0))  # MegEngine checks only the order
    assert crop.output_size == (3, 3) and crop.scale_range == (0.0, 2.0)
    assert crop.apply(np.zeros((6, 6, 3), np.uint8)).shape == (3, 3, 3)


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
    (lambda: T.RandomResizedCrop(4, ratio_range=(0.0, 1.0)), ["ratio_range", "0 < low"]),
    (lambda: T.RandomResizedCrop(0), ["output_size", "positive"]),
])
def test_bad_arguments(call, words):
    with pytest.raises(ValueError) as info:
        call()
    assert all(w in str(info.value) for w in words), str(info.value)
