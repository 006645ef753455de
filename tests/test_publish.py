"""packaging/publish_packs.py: a pack exported with the parity gate, carded and uploaded with
huggingface_hub to the local hub, then downloaded and installed as any user would."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from hubserver import Hub, HubServer

from photosearch import acquire
from photosearch.library import Library

ROOT = Path(__file__).resolve().parent.parent


def _publisher():
    spec = importlib.util.spec_from_file_location(
        "publish_packs", ROOT / "packaging" / "publish_packs.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Hub:
    with HubServer() as h:
        monkeypatch.setenv("HF_ENDPOINT", h.endpoint)
        monkeypatch.setenv("HF_TOKEN", "hf_test_token")
        yield h


def test_a_published_pack_is_downloaded_and_installed(
    hub: Hub, isolated_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    publish = _publisher()
    repo = "photosearch/tiny-coca"
    argv = ["--model", "photosearch-tiny-coca", "--pretrained", "none", "--reranker", "self"]
    argv += ["--name", "tiny-coca"]
    assert publish.main([*argv, "--quantize", "none", "--licence", "MIT", "--repo", repo]) == 0
    assert f"photosearch models download {repo}" in capsys.readouterr().out
    files = hub.repos[repo]
    card = files["README.md"].decode()
    assert card.startswith("---\nlicense: mit\n") and "cross-attention" in card
    for name in files:
        if name != "README.md":
            assert f"| `{name}` |" in card or name == "manifest.json"
    assert hub.messages == ["photosearch pack pack"] or hub.messages[0].startswith(
        "photosearch pack"
    )

    with Library(isolated_home) as lib:
        pack = acquire.download_pack(lib, repo)
        assert pack.name == "tiny-coca" and pack.reranker is not None
        assert set(pack.manifest["files"]) | {"manifest.json", "README.md"} == set(files)


def test_licence_identifiers_follow_the_catalogue() -> None:
    publish = _publisher()
    assert publish.licence_id(acquire.choice("mobileclip2-s2").licence) == "apple-amlr"
    assert publish.licence_id(acquire.choice("vit-b-32-256").licence) == "mit"
