"""Frozen, validated configuration of the GigaBrain-0.5 policy and the RAMP world model.

Pure Python: importing this module never imports torch. Every shape the exported graphs and the
runtime agree on is derived here, so the policy, the world model, the exporter and the backends
read one source of truth.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


def _positive(owner: str, **values: float) -> None:
    for name, value in values.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{owner}.{name} must be a positive number, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class VisionConfig:
    """SigLIP-style ViT. One image per camera slot, square, uint8 RGB at ``image_size`` px."""

    image_size: int = 224
    patch_size: int = 14
    width: int = 1152
    depth: int = 27
    mlp_dim: int = 4304
    num_heads: int = 16
    max_cameras: int = 3
    layer_norm_eps: float = 1e-6

    def __post_init__(self) -> None:
        _positive(
            "vision",
            image_size=self.image_size,
            patch_size=self.patch_size,
            width=self.width,
            depth=self.depth,
            mlp_dim=self.mlp_dim,
            num_heads=self.num_heads,
            max_cameras=self.max_cameras,
        )
        if self.image_size % self.patch_size:
            raise ValueError(
                f"vision.image_size={self.image_size} is not a multiple of "
                f"vision.patch_size={self.patch_size}"
            )
        if self.width % self.num_heads:
            raise ValueError(
                f"vision.width={self.width} not divisible by num_heads={self.num_heads}"
            )

    @property
    def tokens_per_image(self) -> int:
        return (self.image_size // self.patch_size) ** 2


@dataclass(frozen=True, kw_only=True)
class DecoderConfig:
    """Gemma-2-style decoder: RMSNorm (1+w), RoPE, grouped-query attention, GeGLU.

    Gemma-2 soft-caps attention logits (50) and final logits (30); the released GigaBrain-0
    checkpoint runs its PaliGemma-2 backbone with both caps off (which also allows fused
    attention kernels), so the presets leave them off. The caps remain available.
    """

    width: int = 2304
    depth: int = 26
    mlp_dim: int = 9216
    num_heads: int = 8
    num_kv_heads: int = 4
    head_dim: int = 256
    vocab_size: int = 257216  # PaliGemma-2: Gemma's 256000 + location/segmentation tokens
    max_text_tokens: int = 48
    rope_theta: float = 10000.0
    attn_logit_softcap: float | None = None
    final_logit_softcap: float | None = None
    rms_eps: float = 1e-6
    # attention logits are scaled by query_pre_attn_scalar**-0.5 (Gemma-2); None = head_dim
    query_pre_attn_scalar: float | None = None

    def __post_init__(self) -> None:
        _positive(
            "decoder",
            width=self.width,
            depth=self.depth,
            mlp_dim=self.mlp_dim,
            num_heads=self.num_heads,
            num_kv_heads=self.num_kv_heads,
            head_dim=self.head_dim,
            vocab_size=self.vocab_size,
            max_text_tokens=self.max_text_tokens,
            rope_theta=self.rope_theta,
        )
        if self.num_heads % self.num_kv_heads:
            raise ValueError(
                f"decoder.num_heads={self.num_heads} is not a multiple of "
                f"decoder.num_kv_heads={self.num_kv_heads}"
            )
        for name in ("attn_logit_softcap", "final_logit_softcap", "query_pre_attn_scalar"):
            value = getattr(self, name)
            if value is not None:
                _positive("decoder", **{name: value})

    @property
    def attention_scale(self) -> float:
        scalar = self.query_pre_attn_scalar if self.query_pre_attn_scalar else self.head_dim
        return float(scalar) ** -0.5


@dataclass(frozen=True, kw_only=True)
class ActionExpertConfig:
    """Flow-matching DiT action expert (mixture-of-transformers with the decoder).

    The expert has one layer per decoder layer and the decoder's head layout, because layer ``i``
    of the expert attends to the keys/values of decoder layer ``i``.
    """

    width: int = 1024
    mlp_dim: int = 2048
    horizon: int = 50
    action_dim: int = 32
    num_flow_steps: int = 10
    time_min_period: float = 4e-3
    time_max_period: float = 4.0
    max_embodiments: int = 8
    trajectory_points: int = 10
    trajectory_gru_hidden: int = 256
    action_vocab_size: int = 1024  # discrete action tokens (training-only CoT head)
    # the advantage indicator also conditions every expert block (added to the flow-time
    # condition of the adaRMS norms), beside its prefix token that the expert reaches only
    # through attention; its embedding starts at zero, so weights without it load unchanged
    indicator_condition: bool = False

    def __post_init__(self) -> None:
        _positive(
            "action_expert",
            width=self.width,
            mlp_dim=self.mlp_dim,
            horizon=self.horizon,
            action_dim=self.action_dim,
            num_flow_steps=self.num_flow_steps,
            time_min_period=self.time_min_period,
            time_max_period=self.time_max_period,
            max_embodiments=self.max_embodiments,
            trajectory_points=self.trajectory_points,
            trajectory_gru_hidden=self.trajectory_gru_hidden,
            action_vocab_size=self.action_vocab_size,
        )
        if self.width % 2:
            raise ValueError(f"action_expert.width={self.width} must be even (sinusoidal time)")
        if self.time_min_period >= self.time_max_period:
            raise ValueError(
                f"action_expert.time_min_period={self.time_min_period} must be below "
                f"time_max_period={self.time_max_period}"
            )


@dataclass(frozen=True, kw_only=True)
class WorldModelConfig:
    """Latent dynamics DiT predicting s_future = [z ; Psi(v) ; Psi(p)] by flow matching.

    Camera images are encoded to latents with ``spatial_compression`` (Wan2.2's VAE is 16x16 in
    space, 48 channels); latents are patchified ``patch_size`` x ``patch_size`` into tokens.
    """

    latent_channels: int = 48
    spatial_compression: int = 16
    patch_size: int = 2
    future_frames: int = 1
    encoder_width: int = 128
    width: int = 3072
    depth: int = 30
    num_heads: int = 24
    mlp_dim: int = 14336
    num_sampling_steps: int = 4
    proprio_dim: int = 32

    def __post_init__(self) -> None:
        _positive(
            "world_model",
            latent_channels=self.latent_channels,
            spatial_compression=self.spatial_compression,
            patch_size=self.patch_size,
            future_frames=self.future_frames,
            encoder_width=self.encoder_width,
            width=self.width,
            depth=self.depth,
            num_heads=self.num_heads,
            mlp_dim=self.mlp_dim,
            num_sampling_steps=self.num_sampling_steps,
            proprio_dim=self.proprio_dim,
        )
        if self.spatial_compression & (self.spatial_compression - 1):
            raise ValueError(
                f"world_model.spatial_compression={self.spatial_compression} must be a power of 2"
            )
        if self.width % self.num_heads:
            raise ValueError(
                f"world_model.width={self.width} not divisible by num_heads={self.num_heads}"
            )

    @property
    def state_channels(self) -> int:
        """Channels of s = [z ; Psi(v) ; Psi(p)]: visual latents, one value channel, proprio."""
        return self.latent_channels + 1 + self.proprio_dim

    @property
    def z_token_dim(self) -> int:
        """Width of one visual world-model token handed to the policy."""
        return self.latent_channels * self.patch_size**2


@dataclass(frozen=True, kw_only=True)
class RampConfig:
    """Training-time RAMP settings (inference fixes the indicator to 1)."""

    world_model_drop_prob: float = 0.2
    # fraction of the world model's training samples asked about the arm holding still in place
    # of the recorded chunk (the target still the recorded future): the prediction from a still
    # arm, which conditions the policy, then learns the data's likely future, not the present
    world_model_still_prob: float = 0.0
    alpha: float = 1.0
    trajectory_loss_weight: float = 0.1
    knowledge_insulation: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.world_model_drop_prob <= 1.0:
            raise ValueError(
                f"ramp.world_model_drop_prob must be in [0, 1], got {self.world_model_drop_prob}"
            )
        if not 0.0 <= self.world_model_still_prob <= 1.0:
            raise ValueError(
                f"ramp.world_model_still_prob must be in [0, 1], got {self.world_model_still_prob}"
            )
        if self.alpha < 0:
            raise ValueError(f"ramp.alpha must be >= 0, got {self.alpha}")
        if self.trajectory_loss_weight < 0:
            raise ValueError(
                f"ramp.trajectory_loss_weight must be >= 0, got {self.trajectory_loss_weight}"
            )


# Prefix segments a variant may use, with what each one is:
#   images       max_cameras x tokens_per_image SigLIP tokens
#   trajectory   learnable 2D-trajectory query tokens (GRU head)
#   text         max_text_tokens instruction / prompt tokens
#   state        one projected proprioceptive-state token (RAMP)
#   indicator    one advantage-indicator token (RAMP; I = 1 at inference)
#   world_model  the world model's latent tokens z (standard mode only)
#   value        one world-model value token (standard mode only)
PREFIX_SEGMENTS = ("images", "trajectory", "text", "state", "indicator", "world_model", "value")
STANDARD_ONLY_SEGMENTS = ("world_model", "value")
STATE_INPUTS = ("token", "prompt")
TRAJECTORY_ACTIVATIONS = ("sigmoid", "none")
PROMPT_FORMATS = ("plain", "gigabrain-0")
IMAGE_RESIZE = ("area", "pil_bilinear")


@dataclass(frozen=True, kw_only=True)
class VariantConfig:
    """Everything that differs between the GigaBrain model variants, declared in one place.

    The modules are shared; a variant only says which prefix segments exist and in which order,
    how the state reaches the model, what the trajectory head outputs, how the checkpoint's own
    pipeline prepares images and prompts, and which robot-data section holds its embodiment
    slots (``slot_family``: ``runtime`` = each robot's own ``embodiment_id``; any other name =
    that robot's ``checkpoints.<family>`` mapping).
    """

    name: str
    prefix: tuple[str, ...]
    state_input: str  # "token": a projected state token; "prompt": discretised into the text
    prompt: str  # "plain": the instruction; "gigabrain-0": Task/State template of the pipeline
    trajectory_dim: int  # outputs per trajectory step: 2 = (u, v); 4 = left (u, v), right (u, v)
    trajectory_activation: str  # applied to the trajectory head's output
    action_token_head: bool  # the training-only discrete-action CoT head exists
    image_resize: str  # letterbox filter of the variant's reference pipeline
    slot_family: str

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("variant.name must be non-empty")
        prefix = tuple(self.prefix)
        unknown = [s for s in prefix if s not in PREFIX_SEGMENTS]
        if unknown:
            raise ValueError(
                f"variant.prefix: unknown segments {unknown} (known: {', '.join(PREFIX_SEGMENTS)})"
            )
        if len(set(prefix)) != len(prefix):
            raise ValueError(f"variant.prefix: duplicate segments in {list(prefix)}")
        for required in ("images", "text"):
            if required not in prefix:
                raise ValueError(f"variant.prefix: must contain {required!r}, got {list(prefix)}")
        standard = [s for s in STANDARD_ONLY_SEGMENTS if s in prefix]
        if standard and (
            len(standard) != len(STANDARD_ONLY_SEGMENTS)
            or prefix[-len(STANDARD_ONLY_SEGMENTS) :] != STANDARD_ONLY_SEGMENTS
        ):
            # masking them must leave every other token's position unchanged
            raise ValueError(
                f"variant.prefix: {', '.join(STANDARD_ONLY_SEGMENTS)} must both come last, "
                f"got {list(prefix)}"
            )
        if self.state_input not in STATE_INPUTS:
            raise ValueError(
                f"variant.state_input: {self.state_input!r} is not one of {STATE_INPUTS}"
            )
        if (self.state_input == "token") != ("state" in prefix):
            raise ValueError(
                f"variant.state_input={self.state_input!r} disagrees with the prefix "
                f"{list(prefix)} (a 'state' segment exactly when the state is a token)"
            )
        if self.prompt not in PROMPT_FORMATS:
            raise ValueError(f"variant.prompt: {self.prompt!r} is not one of {PROMPT_FORMATS}")
        if (self.state_input == "prompt") != (self.prompt == "gigabrain-0"):
            raise ValueError(
                f"variant.prompt={self.prompt!r}: the state goes into the prompt exactly with "
                "the 'gigabrain-0' prompt format"
            )
        if self.trajectory_dim not in (2, 4):
            raise ValueError(f"variant.trajectory_dim must be 2 or 4, got {self.trajectory_dim}")
        if self.trajectory_activation not in TRAJECTORY_ACTIVATIONS:
            raise ValueError(
                f"variant.trajectory_activation: {self.trajectory_activation!r} is not one of "
                f"{TRAJECTORY_ACTIVATIONS}"
            )
        if self.image_resize not in IMAGE_RESIZE:
            raise ValueError(
                f"variant.image_resize: {self.image_resize!r} is not one of {IMAGE_RESIZE}"
            )
        if not self.slot_family:
            raise ValueError("variant.slot_family must be non-empty")
        object.__setattr__(self, "prefix", prefix)

    def has(self, segment: str) -> bool:
        return segment in self.prefix

    @property
    def has_world_model(self) -> bool:
        """Standard (world-model-conditioned) mode exists."""
        return "world_model" in self.prefix

    def segments(self, standard: bool) -> tuple[str, ...]:
        """The prefix segments of one mode, in order."""
        if standard and not self.has_world_model:
            raise ValueError(f"mode: variant {self.name} has no world-model (standard) mode")
        return tuple(s for s in self.prefix if standard or s not in STANDARD_ONLY_SEGMENTS)


# The RAMP policy of this project (GigaBrain-0.5M*): state, indicator and world-model tokens.
RAMP_VARIANT = VariantConfig(
    name="gigabrain-0.5",
    prefix=("images", "text", "state", "indicator", "trajectory", "world_model", "value"),
    state_input="token",
    prompt="plain",
    trajectory_dim=2,
    trajectory_activation="sigmoid",
    action_token_head=True,
    image_resize="area",
    slot_family="runtime",
)

# The published GigaBrain-0 (open-gigaai/giga-models GigaBrain0Policy and its pipeline): prefix
# [images | text], the state discretised into the prompt, the AgileX client's PIL letterbox.
# A checkpoint with learnable trajectory tokens puts them between the images and the text.
GIGABRAIN0_VARIANT = VariantConfig(
    name="gigabrain-0",
    prefix=("images", "text"),
    state_input="prompt",
    prompt="gigabrain-0",
    trajectory_dim=4,
    trajectory_activation="none",
    action_token_head=False,
    image_resize="pil_bilinear",
    slot_family="gigabrain-0",
)


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """One named preset: policy components, world model, and RAMP training settings."""

    name: str
    description: str = ""
    vision: VisionConfig = field(default_factory=VisionConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    action_expert: ActionExpertConfig = field(default_factory=ActionExpertConfig)
    world_model: WorldModelConfig = field(default_factory=WorldModelConfig)
    ramp: RampConfig = field(default_factory=RampConfig)
    variant: VariantConfig = RAMP_VARIANT

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("model.name must be non-empty")
        if self.vision.image_size % self.world_model.spatial_compression:
            raise ValueError(
                f"vision.image_size={self.vision.image_size} is not a multiple of "
                f"world_model.spatial_compression={self.world_model.spatial_compression}"
            )
        latent = self.vision.image_size // self.world_model.spatial_compression
        if latent % self.world_model.patch_size:
            raise ValueError(
                f"latent grid {latent} (image_size / spatial_compression) is not a multiple of "
                f"world_model.patch_size={self.world_model.patch_size}"
            )
        if self.action_expert.indicator_condition and not self.variant.has("indicator"):
            raise ValueError(
                "action_expert.indicator_condition: variant "
                f"{self.variant.name!r} has no indicator segment"
            )
        if self.world_model.proprio_dim != self.action_expert.action_dim:
            raise ValueError(
                f"world_model.proprio_dim={self.world_model.proprio_dim} must equal "
                f"action_expert.action_dim={self.action_expert.action_dim} (padded state)"
            )

    # ---- derived shapes shared by model, exporter and backends -------------------------------
    @property
    def state_dim(self) -> int:
        """Padded proprioceptive state width (the same as the padded action width)."""
        return self.action_expert.action_dim

    @property
    def latent_grid(self) -> int:
        return self.vision.image_size // self.world_model.spatial_compression

    @property
    def wm_tokens_per_frame(self) -> int:
        return (self.latent_grid // self.world_model.patch_size) ** 2

    @property
    def num_wm_tokens(self) -> int:
        """Visual world-model tokens z handed to the policy in standard mode."""
        return self.vision.max_cameras * self.world_model.future_frames * self.wm_tokens_per_frame

    def segment_length(self, segment: str) -> int:
        """Tokens of one prefix segment (see PREFIX_SEGMENTS)."""
        v = self.vision
        return {
            "images": v.max_cameras * v.tokens_per_image,
            "trajectory": self.action_expert.trajectory_points,
            "text": self.decoder.max_text_tokens,
            "state": 1,
            "indicator": 1,
            "world_model": self.num_wm_tokens,
            "value": 1,
        }[segment]

    def segment_offset(self, segment: str) -> int:
        """Where ``segment`` starts in the prefix (the same in both modes)."""
        if segment not in self.variant.prefix:
            raise ValueError(f"prefix: variant {self.variant.name} has no {segment!r} segment")
        offset = 0
        for s in self.variant.prefix:
            if s == segment:
                return offset
            offset += self.segment_length(s)
        raise AssertionError("unreachable")

    @property
    def efficient_prefix_len(self) -> int:
        return sum(self.segment_length(s) for s in self.variant.segments(standard=False))

    @property
    def standard_prefix_len(self) -> int:
        """Prefix length with the world-model tokens z and the value token (standard mode)."""
        return sum(self.segment_length(s) for s in self.variant.segments(standard=True))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Rebuild a config written by :meth:`to_dict` (e.g. from an engine manifest)."""
        sections = {
            "vision": VisionConfig,
            "decoder": DecoderConfig,
            "action_expert": ActionExpertConfig,
            "world_model": WorldModelConfig,
            "ramp": RampConfig,
            "variant": VariantConfig,
        }
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key == "variant" and isinstance(value, dict) and "prefix" in value:
                value = {**value, "prefix": tuple(value["prefix"])}
            if key in sections:
                if not isinstance(value, dict):
                    raise ValueError(f"model.{key} must be a mapping, got {type(value).__name__}")
                try:
                    kwargs[key] = sections[key](**value)
                except TypeError as exc:
                    raise ValueError(f"model.{key}: {exc}") from None
            elif key in ("name", "description"):
                kwargs[key] = value
            else:
                raise ValueError(f"model: unknown field {key!r}")
        return cls(**kwargs)
