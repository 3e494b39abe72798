"""GigaBrain-0.5 policy: SigLIP + Gemma-2 prefix, flow-matching DiT action expert, RAMP tokens.

Prefix layout (bidirectional attention over valid tokens; padded cameras and text are masked):

    [ image tokens (max_cameras x T_img) | instruction tokens | state | indicator I |
      trajectory queries | (standard mode) world-model tokens z | value v ]

The world-model tokens sit at the end, so masking them (RAMP's stochastic attention masking in
training, or ``wm_present = False``) leaves every other token's position and output unchanged:
the efficient-mode graph, which omits them, is the same function as the standard-mode graph with
them masked. Inference fixes the indicator to 1 (optimistic).

Flow convention (pi0/GigaBrain-0): x_tau = tau * eps + (1 - tau) * a, the expert predicts
u = eps - a, and sampling integrates tau from 1 to 0 in ``num_flow_steps`` Euler steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from gigabrain_runtime.model.action_expert import ActionExpert
from gigabrain_runtime.model.config import ModelConfig
from gigabrain_runtime.model.decoder import GemmaDecoder, KVCache
from gigabrain_runtime.model.layers import EmbodimentSpecificLinear, rope_cos_sin
from gigabrain_runtime.model.vision import SiglipVisionEncoder, images_to_pixels

INDICATOR_NEGATIVE = 0
INDICATOR_POSITIVE = 1
INDICATOR_ABSENT = 2


class TrajectoryGRU(nn.Module):
    """GRU (nn.GRU's r, z, n gate layout) unrolled over the trajectory query outputs.

    Written out rather than using nn.GRU so that it exports to any ONNX runtime and TensorRT as
    plain matmuls. Output: [B, points, 2] image-plane points in [0, 1].
    """

    def __init__(self, in_dim: int, hidden: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.weight_ih = nn.Parameter(torch.randn(3 * hidden, in_dim) * in_dim**-0.5)
        self.weight_hh = nn.Parameter(torch.randn(3 * hidden, hidden) * hidden**-0.5)
        self.bias_ih = nn.Parameter(torch.zeros(3 * hidden))
        self.bias_hh = nn.Parameter(torch.zeros(3 * hidden))
        self.out = nn.Linear(hidden, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        gates_x = torch.nn.functional.linear(x.float(), self.weight_ih, self.bias_ih)
        h = torch.zeros(b, self.hidden, device=x.device, dtype=torch.float32)
        outs = []
        for i in range(n):
            gx_r, gx_z, gx_n = gates_x[:, i].chunk(3, dim=-1)
            gh_r, gh_z, gh_n = torch.nn.functional.linear(h, self.weight_hh, self.bias_hh).chunk(
                3, dim=-1
            )
            r = torch.sigmoid(gx_r + gh_r)
            z = torch.sigmoid(gx_z + gh_z)
            cand = torch.tanh(gx_n + r * gh_n)
            h = (1.0 - z) * cand + z * h
            outs.append(h)
        return torch.sigmoid(self.out(torch.stack(outs, dim=1)))


@dataclass
class Prefix:
    """What one prefix pass leaves for the flow steps and the CoT heads."""

    cache: KVCache
    valid: torch.Tensor  # bool [B, L]
    hidden: torch.Tensor  # [B, L, width]
    trajectory: torch.Tensor  # [B, points, 2]
    num_valid: torch.Tensor  # int64 [B]


class GigaBrainPolicy(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        v, d, a, wm = cfg.vision, cfg.decoder, cfg.action_expert, cfg.world_model
        self.vision = SiglipVisionEncoder(v)
        self.multi_modal_projector = nn.Linear(v.width, d.width)
        self.decoder = GemmaDecoder(d)
        self.state_proj = EmbodimentSpecificLinear(a.max_embodiments, cfg.state_dim, d.width)
        self.indicator_embedding = nn.Embedding(3, d.width)
        self.trajectory_queries = nn.Parameter(torch.randn(a.trajectory_points, d.width) * 0.02)
        self.wm_proj = nn.Linear(wm.z_token_dim, d.width)
        self.wm_type_embedding = nn.Parameter(torch.zeros(d.width))
        self.value_mlp = nn.Sequential(
            nn.Linear(1, d.width), nn.SiLU(), nn.Linear(d.width, d.width)
        )
        self.trajectory_head = TrajectoryGRU(d.width, a.trajectory_gru_hidden)
        self.action_token_head = nn.Linear(d.width, a.action_vocab_size)
        self.expert = ActionExpert(a, d)

    # ---- prefix ------------------------------------------------------------------------------
    def embed_prefix(
        self,
        images: torch.Tensor,
        image_mask: torch.Tensor,
        tokens: torch.Tensor,
        token_mask: torch.Tensor,
        state: torch.Tensor,
        embodiment_id: torch.Tensor,
        indicator: torch.Tensor,
        wm_tokens: torch.Tensor | None = None,
        value: torch.Tensor | None = None,
        wm_present: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Embeddings [B, L, width] and validity bool [B, L] of the prefix."""
        cfg = self.cfg
        b, cams = images.shape[:2]
        n_img = cfg.vision.tokens_per_image
        img = self.multi_modal_projector(self.vision(images_to_pixels(images)))
        img = img.reshape(b, cams * n_img, -1)
        img_valid = image_mask[:, :, None].expand(b, cams, n_img).reshape(b, cams * n_img)
        text = self.decoder.embed(tokens).to(img.dtype)
        state_tok = self.state_proj(state[:, None].to(img.dtype), embodiment_id)
        ind_tok = self.indicator_embedding(indicator)[:, None].to(img.dtype)
        traj = self.trajectory_queries.to(img.dtype)[None].expand(b, -1, -1)
        ones = torch.ones(b, 2 + traj.shape[1], dtype=torch.bool, device=img.device)
        parts = [img, text, state_tok, ind_tok, traj]
        valid = [img_valid, token_mask, ones]
        if wm_tokens is not None:
            if value is None:
                raise ValueError("value: required together with wm_tokens (standard mode)")
            z = self.wm_proj(wm_tokens.to(img.dtype)) + self.wm_type_embedding.to(img.dtype)
            v_tok = self.value_mlp(value[:, None].to(img.dtype))[:, None]
            present = (
                wm_present
                if wm_present is not None
                else torch.ones(b, dtype=torch.bool, device=img.device)
            )
            parts += [z, v_tok]
            valid.append(present[:, None].expand(b, z.shape[1] + 1))
        return torch.cat(parts, dim=1), torch.cat(valid, dim=1)

    def encode_prefix(
        self,
        x: torch.Tensor,
        valid: torch.Tensor,
        *,
        cot: torch.Tensor | None = None,
        detach_kv: bool = False,
    ) -> Prefix:
        """Run the decoder over the prefix (plus, in training, causal CoT tokens after it)."""
        b, lp, _ = x.shape
        allowed = valid[:, None, None, :]  # bidirectional over valid prefix keys
        if cot is not None:
            lc = cot.shape[1]
            x = torch.cat([x, self.decoder.embed(cot).to(x.dtype)], dim=1)
            full_valid = torch.cat(
                [valid, torch.ones(b, lc, dtype=torch.bool, device=x.device)], dim=1
            )
            causal = torch.ones(lp + lc, lp + lc, dtype=torch.bool, device=x.device).tril()
            causal[:lp, :lp] = True  # prefix block is bidirectional, never sees CoT
            allowed = causal[None, None] & full_valid[:, None, None, :]
            valid_for_pos = full_valid
        else:
            valid_for_pos = valid
        positions = torch.cumsum(valid_for_pos.long(), dim=1) - 1
        cos, sin = rope_cos_sin(
            positions.clamp(min=0), self.cfg.decoder.head_dim, self.cfg.decoder.rope_theta
        )
        hidden, cache = self.decoder(x, cos, sin, allowed, detach_kv=detach_kv)
        if cot is not None:  # the expert attends to the prefix only
            cache = [(k[:, :, :lp], v[:, :, :lp]) for k, v in cache]
        a = self.cfg.action_expert
        start = self.cfg.efficient_prefix_len - a.trajectory_points
        traj = self.trajectory_head(hidden[:, start : start + a.trajectory_points])
        return Prefix(
            cache=cache,
            valid=valid,
            hidden=hidden,
            trajectory=traj,
            num_valid=valid.long().sum(dim=1),
        )

    # ---- flow --------------------------------------------------------------------------------
    def velocity(
        self,
        noisy_actions: torch.Tensor,
        time: torch.Tensor,
        prefix: Prefix,
        embodiment_id: torch.Tensor,
    ) -> torch.Tensor:
        h = noisy_actions.shape[1]
        positions = prefix.num_valid[:, None] + torch.arange(h, device=noisy_actions.device)[None]
        return self.expert(
            noisy_actions, time, prefix.cache, prefix.valid, positions, embodiment_id
        )

    def sample_actions(
        self,
        images: torch.Tensor,
        image_mask: torch.Tensor,
        tokens: torch.Tensor,
        token_mask: torch.Tensor,
        state: torch.Tensor,
        embodiment_id: torch.Tensor,
        noise: torch.Tensor,
        wm_tokens: torch.Tensor | None = None,
        value: torch.Tensor | None = None,
        wm_present: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Denoise ``noise`` [B, H, A] into a normalised action chunk; also return the 2D
        trajectory [B, points, 2]. The prefix is computed once and reused by every step."""
        b = images.shape[0]
        indicator = torch.full((b,), INDICATOR_POSITIVE, dtype=torch.long, device=images.device)
        x, valid = self.embed_prefix(
            images,
            image_mask,
            tokens,
            token_mask,
            state,
            embodiment_id,
            indicator,
            wm_tokens,
            value,
            wm_present,
        )
        prefix = self.encode_prefix(x, valid)
        steps = self.cfg.action_expert.num_flow_steps
        dt = -1.0 / steps
        actions = noise
        for i in range(steps):
            t = torch.full((b,), 1.0 + i * dt, dtype=torch.float32, device=noise.device)
            actions = actions + dt * self.velocity(actions, t, prefix, embodiment_id).to(
                actions.dtype
            )
        return actions, prefix.trajectory
