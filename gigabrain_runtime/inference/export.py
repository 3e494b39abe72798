"""Export a policy (both modes where the variant has a world model) and the world model to ONNX,
batch 1, static shapes.

What is exported comes from an :class:`EngineSource`: a preset with random or project weights
(:func:`preset_source`), or a GigaBrain-0 checkpoint directory (:func:`checkpoint_source`:
config.json, weights, norm_stats.json, tokenizer). The graphs' inputs follow the variant: the
RAMP variant takes a ``state`` input (its state token) and, in standard mode, ``wm_tokens`` and
``value``; GigaBrain-0 takes neither (its state is in the prompt's tokens) and has no world model.

Two layouts:

* ``fused`` (default): one graph per mode with the whole flow loop unrolled inside, so a chunk
  is a single ``run`` call (no per-step Python, no cache round trips through host memory).
* ``split``: a prefix graph per mode (returns the per-layer keys/values) plus a flow-step graph
  per mode that the backend calls ``num_flow_steps`` times. Useful for real-time chunking and
  to measure what the fused graph buys; see the README for the measured numbers.

The noise is a graph input, so two backends fed the same noise must produce the same chunk
(the parity tests rely on this). Graphs whose weights pass protobuf's 2 GB limit keep them in
an ONNX external-data file next to the graph (``<graph>.onnx.data``).
"""

from __future__ import annotations

import contextlib
import io
import logging
import shutil
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from gigabrain_runtime import __version__
from gigabrain_runtime.inference.manifest import (
    EmbodimentEntry,
    EngineManifest,
    GraphSpec,
    TensorSpec,
    sha256_file,
)
from gigabrain_runtime.inference.preprocessing import (
    FLOW_STEP_GRAPH,
    POLICY_GRAPH,
    PREFIX_GRAPH,
    WORLD_MODEL_GRAPH,
)
from gigabrain_runtime.inference.types import Mode
from gigabrain_runtime.model.build import build_models
from gigabrain_runtime.model.config import ModelConfig
from gigabrain_runtime.model.policy import (
    INDICATOR_POSITIVE,
    GigaBrainPolicy,
    Prefix,
    rtc_velocity,
)
from gigabrain_runtime.model.tokenizer import ByteTokenizer
from gigabrain_runtime.model.weights import load_weights, non_finite, save_weights
from gigabrain_runtime.model.world_model import LatentWorldModel
from gigabrain_runtime.robots.embodiment import EMBODIMENTS, RUNTIME_FAMILY, Embodiment

DEFAULT_OPSET = 20
LAYOUTS = ("fused", "split")
# Above this many parameters the graphs are saved as traced, without onnxscript's optimiser:
# its rewrite passes scale with the square of the node count (the released GigaBrain-0's fused
# graph did not finish in an hour on 2 cores). onnxruntime optimises on load anyway (measured on
# the fixture: same chunk, same latency), and TensorRT fuses on its own.
OPTIMIZE_MAX_PARAMS = 1_000_000_000
# optional policy inputs, in graph order after the images/text/slot inputs
_OPTIONAL = ("state", "wm_tokens", "value")


# real-time chunking's guide (model/policy.py rtc_velocity): the previous chunk, normalised on
# the new chunk's time grid, and its soft mask; zeros = unguided, the same chunk bit for bit
GUIDE_INPUTS = ("prefix_actions", "prefix_weights")


def policy_input_names(cfg: ModelConfig, mode: Mode, *, with_noise: bool) -> list[str]:
    """The inputs of a policy (or prefix) graph of ``cfg``'s variant in ``mode``."""
    names = ["images", "image_mask", "tokens", "token_mask", "embodiment_id"]
    if with_noise:
        names += ["noise", *GUIDE_INPUTS]
    if cfg.variant.has("state"):
        names.append("state")
    if mode is Mode.STANDARD:
        names += ["wm_tokens", "value"]
    return names


def graph_modes(cfg: ModelConfig) -> list[Mode]:
    return list(Mode) if cfg.variant.has_world_model else [Mode.EFFICIENT]


class PolicyGraph(nn.Module):
    """sample_actions with named inputs -> actions (, trajectory)."""

    def __init__(self, policy: GigaBrainPolicy, names: list[str]) -> None:
        super().__init__()
        self.policy = policy
        self.names = names

    def forward(self, *args: torch.Tensor):  # noqa: ANN201 - traced signature
        x = dict(zip(self.names, args, strict=True))
        actions, trajectory = self.policy.sample_from_feeds(x)
        return actions if trajectory is None else (actions, trajectory)


class PrefixGraph(nn.Module):
    """-> (trajectory,) prefix_valid, num_valid, k_0, v_0, ..., k_{L-1}, v_{L-1}."""

    def __init__(self, policy: GigaBrainPolicy, names: list[str]) -> None:
        super().__init__()
        self.policy = policy
        self.names = names

    def forward(self, *args: torch.Tensor):  # noqa: ANN201
        x = dict(zip(self.names, args, strict=True))
        b = x["images"].shape[0]
        indicator = (
            torch.full((b,), INDICATOR_POSITIVE, dtype=torch.long)
            if self.policy.cfg.variant.has("indicator")
            else None
        )
        emb, valid = self.policy.embed_prefix(
            x["images"],
            x["image_mask"],
            x["tokens"],
            x["token_mask"],
            x.get("state"),
            x["embodiment_id"],
            indicator,
            x.get("wm_tokens"),
            x.get("value"),
        )
        prefix = self.policy.encode_prefix(emb, valid)
        flat = [t for kv in prefix.cache for t in kv]
        head = () if prefix.trajectory is None else (prefix.trajectory,)
        return (*head, prefix.valid, prefix.num_valid, *flat)


class FlowStepGraph(nn.Module):
    """One Euler step: x_next = x + dt * v(x, t | prefix cache)."""

    def __init__(self, policy: GigaBrainPolicy) -> None:
        super().__init__()
        self.policy = policy
        self.dt = -1.0 / policy.cfg.action_expert.num_flow_steps

    def forward(  # noqa: ANN201
        self, x, time, prefix_actions, prefix_weights, prefix_valid, num_valid, embodiment_id, *kv
    ):  # noqa: ANN001
        cache = [(kv[2 * i], kv[2 * i + 1]) for i in range(len(kv) // 2)]
        prefix = Prefix(
            cache=cache, valid=prefix_valid, hidden=x, trajectory=None, num_valid=num_valid
        )
        # inference fixes the indicator to positive (as sample_actions): a constant of the graph
        indicator = torch.full((x.shape[0],), INDICATOR_POSITIVE, dtype=torch.long, device=x.device)
        v = self.policy.velocity(x, time, prefix, embodiment_id, indicator)
        return x + self.dt * rtc_velocity(x, v, time, prefix_actions, prefix_weights)


class WorldModelGraph(nn.Module):
    def __init__(self, world_model: LatentWorldModel) -> None:
        super().__init__()
        self.world_model = world_model

    def forward(self, images, image_mask, state, actions, noise):  # noqa: ANN001, ANN201
        return self.world_model.predict(images, image_mask, state, actions, noise)


def example_inputs(cfg: ModelConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    """Representative batch-1 inputs for tracing (and for tests)."""
    g = torch.Generator().manual_seed(seed)
    v, d, a, wm = cfg.vision, cfg.decoder, cfg.action_expert, cfg.world_model
    token_mask = torch.zeros(1, d.max_text_tokens, dtype=torch.bool)
    token_mask[:, : min(8, d.max_text_tokens)] = True
    image_mask = torch.ones(1, v.max_cameras, dtype=torch.bool)
    image_mask[:, -1] = v.max_cameras == 1
    return {
        "images": torch.randint(
            0,
            256,
            (1, v.max_cameras, v.image_size, v.image_size, 3),
            dtype=torch.uint8,
            generator=g,
        ),
        "image_mask": image_mask,
        "tokens": torch.randint(3, min(259, d.vocab_size), (1, d.max_text_tokens), generator=g),
        "token_mask": token_mask,
        "state": torch.randn(1, cfg.state_dim, generator=g),
        "embodiment_id": torch.zeros(1, dtype=torch.long),
        "noise": torch.randn(1, a.horizon, a.action_dim, generator=g),
        "prefix_actions": torch.randn(1, a.horizon, a.action_dim, generator=g),
        "prefix_weights": torch.rand(1, a.horizon, a.action_dim, generator=g),
        "wm_tokens": torch.randn(1, cfg.num_wm_tokens, wm.z_token_dim, generator=g),
        "value": torch.rand(1, generator=g),
        "actions": torch.randn(1, a.horizon, a.action_dim, generator=g),
        "wm_noise": torch.randn(
            1, cfg.num_wm_tokens, wm.state_channels * wm.patch_size**2, generator=g
        ),
    }


def _onnx_dtype_name(elem_type: int) -> str:
    import onnx

    return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type)).name


def _specs(path: Path) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)

    def spec(value_info: Any) -> TensorSpec:
        t = value_info.type.tensor_type
        return TensorSpec(
            name=value_info.name,
            shape=tuple(int(d.dim_value) for d in t.shape.dim),
            dtype=_onnx_dtype_name(t.elem_type),
        )

    return tuple(spec(i) for i in model.graph.input), tuple(spec(o) for o in model.graph.output)


def _export(
    module: nn.Module,
    args: tuple[torch.Tensor, ...],
    input_names: list[str],
    output_names: list[str],
    path: Path,
    opset: int,
    verbose: bool,
    optimize: bool = True,
) -> GraphSpec:
    sink = io.StringIO()
    quiet = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(sink)
    with warnings.catch_warnings(), quiet:
        warnings.simplefilter("ignore")
        loggers = [logging.getLogger(n) for n in ("onnxscript", "torch.onnx")]
        levels = [lg.level for lg in loggers]
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        try:
            program = torch.onnx.export(
                module,
                args,
                dynamo=True,
                opset_version=opset,
                input_names=input_names,
                output_names=output_names,
                verbose=False,
                optimize=optimize,
            )
            if program is None:
                raise RuntimeError(f"export of {path.name} produced no program")
            # initialisers go to an external-data file automatically past protobuf's 2 GB limit
            program.save(str(path))
        finally:
            for lg, lvl in zip(loggers, levels, strict=True):
                lg.setLevel(lvl)
    inputs, outputs = _specs(path)
    return GraphSpec(file=path.name, sha256=sha256_file(path), inputs=inputs, outputs=outputs)


@dataclass
class EngineSource:
    """What an engine is made from: the model, its weights in memory, and the manifest that
    describes how to feed it (no graphs yet). ``tokenizer_file``: copied into the engine."""

    cfg: ModelConfig
    policy: GigaBrainPolicy
    world_model: LatentWorldModel | None
    manifest: EngineManifest
    tokenizer_file: Path | None = None
    notes: tuple[str, ...] = ()


def _runtime_entries(cfg: ModelConfig, embodiments: list[Embodiment]) -> dict[str, EmbodimentEntry]:
    family = cfg.variant.slot_family
    entries = {e.name: EmbodimentEntry.from_embodiment(e, family=family) for e in embodiments}
    for name, entry in entries.items():
        if entry.embodiment_id >= cfg.action_expert.max_embodiments:
            raise ValueError(
                f"embodiment {name}: embodiment_id={entry.embodiment_id} exceeds the model's "
                f"max_embodiments={cfg.action_expert.max_embodiments}"
            )
    return entries


def preset_manifest(
    cfg: ModelConfig, *, seed: int = 0, embodiments: list[Embodiment] | None = None
) -> EngineManifest:
    """A manifest with no graphs: enough for the torch backend to run a preset in memory."""
    if cfg.variant.slot_family != RUNTIME_FAMILY:
        raise ValueError(
            f"preset {cfg.name}: its {cfg.variant.slot_family} slots and statistics come from "
            "a checkpoint; use --checkpoint DIR"
        )
    embodiments = (
        embodiments if embodiments is not None else [EMBODIMENTS.get(n) for n in EMBODIMENTS]
    )
    tokenizer = ByteTokenizer(max_tokens=cfg.decoder.max_text_tokens)
    tokenizer.check_vocabulary(cfg.decoder.vocab_size)
    return EngineManifest(
        preset=cfg.name,
        model=cfg.to_dict(),
        weights_source=f"random-init(seed={seed})",
        weights_sha256="",
        opset=0,
        layout="none",
        backend="torch",
        graphs={},
        embodiments=_runtime_entries(cfg, embodiments),
        tokenizer=tokenizer.to_dict(),
        created_by=f"gigabrain-runtime {__version__}",
        extra={"seed": seed},
    )


def preset_source(
    cfg: ModelConfig,
    *,
    weights: str | Path | None = None,
    seed: int = 0,
    embodiments: list[Embodiment] | None = None,
    norm_stats: str | Path | None = None,
    delta_joints: tuple[str, ...] = (),
) -> EngineSource:
    """A preset's engine source. ``norm_stats``: a ``norm_stats.json`` (``train`` writes one)
    whose quantile statistics normalise the given ``embodiments`` (one robot's data: at least
    one embodiment must be named) instead of their joint limits. ``delta_joints``: the joints
    the weights predict as offsets from the state (as ``train --delta-joints`` trained them)."""
    manifest = preset_manifest(cfg, seed=seed, embodiments=embodiments)
    if delta_joints and norm_stats is None:
        raise ValueError("delta_joints: offsets are trained with statistics; pass --norm-stats")
    if norm_stats is not None:
        from gigabrain_runtime.inference.normalization import read_norm_stats

        if not embodiments:
            raise ValueError(
                "norm_stats: statistics belong to one robot's data; name the robot (--robot)"
            )
        stats = read_norm_stats(norm_stats)
        manifest = replace(
            manifest,
            embodiments={
                e.name: EmbodimentEntry.from_embodiment(
                    e,
                    family=cfg.variant.slot_family,
                    state_norm=stats.state,
                    action_norm=stats.action,
                    delta_joints=delta_joints,
                )
                for e in embodiments
            },
            extra={**manifest.extra, "norm_stats": str(norm_stats)},
        )
    policy, world_model = build_models(cfg, weights=weights, seed=seed)
    if weights is not None:
        manifest = replace(manifest, weights_source=str(weights))
    return EngineSource(cfg=cfg, policy=policy, world_model=world_model, manifest=manifest)


def checkpoint_robots(family: str, robots: list[str] | None) -> list[Embodiment]:
    """The robots an engine of ``family`` serves: those named (each must have a slot: else
    ValueError naming it), or by default every built-in robot that has one."""
    if robots:
        out = [
            EMBODIMENTS.get(r, field="robot")
            if not r.endswith((".yaml", ".yml"))
            else Embodiment.from_yaml(r)
            for r in robots
        ]
        for emb in out:
            emb.model_io(family)
        return out
    out = [EMBODIMENTS.get(n) for n in EMBODIMENTS if family in EMBODIMENTS.get(n).checkpoints]
    if not out:
        raise ValueError(f"robots: no built-in robot has a slot in {family} checkpoints")
    return out


def checkpoint_source(
    path: str | Path,
    *,
    robots: list[str] | None = None,
    norm_stats: str | Path | None = None,
    tokenizer: str | Path | None = None,
    model_dims: str | Path | None = None,
    hash_files: bool = False,
    weights: str | Path | None = None,
    delta_joints: tuple[str, ...] = (),
    for_training: bool = False,
) -> EngineSource:
    """A GigaBrain-0 checkpoint directory, ready to run or export. Everything a chunk depends
    on is checked here, before anything runs: each problem raises one ValueError or
    FileNotFoundError naming the file, key, robot or dimension. ``hash_files``: record the
    sha256 of every file in the manifest's ``source`` (what export does). ``weights``: this
    package's safetensors of a model fine-tuned from the checkpoint (``train --checkpoint``),
    loaded over the checkpoint's; ``delta_joints`` as it was trained with. ``for_training``:
    the statistics are computed from the dataset, so the checkpoint needs none (each robot
    is normalised by its joint limits until then)."""
    from gigabrain_runtime.inference.normalization import read_norm_stats
    from gigabrain_runtime.model.checkpoint import (
        checkpoint_config,
        load_checkpoint_policy,
        resolve_checkpoint,
    )
    from gigabrain_runtime.model.tokenizer import SentencePieceTokenizer

    files = resolve_checkpoint(
        path, norm_stats=norm_stats, tokenizer=tokenizer, model_dims=model_dims
    )
    ckpt = checkpoint_config(files)
    cfg = ckpt.model
    stats = None if for_training else read_norm_stats(files.require_norm_stats())
    tok = SentencePieceTokenizer(
        path=files.require_tokenizer(), max_tokens=cfg.decoder.max_text_tokens
    )
    tok.check_vocabulary(cfg.decoder.vocab_size)
    family = cfg.variant.slot_family
    embodiments = checkpoint_robots(family, robots)
    entries: dict[str, EmbodimentEntry] = {}
    for emb in embodiments:
        entry = EmbodimentEntry.from_embodiment(
            emb,
            family=family,
            state_norm=stats.state if stats else None,
            action_norm=stats.action if stats else None,
            delta_joints=delta_joints,
        )
        if entry.embodiment_id >= cfg.action_expert.max_embodiments:
            raise ValueError(
                f"robot {emb.name}: its slot {entry.slot} is embodiment {entry.embodiment_id}, "
                f"but the checkpoint has {cfg.action_expert.max_embodiments} embodiment slots "
                f"(num_embodiments in {files.config})"
            )
        if len(entry.dims) > cfg.state_dim:
            raise ValueError(
                f"robot {emb.name}: {len(entry.dims)} dimensions exceed the checkpoint's "
                f"max_action_dim {cfg.state_dim}"
            )
        entries[emb.name] = entry
    policy, report = load_checkpoint_policy(files, cfg)
    notes = list(ckpt.notes)
    if weights is not None:
        load_weights(weights, policy=policy, strict=True)  # ValueError naming what differs
        notes.append(f"weights fine-tuned from the checkpoint: {weights}")
    if ckpt.defaulted:
        notes.append(f"config.json omits {', '.join(ckpt.defaulted)}: official defaults used")
    if report.unexpected:
        notes.append(
            f"{len(report.unexpected)} checkpoint tensors have no place in this model and are "
            f"ignored (as the reference ignores them): {', '.join(report.unexpected[:5])}"
        )
    source = files.hashes() if hash_files else {"checkpoint": str(files.weights_dir)}
    if weights is not None:
        source["fine_tuned_weights"] = (
            {"path": str(weights), "sha256": sha256_file(weights)} if hash_files else str(weights)
        )
    source["slots"] = {name: e.io.describe() for name, e in entries.items()}
    manifest = EngineManifest(
        preset=cfg.name,
        model=cfg.to_dict(),
        weights_source=str(weights or files.weights_dir),
        weights_sha256="",
        opset=0,
        layout="none",
        backend="torch",
        graphs={},
        embodiments=entries,
        tokenizer=tok.to_dict(),
        created_by=f"gigabrain-runtime {__version__}",
        source=source,
    )
    return EngineSource(
        cfg=cfg,
        policy=policy,
        world_model=None,
        manifest=manifest,
        tokenizer_file=tok.path,
        notes=tuple(notes),
    )


def export_source(
    source: EngineSource,
    out_dir: str | Path,
    *,
    layout: str = "fused",
    opset: int = DEFAULT_OPSET,
    verbose: bool = False,
    optimize: bool | None = None,
) -> EngineManifest:
    """Write ONNX graphs, ``weights.safetensors``, the tokenizer (if any) and ``manifest.json``
    into ``out_dir``. ``optimize``: run onnxscript's graph optimiser (default: for models under
    :data:`OPTIMIZE_MAX_PARAMS` parameters)."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout: unknown layout {layout!r} (known: {', '.join(LAYOUTS)})")
    cfg, policy, world_model = source.cfg, source.policy, source.world_model
    bad = non_finite(policy, "policy.") + (
        non_finite(world_model, "world_model.") if world_model is not None else []
    )
    if bad:
        raise ValueError(
            f"weights: {len(bad)} tensors hold NaN or Inf, e.g. {', '.join(bad[:3])}; an engine "
            f"made from them would publish NaN actions (source: {source.manifest.weights_source})"
        )
    if optimize is None:
        optimize = sum(p.numel() for p in policy.parameters()) < OPTIMIZE_MAX_PARAMS
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    weights_path = save_weights(
        out / "weights.safetensors", preset=cfg.name, policy=policy, world_model=world_model
    )
    tokenizer = dict(source.manifest.tokenizer)
    if source.tokenizer_file is not None:
        shutil.copyfile(source.tokenizer_file, out / source.tokenizer_file.name)
        tokenizer["file"] = source.tokenizer_file.name  # relative: the engine's own copy
    ex = example_inputs(cfg)
    traj = ["trajectory"] if cfg.variant.has("trajectory") else []
    graphs: dict[str, GraphSpec] = {}
    with torch.no_grad():
        for mode in graph_modes(cfg):
            if layout == "fused":
                names = policy_input_names(cfg, mode, with_noise=True)
                graphs[POLICY_GRAPH[mode]] = _export(
                    PolicyGraph(policy, names),
                    tuple(ex[n] for n in names),
                    names,
                    ["actions", *traj],
                    out / f"{POLICY_GRAPH[mode]}.onnx",
                    opset,
                    verbose,
                    optimize,
                )
                continue
            names = policy_input_names(cfg, mode, with_noise=False)
            kv_names = [f"{kind}_{i}" for i in range(cfg.decoder.depth) for kind in ("k", "v")]
            prefix_graph = PrefixGraph(policy, names)
            graphs[PREFIX_GRAPH[mode]] = _export(
                prefix_graph,
                tuple(ex[n] for n in names),
                names,
                [*traj, "prefix_valid", "num_valid", *kv_names],
                out / f"{PREFIX_GRAPH[mode]}.onnx",
                opset,
                verbose,
                optimize,
            )
            valid, num_valid, *kv = prefix_graph(*(ex[n] for n in names))[len(traj) :]
            step_name = f"{FLOW_STEP_GRAPH}_{mode.value}"
            graphs[step_name] = _export(
                FlowStepGraph(policy),
                (
                    ex["noise"],
                    torch.ones(1),
                    ex["prefix_actions"],
                    ex["prefix_weights"],
                    valid,
                    num_valid,
                    ex["embodiment_id"],
                    *kv,
                ),
                ["x", "time", *GUIDE_INPUTS, "prefix_valid", "num_valid", "embodiment_id"]
                + kv_names,
                ["x_next"],
                out / f"{step_name}.onnx",
                opset,
                verbose,
                optimize,
            )
        if world_model is not None:
            names = ["images", "image_mask", "state", "actions", "noise"]
            wm_args = (ex["images"], ex["image_mask"], ex["state"], ex["actions"], ex["wm_noise"])
            graphs[WORLD_MODEL_GRAPH] = _export(
                WorldModelGraph(world_model),
                wm_args,
                names,
                ["z_tokens", "value", "proprio"],
                out / f"{WORLD_MODEL_GRAPH}.onnx",
                opset,
                verbose,
                optimize,
            )
    manifest = replace(
        source.manifest,
        weights_sha256=sha256_file(weights_path),
        opset=opset,
        layout=layout,
        graphs=graphs,
        backend="onnxruntime",
        tokenizer=tokenizer,
        extra={**source.manifest.extra, "graph_optimized": optimize},
    )
    manifest.write(out)
    return manifest


def export_engine(
    cfg: ModelConfig,
    out_dir: str | Path,
    *,
    weights: str | Path | None = None,
    seed: int = 0,
    layout: str = "fused",
    embodiments: list[Embodiment] | None = None,
    opset: int = DEFAULT_OPSET,
    verbose: bool = False,
) -> EngineManifest:
    """Export a preset (random weights from ``seed``, or a file written by save_weights)."""
    source = preset_source(cfg, weights=weights, seed=seed, embodiments=embodiments)
    return export_source(source, out_dir, layout=layout, opset=opset, verbose=verbose)


def ensure_engine(
    cfg: ModelConfig,
    directory: str | Path,
    *,
    layout: str = "fused",
    seed: int = 0,
    log: Any = print,
) -> EngineManifest:
    """Reuse ``directory`` if it holds an engine of this preset, layout and random-init seed with
    intact graph files; otherwise export one there (the demo's first run)."""
    directory = Path(directory)
    try:
        manifest = EngineManifest.read(directory)
        fresh = (
            manifest.preset == cfg.name
            and manifest.config == cfg
            and manifest.layout == layout
            and manifest.weights_source == f"random-init(seed={seed})"
            and all(
                (directory / g.file).is_file() and sha256_file(directory / g.file) == g.sha256
                for g in manifest.graphs.values()
            )
        )
        if fresh:
            return manifest
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        pass
    log(f"exporting the {cfg.name} preset ({layout}) to {directory} (first run only) ...")
    return export_engine(cfg, directory, layout=layout, seed=seed)
