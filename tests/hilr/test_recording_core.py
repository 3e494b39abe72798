"""Recording, recovery and intervention bookkeeping without ROS."""

from __future__ import annotations

import numpy as np
import pytest

from gigabrain_runtime.bags import open_bag, typestore
from gigabrain_runtime.hilr.intervention import InterventionState
from gigabrain_runtime.hilr.recording import (
    EpisodeInfo,
    EpisodeWriter,
    TopicSpec,
    read_sidecar,
    recover_episode,
    unfinished_episodes,
)

JS = "sensor_msgs/msg/JointState"


def joint_state_cdr(i: int, t_ns: int) -> bytes:
    ts = typestore()
    msg = ts.types[JS](
        header=ts.types["std_msgs/msg/Header"](
            stamp=ts.types["builtin_interfaces/msg/Time"](sec=t_ns // 10**9, nanosec=t_ns % 10**9),
            frame_id="",
        ),
        name=["joint1"],
        position=np.array([float(i)]),
        velocity=np.array([], float),
        effort=np.array([], float),
    )
    return bytes(ts.serialize_cdr(msg, JS))


def read_positions(ep):
    with open_bag(ep) as bag:
        return [m.msg.position[0] for m in bag.messages()]


def test_a_finished_episode_opens_with_the_rosbags_reader(tmp_path):
    w = EpisodeWriter(
        tmp_path / "ep",
        [TopicSpec("/r/joint_states", JS, "sensor")],
        EpisodeInfo(episode="ep", robot="piper", instruction="pick"),
    )
    for i in range(100):
        w.write("/r/joint_states", joint_state_cdr(i, 10**18 + i * 10**7), 10**18 + i * 10**7)
    info = w.close("success")
    assert info.status == "complete" and info.outcome == "success"
    assert read_positions(tmp_path / "ep") == [float(i) for i in range(100)]
    assert read_sidecar(tmp_path / "ep").instruction == "pick"
    assert unfinished_episodes(tmp_path) == []


def test_a_file_cut_mid_chunk_is_recovered_up_to_the_last_flush(tmp_path):
    w = EpisodeWriter(
        tmp_path / "ep",
        [TopicSpec("/r/joint_states", JS, "sensor")],
        EpisodeInfo(episode="ep", robot="piper"),
        flush_s=1e9,
    )
    path = tmp_path / "ep" / "ep.mcap"
    sizes = {}
    for i in range(300):
        w.write("/r/joint_states", joint_state_cdr(i, 10**18 + i * 10**7), 10**18 + i * 10**7)
        if i in (199, 249):
            w.flush()  # what the 0.5 s timer does
            sizes[i] = path.stat().st_size
    # a crash while the second flushed chunk was being written: cut through its middle; the
    # messages after it were still in memory and are lost with the process
    w._file.close()
    with open(path, "r+b") as f:
        f.truncate(sizes[199] + 40)  # 40 bytes into the second chunk record
    assert unfinished_episodes(tmp_path) == [tmp_path / "ep"]
    report = recover_episode(tmp_path / "ep")
    assert report.messages == 200
    assert read_positions(tmp_path / "ep") == [float(i) for i in range(200)]
    info = read_sidecar(tmp_path / "ep")
    assert info.status == "recovered" and info.outcome == "abort"


@pytest.mark.parametrize("fails", ["mcap", "metadata"])
def test_recover_on_a_full_disk_is_one_error_and_leaves_nothing_behind(
    tmp_path, monkeypatch, fails
):
    import errno

    import mcap.writer

    from gigabrain_runtime.hilr import recording

    w = EpisodeWriter(
        tmp_path / "ep",
        [TopicSpec("/r/joint_states", JS, "sensor")],
        EpisodeInfo(episode="ep", robot="piper"),
    )
    for i in range(50):
        w.write("/r/joint_states", joint_state_cdr(i, 10**18 + i * 10**7), 10**18 + i * 10**7)
    w.flush()
    w._file.close()  # a crash: no metadata.yaml
    files_before = sorted(p.name for p in (tmp_path / "ep").iterdir())

    def full(*args, **kwargs):  # noqa: ANN002, ANN003
        raise OSError(errno.ENOSPC, "No space left on device")

    if fails == "mcap":
        monkeypatch.setattr(mcap.writer.Writer, "add_message", full)
    else:
        monkeypatch.setattr(recording, "write_metadata", full)
    with pytest.raises(
        ValueError, match=r"bag recover .*ep: No space left on device \(\d+ MB free\)"
    ):
        recover_episode(tmp_path / "ep")
    assert sorted(p.name for p in (tmp_path / "ep").iterdir()) == files_before  # no *.tmp
    assert unfinished_episodes(tmp_path) == [tmp_path / "ep"]
    monkeypatch.undo()  # space freed: the same command recovers it
    assert recover_episode(tmp_path / "ep").messages == 50


def test_intervention_state_topic_latches_and_deadman_is_held():
    s = InterventionState()
    assert s.engage(True, 1.0) and s.active
    assert not s.engage(True, 1.5)  # no change
    assert s.engage(False, 3.0) and not s.active
    assert s.joystick([0, 0, 0, 0, 1], 4, 4.0) and s.active
    assert s.joystick([0, 0, 0, 0, 0], 4, 5.5) and not s.active
    assert not s.joystick([1], 4, 6.0)  # the button is not on this joystick: never active
    assert s.segments == [(1.0, 3.0), (4.0, 5.5)]
    assert not InterventionState().joystick([1, 1], -1, 0.0)  # no deadman configured


def test_unknown_message_type_is_refused(tmp_path):
    with pytest.raises(ValueError, match="msgtype: unknown message type"):
        EpisodeWriter(
            tmp_path / "ep",
            [TopicSpec("/x", "nope_msgs/msg/Nope")],
            EpisodeInfo(episode="ep", robot="piper"),
        )
