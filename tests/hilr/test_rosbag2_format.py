"""Episodes in the exact rosbag2 format 9 layout: metadata.yaml, the MCAP channel metadata and
the MCAP ``rosbag2`` record, checked with rosbag2's own decoding rules (tests/conformance) for
what the recorder writes and what ``bag recover`` writes."""

from __future__ import annotations

import pytest
import yaml
from mcap.reader import make_reader

from gigabrain_runtime.bags import open_bag
from gigabrain_runtime.hilr.recording import (
    EpisodeInfo,
    EpisodeWriter,
    TopicSpec,
    recover_episode,
)
from tests.conformance.rosbag2_metadata import (
    BadConversion,
    decode_bag_information,
    decode_metadata_file,
    decode_qos,
)
from tests.hilr.test_recording_core import JS, joint_state_cdr

TOPICS = [
    TopicSpec("/r/joint_states", JS, "sensor"),
    TopicSpec("/r/joint_command", JS, "reliable"),
    TopicSpec("/r/estop", "std_msgs/msg/Bool", "latched"),
    TopicSpec("/r/cameras/cam_high/image_raw", "sensor_msgs/msg/Image", "sensor"),
]


def _record(directory, n: int = 50, *, close: bool = True) -> EpisodeWriter:
    w = EpisodeWriter(directory, TOPICS, EpisodeInfo(episode=directory.name, robot="piper"))
    for i in range(n):
        t = 10**18 + i * 10**7
        w.write("/r/joint_states", joint_state_cdr(i, t), t)
        w.write("/r/joint_command", joint_state_cdr(i, t), t + 1)
    if close:
        w.close("success")
    return w


def _check_bag(directory) -> dict:
    text = (directory / "metadata.yaml").read_text()
    assert "&id" not in text and "*id" not in text  # plain YAML as rosbag2 writes it
    decoded = decode_metadata_file(text)
    assert decoded["version"] == 9
    by_name = {t["name"]: t for t in decoded["topics"]}
    assert by_name["/r/joint_states"]["qos"][0]["reliability"] == "best_effort"
    assert by_name["/r/joint_command"]["qos"][0]["reliability"] == "reliable"
    assert by_name["/r/estop"]["qos"][0]["durability"] == "transient_local"
    with open(directory / decoded["files"][0], "rb") as f:
        reader = make_reader(f)
        assert reader.get_header().profile == "ros2"
        summary = reader.get_summary()
        for channel in summary.channels.values():
            # the channel carries the same profiles as metadata.yaml (readers match on them)
            assert set(channel.metadata) == {"offered_qos_profiles", "topic_type_hash"}
            profiles = yaml.safe_load(channel.metadata["offered_qos_profiles"])
            assert [decode_qos(p, channel.topic) for p in profiles] == by_name[channel.topic]["qos"]
            assert channel.metadata["topic_type_hash"].startswith("RIHS01_")
        records = [m for m in reader.iter_metadata() if m.name == "rosbag2"]
    assert len(records) == 1 and set(records[-1].metadata) == {"serialized_metadata"}
    inner = decode_bag_information(yaml.safe_load(records[-1].metadata["serialized_metadata"]))
    assert inner == decoded
    return decoded


def test_a_recorded_episode_is_a_format_9_bag_rosbag2_decodes(tmp_path):
    _record(tmp_path / "ep")
    decoded = _check_bag(tmp_path / "ep")
    assert decoded["message_count"] == 100
    with open_bag(tmp_path / "ep") as bag:  # rosbags matches channels to topics by QoS
        assert sum(1 for _ in bag.messages()) == 100


def test_a_recovered_episode_is_a_format_9_bag_rosbag2_decodes(tmp_path):
    w = _record(tmp_path / "ep", close=False)
    w.flush()
    w.abandon()  # a process killed after its last flush
    assert not (tmp_path / "ep" / "metadata.yaml").exists()
    report = recover_episode(tmp_path / "ep")
    decoded = _check_bag(tmp_path / "ep")
    assert decoded["message_count"] == report.messages == 100


def test_an_episode_recorded_before_format_9_profiles_is_recovered_into_them(tmp_path, monkeypatch):
    """Channels written with the old integer-enum string profiles come back with format-9 ones
    that match metadata.yaml (rosbags skips a topic whose channel QoS differs from it)."""
    from gigabrain_runtime.hilr import recording

    def old(kind: str) -> str:  # what earlier versions wrote
        reliability, durability, depth = {
            "sensor": (2, 2, 5),
            "reliable": (1, 2, 10),
            "latched": (1, 1, 1),
        }[kind]
        return (
            f"- history: 1\n  depth: {depth}\n  reliability: {reliability}\n"
            f"  durability: {durability}\n  deadline: {{sec: 0, nsec: 0}}\n"
            "  lifespan: {sec: 0, nsec: 0}\n  liveliness: 1\n"
            "  liveliness_lease_duration: {sec: 0, nsec: 0}\n"
            "  avoid_ros_namespace_conventions: false\n"
        )

    monkeypatch.setattr(recording, "qos_channel_text", old)
    w = _record(tmp_path / "ep", close=False)
    w.flush()
    w.abandon()
    monkeypatch.undo()
    recover_episode(tmp_path / "ep")
    _check_bag(tmp_path / "ep")
    with open_bag(tmp_path / "ep") as bag:
        assert sum(1 for _ in bag.messages()) == 100


def test_the_conformance_decoder_refuses_the_pre_9_string_form_in_a_format_9_file():
    """The failure the issue reported (yaml-cpp: bad conversion), so the check can fail."""
    info = {
        "version": 9,
        "storage_identifier": "mcap",
        "duration": {"nanoseconds": 0},
        "starting_time": {"nanoseconds_since_epoch": 0},
        "message_count": 0,
        "topics_with_message_count": [
            {
                "topic_metadata": {
                    "name": "/a",
                    "type": JS,
                    "serialization_format": "cdr",
                    "offered_qos_profiles": "- history: 1\n",
                    "type_description_hash": "",
                },
                "message_count": 0,
            }
        ],
        "compression_format": "",
        "compression_mode": "",
        "relative_file_paths": [],
        "files": [],
        "custom_data": None,
        "ros_distro": "kilted",
    }
    with pytest.raises(BadConversion, match="needs a sequence"):
        decode_bag_information(info)
