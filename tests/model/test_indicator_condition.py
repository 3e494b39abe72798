"""``action_expert.indicator_condition``: the advantage indicator also conditions every action-
expert block. A policy trained without it loads and computes exactly what it did (the
embedding starts at zero); once trained, the indicator changes the chunk, and the exported
flow-step graph runs with the indicator inference fixes (positive), as torch does."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from gigabrain_runtime.inference.export import example_inputs, export_source, preset_source
from gigabrain_runtime.model.policy import GigaBrainPolicy
from gigabrain_runtime.model.weights import load_weights, save_weights
from gigabrain_runtime.model.world_model import LatentWorldModel
from tests.helpers import make_observation


def _conditioned(cfg):
    expert = dataclasses.replace(cfg.action_expert, indicator_condition=True)
    return dataclasses.replace(cfg, action_expert=expert)


def _chunk(policy, x, indicator):
    prefix_x, valid = policy.embed_prefix(
        x["images"],
        x["image_mask"],
        x["tokens"],
        x["token_mask"],
        x["state"],
        x["embodiment_id"],
        torch.tensor([indicator]),
    )
    prefix = policy.encode_prefix(prefix_x, valid)
    with torch.no_grad():
        return policy.velocity(
            x["noise"], 0.5, prefix, x["embodiment_id"], torch.tensor([indicator])
        )


def test_weights_without_the_condition_load_and_compute_what_they_did(tiny_cfg, tmp_path):
    torch.manual_seed(0)
    plain = GigaBrainPolicy(tiny_cfg).eval()
    save_weights(tmp_path / "plain.safetensors", preset="tiny", policy=plain)
    conditioned = GigaBrainPolicy(_conditioned(tiny_cfg)).eval()
    report = load_weights(tmp_path / "plain.safetensors", policy=conditioned)
    assert report.ok and report.defaulted == ["policy.expert.indicator_embedding.weight"]
    x = example_inputs(tiny_cfg, seed=0)
    for indicator in (0, 1, 2):
        torch.testing.assert_close(_chunk(conditioned, x, indicator), _chunk(plain, x, indicator))
    # the other way round is refused, naming the tensor the plain model has no place for
    save_weights(tmp_path / "cond.safetensors", preset="tiny", policy=conditioned)
    with pytest.raises(ValueError, match=r"unexpected.*expert\.indicator_embedding"):
        load_weights(tmp_path / "cond.safetensors", policy=GigaBrainPolicy(tiny_cfg))
    # a variant without the indicator segment cannot be conditioned on it
    no_indicator = dataclasses.replace(
        tiny_cfg.variant, prefix=tuple(s for s in tiny_cfg.variant.prefix if s != "indicator")
    )
    with pytest.raises(ValueError, match="action_expert.indicator_condition: variant"):
        _conditioned(dataclasses.replace(tiny_cfg, variant=no_indicator))


def test_a_trained_condition_separates_the_indicator_and_exports_with_it_fixed_positive(
    tiny_cfg, tmp_path
):
    from gigabrain_runtime.inference.onnxruntime_backend import OnnxRuntimeBackend
    from gigabrain_runtime.inference.torch_backend import TorchBackend

    cfg = _conditioned(tiny_cfg)
    torch.manual_seed(1)
    policy = GigaBrainPolicy(cfg).eval()
    with torch.no_grad():  # as if trained: each indicator value its own condition
        policy.expert.indicator_embedding.weight.normal_()
    x = example_inputs(tiny_cfg, seed=0)
    assert (_chunk(policy, x, 0) - _chunk(policy, x, 1)).abs().max() > 1e-2
    weights = tmp_path / "w.safetensors"
    save_weights(weights, preset="tiny", policy=policy, world_model=LatentWorldModel(cfg))
    # the split layout: the flow-step graph holds the positive indicator as a constant
    engine = tmp_path / "engine"
    export_source(preset_source(cfg, weights=weights), engine, layout="split", optimize=False)
    obs = make_observation("piper", seed=9)
    noise = np.random.default_rng(4).standard_normal((50, 32)).astype(np.float32)
    exported = OnnxRuntimeBackend(engine).infer(obs, noise=noise).actions
    eager = TorchBackend.from_engine(engine)
    np.testing.assert_allclose(exported, eager.infer(obs, noise=noise).actions, atol=1e-4)
    with torch.no_grad():  # the same weights with the condition at zero give another chunk
        eager.policy.expert.indicator_embedding.weight.zero_()
    assert np.abs(exported - eager.infer(obs, noise=noise).actions).max() > 1e-3
