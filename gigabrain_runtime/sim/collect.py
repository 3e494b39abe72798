"""``gigabrain-runtime sim collect``: scripted-expert demonstrations of the simulated task,
written as the recorder writes episodes.

Each episode: the task's start for its seed (``sim/task.py``), the scripted expert
(``sim/expert.py``) from the arm's start pose, simulated headless and faster than real time
(physics between messages, cameras rendered at their rate), and written through the recorder's
own :class:`EpisodeWriter` on the recorder's topics (``recorded_streams``) in the robot
namespace - joint states, the expert's joint commands, camera frames, the instruction and the
episode events - stamped on the simulated clock. The outcome is the task's success detector, so
``bag export`` turns these and real episodes alike into a LeRobot dataset.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from gigabrain_runtime.bags import typestore
from gigabrain_runtime.hilr.recording import (
    EpisodeInfo,
    EpisodeWriter,
    TopicSpec,
    recorded_streams,
)
from gigabrain_runtime.robots.embodiment import Embodiment, get_embodiment
from gigabrain_runtime.sim.expert import ExpertOperator, pick_and_place
from gigabrain_runtime.sim.simulator import Simulator
from gigabrain_runtime.sim.task import SETTLE_S


@dataclass(frozen=True, kw_only=True)
class CollectConfig:
    state_hz: float = 100.0
    command_hz: float = 50.0
    camera_hz: float = 15.0
    image_size: int = 224
    # DART (Laskey et al., 2017): the arm executes the expert's command plus a smooth random
    # offset (an Ornstein-Uhlenbeck process per arm joint, this standard deviation in rad and
    # correlation time; the gripper is never disturbed) while the recording keeps the expert's
    # own command, so a policy trained on it sees states off the demonstrated path together
    # with the actions that lead back to it. 0: the expert's path exactly.
    disturbance_rad: float = 0.0
    disturbance_tau_s: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.disturbance_rad <= 0.5:
            raise ValueError(f"disturbance: must be in [0, 0.5] rad, got {self.disturbance_rad}")
        if not self.disturbance_tau_s > 0:
            raise ValueError(f"disturbance_tau_s: must be > 0, got {self.disturbance_tau_s}")
        for name in ("state_hz", "command_hz", "camera_hz"):
            value = getattr(self, name)
            if not 0 < value <= 1000:
                raise ValueError(f"{name}: must be in (0, 1000] Hz, got {value}")
        if self.command_hz > self.state_hz:
            raise ValueError("command_hz: must not exceed state_hz (one physics step per state)")
        if not 32 <= self.image_size <= 1024:
            raise ValueError(f"image_size: must be in [32, 1024] px, got {self.image_size}")


@dataclass(frozen=True)
class Collected:
    directory: Path
    seed: int
    success: bool
    reason: str
    duration_s: float


class CdrMessages:
    """CDR bytes of the recorded message types (the rosbags typestore: no ROS needed)."""

    def __init__(self) -> None:
        self.ts = typestore()
        self.T = self.ts.types

    def header(self, t_ns: int, frame_id: str = "") -> Any:
        stamp = self.T["builtin_interfaces/msg/Time"](sec=t_ns // 10**9, nanosec=t_ns % 10**9)
        return self.T["std_msgs/msg/Header"](stamp=stamp, frame_id=frame_id)

    def cdr(self, msgtype: str, **fields: Any) -> bytes:
        return bytes(self.ts.serialize_cdr(self.T[msgtype](**fields), msgtype))

    def joints(self, t_ns: int, names: tuple[str, ...], q: np.ndarray) -> bytes:
        return self.cdr(
            "sensor_msgs/msg/JointState",
            header=self.header(t_ns),
            name=list(names),
            position=np.asarray(q, np.float64),
            velocity=np.zeros(0),
            effort=np.zeros(0),
        )

    def image(self, t_ns: int, frame_id: str, rgb: np.ndarray) -> bytes:
        h, w = rgb.shape[:2]
        return self.cdr(
            "sensor_msgs/msg/Image",
            header=self.header(t_ns, frame_id),
            height=h,
            width=w,
            encoding="rgb8",
            is_bigendian=0,
            step=w * 3,
            data=np.ascontiguousarray(rgb, np.uint8).reshape(-1),
        )

    def string(self, text: str) -> bytes:
        return self.cdr("std_msgs/msg/String", data=text)


def collect_episode(
    sim: Simulator,
    seed: int,
    out: Path,
    *,
    namespace: str,
    config: CollectConfig,
    messages: CdrMessages | None = None,
) -> Collected:
    """One expert demonstration of task episode ``seed`` into ``out/<robot>_sim_<seed>``."""
    emb: Embodiment = sim.embodiment
    task = sim.task
    if task is None:
        raise ValueError(f"robot {emb.name}: its scene defines no task to demonstrate")
    msgs = messages or CdrMessages()
    sim.start_episode(seed)
    expert = ExpertOperator(emb, pick_and_place(sim))
    expert.start(0.0, sim.joint_positions())
    ns = "/" + namespace.strip("/")
    topics = {
        rel: TopicSpec(f"{ns}/{rel}", msgtype, kind)
        for rel, msgtype, kind in recorded_streams(emb.cameras)
        if rel in ("joint_states", "joint_command", "instruction", "episode/event")
        or rel.startswith("cameras/")
    }
    base_ns = time.time_ns()
    sim_t0 = sim.time
    now_ns = lambda: base_ns + round((sim.time - sim_t0) * 1e9)  # noqa: E731
    name = f"{emb.name}_sim_{seed:06d}"
    info = EpisodeInfo(
        episode=name,
        robot=emb.name,
        instruction=task.instruction,
        operator="scripted_expert",
        seed=seed,
    )
    writer = EpisodeWriter(out / name, list(topics.values()), info, clock_ns=now_ns)
    try:
        t = now_ns()
        writer.write(topics["instruction"].name, msgs.string(task.instruction), t)
        writer.write(topics["episode/event"].name, msgs.string("start"), t)
        dt = 1.0 / config.state_hz
        command_every = max(1, round(config.state_hz / config.command_hz))
        camera_period = 1.0 / config.camera_hz
        next_frame = 0.0
        settled_since: float | None = None
        verdict = sim.verdict()
        rng = np.random.default_rng([seed, 0xDA27])  # the episode's own disturbance
        arm = np.array([j != task.gripper for j in emb.joint_names])
        offset = np.zeros(len(emb.joint_names))
        k = 0
        while True:
            elapsed = k * dt
            t = now_ns()
            if k % command_every == 0:
                target = expert.command(elapsed)
                if config.disturbance_rad > 0:
                    step = command_every * dt / config.disturbance_tau_s
                    noise = rng.standard_normal(len(offset)) * np.sqrt(2.0 * step)
                    offset = offset * (1.0 - step) + config.disturbance_rad * noise * arm
                sim.set_target(target + offset)
                writer.write(
                    topics["joint_command"].name, msgs.joints(t, emb.joint_names, target), t
                )
            writer.write(
                topics["joint_states"].name,
                msgs.joints(t, emb.joint_names, sim.joint_positions()),
                t,
            )
            if elapsed >= next_frame - 1e-9:
                next_frame += camera_period
                for cam in emb.cameras:
                    writer.write(
                        topics[f"cameras/{cam}/image_raw"].name,
                        msgs.image(t, emb.frame_id(cam), sim.render(cam)),
                        t,
                    )
            verdict = sim.verdict()
            if verdict.success:
                settled_since = elapsed if settled_since is None else settled_since
                if elapsed - settled_since >= SETTLE_S:
                    break
            else:
                settled_since = None
            if elapsed >= task.time_limit_s:
                break
            sim.step(dt)
            k += 1
        outcome = "success" if verdict.success else "failure"
        writer.write(topics["episode/event"].name, msgs.string(outcome), now_ns())
    except BaseException:
        writer.abandon()
        raise
    info = writer.close(outcome)
    return Collected(out / name, seed, verdict.success, verdict.reason, info.duration_s)


def collect(
    robot: str,
    episodes: int,
    seed: int,
    out: Path,
    *,
    namespace: str = "",
    config: CollectConfig | None = None,
) -> list[Collected]:
    """Episodes ``seed .. seed + episodes - 1``; prints a summary line."""
    if episodes < 1:
        raise ValueError(f"episodes: must be >= 1, got {episodes}")
    if seed < 0:
        raise ValueError(f"seed: must be >= 0, got {seed}")
    config = config or CollectConfig()
    emb = get_embodiment(robot)
    sim = Simulator(emb, image_size=config.image_size)
    if sim.task is None:
        raise ValueError(f"robot {robot}: its scene defines no task to demonstrate")
    out.mkdir(parents=True, exist_ok=True)
    msgs = CdrMessages()
    results = []
    start = time.perf_counter()
    try:
        for s in tqdm(range(seed, seed + episodes), desc="collecting", unit="episode"):
            results.append(
                collect_episode(
                    sim, s, out, namespace=namespace or emb.name, config=config, messages=msgs
                )
            )
    finally:
        sim.close()
    wall = time.perf_counter() - start
    ok = sum(r.success for r in results)
    sim_s = sum(r.duration_s for r in results)
    print(
        f"collected {len(results)} episodes (seeds {seed}-{seed + episodes - 1}) in {out}: "
        f"{ok} succeeded by the detector; {sim_s:.0f} s simulated in {wall:.0f} s "
        f"({sim_s / max(wall, 1e-9):.1f}x real time)"
    )
    for r in results:
        if not r.success:
            print(f"  seed {r.seed}: failure ({r.reason})")
    return results
