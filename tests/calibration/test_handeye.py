"""Hand-eye calibration against rendered board views of a PiPER with a known camera mount.

The views go through the whole pipeline a user's images do: corner detection, PnP, forward
kinematics from the embodiment's scene, the closed-form solvers and the refinement.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from gigabrain_runtime.calibration.handeye import (
    SETUPS,
    HandEyeResult,
    ViewResidual,
    calibrate_hand_eye,
    check_motion,
    observe,
    resolve_flips,
    select_samples,
)
from gigabrain_runtime.calibration.intrinsics import Board
from gigabrain_runtime.calibration.kinematics import ArmKinematics
from gigabrain_runtime.calibration.synthetic import hand_eye_views
from gigabrain_runtime.geometry import pose, rotation_angle_deg
from gigabrain_runtime.perception.camera_info import CameraInfo

ROOT = Path(__file__).resolve().parents[2]
K = np.array([[600.0, 0, 320], [0, 600.0, 240], [0, 0, 1]])
SIZE = (640, 480)
INFO = CameraInfo.from_intrinsics("cam_wrist", *SIZE, K, np.zeros(5))
# a wrist camera sees a 17.5 cm board at ~0.3 m; a fixed camera a 21 cm board at ~0.45 m
BOARDS = {"eye-in-hand": Board(cols=7, rows=6, square_m=0.025), "eye-to-hand": Board(square_m=0.03)}


@pytest.fixture(scope="module")
def views():
    return {
        setup: hand_eye_views(BOARDS[setup], K, SIZE, setup=setup, n=16, seed=11)
        for setup in SETUPS
    }


def pose_error(truth: np.ndarray, estimate: np.ndarray) -> tuple[float, float]:
    """(translation mm, rotation deg) between two 4x4 poses."""
    d = np.linalg.inv(truth) @ estimate
    return float(np.linalg.norm(d[:3, 3]) * 1000), rotation_angle_deg(d[:3, :3])


def solve(v, board, **kw):
    return calibrate_hand_eye(
        setup=v.setup,
        images=kw.pop("images", v.images),
        flange_poses=kw.pop("flange_poses", v.flange_poses),
        info=INFO,
        board=board,
        robot=v.robot,
        camera="cam_wrist",
        base_frame=v.base,
        flange_frame=v.flange,
        **kw,
    )


@pytest.mark.parametrize("setup", SETUPS)
def test_recovers_the_camera_mount_within_5_mm_and_half_a_degree(views, setup):
    v = views[setup]
    result = solve(v, BOARDS[setup])
    mm, deg = pose_error(v.camera_pose, result.matrix)
    assert mm < 5.0 and deg < 0.5, (mm, deg)
    board_mm, board_deg = pose_error(v.board_pose, result.board_matrix)
    assert board_mm < 5.0 and board_deg < 0.5, (board_mm, board_deg)
    assert result.views_used == 16 and result.reprojection_px < 0.5
    assert result.rotation_residual_deg < 0.5 and result.translation_residual_mm < 2.0
    parent, board_parent = (
        ("link6", "base_link") if setup == "eye-in-hand" else ("base_link", "link6")
    )
    assert (result.parent_frame, result.board_parent_frame) == (parent, board_parent)
    assert result.child_frame == "cam_wrist_optical_frame"


def test_the_yaml_round_trips_with_the_pose_and_the_residuals(views, tmp_path):
    result = solve(views["eye-in-hand"], BOARDS["eye-in-hand"], camera_info_path="cam.yaml")
    path = result.write(tmp_path / "calibration" / "piper" / "cam_wrist_extrinsics.yaml")
    raw = yaml.safe_load(path.read_text())
    assert raw["parent_frame"] == "link6" and raw["child_frame"] == "cam_wrist_optical_frame"
    assert set(raw["translation"]) == {"x", "y", "z"}
    assert set(raw["rotation"]) == {"x", "y", "z", "w"}
    assert raw["views_used"] == 16 and len(raw["per_view"]) == 16
    assert raw["residuals"]["reprojection_px"]["mean"] == pytest.approx(
        result.reprojection_px, abs=1e-4
    )
    back = HandEyeResult.read(path)
    np.testing.assert_allclose(back.matrix, result.matrix, atol=1e-12)
    np.testing.assert_allclose(back.board_matrix, result.board_matrix, atol=1e-12)
    assert back.method == result.method and back.views_total == 16
    assert back.rotation_residual_deg == pytest.approx(result.rotation_residual_deg, abs=1e-4)


def test_an_invalid_result_names_the_field():
    fields = dict(
        setup="eye-in-hand",
        robot="piper",
        camera="cam_wrist",
        parent_frame="link6",
        child_frame="cam_wrist_optical_frame",
        translation_m=(0.0, 0.0, 0.05),
        quaternion_xyzw=(0.0, 0.0, 0.0, 2.0),
        method="park",
        views_total=1,
        per_view=(ViewResidual(index=0, reprojection_px=0.1, rotation_deg=0.1, translation_mm=1),),
        board_parent_frame="base_link",
        board_translation_m=(0.3, 0.0, 0.0),
        board_quaternion_xyzw=(0.0, 0.0, 0.0, 1.0),
    )
    with pytest.raises(ValueError, match="quaternion_xyzw: must be a unit quaternion"):
        HandEyeResult(**fields)
    with pytest.raises(ValueError, match="setup: unknown 'eye-on-hand'"):
        HandEyeResult(**{**fields, "quaternion_xyzw": (0, 0, 0, 1), "setup": "eye-on-hand"})


def test_too_few_views_is_a_clear_error_naming_the_count(views):
    v = views["eye-in-hand"]
    blank = [np.full((480, 640), 128, np.uint8)] * 2
    with pytest.raises(ValueError, match="board was found in 3 of 5 views; .* at least 5"):
        solve(
            v, BOARDS["eye-in-hand"], images=v.images[:3] + blank, flange_poses=v.flange_poses[:5]
        )
    with pytest.raises(ValueError, match="flange_poses: 4 given for 5 images"):
        solve(v, BOARDS["eye-in-hand"], images=v.images[:5], flange_poses=v.flange_poses[:4])


def test_rotations_about_a_single_axis_are_rejected_as_degenerate():
    kin = ArmKinematics("piper")
    q0 = np.array([0.0, 1.0, -1.2, 0.0, 0.6, 0.0, 0.06])
    only_wrist_roll = [kin.flange_pose(q0 + [0, 0, 0, 0, 0, a, 0]) for a in np.linspace(-1, 1, 8)]
    with pytest.raises(ValueError, match="degenerate motion - every rotation .* about one axis"):
        check_motion(only_wrist_roll)
    translated = [pose(np.eye(3), [0.01 * i, 0.02 * (i % 2), 0.0]) for i in range(8)]
    with pytest.raises(ValueError, match="hardly changes between views"):
        check_motion(translated)
    varied = [kin.flange_pose(q0 + [0, 0, 0, a, b, c, 0]) for a, b, c in np.eye(3) * 0.4]
    check_motion(varied + [kin.flange_pose(q0)])  # two axes and more: fine


def test_corners_read_the_other_way_round_are_turned_back(views):
    # OpenCV orders a checkerboard's corners by where they fall in the image: a camera rolled
    # past 90 degrees reports them reversed, i.e. the board turned by 180 degrees
    v = views["eye-in-hand"]
    board = BOARDS["eye-in-hand"]
    obs = [observe(img, INFO, board, i) for i, img in enumerate(v.images)]
    A = [np.linalg.inv(F) for F in v.flange_poses]
    reversed_ = []
    for k, o in enumerate(obs):
        if k % 3 == 1:
            o = observe(v.images[k], INFO, board, k)
            o.image_points = o.image_points[::-1].copy()
            ok, rvec, tvec = cv2.solvePnP(o.object_points, o.image_points, K, None)
            R, _ = cv2.Rodrigues(rvec)
            o.T_cam_board = np.eye(4)
            o.T_cam_board[:3, :3], o.T_cam_board[:3, 3] = R, tvec.reshape(3)
        reversed_.append(o)
    fixed, flipped = resolve_flips(A, reversed_)
    assert flipped == len(range(1, 16, 3))
    for a, b in zip(fixed, obs, strict=True):
        np.testing.assert_allclose(a.T_cam_board, b.T_cam_board, atol=1e-4)


def test_images_pair_with_the_nearest_still_joint_state_one_per_pose():
    ms = 1_000_000
    joint_ns = np.arange(0, 3000, 10) * ms  # 100 Hz for 3 s
    q = np.zeros((joint_ns.size, 2))
    q[(joint_ns >= 1000 * ms)] = 0.5  # a jump at 1 s ...
    ramp = (joint_ns >= 1000 * ms) & (joint_ns < 1300 * ms)  # ... reached by a 0.3 s ramp
    q[ramp, 0] = (joint_ns[ramp] / ms - 1000) / 300 * 0.5
    image_ns = np.array([500, 800, 1150, 1600, 1605, 2500, 3100]) * ms
    sel = select_samples(image_ns, joint_ns, q, max_dt_s=0.02)
    # 500: used; 800: same pose; 1150: moving; 1600: used; 1605 and 2500: same pose;
    # 3100: the last joint state is 110 ms earlier
    assert [i for i, _ in sel.pairs] == [0, 3]
    assert [joint_ns[j] // ms for _, j in sel.pairs] == [500, 1600]
    assert (sel.unmatched, sel.moving, sel.repeated, sel.images) == (1, 1, 3, 7)


def test_kinematics_read_joints_by_name_and_name_what_is_missing():
    kin = ArmKinematics("piper", arm_prefix="left_")
    assert kin.flange == "link6" and kin.base == "base_link"
    names = [f"left_joint{i}" for i in range(1, 7)]
    q = kin.positions_from_names(names, [0.1, 1.0, -1.0, 0.0, 0.5, 0.2])
    assert q.shape == (7,) and q[-1] == 0.0  # the gripper does not move the flange
    with pytest.raises(ValueError, match="joints: missing left_joint3"):
        kin.positions_from_names(names[:2] + names[3:], [0.0] * 5)
    with pytest.raises(ValueError, match="flange: cannot tell which link of g1"):
        ArmKinematics("g1")


def write_folder(v, folder: Path, columns: list[str] | None = None) -> None:
    folder.mkdir(parents=True)
    columns = columns or list(v.joint_names)
    idx = [v.joint_names.index(c) for c in columns]
    with (folder / "joints.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image", *columns])
        for i, (img, q) in enumerate(zip(v.images, v.joint_positions, strict=True)):
            cv2.imwrite(str(folder / f"{i:02d}.png"), img)
            w.writerow([f"{i:02d}.png", *(f"{q[k]:.6f}" for k in idx)])


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gigabrain_runtime", "calibrate", "hand-eye", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


@pytest.mark.parametrize("setup", SETUPS)
def test_cli_on_a_folder_of_images_and_a_joints_csv(views, setup, tmp_path):
    v = views[setup]
    board = BOARDS[setup]
    write_folder(v, tmp_path / "views")
    INFO.write(tmp_path / "cam_wrist.yaml")
    out = tmp_path / "calibration" / "piper" / "cam_wrist_extrinsics.yaml"
    run = cli(
        "--robot", "piper",
        "--camera-info", str(tmp_path / "cam_wrist.yaml"),
        "--board", "checkerboard",
        "--cols", str(board.cols),
        "--rows", str(board.rows),
        "--square", str(board.square_m),
        "--setup", setup,
        "--images", str(tmp_path / "views"),
        "--out", str(out),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "16 of 16 with the board found" in run.stdout
    assert "residuals: reprojection" in run.stdout and "static_transform_publisher" in run.stdout
    mm, deg = pose_error(v.camera_pose, HandEyeResult.read(out).matrix)
    assert mm < 5.0 and deg < 0.5, (mm, deg)


def test_cli_names_a_missing_joint_column(views, tmp_path):
    v = views["eye-in-hand"]
    write_folder(v, tmp_path / "views", columns=["joint1", "joint2", "joint4", "joint5", "joint6"])
    INFO.write(tmp_path / "cam_wrist.yaml")
    run = cli(
        "--robot", "piper", "--camera-info", str(tmp_path / "cam_wrist.yaml"),
        "--setup", "eye-in-hand", "--images", str(tmp_path / "views"),
        "--out", str(tmp_path / "out.yaml"),
    )  # fmt: skip
    assert run.returncode == 2
    assert "joints: missing joint3" in run.stderr and "Traceback" not in run.stderr


def write_bag(v, path: Path) -> int:
    """An episode as the recorder writes it: each pose reached by a 0.3 s move and held, joint
    states at 100 Hz, three frames per pose (one mid-move) and a last frame after the joint
    stream stopped. Returns the number of frames."""
    from gigabrain_runtime.bags import typestore
    from gigabrain_runtime.hilr.recording import EpisodeInfo, EpisodeWriter, TopicSpec

    ts = typestore()
    T = ts.types

    def header(t_ns: int):
        stamp = T["builtin_interfaces/msg/Time"](sec=t_ns // 10**9, nanosec=t_ns % 10**9)
        return T["std_msgs/msg/Header"](stamp=stamp, frame_id="")

    image_t, joint_t = "sensor_msgs/msg/Image", "sensor_msgs/msg/JointState"
    w = EpisodeWriter(
        path,
        [TopicSpec("/cam_wrist/image_raw", image_t, "sensor"), TopicSpec("/joint_states", joint_t)],
        EpisodeInfo(episode=path.name, robot="piper"),
    )
    t0, frames = 10**18, 0
    for k, (q, img) in enumerate(zip(v.joint_positions, v.images, strict=True)):
        prev = v.joint_positions[max(k - 1, 0)]
        for ms in range(0, 1000, 10):
            s = min(ms / 300, 1.0)
            t = t0 + (k * 1000 + ms) * 10**6
            msg = T[joint_t](
                header=header(t),
                name=list(v.joint_names),
                position=prev + s * (q - prev),
                velocity=np.array([], float),
                effort=np.array([], float),
            )
            w.write("/joint_states", bytes(ts.serialize_cdr(msg, joint_t)), t)
        ends = (150, 600, 800) + ((1500,) if k == len(v.images) - 1 else ())
        for ms in ends:
            t = t0 + (k * 1000 + ms) * 10**6
            msg = T[image_t](
                header=header(t),
                height=img.shape[0],
                width=img.shape[1],
                encoding="mono8",
                is_bigendian=0,
                step=img.shape[1],
                data=np.ascontiguousarray(img).reshape(-1),
            )
            w.write("/cam_wrist/image_raw", bytes(ts.serialize_cdr(msg, image_t)), t)
            frames += 1
    w.close("success")
    return frames


def test_cli_on_a_recorded_bag_pairs_frames_with_joint_states(tmp_path):
    board = BOARDS["eye-in-hand"]
    v = hand_eye_views(board, K, SIZE, setup="eye-in-hand", n=12, seed=5)
    frames = write_bag(v, tmp_path / "episode")
    INFO.write(tmp_path / "cam_wrist.yaml")
    out = tmp_path / "cam_wrist_extrinsics.yaml"
    run = cli(
        "--robot", "piper", "--camera-info", str(tmp_path / "cam_wrist.yaml"),
        "--cols", "7", "--rows", "6", "--square", "0.025", "--setup", "eye-in-hand",
        "--bag", str(tmp_path / "episode"), "--image-topic", "/cam_wrist/image_raw",
        "--joint-topic", "/joint_states", "--out", str(out),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert (
        f"{frames} images in the bag: 12 paired with a joint state within 20 ms and used; "
        "skipped 1 without a joint state that close, 11 taken while the arm moved, "
        "13 repeating a pose"
    ) in run.stdout
    mm, deg = pose_error(v.camera_pose, HandEyeResult.read(out).matrix)
    assert mm < 5.0 and deg < 0.5, (mm, deg)
