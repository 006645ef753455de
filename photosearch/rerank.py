"""The slow, accurate stage: a CoCa-style decoder reads each candidate photo against the query.

``h(x, y) = Σ_l log p(y_l | y_<l, x)`` from the pack's two reranker graphs: one turns pixels into
the image tokens the decoder cross-attends to, the other scores one query against a batch of
those tokens. Runs on ONNX Runtime (a GPU provider when one really works), never on torch.
"""

from __future__ import annotations

import logging

import numpy as np
from numpy.typing import NDArray

from photosearch.encoders import create_session, device_name, run_in_batches, trim_padding
from photosearch.errors import EncoderError, PackError
from photosearch.modelpack import ModelPack
from photosearch.tokenizer import Tokenizer

log = logging.getLogger(__name__)

ImageTokens = NDArray[np.float32]  # [N, tokens, token_dim]


class CrossAttentionScorer:
    """Scores how well each photo explains a query: log-likelihood and token count."""

    def __init__(
        self,
        pack: ModelPack,
        *,
        device: str = "auto",
        threads: int | None = None,
        batch_size: int = 16,
    ):
        spec = pack.reranker
        if spec is None:
            raise PackError("this pack has no reranker", pack=str(pack.path))
        self.spec = spec
        self.batch_size = batch_size
        self.image_session = create_session(
            pack.path / spec.image_file, device=device, threads=threads
        )
        self.scorer_session = create_session(
            pack.path / spec.scorer_file, device=device, threads=threads
        )
        self.tokenizer = Tokenizer.from_config(pack.path, spec.tokenizer)
        self.pad_id = int(spec.tokenizer.get("pad_id", 0))
        self.providers: list[str] = self.scorer_session.get_providers()
        got = [i.name for i in self.scorer_session.get_inputs()]
        if got != ["image_tokens", "input_ids"]:
            raise PackError(
                f"unexpected scorer inputs {got}", pack=str(pack.path), file=spec.scorer_file
            )

    @property
    def device(self) -> str:
        return device_name(self.providers)

    def image_tokens(self, pixels: NDArray[np.float32]) -> ImageTokens:
        """Preprocessed pixels (per ``spec.image``) to the tokens the decoder attends to."""
        pixels = np.ascontiguousarray(pixels, dtype=np.float32)
        h, w = self.spec.image.size
        if pixels.ndim != 4 or pixels.shape[1:] != (3, h, w):
            raise ValueError(f"pixels must have shape (N, 3, {h}, {w}), got {pixels.shape}")
        if len(pixels) == 0:
            return np.zeros((0, self.spec.tokens, self.spec.token_dim), np.float32)
        return run_in_batches(
            self.image_session,
            self.spec.image_file,
            "image_tokens",
            "pixels",
            pixels,
            self.batch_size,
        )

    def query_ids(self, text: str) -> NDArray[np.int64]:
        """One query's ids, [1, length], cut after its end token (the graph allows any length)."""
        return trim_padding(self.tokenizer([text]), self.pad_id)

    def score(
        self, text: str, tokens: ImageTokens
    ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """Log-likelihood of ``text`` given each image, and the number of scored tokens."""
        ids = self.query_ids(text)
        lls, counts = [], []
        for start in range(0, len(tokens), self.batch_size):
            batch = np.ascontiguousarray(tokens[start : start + self.batch_size], np.float32)
            try:
                ll, n = self.scorer_session.run(None, {"image_tokens": batch, "input_ids": ids})
            except Exception as e:
                raise EncoderError(f"{self.spec.scorer_file} failed on a batch: {e}") from e
            lls.append(ll)
            counts.append(n)
        if not lls:
            return np.zeros(0, np.float32), np.zeros(0, np.float32)
        return np.concatenate(lls), np.concatenate(counts)
