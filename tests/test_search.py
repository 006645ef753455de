"""Search on real files: re-ranking, its cache and cancellation, filters, names, negative terms.

Mechanics run on the tiny random-weight CoCa pack (it has a reranker); behaviour a user would
check — the right scene first — runs on the committed pack trained on the synthetic world
(``tests/data/synthetic-pack``, see ``benchmarks/synthetic``).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from photos import good_photos, write_photo

from photosearch.catalog import Catalog, Filters
from photosearch.errors import PackError
from photosearch.latest import LatestSearch
from photosearch.library import Library
from photosearch.rerank import Cancelled, TokenCache
from photosearch.search import Query, QueryError, parse_date, parse_formats

SYNTHETIC_PACK = Path(__file__).parent / "data" / "synthetic-pack"


@pytest.fixture
def coca_lib(isolated_home: Path, tiny_coca_pack: Path, tmp_path: Path):
    photos = tmp_path / "Pictures"
    good_photos(photos / "a", 6)
    good_photos(photos / "b", 6, start_seed=100)
    library = Library(isolated_home)
    library.import_pack(tiny_coca_pack)
    library.add_folder(photos)
    library.index_photos()
    yield library
    library.close()


# -- re-ranking ----------------------------------------------------------------------------------


def test_rerank_fuses_scores_and_reorders_only_the_top_k(coca_lib: Library) -> None:
    fast = coca_lib.search("a red circle", n=12, rerank=0)
    assert not fast.refined and fast.note is None
    assert all(r.rerank_score is None and r.score == r.fast_score for r in fast)

    res = coca_lib.search("a red circle", n=12, rerank=5, beta=0.5)
    assert res.refined and res.rerank == 5 and res.beta == 0.5 and res.device == "CPU"
    top, rest = res.results[:5], res.results[5:]
    # The top five are the fast top five, re-ordered by fast + β·h̄ ...
    assert {r.photo_id for r in top} == {r.photo_id for r in fast.results[:5]}
    for r in top:
        assert r.rerank_score is not None and r.rerank_score < 0  # a mean log-probability
        assert r.score == pytest.approx(r.fast_score + 0.5 * r.rerank_score, abs=1e-5)
    assert [r.score for r in top] == sorted((r.score for r in top), reverse=True)
    # ... and the rest keep their fast order.
    assert [r.photo_id for r in rest] == [r.photo_id for r in fast.results[5:]]
    assert [r.rank for r in res] == list(range(1, 13))
    t = res.timing
    assert t.rerank_ms > 0 and t.total_ms >= t.encode_ms + t.search_ms + t.rerank_ms - 1


def test_image_tokens_are_cached_and_score_the_same_warm(coca_lib: Library) -> None:
    cold = coca_lib.search("a blue square", n=8, rerank=8)
    assert cold.rerank_stats.computed == 8 and cold.rerank_stats.cached == 0
    warm = coca_lib.search("a blue square", n=8, rerank=8)
    assert warm.rerank_stats.computed == 0 and warm.rerank_stats.cached == 8
    assert [(r.photo_id, r.score) for r in warm] == [(r.photo_id, r.score) for r in cold]
    # The cache lives on disk: a reranker loaded afresh finds it.
    coca_lib.active.publish(None)  # loaded again on next use
    again = coca_lib.search("a blue square", n=8, rerank=8)
    assert again.rerank_stats.cached == 8
    assert [(r.photo_id, r.score) for r in again] == [(r.photo_id, r.score) for r in cold]


def test_a_query_holding_a_replaced_model_set_opens_no_reranker(coca_lib: Library) -> None:
    """A pack switch (or a cache resize) replaces the active set while a query runs: the
    query's set then gives no reranker, instead of opening one nobody would ever close."""
    held = coca_lib.models()
    coca_lib.active.publish(None)
    reranker, why = held.reranker_or_reason()
    assert reranker is None
    assert why is not None and "changed while this search ran" in why
    # The library itself refines as before with a fresh set.
    assert coca_lib.search("a red circle", n=6, rerank=3).refined


def test_unreadable_candidate_is_reported_not_fatal(coca_lib: Library) -> None:
    fast = coca_lib.search("a red circle", n=6, rerank=0)
    fast.results[0].path.unlink()
    res = coca_lib.search("a red circle", n=6, rerank=6)
    assert res.refined and res.rerank_stats.unreadable == 1
    assert "could not be read" in res.note
    gone = [r for r in res if r.photo_id == fast.results[0].photo_id]
    assert gone and gone[0].rerank_score is None


def test_pack_without_reranker_still_searches(
    isolated_home: Path, tiny_clip_pack: Path, tmp_path: Path
) -> None:
    good_photos(tmp_path / "p", 4)
    with Library(isolated_home) as lib:
        lib.import_pack(tiny_clip_pack)
        lib.add_folder(tmp_path / "p")
        lib.index_photos()
        res = lib.search("a red circle", n=4, rerank=20)
        assert len(res) == 4 and not res.refined
        assert "cannot refine (no reranker)" in res.note and not res.can_refine
        assert not lib.search("a red circle", n=4, rerank=0).can_refine  # asked or not


def test_a_damaged_reranker_file_leaves_fast_search_whole(
    isolated_home: Path, tiny_coca_pack: Path, tmp_path: Path
) -> None:
    """Only the reranker reads its graphs: one of them damaged, the pack still searches (the
    dual encoder is verified whole) and says why it does not refine."""
    import shutil

    pack = tmp_path / "pack"
    shutil.copytree(tiny_coca_pack, pack)
    good_photos(tmp_path / "p", 4)
    with Library(isolated_home) as lib:
        lib.import_pack(pack)
        lib.add_folder(tmp_path / "p")
        lib.index_photos()
    installed = isolated_home / "models" / "tiny-coca" / "reranker_scorer.onnx"
    installed.write_bytes(installed.read_bytes()[:-10] + b"0123456789")  # same size, other bytes
    damaged = tmp_path / "damaged"
    shutil.copytree(installed.parent, damaged, ignore=shutil.ignore_patterns(".*"))
    with Library(tmp_path / "other") as other, pytest.raises(PackError, match="sha256"):
        other.import_pack(damaged)  # never installed as it is: only an installed one limps on
    with Library(isolated_home) as lib:
        assert lib.pack.reranker is None and "sha256" in lib.pack.reranker_problem
        res = lib.search("a red circle", n=4, rerank=3)
        assert len(res) == 4 and not res.refined and res.can_refine
        assert "reranker cannot be used" in res.note and "reranker_scorer.onnx" in res.note
    (isolated_home / "models" / "tiny-coca" / "image_encoder.onnx").unlink()
    with Library(isolated_home) as lib, pytest.raises(PackError, match="image_encoder.onnx"):
        lib.pack  # noqa: B018 - the dual encoder is not optional


def test_reranker_that_fails_to_load_leaves_fast_search(
    coca_lib: Library, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*a, **k):
        raise PackError("ONNX Runtime cannot load it: bad graph", file="reranker_scorer.onnx")

    monkeypatch.setattr("photosearch.library.Reranker", broken)
    coca_lib.active.publish(None)  # loaded again on next use
    res = coca_lib.search("a red circle", n=5, rerank=5)
    assert len(res) == 5 and not res.refined
    assert "could not be loaded" in res.note and "reranker_scorer.onnx" in res.note


def test_reranker_failing_at_search_time_leaves_fast_results(
    coca_lib: Library, monkeypatch: pytest.MonkeyPatch
) -> None:
    from photosearch.errors import EncoderError

    reranker, _ = coca_lib.reranker_or_reason()

    def fails(*a, **k):
        raise EncoderError("reranker_scorer.onnx failed on a batch: out of memory")

    monkeypatch.setattr(reranker, "score", fails)
    shown = []
    res = coca_lib.searcher.search(Query("a red circle", n=5, rerank=5), on_fast=shown.append)
    assert len(res) == 5 and not res.refined and "out of memory" in res.note
    assert [r.photo_id for r in res] == [r.photo_id for r in shown[0]]


def test_defaults_come_from_settings_and_the_pack(coca_lib: Library) -> None:
    assert coca_lib.rerank_defaults() == (20, 0.1)
    coca_lib.catalog.set_setting("rerank_depth", 0)
    coca_lib.catalog.set_setting("rerank_beta", 0.25)
    assert coca_lib.rerank_defaults() == (0, 0.25)
    assert not coca_lib.search("a red circle", n=3).refined
    assert coca_lib.rerank_defaults(7, 2.0) == (7, 2.0)


# -- progressive results and cancellation ---------------------------------------------------


def test_a_cancelled_refinement_stops(coca_lib: Library) -> None:
    cancel = threading.Event()
    seen = []

    def on_fast(res):
        seen.append(res)
        cancel.set()  # the user typed on

    with pytest.raises(Cancelled):
        coca_lib.searcher.search(
            Query("a red circle", n=6, rerank=6), on_fast=on_fast, cancel=cancel
        )
    assert len(seen) == 1 and not seen[0].refined and len(seen[0]) == 6


def test_newer_query_cancels_the_refinement_of_the_older(coca_lib: Library) -> None:
    runner = LatestSearch(coca_lib.searcher)
    got: dict[str, list] = {"old": [], "new": []}

    def on_old(res):
        got["old"].append(res)
        if len(got["old"]) == 1:  # fast list of the old query shown; now the user types on
            runner.submit(Query("a blue square", n=6, rerank=6), got["new"].append)

    try:
        runner.submit(Query("a red circle", n=6, rerank=6), on_old)
        assert runner.wait_idle(60)
        time.sleep(0.05)
        assert runner.wait_idle(60)
    finally:
        runner.close()
    assert [r.refined for r in got["old"]] == [False]  # never refined: superseded
    assert [r.refined for r in got["new"]] == [False, True]
    assert got["new"][1].query.text == "a blue square"
    assert not runner._thread.is_alive()


def test_search_errors_reach_the_caller(coca_lib: Library) -> None:
    runner = LatestSearch(coca_lib.searcher)
    errors: list[BaseException] = []
    try:
        runner.submit(Query(like=Path("/nonexistent/x.jpg")), lambda r: None, errors.append)
        assert runner.wait_idle(30)
    finally:
        runner.close()
    assert len(errors) == 1


# -- queries and filters ---------------------------------------------------------------------


def test_text_with_example_image_and_image_alone(coca_lib: Library, tmp_path: Path) -> None:
    example = tmp_path / "Pictures" / "a" / "photo_000.jpg"
    alone = coca_lib.similar(example, n=5)
    assert example.resolve() not in [r.path for r in alone] and not alone.refined
    both = coca_lib.search(Query("a red circle", like=example, n=5, rerank=3))
    assert both.refined and example.resolve() not in [r.path for r in both]
    outside = write_photo(tmp_path / "elsewhere.png", 0)  # the same picture as photo_000
    assert coca_lib.similar(outside, n=1)[0].path == example.resolve()


def test_filters_by_folder_type_and_date(coca_lib: Library, tmp_path: Path) -> None:
    pics = tmp_path / "Pictures"
    jpg = pics / "b" / "extra.jpg"
    write_photo(jpg, 7)
    old = time.mktime((2015, 6, 1, 12, 0, 0, 0, 0, -1))
    for p in (pics / "a").iterdir():
        os.utime(p, (old, old))
    coca_lib.index_photos()

    only_b = coca_lib.search(
        Query("a red circle", n=50, rerank=0, filters=Filters(folder=pics / "b"))
    )
    assert len(only_b) == 7 and all(r.path.parent == (pics / "b").resolve() for r in only_b)
    jpegs = coca_lib.search(
        Query("a red circle", n=50, rerank=0, filters=Filters(formats=("JPEG",)))
    )
    on_disk = {p.resolve() for p in pics.rglob("*") if p.suffix in (".jpg", ".jpeg")}
    assert {r.path for r in jpegs} == on_disk and len(on_disk) == 5
    assert all(r.photo.format == "JPEG" for r in jpegs)
    before = coca_lib.search(Query("a circle", n=50, rerank=0, filters=Filters(before="2016")))
    assert {r.path.parent.name for r in before} == {"a"} and len(before) == 6
    after = coca_lib.search(Query("a circle", n=50, rerank=0, filters=Filters(after="2016-01")))
    assert {r.path.parent.name for r in after} == {"b"}
    none = coca_lib.search(Query("a circle", n=50, filters=Filters(folder=tmp_path / "nowhere")))
    assert len(none) == 0


def test_query_validation() -> None:
    with pytest.raises(QueryError, match="nothing to search for"):
        Query("  ").check()
    with pytest.raises(QueryError, match="rerank depth"):
        Query("x", rerank=-1).check()
    assert parse_date("2019-05") == "2019-05"
    for bad in ("2019-13", "05/03/2019", "yesterday", "2019-5"):
        with pytest.raises(QueryError, match="not a date"):
            parse_date(bad)
    assert parse_formats(["jpg", ".JPEG", "heic"]) == ("JPEG", "MPO", "HEIF")
    with pytest.raises(QueryError, match="unknown file type"):
        parse_formats(["docx"])


# -- names -----------------------------------------------------------------------------------


def test_file_and_folder_names_are_found_and_follow_renames(
    coca_lib: Library, tmp_path: Path
) -> None:
    pics = tmp_path / "Pictures"
    trip = pics / "Paris 2019"
    write_photo(trip / "IMG_2041.JPG", 11)
    write_photo(trip / "IMG_2042.JPG", 12)
    write_photo(pics / "a" / "Zürich.png", 13)
    coca_lib.index_photos()

    res = coca_lib.search("IMG_2041", n=5, rerank=0)
    assert res[0].path.name == "IMG_2041.JPG" and res[0].matched in ("name", "both")
    assert [r.path.name for r in res if r.matched != "content"] == ["IMG_2041.JPG"]
    trip_hits = coca_lib.search("paris 2019", n=5, rerank=0)
    assert {r.path.name for r in trip_hits if r.matched != "content"} == {
        "IMG_2041.JPG",
        "IMG_2042.JPG",
    }
    prefix = coca_lib.search("IMG_20", n=5, rerank=0)  # typed so far
    assert {r.path.name for r in prefix[:2]} == {"IMG_2041.JPG", "IMG_2042.JPG"}
    assert coca_lib.search("zurich", n=3, rerank=0)[0].path.name == "Zürich.png"
    # Whole words: "cat" is not the start of a "Catalonia" folder's name.
    write_photo(pics / "Catalonia" / "beach.png", 14)
    coca_lib.index_photos()
    assert all(r.matched == "content" for r in coca_lib.search("cat", n=5, rerank=0))
    # What users type is never FTS5 syntax: quotes, stars, operators and brackets are words.
    for odd in ('he said "hi"', "NEAR(a b)", "* OR -x", "AND", "(", "日本 語", "'"):
        coca_lib.search(odd, n=3, rerank=0)
    # Words in every path above the library folder match nothing.
    assert all(r.matched == "content" for r in coca_lib.search(tmp_path.name, n=5, rerank=0))
    # Name matches keep their place at the top when the content matches are refined.
    refined = coca_lib.search("IMG_2041", n=5, rerank=5)
    assert refined[0].path.name == "IMG_2041.JPG"

    (trip / "IMG_2041.JPG").rename(trip / "eiffel.JPG")
    coca_lib.index_photos()
    assert all(r.matched == "content" for r in coca_lib.search("IMG_2041", n=5, rerank=0))
    assert coca_lib.search("eiffel", n=3, rerank=0)[0].path.name == "eiffel.JPG"

    coca_lib.remove_folder(pics)
    rows = coca_lib.catalog._query("SELECT count(*) FROM names")[0][0]
    assert rows == 0


def test_catalog_from_schema_1_gains_the_name_index(tmp_path: Path) -> None:
    from photosearch import catalog as catalog_mod
    from photosearch import schema

    db = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(db)
    conn.isolation_level = None
    schema._migrate_0_to_1(conn)
    conn.execute("INSERT INTO folders(path, added) VALUES (?, 0)", (b"/photos",))
    conn.execute(
        "INSERT INTO photos(folder_id, path, size, mtime_ns, state, added, updated) "
        "VALUES (1, ?, 1, 1, 'pending', 0, 0)",
        (b"/photos/Rome/IMG_7.jpg",),
    )
    conn.execute("PRAGMA user_version = 1")
    conn.close()
    cat = Catalog(db)
    try:
        assert cat.schema_version == catalog_mod.SCHEMA_VERSION
        assert cat.match_names(["rome"]) == [1] and cat.match_names(["photos"]) == [1]
        assert cat.match_names(["img_7"]) == [1] and cat.match_names(["paris"]) == []
    finally:
        cat.close()


# -- the token cache -------------------------------------------------------------------------


def test_token_cache_is_bounded_least_recently_used_first(tmp_path: Path) -> None:
    item = np.ones((4, 8), np.float16)  # 64 bytes
    cache = TokenCache(tmp_path / "t.sqlite3", max_bytes=64 * 3)
    for name in "abc":
        cache.put("m", {name: item * ord(name)})
        time.sleep(0.01)
    cache.get("m", ["a"])  # used again: now the newest
    time.sleep(0.01)
    cache.put("m", {"d": item})
    assert set(cache.get("m", list("abcd"))) == {"a", "c", "d"}
    assert cache.stats() == (3, 192)
    assert np.array_equal(cache.get("m", ["c"])["c"], item * ord("c"))
    assert cache.get("other-model", ["a"]) == {}
    # A batch bigger than the whole cache is kept (the refinement needs it), older ones go.
    time.sleep(0.01)
    cache.put("m", {k: item for k in "wxyz"})
    assert set(cache.get("m", list("acdwxyz"))) == set("wxyz")
    cache.close()


def test_damaged_token_cache_starts_empty(tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    cache = TokenCache(path, max_bytes=1 << 20)
    cache.put("m", {"a": np.zeros((2, 2), np.float16)})
    assert set(cache.get("m", ["a"])) == {"a"}
    cache.close()


def test_precompute_fills_the_cache(coca_lib: Library) -> None:
    done = coca_lib.precompute_rerank_tokens()
    assert done == 12
    reranker, _ = coca_lib.reranker_or_reason()
    assert reranker.cache.stats()[0] == 12
    assert coca_lib.search("a red circle", n=12, rerank=12).rerank_stats.computed == 0
    assert coca_lib.precompute_rerank_tokens() == 0


def _taken_order(lib: Library, ids: list[int]) -> list[int]:
    """``ids`` newest first, as a person dates them (taken, else modified), then newest id."""
    import datetime as dt

    def key(i: int) -> tuple[str, int]:
        p = lib.catalog.details([i])[i]
        when = p.taken or dt.datetime.fromtimestamp(p.path.stat().st_mtime).isoformat()
        return (when[:19], i)

    return sorted(ids, key=key, reverse=True)


def test_token_pass_takes_the_most_viewed_then_the_newest(
    coca_lib: Library, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [int(i) for i in coca_lib.catalog.vector_ids(coca_lib.pack.id)]
    seen, once = ids[5], ids[9]
    for _ in range(2):
        coca_lib.record_view(seen)
    coca_lib.record_view(once)
    coca_lib.record_view(10**9)  # a photo that is not (any more) in the catalog: ignored
    assert coca_lib.catalog.views(seen) == 2
    rest = _taken_order(coca_lib, [i for i in ids if i not in (seen, once)])
    assert coca_lib.catalog.precompute_order(coca_lib.pack.id, 100) == [seen, once, *rest]
    # Only as many as the cache holds, in that order.
    reranker, _ = coca_lib.reranker_or_reason()
    spec = reranker.spec
    monkeypatch.setattr(reranker.cache, "max_bytes", 3 * spec.tokens * spec.token_dim * 2)
    given: list[int] = []
    real = reranker.precompute

    def recording(photos, cancel=None, progress=None, between=None):  # noqa: ANN001, ANN202
        given.extend(p.id for p in photos)
        return real(photos, cancel, progress, between)

    monkeypatch.setattr(reranker, "precompute", recording)
    assert coca_lib.precompute_rerank_tokens() == 3
    assert given == [seen, once, rest[0]]
    # Photos forgotten take their views with them.
    for folder in coca_lib.folders():
        coca_lib.remove_folder(folder.path)
    assert coca_lib.catalog.views(seen) == 0


def test_token_pass_waits_while_the_user_searches(coca_lib: Library) -> None:
    from photosearch import runs
    from photosearch.indexer import IndexControl

    reranker, _ = coca_lib.reranker_or_reason()
    idle = iter([0.0, 0.0, 1.0] + [60.0] * 1000)  # searching, searching, just ended, away
    asked: list[float] = []

    def user_idle() -> float:
        asked.append(next(idle))
        return asked[-1]

    t0 = time.monotonic()
    done = runs.precompute_tokens(reranker, coca_lib.catalog, coca_lib.pack.id, user_idle=user_idle)
    assert done == 12
    assert asked[:4] == [0.0, 0.0, 1.0, 60.0]
    assert time.monotonic() - t0 >= 0.6  # it waited three times before the first batch
    # A user who never stops searching: cancelling (closing the window) still ends the pass.
    reranker.cache.clear()
    control = IndexControl()
    threading.Timer(0.5, control.cancel).start()
    t0 = time.monotonic()
    left = runs.precompute_tokens(
        reranker, coca_lib.catalog, coca_lib.pack.id, control, user_idle=lambda: 0.0
    )
    assert left == 0 and time.monotonic() - t0 < 5


def test_searcher_tells_how_long_the_user_has_been_idle(coca_lib: Library) -> None:
    during: list[float] = []
    from photosearch.search import Query

    coca_lib.searcher.search(
        Query(text="a red circle", rerank=4),
        on_fast=lambda r: during.append(coca_lib.searcher.idle_seconds()),
    )
    assert during == [0.0]
    time.sleep(0.05)
    assert coca_lib.searcher.idle_seconds() >= 0.05


# -- real behaviour: the pack trained on the synthetic world ---------------------------------


needs_trained_pack = pytest.mark.skipif(
    not (SYNTHETIC_PACK / "manifest.json").exists(), reason="tests/data/synthetic-pack missing"
)


@pytest.fixture(scope="module")
def world_gallery(tmp_path_factory: pytest.TempPathFactory):
    """Test-split families of the synthetic world, written as PNG files: each query's scene
    and its hard distractors (swap, colour exchange, other relation)."""
    from benchmarks.synthetic import scenes

    root = tmp_path_factory.mktemp("world") / "gallery"
    world = scenes.World(scenes.WorldConfig())
    families = list(world.families("test", 40))
    where: dict[Path, object] = {}
    for fam in families:
        for member, scene in fam.members.items():
            path = root / f"f{fam.index:04d}_{member}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            scene.render(64).save(path)
            where[path] = scene
    return root, families, where


@pytest.fixture
def world_lib(isolated_home: Path, world_gallery):
    root, families, where = world_gallery
    lib = Library(isolated_home)
    lib.import_pack(SYNTHETIC_PACK)
    lib.add_folder(root)
    lib.index_photos()
    yield lib, families, where
    lib.close()


@needs_trained_pack
def test_trained_pack_finds_the_described_objects(world_lib) -> None:
    """A caption's first result shows its objects: one of the four scenes of its family (the
    described scene or a same-words distractor) out of 160."""
    lib, families, where = world_lib
    hits = sum(
        lib.search(fam.captions["base"], n=1, rerank=0)[0].path.name.startswith(
            f"f{fam.index:04d}_"
        )
        for fam in families
    )
    assert hits >= 0.9 * len(families)


@needs_trained_pack
def test_rerank_puts_the_right_scene_above_fast_distractors(world_lib) -> None:
    """The reason the product exists: where the dual encoder ranks a same-words distractor
    first, the cross-attention reranker puts the described scene first."""
    from benchmarks.synthetic import scenes

    lib, families, where = world_lib
    fixed, fast_hits, slow_hits, queries = [], 0, 0, 0
    for fam in families:
        if not fam.relational:
            continue
        text, want = fam.captions["base"], fam.base.description
        fast = lib.search(text, n=1, rerank=0, names=False)
        slow = lib.search(text, n=1, rerank=20, names=False)
        ok_fast = scenes.matches(want, where[fast[0].path])
        ok_slow = scenes.matches(want, where[slow[0].path])
        fast_hits += ok_fast
        slow_hits += ok_slow
        queries += 1
        if not ok_fast and ok_slow:
            fixed.append(text)
    assert queries >= 20
    assert fixed, "no query where re-ranking corrected the fast stage"
    assert slow_hits >= fast_hits + 0.1 * queries


@needs_trained_pack
def test_negative_terms_exclude(world_lib) -> None:
    lib, families, where = world_lib

    def circles(path: Path, colour: str) -> bool:
        return any(
            e.shape == "circle" and e.colour == colour for e in where[path].description.entities
        )

    plain = lib.search("a small circle", n=30, rerank=0, names=False)
    colour = max(
        ("red", "green", "blue", "yellow", "orange", "purple"),
        key=lambda c: sum(circles(r.path, c) for r in plain),
    )
    assert sum(circles(r.path, colour) for r in plain) >= 3
    res = lib.search(Query("a small circle", exclude=(colour,), n=30, rerank=0, names=False))
    assert len(res) == 30  # fetched deeper to make up for the excluded ones
    assert not [r.path.name for r in res if circles(r.path, colour)]
