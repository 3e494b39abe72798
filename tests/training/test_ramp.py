"""The RAMP pieces of training: the world model learns alone, advantage labels from its values
reach the dataset through bag label and bag export, and the RAMP objective trains the policy
and the world model together from them (exactly resumable, like every objective)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from gigabrain_runtime.cli import main
from gigabrain_runtime.hilr.label_store import read_labels
from gigabrain_runtime.model.advantage import episode_labels
from gigabrain_runtime.model.config import RampConfig
from gigabrain_runtime.model.presets import get_preset
from gigabrain_runtime.training.trainer import TrainConfig, Trainer

CONFIG = dict(steps=4, batch_size=4, save_every=2, log_every=1, warmup_steps=1, stride=8)


@pytest.fixture(scope="module")
def episodes(tmp_path_factory):
    base = tmp_path_factory.mktemp("ramp_data")
    args = ["sim", "collect", "--episodes", "2", "--seed", "310", "--image-size", "64"]
    assert main([*args, "--out", str(base / "episodes")]) == 0
    assert main(["bag", "export", str(base / "episodes"), "--out", str(base / "raw")]) == 0
    return base


def _dataset(root, stride=8, **kw):
    """The piper joints and one small camera of ``root`` (LeRobotDataset's other options in kw)."""
    from gigabrain_runtime.robots.embodiment import get_embodiment
    from gigabrain_runtime.training.data import LeRobotDataset

    return LeRobotDataset(
        root,
        joint_names=get_embodiment("piper").joint_names,
        cameras=("cam_high",),
        image_size=32,
        horizon=4,
        stride=stride,
        progress=False,
        **kw,
    )


def _split(path):
    t = load_file(str(path))
    return (
        {k: v for k, v in t.items() if k.startswith("policy.")},
        {k: v for k, v in t.items() if k.startswith("world_model.")},
    )


def test_world_model_objective_trains_the_world_model_and_leaves_the_policy(episodes, tmp_path):
    cfg = get_preset("tiny")
    run = Trainer(
        cfg,
        episodes / "raw",
        tmp_path / "wm",
        TrainConfig(**CONFIG, objective="world-model"),
        progress=False,
    )
    before = {n: p.detach().clone() for n, p in run.policy.named_parameters()}
    wm_before = {n: p.detach().clone() for n, p in run.world_model.named_parameters()}
    run.run()
    policy, world = _split(tmp_path / "wm/weights.safetensors")
    for n, v in before.items():
        assert (policy[f"policy.{n}"] == v).all(), n
    changed = [n for n, v in wm_before.items() if not (world[f"world_model.{n}"] == v).all()]
    assert len(changed) > len(wm_before) // 2
    # the value target: gamma ** (frames to the end) after a success (both demos succeeded)
    w = run.world_batch(0)
    assert ((w.future_value > 0) & (w.future_value <= 1)).all()
    assert w.future_images.shape[2] == 1  # one future latent frame


def test_world_model_learns_the_likely_future_from_a_still_arm_when_asked(episodes, tmp_path):
    """``train --wm-still-prob P``: that fraction of the world model's samples is asked about
    the arm holding still (what the policy's conditioning asks at run time) and answered with
    the recorded future; by default every sample sees the chunk that was executed."""
    import dataclasses

    def chunks_seen(prob):
        cfg = get_preset("tiny")
        cfg = dataclasses.replace(
            cfg, ramp=dataclasses.replace(cfg.ramp, world_model_still_prob=prob)
        )
        config = TrainConfig(**{**CONFIG, "steps": 2}, objective="world-model")
        run = Trainer(cfg, episodes / "raw", tmp_path / f"wm{prob}", config, progress=False)
        seen, velocity = [], run.world_model.velocity

        def spy(noisy, tau, current, actions, image_mask):
            seen.append(actions.detach().clone())
            return velocity(noisy, tau, current, actions, image_mask)

        run.world_model.velocity = spy
        run.run()
        return seen[0], run.world_batch(0)

    seen, batch = chunks_seen(1.0)
    torch.testing.assert_close(seen, batch.hold_actions)
    assert (seen == seen[:, :1]).all()  # every step of each chunk the same: still
    assert not (batch.actions == batch.actions[:, :1]).all()  # the recorded chunks move
    seen, batch = chunks_seen(0.0)
    torch.testing.assert_close(seen, batch.actions)
    with pytest.raises(ValueError, match=r"world_model_still_prob must be in \[0, 1\], got -0.1"):
        RampConfig(world_model_still_prob=-0.1)


def test_advantage_labels_reach_the_dataset_and_drive_the_ramp_objective(
    episodes, tmp_path, capsys
):
    wm = tmp_path / "wm"
    common = [
        "--dataset",
        str(episodes / "raw"),
        "--preset",
        "tiny",
        "--steps",
        "2",
        "--batch-size",
        "4",
        "--stride",
        "8",
    ]
    assert main(["train", *common, "--objective", "world-model", "--out", str(wm)]) == 0
    # RAMP's stage 2 from the command line: the world-model-conditioned policy on the
    # demonstrations alone (no --dataset); neither given is refused, naming the option
    stage2 = [*common[2:], "--objective", "ramp", "--weights", str(wm / "weights.safetensors")]
    demos = ["--demos", str(episodes / "raw")]
    assert main(["train", *demos, *stage2, "--out", str(tmp_path / "stage2")]) == 0
    assert (tmp_path / "stage2/weights.safetensors").is_file()
    assert main(["train", *stage2, "--out", str(tmp_path / "neither")]) == 2
    assert "--dataset: required unless --demos is given" in capsys.readouterr().err
    # a ramp run on an unlabelled dataset is refused, naming what is missing
    with pytest.raises(ValueError, match="indicator"):
        Trainer(
            get_preset("tiny"),
            episodes / "raw",
            tmp_path / "x",
            TrainConfig(**CONFIG, objective="ramp"),
            progress=False,
        )
    eps_dir = episodes / "episodes"
    assert main(["bag", "label", str(eps_dir), "--advantage", "--world-model", str(wm)]) == 0
    ep = sorted(d for d in eps_dir.iterdir() if d.is_dir())[0]
    labels = read_labels(ep)
    assert labels is not None and labels.fps == 50
    assert np.isfinite(labels.value).all() and set(np.unique(labels.indicator)) <= {0, 1}
    assert main(["bag", "export", str(eps_dir), "--out", str(tmp_path / "labelled")]) == 0
    import pyarrow.parquet as pq

    data = pq.read_table(next((tmp_path / "labelled/data").glob("*/*.parquet"))).to_pydict()
    first = [i for i, e in enumerate(data["episode_index"]) if e == 0]
    np.testing.assert_allclose(np.asarray(data["value"])[first], labels.value, rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(data["indicator"])[first], labels.indicator)
    # train --frames indicator: only the frames labelled I = 1 are samples
    every = _dataset(tmp_path / "labelled", stride=1)
    good = _dataset(tmp_path / "labelled", stride=1, frames="indicator")
    positive = [i for i in range(len(every)) if every.indicator(i) == 1]
    assert 0 < len(positive) < len(every)  # the labels split the frames
    assert len(good) == len(positive)
    assert all(good.indicator(i) == 1 for i in range(len(good)))
    # RAMP: policy and world model trained together, resumed exactly
    config = TrainConfig(**CONFIG, objective="ramp")
    cfg = get_preset("tiny")
    start = wm / "weights.safetensors"
    straight = Trainer(
        cfg, tmp_path / "labelled", tmp_path / "a", config, init_weights=start, progress=False
    )
    # the world model's prediction that conditions the policy comes from the arm holding still
    # (as the runtime asks for it), never from the chunk the policy is learning
    seen = []
    sample = straight.world_model.sample

    def spy(current, image_mask, actions, noise):
        seen.append(actions.detach().clone())
        return sample(current, image_mask, actions, noise)

    straight.world_model.sample = spy
    straight.run()
    del straight.world_model.sample
    assert len(seen) == CONFIG["steps"]
    target = straight.world_batch(0).actions
    assert (seen[0] == seen[0][:, :1]).all()  # every step of the chunk the same: still
    assert not (target == target[:, :1]).all()  # the recorded chunk moves
    # --unconditioned expert: each sample says whether its actions are an expert's - here the
    # demonstrations' frames (episodes 2 and 3), never the rollout's (no takeover in it)
    experts = Trainer(
        cfg,
        tmp_path / "labelled",
        tmp_path / "e",
        TrainConfig(**CONFIG, objective="ramp", unconditioned="expert"),
        init_weights=start,
        progress=False,
        demos=[episodes / "raw"],
    )
    flags, truth = [], []
    for step in range(CONFIG["steps"]):
        flags += experts.batch(step).expert.tolist()
        truth += [experts.data.frame(int(i))[0] >= 2 for i in experts._global_draw(step)[0]]
    assert flags == truth and set(flags) == {True, False}
    experts.run(stop_after=1)
    broken = Trainer(
        cfg, tmp_path / "labelled", tmp_path / "b", config, init_weights=start, progress=False
    )
    broken.run(stop_after=2)
    again = Trainer(
        cfg, tmp_path / "labelled", tmp_path / "b", config, init_weights=start, progress=False
    )
    again.run()
    a, b = (
        load_file(str(tmp_path / "a/weights.safetensors")),
        load_file(str(tmp_path / "b/weights.safetensors")),
    )
    assert a.keys() == b.keys()
    for k in a:
        assert (a[k] == b[k]).all(), k
    p0, w0 = _split(start)
    p1, w1 = _split(tmp_path / "a/weights.safetensors")
    assert any(not (p0[k] == p1[k]).all() for k in p0)  # the policy learned
    assert any(not (w0[k] == w1[k]).all() for k in w0)  # so did the world model


def test_frames_operator_trains_on_the_corrections_alone(episodes):
    """train --frames operator (HG-DAgger): of the recorded episodes only the frames the
    operator controlled are samples, the demonstrations' frames all are; a dataset left with
    nothing, or without the column the choice reads, is refused naming it."""
    raw = episodes / "raw"  # sim collect: the expert alone, no takeover recorded
    plain = _dataset(raw)
    with_demos = _dataset(raw, expert=[raw], frames="operator")
    # no frame of the rollout dataset is the operator's: only the demonstrations' remain
    assert len(with_demos) == len(plain)
    assert {with_demos.frame(i)[0] for i in range(len(with_demos))} == {2, 3}
    with pytest.raises(ValueError, match="no sample is left with frames='operator'"):
        _dataset(raw, frames="operator")
    with pytest.raises(ValueError, match="'indicator'"):
        _dataset(raw, frames="indicator")
    with pytest.raises(ValueError, match="frames: expected one of"):
        TrainConfig(**CONFIG, frames="policy")
    with pytest.raises(ValueError, match="unconditioned: 'expert' is a choice of the ramp"):
        TrainConfig(**CONFIG, unconditioned="expert")
    with pytest.raises(ValueError, match="unconditioned: expected one of"):
        TrainConfig(**CONFIG, objective="ramp", unconditioned="operator")


def test_labels_reward_success_and_keep_every_correction():
    values = np.array([0.2, 0.3, 0.3, 0.2, 0.6, 0.9])
    taken_over = np.array([0, 0, 0, 1, 1, 0], bool)
    adv, ind = episode_labels(values, True, taken_over, n_step=1, gamma=1.0, eps=0.0)
    # A_t = v_{t+1} - v_t; the takeover at frame 3 ends the policy's attempt as a failure
    # (frame 2 bootstraps from 0: -0.3), and the last frame earns the success reward 1 - v_T
    np.testing.assert_allclose(adv, [0.1, 0.0, -0.3, 0.4, 0.3, 0.1])
    np.testing.assert_array_equal(ind, [1, 0, 0, 1, 1, 1])  # frame 3: A < 0 but corrected
    adv_fail, _ = episode_labels(values, False, taken_over, n_step=1, gamma=1.0, eps=0.0)
    assert adv_fail[-1] == pytest.approx(-0.9)  # no reward: the value was wrong
    with pytest.raises(ValueError, match="intervention"):
        episode_labels(values, True, taken_over[:3], n_step=1, gamma=1.0, eps=0.0)


def test_demonstrations_train_beside_the_hilr_data_with_every_frame_an_experts(episodes, tmp_path):
    """Continual training keeps the earlier data: ``--demos`` datasets join ``--dataset``'s
    episodes, and every demonstration frame counts as an expert's (I = 1, operator control),
    as the operator's corrections do; an unlabelled rollout dataset is still refused by ramp."""
    raw = episodes / "raw"
    ds = _dataset([raw, raw], expert=[raw])
    assert len(ds.episodes) == 6 and ds.roots == [raw, raw, raw]
    assert all(ep.indicator is None for ep in ds.episodes[:4])
    for ep in ds.episodes[4:]:
        assert ep.indicator is not None and (ep.indicator == 1).all() and ep.intervention.all()
        np.testing.assert_array_equal(ep.states, ds.episodes[ep.index].states)
    with pytest.raises(ValueError, match=r"episodes \[.*raw:0.*\] have no 'indicator'"):
        Trainer(
            get_preset("tiny"),
            raw,
            tmp_path / "x",
            TrainConfig(**CONFIG, objective="ramp"),
            progress=False,
            demos=[raw],
        )
    # demonstrations alone carry every label ramp needs
    run = Trainer(
        get_preset("tiny"),
        [],
        tmp_path / "d",
        TrainConfig(**CONFIG, objective="ramp"),
        progress=False,
        demos=[raw],
    )
    assert {run.data.indicator(i) for i in range(len(run.data))} == {1}
