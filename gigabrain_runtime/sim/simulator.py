"""MuJoCo simulation of an embodiment from scene data: MJCF generation, stepping, cameras.

Pure Python + mujoco (no ROS). The robot's bodies, joints, home pose and camera mounts are its
own data (``robots/data/<robot>.yaml``, ``kinematics``); a scene file (``sim/data/<robot>.yaml``)
adds primitive geoms per link, where the robot stands, position-servo gains, objects and world
cameras. Rendering runs off screen (OSMesa on machines without a GPU) in whichever thread calls
:meth:`Simulator.render`, on its own copy of the state, so physics never waits for a frame.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from gigabrain_runtime.geometry import look_at_xyaxes, rpy_to_quat_wxyz
from gigabrain_runtime.robots.embodiment import Embodiment
from gigabrain_runtime.sim.task import (
    EpisodeStart,
    SuccessDetector,
    TaskSpec,
    Verdict,
    sample_start,
)


def _fmt(values: Any) -> str:
    return " ".join(f"{float(v):.6g}" for v in np.atleast_1d(values))


@dataclass(frozen=True)
class JointLink:
    """An embodiment joint and the simulated joints it drives (with a scale each)."""

    name: str
    sim_joints: tuple[str, ...]
    scale: float


def load_scene(embodiment: Embodiment) -> dict[str, Any]:
    """The scene file ``sim/data/<robot>.yaml`` with the robot's own data merged in: bodies
    (its kinematic links, placed at ``robot_pos``, with the scene's ``geoms``), ``joint_map``,
    ``home`` and its camera mounts after the scene's world cameras. ValueError when the robot
    has no scene or no kinematics."""
    robot = embodiment.name
    path = resources.files("gigabrain_runtime.sim") / "data" / f"{robot}.yaml"
    if not path.is_file():
        known = sorted(
            p.name[:-5]
            for p in (resources.files("gigabrain_runtime.sim") / "data").iterdir()
            if p.name.endswith(".yaml")
        )
        raise ValueError(f"robot: no simulation scene for {robot!r} (have: {', '.join(known)})")
    kin = embodiment.kinematics
    if kin is None:
        raise ValueError(f"robot {robot}: no kinematics in its robot file, nothing to simulate")
    scene = yaml.safe_load(path.read_text())
    geoms = scene.pop("geoms", {}) or {}
    unknown = sorted(set(geoms) - set(kin.link_names))
    if unknown:
        raise ValueError(f"scene {robot}: geoms for links the robot does not have: {unknown}")
    root_pos = np.asarray(scene.pop("robot_pos", [0.0, 0.0, 0.0]), dtype=np.float64)
    bodies = []
    for link in kin.links:
        body: dict[str, Any] = {"name": link.name, "parent": link.parent, "pos": list(link.pos)}
        if link.parent == "world":
            body["pos"] = (root_pos + link.pos).tolist()
        if link.rpy is not None:
            body["rpy"] = list(link.rpy)
        if link.joint is not None:
            j = link.joint
            body["joint"] = {"name": j.name, "type": j.type, "axis": list(j.axis)}
            if j.range is not None:
                body["joint"]["range"] = list(j.range)
        body["geoms"] = geoms.get(link.name, [])
        bodies.append(body)
    scene["bodies"] = bodies
    scene["joint_map"] = {
        name: {"joints": list(joints), "scale": scale}
        for name, (joints, scale) in kin.joint_map.items()
    }
    scene["home"] = dict(embodiment.home)
    scene["cameras"] = [
        *scene.get("cameras", []),
        *(
            {"name": c.name, "parent": c.parent, "pos": list(c.pos), "xyaxes": list(c.axes)}
            for c in kin.camera_mounts
        ),
    ]
    return scene


def build_mjcf(scene: dict[str, Any], embodiment: Embodiment, image_size: int) -> str:
    """The scene as an MJCF string: position servos on every simulated joint of the embodiment,
    joint ranges from the embodiment's limits."""
    limits = {j.name: (j.lower, j.upper) for j in embodiment.joints}
    jmap = scene.get("joint_map", {}) or {}
    sim_range: dict[str, tuple[float, float]] = {}
    for name, (lo, hi) in limits.items():
        if name in jmap:
            s = float(jmap[name].get("scale", 1.0))
            for sj in jmap[name]["joints"]:
                sim_range[sj] = (lo * s, hi * s)
        else:
            sim_range[name] = (lo, hi)

    children: dict[str, list[dict[str, Any]]] = {}
    for body in scene["bodies"]:
        children.setdefault(body["parent"], []).append(body)
    cams_by_parent: dict[str, list[dict[str, Any]]] = {}
    for cam in scene.get("cameras", []):
        cams_by_parent.setdefault(cam["parent"], []).append(cam)

    def camera_xml(cam: dict[str, Any]) -> str:
        if "xyaxes" in cam:
            axes = cam["xyaxes"]
        else:
            axes = look_at_xyaxes(cam["pos"], cam.get("lookat", cam.get("lookat_local")))
        return (
            f'<camera name="{cam["name"]}" pos="{_fmt(cam["pos"])}" '
            f'xyaxes="{_fmt(axes)}" fovy="{float(cam.get("fovy", 60.0)):g}"/>'
        )

    def body_xml(body: dict[str, Any], depth: int) -> str:
        pad = "  " * depth
        attrs = f'name="{body["name"]}" pos="{_fmt(body.get("pos", [0, 0, 0]))}"'
        if "rpy" in body:
            attrs += f' quat="{_fmt(rpy_to_quat_wxyz(body["rpy"]))}"'
        lines = [f'{pad}<body {attrs} gravcomp="1">']
        joint = body.get("joint")
        if joint:
            jtype = joint.get("type", "hinge")
            lo, hi = joint.get("range", sim_range.get(joint["name"], (-3.14, 3.14)))
            lines.append(
                f'{pad}  <joint name="{joint["name"]}" type="{jtype}" axis="{_fmt(joint["axis"])}" '
                f'range="{lo:.6g} {hi:.6g}" limited="true" damping="0.5" armature="0.05"/>'
            )
        for g in body.get("geoms", []):
            ga = f'type="{g["type"]}" size="{_fmt(g["size"])}"'
            if "fromto" in g:
                ga += f' fromto="{_fmt(g["fromto"])}"'
            if "pos" in g:
                ga += f' pos="{_fmt(g["pos"])}"'
            ga += f' rgba="{_fmt(g.get("rgba", [0.9, 0.9, 0.92, 1]))}"'
            if "friction" in g:
                ga += f' friction="{_fmt(g["friction"])}"'
            # robot geoms (contype 2) collide with objects only, not with each other or the table
            lines.append(f'{pad}  <geom {ga} contype="2" conaffinity="0"/>')
        if not body.get("geoms"):
            lines.append(
                f'{pad}  <geom type="sphere" size="0.01" mass="0.1" rgba="0 0 0 0" '
                'contype="0" conaffinity="0"/>'
            )
        for cam in cams_by_parent.get(body["name"], []):
            lines.append(f"{pad}  {camera_xml(cam)}")
        for child in children.get(body["name"], []):
            lines.append(body_xml(child, depth + 1))
        lines.append(f"{pad}</body>")
        return "\n".join(lines)

    world = [body_xml(b, 2) for b in children.get("world", [])]
    for cam in cams_by_parent.get("world", []):
        world.append("    " + camera_xml(cam))
    for obj in scene.get("objects", []):
        geom = (
            f'<geom type="{obj["type"]}" size="{_fmt(obj["size"])}" '
            f'rgba="{_fmt(obj["rgba"])}" contype="1" conaffinity="3"/>'
        )
        if obj.get("free"):
            world.append(
                f'    <body name="{obj["name"]}" pos="{_fmt(obj["pos"])}"><freejoint/>{geom}</body>'
            )
        else:
            world.append(f'    <body name="{obj["name"]}" pos="{_fmt(obj["pos"])}">{geom}</body>')

    gains = scene.get("gains", {})
    kp, dr = float(gains.get("kp", 300.0)), float(gains.get("dampratio", 1.0))
    actuators = [
        f'    <position name="{sj}" joint="{sj}" kp="{kp:g}" dampratio="{dr:g}" '
        f'ctrlrange="{lo:.6g} {hi:.6g}" ctrllimited="true"/>'
        for sj, (lo, hi) in sim_range.items()
    ]
    return f"""<mujoco model="{scene["name"]}">
  <compiler angle="radian"/>
  <option timestep="{float(scene.get("timestep", 0.002)):g}" gravity="0 0 -9.81"
          integrator="implicitfast"/>
  <visual><global offwidth="{image_size}" offheight="{image_size}"/>
    <quality shadowsize="0" offsamples="0"/>
    <headlight diffuse="0.6 0.6 0.6" ambient="0.3 0.3 0.3"/></visual>
  <asset>
    <texture name="grid" type="2d" builtin="checker" width="256" height="256"
             rgb1="0.55 0.45 0.35" rgb2="0.5 0.4 0.3"/>
    <material name="table" texture="grid" texrepeat="6 6" reflectance="0"/>
  </asset>
  <worldbody>
    <light pos="0.3 0 1.5" dir="0 0 -1" diffuse="0.8 0.8 0.8" castshadow="false"/>
    <geom name="floor" type="plane" size="1.5 1.5 0.02" material="table"/>
{chr(10).join(world)}
  </worldbody>
  <actuator>
{chr(10).join(actuators)}
  </actuator>
</mujoco>
"""


def import_mujoco() -> Any:
    """MuJoCo, its OpenGL backend chosen before its first import in the process: MuJoCo reads
    MUJOCO_GL once, on import, and its default (GLFW) cannot render without a display; a
    process that imported it any other way first (forward kinematics, say) then fails its first
    render and aborts on the next. OSMesa (CPU) unless the user set MUJOCO_GL (egl on a GPU
    machine, glfw on a desktop). Every import of mujoco in the project goes through here."""
    os.environ.setdefault("MUJOCO_GL", "osmesa")
    try:
        import mujoco
    except ImportError as exc:  # pragma: no cover - a dependency
        raise RuntimeError("mujoco is not installed") from exc
    return mujoco


class Simulator:
    """Thread-safe: physics steps, target updates and state reads hold one lock; rendering
    copies the state under the lock and draws outside it."""

    def __init__(self, embodiment: Embodiment, *, image_size: int = 224) -> None:
        self._mj = mujoco = import_mujoco()
        self.embodiment = embodiment
        self.image_size = image_size
        self.scene = load_scene(embodiment)
        self.xml = build_mjcf(self.scene, embodiment, image_size)
        self.model = mujoco.MjModel.from_xml_string(self.xml)
        self.data = mujoco.MjData(self.model)
        self._render_data = mujoco.MjData(self.model)
        self._fk_data: Any = None  # point_at's own state (forward kinematics only)
        self._lock = threading.Lock()
        jmap = self.scene.get("joint_map", {}) or {}
        self.links = [
            JointLink(j, tuple(jmap[j]["joints"]), float(jmap[j].get("scale", 1.0)))
            if j in jmap
            else JointLink(j, (j,), 1.0)
            for j in embodiment.joint_names
        ]
        self._qpos_adr = {}
        self._act_id = {}
        # a joint's mechanical stops: MuJoCo's limits are soft, so contact can push a joint a
        # little past them (a finger pressed against the cube), which no encoder reads
        self._qpos_range: dict[str, tuple[float, float]] = {}
        for link in self.links:
            for sj in link.sim_joints:
                jid = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_JOINT, sj)
                if jid < 0:
                    raise ValueError(f"scene {embodiment.name}: no simulated joint {sj!r}")
                self._qpos_adr[sj] = int(self.model.jnt_qposadr[jid])
                if self.model.jnt_limited[jid]:
                    lo, hi = self.model.jnt_range[jid]
                    self._qpos_range[sj] = (float(lo), float(hi))
                self._act_id[sj] = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_ACTUATOR, sj)
        self.cameras = tuple(c["name"] for c in self.scene.get("cameras", []))
        missing = [c for c in embodiment.cameras if c not in self.cameras]
        if missing:
            raise ValueError(f"scene {embodiment.name}: cameras {missing} not in the scene")
        home = self.scene.get("home", {}) or {}
        start = np.array(
            [
                home.get(j.name, (j.lower + j.upper) / 2 if not (j.lower <= 0 <= j.upper) else 0.0)
                for j in embodiment.joints
            ]
        )
        start = np.clip(start, embodiment.lower, embodiment.upper)
        self._set_qpos(start)
        self.set_target(start)
        mujoco.mj_forward(self.model, self.data)
        # free objects rest at their scene height (their centre z) when an episode moves them
        self._rest_z = {
            o["name"]: float(o["pos"][2]) for o in self.scene.get("objects", []) if o.get("free")
        }
        self._renderer = None
        self._renderer_thread: int | None = None
        self.task = TaskSpec.from_scene(self.scene) if "task" in self.scene else None
        self._home = start

    @property
    def home(self) -> np.ndarray:
        """The arm's home pose (embodiment order): where an episode's start jitters around."""
        return self._home.copy()

    # ---- episodes ----------------------------------------------------------------------------
    def start_episode(self, seed: int) -> EpisodeStart:
        """Reset to the start of task episode ``seed`` (ValueError if the scene has no task)."""
        if self.task is None:
            raise ValueError(f"scene {self.embodiment.name}: no task defined")
        emb = self.embodiment
        start = sample_start(
            self.task,
            seed,
            self._home,
            emb.lower,
            emb.upper,
            emb.joint_names.index(self.task.gripper),
        )
        self.reset(start)
        return start

    def reset(self, start: EpisodeStart) -> None:
        """Everything at rest: objects where ``start`` puts them (free objects on their resting
        height, fixed ones moved), the arm at ``start.arm`` with its targets there."""
        mj = self._mj
        arm = np.clip(
            np.asarray(start.arm, np.float64), self.embodiment.lower, self.embodiment.upper
        )
        with self._lock:  # one step: the physics thread never sees half a reset
            mj.mj_resetData(self.model, self.data)
            for name, (x, y) in start.objects.items():
                bid = mj.mj_name2id(self.model, mj.mjtObj.mjOBJ_BODY, name)
                if bid < 0:
                    raise ValueError(f"scene {self.scene['name']}: no object {name!r}")
                jnt = self.model.body_jntadr[bid]
                if jnt >= 0:  # a free body: its joint's position and orientation
                    adr = int(self.model.jnt_qposadr[jnt])
                    z = self._rest_z[name]
                    self.data.qpos[adr : adr + 7] = [x, y, z, 1.0, 0.0, 0.0, 0.0]
                else:
                    self.model.body_pos[bid][:2] = (x, y)
            self._set_qpos(arm)
            for link, value in zip(self.links, arm, strict=True):
                for sj in link.sim_joints:
                    self.data.ctrl[self._act_id[sj]] = value * link.scale
            mj.mj_forward(self.model, self.data)

    def verdict(self) -> Verdict:
        """The task's success detector on the current state."""
        if self.task is None:
            raise ValueError(f"scene {self.embodiment.name}: no task defined")
        task = self.task
        mj = self._mj
        bid = mj.mj_name2id(self.model, mj.mjtObj.mjOBJ_BODY, task.pick)
        jnt = self.model.body_jntadr[bid]
        with self._lock:
            pick_pos = self.data.xpos[bid].copy()
            place_pos = self.data.body(task.place).xpos.copy()
            # a free joint's first three velocities: the body's linear velocity, world frame
            dof = int(self.model.jnt_dofadr[jnt]) if jnt >= 0 else -1
            vel = self.data.qvel[dof : dof + 3].copy() if dof >= 0 else np.zeros(3)
            gripper = self._positions(self.data)[self.embodiment.joint_names.index(task.gripper)]
        return SuccessDetector(task).check(pick_pos, vel, place_pos, float(gripper))

    # ---- joints ------------------------------------------------------------------------------
    def _set_qpos(self, positions: np.ndarray) -> None:
        for link, value in zip(self.links, positions, strict=True):
            for sj in link.sim_joints:
                self.data.qpos[self._qpos_adr[sj]] = value * link.scale

    def set_target(self, positions: np.ndarray) -> None:
        """Position targets in embodiment order and units (clamped to the limits)."""
        p = np.clip(
            np.asarray(positions, dtype=np.float64), self.embodiment.lower, self.embodiment.upper
        )
        with self._lock:
            for link, value in zip(self.links, p, strict=True):
                for sj in link.sim_joints:
                    self.data.ctrl[self._act_id[sj]] = value * link.scale

    def joint_positions(self) -> np.ndarray:
        with self._lock:
            return self._positions(self.data)

    def _positions(self, data: Any) -> np.ndarray:
        out = np.empty(len(self.links))
        for i, link in enumerate(self.links):
            out[i] = sum(self._read(data, sj) / link.scale for sj in link.sim_joints) / (
                len(link.sim_joints)
            )
        return out

    def _read(self, data: Any, sim_joint: str) -> float:
        """A joint's position as its encoder reads it: never past its stops."""
        q = float(data.qpos[self._qpos_adr[sim_joint]])
        lo, hi = self._qpos_range.get(sim_joint, (-np.inf, np.inf))
        return min(max(q, lo), hi)

    def step(self, seconds: float) -> None:
        n = max(1, int(round(seconds / self.model.opt.timestep)))
        with self._lock:
            for _ in range(n):
                self._mj.mj_step(self.model, self.data)

    @property
    def time(self) -> float:
        return float(self.data.time)

    def body_position(self, name: str) -> np.ndarray:
        with self._lock:
            return self.data.body(name).xpos.copy()

    def point_at(self, joints: np.ndarray, body: str, point_local: np.ndarray) -> np.ndarray:
        """Forward kinematics: where ``point_local`` (m, in ``body``'s frame) is with the
        arm at ``joints`` (embodiment order). Uses its own MjData: the simulation is untouched."""
        mj = self._mj
        if self._fk_data is None:
            self._fk_data = mj.MjData(self.model)
        data = self._fk_data
        for link, value in zip(self.links, np.asarray(joints, np.float64), strict=True):
            for sj in link.sim_joints:
                data.qpos[self._qpos_adr[sj]] = value * link.scale
        mj.mj_kinematics(self.model, data)
        b = data.body(body)
        return b.xpos + b.xmat.reshape(3, 3) @ np.asarray(point_local, np.float64)

    # ---- cameras -----------------------------------------------------------------------------
    def render(self, camera: str) -> np.ndarray:
        """RGB uint8 [S, S, 3] from ``camera``. The renderer belongs to the first thread that
        calls this (an OpenGL context is per thread)."""
        if self._renderer is None:
            self._renderer = self._mj.Renderer(self.model, self.image_size, self.image_size)
            self._renderer_thread = threading.get_ident()
        elif self._renderer_thread != threading.get_ident():
            raise RuntimeError("Simulator.render must always be called from the same thread")
        with self._lock:
            self._render_data.qpos[:] = self.data.qpos
            self._render_data.qvel[:] = self.data.qvel
            self._render_data.time = self.data.time
        self._mj.mj_forward(self.model, self._render_data)
        self._renderer.update_scene(self._render_data, camera=camera)
        return self._renderer.render()

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def save_xml(self, path: str | Path) -> None:
        Path(path).write_text(self.xml)
