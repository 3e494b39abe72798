"""Named model presets: data in one registry.

``gigabrain-0`` is the published GigaBrain-0 at its released sizes (the sizes
open-gigaai/giga-models hard-codes in ``paligemma2_with_expert.py``; its config.json carries only
the switches): the official prefix, 200 prompt tokens, 3 embodiment slots, no world model. A
checkpoint directory starts from it (model/checkpoint.py). ``gigabrain-0.5`` carries the
published shapes (../shared/FACTS.md): SigLIP So400m/14 at 224 px, Gemma-2 2B at width 2304,
action expert width 1024, H=50 x 32 actions, 10 flow steps, and a Wan2.2-TI2V-5B-shaped
world-model DiT. ``tiny`` keeps every mechanism (GQA, soft-capping, mixture-of-transformers,
embodiment-specific projections, world-model conditioning) at a size that runs a chunk on a
2-core CPU in a few milliseconds; tests and the demo use it.
"""

from __future__ import annotations

from dataclasses import replace

from gigabrain_runtime.model.config import (
    GIGABRAIN0_VARIANT,
    ActionExpertConfig,
    DecoderConfig,
    ModelConfig,
    VisionConfig,
    WorldModelConfig,
)
from gigabrain_runtime.registry import Registry

PRESETS: Registry[ModelConfig] = Registry("preset")

PRESETS.register(
    "gigabrain-0",
    ModelConfig(
        name="gigabrain-0",
        description="GigaBrain-0 as released: SigLIP So400m/14 + Gemma-2 2B (PaliGemma-2) + "
        "1024-wide action expert; official prefix and prompt; no world model",
        vision=VisionConfig(),
        decoder=DecoderConfig(max_text_tokens=200, query_pre_attn_scalar=256.0),
        action_expert=ActionExpertConfig(max_embodiments=3),
        variant=GIGABRAIN0_VARIANT,
    ),
)

PRESETS.register(
    "gigabrain-0.5",
    ModelConfig(
        name="gigabrain-0.5",
        description="GigaBrain-0.5 shapes: SigLIP So400m/14 + Gemma-2 2B + 1024-wide action "
        "expert; Wan2.2-5B-shaped world model",
        vision=VisionConfig(),
        decoder=DecoderConfig(),
        action_expert=ActionExpertConfig(),
        world_model=WorldModelConfig(),
    ),
)

PRESETS.register(
    "tiny",
    ModelConfig(
        name="tiny",
        description="every mechanism of gigabrain-0.5 at toy width, for CPU tests and the demo",
        vision=VisionConfig(
            image_size=224, patch_size=32, width=64, depth=2, mlp_dim=128, num_heads=4
        ),
        decoder=DecoderConfig(
            width=64,
            depth=2,
            mlp_dim=128,
            num_heads=4,
            num_kv_heads=2,
            head_dim=16,
            vocab_size=512,
            max_text_tokens=32,
        ),
        action_expert=ActionExpertConfig(
            width=48,
            mlp_dim=96,
            trajectory_gru_hidden=32,
            action_vocab_size=64,
        ),
        world_model=WorldModelConfig(
            latent_channels=8,
            encoder_width=16,
            width=64,
            depth=2,
            num_heads=4,
            mlp_dim=128,
            num_sampling_steps=2,
        ),
    ),
)


# The shipped simulated-PiPER policy (gigabrain_runtime/policies/piper_pick_place): tiny with two
# camera slots (one robot's: no padded slot to encode, a third less vision compute).
_TINY = PRESETS.get("tiny")
PRESETS.register(
    "tiny-2cam",
    replace(
        _TINY,
        name="tiny-2cam",
        description="tiny with two camera slots: the shipped simulated-PiPER pick-and-place policy",
        vision=replace(_TINY.vision, max_cameras=2),
    ),
)


def get_preset(name: str) -> ModelConfig:
    """Return the preset called ``name``; unknown names raise ValueError with a suggestion."""
    return PRESETS.get(name, field="preset")
