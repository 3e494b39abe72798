"""Training: a dataset from the simulated task, exact resume, and two gloo processes computing
the update one process computes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file

from gigabrain_runtime.cli import main
from gigabrain_runtime.model.presets import get_preset
from gigabrain_runtime.training.trainer import TrainConfig, Trainer

ROOT = Path(__file__).resolve().parents[2]
CONFIG = dict(steps=6, batch_size=4, save_every=3, log_every=1, warmup_steps=2, stride=8)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    base = tmp_path_factory.mktemp("train_data")
    assert (
        main(
            [
                "sim",
                "collect",
                "--episodes",
                "2",
                "--seed",
                "300",
                "--out",
                str(base / "episodes"),
                "--image-size",
                "64",
            ]
        )
        == 0
    )
    assert main(["bag", "export", str(base / "episodes"), "--out", str(base / "ds")]) == 0
    return base / "ds"


def _tensors(directory: Path) -> dict:
    return {
        name: load_file(str(directory / name))
        for name in ("model.safetensors", "ema.safetensors", "optimizer.safetensors")
    }


def test_a_run_stopped_and_started_again_ends_exactly_where_an_unbroken_run_does(dataset, tmp_path):
    cfg, config = get_preset("tiny"), TrainConfig(**CONFIG)
    straight = Trainer(cfg, dataset, tmp_path / "straight", config, progress=False)
    straight.run()
    broken = Trainer(cfg, dataset, tmp_path / "broken", config, progress=False)
    for _ in range(2):
        broken.train_step()
    broken.save()
    del broken  # the process dies here
    # a stage of the schedule: stopped after step 3, its EMA weights written
    staged = Trainer(cfg, dataset, tmp_path / "broken", config, progress=False)
    staged.run(stop_after=3)
    assert staged.step == 3 and (tmp_path / "broken/weights.safetensors").is_file()
    with pytest.raises(ValueError, match=r"stop_after: must be in \[1, steps=6\], got 7"):
        staged.run(stop_after=7)
    again = Trainer(cfg, dataset, tmp_path / "broken", config, progress=False)
    again.run()
    assert again.step == 6
    a = _tensors(tmp_path / "straight/checkpoints/step-0000006")
    b = _tensors(tmp_path / "broken/checkpoints/step-0000006")
    for name in a:
        assert a[name].keys() == b[name].keys()
        for key in a[name]:
            assert (a[name][key] == b[name][key]).all(), (name, key)
    # what a user gets from the run
    out = tmp_path / "straight"
    stats = json.loads((out / "norm_stats.json").read_text())["norm_stats"]
    assert len(stats["action"]["q01"]) == cfg.state_dim
    assert (out / "loss.png").is_file() and (out / "weights.safetensors").is_file()
    assert len((out / "loss.csv").read_text().splitlines()) == 7  # header + 6 steps


@pytest.mark.parametrize("parallel", ["ddp", "fsdp"])
def test_two_gloo_processes_compute_the_update_of_one(dataset, tmp_path, parallel):
    """torchrun --nproc-per-node 2 on the gloo backend, the same global batch: the same loss
    per step (within 1e-5 relative: only the order of the sums differs) and the same weights,
    whether each process holds the model (ddp) or a shard of it (fsdp); an fsdp run stopped
    and resumed from its checkpoint ends where the unbroken one does."""
    args = [
        "--dataset",
        str(dataset),
        "--preset",
        "tiny",
        "--steps",
        "3",
        "--batch-size",
        "4",
        "--save-every",
        "3",
        "--log-every",
        "1",
        "--warmup-steps",
        "1",
        "--stride",
        "8",
    ]
    one = tmp_path / "one"
    assert main(["train", *args, "--out", str(one)]) == 0
    two = tmp_path / "two"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def torchrun(out: Path, steps: int) -> None:
        argv = [*args, "--parallel", parallel, "--out", str(out)]
        argv[argv.index("--steps") + 1] = str(steps)
        run = subprocess.run(
            [sys.executable, "-m", "torch.distributed.run", "--standalone"]
            + ["--nproc-per-node", "2", "-m", "gigabrain_runtime", "train", *argv],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert run.returncode == 0, run.stderr[-3000:]

    if parallel == "fsdp":  # two steps, a checkpoint, then a new run resumes to step 3
        args[args.index("--save-every") + 1] = "1"
        torchrun(two, 2)
        assert (two / "checkpoints/step-0000002").is_dir()
    torchrun(two, 3)
    cfg_two = json.loads((two / "train_config.json").read_text())
    assert cfg_two["world_size"] == 2 and cfg_two["parallel"] == parallel

    def losses(d: Path) -> np.ndarray:
        rows = (d / "loss.csv").read_text().splitlines()[1:]
        return np.array([float(r.split(",")[1]) for r in rows])

    assert len(losses(one)) == 3
    np.testing.assert_allclose(losses(two), losses(one), rtol=1e-5)
    a, b = load_file(str(one / "weights.safetensors")), load_file(str(two / "weights.safetensors"))
    for key in a:
        np.testing.assert_allclose(b[key].numpy(), a[key].numpy(), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("delta", [False, True])
def test_the_engine_turns_a_training_target_back_into_the_demonstrated_chunk(
    dataset, tmp_path, delta
):
    """What the model is trained to output, post-processed as the engine does (un-normalised,
    the state added back on --delta-joints), is the demonstration's chunk."""
    from gigabrain_runtime.inference.types import Mode, Observation

    arm = tuple(get_preset_robot_joints()[:6]) if delta else ()
    config = TrainConfig(**CONFIG, delta_joints=arm)
    tr = Trainer(get_preset("tiny"), dataset, tmp_path / "run", config, progress=False)
    assert tr.entry.delta_mask == (delta,) * 6 + (False,)
    batch = tr.batch(0)
    idx, _, _ = tr._global_draw(0)
    for k in range(2):
        s = tr.data.sample(int(idx[k]))
        obs = Observation(
            images=s["images"], state=s["state"], instruction=s["task"], embodiment="piper"
        )
        inputs = tr.pre.policy_inputs(obs, Mode.EFFICIENT, np.random.default_rng(0))
        chunk = tr.pre.chunk(batch.actions[k].numpy(), None, inputs, Mode.EFFICIENT, None, 0.0)
        np.testing.assert_allclose(chunk.actions, s["actions"], atol=2e-5)
    stats = json.loads((tmp_path / "run" / "norm_stats.json").read_text())["norm_stats"]
    q99 = np.array(stats["action"]["q99"][:7])
    # the statistics are those of what the model predicts: every chunk point, minus the state
    # on the delta joints (absolute: every frame's action); the gripper stays absolute
    frames = tr.data.states_and_actions()[1]
    at, chunks = tr.data.chunks()
    offsets = (chunks - np.where(tr.delta, at, 0.0)[:, None]).reshape(-1, 7)
    predicted = offsets if delta else frames
    np.testing.assert_allclose(q99, np.quantile(predicted, 0.99, axis=0), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"delta_joints: \['elbow'\] are not joints of piper"):
        Trainer(
            get_preset("tiny"),
            dataset,
            tmp_path / "bad",
            TrainConfig(**CONFIG, delta_joints=("elbow",)),
            progress=False,
        )


def test_fine_tuning_a_gigabrain0_checkpoint_trains_in_its_slot_layout_and_exports(
    dataset, tmp_path
):
    """train --checkpoint: the published layout (PiPER in the agilex slot after 7 constant
    dimensions, its arm joints as deltas, the SentencePiece prompt); the targets are made in that
    layout, and export --checkpoint --weights gives an engine whose chunk for a training target
    is the demonstration's, and whose weights are the fine-tuned ones."""
    from gigabrain_runtime.inference.export import checkpoint_source
    from gigabrain_runtime.inference.factory import open_backend
    from gigabrain_runtime.inference.types import Mode, Observation

    ckpt = ROOT / "tests/fixtures/gigabrain0"  # checkpoint/, tokenizer/, model_dims.json
    out = tmp_path / "run"
    args = ["train", "--dataset", str(dataset), "--checkpoint", str(ckpt), "--out", str(out)]
    args += ["--steps", "2", "--batch-size", "2", "--stride", "8", "--save-every", "2"]
    assert main(args) == 0
    config = json.loads((out / "train_config.json").read_text())
    assert config["start"].endswith("checkpoint")

    start = checkpoint_source(ckpt, robots=["piper"], for_training=True)
    tr = Trainer(
        start.cfg, dataset, tmp_path / "again", TrainConfig(**CONFIG), start=start, progress=False
    )
    assert tr.entry.dims[:7] == (0.0,) * 7 and tr.entry.delta_mask[7:] == (True,) * 6 + (False,)
    batch = tr.batch(0)
    assert not batch.action_mask[0, :7].any() and batch.action_mask[0, 7:14].all()
    idx, _, _ = tr._global_draw(0)
    s = tr.data.sample(int(idx[0]))
    obs = Observation(
        images=s["images"], state=s["state"], instruction=s["task"], embodiment="piper"
    )
    inputs = tr.pre.policy_inputs(obs, Mode.EFFICIENT, np.random.default_rng(0))
    chunk = tr.pre.chunk(batch.actions[0].numpy(), None, inputs, Mode.EFFICIENT, None, 0.0)
    np.testing.assert_allclose(chunk.actions, s["actions"], atol=2e-5)

    engine = tmp_path / "engine"
    export = ["export", "--checkpoint", str(ckpt), "--weights", str(out / "weights.safetensors")]
    export += ["--norm-stats", str(out / "norm_stats.json"), "--robot", "piper"]
    # without the graph optimiser, as the released size is exported (what is checked here is
    # whose weights the engine carries)
    assert main([*export, "--optimize", "off", "--out", str(engine)]) == 0
    tuned = load_file(str(out / "weights.safetensors"))
    backend = open_backend(engine, "torch")
    live = dict(backend.policy.state_dict())
    before = dict(start.policy.state_dict())  # loaded from the checkpoint, not trained
    key = "expert.action_in_proj.weight"
    np.testing.assert_array_equal(live[key].float().numpy(), tuned["policy." + key].numpy())
    assert not np.array_equal(before[key].numpy(), tuned["policy." + key].numpy())
    assert backend.infer(obs).actions.shape == (50, 7)


def test_trajectory_targets_are_the_gripper_path_over_the_chunk_in_the_first_camera(
    dataset, tmp_path
):
    """--trajectory: each sample's target is the gripper point at evenly spaced points of its
    chunk, projected into cam_high, and the objective includes the trajectory term."""
    from gigabrain_runtime.model.losses import policy_loss
    from gigabrain_runtime.robots.embodiment import get_embodiment
    from gigabrain_runtime.sim.trajectory import ImageTrajectory

    config = TrainConfig(**CONFIG, trajectory=True)
    tr = Trainer(get_preset("tiny"), dataset, tmp_path / "run", config, progress=False)
    batch = tr.batch(0)
    a = tr.cfg.action_expert
    assert batch.trajectory.shape == (CONFIG["batch_size"], a.trajectory_points, 2)
    idx, _, _ = tr._global_draw(0)
    k, t = tr.data.frame(int(idx[0]))
    states = tr.data.episodes[k].states
    future = states[np.minimum(t + np.arange(1, 11) * 5, len(states) - 1)]  # 50 / 10 points
    projector = ImageTrajectory(get_embodiment("piper"), "cam_high")
    want = np.clip(projector.points(future), 0, 1)
    projector.close()
    np.testing.assert_allclose(batch.trajectory[0].numpy(), want, atol=1e-6)
    assert len({tuple(p) for p in want.round(3)}) > 1  # the gripper moves over the chunk
    _, parts = policy_loss(tr.policy, batch)
    assert "trajectory" in parts and float(parts["trajectory"].detach()) > 0


def test_a_dataset_of_another_robot_is_refused_naming_the_field(dataset):
    from gigabrain_runtime.training.data import LeRobotDataset

    with pytest.raises(ValueError, match=r"observation.state names \[.*\] are not the robot's"):
        LeRobotDataset(
            dataset,
            joint_names=("a", "b"),
            cameras=("cam_high",),
            image_size=64,
            horizon=4,
            progress=False,
        )
    with pytest.raises(ValueError, match=r"no video feature for cameras \['cam_top'\]"):
        LeRobotDataset(
            dataset,
            joint_names=tuple(get_preset_robot_joints()),
            cameras=("cam_top",),
            image_size=64,
            horizon=4,
            progress=False,
        )


def test_a_sample_is_the_frame_and_the_next_actions_holding_at_the_end(dataset):
    from gigabrain_runtime.training.data import LeRobotDataset

    ds = LeRobotDataset(
        dataset,
        joint_names=tuple(get_preset_robot_joints()),
        cameras=("cam_high", "cam_wrist"),
        image_size=64,
        horizon=50,
        stride=1,
        progress=False,
    )
    ep = ds.episodes[0]
    s = ds.sample(3)
    np.testing.assert_array_equal(s["actions"], ep.actions[4:54])
    np.testing.assert_array_equal(s["state"], ep.states[3])
    assert s["images"]["cam_high"].shape == (64, 64, 3) and s["task"].startswith("pick up")
    last = ds.sample(len(ep.actions) - 2)  # one action left: then the last one repeats
    assert np.all(last["actions"] == ep.actions[-1])


def get_preset_robot_joints() -> list[str]:
    from gigabrain_runtime.robots.embodiment import get_embodiment

    return list(get_embodiment("piper").joint_names)
