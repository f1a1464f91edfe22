"""A dependency-free progress bar: redrawn in place on a terminal, silent otherwise."""
from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """``with Progress(total, "epoch 1") as bar: bar.update(loss=...)``."""

    def __init__(self, total: int, label: str, stream: TextIO | None = None, width: int = 30):
        self.total = max(int(total), 1)
        self.label = label
        self.stream = stream or sys.stderr
        self.width = width
        self.count = 0
        self.start = time.perf_counter()
        self.live = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last_draw = 0.0

    def __enter__(self) -> Progress:
        return self

    def update(self, steps: int = 1, **values: float) -> None:
        self.count += steps
        now = time.perf_counter()
        if self.live and (now - self._last_draw > 0.1 or self.count >= self.total):
            self._last_draw = now
            done = int(self.width * self.count / self.total)
            rate = self.count / max(now - self.start, 1e-9)
            extra = " ".join(f"{k} {v:.4f}" for k, v in values.items())
            self.stream.write(f"\r{self.label} [{'#' * done}{'.' * (self.width - done)}] "
                              f"{self.count}/{self.total} {rate:.1f} it/s {extra}")
            self.stream.flush()

    def __exit__(self, *exc_info: object) -> None:
        if self.live:
            self.stream.write("\r" + " " * (self.width + len(self.label) + 60) + "\r")
            self.stream.flush()
