"""The same towers, written so that their exported graphs do less copying (exact in fp32).

torch exports ``nn.MultiheadAttention`` as its general decomposition: eight transposes and a
few dozen shape operations per layer, which took ~19 % of the ViT-B-32 image encoder's time in
ONNX Runtime (int8, 2 cores). :class:`LeanAttention` computes the same attention with one
projection and three transposes. :class:`PatchEmbedding` replaces a ViT's patch convolution
(kernel = stride, no padding) by the matrix product it is, which the int8 quantiser then
quantises like every other weight (the convolution stayed fp32: ~7 % of the time).

Only the exported copy is changed (:func:`lean_copy`); the parity gates compare its graphs with
the original model, so anything these rewrites got wrong would fail the export. Measured on
the ViT-B-32-256 image tower, int8, batch 32: 1.23× the throughput of the plain export.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn


class LeanAttention(nn.Module):
    """``nn.MultiheadAttention(batch_first=True)``'s forward, in fewer graph operations."""

    def __init__(self, mha: nn.MultiheadAttention):
        super().__init__()
        self.heads = mha.num_heads
        self.weight = mha.in_proj_weight
        self.bias = mha.in_proj_bias
        self.out_proj = mha.out_proj

    @staticmethod
    def fits(m: nn.Module) -> bool:
        return (
            isinstance(m, nn.MultiheadAttention)
            and m.batch_first
            and m._qkv_same_embed_dim
            and m.in_proj_bias is not None
            and m.bias_k is None
            and not m.add_zero_attn
        )

    def _heads(self, x: torch.Tensor, parts: int, first: int) -> list[torch.Tensor]:
        """``x``'s projections ``first``… (``parts`` of them), each [B, heads, N, head dim]."""
        d = self.weight.shape[1]
        w = self.weight[first * d : (first + parts) * d]
        b = self.bias[first * d : (first + parts) * d]
        batch, n, _ = x.shape
        y = F.linear(x, w, b).reshape(batch, n, parts, self.heads, d // self.heads)
        return [y[:, :, i].transpose(1, 2) for i in range(parts)]

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        need_weights: bool = False,
        attn_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, None]:
        if query is key and key is value:  # self-attention: one projection
            q, k, v = self._heads(query, 3, 0)
        elif key is value:  # attention pooling: learned queries over the tokens
            (q,) = self._heads(query, 1, 0)
            k, v = self._heads(key, 2, 1)
        else:
            (q,), (k,), (v,) = (
                self._heads(query, 1, 0),
                self._heads(key, 1, 1),
                self._heads(value, 1, 2),
            )
        scores = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)
        if attn_mask is not None:
            if attn_mask.dim() == 3:  # [batch × heads, N, N], as open_clip builds CoCa's
                attn_mask = attn_mask.reshape(scores.shape)
            scores = scores + attn_mask
        out = (scores.softmax(-1) @ v).transpose(1, 2)
        batch, n = out.shape[0], out.shape[1]
        return self.out_proj(out.reshape(batch, n, -1)), None


class PatchEmbedding(nn.Module):
    """A ViT's patch convolution (kernel = stride, no padding, no bias) as a matrix product;
    the output keeps the convolution's [B, width, grid, grid] layout."""

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        self.patch = conv.kernel_size[0]
        self.width = conv.out_channels
        self.weight = nn.Parameter(conv.weight.detach().reshape(self.width, -1).t().contiguous())

    @staticmethod
    def fits(m: nn.Module) -> bool:
        return (
            isinstance(m, nn.Conv2d)
            and m.kernel_size[0] == m.kernel_size[1]
            and tuple(m.stride) == tuple(m.kernel_size)
            and tuple(m.padding) == (0, 0)
            and tuple(m.dilation) == (1, 1)
            and m.groups == 1
            and m.bias is None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        p = self.patch
        gh, gw = h // p, w // p
        x = x[:, :, : gh * p, : gw * p]  # what the convolution leaves out, too
        x = x.reshape(b, c, gh, p, gw, p).permute(0, 2, 4, 1, 3, 5).reshape(b, gh * gw, c * p * p)
        return (x @ self.weight).transpose(1, 2).reshape(b, self.width, gh, gw)


def lean_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` (a whole model or an image tower) with every fitting attention and
    the ViT patch convolution replaced (the original is untouched: it stays the reference)."""
    lean = copy.deepcopy(model)
    for parent in list(lean.modules()):
        for name, child in list(parent.named_children()):
            if LeanAttention.fits(child):
                setattr(parent, name, LeanAttention(child))
    visual = getattr(lean, "visual", lean)  # a whole model, or its image tower alone
    if PatchEmbedding.fits(getattr(visual, "conv1", None)):
        visual.conv1 = PatchEmbedding(visual.conv1)
    return lean.eval()
