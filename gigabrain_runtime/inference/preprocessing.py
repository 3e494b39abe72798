"""Observation -> graph feeds and graph outputs -> ActionChunk, shared by every backend.

All input validation happens here, before any backend runs, so a bad observation raises the
same ValueError (naming the field and the value) whichever backend is behind the interface.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from gigabrain_runtime.inference.manifest import EmbodimentEntry, EngineManifest
from gigabrain_runtime.inference.types import ActionChunk, Mode, Observation, WorldPrediction
from gigabrain_runtime.model.tokenizer import tokenizer_from_dict

# Graph names inside an engine directory.
POLICY_GRAPH = {Mode.EFFICIENT: "policy_efficient", Mode.STANDARD: "policy_standard"}
PREFIX_GRAPH = {Mode.EFFICIENT: "prefix_efficient", Mode.STANDARD: "prefix_standard"}
FLOW_STEP_GRAPH = "flow_step"
WORLD_MODEL_GRAPH = "world_model"

Feeds = dict[str, np.ndarray]


class Preprocessor:
    def __init__(self, manifest: EngineManifest) -> None:
        self.manifest = manifest
        self.cfg = manifest.config
        self.tokenizer = tokenizer_from_dict(manifest.tokenizer)
        for name, entry in manifest.embodiments.items():
            if len(entry.cameras) > self.cfg.vision.max_cameras:
                raise ValueError(
                    f"embodiment {name}: {len(entry.cameras)} cameras exceed the model's "
                    f"max_cameras={self.cfg.vision.max_cameras}"
                )
            if len(entry.joint_names) > self.cfg.state_dim:
                raise ValueError(
                    f"embodiment {name}: {len(entry.joint_names)} joints exceed the model's "
                    f"state_dim={self.cfg.state_dim}"
                )
        self._token_cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    # ---- validation helpers --------------------------------------------------------------------
    def _images(self, obs: Observation, entry: EmbodimentEntry) -> tuple[np.ndarray, np.ndarray]:
        s = self.cfg.vision.image_size
        slots = self.cfg.vision.max_cameras
        if not hasattr(obs.images, "keys"):
            raise ValueError(
                f"images: expected a mapping camera name -> array, got {type(obs.images).__name__}"
            )
        extra = sorted(set(obs.images) - set(entry.cameras))
        if extra:
            raise ValueError(
                f"images: unknown cameras {extra} (expected: {', '.join(entry.cameras)})"
            )
        images = np.zeros((1, slots, s, s, 3), dtype=np.uint8)
        mask = np.zeros((1, slots), dtype=bool)
        for slot, cam in enumerate(entry.cameras):
            if cam not in obs.images:
                raise ValueError(f"images[{cam!r}]: missing (expected: {', '.join(entry.cameras)})")
            img = obs.images[cam]
            if not isinstance(img, np.ndarray):
                raise ValueError(f"images[{cam!r}]: expected numpy array, got {type(img).__name__}")
            if img.dtype != np.uint8:
                raise ValueError(f"images[{cam!r}]: expected dtype uint8, got {img.dtype}")
            if img.shape != (s, s, 3):
                raise ValueError(
                    f"images[{cam!r}]: expected shape ({s}, {s}, 3), got {tuple(img.shape)}"
                )
            images[0, slot] = img
            mask[0, slot] = True
        return images, mask

    def _state(self, obs: Observation, entry: EmbodimentEntry) -> np.ndarray:
        state = np.asarray(obs.state)
        dof = len(entry.joint_names)
        if state.shape != (dof,):
            raise ValueError(f"state: expected shape ({dof},), got {tuple(state.shape)}")
        if not np.issubdtype(state.dtype, np.number):
            raise ValueError(f"state: expected a numeric array, got dtype {state.dtype}")
        bad = ~np.isfinite(state)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"state: {state[i]} (non-finite) at joint {entry.joint_names[i]!r}")
        norm = entry.state_norm
        out = np.zeros((1, self.cfg.state_dim), dtype=np.float32)
        out[0, :dof] = (state - np.asarray(norm.mean)) / np.asarray(norm.std)
        return out

    def _tokens(self, instruction: str) -> tuple[np.ndarray, np.ndarray]:
        if not isinstance(instruction, str):
            raise ValueError(f"instruction: expected str, got {type(instruction).__name__}")
        cached = self._token_cache.get(instruction)
        if cached is None:
            ids, mask = self.tokenizer.encode(instruction)
            cached = (ids[None], mask[None])
            if len(self._token_cache) > 64:
                self._token_cache.clear()
            self._token_cache[instruction] = cached
        return cached

    def _noise(
        self, noise: np.ndarray | None, shape: tuple[int, ...], field: str, rng: np.random.Generator
    ) -> np.ndarray:
        if noise is None:
            return rng.standard_normal(shape, dtype=np.float32)
        arr = np.asarray(noise, dtype=np.float32)
        if arr.shape != shape[1:] and arr.shape != shape:
            raise ValueError(f"{field}: expected shape {shape[1:]}, got {tuple(arr.shape)}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{field}: contains NaN or inf")
        return arr.reshape(shape)

    # ---- feeds ---------------------------------------------------------------------------------
    def policy_feeds(
        self,
        obs: Observation,
        mode: Mode,
        rng: np.random.Generator,
        noise: np.ndarray | None = None,
    ) -> tuple[Feeds, EmbodimentEntry]:
        if not isinstance(obs, Observation):
            raise ValueError(f"observation: expected Observation, got {type(obs).__name__}")
        mode = Mode.parse(mode)
        entry = self.manifest.embodiment(obs.embodiment)
        images, image_mask = self._images(obs, entry)
        tokens, token_mask = self._tokens(obs.instruction)
        a = self.cfg.action_expert
        feeds: Feeds = {
            "images": images,
            "image_mask": image_mask,
            "tokens": tokens,
            "token_mask": token_mask,
            "state": self._state(obs, entry),
            "embodiment_id": np.array([entry.embodiment_id], dtype=np.int64),
            "noise": self._noise(noise, (1, a.horizon, a.action_dim), "noise", rng),
        }
        if mode is Mode.STANDARD:
            world = obs.world
            if world is None:
                raise ValueError("world: standard mode needs the world model's prediction (z)")
            z = np.asarray(world.z_tokens, dtype=np.float32)
            expected = (self.cfg.num_wm_tokens, self.cfg.world_model.z_token_dim)
            if z.shape != expected:
                raise ValueError(f"world.z_tokens: expected shape {expected}, got {z.shape}")
            if not np.all(np.isfinite(z)):
                raise ValueError("world.z_tokens: contains NaN or inf")
            if not np.isfinite(world.value):
                raise ValueError(f"world.value: {world.value} is not finite")
            feeds["wm_tokens"] = z[None]
            feeds["value"] = np.array([world.value], dtype=np.float32)
        return feeds, entry

    def world_feeds(
        self,
        obs: Observation,
        actions: np.ndarray,
        rng: np.random.Generator,
        noise: np.ndarray | None = None,
    ) -> tuple[Feeds, EmbodimentEntry]:
        """``actions``: the chunk to be executed, [H, dof] in embodiment units."""
        entry = self.manifest.embodiment(obs.embodiment)
        images, image_mask = self._images(obs, entry)
        a, wm = self.cfg.action_expert, self.cfg.world_model
        dof = len(entry.joint_names)
        acts = np.asarray(actions, dtype=np.float64)
        if acts.shape != (a.horizon, dof):
            raise ValueError(f"actions: expected shape ({a.horizon}, {dof}), got {acts.shape}")
        if not np.all(np.isfinite(acts)):
            raise ValueError("actions: contains NaN or inf")
        norm = entry.action_norm
        padded = np.zeros((1, a.horizon, a.action_dim), dtype=np.float32)
        padded[0, :, :dof] = (acts - np.asarray(norm.mean)) / np.asarray(norm.std)
        shape = (1, self.cfg.num_wm_tokens, wm.state_channels * wm.patch_size**2)
        return {
            "images": images,
            "image_mask": image_mask,
            "state": self._state(obs, entry),
            "actions": padded,
            "noise": self._noise(noise, shape, "noise", rng),
        }, entry

    # ---- outputs -------------------------------------------------------------------------------
    @staticmethod
    def chunk(
        raw_actions: np.ndarray,
        trajectory: np.ndarray,
        entry: EmbodimentEntry,
        mode: Mode,
        value: float | None,
        inference_ms: float,
    ) -> ActionChunk:
        dof = len(entry.joint_names)
        norm = entry.action_norm
        actions = raw_actions.reshape(raw_actions.shape[-2], raw_actions.shape[-1])[:, :dof]
        actions = actions.astype(np.float64) * np.asarray(norm.std) + np.asarray(norm.mean)
        return ActionChunk(
            actions=actions,
            joint_names=entry.joint_names,
            trajectory=np.asarray(trajectory, dtype=np.float32).reshape(-1, 2),
            mode=mode,
            value=value,
            inference_ms=inference_ms,
        )

    @staticmethod
    def world(
        z: np.ndarray,
        value: np.ndarray,
        proprio: np.ndarray,
        entry: EmbodimentEntry,
        inference_ms: float,
    ) -> WorldPrediction:
        dof = len(entry.joint_names)
        norm = entry.state_norm
        p = np.asarray(proprio, dtype=np.float64).reshape(-1)[:dof]
        return WorldPrediction(
            z_tokens=np.asarray(z, dtype=np.float32).reshape(z.shape[-2], z.shape[-1]),
            value=float(np.asarray(value).reshape(-1)[0]),
            proprio=p * np.asarray(norm.std) + np.asarray(norm.mean),
            inference_ms=inference_ms,
        )


PolicyRun = Callable[[Mode, Feeds], tuple[np.ndarray, np.ndarray]]
WorldRun = Callable[[Feeds], tuple[np.ndarray, np.ndarray, np.ndarray]]


def run_policy(
    pre: Preprocessor,
    rng: np.random.Generator,
    observation: Observation,
    mode: Mode | str,
    noise: np.ndarray | None,
    run: PolicyRun,
) -> ActionChunk:
    """The part of ``Backend.infer`` every backend shares: validate and build the feeds, time
    the backend's ``run(mode, feeds) -> (raw actions, trajectory)``, denormalise."""
    mode = Mode.parse(mode)
    feeds, entry = pre.policy_feeds(observation, mode, rng, noise)
    start = time.perf_counter()
    actions, trajectory = run(mode, feeds)
    ms = (time.perf_counter() - start) * 1e3
    value = float(feeds["value"][0]) if mode is Mode.STANDARD else None
    return pre.chunk(actions, trajectory, entry, mode, value, ms)


def run_world_model(
    pre: Preprocessor,
    rng: np.random.Generator,
    observation: Observation,
    actions: np.ndarray,
    noise: np.ndarray | None,
    run: WorldRun,
) -> WorldPrediction:
    """The shared part of ``Backend.predict_world``."""
    feeds, entry = pre.world_feeds(observation, actions, rng, noise)
    start = time.perf_counter()
    z, value, proprio = run(feeds)
    return pre.world(z, value, proprio, entry, (time.perf_counter() - start) * 1e3)
