"""Observation -> graph feeds and graph outputs -> ActionChunk, shared by every backend.

The input/output transform pair of an engine, as data plus this one class: the model variant
says how the state reaches the model (a token, or discretised into the prompt) and which
prompt format and tokenizer apply; each robot's :class:`EmbodimentEntry` says which embodiment
slot it uses, which camera feeds which slot, which joint fills which model dimension, which
dimensions are deltas and how they are normalised. For a GigaBrain-0 checkpoint this
reproduces the official pipeline step by step:

    state -> quantile-normalise -> 256 bins in the prompt -> SentencePiece ids (<bos>, pad 200)
    model output [H, 32] -> first n dims -> quantile-unnormalise -> + state on delta dims

All input validation happens here, before any backend runs, so a bad observation raises the
same ValueError (naming the field and the value) whichever backend is behind the interface.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gigabrain_runtime.inference.manifest import EmbodimentEntry, EngineManifest
from gigabrain_runtime.inference.prompt import build_prompt
from gigabrain_runtime.inference.types import (
    ActionChunk,
    ActionGuide,
    Mode,
    Observation,
    PolicyTrace,
    WorldPrediction,
)
from gigabrain_runtime.model.tokenizer import tokenizer_from_dict

# Graph names inside an engine directory.
POLICY_GRAPH = {Mode.EFFICIENT: "policy_efficient", Mode.STANDARD: "policy_standard"}
PREFIX_GRAPH = {Mode.EFFICIENT: "prefix_efficient", Mode.STANDARD: "prefix_standard"}
FLOW_STEP_GRAPH = "flow_step"
WORLD_MODEL_GRAPH = "world_model"

Feeds = dict[str, np.ndarray]


class InputError(ValueError):
    """An observation (or action chunk) the preprocessor refused before any model ran: bad
    input, as opposed to a failure inside the backend."""


@dataclass(frozen=True)
class PolicyInputs:
    """What the preprocessor made of one observation: the graph feeds and what the output
    transform needs back (the model-dimension state, raw and normalised) or a user wants to see
    (the prompt)."""

    feeds: Feeds
    entry: EmbodimentEntry
    state: np.ndarray  # float64 [n]: the model dimensions in robot units (constants included)
    state_normalized: np.ndarray  # float32 [n]
    prompt: str
    num_tokens: int


class Preprocessor:
    def __init__(self, manifest: EngineManifest, directory: str | Path | None = None) -> None:
        self.manifest = manifest
        self.cfg = manifest.config
        self.variant = self.cfg.variant
        self.tokenizer = tokenizer_from_dict(manifest.tokenizer, directory)
        self.tokenizer.check_vocabulary(self.cfg.decoder.vocab_size)
        if self.tokenizer.max_tokens != self.cfg.decoder.max_text_tokens:
            raise ValueError(
                f"tokenizer.max_tokens={self.tokenizer.max_tokens} disagrees with the model's "
                f"max_text_tokens={self.cfg.decoder.max_text_tokens}"
            )
        a = self.cfg.action_expert
        for name, entry in manifest.embodiments.items():
            if len(entry.camera_slots) > self.cfg.vision.max_cameras:
                raise ValueError(
                    f"embodiment {name}: {len(entry.camera_slots)} camera slots exceed the "
                    f"model's max_cameras={self.cfg.vision.max_cameras}"
                )
            if len(entry.dims) > self.cfg.state_dim:
                raise ValueError(
                    f"embodiment {name}: {len(entry.dims)} dimensions exceed the model's "
                    f"state_dim={self.cfg.state_dim}"
                )
            if entry.embodiment_id >= a.max_embodiments:
                raise ValueError(
                    f"embodiment {name}: slot {entry.embodiment_id} is beyond the model's "
                    f"{a.max_embodiments} embodiment slots (0..{a.max_embodiments - 1})"
                )
        self._token_cache: dict[str, tuple[np.ndarray, np.ndarray, int]] = {}
        # the policy graphs take real-time chunking's guide (prefix_actions, prefix_weights);
        # engines exported before it do not (a backend running the weights sets this True)
        policy_graphs = [
            g for name, g in manifest.graphs.items() if not name.startswith("world_model")
        ]
        self.guide_inputs = not policy_graphs or all(
            any(t.name == "prefix_weights" for t in g.inputs)
            for g in policy_graphs
            if any(t.name in ("noise", "x") for t in g.inputs)
        )

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
        for slot, cam in enumerate(entry.camera_slots):
            mask[0, slot] = True  # a slot without a robot camera sees a black frame
            if cam is None:
                continue
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
        return images, mask

    def model_state(self, state: np.ndarray, entry: EmbodimentEntry) -> np.ndarray:
        """Robot joint positions [dof] (robot order) -> float64 [n] in the model's dimension
        order, constants filled in. ValueError naming the joint for non-finite values."""
        state = np.asarray(state)
        dof = len(entry.joint_names)
        if state.shape != (dof,):
            raise ValueError(f"state: expected shape ({dof},), got {tuple(state.shape)}")
        if not np.issubdtype(state.dtype, np.number):
            raise ValueError(f"state: expected a numeric array, got dtype {state.dtype}")
        bad = ~np.isfinite(state)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"state: {state[i]} (non-finite) at joint {entry.joint_names[i]!r}")
        return entry.model_order(state)

    def model_actions(
        self, actions: np.ndarray, entry: EmbodimentEntry, state_normalized: np.ndarray
    ) -> np.ndarray:
        """Joint targets [H, dof] (robot order and units) -> the model's output [H, len(dims)]
        that :meth:`chunk` turns back into them: the state as the pipeline sees it subtracted
        on delta dimensions, normalised. What training targets and real-time chunking's guide
        are made of."""
        dims = entry.model_order(actions)
        delta = np.asarray(entry.delta_mask, dtype=bool)
        if delta.any():
            state_seen = entry.state_norm.unnormalize(state_normalized)
            dims = dims - np.where(delta, state_seen, 0.0)
        return entry.action_norm.normalize(dims)

    def _tokens(self, text: str) -> tuple[np.ndarray, np.ndarray, int]:
        cached = self._token_cache.get(text)
        if cached is None:
            ids, mask = self.tokenizer.encode(text)
            cached = (ids[None], mask[None], int(mask.sum()))
            if len(self._token_cache) > 64:
                self._token_cache.clear()
            self._token_cache[text] = cached
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
    def policy_inputs(
        self,
        obs: Observation,
        mode: Mode,
        rng: np.random.Generator,
        noise: np.ndarray | None = None,
        guide: ActionGuide | None = None,
    ) -> PolicyInputs:
        if not isinstance(obs, Observation):
            raise ValueError(f"observation: expected Observation, got {type(obs).__name__}")
        mode = Mode.parse(mode)
        if mode is Mode.STANDARD and not self.variant.has_world_model:
            raise ValueError(
                f"mode: standard needs a world model; this engine ({self.variant.name}) runs "
                "efficient only"
            )
        entry = self.manifest.embodiment(obs.embodiment)
        images, image_mask = self._images(obs, entry)
        state = self.model_state(obs.state, entry)
        state_normalized = entry.state_norm.normalize(state)
        if not isinstance(obs.instruction, str):
            raise ValueError(f"instruction: expected str, got {type(obs.instruction).__name__}")
        prompt = build_prompt(
            self.variant.prompt,
            obs.instruction,
            state_normalized if self.variant.state_input == "prompt" else None,
        )
        tokens, token_mask, num_tokens = self._tokens(prompt)
        a = self.cfg.action_expert
        feeds: Feeds = {
            "images": images,
            "image_mask": image_mask,
            "tokens": tokens,
            "token_mask": token_mask,
            "embodiment_id": np.array([entry.embodiment_id], dtype=np.int64),
            "noise": self._noise(noise, (1, a.horizon, a.action_dim), "noise", rng),
        }
        if self.variant.state_input == "token":
            padded = np.zeros((1, self.cfg.state_dim), dtype=np.float32)
            padded[0, : len(state_normalized)] = state_normalized
            feeds["state"] = padded
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
        if guide is not None and not self.guide_inputs:
            raise ValueError(
                "guide: this engine's graphs have no prefix_actions/prefix_weights inputs "
                "(exported before real-time chunking); re-export it to run execution rtc"
            )
        if self.guide_inputs:
            feeds["prefix_actions"], feeds["prefix_weights"] = self._guide_feeds(
                guide, entry, state_normalized
            )
        return PolicyInputs(
            feeds=feeds,
            entry=entry,
            state=state,
            state_normalized=state_normalized,
            prompt=prompt,
            num_tokens=num_tokens,
        )

    def _guide_feeds(
        self, guide: ActionGuide | None, entry: EmbodimentEntry, state_normalized: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The guide in the model's space: [1, H, A] normalised actions (the state subtracted
        on delta dimensions, as the model predicts them) and [1, H, A] weights, zero on every
        dimension that is not one of the robot's joints. No guide: zeros (unguided)."""
        a = self.cfg.action_expert
        prefix = np.zeros((1, a.horizon, a.action_dim), np.float32)
        weights = np.zeros((1, a.horizon, a.action_dim), np.float32)
        if guide is None:
            return prefix, weights
        dof = len(entry.joint_names)
        actions = np.asarray(guide.actions, dtype=np.float64)
        w = np.asarray(guide.weights, dtype=np.float64)
        if actions.shape != (a.horizon, dof):
            raise ValueError(
                f"guide.actions: expected shape ({a.horizon}, {dof}), got {actions.shape}"
            )
        if w.shape != (a.horizon,):
            raise ValueError(f"guide.weights: expected shape ({a.horizon},), got {w.shape}")
        if not (np.all(np.isfinite(actions)) and np.all(np.isfinite(w))):
            raise ValueError("guide: contains NaN or inf")
        if np.any(w < 0) or np.any(w > 1):
            raise ValueError(f"guide.weights: must be in [0, 1], got {w.min():g}..{w.max():g}")
        n = len(entry.dims)
        prefix[0, :, :n] = self.model_actions(actions, entry, state_normalized)
        weights[0, :, :n] = np.where(entry.robot_dims[None, :], w[:, None], 0.0)
        return prefix, weights

    def world_feeds(
        self,
        obs: Observation,
        actions: np.ndarray,
        rng: np.random.Generator,
        noise: np.ndarray | None = None,
    ) -> tuple[Feeds, EmbodimentEntry]:
        """``actions``: the chunk to be executed, [H, dof] in embodiment units."""
        if not self.variant.has_world_model:
            raise ValueError(f"world model: this engine ({self.variant.name}) has none")
        entry = self.manifest.embodiment(obs.embodiment)
        images, image_mask = self._images(obs, entry)
        wm = self.cfg.world_model
        padded = self.world_actions(actions, entry)
        state = self.model_state(obs.state, entry)
        padded_state = np.zeros((1, self.cfg.state_dim), dtype=np.float32)
        padded_state[0, : len(state)] = entry.state_norm.normalize(state)
        shape = (1, self.cfg.num_wm_tokens, wm.state_channels * wm.patch_size**2)
        return {
            "images": images,
            "image_mask": image_mask,
            "state": padded_state,
            "actions": padded,
            "noise": self._noise(noise, shape, "noise", rng),
        }, entry

    def world_actions(self, actions: np.ndarray, entry: EmbodimentEntry) -> np.ndarray:
        """A chunk [H, dof] in embodiment units -> the world graph's ``actions`` [1, H, A]:
        absolute targets in model order, normalised, padded (ValueError naming ``actions`` on a
        wrong shape or a non-finite value)."""
        a = self.cfg.action_expert
        acts = np.asarray(actions, dtype=np.float64)
        dof = len(entry.joint_names)
        if acts.shape != (a.horizon, dof):
            raise ValueError(f"actions: expected shape ({a.horizon}, {dof}), got {acts.shape}")
        if not np.all(np.isfinite(acts)):
            raise ValueError("actions: contains NaN or inf")
        index = {j: i for i, j in enumerate(entry.joint_names)}
        model_actions = np.stack(
            [
                acts[:, index[d]] if isinstance(d, str) else np.full(a.horizon, d)
                for d in entry.dims
            ],
            axis=1,
        )
        padded = np.zeros((1, a.horizon, a.action_dim), dtype=np.float32)
        padded[0, :, : len(entry.dims)] = entry.action_norm.normalize(model_actions)
        return padded

    # ---- outputs -------------------------------------------------------------------------------
    def chunk(
        self,
        raw_actions: np.ndarray,
        trajectory: np.ndarray | None,
        inputs: PolicyInputs,
        mode: Mode,
        value: float | None,
        inference_ms: float,
        *,
        trace: bool = False,
    ) -> ActionChunk:
        """The model's normalised output [.., H, A] -> joint targets [H, dof] in robot units:
        the robot's dimensions un-normalised, the current state added on delta dimensions
        (the state as the pipeline sees it: un-normalised from its normalised form), then
        each joint picked from its dimension."""
        entry = inputs.entry
        n = len(entry.dims)
        raw = np.asarray(raw_actions, dtype=np.float32)
        raw = raw.reshape(raw.shape[-2], raw.shape[-1])
        unnormalized = entry.action_norm.unnormalize(raw[:, :n])
        final = unnormalized
        delta = np.asarray(entry.delta_mask, dtype=bool)
        if delta.any():
            state_seen = entry.state_norm.unnormalize(inputs.state_normalized)
            final = unnormalized + np.where(delta, state_seen, 0).astype(unnormalized.dtype)
        index = [entry.dims.index(j) for j in entry.joint_names]
        actions = np.asarray(final[:, index], dtype=np.float64)
        points = _trajectory_points(trajectory)
        return ActionChunk(
            actions=actions,
            joint_names=entry.joint_names,
            trajectory=points,
            mode=mode,
            value=value,
            inference_ms=inference_ms,
            prompt=inputs.prompt,
            num_tokens=inputs.num_tokens,
            trace=(
                PolicyTrace(
                    images=inputs.feeds["images"][0],
                    image_mask=inputs.feeds["image_mask"][0],
                    state_normalized=inputs.state_normalized,
                    prompt=inputs.prompt,
                    token_ids=inputs.feeds["tokens"][0],
                    attention_mask=inputs.feeds["token_mask"][0],
                    actions_normalized=raw,
                    actions_unnormalized=np.asarray(unnormalized, dtype=np.float32),
                    final_actions=np.asarray(final, dtype=np.float32),
                )
                if trace
                else None
            ),
        )

    def world(
        self,
        z: np.ndarray,
        value: np.ndarray,
        proprio: np.ndarray,
        entry: EmbodimentEntry,
        inference_ms: float,
    ) -> WorldPrediction:
        n = len(entry.dims)
        p = entry.state_norm.unnormalize(np.asarray(proprio, dtype=np.float32).reshape(-1)[:n])
        index = [entry.dims.index(j) for j in entry.joint_names]
        return WorldPrediction(
            z_tokens=np.asarray(z, dtype=np.float32).reshape(z.shape[-2], z.shape[-1]),
            value=float(np.asarray(value).reshape(-1)[0]),
            proprio=np.asarray(p, dtype=np.float64)[index],
            inference_ms=inference_ms,
        )


def still_chunk(state: np.ndarray, horizon: int) -> np.ndarray:
    """The arm holding still for a chunk: ``state`` repeated, [horizon, dof]. What the world
    model is asked about when its prediction conditions the policy - in training, in the vla's
    loop and in the direct evaluation alike (a planned chunk would hand the policy its own
    actions back through z)."""
    return np.tile(np.asarray(state, dtype=np.float64), (horizon, 1))


def _trajectory_points(trajectory: np.ndarray | None) -> np.ndarray:
    """Trajectory head output [.., steps, 2 or 4] -> float32 [points, 2] (u, v) points; a 4-dim
    head (left and right gripper) gives the left track, then the right one."""
    if trajectory is None:
        return np.zeros((0, 2), dtype=np.float32)
    t = np.asarray(trajectory, dtype=np.float32)
    t = t.reshape(t.shape[-2], t.shape[-1])
    k = t.shape[-1] // 2
    return t.reshape(t.shape[0], k, 2).transpose(1, 0, 2).reshape(-1, 2)


PolicyRun = Callable[[Mode, Feeds], tuple[np.ndarray, np.ndarray | None]]
WorldRun = Callable[[Feeds], tuple[np.ndarray, np.ndarray, np.ndarray]]


def run_policy(
    pre: Preprocessor,
    rng: np.random.Generator,
    observation: Observation,
    mode: Mode | str,
    noise: np.ndarray | None,
    run: PolicyRun,
    *,
    trace: bool = False,
    guide: ActionGuide | None = None,
) -> ActionChunk:
    """The part of ``Backend.infer`` every backend shares: validate and build the feeds, time
    the backend's ``run(mode, feeds) -> (raw actions, trajectory or None)``, map back."""
    try:
        mode = Mode.parse(mode)
        inputs = pre.policy_inputs(observation, mode, rng, noise, guide)
    except InputError:
        raise
    except ValueError as exc:
        raise InputError(str(exc)) from None
    start = time.perf_counter()
    actions, trajectory = run(mode, inputs.feeds)
    ms = (time.perf_counter() - start) * 1e3
    value = float(inputs.feeds["value"][0]) if mode is Mode.STANDARD else None
    return pre.chunk(actions, trajectory, inputs, mode, value, ms, trace=trace)


def run_world_model(
    pre: Preprocessor,
    rng: np.random.Generator,
    observation: Observation,
    actions: np.ndarray,
    noise: np.ndarray | None,
    run: WorldRun,
) -> WorldPrediction:
    """The shared part of ``Backend.predict_world``."""
    try:
        feeds, entry = pre.world_feeds(observation, actions, rng, noise)
    except InputError:
        raise
    except ValueError as exc:
        raise InputError(str(exc)) from None
    start = time.perf_counter()
    z, value, proprio = run(feeds)
    return pre.world(z, value, proprio, entry, (time.perf_counter() - start) * 1e3)
