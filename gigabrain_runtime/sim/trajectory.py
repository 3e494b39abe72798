"""Embodied chain-of-thought targets for a simulated robot: where the gripper will be, drawn in
the first camera's image.

GigaBrain-0 predicts, from its prefix, a 2D trajectory of the end effector in the image
(``trajectory_points`` points in [0, 1]) before it acts. For a simulated robot this target needs
no labelling: the dataset's joint states, put through the scene's kinematics, give the gripper
point (the scripted expert's ``body`` + ``point``) at every frame, and the scene's camera (its
pose and vertical field of view, a pinhole with square pixels) projects it. Coordinates are
(u, v) = (column, row) / (width, height) of the rendered image, which the simulator renders
square, so the engine's letterbox leaves them unchanged.
"""

from __future__ import annotations

import numpy as np

from gigabrain_runtime.robots.embodiment import Embodiment


class ImageTrajectory:
    """Projects the gripper point of ``embodiment``'s scene into ``camera`` for joint states."""

    def __init__(self, embodiment: Embodiment, camera: str) -> None:
        from gigabrain_runtime.sim.simulator import Simulator, import_mujoco

        mujoco = import_mujoco()
        sim = Simulator(embodiment, image_size=64)  # kinematics only; nothing is rendered
        task = sim.scene.get("expert")
        if not task:
            raise ValueError(
                f"trajectory: scene {embodiment.name} names no gripper point (its 'expert' "
                "section's body and point)"
            )
        self._mj = mujoco
        self._sim = sim
        self._data = mujoco.MjData(sim.model)
        self._body = mujoco.mj_name2id(sim.model, mujoco.mjtObj.mjOBJ_BODY, task["body"])
        self._point = np.asarray(task["point"], dtype=np.float64)
        self._cam = mujoco.mj_name2id(sim.model, mujoco.mjtObj.mjOBJ_CAMERA, camera)
        if self._cam < 0:
            raise ValueError(
                f"trajectory: camera {camera!r} is not in scene {embodiment.name} "
                f"(cameras: {list(sim.cameras)})"
            )
        fovy = np.deg2rad(float(sim.model.cam_fovy[self._cam]))
        self._focal = 0.5 / np.tan(fovy / 2.0)  # in image heights (= widths: square pixels)

    def points(self, states: np.ndarray) -> np.ndarray:
        """Joint states [T, dof] (embodiment order) -> image points [T, 2], (u, v), in [0, 1]
        while in view (outside it beyond the edge: clip for a sigmoid head)."""
        sim, data, mj = self._sim, self._data, self._mj
        out = np.empty((len(states), 2))
        for i, q in enumerate(np.asarray(states, dtype=np.float64)):
            for link, value in zip(sim.links, q, strict=True):
                for sj in link.sim_joints:
                    data.qpos[sim._qpos_adr[sj]] = value * link.scale
            mj.mj_kinematics(sim.model, data)
            mj.mj_camlight(sim.model, data)
            point = data.xpos[self._body] + data.xmat[self._body].reshape(3, 3) @ self._point
            out[i] = self.project(point)
        return out

    def project(self, point: np.ndarray) -> np.ndarray:
        """A world point -> (u, v) in the camera's image, the camera where the last
        :meth:`points` put it (or at the scene's start)."""
        data = self._data
        if not data.cam_xmat[self._cam].any():
            self._mj.mj_kinematics(self._sim.model, data)
            self._mj.mj_camlight(self._sim.model, data)
        rot = data.cam_xmat[self._cam].reshape(3, 3)
        x, y, z = rot.T @ (np.asarray(point, float) - data.cam_xpos[self._cam])  # looks along -z
        depth = max(-z, 1e-6)
        return np.array([0.5 + self._focal * x / depth, 0.5 - self._focal * y / depth])

    def close(self) -> None:
        self._sim.close()
