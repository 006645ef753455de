"""``search`` and ``similar``: a query from the command line's options, its results printed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from photosearch.cli.commands import open_library
from photosearch.cli.output import print_results
from photosearch.packs import REFINE_HINT


def _query(args: argparse.Namespace, *, text: str = "", like: str | None = None) -> Any:
    from photosearch.catalog import Filters
    from photosearch.search import Query, folder_filter, parse_date, parse_formats

    filters = Filters(
        folder=folder_filter(args.folder) if args.folder else None,
        after=parse_date(args.after) if args.after else None,
        before=parse_date(args.before) if args.before else None,
        formats=parse_formats(args.type or []),
    )
    return Query(
        text=text,
        like=Path(like) if like else None,
        exclude=tuple(args.exclude or ()),
        filters=filters,
        n=args.n,
        rerank=args.rerank,
        beta=args.beta,
        names=not args.no_names,
    )


def cmd_search(args: argparse.Namespace) -> int:
    query = _query(args, text=args.text or "", like=args.like)
    with open_library(args, writer=False) as lib:
        results = lib.searcher.search(query)
        print_results(results, args.json)
        if not results.can_refine and not args.json:
            _tell_once_what_refining_adds(lib.paths.cache)
    return 0


def _tell_once_what_refining_adds(cache: Path) -> None:
    """The first search with a pack that cannot refine says what refining would add."""
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
    query = _query(args, like=args.image)
    with open_library(args, writer=False) as lib:
        print_results(lib.searcher.search(query), args.json)
    return 0
