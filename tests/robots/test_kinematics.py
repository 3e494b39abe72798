"""Kinematic chains as robot data: validation, and the forward kinematics the calibration tools
use agreeing with the simulator's bodies, which are built from the same data."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from gigabrain_runtime.calibration.kinematics import ArmKinematics
from gigabrain_runtime.robots.embodiment import EMBODIMENTS, Embodiment, get_embodiment
from gigabrain_runtime.robots.kinematics import Kinematics

WITH_KINEMATICS = [n for n in EMBODIMENTS if EMBODIMENTS.get(n).kinematics is not None]


def test_the_single_robots_have_kinematics():
    assert {"piper", "g1"} <= set(WITH_KINEMATICS)


@pytest.mark.parametrize("robot", WITH_KINEMATICS)
def test_forward_kinematics_match_the_simulated_bodies(robot):
    from gigabrain_runtime.sim.simulator import Simulator

    emb = get_embodiment(robot)
    sim = Simulator(emb, image_size=32)
    kin = emb.kinematics
    roots = [lk.name for lk in kin.links if lk.parent == "world"]
    rng = np.random.default_rng(3)
    for _ in range(5):
        q = rng.uniform(emb.lower, emb.upper)
        sim._set_qpos(q)
        sim._mj.mj_kinematics(sim.model, sim.data)
        for link in kin.links:
            if link.parent == "world":
                continue
            arm = ArmKinematics(emb, flange=link.name, base=roots[0])
            b = sim.data.body(link.name)
            base = sim.data.body(roots[0])
            T_world = np.eye(4)
            T_world[:3, :3], T_world[:3, 3] = b.xmat.reshape(3, 3), b.xpos
            T_base = np.eye(4)
            T_base[:3, :3], T_base[:3, 3] = base.xmat.reshape(3, 3), base.xpos
            # the MJCF carries link orientations as quaternions with 6 significant digits
            np.testing.assert_allclose(
                arm.flange_pose(q), np.linalg.inv(T_base) @ T_world, atol=5e-6
            )


def test_the_wrist_camera_mount_and_the_flange_come_from_the_robot_data():
    kin = ArmKinematics("piper")
    assert (kin.base, kin.flange) == ("base_link", "link6")
    assert kin.chain_joints == ("joint1", "joint2", "joint3", "joint4", "joint5", "joint6")
    parent, T = kin.camera_mount("cam_wrist")
    # xyaxes (1,0,0, 0,-1,0): looking along +z of link6; the optical frame's y is down = -y_mount
    assert parent == "link6"
    np.testing.assert_allclose(T[:3, :3], np.eye(3), atol=1e-15)
    np.testing.assert_allclose(T[:3, 3], [0.0, -0.05, 0.03])


def test_a_robot_without_kinematics_is_named():
    with pytest.raises(ValueError, match="robot: piper_dual has no kinematics .* --arm-prefix"):
        ArmKinematics("piper_dual")


TOY = """
name: toy
embodiment_id: 9
cameras: [cam]
joints:
  - {name: j1, lower: -1, upper: 1, max_velocity: 1, max_acceleration: 1}
kinematics:
  links:
    - {name: base, parent: world}
    - {name: l1, parent: base, pos: [0, 0, 1], joint: {name: j1, axis: [0, 0, 1]}}
"""
B_J1 = "{name: b, parent: world, joint: {name: j1, axis: [1, 0, 0]}}"


def _robot(**extra):
    data = yaml.safe_load(TOY)
    data.update({k: yaml.safe_load(v) if isinstance(v, str) else v for k, v in extra.items()})
    return Embodiment.from_dict(data, source="toy.yaml")


def test_a_hinge_turns_its_link_about_the_axis():
    kin = _robot().kinematics
    T = kin.link_poses({"j1": np.pi / 2})["l1"]
    np.testing.assert_allclose(T[:3, 3], [0, 0, 1])
    np.testing.assert_allclose(T[:3, :3] @ [1, 0, 0], [0, 1, 0], atol=1e-15)


@pytest.mark.parametrize(
    ("kinematics", "message"),
    [
        ("links: [{name: l1, parent: base}]", "l1's parent 'base' must be listed"),
        (
            "links: [{name: b, parent: world, joint: {name: j1, axis: [0, 0]}}]",
            r"links\[0\].joint.axis: expected 3 finite numbers",
        ),
        ("links: [{name: b, parent: world}]", "joint j1 drives no chain joint"),
        (
            f"links: [{B_J1}]\ncamera_mounts: [{{name: cam, parent: nope, pos: [0, 0, 0], "
            "xyaxes: [1, 0, 0, 0, 1, 0]}]",
            "cam's parent 'nope'",
        ),
        (f"links: [{B_J1}]\njoint_map: {{j1: {{joints: [j7]}}}}", r"joint_map.j1: no chain joints"),
    ],
)
def test_bad_kinematics_are_refused_naming_the_field(kinematics, message):
    with pytest.raises(ValueError, match=message):
        _robot(kinematics=kinematics)


def test_home_must_name_joints_within_their_limits():
    assert _robot(home={"j1": 0.5}).home == {"j1": 0.5}
    with pytest.raises(ValueError, match=r"home.j1 must be within \[-1, 1\]"):
        _robot(home={"j1": 2.0})
    with pytest.raises(ValueError, match="home.j9 is not a joint"):
        _robot(home={"j9": 0.0})


def test_kinematics_parse_errors_name_the_file():
    with pytest.raises(ValueError, match="toy.yaml: kinematics: expected a mapping"):
        Kinematics.from_dict([1, 2], source="toy.yaml")
