"""SigLIP-style vision encoder: patch embedding, learned positions, pre-LN transformer."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gigabrain_runtime.model.config import VisionConfig
from gigabrain_runtime.model.layers import Linear


class SiglipAttention(nn.Module):
    def __init__(self, width: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.q_proj = Linear(width, width)
        self.k_proj = Linear(width, width)
        self.v_proj = Linear(width, width)
        self.out_proj = Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, w = x.shape
        h = self.num_heads

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, n, h, w // h).transpose(1, 2)

        out = F.scaled_dot_product_attention(
            heads(self.q_proj(x)), heads(self.k_proj(x)), heads(self.v_proj(x))
        )
        return self.out_proj(out.transpose(1, 2).reshape(b, n, w))


class SiglipMLP(nn.Module):
    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = Linear(width, hidden)
        self.fc2 = Linear(hidden, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class SiglipLayer(nn.Module):
    def __init__(self, cfg: VisionConfig) -> None:
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(cfg.width, eps=cfg.layer_norm_eps)
        self.self_attn = SiglipAttention(cfg.width, cfg.num_heads)
        self.layer_norm2 = nn.LayerNorm(cfg.width, eps=cfg.layer_norm_eps)
        self.mlp = SiglipMLP(cfg.width, cfg.mlp_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


class SiglipVisionEncoder(nn.Module):
    """Images [N, 3, S, S] in [-1, 1] -> patch features [N, (S/P)^2, width]."""

    def __init__(self, cfg: VisionConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.patch_embedding = nn.Conv2d(3, cfg.width, cfg.patch_size, stride=cfg.patch_size)
        self.position_embedding = nn.Parameter(torch.randn(cfg.tokens_per_image, cfg.width) * 0.02)
        self.layers = nn.ModuleList(SiglipLayer(cfg) for _ in range(cfg.depth))
        self.post_layernorm = nn.LayerNorm(cfg.width, eps=cfg.layer_norm_eps)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        # pixels are scaled in float32 (bit-exact with the official pipeline), then cast to
        # the model's dtype (bfloat16 / float16 on a GPU)
        x = self.patch_embedding(pixels.to(self.patch_embedding.weight.dtype))
        x = x.flatten(2).transpose(1, 2)
        x = x + self.position_embedding.to(x.dtype)
        for layer in self.layers:
            x = layer(x)
        return self.post_layernorm(x)


def images_to_pixels(images: torch.Tensor) -> torch.Tensor:
    """uint8 [B, C, S, S, 3] (camera slots, HWC RGB) -> float [B*C, 3, S, S] in [-1, 1].

    ``x / 255 * 2 - 1`` in float32, the operations of GigaBrain-0's pipeline (the client divides
    by 255, the server scales to [-1, 1]), so pixels match it bit for bit; in place on the one
    float copy (a third of the time of three new tensors, the same values)."""
    b, c, s, _, _ = images.shape
    x = images.reshape(b * c, s, s, 3).permute(0, 3, 1, 2).float()
    return x.div_(255.0).mul_(2.0).sub_(1.0)
