"""The vector index: exact and IVF search, removal, id sets, atomic files and their faults."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pytest

from photosearch import indexfile, vectors
from photosearch.vectors import IndexFileError, VectorIndex

DIM = 32


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def random_unit(n: int, seed: int = 0, dim: int = DIM) -> np.ndarray:
    return unit(np.random.default_rng(seed).standard_normal((n, dim)))


def embeddings_like(
    n: int, n_queries: int, seed: int = 0, dim: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """Clustered unit vectors with a decaying spectrum, and queries near (not on) them.

    A small version of the benchmark's generator (benchmarks/vector_index.py): isotropic random
    vectors would make any index look good or bad for the wrong reasons.
    """
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    scales = np.arange(1, dim + 1) ** -0.5
    centres = rng.standard_normal((n // 40, dim)) * scales
    labels = rng.integers(0, len(centres), n)
    latent = centres[labels] + rng.standard_normal((n, dim)) * scales * 0.45
    latent[:, -1] = 2.0  # a shared cone direction
    x = unit(latent @ basis.T)
    start = latent[rng.integers(0, n, n_queries)]
    q_latent = start + rng.standard_normal(start.shape) * scales * 0.6
    return x, unit(q_latent @ basis.T)


def brute_force(x: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    scores = q @ x.T
    return ids[np.argsort(-scores, axis=1, kind="stable")[:, :k]]


def recall_at(found: np.ndarray, truth: np.ndarray, k: int) -> float:
    hits = [len(np.intersect1d(f[:k], t[:k])) for f, t in zip(found, truth, strict=True)]
    return float(np.mean(hits)) / k


@pytest.fixture
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    ids = rng.choice(10**9, 1500, replace=False).astype(np.int64)
    return ids, random_unit(1500)


# -- search -----------------------------------------------------------------------------------


def test_flat_search_returns_the_nearest_by_inner_product(data) -> None:
    ids, x = data
    index = VectorIndex.create(DIM)
    index.add(ids[:700], x[:700])
    index.add(ids[700:], x[700:])
    q = random_unit(25, seed=9)
    scores, found = index.search(q, 10)
    assert index.kind == "flat" and len(index) == 1500 and index.dim == DIM
    assert scores.dtype == np.float32 and found.dtype == np.int64
    assert scores.shape == found.shape == (25, 10)
    np.testing.assert_array_equal(found, brute_force(x, ids, q, 10))
    expected = np.sort(q @ x.T, axis=1)[:, ::-1][:, :10]
    np.testing.assert_allclose(scores, expected, atol=1e-5)


def test_a_single_vector_query_is_answered_as_one_row(data) -> None:
    ids, x = data
    index = VectorIndex.build(ids, x)
    scores, found = index.search(x[3], 1)
    assert found.shape == (1, 1) and found[0, 0] == ids[3]
    assert scores[0, 0] == pytest.approx(1.0, abs=1e-5)


def test_slots_beyond_the_index_are_minus_one_and_minus_infinity(data) -> None:
    ids, x = data
    index = VectorIndex.build(ids[:5], x[:5])
    scores, found = index.search(x[:2], 8)
    assert (found[:, :5] >= 0).all() and set(found[0, :5]) == set(ids[:5])
    assert (found[:, 5:] == -1).all() and np.isneginf(scores[:, 5:]).all()


@pytest.mark.parametrize("kind", ["auto", "flat", "ivf-sq8", "ivf-fp16"])
def test_an_empty_index_finds_nothing(kind: str) -> None:
    index = VectorIndex.create(DIM, kind=kind)
    scores, found = index.search(random_unit(3), 4)
    assert found.shape == (3, 4) and (found == -1).all() and np.isneginf(scores).all()
    assert len(index) == 0 and index.ids().size == 0 and index.matches([])


def test_float16_vectors_and_queries_are_accepted(data) -> None:
    ids, x = data
    x16 = x.astype(np.float16)
    index = VectorIndex.build(ids, x16)
    q16 = x16[:20]
    _, found = index.search(q16, 5)
    np.testing.assert_array_equal(found, brute_force(x16.astype(np.float32), ids, q16, 5))
    assert found[:, 0].tolist() == ids[:20].tolist()


def test_search_leaves_the_callers_faiss_threads_alone(data) -> None:
    ids, x = data
    index = VectorIndex.build(ids, x, threads=2)
    before = faiss.omp_get_max_threads()
    index.search(x[:1], 5)
    index.search(x[:40], 5)  # a batch, on index.threads
    assert faiss.omp_get_max_threads() == before


# -- changing it ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["flat", "ivf-sq8"])
def test_remove_takes_ids_out_of_results_and_the_id_set(kind: str, data) -> None:
    ids, x = data
    index = VectorIndex.build(ids, x, kind=kind)
    gone = ids[:100]
    absent = [10**9 + 1, 10**9 + 2]
    assert index.remove(np.concatenate([gone, absent])) == 100  # absent ids are ignored
    assert index.remove(gone) == 0
    assert len(index) == 1400
    _, found = index.search(x[:100], 10)
    assert not np.isin(found, gone).any()
    np.testing.assert_array_equal(index.ids(), np.sort(ids[100:]))
    assert index.matches(ids[100:][::-1]) and not index.matches(ids)


def test_add_refuses_ids_it_holds_unless_told_to_replace(data) -> None:
    ids, x = data
    index = VectorIndex.build(ids[:100], x[:100])
    with pytest.raises(ValueError, match="already in the index"):
        index.add(ids[90:110], x[90:110])
    assert len(index) == 100  # nothing changed
    with pytest.raises(ValueError, match="duplicate ids"):
        index.add([ids[200], ids[200]], x[200:202])
    index.add(ids[[5]], x[[700]], replace=True)
    assert len(index) == 100
    _, found = index.search(x[700], 1)
    assert found[0, 0] == ids[5]


def test_bad_input_is_refused_before_anything_changes(data) -> None:
    ids, x = data
    index = VectorIndex.build(ids[:10], x[:10])
    bad = x[10:20].copy()
    bad[7, 3] = np.nan
    for call in (
        lambda: index.add(ids[10:20], bad),
        lambda: index.add(ids[10:20], x[10:20, :16]),
        lambda: index.add(ids[10:19], x[10:20]),
        lambda: index.add([-3], x[:1]),
        lambda: index.add(np.array([1.5]), x[:1]),
        lambda: index.search(x[:1], 0),
        lambda: index.search(x[:1, :5], 3),
    ):
        with pytest.raises(ValueError):
            call()
    assert index.matches(ids[:10])


def test_matches_compares_the_exact_id_set(data) -> None:
    ids, x = data
    index = VectorIndex.build(ids[:50], x[:50])
    assert index.matches(ids[:50]) and index.matches(list(reversed(ids[:50])))
    assert not index.matches(ids[:49])
    assert not index.matches(ids[:51])
    assert not index.matches(np.concatenate([ids[:49], ids[:1]]))  # same size, a duplicate


# -- kinds ------------------------------------------------------------------------------------


def test_auto_switches_kind_at_the_threshold(data) -> None:
    ids, x = data
    below = VectorIndex.build(ids[:999], x[:999], large_threshold=1000)
    at = VectorIndex.build(ids[:1000], x[:1000], large_threshold=1000)
    assert below.kind == vectors.FLAT and at.kind == vectors.LARGE_KIND
    assert at.nlist == vectors.nlist_for(1000) and at.nprobe == vectors.nprobe_for(at.nlist)
    assert VectorIndex.create(DIM, expected_size=5000, large_threshold=1000).kind != "flat"
    assert VectorIndex.create(DIM, expected_size=10).kind == "flat"
    # a flat library that grew past the threshold asks for a rebuild; one that did not, doesn't
    below.add(ids[999:1000], x[999:1000])
    assert below.needs_rebuild(large_threshold=1000)
    assert not below.needs_rebuild(large_threshold=2000)
    assert not at.needs_rebuild(large_threshold=1000)
    # an IVF index outgrows the lists it learnt
    small = VectorIndex.build(ids[:300], x[:300], kind="ivf-sq8")
    small.add(ids[300:], x[300:])
    assert small.needs_rebuild()


@pytest.mark.parametrize("kind", ["ivf-sq8", "ivf-fp16"])
def test_the_large_kind_keeps_recall_on_embeddings_like_data(kind: str) -> None:
    x, q = embeddings_like(4000, 100)
    ids = np.arange(10, 4010, dtype=np.int64)
    index = VectorIndex.build(ids, x.astype(np.float16), kind=kind)
    _, found = index.search(q, 10)
    truth = brute_force(x.astype(np.float16).astype(np.float32), ids, q, 10)
    assert recall_at(found, truth, 10) >= 0.95


def test_an_ivf_index_made_empty_trains_on_its_first_addition() -> None:
    x, q = embeddings_like(2000, 20)
    ids = np.arange(2000, dtype=np.int64) + 1
    index = VectorIndex.create(64, kind="ivf-sq8")
    assert index.nlist is None and index.trained_on == 0
    index.add(ids, x)
    assert index.nlist == vectors.nlist_for(2000) and index.trained_on == 2000
    _, found = index.search(x[:5], 1)
    assert found[:, 0].tolist() == ids[:5].tolist()


# -- files ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["flat", "ivf-sq8", "ivf-fp16"])
def test_save_and_load_give_identical_results(kind: str, tmp_path: Path, data) -> None:
    ids, x = data
    index = VectorIndex.build(ids, x, kind=kind)
    if kind != "flat":
        index.nprobe = 7
    index.generation = 41  # the owner's stamp travels with the file
    path = tmp_path / "vectors.faiss"
    index.save(path)
    again = VectorIndex.load(path, dim=DIM)
    assert (again.kind, again.dim, len(again), again.nprobe) == (kind, DIM, 1500, index.nprobe)
    assert again.generation == 41
    np.testing.assert_array_equal(again.ids(), index.ids())
    q = random_unit(30, seed=4)
    s1, i1 = index.search(q, 20)
    s2, i2 = again.search(q, 20)
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_array_equal(s1, s2)
    assert [p.name for p in tmp_path.iterdir()] == ["vectors.faiss"]


def test_an_empty_index_round_trips(tmp_path: Path) -> None:
    for kind in ("flat", "ivf-sq8"):
        path = tmp_path / f"{kind}.idx"
        VectorIndex.create(DIM, kind=kind).save(path)
        again = VectorIndex.load(path)
        assert again.kind == kind and len(again) == 0


@pytest.mark.parametrize("error", [OSError("disk full"), RuntimeError("faiss broke")])
def test_a_failed_save_leaves_the_previous_file_and_no_temp_files(
    error: Exception, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data
) -> None:
    ids, x = data
    path = tmp_path / "vectors.faiss"
    VectorIndex.build(ids[:100], x[:100]).save(path)
    before = path.read_bytes()

    def failing_writer(index, f):
        f.write(b"half an index")
        raise error

    monkeypatch.setattr(indexfile, "_write_payload", failing_writer)
    with pytest.raises((IndexFileError, type(error))) as caught:
        VectorIndex.build(ids, x).save(path)
    if isinstance(error, OSError):
        assert caught.type is IndexFileError and str(path) in str(caught.value)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["vectors.faiss"]
    monkeypatch.undo()
    assert VectorIndex.load(path).matches(ids[:100])


def test_saving_into_a_missing_folder_is_an_index_file_error(tmp_path: Path, data) -> None:
    ids, x = data
    with pytest.raises(IndexFileError, match="cannot be written"):
        VectorIndex.build(ids, x).save(tmp_path / "nowhere" / "vectors.faiss")


@pytest.fixture
def saved(tmp_path: Path, data) -> Path:
    ids, x = data
    path = tmp_path / "vectors.faiss"
    VectorIndex.build(ids, x).save(path)
    return path


def _load_fails(path: Path, match: str, **kw) -> IndexFileError:
    with pytest.raises(IndexFileError, match=match) as caught:
        VectorIndex.load(path, **kw)
    assert caught.value.path == path and str(path) in str(caught.value)
    return caught.value


def test_loading_a_missing_file_names_it(tmp_path: Path) -> None:
    _load_fails(tmp_path / "absent.faiss", "does not exist")


@pytest.mark.parametrize("keep", [0, 5, 20, 40, 200, -1])
def test_loading_a_truncated_file_names_it(keep: int, saved: Path) -> None:
    raw = saved.read_bytes()
    saved.write_bytes(raw[:keep] if keep >= 0 else raw[:-1])
    _load_fails(saved, "truncated|not a photosearch")


@pytest.mark.parametrize(
    "content",
    [b"\x00" * 4096, b"not an index at all\n" * 50, np.random.default_rng(3).bytes(5000)],
)
def test_loading_garbage_names_the_file(content: bytes, saved: Path) -> None:
    saved.write_bytes(content)
    _load_fails(saved, "not a photosearch vector index")


def test_loading_a_damaged_file_is_caught_by_its_checksums(saved: Path) -> None:
    raw = bytearray(saved.read_bytes())
    raw[-1000] ^= 0xFF  # inside the FAISS payload
    saved.write_bytes(bytes(raw))
    _load_fails(saved, "damaged")
    raw[-1000] ^= 0xFF
    raw[40] ^= 0x01  # inside the JSON header
    saved.write_bytes(bytes(raw))
    _load_fails(saved, "damaged header")


def test_loading_with_the_wrong_dimension_names_both(saved: Path) -> None:
    err = _load_fails(saved, "holds 32-dimensional vectors, expected 512", dim=512)
    assert err.problem.startswith("holds 32")
    assert len(VectorIndex.load(saved, dim=DIM)) == 1500


def test_a_newer_format_version_is_refused(saved: Path) -> None:
    raw = bytearray(saved.read_bytes())
    raw[8:12] = (indexfile.FORMAT_VERSION + 1).to_bytes(4, "little")
    saved.write_bytes(bytes(raw))
    _load_fails(saved, "format version")
