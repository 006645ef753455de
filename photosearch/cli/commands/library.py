"""The library's folders, settings and health: ``folders``, ``settings``, ``status``,
``doctor``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from photosearch.cli.commands import open_library
from photosearch.cli.output import folder_line, print_json


def cmd_folders(args: argparse.Namespace) -> int:
    with open_library(args, writer=args.action in ("add", "remove")) as lib:
        if args.action == "add":
            _add_folders(lib, args.paths)
        elif args.action == "remove":
            _remove_folders(lib, args.paths)
        else:
            _list_folders(lib, args.json)
    return 0


def _add_folders(lib: Any, paths: list[str]) -> None:
    for p in paths:
        f = lib.add_folder(p)
        print(f"added {f.path}")
    print("run `photosearch index` to index them")


def _remove_folders(lib: Any, paths: list[str]) -> None:
    for p in paths:
        n = lib.remove_folder(p)
        print(f"removed {p} ({n} photos forgotten; the files are untouched)")


def _list_folders(lib: Any, as_json: bool) -> None:
    rows = [
        {"path": str(f.path), "state": f.state, "last_scan": f.last_scan} for f in lib.folders()
    ]
    if as_json:
        print_json(rows)
        return
    if not rows:
        print("no folders yet: photosearch folders add PATH")
    for r in rows:
        print(folder_line(r["path"], r["state"]))


def cmd_settings(args: argparse.Namespace) -> int:
    from photosearch.library import SETTINGS

    if args.name is not None and args.name not in SETTINGS:
        print(
            f"photosearch: error: unknown setting {args.name!r} (known: {', '.join(SETTINGS)})",
            file=sys.stderr,
        )
        return 2
    # A setting is one row, written in one SQLite transaction: fine beside a writer, which
    # reads settings when it uses them.
    with open_library(args, writer=False) as lib:
        if args.name is not None and (args.value is not None or args.reset):
            try:
                lib.set_setting(args.name, None if args.reset else args.value)
            except ValueError as e:
                print(f"photosearch: error: {args.name}: {args.value!r} {e}", file=sys.stderr)
                return 2
        names = [args.name] if args.name else list(SETTINGS)
        values = {n: lib.setting(n) for n in names}
    if args.json:
        print_json(values)
        return 0
    for n, v in values.items():
        shown = "(unset)" if v is None else json.dumps(v)
        print(f"{n} = {shown}    # {SETTINGS[n].help}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    with open_library(args, writer=False) as lib:
        s = lib.status()
    if args.json:
        print_json(s)
        return 0
    if s["model"]:
        print(f"model: {s['model']['name']} ({s['model']['source']}) on {s['device']}")
    else:
        print(f"model: none — {s['model_problem']}")
    n = len(s["folders"])
    print(f"photos: {s['photos']} in {n} folder{'' if n == 1 else 's'}")
    if "indexed" in s:
        print(f"indexed: {s['indexed']}, pending: {s['pending']}, unreadable: {s['errors']}")
    for f in s["folders"]:
        print(f"  {folder_line(f['path'], f['state'])}")
    if s["error_list"]:
        print("unreadable files:")
        for e in s["error_list"]:
            print(f"  ✗ {e['path']}: {e['reason']}")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    with open_library(args, writer=args.repair) as lib:
        problems = lib.doctor(repair=args.repair)
    if not problems:
        print("catalog, vector index and disk agree")
        return 0
    for p in problems:
        print(f"✗ {p}")
    if not args.repair:
        print("run `photosearch doctor --repair` to fix what can be fixed", file=sys.stderr)
    return 1
