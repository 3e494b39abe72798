"""PyTorch backend: eager on any device; torch.compile with CUDA graphs where CUDA exists."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from gigabrain_runtime.inference.manifest import WEIGHTS_NAME, EngineManifest
from gigabrain_runtime.inference.preprocessing import (
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


class TorchBackend:
    name = "torch"

    def __init__(
        self,
        manifest: EngineManifest,
        *,
        weights: str | Path | None = None,
        directory: str | Path | None = None,
        models: tuple[Any, Any] | None = None,
        device: str = "cpu",
        dtype: str = "float32",
        compile: bool | None = None,
        compile_mode: str | None = None,
        fuse: bool = True,
        seed: int = 0,
    ) -> None:
        """``models``: an already built (policy, world model or None) pair, e.g. a checkpoint
        loaded in memory; otherwise they are built from ``weights`` (or the manifest's
        random-init seed). ``directory``: the engine, for files the manifest names (tokenizer).
        ``fuse``: each attention's q/k/v and each GeGLU's gate/up projections as one matmul
        (the same outputs to float rounding; model/layers.py ``fuse_projections``).
        ``compile`` (default: on CUDA only) wraps the whole chunk - prefix and every flow step -
        and the world model's step in ``torch.compile`` with ``compile_mode`` (default
        "reduce-overhead" on CUDA: CUDA graphs capture the static-shape call; "default" on
        the CPU: inductor's C++ kernels)."""
        import torch

        from gigabrain_runtime.model.build import build_models
        from gigabrain_runtime.model.layers import fuse_projections

        self.manifest = manifest
        self._torch = torch
        self._pre = Preprocessor(manifest, directory)
        self._pre.guide_inputs = True  # the weights run here, whatever the exported graphs take
        self._rng = np.random.default_rng(seed)
        self.device = torch.device(device)
        self.dtype = getattr(torch, dtype)
        if models is None:
            model_seed = int(manifest.extra.get("seed", 0))
            models = build_models(
                manifest.config,
                weights=weights,
                seed=model_seed,
                device=self.device,
                dtype=self.dtype,
            )
        policy, world_model = models
        self.policy = policy.to(device=self.device, dtype=self.dtype).eval()
        self.world_model = (
            world_model.to(device=self.device, dtype=self.dtype).eval()
            if world_model is not None
            else None
        )
        if fuse:
            fuse_projections(self.policy)
        self._sample = self.policy.sample_from_feeds
        self._predict = self.world_model.predict if self.world_model is not None else None
        use_compile = compile if compile is not None else self.device.type == "cuda"
        if use_compile:
            # CUDA graphs capture the whole static-shape call: prefix + every flow step.
            mode = compile_mode or ("reduce-overhead" if self.device.type == "cuda" else "default")
            self._sample = torch.compile(self.policy.sample_from_feeds, mode=mode)
            if self.world_model is not None:
                self._predict = torch.compile(self.world_model.predict, mode=mode)

    @classmethod
    def from_engine(cls, directory: str | Path, **kwargs: object) -> TorchBackend:
        directory = Path(directory)
        manifest = EngineManifest.read(directory)
        manifest.verify(directory, graphs=False, weights=True)  # torch runs the weights file
        return cls(
            manifest,
            weights=directory / WEIGHTS_NAME,
            directory=directory,
            **kwargs,  # type: ignore[arg-type]
        )

    @classmethod
    def from_source(cls, source: Any, **kwargs: object) -> TorchBackend:
        """Run an :class:`~gigabrain_runtime.inference.export.EngineSource` (a preset or a
        checkpoint directory) in memory, without exporting it."""
        return cls(
            source.manifest,
            models=(source.policy, source.world_model),
            **kwargs,  # type: ignore[arg-type]
        )

    def _tensors(self, feeds: dict[str, np.ndarray]) -> dict[str, object]:
        t = self._torch
        out = {}
        for k, v in feeds.items():
            tensor = t.from_numpy(np.ascontiguousarray(v)).to(self.device)
            if tensor.is_floating_point():
                tensor = tensor.to(self.dtype)
            out[k] = tensor
        return out

    def _sync(self) -> None:
        if self.device.type == "cuda":
            self._torch.cuda.synchronize()

    def _policy(self, mode: Mode, feeds: Feeds) -> tuple[np.ndarray, np.ndarray | None]:
        x = self._tensors(feeds)
        with self._torch.inference_mode():
            actions, trajectory = self._sample(x)
            traj = trajectory.float().cpu().numpy() if trajectory is not None else None
            return actions.float().cpu().numpy(), traj

    def _world(self, feeds: Feeds) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._predict is None:
            raise ValueError(f"world model: this engine ({self.manifest.preset}) has none")
        x = self._tensors(feeds)
        with self._torch.inference_mode():
            z, value, proprio = self._predict(
                x["images"], x["image_mask"], x["state"], x["actions"], x["noise"]
            )
            return (
                z.float().cpu().numpy(),
                value.float().cpu().numpy(),
                proprio.float().cpu().numpy(),
            )

    def infer(
        self,
        observation: Observation,
        *,
        mode: Mode | str = Mode.EFFICIENT,
        noise: np.ndarray | None = None,
        trace: bool = False,
        guide: ActionGuide | None = None,
    ) -> ActionChunk:
        return run_policy(
            self._pre, self._rng, observation, mode, noise, self._policy, trace=trace, guide=guide
        )

    def phase_times(
        self, observation: Observation, *, mode: Mode | str = Mode.EFFICIENT
    ) -> dict[str, float]:
        """One chunk, eager, timed phase by phase (ms, the device synchronised at each
        boundary): "embed" (the vision encoder and the other prefix embeddings), "prefix" (the
        decoder over the prefix, filling the KV cache), "flow 0" ... (each flow step)."""
        times: dict[str, float] = {}

        def run(mode: Mode, feeds: Feeds) -> tuple[np.ndarray, np.ndarray | None]:
            x = self._tensors(feeds)
            self._sync()
            last = time.perf_counter()

            def mark(name: str) -> None:
                nonlocal last
                self._sync()
                now = time.perf_counter()
                times[name] = (now - last) * 1e3
                last = now

            with self._torch.inference_mode():
                actions, traj = self.policy.sample_from_feeds(x, mark=mark)
            return (
                actions.float().cpu().numpy(),
                None if traj is None else traj.float().cpu().numpy(),
            )

        run_policy(self._pre, self._rng, observation, mode, None, run)
        return times

    def predict_world(
        self, observation: Observation, actions: np.ndarray, *, noise: np.ndarray | None = None
    ) -> WorldPrediction:
        return run_world_model(self._pre, self._rng, observation, actions, noise, self._world)

    def close(self) -> None:
        self._sync()
