"""Vision transforms against hand-computed arrays (float64 references)."""

import pickle

import numpy as np
import pytest

import plugrad.data.transform as T
from plugrad.data.transform import functional as F


def img(h, w, c=1, dtype=np.uint8, start=0):
    return (np.arange(h * w * c) + start).reshape(h, w, c).astype(dtype)


def test_normalize_uint8_and_float_match_float64_formula():
    x = img(3, 4, 3)
    mean, std = [10.0, 20.0, 30.0], [2.0, 4.0, 8.0]
    out = T.Normalize(mean, std).apply(x)
    ref = (x.astype(np.float64) - np.array(mean)) / np.array(std)
    assert out.dtype == np.float32 and out.shape == x.shape
    np.testing.assert_allclose(out, ref, rtol=1e-6)
    out_f = T.Normalize(mean, std).apply(x.astype(np.float64))
    assert out_f.dtype == np.float32
    np.testing.assert_allclose(out_f, ref, rtol=1e-6)
    # scalar mean/std (the MNIST recipe), uint8 lookup-table path is bit-identical to float32 math
    m, s = 0.1307 * 255, 0.3081 * 255
    y = np.arange(256, dtype=np.uint8).reshape(16, 16, 1)
    lut = T.Normalize(m, s).apply(y)
    direct = (y.astype(np.float32) - np.float32(m)) / np.float32(s)
    np.testing.assert_array_equal(lut, direct)
    np.testing.assert_allclose(lut, (y - m) / s, rtol=1e-6, atol=1e-6)


def test_order_semantics_label_passes_through():
    x = img(2, 2)
    out_img, label = T.Normalize(1.0, 2.0).apply((x, 7))
    assert label == 7
    np.testing.assert_allclose(out_img, (x - 1.0) / 2.0)
    bare = T.Normalize(1.0, 2.0).apply(x)  # a non-tuple sample comes back unwrapped
    assert isinstance(bare, np.ndarray)
    a, b, c = T.Normalize(0.0, 1.0, order=("image_category", "image")).apply((3, x, "info"))
    assert a == 3 and c == "info" and b.dtype == np.float32
    with pytest.raises(ValueError, match="batch is not allowed"):
        T.Normalize(order=("batch",))
    with pytest.raises(NotImplementedError, match="polygon is unsupported"):
        T.Normalize(order=("image", "polygon"))
    with pytest.raises(ValueError, match="order should be a sequence"):
        T.Normalize(order=3)


def test_pad_by_hand():
    x = np.array([[1, 2], [3, 4]], np.uint8)[:, :, None]
    out = T.Pad(1, value=9).apply(x)
    expect = np.array([[9, 9, 9, 9], [9, 1, 2, 9], [9, 3, 4, 9], [9, 9, 9, 9]])
    np.testing.assert_array_equal(out[:, :, 0], expect)
    out = T.Pad((0, 1, 2, 0)).apply(x)  # top, bottom, left, right
    np.testing.assert_array_equal(out[:, :, 0], [[0, 0, 1, 2], [0, 0, 3, 4], [0, 0, 0, 0]])
    out = T.Pad((1, 2)).apply(x)  # (bottom, right)
    assert out.shape == (3, 4, 1) and out[0, 0, 0] == 1 and out[2].sum() == 0
    rgb = T.Pad(1, value=(5, 6, 7)).apply(np.zeros((1, 1, 3), np.uint8))
    assert rgb[0, 0].tolist() == [5, 6, 7] and rgb[1, 1].tolist() == [0, 0, 0]
    big = T.Pad(3, value=300).apply(np.zeros((60, 60, 1), np.uint8))  # large: strip path, saturated
    assert big.shape == (66, 66, 1) and big[0, 0, 0] == 255 and big[3:63, 3:63].sum() == 0
    boxes = T.Pad((1, 0, 2, 0), order=("image", "boxes")).apply((x, np.array([[0.0, 0, 1, 1]])))[1]
    np.testing.assert_array_equal(boxes, [[2, 1, 3, 2]])
    with pytest.raises(ValueError, match="four pad sizes"):
        T.Pad((1, 2, 3))
    with pytest.raises(ValueError, match="mask_value"):
        T.Pad(1, mask_value=0.5)


def test_tomode():
    x = img(2, 3, 2)
    out = T.ToMode("CHW").apply(x)
    assert out.shape == (2, 2, 3) and out.flags.c_contiguous
    np.testing.assert_array_equal(out[1], x[:, :, 1])
    assert T.ToMode("HWC").apply(x) is x
    with pytest.raises(ValueError, match="unsupported mode"):
        T.ToMode("NCHW")


def test_flips_and_probability():
    x = img(2, 3)
    np.testing.assert_array_equal(T.RandomHorizontalFlip(1.0).apply(x)[:, :, 0], x[:, ::-1, 0])
    np.testing.assert_array_equal(T.RandomVerticalFlip(1.0).apply(x)[:, :, 0], x[::-1, :, 0])
    assert T.RandomHorizontalFlip(0.0).apply(x) is x
    np.random.seed(0)
    flips = sum(T.RandomHorizontalFlip(0.3).apply(x)[0, 0, 0] != x[0, 0, 0] for _ in range(2000))
    assert 500 < flips < 700
    kp = T.RandomHorizontalFlip(1.0, order=("image", "keypoints")).apply(
        (x, np.array([[[1.0, 0.5, 1.0]]]))
    )[1]
    np.testing.assert_array_equal(kp, [[[2.0, 0.5, 1.0]]])
    with pytest.raises(ValueError, match="prob"):
        T.RandomHorizontalFlip(1.5)


def test_random_crop_window_and_padding():
    x = img(5, 6)
    np.random.seed(3)
    out = T.RandomCrop((2, 3)).apply(x)
    rng = np.random.RandomState(3)  # same draws, same order (x then y)
    x0, y0 = rng.randint(0, 4), rng.randint(0, 4)
    np.testing.assert_array_equal(out, x[y0 : y0 + 2, x0 : x0 + 3])
    # padding 1 then a crop of the full padded size: the padded image itself
    out = T.RandomCrop((7, 8), padding_size=1, padding_value=[9]).apply(x)
    np.testing.assert_array_equal(out, T.Pad(1, 9).apply(x))
    # a window larger than the image pads bottom/right
    out = T.RandomCrop((6, 6)).apply(x)
    assert out.shape == (6, 6, 1) and out[5].sum() == 0


def test_center_crop():
    x = img(5, 6)
    out = T.CenterCrop(3).apply(x)
    np.testing.assert_array_equal(out, x[1:4, 2:5])  # round(1.0)=1, round(1.5)=2
    with pytest.raises(ValueError, match="larger than the image"):
        T.CenterCrop(7).apply(x)


def test_resize_bilinear_by_hand():
    x = np.array([[0, 10], [20, 30]], np.float32)[:, :, None]
    out = T.Resize((4, 4)).apply(x)[:, :, 0]
    # Half-pixel centres: source coordinate (d + 0.5) * 0.5 - 0.5 = -0.25, 0.25, 0.75, 1.25,
    # clamped to [0, 1]: weights of the second pixel 0, 0.25, 0.75, 1 on each axis.
    w = np.array([0.0, 0.25, 0.75, 1.0])
    rows = np.outer(1 - w, [0.0, 10.0]) + np.outer(w, [20.0, 30.0])  # interpolate along y
    ref = rows[:, :1] * (1 - w) + rows[:, 1:] * w  # then along x
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(ref[1], [5, 7.5, 12.5, 15])
    # uint8 rounds half up, like OpenCV's fixed point: 2.5 -> 3, 7.5 -> 8
    u = T.Resize((4, 4)).apply(x.astype(np.uint8))[:, :, 0]
    np.testing.assert_array_equal(u[0], [0, 3, 8, 10])
    # downscale 4 -> 2 averages pixel pairs (source coords 0.5 and 2.5)
    y = np.arange(16, dtype=np.float64).reshape(4, 4, 1)
    np.testing.assert_allclose(T.Resize(2).apply(y)[:, :, 0], [[2.5, 4.5], [10.5, 12.5]])


def test_resize_nearest_and_shorter_side():
    x = img(3, 3)
    out = T.Resize((6, 2), interpolation="nearest").apply(x)[:, :, 0]
    rows, cols = [0, 0, 1, 1, 2, 2], [0, 1]  # floor(d * 3 / 6), floor(d * 3 / 2)
    np.testing.assert_array_equal(out, x[:, :, 0][np.ix_(rows, cols)])
    assert T.Resize(4).apply(img(2, 5)).shape == (4, 10, 1)
    assert T.Resize(4).apply(img(6, 3)).shape == (8, 4, 1)
    with pytest.raises(ValueError, match="unsupported interpolation"):
        T.Resize(4, interpolation=3)
    mask = T.Resize((4, 4), order=("image", "mask")).apply((x, x))[1]
    assert mask.dtype == np.uint8 and set(np.unique(mask)) <= set(np.unique(x))


def test_resize_matches_opencv_if_available():
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(0)
    for h, w, th, tw in [(28, 28, 32, 32), (30, 17, 11, 40), (5, 7, 13, 3)]:
        f = rng.random((h, w, 3), dtype=np.float32) * 255
        ours = F.resize(f, (th, tw), F.INTER_LINEAR)
        np.testing.assert_allclose(ours, cv2.resize(f, (tw, th)), atol=1e-3)
        u = f.astype(np.uint8)
        diff = np.abs(F.resize(u, (th, tw)).astype(int) - cv2.resize(u, (tw, th)).astype(int))
        assert diff.max() <= 1
        np.testing.assert_array_equal(
            F.resize(u, (th, tw), 0), cv2.resize(u, (tw, th), interpolation=cv2.INTER_NEAREST)
        )


def test_compose_seed_recipe_and_batch():
    x = img(28, 28, 1, start=3)
    t = T.Compose([T.Normalize(0.1307 * 255, 0.3081 * 255), T.Pad(2), T.ToMode("CHW")])
    out, label = t.apply((x, 4))
    ref = np.zeros((32, 32))  # Pad runs after Normalize, so the border is 0.0
    ref[2:30, 2:30] = (x[:, :, 0] - 0.1307 * 255) / (0.3081 * 255)
    assert out.shape == (1, 32, 32) and out.dtype == np.float32 and label == 4
    np.testing.assert_allclose(out[0], ref, rtol=1e-6, atol=1e-6)
    batch = t.apply_batch([(x, 1), (x, 2)])
    assert len(batch) == 2 and batch[1][1] == 2
    bc = T.Compose([T.Pad(1), T.ToMode()], batch_compose=True).apply_batch([(x, 1)])
    assert bc[0][0].shape == (1, 30, 30)


def test_compose_shuffle_indices():
    x = np.zeros((1, 1, 1), np.float64)

    class Add(T.VisionTransform):
        def __init__(self, v):
            super().__init__()
            self.v = v

        def _apply_image(self, image):
            return image * 10 + self.v

    t = T.Compose([Add(1), Add(2), Add(3)], shuffle_indices=[(1, 2)])
    np.random.seed(0)
    seen = {float(t.apply(x)[0, 0, 0]) for _ in range(40)}
    assert seen == {123.0, 213.0}
    with pytest.raises(ValueError, match="Do not support shuffle"):
        T.Compose([Add(1)], batch_compose=True, shuffle_indices=[(1,)])
    with pytest.raises(ValueError, match="shuffle_indices start at 1"):
        T.Compose([Add(1)], shuffle_indices=[(0,)])


def test_transforms_pickle_and_order_propagation():
    t = T.Compose([T.Normalize(1.0, 2.0), T.Pad(1)], order=("image", "image_category"))
    t.apply((img(2, 2), 1))  # fills the per-order cache
    t2 = pickle.loads(pickle.dumps(t))
    assert t2.transforms[1].order == ("image", "image_category")
    np.testing.assert_array_equal(t2.apply((img(2, 2), 1))[0], t.apply((img(2, 2), 1))[0])


def test_stacked_fast_path_only_when_equivalent():
    norm = T.Normalize(1.0, 2.0)
    assert T.Compose([norm, T.Pad(2), T.Resize(5), T.CenterCrop(3), T.ToMode()])._supports_stacked()
    assert not T.Compose([norm, T.RandomHorizontalFlip()])._supports_stacked()
    assert not T.Compose([norm], shuffle_indices=[(1,)])._supports_stacked()

    class MyNorm(T.Normalize):  # overrides the per-sample hook only
        def _apply_image(self, image):
            return super()._apply_image(image) + 1

    assert not MyNorm()._supports_stacked()
    assert not T.Normalize(order=("image", "boxes"))._supports_stacked()
