"""The embodied-CoT targets: the scene's kinematics and camera put a point where it is drawn."""

from __future__ import annotations

import numpy as np
import pytest

from gigabrain_runtime.robots.embodiment import get_embodiment
from gigabrain_runtime.sim.simulator import Simulator
from gigabrain_runtime.sim.trajectory import ImageTrajectory

PIPER = get_embodiment("piper")


@pytest.fixture(scope="module")
def projector():
    p = ImageTrajectory(PIPER, "cam_high")
    yield p
    p.close()


def test_a_projected_point_is_where_the_camera_draws_it(projector):
    """The red cube's centre, projected, lands on the red pixels of the rendered image (its
    top face shows a little higher than its centre)."""
    sim = Simulator(PIPER, image_size=224)
    try:
        for seed in (0, 1, 2):
            sim.start_episode(seed)
            img = sim.render("cam_high").astype(int)
            ys, xs = np.nonzero((img[..., 0] > 150) & (img[..., 1] < 80) & (img[..., 2] < 80))
            assert len(xs) > 50, seed
            u, v = projector.project(sim.body_position("cube"))
            assert abs(u - (xs.mean() + 0.5) / 224) < 0.015, seed
            assert abs(v - (ys.mean() + 0.5) / 224) < 0.04, seed
    finally:
        sim.close()


def test_the_gripper_path_follows_the_joint_states(projector):
    """Sweeping the base joint moves the gripper point sideways across the image, and the same
    state always gives the same point."""
    sim = Simulator(PIPER, image_size=64)
    q = sim.joint_positions()
    sim.close()
    q[1:3] = (1.6, -1.2)  # reach forward and down, into the camera's view
    sweep = np.repeat(q[None], 5, axis=0)
    sweep[:, 0] = np.linspace(-0.3, 0.3, 5)
    pts = projector.points(sweep)
    assert np.all((pts > 0) & (pts < 1)), pts
    # the camera faces the arm: turning the base left (+) moves the point to the image's right
    assert np.all(np.diff(pts[:, 0]) > 0.01), pts
    np.testing.assert_array_equal(projector.points(sweep[2:3]), pts[2:3])
    with pytest.raises(ValueError, match="camera 'cam_top' is not in scene piper"):
        ImageTrajectory(PIPER, "cam_top")
