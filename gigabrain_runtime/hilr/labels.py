"""``bag label --advantage --world-model RUN``: RAMP's advantage labels for recorded episodes.

For every frame of an episode (the frames ``bag export`` will write, at the same ``fps``) the
world model of a training run (``train --objective world-model`` or ``ramp``) predicts, from the
cameras, the joint state and the next ``horizon`` commands, the value of the state the chunk
leads to: that is the frame's value v_t. With the sparse reward 1 at the last frame of a
successful episode (the detector's outcome, or the operator's label) and each takeover a
terminal failure of the policy's attempt before it, the n-step TD advantage
A_t = sum_{k<n} gamma^k r_{t+k} + gamma^n v_{t+n} - v_t and the indicator I_t = 1(A_t > eps)
follow (model/advantage.py). n defaults to 250 frames (5 s at 50 fps, about one grasp attempt):
the world model's value carries frame-to-frame noise (about 0.05) far larger than its change
over a few frames, so a short n labels noise; over an attempt the advantage is the attempt's
outcome against the value of where it began. Frames where the operator had control are
labelled I = 1 whatever their advantage: the correction is the behaviour the next policy
should take (as RECAP labels interventions).

The labels go next to the bag, ``advantage.npz`` (fps, value, advantage, indicator, the run
they came from); ``bag export`` carries them into the dataset as ``value``, ``advantage`` and
``indicator``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from gigabrain_runtime.hilr.label_store import EpisodeLabels
from gigabrain_runtime.model.advantage import HILR_GAMMA, HILR_N_STEP, episode_labels


class WorldModelValuer:
    """A training run's world model, valuing frames: ``values(images, states, actions)``."""

    def __init__(self, run: Path, robot: str, *, batch_size: int = 32, seed: int = 0) -> None:
        from gigabrain_runtime.inference.export import preset_source
        from gigabrain_runtime.inference.preprocessing import Preprocessor
        from gigabrain_runtime.model.config import ModelConfig
        from gigabrain_runtime.robots.embodiment import get_embodiment

        run = Path(run)
        config_path = run / "train_config.json"
        weights = run / "weights.safetensors"
        for path in (config_path, weights, run / "norm_stats.json"):
            if not path.is_file():
                raise ValueError(
                    f"world_model: {run} is not a training run ({path.name} missing); give "
                    "the --out of train --objective world-model"
                )
        trained = json.loads(config_path.read_text())
        cfg = ModelConfig.from_dict(trained["model"])
        if cfg.world_model is None:
            raise ValueError(f"world_model: the model of {run} ({cfg.name}) has no world model")
        self.embodiment = get_embodiment(robot)
        source = preset_source(
            cfg,
            weights=weights,
            embodiments=[self.embodiment],
            norm_stats=run / "norm_stats.json",
            delta_joints=tuple(trained.get("delta_joints", ())),
        )
        assert source.world_model is not None
        self.world_model = source.world_model.eval()
        self.pre = Preprocessor(source.manifest)
        self.cfg = cfg
        self.batch_size = batch_size
        self.seed = seed
        self.source = str(run)

    @property
    def horizon(self) -> int:
        return self.cfg.action_expert.horizon

    def values(
        self, images: dict[str, list[np.ndarray]], states: np.ndarray, actions: np.ndarray
    ) -> np.ndarray:
        """v_t for every frame: images camera -> frames [T] (any size, letterboxed here),
        states [T, dof], actions [T, dof] (the commands; frame t's chunk is t+1 .. t+H)."""
        import torch

        from gigabrain_runtime.inference.types import Observation
        from gigabrain_runtime.perception.images import resize_with_pad

        n = len(states)
        size, method = self.cfg.vision.image_size, self.cfg.variant.image_resize
        rng = np.random.default_rng(self.seed)
        out = np.zeros(n, dtype=np.float32)
        for b0 in range(0, n, self.batch_size):
            feeds: dict[str, list[np.ndarray]] = {}
            for t in range(b0, min(n, b0 + self.batch_size)):
                steps = np.minimum(np.arange(t + 1, t + 1 + self.horizon), n - 1)
                obs = Observation(
                    images={c: resize_with_pad(f[t], size, method) for c, f in images.items()},
                    state=states[t],
                    instruction="",
                    embodiment=self.embodiment.name,
                )
                f, _ = self.pre.world_feeds(obs, actions[steps], rng)
                for k, v in f.items():
                    feeds.setdefault(k, []).append(v[0])
            x = {k: torch.from_numpy(np.stack(v)) for k, v in feeds.items()}
            with torch.no_grad():
                _, value, _ = self.world_model.predict(
                    x["images"], x["image_mask"], x["state"], x["actions"], x["noise"]
                )
            out[b0 : b0 + len(value)] = value.float().numpy()
        return out


def label_episodes(
    root: Path,
    world_model: Path,
    *,
    robot: str = "piper",
    fps: int = 50,
    n_step: int = HILR_N_STEP,
    gamma: float = HILR_GAMMA,
    eps: float = 0.0,
    progress: bool = True,
) -> list[tuple[str, float]]:
    """Label every finished episode under ``root``; returns (episode, fraction with I = 1)."""
    from tqdm import tqdm

    from gigabrain_runtime.hilr.episodes import episode_dirs
    from gigabrain_runtime.hilr.lerobot_export import episode_frames
    from gigabrain_runtime.hilr.recording import read_sidecar

    episodes = [d for d in episode_dirs(Path(root)) if (d / "metadata.yaml").is_file()]
    if not episodes:
        raise ValueError(f"dir: no finished episodes in {root}")
    valuer = WorldModelValuer(Path(world_model), robot)
    done = []
    for ep in tqdm(episodes, desc="labelling", unit="episode", disable=not progress):
        frames = episode_frames(ep, fps)
        info = read_sidecar(ep)
        values = valuer.values(
            frames.videos, frames.cols["observation.state"], frames.cols["action"]
        )
        adv, ind = episode_labels(
            values,
            (info.label or info.outcome) == "success",
            frames.cols["intervention"],
            n_step=n_step,
            gamma=gamma,
            eps=eps,
        )
        EpisodeLabels(fps, values, adv.astype(np.float32), ind, valuer.source).write(ep)
        done.append((ep.name, float(ind.mean())))
    return done
