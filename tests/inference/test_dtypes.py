"""The torch backend in the half-precision dtypes a GPU runs (bench and device checks use them)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from gigabrain_runtime.bench import synthetic_observation
from gigabrain_runtime.inference.export import preset_manifest
from gigabrain_runtime.inference.torch_backend import TorchBackend
from gigabrain_runtime.inference.types import Mode


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_every_mode_runs_in_half_precision_and_stays_near_float32(tiny_cfg, dtype):
    manifest = preset_manifest(tiny_cfg)
    full = TorchBackend(manifest, dtype="float32", compile=False)
    half = TorchBackend(manifest, dtype=dtype, compile=False)
    obs = synthetic_observation(full, "piper")
    noise = np.random.default_rng(0).standard_normal((50, 32)).astype(np.float32)
    want = full.infer(obs, noise=noise).actions
    got = half.infer(obs, noise=noise)
    assert np.all(np.isfinite(got.actions))
    # same weights, same noise: half precision moves the chunk by a small fraction of its range
    spread = want.max() - want.min()
    assert np.abs(got.actions - want).max() < 0.1 * spread
    world = half.predict_world(obs, got.actions)
    standard = half.infer(dataclasses.replace(obs, world=world), mode=Mode.STANDARD)
    assert np.all(np.isfinite(standard.actions))
