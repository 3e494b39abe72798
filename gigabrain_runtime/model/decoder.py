"""Gemma-2-style decoder that also hands out each layer's keys/values.

The action expert attends, layer by layer, to the keys/values this decoder computes over the
prefix (mixture-of-transformers), so :meth:`GemmaDecoder.forward` returns them alongside the
hidden states. The prefix is computed once per chunk; every flow step reuses the cache.
"""

from __future__ import annotations

import torch
from torch import nn

from gigabrain_runtime.model.config import DecoderConfig
from gigabrain_runtime.model.layers import GeGLU, GQAProjection, RMSNorm, apply_rope, attention

KVCache = list[tuple[torch.Tensor, torch.Tensor]]


class GemmaDecoderLayer(nn.Module):
    """Sandwich-norm block: pre/post attention norms and pre/post feed-forward norms."""

    def __init__(self, cfg: DecoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.input_layernorm = RMSNorm(cfg.width, cfg.rms_eps)
        self.self_attn = GQAProjection(cfg.width, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim)
        self.post_attention_layernorm = RMSNorm(cfg.width, cfg.rms_eps)
        self.pre_feedforward_layernorm = RMSNorm(cfg.width, cfg.rms_eps)
        self.mlp = GeGLU(cfg.width, cfg.mlp_dim)
        self.post_feedforward_layernorm = RMSNorm(cfg.width, cfg.rms_eps)

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        allowed: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        q, k, v = self.self_attn.qkv(self.input_layernorm(x))
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        heads = attention(
            q,
            k,
            v,
            allowed,
            softcap=self.cfg.attn_logit_softcap,
            scale=self.cfg.attention_scale,
        )
        x = x + self.post_attention_layernorm(self.self_attn.out(heads))
        x = x + self.post_feedforward_layernorm(self.mlp(self.pre_feedforward_layernorm(x)))
        return x, k, v


class GemmaDecoder(nn.Module):
    def __init__(self, cfg: DecoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.width)
        self.layers = nn.ModuleList(GemmaDecoderLayer(cfg) for _ in range(cfg.depth))
        self.norm = RMSNorm(cfg.width, cfg.rms_eps)

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token ids -> embeddings scaled by sqrt(width), as Gemma does."""
        return self.embed_tokens(tokens) * (self.cfg.width**0.5)

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        allowed: torch.Tensor,
        *,
        detach_kv: bool = False,
    ) -> tuple[torch.Tensor, KVCache]:
        """x: [B, L, width] embeddings; returns normed hidden [B, L, width] and per-layer (k, v).

        ``detach_kv`` implements knowledge insulation: the action loss sends no gradient into
        the decoder through the cache.
        """
        cache: KVCache = []
        for layer in self.layers:
            x, k, v = layer(x, cos, sin, allowed)
            cache.append((k.detach(), v.detach()) if detach_kv else (k, v))
        return self.norm(x), cache

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Tied LM head with Gemma-2's final soft-capping (subgoal-language CoT, training)."""
        logits = torch.matmul(hidden.float(), self.embed_tokens.weight.float().t())
        cap = self.cfg.final_logit_softcap
        return cap * torch.tanh(logits / cap) if cap is not None else logits
