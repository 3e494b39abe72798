from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from gigabrain_runtime.model.build import build_models
from gigabrain_runtime.model.presets import get_preset
from gigabrain_runtime.model.weights import (
    load_weights,
    map_gigabrain0_key,
    official_gigabrain0_key,
    save_weights,
)


def test_save_then_load_reproduces_every_tensor(tmp_path, tiny_cfg):
    policy, wm = build_models(tiny_cfg, seed=3)
    path = save_weights(tmp_path / "w.safetensors", preset="tiny", policy=policy, world_model=wm)
    p2, w2 = build_models(tiny_cfg, seed=4)
    report = load_weights(path, policy=p2, world_model=w2)
    assert report.ok
    for a, b in zip(policy.state_dict().values(), p2.state_dict().values()):
        torch.testing.assert_close(a, b)
    for a, b in zip(wm.state_dict().values(), w2.state_dict().values()):
        torch.testing.assert_close(a, b)


def test_loading_into_another_preset_lists_the_mismatches_by_name(tmp_path, tiny_cfg):
    import dataclasses

    policy, wm = build_models(tiny_cfg)
    path = save_weights(tmp_path / "w.safetensors", preset="tiny", policy=policy, world_model=wm)
    wider = dataclasses.replace(
        tiny_cfg, action_expert=dataclasses.replace(tiny_cfg.action_expert, mlp_dim=64)
    )
    with pytest.raises(ValueError, match=r"expert\.layers\.0\.mlp\.gate_proj\.weight"):
        build_models(wider, weights=path)


def test_foreign_safetensors_is_refused(tmp_path, tiny_cfg):
    save_file({"x": torch.zeros(1)}, str(tmp_path / "other.safetensors"))
    policy, wm = build_models(tiny_cfg)
    with pytest.raises(ValueError, match="not a gigabrain-runtime file"):
        load_weights(tmp_path / "other.safetensors", policy=policy, world_model=wm)


@pytest.mark.parametrize(
    ("published", "ours"),
    [
        (
            "paligemma_with_expert.vision_tower.embeddings.patch_embedding.weight",
            "vision.patch_embedding.weight",
        ),
        (
            "paligemma_with_expert.vision_tower.embeddings.position_embedding.weight",
            "vision.position_embedding",
        ),
        (
            "paligemma_with_expert.vision_tower.encoder.layers.26.mlp.fc2.bias",
            "vision.layers.26.mlp.fc2.bias",
        ),
        (
            "paligemma_with_expert.multi_modal_projector.linear.weight",
            "multi_modal_projector.weight",
        ),
        ("paligemma_with_expert.embed_tokens.weight", "decoder.embed_tokens.weight"),
        (
            "paligemma_with_expert.layers.3.self_attn.q_proj.0.weight",
            "decoder.layers.3.self_attn.q_proj.weight",
        ),
        (
            "paligemma_with_expert.layers.3.self_attn.o_proj.1.weight",
            "expert.layers.3.self_attn.o_proj.weight",
        ),
        (
            "paligemma_with_expert.layers.25.mlps.1.down_proj.weight",
            "expert.layers.25.mlp.down_proj.weight",
        ),
        (
            "paligemma_with_expert.layers.0.input_layernorms.0.weight",
            "decoder.layers.0.input_layernorm.weight",
        ),
        (
            "paligemma_with_expert.layers.0.pre_feedforward_layernorms.1.dense.bias",
            "expert.layers.0.pre_feedforward_layernorm.dense.bias",
        ),
        (
            "paligemma_with_expert.layers.7.post_feedforward_layernorms.1.weight",
            "expert.layers.7.post_feedforward_layernorm.weight",
        ),
        ("paligemma_with_expert.norms.0.weight", "decoder.norm.weight"),
        ("paligemma_with_expert.norms.1.dense.weight", "expert.norm.dense.weight"),
        ("action_out_proj.bias", "expert.action_out_proj.bias"),
        ("time_mlp_in.weight", "expert.time_mlp_in.weight"),
        ("traj_decoder.weight_hh_l0", "trajectory_head.weight_hh"),
        ("something.else", None),
    ],
)
def test_gigabrain0_key_mapping(published, ours):
    assert map_gigabrain0_key(published) == ours
    if ours is not None:  # error messages name the published key
        assert official_gigabrain0_key(ours) == published


def test_full_preset_is_not_built_to_count_parameters():
    from gigabrain_runtime.model.build import count_parameters

    counts = count_parameters(get_preset("gigabrain-0.5"))  # meta device: allocates nothing
    assert 0.38e9 < counts["vision"] < 0.45e9
    assert 2.5e9 < counts["decoder"] < 2.7e9
    assert 0.3e9 < counts["action_expert"] < 0.5e9
    assert 4.5e9 < counts["world_model"] < 5.5e9


def test_released_gigabrain0_size_matches_the_published_checkpoint():
    """GigaBrain-0-3.5B-Base: 3.5 B parameters; its files hold 1,076 tensors and 4.12 G values
    because lm_head.weight is stored as a copy of the embedding (a third-party count, FACTS).
    The preset carries the released sizes, with no RAMP modules and no world model."""
    from gigabrain_runtime.model.build import count_parameters
    from gigabrain_runtime.model.policy import GigaBrainPolicy

    cfg = get_preset("gigabrain-0")
    counts = count_parameters(cfg)
    assert counts["world_model"] == 0
    assert counts["policy_heads"] == 0
    lm_head = cfg.decoder.vocab_size * cfg.decoder.width
    assert 4.11e9 < counts["policy_total"] + lm_head < 4.13e9
    with torch.device("meta"):
        keys = GigaBrainPolicy(cfg).state_dict()
    assert len(keys) + 1 == 1076


def test_export_refuses_weights_holding_nan_and_writes_nothing(tiny_cfg, tmp_path):
    import torch

    from gigabrain_runtime.inference.export import export_source, preset_source

    source = preset_source(tiny_cfg)
    name, param = next(iter(source.policy.named_parameters()))
    with torch.no_grad():
        param.view(-1)[:3] = float("nan")
    out = tmp_path / "engine"
    with pytest.raises(
        ValueError, match=rf"weights: 1 tensors hold NaN or Inf, e\.g\. policy\.{name} \(3 of"
    ):
        export_source(source, out)
    assert not out.exists()  # no half-written engine to load by mistake
