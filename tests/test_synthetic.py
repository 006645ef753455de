"""The synthetic benchmark's world and training loop: deterministic scenes, distractors that differ
from their query scene exactly as intended, twin-free batches, and a training loop that learns."""

from __future__ import annotations

import dataclasses
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
if (
    str(ROOT) not in sys.path
):  # `benchmarks` is a folder of the repository, not an installed package
    sys.path.insert(0, str(ROOT))

from benchmarks.synthetic import scenes  # noqa: E402

WORLD = scenes.WorldConfig(seed=3, validation_families=20, test_families=40)


@pytest.fixture(scope="module")
def world() -> scenes.World:
    return scenes.World(WORLD)


@pytest.fixture(scope="module")
def test_families(world: scenes.World) -> list[scenes.Family]:
    return list(world.families("test", 40))


def _by_entity(scene: scenes.Scene, i: int) -> list[scenes.Shape]:
    return [o for o in scene.objects if o.entity == i]


def test_generator_is_deterministic() -> None:
    a, b = scenes.World(WORLD), scenes.World(WORLD)
    for split, i in (("train", 0), ("train", 17), ("validation", 3), ("test", 5)):
        fa, fb = a.family(split, i), b.family(split, i)
        assert fa == fb
        for m in fa.members:
            assert np.array_equal(
                scenes.to_pixels(fa.members[m].render()), scenes.to_pixels(fb.members[m].render())
            )
    # Scenes are independent of the order they are asked for in.
    assert a.scene("test", 9, "swap") == scenes.World(WORLD).family("test", 9).members["swap"]
    other = scenes.World(scenes.WorldConfig(seed=4, validation_families=20, test_families=40))
    assert other.family("test", 5) != a.family("test", 5)


def test_every_scene_matches_its_own_description_and_no_distractor_matches_the_query(
    test_families: list[scenes.Family],
) -> None:
    for fam in test_families:
        assert fam.relational
        for name, scene in fam.members.items():
            assert scenes.matches(scene.description, scene), (name, fam.captions)
            if name != "base":
                assert not scenes.matches(fam.base.description, scene), (name, fam.captions)
                assert not scenes.matches(scene.description, fam.base), (name, fam.captions)
            assert 2 <= len(scene.objects) <= scenes.MAX_OBJECTS


def test_swap_keeps_the_words_and_trades_the_places(test_families: list[scenes.Family]) -> None:
    for fam in test_families:
        base, swap = fam.base, fam.members["swap"]
        r = base.description.relations[0]
        assert swap.description.entities == base.description.entities  # the same words
        assert swap.description.relations[0] == scenes.Relation(r.b, r.rel, r.a)
        a, b = _by_entity(swap, r.a), _by_entity(swap, r.b)
        assert scenes.relation_holds(r.rel, b, a) and not scenes.relation_holds(r.rel, a, b)
        # Whatever else the scene holds stays where it was.
        for i in range(len(base.description.entities)):
            if i not in (r.a, r.b):
                assert _by_entity(swap, i) == _by_entity(base, i)


def test_colour_exchange_keeps_places_shapes_and_words(test_families: list[scenes.Family]) -> None:
    for fam in test_families:
        base, colour = fam.base, fam.members["colour"]
        r = base.description.relations[0]
        ea, eb = base.description.entities[r.a], base.description.entities[r.b]
        assert ea.colour != eb.colour and ea.shape != eb.shape
        got = colour.description.entities
        assert (got[r.a].colour, got[r.b].colour) == (eb.colour, ea.colour)
        assert (got[r.a].shape, got[r.b].shape) == (ea.shape, eb.shape)
        words = Counter(w for e in base.description.entities for w in e.phrase().split())
        assert words == Counter(w for e in got for w in e.phrase().split())
        assert colour.description.relations == base.description.relations
        assert [(o.x, o.y, o.shape, o.size) for o in colour.objects] == [
            (o.x, o.y, o.shape, o.size) for o in base.objects
        ]


def test_other_relation_turns_the_axis(test_families: list[scenes.Family]) -> None:
    axis = {"left": 0, "right": 0, "above": 1, "below": 1}
    for fam in test_families:
        base, other = fam.base, fam.members["relation"]
        r, o = base.description.relations[0], other.description.relations[0]
        assert (o.a, o.b) == (r.a, r.b) and axis[o.rel] != axis[r.rel]
        assert other.description.entities == base.description.entities
        a, b = _by_entity(other, r.a), _by_entity(other, r.b)
        assert scenes.relation_holds(o.rel, a, b) and not scenes.relation_holds(r.rel, a, b)


def test_training_never_sees_a_held_out_description(world: scenes.World) -> None:
    held = world.held_out_keys
    assert len(held) >= 4 * (WORLD.validation_families + WORLD.test_families) * 0.9
    for i in range(150):
        for d in world.plan("train", i).descriptions.values():
            assert d.key() not in held


def test_captions_name_everything_and_fit_the_context() -> None:
    open_clip = pytest.importorskip("open_clip")
    from benchmarks.synthetic import train

    tok = open_clip.get_tokenizer(train.MODEL)
    vocab = set(scenes.vocabulary())
    world = scenes.World(WORLD)
    rng = np.random.default_rng(0)
    longest = 0
    for i in range(60):
        for d in world.plan("train", i).descriptions.values():
            for _ in range(3):
                text = scenes.caption(d, rng)
                assert set(text.replace(",", " ,").split()) <= vocab, text
                for e in d.entities:
                    assert e.phrase() in text
                longest = max(longest, len(tok.encode(text)) + 2)
    assert longest <= tok.context_length


def test_twin_free_batches_cover_each_family_once_per_pass() -> None:
    pytest.importorskip("torch")
    from benchmarks.synthetic import train

    world = scenes.World(WORLD)
    ds = train.TwinFreeBatches(WORLD, families=24, batch_size=8, seed=0, start=0)
    seen: Counter = Counter()
    for step in range(4 * 3):  # one epoch: 4 passes of 3 batches
        batch = ds.members(world, step)
        families = [f for f, *_ in batch]
        assert len(set(families)) == len(families)  # no scene meets its twin
        seen.update((f, m) for f, m, *_ in batch)
    assert len(seen) == 24 * 4 and set(seen.values()) == {1}  # every member once


def test_twin_photos_are_family_members_the_caption_does_not_describe() -> None:
    """The photo-side ranking loss's negatives: for the first T scenes of a batch, a photo of a
    family member the scene's caption is false of; the swap scene for the base and the swap."""
    pytest.importorskip("torch")
    from benchmarks.synthetic import train

    world = scenes.World(WORLD)
    ds = train.TwinFreeBatches(WORLD, families=24, batch_size=8, seed=0, start=0, twins=5)
    kinds: Counter = Counter()
    for step in range(8):
        batch = ds.batch(world, step)
        assert batch.twins is not None and batch.twins.shape == (5, *batch.images.shape[1:])
        for i, (f, member, *_, plan) in enumerate(ds.members(world, step)[:5]):
            own = world.scene("train", f, member, plan)
            twin = next(
                m
                for m in plan.descriptions
                if m != member
                and np.array_equal(
                    batch.twins[i], scenes.to_pixels(world.scene("train", f, m, plan).render(64))
                )
            )
            assert not scenes.matches(own.description, world.scene("train", f, twin, plan))
            if member in ("base", "swap") and "swap" in plan.descriptions:
                assert {member, twin} == {"base", "swap"}
            kinds[twin] += 1
    assert len(kinds) >= 3


def test_completed_vocabulary_keeps_the_trained_likelihoods() -> None:
    torch = pytest.importorskip("torch")
    import open_clip

    from benchmarks.synthetic import train

    torch.manual_seed(0)
    model = train.create_model().eval()
    tok = open_clip.get_tokenizer(train.MODEL)
    vocab = train.WorldVocabulary.build(tok, model.text_decoder.text_projection.shape[1])
    head = torch.randn(model.text_decoder.width, len(vocab.ids))
    with torch.no_grad():
        model.text_decoder.ln_final.bias.normal_(0, 0.3)
        x = torch.randn(3, 3, 64, 64)
        ids = tok(["a small red circle left of a large blue square", "two green crosses", "a"])
        _, image_tokens = model._encode_image(x)
        _, token_embs = model._encode_text(ids)
        ll_world, _ = train.caption_loglik(model, head, vocab, image_tokens, token_embs, ids)
        train.complete_vocabulary(model, head, vocab)
        out = model(x, ids)  # open_clip's own forward, full vocabulary
        logp = out["logits"].log_softmax(-1)
        mask = out["labels"] != 0
        ll_full = (logp.gather(-1, out["labels"][..., None])[..., 0] * mask).sum(1)
    assert torch.allclose(ll_world, ll_full, rtol=1e-5, atol=1e-4)


def test_training_loop_lowers_the_loss(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from benchmarks.synthetic import train

    recipe = train.Recipe(
        steps=14,
        batch_size=8,
        lr=2e-3,
        warmup=2,
        train_families=64,
        world=WORLD,
        monitor_every=14,
        monitor_families=4,
        checkpoint_every=10**9,
        workers=0,
    )
    summary = train.train(recipe, tmp_path)
    losses = summary["loss_trace"]
    assert len(losses) == 14
    assert np.mean(losses[-3:]) < np.mean(losses[:3]) - 0.5, losses
    assert (tmp_path / train.MODEL_FILE).is_file()
    assert summary["history"][-1]["step"] == 14
    # Asking for more steps continues from the saved state.
    longer = train.train(dataclasses.replace(recipe, steps=16), tmp_path, resume=True)
    assert longer["steps_run"] == 2 and longer["history"][-1]["step"] == 16


def test_rerank_and_recall_count_any_matching_scene() -> None:
    pytest.importorskip("onnxruntime")
    from benchmarks.synthetic import evaluate

    # Two queries over six images; fast order 0..5 for both.
    fast = np.array([[0.9, 0.8, 0.7, 0.6, 0.5, 0.4]] * 2)
    hbar = np.array([[-3.0, -2.0, -0.5, -1.0, -0.1, -4.0]] * 2)
    enc = evaluate.Encoded(
        embeddings=np.zeros((6, 2)),
        tokens=np.zeros((6, 1, 1)),
        queries=np.zeros((2, 2)),
        fast=fast,
        top=np.tile(np.arange(6), (2, 1)),
        hbar_top=hbar,
        image_ms=0.0,
        tokens_ms=0.0,
    )
    qs = np.arange(2)
    assert evaluate.rerank_top10(enc, qs, 3, 0.0)[0].tolist() == [0, 1, 2, 3, 4, 5]
    # Only the top 3 are re-ordered by h̄ when β is large; the rest keep the fast order.
    assert evaluate.rerank_top10(enc, qs, 3, 100.0)[0].tolist() == [2, 1, 0, 3, 4, 5]
    assert evaluate.rerank_top10(enc, qs, 5, 100.0)[0].tolist() == [4, 2, 3, 1, 0, 5]
    relevant = [np.array([4]), np.array([5, 1])]  # query 1: two matching scenes
    r = evaluate.recall(evaluate.rerank_top10(enc, qs, 5, 100.0), relevant, qs)
    assert r["R@1"] == 50.0 and r["R@5"] == 100.0 and r["R@10"] == 100.0


def test_negative_captions_say_the_family_edits_in_the_same_words(
    test_families: list[scenes.Family], world: scenes.World
) -> None:
    """The ranking loss's negatives: every other member's description, none true of the scene,
    paraphrased with the scene's own caption seed, so a swap negative uses the same words."""
    pytest.importorskip("torch")
    from benchmarks.synthetic import train

    checked = 0
    for fam in test_families[:12]:
        plan = world.plan("test", fam.index)
        for member, scene in fam.members.items():
            seed = [7, fam.index]
            own = scenes.caption(scene.description, np.random.default_rng(seed))
            negs = train.negative_captions(plan, member, scene, seed)
            assert len(negs) == len(fam.members) - 1 and own not in negs
            others = [m for m in fam.members if m != member]
            for other, text in zip(others, negs, strict=True):
                assert not scenes.matches(plan.descriptions[other], scene)
                if {member, other} == {"base", "swap"}:

                    def words(t: str) -> list[str]:  # the verb follows the first entity's count
                        return sorted(
                            w for w in t.replace(",", " ").split() if w not in ("is", "are")
                        )

                    assert words(text) == words(own)
                    checked += 1
    assert checked >= 8


def test_photo_conditions_and_object_keeping_crops(test_families: list[scenes.Family]) -> None:
    from benchmarks.synthetic import photos

    assert photos.Condition.parse("128") == photos.Condition(128, "png")
    assert photos.Condition.parse("256jpeg") == photos.Condition(256, "jpeg", 70)
    assert photos.Condition.parse("96jpeg90").key == "96jpeg90"
    with pytest.raises(ValueError):
        photos.Condition.parse("jpeg")
    rng = np.random.default_rng(0)
    for fam in test_families[:20]:
        scene = fam.base
        left, top, side = photos.crop_window(scene, rng, 0.85)
        assert 0.85 <= side <= 1.0 and left >= 0 and top >= 0
        assert left + side <= 1.0 + 1e-9 and top + side <= 1.0 + 1e-9
        for o in scene.objects:  # every object stays whole inside the window
            assert left <= o.x - o.radius and o.x + o.radius <= left + side
            assert top <= o.y - o.radius and o.y + o.radius <= top + side


def test_augmented_photos_are_files_the_product_reads(test_families: list[scenes.Family]) -> None:
    from PIL import Image

    from benchmarks.synthetic import photos
    from photosearch.modelpack import ImageSpec

    spec = ImageSpec((64, 64), (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), "bicubic", "shortest")
    rng = np.random.default_rng(1)
    aug = photos.Augment()
    sizes, formats = set(), set()
    for fam in test_families[:10]:
        for scene in fam.members.values():
            data = photos.augmented_photo(scene, rng, aug)
            with Image.open(__import__("io").BytesIO(data)) as img:
                sizes.add(img.size[0])
                formats.add(img.format)
                assert img.size[0] == img.size[1]
                assert aug.min_size - 1 <= img.size[0] <= aug.max_size + 1
            x = photos.model_input(data, spec)
            assert x.shape == (3, 64, 64) and x.dtype == np.float32
    assert formats == {"JPEG", "PNG"} and len(sizes) > 10


def test_backward_training_saves_a_scorer_that_shares_the_image_tower(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from benchmarks.synthetic import train

    recipe = train.Recipe(
        steps=4,
        batch_size=8,
        lr=2e-3,
        warmup=1,
        train_families=64,
        world=WORLD,
        monitor_every=4,
        monitor_families=4,
        checkpoint_every=10**9,
        workers=0,
        rank_weight=1.0,
        rank_samples=4,
        twin_weight=1.0,
        backward=True,
        augment=True,
    )
    summary = train.train(recipe, tmp_path)
    losses = {"caption", "rank", "twin", "caption_bwd", "rank_bwd", "twin_bwd"}
    assert losses <= set(summary["final_losses"])
    last = summary["history"][-1]
    assert {"slow_bwd_pairwise_swap", "slow_both_pairwise_swap"} <= set(last)
    fwd = torch.load(tmp_path / train.MODEL_FILE, weights_only=True)
    bwd = torch.load(tmp_path / train.BACKWARD_FILE, weights_only=True)
    visual = [k for k in fwd if k.startswith("visual.")]
    assert visual and all(torch.equal(fwd[k], bwd[k]) for k in visual)
    assert not torch.equal(fwd["text.token_embedding.weight"], bwd["text.token_embedding.weight"])


def test_reversed_ids_keep_start_end_and_padding() -> None:
    from photosearch.encoders import reverse_caption

    ids = np.array([[9, 1, 2, 3, 8, 0, 0], [9, 5, 8, 0, 0, 0, 0], [9, 4, 6, 7, 2, 1, 8]])
    assert reverse_caption(ids, 0).tolist() == [
        [9, 3, 2, 1, 8, 0, 0],
        [9, 5, 8, 0, 0, 0, 0],
        [9, 1, 2, 7, 6, 4, 8],
    ]
    assert (reverse_caption(reverse_caption(ids, 0), 0) == ids).all()


def test_heldout_measures_files_through_the_product(tmp_path: Path) -> None:
    """The held-out evaluation end to end on the committed pack: files of two conditions, the
    in-process rows and the Library's own; the Library's fast search and the in-process fast
    ranking read the same files with the same loader, so they find the same."""
    pytest.importorskip("onnxruntime")
    from benchmarks.synthetic import heldout

    pack = ROOT / "tests" / "data" / "synthetic-pack"
    cfg = heldout.HeldoutConfig(
        world_seed=5, families=6, conditions=("64png", "96jpeg70"), validation_families=6, threads=1
    )
    report = heldout.run({"base": pack}, cfg, tmp_path / "work")
    assert [c["condition"] for c in report["conditions"]] == ["64png", "96jpeg70"]
    assert sorted(p.name for p in (tmp_path / "work" / "seed5" / "96jpeg70").iterdir())[0].endswith(
        ".jpg"
    )
    for c in report["conditions"]:
        rows = {(r["method"], r["K"]): r for r in c["rows"]}
        fast, product = rows[("fast", None)], rows[("product search", None)]
        assert product["R@1"] == fast["R@1"] and product["R@10"] == fast["R@10"]
        assert ("product search, refined", 20) in rows
        assert ("slow over all (forward)", None) in rows
        assert set(c["pairwise"]["slow (forward)"]) == set(scenes.DISTRACTOR_KINDS)
        assert c["goals"]
    md = heldout.render_markdown(report, "cmd")
    assert "96 px JPEG q70" in md and "spread" in md
