"""VisionTransform (the ``order`` machinery) and Compose."""

from __future__ import annotations

import collections.abc
from typing import Any, Callable, Sequence

import numpy as np

from .meta_transform import Transform, _owner

__all__ = ["VisionTransform", "Compose"]

_BOX_CORNERS = np.array([(0, 1), (2, 1), (0, 3), (2, 3)]).flatten()


class VisionTransform(Transform):
    """Base of image transforms; ``order`` names the fields of a sample tuple.

    A sample is a tuple whose i-th item is of kind ``order[i]``: ``"image"`` (HxWxC array),
    ``"boxes"`` (Nx4 x0,y0,x1,y1), ``"mask"`` (HxWx1), ``"keypoints"`` (NxKx3 x,y,vis), or
    anything ending in ``"category"``/``"info"``, which passes through untouched. Items past
    the end of ``order`` pass through too, so the default ``order=("image",)`` transforms
    the image of an ``(image, label)`` pair and keeps the label. A non-tuple sample is
    treated as a 1-tuple, and a 1-item result is returned unwrapped.

    Subclasses implement ``_apply_image`` (and ``_apply_coords``/``_apply_mask`` where they
    make sense); random ones draw their parameters in ``apply`` before calling
    ``super().apply``. Deterministic ones may add ``_apply_image_batch`` (images stacked as
    NxHxWxC) to enable the DataLoader's vectorised path.
    """

    def __init__(self, order: Sequence[str] | None = None) -> None:
        self.order = self._check_order(order)

    def _check_order(self, order: Sequence[str] | None) -> tuple[str, ...]:
        if order is None:
            return ("image",)
        if not isinstance(order, collections.abc.Sequence) or isinstance(order, str):
            raise ValueError(f"order should be a sequence, but got order={order}")
        for k in order:
            if k in ("batch",):
                raise ValueError(f"{k} is not allowed")
            if k.endswith("category") or k.endswith("info"):
                continue
            if self._get_apply(k) is None:
                raise NotImplementedError(f"{k} is unsupported for {self}")
        return tuple(order)

    def apply(self, input: Any) -> Any:
        if not isinstance(input, tuple):
            input = (input,)
        fns = self._appliers()
        if len(fns) == 1:  # the common order=("image",): transform the head, keep the rest
            fn = fns[0]
            head = input[0] if fn is None else fn(input[0])
            return head if len(input) == 1 else (head,) + input[1:]
        output = [x if fn is None else fn(x) for fn, x in zip(fns, input)]
        if len(input) > len(fns):
            output.extend(input[len(fns) :])
        return output[0] if len(output) == 1 else tuple(output)

    def _appliers(self) -> tuple[Callable[[Any], Any] | None, ...]:
        """Per-position hooks for the current ``order``, cached (this is the hot path)."""
        cache = self.__dict__.get("_apply_cache")
        if cache is None or cache[0] is not self.order:
            cache = (self.order, tuple(self._get_apply(k) for k in self.order))
            self.__dict__["_apply_cache"] = cache
        return cache[1]

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.pop("_apply_cache", None)  # bound methods: rebuilt on first use
        return state

    def apply_batch(self, inputs: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(self.apply(x) for x in inputs)

    def _get_apply(self, key: str) -> Callable[[Any], Any] | None:
        if key.endswith("category") or key.endswith("info"):
            return None
        return getattr(self, f"_apply_{key}", None)

    def _get_image(self, input: Any) -> np.ndarray:
        if not isinstance(input, tuple):
            input = (input,)
        return input[self.order.index("image")]

    # -- per-kind hooks (subclasses override what they support) ---------------------------
    def _apply_image(self, image: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _apply_coords(self, coords: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _apply_boxes(self, boxes: np.ndarray) -> np.ndarray:
        # Transform the four corners, then take the enclosing axis-aligned box.
        coords = np.asarray(boxes).reshape(-1, 4)[:, _BOX_CORNERS].reshape(-1, 2)
        coords = self._apply_coords(coords).reshape((-1, 4, 2))
        return np.concatenate((coords.min(axis=1), coords.max(axis=1)), axis=1)

    def _apply_mask(self, mask: np.ndarray, /) -> np.ndarray:
        # positional-only: a transform whose mask moves like its image aliases _apply_image
        raise NotImplementedError

    def _apply_keypoints(self, keypoints: np.ndarray) -> np.ndarray:
        keypoints = np.asarray(keypoints)
        coords, visibility = keypoints[..., :2], keypoints[..., 2:]
        moved = np.stack([self._apply_coords(np.array(p, dtype=np.float64)) for p in coords])
        return np.concatenate((moved, visibility), axis=-1)

    # -- stacked (whole-batch) protocol ---------------------------------------------------
    _apply_image_batch: Callable[[np.ndarray], np.ndarray] | None = None

    def _supports_stacked(self) -> bool:
        batch_owner = _owner(self, "_apply_image_batch")
        if self._apply_image_batch is None or _owner(self, "_apply_image") is not batch_owner:
            return False
        if _owner(self, "apply") not in (VisionTransform, batch_owner):
            return False
        return all(k == "image" or k.endswith("category") or k.endswith("info") for k in self.order)

    def _apply_stacked(self, stacked: Any) -> Any:
        if not isinstance(stacked, tuple):
            stacked = (stacked,)
        out = list(stacked)
        for i in range(min(len(out), len(self.order))):
            if self.order[i] == "image":
                out[i] = self._apply_image_batch(out[i])  # type: ignore[misc]
        return out[0] if len(out) == 1 else tuple(out)


class Compose(VisionTransform):
    """Applies transforms in sequence, all sharing this Compose's ``order``.

    ``batch_compose=True`` runs each transform over the whole batch before the next
    (``apply_batch``); ``shuffle_indices`` lists groups of 1-based positions whose
    transforms are applied in a random order for every sample, e.g. ``[(2, 3)]``.
    """

    def __init__(
        self,
        transforms: Sequence[Transform] = [],  # noqa: B006 - MegEngine's signature; never mutated
        batch_compose: bool = False,
        shuffle_indices: Sequence[Sequence[int]] | None = None,
        *,
        order: Sequence[str] | None = None,
    ) -> None:
        super().__init__(order)
        self.transforms = list(transforms)
        self._set_order()
        if batch_compose and shuffle_indices is not None:
            raise ValueError("Do not support shuffle when apply transforms along the whole batch")
        self.batch_compose = batch_compose
        if shuffle_indices is not None:
            n = len(self.transforms)
            for group in shuffle_indices:
                for pos in group:
                    if not isinstance(pos, (int, np.integer)) or not 1 <= pos <= n:
                        raise ValueError(
                            f"shuffle_indices start at 1 and must lie in [1, {n}], but got {pos}"
                        )
            shuffle_indices = [tuple(int(x) - 1 for x in group) for group in shuffle_indices]
        self.shuffle_indices = shuffle_indices

    def _set_order(self) -> None:
        for t in self.transforms:
            if isinstance(t, VisionTransform):
                t.order = self.order
                if isinstance(t, Compose):
                    t._set_order()

    def apply(self, input: Any) -> Any:
        for t in self._shuffle():
            input = t.apply(input)
        return input

    def apply_batch(self, inputs: Sequence[Any]) -> Any:
        if self.batch_compose:
            for t in self.transforms:
                inputs = t.apply_batch(inputs)
            return inputs
        return tuple(self.apply(x) for x in inputs)

    def _shuffle(self) -> list[Transform]:
        if self.shuffle_indices is None:
            return self.transforms
        source = list(range(len(self.transforms)))
        for group in self.shuffle_indices:
            shuffled = np.random.permutation(group).tolist()
            for src, dst in zip(group, shuffled):
                source[src] = dst
        return [self.transforms[i] for i in source]

    def _supports_stacked(self) -> bool:
        if _owner(self, "apply") is not Compose or _owner(self, "apply_batch") is not Compose:
            return False
        return self.shuffle_indices is None and all(t._supports_stacked() for t in self.transforms)

    def _apply_stacked(self, stacked: Any) -> Any:
        for t in self.transforms:
            stacked = t._apply_stacked(stacked)
        return stacked

    def __repr__(self) -> str:
        return "Compose({})".format(", ".join(repr(t) for t in self.transforms))
