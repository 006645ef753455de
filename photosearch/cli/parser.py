"""The argument parser: the global options, then one function per group of commands."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from typing import Any

from photosearch import __version__, config
from photosearch.bounds import check_beta, check_depth, check_threshold

Commands = Any  # what add_subparsers() returns (argparse._SubParsersAction, a private name)


def command(module: str, name: str) -> Callable[[argparse.Namespace], int]:
    """``photosearch.cli.commands.<module>.<name>``, imported when the command runs: building
    the parser imports no command, so a search answered over the query socket starts without
    loading the engine (numpy, ONNX Runtime, FAISS)."""

    def run(args: argparse.Namespace) -> int:
        return int(
            getattr(importlib.import_module(f"photosearch.cli.commands.{module}"), name)(args)
        )

    run.__name__ = run.__qualname__ = name
    return run


# -- argument types --------------------------------------------------------------------------


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _depth(text: str) -> int:
    value = _whole(text)

    try:
        return check_depth(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _checked_number(check: Callable[[float], float]) -> Callable[[str], float]:
    """An argparse type: a number that ``check`` accepts (its ValueError says what is allowed)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        try:
            return check(value)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    return parse


_beta = _checked_number(check_beta)
_threshold = _checked_number(check_threshold)


def _positive(text: str) -> int:
    value = _whole(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


# -- the groups ------------------------------------------------------------------------------


def _global_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--version", action="version", version=f"photosearch {__version__}")
    parser.add_argument(
        "--home",
        metavar="DIR",
        help=f"keep all data under DIR (default: ${config.HOME_ENV} or the system's folders)",
    )
    parser.add_argument(
        "--device",
        choices=["auto", "cpu", "gpu"],
        default="auto",
        help="where models run (default: auto — a working GPU, else the CPU)",
    )
    parser.add_argument(
        "--self-test",
        action="store_true",
        help="check this installation: index the bundled sample photos and search them",
    )
    parser.add_argument(
        "--pack",
        dest="self_test_pack",
        metavar="DIR",
        help="with --self-test: this model pack (default: the bundled one)",
    )


def _add_window_commands(sub: Commands) -> None:
    """``info``, ``gui``, ``demo``."""
    p = sub.add_parser("info", help="show folders, ONNX Runtime providers and installed packs")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=command("models", "cmd_info"))

    p = sub.add_parser("gui", help="open the desktop window (the default with a display)")
    p.add_argument("--screenshot", metavar="PNG", help=argparse.SUPPRESS)
    p.add_argument("--query", metavar="TEXT", help=argparse.SUPPRESS)
    p.set_defaults(func=command("gui", "cmd_gui"))

    p = sub.add_parser(
        "demo",
        help="try photosearch offline: a library of generated scenes, then the window",
        description="Make a demo library in a new temporary folder (or --home): a few hundred "
        "generated scenes of coloured shapes, indexed with the small model pack trained on "
        "them; then open the window on it. Needs a source checkout (or a bundle built with the "
        "synthetic pack inside, which demos its self-test samples).",
    )
    p.add_argument("--photos", type=_positive, default=200, help="how many scenes (default 200)")
    p.add_argument("--no-gui", action="store_true", help="only make the library; print its path")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--screenshot", metavar="PNG", help=argparse.SUPPRESS)
    p.set_defaults(func=command("gui", "cmd_demo"))


def _install_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--use", action="store_true", help="make it the active pack")
    p.add_argument("--replace", action="store_true", help="replace an installed pack of that name")


def _add_models_fetching(msub: Commands) -> None:
    """``models download``, ``models prepare``: packs from the network."""
    p = msub.add_parser(
        "download",
        help="download a ready model (no torch needed) or pack, verify, install",
        description="Download a ready model by its name in `photosearch models available` "
        "(default: the recommended one; published ONNX graphs made into a verified pack here), "
        "or an exported model pack: owner/name[@revision] on the Hugging Face Hub (HF_ENDPOINT "
        "chooses the server), a folder URL holding manifest.json, or a .zip URL. Every file is "
        "checked before anything is installed; an interrupted download resumes where it "
        "stopped when run again.",
    )
    p.add_argument(
        "source",
        nargs="?",
        metavar="NAME|URL|HF_REPO",
        help="a ready model's name (default: the recommended one), a repository or a URL",
    )
    p.add_argument("--revision", help="branch, tag or commit of a Hugging Face repository")
    _install_options(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress")
    p.set_defaults(func=command("models", "cmd_models_download"))
    p = msub.add_parser(
        "prepare",
        help="download open_clip weights and export a pack (needs the 'export' extra)",
        description="Download a catalogue model's open_clip weights (resumable, verified), "
        "export them to a pack with the parity gate, install it. `photosearch models "
        "available` lists the choices.",
    )
    p.add_argument(
        "name", nargs="?", metavar="NAME", help="a catalogue name (default: the recommended one)"
    )
    _install_options(p)
    p.add_argument(
        "--keep-weights", action="store_true", help="keep the downloaded weights in the cache"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress")
    p.set_defaults(func=command("models", "cmd_models_prepare"))


def _add_models_installed(msub: Commands) -> None:
    """``models available``, ``remove``, ``verify``, ``list``, ``import``, ``use``."""
    p = msub.add_parser(
        "available",
        help="the curated models: ready downloads and what `prepare` can make, with size, "
        "speed, quality (and its source), languages, licence",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=command("models", "cmd_models_available"))
    p = msub.add_parser("remove", help="uninstall a pack and forget the vectors it made")
    p.add_argument("name")
    p.add_argument("--force", action="store_true", help="even the active pack")
    p.set_defaults(func=command("models", "cmd_models_remove"))
    p = msub.add_parser("verify", help="check a pack's manifest and every file's checksum")
    p.add_argument("path", nargs="?", help="a pack folder (default: the active pack)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=command("models", "cmd_models_verify"))
    p = msub.add_parser("list", help="list installed packs")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=command("models", "cmd_info"))
    p = msub.add_parser("import", help="verify a pack folder or zip file and install it")
    p.add_argument("path", metavar="PATH", help="a pack folder, or a zip file holding one")
    _install_options(p)
    p.set_defaults(func=command("models", "cmd_models_import"))
    p = msub.add_parser(
        "add-reranker",
        help="give a pack (default: the active one) the reranker of another, so it can refine",
        description="Copy the cross-attention reranker of SOURCE (an installed pack's name or a "
        "pack folder, e.g. a CoCa pack from `models prepare`) into the pack --to (default: the "
        "active one). Its dual encoder and the vectors it made are kept; the pack is verified "
        "and replaced in one step.",
    )
    p.add_argument("source", metavar="SOURCE")
    p.add_argument("--to", metavar="NAME", help="the installed pack to extend (default: active)")
    p.set_defaults(func=command("models", "cmd_models_add_reranker"))
    p = msub.add_parser("use", help="make an installed pack the active one")
    p.add_argument("name")
    p.set_defaults(func=command("models", "cmd_models_use"))


def _add_models(sub: Commands) -> None:
    models = sub.add_parser(
        "models", help="model packs: download, prepare, import, list, verify, use, remove"
    )
    msub = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    _add_models_fetching(msub)
    _add_models_installed(msub)


def _add_folders_and_index(sub: Commands) -> None:
    p = sub.add_parser("folders", help="the folders the library watches: add, remove, list")
    p.add_argument("action", choices=["add", "remove", "list"])
    p.add_argument("paths", nargs="*", metavar="PATH")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=command("library", "cmd_folders"))

    p = sub.add_parser("index", help="scan the folders and encode new or changed photos")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--watch",
        action="store_true",
        help="then keep watching the folders and index changes as they happen, until Ctrl-C "
        "(events one per line; with --json, one JSON object per line)",
    )
    p.add_argument("--batch-size", type=_positive, default=32, help=argparse.SUPPRESS)
    p.add_argument("--checkpoint-seconds", type=float, default=30.0, help=argparse.SUPPRESS)
    p.set_defaults(func=command("index", "cmd_index"))


def _query_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-n", type=_positive, default=20, help="how many results (default 20)")
    p.add_argument(
        "--rerank",
        metavar="K",
        type=_depth,
        help="refine the top K with the reranker; 0 = fast only (default: the library's, 20)",
    )
    p.add_argument(
        "--beta",
        metavar="B",
        type=_beta,
        help="weight of the reranker's score, 0 to 1000 (default: the pack's)",
    )
    p.add_argument(
        "--not",
        dest="exclude",
        metavar="TEXT",
        action="append",
        help="leave out photos this describes better than the query (repeatable)",
    )
    p.add_argument("--folder", metavar="DIR", help="only photos under this folder")
    p.add_argument("--after", metavar="DATE", help="only photos taken on or after (YYYY[-MM[-DD]])")
    p.add_argument("--before", metavar="DATE", help="only photos taken before (YYYY[-MM[-DD]])")
    p.add_argument(
        "--type",
        metavar="EXT",
        action="append",
        help="only this file type: jpg, png, heic, … (repeatable)",
    )
    p.add_argument("--no-names", action="store_true", help="do not match file and folder names")
    p.add_argument(
        "--all",
        action="store_true",
        help="list the weaker matches too (below the relevance cut-off); --json always has them",
    )
    p.add_argument(
        "--threshold",
        metavar="P",
        type=_threshold,
        help="relevance a photo needs to count as a match, 0 to 1 (default: the pack's)",
    )
    p.add_argument(
        "--sort",
        choices=("relevance", "date"),
        default="relevance",
        help="order of the matches: best first (default), or by date taken, newest first",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print the results as JSON (every field: docs/cli.md), weaker matches included",
    )


def _add_search(sub: Commands) -> None:
    """``search``, ``similar``."""
    p = sub.add_parser(
        "search",
        help="find photos matching a description",
        description="Find photos matching a description: fast search over every photo, then "
        "the top K refined by the reranker (when the model pack has one).",
    )
    p.add_argument("text", nargs="?", default="", help="what the photo shows")
    _query_options(p)
    p.add_argument("--like", metavar="IMAGE", help="an example image (with or without text)")
    p.set_defaults(func=command("search", "cmd_search"))

    p = sub.add_parser("similar", help="find photos that look like an image")
    p.add_argument("image")
    _query_options(p)
    p.set_defaults(func=command("search", "cmd_similar"))

    p = sub.add_parser(
        "serve",
        help="answer searches from other terminals quickly (keeps the models loaded)",
        description="Hold the library read-only with its models loaded and answer `search` and "
        "`similar` from other processes over an owner-only socket in the data directory, until "
        "Ctrl-C. The window and `index --watch` do the same while they run.",
    )
    p.set_defaults(func=command("search", "cmd_serve"))


def _add_upkeep(sub: Commands) -> None:
    """``settings``, ``status``, ``doctor``."""
    p = sub.add_parser(
        "settings",
        help="show or change settings (rerank depth, β, token cache)",
        description="Without NAME: every setting. With NAME: that one; with VALUE: set it.",
    )
    p.add_argument("name", nargs="?", metavar="NAME")
    p.add_argument("value", nargs="?", metavar="VALUE")
    p.add_argument("--reset", action="store_true", help="back to the default")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=command("library", "cmd_settings"))

    p = sub.add_parser("status", help="photos, indexed, pending, unreadable files, model")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=command("library", "cmd_status"))

    p = sub.add_parser("doctor", help="check that catalog, vector index and disk agree")
    p.add_argument("--repair", action="store_true", help="rebuild what can be rebuilt")
    p.set_defaults(func=command("library", "cmd_doctor"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="photosearch",
        description="Find photos on your own disks from a typed description.",
    )
    _global_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_window_commands(sub)
    _add_models(sub)
    _add_folders_and_index(sub)
    _add_search(sub)
    _add_upkeep(sub)
    for command_parser in _commands(parser).values():
        _home_after_the_command(command_parser)
    return parser


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The parsers of ``parser``'s sub-commands, by name (none: empty)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def command_parser(parser: argparse.ArgumentParser, *names: str) -> argparse.ArgumentParser:
    """The parser of the command ``names`` (e.g. "models", "download"), for its usage errors;
    ``parser`` itself when there is none by that name."""
    for name in names:
        found = _commands(parser).get(name)
        if found is None:
            break
        parser = found
    return parser


def _home_after_the_command(parser: argparse.ArgumentParser) -> None:
    """``--home`` is accepted after the command too (``photosearch demo --home DIR``): absent
    there, it leaves the global option's value alone."""
    parser.add_argument("--home", metavar="DIR", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    for sub in _commands(parser).values():
        _home_after_the_command(sub)
