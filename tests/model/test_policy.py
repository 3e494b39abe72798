"""Behaviour of the policy network that the runtime and RAMP training rely on."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from gigabrain_runtime.inference.export import example_inputs
from gigabrain_runtime.model.config import DecoderConfig
from gigabrain_runtime.model.layers import attention
from gigabrain_runtime.model.policy import GigaBrainPolicy, TrajectoryGRU


@pytest.fixture(scope="module")
def policy(tiny_cfg):
    torch.manual_seed(0)
    return GigaBrainPolicy(tiny_cfg).eval()


@pytest.fixture
def inputs(tiny_cfg):
    return example_inputs(tiny_cfg, seed=1)


def _sample(policy, x, **over):
    x = {**x, **over}
    with torch.no_grad():
        return policy.sample_actions(
            x["images"],
            x["image_mask"],
            x["tokens"],
            x["token_mask"],
            x["embodiment_id"],
            x["noise"],
            state=x["state"],
            wm_tokens=x.get("wm_tokens"),
            value=x.get("value"),
            wm_present=x.get("wm_present"),
            prefix_actions=x.get("prefix_actions"),
            prefix_weights=x.get("prefix_weights"),
        )


def test_output_shapes(policy, inputs, tiny_cfg):
    actions, traj = _sample(policy, inputs)
    a = tiny_cfg.action_expert
    assert actions.shape == (1, a.horizon, a.action_dim)
    assert traj.shape == (1, a.trajectory_points, 2)
    assert bool(((traj >= 0) & (traj <= 1)).all())


def test_standard_mode_with_world_model_tokens_masked_equals_efficient_mode(policy, inputs):
    """Stochastic attention masking makes one set of weights serve both modes."""
    eff, _ = _sample(policy, inputs, wm_tokens=None, value=None)
    masked, _ = _sample(policy, inputs, wm_present=torch.tensor([False]))
    torch.testing.assert_close(masked, eff, atol=1e-5, rtol=1e-5)


def test_world_model_tokens_condition_the_chunk(policy, inputs):
    eff, _ = _sample(policy, inputs, wm_tokens=None, value=None)
    std, _ = _sample(policy, inputs)
    other_z, _ = _sample(policy, inputs, wm_tokens=inputs["wm_tokens"] * -1.0)
    assert (std - eff).abs().max() > 1e-3
    assert (std - other_z).abs().max() > 1e-3


def test_a_masked_camera_slot_has_no_influence(policy, inputs):
    base, _ = _sample(policy, inputs)
    images = inputs["images"].clone()
    images[:, -1] = 255 - images[:, -1]  # the last slot is masked in example_inputs
    assert not bool(inputs["image_mask"][0, -1])
    changed, _ = _sample(policy, inputs, images=images)
    torch.testing.assert_close(changed, base, atol=1e-5, rtol=1e-5)
    images = inputs["images"].clone()
    images[:, 0] = 255 - images[:, 0]  # a visible camera does matter
    visible, _ = _sample(policy, inputs, images=images)
    assert (visible - base).abs().max() > 1e-4


def test_padding_tokens_have_no_influence(policy, inputs):
    base, _ = _sample(policy, inputs)
    tokens = inputs["tokens"].clone()
    tokens[~inputs["token_mask"]] = 7
    padded, _ = _sample(policy, inputs, tokens=tokens)
    torch.testing.assert_close(padded, base, atol=1e-5, rtol=1e-5)


def test_embodiment_id_selects_its_own_projections(policy, inputs):
    a0, _ = _sample(policy, inputs, embodiment_id=torch.tensor([0]))
    a1, _ = _sample(policy, inputs, embodiment_id=torch.tensor([1]))
    assert (a0 - a1).abs().max() > 1e-3


def test_same_noise_gives_the_same_chunk_and_new_noise_a_new_one(policy, inputs):
    a, _ = _sample(policy, inputs)
    b, _ = _sample(policy, inputs)
    c, _ = _sample(policy, inputs, noise=torch.randn_like(inputs["noise"]))
    torch.testing.assert_close(a, b)
    assert (a - c).abs().max() > 1e-3


def test_prefix_runs_once_per_chunk_and_the_expert_once_per_flow_step(policy, inputs, tiny_cfg):
    calls = {"decoder": 0, "expert": 0}
    hooks = [
        policy.decoder.register_forward_hook(
            lambda *_: calls.__setitem__("decoder", calls["decoder"] + 1)
        ),
        policy.expert.register_forward_hook(
            lambda *_: calls.__setitem__("expert", calls["expert"] + 1)
        ),
    ]
    try:
        _sample(policy, inputs)
    finally:
        for h in hooks:
            h.remove()
    assert calls == {"decoder": 1, "expert": tiny_cfg.action_expert.num_flow_steps}


def test_soft_capped_attention_bounds_logits_and_matches_a_reference():
    torch.manual_seed(0)
    q, k, v = (torch.randn(1, 4, 5, 8) * 20 for _ in range(3))
    allowed = torch.ones(1, 1, 5, 5, dtype=torch.bool)
    allowed[..., -1] = False
    out = attention(q, k, v, allowed, softcap=5.0)
    logits = (q @ k.transpose(-1, -2)) / 8**0.5
    logits = 5.0 * torch.tanh(logits / 5.0)
    logits = logits.masked_fill(~allowed, float("-inf"))
    torch.testing.assert_close(out, torch.softmax(logits, -1) @ v, atol=1e-4, rtol=1e-4)


def test_grouped_query_attention_shares_each_kv_head_across_its_query_group():
    torch.manual_seed(0)
    q = torch.randn(1, 4, 3, 8)
    k, v = torch.randn(1, 2, 3, 8), torch.randn(1, 2, 3, 8)
    out = attention(q, k, v, None)
    ref = attention(q, k.repeat_interleave(2, 1), v.repeat_interleave(2, 1), None)
    torch.testing.assert_close(out, ref)


def test_softcap_variant_of_the_model_runs(tiny_cfg, inputs):
    cfg = dataclasses.replace(
        tiny_cfg,
        decoder=dataclasses.replace(
            tiny_cfg.decoder, attn_logit_softcap=50.0, final_logit_softcap=30.0
        ),
    )
    torch.manual_seed(0)
    capped = GigaBrainPolicy(cfg).eval()
    actions, _ = _sample(capped, inputs)
    assert torch.isfinite(actions).all()
    logits = capped.decoder.logits(torch.randn(1, 3, cfg.decoder.width) * 100)
    assert logits.abs().max() <= 30.0


def test_trajectory_gru_matches_torch_gru():
    torch.manual_seed(0)
    mine = TrajectoryGRU(6, 5)
    ref = torch.nn.GRU(6, 5, batch_first=True)
    with torch.no_grad():
        ref.weight_ih_l0.copy_(mine.weight_ih)
        ref.weight_hh_l0.copy_(mine.weight_hh)
        ref.bias_ih_l0.copy_(mine.bias_ih)
        ref.bias_hh_l0.copy_(mine.bias_hh)
    x = torch.randn(2, 4, 6)
    hidden, _ = ref(x)
    torch.testing.assert_close(mine(x), torch.sigmoid(mine.out(hidden)), atol=1e-6, rtol=1e-5)


def test_decoder_config_has_no_softcap_by_default():
    # the released GigaBrain-0 backbone runs without Gemma-2's caps
    assert DecoderConfig().attn_logit_softcap is None


def test_rtc_guidance_with_zero_weights_is_the_unguided_chunk_bit_for_bit(policy, inputs):
    plain, _ = _sample(policy, inputs, prefix_actions=None, prefix_weights=None)
    zero, _ = _sample(policy, inputs, prefix_weights=torch.zeros_like(inputs["prefix_weights"]))
    assert torch.equal(plain, zero)


def test_rtc_guidance_pulls_the_weighted_points_onto_the_previous_chunk(policy, inputs):
    """Frozen points (weight 1) end near the previous chunk; free points (weight 0) are
    inpainted - they move too, to stay consistent with the frozen ones, but are not pinned."""
    target = torch.randn_like(inputs["noise"])
    h = target.shape[1]
    w = torch.zeros_like(target)
    w[:, : h // 2] = 1.0
    plain, _ = _sample(policy, inputs, prefix_actions=None, prefix_weights=None)
    guided, _ = _sample(policy, inputs, prefix_actions=target, prefix_weights=w)
    frozen = slice(0, h // 2)
    before = (plain[:, frozen] - target[:, frozen]).abs().mean()
    after = (guided[:, frozen] - target[:, frozen]).abs().mean()
    assert after < 0.05 * before
    free = slice(h // 2, h)
    assert (guided[:, free] - target[:, free]).abs().mean() > 10 * after
