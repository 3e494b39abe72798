"""Export the policy (efficient and standard mode) and the world model to ONNX, batch 1, static.

Two layouts:

* ``fused`` (default): one graph per mode with the whole flow loop unrolled inside, so a chunk
  is a single ``run`` call (no per-step Python, no cache round trips through host memory).
* ``split``: a prefix graph per mode (returns the per-layer keys/values) plus a flow-step graph
  per mode that the backend calls ``num_flow_steps`` times. Useful for real-time chunking and
  to measure what the fused graph buys; see the README for the measured numbers.

The noise is a graph input, so two backends fed the same noise must produce the same chunk
(the parity tests rely on this).
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from dataclasses import replace
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
from gigabrain_runtime.model.policy import INDICATOR_POSITIVE, GigaBrainPolicy, Prefix
from gigabrain_runtime.model.tokenizer import ByteTokenizer
from gigabrain_runtime.model.weights import save_weights
from gigabrain_runtime.model.world_model import LatentWorldModel
from gigabrain_runtime.robots.embodiment import EMBODIMENTS, Embodiment

DEFAULT_OPSET = 20
LAYOUTS = ("fused", "split")


class PolicyGraph(nn.Module):
    def __init__(self, policy: GigaBrainPolicy, mode: Mode) -> None:
        super().__init__()
        self.policy = policy
        self.mode = mode

    def forward(
        self,
        images,
        image_mask,
        tokens,
        token_mask,
        state,
        embodiment_id,
        noise,
        wm_tokens=None,
        value=None,
    ):  # noqa: ANN001, ANN201 - traced signature
        return self.policy.sample_actions(
            images, image_mask, tokens, token_mask, state, embodiment_id, noise, wm_tokens, value
        )


class PrefixGraph(nn.Module):
    """-> trajectory, prefix_valid, num_valid, k_0, v_0, ..., k_{L-1}, v_{L-1}."""

    def __init__(self, policy: GigaBrainPolicy, mode: Mode) -> None:
        super().__init__()
        self.policy = policy
        self.mode = mode

    def forward(
        self,
        images,
        image_mask,
        tokens,
        token_mask,
        state,
        embodiment_id,
        wm_tokens=None,
        value=None,
    ):  # noqa: ANN001, ANN201
        b = images.shape[0]
        indicator = torch.full((b,), INDICATOR_POSITIVE, dtype=torch.long)
        x, valid = self.policy.embed_prefix(
            images,
            image_mask,
            tokens,
            token_mask,
            state,
            embodiment_id,
            indicator,
            wm_tokens,
            value,
        )
        prefix = self.policy.encode_prefix(x, valid)
        flat = [t for kv in prefix.cache for t in kv]
        return (prefix.trajectory, prefix.valid, prefix.num_valid, *flat)


class FlowStepGraph(nn.Module):
    """One Euler step: x_next = x + dt * v(x, t | prefix cache)."""

    def __init__(self, policy: GigaBrainPolicy) -> None:
        super().__init__()
        self.policy = policy
        self.dt = -1.0 / policy.cfg.action_expert.num_flow_steps

    def forward(self, x, time, prefix_valid, num_valid, embodiment_id, *kv):  # noqa: ANN001, ANN201
        cache = [(kv[2 * i], kv[2 * i + 1]) for i in range(len(kv) // 2)]
        prefix = Prefix(
            cache=cache, valid=prefix_valid, hidden=x, trajectory=x, num_valid=num_valid
        )
        return x + self.dt * self.policy.velocity(x, time, prefix, embodiment_id)


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
        "tokens": torch.randint(3, 259, (1, d.max_text_tokens), generator=g),
        "token_mask": token_mask,
        "state": torch.randn(1, cfg.state_dim, generator=g),
        "embodiment_id": torch.zeros(1, dtype=torch.long),
        "noise": torch.randn(1, a.horizon, a.action_dim, generator=g),
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


def preset_manifest(
    cfg: ModelConfig, *, seed: int = 0, embodiments: list[Embodiment] | None = None
) -> EngineManifest:
    """A manifest with no graphs: enough for the torch backend to run a preset in memory."""
    embodiments = (
        embodiments if embodiments is not None else [EMBODIMENTS.get(n) for n in EMBODIMENTS]
    )
    for emb in embodiments:
        if emb.embodiment_id >= cfg.action_expert.max_embodiments:
            raise ValueError(
                f"embodiment {emb.name}: embodiment_id={emb.embodiment_id} exceeds the model's "
                f"max_embodiments={cfg.action_expert.max_embodiments}"
            )
    tokenizer = ByteTokenizer(max_tokens=cfg.decoder.max_text_tokens)
    if cfg.decoder.vocab_size < tokenizer.min_vocab_size:
        raise ValueError(
            f"decoder.vocab_size={cfg.decoder.vocab_size} is below the byte tokenizer's "
            f"{tokenizer.min_vocab_size}"
        )
    return EngineManifest(
        preset=cfg.name,
        model=cfg.to_dict(),
        weights_source=f"random-init(seed={seed})",
        weights_sha256="",
        opset=0,
        layout="none",
        backend="torch",
        graphs={},
        embodiments={e.name: EmbodimentEntry.from_embodiment(e) for e in embodiments},
        tokenizer=tokenizer.to_dict(),
        created_by=f"gigabrain-runtime {__version__}",
        extra={"seed": seed},
    )


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
    """Write ONNX graphs, ``weights.safetensors`` and ``manifest.json`` into ``out_dir``."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout: unknown layout {layout!r} (known: {', '.join(LAYOUTS)})")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    base_manifest = preset_manifest(cfg, seed=seed, embodiments=embodiments)
    policy, world_model = build_models(cfg, weights=weights, seed=seed)
    weights_path = save_weights(
        out / "weights.safetensors", preset=cfg.name, policy=policy, world_model=world_model
    )
    ex = example_inputs(cfg)
    base = ["images", "image_mask", "tokens", "token_mask", "state", "embodiment_id"]
    wm_in = ["wm_tokens", "value"]
    graphs: dict[str, GraphSpec] = {}
    with torch.no_grad():
        for mode in Mode:
            extra = wm_in if mode is Mode.STANDARD else []
            if layout == "fused":
                names = [*base, "noise", *extra]
                graphs[POLICY_GRAPH[mode]] = _export(
                    PolicyGraph(policy, mode),
                    tuple(ex[n] for n in names),
                    names,
                    ["actions", "trajectory"],
                    out / f"{POLICY_GRAPH[mode]}.onnx",
                    opset,
                    verbose,
                )
            else:
                names = [*base, *extra]
                depth = cfg.decoder.depth
                kv_names = [f"{kind}_{i}" for i in range(depth) for kind in ("k", "v")]
                graphs[PREFIX_GRAPH[mode]] = _export(
                    PrefixGraph(policy, mode),
                    tuple(ex[n] for n in names),
                    names,
                    ["trajectory", "prefix_valid", "num_valid", *kv_names],
                    out / f"{PREFIX_GRAPH[mode]}.onnx",
                    opset,
                    verbose,
                )
                traj, valid, num_valid, *kv = PrefixGraph(policy, mode)(*(ex[n] for n in names))
                step_name = f"{FLOW_STEP_GRAPH}_{mode.value}"
                graphs[step_name] = _export(
                    FlowStepGraph(policy),
                    (ex["noise"], torch.ones(1), valid, num_valid, ex["embodiment_id"], *kv),
                    ["x", "time", "prefix_valid", "num_valid", "embodiment_id", *kv_names],
                    ["x_next"],
                    out / f"{step_name}.onnx",
                    opset,
                    verbose,
                )
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
        )
    manifest = replace(
        base_manifest,
        weights_source=str(weights) if weights is not None else f"random-init(seed={seed})",
        weights_sha256=sha256_file(weights_path),
        opset=opset,
        layout=layout,
        graphs=graphs,
        backend="onnxruntime",
    )
    manifest.write(out)
    return manifest


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
            and manifest.model == cfg.to_dict()
            and manifest.layout == layout
            and manifest.weights_source == f"random-init(seed={seed})"
            and all(
                (directory / g.file).is_file() and sha256_file(directory / g.file) == g.sha256
                for g in manifest.graphs.values()
            )
        )
        if fresh:
            return manifest
    except (FileNotFoundError, ValueError):
        pass
    log(f"exporting the {cfg.name} preset ({layout}) to {directory} (first run only) ...")
    return export_engine(cfg, directory, layout=layout, seed=seed)
