"""The short curated catalogue: the model packs ``models prepare`` can make (which open_clip
weights each needs, how large and fast it is), and the ready models ``models download`` turns
into packs without torch (published ONNX graphs: where they are, their quality with its source,
their languages and licence)."""

from __future__ import annotations

from dataclasses import dataclass

from photosearch.errors import PackError


@dataclass(frozen=True)
class Weights:
    """Published open_clip weights: the architecture, the tag, where the hub keeps them."""

    model: str
    tag: str
    repo: str
    files: tuple[str, ...] = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
    mb: int = 0  # about how much to download (MB = 10⁶ bytes); the server says exactly


@dataclass(frozen=True)
class Choice:
    """A model pack ``models prepare`` can make, with what a person needs to choose."""

    name: str
    title: str
    encoder: Weights
    reranker: Weights | None
    pack_mb: int  # the installed pack (int8 dual encoder, fp32 reranker), about
    speed: str
    quality: str
    licence: str = ""

    @property
    def download_mb(self) -> int:
        return self.encoder.mb + (self.reranker.mb if self.reranker else 0)


COCA_B32 = Weights(
    "coca_ViT-B-32",
    "mscoco_finetuned_laion2b_s13b_b90k",
    "laion/mscoco_finetuned_CoCa-ViT-B-32-laion2B-s13B-b90k",
    mb=1014,
)

# Speeds measured on 2 CPU cores (benchmarks/results/encoders.md) where marked, else estimated
# from the models' compute; quality is the published ImageNet zero-shot accuracy.

CATALOGUE: tuple[Choice, ...] = (
    Choice(
        "mobileclip2-s2",
        "MobileCLIP2-S2 + CoCa ViT-B-32 reranker (recommended)",
        Weights("MobileCLIP2-S2", "dfndr2b", "timm/MobileCLIP2-S2-OpenCLIP", mb=396),
        COCA_B32,
        pack_mb=1280,
        speed="as fast as MobileCLIP-S2 (the same architecture): about 4 photos/s on 2 CPU "
        "cores (measured for MobileCLIP-S2); queries in ~0.1 s",
        quality="77.2 % ImageNet zero-shot, Flickr30k R@1 74.8, COCO R@1 48.8 (Apple's "
        "MobileCLIP2 table, Faghri et al. 2025): the best accuracy for its speed",
        licence="Apple's model licence for MobileCLIP (apple-amlr, as its Hugging Face card "
        "says): read its terms before use; the CoCa reranker MIT",
    ),
    Choice(
        "mobileclip-s2",
        "MobileCLIP-S2 + CoCa ViT-B-32 reranker",
        Weights("MobileCLIP-S2", "datacompdr", "apple/MobileCLIP-S2-OpenCLIP", mb=396),
        COCA_B32,
        pack_mb=1280,
        speed="indexes about 4 photos/s on 2 CPU cores (measured); queries in ~0.1 s",
        quality="74.4 % ImageNet zero-shot, Flickr30k R@1 73.4, COCO R@1 45.4 (Apple's "
        "MobileCLIP table, Vasu et al. 2024): below MobileCLIP2-S2 at the same speed",
        licence="Apple's model licence for MobileCLIP (apple-amlr, as its Hugging Face card "
        "says): read its terms before use; the CoCa reranker MIT",
    ),
    Choice(
        "vit-b-32-256",
        "ViT-B-32-256 (DataComp) + CoCa ViT-B-32 reranker",
        Weights(
            "ViT-B-32-256",
            "datacomp_s34b_b86k",
            "laion/CLIP-ViT-B-32-256x256-DataComp-s34B-b86K",
            mb=605,
        ),
        COCA_B32,
        pack_mb=1250,
        speed="indexes about 6 photos/s on 2 CPU cores (measured): the fastest to index",
        quality="72.8 % ImageNet zero-shot: a little below MobileCLIP-S2",
        licence="MIT (open_clip's weights), the CoCa reranker MIT",
    ),
    Choice(
        "mobileclip-b",
        "MobileCLIP-B (LT) + CoCa ViT-B-32 reranker",
        Weights("MobileCLIP-B", "datacompdr_lt", "apple/MobileCLIP-B-LT-OpenCLIP", mb=600),
        COCA_B32,
        pack_mb=1300,
        speed="about 2× slower to index than MobileCLIP-S2 (estimated)",
        quality="77.2 % ImageNet zero-shot: better, for a larger, slower model",
        licence="Apple's model licence for MobileCLIP (apple-amlr, as its Hugging Face card "
        "says): read its terms before use; the CoCa reranker MIT",
    ),
    Choice(
        "vit-l-14",
        "ViT-L-14 (DataComp.XL) + CoCa ViT-B-32 reranker",
        Weights(
            "ViT-L-14",
            "datacomp_xl_s13b_b90k",
            "laion/CLIP-ViT-L-14-DataComp.XL-s13B-b90K",
            mb=1710,
        ),
        COCA_B32,
        pack_mb=1500,
        speed="about 10× slower to index than MobileCLIP-S2 (estimated): for a GPU",
        quality="79.2 % ImageNet zero-shot: the most accurate here",
        licence="MIT (open_clip's weights), the CoCa reranker MIT",
    ),
)
DEFAULT = "mobileclip2-s2"


def choice(name: str | None = None) -> Choice:
    """The catalogue entry ``name`` (default: the recommended one)."""
    wanted = (name or DEFAULT).lower()
    for c in CATALOGUE:
        if c.name == wanted:
            return c
    known = ", ".join(c.name for c in CATALOGUE)
    raise PackError(f"no model named {name!r} in the catalogue (choose from: {known})")


# -- ready models: published ONNX graphs, installed without torch -----------------------------

# CLIP's BPE on fixed strings, as open_clip 3.3.0's SimpleTokenizer gives them (start and end
# tokens included; padding not). A CLIP tokenizer that gives other ids is not the model's.
CLIP_IDS: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("a photo of a dog", (49406, 320, 1125, 539, 320, 1929, 49407)),
    (
        "Two red cars, parked by the sea!",
        (49406, 1237, 736, 3346, 267, 16487, 638, 518, 2102, 256, 49407),
    ),
    ("un café à Paris", (49406, 2271, 15304, 21259, 3445, 49407)),
)
# Texts in three scripts that a multilingual tokenizer must cover without its unknown token.
MULTILINGUAL_TEXTS = ("ein Hund am Strand", "海滩上的一只狗", "كلب على الشاطئ")


@dataclass(frozen=True)
class Ready:
    """A published model whose ONNX graphs can be turned into a pack here, without torch.

    ``layout`` says how its repository is laid out: ``immich`` (``config.json``, ``visual/``
    and ``textual/`` each with ``model.onnx`` and their configs, as Immich's machine-learning
    service reads them) or ``rclip`` (``<folder>/visual.onnx``, ``<folder>/textual.onnx`` and
    CLIP's vocabulary under ``tokenizer/``, as rclip reads them). ``ids``: fixed strings and
    the token ids the model's tokenizer must give them; ``specials``: tokens that must have
    these ids; ``covers``: texts that must tokenize without the unknown token.
    """

    name: str
    title: str
    layout: str
    repo: str
    model: str
    pretrained: str
    download_mb: int
    speed: str
    quality: str
    languages: str
    licence: str
    folder: str = ""
    language_codes: bool = False  # NLLB: a FLORES-200 language code goes before the text
    ids: tuple[tuple[str, tuple[int, ...]], ...] = ()
    specials: tuple[tuple[str, int | None], ...] = ()  # None: present, any id
    covers: tuple[str, ...] = ()
    can_refine: bool = False  # the dual encoder only: refining needs a reranker pack

    @property
    def source(self) -> str:
        return f"https://huggingface.co/{self.repo}"


# Quality: the sources' own published figures (ImageNet-1k zero-shot top-1 unless said);
# speed: measured here where marked (benchmarks/results/ready.md: each layout's graphs with
# random weights of the real shapes, run as the app runs them; 2 CPU cores), else estimated
# from the architecture's compute. Sizes: what the server holds, about (MB = 10⁶).
READY: tuple[Ready, ...] = (
    Ready(
        "rclip-vit-b-32-256",
        "ViT-B-32-256 (DataComp), rclip's ONNX export (recommended without torch)",
        "rclip",
        "yurijmikhalevich/rclip-models",
        "ViT-B-32-256",
        "datacomp_s34b_b86k",
        download_mb=610,
        speed="indexes about 8 photos/s on 2 CPU cores, a query in ~0.13 s (measured here with "
        "its layout and shapes: benchmarks/results/ready.md)",
        quality="72.8 % ImageNet zero-shot (open_clip's results table, "
        "docs/openclip_results.csv): the best fast model that needs no export",
        languages="English",
        licence="MIT (open_clip weights, rclip's export)",
        folder="ViT-B-32-256-datacomp_s34b_b86k",
        ids=CLIP_IDS,
    ),
    Ready(
        "immich-vit-b-32-openai",
        "ViT-B-32 (OpenAI), Immich's ONNX export",
        "immich",
        "immich-app/ViT-B-32__openai",
        "ViT-B-32",
        "openai",
        download_mb=610,
        speed="indexes about 8 photos/s on 2 CPU cores (one photo per run, as Immich exports "
        "it), a query in ~0.13 s (measured here: benchmarks/results/ready.md)",
        quality="63.3 % ImageNet zero-shot (open_clip's results table; Radford et al. 2021): "
        "Immich's default model",
        languages="English",
        licence="MIT (OpenAI CLIP)",
        ids=CLIP_IDS,
    ),
    Ready(
        "immich-nllb-clip-base-siglip",
        "NLLB-CLIP base (SigLIP), Immich's ONNX export: multilingual",
        "immich",
        "immich-app/nllb-clip-base-siglip__v1",
        "nllb-clip-base-siglip",
        "v1",
        download_mb=2000,
        speed="about 4× slower to index than ViT-B-32-256 (ViT-B/16 at 384²), estimated",
        quality="multilingual retrieval on Crossmodal-3600 (Visheratin 2023, NLLB-CLIP; "
        "Immich's multilingual table at docs.immich.app/features/searching ranks it per "
        "language)",
        languages="201 languages (NLLB's FLORES-200); the query language is taken from the "
        "system locale (PHOTOSEARCH_LANGUAGE overrides), as Immich uses the user's locale",
        licence="CC BY-NC 4.0 (NLLB's weights): not for commercial use",
        language_codes=True,
        specials=(("<pad>", 1), ("</s>", 2), ("deu_Latn", None), ("zho_Hans", None)),
        covers=MULTILINGUAL_TEXTS,
    ),
    Ready(
        "immich-vit-b-16-siglip2",
        "ViT-B-16 SigLIP 2 (WebLI), Immich's ONNX export: multilingual",
        "immich",
        "immich-app/ViT-B-16-SigLIP2__webli",
        "ViT-B-16-SigLIP2",
        "webli",
        download_mb=1500,
        speed="about 4× slower to index than ViT-B-32-256 (ViT-B/16 at 224²), estimated",
        quality="SigLIP 2 (Tschannen et al. 2025) reports its ImageNet, COCO and "
        "Crossmodal-3600 figures in its Table 1; Immich lists it among its multilingual models",
        languages="multilingual (trained on multilingual WebLI; Gemma's tokenizer)",
        licence="Apache 2.0 (big_vision's SigLIP 2 weights)",
        specials=(("<pad>", 0), ("<eos>", 1)),
        covers=MULTILINGUAL_TEXTS,
    ),
)
DEFAULT_READY = "rclip-vit-b-32-256"


def ready_model(name: str | None = None) -> Ready:
    """The ready model ``name`` (default: the recommended one without torch)."""
    wanted = (name or DEFAULT_READY).lower()
    for r in READY:
        if r.name == wanted:
            return r
    known = ", ".join(r.name for r in READY)
    raise PackError(f"no ready model named {name!r} (choose from: {known})")


# FLORES-200 codes of the languages a system locale most often names (NLLB's tokens).
FLORES_200: dict[str, str] = {
    "ar": "arb_Arab", "bg": "bul_Cyrl", "ca": "cat_Latn", "cs": "ces_Latn", "da": "dan_Latn",
    "de": "deu_Latn", "el": "ell_Grek", "en": "eng_Latn", "es": "spa_Latn", "et": "est_Latn",
    "fa": "pes_Arab", "fi": "fin_Latn", "fr": "fra_Latn", "he": "heb_Hebr", "hi": "hin_Deva",
    "hr": "hrv_Latn", "hu": "hun_Latn", "id": "ind_Latn", "it": "ita_Latn", "ja": "jpn_Jpan",
    "ko": "kor_Hang", "lt": "lit_Latn", "lv": "lvs_Latn", "nb": "nob_Latn", "nl": "nld_Latn",
    "pl": "pol_Latn", "pt": "por_Latn", "ro": "ron_Latn", "ru": "rus_Cyrl", "sk": "slk_Latn",
    "sl": "slv_Latn", "sr": "srp_Cyrl", "sv": "swe_Latn", "th": "tha_Thai", "tr": "tur_Latn",
    "uk": "ukr_Cyrl", "vi": "vie_Latn", "zh": "zho_Hans", "zh-TW": "zho_Hant",
    "zh-HK": "zho_Hant",
}  # fmt: skip
