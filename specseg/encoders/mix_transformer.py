"""SegFormer's Mix Transformer encoder, MiT-B0..B5 (Xie et al., 2021).

A hierarchical transformer: four stages, each an overlapping strided
convolution ("patch embedding") followed by transformer blocks whose
attention shrinks keys and values by a per-stage ratio, and whose MLP mixes
positions with a depthwise 3x3 convolution. Features come at strides
4, 8, 16 and 32; like every stride-4 encoder the stride-2 feature is an
empty (N, 0, H/2, W/2) map.

timm has no Mix Transformer, so specseg implements it. Module names and
parameter shapes follow SMP's ``mit_b*`` encoders (which follow the
SegFormer release), so SMP's and SegFormer's checkpoints load strictly:
``patch_embed{1-4}.{proj,norm}``, ``block{1-4}.{i}.{norm1,attn,norm2,mlp}``
and ``norm{1-4}``.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from specseg.encoders.base import EncoderMixin
from specseg.errors import EncoderBuildError


class ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the last dimension of tokens, or over channels of an NCHW map."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 4:
            n, c, h, w = x.shape
            tokens = x.reshape(n, c, h * w).transpose(1, 2)
            tokens = F.layer_norm(tokens, self.normalized_shape, self.weight, self.bias, self.eps)
            return tokens.transpose(1, 2).reshape(n, c, h, w)
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)


class StochasticDepth(nn.Module):
    """Drops the residual branch of whole samples with probability ``p`` in training."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep


class PatchEmbedding(nn.Module):
    """An overlapping strided convolution, then a channel LayerNorm (output stays NCHW)."""

    def __init__(self, in_channels: int, dim: int, kernel_size: int, stride: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, kernel_size, stride=stride, padding=kernel_size // 2)
        self.norm = ChannelLayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(x))


class DepthwiseMixer(nn.Module):
    """A depthwise 3x3 convolution applied to tokens laid out on their (h, w) grid."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        n, _, c = x.shape
        grid = x.transpose(1, 2).reshape(n, c, h, w)
        return self.dwconv(grid).flatten(2).transpose(1, 2)


class MixFFN(nn.Module):
    """Linear, depthwise-conv position mixing, GELU, linear."""

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.dwconv = DepthwiseMixer(hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        x = self.drop(self.act(self.dwconv(self.fc1(x), h, w)))
        return self.drop(self.fc2(x))


class ReducedAttention(nn.Module):
    """Multi-head self-attention whose keys/values come from a map shrunk ``reduction`` times."""

    def __init__(self, dim: int, heads: int, reduction: int, qkv_bias: bool = True, dropout: float = 0.0) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"attention width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(dim, 2 * dim, bias=qkv_bias)
        self.attn_drop = nn.Dropout(dropout)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(dropout)
        self.reduction = reduction
        if reduction > 1:
            self.sr = nn.Conv2d(dim, dim, reduction, stride=reduction)
            self.norm = ChannelLayerNorm(dim)
        else:
            self.sr = nn.Identity()
            self.norm = nn.Identity()

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        n, length, c = x.shape
        d = c // self.heads
        q = self.q(x).reshape(n, length, self.heads, d).transpose(1, 2)
        source = x
        if self.reduction > 1:
            grid = x.transpose(1, 2).reshape(n, c, h, w)
            source = self.norm(self.sr(grid).flatten(2).transpose(1, 2))
        kv = self.kv(source).reshape(n, -1, 2, self.heads, d).permute(2, 0, 3, 1, 4)
        k, v = kv[0], kv[1]
        weights = self.attn_drop((q @ k.transpose(-2, -1) * self.scale).softmax(dim=-1))
        out = (weights @ v).transpose(1, 2).reshape(n, length, c)
        return self.proj_drop(self.proj(out))


class MixBlock(nn.Module):
    """Pre-norm transformer block on an NCHW map: reduced attention, then Mix-FFN."""

    def __init__(self, dim: int, heads: int, reduction: int, mlp_ratio: float, drop_path: float, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm1 = ChannelLayerNorm(dim, eps=1e-6)
        self.attn = ReducedAttention(dim, heads, reduction, dropout=dropout)
        self.drop_path = StochasticDepth(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = ChannelLayerNorm(dim, eps=1e-6)
        self.mlp = MixFFN(dim, int(dim * mlp_ratio), dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        tokens = x.flatten(2).transpose(1, 2)
        tokens = tokens + self.drop_path(self.attn(self.norm1(tokens), h, w))
        tokens = tokens + self.drop_path(self.mlp(self.norm2(tokens), h, w))
        return tokens.transpose(1, 2).reshape(n, c, h, w)


class MixTransformerEncoder(nn.Module, EncoderMixin):
    """MiT encoder under the specseg contract: features at strides 1, (2: empty), 4, 8, 16, 32.

    ``embed_dims`` and ``depths`` (blocks per stage) select the variant;
    heads (1, 2, 5, 8), key/value reductions (8, 4, 2, 1) and MLP ratio 4
    are SegFormer's for all of B0..B5. All four stages are built whatever the
    depth, as in SMP, so checkpoints load for any depth.
    """

    classifier_keys = ("head.weight", "head.bias")

    def __init__(
        self,
        embed_dims: Sequence[int] = (64, 128, 320, 512),
        depths: Sequence[int] = (3, 4, 6, 3),
        num_heads: Sequence[int] = (1, 2, 5, 8),
        sr_ratios: Sequence[int] = (8, 4, 2, 1),
        mlp_ratio: float = 4.0,
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.1,
        depth: int = 5,
        output_stride: int = 32,
    ) -> None:
        super().__init__()
        if not 1 <= depth <= 5:
            raise EncoderBuildError(f"Mix Transformer depth must be 1..5, got {depth}", "depth")
        if not (len(embed_dims) == len(depths) == len(num_heads) == len(sr_ratios) == 4):
            raise ValueError("embed_dims, depths, num_heads and sr_ratios need 4 entries each (one per stage)")
        self._depth = depth
        self._in_channels = 3
        self._output_stride = 32
        self._out_channels = [3, 0, *embed_dims]
        total = sum(depths)
        rates = [drop_path_rate * i / (total - 1) if total > 1 else 0.0 for i in range(total)]
        previous = 3
        index = 0
        for stage, (dim, blocks, heads, sr) in enumerate(zip(embed_dims, depths, num_heads, sr_ratios), start=1):
            kernel, stride = (7, 4) if stage == 1 else (3, 2)
            setattr(self, f"patch_embed{stage}", PatchEmbedding(previous, dim, kernel, stride))
            setattr(
                self,
                f"block{stage}",
                nn.Sequential(*[MixBlock(dim, heads, sr, mlp_ratio, rates[index + i], drop_rate) for i in range(blocks)]),
            )
            setattr(self, f"norm{stage}", ChannelLayerNorm(dim, eps=1e-6))
            index += blocks
            previous = dim
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        # SegFormer's initialisation: truncated-normal linears, He-normal (fan-out) convolutions.
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Conv2d):
            fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    def get_stages(self) -> dict[int, Sequence[nn.Module]]:
        """The stages dilated for output_stride 16/8: SMP's (patch embedding, blocks and norm).

        SMP dilates every convolution of a stage, the attention's spatial
        reduction and the Mix-FFN's depthwise convolution included, so a
        dilated model keeps SMP's numbers.
        """
        return {16: [self.patch_embed3, self.block3, self.norm3], 32: [self.patch_embed4, self.block4, self.norm4]}

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Return ``depth + 1`` NCHW features: the input, an empty stride-2 map, then stages 1.."""
        n, h, w = x.shape[0], x.shape[2], x.shape[3]
        features = [x, torch.empty([n, 0, h // 2, w // 2], dtype=x.dtype, device=x.device)]
        # Stages written out (patch embedding, blocks, norm): TorchScript cannot getattr a computed name.
        if self._depth >= 2:
            x = self.norm1(self.block1(self.patch_embed1(x))).contiguous()
            features.append(x)
        if self._depth >= 3:
            x = self.norm2(self.block2(self.patch_embed2(x))).contiguous()
            features.append(x)
        if self._depth >= 4:
            x = self.norm3(self.block3(self.patch_embed3(x))).contiguous()
            features.append(x)
        if self._depth >= 5:
            x = self.norm4(self.block4(self.patch_embed4(x))).contiguous()
            features.append(x)
        return features
