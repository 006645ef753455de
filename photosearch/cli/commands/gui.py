"""The desktop window (``photosearch``, ``photosearch gui``) and the offline demo.

The interface lives in photosearch.ui, imported only inside these functions: the engine never
imports Qt.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from photosearch.cli.commands.models import cmd_info

GUI_HINT = "(the desktop window needs PySide6 and a display; run `photosearch gui` to try it)"


def _window(
    home: str | None,
    device: str,
    shot: Path | None,
    query: str | None,
    examples: tuple[str, ...] = (),
) -> int:
    """Run the desktop window until it closes (``examples``: queries it offers to try)."""
    try:
        from photosearch.ui.app import run
    except ImportError as e:
        print(f"photosearch: error: the desktop window cannot start: {e}", file=sys.stderr)
        return 1
    return run(home, device, screenshot=shot, query=query, examples=examples)


def cmd_gui(args: argparse.Namespace) -> int:
    """Open the desktop window (``photosearch gui``)."""
    shot = Path(args.screenshot) if getattr(args, "screenshot", None) else None
    return _window(args.home, args.device, shot, getattr(args, "query", None))


def cmd_default(args: argparse.Namespace) -> int:
    """``photosearch`` alone: the window where one can be shown, else the info text."""
    try:
        from photosearch.ui.app import display_available

        usable = display_available()
    except ImportError:
        usable = False
    if usable:
        return cmd_gui(args)
    args.json = False
    code = cmd_info(args)
    print(GUI_HINT)
    return code


def cmd_demo(args: argparse.Namespace) -> int:
    """``photosearch demo``: a library of generated scenes with the small synthetic pack, in a
    new temporary folder (or --home), then the window on it (unless --no-gui)."""
    import tempfile

    from photosearch import demo

    home = Path(args.home) if args.home else Path(tempfile.mkdtemp(prefix="photosearch-demo-"))
    say = (lambda m: None) if args.quiet else (lambda m: print(f"… {m}", file=sys.stderr))
    made = demo.prepare(home, args.photos, said=say)
    print(home)
    where = (
        f"demo library: {home} ({args.photos} scenes of coloured shapes, model pack {made.pack})"
    )
    if args.no_gui:
        print(
            f"{where}; describe shapes, colours and where they are, e.g.:\n"
            + "".join(f'  photosearch --home {home} search "{q}"\n' for q in made.queries[:3])
            + "delete the folder when done",
            file=sys.stderr,
        )
        return 0
    print(
        f"{where}; the window offers example queries. Delete the folder when done.", file=sys.stderr
    )
    shot = Path(args.screenshot) if args.screenshot else None
    return _window(
        str(home), args.device, shot, made.queries[0] if shot else None, tuple(made.queries[:4])
    )
