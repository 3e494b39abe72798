"""``gigabrain-runtime calibrate camera``: intrinsics from board views in a folder or a bag."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from gigabrain_runtime.calibration.intrinsics import Board, calibrate, corners_mosaic

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


def images_from_bag(bag: Path, topic: str, every: int) -> list[np.ndarray]:
    """Every ``every``-th frame of an Image (or CompressedImage) topic in a rosbag2 directory."""
    from rosbags.highlevel import AnyReader

    from gigabrain_runtime.hilr.recording import typestore
    from gigabrain_runtime.perception.images import decode_compressed, decode_raw

    with AnyReader([Path(bag)], default_typestore=typestore()) as reader:
        conns = [c for c in reader.connections if c.topic == topic]
        if not conns:
            raise ValueError(
                f"topic: {topic!r} is not in {bag} (has: "
                f"{', '.join(sorted({c.topic for c in reader.connections}))})"
            )
        out = []
        for i, (conn, _, raw) in enumerate(reader.messages(connections=conns)):
            if i % every:
                continue
            m = reader.deserialize(raw, conn.msgtype)
            if conn.msgtype.endswith("CompressedImage"):
                out.append(decode_compressed(m.format, bytes(m.data)))
            else:
                out.append(decode_raw(m.encoding, m.height, m.width, m.step, bytes(m.data)))
    return out


def run(args: argparse.Namespace) -> int:
    import cv2

    board = Board(
        kind=args.board, cols=args.cols, rows=args.rows, square_m=args.square, marker_m=args.marker
    )
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


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("calibrate", help="camera intrinsics (hand-eye: not yet)")
    cal = p.add_subparsers(dest="calibrate_command", required=True)
    c = cal.add_parser("camera", help="intrinsics from board views -> camera_info YAML")
    c.add_argument("--images", help="a folder of board images")
    c.add_argument("--bag", help="a rosbag2 episode directory")
    c.add_argument("--topic", help="image topic in the bag")
    c.add_argument("--every", type=int, default=5, help="use every N-th frame of the bag")
    c.add_argument("--board", choices=["checkerboard", "charuco"], default="checkerboard")
    c.add_argument("--cols", type=int, default=9, help="squares across")
    c.add_argument("--rows", type=int, default=7, help="squares down")
    c.add_argument("--square", type=float, default=0.025, help="square size (m)")
    c.add_argument("--marker", type=float, default=0.018, help="ChArUco marker size (m)")
    c.add_argument("--camera", help="camera name (default: the output file's stem)")
    c.add_argument("--out", required=True, help="calibration/<robot>/<cam>.yaml")
    c.add_argument("--png", help="corner overlay image (default: next to --out)")
    p.set_defaults(func=run)
