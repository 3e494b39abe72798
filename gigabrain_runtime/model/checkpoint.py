"""A GigaBrain-0 checkpoint directory as a first-class input.

What the official pipeline reads (open-gigaai/giga-models ``GigaBrain0Pipeline``,
giga-brain-0 ``scripts/inference_server.py``), each from a local path:

* the checkpoint: ``config.json`` (diffusers ConfigMixin: ``_class_name`` GigaBrain0Policy and
  the switches of ``GigaBrain0Policy.__init__``) and the weights: one
  ``diffusion_pytorch_model.safetensors``, shards listed by
  ``diffusion_pytorch_model.safetensors.index.json``, or the PyTorch pickles giga-train writes
  (``diffusion_pytorch_model.bin``, or its ``.bin.index.json`` shards);
* ``norm_stats.json`` (``--norm-stats-path``; each user computes it for their data);
* the PaliGemma tokenizer directory (``--tokenizer-model-path``; its ``tokenizer.model``).

The layer sizes are not in config.json (the reference hard-codes them), so they come from the
``gigabrain-0`` preset (the released sizes) unless a ``model_dims.json`` overrides them.

:func:`resolve_checkpoint` finds the files: each explicit path wins; otherwise it looks inside
the checkpoint directory and, for a bundle laid out as ``DIR/checkpoint/config.json`` next to
``DIR/norm_stats.json``, ``DIR/tokenizer/`` and ``DIR/model_dims.json``, beside it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from gigabrain_runtime.hashing import sha256_file
from gigabrain_runtime.model.config import GIGABRAIN0_VARIANT, ModelConfig
from gigabrain_runtime.model.policy import GigaBrainPolicy
from gigabrain_runtime.model.presets import get_preset
from gigabrain_runtime.model.weights import (
    GIGABRAIN0_TIED,
    LoadReport,
    map_gigabrain0_key,
    official_gigabrain0_key,
)

CONFIG_NAME = "config.json"
NORM_STATS_NAME = "norm_stats.json"
TOKENIZER_DIR = "tokenizer"
MODEL_DIMS_NAME = "model_dims.json"
CLASS_NAME = "GigaBrain0Policy"
WEIGHT_LAYOUTS = (
    ("diffusion_pytorch_model.safetensors.index.json", "safetensors"),
    ("diffusion_pytorch_model.safetensors", "safetensors"),
    ("diffusion_pytorch_model.bin.index.json", "bin"),
    ("diffusion_pytorch_model.bin", "bin"),
)
# GigaBrain0Policy.__init__'s defaults: what from_pretrained uses for a key config.json omits
OFFICIAL_DEFAULTS: dict[str, Any] = {
    "max_state_dim": 32,
    "max_action_dim": 32,
    "proj_width": 1024,
    "vlm_type": "paligemma2",
    "vlm_hidden_size": 2304,
    "n_action_steps": 50,
    "num_steps": 10,
    "use_cache": True,
    "vision_in_channels": 3,
    "enable_knowledge_insulation": False,
    "enable_next_token_prediction": True,
    "enable_learnable_traj_token": False,
    "num_traj_tokens": 10,
    "max_traj_dim": 4,
    "traj_hidden_dim": 256,
    "num_embodiments": 1,
}
_IGNORED_KEYS = ("_class_name", "_diffusers_version", "_name_or_path", "_use_default_values")


@dataclass(frozen=True)
class CheckpointFiles:
    """The files of one checkpoint (``None``: not found; the caller decides if it needs it)."""

    root: Path
    weights_dir: Path
    config: Path
    weights: tuple[Path, ...]
    weight_format: str  # safetensors | bin
    norm_stats: Path | None
    tokenizer: Path | None  # a directory holding tokenizer.model
    model_dims: Path | None

    def require_norm_stats(self) -> Path:
        if self.norm_stats is None:
            raise FileNotFoundError(
                f"norm_stats: no {NORM_STATS_NAME} in {self.weights_dir} or {self.root}; pass "
                "--norm-stats FILE (the official scripts/compute_norm_stats.py writes it for "
                "your robot's data; the checkpoint does not ship one)"
            )
        return self.norm_stats

    def require_tokenizer(self) -> Path:
        if self.tokenizer is None:
            raise FileNotFoundError(
                f"tokenizer: no {TOKENIZER_DIR}/tokenizer.model in {self.weights_dir} or "
                f"{self.root}; pass --tokenizer DIR (a local copy of google/paligemma-3b-pt-224)"
            )
        return self.tokenizer

    def hashes(self) -> dict[str, Any]:
        """sha256 of every file (for the engine manifest's ``source``)."""
        out: dict[str, Any] = {
            "checkpoint": str(self.weights_dir),
            "config_sha256": sha256_file(self.config),
            "weights": {p.name: sha256_file(p) for p in self.weights},
        }
        if self.norm_stats is not None:
            out["norm_stats"] = str(self.norm_stats)
            out["norm_stats_sha256"] = sha256_file(self.norm_stats)
        if self.tokenizer is not None:
            out["tokenizer"] = str(self.tokenizer)
            out["tokenizer_sha256"] = sha256_file(self.tokenizer / "tokenizer.model")
        if self.model_dims is not None:
            out["model_dims"] = str(self.model_dims)
            out["model_dims_sha256"] = sha256_file(self.model_dims)
        return out


def _first(*candidates: Path) -> Path | None:
    return next((c for c in candidates if c.exists()), None)


def _weight_files(directory: Path) -> tuple[tuple[Path, ...], str]:
    for name, fmt in WEIGHT_LAYOUTS:
        path = directory / name
        if not path.is_file():
            continue
        if not name.endswith(".index.json"):
            return (path,), fmt
        try:
            weight_map = json.loads(path.read_text())["weight_map"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}: not a shard index with a weight_map ({exc})") from None
        shards = tuple(directory / f for f in sorted(set(weight_map.values())))
        missing = [s.name for s in shards if not s.is_file()]
        if missing:
            raise FileNotFoundError(f"checkpoint: {path.name} lists missing shards {missing}")
        return shards, fmt
    names = ", ".join(n for n, _ in WEIGHT_LAYOUTS)
    raise FileNotFoundError(f"checkpoint: no weights in {directory} (looked for {names})")


def resolve_checkpoint(
    path: str | Path,
    *,
    norm_stats: str | Path | None = None,
    tokenizer: str | Path | None = None,
    model_dims: str | Path | None = None,
) -> CheckpointFiles:
    """Find a checkpoint's files (see the module docstring). A missing checkpoint directory,
    config.json or weights raise FileNotFoundError naming what was looked for; an explicit path
    that does not exist too."""
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"checkpoint: no such directory {root}")
    if (root / CONFIG_NAME).is_file():
        weights_dir = root
    elif (root / "checkpoint" / CONFIG_NAME).is_file():
        weights_dir = root / "checkpoint"
    else:
        raise FileNotFoundError(
            f"checkpoint: no {CONFIG_NAME} in {root} (nor in {root / 'checkpoint'}): not a "
            "GigaBrain-0 checkpoint directory"
        )
    weights, fmt = _weight_files(weights_dir)

    def explicit(value: str | Path | None, what: str) -> Path | None:
        if value is None:
            return None
        p = Path(value)
        if not p.exists():
            raise FileNotFoundError(f"{what}: no such file or directory {p}")
        return p

    stats = explicit(norm_stats, "norm_stats") or _first(
        weights_dir / NORM_STATS_NAME, root / NORM_STATS_NAME
    )
    tok = explicit(tokenizer, "tokenizer") or _first(
        weights_dir / TOKENIZER_DIR, root / TOKENIZER_DIR
    )
    if tok is not None and tok.is_file():
        tok = tok.parent  # tokenizer.model given directly
    dims = explicit(model_dims, "model_dims") or _first(
        weights_dir / MODEL_DIMS_NAME, root / MODEL_DIMS_NAME
    )
    return CheckpointFiles(
        root=root,
        weights_dir=weights_dir,
        config=weights_dir / CONFIG_NAME,
        weights=weights,
        weight_format=fmt,
        norm_stats=stats,
        tokenizer=tok,
        model_dims=dims,
    )


@dataclass(frozen=True)
class CheckpointConfig:
    """The model a checkpoint describes, and what reading its config found."""

    model: ModelConfig
    raw: dict[str, Any]
    defaulted: tuple[str, ...] = ()  # keys config.json omits (official defaults used)
    ignored: tuple[str, ...] = ()  # keys the official code ignores too
    notes: tuple[str, ...] = field(default=())


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{what} {path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{what} {path}: expected a JSON object")
    return data


def _int(raw: dict[str, Any], key: str, where: str) -> int:
    value = raw[key]
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{where}: {key} must be a positive integer, got {value!r}")
    return value


def _dims_overrides(path: Path, base: ModelConfig) -> ModelConfig:
    """Apply a ``model_dims.json`` (sections vision, vlm, expert, optional text_len and
    paligemma2_with_expert_kwargs) to the released sizes."""
    data = _read_json(path, "model_dims")
    where = f"model_dims {path}"

    def section(name: str, mapping: dict[str, str]) -> dict[str, Any]:
        raw = data.get(name, {})
        if not isinstance(raw, dict):
            raise ValueError(f"{where}: {name} must be an object")
        unknown = sorted(set(raw) - set(mapping))
        if unknown:
            raise ValueError(f"{where}: {name}: unknown keys {unknown}")
        return {mapping[k]: _int(raw, k, f"{where}: {name}") for k in raw}

    vision = section(
        "vision",
        {
            "hidden": "width",
            "mlp": "mlp_dim",
            "heads": "num_heads",
            "layers": "depth",
            "patch": "patch_size",
            "image": "image_size",
        },
    )
    vlm = section(
        "vlm",
        {
            "hidden": "width",
            "mlp": "mlp_dim",
            "heads": "num_heads",
            "kv": "num_kv_heads",
            "layers": "depth",
            "head_dim": "head_dim",
            "vocab": "vocab_size",
        },
    )
    expert = section(
        "expert",
        {
            "hidden": "width",
            "mlp": "mlp_dim",
            "heads": "num_heads",
            "kv": "num_kv_heads",
            "head_dim": "head_dim",
        },
    )
    decoder = dataclasses.replace(base.decoder, **vlm)
    if "text_len" in data:
        decoder = dataclasses.replace(decoder, max_text_tokens=_int(data, "text_len", where))
    kwargs = data.get("paligemma2_with_expert_kwargs", {})
    if not isinstance(kwargs, dict):
        raise ValueError(f"{where}: paligemma2_with_expert_kwargs must be an object")
    # the reference's default is the constant 256.0, whatever head_dim is
    scalar = kwargs.get("paligemma_query_pre_attn_scalar", 256.0)
    if isinstance(scalar, bool) or not isinstance(scalar, (int, float)) or scalar <= 0:
        raise ValueError(
            f"{where}: paligemma_query_pre_attn_scalar must be a positive number, got {scalar!r}"
        )
    decoder = dataclasses.replace(decoder, query_pre_attn_scalar=float(scalar))
    # the reference asserts the expert shares the VLM's head layout (one attention per layer)
    for key, dec_key in (
        ("num_heads", "num_heads"),
        ("num_kv_heads", "num_kv_heads"),
        ("head_dim", "head_dim"),
    ):
        if key in expert and expert[key] != getattr(decoder, dec_key):
            raise ValueError(
                f"{where}: expert {key}={expert[key]} differs from the VLM's "
                f"{getattr(decoder, dec_key)} (the expert attends with the VLM's head layout)"
            )
    action = dataclasses.replace(
        base.action_expert,
        **{k: v for k, v in expert.items() if k in ("width", "mlp_dim")},
    )
    return dataclasses.replace(
        base,
        vision=dataclasses.replace(base.vision, **vision),
        decoder=decoder,
        action_expert=action,
    )


def checkpoint_config(files: CheckpointFiles) -> CheckpointConfig:
    """The ModelConfig of a checkpoint: config.json's switches on the released sizes (or the
    ``model_dims.json`` overrides). Anything this runtime cannot run the way the reference
    does raises ValueError naming the key."""
    raw = _read_json(files.config, "config")
    where = f"config {files.config}"
    cls = raw.get("_class_name", CLASS_NAME)
    if cls != CLASS_NAME:
        raise ValueError(f"{where}: _class_name {cls!r} is not {CLASS_NAME!r}")
    known = set(OFFICIAL_DEFAULTS)
    ignored = tuple(sorted(k for k in raw if k not in known))
    defaulted = tuple(sorted(k for k in known if k not in raw))
    c = {**OFFICIAL_DEFAULTS, **{k: v for k, v in raw.items() if k in known}}
    if c["vlm_type"] != "paligemma2":
        raise ValueError(
            f"{where}: vlm_type {c['vlm_type']!r} is not supported (the released GigaBrain-0 "
            "is 'paligemma2')"
        )
    if c["vision_in_channels"] != 3:
        raise ValueError(
            f"{where}: vision_in_channels {c['vision_in_channels']} (RGB-D) is not supported: "
            "this runtime feeds RGB cameras only"
        )
    if c["max_traj_dim"] not in (2, 4):
        raise ValueError(f"{where}: max_traj_dim must be 2 or 4, got {c['max_traj_dim']!r}")
    if c["max_state_dim"] != c["max_action_dim"]:
        raise ValueError(
            f"{where}: max_state_dim {c['max_state_dim']} != max_action_dim "
            f"{c['max_action_dim']} (one padded width for states and actions)"
        )
    base = get_preset("gigabrain-0")
    if files.model_dims is not None:
        base = _dims_overrides(files.model_dims, base)
    if c["vlm_hidden_size"] != base.decoder.width:
        source = files.model_dims or "the released sizes"
        raise ValueError(
            f"{where}: vlm_hidden_size {c['vlm_hidden_size']} disagrees with the VLM width "
            f"{base.decoder.width} of {source} (pass --model-dims for a non-released size)"
        )
    variant = GIGABRAIN0_VARIANT
    if c["enable_learnable_traj_token"]:
        variant = dataclasses.replace(variant, prefix=("images", "trajectory", "text"))
    variant = dataclasses.replace(variant, trajectory_dim=int(c["max_traj_dim"]))
    model = dataclasses.replace(
        base,
        name="gigabrain-0-checkpoint",
        description=f"GigaBrain-0 checkpoint {files.weights_dir}",
        action_expert=dataclasses.replace(
            base.action_expert,
            width=_int(c, "proj_width", where),
            horizon=_int(c, "n_action_steps", where),
            action_dim=_int(c, "max_action_dim", where),
            num_flow_steps=_int(c, "num_steps", where),
            max_embodiments=_int(c, "num_embodiments", where),
            trajectory_points=_int(c, "num_traj_tokens", where),
            trajectory_gru_hidden=_int(c, "traj_hidden_dim", where),
        ),
        world_model=dataclasses.replace(
            base.world_model, proprio_dim=_int(c, "max_action_dim", where)
        ),
        variant=variant,
    )
    notes = []
    if c["enable_knowledge_insulation"]:
        notes.append("enable_knowledge_insulation: training only, no effect on inference")
    return CheckpointConfig(
        model=model, raw=raw, defaulted=defaulted, ignored=ignored, notes=tuple(notes)
    )


def iter_checkpoint_tensors(files: CheckpointFiles) -> Iterator[tuple[str, torch.Tensor]]:
    """(name, tensor) for every tensor of every weight file, one file at a time. A file that
    cannot be read (truncated, not what its name says) raises ValueError naming it."""
    for file in files.weights:
        if files.weight_format == "safetensors":
            from safetensors import SafetensorError, safe_open

            try:
                with safe_open(str(file), framework="pt") as f:
                    for key in f.keys():  # noqa: SIM118 - safe_open is not iterable
                        yield key, f.get_tensor(key)
            except (OSError, RuntimeError, SafetensorError) as exc:
                raise ValueError(f"checkpoint: cannot read {file} ({exc})") from None
        else:
            try:
                state = torch.load(file, map_location="cpu", weights_only=True, mmap=True)
            except (OSError, RuntimeError, ValueError, EOFError) as exc:
                raise ValueError(f"checkpoint: cannot read {file} ({exc})") from None
            if not isinstance(state, dict):
                raise ValueError(f"checkpoint: {file} does not hold a state dict")
            yield from state.items()


def load_checkpoint_policy(
    files: CheckpointFiles, cfg: ModelConfig, *, dtype: torch.dtype = torch.float32
) -> tuple[GigaBrainPolicy, LoadReport]:
    """The policy with every parameter from the checkpoint, in eval mode.

    The model is built without memory (meta device) and the file's tensors become its
    parameters, so the weights are held once and nothing random can leak into a chunk: every
    parameter must come from the file, and a missing one, or one of another shape, raises
    ValueError naming it. Tensors the model has no place for are listed in the report (the
    reference ignores them too); ``lm_head.weight`` is the tied embedding.
    """
    with torch.device("meta"):
        policy = GigaBrainPolicy(cfg)
    own = {k: tuple(v.shape) for k, v in policy.state_dict().items()}
    report = LoadReport()
    mapped: dict[str, torch.Tensor] = {}
    for key, tensor in iter_checkpoint_tensors(files):
        if key in GIGABRAIN0_TIED:
            report.tied.append(key)
            continue
        target = map_gigabrain0_key(key)
        if target is None or target not in own:
            report.unexpected.append(key)
        elif tuple(tensor.shape) != own[target]:
            report.mismatched.append(f"{key}: file {tuple(tensor.shape)} vs model {own[target]}")
        else:
            # the loaded tensor becomes the parameter (assign=True below): one copy in memory
            mapped[target] = tensor if tensor.dtype == dtype else tensor.to(dtype)
            report.loaded.append(target)
    report.missing.extend(k for k in own if k not in mapped)
    if not (report.missing or report.mismatched):
        policy.load_state_dict(mapped, strict=True, assign=True)
    if report.missing or report.mismatched:
        problems = [f"missing {official_gigabrain0_key(k)}" for k in report.missing]
        problems += [f"shape of {m}" for m in report.mismatched]
        raise ValueError(
            f"checkpoint {files.weights_dir} does not fit its config.json and sizes "
            f"({len(problems)} problems): "
            + "; ".join(problems[:6])
            + (" ..." if len(problems) > 6 else "")
        )
    return policy.eval(), report
