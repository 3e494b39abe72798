"""The training objectives a RAMP fine-tuning loop calls."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from gigabrain_runtime.inference.export import example_inputs
from gigabrain_runtime.model.losses import (
    PolicyBatch,
    _action_flow_loss,
    _stochastic_wm_mask,
    flow_matching_mse,
    policy_loss,
    ramp_loss,
    world_model_loss,
)
from gigabrain_runtime.model.policy import INDICATOR_ABSENT, GigaBrainPolicy
from gigabrain_runtime.model.world_model import LatentWorldModel


def _batch(cfg, b=2, seed=0, **over):
    g = torch.Generator().manual_seed(seed)
    x = example_inputs(cfg, seed=seed)
    a = cfg.action_expert
    lc = 6
    fields = dict(
        images=x["images"].expand(b, -1, -1, -1, -1).clone(),
        image_mask=x["image_mask"].expand(b, -1).clone(),
        tokens=x["tokens"].expand(b, -1).clone(),
        token_mask=x["token_mask"].expand(b, -1).clone(),
        state=torch.randn(b, cfg.state_dim, generator=g),
        embodiment_id=torch.zeros(b, dtype=torch.long),
        actions=torch.randn(b, a.horizon, a.action_dim, generator=g),
        action_mask=torch.arange(a.action_dim)[None].expand(b, -1) < 7,
        cot_tokens=torch.randint(3, 200, (b, lc), generator=g),
        cot_targets=torch.randint(3, 60, (b, lc), generator=g),
        cot_mask=torch.ones(b, lc, dtype=torch.bool),
        cot_is_action=torch.arange(lc)[None].expand(b, -1) >= 3,
        trajectory=torch.rand(b, a.trajectory_points, 2, generator=g),
        wm_tokens=torch.randn(b, cfg.num_wm_tokens, cfg.world_model.z_token_dim, generator=g),
        value=torch.rand(b, generator=g),
    )
    fields.update(over)
    return PolicyBatch(**fields)


def test_flow_matching_target_is_noise_minus_actions():
    noise, actions = torch.randn(1, 4, 3), torch.randn(1, 4, 3)
    assert flow_matching_mse(noise - actions, noise, actions) == 0
    assert flow_matching_mse(torch.zeros(1, 4, 3), noise, actions) > 0


def test_padded_action_dimensions_do_not_count():
    noise, actions = torch.zeros(1, 2, 3), torch.zeros(1, 2, 3)
    velocity = torch.zeros(1, 2, 3)
    velocity[..., 2] = 100.0  # error only in a padded dimension
    mask = torch.tensor([[True, True, False]])
    assert flow_matching_mse(velocity, noise, actions, mask) == 0


def test_policy_loss_has_every_term_and_trains(tiny_cfg):
    torch.manual_seed(0)
    policy = GigaBrainPolicy(tiny_cfg)
    batch = _batch(tiny_cfg)
    opt = torch.optim.Adam(policy.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    first = None
    for _ in range(25):
        total, parts = policy_loss(policy, batch, generator=g)
        assert set(parts) == {"flow", "cot", "trajectory"}
        opt.zero_grad()
        total.backward()
        opt.step()
        first = first if first is not None else total.item()
    g = torch.Generator().manual_seed(0)
    final, _ = policy_loss(policy, batch, generator=g)
    assert final.item() < 0.7 * first


def test_knowledge_insulation_keeps_action_gradients_out_of_a_decoder_the_cot_loss_trains(
    tiny_cfg,
):
    torch.manual_seed(0)
    policy = GigaBrainPolicy(tiny_cfg)
    _, parts = policy_loss(policy, _batch(tiny_cfg, trajectory=None))
    parts["flow"].backward()
    decoder_grads = [p.grad for p in policy.decoder.layers.parameters() if p.grad is not None]
    assert all(float(g.abs().max()) == 0.0 for g in decoder_grads)
    assert any(
        p.grad is not None and float(p.grad.abs().max()) > 0 for p in policy.expert.parameters()
    )


def test_without_cot_targets_the_action_loss_trains_the_vision_and_decoder(tiny_cfg):
    """A robot dataset has no CoT: insulated, the backbone would never learn to see the task."""
    torch.manual_seed(0)
    policy = GigaBrainPolicy(tiny_cfg)
    _, parts = policy_loss(policy, _batch(tiny_cfg, cot_tokens=None, trajectory=None))
    parts["flow"].backward()
    for module in (policy.decoder.layers, policy.vision):
        assert any(
            p.grad is not None and float(p.grad.abs().max()) > 0 for p in module.parameters()
        )


def test_world_model_tokens_are_dropped_at_the_configured_rate(tiny_cfg):
    from gigabrain_runtime.model.losses import _stochastic_wm_mask

    policy = GigaBrainPolicy(tiny_cfg)
    batch = _batch(tiny_cfg, b=4000)
    keep = _stochastic_wm_mask(policy, batch, torch.Generator().manual_seed(0))
    drop_rate = 1.0 - keep.float().mean().item()
    assert abs(drop_rate - tiny_cfg.ramp.world_model_drop_prob) < 0.03


def test_ramp_loss_needs_a_binary_indicator(tiny_cfg):
    policy = GigaBrainPolicy(tiny_cfg)
    with pytest.raises(ValueError, match="indicator"):
        ramp_loss(policy, _batch(tiny_cfg))
    with pytest.raises(ValueError, match="indicator"):
        ramp_loss(policy, _batch(tiny_cfg, indicator=torch.tensor([0, 2])))


def test_ramp_loss_adds_the_indicator_conditioned_term_weighted_by_alpha(tiny_cfg):
    torch.manual_seed(0)
    policy = GigaBrainPolicy(tiny_cfg)
    batch = _batch(tiny_cfg, indicator=torch.tensor([1, 0]))
    total, parts = ramp_loss(policy, batch, generator=torch.Generator().manual_seed(0))
    uncond = (
        parts["flow"] + parts["cot"] + tiny_cfg.ramp.trajectory_loss_weight * parts["trajectory"]
    )
    expected = uncond + tiny_cfg.ramp.alpha * parts["flow_conditioned"]
    torch.testing.assert_close(total, expected)


def test_ramp_loss_embeds_the_images_once_with_the_loss_and_gradient_of_two_passes(tiny_cfg):
    # the two passes differ in the indicator alone: sharing the image embeddings must leave the
    # objective and what it teaches the vision exactly as two full passes would
    torch.manual_seed(0)
    policy = GigaBrainPolicy(tiny_cfg)
    batch = _batch(tiny_cfg, indicator=torch.tensor([1, 0]))
    total, _ = ramp_loss(policy, batch, generator=torch.Generator().manual_seed(3))
    shared = torch.autograd.grad(total, list(policy.vision.parameters()))
    gen = torch.Generator().manual_seed(3)
    present = _stochastic_wm_mask(policy, batch, gen)
    absent = torch.full((2,), INDICATOR_ABSENT, dtype=torch.long)
    uncond, _ = _action_flow_loss(policy, batch, absent, present, gen, True)
    _, cond = _action_flow_loss(policy, batch, batch.indicator, present, gen, False)
    apart = uncond + tiny_cfg.ramp.alpha * cond["flow"]
    torch.testing.assert_close(total, apart)
    for a, b in zip(shared, torch.autograd.grad(apart, list(policy.vision.parameters()))):
        torch.testing.assert_close(a, b)


def test_ramp_loss_can_learn_the_policys_own_actions_only_under_their_indicator(tiny_cfg):
    """unconditioned="expert": the unconditioned term (flow, CoT, trajectory) sees only the
    samples flagged expert; a policy sample's actions reach the loss only through the
    indicator-conditioned term. Every sample an expert's is the paper's objective."""
    torch.manual_seed(0)
    policy = GigaBrainPolicy(tiny_cfg)
    flags = dict(indicator=torch.tensor([1, 0]), expert=torch.tensor([True, False]))
    batch = _batch(tiny_cfg, **flags)
    g = torch.Generator().manual_seed(7)
    other = _batch(tiny_cfg, seed=1)  # sample 1's targets replaced by others
    moved = dataclasses.replace(
        batch,
        **{
            name: torch.cat([getattr(batch, name)[:1], getattr(other, name)[1:]])
            for name in ("actions", "cot_targets", "trajectory")
        },
    )

    def parts(b, unconditioned):
        g.manual_seed(7)
        return ramp_loss(policy, b, generator=g, unconditioned=unconditioned)[1]

    kept, changed = parts(batch, "expert"), parts(moved, "expert")
    for term in ("flow", "cot", "trajectory"):
        torch.testing.assert_close(kept[term], changed[term])
    assert not torch.isclose(kept["flow_conditioned"], changed["flow_conditioned"])
    assert not torch.isclose(parts(batch, "all")["flow"], parts(moved, "all")["flow"])
    every = dataclasses.replace(batch, expert=torch.tensor([True, True]))
    for term, value in parts(batch, "all").items():
        torch.testing.assert_close(parts(every, "expert")[term], value)
    with pytest.raises(ValueError, match="expert: ramp_loss with unconditioned='expert'"):
        ramp_loss(policy, _batch(tiny_cfg, indicator=flags["indicator"]), unconditioned="expert")
    with pytest.raises(ValueError, match="unconditioned: expected one of"):
        ramp_loss(policy, batch, unconditioned="operator")


def test_world_model_loss_trains(tiny_cfg):
    torch.manual_seed(0)
    wm = LatentWorldModel(tiny_cfg)
    x = example_inputs(tiny_cfg)
    cams = tiny_cfg.vision.max_cameras
    future = (
        x["images"][:, :, None]
        .expand(1, cams, tiny_cfg.world_model.future_frames, *x["images"].shape[2:])
        .clone()
    )
    args = (
        x["images"],
        x["image_mask"],
        x["state"],
        x["actions"],
        future,
        torch.tensor([0.5]),
        torch.randn(1, tiny_cfg.world_model.proprio_dim),
    )
    opt = torch.optim.Adam(wm.parameters(), lr=3e-3)
    first = world_model_loss(wm, *args, generator=torch.Generator().manual_seed(0)).item()
    for i in range(25):
        loss = world_model_loss(wm, *args, generator=torch.Generator().manual_seed(i))
        opt.zero_grad()
        loss.backward()
        opt.step()
    final = world_model_loss(wm, *args, generator=torch.Generator().manual_seed(0)).item()
    assert final < 0.7 * first
