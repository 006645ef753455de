"""The ``photosearch`` command line: a thin face on the engine, for people and for scripts.

Exit codes: 0 ok, 1 the command failed (the reason on stderr), 2 a usage error, 130 Ctrl-C.
``--json`` output shapes are stable and documented in docs/cli.md. The parser is in
``parser``, the commands in ``commands``, what they print in ``output``.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sqlite3
import sys
import threading
from collections.abc import Iterator

from photosearch.cli.parser import build_parser, command, command_parser
from photosearch.errors import PhotosearchError

__all__ = ["build_parser", "main"]


@contextlib.contextmanager
def _honour_ctrl_c() -> Iterator[None]:
    """Make Ctrl-C (SIGINT) stop the command even when it was started with SIGINT ignored.

    A non-interactive shell starts its background jobs that way (``photosearch index --watch &``
    in a script, a CI runner), and Python then never raises KeyboardInterrupt: ``index --watch``
    would run on after ``kill -INT``, which is how it is documented to stop. The disposition
    is put back when the command ends (``main`` may run inside another program, or a test)."""
    main_thread = threading.current_thread() is threading.main_thread()
    if not (main_thread and signal.getsignal(signal.SIGINT) is signal.SIG_IGN):
        yield
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """The usage errors argparse cannot see by itself (exit 2)."""
    if args.command == "folders" and args.action in ("add", "remove") and not args.paths:
        command_parser(parser, "folders").error(f"folders {args.action} needs at least one PATH")
    if args.command == "search" and not args.text.strip() and not args.like:
        command_parser(parser, "search").error(
            "search needs a description, or an example image with --like"
        )
    if args.self_test_pack and not args.self_test:
        parser.error("--pack goes with --self-test")


def _run(args: argparse.Namespace) -> int:
    """The command, its failures turned into a line on stderr and an exit code."""
    try:
        return int(args.func(args))
    except PhotosearchError as e:
        print(f"photosearch: error: {e}", file=sys.stderr)
        return 1
    except sqlite3.Error as e:
        print(f"photosearch: error: the catalog database failed: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `photosearch search … | head`
        return 0
    except OSError as e:  # a full disk, an unwritable --home, …
        where = f" ({e.filename})" if e.filename else ""
        print(f"photosearch: error: {e.strerror or e}{where}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("photosearch: interrupted", file=sys.stderr)
        return 130


def main(argv: list[str] | None = None) -> int:
    # File names need not be valid UTF-8: print them as the bytes they are.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="surrogateescape")
    with _honour_ctrl_c():
        parser = build_parser()
        args = parser.parse_args(argv)
        _check(parser, args)
        if args.self_test:
            from photosearch import selftest

            return selftest.main(args.self_test_pack, args.device)
        if not getattr(args, "func", None):
            args.func = command("gui", "cmd_default")
        return _run(args)
