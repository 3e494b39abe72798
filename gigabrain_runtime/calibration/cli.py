"""``gigabrain-runtime calibrate camera|hand-eye|joints``: intrinsics, the camera's pose on the
robot (from board views in a folder or a bag), and joint zero offsets (from the arm held at a
reference pose)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gigabrain_runtime.bags import open_bag
from gigabrain_runtime.calibration.handeye import SETUPS
from gigabrain_runtime.calibration.intrinsics import Board, calibrate, corners_mosaic

if TYPE_CHECKING:
    from gigabrain_runtime.calibration.kinematics import ArmKinematics

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def images_from_dir(folder: Path) -> list[np.ndarray]:
    import cv2

    files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"images: no {'/'.join(IMAGE_SUFFIXES)} files in {folder}")
    out = []
    for f in files:
        img = cv2.imread(str(f), cv2.IMREAD_COLOR)
        if img is None:
            raise ValueError(f"images: cannot read {f}")
        out.append(img[:, :, ::-1])
    return out


def _decode_image(msgtype: str, m: Any) -> np.ndarray:
    """An Image or CompressedImage from a bag -> RGB."""
    from gigabrain_runtime.perception.images import decode_compressed, decode_raw

    if msgtype.endswith("CompressedImage"):
        return decode_compressed(m.format, bytes(m.data))
    return decode_raw(m.encoding, m.height, m.width, m.step, bytes(m.data))


def images_from_bag(bag: Path, topic: str, every: int) -> list[np.ndarray]:
    """Every ``every``-th frame of an Image (or CompressedImage) topic in a rosbag2 directory."""
    with open_bag(bag) as b:
        b.require(topic)
        return [
            _decode_image(m.msgtype, m.msg)
            for m in b.messages([topic], keep=lambda i: i % every == 0)
        ]


def run(args: argparse.Namespace) -> int:
    import cv2

    board = _board(args)
    if args.images:
        images = images_from_dir(Path(args.images))
    elif args.bag:
        if not args.topic:
            raise ValueError("topic: --bag needs --topic (the camera's image topic)")
        images = images_from_bag(Path(args.bag), args.topic, args.every)
    else:
        raise ValueError("source: give --images DIR or --bag BAG --topic T")
    out = Path(args.out)
    name = args.camera or out.stem
    result = calibrate(images, board, name)
    result.info.write(out)
    png = Path(args.png) if args.png else out.with_suffix(".corners.png")
    cv2.imwrite(str(png), corners_mosaic(images, board, result))
    k = result.info.K
    print(
        f"{name}: fx {k[0, 0]:.2f} fy {k[1, 1]:.2f} cx {k[0, 2]:.2f} cy {k[1, 2]:.2f}; "
        f"distortion {np.array2string(result.info.D, precision=4)}"
    )
    print(
        f"reprojection error: rms {result.rms_px:.3f} px (worst view "
        f"{max(result.per_view_px):.3f} px); board found in {len(result.used)} of "
        f"{len(images)} views"
    )
    print(f"wrote {out} and {png}")
    return 0


# ---- hand-eye ------------------------------------------------------------------------------------
def samples_from_folder(
    folder: Path, joints_csv: Path, kin: ArmKinematics
) -> tuple[list[np.ndarray], list[np.ndarray], list[str]]:
    """(images, embodiment-ordered joint positions, file names) from a folder and a CSV with an
    ``image`` column and one column per joint (names as the embodiment's, with the arm prefix;
    joints that do not move the flange may be left out)."""
    import csv

    import cv2

    if not joints_csv.is_file():
        raise FileNotFoundError(f"joints: no such file {joints_csv}")
    with joints_csv.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"joints: {joints_csv} has no rows")
    header = list(rows[0])
    if "image" not in header:
        raise ValueError(f"joints: {joints_csv} needs an 'image' column (has: {', '.join(header)})")
    names = [h for h in header if h != "image"]
    images, positions, files = [], [], []
    for n, row in enumerate(rows, start=2):
        path = Path(folder) / row["image"]
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            raise ValueError(f"joints: {joints_csv} line {n}: cannot read image {path}")
        try:
            values = [float(row[h]) for h in names]
        except (TypeError, ValueError):
            raise ValueError(
                f"joints: {joints_csv} line {n}: a joint value is not a number"
            ) from None
        positions.append(kin.positions_from_names(names, values))
        images.append(img[:, :, ::-1])
        files.append(row["image"])
    return images, positions, files


def _stamp_ns(msg: Any, log_ns: int) -> int:
    """The message's header stamp (capture time), or the log time where the stamp is unset."""
    stamp = msg.header.stamp
    ns = int(stamp.sec) * 10**9 + int(stamp.nanosec)
    return ns if ns > 0 else int(log_ns)


def samples_from_bag(
    bag: Path, image_topic: str, joint_topic: str, kin: ArmKinematics, **selection: float
) -> tuple[list[np.ndarray], list[np.ndarray], list[str], Any]:
    """(images, joint positions, labels, SampleSelection) from a rosbag2 episode: each image
    paired with the nearest joint state in time; see :func:`select_samples` for which images
    are kept. Images are decoded only when kept."""
    from gigabrain_runtime.calibration.handeye import select_samples

    with open_bag(bag) as b:
        b.require(image_topic, "image-topic")
        b.require(joint_topic, "joint-topic")
        joint_ns, joint_q = [], []
        problem = ""
        for m in b.messages([joint_topic]):
            try:
                q = kin.positions_from_names(list(m.msg.name), [float(v) for v in m.msg.position])
            except ValueError as exc:  # e.g. a gripper-only message on a shared topic
                problem = str(exc)
                continue
            joint_ns.append(_stamp_ns(m.msg, m.log_time_ns))
            joint_q.append(q)
        if not joint_q:
            raise ValueError(
                f"joint-topic: no message on {joint_topic} has the arm's joints ({problem})"
            )
        image_ns = [_stamp_ns(m.msg, m.log_time_ns) for m in b.messages([image_topic])]
        chain = [i for i, j in enumerate(kin.embodiment.joint_names) if j in kin.chain_joints]
        sel = select_samples(
            np.array(image_ns),
            np.array(joint_ns),
            np.array(joint_q)[:, chain],
            **selection,
        )
        wanted = dict(sel.pairs)
        kept = b.messages([image_topic], keep=wanted.__contains__)
        # the kept messages come in index order
        images = {
            i: _decode_image(m.msgtype, m.msg) for i, m in zip(sorted(wanted), kept, strict=True)
        }
    order = [i for i, _ in sel.pairs]
    t0 = min(image_ns) if image_ns else 0
    labels = [f"t={(image_ns[i] - t0) * 1e-9:.2f}s" for i in order]
    return [images[i] for i in order], [joint_q[wanted[i]] for i in order], labels, sel


def run_hand_eye(args: argparse.Namespace) -> int:
    from gigabrain_runtime.calibration.handeye import calibrate_hand_eye
    from gigabrain_runtime.calibration.kinematics import ArmKinematics
    from gigabrain_runtime.geometry import matrix_to_quat_xyzw, rotation_angle_deg
    from gigabrain_runtime.perception.camera_info import CameraInfo

    info_path = Path(args.camera_info)
    if not info_path.is_file():
        raise FileNotFoundError(f"camera-info: no such file {info_path}")
    info = CameraInfo.read(info_path)
    camera = args.camera or info.camera_name
    board = _board(args)
    kin = ArmKinematics(
        args.robot,
        flange=args.flange,
        base=args.base,
        arm_prefix=args.arm_prefix,
        camera=camera if args.setup == "eye-in-hand" else None,
    )
    if args.images and args.bag:
        raise ValueError("source: give either --images DIR or --bag BAG, not both")
    if args.images:
        folder = Path(args.images)
        if not folder.is_dir():
            raise FileNotFoundError(f"images: no such directory {folder}")
        joints = Path(args.joints) if args.joints else folder / "joints.csv"
        images, positions, labels = samples_from_folder(folder, joints, kin)
        print(f"{len(images)} images with joint positions from {joints}")
    elif args.bag:
        if not args.image_topic or not args.joint_topic:
            raise ValueError("topic: --bag needs --image-topic and --joint-topic")
        images, positions, labels, sel = samples_from_bag(
            Path(args.bag),
            args.image_topic,
            args.joint_topic,
            kin,
            max_dt_s=args.max_dt,
            max_speed_rad_s=args.max_joint_speed,
            min_change_rad=args.min_joint_change,
        )
        print(
            f"{sel.images} images in the bag: {len(sel.pairs)} paired with a joint state "
            f"within {args.max_dt * 1000:.0f} ms and used; skipped {sel.unmatched} without a "
            f"joint state that close, {sel.moving} taken while the arm moved, {sel.repeated} "
            "repeating a pose"
        )
    else:
        raise ValueError(
            "source: give --images DIR [--joints CSV] or --bag BAG --image-topic T --joint-topic J"
        )
    result = calibrate_hand_eye(
        setup=args.setup,
        images=images,
        flange_poses=[kin.flange_pose(q) for q in positions],
        info=info,
        board=board,
        robot=kin.embodiment.name,
        camera=camera,
        base_frame=args.arm_prefix + kin.base,
        flange_frame=args.arm_prefix + kin.flange,
        child_frame=args.child_frame,
        camera_info_path=str(info_path),
    )
    out = result.write(
        args.out or Path("calibration") / kin.embodiment.name / f"{camera}_extrinsics.yaml"
    )

    t, q = result.translation_m, result.quaternion_xyzw
    print(f"{result.setup}: T_{result.parent_frame}_{result.child_frame} ({result.method})")
    print(f"  translation (m)  x {t[0]:+.4f}  y {t[1]:+.4f}  z {t[2]:+.4f}")
    print(f"  quaternion xyzw  {q[0]:+.5f} {q[1]:+.5f} {q[2]:+.5f} {q[3]:+.5f}")
    print(f"  views: {result.views_used} of {result.views_total} with the board found")
    print(f"  {'view':<14} {'reproj px':>9} {'rot deg':>8} {'trans mm':>9}")
    for v in result.per_view:
        print(
            f"  {labels[v.index]:<14} {v.reprojection_px:9.3f} {v.rotation_deg:8.3f} "
            f"{v.translation_mm:9.2f}"
        )
    worst = max(result.per_view, key=lambda v: v.reprojection_px)
    print(
        f"residuals: reprojection {result.reprojection_px:.3f} px mean (worst "
        f"{worst.reprojection_px:.3f} px, {labels[worst.index]}); board pose consistency "
        f"{result.rotation_residual_deg:.3f} deg, {result.translation_residual_mm:.2f} mm mean"
    )
    if args.setup == "eye-in-hand" and not args.arm_prefix:
        try:
            parent, nominal = kin.camera_mount(camera)
        except ValueError:
            parent = None
        if parent == kin.flange:
            d = np.linalg.inv(nominal) @ result.matrix
            print(
                f"vs the robot data's nominal {camera} mount: "
                f"{np.linalg.norm(d[:3, 3]) * 1000:.1f} mm, {rotation_angle_deg(d[:3, :3]):.1f} deg"
            )
    qx, qy, qz, qw = matrix_to_quat_xyzw(result.matrix[:3, :3])
    print(
        "publish: ros2 run tf2_ros static_transform_publisher "
        f"--x {t[0]:.5f} --y {t[1]:.5f} --z {t[2]:.5f} --qx {qx:.6f} --qy {qy:.6f} "
        f"--qz {qz:.6f} --qw {qw:.6f} --frame-id {result.parent_frame} "
        f"--child-frame-id {result.child_frame}"
    )
    print(f"wrote {out}")
    return 0


def joint_samples_from_bag(bag: Path, topic: str) -> list[tuple[list[str], list[float]]]:
    """(names, positions) of every JointState on ``topic`` in a rosbag2 directory."""
    with open_bag(bag) as b:
        b.require(topic)
        return [(list(m.msg.name), [float(v) for v in m.msg.position]) for m in b.messages([topic])]


def run_joints(args: argparse.Namespace) -> int:
    from gigabrain_runtime.calibration.joints import write_joints_yaml, zero_offsets
    from gigabrain_runtime.robots.embodiment import get_embodiment

    emb = get_embodiment(args.robot)
    if args.bag:
        msgs = joint_samples_from_bag(Path(args.bag), args.topic)
    else:
        # the calibration tools' only ROS dependency, resolved by name when capturing live
        from gigabrain_runtime import entries

        print(f"capturing {args.topic} for {args.seconds:g} s: hold the arm at the reference pose")
        msgs = entries.load("capture-joint-states")(args.topic, args.seconds)
    if not msgs:
        raise ValueError(f"topic: no joint states on {args.topic}")
    # the driver's names, mapped onto the embodiment's by the arm prefix
    raw_names = [n for n in msgs[0][0] if args.arm_prefix + n in emb.joint_names]
    if args.joints:
        raw_names = [n for n in args.joints.split(",") if n]
        unknown = [n for n in raw_names if args.arm_prefix + n not in emb.joint_names]
        if unknown:
            raise ValueError(f"joints: {unknown} are not joints of {emb.name}")
    if not raw_names:
        raise ValueError(
            f"topic: the messages name {msgs[0][0]}, none of which is a joint of {emb.name} "
            f"(with arm prefix {args.arm_prefix!r})"
        )
    samples = []
    for names, pos in msgs:
        where = {n: i for i, n in enumerate(names)}
        if all(n in where for n in raw_names):
            samples.append([pos[where[n]] for n in raw_names])
    canon = tuple(args.arm_prefix + n for n in raw_names)
    reference = np.zeros(len(raw_names))
    if args.reference:
        values = [float(v) for v in args.reference.split(",")]
        if len(values) != len(raw_names):
            raise ValueError(
                f"reference: {len(values)} values for {len(raw_names)} joints {raw_names}"
            )
        reference = np.array(values)
    signs = np.ones(len(raw_names))
    for item in args.sign or []:
        name, _, value = item.partition("=")
        if name not in raw_names or value not in ("1", "-1", "+1"):
            raise ValueError(f"sign: expected JOINT=+1|-1 for one of {raw_names}, got {item!r}")
        signs[raw_names.index(name)] = float(value)
    offsets = zero_offsets(np.array(samples), reference, signs, canon, max_spread=args.max_spread)
    out = Path(args.out or f"calibration/{emb.name}/joints.yaml")
    write_joints_yaml(
        out,
        emb.name,
        emb.joint_names,
        {n: (float(o), int(s)) for n, o, s in zip(canon, offsets, signs, strict=True)},
    )
    print(f"{len(samples)} joint states at the reference pose -> {out}")
    for n, o, s in zip(canon, offsets, signs, strict=True):
        print(f"  {n:<16} offset {o:+.5f}  sign {int(s):+d}")
    return 0


def _board(args: argparse.Namespace) -> Board:
    return Board(
        kind=args.board, cols=args.cols, rows=args.rows, square_m=args.square, marker_m=args.marker
    )


def _add_board_arguments(c: argparse.ArgumentParser) -> None:
    c.add_argument("--board", choices=["checkerboard", "charuco"], default="checkerboard")
    c.add_argument("--cols", type=int, default=9, help="squares across")
    c.add_argument("--rows", type=int, default=7, help="squares down")
    c.add_argument("--square", type=float, default=0.025, help="square size (m)")
    c.add_argument("--marker", type=float, default=0.018, help="ChArUco marker size (m)")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("calibrate", help="camera intrinsics and hand-eye extrinsics")
    cal = p.add_subparsers(dest="calibrate_command", required=True)
    c = cal.add_parser("camera", help="intrinsics from board views -> camera_info YAML")
    c.add_argument("--images", help="a folder of board images")
    c.add_argument("--bag", help="a rosbag2 episode directory")
    c.add_argument("--topic", help="image topic in the bag")
    c.add_argument("--every", type=int, default=5, help="use every N-th frame of the bag")
    _add_board_arguments(c)
    c.add_argument("--camera", help="camera name (default: the output file's stem)")
    c.add_argument("--out", required=True, help="calibration/<robot>/<cam>.yaml")
    c.add_argument("--png", help="corner overlay image (default: next to --out)")
    c.set_defaults(func=run)

    h = cal.add_parser(
        "hand-eye",
        help="the camera's pose on the robot (T_flange_cam or T_base_cam) from board views "
        "and joint positions -> extrinsics YAML",
    )
    h.add_argument("--robot", required=True, help="embodiment name or YAML (with kinematics)")
    h.add_argument("--camera-info", required=True, help="intrinsics YAML (calibrate camera)")
    h.add_argument(
        "--setup",
        choices=list(SETUPS),
        required=True,
        help="eye-in-hand: wrist camera, board fixed; eye-to-hand: fixed camera, board in the "
        "gripper",
    )
    _add_board_arguments(h)
    h.add_argument("--images", help="a folder of board images")
    h.add_argument(
        "--joints",
        help="CSV with an 'image' column (file name in --images) and one column per joint "
        "(rad; default: --images/joints.csv)",
    )
    h.add_argument("--bag", help="a rosbag2 episode directory")
    h.add_argument("--image-topic", help="image topic in the bag")
    h.add_argument("--joint-topic", help="sensor_msgs/JointState topic in the bag")
    h.add_argument(
        "--max-dt", type=float, default=0.02, help="bag: image/joint state pairing tolerance (s)"
    )
    h.add_argument(
        "--max-joint-speed",
        type=float,
        default=0.05,
        help="bag: skip images taken while a joint moved faster than this (rad/s)",
    )
    h.add_argument(
        "--min-joint-change",
        type=float,
        default=0.02,
        help="bag: one image per pose - skip images until a joint moved this much (rad)",
    )
    h.add_argument(
        "--arm-prefix",
        default="",
        help="joint and frame name prefix of one arm of a dual rig (e.g. left_): the robot's "
        "single-arm kinematics, read from prefixed joint names",
    )
    h.add_argument(
        "--flange", help="link the camera (or board) rides on (default: the camera's link)"
    )
    h.add_argument("--base", help="robot base link (default: the robot's root link)")
    h.add_argument("--camera", help="camera name (default: the camera_info's camera_name)")
    h.add_argument("--child-frame", help="camera frame (default: <camera>_optical_frame)")
    h.add_argument(
        "--out", help="output YAML (default: calibration/<robot>/<camera>_extrinsics.yaml)"
    )
    h.set_defaults(func=run_hand_eye)

    j = cal.add_parser(
        "joints", help="joint zero offsets (and signs) from the arm held at a reference pose"
    )
    j.add_argument("--robot", required=True, help="embodiment name or YAML")
    j.add_argument("--topic", required=True, help="the driver's raw JointState topic")
    j.add_argument("--bag", help="read the topic from this rosbag2 (default: live, --seconds)")
    j.add_argument("--seconds", type=float, default=2.0, help="live capture length")
    j.add_argument(
        "--reference", help="comma-separated reference pose of the measured joints (default 0)"
    )
    j.add_argument("--joints", help="comma-separated driver joint names (default: all known)")
    j.add_argument("--sign", action="append", help="JOINT=-1 for a joint whose axis is flipped")
    j.add_argument("--arm-prefix", default="", help="e.g. left_ for one arm of piper_dual")
    j.add_argument("--max-spread", type=float, default=0.005, help="stillness limit (rad)")
    j.add_argument("--out", help="default: calibration/<robot>/joints.yaml (updated in place)")
    j.set_defaults(func=run_joints)
