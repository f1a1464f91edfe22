"""DataLoader: samples, transforms and collates a dataset into NumPy batches."""

from __future__ import annotations

import contextlib
import itertools
import queue
import threading
from typing import Any, Iterator, List, Optional

from ._pool import MultiProcessIterator
from ._worker import BatchFetcher
from .collator import Collator
from .dataset.meta_dataset import StreamDataset
from .sampler import RandomSampler, Sampler, SequentialSampler, StreamSampler
from .transform.meta_transform import PseudoTransform, Transform

__all__ = ["DataLoader"]


class DataLoader:
    """Iterates over ``dataset`` in batches chosen by ``sampler``.

    Each batch is ``collator.apply(transform.apply_batch([dataset[i] for i in indices]))``
    and is made of NumPy arrays; wrap them in ``plugrad.Tensor`` to compute with them.

    Two ways to say how batches are drawn: MegEngine's, with a sampler,
    ``DataLoader(ds, sampler=RandomSampler(ds, batch_size=10))``, or PyTorch's and Gluon's,
    with keywords, ``DataLoader(ds, batch_size=10, shuffle=True)``, which builds that sampler.

    Args:
        dataset: a map-style :class:`Dataset` or a :class:`StreamDataset`.
        sampler: defaults to ``SequentialSampler(dataset, batch_size=1)`` (or
            ``StreamSampler(batch_size=1)`` for a stream).
        batch_size, shuffle, drop_last: keywords, only without a sampler: a
            ``RandomSampler`` (``shuffle=True``) or ``SequentialSampler`` of this batch size
            (1 if not given), dropping a last, smaller batch with ``drop_last``.
        transform: applied to every sample; defaults to the identity.
        collator: turns a list of samples into a batch; defaults to :class:`Collator`.
        num_workers: worker processes computing batches (0: in this process). Batches still
            come out in sampler order; NumPy's and ``random``'s global RNGs in worker ``i``
            are seeded with ``base + i``, ``base`` drawn from NumPy's global RNG when the
            iteration starts, so random transforms are reproducible after ``np.random.seed``.
        timeout: seconds to wait for one batch from the workers before raising
            ``RuntimeError`` (0 waits forever; a dead worker is reported at once anyway).
        preload: with ``num_workers=0``, compute the next batch in a background thread
            while the current one is being used (workers always prefetch). Batches stay
            NumPy arrays: moving them to a device is the caller's business.
        parallel_stream: MegEngine's switch for workers reading a StreamDataset themselves.
            Here the loader's process always reads the stream, once and in order, and hands
            raw items to the workers, so a stream is already read in parallel with the
            transforms; the flag is accepted (MegEngine 1.13's eighth argument) and changes
            nothing.
        divide: (keyword only) split every batch across all workers instead of giving whole
            batches to single workers (needs ``num_workers > 1`` and a collator producing
            batch-major arrays, like the default one).
    """

    def __init__(
        self,
        dataset: Any,
        sampler: Optional[Sampler] = None,
        transform: Optional[Transform] = None,
        collator: Optional[Collator] = None,
        num_workers: int = 0,
        timeout: float = 0,
        preload: bool = False,
        parallel_stream: bool = False,
        *,
        divide: bool = False,
        batch_size: Optional[int] = None,
        shuffle: bool = False,
        drop_last: bool = False,
    ) -> None:
        sampler = _sampler_from_arguments(dataset, sampler, batch_size, shuffle, drop_last)
        _check_type("transform", transform, "apply_batch", "a Transform, e.g. T.Compose([...])")
        _check_type("collator", collator, "apply", "a Collator")
        if not isinstance(num_workers, int) or isinstance(num_workers, bool) or num_workers < 0:
            raise ValueError(
                "num_workers should be a non-negative integer, but got num_workers={}".format(
                    num_workers
                )
            )
        if not isinstance(timeout, (int, float)) or timeout < 0:
            raise ValueError("timeout should not be negative, but got timeout={}".format(timeout))
        if divide and num_workers <= 1:
            raise ValueError("divide should not be set to True when num_workers <= 1")
        self.dataset = dataset
        self.stream = isinstance(dataset, StreamDataset)
        if self.stream:
            if sampler is None:
                sampler = StreamSampler(batch_size=1)
            if not isinstance(sampler, StreamSampler):
                raise ValueError(
                    "types of dataset and sampler do not match: a StreamDataset needs a "
                    "StreamSampler, but got {}".format(type(sampler).__name__)
                )
        else:
            if sampler is None:
                sampler = SequentialSampler(dataset, batch_size=1, drop_last=False)
            if isinstance(sampler, StreamSampler):
                raise ValueError(
                    "types of dataset and sampler do not match: a StreamSampler needs a "
                    "StreamDataset, but got {}".format(type(dataset).__name__)
                )
        self.sampler = sampler
        self.transform = transform if transform is not None else PseudoTransform()
        self.collator = collator if collator is not None else Collator()
        self.num_workers = num_workers
        self.timeout = timeout
        self.preload = bool(preload)
        self.divide = bool(divide)
        self.parallel_stream = bool(parallel_stream)

    def __len__(self) -> int:
        if self.stream:
            raise TypeError("a DataLoader over a StreamDataset has no length")
        return len(self.sampler)  # type: ignore[arg-type]

    def _tasks(self) -> Iterator[List[Any]]:
        """This epoch's tasks: index lists, or lists of raw items read from the stream."""
        if not self.stream:
            return iter(self.sampler)
        return _stream_chunks(iter(self.dataset), self.sampler.batch_size)  # type: ignore[attr-defined]

    def __iter__(self) -> Iterator[Any]:
        fetcher = BatchFetcher(self.dataset, self.transform, self.collator, self.stream)
        if self.num_workers > 0:
            return MultiProcessIterator(
                fetcher, self._tasks(), self.num_workers, self.timeout, self.divide
            )
        it: Iterator[Any] = _SerialIterator(fetcher, self._tasks())
        if self.preload:
            it = _PreloadIterator(it)
        return it


_BOTH_WAYS = (
    "DataLoader(dataset, batch_size=10, shuffle=True, drop_last=False), or with a sampler, "
    "DataLoader(dataset, sampler=RandomSampler(dataset, batch_size=10))"
)


def _sampler_from_arguments(dataset: Any, sampler: Any, batch_size: Optional[int],
                            shuffle: bool, drop_last: bool) -> Optional[Sampler]:
    """The sampler to use, built from the keywords when none is given; bad mixes refused."""
    if sampler is not None and not isinstance(sampler, Sampler):
        hint = "; a batch size goes by keyword" if isinstance(sampler, int) else ""
        raise TypeError(
            "DataLoader: sampler must be a Sampler; got {} {!r}{}. Call it as {}".format(
                type(sampler).__name__, sampler, hint, _BOTH_WAYS))
    keywords = batch_size is not None or shuffle or drop_last
    if not keywords:
        return sampler
    if sampler is not None:
        raise ValueError(
            "DataLoader: batch_size, shuffle and drop_last build a sampler, so they cannot be "
            "given with sampler={}; call it as {}".format(type(sampler).__name__, _BOTH_WAYS))
    for name, value in (("shuffle", shuffle), ("drop_last", drop_last)):
        if not isinstance(value, bool):
            raise TypeError("DataLoader: {} must be a bool; got {!r}".format(name, value))
    size = 1 if batch_size is None else batch_size
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(
            "DataLoader: batch_size must be a positive int; got {!r}".format(batch_size))
    if isinstance(dataset, StreamDataset):
        if shuffle or drop_last:
            raise ValueError("DataLoader: a StreamDataset is read in order: shuffle and "
                             "drop_last do not apply; give batch_size only")
        return StreamSampler(batch_size=size)
    kind = RandomSampler if shuffle else SequentialSampler
    return kind(dataset, batch_size=size, drop_last=drop_last)


def _check_type(name: str, value: Any, method: str, expected: str) -> None:
    if value is not None and not callable(getattr(value, method, None)):
        raise TypeError("DataLoader: {} must be {} (with an {}() method); got {} {!r}".format(
            name, expected, method, type(value).__name__, value))


def _stream_chunks(items: Iterator[Any], batch_size: int) -> Iterator[List[Any]]:
    while True:
        chunk = list(itertools.islice(items, batch_size))
        if not chunk:
            return
        yield chunk


class _SerialIterator:
    """Batches computed in the calling thread, one per ``next``."""

    def __init__(self, fetcher: BatchFetcher, tasks: Iterator[List[Any]]) -> None:
        self._fetch = fetcher
        self._tasks = tasks

    def __iter__(self) -> "_SerialIterator":
        return self

    def __next__(self) -> Any:
        return self._fetch(list(next(self._tasks)))


_DONE = object()


class _PreloadIterator:
    """Runs another iterator one batch ahead in a daemon thread."""

    def __init__(self, source: Iterator[Any]) -> None:
        self._queue: "queue.Queue[Any]" = queue.Queue(maxsize=1)
        self._stop = threading.Event()
        self._finished = False
        self._thread = threading.Thread(
            target=_preload_loop, args=(source, self._queue, self._stop), daemon=True
        )
        self._thread.start()

    def __iter__(self) -> "_PreloadIterator":
        return self

    def __next__(self) -> Any:
        if self._finished:
            raise StopIteration
        kind, value = self._queue.get()
        if kind is _DONE:
            self._finished = True
            self._thread.join()
            if value is not None:
                raise value
            raise StopIteration
        return value

    def close(self) -> None:
        self._stop.set()
        self._finished = True
        with contextlib.suppress(queue.Empty):  # unblock a producer waiting on a full queue
            self._queue.get_nowait()

    def __del__(self) -> None:
        self.close()


def _preload_loop(source: Iterator[Any], out: "queue.Queue[Any]", stop: threading.Event) -> None:
    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    try:
        for batch in source:
            if not put((None, batch)):
                return
    except BaseException as exc:  # handed to the consumer, raised there
        put((_DONE, exc))
        return
    put((_DONE, None))
