"""The published GigaBrain-0 checkpoint path against the official pipeline's own run.

tests/fixtures/gigabrain0 holds a small random-weight checkpoint written by the official code
(open-gigaai/giga-models GigaBrain0Policy) in the published layout, with its norm_stats.json,
tokenizer, raw inputs and every intermediate of the official inference path down to the final
[50, 14] chunk (its README says how it was made). Tolerance 1e-4 (the fixture's own analysis:
float32 implementations differ by ~1e-6; every real pipeline mistake moves the chunk by 1e-3 or
more).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gigabrain_runtime.cli import main
from gigabrain_runtime.inference.prompt import discretize_state, gigabrain0_prompt
from gigabrain_runtime.inference.types import Observation
from gigabrain_runtime.perception.images import resize_with_pad

TOL = 1e-4
CAMERAS = ("cam_high", "cam_left_wrist", "cam_right_wrist")


def expected(fixture: Path, name: str) -> np.ndarray:
    return np.load(fixture / "expected" / name)


def raw_image(fixture: Path, cam: str) -> np.ndarray:
    return np.asarray(Image.open(fixture / "inputs" / f"{cam}.png").convert("RGB"))


def fixture_observation(fixture: Path) -> Observation:
    return Observation(
        images={c: resize_with_pad(raw_image(fixture, c), 224, "pil_bilinear") for c in CAMERAS},
        state=np.load(fixture / "inputs" / "state.npy"),
        instruction=(fixture / "inputs" / "instruction.txt").read_text(),
        embodiment="piper_dual",
    )


@pytest.fixture(scope="module")
def backends(gb0_source, gb0_engine):
    from gigabrain_runtime.inference.onnxruntime_backend import OnnxRuntimeBackend
    from gigabrain_runtime.inference.torch_backend import TorchBackend

    return {
        "torch": TorchBackend.from_source(gb0_source),
        "onnxruntime": OnnxRuntimeBackend(gb0_engine),
        "torch-engine": TorchBackend.from_engine(gb0_engine),
    }


# ---- preprocessing, step by step ----------------------------------------------------------------
def test_images_are_letterboxed_exactly_as_the_agilex_client_does(gb0_fixture):
    ref = expected(gb0_fixture, "images_224_uint8.npy")
    for i, cam in enumerate(CAMERAS):
        out = resize_with_pad(raw_image(gb0_fixture, cam), 224, "pil_bilinear")
        np.testing.assert_array_equal(out, ref[i], err_msg=cam)
        # the black bars of a 640x480 frame: 28 rows above and below
        assert not out[:28].any() and not out[-28:].any()


def test_state_is_quantile_normalised_and_discretised_into_the_official_prompt(gb0_fixture):
    from gigabrain_runtime.inference.normalization import read_norm_stats

    stats = read_norm_stats(gb0_fixture / "norm_stats.json")
    state = np.load(gb0_fixture / "inputs" / "state.npy")
    normalized = stats.state.normalize(state)
    np.testing.assert_array_equal(normalized, expected(gb0_fixture, "state_normalized.npy"))
    instruction = (gb0_fixture / "inputs" / "instruction.txt").read_text()
    prompt = gigabrain0_prompt(instruction, normalized)
    assert prompt == (gb0_fixture / "expected" / "prompt.txt").read_text()


def test_state_bins_follow_torch_bucketize_at_the_edges():
    x = np.array([-1.5, -1.0, -0.9921875, 0.0, 0.9921875, 0.99999, 1.0, 3.0], np.float32)
    # x <= -1 gives -1; an edge itself belongs to the bin below it; x > 0.9921875 gives 255
    assert discretize_state(x).tolist() == [-1, -1, 0, 127, 254, 255, 255, 255]


def test_a_subtask_becomes_its_own_prompt_field():
    prompt = gigabrain0_prompt("  Fold_The Towel subtask: grasp the corner", np.zeros(2))
    assert prompt == "Task: fold the towel, Subtask: grasp the corner, State: 127 127;\n"


def test_tokens_and_mask_are_the_official_ones(gb0_fixture, backends):
    chunk = backends["torch"].infer(
        fixture_observation(gb0_fixture),
        noise=np.load(gb0_fixture / "inputs" / "noise.npy"),
        trace=True,
    )
    t = chunk.trace
    np.testing.assert_array_equal(t.token_ids, expected(gb0_fixture, "token_ids.npy"))
    np.testing.assert_array_equal(t.attention_mask, expected(gb0_fixture, "attention_mask.npy"))
    assert chunk.num_tokens == 66 and chunk.prompt.startswith("Task: pick up the red cup")


# ---- the model and the output transform ---------------------------------------------------------
@pytest.mark.parametrize("name", ["torch", "onnxruntime", "torch-engine"])
def test_every_intermediate_and_the_final_chunk_match_the_official_pipeline(
    gb0_fixture, backends, name
):
    chunk = backends[name].infer(
        fixture_observation(gb0_fixture),
        noise=np.load(gb0_fixture / "inputs" / "noise.npy"),
        trace=True,
    )
    t = chunk.trace
    np.testing.assert_array_equal(t.images, expected(gb0_fixture, "images_224_uint8.npy"))
    assert t.image_mask.all()
    np.testing.assert_array_equal(t.state_normalized, expected(gb0_fixture, "state_normalized.npy"))
    np.testing.assert_allclose(
        t.actions_normalized, expected(gb0_fixture, "actions_normalized.npy"), atol=TOL, rtol=0
    )
    np.testing.assert_allclose(
        t.actions_unnormalized,
        expected(gb0_fixture, "actions_unnormalized.npy")[:, :14],
        atol=TOL,
        rtol=0,
    )
    final = expected(gb0_fixture, "final_actions.npy")
    np.testing.assert_allclose(t.final_actions, final, atol=TOL, rtol=0)
    # the robot's chunk: piper_dual's joints are the AgileX dimensions in the same order
    assert chunk.actions.shape == (50, 14)
    err = np.abs(chunk.actions - final).max()
    print(f"{name}: max |chunk - official| = {err:.2e}")
    assert err < TOL
    assert chunk.trajectory.shape == (0, 2)  # released without trajectory tokens


def test_the_server_side_resize_would_be_caught(gb0_fixture, backends):
    """The check is sharp enough to tell the client's PIL letterbox from the server's torch
    resize (the fixture's alternative path): those differ by ~6e-3, far above the tolerance."""
    alt = expected(gb0_fixture, "server_resize/final_actions.npy")
    assert np.abs(alt - expected(gb0_fixture, "final_actions.npy")).max() > 10 * TOL


def test_one_arm_maps_onto_the_right_half_of_the_agilex_slot(gb0_fixture, backends):
    """Single PiPER = the AgileX slot's right arm, left arm at rest, left wrist camera black:
    exactly the chunk the dual arm gets in that situation, right half."""
    obs = fixture_observation(gb0_fixture)
    noise = np.load(gb0_fixture / "inputs" / "noise.npy")
    right = obs.state[7:]
    dual = Observation(
        images={**obs.images, "cam_left_wrist": np.zeros((224, 224, 3), np.uint8)},
        state=np.concatenate([np.zeros(7), right]),
        instruction=obs.instruction,
        embodiment="piper_dual",
    )
    single = Observation(
        images={"cam_high": obs.images["cam_high"], "cam_wrist": obs.images["cam_right_wrist"]},
        state=right,
        instruction=obs.instruction,
        embodiment="piper",
    )
    backend = backends["torch"]
    a = backend.infer(dual, noise=noise).actions
    b = backend.infer(single, noise=noise).actions
    assert b.shape == (50, 7)
    np.testing.assert_array_equal(b, a[:, 7:])


def test_standard_mode_is_refused_for_a_model_without_world_model(gb0_fixture, backends):
    with pytest.raises(ValueError, match="standard needs a world model"):
        backends["onnxruntime"].infer(fixture_observation(gb0_fixture), mode="standard")
    with pytest.raises(ValueError, match="has none"):
        backends["torch"].predict_world(fixture_observation(gb0_fixture), np.zeros((50, 14)))


def test_a_prompt_too_long_for_the_checkpoint_is_refused(gb0_fixture, backends):
    obs = fixture_observation(gb0_fixture)
    long = Observation(**{**obs.__dict__, "instruction": "pick up the cup " * 60})
    with pytest.raises(ValueError, match=r"prompt: \d+ tokens"):
        backends["torch"].infer(long)


# ---- the exported engine ------------------------------------------------------------------------
def test_the_engine_records_the_checkpoint_tokenizer_stats_and_slots(gb0_engine, gb0_fixture):
    from gigabrain_runtime.inference.manifest import EngineManifest, sha256_file

    m = EngineManifest.read(gb0_engine)
    src = m.source
    assert src["checkpoint"] == str(gb0_fixture / "checkpoint")
    assert src["config_sha256"] == sha256_file(gb0_fixture / "checkpoint" / "config.json")
    assert set(src["weights"]) == {
        f"diffusion_pytorch_model-0000{i}-of-00004.safetensors" for i in range(1, 5)
    }
    assert src["norm_stats_sha256"] == sha256_file(gb0_fixture / "norm_stats.json")
    tok_sha = sha256_file(gb0_fixture / "tokenizer" / "tokenizer.model")
    assert src["tokenizer_sha256"] == tok_sha
    # the engine carries its own copy of the tokenizer, checked by hash when opened
    assert m.tokenizer["file"] == "tokenizer.model" and m.tokenizer["sha256"] == tok_sha
    assert sha256_file(gb0_engine / "tokenizer.model") == tok_sha
    dual = m.embodiment("piper_dual")
    assert (dual.embodiment_id, dual.slot) == (0, "agilex_cobot_magic")
    assert dual.delta_mask == (True,) * 6 + (False,) + (True,) * 6 + (False,)
    assert "agilex_cobot_magic" in src["slots"]["piper_dual"]
    assert "g1" not in m.embodiments  # no slot in this checkpoint family
    assert set(m.graphs) == {"policy_efficient"}  # no world model, no standard mode


def test_an_engine_whose_tokenizer_was_swapped_is_refused(gb0_engine, tmp_path):
    from gigabrain_runtime.inference.onnxruntime_backend import OnnxRuntimeBackend

    copy = tmp_path / "engine"
    shutil.copytree(gb0_engine, copy)
    data = bytearray((copy / "tokenizer.model").read_bytes())
    data[-1] ^= 1
    (copy / "tokenizer.model").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="tokenizer"):
        OnnxRuntimeBackend(copy)


# ---- predict, as a user runs it -----------------------------------------------------------------
def _predict_args(fixture: Path, *source: str) -> list[str]:
    args = ["predict", *source, "--robot", "piper_dual"]
    args += ["--instruction", (fixture / "inputs" / "instruction.txt").read_text()]
    args += ["--state", str(fixture / "inputs" / "state.npy")]
    for cam in CAMERAS:
        args += ["--image", f"{cam}={fixture / 'inputs' / f'{cam}.png'}"]
    return args + ["--noise", str(fixture / "inputs" / "noise.npy")]


@pytest.mark.parametrize("how", ["checkpoint+torch", "engine+onnxruntime"])
def test_predict_writes_the_official_chunk_and_its_intermediates(
    gb0_fixture, gb0_engine, tmp_path, capsys, how
):
    source = (
        ["--checkpoint", str(gb0_fixture), "--backend", "torch"]
        if how == "checkpoint+torch"
        else ["--engine", str(gb0_engine), "--backend", "onnxruntime"]
    )
    out, inter = tmp_path / "chunk.npy", tmp_path / "intermediates"
    rc = main(
        [*_predict_args(gb0_fixture, *source), "--out", str(out), "--intermediates", str(inter)]
    )
    printed = capsys.readouterr().out
    assert rc == 0
    assert "prompt (66 tokens): 'Task: pick up the red cup" in printed
    assert "slot 0 (gigabrain-0: agilex_cobot_magic)" in printed
    chunk = np.load(out)
    assert chunk.shape == (50, 14) and chunk.dtype == np.float32
    assert np.abs(chunk - expected(gb0_fixture, "final_actions.npy")).max() < TOL
    for name in ("token_ids.npy", "attention_mask.npy", "images_224_uint8.npy"):
        np.testing.assert_array_equal(np.load(inter / name), expected(gb0_fixture, name))
    assert (inter / "prompt.txt").read_text() == (gb0_fixture / "expected/prompt.txt").read_text()
    for name in ("actions_normalized.npy", "final_actions.npy"):
        np.testing.assert_allclose(
            np.load(inter / name), expected(gb0_fixture, name), atol=TOL, rtol=0
        )


# ---- bad inputs: each refused at start with one line naming it ----------------------------------
@pytest.fixture
def broken(gb0_fixture, tmp_path):
    """A writable copy of the fixture to break."""
    copy = tmp_path / "gigabrain0"
    shutil.copytree(gb0_fixture, copy)
    return copy


def _refused(capsys, args: list[str], *needles: str) -> str:
    rc = main(args)
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert len(err.splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err
    return err


def _info(path: Path, *extra: str) -> list[str]:
    return ["info", "--checkpoint", str(path), *extra]


def test_missing_files_are_named(broken, capsys, tmp_path):
    _refused(capsys, _info(tmp_path / "nowhere"), "no such directory")
    shard = broken / "checkpoint" / "diffusion_pytorch_model-00003-of-00004.safetensors"
    shard.unlink()
    _refused(capsys, _info(broken), "missing shards", "00003-of-00004")
    (broken / "checkpoint" / "config.json").unlink()
    _refused(capsys, _info(broken), "no config.json")


def test_a_truncated_image_or_shard_is_one_line_naming_it(broken, capsys):
    png = broken / "inputs" / "cam_high.png"
    png.write_bytes(png.read_bytes()[:5000])
    args = _predict_args(broken, "--checkpoint", str(broken))
    _refused(capsys, args, "--image cam_high: cannot read", "cam_high.png")
    shard = broken / "checkpoint" / "diffusion_pytorch_model-00002-of-00004.safetensors"
    shard.write_bytes(shard.read_bytes()[:1000])
    _refused(capsys, args, "cannot read", shard.name)
    _refused(capsys, [*args, "--backend", "tensorrt"], "--backend tensorrt", "build-engine")


def test_missing_norm_stats_and_tokenizer_are_named(broken, gb0_fixture, capsys, tmp_path):
    (broken / "norm_stats.json").unlink()
    args = _predict_args(broken, "--checkpoint", str(broken))
    _refused(capsys, args, "norm_stats", "--norm-stats")
    _refused(capsys, args + ["--norm-stats", str(tmp_path / "x.json")], "norm_stats", "x.json")
    shutil.rmtree(broken / "tokenizer")
    args += ["--norm-stats", str(gb0_fixture / "norm_stats.json")]
    _refused(capsys, args, "tokenizer", "--tokenizer")
    # given explicitly, each is used wherever it lies
    rc = main(args + ["--tokenizer", str(gb0_fixture / "tokenizer")])
    assert rc == 0, capsys.readouterr().err


def test_a_missing_parameter_is_named_by_its_published_key(broken, capsys):
    from safetensors.torch import load_file, save_file

    key = "paligemma_with_expert.layers.1.mlps.1.up_proj.weight"
    index = json.loads(
        (broken / "checkpoint" / "diffusion_pytorch_model.safetensors.index.json").read_text()
    )
    shard = broken / "checkpoint" / index["weight_map"][key]
    tensors = load_file(shard)
    del tensors[key]
    save_file(tensors, str(shard))
    _refused(capsys, _predict_args(broken, "--checkpoint", str(broken)), f"missing {key}")


def test_a_tokenizer_that_does_not_match_the_vocabulary_is_refused(broken, capsys, tmp_path):
    import random

    import sentencepiece as spm

    rng = random.Random(0)
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = ["".join(rng.choice(letters) for _ in range(rng.randint(3, 9))) for _ in range(6000)]
    lines = (" ".join(words[k : k + 8]) for k in range(0, len(words), 8))
    (tmp_path / "corpus.txt").write_text("\n".join(lines))
    for name, kwargs, needle in (
        (
            "big",
            {"pad_id": 0, "eos_id": 1, "bos_id": 2, "unk_id": 3, "vocab_size": 1500},
            "1500 pieces but the checkpoint embeds 1024",
        ),
        ("llama", {"vocab_size": 800}, "not Gemma's"),
    ):
        spm.SentencePieceTrainer.train(
            input=str(tmp_path / "corpus.txt"),
            model_prefix=str(tmp_path / name),
            model_type="bpe",
            byte_fallback=True,
            minloglevel=2,
            **kwargs,
        )
        shutil.copy(tmp_path / f"{name}.model", broken / "tokenizer" / "tokenizer.model")
        _refused(capsys, _predict_args(broken, "--checkpoint", str(broken)), "tokenizer", needle)
    (broken / "tokenizer" / "tokenizer.model").write_bytes(b"not a sentencepiece model")
    _refused(capsys, _predict_args(broken, "--checkpoint", str(broken)), "not a SentencePiece")


def test_stats_without_the_robots_dimensions_are_refused(broken, capsys):
    path = broken / "norm_stats.json"
    data = json.loads(path.read_text())
    for k in ("q01", "q99", "mean", "std"):
        data["norm_stats"]["action"][k] = data["norm_stats"]["action"][k][:7]
    path.write_text(json.dumps(data))
    _refused(
        capsys,
        _predict_args(broken, "--checkpoint", str(broken)),
        "robot piper_dual: action statistics",
        "7 dimensions, 14 needed",
    )
    del data["norm_stats"]["observation.state"]["q99"]
    path.write_text(json.dumps(data))
    _refused(capsys, _info(broken), "norm_stats['observation.state'].q99 is missing")


def test_a_robot_without_a_slot_is_refused(gb0_fixture, capsys, tmp_path):
    args = ["export", "--checkpoint", str(gb0_fixture), "--robot", "g1", "--out", str(tmp_path)]
    _refused(capsys, args, "robot g1 has no slot in gigabrain-0 checkpoints")
    assert not (tmp_path / "manifest.json").exists()


def test_a_slot_beyond_the_checkpoints_embodiments_is_refused(broken, capsys, tmp_path):
    """A checkpoint fine-tuned with one embodiment slot cannot serve a robot mapped to slot 1."""
    from safetensors.torch import load_file, save_file

    config = broken / "checkpoint" / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "num_embodiments": 1}))
    for shard in (broken / "checkpoint").glob("*.safetensors"):
        t = load_file(shard)
        t = {k: (v[:1].clone() if k.startswith("action_") else v) for k, v in t.items()}
        save_file(t, str(shard))
    robot = tmp_path / "agibot.yaml"
    joints = "\n".join(
        f"  - {{name: j{i}, lower: -1.0, upper: 1.0, max_velocity: 1.0, max_acceleration: 1.0}}"
        for i in range(20)
    )
    dims = ", ".join(f"j{i}" for i in range(20))
    robot.write_text(
        "name: agibot\nembodiment_id: 5\ncameras: [a, b, c]\njoints:\n" + joints + "\n"
        "checkpoints:\n  gigabrain-0:\n    slot: agibot_g1\n"
        "    cameras: {cam_high: a, cam_left_wrist: b, cam_right_wrist: c}\n"
        f"    dims: [{dims}]\n"
    )
    args = ["export", "--checkpoint", str(broken), "--robot", str(robot), "--out", str(tmp_path)]
    _refused(capsys, args, "robot agibot", "embodiment 1", "1 embodiment slots")


def test_a_camera_the_checkpoint_never_saw_is_refused(gb0_fixture, capsys, tmp_path):
    from gigabrain_runtime.robots.embodiment import get_embodiment

    dual = (
        Path(__file__).resolve().parents[2] / "gigabrain_runtime/robots/data/piper_dual.yaml"
    ).read_text()
    robot = tmp_path / "front.yaml"
    robot.write_text(dual.replace("{cam_high: cam_high,", "{cam_front: cam_high,"))
    with pytest.raises(ValueError, match="camera 'cam_front' was never seen"):
        get_embodiment(str(robot))
    args = ["export", "--checkpoint", str(gb0_fixture), "--robot", str(robot), "--out", "x"]
    _refused(capsys, args, "cam_front", "never seen by the agilex_cobot_magic slot")


@pytest.mark.parametrize("layout", ["single safetensors", "bin", "sharded bin"])
def test_every_published_weight_layout_gives_the_same_chunk(broken, gb0_fixture, layout, backends):
    import torch
    from safetensors.torch import load_file, save_file

    from gigabrain_runtime.inference.export import checkpoint_source
    from gigabrain_runtime.inference.torch_backend import TorchBackend

    ckpt = broken / "checkpoint"
    shards = sorted(ckpt.glob("*.safetensors"))
    tensors = {k: v for s in shards for k, v in load_file(s).items()}
    for s in shards:
        s.unlink()
    (ckpt / "diffusion_pytorch_model.safetensors.index.json").unlink()
    if layout == "single safetensors":
        save_file(tensors, str(ckpt / "diffusion_pytorch_model.safetensors"))
    elif layout == "bin":  # what giga-train writes (checkpoint_safe_serialization=False)
        torch.save(tensors, ckpt / "diffusion_pytorch_model.bin")
    else:
        keys = sorted(tensors)
        weight_map = {}
        for i, part in enumerate((keys[::2], keys[1::2])):
            name = f"pytorch_model-0000{i + 1}-of-00002.bin"
            torch.save({k: tensors[k] for k in part}, ckpt / name)
            weight_map.update(dict.fromkeys(part, name))
        (ckpt / "diffusion_pytorch_model.bin.index.json").write_text(
            json.dumps({"weight_map": weight_map})
        )
    backend = TorchBackend.from_source(checkpoint_source(broken))
    obs = fixture_observation(gb0_fixture)
    noise = np.load(gb0_fixture / "inputs" / "noise.npy")
    # the same weights: equal up to float32 rounding (memory-mapped .bin tensors may take
    # other BLAS paths); one wrong tensor would move the chunk by far more
    np.testing.assert_allclose(
        backend.infer(obs, noise=noise).actions,
        backends["torch"].infer(obs, noise=noise).actions,
        atol=1e-6,
        rtol=0,
    )
