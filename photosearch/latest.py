"""Search as you type: only the latest query runs, on one worker thread, off the caller's.

A window submits a query per keystroke; each new one cancels the one running (the reranker
stops between candidates) and replaces the one queued, so the worker is never behind by more
than one query and a superseded query never paints its results.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from photosearch.rerank import Cancelled
from photosearch.search import Query, Results, Searcher

log = logging.getLogger(__name__)


@dataclass
class _Job:
    query: Query
    on_result: Callable[[Results], None]
    on_error: Callable[[BaseException], None] | None
    cancel: threading.Event = field(default_factory=threading.Event)


class LatestSearch:
    """Runs queries one at a time on a worker thread; a new query cancels the one running.

    ``submit`` returns at once. ``on_result`` is called (on the worker thread) with the fast
    list and then, if refined, with the refined list; a query superseded before it finishes
    gets no further calls. Errors go to ``on_error`` (or the log).
    """

    def __init__(self, searcher: Searcher):
        self.searcher = searcher
        self._cond = threading.Condition()
        self._next: _Job | None = None
        self._running: _Job | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="photosearch-search", daemon=True)
        self._thread.start()

    def submit(
        self,
        query: Query,
        on_result: Callable[[Results], None],
        on_error: Callable[[BaseException], None] | None = None,
    ) -> threading.Event:
        """Queue ``query`` (replacing any queued one, cancelling the running one); returns the
        job's cancel event."""
        job = _Job(query, on_result, on_error)
        with self._cond:
            if self._closed:
                raise RuntimeError("this LatestSearch is closed")
            if self._next is not None:
                self._next.cancel.set()
            if self._running is not None:
                self._running.cancel.set()
            self._next = job
            self._cond.notify_all()
        return job.cancel

    def cancel(self) -> None:
        """Cancel whatever is queued or running."""
        with self._cond:
            for job in (self._next, self._running):
                if job is not None:
                    job.cancel.set()
            self._next = None
            self._cond.notify_all()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until nothing is queued or running; False on timeout."""
        end = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._next is not None or self._running is not None:
                left = None if end is None else end - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self, timeout: float | None = 10.0) -> None:
        """Cancel, stop the worker and wait for it."""
        with self._cond:
            self._closed = True
            self.cancel()
            self._cond.notify_all()
        self._thread.join(timeout)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while self._next is None and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                job, self._next = self._next, None
                self._running = job
            assert job is not None
            try:

                def deliver(results: Results, job: _Job = job) -> None:
                    if not job.cancel.is_set():
                        job.on_result(results)

                final = self.searcher.search(job.query, on_fast=deliver, cancel=job.cancel)
                deliver(final)
            except Cancelled:
                pass
            except BaseException as e:  # reported, never kills the worker
                if job.on_error is not None and not job.cancel.is_set():
                    job.on_error(e)
                else:
                    log.warning("search %r failed: %s", job.query.text, e)
            finally:
                with self._cond:
                    self._running = None
                    self._cond.notify_all()
