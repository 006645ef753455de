"""The allowed range of the numbers a power user tunes: rerank depth K, fusion weight β and the
relevance threshold.

Checked alike by the command line's parser, the settings and every query. Standard library
only: the parser checks ``--rerank``/``--beta`` before any engine module is imported.
"""

from __future__ import annotations

import math

MAX_RERANK = 1000
# β above this only reorders the top K by the reranker alone, which β = 1000 already does
# (h̄ differences of 0.001 outweigh any fast score); larger values overflow to -inf.
MAX_BETA = 1000.0


def check_depth(value: int) -> int:
    """A rerank depth, or ValueError saying what is allowed."""
    if not 0 <= value <= MAX_RERANK:
        raise ValueError(f"must be between 0 and {MAX_RERANK}, not {value}")
    return value


def check_beta(value: float) -> float:
    """A fusion weight β, or ValueError saying what is allowed."""
    if not (math.isfinite(value) and 0 <= value <= MAX_BETA):
        raise ValueError(f"must be a number from 0 to {MAX_BETA:g}, not {value:g}")
    return float(value)


def check_threshold(value: float) -> float:
    """A relevance threshold (a probability), or ValueError saying what is allowed."""
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"must be a number from 0 to 1, not {value:g}")
    return float(value)
