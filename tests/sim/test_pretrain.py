"""Privileged perception pretraining: scenes with their ground truth, and an encoder that the
policy's training starts from (only the vision weights change)."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from gigabrain_runtime.model.build import build_models
from gigabrain_runtime.model.presets import get_preset
from gigabrain_runtime.robots.embodiment import get_embodiment
from gigabrain_runtime.sim.pretrain import TARGETS, pretrain_vision, render_scenes
from gigabrain_runtime.sim.simulator import Simulator


def small_cfg():
    cfg = get_preset("tiny-2cam")
    return dataclasses.replace(cfg, vision=dataclasses.replace(cfg.vision, image_size=64))


def test_scenes_carry_the_objects_and_the_gripper_where_the_simulator_has_them():
    scenes = render_scenes("piper", "cam_high", [11, 12, 13], 3, 64, progress=False)
    assert scenes.images.shape == (9, 64, 64, 3) and scenes.images.dtype == np.uint8
    assert scenes.targets.shape == (9, len(TARGETS))
    assert list(scenes.episode) == [11] * 3 + [12] * 3 + [13] * 3
    sim = Simulator(get_embodiment("piper"), image_size=64)
    try:
        sim.start_episode(12)
        bowl = sim.body_position("bowl")
    finally:
        sim.close()
    # the bowl never moves; the moments differ, so the gripper is somewhere else each time
    np.testing.assert_allclose(scenes.targets[3:6, 3:5], np.tile(bowl[:2], (3, 1)), atol=1e-6)
    assert len({tuple(np.round(t[5:8], 4)) for t in scenes.targets}) == 9


def test_pretraining_changes_only_the_vision_and_writes_weights_train_reads(tmp_path):
    cfg = small_cfg()
    scenes = render_scenes("piper", "cam_high", list(range(20, 26)), 4, 64, progress=False)
    out = tmp_path / "pre.safetensors"
    errors = pretrain_vision(cfg, scenes, out, steps=3, batch_size=4, progress=False)
    assert set(errors) == {*TARGETS, "minutes"} and all(v >= 0 for v in errors.values())
    init, _ = build_models(cfg, seed=0)
    loaded, _ = build_models(cfg, weights=out)
    changed = {
        name
        for (name, a), (_, b) in zip(
            init.named_parameters(), loaded.named_parameters(), strict=True
        )
        if not torch.equal(a, b)
    }
    assert changed and all(name.startswith("vision.") for name in changed)
