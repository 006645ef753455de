"""Repositories laid out like the published ones photosearch installs without torch (Immich's
``immich-app/<model>`` and rclip's ``yurijmikhalevich/rclip-models``), made here from tiny
random-weight open_clip models, to serve from the local hub (``hubserver``).

What each holds follows how those projects read their repositories: Immich's
``config.json``, ``visual/{model.onnx,preprocess_cfg.json}`` and ``textual/{model.onnx,
tokenizer.json,tokenizer_config.json,special_tokens_map.json}`` (graphs exported for one input,
inputs ``image`` (float32) and ``text`` (int32), output ``embedding`` already normalised);
rclip's ``<folder>/visual.onnx`` and ``<folder>/textual.onnx`` (input ``input``, pixels in
float16, outputs not normalised) and ``tokenizer/bpe_simple_vocab_16e6.txt.gz``.
"""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path
from typing import Any

import open_clip
import torch
from open_clip.tokenizer import default_bpe
from tokenizers import AddedToken, Regex, decoders, models, normalizers, pre_tokenizers, processors
from tokenizers import Tokenizer as HFTokenizer
from tokenizers.trainers import BpeTrainer

from photosearch.acquire.catalogue import FLORES_200, MULTILINGUAL_TEXTS
from photosearch.tokenizer import read_clip_vocab

TINY = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}
# Sentences in four languages: what the multilingual test tokenizer is trained on.
CORPUS = [
    *MULTILINGUAL_TEXTS,
    "a dog on the beach",
    "a red car in the city",
    "eine rote Katze schläft auf dem Sofa",
    "zwei Kinder spielen im Schnee",
    "城市里的一辆红色汽车",
    "两个孩子在雪地里玩",
    "قطة حمراء نائمة على الأريكة",
    "طفلان يلعبان في الثلج",
]


def tiny_model(
    name: str, text: dict[str, Any] | None = None, **vision: Any
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """A tiny open_clip CLIP with random weights (fixed seed) and its configuration."""
    cfg = json.loads(json.dumps(TINY))
    cfg["vision_cfg"].update(vision)
    cfg["text_cfg"].update(text or {})
    vocab = cfg["text_cfg"].get("vocab_size")
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / f"{name}.json").write_text(json.dumps(cfg))
        open_clip.add_model_config(Path(tmp) / f"{name}.json")
    torch.manual_seed(0)
    model = open_clip.create_model(name, pretrained=None)
    model.eval()
    assert vocab == cfg["text_cfg"]["vocab_size"]
    return model, cfg


class _Visual(torch.nn.Module):
    def __init__(self, model: torch.nn.Module, *, normalize: bool, half: bool) -> None:
        super().__init__()
        self.model, self.normalize, self.half = model, normalize, half

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(
            image.float() if self.half else image, normalize=self.normalize
        )


class _Textual(torch.nn.Module):
    def __init__(self, model: torch.nn.Module, *, normalize: bool) -> None:
        super().__init__()
        self.model, self.normalize = model, normalize

    def forward(self, text: torch.Tensor) -> torch.Tensor:
        return self.model.encode_text(text.long(), normalize=self.normalize)


def _onnx(
    module: torch.nn.Module, example: torch.Tensor, name: str, out: str, dynamic: bool
) -> bytes:
    torch.backends.mha.set_fastpath_enabled(False)
    buffer = io.BytesIO()
    axes = {name: {0: "batch"}, out: {0: "batch"}} if dynamic else None
    with torch.no_grad():
        torch.onnx.export(
            module, (example,), buffer, input_names=[name], output_names=[out],
            dynamic_axes=axes, opset_version=17, dynamo=False,
        )  # fmt: skip
    return buffer.getvalue()


# -- tokenizers laid out like the published ones ---------------------------------------------

_CLIP_SPLIT = (
    r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d"
    r"|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"
)


def hf_clip_tokenizer() -> HFTokenizer:
    """CLIP's tokenizer as Hugging Face saves it (``openai/clip-vit-base-patch32``'s
    ``tokenizer.json``): NFC, whitespace and lower-casing in the normalizer, CLIP's split and
    byte alphabet, ``<|startoftext|>``/``<|endoftext|>`` put around the text by the
    post-processor; the vocabulary is CLIP's own."""
    vocab, merges = read_clip_vocab(Path(default_bpe()))
    vocab = {
        {"<start_of_text>": "<|startoftext|>", "<end_of_text>": "<|endoftext|>"}.get(t, t): i
        for t, i in vocab.items()
    }
    tok = HFTokenizer(
        models.BPE(vocab=vocab, merges=merges, unk_token="<|endoftext|>", end_of_word_suffix="</w>")
    )
    tok.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_CLIP_SPLIT), behavior="removed", invert=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    tok.post_processor = processors.RobertaProcessing(
        ("<|endoftext|>", 49407), ("<|startoftext|>", 49406), add_prefix_space=False
    )
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(
        [AddedToken(t, special=True) for t in ("<|startoftext|>", "<|endoftext|>")]
    )
    return tok


def nllb_like_tokenizer() -> HFTokenizer:
    """A SentencePiece-style BPE laid out as NLLB's ``tokenizer.json`` is: ``<s>``, ``<pad>``,
    ``</s>``, ``<unk>`` at ids 0–3, the FLORES-200 language codes as special tokens, and the
    post-processor NLLB's tokenizer saves (``eng_Latn $A </s>``); trained here on four
    languages."""
    tok = HFTokenizer(models.BPE(unk_token="<unk>"))
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    specials = ["<s>", "<pad>", "</s>", "<unk>", *sorted(set(FLORES_200.values()))]
    tok.train_from_iterator(CORPUS * 4, BpeTrainer(vocab_size=400, special_tokens=specials))
    tok.post_processor = processors.TemplateProcessing(
        single="eng_Latn $A </s>",
        special_tokens=[("eng_Latn", tok.token_to_id("eng_Latn")), ("</s>", 2)],
    )
    return tok


def gemma_like_tokenizer() -> HFTokenizer:
    """A byte-fallback BPE laid out as SigLIP 2's (Gemma's) ``tokenizer.json`` is: ``<pad>``,
    ``<eos>``, ``<bos>``, ``<unk>`` at ids 0–3, spaces as ``▁`` in the normalizer, ``<eos>``
    after the text; trained here on four languages."""
    tok = HFTokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    tok.normalizer = normalizers.Replace(" ", "▁")
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback()])
    specials = ["<pad>", "<eos>", "<bos>", "<unk>"]
    tok.train_from_iterator(CORPUS * 4, BpeTrainer(vocab_size=400, special_tokens=specials))
    tok.post_processor = processors.TemplateProcessing(
        single="$A <eos>", special_tokens=[("<eos>", 1)]
    )
    return tok


# -- the repositories --------------------------------------------------------------------------


def immich_repo(
    model: torch.nn.Module,
    cfg: dict[str, Any],
    tokenizer: HFTokenizer,
    pad_token: str,
    context_length: int = 77,
    **preprocessing: Any,
) -> dict[str, bytes]:
    """The files of an ``immich-app/<model>`` repository for ``model``; ``preprocessing``
    overrides open_clip's (SigLIP's squash and 0.5 mean and std)."""
    size = cfg["vision_cfg"]["image_size"]
    preprocess = {**open_clip.get_model_preprocess_cfg(model), **preprocessing}
    visual = _onnx(
        _Visual(model, normalize=True, half=False),
        torch.randn(1, 3, size, size),
        "image",
        "embedding",
        False,
    )
    textual = _onnx(
        _Textual(model, normalize=True),
        torch.ones(1, context_length, dtype=torch.int32),
        "text",
        "embedding",
        False,
    )
    return {
        "config.json": json.dumps(cfg).encode(),
        "README.md": b"random weights, laid out as Immich's repositories are\n",
        "visual/model.onnx": visual,
        "visual/preprocess_cfg.json": json.dumps(preprocess).encode(),
        "textual/model.onnx": textual,
        "textual/tokenizer.json": tokenizer.to_str().encode(),
        "textual/tokenizer_config.json": json.dumps(
            {"pad_token": pad_token, "model_max_length": context_length}
        ).encode(),
        "textual/special_tokens_map.json": json.dumps({"pad_token": pad_token}).encode(),
    }


def rclip_repo(model: torch.nn.Module, folder: str) -> dict[str, bytes]:
    """The files of ``yurijmikhalevich/rclip-models`` for ``model`` (which takes 256² pixels)."""
    visual = _onnx(
        _Visual(model, normalize=False, half=True),
        torch.randn(2, 3, 256, 256).half(),
        "input",
        "output",
        True,
    )
    textual = _onnx(
        _Textual(model, normalize=False),
        torch.ones(2, 77, dtype=torch.int64),
        "input",
        "output",
        True,
    )
    return {
        f"{folder}/visual.onnx": visual,
        f"{folder}/textual.onnx": textual,
        "tokenizer/bpe_simple_vocab_16e6.txt.gz": Path(default_bpe()).read_bytes(),
    }
