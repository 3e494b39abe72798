"""Exported ONNX graphs: manifest contents, validity, and numerical parity with torch.

Tolerances: float32 end to end on the CPU. onnxruntime fuses and reorders matmuls, so results
differ from torch eager by rounding only; 1e-4 absolute (actions are O(1) in normalised units,
up to a few units in joint space) leaves two orders of magnitude of headroom over the ~4e-6
observed, while any real divergence (a wrong mask, a wrong step) shows up at >1e-2.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx
import pytest

from gigabrain_runtime.inference.manifest import EngineManifest, sha256_file
from gigabrain_runtime.inference.types import Mode
from tests.helpers import make_observation

ATOL = 1e-4


def test_manifest_describes_every_graph_and_embodiment(tiny_engine, tiny_cfg):
    m = EngineManifest.read(tiny_engine)
    assert m.preset == "tiny" and m.layout == "fused" and m.backend == "onnxruntime"
    assert m.opset >= 18
    assert m.weights_sha256 == sha256_file(tiny_engine / "weights.safetensors")
    assert set(m.graphs) == {"policy_efficient", "policy_standard", "world_model"}
    eff = {t.name: (t.shape, t.dtype) for t in m.graphs["policy_efficient"].inputs}
    a, v = tiny_cfg.action_expert, tiny_cfg.vision
    assert eff == {
        "images": ((1, v.max_cameras, 224, 224, 3), "uint8"),
        "image_mask": ((1, v.max_cameras), "bool"),
        "tokens": ((1, tiny_cfg.decoder.max_text_tokens), "int64"),
        "token_mask": ((1, tiny_cfg.decoder.max_text_tokens), "bool"),
        "state": ((1, 32), "float32"),
        "embodiment_id": ((1,), "int64"),
        "noise": ((1, a.horizon, a.action_dim), "float32"),
        # real-time chunking's guide: the previous chunk and its soft mask
        "prefix_actions": ((1, a.horizon, a.action_dim), "float32"),
        "prefix_weights": ((1, a.horizon, a.action_dim), "float32"),
    }
    std = {t.name for t in m.graphs["policy_standard"].inputs}
    assert std == set(eff) | {"wm_tokens", "value"}
    outs = {t.name: t.shape for t in m.graphs["policy_efficient"].outputs}
    assert outs["actions"] == (1, a.horizon, a.action_dim)
    assert {"piper", "piper_dual", "g1"} <= set(m.embodiments)
    piper = m.embodiments["piper"]
    assert piper.joint_names[-1] == "gripper" and len(piper.state_norm.mean) == 7
    assert len({e.embodiment_id for e in m.embodiments.values()}) == len(m.embodiments)
    assert EngineManifest.from_dict(m.to_dict()) == m


def test_exported_graphs_pass_the_onnx_checker(tiny_engine):
    m = EngineManifest.read(tiny_engine)
    for g in m.graphs.values():
        onnx.checker.check_model(str(tiny_engine / g.file), full_check=True)


@pytest.mark.parametrize("embodiment", ["piper", "piper_dual", "g1"])
def test_onnxruntime_matches_torch_on_identical_noise_in_both_modes(
    ort_backend, torch_backend, tiny_cfg, embodiment
):
    obs = make_observation(embodiment, seed=5)
    a = tiny_cfg.action_expert
    noise = np.random.default_rng(0).standard_normal((a.horizon, a.action_dim)).astype(np.float32)
    eff_ort = ort_backend.infer(obs, noise=noise)
    eff_torch = torch_backend.infer(obs, noise=noise)
    np.testing.assert_allclose(eff_ort.actions, eff_torch.actions, atol=ATOL)
    np.testing.assert_allclose(eff_ort.trajectory, eff_torch.trajectory, atol=ATOL)

    world = torch_backend.predict_world(
        obs,
        eff_torch.actions,
        noise=np.zeros(
            (tiny_cfg.num_wm_tokens, tiny_cfg.world_model.state_channels * 4), np.float32
        ),
    )
    std_obs = dataclasses.replace(obs, world=world)
    std_ort = ort_backend.infer(std_obs, mode="standard", noise=noise)
    std_torch = torch_backend.infer(std_obs, mode="standard", noise=noise)
    np.testing.assert_allclose(std_ort.actions, std_torch.actions, atol=ATOL)
    assert std_ort.mode is Mode.STANDARD and std_ort.value == pytest.approx(world.value)
    assert np.abs(std_ort.actions - eff_ort.actions).max() > 1e-3  # z conditions the chunk


@pytest.mark.parametrize("layout", ["fused", "split"])
def test_every_backend_runs_rtcs_guide_the_same_and_old_engines_refuse_it(
    ort_backend, torch_backend, tiny_split_engine, tiny_cfg, layout, tmp_path
):
    from gigabrain_runtime.inference.manifest import EngineManifest
    from gigabrain_runtime.inference.onnxruntime_backend import OnnxRuntimeBackend
    from gigabrain_runtime.inference.types import ActionGuide

    ort = ort_backend if layout == "fused" else OnnxRuntimeBackend(tiny_split_engine)
    obs = make_observation("piper", seed=3)
    a = tiny_cfg.action_expert
    noise = np.random.default_rng(2).standard_normal((a.horizon, a.action_dim)).astype(np.float32)
    previous = torch_backend.infer(obs, noise=-noise).actions
    w = np.zeros(a.horizon)
    w[:10] = 1.0
    w[10:30] = np.linspace(0.9, 0.05, 20)
    guide = ActionGuide(actions=previous, weights=w)
    g_ort = ort.infer(obs, noise=noise, guide=guide).actions
    g_torch = torch_backend.infer(obs, noise=noise, guide=guide).actions
    np.testing.assert_allclose(g_ort, g_torch, atol=ATOL)
    free = ort.infer(obs, noise=noise).actions
    # the frozen points follow the previous chunk (in robot units, through normalisation)
    assert np.abs(g_ort[:10] - previous[:10]).max() < 0.1 * np.abs(free[:10] - previous[:10]).max()
    with pytest.raises(ValueError, match=r"guide.weights: must be in \[0, 1\]"):
        ort.infer(obs, guide=ActionGuide(actions=previous, weights=w * 2))
    # an engine whose graphs lack the guide inputs (exported before rtc) says so
    manifest = EngineManifest.read(tiny_split_engine)
    old = dataclasses.replace(
        manifest,
        graphs={
            n: dataclasses.replace(g, inputs=tuple(t for t in g.inputs if "prefix_" not in t.name))
            for n, g in manifest.graphs.items()
        },
    )
    from gigabrain_runtime.inference.preprocessing import Preprocessor

    pre = Preprocessor(old, tiny_split_engine)
    assert not pre.guide_inputs
    with pytest.raises(ValueError, match="exported before real-time chunking"):
        pre.policy_inputs(obs, Mode.EFFICIENT, np.random.default_rng(0), guide=guide)


def test_world_model_parity(ort_backend, torch_backend, tiny_cfg):
    obs = make_observation("piper", seed=2)
    actions = np.tile(np.asarray(obs.state), (tiny_cfg.action_expert.horizon, 1))
    noise = (
        np.random.default_rng(1)
        .standard_normal((tiny_cfg.num_wm_tokens, tiny_cfg.world_model.state_channels * 4))
        .astype(np.float32)
    )
    w_ort = ort_backend.predict_world(obs, actions, noise=noise)
    w_torch = torch_backend.predict_world(obs, actions, noise=noise)
    np.testing.assert_allclose(w_ort.z_tokens, w_torch.z_tokens, atol=ATOL)
    np.testing.assert_allclose(w_ort.proprio, w_torch.proprio, atol=ATOL)
    assert w_ort.value == pytest.approx(w_torch.value, abs=ATOL)


def test_chunk_is_in_joint_space_with_the_embodiment_joint_names(ort_backend):
    chunk = ort_backend.infer(make_observation("g1"))
    assert chunk.joint_names[0] == "waist_yaw_joint"
    assert chunk.actions.shape == (50, 17)
    assert np.all(np.isfinite(chunk.actions))


def test_split_layout_matches_the_fused_layout(tiny_split_engine, ort_backend):
    from gigabrain_runtime.inference.onnxruntime_backend import OnnxRuntimeBackend

    split = OnnxRuntimeBackend(tiny_split_engine)
    obs = make_observation("piper", seed=9)
    noise = np.random.default_rng(4).standard_normal((50, 32)).astype(np.float32)
    np.testing.assert_allclose(
        split.infer(obs, noise=noise).actions,
        ort_backend.infer(obs, noise=noise).actions,
        atol=ATOL,
    )


def test_tampered_graph_is_refused(tmp_path, tiny_engine):
    import shutil

    from gigabrain_runtime.inference.onnxruntime_backend import OnnxRuntimeBackend

    copy = tmp_path / "engine"
    shutil.copytree(tiny_engine, copy)
    with open(copy / "world_model.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(ValueError, match="world_model.onnx does not match the manifest"):
        OnnxRuntimeBackend(copy)


def test_ensure_engine_reuses_a_matching_engine_and_reexports_a_broken_one(
    tmp_path, tiny_engine, tiny_split_engine, tiny_cfg, torch_backend
):
    import shutil

    from gigabrain_runtime.inference.export import ensure_engine

    logs = []
    fused = tmp_path / "fused"
    shutil.copytree(tiny_engine, fused)
    ensure_engine(tiny_cfg, fused, log=logs.append)
    assert logs == []  # reused
    broken = tmp_path / "split"  # (the split layout re-exports 3x faster than fused)
    shutil.copytree(tiny_split_engine, broken)
    (broken / "prefix_standard.onnx").unlink()
    ensure_engine(tiny_cfg, broken, layout="split", log=logs.append)
    assert len(logs) == 1 and (broken / "prefix_standard.onnx").is_file()
    # what the demo exports by default: graphs through onnxscript's optimiser, same actions
    from gigabrain_runtime.inference.onnxruntime_backend import OnnxRuntimeBackend

    assert EngineManifest.read(broken).extra["graph_optimized"] is True
    optimised = OnnxRuntimeBackend(broken)
    obs = make_observation("piper_dual", seed=11)
    noise = np.random.default_rng(6).standard_normal((50, 32)).astype(np.float32)
    np.testing.assert_allclose(
        optimised.infer(obs, noise=noise).actions,
        torch_backend.infer(obs, noise=noise).actions,
        atol=ATOL,
    )
