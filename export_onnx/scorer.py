"""The reranker's scoring graphs: the reference (CoCa's own decoder) and the absorbed form.

Both compute ``log p(query | image) = Σ_l log p(y_l | y_<l, image)`` and the token count from
one query's ids and a batch of image tokens (the cache's format).

:class:`AbsorbedScorer` is the same function rearranged so that its cost per photo grows with
the query's length instead of with ``tokens × width²``. In every cross-attention layer CoCa
projects each photo's image tokens ``T`` (after a LayerNorm) to keys and values::

    K = LN(T) W_kᵀ + b_k,   V = LN(T) W_vᵀ + b_v,   LN(T) = N diag(γ) + β,   N = (T - μ) / σ

Keys and values are linear in ``N``, so per head ``h`` the projections move to the query side:

    q_h K_hᵀ = (q_h W_k,h diag(γ)) Nᵀ + q_h (W_k,h β + b_k,h)     (the last term is the same for
                                                                   every token: softmax drops it)
    softmax(·) V_h = (softmax(·) N) (W_v,h diag(γ))ᵀ + (W_v,h β + b_v,h)   (rows sum to one)

``N`` is the same in every layer (only γ and β differ), so it is computed once per photo.
Per layer and photo this costs ``2 · heads · length · width · tokens`` multiply-adds instead of
``2 · tokens · width²`` for the two projections: with 8 heads, 256 tokens and width 512, a
10-token query costs a sixth. The arithmetic is exact; the export gate checks it numerically.
"""

from __future__ import annotations

import math

import torch
from open_clip.coca_model import CoCa
from torch import nn


def _labels_loglik(
    logits: torch.Tensor, input_ids: torch.Tensor, pad_id: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum of log p(label) over the non-padding labels (ids shifted by one), and their count."""
    n = logits.shape[0]
    labels = input_ids[:, 1:].expand(n, -1)
    logp = logits.log_softmax(dim=-1)
    picked = logp.gather(-1, labels.unsqueeze(-1)).squeeze(-1)
    mask = (labels != pad_id).to(picked.dtype)
    return (picked * mask).sum(dim=1), mask.sum(dim=1)


class RerankerScorer(nn.Module):
    """The reference graph: CoCa's multimodal decoder as open_clip runs it.

    ``input_ids`` is one query, shape [1, length], broadcast over every image so the text tower
    runs once per query. It may be trimmed after its end token (the runtime sends the shortest
    form): the text tower is causal, so later positions never change the scores before them.
    """

    def __init__(self, coca: CoCa):
        super().__init__()
        self.text = coca.text
        self.decoder = coca.text_decoder
        self.pad_id = int(coca.pad_id)

    def forward(
        self, image_tokens: torch.Tensor, input_ids: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        _, token_embs = self.text(input_ids)
        n = image_tokens.shape[0]
        token_embs = token_embs[:, :-1].expand(n, -1, -1)
        logits = self.decoder(image_tokens, token_embs)
        return _labels_loglik(logits, input_ids, self.pad_id)


class _AbsorbedCrossAttention(nn.Module):
    """One cross-attention block of the decoder with its key/value projections absorbed."""

    def __init__(self, block: nn.Module):
        super().__init__()
        attn: nn.MultiheadAttention = block.attn
        width = attn.embed_dim
        heads = attn.num_heads
        d = width // heads
        self.heads, self.d = heads, d
        self.ln_1, self.ln_2, self.mlp = block.ln_1, block.ln_2, block.mlp
        self.ls_1, self.ls_2 = block.ls_1, block.ls_2
        w_q, w_k, w_v = attn.in_proj_weight.detach().chunk(3)
        b_q, _, b_v = attn.in_proj_bias.detach().chunk(3)
        gamma = block.ln_1_kv.weight.detach()
        beta = block.ln_1_kv.bias.detach()
        # Queries are scaled as nn.MultiheadAttention scales them, folded into W_q.
        scale = 1.0 / math.sqrt(d)
        self.register_buffer("w_q", (w_q * scale).t().contiguous())  # [width, width]
        self.register_buffer("b_q", b_q * scale)
        # Per head: q_h (W_k,h diag γ) → a query against the normalised tokens. [H, d, width]
        self.register_buffer("w_k", (w_k * gamma[None, :]).reshape(heads, d, width))
        # Per head: (softmax N)(W_v,h diag γ)ᵀ + (W_v,h β + b_v,h). [H, width, d] and [H, 1, d]
        self.register_buffer(
            "w_v", (w_v * gamma[None, :]).reshape(heads, d, width).transpose(1, 2).contiguous()
        )
        self.register_buffer("b_v", (w_v @ beta + b_v).reshape(heads, 1, d))
        self.out_proj = attn.out_proj

    def forward(
        self, x: torch.Tensor, normed: torch.Tensor, normed_t: torch.Tensor
    ) -> torch.Tensor:
        """``x`` [n, length, width] text states; ``normed`` [n, tokens, width] = N and
        ``normed_t`` its transpose (made once for all layers, not once a layer)."""
        n, length, width = x.shape
        q = self.ln_1(x) @ self.w_q + self.b_q  # [n, L, width]
        q = q.reshape(n, length, self.heads, self.d).transpose(1, 2)  # [n, H, L, d]
        qk = q @ self.w_k  # [n, H, L, width]
        scores = qk.reshape(n, self.heads * length, width) @ normed_t
        probs = scores.softmax(dim=-1)  # [n, H·L, tokens]
        read = (probs @ normed).reshape(n, self.heads, length, width)  # softmax · N
        v = read @ self.w_v + self.b_v  # [n, H, L, d]
        o = self.out_proj(v.transpose(1, 2).reshape(n, length, width))
        x = x + self.ls_1(o)
        return x + self.ls_2(self.mlp(self.ln_2(x)))


class AbsorbedScorer(nn.Module):
    """The same inputs, outputs and function as :class:`RerankerScorer`, in the absorbed form."""

    def __init__(self, coca: CoCa):
        super().__init__()
        dec = coca.text_decoder
        if not getattr(dec, "batch_first", True):
            raise ValueError("the absorbed scorer expects a batch-first decoder")
        self.text = coca.text
        self.pad_id = int(coca.pad_id)
        self.self_blocks = dec.resblocks
        self.cross_blocks = nn.ModuleList(_AbsorbedCrossAttention(b) for b in dec.cross_attn)
        ln_kv = [b.ln_1_kv for b in dec.cross_attn]
        self.kv_eps = float(ln_kv[0].eps)
        if any(float(m.eps) != self.kv_eps for m in ln_kv):
            raise ValueError("the cross-attention LayerNorms use different eps")
        self.register_buffer("attn_mask", dec.attn_mask, persistent=False)
        self.ln_final = dec.ln_final
        self.text_projection = dec.text_projection

    def forward(
        self, image_tokens: torch.Tensor, input_ids: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        _, token_embs = self.text(input_ids)
        n = image_tokens.shape[0]
        x = token_embs[:, :-1]
        length = x.shape[1]
        mask = self.attn_mask[:length, :length]
        # N: the image tokens normalised once (every layer's LayerNorm scales it differently).
        normed = nn.functional.layer_norm(
            image_tokens, image_tokens.shape[-1:], None, None, self.kv_eps
        )
        normed_t = normed.transpose(1, 2).contiguous()
        # The first self-attention block sees only the query: run it once, not per photo.
        x = self.self_blocks[0](x, attn_mask=mask).expand(n, -1, -1)
        for i, cross in enumerate(self.cross_blocks):
            if i > 0:
                x = self.self_blocks[i](x, attn_mask=mask)
            x = cross(x, normed, normed_t)
        logits = self.ln_final(x) @ self.text_projection
        return _labels_loglik(logits, input_ids, self.pad_id)
