"""The torch backend's speed-ups against plain eager float32 on the CPU (issue 17): each must
give the same chunk to a stated tolerance, so a GPU run measures speed, not a different model."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from gigabrain_runtime.bench import synthetic_observation
from gigabrain_runtime.inference.export import preset_manifest
from gigabrain_runtime.inference.torch_backend import TorchBackend
from gigabrain_runtime.inference.types import Mode
from gigabrain_runtime.model.layers import GeGLU, GQAProjection, fuse_projections


def _chunks(backend, obs, noise):
    eff = backend.infer(obs, noise=noise).actions
    world = backend.predict_world(obs, eff, noise=None)
    std = backend.infer(dataclasses.replace(obs, world=world), mode=Mode.STANDARD, noise=noise)
    return eff, std.actions


def test_fused_projections_give_the_unfused_chunk_in_both_modes(tiny_cfg):
    manifest = preset_manifest(tiny_cfg)
    plain = TorchBackend(manifest, fuse=False, compile=False)
    fused = TorchBackend(manifest, fuse=True, compile=False)
    assert any(m.fused_qkv is not None for m in fused.policy.modules() if hasattr(m, "fused_qkv"))
    obs = synthetic_observation(plain, "piper")
    noise = np.random.default_rng(1).standard_normal((50, 32)).astype(np.float32)
    for want, got in zip(_chunks(plain, obs, noise), _chunks(fused, obs, noise)):
        # one matmul instead of three sums the same products in another order: float32 rounding
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_the_compiled_chunk_is_the_eager_chunk_on_the_cpu(tiny_cfg):
    """torch.compile's inductor builds on the CPU the graph it builds for CUDA (there it is
    captured as one CUDA graph): the compiled efficient chunk is the eager one, to float32
    rounding (the tolerance 1e-4). One layer each and two flow steps: the same operations in a
    graph small enough to compile within CI's budget from a cold cache."""
    one = dataclasses.replace(
        tiny_cfg,
        vision=dataclasses.replace(tiny_cfg.vision, depth=1),
        decoder=dataclasses.replace(tiny_cfg.decoder, depth=1),
        action_expert=dataclasses.replace(tiny_cfg.action_expert, num_flow_steps=2),
    )
    manifest = preset_manifest(one)
    eager = TorchBackend(manifest, compile=False)
    compiled = TorchBackend(manifest, compile=True, compile_mode="default")
    assert compiled._sample is not compiled.policy.sample_from_feeds  # a compiled callable
    obs = synthetic_observation(eager, "piper")
    noise = np.random.default_rng(2).standard_normal((50, 32)).astype(np.float32)
    want = eager.infer(obs, noise=noise).actions
    for _ in range(2):  # the first call compiles; the second runs the cached graph
        got = compiled.infer(obs, noise=noise).actions
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)


def test_fusing_keeps_the_parameters_and_a_later_state_dict_reaches_the_fused_matmul():
    torch.manual_seed(0)
    attn, mlp = GQAProjection(16, 4, 2, 8), GeGLU(16, 32)
    module = torch.nn.ModuleList([attn, mlp])
    keys = sorted(module.state_dict())
    x = torch.randn(2, 5, 16)
    before = (attn.qkv(x), mlp(x))
    assert fuse_projections(module) == 2
    assert sorted(module.state_dict()) == keys  # the fused weights are not saved
    for a, b in zip((*before[0], before[1]), (*attn.qkv(x), mlp(x))):
        torch.testing.assert_close(b, a, atol=1e-6, rtol=0)
    # weights loaded after fusing (a checkpoint) are what the fused matmul multiplies by
    new = {k: torch.randn_like(v) for k, v in module.state_dict().items()}
    module.load_state_dict(new)
    fresh = torch.nn.ModuleList([GQAProjection(16, 4, 2, 8), GeGLU(16, 32)])
    fresh.load_state_dict(new)
    torch.testing.assert_close(attn.qkv(x)[1], fresh[0].qkv(x)[1], atol=1e-6, rtol=0)
    torch.testing.assert_close(mlp(x), fresh[1](x), atol=1e-6, rtol=0)


def test_the_phase_breakdown_names_every_phase_of_a_chunk(tiny_cfg):
    """bench --phases: where a slow chunk's time goes (vision + embeddings, prefix, each step)."""
    backend = TorchBackend(preset_manifest(tiny_cfg), compile=False)
    obs = synthetic_observation(backend, "piper")
    times = backend.phase_times(obs)
    steps = tiny_cfg.action_expert.num_flow_steps
    assert list(times) == ["embed", "prefix", *(f"flow {i}" for i in range(steps))]
    assert all(ms > 0 for ms in times.values())
    report = {"phases_p50_ms": {"torch": {"efficient": times}}, "results": []}
    from gigabrain_runtime.bench import format_table

    assert f"{steps} flow steps" in format_table(report)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_the_cuda_graph_chunk_is_the_eager_chunk(tiny_cfg):
    """torch.compile "reduce-overhead" captures prefix + every flow step as one CUDA graph; the
    chunk it gives is the eager chunk (float32, same weights and noise)."""
    manifest = preset_manifest(tiny_cfg)
    eager = TorchBackend(manifest, device="cuda", compile=False)
    graphs = TorchBackend(manifest, models=(eager.policy, eager.world_model), device="cuda",
                          compile=True, compile_mode="reduce-overhead")  # fmt: skip
    obs = synthetic_observation(eager, "piper")
    noise = np.random.default_rng(2).standard_normal((50, 32)).astype(np.float32)
    want = eager.infer(obs, noise=noise).actions
    for _ in range(3):  # the first call captures, later ones replay
        np.testing.assert_allclose(graphs.infer(obs, noise=noise).actions, want, atol=1e-4)
