"""Text to token ids without torch or open_clip: open_clip's ``SimpleTokenizer``, reproduced
exactly from a pack's ``tokenizer.json`` (written by ``photosearch.export_onnx.tokenizer_export``),
or a published model's own ``tokenizer.json`` run the way that model's runtime runs it.
"""

from __future__ import annotations

import html
import json
import logging
import string
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import ftfy
import numpy as np
from numpy.typing import NDArray
from tokenizers import Tokenizer as HFTokenizer
from tokenizers import models

from photosearch.errors import PackError

log = logging.getLogger(__name__)

KIND = "clip-bpe"
END_OF_WORD = "</w>"
_REQUIRED: dict[str, type] = {
    "kind": str,
    "file": str,
    "context_length": int,
    "sot_id": int,
    "eot_id": int,
    "pad_id": int,
    "clean": str,
}


def clean_lower(text: str) -> str:
    """open_clip's 'lower' cleaning, step for step: ftfy, HTML unescaped twice, whitespace, case."""
    text = ftfy.fix_text(text)
    text = html.unescape(html.unescape(text))
    text = text.strip()
    text = " ".join(text.split())
    return text.strip().lower()


class Tokenizer:
    """CLIP byte-level BPE; ``tok(texts)`` equals open_clip's ``tokenizer(texts).numpy()``.

    Cleaning runs in Python (``ftfy`` and ``str.lower`` have no exact ``tokenizers`` counterpart);
    splitting and BPE run in the ``tokenizers`` library, batched. Texts that literally contain a
    special token (``<start_of_text>``, ``<end_of_text>``) take a slower path: open_clip honours
    such a token only where its regex scan lands on it (not in ``"!<end_of_text>"``, where the
    ``!<`` is one punctuation run), while ``tokenizers`` would cut added tokens out everywhere.
    """

    def __init__(
        self,
        hf: HFTokenizer,
        *,
        context_length: int,
        sot_id: int,
        eot_id: int,
        pad_id: int = 0,
        source: str = "tokenizer",
    ) -> None:
        self._hf = hf
        self.context_length = context_length
        self.sot_id = sot_id
        self.eot_id = eot_id
        self.pad_id = pad_id
        self.source = source
        self._pre = hf.pre_tokenizer
        self._model = hf.model
        self._specials: dict[str, int] = {
            tok.content: int(i) for i, tok in hf.get_added_tokens_decoder().items()
        }

    @classmethod
    def from_config(cls, pack_dir: Path, config: Mapping[str, Any]) -> Tokenizer:
        """Load the tokenizer a manifest's ``tokenizer`` entry describes; ``PackError`` if unfit."""
        pack = str(pack_dir)
        if not isinstance(config, Mapping):
            raise PackError(
                f"tokenizer entry is a {type(config).__name__}, not an object", pack=pack
            )
        name = config.get("file")
        where = name if isinstance(name, str) and name else None
        for key, kind in _REQUIRED.items():
            value = config.get(key)
            if not isinstance(value, kind) or isinstance(value, bool):
                raise PackError(
                    f"tokenizer entry field {key!r} is missing or not a {kind.__name__} "
                    f"(got {value!r})",
                    pack=pack,
                    file=where,
                )
        if config["kind"] != KIND:
            raise PackError(
                f"tokenizer kind {config['kind']!r} is not supported (this photosearch reads "
                f"{KIND!r})",
                pack=pack,
                file=where,
            )
        if config["clean"] != "lower":
            raise PackError(
                f"tokenizer clean mode {config['clean']!r} is not supported (only 'lower')",
                pack=pack,
                file=where,
            )
        if Path(name).name != name or name in (".", ".."):
            raise PackError("tokenizer file must be a plain file name", pack=pack, file=name)
        if config["context_length"] < 2:
            raise PackError(
                f"tokenizer context_length {config['context_length']} is below 2",
                pack=pack,
                file=name,
            )
        path = Path(pack_dir) / name
        hf = _load(path, pack, name)
        _check(hf, config, pack, name)
        tok = cls(
            hf,
            context_length=config["context_length"],
            sot_id=config["sot_id"],
            eot_id=config["eot_id"],
            pad_id=config["pad_id"],
            source=str(path),
        )
        probe = tok.encode("a")
        if probe != [hf.token_to_id("a" + END_OF_WORD)]:
            raise PackError(
                f"is not a CLIP byte-level BPE tokenizer ('a' encodes as {probe})",
                pack=pack,
                file=name,
            )
        log.debug("loaded %s (context length %d)", path, tok.context_length)
        return tok

    @property
    def vocab_size(self) -> int:
        return int(self._hf.get_vocab_size(with_added_tokens=True))

    def token_id(self, token: str) -> int | None:
        """The id of one token of the vocabulary, or None."""
        found = self._hf.token_to_id(token)
        return None if found is None else int(found)

    def encode(self, text: str) -> list[int]:
        """Token ids of one text, without the start and end tokens."""
        return self.encode_batch([text])[0]

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text, without the start and end tokens."""
        cleaned: list[str] = []
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"text {i} is a {type(text).__name__}, not a str")
            cleaned.append(clean_lower(text))
        out: list[list[int]] = [[] for _ in cleaned]
        plain: list[int] = []
        for i, text in enumerate(cleaned):
            if any(s in text for s in self._specials):
                out[i] = self._encode_with_specials(text)
            else:
                plain.append(i)
        if plain:
            encodings = self._hf.encode_batch([cleaned[i] for i in plain], add_special_tokens=False)
            for i, enc in zip(plain, encodings, strict=True):
                out[i] = enc.ids
        return out

    def _encode_with_specials(self, text: str) -> list[int]:
        """Split exactly as open_clip's regex does, then map whole special pieces to their ids."""
        ids: list[int] = []
        for piece, _ in self._pre.pre_tokenize_str(text):
            special = self._specials.get(piece)
            if special is not None:
                ids.append(special)
            else:
                ids.extend(t.id for t in self._model.tokenize(piece))
        return ids

    def __call__(
        self, texts: str | Sequence[str], context_length: int | None = None
    ) -> NDArray[np.int64]:
        """Token ids, shape ``[len(texts), context_length]``: start, text, end, then padding.

        Texts too long keep their first ``context_length - 1`` tokens and end with the end token,
        as open_clip's truncation does.
        """
        if isinstance(texts, str):
            texts = [texts]
        length = context_length or self.context_length
        if not isinstance(length, int) or length < 1:
            raise ValueError(f"context_length must be a positive int, not {length!r}")
        rows = self.encode_batch(texts)
        result = np.full((len(rows), length), self.pad_id, dtype=np.int64)
        for i, ids in enumerate(rows):
            tokens = [self.sot_id, *ids, self.eot_id]
            if len(tokens) > length:
                tokens = tokens[:length]
                tokens[-1] = self.eot_id
            result[i, : len(tokens)] = tokens
        return result

    def decode(self, ids: Sequence[int]) -> str:
        """Text of token ids (special tokens and padding left out); for diagnostics."""
        keep = [int(i) for i in ids if int(i) not in (self.pad_id, self.sot_id, self.eot_id)]
        return str(self._hf.decode(keep, skip_special_tokens=True)).strip()


def _load(path: Path, pack: str, name: str) -> HFTokenizer:
    if not path.is_file():
        raise PackError("tokenizer file is missing", pack=pack, file=name)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise PackError(f"tokenizer file is unreadable ({e})", pack=pack, file=name) from e
    try:
        return HFTokenizer.from_str(text)
    except Exception as e:  # the library raises a bare Exception for every kind of bad file
        try:
            json.loads(text)  # only now: parsing it twice costs tens of milliseconds
        except json.JSONDecodeError as je:
            raise PackError(f"tokenizer file is not valid JSON ({je})", pack=pack, file=name) from e
        raise PackError(
            f"tokenizer file is not a valid tokenizers file ({e})", pack=pack, file=name
        ) from e


def _check(hf: HFTokenizer, config: Mapping[str, Any], pack: str, name: str) -> None:
    problems: list[str] = []
    if not isinstance(hf.model, models.BPE):
        problems.append(f"its model is {type(hf.model).__name__}, not BPE")
    elif hf.model.end_of_word_suffix != END_OF_WORD:
        problems.append(f"its end-of-word suffix is {hf.model.end_of_word_suffix!r}, not '</w>'")
    if hf.pre_tokenizer is None:
        problems.append("it has no pre-tokenizer")
    if hf.normalizer is not None:
        problems.append("it has a normalizer (cleaning belongs to the runtime)")
    for key, token in (("sot_id", "<start_of_text>"), ("eot_id", "<end_of_text>")):
        if hf.token_to_id(token) != config[key]:
            problems.append(
                f"{token} has id {hf.token_to_id(token)}, the manifest says {config[key]}"
            )
    if problems:
        raise PackError("tokenizer file does not fit: " + "; ".join(problems), pack=pack, file=name)


# -- tokenizers taken as a published model ships them -------------------------------------------

HUB_KIND = "hf-tokenizers"
CLEAN_MODES = ("whitespace", "canonicalize")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def clean_source(text: str, mode: str) -> str:
    """Cleaning as the model's own runtime does it before its ``tokenizer.json`` sees the text:
    runs of whitespace become one space; ``canonicalize`` (SigLIP's) also drops ASCII
    punctuation and lower-cases."""
    text = " ".join(text.split())
    if mode == "canonicalize":
        text = text.translate(_PUNCTUATION).lower()
    return text


class HubTokenizer:
    """A published model's own ``tokenizer.json`` (CLIP BPE, SentencePiece, Gemma, …), run as
    that model's runtime runs it: cleaned, optionally prefixed with a language code, then
    encoded with the file's own normalizer and post-processor, padded with the file's pad token
    and cut to the context length."""

    def __init__(
        self,
        hf: HFTokenizer,
        *,
        context_length: int,
        pad_id: int,
        clean: str,
        languages: Mapping[str, str] | None = None,
        source: str = "tokenizer",
    ) -> None:
        self._hf = hf
        # Set once: the library's settings are shared by every thread that encodes with it.
        hf.no_padding()
        hf.enable_truncation(max_length=context_length)
        self.context_length = context_length
        self.pad_id = pad_id
        self.clean = clean
        self.languages = dict(languages or {})  # language tag -> the code put before the text
        self.source = source

    @classmethod
    def from_config(cls, pack_dir: Path, config: Mapping[str, Any]) -> HubTokenizer:
        pack = str(pack_dir)
        name = config.get("file")
        if not isinstance(name, str) or Path(name).name != name or name in ("", ".", ".."):
            raise PackError("tokenizer file must be a plain file name", pack=pack, file=name)
        length, pad, clean = config.get("context_length"), config.get("pad_id"), config.get("clean")
        if not isinstance(length, int) or isinstance(length, bool) or length < 2:
            raise PackError(f"tokenizer context_length {length!r} is not an int ≥ 2", pack=pack)
        if not isinstance(pad, int) or isinstance(pad, bool) or pad < 0:
            raise PackError(f"tokenizer pad_id {pad!r} is not an int ≥ 0", pack=pack)
        if clean not in CLEAN_MODES:
            raise PackError(
                f"tokenizer clean mode {clean!r} is not one of {CLEAN_MODES}", pack=pack
            )
        languages = config.get("languages") or {}
        if not isinstance(languages, Mapping):
            raise PackError("tokenizer languages entry is not an object", pack=pack, file=name)
        path = Path(pack_dir) / name
        hf = _load(path, pack, name)
        for code in languages.values():
            if hf.token_to_id(str(code)) is None:
                raise PackError(
                    f"language code {code!r} is not a token of it", pack=pack, file=name
                )
        return cls(
            hf,
            context_length=length,
            pad_id=pad,
            clean=clean,
            languages=languages,
            source=str(path),
        )

    @property
    def vocab_size(self) -> int:
        return int(self._hf.get_vocab_size(with_added_tokens=True))

    def token_id(self, token: str) -> int | None:
        """The id of one token of the vocabulary, or None."""
        found = self._hf.token_to_id(token)
        return None if found is None else int(found)

    def prepared(self, text: str, language: str | None = None) -> str:
        """The text as it goes into the file's pipeline: cleaned, language code in front."""
        if not isinstance(text, str):
            raise TypeError(f"text is a {type(text).__name__}, not a str")
        text = clean_source(text, self.clean)
        if language and self.languages:
            code = self.languages.get(language) or self.languages.get(language.split("-")[0])
            if code is not None:
                text = f"{code}{text}"
        return text

    def encode(self, text: str, language: str | None = None) -> list[int]:
        """Token ids of one text as the model sees them, before padding."""
        return list(self._hf.encode(self.prepared(text, language)).ids)

    def __call__(
        self,
        texts: str | Sequence[str],
        context_length: int | None = None,
        language: str | None = None,
    ) -> NDArray[np.int64]:
        """Token ids, shape ``[len(texts), context_length]``; a text too long keeps what the
        file's truncation keeps (its end token too)."""
        if isinstance(texts, str):
            texts = [texts]
        length = context_length or self.context_length
        if length != self.context_length:
            raise ValueError(f"this tokenizer cuts texts at {self.context_length}, not {length}")
        encodings = self._hf.encode_batch([self.prepared(t, language) for t in texts])
        result = np.full((len(encodings), length), self.pad_id, dtype=np.int64)
        for i, enc in enumerate(encodings):
            result[i, : len(enc.ids)] = enc.ids
        return result

    def decode(self, ids: Sequence[int]) -> str:
        keep = [int(i) for i in ids if int(i) != self.pad_id]
        return str(self._hf.decode(keep, skip_special_tokens=True)).strip()


def load_tokenizer(pack_dir: Path, config: Mapping[str, Any]) -> Tokenizer | HubTokenizer:
    """The tokenizer a manifest's ``tokenizer`` entry describes, of whichever kind it is."""
    if isinstance(config, Mapping) and config.get("kind") == HUB_KIND:
        return HubTokenizer.from_config(pack_dir, config)
    return Tokenizer.from_config(pack_dir, config)


# -- building CLIP's tokenizer from its published vocabulary -----------------------------------

CLIP_SPECIALS = ("<start_of_text>", "<end_of_text>")


def _byte_chars() -> dict[int, str]:
    """CLIP's (and GPT-2's) byte alphabet: printable bytes stand for themselves, the others
    for code points from 256 on, in byte order."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    printable += range(ord("®"), ord("ÿ") + 1)
    rest = [b for b in range(256) if b not in printable]
    return {**{b: chr(b) for b in printable}, **{b: chr(256 + i) for i, b in enumerate(rest)}}


def read_clip_vocab(path: Path) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """The vocabulary and merges of CLIP's ``bpe_simple_vocab_16e6.txt.gz`` (as open_clip's
    ``SimpleTokenizer`` builds them): bytes, bytes ending a word, the merges, the two specials."""
    import gzip

    try:
        lines = gzip.decompress(path.read_bytes()).decode("utf-8").split("\n")
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise PackError(f"not a readable CLIP vocabulary ({e})", file=path.name) from e
    merges = [tuple(m.split()) for m in lines[1 : 49152 - 256 - 2 + 1]]
    if len(merges) != 48894 or any(len(m) != 2 for m in merges):
        raise PackError("not CLIP's BPE vocabulary (wrong number of merges)", file=path.name)
    alphabet = list(_byte_chars().values())  # printable bytes first, as open_clip lists them
    tokens = [*alphabet, *(a + END_OF_WORD for a in alphabet), *("".join(m) for m in merges)]
    tokens += CLIP_SPECIALS
    return {t: i for i, t in enumerate(tokens)}, [(a, b) for a, b in merges]


def build_clip_bpe(
    vocab: dict[str, int], merges: list[tuple[str, str]], split_pattern: str
) -> HFTokenizer:
    """CLIP's byte-level BPE as a ``tokenizers`` file: the split ``split_pattern`` (open_clip's
    regex written out as code-point classes), bytes mapped to CLIP's alphabet, ``</w>`` ending
    each word, the two special tokens added. No cleaning step: :class:`Tokenizer` cleans."""
    from tokenizers import AddedToken, Regex, decoders, pre_tokenizers

    model = models.BPE(vocab=vocab, merges=merges, end_of_word_suffix=END_OF_WORD, fuse_unk=False)
    tok = HFTokenizer(model)
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(split_pattern), behavior="removed", invert=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    space = _byte_chars()[ord(" ")]
    tok.decoder = decoders.Sequence([decoders.Replace(END_OF_WORD, space), decoders.ByteLevel()])
    tok.add_special_tokens(
        [AddedToken(t, special=True, normalized=False, single_word=False) for t in CLIP_SPECIALS]
    )
    return tok
