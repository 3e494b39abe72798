"""PyTorch backend: eager on any device; torch.compile with CUDA graphs where CUDA exists."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gigabrain_runtime.inference.manifest import EngineManifest
from gigabrain_runtime.inference.preprocessing import (
    Feeds,
    Preprocessor,
    run_policy,
    run_world_model,
)
from gigabrain_runtime.inference.types import ActionChunk, Mode, Observation, WorldPrediction


class TorchBackend:
    name = "torch"

    def __init__(
        self,
        manifest: EngineManifest,
        *,
        weights: str | Path | None = None,
        device: str = "cpu",
        dtype: str = "float32",
        compile: bool | None = None,
        seed: int = 0,
    ) -> None:
        import torch

        from gigabrain_runtime.model.build import build_models

        self.manifest = manifest
        self._torch = torch
        self._pre = Preprocessor(manifest)
        self._rng = np.random.default_rng(seed)
        self.device = torch.device(device)
        self.dtype = getattr(torch, dtype)
        model_seed = int(manifest.extra.get("seed", 0))
        self.policy, self.world_model = build_models(
            manifest.config, weights=weights, seed=model_seed, device=self.device, dtype=self.dtype
        )
        self._sample = self.policy.sample_actions
        self._predict = self.world_model.predict
        use_compile = compile if compile is not None else self.device.type == "cuda"
        if use_compile:
            # CUDA graphs capture the whole static-shape call: prefix + every flow step.
            mode = "reduce-overhead" if self.device.type == "cuda" else "default"
            self._sample = torch.compile(self.policy.sample_actions, mode=mode)
            self._predict = torch.compile(self.world_model.predict, mode=mode)

    @classmethod
    def from_engine(cls, directory: str | Path, **kwargs: object) -> TorchBackend:
        directory = Path(directory)
        manifest = EngineManifest.read(directory)
        return cls(manifest, weights=directory / "weights.safetensors", **kwargs)  # type: ignore[arg-type]

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

    def _policy(self, mode: Mode, feeds: Feeds) -> tuple[np.ndarray, np.ndarray]:
        x = self._tensors(feeds)
        with self._torch.inference_mode():
            actions, trajectory = self._sample(
                x["images"],
                x["image_mask"],
                x["tokens"],
                x["token_mask"],
                x["state"],
                x["embodiment_id"],
                x["noise"],
                x.get("wm_tokens"),
                x.get("value"),
            )
            return actions.float().cpu().numpy(), trajectory.float().cpu().numpy()

    def _world(self, feeds: Feeds) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
    ) -> ActionChunk:
        return run_policy(self._pre, self._rng, observation, mode, noise, self._policy)

    def predict_world(
        self, observation: Observation, actions: np.ndarray, *, noise: np.ndarray | None = None
    ) -> WorldPrediction:
        return run_world_model(self._pre, self._rng, observation, actions, noise, self._world)

    def close(self) -> None:
        self._sync()
