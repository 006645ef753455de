"""User settings stored in the catalog: each one's text form, default and meaning."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from photosearch.bounds import check_beta, check_depth, check_threshold
from photosearch.rerank import DEFAULT_CACHE_BYTES
from photosearch.search import DEFAULT_RERANK


def _depth(text: str) -> int:
    return check_depth(int(text))


def _beta(text: str) -> float | None:
    if text.strip().lower() in ("pack", "default", "none"):
        return None
    return check_beta(float(text))


def _threshold(text: str) -> float | None:
    if text.strip().lower() in ("pack", "default", "none"):
        return None
    return check_threshold(float(text))


def _mib(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError("must be 0 (no cache) or more")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not (np.isfinite(value) and value > 0):
        raise ValueError("must be a number of seconds above 0")
    return value


def _flag(text: str) -> bool:
    t = text.strip().lower()
    if t in ("1", "true", "yes", "on"):
        return True
    if t in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be on or off")


@dataclass(frozen=True)
class Setting:
    """A user setting stored in the catalog: how to read it from text, its default, what it is."""

    parse: Callable[[str], Any]
    default: Any
    help: str


SETTINGS: dict[str, Setting] = {
    "rerank_depth": Setting(
        _depth, DEFAULT_RERANK, "photos the reranker refines per query (0 = fast only)"
    ),
    "rerank_beta": Setting(
        _beta, None, "weight of the reranker's score (unset: the pack's own, else 0.1)"
    ),
    "match_threshold": Setting(
        _threshold,
        None,
        "relevance a photo needs to count as a match, 0 to 1 (unset: the pack's calibrated one)",
    ),
    "rerank_cache_mb": Setting(
        _mib, DEFAULT_CACHE_BYTES >> 20, "disk space for cached reranker image tokens (MiB)"
    ),
    "rerank_precompute": Setting(
        _flag, False, "compute reranker image tokens for every photo after indexing"
    ),
    "watch_rescan_seconds": Setting(
        _seconds, 900.0, "while watching: seconds between full rescans (events can be missed)"
    ),
    "watch_poll_seconds": Setting(
        _seconds, 60.0, "while watching: seconds between checks of unwatchable or offline folders"
    ),
}
