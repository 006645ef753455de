"""Write an open_clip ``SimpleTokenizer`` as a Hugging Face ``tokenizer.json`` for the runtime.

The runtime (:mod:`photosearch.tokenizer`) loads the file with the ``tokenizers`` library alone and
reproduces open_clip's token ids exactly; :func:`write_tokenizer` is the export-time half.

How the file reproduces open_clip:

* **Model**: a BPE model built from the tokenizer's own ``encoder`` (token -> id) and ``bpe_ranks``
  (merge -> rank), with ``</w>`` as the end-of-word suffix, no unknown token and no dropout.
* **Pre-tokenizer**: open_clip splits the cleaned text with the ``regex`` module, pattern
  ``<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+``
  and ``IGNORECASE``. ``tokenizers`` runs its regexes on Oniguruma, whose Unicode tables are older
  than the ``regex`` module's (tens of thousands of code points differ) and whose case-insensitive
  property classes behave differently (U+0345 is a letter there; ``regex`` matches it nowhere).
  So the exported pattern carries no property classes and no case folding at all: each class is
  written out as explicit code-point ranges, computed here by asking the very ``regex`` module
  open_clip uses which code points each of its classes (and each case-folded literal) matches.
  The file therefore reproduces the export-time ``regex`` module, whatever Oniguruma's tables are.
  Text between matches (whitespace, and the few code points no class matches) is removed, as
  ``re.findall`` drops it; a ``ByteLevel`` step then maps UTF-8 bytes to open_clip's byte alphabet.
* **Special tokens**: ``<start_of_text>`` and ``<end_of_text>`` are added tokens. open_clip
  recognises them in a text only where its regex scan lands on them (``"!<end_of_text>"`` is not
  one); the runtime handles those rare texts itself (see :mod:`photosearch.tokenizer`).

Cleaning (ftfy, HTML unescaping, whitespace, lower case) stays in Python in the runtime, because
the library's normalizers cannot reproduce ``ftfy`` and differ from ``str.lower`` (final sigma,
Unicode version).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import regex
from tokenizers import Tokenizer as HFTokenizer

from photosearch.tokenizer import build_clip_bpe

log = logging.getLogger(__name__)

TOKENIZER_FILE = "tokenizer.json"
KIND = "clip-bpe"
SPECIAL_TOKENS = ("<start_of_text>", "<end_of_text>")
CONTRACTIONS = ("'s", "'t", "'re", "'ve", "'m", "'ll", "'d")
END_OF_WORD = "</w>"
# The pattern open_clip's SimpleTokenizer compiles (with its special tokens in front).
_REFERENCE_PATTERN = (
    "|".join(SPECIAL_TOKENS)
    + "|"
    + "|".join(CONTRACTIONS)
    + r"""|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
)
_SURROGATES = range(0xD800, 0xE000)


def _bytes_to_unicode() -> dict[int, str]:
    """The byte alphabet of CLIP (and GPT-2): printable bytes map to themselves."""
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs), strict=True))


def _all_code_points() -> str:
    """Every Unicode scalar value (surrogates cannot appear in UTF-8 text), in order."""
    return "".join(chr(c) for c in range(0x110000) if c not in _SURROGATES)


def _matching(pattern: str, flags: int, universe: str) -> list[int]:
    """Code points for which ``pattern`` (one character wide) matches, under ``flags``."""
    return sorted({ord(m.group()) for m in regex.finditer(pattern, universe, flags)})


def _ranges(cps: list[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for c in cps:
        if out and out[-1][1] == c - 1:
            out[-1] = (out[-1][0], c)
        else:
            out.append((c, c))
    return out


def _onig_class(cps: list[int]) -> str:
    """An Oniguruma character class naming exactly ``cps``, as ``\\x{..}`` ranges."""
    if not cps:
        raise ValueError("empty character class")
    if len(cps) == 1 and chr(cps[0]).isalnum() and cps[0] < 128:
        return chr(cps[0])
    parts = []
    for a, b in _ranges(cps):
        parts.append(f"\\x{{{a:X}}}" if a == b else f"\\x{{{a:X}}}-\\x{{{b:X}}}")
    return "[" + "".join(parts) + "]"


def _literal(text: str, flags: int, universe: str) -> str:
    """``text`` as open_clip's regex matches it: each character with its case-folded variants."""
    return "".join(_onig_class(_matching(regex.escape(ch), flags, universe)) for ch in text)


def build_split_pattern(flags: int) -> str:
    """The Oniguruma pattern equivalent to open_clip's split regex compiled with ``flags``.

    Built from explicit code-point classes so that Oniguruma's own Unicode tables and case
    folding play no part; see the module docstring.
    """
    universe = _all_code_points()
    letters = _matching(r"[\p{L}]", flags, universe)
    numbers = _matching(r"[\p{N}]", flags, universe)
    others = _matching(r"[^\s\p{L}\p{N}]", flags, universe)
    if set(letters) & set(numbers) or set(letters) & set(others) or set(numbers) & set(others):
        raise ValueError("the regex module's letter, number and other classes overlap")
    literals = [_literal(t, flags, universe) for t in (*SPECIAL_TOKENS, *CONTRACTIONS)]
    alternatives = [
        *literals,
        _onig_class(letters) + "+",
        _onig_class(numbers),
        _onig_class(others) + "+",
    ]
    dropped = 0x110000 - len(_SURROGATES) - len(letters) - len(numbers) - len(others)
    log.debug(
        "split classes: %d letters, %d numbers, %d others, %d dropped code points",
        len(letters),
        len(numbers),
        len(others),
        dropped,
    )
    return "|".join(alternatives)


def _check_simple_tokenizer(oc_tokenizer: Any) -> None:
    """Refuse anything whose behaviour the exported file would not reproduce."""
    try:
        from open_clip.tokenizer import SimpleTokenizer
    except ImportError as e:  # pragma: no cover - export needs open_clip anyway
        raise ValueError("open_clip is needed to export a tokenizer") from e
    kind = type(oc_tokenizer).__name__
    if not isinstance(oc_tokenizer, SimpleTokenizer):
        raise ValueError(
            f"cannot export a {type(oc_tokenizer).__module__}.{kind}: only open_clip's "
            "SimpleTokenizer (CLIP byte-level BPE) is supported"
        )
    if getattr(oc_tokenizer, "reduction_fn", None) is not None:
        raise ValueError(
            f"cannot export this {kind}: it has a reduction_mask (random or syntax-based token "
            "dropping), which the runtime does not reproduce; only plain truncation is supported"
        )
    clean_fn = getattr(oc_tokenizer, "clean_fn", None)
    if getattr(clean_fn, "__name__", None) != "_clean_lower":
        raise ValueError(
            f"cannot export this {kind}: its clean mode is "
            f"{getattr(clean_fn, '__name__', clean_fn)!r}, only 'lower' is supported"
        )
    specials = [
        t for t, i in oc_tokenizer.encoder.items() if i >= 512 + len(oc_tokenizer.bpe_ranks)
    ]
    if tuple(sorted(specials, key=oc_tokenizer.encoder.__getitem__)) != SPECIAL_TOKENS:
        raise ValueError(
            f"cannot export this {kind}: its special tokens are {specials}, expected "
            f"{list(SPECIAL_TOKENS)} (additional special tokens are not supported)"
        )
    if oc_tokenizer.pat.pattern != _REFERENCE_PATTERN:
        raise ValueError(
            f"cannot export this {kind}: its split pattern {oc_tokenizer.pat.pattern!r} is not "
            "the CLIP pattern this exporter knows how to reproduce"
        )
    if dict(oc_tokenizer.byte_encoder) != _bytes_to_unicode():
        raise ValueError(f"cannot export this {kind}: its byte alphabet is not CLIP's")
    if not isinstance(oc_tokenizer.context_length, int) or oc_tokenizer.context_length < 2:
        raise ValueError(
            f"cannot export this {kind}: context_length {oc_tokenizer.context_length!r} "
            "is not an integer of at least 2"
        )


def build_tokenizer(oc_tokenizer: Any) -> HFTokenizer:
    """The ``tokenizers`` equivalent of an open_clip ``SimpleTokenizer`` (no cleaning step)."""
    _check_simple_tokenizer(oc_tokenizer)
    vocab = {str(t): int(i) for t, i in oc_tokenizer.encoder.items()}
    merges = [tuple(m) for m, _ in sorted(oc_tokenizer.bpe_ranks.items(), key=lambda kv: kv[1])]
    # The runtime builds the same file from a published vocabulary (rclip's): one builder.
    tok = build_clip_bpe(vocab, merges, build_split_pattern(int(oc_tokenizer.pat.flags)))
    for t in SPECIAL_TOKENS:
        if tok.token_to_id(t) != oc_tokenizer.encoder[t]:
            raise ValueError(f"special token {t} did not keep its id {oc_tokenizer.encoder[t]}")
    return tok


def write_tokenizer(oc_tokenizer: Any, out_dir: Path) -> dict[str, Any]:
    """Write ``out_dir/tokenizer.json`` for ``oc_tokenizer``; return the manifest's tokenizer entry.

    ``oc_tokenizer`` must be an open_clip ``SimpleTokenizer`` with the 'lower' clean mode and no
    reduction mask; anything else raises ``ValueError`` naming its type or the unsupported option.
    """
    tok = build_tokenizer(oc_tokenizer)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / TOKENIZER_FILE
    tmp = path.with_name(path.name + ".tmp")
    tok.save(str(tmp), pretty=False)
    tmp.replace(path)
    section = {
        "kind": KIND,
        "file": TOKENIZER_FILE,
        "context_length": int(oc_tokenizer.context_length),
        "sot_id": int(oc_tokenizer.sot_token_id),
        "eot_id": int(oc_tokenizer.eot_token_id),
        "pad_id": 0,
        "clean": "lower",
    }
    log.info("wrote %s (%d bytes): %s", path, path.stat().st_size, section)
    return section
