"""Training objectives of GigaBrain-0.5 and RAMP, as functions a fine-tuning loop calls.

* :func:`policy_loss`: masked CoT token NLL + flow-matching MSE + lambda * trajectory MSE, with
  knowledge insulation (no gradient from the action loss into the decoder's cache, where the CoT
  loss trains the decoder; without CoT targets the action loss trains it) and RAMP's
  stochastic attention masking of the world-model tokens (probability 0.2).
* :func:`ramp_loss`: L = E[-log pi(a|o,z,l) - alpha * log pi(a|I,o,z,l)], with the flow-matching
  loss standing in for the negative log-likelihood: once with the indicator absent, once with
  the episode's advantage indicator I.
* :func:`world_model_loss`: L_WM = E || W(s_tau, eps) - (s_future - eps) ||^2.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from gigabrain_runtime.model.advantage import UNCONDITIONED
from gigabrain_runtime.model.policy import INDICATOR_ABSENT, GigaBrainPolicy
from gigabrain_runtime.model.world_model import LatentWorldModel


@dataclass
class PolicyBatch:
    """One training batch (B samples). Shapes follow the policy's inputs.

    actions [B, H, A] normalised and padded; action_mask [B, A] (1 = real dimension of this
    embodiment). CoT: cot_tokens [B, Lc] decoder ids (discrete action tokens occupy the last
    ``action_vocab_size`` ids of the vocabulary), cot_targets [B, Lc] next-token targets,
    cot_mask [B, Lc] M_CoT, cot_is_action [B, Lc] (target is a discrete action token, predicted
    by the action-token head in its own id space). trajectory [B, points, 2] in [0, 1].
    """

    images: torch.Tensor
    image_mask: torch.Tensor
    tokens: torch.Tensor
    token_mask: torch.Tensor
    state: torch.Tensor
    embodiment_id: torch.Tensor
    actions: torch.Tensor
    action_mask: torch.Tensor | None = None
    cot_tokens: torch.Tensor | None = None
    cot_targets: torch.Tensor | None = None
    cot_mask: torch.Tensor | None = None
    cot_is_action: torch.Tensor | None = None
    trajectory: torch.Tensor | None = None
    wm_tokens: torch.Tensor | None = None
    value: torch.Tensor | None = None
    indicator: torch.Tensor | None = None
    # bool [B]: the sample's actions are an expert's (a demonstration, or the operator's
    # correction in a HILR episode) rather than the policy's own (ramp_loss unconditioned="expert")
    expert: torch.Tensor | None = None
    # the flow's noise [B, H, A] and time [B], drawn by the caller (a distributed trainer draws
    # them for the global batch, so every sample sees the same draw on any number of
    # processes); None: drawn here from ``generator``
    flow_noise: torch.Tensor | None = None
    flow_time: torch.Tensor | None = None


def cot_token_nll(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Masked next-token NLL: logits [B, L, V], targets [B, L], mask [B, L] -> scalar."""
    nll = F.cross_entropy(logits.float().transpose(1, 2), targets, reduction="none")
    m = mask.float()
    return (nll * m).sum() / m.sum().clamp(min=1.0)


def flow_matching_mse(
    velocity: torch.Tensor,
    noise: torch.Tensor,
    actions: torch.Tensor,
    action_mask: torch.Tensor | None = None,
    samples: torch.Tensor | None = None,
) -> torch.Tensor:
    """|| (eps - a) - f(a_tau, tau) ||^2 averaged over real action dimensions (of the
    ``samples`` [B] bool only, where given; 0 where none is)."""
    err = (noise - actions - velocity.float()).pow(2)  # [B, H, A]
    if action_mask is None and samples is None:
        return err.mean()
    m = torch.ones_like(err)
    if action_mask is not None:
        m = m * action_mask.float()[:, None, :]
    if samples is not None:
        m = m * samples.float()[:, None, None]
    return (err * m).sum() / m.sum().clamp(min=1.0)


def trajectory_mse(
    pred: torch.Tensor, target: torch.Tensor, samples: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean squared error over the path's points (of the ``samples`` [B] bool only)."""
    err = (pred.float() - target.float()).pow(2)
    if samples is None:
        return err.mean()
    m = samples.float().reshape(-1, *([1] * (err.dim() - 1))).expand_as(err)
    return (err * m).sum() / m.sum().clamp(min=1.0)


def sample_flow_time(
    b: int, device: torch.device, generator: torch.Generator | None
) -> torch.Tensor:
    """tau ~ Beta(1.5, 1) * 0.999 + 0.001 (emphasises the noisy end, as pi0 and GigaBrain-0)."""
    u = torch.rand(b, device=device, generator=generator)
    # inverse CDF of Beta(1.5, 1): F(x) = x^1.5
    return u.pow(1.0 / 1.5) * 0.999 + 0.001


def _action_flow_loss(
    policy: GigaBrainPolicy,
    batch: PolicyBatch,
    indicator: torch.Tensor,
    wm_present: torch.Tensor | None,
    generator: torch.Generator | None,
    with_cot: bool,
    samples: torch.Tensor | None = None,
    image_embeddings: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The flow (and CoT, trajectory) loss under ``indicator``, on every sample or on
    ``samples`` (bool [B]) alone; ``image_embeddings``: the batch's images already embedded."""
    cfg = policy.cfg
    x, valid = policy.embed_prefix(
        batch.images,
        batch.image_mask,
        batch.tokens,
        batch.token_mask,
        batch.state,
        batch.embodiment_id,
        indicator,
        batch.wm_tokens,
        batch.value,
        wm_present,
        image_embeddings,
    )
    cot = batch.cot_tokens if with_cot else None
    # knowledge insulation keeps the action expert's gradient out of a backbone that the CoT
    # loss trains; a batch without CoT targets gives the backbone no other loss, so there the
    # flow loss trains it (insulated, the vision and decoder would stay where they started)
    insulate = cfg.ramp.knowledge_insulation and batch.cot_tokens is not None
    prefix = policy.encode_prefix(x, valid, cot=cot, detach_kv=insulate)
    actions = batch.actions.float()
    noise = (
        batch.flow_noise.float()
        if batch.flow_noise is not None
        else torch.randn(actions.shape, device=actions.device, generator=generator)
    )
    tau = (
        batch.flow_time.float()
        if batch.flow_time is not None
        else sample_flow_time(actions.shape[0], actions.device, generator)
    )
    noisy = tau[:, None, None] * noise + (1.0 - tau[:, None, None]) * actions
    velocity = policy.velocity(noisy.to(x.dtype), tau, prefix, batch.embodiment_id, indicator)
    parts = {"flow": flow_matching_mse(velocity, noise, actions, batch.action_mask, samples)}
    if with_cot and batch.cot_tokens is not None:
        if batch.cot_targets is None or batch.cot_mask is None:
            raise ValueError("cot_targets/cot_mask: required with cot_tokens")
        lp = valid.shape[1]
        hidden = prefix.hidden[:, lp:]
        is_action = (
            batch.cot_is_action
            if batch.cot_is_action is not None
            else torch.zeros_like(batch.cot_mask, dtype=torch.bool)
        )
        cot_mask = batch.cot_mask if samples is None else batch.cot_mask & samples[:, None]
        lang = cot_token_nll(
            policy.decoder.logits(hidden),
            torch.where(is_action, torch.zeros_like(batch.cot_targets), batch.cot_targets),
            cot_mask & ~is_action,
        )
        act = cot_token_nll(
            policy.action_token_head(hidden),
            torch.where(is_action, batch.cot_targets, torch.zeros_like(batch.cot_targets)),
            cot_mask & is_action,
        )
        parts["cot"] = lang + act
    if batch.trajectory is not None:
        parts["trajectory"] = trajectory_mse(prefix.trajectory, batch.trajectory, samples)
    total = (
        parts["flow"]
        + parts.get("cot", 0.0)
        + cfg.ramp.trajectory_loss_weight * parts.get("trajectory", 0.0)
    )
    return total, parts


def _stochastic_wm_mask(
    policy: GigaBrainPolicy, batch: PolicyBatch, generator: torch.Generator | None
) -> torch.Tensor | None:
    """RAMP's stochastic attention masking: world-model tokens dropped with probability p."""
    if batch.wm_tokens is None:
        return None
    p = policy.cfg.ramp.world_model_drop_prob
    b = batch.wm_tokens.shape[0]
    draw = torch.rand(b, device=batch.wm_tokens.device, generator=generator)
    return draw >= p


def policy_loss(
    policy: GigaBrainPolicy, batch: PolicyBatch, *, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """GigaBrain-0.5's objective. Returns (total, components) with components in
    {"flow", "cot", "trajectory"} for the terms the batch supplies targets for."""
    b = batch.actions.shape[0]
    indicator = (
        batch.indicator
        if batch.indicator is not None
        else torch.full((b,), INDICATOR_ABSENT, dtype=torch.long, device=batch.actions.device)
    )
    wm_present = _stochastic_wm_mask(policy, batch, generator)
    return _action_flow_loss(policy, batch, indicator, wm_present, generator, with_cot=True)


def ramp_loss(
    policy: GigaBrainPolicy,
    batch: PolicyBatch,
    *,
    generator: torch.Generator | None = None,
    unconditioned: str = "all",
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """RAMP: flow loss without the indicator + alpha x flow loss with the indicator I.

    ``batch.indicator`` (int64 [B], 0 or 1, from :func:`advantage_indicator`) is required, and
    ``batch.expert`` with ``unconditioned="expert"``. The CoT and trajectory terms are added
    once, on the unconditioned pass (on the samples it learns from).
    """
    if unconditioned not in UNCONDITIONED:
        raise ValueError(f"unconditioned: expected one of {UNCONDITIONED}, got {unconditioned!r}")
    if batch.indicator is None:
        raise ValueError("indicator: ramp_loss needs the advantage indicator I per sample")
    if bool(((batch.indicator != 0) & (batch.indicator != 1)).any()):
        raise ValueError("indicator: values must be 0 or 1")
    samples = None
    if unconditioned == "expert":
        if batch.expert is None:
            raise ValueError(
                "expert: ramp_loss with unconditioned='expert' needs each sample's expert flag"
            )
        samples = batch.expert.bool()
    b = batch.actions.shape[0]
    absent = torch.full((b,), INDICATOR_ABSENT, dtype=torch.long, device=batch.actions.device)
    wm_present = _stochastic_wm_mask(policy, batch, generator)
    # the two passes differ in the indicator token alone: the images are embedded once (the
    # gradient reaches the vision through both)
    images = policy.embed_images(batch.images)
    uncond, parts = _action_flow_loss(
        policy, batch, absent, wm_present, generator, True, samples, images
    )
    cond, cond_parts = _action_flow_loss(
        policy, batch, batch.indicator, wm_present, generator, False, None, images
    )
    alpha = policy.cfg.ramp.alpha
    parts = dict(parts, flow_conditioned=cond_parts["flow"])
    return uncond + alpha * cond_parts["flow"], parts


def world_model_loss(
    wm: LatentWorldModel,
    images: torch.Tensor,
    image_mask: torch.Tensor,
    state: torch.Tensor,
    actions: torch.Tensor,
    future_images: torch.Tensor,
    future_value: torch.Tensor,
    future_proprio: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """L_WM. future_images [B, C, F, S, S, 3] uint8, future_value [B], future_proprio [B, P]."""
    current, target = wm.encode(images, state, future_images, future_value, future_proprio)
    return world_model_flow_loss(wm, current, image_mask, actions, target, generator=generator)


def world_model_flow_loss(
    wm: LatentWorldModel,
    current: torch.Tensor,
    image_mask: torch.Tensor,
    actions: torch.Tensor,
    target: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """L_WM on tokens already encoded: ``current`` (``wm.current_tokens``, which trains the
    latent encoder through this loss) and ``target`` (``wm.future_state_tokens``). RAMP's
    objective encodes them once for both the policy's conditioning and this loss."""
    target = target.float()
    eps = torch.randn(target.shape, device=target.device, generator=generator)
    tau = torch.rand(target.shape[0], device=target.device, generator=generator)
    s_tau = tau[:, None, None] * target + (1.0 - tau[:, None, None]) * eps
    pred = wm.velocity(s_tau, tau, current, actions, image_mask)
    return F.mse_loss(pred.float(), target - eps)
