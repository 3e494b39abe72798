"""RAMP world model W_phi: a latent dynamics DiT trained by flow matching.

It predicts the future latent state ``s = [z ; Psi(v) ; Psi(p)]`` (visual latents, value tiled
over the latent grid, proprioception tiled over the grid) from the current observation and the
action chunk to be executed:

* a latent encoder maps each camera image to a ``latent_channels`` grid at 1/16 resolution (the
  compression of Wan2.2's VAE; here a light conv stack trained with the model, not the VAE);
* current tokens (patchified ``[z_now ; Psi(p_now)]``) and noisy future tokens share one
  self-attention sequence (conditioning by concatenation), and the action chunk enters through
  cross-attention (Wan's text slot);
* time conditions every block through Wan-style shared modulation plus a per-block offset.

Flow convention (the paper's L_WM): s_tau = tau * s + (1 - tau) * eps, the network predicts
``s - eps``, and sampling integrates tau from 0 (noise) to 1 (data).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from gigabrain_runtime.model.config import ModelConfig
from gigabrain_runtime.model.layers import RMSNorm, modulate, sinusoidal_embedding
from gigabrain_runtime.model.vision import images_to_pixels


class LatentEncoder(nn.Module):
    """uint8 images [B, C, S, S, 3] -> latents [B, C, S/f, S/f, latent_channels]."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        wm = cfg.world_model
        stages = int(math.log2(wm.spatial_compression))
        chans = [3] + [wm.encoder_width * min(2**i, 4) for i in range(stages)]
        self.convs = nn.ModuleList(
            nn.Conv2d(chans[i], chans[i + 1], kernel_size=3, stride=2, padding=1)
            for i in range(stages)
        )
        self.to_latent = nn.Conv2d(chans[-1], wm.latent_channels, kernel_size=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        b, c = images.shape[:2]
        x = images_to_pixels(images).to(self.to_latent.weight.dtype)
        for conv in self.convs:
            x = F.silu(conv(x))
        z = self.to_latent(x)  # [B*C, ch, g, g]
        return z.permute(0, 2, 3, 1).reshape(b, c, z.shape[-2], z.shape[-1], z.shape[1])


def patchify(grid: torch.Tensor, p: int) -> torch.Tensor:
    """[B, C, g, g, ch] -> tokens [B, C * (g/p)^2, ch * p * p]."""
    b, c, g, _, ch = grid.shape
    n = g // p
    x = grid.reshape(b, c, n, p, n, p, ch).permute(0, 1, 2, 4, 3, 5, 6)
    return x.reshape(b, c * n * n, p * p * ch)


def unpatchify_channels(tokens: torch.Tensor, p: int, ch: int) -> torch.Tensor:
    """tokens [B, N, p*p*ch] -> [B, N, p*p, ch] (per-pixel channels inside each patch)."""
    b, n, _ = tokens.shape
    return tokens.reshape(b, n, p * p, ch)


class WanAttention(nn.Module):
    def __init__(self, width: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.q = nn.Linear(width, width)
        self.k = nn.Linear(width, width)
        self.v = nn.Linear(width, width)
        self.o = nn.Linear(width, width)
        self.norm_q = RMSNorm(width)
        self.norm_k = RMSNorm(width)

    def forward(
        self, x: torch.Tensor, context: torch.Tensor, allowed: torch.Tensor | None
    ) -> torch.Tensor:
        b, n, w = x.shape
        h = self.num_heads

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, t.shape[1], h, w // h).transpose(1, 2)

        q = heads(self.norm_q(self.q(x)))
        k = heads(self.norm_k(self.k(context)))
        out = F.scaled_dot_product_attention(q, k, heads(self.v(context)), attn_mask=allowed)
        return self.o(out.transpose(1, 2).reshape(b, n, w))


class WanBlock(nn.Module):
    def __init__(self, width: int, num_heads: int, mlp_dim: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.self_attn = WanAttention(width, num_heads)
        self.norm3 = nn.LayerNorm(width, eps=1e-6)
        self.cross_attn = WanAttention(width, num_heads)
        self.norm2 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.ffn = nn.Sequential(
            nn.Linear(width, mlp_dim), nn.GELU(approximate="tanh"), nn.Linear(mlp_dim, width)
        )
        self.modulation = nn.Parameter(torch.randn(6, width) / width**0.5)

    def forward(
        self, x: torch.Tensor, time_mod: torch.Tensor, context: torch.Tensor, allowed: torch.Tensor
    ) -> torch.Tensor:
        mod = time_mod + self.modulation.to(time_mod.dtype)[None]
        shift_a, scale_a, gate_a, shift_m, scale_m, gate_m = mod.unbind(1)
        h = modulate(self.norm1(x), shift_a, scale_a)
        x = x + gate_a[:, None] * self.self_attn(h, h, allowed)
        x = x + self.cross_attn(self.norm3(x), context, None)
        h = modulate(self.norm2(x), shift_m, scale_m)
        return x + gate_m[:, None] * self.ffn(h)


class LatentWorldModel(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        wm, a = cfg.world_model, cfg.action_expert
        p = wm.patch_size
        self.encoder = LatentEncoder(cfg)
        n_cur = cfg.vision.max_cameras * cfg.wm_tokens_per_frame
        n_fut = cfg.num_wm_tokens
        self.current_in = nn.Linear((wm.latent_channels + wm.proprio_dim) * p * p, wm.width)
        self.future_in = nn.Linear(wm.state_channels * p * p, wm.width)
        self.pos_embedding = nn.Parameter(torch.randn(n_cur + n_fut, wm.width) * 0.02)
        self.action_in = nn.Linear(a.action_dim, wm.width)
        self.action_pos = nn.Parameter(torch.randn(a.horizon, wm.width) * 0.02)
        self.time_embedding = nn.Sequential(
            nn.Linear(256, wm.width), nn.SiLU(), nn.Linear(wm.width, wm.width)
        )
        self.time_projection = nn.Sequential(nn.SiLU(), nn.Linear(wm.width, 6 * wm.width))
        self.blocks = nn.ModuleList(
            WanBlock(wm.width, wm.num_heads, wm.mlp_dim) for _ in range(wm.depth)
        )
        self.head_norm = nn.LayerNorm(wm.width, elementwise_affine=False, eps=1e-6)
        self.head_modulation = nn.Parameter(torch.randn(2, wm.width) / wm.width**0.5)
        self.head = nn.Linear(wm.width, wm.state_channels * p * p)

    # ---- latent state s = [z ; Psi(v) ; Psi(p)] -------------------------------------------------
    def tile(self, latents: torch.Tensor, *scalars: torch.Tensor) -> torch.Tensor:
        """Concatenate per-sample vectors [B, k] tiled over every latent pixel: Psi(.)."""
        b, c, g, _, _ = latents.shape
        tiled = [
            s.to(latents.dtype)[:, None, None, None, :].expand(b, c, g, g, s.shape[-1])
            for s in scalars
        ]
        return torch.cat([latents, *tiled], dim=-1)

    def current_tokens(self, images: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        return patchify(self.tile(self.encoder(images), state), self.cfg.world_model.patch_size)

    def future_state_tokens(
        self, future_images: torch.Tensor, value: torch.Tensor, proprio: torch.Tensor
    ) -> torch.Tensor:
        """Training target s_future, patchified: [B, N_fut, state_channels * p * p].

        ``future_images`` [B, C, F, S, S, 3] (F = future latent frames), value [B], proprio [B, P].
        The latent encoder is not trained through the target (as with a frozen VAE).
        """
        b, c, f = future_images.shape[:3]
        s = future_images.shape[3]
        with torch.no_grad():
            z = self.encoder(future_images.reshape(b, c * f, s, s, 3))
        grid = self.tile(z, value[:, None], proprio)
        return patchify(grid, self.cfg.world_model.patch_size)

    def encode(
        self,
        images: torch.Tensor,
        state: torch.Tensor,
        future_images: torch.Tensor,
        future_value: torch.Tensor,
        future_proprio: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(current tokens, target s_future) of one training batch, each encoded once: the
        current tokens serve both the prediction that conditions the policy and this model's
        own loss (:func:`~gigabrain_runtime.model.losses.world_model_flow_loss`)."""
        current = self.current_tokens(images, state)
        return current, self.future_state_tokens(future_images, future_value, future_proprio)

    # ---- flow ----------------------------------------------------------------------------------
    def velocity(
        self,
        noisy_future: torch.Tensor,
        tau: torch.Tensor,
        current: torch.Tensor,
        actions: torch.Tensor,
        image_mask: torch.Tensor,
    ) -> torch.Tensor:
        """noisy_future [B, N_fut, D_s], tau [B], current [B, N_cur, D_c], actions [B, H, A],
        image_mask bool [B, C] -> predicted (s - eps) [B, N_fut, D_s]."""
        b = noisy_future.shape[0]
        width = self.cfg.world_model.width
        x = torch.cat([self.current_in(current), self.future_in(noisy_future)], dim=1)
        x = x + self.pos_embedding.to(x.dtype)
        context = self.action_in(actions.to(x.dtype)) + self.action_pos.to(x.dtype)
        t = self.time_embedding(sinusoidal_embedding(tau, 256, 1e-3, 1.0).to(x.dtype))
        time_mod = self.time_projection(t).view(b, 6, width)
        n_cur = current.shape[1]
        per_cam = n_cur // image_mask.shape[1]
        cur_valid = image_mask[:, :, None].expand(b, image_mask.shape[1], per_cam).reshape(b, n_cur)
        fut_valid = torch.ones(b, noisy_future.shape[1], dtype=torch.bool, device=x.device)
        allowed = torch.cat([cur_valid, fut_valid], dim=1)[:, None, None, :]
        for block in self.blocks:
            x = block(x, time_mod, context, allowed)
        shift, scale = (self.head_modulation.to(x.dtype)[None] + t[:, None]).unbind(1)
        x = modulate(self.head_norm(x), shift, scale)
        return self.head(x[:, n_cur:])

    def predict(
        self,
        images: torch.Tensor,
        image_mask: torch.Tensor,
        state: torch.Tensor,
        actions: torch.Tensor,
        noise: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sample s_future. Returns visual tokens z [B, N_fut, z_token_dim] (what the policy
        consumes), value [B] and proprioception [B, P], both averaged over the tiles of the
        cameras that are present."""
        return self.sample(self.current_tokens(images, state), image_mask, actions, noise)

    def sample(
        self,
        current: torch.Tensor,
        image_mask: torch.Tensor,
        actions: torch.Tensor,
        noise: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """:meth:`predict` from the current tokens (:meth:`current_tokens`) already encoded."""
        steps = self.cfg.world_model.num_sampling_steps
        s = noise
        for i in range(steps):
            tau = torch.full((s.shape[0],), i / steps, dtype=torch.float32, device=s.device)
            s = s + (1.0 / steps) * self.velocity(s, tau, current, actions, image_mask).to(s.dtype)
        return self.split_state(s, image_mask)

    def split_state(
        self, s: torch.Tensor, image_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        wm = self.cfg.world_model
        p = wm.patch_size
        b, n, _ = s.shape
        pix = unpatchify_channels(s, p, wm.state_channels)  # [B, N, p*p, ch]
        z = pix[..., : wm.latent_channels].reshape(b, n, p * p * wm.latent_channels)
        per_cam = n // image_mask.shape[1]
        w = image_mask.to(s.dtype)[:, :, None].expand(b, image_mask.shape[1], per_cam)
        w = w.reshape(b, n, 1, 1)
        denom = (w.sum(dim=(1, 2, 3)) * p * p).clamp(min=1.0)
        value = (pix[..., wm.latent_channels : wm.latent_channels + 1] * w).sum(dim=(1, 2, 3))
        proprio = (pix[..., wm.latent_channels + 1 :] * w).sum(dim=(1, 2)) / denom[:, None]
        return z, value / denom, proprio
