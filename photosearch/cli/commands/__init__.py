"""The commands, one module per group (``cmd_*(args) -> exit code``), and the library they
open."""

from __future__ import annotations

import argparse
from typing import Any


def open_library(args: argparse.Namespace, *, writer: bool = True) -> Any:
    """The library, for changing it (``writer``: one process at a time) or only reading it
    (any number, beside a writer: see docs/cli.md, "Several at once")."""
    from photosearch.library import Library

    return Library(args.home, device=args.device, writer=writer)
