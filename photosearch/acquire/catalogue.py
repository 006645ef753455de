"""The short curated catalogue of model packs ``models prepare`` can make: which open_clip
weights each needs, how large and fast it is."""

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
        "mobileclip-s2",
        "MobileCLIP-S2 + CoCa ViT-B-32 reranker (recommended)",
        Weights("MobileCLIP-S2", "datacompdr", "apple/MobileCLIP-S2-OpenCLIP", mb=396),
        COCA_B32,
        pack_mb=1280,
        speed="indexes about 4 photos/s on 2 CPU cores (measured); queries in ~0.1 s",
        quality="74.4 % ImageNet zero-shot; the best accuracy for its speed",
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
    ),
    Choice(
        "mobileclip-b",
        "MobileCLIP-B (LT) + CoCa ViT-B-32 reranker",
        Weights("MobileCLIP-B", "datacompdr_lt", "apple/MobileCLIP-B-LT-OpenCLIP", mb=600),
        COCA_B32,
        pack_mb=1300,
        speed="about 2× slower to index than MobileCLIP-S2 (estimated)",
        quality="77.2 % ImageNet zero-shot: better, for a larger, slower model",
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
    ),
)
DEFAULT = "mobileclip-s2"


def choice(name: str | None = None) -> Choice:
    """The catalogue entry ``name`` (default: the recommended one)."""
    wanted = (name or DEFAULT).lower()
    for c in CATALOGUE:
        if c.name == wanted:
            return c
    known = ", ".join(c.name for c in CATALOGUE)
    raise PackError(f"no model named {name!r} in the catalogue (choose from: {known})")
