"""``gigabrain-runtime bag list/info/label/plot/export`` on an episode written without ROS."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gigabrain_runtime.bags import typestore
from gigabrain_runtime.cli import main
from gigabrain_runtime.hilr.episodes import read_episode
from gigabrain_runtime.hilr.recording import EpisodeInfo, EpisodeWriter, TopicSpec

JS, BOOL, F32, IMG = (
    "sensor_msgs/msg/JointState",
    "std_msgs/msg/Bool",
    "std_msgs/msg/Float32",
    "sensor_msgs/msg/Image",
)
T0 = 10**18
NAMES = ["joint1", "joint2", "gripper"]


def _cdr(msgtype: str, **fields) -> bytes:
    ts = typestore()
    return bytes(ts.serialize_cdr(ts.types[msgtype](**fields), msgtype))


def _joints(t_ns: int, q) -> bytes:
    T = typestore().types
    stamp = T["builtin_interfaces/msg/Time"](sec=t_ns // 10**9, nanosec=t_ns % 10**9)
    return _cdr(
        JS,
        header=T["std_msgs/msg/Header"](stamp=stamp, frame_id=""),
        name=NAMES,
        position=np.asarray(q, float),
        velocity=np.zeros(0),
        effort=np.zeros(0),
    )


def _image(t_ns: int, grey: int, height: int = 48, width: int = 64) -> bytes:
    T = typestore().types
    stamp = T["builtin_interfaces/msg/Time"](sec=t_ns // 10**9, nanosec=t_ns % 10**9)
    return _cdr(
        IMG,
        header=T["std_msgs/msg/Header"](stamp=stamp, frame_id="cam_high_optical_frame"),
        height=height,
        width=width,
        encoding="rgb8",
        is_bigendian=0,
        step=width * 3,
        data=np.full(height * width * 3, grey, np.uint8),
    )


@pytest.fixture
def episodes(tmp_path):
    """One 2 s episode at 100 Hz: state, command (and a teleop command the export ignores),
    a takeover from 0.5 s to 1.0 s, a value stream and a 10 Hz camera."""
    topics = [
        TopicSpec("/r/joint_states", JS, "sensor"),
        TopicSpec("/r/joint_command", JS),
        TopicSpec("/r/teleop/joint_command", JS),
        TopicSpec("/r/intervention/active", BOOL, "latched"),
        TopicSpec("/r/value", F32),
        TopicSpec("/r/cameras/cam_high/image_raw", IMG, "sensor"),
    ]
    root = tmp_path / "episodes"
    root.mkdir()
    w = EpisodeWriter(
        root / "ep0", topics, EpisodeInfo(episode="ep0", robot="piper", instruction="pick")
    )
    for k in range(200):
        t = T0 + k * 10**7
        q = [np.sin(k / 30), k / 200, 0.04]
        w.write("/r/joint_states", _joints(t, q), t)
        w.write("/r/joint_command", _joints(t + 1, np.add(q, 0.01)), t + 1)
        w.write("/r/teleop/joint_command", _joints(t + 2, [9.0, 9.0, 9.0]), t + 2)
        w.write("/r/value", _cdr(F32, data=k / 200), t + 3)
        if k in (50, 100):
            w.write("/r/intervention/active", _cdr(BOOL, data=k == 50), t + 4)
        if k % 10 == 0:
            w.write("/r/cameras/cam_high/image_raw", _image(t + 5, k), t + 5)
    w.close("success")
    return root


def test_read_episode_gives_every_message_per_topic_in_time_order(episodes):
    data = read_episode(episodes / "ep0")
    assert len(data["/r/joint_states"]) == 200 and len(data["/r/cameras/cam_high/image_raw"]) == 20
    times = [t for t, _ in data["/r/joint_command"]]
    assert times == sorted(times) and times[0] == T0 + 1
    assert [bool(m.data) for _, m in data["/r/intervention/active"]] == [True, False]


def test_list_info_and_label(episodes, capsys):
    assert main(["bag", "list", str(episodes)]) == 0
    line = capsys.readouterr().out.splitlines()[-1].split()
    assert line[:2] == ["ep0", "complete"] and line[3] == "success"
    assert main(["bag", "label", str(episodes / "ep0"), "failure"]) == 0
    assert main(["bag", "info", str(episodes / "ep0")]) == 0
    out = capsys.readouterr().out
    assert '"label": "failure"' in out and "/r/cameras/cam_high/image_raw" in out


def test_plot_draws_an_image(episodes, tmp_path):
    import cv2

    out = tmp_path / "plot.png"
    assert main(["bag", "plot", str(episodes / "ep0"), "--out", str(out)]) == 0
    img = cv2.imread(str(out))
    assert img is not None and img.shape[1] == 1200


def test_lerobot_export_samples_the_episode_clock(episodes, tmp_path):
    import pyarrow.parquet as pq

    out = tmp_path / "dataset"
    assert main(["bag", "export", str(episodes), "--out", str(out), "--fps", "20"]) == 0
    info = json.loads((out / "meta/info.json").read_text())
    table = pq.read_table(out / "data/chunk-000/file-000.parquet").to_pydict()
    n = len(table["index"])
    assert info["total_frames"] == n == 40 and info["fps"] == 20
    assert sum(table["intervention"]) == 10  # 0.5 s of takeover at 20 fps
    state, action = np.array(table["observation.state"]), np.array(table["action"])
    np.testing.assert_allclose(action - state, 0.01, atol=1e-6)  # the teleop stream is not it
    assert table["indicator"] and len(table["advantage"]) == n
    assert (out / "videos/observation.images.cam_high/chunk-000/file-000.mp4").is_file()


def test_lerobot_export_keeps_only_the_episodes_with_the_outcome_asked_for(episodes, tmp_path):
    """bag export --outcome success: a demonstration set without its failed attempts; an
    operator's label counts over the recorded outcome."""
    out = tmp_path / "successes"
    assert main(["bag", "export", str(episodes), "--out", str(out), "--outcome", "success"]) == 0
    assert json.loads((out / "meta/info.json").read_text())["total_episodes"] == 1
    assert main(["bag", "label", str(episodes / "ep0"), "failure"]) == 0
    with pytest.raises(ValueError, match="outcome: no finished episode .* 'success'"):
        from gigabrain_runtime.hilr.lerobot_export import export_lerobot

        export_lerobot(episodes, tmp_path / "none", outcome="success")
