"""The ``photosearch`` command line: a thin face on the engine, for people and for scripts.

Exit codes: 0 ok, 1 the command failed (the reason on stderr), 2 a usage error, 130 Ctrl-C.
``--json`` output shapes are stable and documented in docs/cli.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

from photosearch import __version__, config, modelpack
from photosearch.errors import PhotosearchError


def _pack_summary(pack: modelpack.ModelPack) -> dict[str, Any]:
    m = pack.manifest
    r = pack.reranker
    return {
        "name": pack.name,
        "path": str(pack.path),
        "model": m["source"].get("model"),
        "pretrained": m["source"].get("pretrained"),
        "embedding_dim": pack.embedding_dim,
        "image_size": list(pack.image.size),
        "precision": {"image": m["image"].get("precision"), "text": m["text"].get("precision")},
        "reranker": r.source.get("model") if r else None,
        "size_mb": round(sum(f["size"] for f in m["files"].values()) / 1e6, 1),
    }


def _print_json(data: Any) -> None:
    # ASCII escapes keep the document valid UTF-8 whatever the file names: a name that is not
    # UTF-8 comes out as \udcXX escapes, which os.fsencode() turns back into its bytes.
    print(json.dumps(data, indent=2, ensure_ascii=True))


def _open(args: argparse.Namespace, *, writer: bool = True):
    """The library, for changing it (``writer``: one process at a time) or only reading it
    (any number, beside a writer: see docs/cli.md, "Several at once")."""
    from photosearch.library import Library

    return Library(args.home, device=args.device, writer=writer)


# -- the desktop window ----------------------------------------------------------------------

GUI_HINT = "(the desktop window needs PySide6 and a display; run `photosearch gui` to try it)"


def _window(home: str | None, device: str, shot: Path | None, query: str | None) -> int:
    """Run the desktop window until it closes. The interface lives in photosearch.ui, imported
    only here: the engine never imports Qt."""
    try:
        from photosearch.ui.app import run
    except ImportError as e:
        print(f"photosearch: error: the desktop window cannot start: {e}", file=sys.stderr)
        return 1
    return run(home, device, screenshot=shot, query=query)


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
    print(
        f"demo library: {home} ({args.photos} scenes, model pack {made.pack}); try:\n"
        + "".join(f'  photosearch --home {home} search "{q}"\n' for q in made.queries[:3])
        + "delete the folder when done",
        file=sys.stderr,
    )
    if args.no_gui:
        return 0
    shot = Path(args.screenshot) if args.screenshot else None
    return _window(str(home), args.device, shot, made.queries[0] if shot else None)


# -- info and models -------------------------------------------------------------------------


def cmd_info(args: argparse.Namespace) -> int:
    import onnxruntime as ort

    from photosearch.encoders import candidate_providers

    p = config.paths(args.home)
    packs = []
    for folder in modelpack.list_installed(p.models):
        try:
            packs.append(_pack_summary(modelpack.load(folder)))
        except PhotosearchError as e:
            packs.append({"path": str(folder), "error": str(e)})
    info = {
        "version": __version__,
        "home": {k: str(v) for k, v in vars(p).items()},
        "onnxruntime": ort.__version__,
        "providers_available": ort.get_available_providers(),
        "providers_tried": candidate_providers("auto"),
        "model_packs": packs,
    }
    if getattr(args, "json", False):
        _print_json(info)
        return 0
    print(f"photosearch {__version__}")
    print(f"data:   {p.data}\nmodels: {p.models}\ncache:  {p.cache}")
    print(f"ONNX Runtime {ort.__version__}; providers: {', '.join(info['providers_available'])}")
    if not packs:
        print("no model pack installed (import one with: photosearch models import PACK_DIR)")
    for s in packs:
        if "error" in s:
            print(f"  ✗ {s['path']}: {s['error']}")
        else:
            print(
                f"  ✓ {s['name']}: {s['model']} ({s['pretrained']}), {s['embedding_dim']}-d, "
                f"reranker: {s['reranker'] or 'none'}, {s['size_mb']} MB"
            )
    return 0


def cmd_models_verify(args: argparse.Namespace) -> int:
    if args.path:
        folder = Path(args.path)
    else:
        with _open(args, writer=False) as lib:
            folder = lib.pack.path
    from photosearch.encoders import check_pack

    pack = modelpack.verify(folder, full=True, record=not args.path)  # never write into a source
    check_pack(pack)
    s = _pack_summary(pack)
    if args.json:
        _print_json(s)
    else:
        print(
            f"ok: {s['name']} ({len(pack.manifest['files'])} files, checksums match, "
            "encoders load and give the manifest's shapes)"
        )
    return 0


def cmd_models_import(args: argparse.Namespace) -> int:
    from photosearch import acquire

    with _open(args) as lib:
        pack = acquire.install(
            lib, Path(args.path), activate=True if args.use else None, replace=args.replace
        )
        _say_installed(lib, pack, "imported")
    return 0


def _say_installed(lib: Any, pack: modelpack.ModelPack, verb: str) -> None:
    try:
        current: modelpack.ModelPack | None = lib.pack
    except PhotosearchError as e:  # the active pack is broken or gone: the install still worked
        print(f"photosearch: warning: the active model pack cannot be used: {e}", file=sys.stderr)
        current = None
    active = current is not None and current.path == pack.path
    print(f"{verb} {pack.name} into {pack.path}{' (active)' if active else ''}")
    if lib.pending_pack == pack.path.name and current is not None:
        print(
            f"run `photosearch index` to encode your photos with it; search keeps using "
            f"{current.name} until that is done"
        )


def _transfer_progress(quiet: bool) -> Any:
    """A progress callback for downloads: a bar on a terminal, a line per step otherwise."""
    tty = sys.stderr.isatty() and not quiet
    last = [0.0, ""]

    def show(p: Any) -> None:
        if quiet:
            return
        if p.total is None or not tty:
            if p.message != last[1]:
                if tty:
                    sys.stderr.write("\r\033[K")
                print(f"… {p.message}", file=sys.stderr, flush=True)
                last[1] = p.message
            return
        if time.monotonic() - last[0] < 0.1 and p.done < p.total:
            return
        last[0] = time.monotonic()
        pct = 100 * p.done / p.total if p.total else 100
        bar = "█" * int(24 * pct / 100) + "·" * (24 - int(24 * pct / 100))
        sys.stderr.write(
            f"\r{bar} {p.done / 1e6:,.1f}/{p.total / 1e6:,.1f} MB ({pct:.0f}%)  "
            f"{p.rate / 1e6:.1f} MB/s  ETA {_duration(p.eta)}\033[K"
        )
        sys.stderr.flush()

    return show


def _resumable(run: Any) -> int:
    try:
        return run()
    except KeyboardInterrupt:
        print(
            "\ninterrupted: nothing was installed; run the same command again to resume the "
            "download where it stopped",
            file=sys.stderr,
        )
        return 130


def cmd_models_download(args: argparse.Namespace) -> int:
    from photosearch import acquire

    def run() -> int:
        with _open(args) as lib:
            pack = acquire.download_pack(
                lib,
                args.source,
                revision=args.revision,
                progress=_transfer_progress(args.quiet),
                activate=True if args.use else None,
                replace=args.replace,
            )
            _say_installed(lib, pack, "downloaded")
        return 0

    return _resumable(run)


def cmd_models_prepare(args: argparse.Namespace) -> int:
    from photosearch import acquire

    chosen = acquire.choice(args.name)
    problem = acquire.export_extra_problem()
    if problem is not None:
        print(
            f"photosearch: error: `models prepare` exports open_clip weights, which needs the "
            f"'export' extra (torch, open_clip_torch, onnx); it is not installed ({problem}).\n"
            "Install it with:  pip install 'photosearch[export]'\n"
            "or download a ready pack instead:  photosearch models download URL|HF_REPO",
            file=sys.stderr,
        )
        return 1
    print(
        f"preparing {chosen.name}: {chosen.title}; about {chosen.download_mb:,} MB to "
        f"download, {chosen.pack_mb:,} MB installed",
        file=sys.stderr,
    )

    def run() -> int:
        with _open(args) as lib:
            pack = acquire.prepare(
                lib,
                chosen,
                progress=_transfer_progress(args.quiet),
                activate=True if args.use else None,
                replace=args.replace,
                keep_weights=args.keep_weights,
            )
            _say_installed(lib, pack, "prepared")
        return 0

    return _resumable(run)


def cmd_models_available(args: argparse.Namespace) -> int:
    from photosearch import acquire

    rows = [
        {
            "name": c.name,
            "title": c.title,
            "default": c.name == acquire.DEFAULT,
            "model": c.encoder.model,
            "pretrained": c.encoder.tag,
            "reranker": f"{c.reranker.model}:{c.reranker.tag}" if c.reranker else None,
            "download_mb": c.download_mb,
            "pack_mb": c.pack_mb,
            "speed": c.speed,
            "quality": c.quality,
        }
        for c in acquire.CATALOGUE
    ]
    if args.json:
        _print_json(rows)
        return 0
    for r in rows:
        print(f"{r['name']}{'  (default)' if r['default'] else ''}: {r['title']}")
        print(f"    download about {r['download_mb']:,} MB, installed about {r['pack_mb']:,} MB")
        print(f"    speed: {r['speed']}\n    quality: {r['quality']}")
    print("prepare one with: photosearch models prepare [NAME]  (needs the 'export' extra)")
    return 0


def cmd_models_remove(args: argparse.Namespace) -> int:
    with _open(args) as lib:
        lib.remove_pack(args.name, force=args.force)
        try:
            now = lib.pack.name
        except PhotosearchError:
            now = None
    print(f"removed {args.name}" + (f"; active model pack: {now}" if now else ""))
    if now is None:
        print("no model pack is installed now: search needs one", file=sys.stderr)
    return 0


def cmd_models_use(args: argparse.Namespace) -> int:
    with _open(args) as lib:
        now = lib.use_pack(args.name)
        current = lib.pack.name
    if now:
        print(f"active model pack: {args.name} (run `photosearch index` to encode with it)")
    else:
        print(
            f"switching to {args.name}: run `photosearch index` to encode your photos with it; "
            f"search keeps using {current} until that is done, then switches"
        )
    return 0


# -- folders ---------------------------------------------------------------------------------


def cmd_folders(args: argparse.Namespace) -> int:
    with _open(args, writer=args.action in ("add", "remove")) as lib:
        if args.action == "add":
            for p in args.paths:
                f = lib.add_folder(p)
                print(f"added {f.path}")
            print("run `photosearch index` to index them")
        elif args.action == "remove":
            for p in args.paths:
                n = lib.remove_folder(p)
                print(f"removed {p} ({n} photos forgotten; the files are untouched)")
        else:
            rows = [
                {"path": str(f.path), "state": f.state, "last_scan": f.last_scan}
                for f in lib.folders()
            ]
            if args.json:
                _print_json(rows)
            elif not rows:
                print("no folders yet: photosearch folders add PATH")
            for r in rows if not args.json else []:
                print(f"{r['path']}{'' if r['state'] == 'ok' else '  (' + r['state'] + ')'}")
    return 0


# -- indexing --------------------------------------------------------------------------------


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    s = int(seconds)
    return (
        f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
    )


def cmd_index(args: argparse.Namespace) -> int:
    from photosearch.indexer import Progress

    if args.watch:
        return cmd_index_watch(args)

    tty = sys.stderr.isatty() and not args.quiet
    last = [0.0]

    def progress(p: Progress) -> None:
        if not tty or (time.monotonic() - last[0] < 0.1 and p.done < p.total):
            return
        last[0] = time.monotonic()
        pct = 100 * p.done / p.total if p.total else 100
        width = 24
        bar = "█" * int(width * pct / 100) + "·" * (width - int(width * pct / 100))
        sys.stderr.write(
            f"\r{bar} {p.done}/{p.total} ({pct:.0f}%)  {p.rate:.1f} photos/s  "
            f"ETA {_duration(p.eta)}  {p.failed} unreadable   "
        )
        sys.stderr.flush()

    with _open(args) as lib:
        if not lib.folders():
            print("no folders in the library yet: photosearch folders add PATH", file=sys.stderr)
            return 1
        try:
            rep = lib.index_photos(
                progress=progress,
                batch_size=args.batch_size,
                checkpoint_seconds=args.checkpoint_seconds,
            )
        except KeyboardInterrupt:
            if tty:
                sys.stderr.write("\n")
            print(
                "interrupted: everything indexed so far is kept; run `photosearch index` again "
                "to continue",
                file=sys.stderr,
            )
            return 130
        if tty:
            sys.stderr.write("\n")
        r = rep.run
        summary = {
            "indexed": r.indexed,
            "reused": r.reused,
            "skipped_unchanged": None,
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
        }
        counts = lib.counts(lib.pack.id)
        summary["skipped_unchanged"] = counts["indexed"] - (
            rep.switch.run.indexed
            if rep.switch and rep.switch.switched and rep.switch.run
            else r.indexed
        )
        sw = rep.switch
        summary["switch"] = sw and {
            "pack": sw.pack,
            "switched": sw.switched,
            "indexed": sw.run.indexed if sw.run else 0,
            "problem": sw.problem,
        }
    if args.json:
        _print_json(summary)
        return 0
    if sw is not None:
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
    print(
        f"indexed {r.indexed} photos in {r.seconds:.1f} s ({r.rate:.1f}/s); "
        f"{summary['skipped_unchanged']} unchanged, {rep.moved} moved, {rep.removed} removed, "
        f"{r.failed} unreadable"
    )
    for p, why in r.errors[:20]:
        print(f"  ✗ {p}: {why}")
    if len(r.errors) > 20:
        print(f"  … and {len(r.errors) - 20} more (photosearch status lists them all)")
    for p, why in rep.problems[:10]:
        print(f"  ! {p}: {why}")
    for p in rep.offline:
        print(f"  ! {p}: folder not found (offline?); its photos are kept")
    return 0


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


def cmd_index_watch(args: argparse.Namespace) -> int:
    """``index --watch``: bring the catalog up to date, then follow the folders until Ctrl-C
    (or SIGTERM), which is a normal end (exit 0). Events are printed one line each."""
    import signal
    import threading

    from photosearch.indexer import Progress
    from photosearch.watcher import PhotosIndexed, WatchEvent

    tty = sys.stderr.isatty() and not args.quiet
    out = threading.Lock()
    shown = [False, 0.0]  # a progress line is on screen; when it was drawn

    def clear() -> None:
        if shown[0]:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()
            shown[0] = False

    def progress(p: Progress) -> None:
        if not tty or not p.total or (time.monotonic() - shown[1] < 0.1 and p.done < p.total):
            return
        with out:
            shown[0], shown[1] = True, time.monotonic()
            sys.stderr.write(
                f"\rindexing {p.done}/{p.total}  {p.rate:.1f} photos/s  ETA {_duration(p.eta)}"
                "\033[K"
            )
            sys.stderr.flush()

    def on_event(e: WatchEvent) -> None:
        with out:
            clear()
            if args.json:
                line = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), **e.to_json()}
                print(json.dumps(line, ensure_ascii=True), flush=True)
                return
            print(f"{time.strftime('%H:%M:%S')}  {e.message}", flush=True)
            if isinstance(e, PhotosIndexed):
                for path, why in e.errors[:10]:
                    print(f"  ✗ {path}: {why}", flush=True)
                if len(e.errors) > 10:
                    print(f"  … and {len(e.errors) - 10} more (photosearch status)", flush=True)

    main_thread = threading.current_thread() is threading.main_thread()
    handlers = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    interrupted = False
    try:
        with _open(args) as lib:
            if not lib.folders():
                print(
                    "no folders in the library yet: photosearch folders add PATH", file=sys.stderr
                )
                return 1
            _ = lib.pack  # no usable model pack: say so now, not once per pass
            if main_thread:
                signal.signal(signal.SIGTERM, _interrupt)
            watcher = lib.watch(on_event, progress=progress, batch_size=args.batch_size)
            print("watching the library's folders; press Ctrl-C to stop", file=sys.stderr)
            try:
                while not watcher.wait(0.5):
                    pass
            except KeyboardInterrupt:
                interrupted = True
                if main_thread:  # stopping waits for the batch in progress; a second
                    signal.signal(signal.SIGINT, _quit_now)  # Ctrl-C does not
                    signal.signal(signal.SIGTERM, _quit_now)
                with out:
                    clear()
                print(
                    "stopping after the current batch (Ctrl-C again to quit at once)",
                    file=sys.stderr,
                )
            watcher.stop()
            with out:
                clear()
    finally:
        if main_thread:
            signal.signal(signal.SIGINT, handlers[0])
            signal.signal(signal.SIGTERM, handlers[1])
    if not interrupted:  # the watcher's thread ended on its own: a bug, logged
        print("photosearch: error: the folder watcher stopped unexpectedly", file=sys.stderr)
        return 1
    print("stopped watching", file=sys.stderr)
    return 0


# -- search ----------------------------------------------------------------------------------


def _num(x: float | None) -> float | None:
    # A photo found by name before it has a vector has no score: null, never NaN (not JSON).
    return None if x is None or x != x else round(x, 6)


def _result_json(r) -> dict[str, Any]:
    p = r.photo
    return {
        "rank": r.rank,
        "path": str(p.path),
        "score": _num(r.score),
        "fast_score": _num(r.fast_score),
        "rerank_score": _num(r.rerank_score),
        "matched": r.matched,
        "taken": p.taken,
        "format": p.format,
        "width": p.width,
        "height": p.height,
        "online": p.online,
    }


def _print_results(res, as_json: bool) -> None:
    if as_json:
        _print_json(
            {
                "results": [_result_json(r) for r in res.results],
                "refined": res.refined,
                "rerank": res.rerank,
                "beta": res.beta,
                "device": res.device,
                "note": res.note,
                "timing": res.timing.to_json(),
            }
        )
        return
    if not res.results:
        print("no results (is the library indexed? photosearch status)", file=sys.stderr)
    for r in res.results:
        mark = {"name": "  [name]", "both": "  [name]"}.get(r.matched, "")
        print(f"{r.score:8.4f}  {r.path}{mark}")
    t = res.timing
    how = f"refined the top {res.rerank} on {res.device}" if res.refined else "fast search"
    print(
        f"{len(res.results)} results, {how}: {t.total_ms:.0f} ms (encode {t.encode_ms:.0f}, "
        f"search {t.search_ms + t.names_ms:.0f}, rerank {t.rerank_ms:.0f})",
        file=sys.stderr,
    )
    if res.note:
        print(f"note: {res.note}", file=sys.stderr)


def _query(args: argparse.Namespace, *, text: str = "", like: str | None = None):
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
    with _open(args, writer=False) as lib:
        _print_results(lib.searcher.search(query), args.json)
    return 0


def cmd_similar(args: argparse.Namespace) -> int:
    query = _query(args, like=args.image)
    with _open(args, writer=False) as lib:
        _print_results(lib.searcher.search(query), args.json)
    return 0


# -- settings --------------------------------------------------------------------------------


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
    with _open(args, writer=False) as lib:
        if args.name is not None and (args.value is not None or args.reset):
            try:
                lib.set_setting(args.name, None if args.reset else args.value)
            except ValueError as e:
                print(f"photosearch: error: {args.name}: {args.value!r} {e}", file=sys.stderr)
                return 2
        names = [args.name] if args.name else list(SETTINGS)
        values = {n: lib.setting(n) for n in names}
    if args.json:
        _print_json(values)
        return 0
    for n, v in values.items():
        shown = "(unset)" if v is None else json.dumps(v)
        print(f"{n} = {shown}    # {SETTINGS[n].help}")
    return 0


# -- health ----------------------------------------------------------------------------------


def cmd_status(args: argparse.Namespace) -> int:
    with _open(args, writer=False) as lib:
        s = lib.status()
    if args.json:
        _print_json(s)
        return 0
    if s["model"]:
        print(f"model: {s['model']['name']} ({s['model']['source']}) on {s['device']}")
    else:
        print(f"model: none — {s['model_problem']}")
    print(f"photos: {s['photos']} in {len(s['folders'])} folders")
    if "indexed" in s:
        print(f"indexed: {s['indexed']}, pending: {s['pending']}, unreadable: {s['errors']}")
    for f in s["folders"]:
        print(f"  {f['path']}{'' if f['state'] == 'ok' else '  (' + f['state'] + ')'}")
    if s["error_list"]:
        print("unreadable files:")
        for e in s["error_list"]:
            print(f"  ✗ {e['path']}: {e['reason']}")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    with _open(args, writer=args.repair) as lib:
        problems = lib.doctor(repair=args.repair)
    if not problems:
        print("catalog, vector index and disk agree")
        return 0
    for p in problems:
        print(f"✗ {p}")
    if not args.repair:
        print("run `photosearch doctor --repair` to fix what can be fixed", file=sys.stderr)
    return 1


# -- parser ----------------------------------------------------------------------------------


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
    p.add_argument("--json", action="store_true")


def _depth(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    from photosearch.search import check_depth  # the search command imports it next anyway

    try:
        return check_depth(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _beta(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    from photosearch.search import check_beta

    try:
        return check_beta(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="photosearch",
        description="Find photos on your own disks from a typed description.",
    )
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
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("info", help="show folders, ONNX Runtime providers and installed packs")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("gui", help="open the desktop window (the default with a display)")
    p.add_argument("--screenshot", metavar="PNG", help=argparse.SUPPRESS)
    p.add_argument("--query", metavar="TEXT", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_gui)

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
    p.set_defaults(func=cmd_demo)

    models = sub.add_parser(
        "models", help="model packs: download, prepare, import, list, verify, use, remove"
    )
    msub = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    p = msub.add_parser(
        "download",
        help="download a ready pack (a Hugging Face repository or a URL), verify, install",
        description="Download an exported model pack: owner/name[@revision] on the Hugging "
        "Face Hub (HF_ENDPOINT chooses the server), a folder URL holding manifest.json, or a "
        ".zip URL. Every file's checksum is checked before anything is installed; an "
        "interrupted download resumes where it stopped when run again.",
    )
    p.add_argument("source", metavar="URL|HF_REPO")
    p.add_argument("--revision", help="branch, tag or commit of a Hugging Face repository")
    p.add_argument("--use", action="store_true", help="make it the active pack")
    p.add_argument("--replace", action="store_true", help="replace an installed pack of that name")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress")
    p.set_defaults(func=cmd_models_download)
    p = msub.add_parser(
        "prepare",
        help="download open_clip weights and export a pack (needs the 'export' extra)",
        description="Download a catalogue model's open_clip weights (resumable, verified), "
        "export them to a pack with the parity gate, install it. `photosearch models "
        "available` lists the choices.",
    )
    p.add_argument("name", nargs="?", metavar="NAME", help="a catalogue name (default: the first)")
    p.add_argument("--use", action="store_true", help="make it the active pack")
    p.add_argument("--replace", action="store_true", help="replace an installed pack of that name")
    p.add_argument(
        "--keep-weights", action="store_true", help="keep the downloaded weights in the cache"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress")
    p.set_defaults(func=cmd_models_prepare)
    p = msub.add_parser("available", help="the models `prepare` can make: size, speed and quality")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models_available)
    p = msub.add_parser("remove", help="uninstall a pack and forget the vectors it made")
    p.add_argument("name")
    p.add_argument("--force", action="store_true", help="even the active pack")
    p.set_defaults(func=cmd_models_remove)
    p = msub.add_parser("verify", help="check a pack's manifest and every file's checksum")
    p.add_argument("path", nargs="?", help="a pack folder (default: the active pack)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models_verify)
    p = msub.add_parser("list", help="list installed packs")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_info)
    p = msub.add_parser("import", help="verify a pack folder or zip file and install it")
    p.add_argument("path", metavar="PATH", help="a pack folder, or a zip file holding one")
    p.add_argument("--use", action="store_true", help="make it the active pack")
    p.add_argument("--replace", action="store_true", help="replace an installed pack of that name")
    p.set_defaults(func=cmd_models_import)
    p = msub.add_parser("use", help="make an installed pack the active one")
    p.add_argument("name")
    p.set_defaults(func=cmd_models_use)

    p = sub.add_parser("folders", help="the folders the library watches: add, remove, list")
    p.add_argument("action", choices=["add", "remove", "list"])
    p.add_argument("paths", nargs="*", metavar="PATH")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_folders)

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
    p.set_defaults(func=cmd_index)

    p = sub.add_parser(
        "search",
        help="find photos matching a description",
        description="Find photos matching a description: fast search over every photo, then "
        "the top K refined by the reranker (when the model pack has one).",
    )
    p.add_argument("text", nargs="?", default="", help="what the photo shows")
    _query_options(p)
    p.add_argument("--like", metavar="IMAGE", help="an example image (with or without text)")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("similar", help="find photos that look like an image")
    p.add_argument("image")
    _query_options(p)
    p.set_defaults(func=cmd_similar)

    p = sub.add_parser(
        "settings",
        help="show or change settings (rerank depth, β, token cache)",
        description="Without NAME: every setting. With NAME: that one; with VALUE: set it.",
    )
    p.add_argument("name", nargs="?", metavar="NAME")
    p.add_argument("value", nargs="?", metavar="VALUE")
    p.add_argument("--reset", action="store_true", help="back to the default")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_settings)

    p = sub.add_parser("status", help="photos, indexed, pending, unreadable files, model")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("doctor", help="check that catalog, vector index and disk agree")
    p.add_argument("--repair", action="store_true", help="rebuild what can be rebuilt")
    p.set_defaults(func=cmd_doctor)
    return parser


def _honour_ctrl_c() -> None:
    """Make Ctrl-C (SIGINT) stop the command even when it was started with SIGINT ignored.

    A non-interactive shell starts its background jobs that way (``photosearch index --watch &``
    in a script, a CI runner), and Python then never raises KeyboardInterrupt: ``index --watch``
    would run on after ``kill -INT``, which is how it is documented to stop."""
    import signal
    import threading

    main_thread = threading.current_thread() is threading.main_thread()
    if main_thread and signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def main(argv: list[str] | None = None) -> int:
    # File names need not be valid UTF-8: print them as the bytes they are.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="surrogateescape")
    _honour_ctrl_c()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "folders" and args.action in ("add", "remove") and not args.paths:
        parser.error(f"folders {args.action} needs at least one PATH")
    if args.command == "search" and not args.text.strip() and not args.like:
        parser.error("search needs a description, or an example image with --like")
    if args.self_test_pack and not args.self_test:
        parser.error("--pack goes with --self-test")
    if args.self_test:
        from photosearch import selftest

        return selftest.main(args.self_test_pack, args.device)
    if not getattr(args, "func", None):
        args.func = cmd_default
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
