"""Weights: the project's own safetensors files, and the published GigaBrain-0 parameter names.

Own format: one safetensors file with keys ``policy.<param>`` and ``world_model.<param>`` and
metadata ``{"format": "gigabrain-runtime/1", "preset": <name>}``.

GigaBrain-0 layout (open-gigaai/giga-models, ``GigaBrain0Policy`` saved by diffusers, one file or
shards with ``diffusion_pytorch_model.safetensors.index.json``): a fused PaliGemma-2 + expert
stack where every decoder-layer module holds both streams, index ``.0`` for the VLM and ``.1``
for the action expert. :func:`map_gigabrain0_key` maps those names onto this package's modules
(model/checkpoint.py loads a checkpoint directory with it); :func:`official_gigabrain0_key` is
its inverse, for messages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

FORMAT = "gigabrain-runtime/1"


@dataclass
class LoadReport:
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # model keys the file did not provide
    unexpected: list[str] = field(default_factory=list)  # file keys with no place in the model
    mismatched: list[str] = field(default_factory=list)  # "key: file shape vs model shape"
    partial: list[str] = field(default_factory=list)  # embodiment tables copied into some slots
    tied: list[str] = field(default_factory=list)  # file keys that are another key's tensor
    # model keys the file did not provide that the model may start without (zero-initialised
    # conditioning added after the file was written: the model computes what it did)
    defaulted: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def summary(self) -> str:
        lines = [f"loaded {len(self.loaded)} tensors"]
        for title, items in (
            ("missing", self.missing),
            ("unexpected", self.unexpected),
            ("shape mismatch", self.mismatched),
            ("partially filled", self.partial),
            ("started at zero", self.defaulted),
        ):
            if items:
                lines.append(f"{title} ({len(items)}): " + ", ".join(items))
        return "\n".join(lines)


def save_weights(
    path: str | Path,
    *,
    preset: str,
    policy: nn.Module | dict[str, torch.Tensor],
    world_model: nn.Module | dict[str, torch.Tensor] | None = None,
) -> Path:
    """``policy`` and ``world_model``: the modules, or their state dicts (a trainer's
    gathered or averaged copy)."""
    from safetensors.torch import save_file

    state = policy if isinstance(policy, dict) else policy.state_dict()
    tensors = {f"policy.{k}": v.detach().contiguous().cpu() for k, v in state.items()}
    if world_model is not None:
        tensors.update(
            {
                f"world_model.{k}": v.detach().contiguous().cpu()
                for k, v in (
                    world_model if isinstance(world_model, dict) else world_model.state_dict()
                ).items()
            }
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={"format": FORMAT, "preset": preset})
    return path


def non_finite(module: nn.Module, prefix: str = "") -> list[str]:
    """``name (k of n values)`` for every parameter or buffer of ``module`` holding NaN or Inf."""
    out = []
    for name, t in module.state_dict().items():
        if t.is_floating_point():
            bad = int((~torch.isfinite(t)).sum())
            if bad:
                out.append(f"{prefix}{name} ({bad} of {t.numel()} values)")
    return out


def assign(
    module: nn.Module,
    tensors: dict[str, torch.Tensor],
    report: LoadReport,
    *,
    partial_tables: bool = True,
) -> None:
    """Copy ``tensors`` into ``module``'s parameters by name, recording what happened in
    ``report``. With ``partial_tables``, a per-embodiment table with fewer slots than the model
    fills the first slots (and is listed as partial)."""
    own = module.state_dict()
    for key, value in tensors.items():
        if key not in own:
            report.unexpected.append(key)
            continue
        target = own[key]
        if tuple(value.shape) == tuple(target.shape):
            target.copy_(value.to(target.dtype))
            report.loaded.append(key)
        elif (
            partial_tables
            and value.ndim == target.ndim
            and value.ndim >= 2
            and tuple(value.shape[1:]) == tuple(target.shape[1:])
            and value.shape[0] < target.shape[0]
            and key.endswith(
                (
                    "action_in_proj.weight",
                    "action_in_proj.bias",
                    "action_out_proj.weight",
                    "action_out_proj.bias",
                    "state_proj.weight",
                    "state_proj.bias",
                )
            )
        ):
            # per-embodiment table with fewer embodiments than this model has slots
            target[: value.shape[0]].copy_(value.to(target.dtype))
            report.loaded.append(key)
            report.partial.append(f"{key}: slots 0..{value.shape[0] - 1} of {target.shape[0]}")
        else:
            report.mismatched.append(
                f"{key}: file {tuple(value.shape)} vs model {tuple(target.shape)}"
            )
    provided = set(tensors)
    report.missing.extend(k for k in own if k not in provided)


def load_weights(
    path: str | Path,
    *,
    policy: nn.Module,
    world_model: nn.Module | None = None,
    strict: bool = True,
) -> LoadReport:
    """Load a file written by :func:`save_weights`. With ``strict``, any missing, unexpected or
    mis-shaped tensor raises ValueError listing them by name."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights: no such file {path}")
    groups: dict[str, dict[str, torch.Tensor]] = {"policy": {}, "world_model": {}}
    report = LoadReport()
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        if meta.get("format") != FORMAT:
            raise ValueError(
                f"weights: {path} is not a gigabrain-runtime file (format={meta.get('format')!r}); "
                "for a GigaBrain-0 checkpoint directory use --checkpoint"
            )
        for key in f.keys():  # noqa: SIM118 - safe_open is not iterable
            head, _, rest = key.partition(".")
            if head in groups:
                groups[head][rest] = f.get_tensor(key)
            else:
                report.unexpected.append(key)
    with torch.no_grad():
        sub = LoadReport()
        assign(policy, groups["policy"], sub)
        optional = set(getattr(policy, "optional_keys", lambda: ())())
        sub.defaulted = [k for k in sub.missing if k in optional]
        sub.missing = [k for k in sub.missing if k not in optional]
        _merge(report, sub, "policy.")
        if world_model is not None:
            sub = LoadReport()
            assign(world_model, groups["world_model"], sub)
            _merge(report, sub, "world_model.")
        elif groups["world_model"]:
            report.unexpected.extend(f"world_model.{k}" for k in groups["world_model"])
    if strict and not report.ok:
        raise ValueError(f"weights: {path} does not match the model\n{report.summary()}")
    return report


def _merge(into: LoadReport, sub: LoadReport, prefix: str) -> None:
    for name in ("loaded", "missing", "unexpected", "mismatched", "partial", "defaulted"):
        getattr(into, name).extend(prefix + item for item in getattr(sub, name))


# ---- the published GigaBrain-0 layout ------------------------------------------------------------
_P = "paligemma_with_expert."
_STREAM = {"0": "decoder", "1": "expert"}
_RULES: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(rf"^{_P}vision_tower\.embeddings\.patch_embedding\.(weight|bias)$"),
        r"vision.patch_embedding.\1",
    ),
    (
        re.compile(rf"^{_P}vision_tower\.embeddings\.position_embedding\.weight$"),
        "vision.position_embedding",
    ),
    (re.compile(rf"^{_P}vision_tower\.encoder\.layers\.(\d+)\.(.+)$"), r"vision.layers.\1.\2"),
    (
        re.compile(rf"^{_P}vision_tower\.post_layernorm\.(weight|bias)$"),
        r"vision.post_layernorm.\1",
    ),
    (
        re.compile(rf"^{_P}multi_modal_projector\.linear\.(weight|bias)$"),
        r"multi_modal_projector.\1",
    ),
    (re.compile(rf"^{_P}embed_tokens\.weight$"), "decoder.embed_tokens.weight"),
    (
        re.compile(rf"^{_P}layers\.(\d+)\.self_attn\.([qkvo]_proj)\.([01])\.weight$"),
        r"{\3}.layers.\1.self_attn.\2.weight",
    ),
    (
        re.compile(rf"^{_P}layers\.(\d+)\.mlps\.([01])\.(gate_proj|up_proj|down_proj)\.weight$"),
        r"{\2}.layers.\1.mlp.\3.weight",
    ),
    (
        re.compile(
            rf"^{_P}layers\.(\d+)\.(input_layernorm|post_attention_layernorm|pre_feedforward_layernorm"
            rf"|post_feedforward_layernorm)s\.([01])\.(weight|dense\.weight|dense\.bias)$"
        ),
        r"{\3}.layers.\1.\2.\4",
    ),
    (re.compile(rf"^{_P}norms\.0\.weight$"), "decoder.norm.weight"),
    (re.compile(rf"^{_P}norms\.1\.dense\.(weight|bias)$"), r"expert.norm.dense.\1"),
    (
        re.compile(r"^(action_in_proj|action_out_proj|time_mlp_in|time_mlp_out)\.(weight|bias)$"),
        r"expert.\1.\2",
    ),
    (re.compile(r"^traj_token$"), "trajectory_queries"),
    (
        re.compile(r"^traj_decoder\.(weight_ih|weight_hh|bias_ih|bias_hh)_l0$"),
        r"trajectory_head.\1",
    ),
    (re.compile(r"^traj_out_proj\.(weight|bias)$"), r"trajectory_head.out.\1"),
]
# Tensors the published file carries that have no separate place here (tied to embed_tokens).
GIGABRAIN0_TIED = frozenset({f"{_P}lm_head.weight"})


def map_gigabrain0_key(key: str) -> str | None:
    """GigaBrain-0 parameter name -> this package's policy parameter name (None if unmapped)."""
    for pattern, template in _RULES:
        m = pattern.match(key)
        if m:
            out = m.expand(template)
            for idx, stream in _STREAM.items():
                out = out.replace("{" + idx + "}", stream)
            return out
    return None


_REVERSE: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(r"^vision\.patch_embedding\.(\w+)$"),
        rf"{_P}vision_tower.embeddings.patch_embedding.\1",
    ),
    (
        re.compile(r"^vision\.position_embedding$"),
        f"{_P}vision_tower.embeddings.position_embedding.weight",
    ),
    (re.compile(r"^vision\.layers\.(.+)$"), rf"{_P}vision_tower.encoder.layers.\1"),
    (re.compile(r"^vision\.post_layernorm\.(\w+)$"), rf"{_P}vision_tower.post_layernorm.\1"),
    (re.compile(r"^multi_modal_projector\.(\w+)$"), rf"{_P}multi_modal_projector.linear.\1"),
    (re.compile(r"^decoder\.embed_tokens\.weight$"), f"{_P}embed_tokens.weight"),
    (re.compile(r"^decoder\.norm\.weight$"), f"{_P}norms.0.weight"),
    (re.compile(r"^expert\.norm\.dense\.(\w+)$"), rf"{_P}norms.1.dense.\1"),
    (
        re.compile(r"^(decoder|expert)\.layers\.(\d+)\.self_attn\.(\w+)\.weight$"),
        rf"{_P}layers.\2.self_attn.\3.{{\1}}.weight",
    ),
    (
        re.compile(r"^(decoder|expert)\.layers\.(\d+)\.mlp\.(\w+)\.weight$"),
        rf"{_P}layers.\2.mlps.{{\1}}.\3.weight",
    ),
    (
        re.compile(r"^(decoder|expert)\.layers\.(\d+)\.(\w+_layernorm)\.(.+)$"),
        rf"{_P}layers.\2.\3s.{{\1}}.\4",
    ),
    (
        re.compile(r"^expert\.(action_in_proj|action_out_proj|time_mlp_in|time_mlp_out)\.(\w+)$"),
        r"\1.\2",
    ),
    (re.compile(r"^trajectory_queries$"), "traj_token"),
    (
        re.compile(r"^trajectory_head\.(weight_ih|weight_hh|bias_ih|bias_hh)$"),
        r"traj_decoder.\1_l0",
    ),
    (re.compile(r"^trajectory_head\.out\.(\w+)$"), r"traj_out_proj.\1"),
]


def official_gigabrain0_key(key: str) -> str:
    """This package's parameter name -> the published GigaBrain-0 name (``key`` itself when
    the published model has no such parameter)."""
    for pattern, template in _REVERSE:
        m = pattern.match(key)
        if m:
            out = m.expand(template)
            return out.replace("{decoder}", "0").replace("{expert}", "1")
    return key
