"""``search`` and ``similar``: a query from the command line's options, its results printed.

A process that already holds the library (the window, ``index --watch``, ``photosearch serve``)
answers the query over the data directory's socket when one is serving; otherwise the command
opens the library itself (read-only). Either way the query is the same JSON description
(``search.query_from_json``) and the output the same ``Results.to_json()`` document. The
socket path imports nothing heavy: it is what makes a query from a terminal quick.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from photosearch import config, query_socket
from photosearch.cli.output import print_results
from photosearch.errors import PhotosearchError


def _request(args: argparse.Namespace, *, text: str = "", like: str | None = None) -> dict:
    return {
        "op": "search",
        "cwd": os.getcwd(),
        "text": text,
        "like": like,
        "exclude": list(args.exclude or ()),
        "folder": args.folder,
        "after": args.after,
        "before": args.before,
        "type": list(args.type or ()),
        "n": args.n,
        "rerank": args.rerank,
        "beta": args.beta,
        "names": not args.no_names,
        "threshold": args.threshold,
        "sort": args.sort,
        "device": args.device,
        "language": config.query_language(),
    }


def _answer_here(args: argparse.Namespace, request: dict[str, Any]) -> dict[str, Any]:
    from photosearch.cli.commands import open_library
    from photosearch.search import query_from_json

    with open_library(args, writer=False) as lib:
        return lib.searcher.search(query_from_json(request)).to_json()


def _search(args: argparse.Namespace, request: dict[str, Any]) -> int:
    answer = None
    if not os.environ.get("PHOTOSEARCH_NO_SOCKET"):
        answer = query_socket.ask(config.paths(args.home).data, request)
    if answer is not None and "error" in answer:
        raise PhotosearchError(answer["error"])
    doc = answer["results"] if answer is not None else _answer_here(args, request)
    print_results(doc, args.json, show_all=args.all)
    if not doc.get("can_refine", True) and not args.json:
        _tell_once_what_refining_adds(config.paths(args.home).cache)
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    return _search(args, _request(args, text=args.text or "", like=args.like))


def _tell_once_what_refining_adds(cache: Path) -> None:
    """The first search with a pack that cannot refine says what refining would add."""
    from photosearch.hints import REFINE_HINT

    told = cache / ".told-about-refining"
    if told.exists():
        return
    print(REFINE_HINT, file=sys.stderr)
    try:
        cache.mkdir(parents=True, exist_ok=True)
        told.touch()
    except OSError:  # a read-only cache: said again next time, which is no harm
        pass


def cmd_similar(args: argparse.Namespace) -> int:
    return _search(args, _request(args, like=args.image))


def cmd_serve(args: argparse.Namespace) -> int:
    """``serve``: hold the library (read-only) with its models loaded and answer searches from
    other processes over the query socket until Ctrl-C or SIGTERM."""
    import signal
    import time

    from photosearch.cli.commands import open_library
    from photosearch.cli.commands.index import _interrupt, _on_main_thread, _signals_restored

    with _signals_restored(), open_library(args, writer=False) as lib:
        if not lib.serve_queries():
            where = query_socket.socket_path(lib.paths.data)
            why = (
                "another process already answers them"
                if query_socket.serving(lib.paths.data)
                else "this system or this data directory's path allows no local socket"
            )
            print(f"photosearch: error: cannot answer searches at {where}: {why}", file=sys.stderr)
            return 1
        try:
            lib.search("a photo", n=1, rerank=0)  # load the models and the index now
        except PhotosearchError as e:
            print(f"note: {e}", file=sys.stderr)
        if _on_main_thread():
            signal.signal(signal.SIGTERM, _interrupt)  # a normal end, as Ctrl-C is
        print(
            f"answering searches for {lib.paths.data} at "
            f"{query_socket.socket_path(lib.paths.data)}; press Ctrl-C to stop",
            file=sys.stderr,
        )
        try:
            while True:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
    print("stopped answering searches", file=sys.stderr)
    return 0
