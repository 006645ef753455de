"""Train open_clip's CoCa on the synthetic world; optionally distil the captioner into the
dual encoder.

Stage 1 (``--init`` absent) trains the whole CoCa from scratch: a contrastive loss on the dual
encoder plus a captioning loss on the multimodal decoder. Stage 2 (``--init CKPT``) continues the
dual encoder alone from a stage-1 checkpoint with the contrastive loss plus, when
``--distill-weight`` > 0, the Fast-and-Slow distillation loss: for a caption, the frozen stage-1
captioner's posterior over a candidate set (its own image and the student's hardest pool images)
is the target of the student's softmax over the same set. ``--distill-weight 0`` is the control:
the same extra steps without a teacher.

How batches are built: training scenes come in families (a scene and its distractors, see
:mod:`.scenes`); each batch holds at most one member of a family, so a scene never meets its
swapped twin in a batch — as web-scale contrastive training rarely sees a photo and its swap
together. The captioner still learns relations from every caption.

The captioning softmax runs over the world's vocabulary (about 50 CLIP tokens) instead of all
49,408: the full projection would cost six times the rest of a training step. The checkpoint is
then completed (:func:`complete_vocabulary`) so that every other token gets the same logit,
-``UNUSED_LOGIT``, for every input: the saved model's full-vocabulary log p(text | image) equals
the trained one to within e^-50, and it exports and runs like any open_clip CoCa.

    python -m benchmarks.synthetic.train --out build/synthetic/base --threads 2
    python -m benchmarks.synthetic.train --out build/synthetic/distilled --threads 2 \\
        --init build/synthetic/base/model.pt --steps 600 --lr 2e-4 --caption-weight 0 \\
        --distill-weight 1
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import json
import logging
import math
import platform
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from open_clip.coca_model import CoCa
from torch import nn

from benchmarks.synthetic import photos, scenes
from photosearch import modelpack
from photosearch.encoders import reverse_caption
from photosearch.export_onnx.exporter import CONFIG_DIR, image_spec
from photosearch.modelpack import sha256_file

log = logging.getLogger(__name__)

MODEL = "photosearch-synth-coca"
UNUSED_LOGIT = 50.0
RECIPE_FILE = "recipe.json"
MODEL_FILE = "model.pt"
BACKWARD_FILE = "model_bwd.pt"  # the backward captioner: a CoCa whose image tower is the base's
STATE_FILE = "train_state.pt"
LOG_FILE = "train_log.jsonl"

open_clip.add_model_config(CONFIG_DIR)


# ---------------------------------------------------------------------------------------------
# Recipe


@dataclass
class Recipe:
    """Everything that determines a training run (written next to the checkpoint)."""

    model: str = MODEL
    seed: int = 0
    steps: int = 5000
    batch_size: int = 64
    lr: float = 1e-3
    min_lr_ratio: float = 0.05
    warmup: int = 300
    weight_decay: float = 0.05
    clip_weight: float = 1.0
    caption_weight: float = 2.0
    # Hard-negative captions: the caption of each scene's distractors (the same paraphrase with
    # the edit applied) must score below its own, a softmax over summed log-likelihoods.
    rank_weight: float = 0.0
    rank_samples: int = 32  # scenes per batch that get their negatives scored
    # Hard-negative photos (what re-ranking asks): each of those scenes' captions must be better
    # explained by its own photo than by a photo of a family twin that the caption does not
    # describe (the swap twin for the base and the swap scene), the same softmax.
    twin_weight: float = 0.0
    # A second decoder (with its own text tower) reads captions backwards: h_bwd.
    backward: bool = False
    # Photos of random sizes, crops, noise and JPEG, read by the product's own loader.
    augment: bool = False
    train_families: int = 60000
    world: scenes.WorldConfig = field(default_factory=scenes.WorldConfig)
    monitor_families: int = 100
    monitor_every: int = 250
    checkpoint_every: int = 1000
    threads: int = 1
    workers: int = 1
    # Stage 2 (dual encoder only, from a stage-1 checkpoint).
    init: str | None = None
    init_sha256: str | None = None  # of the init checkpoint, checked when given
    distill_weight: float = 0.0
    distill_groups: int = 8
    distill_candidates: int = 8
    distill_pool_families: int = 2048
    distill_refresh: int = 200
    distill_temperature: float = 1.0

    @property
    def stage(self) -> int:
        return 1 if self.init is None else 2

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["stage"] = self.stage
        return d


# ---------------------------------------------------------------------------------------------
# Model


def create_model(name: str = MODEL, *, seed: int = 0) -> CoCa:
    """A CoCa from our config, set up for training from scratch with open_clip 3.3.0."""
    torch.manual_seed(seed)
    model = open_clip.create_model(name, pretrained=None)
    if not isinstance(model, CoCa):
        raise ValueError(f"{name} is a {type(model).__name__}, not a CoCa")
    # 3.3.0 keeps the legacy (shifted) padding mask for the appended CLS token unless asked.
    model.text.correct_cls_mask = True
    # ... and leaves the decoder's vocabulary projection uninitialised (torch.empty).
    nn.init.normal_(model.text_decoder.text_projection, std=model.text_decoder.width**-0.5)
    return model


def create_backward(student: CoCa, recipe: Recipe, world_tokens: int) -> tuple[CoCa, nn.Parameter]:
    """The backward captioner: its own text tower and decoder, reading the student's image
    tokens (its image tower *is* the student's), and its world-vocabulary head."""
    bwd = create_model(recipe.model, seed=recipe.seed + 1)
    bwd.visual = student.visual
    bwd.text_decoder.text_projection.requires_grad_(False)
    width = bwd.text_decoder.width
    return bwd, nn.Parameter(torch.randn(width, world_tokens) * width**-0.5)


def load_model(checkpoint: Path, name: str = MODEL) -> CoCa:
    model = create_model(name)
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model


def image_normalisation(model: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    cfg = open_clip.get_model_preprocess_cfg(model)
    mean = cfg.get("mean", open_clip.OPENAI_DATASET_MEAN)
    std = cfg.get("std", open_clip.OPENAI_DATASET_STD)
    return (
        torch.tensor(mean, dtype=torch.float32)[None, :, None, None],
        torch.tensor(std, dtype=torch.float32)[None, :, None, None],
    )


def to_input(pixels: np.ndarray, norm: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """uint8 [N, H, W, 3] to the model's normalised float input (ToTensor + Normalize)."""
    x = torch.from_numpy(np.ascontiguousarray(pixels)).permute(0, 3, 1, 2).float() / 255.0
    return (x - norm[0]) / norm[1]


@dataclass(frozen=True)
class WorldVocabulary:
    """The CLIP token ids captions use (and the end token), and a map from id to class."""

    ids: torch.Tensor  # [S], sorted
    classes: torch.Tensor  # [vocab]: class index, or -100 (padding / never used)

    @classmethod
    def build(cls, tokenizer: Any, vocab_size: int) -> WorldVocabulary:
        used = {int(tokenizer.eot_token_id)}
        for word in scenes.vocabulary():
            used.update(int(t) for t in tokenizer.encode(word))
        ids = torch.tensor(sorted(used), dtype=torch.long)
        classes = torch.full((vocab_size,), -100, dtype=torch.long)
        classes[ids] = torch.arange(len(ids))
        return cls(ids, classes)

    def labels(self, token_ids: torch.Tensor) -> torch.Tensor:
        """Targets for ids[:, 1:]; raises if a caption uses a token outside the world."""
        labels = self.classes[token_ids]
        stray = (labels < 0) & (token_ids != 0)
        if stray.any():
            raise ValueError(f"caption tokens outside the world vocabulary: {token_ids[stray]}")
        return labels


@contextlib.contextmanager
def projection(decoder: nn.Module, weight: torch.Tensor) -> Iterator[None]:
    """Run open_clip's own decoder with another vocabulary projection (the world's columns)."""
    # Straight into the parameter table: nn.Module refuses a plain tensor (a frozen head) there.
    params = decoder._parameters
    full = params["text_projection"]
    params["text_projection"] = weight
    try:
        yield
    finally:
        params["text_projection"] = full


def world_logits(
    model: CoCa, head: torch.Tensor, image_tokens: torch.Tensor, token_embs: torch.Tensor
) -> torch.Tensor:
    """Teacher-forced logits over the world's vocabulary: [N, L, S]."""
    with projection(model.text_decoder, head):
        return model.text_decoder(image_tokens, token_embs)


@torch.no_grad()
def complete_vocabulary(model: CoCa, head: torch.Tensor, vocab: WorldVocabulary) -> None:
    """Write the trained world columns into the full projection and give every other token the
    logit -UNUSED_LOGIT whatever the input, leaving the world tokens' logits unchanged.

    The decoder ends in LayerNorm (y = γ·z + β, Σz = 0) and a projection P. A column γ⁻¹·c
    yields c·Σ(β/γ) for every input. Shifting β by δγ and each world column by a/γ keeps the
    world logits exactly when a = -δ·Σ(γ·p)/T, with T = Σ(β/γ) + δW; choosing δ so that T = W
    makes the constant column well conditioned.
    """
    dec = model.text_decoder
    gamma, beta = dec.ln_final.weight.double(), dec.ln_final.bias.double()
    if gamma.abs().min() < 1e-4:
        raise ValueError("decoder LayerNorm has a near-zero gain; cannot complete the vocabulary")
    p = head.double()
    width = p.shape[0]
    target = float(width)
    delta = (target - (beta / gamma).sum()) / width
    a = -delta * (gamma[:, None] * p).sum(0) / target
    full = (
        (-UNUSED_LOGIT / target / gamma)[:, None].expand(-1, dec.text_projection.shape[1]).clone()
    )
    full[:, vocab.ids] = p + a[None, :] / gamma[:, None]
    dec.ln_final.bias.copy_((beta + delta * gamma).float())
    dec.text_projection.copy_(full.float())


def head_from_model(model: CoCa, vocab: WorldVocabulary) -> torch.Tensor:
    """The world columns of a (completed) checkpoint: world_logits then equals the full logits."""
    return model.text_decoder.text_projection.detach()[:, vocab.ids].clone()


def caption_loglik(
    model: CoCa,
    head: torch.Tensor,
    vocab: WorldVocabulary,
    image_tokens: torch.Tensor,
    token_embs: torch.Tensor,
    ids: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Σ log p(y_l | y_<l, image) and the token count, per row (the exported scorer's h)."""
    logits = world_logits(model, head, image_tokens, token_embs[:, :-1])
    labels = vocab.labels(ids[:, 1:])
    logp = logits.log_softmax(-1)
    mask = labels >= 0
    picked = logp.gather(-1, labels.clamp(min=0)[..., None])[..., 0] * mask
    return picked.sum(1), mask.sum(1).to(picked.dtype)


def as_input(images: np.ndarray, norm: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """A batch's photos as the model's input: clean uint8 renders are normalised here; photos
    read by the product's loader already are."""
    if images.dtype == np.uint8:
        return to_input(images, norm)
    return torch.from_numpy(np.ascontiguousarray(images))


def reversed_ids(ids: torch.Tensor) -> torch.Tensor:
    """Token ids with each caption's words in reverse order (the backward captioner's input)."""
    return torch.from_numpy(reverse_caption(ids.numpy(), 0))


def _row_loglik(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Σ log p over each row's labelled positions: [N]."""
    logp = logits.log_softmax(-1)
    mask = labels >= 0
    return (logp.gather(-1, labels.clamp(min=0)[..., None])[..., 0] * mask).sum(1)


def decoder_losses(
    model: CoCa,
    head: torch.Tensor,
    vocab: WorldVocabulary,
    image_tokens: torch.Tensor,
    ids: torch.Tensor,
    token_embs: torch.Tensor,
    negative_ids: torch.Tensor | None,
    recipe: Recipe,
    twin_tokens: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """The captioning loss (teacher forcing) and, with ``negative_ids`` ([R·k, L]: k hard
    negatives for each of the first R scenes), the ranking loss: each scene's own caption must
    out-score its negatives, a softmax over summed log-likelihoods. With ``twin_tokens`` (the
    image tokens of a twin photo for each of the first T scenes), the photo-side ranking loss:
    each caption must be more likely under its own photo than under the twin's."""
    logits = world_logits(model, head, image_tokens, token_embs[:, :-1])
    labels = vocab.labels(ids[:, 1:])
    out = {
        "caption": recipe.caption_weight
        * F.cross_entropy(logits.permute(0, 2, 1), labels, ignore_index=-100)
    }
    if negative_ids is not None and recipe.rank_weight > 0:
        r = min(recipe.rank_samples, len(ids))
        k = len(negative_ids) // r
        _, neg_embs = model._encode_text(negative_ids)
        neg_logits = world_logits(
            model, head, image_tokens[:r].repeat_interleave(k, 0), neg_embs[:, :-1]
        )
        pos = _row_loglik(logits[:r], labels[:r])
        neg = _row_loglik(neg_logits, vocab.labels(negative_ids[:, 1:])).view(r, k)
        scores = torch.cat([pos[:, None], neg], dim=1)
        target = torch.zeros(r, dtype=torch.long)
        out["rank"] = recipe.rank_weight * F.cross_entropy(scores, target)
    if twin_tokens is not None and recipe.twin_weight > 0:
        t = len(twin_tokens)
        twin_logits = world_logits(model, head, twin_tokens, token_embs[:t, :-1])
        pos = _row_loglik(logits[:t], labels[:t])
        neg = _row_loglik(twin_logits, labels[:t])
        scores = torch.stack([pos, neg], dim=1)
        out["twin"] = recipe.twin_weight * F.cross_entropy(scores, torch.zeros(t, dtype=torch.long))
    return out


def contrastive_loss(img: torch.Tensor, txt: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    logits = scale * img @ txt.T
    target = torch.arange(len(img))
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


# ---------------------------------------------------------------------------------------------
# Data


@dataclass
class Batch:
    images: np.ndarray  # uint8 [N, H, W, 3] (clean renders), or the model's float input
    texts: list[str]
    negatives: list[list[str]]  # per scene: its family's other descriptions, same paraphrase
    twins: np.ndarray | None = None  # photos of a twin (not described) of each of the first T


def negative_captions(
    plan: Any, member: str, scene: scenes.Scene, caption_seed: list[int]
) -> list[str]:
    """The captions of the family's other members, each drawn with the scene's own caption seed
    (so the same frame and word choices: only the edit differs), for a description that does not
    hold on ``scene``; the scene's own caption stands in where one does (never, by construction,
    but checked)."""
    out = []
    for other, d in plan.descriptions.items():
        if other == member:
            continue
        if scenes.matches(d, scene):
            d = scene.description
        out.append(scenes.caption(d, np.random.default_rng(caption_seed)))
    return out


def twin_members(plan: Any, member: str, rng: np.random.Generator) -> list[str]:
    """The family members whose photo a caption of ``member`` should explain less well, most
    wanted first: the swap twin for the base and the swap scene (the edit the dual encoder
    cannot see), the others in a random order."""
    others = [m for m in plan.descriptions if m != member]
    pair = {"base": "swap", "swap": "base"}.get(member)
    rest = [others[i] for i in rng.permutation(len(others)) if others[i] != pair]
    return ([pair] if pair in others else []) + rest


class TwinFreeBatches(torch.utils.data.IterableDataset):
    """Endless batches (uint8 images, captions); a family gives at most one scene per batch.

    An epoch is one pass per family member slot: each pass visits every family once, in a fresh
    order, taking a different member each pass; batches are consecutive slices of a pass.
    """

    def __init__(
        self,
        world: scenes.WorldConfig,
        families: int,
        batch_size: int,
        seed: int,
        start: int,
        spec: modelpack.ImageSpec | None = None,
        augment: photos.Augment | None = None,
        twins: int = 0,
    ):
        super().__init__()
        self.twins = twins  # how many scenes per batch also bring a twin's photo
        self.spec = spec  # with it: augmented photos through the product's loader
        self.augment = augment or photos.Augment()
        if families < batch_size:
            raise ValueError("need at least one batch of distinct families")
        self.world_config = world
        self.families = families
        self.batch_size = batch_size
        self.seed = seed
        self.start = start

    def members(self, world: scenes.World, step: int) -> list[tuple[int, str, int, int, Any]]:
        """(family, member, epoch, slot, family plan) of each scene in batch ``step``."""
        per_pass = self.families // self.batch_size
        slots = len(scenes.RELATIONAL_MEMBERS)
        epoch, rest = divmod(step, per_pass * slots)
        slot, b = divmod(rest, per_pass)
        order = np.random.default_rng([self.seed, 1, epoch, slot]).permutation(self.families)
        out = []
        for f in order[b * self.batch_size : (b + 1) * self.batch_size].tolist():
            plan = world.plan("train", f)
            names = list(plan.descriptions)
            turn = np.random.default_rng([self.seed, 2, epoch, f]).permutation(len(names))
            out.append((f, names[int(turn[slot])], epoch, slot, plan))
        return out

    def _photo(self, scene: scenes.Scene, rng_seed: list[int]) -> np.ndarray:
        if self.spec is None:
            return scenes.to_pixels(scene.render(self.world_config.image_size))
        data = photos.augmented_photo(scene, np.random.default_rng(rng_seed), self.augment)
        return photos.model_input(data, self.spec, name=scene.name)

    def _twin(self, world, f, member, scene, plan, seed: list[int]) -> np.ndarray:
        """A photo of the first twin that ``scene``'s description does not hold on."""
        for twin in twin_members(plan, member, np.random.default_rng(seed)):
            other = world.scene("train", f, twin, plan)
            if not scenes.matches(scene.description, other):
                return self._photo(other, [*seed, 1])
        raise RuntimeError(f"family {f} has no member that {member}'s description misses")

    def batch(self, world: scenes.World, step: int) -> Batch:
        images, texts, negatives, twins = [], [], [], []
        for i, (f, member, epoch, slot, plan) in enumerate(self.members(world, step)):
            scene = world.scene("train", f, member, plan)
            images.append(self._photo(scene, [self.seed, 4, epoch, f, slot]))
            caption_seed = [self.seed, 3, epoch, f, slot]
            texts.append(scenes.caption(scene.description, np.random.default_rng(caption_seed)))
            negatives.append(negative_captions(plan, member, scene, caption_seed))
            if i < self.twins:
                twins.append(
                    self._twin(world, f, member, scene, plan, [self.seed, 5, epoch, f, slot])
                )
        return Batch(np.stack(images), texts, negatives, np.stack(twins) if twins else None)

    def __iter__(self) -> Iterator[Batch]:
        # Workers take steps in turn; the loader yields them round-robin, so in order.
        info = torch.utils.data.get_worker_info()
        offset, stride = (0, 1) if info is None else (info.id, info.num_workers)
        world = scenes.World(self.world_config)
        step = self.start + offset
        while True:
            yield self.batch(world, step)
            step += stride


def batches(recipe: Recipe, start: int, spec: modelpack.ImageSpec | None = None) -> Iterator[Batch]:
    ds = TwinFreeBatches(
        recipe.world,
        recipe.train_families,
        recipe.batch_size,
        recipe.seed,
        start,
        spec if recipe.augment else None,
        twins=min(recipe.rank_samples, recipe.batch_size) if recipe.twin_weight > 0 else 0,
    )
    if recipe.workers <= 0:
        return iter(ds)
    loader = torch.utils.data.DataLoader(
        ds, batch_size=None, num_workers=recipe.workers, prefetch_factor=4, persistent_workers=True
    )
    return iter(loader)


# ---------------------------------------------------------------------------------------------
# Monitoring (torch, during training): quick signs of what each head has learned.


@dataclass
class MonitorSet:
    images: torch.Tensor  # [4F, 3, H, W], family-major: base, swap, colour, relation
    ids: torch.Tensor  # [F, L] base captions
    relation_positions: torch.Tensor  # [F, L-1] bool: label is a relation word
    relation_ids: dict[int, str]  # token id -> the relation it says

    @classmethod
    def build(cls, world: scenes.World, n: int, tokenizer: Any, norm) -> MonitorSet:
        imgs, texts = [], []
        for fam in world.families("validation", n):
            for m in scenes.RELATIONAL_MEMBERS:
                imgs.append(scenes.to_pixels(fam.members[m].render(world.config.image_size)))
            texts.append(fam.captions["base"])
        ids = tokenizer(texts)
        words = relation_words(tokenizer)
        rel = torch.isin(ids[:, 1:], torch.tensor(sorted(words)))
        return cls(to_input(np.stack(imgs), norm), ids, rel, words)


def relation_words(tokenizer: Any) -> dict[int, str]:
    """Token id of each word that says a relation, and the relation it says."""
    words = {"left": "left", "right": "right", "above": "above", "over": "above"}
    words.update({"below": "below", "under": "below", "beneath": "below"})
    out = {}
    for w, rel in words.items():
        (t,) = tokenizer.encode(w)
        out[int(t)] = rel
    return out


@torch.no_grad()
def monitor(
    student: CoCa,
    scorer: CoCa,
    head: torch.Tensor,
    vocab: WorldVocabulary,
    data: MonitorSet,
    backward: tuple[CoCa, torch.Tensor] | None = None,
) -> dict[str, float]:
    """Pairwise accuracy (base beats each distractor) of both heads (and of the backward
    captioner alone and summed with the forward one), and relation-word accuracy."""
    was = student.training, scorer.training
    student.eval()
    scorer.eval()
    k = len(scenes.RELATIONAL_MEMBERS)
    img = F.normalize(student.encode_image(data.images), dim=-1)
    txt = F.normalize(student.encode_text(data.ids), dim=-1)
    n = len(data.ids)
    fast = (txt @ img.T).view(n, n, k)[torch.arange(n), torch.arange(n)]  # [F, k]
    _, tokens = scorer._encode_image(data.images)
    _, embs = scorer._encode_text(data.ids)
    embs_rep = embs.repeat_interleave(k, 0)
    ids_rep = data.ids.repeat_interleave(k, 0)
    ll, cnt = caption_loglik(scorer, head, vocab, tokens, embs_rep, ids_rep)
    slow = (ll / cnt).view(n, k)
    heads = {"slow": slow}
    if backward is not None:
        bwd, head_bwd = backward
        was_b = bwd.training
        bwd.eval()
        ids_b = reversed_ids(data.ids)
        _, embs_b = bwd._encode_text(ids_b)
        embs_b, ids_b = embs_b.repeat_interleave(k, 0), ids_b.repeat_interleave(k, 0)
        ll_b, _ = caption_loglik(bwd, head_bwd, vocab, tokens, embs_b, ids_b)
        heads["slow_bwd"] = (ll_b / cnt).view(n, k)
        heads["slow_both"] = ((ll + ll_b) / (2 * cnt)).view(n, k)
        bwd.train(was_b)
    out: dict[str, float] = {}
    for j, kind in enumerate(scenes.DISTRACTOR_KINDS, start=1):
        out[f"fast_pairwise_{kind}"] = float((fast[:, 0] > fast[:, j]).float().mean())
        for name, h in heads.items():
            out[f"{name}_pairwise_{kind}"] = float((h[:, 0] > h[:, j]).float().mean())
    out["fast_family_r1"] = float((fast.argmax(1) == 0).float().mean())
    out["slow_family_r1"] = float((slow.argmax(1) == 0).float().mean())
    # Where a base caption says its relation (teacher-forced on the base image): does the most
    # likely relation word say the same relation? (Synonyms count alike; chance is 1/4.)
    logits = world_logits(scorer, head, tokens[::k], embs[:, :-1])
    words = data.relation_ids
    cols = torch.tensor([int(vocab.classes[t]) for t in words])
    names = list(words.values())
    guess = logits[..., cols].argmax(-1)  # [F, L-1] index into names
    truth = data.ids[:, 1:]
    hits = [
        names[int(guess[i, j])] == words[int(truth[i, j])]
        for i, j in data.relation_positions.nonzero().tolist()
    ]
    out["relation_word_accuracy"] = float(np.mean(hits)) if hits else float("nan")
    student.train(was[0])
    scorer.train(was[1])
    return out


# ---------------------------------------------------------------------------------------------
# Distillation


class DistillPool:
    """Training scenes the student mines candidates from, with the teacher's image tokens."""

    def __init__(self, recipe: Recipe, teacher: CoCa, norm, say) -> None:
        world = scenes.World(recipe.world)
        start = recipe.train_families  # families the contrastive stream never visits
        pixels, descs = [], []
        for f in range(start, start + recipe.distill_pool_families):
            plan = world.plan("train", f)
            for m in plan.descriptions:
                scene = world.scene("train", f, m, plan)
                pixels.append(scenes.to_pixels(scene.render(recipe.world.image_size)))
                descs.append(scene.description)
        self.pixels = np.stack(pixels)
        self.descriptions = descs
        self.norm = norm
        say(f"distillation pool: {len(self.pixels)} scenes; teacher image tokens")
        with torch.no_grad():
            self.teacher_tokens = torch.cat(
                [
                    teacher._encode_image(to_input(self.pixels[i : i + 256], norm))[1]
                    for i in range(0, len(self.pixels), 256)
                ]
            )
        self.student_embeddings: torch.Tensor | None = None

    @torch.no_grad()
    def refresh(self, student: CoCa) -> None:
        was = student.training
        student.eval()
        self.student_embeddings = torch.cat(
            [
                F.normalize(
                    student.encode_image(to_input(self.pixels[i : i + 256], self.norm)), dim=-1
                )
                for i in range(0, len(self.pixels), 256)
            ]
        )
        student.train(was)


def distill_loss(
    student: CoCa,
    teacher: CoCa,
    teacher_head: torch.Tensor,
    vocab: WorldVocabulary,
    pool: DistillPool,
    tokenizer: Any,
    rng: np.random.Generator,
    recipe: Recipe,
) -> torch.Tensor:
    """Cross-entropy from the teacher's posterior over each caption's candidates to the
    student's softmax over the same candidates (Miech et al. 2021, eq. 6)."""
    g, c = recipe.distill_groups, recipe.distill_candidates
    anchors = rng.choice(len(pool.pixels), size=g, replace=False)
    texts = [scenes.caption(pool.descriptions[int(a)], rng) for a in anchors]
    ids = tokenizer(texts)
    txt = F.normalize(student.encode_text(ids), dim=-1)
    assert pool.student_embeddings is not None
    sims = txt.detach() @ pool.student_embeddings.T
    sims[torch.arange(g), torch.from_numpy(anchors)] = -math.inf
    hard = sims.topk(c - 1, dim=1).indices  # the student's most confusable pool images
    cand = torch.cat([torch.from_numpy(anchors)[:, None], hard], dim=1)  # [g, c]
    img = F.normalize(
        student.encode_image(to_input(pool.pixels[cand.flatten().numpy()], pool.norm)), dim=-1
    ).view(g, c, -1)
    student_logits = student.logit_scale.exp() * (img @ txt[:, :, None])[..., 0]
    with torch.no_grad():
        _, embs = teacher._encode_text(ids)
        ll, _ = caption_loglik(
            teacher,
            teacher_head,
            vocab,
            pool.teacher_tokens[cand.flatten()],
            embs.repeat_interleave(c, 0),
            ids.repeat_interleave(c, 0),
        )
        target = (ll.view(g, c) / recipe.distill_temperature).softmax(-1)
    return -(target * student_logits.log_softmax(-1)).sum(-1).mean()


# ---------------------------------------------------------------------------------------------
# Training loop


def _param_groups(params: list[tuple[str, nn.Parameter]], wd: float) -> list[dict[str, Any]]:
    def no_decay(n: str, p: nn.Parameter) -> bool:
        return p.ndim < 2 or "ln" in n or "bias" in n or "logit_scale" in n

    decay = [p for n, p in params if not no_decay(n, p)]
    rest = [p for n, p in params if no_decay(n, p)]
    return [{"params": decay, "weight_decay": wd}, {"params": rest, "weight_decay": 0.0}]


def _lr(recipe: Recipe, step: int) -> float:
    if step < recipe.warmup:
        return recipe.lr * (step + 1) / recipe.warmup
    t = (step - recipe.warmup) / max(1, recipe.steps - recipe.warmup)
    lo = recipe.lr * recipe.min_lr_ratio
    return lo + (recipe.lr - lo) * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))


def _machine(threads: int) -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "open_clip": open_clip.__version__,
        "cpu": platform.processor() or platform.machine(),
        "torch_threads": threads,
    }


def save_checkpoint(model: CoCa, head: torch.Tensor, vocab: WorldVocabulary, path: Path) -> None:
    """An export-ready state dict: the world columns written into the full vocabulary."""
    done = copy.deepcopy(model)
    complete_vocabulary(done, head.detach(), vocab)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(done.state_dict(), tmp)
    tmp.replace(path)


# Fields a resumed run may change: more steps extend the schedule (the learning rate follows the
# new length from where the run stopped), and the bookkeeping cadence.
_RESUMABLE = {"steps", "monitor_every", "monitor_families", "checkpoint_every", "workers"}


def _same_run(saved: dict[str, Any], wanted: dict[str, Any]) -> bool:
    return {k: v for k, v in saved.items() if k not in _RESUMABLE} == {
        k: v for k, v in wanted.items() if k not in _RESUMABLE
    }


def train(recipe: Recipe, out: Path, *, resume: bool = False, say=None) -> dict[str, Any]:
    """Run ``recipe``; write the checkpoint, recipe and log under ``out``; return the summary."""
    say = say or (lambda msg: log.info("%s", msg))
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(recipe.threads)
    torch.manual_seed(recipe.seed)
    world = scenes.World(recipe.world)
    tokenizer = open_clip.get_tokenizer(recipe.model)

    stage2 = recipe.stage == 2
    if stage2:
        init = Path(recipe.init)  # type: ignore[arg-type]
        if recipe.init_sha256 and sha256_file(init) != recipe.init_sha256:
            raise ValueError(f"{init} is not the checkpoint this recipe was made for")
        student = load_model(init, recipe.model)
        teacher = copy.deepcopy(student).eval().requires_grad_(False)
    else:
        student = create_model(recipe.model, seed=recipe.seed)
        teacher = student
    vocab = WorldVocabulary.build(tokenizer, student.text_decoder.text_projection.shape[1])
    student.text_decoder.text_projection.requires_grad_(False)
    if stage2:
        head = head_from_model(student, vocab)
        teacher_head = head
        student.text_decoder.requires_grad_(False)  # the dual encoder trains alone
    else:
        width = student.text_decoder.width
        head = nn.Parameter(torch.randn(width, len(vocab.ids)) * width**-0.5)
        teacher_head = head
    norm = image_normalisation(student)
    spec = image_spec(open_clip.get_model_preprocess_cfg(student))

    params = [(n, p) for n, p in student.named_parameters() if p.requires_grad]
    if not stage2:
        params.append(("decoder.world_projection", head))
    bwd, head_bwd = None, None
    if not stage2 and recipe.backward:
        bwd, head_bwd = create_backward(student, recipe, len(vocab.ids))
        shared = {id(p) for _, p in params}
        params += [
            (f"bwd.{n}", p)
            for n, p in bwd.named_parameters()
            if p.requires_grad and id(p) not in shared
        ]
        params.append(("bwd.decoder.world_projection", head_bwd))
    opt = torch.optim.AdamW(
        _param_groups(params, recipe.weight_decay), lr=recipe.lr, betas=(0.9, 0.98), eps=1e-6
    )
    start = 0
    history: list[dict[str, Any]] = []
    state = None
    if resume and (out / STATE_FILE).exists():
        state = torch.load(out / STATE_FILE, map_location="cpu", weights_only=False)
        if not _same_run(state.get("recipe", {}), recipe.to_json()):
            say("ignoring the saved training state: it was made by another recipe")
            state = None
        elif state["step"] >= recipe.steps:
            say(f"the saved state is at step {state['step']}; nothing left to train")
    if state is not None:
        student.load_state_dict(state["model"])
        if not stage2:
            head.data.copy_(state["head"])
        if bwd is not None and head_bwd is not None:
            bwd.load_state_dict(state["backward"])
            head_bwd.data.copy_(state["head_backward"])
        opt.load_state_dict(state["optimizer"])
        start, history = state["step"], state["history"]
        say(f"resuming at step {start}")

    (out / RECIPE_FILE).write_text(json.dumps({"recipe": recipe.to_json()}, indent=2))
    mon = MonitorSet.build(world, recipe.monitor_families, tokenizer, norm)
    pool = None
    rng = np.random.default_rng([recipe.seed, 9, start])
    if stage2 and recipe.distill_weight > 0:
        pool = DistillPool(recipe, teacher, norm, say)
        pool.refresh(student)

    data = batches(recipe, start, spec)
    student.train()
    if bwd is not None:
        bwd.train()
    t_start = time.perf_counter()
    t_data = t_step = 0.0
    ema: dict[str, float] = {}
    loss_trace: list[float] = []
    for step in range(start, recipe.steps):
        t0 = time.perf_counter()
        batch = next(data)
        t1 = time.perf_counter()
        for g in opt.param_groups:
            g["lr"] = _lr(recipe, step)
        images = as_input(batch.images, norm)
        ids = tokenizer(batch.texts)
        img_feat, img_tokens = student._encode_image(images)
        txt_feat, token_embs = student._encode_text(ids)
        scale = student.logit_scale.exp()
        losses = {"contrastive": contrastive_loss(img_feat, txt_feat, scale) * recipe.clip_weight}
        if not stage2 and recipe.caption_weight > 0:
            neg_ids = None
            if recipe.rank_weight > 0:
                r = min(recipe.rank_samples, len(ids))
                neg_ids = tokenizer([t for group in batch.negatives[:r] for t in group])
            twin_tokens = None
            if batch.twins is not None and recipe.twin_weight > 0:
                _, twin_tokens = student._encode_image(as_input(batch.twins, norm))
            losses.update(
                decoder_losses(
                    student, head, vocab, img_tokens, ids, token_embs, neg_ids, recipe, twin_tokens
                )
            )
            if bwd is not None:
                assert head_bwd is not None
                ids_b = reversed_ids(ids)
                _, embs_b = bwd._encode_text(ids_b)
                neg_b = None if neg_ids is None else reversed_ids(neg_ids)
                for k, v in decoder_losses(
                    bwd, head_bwd, vocab, img_tokens, ids_b, embs_b, neg_b, recipe, twin_tokens
                ).items():
                    losses[f"{k}_bwd"] = v
        if pool is not None:
            if step > start and step % recipe.distill_refresh == 0:
                pool.refresh(student)
            losses["distill"] = recipe.distill_weight * distill_loss(
                student, teacher, teacher_head, vocab, pool, tokenizer, rng, recipe
            )
        loss = sum(losses.values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            student.logit_scale.clamp_(0, math.log(100))
        t_data += t1 - t0
        t_step += time.perf_counter() - t1
        for k, v in [("loss", loss), *losses.items()]:
            v = float(v.detach())
            ema[k] = v if k not in ema else 0.95 * ema[k] + 0.05 * v
        loss_trace.append(round(float(loss.detach()), 4))

        done = step + 1
        if done % recipe.monitor_every == 0 or done == recipe.steps:
            m = monitor(
                student,
                teacher,
                teacher_head,
                vocab,
                mon,
                backward=None if bwd is None else (bwd, head_bwd),
            )
            entry = {
                "step": done,
                "seconds": round(time.perf_counter() - t_start, 1),
                "lr": _lr(recipe, step),
                **{k: round(v, 4) for k, v in ema.items()},
                "logit_scale": round(float(student.logit_scale.detach().exp()), 2),
                **{k: round(v, 4) for k, v in m.items()},
            }
            history.append(entry)
            with open(out / LOG_FILE, "a") as fh:
                fh.write(json.dumps(entry) + "\n")
            say(
                f"step {done}/{recipe.steps} loss {ema['loss']:.3f} "
                f"fast pairwise swap/colour/relation "
                f"{m['fast_pairwise_swap']:.2f}/{m['fast_pairwise_colour']:.2f}/"
                f"{m['fast_pairwise_relation']:.2f}, slow "
                f"{m['slow_pairwise_swap']:.2f}/{m['slow_pairwise_colour']:.2f}/"
                f"{m['slow_pairwise_relation']:.2f}"
                + (
                    f", backward {m['slow_bwd_pairwise_swap']:.2f}/"
                    f"{m['slow_bwd_pairwise_colour']:.2f}/{m['slow_bwd_pairwise_relation']:.2f}"
                    f", both swap {m['slow_both_pairwise_swap']:.2f}"
                    if "slow_bwd_pairwise_swap" in m
                    else ""
                )
                + f", relation words {m['relation_word_accuracy']:.2f} "
                f"({(t_data + t_step) / (done - start):.2f} s/step, "
                f"data {t_data / (done - start):.2f})"
            )
        if done % recipe.checkpoint_every == 0 and done < recipe.steps:
            ckpt_dir = out / "checkpoints"
            ckpt_dir.mkdir(exist_ok=True)
            save_checkpoint(
                student, teacher_head if stage2 else head, vocab, ckpt_dir / f"step{done:06d}.pt"
            )
        if done % recipe.checkpoint_every == 0 or done == recipe.steps:
            snapshot = {
                "model": student.state_dict(),
                "head": head.detach() if not stage2 else None,
                "optimizer": opt.state_dict(),
                "step": done,
                "history": history,
                "recipe": recipe.to_json(),
            }
            if bwd is not None and head_bwd is not None:
                snapshot["backward"] = bwd.state_dict()
                snapshot["head_backward"] = head_bwd.detach()
            torch.save(snapshot, out / STATE_FILE)

    save_checkpoint(student, teacher_head if stage2 else head, vocab, out / MODEL_FILE)
    if bwd is not None and head_bwd is not None:
        save_checkpoint(bwd, head_bwd, vocab, out / BACKWARD_FILE)
    summary = {
        "recipe": recipe.to_json(),
        "checkpoint": MODEL_FILE,
        "backward_checkpoint": BACKWARD_FILE if bwd is not None else None,
        "reranker_checkpoint": recipe.init if stage2 else MODEL_FILE,
        "steps_run": recipe.steps - start,
        "seconds": round(time.perf_counter() - t_start, 1),
        "seconds_per_step": round((t_data + t_step) / max(1, recipe.steps - start), 3),
        "data_seconds_per_step": round(t_data / max(1, recipe.steps - start), 3),
        "loss_trace": loss_trace,
        "final_losses": {k: round(v, 4) for k, v in ema.items()},
        "parameters": sum(p.numel() for p in student.parameters()),
        "world_vocabulary": len(vocab.ids),
        "machine": _machine(recipe.threads),
        "history": history,
    }
    (out / RECIPE_FILE).write_text(json.dumps(summary, indent=2))
    return summary


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.synthetic.train",
        description="Train open_clip's CoCa on the synthetic world (see the module docstring).",
    )
    p.add_argument("--out", type=Path, required=True, help="run folder (checkpoint, recipe, log)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/train_state.pt")
    defaults = Recipe()
    for f in dataclasses.fields(Recipe):
        if f.name in ("world",):
            continue
        value = getattr(defaults, f.name)
        kind = type(value) if value is not None else str
        p.add_argument(f"--{f.name.replace('_', '-')}", type=kind, default=value)
    w = scenes.WorldConfig()
    p.add_argument("--world-seed", type=int, default=w.seed)
    p.add_argument("--validation-families", type=int, default=w.validation_families)
    p.add_argument("--test-families", type=int, default=w.test_families)
    return p


def recipe_from_args(args: argparse.Namespace) -> Recipe:
    kw = {f.name: getattr(args, f.name) for f in dataclasses.fields(Recipe) if f.name != "world"}
    kw["world"] = scenes.WorldConfig(
        seed=args.world_seed,
        validation_families=args.validation_families,
        test_families=args.test_families,
    )
    return Recipe(**kw)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    summary = train(recipe_from_args(args), args.out, resume=args.resume)
    print(json.dumps({k: v for k, v in summary.items() if k != "history"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
