"""``index``: bring the catalog up to date; ``index --watch``: then follow the folders."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from photosearch.cli.commands import open_library
from photosearch.cli.output import PhotoBar, print_json, shows_progress

NO_FOLDERS = "no folders in the library yet: photosearch folders add PATH"


def cmd_index(args: argparse.Namespace) -> int:
    if args.watch:
        return cmd_index_watch(args)
    with open_library(args) as lib:
        if not lib.folders():
            print(NO_FOLDERS, file=sys.stderr)
            return 1
        try:
            with PhotoBar(shows_progress(args.quiet)) as progress:
                rep = lib.index_photos(
                    progress=progress,
                    batch_size=args.batch_size,
                    checkpoint_seconds=args.checkpoint_seconds,
                )
        except KeyboardInterrupt:
            print(
                "interrupted: everything indexed so far is kept; run `photosearch index` again "
                "to continue",
                file=sys.stderr,
            )
            return 130
        summary = _index_summary(lib, rep)
    if args.json:
        print_json(summary)
    else:
        _say_indexed(rep, summary["skipped_unchanged"])
    return 0


def _index_summary(lib: Any, rep: Any) -> dict[str, Any]:
    """``index --json``'s document, from the run's report (a library.IndexRun)."""
    r, sw = rep.run, rep.switch
    indexed_now = sw.run.indexed if sw and sw.switched and sw.run else r.indexed
    return {
        "indexed": r.indexed,
        "reused": r.reused,
        "skipped_unchanged": lib.counts(lib.pack.id)["indexed"] - indexed_now,
        "new": rep.new,
        "changed": rep.changed,
        "moved": rep.moved,
        "removed": rep.removed,
        "errors": r.failed,
        "seconds": round(r.seconds, 2),
        "rate": round(r.rate, 2),
        "offline_folders": [str(p) for p in rep.offline],
        "problems": [{"path": str(p), "reason": why} for p, why in rep.problems],
        "error_list": [{"path": p, "reason": why} for p, why in r.errors],
        "switch": sw
        and {
            "pack": sw.pack,
            "switched": sw.switched,
            "indexed": sw.run.indexed if sw.run else 0,
            "problem": sw.problem,
        },
    }


def _say_switch(sw: Any) -> None:
    if sw.switched:
        print(f"switched to the model pack {sw.pack}: every photo is encoded with it")
    elif sw.problem:
        print(f"! {sw.problem}")
    else:
        print(
            f"switching to {sw.pack}: {sw.run.indexed if sw.run else 0} photos encoded with "
            "it so far; run `photosearch index` again to finish (search uses the previous "
            "pack until then)"
        )


def _say_indexed(rep: Any, unchanged: int) -> None:
    r = rep.run
    if rep.switch is not None:
        _say_switch(rep.switch)
    print(
        f"indexed {r.indexed} photos in {r.seconds:.1f} s ({r.rate:.1f}/s); "
        f"{unchanged} unchanged, {rep.moved} moved, {rep.removed} removed, "
        f"{r.failed} unreadable this run"  # `status` counts every unreadable file
    )
    for p, why in r.errors[:20]:
        print(f"  ✗ {p}: {why}")
    if len(r.errors) > 20:
        print(f"  … and {len(r.errors) - 20} more (photosearch status lists them all)")
    for p, why in rep.problems[:10]:
        print(f"  ! {p}: {why}")
    for p in rep.offline:
        print(f"  ! {p}: folder not found (offline?); its photos are kept")


# -- index --watch ---------------------------------------------------------------------------


class _WatchScreen:
    """What ``index --watch`` shows: events on stdout, one line each (JSON with ``--json``), and
    the progress of a pass as a bar on stderr, erased before each event. The watcher's thread
    and the main thread both write: one lock keeps lines whole."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.as_json = args.json
        self.lock = threading.Lock()
        self.bar = PhotoBar(shows_progress(args.quiet), desc="indexing", leave=False)

    def progress(self, p: Any) -> None:  # an indexer.Progress
        with self.lock:
            self.bar(p)

    def close(self) -> None:
        with self.lock:
            self.bar.close()

    def event(self, e: Any) -> None:  # a watcher.WatchEvent
        from photosearch.watcher import PhotosIndexed

        with self.lock:
            self.bar.clear()
            if self.as_json:
                line = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), **e.to_json()}
                print(json.dumps(line, ensure_ascii=True), flush=True)
                return
            print(f"{time.strftime('%H:%M:%S')}  {e.message}", flush=True)
            if isinstance(e, PhotosIndexed):
                for path, why in e.errors[:10]:
                    print(f"  ✗ {path}: {why}", flush=True)
                if len(e.errors) > 10:
                    print(f"  … and {len(e.errors) - 10} more (photosearch status)", flush=True)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _quit_now(signum: int, frame: Any) -> None:
    """A second Ctrl-C while stopping: leave at once. Every batch is its own transaction and
    the vector index is rebuilt from the catalog when it lags, so only that batch is lost."""
    try:
        sys.stdout.flush()
        print("\nquit without waiting for the current batch", file=sys.stderr, flush=True)
    finally:
        os._exit(130)


def _on_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _handle(handler: Any) -> None:
    """SIGINT and SIGTERM to ``handler`` (signal handlers can be set only on the main thread)."""
    if _on_main_thread():
        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)


@contextmanager
def _signals_restored() -> Iterator[None]:
    """SIGINT's and SIGTERM's handlers put back as they were, however the watch ends."""
    handlers = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    try:
        yield
    finally:
        if _on_main_thread():
            signal.signal(signal.SIGINT, handlers[0])
            signal.signal(signal.SIGTERM, handlers[1])


def _until_interrupted(watcher: Any, screen: _WatchScreen) -> bool:
    """Wait for Ctrl-C or SIGTERM (True), or for the watcher's thread to end on its own."""
    try:
        while not watcher.wait(0.5):
            pass
    except KeyboardInterrupt:
        _handle(_quit_now)  # stopping waits for the batch in progress; a second Ctrl-C does not
        screen.close()
        print("stopping after the current batch (Ctrl-C again to quit at once)", file=sys.stderr)
        return True
    return False


def cmd_index_watch(args: argparse.Namespace) -> int:
    """``index --watch``: bring the catalog up to date, then follow the folders until Ctrl-C
    (or SIGTERM), which is a normal end (exit 0). Events are printed one line each."""
    screen = _WatchScreen(args)
    with _signals_restored(), open_library(args) as lib:
        if not lib.folders():
            print(NO_FOLDERS, file=sys.stderr)
            return 1
        _ = lib.pack  # no usable model pack: say so now, not once per pass
        if _on_main_thread():
            signal.signal(signal.SIGTERM, _interrupt)
        watcher = lib.watch(screen.event, progress=screen.progress, batch_size=args.batch_size)
        also = " and answering searches from other terminals" if lib.serve_queries() else ""
        print(f"watching the library's folders{also}; press Ctrl-C to stop", file=sys.stderr)
        interrupted = _until_interrupted(watcher, screen)
        watcher.stop()
        screen.close()
    if not interrupted:  # the watcher's thread ended on its own: a bug, logged
        print("photosearch: error: the folder watcher stopped unexpectedly", file=sys.stderr)
        return 1
    print("stopped watching", file=sys.stderr)
    return 0
