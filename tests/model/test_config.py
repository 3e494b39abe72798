from __future__ import annotations

import dataclasses

import pytest

from gigabrain_runtime.model.config import (
    ActionExpertConfig,
    DecoderConfig,
    ModelConfig,
    VisionConfig,
    WorldModelConfig,
)
from gigabrain_runtime.model.presets import PRESETS, get_preset


def test_unknown_preset_suggests_the_closest_name():
    with pytest.raises(
        ValueError, match=r"preset: unknown preset 'gigabrain-05'.*did you mean 'gigabrain-0.5'"
    ):
        get_preset("gigabrain-05")


def test_full_preset_has_the_published_shapes():
    cfg = get_preset("gigabrain-0.5")
    assert cfg.vision.tokens_per_image == 256  # 224 px, patch 14
    assert (cfg.decoder.width, cfg.decoder.depth, cfg.decoder.head_dim) == (2304, 26, 256)
    assert (cfg.decoder.num_heads, cfg.decoder.num_kv_heads) == (8, 4)
    assert cfg.action_expert.width == 1024
    assert (cfg.action_expert.horizon, cfg.action_expert.action_dim) == (50, 32)
    assert cfg.action_expert.num_flow_steps == 10
    assert (cfg.world_model.width, cfg.world_model.depth) == (3072, 30)


@pytest.mark.parametrize(
    ("factory", "field"),
    [
        (lambda: VisionConfig(image_size=225, patch_size=14), "vision.image_size"),
        (lambda: VisionConfig(width=0), "vision.width"),
        (lambda: DecoderConfig(num_heads=6, num_kv_heads=4), "decoder.num_heads"),
        (lambda: DecoderConfig(attn_logit_softcap=-1.0), "decoder.attn_logit_softcap"),
        (lambda: ActionExpertConfig(horizon=0), "action_expert.horizon"),
        (lambda: ActionExpertConfig(time_min_period=5.0), "action_expert.time_min_period"),
        (lambda: WorldModelConfig(spatial_compression=12), "world_model.spatial_compression"),
        (lambda: ModelConfig(name=""), "model.name"),
    ],
)
def test_invalid_config_names_the_field(factory, field):
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        factory()


def test_config_round_trips_through_a_dict():
    for name in PRESETS:
        cfg = get_preset(name)
        assert ModelConfig.from_dict(cfg.to_dict()) == cfg


def test_from_dict_rejects_unknown_fields():
    data = get_preset("tiny").to_dict()
    data["decoder"]["widht"] = 3
    with pytest.raises(ValueError, match="model.decoder"):
        ModelConfig.from_dict(data)


def test_configs_are_frozen():
    cfg = get_preset("tiny")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.decoder.width = 3  # type: ignore[misc]


def test_prefix_lengths_count_every_token_group():
    cfg = get_preset("gigabrain-0.5")
    # 3 cameras x 256 + 48 text + state + indicator + 10 trajectory queries
    assert cfg.efficient_prefix_len == 3 * 256 + 48 + 1 + 1 + 10
    assert cfg.standard_prefix_len == cfg.efficient_prefix_len + cfg.num_wm_tokens + 1
