"""Build the policy and world model for a preset, from random weights or a weights file."""

from __future__ import annotations

from pathlib import Path

import torch

from gigabrain_runtime.model.config import ModelConfig
from gigabrain_runtime.model.policy import GigaBrainPolicy
from gigabrain_runtime.model.weights import load_weights
from gigabrain_runtime.model.world_model import LatentWorldModel


def build_models(
    cfg: ModelConfig,
    *,
    weights: str | Path | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> tuple[GigaBrainPolicy, LatentWorldModel | None]:
    """Policy and world model (None when the variant has none) in eval mode. Without
    ``weights`` the parameters are drawn from ``seed`` (the same seed always gives the same
    model, so engines are reproducible). With ``weights`` nothing is drawn: the modules are
    allocated uninitialised and every parameter must come from the file (strict)."""
    has_wm = cfg.variant.has_world_model
    if weights is None:
        torch.manual_seed(seed)
        policy = GigaBrainPolicy(cfg)
        world_model = LatentWorldModel(cfg) if has_wm else None
    else:
        with torch.device("meta"):
            policy = GigaBrainPolicy(cfg)
            world_model = LatentWorldModel(cfg) if has_wm else None
        policy = policy.to_empty(device="cpu")
        world_model = world_model.to_empty(device="cpu") if world_model is not None else None
        load_weights(weights, policy=policy, world_model=world_model, strict=True)
    policy = policy.to(device=device, dtype=dtype).eval()
    if world_model is not None:
        world_model = world_model.to(device=device, dtype=dtype).eval()
    return policy, world_model


def count_parameters(cfg: ModelConfig) -> dict[str, int]:
    """Parameter counts per component, computed on the meta device (allocates nothing)."""
    with torch.device("meta"):
        policy = GigaBrainPolicy(cfg)
        world_model = LatentWorldModel(cfg) if cfg.variant.has_world_model else None

    def n(module: torch.nn.Module) -> int:
        return sum(p.numel() for p in module.parameters())

    vision = n(policy.vision) + n(policy.multi_modal_projector)
    decoder = n(policy.decoder)
    expert = n(policy.expert)
    heads = n(policy) - vision - decoder - expert
    counts = {
        "vision": vision,
        "decoder": decoder,
        "action_expert": expert,
        "policy_heads": heads,
        "world_model": n(world_model) if world_model is not None else 0,
    }
    counts["policy_total"] = vision + decoder + expert + heads
    counts["total"] = counts["policy_total"] + counts["world_model"]
    return counts
