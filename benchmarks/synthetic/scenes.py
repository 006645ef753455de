"""The synthetic world: scenes of coloured shapes, their exact descriptions, captions, distractors.

Everything is a pure function of ``(seed, split, index)``, so any scene can be regenerated alone
and every split is reproducible. A :class:`Description` is the ground truth a caption paraphrases
(entities with count, size, colour and shape; relations between entities); :func:`matches`
decides exactly whether *any* scene fits a description, so retrieval can count every matching
gallery scene as correct. Scenes come in :class:`Family` groups: a base scene and minimal edits
of it that keep or nearly keep the caption's words — the hard distractors:

- ``swap``: the two related entities trade places ("red circle left of blue square" becomes
  "blue square left of red circle"): the same words;
- ``colour``: the two related entities exchange colours ("blue circle left of red square"):
  the same words, other bindings;
- ``relation``: the relation turns to the other axis ("red circle above blue square").

Training families (a fraction without relations) are never equal, in any member's description,
to a validation or test description: test captions describe compositions never seen in training.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from PIL import Image, ImageDraw

SPLITS = {"train": 0, "validation": 1, "test": 2}

SHAPES = ("circle", "square", "triangle", "diamond", "cross")
PLURALS = {
    "circle": "circles",
    "square": "squares",
    "triangle": "triangles",
    "diamond": "diamonds",
    "cross": "crosses",
}
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (215, 35, 35),
    "green": (35, 165, 55),
    "blue": (40, 80, 225),
    "yellow": (240, 215, 25),
    "purple": (145, 55, 200),
    "orange": (245, 135, 15),
}
# Radius as a fraction of the image side.
SIZES = {"small": 0.075, "large": 0.125}
COUNT_WORDS = {1: "a", 2: "two", 3: "three"}
RELATIONS = ("left", "right", "above", "below")
INVERSE = {"left": "right", "right": "left", "above": "below", "below": "above"}
OTHER_AXIS = {"left": ("above", "below"), "right": ("above", "below")}
OTHER_AXIS.update({"above": ("left", "right"), "below": ("left", "right")})
BACKGROUNDS = ("solid", "gradient", "noise")
MAX_OBJECTS = 4

DISTRACTOR_KINDS = ("swap", "colour", "relation")
RELATIONAL_MEMBERS = ("base", *DISTRACTOR_KINDS)
SINGLE_MEMBERS = ("base", "count", "size", "recolour")

# A relation holds when the two groups are apart along its axis by at least MARGIN (centre to
# centre, every pair) and their centroids are offset across the axis by at most DOMINANCE times
# their distance along it; so "left of" and "above" never both hold. The generator places stated
# relations with a wider gap and a stricter dominance, so they hold with room to spare and a
# distractor's relation on the other axis clearly does not hold.
MARGIN = 0.05
DOMINANCE = 0.5
PLACE_GAP = 0.15
PLACE_DOMINANCE = 0.2
EDGE = 0.03  # clear space between an object and the image border
SPACING = 0.03  # clear space between two objects


# ---------------------------------------------------------------------------------------------
# Descriptions


@dataclass(frozen=True)
class Entity:
    """One kind of object in a scene, and how many of it: "two small red circles"."""

    count: int
    size: str
    colour: str
    shape: str

    @property
    def key(self) -> tuple[str, str, str, int]:
        return (self.colour, self.shape, self.size, self.count)

    def phrase(self) -> str:
        noun = self.shape if self.count == 1 else PLURALS[self.shape]
        return f"{COUNT_WORDS[self.count]} {self.size} {self.colour} {noun}"


@dataclass(frozen=True)
class Relation:
    """Entity ``a`` is ``rel`` (left / right / above / below) of entity ``b``."""

    a: int
    rel: str
    b: int


@dataclass(frozen=True)
class Description:
    """What a scene contains, exactly: every object belongs to one entity."""

    entities: tuple[Entity, ...]
    relations: tuple[Relation, ...] = ()

    def key(self) -> tuple:
        """Canonical and hashable: equal for descriptions that mean the same."""
        rels = []
        for r in self.relations:
            a, rel, b = self.entities[r.a].key, r.rel, self.entities[r.b].key
            if rel in ("right", "below"):
                a, rel, b = b, INVERSE[rel], a
            rels.append((a, rel, b))
        return (tuple(sorted(e.key for e in self.entities)), tuple(sorted(rels)))

    @property
    def object_count(self) -> int:
        return sum(e.count for e in self.entities)


# ---------------------------------------------------------------------------------------------
# Scenes


@dataclass(frozen=True)
class Shape:
    """One drawn object; position and radius are fractions of the image side (y points down)."""

    entity: int
    shape: str
    colour: str
    size: str
    x: float
    y: float
    radius: float
    rgb: tuple[int, int, int]


@dataclass(frozen=True)
class Background:
    kind: str  # solid | gradient | noise
    colours: tuple[tuple[int, int, int], tuple[int, int, int]]
    angle: float
    noise_seed: int
    noise_level: float


@dataclass(frozen=True)
class Scene:
    description: Description
    objects: tuple[Shape, ...]
    background: Background
    name: str = ""

    def render(self, size: int = 64) -> Image.Image:
        """The scene as an RGB image of ``size`` × ``size`` pixels (drawn at 2×, then reduced)."""
        return render(self, size)


def render(scene: Scene, size: int = 64) -> Image.Image:
    side = size * 2
    img = Image.fromarray(_background_pixels(scene.background, side), "RGB")
    draw = ImageDraw.Draw(img)
    for o in scene.objects:
        _draw_shape(draw, o.shape, o.x * side, o.y * side, o.radius * side, o.rgb)
    return img.reduce(2)


def _background_pixels(bg: Background, side: int) -> np.ndarray:
    c0 = np.array(bg.colours[0], np.float32)
    c1 = np.array(bg.colours[1], np.float32)
    if bg.kind == "solid":
        return np.broadcast_to(c0.astype(np.uint8), (side, side, 3)).copy()
    if bg.kind == "gradient":
        u = np.linspace(0.0, 1.0, side, dtype=np.float32)
        t = np.add.outer(u * math.sin(bg.angle), u * math.cos(bg.angle))  # rows: y, columns: x
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
        px = c0 + t[..., None] * (c1 - c0)
    elif bg.kind == "noise":
        rng = np.random.default_rng(bg.noise_seed)
        # Blotches: coarse noise upsampled smoothly, plus a little fine grain.
        coarse = rng.normal(0.0, 1.0, (6, 6, 3)) * 40 + 128
        lo = Image.fromarray(coarse.clip(0, 255).astype(np.uint8), "RGB")
        blotch = np.asarray(lo.resize((side, side), Image.Resampling.BILINEAR), np.float32)
        fine = rng.standard_normal((side, side, 3), dtype=np.float32)
        px = c0 + (blotch - 128) * (bg.noise_level / 40) + fine * (bg.noise_level * 0.4)
    else:
        raise ValueError(f"unknown background kind {bg.kind!r}")
    return np.clip(px, 0, 255).astype(np.uint8)


def _draw_shape(
    draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, r: float, rgb: tuple
) -> None:
    if shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=rgb)
    elif shape == "square":
        h = r * 0.86
        draw.rectangle((cx - h, cy - h, cx + h, cy + h), fill=rgb)
    elif shape == "triangle":
        rr = r * 1.15
        cy += r * 0.12
        pts = [
            (cx + rr * math.cos(a), cy + rr * math.sin(a))
            for a in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6)
        ]
        draw.polygon(pts, fill=rgb)
    elif shape == "diamond":
        h, w = r * 1.12, r * 0.8
        draw.polygon([(cx, cy - h), (cx + w, cy), (cx, cy + h), (cx - w, cy)], fill=rgb)
    elif shape == "cross":
        arm, half = r * 1.0, r * 0.34
        draw.rectangle((cx - arm, cy - half, cx + arm, cy + half), fill=rgb)
        draw.rectangle((cx - half, cy - arm, cx + half, cy + arm), fill=rgb)
    else:
        raise ValueError(f"unknown shape {shape!r}")


# ---------------------------------------------------------------------------------------------
# Relations and matching


def _groups(objects: Sequence[Shape]) -> dict[tuple[str, str, str], list[Shape]]:
    groups: dict[tuple[str, str, str], list[Shape]] = {}
    for o in objects:
        groups.setdefault((o.colour, o.shape, o.size), []).append(o)
    return groups


def relation_holds(
    rel: str,
    a: Sequence[Shape],
    b: Sequence[Shape],
    *,
    margin: float = MARGIN,
    dominance: float = DOMINANCE,
) -> bool:
    """Whether group ``a`` is ``rel`` of group ``b`` (the evaluator's rule, see MARGIN)."""
    if rel in ("right", "below"):
        a, b, rel = b, a, INVERSE[rel]
    axis = 0 if rel == "left" else 1
    pa = [(o.x, o.y)[axis] for o in a]
    pb = [(o.x, o.y)[axis] for o in b]
    qa = [(o.x, o.y)[1 - axis] for o in a]
    qb = [(o.x, o.y)[1 - axis] for o in b]
    gap = min(pb) - max(pa)
    along = float(np.mean(pb) - np.mean(pa))
    across = abs(float(np.mean(qa) - np.mean(qb)))
    return gap >= margin and across <= dominance * along


def matches(description: Description, scene: Scene) -> bool:
    """Whether ``scene`` is exactly what ``description`` says: the same objects (kind, colour,
    size, count; nothing more) and every stated relation holding."""
    groups = _groups(scene.objects)
    have = Counter((c, s, z, len(objs)) for (c, s, z), objs in groups.items())
    if have != Counter(e.key for e in description.entities):
        return False
    for r in description.relations:
        ea, eb = description.entities[r.a], description.entities[r.b]
        a = groups[(ea.colour, ea.shape, ea.size)]
        b = groups[(eb.colour, eb.shape, eb.size)]
        if not relation_holds(r.rel, a, b):
            return False
    return True


def content_key(scene: Scene) -> tuple:
    """The scene's objects as a hashable multiset: only scenes with equal keys can match the
    same description (an index for :func:`matches`)."""
    groups = _groups(scene.objects)
    return tuple(sorted((c, s, z, len(objs)) for (c, s, z), objs in groups.items()))


def description_content_key(description: Description) -> tuple:
    return tuple(sorted(e.key for e in description.entities))


# ---------------------------------------------------------------------------------------------
# Captions

_REL_WORDS = {
    "left": ("left of", "to the left of", "on the left of"),
    "right": ("right of", "to the right of", "on the right of"),
    "above": ("above", "over"),
    "below": ("below", "under", "beneath"),
}
_SINGLE_FRAMES = ("{a}", "a picture of {a}", "there {be} {a}", "an image of {a}")


def _be(e: Entity) -> str:
    return "is" if e.count == 1 else "are"


def _clause(d: Description, r: Relation, rng: np.random.Generator, *, short: bool) -> str:
    a, rel, b = d.entities[r.a], r.rel, d.entities[r.b]
    if rng.random() < 0.5:  # the converse says the same: "B right of A"
        a, rel, b = b, INVERSE[rel], a
    words = _REL_WORDS[rel][int(rng.integers(len(_REL_WORDS[rel])))]
    frames = ["{a} {r} {b}", "{a} {be} {r} {b}"]
    if not short:
        frames += ["there {be} {a} {r} {b}", "a picture of {a} {r} {b}"]
    frame = frames[int(rng.integers(len(frames)))]
    return frame.format(a=a.phrase(), r=words, b=b.phrase(), be=_be(a))


def caption(d: Description, rng: np.random.Generator) -> str:
    """One paraphrase of ``d``, chosen with ``rng``: every object is named, every relation said."""
    if not d.relations:
        (e,) = d.entities
        frame = _SINGLE_FRAMES[int(rng.integers(len(_SINGLE_FRAMES)))]
        return frame.format(a=e.phrase(), be=_be(e))
    if len(d.relations) == 1:
        related = {d.relations[0].a, d.relations[0].b}
        free = [e for i, e in enumerate(d.entities) if i not in related]
        text = _clause(d, d.relations[0], rng, short=bool(free))
        for e in free:
            text += (", and " if rng.random() < 0.5 else ", with ") + e.phrase()
        return text
    clauses = [_clause(d, r, rng, short=True) for r in d.relations]
    if rng.random() < 0.5:
        clauses.reverse()
    return ", and ".join(clauses)


def vocabulary() -> list[str]:
    """Every word and mark a caption can contain."""
    words = {"a", "two", "three", "is", "are", "there", "picture", "of", "an", "image", ","}
    words |= {"and", "with", *SIZES, *COLOURS, *SHAPES, *PLURALS.values()}
    for phrases in _REL_WORDS.values():
        for p in phrases:
            words.update(p.split())
    return sorted(words)


# ---------------------------------------------------------------------------------------------
# Sampling descriptions


def _counts(rng: np.random.Generator, n: int) -> list[int]:
    while True:
        counts = [int(c) for c in rng.choice([1, 2, 3], size=n, p=[0.65, 0.25, 0.10])]
        if sum(counts) <= MAX_OBJECTS:
            return counts


def _kinds(rng: np.random.Generator, n: int) -> list[tuple[str, str]]:
    """Distinct (colour, shape) kinds; the first two differ in both, and exchanging their colours
    creates no kind already present."""
    colours, shapes = list(COLOURS), list(SHAPES)
    while True:
        kinds = [
            (colours[int(rng.integers(len(colours)))], shapes[int(rng.integers(len(shapes)))])
            for _ in range(n)
        ]
        if len(set(kinds)) < n:
            continue
        if n >= 2:
            (ca, sa), (cb, sb) = kinds[0], kinds[1]
            if ca == cb or sa == sb or {(cb, sa), (ca, sb)} & set(kinds[2:]):
                continue
        return kinds


def _sizes(rng: np.random.Generator, n: int) -> list[str]:
    return [("small", "large")[int(rng.integers(2))] for _ in range(n)]


def relational_description(rng: np.random.Generator) -> Description:
    n = int(rng.choice([2, 3, 4], p=[0.55, 0.30, 0.15]))
    counts = _counts(rng, n)
    ents = tuple(
        Entity(c, z, col, shp)
        for c, z, (col, shp) in zip(counts, _sizes(rng, n), _kinds(rng, n), strict=True)
    )
    rels = [Relation(0, RELATIONS[int(rng.integers(4))], 1)]
    if n == 4:
        rels.append(Relation(2, RELATIONS[int(rng.integers(4))], 3))
    return Description(ents, tuple(rels))


def single_description(rng: np.random.Generator) -> Description:
    (col, shp) = _kinds(rng, 1)[0]
    count = int(rng.choice([1, 2, 3], p=[0.5, 0.3, 0.2]))
    return Description((Entity(count, _sizes(rng, 1)[0], col, shp),))


def distractor_descriptions(d: Description, rng: np.random.Generator) -> dict[str, Description]:
    """The family's other members: minimal edits of a description (see the module docstring)."""
    if d.relations:
        r0 = d.relations[0]
        ea, eb = d.entities[r0.a], d.entities[r0.b]
        ents = list(d.entities)
        ents[r0.a], ents[r0.b] = replace(ea, colour=eb.colour), replace(eb, colour=ea.colour)
        other = OTHER_AXIS[r0.rel][int(rng.integers(2))]
        return {
            "swap": replace(d, relations=(Relation(r0.b, r0.rel, r0.a), *d.relations[1:])),
            "colour": replace(d, entities=tuple(ents)),
            "relation": replace(d, relations=(Relation(r0.a, other, r0.b), *d.relations[1:])),
        }
    (e,) = d.entities
    count = (
        e.count + 1 if e.count == 1 else e.count - 1 if e.count == 3 else (1, 3)[rng.integers(2)]
    )
    colour = [c for c in COLOURS if c != e.colour][int(rng.integers(len(COLOURS) - 1))]
    size = "large" if e.size == "small" else "small"
    return {
        "count": Description((replace(e, count=int(count)),)),
        "size": Description((replace(e, size=size),)),
        "recolour": Description((replace(e, colour=colour),)),
    }


# ---------------------------------------------------------------------------------------------
# Layout


def _muted(rng: np.random.Generator) -> tuple[int, int, int]:
    grey = rng.uniform(70, 195)
    tint = rng.uniform(-1, 1, 3) * rng.uniform(0, 28)
    return tuple(int(v) for v in np.clip(grey + tint, 0, 255))  # type: ignore[return-value]


def sample_background(rng: np.random.Generator) -> Background:
    return Background(
        kind=BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))],
        colours=(_muted(rng), _muted(rng)),
        angle=float(rng.uniform(0, 2 * math.pi)),
        noise_seed=int(rng.integers(2**31)),
        noise_level=float(rng.uniform(6, 18)),
    )


def _radius(rng: np.random.Generator, size: str) -> float:
    return SIZES[size] * float(rng.uniform(0.92, 1.08))


def _member_offsets(
    rng: np.random.Generator, count: int, r: float, across: int | None
) -> list[tuple[float, float]]:
    """Offsets of a group's members around its anchor; related groups spread across the axis."""
    if count == 1:
        return [(0.0, 0.0)]
    s = 2 * r + SPACING + float(rng.uniform(0.005, 0.02))
    theta = float(rng.uniform(0, 2 * math.pi))
    if across is not None:  # spread along the other axis, so the relation's gap stays wide
        theta = (math.pi / 2 if across == 1 else 0.0) + float(rng.uniform(-0.3, 0.3))
    if count == 2:
        pts = [(-s / 2, 0.0), (s / 2, 0.0)]
    else:  # three: a triangle, or a row
        if rng.random() < 0.5:
            k = s / math.sqrt(3)
            pts = [
                (k * math.cos(a), k * math.sin(a)) for a in (0, 2 * math.pi / 3, 4 * math.pi / 3)
            ]
        else:
            pts = [(-s, 0.0), (0.0, 0.0), (s, 0.0)]
    c, si = math.cos(theta), math.sin(theta)
    return [(x * c - y * si, x * si + y * c) for x, y in pts]


def _valid(objects: Sequence[Shape], d: Description) -> bool:
    for i, o in enumerate(objects):
        if not (EDGE + o.radius <= o.x <= 1 - EDGE - o.radius):
            return False
        if not (EDGE + o.radius <= o.y <= 1 - EDGE - o.radius):
            return False
        for p in objects[:i]:
            if math.hypot(o.x - p.x, o.y - p.y) < o.radius + p.radius + SPACING:
                return False
    by_entity: dict[int, list[Shape]] = {}
    for o in objects:
        by_entity.setdefault(o.entity, []).append(o)
    for r in d.relations:
        if not relation_holds(
            r.rel,
            by_entity[r.a],
            by_entity[r.b],
            margin=PLACE_GAP,
            dominance=PLACE_DOMINANCE,
        ):
            return False
    return True


def _jitter(rng: np.random.Generator, colour: str) -> tuple[int, int, int]:
    base = np.array(COLOURS[colour], np.float64)
    return tuple(int(v) for v in np.clip(base + rng.uniform(-14, 14, 3), 0, 255))  # type: ignore[return-value]


def layout(
    d: Description,
    rng: np.random.Generator,
    *,
    keep: dict[int, list[tuple[float, float, float]]] | None = None,
    paint: dict[int, tuple[int, int, int]] | None = None,
    tries: int = 2000,
) -> tuple[Shape, ...]:
    """Place every object of ``d`` so that every stated relation holds with room to spare.

    ``keep`` fixes the members (x, y, radius) of some entities; the others are sampled.
    ``paint`` fixes the exact colour of some entities (else a jittered shade of its name).
    """
    keep = keep or {}
    paint = paint or {}
    rgbs = {i: paint.get(i) or _jitter(rng, e.colour) for i, e in enumerate(d.entities)}
    partner: dict[int, tuple[int, str, bool]] = {}
    for r in d.relations:
        partner[r.a] = (r.b, r.rel, True)
        partner[r.b] = (r.a, r.rel, False)
    for _ in range(tries):
        anchors: dict[int, tuple[float, float]] = {}
        for r in d.relations:
            if r.a in keep or r.b in keep:
                continue
            axis = 0 if r.rel in ("left", "right") else 1
            sign = 1.0 if r.rel in ("left", "above") else -1.0  # b lies this way from a
            along = float(rng.uniform(0.32, 0.62))
            across = float(rng.uniform(-0.05, 0.05))
            centre = rng.uniform(0.25, 0.75, 2)
            da = np.zeros(2)
            da[axis] = -sign * along / 2
            da[1 - axis] = across / 2
            anchors[r.a] = tuple(centre + da)  # type: ignore[assignment]
            anchors[r.b] = tuple(centre - da)  # type: ignore[assignment]
        objects: list[Shape] = []
        for i, e in enumerate(d.entities):
            if i in keep:
                members = keep[i]
            else:
                r = _radius(rng, e.size)
                ax, ay = anchors.get(i) or tuple(rng.uniform(0.15, 0.85, 2))
                rel = partner.get(i)
                across = None if rel is None else (1 if rel[1] in ("left", "right") else 0)
                members = [
                    (ax + ox, ay + oy, r) for ox, oy in _member_offsets(rng, e.count, r, across)
                ]
            objects += [
                Shape(i, e.shape, e.colour, e.size, float(x), float(y), float(rad), rgbs[i])
                for x, y, rad in members
            ]
        if _valid(objects, d):
            return tuple(objects)
    raise RuntimeError(f"could not place {d} in {tries} tries")


def _paint(
    base: Description, objects: Sequence[Shape], d: Description
) -> dict[int, tuple[int, int, int]]:
    """An edit's entities keep the base's exact shades: its own if its colour is unchanged, else
    the shade of the base entity that had its colour (an exchange swaps shades exactly)."""
    shade = {o.entity: o.rgb for o in objects}
    paint = {}
    for i, e in enumerate(d.entities):
        if i < len(base.entities) and base.entities[i].colour == e.colour:
            paint[i] = shade[i]
        else:
            donor = [j for j, b in enumerate(base.entities) if b.colour == e.colour]
            if donor:
                paint[i] = shade[donor[0]]
    return paint


def _members_of(objects: Sequence[Shape], entity: int) -> list[tuple[float, float, float]]:
    return [(o.x, o.y, o.radius) for o in objects if o.entity == entity]


# ---------------------------------------------------------------------------------------------
# Families and splits


@dataclass(frozen=True)
class Family:
    """A base scene and its distractors (relational), or attribute edits (single entity)."""

    split: str
    index: int
    members: dict[str, Scene]
    captions: dict[str, str]  # one paraphrase per member, fixed by the seed (queries)

    @property
    def relational(self) -> bool:
        return bool(self.members["base"].description.relations)

    @property
    def base(self) -> Scene:
        return self.members["base"]


@dataclass(frozen=True)
class WorldConfig:
    seed: int = 0
    image_size: int = 64
    validation_families: int = 250
    test_families: int = 1250
    single_fraction: float = 0.15  # training families without relations (grounding)

    def to_json(self) -> dict:
        return dict(self.__dict__)


def _rng(*parts: int) -> np.random.Generator:
    return np.random.default_rng([int(p) for p in parts])


@dataclass(frozen=True)
class _Plan:
    descriptions: dict[str, Description]
    background: Background


@dataclass
class World:
    """Families of every split, generated on demand from ``config.seed``."""

    config: WorldConfig = field(default_factory=WorldConfig)

    def _plan(self, split: str, index: int, attempt: int) -> _Plan:
        rng = _rng(self.config.seed, SPLITS[split], index, attempt, 0)
        single = split == "train" and rng.random() < self.config.single_fraction
        base = single_description(rng) if single else relational_description(rng)
        descs = {"base": base, **distractor_descriptions(base, rng)}
        return _Plan(descs, sample_background(rng))

    def plan(self, split: str, index: int) -> _Plan:
        if split != "train":
            return self._plan(split, index, 0)
        held_out = self.held_out_keys
        for attempt in range(1000):
            p = self._plan(split, index, attempt)
            if not any(d.key() in held_out for d in p.descriptions.values()):
                return p
        raise RuntimeError(f"no unseen training family for index {index}")

    @functools.cached_property
    def held_out_keys(self) -> frozenset:
        """Every description of a validation or test family (kept out of training)."""
        keys = set()
        for split, n in (
            ("validation", self.config.validation_families),
            ("test", self.config.test_families),
        ):
            for i in range(n):
                keys |= {d.key() for d in self._plan(split, i, 0).descriptions.values()}
        return frozenset(keys)

    def scene(self, split: str, index: int, member: str, plan: _Plan | None = None) -> Scene:
        """One member of a family, laid out (the base first: edits keep what they can of it)."""
        p = plan or self.plan(split, index)
        d = p.descriptions[member]
        seed = (self.config.seed, SPLITS[split], index)
        base_objects = layout(p.descriptions["base"], _rng(*seed, 1), tries=20000)
        name = f"{split}-{index:06d}-{member}"
        if member == "base":
            return Scene(d, base_objects, p.background, name)
        rng = _rng(*seed, 2 + _member_index(member))
        n = len(d.entities)
        paint = _paint(p.descriptions["base"], base_objects, d)
        if member in ("colour", "recolour"):  # the same places, other colours
            keep = {i: _members_of(base_objects, i) for i in range(n)}
            return Scene(d, layout(d, rng, keep=keep, paint=paint, tries=1), p.background, name)
        r0 = d.relations[0] if d.relations else None
        moved = {r0.a, r0.b} if r0 else set(range(n))
        keep = {i: _members_of(base_objects, i) for i in range(n) if i not in moved}
        if member == "swap" and r0 is not None:
            # Trade the two groups' places; if that does not fit, place them afresh.
            ca = np.mean([(x, y) for x, y, _ in _members_of(base_objects, r0.a)], axis=0)
            cb = np.mean([(x, y) for x, y, _ in _members_of(base_objects, r0.b)], axis=0)
            traded = dict(keep)
            traded[r0.a] = [
                (x - ca[0] + cb[0], y - ca[1] + cb[1], rad)
                for x, y, rad in _members_of(base_objects, r0.a)
            ]
            traded[r0.b] = [
                (x - cb[0] + ca[0], y - cb[1] + ca[1], rad)
                for x, y, rad in _members_of(base_objects, r0.b)
            ]
            try:
                objects = layout(d, rng, keep=traded, paint=paint, tries=1)
                return Scene(d, objects, p.background, name)
            except RuntimeError:
                pass
        try:
            objects = layout(d, rng, keep=keep, paint=paint, tries=500)
        except RuntimeError:  # no room left between the kept objects: place everything afresh
            objects = layout(d, rng, paint=paint)
        return Scene(d, objects, p.background, name)

    def family(self, split: str, index: int) -> Family:
        p = self.plan(split, index)
        members = {m: self.scene(split, index, m, p) for m in p.descriptions}
        rng = _rng(self.config.seed, SPLITS[split], index, 99)
        captions = {m: caption(d, rng) for m, d in p.descriptions.items()}
        return Family(split, index, members, captions)

    def families(self, split: str, n: int, start: int = 0) -> Iterator[Family]:
        for i in range(start, start + n):
            yield self.family(split, i)


def _member_index(member: str) -> int:
    return (RELATIONAL_MEMBERS + SINGLE_MEMBERS).index(member)


def to_pixels(img: Image.Image) -> np.ndarray:
    """uint8 [H, W, 3]."""
    return np.asarray(img, dtype=np.uint8)
