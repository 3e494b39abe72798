"""GigaBrain policy: SigLIP + Gemma-2 prefix, flow-matching DiT action expert, optional RAMP tokens.

The prefix is the concatenation of the segments the model's variant declares
(``ModelConfig.variant.prefix``; bidirectional attention over valid tokens, padded cameras and
text masked):

* ``gigabrain-0`` (the published model): ``[ images | (trajectory queries) | text ]``, the state
  written into the text as discretised bins;
* ``gigabrain-0.5`` (RAMP): ``[ images | text | state | indicator I | trajectory queries |
  (standard mode) world-model tokens z | value v ]``.

Only the modules of the declared segments exist, so a checkpoint either provides every
parameter or is refused. The world-model tokens sit at the end, so masking them (RAMP's
stochastic attention masking in training, or ``wm_present = False``) leaves every other token's
position and output unchanged: the efficient-mode graph, which omits them, is the same function
as the standard-mode graph with them masked. Inference fixes the indicator to 1 (optimistic).

Flow convention (pi0/GigaBrain-0): x_tau = tau * eps + (1 - tau) * a, the expert predicts
u = eps - a, and sampling integrates tau from 1 to 0 in ``num_flow_steps`` Euler steps.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from gigabrain_runtime.model.action_expert import ActionExpert
from gigabrain_runtime.model.config import ModelConfig
from gigabrain_runtime.model.decoder import GemmaDecoder, KVCache
from gigabrain_runtime.model.layers import EmbodimentSpecificLinear, Linear, rope_cos_sin
from gigabrain_runtime.model.vision import SiglipVisionEncoder, images_to_pixels

INDICATOR_NEGATIVE = 0
INDICATOR_POSITIVE = 1
INDICATOR_ABSENT = 2


class TrajectoryGRU(nn.Module):
    """GRU (nn.GRU's r, z, n gate layout) unrolled over the trajectory query outputs.

    Written out rather than using nn.GRU so that it exports to any ONNX runtime and TensorRT as
    plain matmuls. Output: [B, points, out_dim] image-plane coordinates in [0, 1] of the first
    camera's model input (``out_dim`` 2: one point per step; 4: left and right gripper), passed
    through ``activation`` (sigmoid, or none as GigaBrain-0's ``traj_out_proj``).
    """

    def __init__(self, in_dim: int, hidden: int, out_dim: int = 2, activation: str = "sigmoid"):
        super().__init__()
        self.hidden = hidden
        self.activation = activation
        self.weight_ih = nn.Parameter(torch.randn(3 * hidden, in_dim) * in_dim**-0.5)
        self.weight_hh = nn.Parameter(torch.randn(3 * hidden, hidden) * hidden**-0.5)
        self.bias_ih = nn.Parameter(torch.zeros(3 * hidden))
        self.bias_hh = nn.Parameter(torch.zeros(3 * hidden))
        self.out = nn.Linear(hidden, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        dtype = self.weight_ih.dtype  # the model's (float32 on the CPU, bf16 on a GPU)
        gates_x = torch.nn.functional.linear(x.to(dtype), self.weight_ih, self.bias_ih)
        h = torch.zeros(b, self.hidden, device=x.device, dtype=dtype)
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
        out = self.out(torch.stack(outs, dim=1))
        return torch.sigmoid(out) if self.activation == "sigmoid" else out


# Real-time chunking's guidance weight cap (arXiv 2506.07339, beta = 5): how hard each flow
# step pulls the chunk toward the previous one where the soft mask is 1.
RTC_MAX_GUIDANCE = 5.0


def rtc_velocity(
    x: torch.Tensor,
    v: torch.Tensor,
    time: float | torch.Tensor,
    prefix_actions: torch.Tensor,
    prefix_weights: torch.Tensor,
) -> torch.Tensor:
    """Real-time chunking's guided velocity (arXiv 2506.07339, pi-GDM guidance) in this
    project's flow convention (x_t = t * eps + (1 - t) * a, v = eps - a, t from 1 to 0).

    The clean chunk the step predicts is ``a_hat = x - t * v``; its weighted error against the
    previous chunk, ``W * (Y - a_hat)``, is pulled back into the velocity with weight
    ``min(beta, t / ((1 - t) * r2))``, r2 = t^2 / (t^2 + (1 - t)^2). The paper backpropagates
    the error through the denoiser (a vector-Jacobian product); here that Jacobian is taken as
    the identity, which every backend (an ONNX graph, a TensorRT plan) can run without autograd.
    Zero weights return ``v`` unchanged, bit for bit."""
    t = torch.as_tensor(time, dtype=x.dtype, device=x.device).reshape(-1, 1, 1)
    a_hat = x - t * v
    one_minus = torch.clamp(1.0 - t, min=1e-6)
    r2 = t * t / (t * t + one_minus * one_minus)
    weight = torch.clamp(t / (one_minus * torch.clamp(r2, min=1e-6)), max=RTC_MAX_GUIDANCE)
    err = prefix_weights.to(x.dtype) * (prefix_actions.to(x.dtype) - a_hat)
    return v - weight * err


@dataclass
class Prefix:
    """What one prefix pass leaves for the flow steps and the CoT heads."""

    cache: KVCache
    valid: torch.Tensor  # bool [B, L]
    hidden: torch.Tensor  # [B, L, width]
    trajectory: torch.Tensor | None  # [B, points, trajectory_dim]; None without the segment
    num_valid: torch.Tensor  # int64 [B]


class GigaBrainPolicy(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        v, d, a, wm = cfg.vision, cfg.decoder, cfg.action_expert, cfg.world_model
        var = cfg.variant
        self.vision = SiglipVisionEncoder(v)
        self.multi_modal_projector = Linear(v.width, d.width)
        self.decoder = GemmaDecoder(d)
        if var.has("state"):
            self.state_proj = EmbodimentSpecificLinear(a.max_embodiments, cfg.state_dim, d.width)
        if var.has("indicator"):
            self.indicator_embedding = nn.Embedding(3, d.width)
        if var.has("trajectory"):
            self.trajectory_queries = nn.Parameter(torch.randn(a.trajectory_points, d.width) * 0.02)
            self.trajectory_head = TrajectoryGRU(
                d.width, a.trajectory_gru_hidden, var.trajectory_dim, var.trajectory_activation
            )
        if var.has_world_model:
            self.wm_proj = nn.Linear(wm.z_token_dim, d.width)
            self.wm_type_embedding = nn.Parameter(torch.zeros(d.width))
            self.value_mlp = nn.Sequential(
                nn.Linear(1, d.width), nn.SiLU(), nn.Linear(d.width, d.width)
            )
        if var.action_token_head:
            self.action_token_head = nn.Linear(d.width, a.action_vocab_size)
        self.expert = ActionExpert(a, d)

    # ---- prefix ------------------------------------------------------------------------------
    def embed_images(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images [B, C, S, S, 3] -> the prefix's image embeddings [B, C * N, width]."""
        b, cams = images.shape[:2]
        img = self.multi_modal_projector(self.vision(images_to_pixels(images)))
        return img.reshape(b, cams * self.cfg.vision.tokens_per_image, -1)

    def embed_prefix(
        self,
        images: torch.Tensor,
        image_mask: torch.Tensor,
        tokens: torch.Tensor,
        token_mask: torch.Tensor,
        state: torch.Tensor | None = None,
        embodiment_id: torch.Tensor | None = None,
        indicator: torch.Tensor | None = None,
        wm_tokens: torch.Tensor | None = None,
        value: torch.Tensor | None = None,
        wm_present: torch.Tensor | None = None,
        image_embeddings: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Embeddings [B, L, width] and validity bool [B, L] of the prefix, in the order the
        variant declares. ``state``/``embodiment_id`` feed a state token, ``indicator`` the
        indicator token, ``wm_tokens``/``value`` (standard mode) the world-model segments; each
        is required exactly when the variant has that segment. ``image_embeddings``: these
        images' :meth:`embed_images`, already computed (two prefixes of the same images)."""
        cfg = self.cfg
        b, cams = images.shape[:2]
        n_img = cfg.vision.tokens_per_image
        img = self.embed_images(images) if image_embeddings is None else image_embeddings
        dtype, device = img.dtype, img.device
        img_valid = image_mask[:, :, None].expand(b, cams, n_img).reshape(b, cams * n_img)

        def ones(n: int) -> torch.Tensor:
            return torch.ones(b, n, dtype=torch.bool, device=device)

        def need(name: str, tensor: torch.Tensor | None) -> torch.Tensor:
            if tensor is None:
                raise ValueError(f"{name}: required by the {cfg.variant.name} prefix")
            return tensor

        standard = wm_tokens is not None
        parts: list[torch.Tensor] = []
        valid: list[torch.Tensor] = []
        for segment in cfg.variant.segments(standard=standard):
            if segment == "images":
                parts.append(img)
                valid.append(img_valid)
            elif segment == "text":
                parts.append(self.decoder.embed(tokens).to(dtype))
                valid.append(token_mask)
            elif segment == "trajectory":
                parts.append(self.trajectory_queries.to(dtype)[None].expand(b, -1, -1))
                valid.append(ones(cfg.action_expert.trajectory_points))
            elif segment == "state":
                s = need("state", state)[:, None].to(dtype)
                parts.append(self.state_proj(s, need("embodiment_id", embodiment_id)))
                valid.append(ones(1))
            elif segment == "indicator":
                parts.append(self.indicator_embedding(need("indicator", indicator))[:, None])
                parts[-1] = parts[-1].to(dtype)
                valid.append(ones(1))
            elif segment in ("world_model", "value"):
                present = (
                    wm_present
                    if wm_present is not None
                    else torch.ones(b, dtype=torch.bool, device=device)
                )
                if segment == "world_model":
                    z = self.wm_proj(need("wm_tokens", wm_tokens).to(dtype))
                    parts.append(z + self.wm_type_embedding.to(dtype))
                else:
                    v_in = need("value", value)[:, None].to(dtype)
                    parts.append(self.value_mlp(v_in)[:, None])
                valid.append(present[:, None].expand(b, parts[-1].shape[1]))
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
        traj = None
        if self.cfg.variant.has("trajectory"):
            start = self.cfg.segment_offset("trajectory")
            n = self.cfg.action_expert.trajectory_points
            traj = self.trajectory_head(hidden[:, start : start + n])
        return Prefix(
            cache=cache,
            valid=valid,
            hidden=hidden,
            trajectory=traj,
            num_valid=valid.long().sum(dim=1),
        )

    def optional_keys(self) -> tuple[str, ...]:
        """Parameters a weights file may lack: they start at zero and then change nothing (the
        expert's indicator condition, added to weights trained without it)."""
        return (
            ("expert.indicator_embedding.weight",)
            if self.cfg.action_expert.indicator_condition
            else ()
        )

    # ---- flow --------------------------------------------------------------------------------
    def velocity(
        self,
        noisy_actions: torch.Tensor,
        time: torch.Tensor | float,
        prefix: Prefix,
        embodiment_id: torch.Tensor,
        indicator: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The flow velocity; ``indicator`` [B] reaches the expert's blocks directly where the
        config says (``action_expert.indicator_condition``), and is ignored otherwise."""
        h = noisy_actions.shape[1]
        positions = prefix.num_valid[:, None] + torch.arange(h, device=noisy_actions.device)[None]
        return self.expert(
            noisy_actions, time, prefix.cache, prefix.valid, positions, embodiment_id, indicator
        )

    def sample_actions(
        self,
        images: torch.Tensor,
        image_mask: torch.Tensor,
        tokens: torch.Tensor,
        token_mask: torch.Tensor,
        embodiment_id: torch.Tensor,
        noise: torch.Tensor,
        state: torch.Tensor | None = None,
        wm_tokens: torch.Tensor | None = None,
        value: torch.Tensor | None = None,
        wm_present: torch.Tensor | None = None,
        prefix_actions: torch.Tensor | None = None,
        prefix_weights: torch.Tensor | None = None,
        mark: Callable[[str], None] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Denoise ``noise`` [B, H, A] into a normalised action chunk; also return the 2D
        trajectory [B, points, trajectory_dim] (None when the variant has no trajectory
        tokens). The prefix is computed once and reused by every step. ``mark``, if given, is
        called with each phase's name as it ends ("embed" - the vision encoder and the other
        prefix embeddings -, "prefix", "flow 0" ...): ``bench --phases`` times them (eager
        only: a compiled graph has no phases).

        Real-time chunking: ``prefix_actions`` [B, H, A] (normalised, this chunk's time grid)
        and ``prefix_weights`` [B, H, A] in [0, 1] guide every step toward the previous chunk where
        the weight is above zero (:func:`rtc_velocity`); all-zero weights give exactly the
        unguided chunk."""
        b = images.shape[0]
        indicator = (
            torch.full((b,), INDICATOR_POSITIVE, dtype=torch.long, device=images.device)
            if self.cfg.variant.has("indicator")
            else None
        )
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
        if mark is not None:
            mark("embed")
        prefix = self.encode_prefix(x, valid)
        if mark is not None:
            mark("prefix")
        steps = self.cfg.action_expert.num_flow_steps
        dt = -1.0 / steps
        actions = noise
        for i in range(steps):
            # the schedule of GigaBrain-0: float32 times 1, 0.9, ... (torch.arange's values),
            # each step's time embedding a constant (see sinusoidal_embedding)
            t = 1.0 + i * dt
            v = self.velocity(actions, t, prefix, embodiment_id, indicator).to(actions.dtype)
            if prefix_actions is not None and prefix_weights is not None:
                v = rtc_velocity(actions, v, t, prefix_actions, prefix_weights)
            actions = actions + dt * v
            if mark is not None:
                mark(f"flow {i}")
        return actions, prefix.trajectory

    def sample_from_feeds(
        self, x: Mapping[str, torch.Tensor], mark: Callable[[str], None] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """:meth:`sample_actions` on named inputs, the graph-input names of an engine (images,
        image_mask, tokens, token_mask, embodiment_id, noise; state, wm_tokens, value where the
        variant and mode have them)."""
        return self.sample_actions(
            x["images"],
            x["image_mask"],
            x["tokens"],
            x["token_mask"],
            x["embodiment_id"],
            x["noise"],
            state=x.get("state"),
            wm_tokens=x.get("wm_tokens"),
            value=x.get("value"),
            prefix_actions=x.get("prefix_actions"),
            prefix_weights=x.get("prefix_weights"),
            mark=mark,
        )
