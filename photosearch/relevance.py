"""Relevance: one number per result that reads as "how likely this photo fits the words".

A model pack may carry a **calibration** (``manifest["calibration"]``, written by
``benchmarks/calibrate.py`` from photos with captions): two logistic curves that turn a score
into the probability that a photo matches its query, one for the fast stage (the dual
encoder's cosine) and one for the refined stage (the fused ``fast + β·h̄``, with the β the
curve was fitted with), and a **threshold**: results at or above it are the matches, the rest
"weaker matches". Both stages map onto the same scale, so a number means the same before and
after refinement.

The number shown for a result never increases down the final list (:func:`displayed`): the
refined top K are ordered by the fused score, whose curve is monotone; the unrefined photos
below them show at most what the weakest refined one shows (the reranker has not looked at
them, and the list puts them below it); photos matched by file or folder name, listed first,
show at least what the best content match shows.

A pack without a calibration shows ranks only, with no cut-off, and says so
(:data:`UNCALIBRATED_NOTE`). A calibration that cannot be read is reported the same way, with
its reason, and never stops a search.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from photosearch.bounds import check_threshold

#: The manifest field a calibration lives in.
FIELD = "calibration"
#: What a list without a calibration (or with one that does not apply) shows instead.
RANKS_ONLY = "results are ranked, without a match score or cut-off"
UNCALIBRATED_NOTE = f"this model pack has no relevance calibration: {RANKS_ONLY}"


class CalibrationError(ValueError):
    """A calibration that cannot be used (a field missing, a number out of range)."""


def _is_number(v: Any) -> bool:
    """A JSON number (not a boolean) that is finite."""
    return not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)


@dataclass(frozen=True)
class Logistic:
    """p = 1 / (1 + exp(-(a·x + b))), increasing in x (a > 0)."""

    a: float
    b: float

    def __call__(self, x: float) -> float:
        z = self.a * x + self.b
        if z >= 0:
            return 1.0 / (1.0 + math.exp(-z))
        e = math.exp(z)  # the other form, so that a very negative z cannot overflow
        return e / (1.0 + e)

    def to_json(self) -> dict[str, float]:
        return {"a": self.a, "b": self.b}

    @classmethod
    def from_json(cls, d: Any, what: str) -> Logistic:
        if not isinstance(d, dict):
            raise CalibrationError(f"{what} is not an object with a and b")
        a, b = d.get("a"), d.get("b")
        for name, v in (("a", a), ("b", b)):
            if not _is_number(v):
                raise CalibrationError(f"{what}.{name} must be a finite number, not {v!r}")
        if a <= 0:  # type: ignore[operator]
            raise CalibrationError(f"{what}.a must be above 0 (a higher score is likelier)")
        return cls(float(a), float(b))  # type: ignore[arg-type]


@dataclass(frozen=True)
class Calibration:
    """A pack's score-to-probability curves and its match threshold."""

    fast: Logistic
    refined: Logistic | None  # None: fitted without a reranker
    beta: float | None  # the β the refined curve was fitted with
    threshold: float
    info: dict[str, Any]  # what it was fitted on (shown by `models info`, kept as written)

    def probability(self, fast: float, h: float | None) -> float | None:
        """The probability that a photo matches: from its fused score when it was refined
        (and this calibration has a refined curve), else from its fast score; None for a photo
        that has no score at all (found by name before its vector exists)."""
        if not math.isfinite(fast):
            return None
        if h is not None and self.refined is not None and self.beta is not None:
            return self.refined(fast + self.beta * h)
        return self.fast(fast)

    def to_manifest(self) -> dict[str, Any]:
        out: dict[str, Any] = {"fast": self.fast.to_json(), "threshold": self.threshold}
        if self.refined is not None:
            out["refined"] = self.refined.to_json()
            out["beta"] = self.beta
        return out | {"info": self.info}

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any]) -> Calibration | None:
        """The pack's calibration, None when it has none; :class:`CalibrationError` when it has
        one that cannot be used."""
        d = manifest.get(FIELD)
        if d is None:
            return None
        if not isinstance(d, dict):
            raise CalibrationError("the calibration is not an object")
        fast = Logistic.from_json(d.get("fast"), "calibration.fast")
        refined = beta = None
        if d.get("refined") is not None:
            refined = Logistic.from_json(d["refined"], "calibration.refined")
            beta = d.get("beta")
            if not _is_number(beta) or beta < 0:
                raise CalibrationError(f"calibration.beta must be a number ≥ 0, not {beta!r}")
            beta = float(beta)
        t = d.get("threshold")
        if not _is_number(t):
            raise CalibrationError(f"calibration.threshold must be a number, not {t!r}")
        try:
            check_threshold(float(t))
        except ValueError as e:
            raise CalibrationError(f"calibration.threshold {e}") from None
        info = d.get("info") if isinstance(d.get("info"), dict) else {}
        return cls(fast, refined, beta, float(t), info)


def for_manifest(manifest: dict[str, Any]) -> tuple[Calibration | None, str | None]:
    """(the calibration, None) or (None, why results show ranks only)."""
    try:
        cal = Calibration.from_manifest(manifest)
    except CalibrationError as e:
        return None, f"this model pack's relevance calibration cannot be used ({e}): {RANKS_ONLY}"
    return (cal, None) if cal is not None else (None, UNCALIBRATED_NOTE)


def percent(p: float) -> int:
    """A probability as the whole percentage shown (100 only when it is 1)."""
    return min(99, round(100 * p)) if p < 1 else 100


def displayed(raw: Sequence[float | None], names: int) -> list[float]:
    """The numbers to show down a list, never increasing: ``raw`` are the probabilities in
    list order, of which the first ``names`` are the name matches (listed first because their
    file or folder names hold the words). Content matches show the running minimum; name
    matches at least what the first content match shows."""
    content: list[float] = []
    low = 1.0
    for p in raw[names:]:
        low = min(low, 0.0 if p is None else p)
        content.append(low)
    floor = content[0] if content else 0.0
    head: list[float] = []
    low = 1.0
    for p in raw[:names]:
        low = min(low, max(floor, 0.0 if p is None else p))
        head.append(low)
    return head + content
