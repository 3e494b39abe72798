"""Flow-matching DiT action expert with its own weights (mixture-of-transformers).

Layer ``i`` of the expert projects the noisy action tokens to q/k/v with the decoder's head
layout and attends to [decoder layer i keys/values over the prefix ; its own keys/values]: the
prefix is never recomputed across flow steps and cannot see the actions. Flow time conditions
every block through adaptive RMSNorm (scale, shift, gate), the layout of GigaBrain-0's released
expert (width 1024, MLP 2048, sandwich norms), so its checkpoint maps onto these modules.
"""

from __future__ import annotations

import torch
from torch import nn

from gigabrain_runtime.model.config import ActionExpertConfig, DecoderConfig
from gigabrain_runtime.model.decoder import KVCache
from gigabrain_runtime.model.layers import (
    AdaRMSNorm,
    EmbodimentSpecificLinear,
    GeGLU,
    GQAProjection,
    Linear,
    RMSNorm,
    apply_rope,
    attention,
    rope_cos_sin,
    sinusoidal_embedding,
)


class ActionExpertLayer(nn.Module):
    def __init__(self, cfg: ActionExpertConfig, dec: DecoderConfig) -> None:
        super().__init__()
        self.dec = dec
        self.input_layernorm = AdaRMSNorm(cfg.width, cfg.width)
        self.self_attn = GQAProjection(cfg.width, dec.num_heads, dec.num_kv_heads, dec.head_dim)
        self.post_attention_layernorm = RMSNorm(cfg.width)
        self.pre_feedforward_layernorm = AdaRMSNorm(cfg.width, cfg.width)
        self.mlp = GeGLU(cfg.width, cfg.mlp_dim)
        self.post_feedforward_layernorm = RMSNorm(cfg.width)

    def forward(
        self,
        x: torch.Tensor,
        cond: torch.Tensor,
        prefix_kv: tuple[torch.Tensor, torch.Tensor],
        cos: torch.Tensor,
        sin: torch.Tensor,
        allowed: torch.Tensor,
    ) -> torch.Tensor:
        h, gate = self.input_layernorm(x, cond)
        q, k, v = self.self_attn.qkv(h)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        pk, pv = prefix_kv
        heads = attention(
            q,
            torch.cat([pk.to(k.dtype), k], dim=2),
            torch.cat([pv.to(v.dtype), v], dim=2),
            allowed,
            softcap=self.dec.attn_logit_softcap,
            scale=self.dec.attention_scale,
        )
        x = x + self.post_attention_layernorm(self.self_attn.out(heads)) * gate
        h, gate = self.pre_feedforward_layernorm(x, cond)
        return x + self.post_feedforward_layernorm(self.mlp(h)) * gate


class ActionExpert(nn.Module):
    """Predicts the flow velocity of a noisy action chunk given the prefix cache."""

    def __init__(self, cfg: ActionExpertConfig, dec: DecoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.dec = dec
        self.action_in_proj = EmbodimentSpecificLinear(
            cfg.max_embodiments, cfg.action_dim, cfg.width
        )
        self.action_out_proj = EmbodimentSpecificLinear(
            cfg.max_embodiments, cfg.width, cfg.action_dim
        )
        self.time_mlp_in = Linear(cfg.width, cfg.width)
        self.time_mlp_out = Linear(cfg.width, cfg.width)
        self.layers = nn.ModuleList(ActionExpertLayer(cfg, dec) for _ in range(dec.depth))
        self.norm = AdaRMSNorm(cfg.width, cfg.width)
        if cfg.indicator_condition:  # absent, negative, positive (policy.INDICATOR_*)
            self.indicator_embedding = nn.Embedding(3, cfg.width)
            nn.init.zeros_(self.indicator_embedding.weight)

    def time_condition(
        self, time: torch.Tensor | float, dtype: torch.dtype, device: torch.device
    ) -> torch.Tensor:
        """Flow time [B] (or one float for the whole batch) in [0, 1] -> AdaRMS condition
        [B or 1, width]."""
        emb = sinusoidal_embedding(
            time, self.cfg.width, self.cfg.time_min_period, self.cfg.time_max_period
        ).to(device=device, dtype=dtype)
        hidden = nn.functional.silu(self.time_mlp_in(emb))
        return nn.functional.silu(self.time_mlp_out(hidden))

    def forward(
        self,
        noisy_actions: torch.Tensor,
        time: torch.Tensor | float,
        cache: KVCache,
        prefix_allowed: torch.Tensor,
        positions: torch.Tensor,
        embodiment_id: torch.Tensor,
        indicator: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """noisy_actions [B, H, A], time [B] in [0, 1], prefix_allowed bool [B, Lp] (valid prefix
        keys), positions int [B, H] (RoPE positions after the prefix), indicator int64 [B]
        (with ``indicator_condition``) -> velocity [B, H, A]."""
        b, h, _ = noisy_actions.shape
        cond = self.time_condition(time, noisy_actions.dtype, noisy_actions.device)
        if self.cfg.indicator_condition:
            if indicator is None:
                raise ValueError("indicator: this expert is conditioned on it; pass one per sample")
            cond = cond + self.indicator_embedding(indicator).to(cond.dtype)
        x = self.action_in_proj(noisy_actions, embodiment_id)
        cos, sin = rope_cos_sin(positions, self.dec.head_dim, self.dec.rope_theta)
        # every action token sees every valid prefix key and every action token
        suffix_allowed = torch.ones(b, h, dtype=torch.bool, device=x.device)
        allowed = torch.cat([prefix_allowed, suffix_allowed], dim=1)[:, None, None, :]
        for layer, kv in zip(self.layers, cache, strict=True):
            x = layer(x, cond, kv, cos, sin, allowed)
        x, _ = self.norm(x, cond)
        return self.action_out_proj(x, embodiment_id)
