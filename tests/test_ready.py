"""Ready models: published ONNX graphs (Immich's and rclip's layouts) downloaded from the local
hub, made into verified packs without torch, indexed and searched; multilingual queries
tokenised as the source does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from hubserver import Hub, HubServer
from photos import write_photo
from published import (
    gemma_like_tokenizer,
    hf_clip_tokenizer,
    immich_repo,
    nllb_like_tokenizer,
    rclip_repo,
    tiny_model,
)
from tokenizers import Tokenizer as HFTokenizer

from photosearch import acquire, config, modelpack
from photosearch.acquire.catalogue import FLORES_200
from photosearch.encoders import TextEncoder
from photosearch.errors import PackError
from photosearch.library import Library

RCLIP = acquire.ready_model("rclip-vit-b-32-256")
VIT_B_32 = acquire.ready_model("immich-vit-b-32-openai")
NLLB = acquire.ready_model("immich-nllb-clip-base-siglip")
SIGLIP2 = acquire.ready_model("immich-vit-b-16-siglip2")
QUERIES = {"de": "ein Hund am Strand", "zh": "海滩上的一只狗", "ar": "كلب على الشاطئ"}

# A runtime-only install: torch, open_clip and the exporter cannot be imported.
NO_TORCH = (
    "import sys\n"
    "class Block:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name.split('.')[0] in ('torch', 'open_clip', 'torchvision', 'timm') or "
    "name.startswith('photosearch.export_onnx'):\n"
    "            raise ImportError('blocked: ' + name)\n"
    "sys.meta_path.insert(0, Block())\n"
    "from photosearch.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "assert 'torch' not in sys.modules\n"
    "sys.exit(code)\n"
)


@pytest.fixture(scope="module")
def repos() -> dict[str, dict[str, bytes]]:
    """The three repositories, laid out as published, from tiny random-weight models."""
    clip, cfg = tiny_model("photosearch-test-immich-clip")
    small_rclip, _ = tiny_model("photosearch-test-rclip", image_size=256, patch_size=32)
    nllb_tokenizer = nllb_like_tokenizer()
    multilingual, mcfg = tiny_model(
        "photosearch-test-nllb", text={"vocab_size": nllb_tokenizer.get_vocab_size()}
    )
    gemma = gemma_like_tokenizer()
    siglip, scfg = tiny_model(
        "photosearch-test-siglip2",
        text={"vocab_size": gemma.get_vocab_size(), "context_length": 64},
    )
    scfg["text_cfg"]["tokenizer_kwargs"] = {"clean": "canonicalize"}  # as SigLIP's config says
    squash = {"resize_mode": "squash", "mean": [0.5] * 3, "std": [0.5] * 3}
    return {
        SIGLIP2.repo: immich_repo(siglip, scfg, gemma, "<pad>", 64, **squash),
        VIT_B_32.repo: immich_repo(clip, cfg, hf_clip_tokenizer(), "<|endoftext|>"),
        RCLIP.repo: rclip_repo(small_rclip, RCLIP.folder),
        NLLB.repo: immich_repo(multilingual, mcfg, nllb_tokenizer, "<pad>"),
    }


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, repos: dict[str, dict[str, bytes]]) -> Hub:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "DOWNLOAD_CHUNK_SIZE", 4096)
    with HubServer() as h:
        monkeypatch.setenv("HF_ENDPOINT", h.endpoint)
        for repo, files in repos.items():
            h.publish(repo, files)
        yield h


def _cli(home: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full = {**os.environ, "PHOTOSEARCH_HOME": str(home), **(env or {})}
    return subprocess.run(
        [sys.executable, "-c", NO_TORCH, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=full,
    )


@pytest.mark.parametrize("entry", [RCLIP, VIT_B_32, NLLB, SIGLIP2], ids=lambda e: e.name)
def test_a_runtime_only_install_downloads_indexes_and_searches(
    entry: acquire.Ready, hub: Hub, isolated_home: Path, tmp_path: Path
) -> None:
    photos = tmp_path / "photos"
    for i in range(3):
        write_photo(photos / f"p{i}.jpg", seed=i)
    run = _cli(isolated_home, "models", "download", entry.name)
    assert run.returncode == 0, run.stderr
    assert f"downloaded {entry.name} into" in run.stdout and "(active)" in run.stdout

    pack = modelpack.verify(isolated_home / "models" / entry.name, full=True)
    assert pack.manifest["format_version"] == 2
    assert pack.manifest["source"]["repo"] == entry.repo
    assert pack.manifest["source"]["revision"] == hub.commits[entry.repo]
    for name, e in pack.manifest["files"].items():
        assert (pack.path / name).stat().st_size == e["size"]

    assert _cli(isolated_home, "folders", "add", str(photos)).returncode == 0
    run = _cli(isolated_home, "index", "--json", "-q")
    assert run.returncode == 0, run.stderr
    run = _cli(isolated_home, "search", "a photo of a dog", "--json", "--no-names")
    assert run.returncode == 0, run.stderr
    found = json.loads(run.stdout)
    assert sorted(Path(r["path"]).name for r in found["results"]) == ["p0.jpg", "p1.jpg", "p2.jpg"]
    assert not found["refined"] and "cannot refine" in found["note"]

    told = [_cli(isolated_home, "search", "a dog").stderr for _ in range(2)]
    assert "pip install 'photosearch[export]'" in told[0]  # what refining adds, said once
    assert "pip install" not in told[1] and "cannot refine" in told[1]


def _source_ids(pack: modelpack.ModelPack, text: str, language: str) -> list[int]:
    """Token ids as Immich's textual encoder makes them: its tokenizer.json with padding to
    the context length with tokenizer_config's pad token, truncation, whitespace collapsed,
    the FLORES-200 code put straight before the text for NLLB."""
    hf = HFTokenizer.from_file(str(pack.path / "tokenizer.json"))
    pad = json.loads((pack.path / "tokenizer_config.json").read_text())["pad_token"]
    hf.enable_padding(length=77, pad_token=pad, pad_id=hf.token_to_id(pad))
    hf.enable_truncation(max_length=77)
    return hf.encode(FLORES_200[language] + " ".join(text.split())).ids


def test_multilingual_queries_are_tokenised_and_encoded_as_the_source_does(
    hub: Hub, isolated_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(4):
        write_photo(tmp_path / "photos" / f"p{i}.jpg", seed=10 + i)
    with Library(isolated_home) as lib:
        pack = acquire.download_pack(lib, NLLB.name)
        lib.add_folder(tmp_path / "photos")
        lib.index_photos()
        graph = ort.InferenceSession(str(pack.text_encoder), providers=["CPUExecutionProvider"])
        encoder = TextEncoder(pack, device="cpu")
        for language, query in QUERIES.items():
            monkeypatch.setenv("PHOTOSEARCH_LANGUAGE", language)
            want = _source_ids(pack, query, language)
            assert encoder.tokenize([query])[0].tolist() == want
            assert 3 not in want  # no unknown token: the tokenizer covers the script
            (vector,) = graph.run(["embedding"], {"text": np.array([want], np.int32)})
            assert np.allclose(encoder.encode(query), vector, atol=1e-5)
            results = lib.search(query, rerank=0, names=False)
            assert len(results) == 4
            scores = [r.score for r in results]
            assert scores == sorted(scores, reverse=True)


def test_siglip_queries_are_canonicalised_and_padded_as_its_config_says(
    hub: Hub, isolated_home: Path
) -> None:
    with Library(isolated_home) as lib:
        pack = acquire.download_pack(lib, SIGLIP2.name)
    assert pack.image.resize_mode == "squash" and pack.image.mean == (0.5, 0.5, 0.5)
    assert pack.tokenizer["clean"] == "canonicalize" and pack.context_length == 64
    encoder = TextEncoder(pack, device="cpu")
    loud, plain = encoder.tokenize(["Ein  Hund, am Strand!", "ein hund am strand"])
    assert loud.tolist() == plain.tolist()  # punctuation and case gone, as SigLIP's cleaning
    hf = HFTokenizer.from_file(str(pack.path / "tokenizer.json"))
    ids = hf.encode("ein hund am strand").ids
    assert plain.tolist() == ids + [0] * (64 - len(ids)) and ids[-1] == 1  # <eos>, then <pad>


def test_a_tokenizer_that_is_not_the_models_is_refused(
    hub: Hub, repos: dict[str, dict[str, bytes]], isolated_home: Path
) -> None:
    files = dict(repos[VIT_B_32.repo])
    files["textual/tokenizer.json"] = repos[NLLB.repo]["textual/tokenizer.json"]
    files["textual/tokenizer_config.json"] = repos[NLLB.repo]["textual/tokenizer_config.json"]
    hub.publish(VIT_B_32.repo, files)
    with Library(isolated_home) as lib:
        with pytest.raises(PackError, match="not the one this model was trained with"):
            acquire.download_pack(lib, VIT_B_32.name)
        assert lib.installed_packs() == []


def test_a_cut_download_resumes_where_it_stopped(hub: Hub, isolated_home: Path) -> None:
    hub.cut["visual/model.onnx"] = 5000  # the connection drops after 5000 bytes, once
    with Library(isolated_home) as lib:
        pack = acquire.download_pack(lib, VIT_B_32.name)
    assert pack.name == VIT_B_32.name
    first, *again = hub.gets("visual/model.onnx")
    assert first is None and again and again[0].startswith("bytes=") and again[0] != "bytes=0-"


def test_a_stopped_download_is_resumed_by_the_next_try(hub: Hub, isolated_home: Path) -> None:
    import threading

    from photosearch.errors import DownloadCancelled

    visual = f"{RCLIP.folder}/visual.onnx"
    release, stop = threading.Event(), threading.Event()
    hub.stall[visual] = (8192, release)  # sends 8192 bytes, then waits
    failures: list[BaseException] = []

    def first_try() -> None:
        with Library(isolated_home) as lib:
            try:
                acquire.download_pack(lib, RCLIP.name, cancel=stop)
            except DownloadCancelled as e:
                failures.append(e)

    worker = threading.Thread(target=first_try)
    worker.start()
    assert hub.stalled.wait(30)
    downloads = config.paths(isolated_home).cache / "downloads"

    def arrived() -> int:  # what the client has written of the graph (it counts, then writes)
        return sum(p.stat().st_size for p in downloads.rglob(".image_encoder.onnx.*.part"))

    deadline = time.monotonic() + 30
    while arrived() < 4096 and time.monotonic() < deadline:
        time.sleep(0.02)
    stop.set()
    release.set()
    worker.join(30)
    assert len(failures) == 1
    with Library(isolated_home) as lib:
        assert lib.installed_packs() == []
        pack = acquire.download_pack(lib, RCLIP.name)
    assert pack.name == RCLIP.name
    first, again = hub.gets(visual)
    assert first is None and again is not None and again.startswith("bytes=")


def test_the_window_installs_the_recommended_model_with_one_click_then_searches(
    no_leaked_threads: None, qtbot, hub: Hub, isolated_home: Path, tmp_path: Path
) -> None:
    from PySide6.QtCore import Qt
    from test_gui import WAIT_MS, close, open_window, search

    for i in range(3):
        write_photo(tmp_path / "photos" / f"p{i}.jpg", seed=20 + i)
    lib = Library(isolated_home)
    lib.add_folder(tmp_path / "photos")
    window = open_window(qtbot, lib, watch=True)
    qtbot.mouseClick(window.welcome.download_button, Qt.MouseButton.LeftButton)
    dialog = window.dialogs["models"]
    assert dialog.choice.currentData() == ("download", acquire.DEFAULT_READY)
    assert "needs a model pack" in dialog.intro.text() and not dialog.bar.isVisible()
    assert not dialog.source.isVisible()  # no repository to type for a catalogue choice
    with qtbot.waitSignal(dialog.installed, timeout=WAIT_MS) as got:
        qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    assert got.args == [acquire.DEFAULT_READY]
    qtbot.waitUntil(lambda: not dialog.running(), timeout=WAIT_MS)
    assert [(r.name, r.active, r.problem) for r in dialog.packs.rows] == [
        (acquire.DEFAULT_READY, True, None)
    ]
    assert "needs a model pack" not in dialog.intro.text()
    assert dialog.start_button.text() == "Installed" and not dialog.start_button.isEnabled()
    qtbot.waitUntil(lambda: window.info.indexed == 3, timeout=WAIT_MS)
    shown = search(qtbot, window, "a photo of a dog")
    assert len(shown[-1]) == 3
    dialog.close()
    close(window)


def test_a_ready_pack_takes_a_reranker_from_another_pack_and_then_refines(
    hub: Hub, isolated_home: Path, tiny_coca_pack: Path, tmp_path: Path
) -> None:
    for i in range(4):
        write_photo(tmp_path / "photos" / f"p{i}.jpg", seed=30 + i)
    with Library(isolated_home) as lib:
        pack = acquire.download_pack(lib, VIT_B_32.name)
        lib.add_folder(tmp_path / "photos")
        lib.index_photos()
        before = lib.search("a red circle", rerank=3, names=False)
        assert not before.refined and not before.can_refine
        with pytest.raises(PackError, match="has no reranker to give"):
            acquire.add_reranker(lib, pack.path, to=pack.name)
        lib.import_pack(tiny_coca_pack, activate=False)
        grown = acquire.add_reranker(lib, tiny_coca_pack.name)
        assert grown.name == pack.name and grown.id == pack.id  # the same dual encoder
        assert grown.reranker is not None and grown.reranker.source["from_pack"] == "tiny-coca"
        assert "beta" not in grown.manifest["reranker"]
        assert set(grown.manifest["files"]) >= {"tokenizer.json", "reranker_tokenizer.json"}
        assert lib.counts(pack.id)["indexed"] == 4  # nothing to encode again
        after = lib.search("a red circle", rerank=3, names=False)
        assert after.refined and after.rerank == 3 and after.can_refine
        assert [r.fast_score for r in after][3:] == [r.fast_score for r in before][3:]
        assert modelpack.verify(grown.path, full=True).manifest == grown.manifest


def test_the_command_line_adds_a_reranker_without_torch(
    hub: Hub, isolated_home: Path, tiny_coca_pack: Path
) -> None:
    assert _cli(isolated_home, "models", "download").returncode == 0  # the recommended one
    run = _cli(isolated_home, "models", "add-reranker", str(tiny_coca_pack))
    assert run.returncode == 0, run.stderr
    assert f"{acquire.DEFAULT_READY} can refine now, with the reranker of tiny-coca" in run.stdout
    listed = json.loads(_cli(isolated_home, "models", "list", "--json").stdout)
    assert [p["reranker"] for p in listed["model_packs"]] == ["photosearch-tiny-coca"]


def test_a_pack_that_refines_takes_another_reranker_and_keeps_its_tokenizer(
    isolated_home: Path, tiny_coca_pack: Path, tmp_path: Path
) -> None:
    """Its old reranker shared the dual encoder's tokenizer.json (the exporter writes one file
    when they are the same): replacing the reranker keeps the encoder's tokenizer."""
    import shutil

    other = tmp_path / "other-coca"
    shutil.copytree(tiny_coca_pack, other)
    with Library(isolated_home) as lib:
        lib.import_pack(tiny_coca_pack)
        assert lib.pack.manifest["reranker"]["tokenizer"]["file"] == "tokenizer.json"
        grown = acquire.add_reranker(lib, other, to=tiny_coca_pack.name)
        assert "tokenizer.json" in grown.manifest["files"]
        assert grown.manifest["reranker"]["tokenizer"]["file"] != "tokenizer.json"
        write_photo(tmp_path / "p" / "a.jpg", seed=3)
        lib.add_folder(tmp_path / "p")
        lib.index_photos()
        assert lib.search("a red circle", rerank=1).refined
