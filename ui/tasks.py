"""Background work for the window: engine calls run on one worker thread, their results come
back to the GUI thread through a queued signal (Anki's ``run_in_background`` shape)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal

log = logging.getLogger(__name__)

Done = Callable[[Any], None]
Failed = Callable[[BaseException], None]


class Tasks(QObject):
    """Runs engine calls one at a time, in order, on one thread (the library serialises its
    jobs anyway). ``on_done``/``on_error`` run on the GUI thread; after :meth:`close` no more
    callbacks are delivered."""

    _finished = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="photosearch-gui")
        self._closed = threading.Event()
        self._pending = 0
        self._finished.connect(self._deliver, Qt.ConnectionType.QueuedConnection)

    @property
    def busy(self) -> bool:
        return self._pending > 0

    def run(
        self, task: Callable[[], Any], on_done: Done | None = None, on_error: Failed | None = None
    ) -> None:
        if self._closed.is_set():
            return
        self._pending += 1

        def work() -> None:
            try:
                outcome: tuple[Any, ...] = (on_done, on_error, task(), None)
            except BaseException as e:  # handed to on_error (or the log) on the GUI thread
                outcome = (on_done, on_error, None, e)
            if not self._closed.is_set():
                self._finished.emit(outcome)

        self._pool.submit(work)

    def _deliver(self, outcome: tuple[Any, ...]) -> None:
        self._pending -= 1
        on_done, on_error, value, error = outcome
        if self._closed.is_set():
            return
        if error is not None:
            if on_error is not None:
                on_error(error)
            else:
                log.error("background task failed", exc_info=error)
        elif on_done is not None:
            on_done(value)

    def close(self) -> None:
        """Deliver nothing more; wait for the task running now (queued ones are dropped)."""
        self._closed.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
