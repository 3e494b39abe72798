"""TensorRT backend and plan builder.

What was exercised: nothing in this file has run against a real TensorRT builder. The builder
libraries are served only from NVIDIA's own package index, which neither the development
machines nor the lent GPU machines can reach (../shared/FACTS.md). What *is* tested: the ONNX
graphs this consumes (exported, checked by onnx.checker, numerically matched against torch),
the manifest fields and the GPU/TensorRT-version guard, and the clean error when tensorrt is
absent. The code follows the TensorRT 10 Python API (explicit-batch networks, named I/O tensors,
``execute_async_v3``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gigabrain_runtime.inference.manifest import EngineManifest
from gigabrain_runtime.inference.preprocessing import (
    POLICY_GRAPH,
    WORLD_MODEL_GRAPH,
    Feeds,
    Preprocessor,
    run_policy,
    run_world_model,
)
from gigabrain_runtime.inference.types import (
    ActionChunk,
    ActionGuide,
    Mode,
    Observation,
    WorldPrediction,
)

PRECISIONS = ("fp16", "bf16", "fp8")


class TensorRTUnavailable(RuntimeError):
    """tensorrt (or a CUDA device) is not present on this machine."""


def import_tensorrt() -> Any:
    try:
        import tensorrt as trt  # type: ignore[import-not-found]
    except ImportError as exc:
        raise TensorRTUnavailable(
            "tensorrt is not installed: TensorRT plans can only be built and run on an NVIDIA "
            "machine with the tensorrt Python package (pip install tensorrt from NVIDIA's "
            "index). Use --backend onnxruntime or torch here."
        ) from exc
    return trt


def current_device() -> dict[str, Any]:
    """GPU name and compute capability through torch (present on the GPU machines)."""
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - torch is a dependency
        raise TensorRTUnavailable("torch is needed to query the CUDA device") from exc
    if not torch.cuda.is_available():
        raise TensorRTUnavailable("no CUDA device: TensorRT needs an NVIDIA GPU")
    major, minor = torch.cuda.get_device_capability()
    return {"gpu_name": torch.cuda.get_device_name(), "compute_capability": f"{major}.{minor}"}


def check_plan_compatible(
    manifest: EngineManifest, device: dict[str, Any], trt_version: str
) -> None:
    """Refuse plans built for another GPU or TensorRT version, saying what to rebuild."""
    info = manifest.tensorrt
    if not info:
        raise ValueError(
            "engine: no TensorRT plans in this engine; run "
            "`gigabrain-runtime build-engine DIR --precision fp16` on the target machine"
        )
    problems = []
    if info.get("compute_capability") != device["compute_capability"]:
        problems.append(
            f"built for {info.get('gpu_name')} (sm {info.get('compute_capability')}), this is "
            f"{device['gpu_name']} (sm {device['compute_capability']})"
        )
    if info.get("tensorrt_version") != trt_version:
        problems.append(
            f"built with TensorRT {info.get('tensorrt_version')}, this machine has {trt_version}"
        )
    if problems:
        raise ValueError(
            "engine: TensorRT plans do not fit this machine: "
            + "; ".join(problems)
            + f". Rebuild them here: gigabrain-runtime build-engine <engine dir> "
            f"--precision {info.get('precision', 'fp16')}"
        )


def build_plans(
    directory: str | Path, precision: str, workspace_gib: float = 8.0
) -> EngineManifest:
    """Build one TensorRT plan per fused ONNX graph and record the target in the manifest."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision: unknown {precision!r} (known: {', '.join(PRECISIONS)})")
    directory = Path(directory)
    manifest = EngineManifest.read(directory)
    if manifest.layout != "fused":
        raise ValueError("layout: build-engine needs an engine exported with --layout fused")
    trt = import_tensorrt()
    device = current_device()
    logger = trt.Logger(trt.Logger.WARNING)
    graphs = dict(manifest.graphs)
    for name, spec in manifest.graphs.items():
        builder = trt.Builder(logger)
        network = builder.create_network(0)
        parser = trt.OnnxParser(network, logger)
        if not parser.parse_from_file(str(directory / spec.file)):
            errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
            raise RuntimeError(f"TensorRT could not parse {spec.file}: {'; '.join(errors)}")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * (1 << 30)))
        flag = {
            "fp16": trt.BuilderFlag.FP16,
            "bf16": trt.BuilderFlag.BF16,
            "fp8": trt.BuilderFlag.FP8,
        }[precision]
        config.set_flag(flag)
        if precision == "fp8":
            # FP8 needs Q/DQ nodes in the graph to take effect; without them TensorRT keeps the
            # higher-precision kernels, so also allow fp16 fallback.
            config.set_flag(trt.BuilderFlag.FP16)
        plan = builder.build_serialized_network(network, config)
        if plan is None:
            raise RuntimeError(f"TensorRT failed to build a plan for {spec.file}")
        plan_file = f"{name}.{precision}.plan"
        (directory / plan_file).write_bytes(bytes(plan))
        graphs[name] = type(spec)(
            file=spec.file,
            sha256=spec.sha256,
            inputs=spec.inputs,
            outputs=spec.outputs,
            plan=plan_file,
        )
    from dataclasses import replace

    updated = replace(
        manifest,
        graphs=graphs,
        backend="tensorrt",
        tensorrt={**device, "tensorrt_version": trt.__version__, "precision": precision},
    )
    updated.write(directory)
    return updated


class TensorRTBackend:
    name = "tensorrt"

    def __init__(self, directory: str | Path, *, seed: int = 0) -> None:
        self.directory = Path(directory)
        self.manifest = EngineManifest.read(self.directory)
        self.manifest.verify(self.directory, graphs=False)
        info = self.manifest.tensorrt
        if not info:
            check_plan_compatible(self.manifest, {}, "")  # raises: no plans, how to build them
        try:
            trt = import_tensorrt()
            device = current_device()
        except TensorRTUnavailable as exc:
            raise TensorRTUnavailable(
                f"{exc} This engine's plans were built for {info.get('gpu_name')} (sm "
                f"{info.get('compute_capability')}) with TensorRT {info.get('tensorrt_version')}; "
                f"its ONNX graphs run here (vla: -p backend:=onnxruntime)"
            ) from None
        import torch

        check_plan_compatible(self.manifest, device, trt.__version__)
        self._pre = Preprocessor(self.manifest, self.directory)
        self._rng = np.random.default_rng(seed)
        self._torch = torch
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self._engines: dict[str, tuple[Any, Any]] = {}
        for name, spec in self.manifest.graphs.items():
            if spec.plan is None:
                raise ValueError(f"engine: graph {name} has no TensorRT plan; run build-engine")
            engine = runtime.deserialize_cuda_engine((self.directory / spec.plan).read_bytes())
            self._engines[name] = (engine, engine.create_execution_context())
        self._stream = torch.cuda.Stream()

    def _run(self, name: str, feeds: Feeds) -> dict[str, np.ndarray]:
        torch = self._torch
        engine, context = self._engines[name]
        spec = self.manifest.graphs[name]
        keep = []
        for t in spec.inputs:
            tensor = torch.from_numpy(np.ascontiguousarray(feeds[t.name])).cuda()
            keep.append(tensor)
            context.set_tensor_address(t.name, tensor.data_ptr())
        outputs = []
        for t in spec.outputs:
            out = torch.empty(t.shape, dtype=getattr(torch, t.dtype), device="cuda")
            outputs.append(out)
            context.set_tensor_address(t.name, out.data_ptr())
        context.execute_async_v3(self._stream.cuda_stream)
        self._stream.synchronize()
        return {t.name: o.cpu().numpy() for t, o in zip(spec.outputs, outputs, strict=True)}

    def infer(
        self,
        observation: Observation,
        *,
        mode: Mode | str = Mode.EFFICIENT,
        noise: np.ndarray | None = None,
        trace: bool = False,
        guide: ActionGuide | None = None,
    ) -> ActionChunk:
        def policy(m: Mode, feeds: Feeds) -> tuple[np.ndarray, np.ndarray | None]:
            out = self._run(POLICY_GRAPH[m], feeds)
            return out["actions"], out.get("trajectory")

        return run_policy(
            self._pre, self._rng, observation, mode, noise, policy, trace=trace, guide=guide
        )

    def predict_world(
        self, observation: Observation, actions: np.ndarray, *, noise: np.ndarray | None = None
    ) -> WorldPrediction:
        def world(feeds: Feeds) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            out = self._run(WORLD_MODEL_GRAPH, feeds)
            return out["z_tokens"], out["value"], out["proprio"]

        return run_world_model(self._pre, self._rng, observation, actions, noise, world)

    def close(self) -> None:
        self._engines.clear()
