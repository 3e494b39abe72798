from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from gigabrain_runtime.model.build import build_models
from gigabrain_runtime.model.presets import get_preset
from gigabrain_runtime.model.weights import (
    RAMP_ONLY_PREFIXES,
    load_gigabrain0_checkpoint,
    load_weights,
    map_gigabrain0_key,
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


def _published_layout(state: dict[str, torch.Tensor], depth: int, vision_depth: int) -> dict:
    """Re-key our tiny state dict into the published GigaBrain-0 names, written from the
    layout documented for the released checkpoint (not from the loader's rules)."""
    P = "paligemma_with_expert."
    out = {}
    out[P + "vision_tower.embeddings.patch_embedding.weight"] = state[
        "vision.patch_embedding.weight"
    ]
    out[P + "vision_tower.embeddings.patch_embedding.bias"] = state["vision.patch_embedding.bias"]
    out[P + "vision_tower.embeddings.position_embedding.weight"] = state[
        "vision.position_embedding"
    ]
    for i in range(vision_depth):
        for k, v in state.items():
            if k.startswith(f"vision.layers.{i}."):
                out[P + "vision_tower.encoder.layers." + k[len("vision.layers.") :]] = v
    for n in ("weight", "bias"):
        out[P + f"vision_tower.post_layernorm.{n}"] = state[f"vision.post_layernorm.{n}"]
        out[P + f"multi_modal_projector.linear.{n}"] = state[f"multi_modal_projector.{n}"]
    out[P + "embed_tokens.weight"] = state["decoder.embed_tokens.weight"]
    out[P + "lm_head.weight"] = state["decoder.embed_tokens.weight"].clone()
    for i in range(depth):
        for s, stream in (("0", "decoder"), ("1", "expert")):
            for proj in ("q_proj", "k_proj", "v_proj", "o_proj"):
                out[P + f"layers.{i}.self_attn.{proj}.{s}.weight"] = state[
                    f"{stream}.layers.{i}.self_attn.{proj}.weight"
                ]
            for proj in ("gate_proj", "up_proj", "down_proj"):
                out[P + f"layers.{i}.mlps.{s}.{proj}.weight"] = state[
                    f"{stream}.layers.{i}.mlp.{proj}.weight"
                ]
        for norm in ("input_layernorm", "pre_feedforward_layernorm"):
            out[P + f"layers.{i}.{norm}s.0.weight"] = state[f"decoder.layers.{i}.{norm}.weight"]
            for n in ("weight", "bias"):
                out[P + f"layers.{i}.{norm}s.1.dense.{n}"] = state[
                    f"expert.layers.{i}.{norm}.dense.{n}"
                ]
        for norm in ("post_attention_layernorm", "post_feedforward_layernorm"):
            for s, stream in (("0", "decoder"), ("1", "expert")):
                out[P + f"layers.{i}.{norm}s.{s}.weight"] = state[
                    f"{stream}.layers.{i}.{norm}.weight"
                ]
    out[P + "norms.0.weight"] = state["decoder.norm.weight"]
    for n in ("weight", "bias"):
        out[P + f"norms.1.dense.{n}"] = state[f"expert.norm.dense.{n}"]
        for head in ("action_in_proj", "action_out_proj", "time_mlp_in", "time_mlp_out"):
            t = state[f"expert.{head}.{n}"]
            # the released file has fewer embodiment slots than this model
            out[f"{head}.{n}"] = t[:2] if head.startswith("action") else t
    return out


def test_gigabrain0_checkpoint_loads_and_reports_only_ramp_additions_missing(tmp_path, tiny_cfg):
    source, _ = build_models(tiny_cfg, seed=11)
    published = _published_layout(
        {k: v.clone().contiguous() for k, v in source.state_dict().items()},
        tiny_cfg.decoder.depth,
        tiny_cfg.vision.depth,
    )
    published["some_unknown_head.weight"] = torch.zeros(2)
    keys = sorted(published)
    shards = {
        "diffusion_pytorch_model-00001-of-00002.safetensors": keys[: len(keys) // 2],
        "diffusion_pytorch_model-00002-of-00002.safetensors": keys[len(keys) // 2 :],
    }
    weight_map = {}
    for file, names in shards.items():
        save_file({k: published[k] for k in names}, str(tmp_path / file))
        weight_map.update({k: file for k in names})
    (tmp_path / "diffusion_pytorch_model.safetensors.index.json").write_text(
        json.dumps({"weight_map": weight_map})
    )

    target, _ = build_models(tiny_cfg, seed=12)
    report = load_gigabrain0_checkpoint(tmp_path, policy=target)
    assert report.unexpected == ["some_unknown_head.weight"]
    assert report.mismatched == []
    not_ramp = [
        k
        for k in report.missing
        if not k.startswith(RAMP_ONLY_PREFIXES) and not k.startswith("trajectory")
    ]
    assert not_ramp == []
    assert any(k.startswith("state_proj") for k in report.missing)
    assert any("action_in_proj.weight" in p for p in report.partial)
    got = target.state_dict()
    for k, v in source.state_dict().items():
        if k.startswith(("decoder.", "vision.", "expert.layers.", "multi_modal")):
            torch.testing.assert_close(got[k], v, msg=k)
    torch.testing.assert_close(
        got["expert.action_in_proj.weight"][:2],
        source.state_dict()["expert.action_in_proj.weight"][:2],
    )


def test_gigabrain0_loader_says_what_is_missing_for_a_bad_path(tmp_path, tiny_cfg):
    policy, _ = build_models(tiny_cfg)
    with pytest.raises(FileNotFoundError, match="no .safetensors"):
        load_gigabrain0_checkpoint(tmp_path, policy=policy)


def test_full_preset_is_not_built_to_count_parameters():
    from gigabrain_runtime.model.build import count_parameters

    counts = count_parameters(get_preset("gigabrain-0.5"))  # meta device: allocates nothing
    assert 0.38e9 < counts["vision"] < 0.45e9
    assert 2.5e9 < counts["decoder"] < 2.7e9
    assert 0.3e9 < counts["action_expert"] < 0.5e9
    assert 4.5e9 < counts["world_model"] < 5.5e9
