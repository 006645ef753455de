"""What the command line prints: JSON documents, search results, and progress on stderr.

Progress bars are tqdm's, drawn only when stderr is a terminal (and not ``--quiet``); piped or
redirected, a command prints nothing for progress but its step lines.
"""

from __future__ import annotations

import json
import sys
from types import TracebackType
from typing import TYPE_CHECKING, Any

from photosearch.relevance import percent  # standard library only, as this module must be

if TYPE_CHECKING:  # the search command's client side must start without the engine
    from photosearch import modelpack


def print_json(data: Any) -> None:
    # ASCII escapes keep the document valid UTF-8 whatever the file names: a name that is not
    # UTF-8 comes out as \udcXX escapes, which os.fsencode() turns back into its bytes.
    print(json.dumps(data, indent=2, ensure_ascii=True))


def pack_summary(pack: modelpack.ModelPack) -> dict[str, Any]:
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
        "reranker_problem": pack.reranker_problem,
        "calibrated": "calibration" in m,
        "languages": m.get("languages") or "English",
        "source": m["source"].get("repo") or m["source"].get("kind"),
        "size_mb": round(sum(f["size"] for f in m["files"].values()) / 1e6, 1),
    }


def folder_line(path: str, state: str) -> str:
    return f"{path}{'' if state == 'ok' else '  (' + state + ')'}"


# -- progress --------------------------------------------------------------------------------


def shows_progress(quiet: bool) -> bool:
    """Whether progress is drawn: on a terminal, unless asked to be quiet."""
    return sys.stderr.isatty() and not quiet


def _bar(**options: Any) -> Any:
    from tqdm import tqdm  # imported only for a terminal: it costs a quarter of a second

    return tqdm(file=sys.stderr, dynamic_ncols=True, **options)


class _Bars:
    """One tqdm bar at a time, replaced when a new total starts; a context manager that closes
    what is on screen."""

    def __init__(self, shown: bool) -> None:
        self.shown = shown
        self.bar: Any = None

    def _draw(self, done: int, total: int, **options: Any) -> Any:
        if self.bar is None or self.bar.total != total or done < self.bar.n:
            self.close()
            self.bar = _bar(total=total, initial=done, **options)
        self.bar.update(done - self.bar.n)  # tqdm redraws at most every 0.1 s
        return self.bar

    def clear(self) -> None:
        """Erase the bar to print a line in its place; the next update draws it again."""
        if self.bar is not None:
            self.bar.clear()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> _Bars:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class PhotoBar(_Bars):
    """Indexing progress: photos done of the pass's total, rate, time left, unreadable files.
    ``desc`` names the bar; ``leave`` keeps the finished bar on screen."""

    def __init__(self, shown: bool, *, desc: str | None = None, leave: bool = True) -> None:
        super().__init__(shown)
        self.options = {"desc": desc, "leave": leave, "unit": " photos"}

    def __call__(self, p: Any) -> None:  # an indexer.Progress
        if self.shown and p.total:
            bar = self._draw(p.done, p.total, **self.options)
            bar.set_postfix_str(f"{p.failed} unreadable", refresh=False)


class TransferProgress(_Bars):
    """Download progress: a bar in bytes while the size is known and stderr is a terminal;
    otherwise a line per step (``… verifying``). ``quiet``: nothing."""

    def __init__(self, quiet: bool) -> None:
        super().__init__(shows_progress(quiet))
        self.quiet = quiet
        self.message = ""

    def __call__(self, p: Any) -> None:  # an acquire.Progress
        if self.quiet:
            return
        if p.total is None or not self.shown:
            self._say(p.message)
            return
        self._draw(p.done, p.total, unit="B", unit_scale=True, leave=False)

    def _say(self, message: str) -> None:
        if message == self.message:
            return
        self.close()  # the bar is erased, the step line takes its place
        print(f"… {message}", file=sys.stderr, flush=True)
        self.message = message


# -- search results --------------------------------------------------------------------------


def print_results(doc: dict[str, Any], as_json: bool, *, show_all: bool = False) -> None:
    """A search's results (``Results.to_json()``, from this process or the query socket): the
    matches (every result with ``show_all``), each with its relevance as a percentage (its
    rank when the pack has no calibration), ``*`` after the ones the reranker scored."""
    if as_json:
        print_json(doc)
        return
    results = doc["results"]
    text = (doc.get("query") or "").strip()
    shown = results if show_all else [r for r in results if r.get("match", True)]
    if not results:
        print("no results (is the library indexed? photosearch status)", file=sys.stderr)
    for r in shown:
        mark = {"name": "  [name]", "both": "  [name]"}.get(r["matched"], "")
        relevance = r.get("relevance")
        label = f"#{r['rank']}" if relevance is None else f"{percent(relevance)}%"
        refined = "*" if r.get("refined") else " "
        weak = "" if r.get("match", True) else "  (weaker match)"
        print(f"{label:>5}{refined} {r['path']}{mark}{weak}")
    t = doc["timing"]
    how = f"refined the top {doc['rerank']} on {doc['device']}" if doc["refined"] else "fast search"
    matches = doc.get("matches", len(results))
    if doc.get("threshold") is None:
        count = f"{len(results)} results"
    else:
        count = f"{matches} {'match' if matches == 1 else 'matches'}"
        weaker = len(results) - matches
        if weaker and not show_all:
            count += f" (and {weaker} weaker: --all lists them)"
    print(
        f"{count}, {how}: {t['total_ms']:.0f} ms (encode {t['encode_ms']:.0f}, "
        f"search {t['search_ms'] + t['names_ms']:.0f}, rerank {t['rerank_ms']:.0f})",
        file=sys.stderr,
    )
    if results and doc.get("threshold") is not None and matches == 0:
        what = f" for {text!r}" if text else ""
        print(
            f"no good match{what}: the closest photos are below the relevance cut-off "
            f"({percent(doc['threshold'])}%){'' if show_all else '; --all lists them'}",
            file=sys.stderr,
        )
    if doc.get("words_read"):
        print(
            f"note: the description is too long for the model: it read its first "
            f"{doc['words_read']} words",
            file=sys.stderr,
        )
    if doc.get("calibration_note"):
        print(f"note: {doc['calibration_note']}", file=sys.stderr)
    if doc["note"]:
        print(f"note: {doc['note']}", file=sys.stderr)
