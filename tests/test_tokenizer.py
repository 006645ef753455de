"""The torch-free runtime tokenizer against open_clip's SimpleTokenizer, string for string."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np
import open_clip
import pytest

from photosearch.errors import PackError
from photosearch.export_onnx.tokenizer_export import write_tokenizer
from photosearch.tokenizer import Tokenizer

# ---------------------------------------------------------------------------------------------
# The corpus: deterministic, varied, and mean.
# ---------------------------------------------------------------------------------------------

# fmt: off
SUBJECTS = [
    "a dog", "two cats", "my grandmother", "the Eiffel Tower", "a red car", "children",
    "an old man", "a white house", "a bowl of ramen", "the sunset", "a golden retriever",
    "three kids", "a wedding cake", "snowy mountains", "a black-and-white photo", "my bike",
]
VERBS = ["on", "playing at", "next to", "left of", "in front of", "under", "behind", "near"]
PLACES = [
    "the beach", "a park", "the kitchen", "Paris", "the lake", "a birthday party", "Tokyo",
    "the mountains", "grandma's garden", "a rainy street", "the office", "New York City",
]
TAILS = ["", " at sunset", " in winter", " at night", ", blurry", " (2019)", "!!!", "...", "?"]
WORDS = [
    "photo", "picture", "image", "of", "the", "a", "an", "and", "with", "my", "our", "at", "in",
    "on", "dog", "cat", "beach", "sunset", "red", "blue", "green", "house", "car", "tree", "sky",
    "snow", "water", "mountain", "city", "street", "food", "party", "birthday", "wedding",
]
PUNCT = [
    *"!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", "...", "--", "—", "–", "…", "«", "»", "¿", "¡",
]
CONTRACTIONS = [
    "it's a dog", "don't touch", "they're here", "we've got", "I'm happy", "we'll see",
    "he'd go", "IT'S A DOG", "DON'T", "THEY'RE", "WE'VE", "I'M", "WE'LL", "HE'D", "'S", "'T",
    "dog'S bone", "rock'n'roll", "o'clock", "'s'", "''s", "'''", "x'sy", "it’s curly", "don‘t",
    "'ſ", "'ſt", "ſ'ſ", "cat'ſ toy", "'RE'VE'LL'D'M'T'S", "it'S", "I'D'VE", "y'all", "'twas",
    "the 90's", "'re", "'ve", "'ll", "'d", "'m", "' s", "'\u017ft", "'K", "'\u212a", "L'Oréal",
]
ACCENTED = [
    "café", "naïve", "crème brûlée", "Ångström", "São Paulo", "Zürich", "jalapeño", "Dvořák",
    "façade", "Łódź", "Øresund", "smörgåsbord", "piñata", "résumé", "Ḁḁ", "ẞ straße", "İstanbul",
    "ıi", "ΟΔΟΣ ΣΑΣ", "ὈΔΥΣΣΕΎΣ", "Σ", "ǅemal", "ﬁsh ﬂower", "ǈ", "Ⅻ", "ⓐⓑⒸ", "K\u212a",
    "a\u0345b", "ᾳ", "\u0345", "ŉ", "ǰ", "ΐ",
]
EMOJI = [
    "👍", "😀😃😄", "👨‍👩‍👧‍👦 family", "🇫🇷🇯🇵🇺🇸", "👋🏽 hi", "1️⃣2️⃣", "❤️", "🏳️‍🌈",
    "👩🏾‍💻", "🐶🐱", "dog🐕beach🏖️", "🧑‍🤝‍🧑", "🏴󠁧󠁢󠁳󠁣󠁴󠁿 scotland", "☀️🌧️", "#️⃣", "🫠🫶",
]
SCRIPTS = [
    "东京的夜景", "我的狗在海滩上", "日本語のテキスト", "カタカナとひらがな", "한국어 문장입니다",
    "قطة على الشاطئ", "مرحبا بالعالم", "кошка на пляже", "Привет, мир!", "ЁЖИК В ТУМАНЕ",
    "नमस्ते दुनिया", "समुद्र तट पर कुत्ता", "שלום עולם", "สวัสดีครับ", "Γειά σου Κόσμε",
    "ქართული", "Հայերեն", "ᏣᎳᎩ", "ꦗꦮ", "𝐛𝐨𝐥𝐝 𝑖𝑡𝑎𝑙𝑖𝑐", "ｆｕｌｌｗｉｄｔｈ", "ﾊﾝｶｸ",
    "𠜎𠜱𠝹", "e\u0301\u0302\u0303", "ﷺ", "ﷲ", "ᄀᄀᄀ각",
]
NUMBERS = [
    "1234567890", "3.14159", "1,000,000", "2024-01-05", "٣٤٥", "१२३", "１２３", "x² + y³", "½ ¾",
    "Ⅻ Ⅳ", "①②③", "10:30pm", "$19.99", "50%", "#1", "v2.0.1", "0x1F600", "1e-9", "007",
    "𝟙𝟚𝟛", "፩፪", "〇一二三", "⁰¹²", "₀₁₂", "IMG_20190405_123456.jpg", "DSC0001",
]
HTML = [
    "&amp;", "&lt;b&gt;bold&lt;/b&gt;", "Tom &amp; Jerry", "&amp;amp;", "&amp;amp;amp;", "&#39;",
    "&#x1F600;", "&nbsp;&nbsp;x", "&quot;quoted&quot;", "&copy; 2020", "&eacute;t&eacute;",
    "&lt;start_of_text&gt;", "&amp;lt;end_of_text&amp;gt;", "&notanentity;", "&#0;", "&#65",
    "&AMP;", "fish &amp chips", "&#x110000;", "&#xD800;", "&hellip;", "a&#10;b", "&#9;tab",
]
# open_clip honours a literal special token only where its regex scan lands on it.
SPECIALS = [
    "<start_of_text>", "<end_of_text>", "a photo <end_of_text> of a dog", "!<end_of_text>",
    "<START_OF_TEXT>", "<ſtart_of_text>", "x<start_of_text>y", "'<end_of_text>",
    "<start_of_text><end_of_text>", "<<start_of_text>", "<start_of_text>>", "1<end_of_text>",
    "'s<end_of_text>", "<start_of_text", "start_of_text>", "<end_of_text >", "< end_of_text>",
    "<END_of_text>!", "dog<start_of_text>cat<end_of_text>", "<start_of_text>" * 50,
    "é<end_of_text>", "🐶<start_of_text>", "\t<end_of_text>\n", "<sTaRt_Of_TeXt>",
]
WHITESPACE = [
    "a\tb", "a\nb", "a\r\nb", "a\xa0b", "a\u2003b", "a\u3000b", "a\x0bb\x0cc", "a\x85b",
    "a\x1cb\x1dc\x1e\x1f", "a\u2028b\u2029c", "  leading", "trailing  ", "\t\ttabs\t\t",
    "many     spaces", "a\u200bb", "a\u200db", "a\ufeffb", "a\u00adb", "a\u180eb", "a\u202fb",
    "\u205f", "a\x00b", "a\x7fb", "a\x1bb", "\r", "\n\n\n", "a \u0301b",
]
EMPTYISH = ["", " ", "   ", "\t", "\n", "\r\n", "\xa0", "\u3000", " \t\n\xa0 ", "\u2028"]
# fmt: on


def _mojibake(rng: random.Random, text: str) -> str:
    raw = text.encode("utf-8")
    codec = rng.choice(["latin-1", "cp1252", "cp1252", "macroman"])
    return raw.decode(codec, errors="replace" if codec == "cp1252" else "strict")


def _random_code_point(rng: random.Random, hi: int) -> str:
    while True:
        cp = rng.randrange(0, hi)
        if not 0xD800 <= cp <= 0xDFFF:
            return chr(cp)


def build_corpus(seed: int = 20240517) -> list[str]:
    rng = random.Random(seed)
    corpus: list[str] = []
    # Plain captions.
    for _ in range(300):
        text = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(PLACES)}{rng.choice(TAILS)}"
        corpus.append(text.capitalize() if rng.random() < 0.3 else text)
    # Punctuation-heavy.
    for _ in range(100):
        parts = [rng.choice(WORDS + PUNCT * 2) for _ in range(rng.randint(1, 15))]
        corpus.append(rng.choice(["", " "]).join(parts))
    # Fixed lists, as they are and in a sentence.
    fixed = CONTRACTIONS + ACCENTED + EMOJI + SCRIPTS + NUMBERS + HTML + SPECIALS + WHITESPACE
    corpus += fixed + EMPTYISH
    for text in fixed:
        corpus.append(f"{rng.choice(SUBJECTS)} {text} {rng.choice(PLACES)}")
    # Accents in both normal forms, upper and lower.
    for text in ACCENTED + SCRIPTS:
        for form in ("NFC", "NFD", "NFKC", "NFKD"):
            corpus.append(unicodedata.normalize(form, text))
        corpus.append(unicodedata.normalize("NFD", text.upper()))
    # Mojibake that ftfy repairs (and some it cannot).
    for text in ACCENTED + EMOJI[:8] + ["“quoted”", "it’s", "—dash—", "naïve café"]:
        try:
            corpus.append(_mojibake(rng, text))
        except UnicodeDecodeError:
            corpus.append(text.encode("utf-8").decode("latin-1"))
    # Random mixtures of everything.
    pools = [SUBJECTS, PLACES, PUNCT, CONTRACTIONS, ACCENTED, EMOJI, SCRIPTS, NUMBERS, HTML]
    for _ in range(150):
        parts = [rng.choice(rng.choice(pools)) for _ in range(rng.randint(2, 8))]
        sep = rng.choice([" ", "", "\t", "\n", "\xa0", "  "])
        corpus.append(sep.join(parts))
    # Random code points: anywhere, in the BMP, and near ASCII letters.
    for i in range(300):
        hi = [0x110000, 0x10000, 0x3000][i % 3]
        chars = [_random_code_point(rng, hi) for _ in range(rng.randint(1, 30))]
        if i % 4 == 0:
            chars = [c + rng.choice(["a", "'s", " ", "1", "!"]) for c in chars]
        corpus.append("".join(chars))
    # Very long texts, far beyond the context length.
    for _ in range(15):
        corpus.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(80, 600))))
    corpus += [
        "a" * 5000,
        "ab" * 3000,
        "9" * 300,
        "!?" * 400,
        "🐶" * 200,
        "東" * 300,
        "supercalifragilisticexpialidocious " * 40,
        " ".join(f"{rng.choice(ACCENTED)}'s" for _ in range(200)),
    ]
    return corpus


CORPUS = build_corpus()

MODELS = [("ViT-B-32", 77), ("coca_ViT-B-32", 76)]


@pytest.fixture(scope="module", params=MODELS, ids=[m for m, _ in MODELS])
def exported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Export once per model and module: (open_clip tokenizer, runtime, pack dir, section)."""
    model, _ = request.param
    oc = open_clip.get_tokenizer(model)
    pack = tmp_path_factory.mktemp(f"pack-{model}")
    section = write_tokenizer(oc, pack)
    return oc, Tokenizer.from_config(pack, section), pack, section


def _mismatch_report(texts: list[str], want: np.ndarray, got: np.ndarray) -> str:
    bad = [i for i in range(len(texts)) if not np.array_equal(want[i], got[i])]
    lines = [f"{len(bad)} of {len(texts)} strings differ from open_clip"]
    for i in bad[:5]:
        first = int(np.argmax(want[i] != got[i]))
        lines.append(
            f"  #{i} {texts[i][:80]!r}: first difference at {first}: "
            f"open_clip {want[i][max(0, first - 2) : first + 6].tolist()} "
            f"runtime {got[i][max(0, first - 2) : first + 6].tolist()}"
        )
    return "\n".join(lines)


def test_corpus_is_big_and_varied() -> None:
    assert len(CORPUS) >= 1200
    assert len(set(CORPUS)) > 1100
    assert build_corpus() == CORPUS  # deterministic
    assert "" in CORPUS and any(len(t) > 2000 for t in CORPUS)


def test_manifest_section(exported: Any) -> None:
    oc, tok, pack, section = exported
    assert section == {
        "kind": "clip-bpe",
        "file": "tokenizer.json",
        "context_length": oc.context_length,
        "sot_id": 49406,
        "eot_id": 49407,
        "pad_id": 0,
        "clean": "lower",
    }
    assert json.loads(json.dumps(section)) == section
    assert (pack / "tokenizer.json").is_file()
    assert tok.context_length == oc.context_length
    assert tok.vocab_size == len(oc.encoder)


def test_context_lengths() -> None:
    assert open_clip.get_tokenizer("ViT-B-32").context_length == 77
    assert open_clip.get_tokenizer("coca_ViT-B-32").context_length == 76


def test_whole_corpus_matches_open_clip(exported: Any) -> None:
    oc, tok, _, _ = exported
    want = oc(CORPUS).numpy()
    got = tok(CORPUS)
    assert got.dtype == np.int64
    assert got.shape == want.shape == (len(CORPUS), oc.context_length)
    assert np.array_equal(want, got), _mismatch_report(CORPUS, want, got)


def test_encode_matches_open_clip(exported: Any) -> None:
    oc, tok, _, _ = exported
    bad = [t for t in CORPUS if tok.encode(t) != oc.encode(t)]
    assert not bad, f"{len(bad)} of {len(CORPUS)} differ, first: {[b[:60] for b in bad[:5]]}"


@pytest.mark.parametrize("length", [1, 2, 5, 20, 100])
def test_explicit_context_length(exported: Any, length: int) -> None:
    oc, tok, _, _ = exported
    texts = CORPUS[::7]
    want = oc(texts, context_length=length).numpy()
    got = tok(texts, context_length=length)
    assert np.array_equal(want, got), _mismatch_report(texts, want, got)


def test_single_string_and_empty_batch(exported: Any) -> None:
    oc, tok, _, _ = exported
    text = "a photo of my dog on the beach"
    assert np.array_equal(tok(text), oc(text).numpy())
    assert tok(text).shape == (1, oc.context_length)
    assert tok([]).shape == (0, oc.context_length)
    assert tok([]).dtype == np.int64


def test_truncation_keeps_end_token(exported: Any) -> None:
    oc, tok, _, _ = exported
    ids = tok("dog " * 500)[0]
    assert ids[0] == oc.sot_token_id and ids[-1] == oc.eot_token_id
    assert (ids != 0).all()


def test_runtime_imports_neither_torch_nor_open_clip(exported: Any) -> None:
    oc, _, pack, section = exported
    texts = ["a dog on the beach", "<end_of_text> café 🐶", "!<start_of_text>", ""]
    script = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from photosearch.tokenizer import Tokenizer\n"
        f"tok = Tokenizer.from_config(Path({str(pack)!r}), json.loads({json.dumps(section)!r}))\n"
        f"ids = tok(json.loads({json.dumps(texts)!r})).tolist()\n"
        "heavy = [m for m in ('torch', 'open_clip') if m in sys.modules]\n"
        "print(json.dumps({'ids': ids, 'heavy': heavy}))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["heavy"] == []
    assert out["ids"] == oc(texts).numpy().tolist()


def test_missing_file_names_it(exported: Any, tmp_path: Path) -> None:
    _, _, _, section = exported
    with pytest.raises(PackError, match=r"tokenizer\.json") as info:
        Tokenizer.from_config(tmp_path, section)
    assert "missing" in str(info.value)
    assert info.value.file == "tokenizer.json"


@pytest.mark.parametrize(
    "content",
    [b"", b"{not json", b"\xff\xfe\x00garbage", b"{}", b"[1, 2, 3]", b'{"model": {"type": "BPE"}}'],
    ids=["empty", "bad-json", "not-utf8", "empty-object", "array", "incomplete"],
)
def test_corrupt_file_names_it(exported: Any, tmp_path: Path, content: bytes) -> None:
    _, _, _, section = exported
    (tmp_path / "tokenizer.json").write_bytes(content)
    with pytest.raises(PackError, match=r"tokenizer\.json"):
        Tokenizer.from_config(tmp_path, section)


def test_truncated_file_names_it(exported: Any, tmp_path: Path) -> None:
    _, _, pack, section = exported
    data = (pack / "tokenizer.json").read_bytes()
    (tmp_path / "tokenizer.json").write_bytes(data[: len(data) // 2])
    with pytest.raises(PackError, match=r"tokenizer\.json.*not valid JSON"):
        Tokenizer.from_config(tmp_path, section)


def test_foreign_tokenizer_file_is_refused(exported: Any, tmp_path: Path) -> None:
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import models

    _, _, _, section = exported
    HFTokenizer(models.WordLevel({"a": 0, "[UNK]": 1}, unk_token="[UNK]")).save(
        str(tmp_path / "tokenizer.json")
    )
    with pytest.raises(PackError, match=r"tokenizer\.json.*not BPE"):
        Tokenizer.from_config(tmp_path, section)


@pytest.mark.parametrize(
    "change",
    [
        {"kind": "sentencepiece"},
        {"clean": "canonicalize"},
        {"context_length": "77"},
        {"sot_id": None},
        {"eot_id": 1},
        {"file": "../tokenizer.json"},
    ],
)
def test_bad_config_is_refused(exported: Any, change: dict[str, Any]) -> None:
    _, _, pack, section = exported
    with pytest.raises(PackError):
        Tokenizer.from_config(pack, {**section, **change})


def test_missing_config_key_is_refused(exported: Any) -> None:
    _, _, pack, section = exported
    config = dict(section)
    del config["eot_id"]
    with pytest.raises(PackError, match="eot_id"):
        Tokenizer.from_config(pack, config)


def test_export_refuses_other_tokenizers(tmp_path: Path) -> None:
    from open_clip.tokenizer import HFTokenizer, SimpleTokenizer

    with pytest.raises(ValueError, match="HFTokenizer"):
        write_tokenizer(HFTokenizer.__new__(HFTokenizer), tmp_path)
    with pytest.raises(ValueError, match="str"):
        write_tokenizer("not a tokenizer", tmp_path)
    with pytest.raises(ValueError, match="reduction_mask"):
        write_tokenizer(SimpleTokenizer(reduction_mask="simple"), tmp_path)
    with pytest.raises(ValueError, match="clean mode"):
        write_tokenizer(SimpleTokenizer(clean="whitespace"), tmp_path)
    with pytest.raises(ValueError, match="special tokens"):
        write_tokenizer(SimpleTokenizer(additional_special_tokens=["<pad>"]), tmp_path)
    assert not (tmp_path / "tokenizer.json").exists()


def test_the_shipped_clip_split_pattern_is_the_exporters() -> None:
    """A ready model's CLIP vocabulary becomes, without torch, the very tokenizer file an
    export writes: the split pattern shipped in resources is the one the exporter computes from
    open_clip's regex, and the vocabulary read from the published .gz is open_clip's."""
    import open_clip
    from open_clip.tokenizer import default_bpe

    from photosearch import resources
    from photosearch.export_onnx.tokenizer_export import build_tokenizer
    from photosearch.tokenizer import build_clip_bpe, read_clip_vocab

    shipped = resources.resource_path("tokenizers", "clip_split_pattern.txt").read_text().strip()
    vocab, merges = read_clip_vocab(Path(default_bpe()))
    ours = build_clip_bpe(vocab, merges, shipped)
    assert ours.to_str() == build_tokenizer(open_clip.get_tokenizer("ViT-B-32")).to_str()
