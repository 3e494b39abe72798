"""Shipped policies as data: a policy folder is read and checked, and the demo's and eval's
default engine is exported from exactly its files once, then reused (a damaged or changed one
is exported again)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gigabrain_runtime import policies
from gigabrain_runtime.inference.manifest import EngineManifest


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    """A policy folder as `train` leaves one: the tiny preset's weights and statistics."""
    from gigabrain_runtime.model.build import build_models
    from gigabrain_runtime.model.presets import get_preset
    from gigabrain_runtime.model.weights import save_weights
    from gigabrain_runtime.training.normstats import compute_norm_stats, write_norm_stats

    root = tmp_path / "policies"
    folder = root / "arm_task"
    folder.mkdir(parents=True)
    policy, world_model = build_models(get_preset("tiny"), seed=3)
    save_weights(folder / "w.safetensors", preset="tiny", policy=policy, world_model=world_model)
    rng = np.random.default_rng(0)
    states = rng.uniform(-1, 1, (200, 7))
    write_norm_stats(compute_norm_stats(states, states + 0.01, 32), folder)
    (folder / "policy.yaml").write_text(
        "preset: tiny\nrobot: piper\ndelta_joints: [joint1, joint2]\n"
        "weights: w.safetensors\nnorm_stats: norm_stats.json\n"
        "reproduce: ['gigabrain-runtime train --dataset D --preset tiny --out R']\n"
    )
    monkeypatch.setattr(policies, "ROOT", root)
    return folder


def test_a_policy_folder_is_read_and_its_missing_parts_named(shipped):
    assert policies.available() == ["arm_task"]
    p = policies.ShippedPolicy.load("arm_task")
    assert p.robot == "piper" and p.delta_joints == ("joint1", "joint2")
    assert policies.for_robot("piper") == p and policies.for_robot("g1") is None
    with pytest.raises(ValueError, match=r"no shipped policy 'nope' \(shipped: arm_task\)"):
        policies.ShippedPolicy.load("nope")
    # a policy shipped for another use (RAMP's weak start) is never the robot's default
    import shutil

    shutil.copytree(shipped, shipped.parent / "a_weak_start")
    yaml_path = shipped.parent / "a_weak_start" / "policy.yaml"
    yaml_path.write_text(yaml_path.read_text() + "default: false\n")
    assert policies.available() == ["a_weak_start", "arm_task"]
    assert not policies.ShippedPolicy.load("a_weak_start").default
    assert policies.for_robot("piper").name == "arm_task"
    (shipped / "norm_stats.json").unlink()
    with pytest.raises(ValueError, match="norm_stats.json is missing"):
        policies.ShippedPolicy.load("arm_task")


def test_the_default_engine_is_exported_once_from_the_policys_files(shipped, tmp_path, monkeypatch):
    from gigabrain_runtime.inference import export
    from gigabrain_runtime.inference.onnxruntime_backend import OnnxRuntimeBackend
    from gigabrain_runtime.inference.types import Observation

    p = policies.ShippedPolicy.load("arm_task")
    said: list[str] = []
    # the optimiser only fuses (the same maths, tested elsewhere); without it the export is fast
    engine = policies.ensure_policy_engine(p, tmp_path / "e", log=said.append, optimize=False)
    assert len(said) == 1
    m = EngineManifest.read(engine)
    assert m.preset == "tiny" and m.extra["policy"] == f"arm_task:{p.fingerprint}"
    entry = m.embodiments["piper"]
    assert entry.delta_mask == (True, True) + (False,) * 5
    stats = json.loads(p.norm_stats.read_text())["norm_stats"]
    assert list(entry.action_norm.q99) == pytest.approx(stats["action"]["q99"][:7])
    policies.ensure_policy_engine(p, engine, log=said.append)
    assert len(said) == 1  # reused
    chunk = OnnxRuntimeBackend(engine).infer(
        Observation(
            images={c: np.zeros((224, 224, 3), np.uint8) for c in entry.cameras},
            state=np.array([0.0, 1.0, -1.2, 0.0, 0.6, 0.0, 0.06]),
            instruction="pick up the red cube and put it in the bowl",
            embodiment="piper",
        )
    )
    assert chunk.actions.shape == (50, 7) and np.all(np.isfinite(chunk.actions))
    # a damaged engine, or one made from other files, is exported again
    exported: list[object] = []
    monkeypatch.setattr(export, "export_source", lambda *a, **k: exported.append(a))
    (engine / m.graphs["policy_efficient"].file).write_bytes(b"broken")
    policies.ensure_policy_engine(p, engine, log=said.append)
    assert len(said) == 2 and len(exported) == 1


def test_every_shipped_policy_is_complete_and_its_weights_fit_its_preset():
    """What `make demo` and `eval` run by default: each folder names a known robot and preset,
    its weights load strictly into that preset, its statistics cover the robot's joints, its
    offset joints are the robot's, and it says how it was made."""
    from gigabrain_runtime.model.build import build_models
    from gigabrain_runtime.model.presets import get_preset
    from gigabrain_runtime.model.weights import load_weights
    from gigabrain_runtime.robots.embodiment import get_embodiment

    names = policies.available()
    assert names, "no policy shipped under gigabrain_runtime/policies/"
    for name in names:
        p = policies.ShippedPolicy.load(name)
        emb = get_embodiment(p.robot)
        assert set(p.delta_joints) <= set(emb.joint_names), name
        policy, world_model = build_models(get_preset(p.preset), seed=0)
        load_weights(p.weights, policy=policy, world_model=world_model, strict=True)
        stats = json.loads(p.norm_stats.read_text())["norm_stats"]
        for key in ("observation.state", "action"):
            assert len(stats[key]["q01"]) >= len(emb.joint_names), (name, key)
        assert any(c.startswith("gigabrain-runtime train") for c in p.reproduce), name
