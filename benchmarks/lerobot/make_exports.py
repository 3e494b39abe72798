"""Episodes of mixed image sizes, written by the recorder's own writer, exported twice with
``gigabrain-runtime bag export`` - the input of check_lerobot.py (run it in LeRobot's venv).

    .venv/bin/python benchmarks/lerobot/make_exports.py OUT [--episodes DIR]

Without ``--episodes``: five synthetic PiPER episodes (3 s, joint states at 100 Hz, two cameras at
15 Hz; cam_high 640x480 in the first and 224x224 in the rest, cam_wrist 320x240 / 224x224, an
operator takeover in some, a value stream in all, three different instructions). The episodes
are split into OUT/export_a (episodes 0-2) and OUT/export_b (3-4). With ``--episodes`` (e.g. the
recordings of ``make demo``) that directory is exported as OUT/export_a and again as
OUT/export_b.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np

from gigabrain_runtime.cli import main as cli
from gigabrain_runtime.hilr.recording import EpisodeInfo, EpisodeWriter, TopicSpec
from gigabrain_runtime.robots.embodiment import get_embodiment
from gigabrain_runtime.sim.collect import CdrMessages

PIPER = get_embodiment("piper")
T0 = 1_780_000_000 * 10**9
TASKS = ["put the cube in the bowl", "open the gripper", "move the cube to the left"]


MSG = CdrMessages()


def _image(t_ns: int, cam: str, k: int, height: int, width: int) -> bytes:
    img = np.zeros((height, width, 3), np.uint8)
    img[:, :, 0] = np.linspace(0, 255, width, dtype=np.uint8)[None, :]
    img[:, :, 1] = (k * 9) % 256  # which camera frame this is
    img[: height // 4, : width // 4, 2] = 255
    return MSG.image(t_ns, PIPER.frame_id(cam), img)


def write_episode(root: Path, index: int, sizes: dict[str, tuple[int, int]]) -> None:
    js, f32, boolean, img = (
        "sensor_msgs/msg/JointState",
        "std_msgs/msg/Float32",
        "std_msgs/msg/Bool",
        "sensor_msgs/msg/Image",
    )
    topics = [
        TopicSpec("/piper/joint_states", js, "sensor"),
        TopicSpec("/piper/joint_command", js),
        TopicSpec("/piper/intervention/active", boolean, "latched"),
        TopicSpec("/piper/value", f32),
        *(TopicSpec(f"/piper/cameras/{c}/image_raw", img, "sensor") for c in sizes),
    ]
    name = f"piper_synthetic_{index:03d}"
    w = EpisodeWriter(
        root / name,
        topics,
        EpisodeInfo(episode=name, robot="piper", instruction=TASKS[index % len(TASKS)]),
    )
    rng = np.random.default_rng(index)
    home = np.array([PIPER.home.get(j, 0.0) for j in PIPER.joint_names])
    target = np.clip(home + rng.uniform(-0.3, 0.3, PIPER.dof), PIPER.lower, PIPER.upper)
    for k in range(300):  # 3 s at 100 Hz
        t = T0 + index * 10**10 + k * 10**7
        q = home + (target - home) * min(1.0, k / 200)
        w.write(topics[0].name, MSG.joints(t, PIPER.joint_names, q), t)
        w.write(topics[1].name, MSG.joints(t, PIPER.joint_names, q + 0.001), t + 1)
        w.write(topics[3].name, MSG.cdr(f32, data=float(k / 300)), t + 2)
        if index % 2 == 0 and k in (100, 180):
            w.write(topics[2].name, MSG.cdr(boolean, data=k == 100), t + 3)
        if k % 7 == 0:  # ~15 Hz
            for cam, (h, wd) in sizes.items():
                w.write(f"/piper/cameras/{cam}/image_raw", _image(t + 4, cam, k // 7, h, wd), t + 4)
    w.close("success" if index % 3 else "failure")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("out", type=Path)
    ap.add_argument("--episodes", type=Path, help="export these recordings instead")
    args = ap.parse_args()
    if args.out.exists():
        shutil.rmtree(args.out)
    if args.episodes:
        sources = [args.episodes, args.episodes]
    else:
        a, b = args.out / "episodes_a", args.out / "episodes_b"
        a.mkdir(parents=True)
        b.mkdir(parents=True)
        for i in range(5):
            sizes = (
                {"cam_high": (480, 640), "cam_wrist": (240, 320)}
                if i == 0
                else {"cam_high": (224, 224), "cam_wrist": (224, 224)}
            )
            write_episode(a if i < 3 else b, i, sizes)
        sources = [a, b]
    for src, name in zip(sources, ("export_a", "export_b"), strict=True):
        # one declared shape per camera for both exports (LeRobot merges only equal features)
        rc = cli(
            [
                "bag",
                "export",
                str(src),
                "--out",
                str(args.out / name),
                "--fps",
                "30",
                "--image-size",
                "224x224",
            ]
        )
        if rc:
            return rc
    return 0


if __name__ == "__main__":
    sys.exit(main())
