"""Progress events for the long jobs here, and the reporter that counts bytes across the files
of one job and stops it when cancelled."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from photosearch.errors import DownloadCancelled


@dataclass(frozen=True)
class Progress:
    """One progress event. ``done``/``total`` are bytes while downloading (``total`` None
    when unknown, e.g. while exporting); ``rate`` bytes/s, ``eta`` seconds."""

    stage: str  # "download" | "verify" | "export" | "install"
    message: str
    done: int = 0
    total: int | None = None
    rate: float = 0.0
    eta: float | None = None

    @property
    def fraction(self) -> float | None:
        return self.done / self.total if self.total else None


ProgressFn = Callable[[Progress], None]


class _Reporter:
    """Counts bytes across the files of one job, reports progress, honours a cancel event."""

    def __init__(self, progress: ProgressFn | None, cancel: threading.Event | None):
        self.progress = progress
        self.cancel = cancel
        self.total: int | None = None
        self.done = 0
        self.message = ""
        self._fresh = 0  # bytes that came over the network in this call: the rate
        self._start = time.monotonic()
        self._last = 0.0

    def check(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise DownloadCancelled(
                "download stopped; what arrived so far is kept, and the next try resumes it"
            )

    def stage(self, stage: str, message: str) -> None:
        self.check()
        self.message = message
        if self.progress is not None:
            total = self.total if stage == "download" else None
            self.progress(Progress(stage, message, self.done if total else 0, total))

    def add(self, n: int, *, fresh: bool = True) -> None:
        self.done += n
        if fresh:
            self._fresh += n
        self.check()
        now = time.monotonic()
        if self.progress is None or (now - self._last < 0.1 and self.done != self.total):
            return
        self._last = now
        elapsed = now - self._start
        rate = self._fresh / elapsed if elapsed > 0 else 0.0
        left = None if self.total is None else max(0, self.total - self.done)
        eta = left / rate if left is not None and rate > 0 else None
        self.progress(Progress("download", self.message, self.done, self.total, rate, eta))

    def bar(self) -> type:
        """A class huggingface_hub's ``http_get`` can use as its progress bar (``tqdm_class``):
        it counts into this reporter and stops the transfer when cancelled."""
        reporter = self

        class Bar:
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                pass

            def update(self, n: int | float | None = 1) -> None:
                reporter.add(int(n or 0))

            def close(self) -> None:
                pass

            def __enter__(self) -> Bar:
                return self

            def __exit__(self, *exc: object) -> None:
                pass

        return Bar
