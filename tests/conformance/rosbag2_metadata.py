"""rosbag2's reading of ``metadata.yaml`` and of the MCAP ``rosbag2`` record, written from its
source so the tests can apply it to every bag the recorder and ``bag recover`` write (rosbag2
itself does not install from the PyPI wheels).

Source: github.com/ros2/rosbag2 (rolling 25304dd3; the format-9 code is unchanged in kilted):
rosbag2_storage/include/rosbag2_storage/yaml.hpp - ``convert<BagMetadata>::decode`` L277-307
(keys required per version), ``convert<TopicMetadata>::decode`` L122-140 (format 9:
``offered_qos_profiles`` decodes as a *sequence* of QoS maps; a string there is yaml-cpp's "bad
conversion"), ``convert<FileInformation>`` and ``rosbag2_storage/src/rosbag2_storage/qos.cpp``
``convert<rclcpp::QoS>::decode`` L167-210 (every policy key required, ``depth`` only for
keep_last; enums as rmw's strings, or integers - detected from ``history``; durations as
unsigned sec/nsec). rosbag2_storage_mcap mcap_storage.cpp L931-968: header profile ``ros2``,
channel metadata ``offered_qos_profiles`` (the same sequence as a YAML string) and
``topic_type_hash``, a metadata record ``rosbag2`` with ``serialized_metadata``.
"""

from __future__ import annotations

from typing import Any

import yaml

HISTORY = {"system_default", "keep_last", "keep_all", "unknown"}
RELIABILITY = {"system_default", "reliable", "best_effort", "best_available", "unknown"}
DURABILITY = {"system_default", "transient_local", "volatile", "best_available", "unknown"}
LIVELINESS = {"system_default", "automatic", "manual_by_topic", "best_available", "unknown"}


class BadConversion(ValueError):
    """What yaml-cpp throws (rosbag2 reports "Exception on parsing info file")."""


def _need(node: dict[str, Any], key: str, where: str) -> Any:
    if not isinstance(node, dict) or key not in node:
        raise BadConversion(f"{where}: missing key {key!r}")
    return node[key]


def _uint(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadConversion(f"{where}: bad conversion to an unsigned integer: {value!r}")
    return value


def _duration(node: Any, where: str) -> tuple[int, int]:
    return (
        _uint(_need(node, "sec", where), where + ".sec"),
        _uint(_need(node, "nsec", where), where + ".nsec"),
    )


def decode_qos(node: Any, where: str) -> dict[str, Any]:
    """convert<rclcpp::QoS>::decode (qos.cpp L167-210)."""
    history = _need(node, "history", where)
    integer_form = isinstance(history, int) and not isinstance(history, bool) and 0 <= history <= 3
    out: dict[str, Any] = {}
    for key, names in (
        ("history", HISTORY),
        ("reliability", RELIABILITY),
        ("durability", DURABILITY),
        ("liveliness", LIVELINESS),
    ):
        value = _need(node, key, where)
        if integer_form:
            if isinstance(value, bool) or not isinstance(value, int):
                raise BadConversion(f"{where}.{key}: bad conversion to int: {value!r}")
        elif not isinstance(value, str):
            raise BadConversion(f"{where}.{key}: bad conversion to a policy name: {value!r}")
        elif value not in names:
            value = "unknown"  # rmw_*_from_str: an unknown name decodes to UNKNOWN
        out[key] = value
    if history in ("keep_last", 1):
        out["depth"] = _uint(_need(node, "depth", where), where + ".depth")
    for key in ("deadline", "lifespan", "liveliness_lease_duration"):
        out[key] = _duration(_need(node, key, where), f"{where}.{key}")
    avoid = _need(node, "avoid_ros_namespace_conventions", where)
    if not isinstance(avoid, bool):
        raise BadConversion(f"{where}.avoid_ros_namespace_conventions: bad conversion to bool")
    out["avoid_ros_namespace_conventions"] = avoid
    return out


def _qos_list(node: Any, version: int, where: str) -> list[dict[str, Any]]:
    if version >= 9:
        if not isinstance(node, list):  # decode_for_version<std::vector<QoS>>: IsSequence()
            raise BadConversion(f"{where}: bad conversion (format {version} needs a sequence)")
        return [decode_qos(q, f"{where}[{i}]") for i, q in enumerate(node)]
    if not isinstance(node, str):
        raise BadConversion(f"{where}: bad conversion (format {version} needs a string)")
    return _qos_list(yaml.safe_load(node) or [], 9, where) if node else []


def decode_bag_information(info: Any) -> dict[str, Any]:
    """convert<BagMetadata>::decode (yaml.hpp L277-307) of the mapping under
    ``rosbag2_bagfile_information``; BadConversion naming what rosbag2 would choke on."""
    where = "rosbag2_bagfile_information"
    version = _uint(_need(info, "version", where), where + ".version")
    if version > 9:
        raise BadConversion(f"{where}.version: {version} is newer than this reader (9)")
    _need(info, "storage_identifier", where)
    _uint(_need(_need(info, "duration", where), "nanoseconds", where + ".duration"), where)
    start = _need(info, "starting_time", where)
    _uint(_need(start, "nanoseconds_since_epoch", where + ".starting_time"), where)
    total = _uint(_need(info, "message_count", where), where + ".message_count")
    topics = _need(info, "topics_with_message_count", where)
    if not isinstance(topics, list):
        raise BadConversion(f"{where}.topics_with_message_count: bad conversion to a sequence")
    decoded = []
    for i, entry in enumerate(topics):
        w = f"{where}.topics_with_message_count[{i}]"
        meta = _need(entry, "topic_metadata", w)
        count = _uint(_need(entry, "message_count", w), w + ".message_count")
        for key in ("name", "type", "serialization_format"):
            if not isinstance(_need(meta, key, w + ".topic_metadata"), str):
                raise BadConversion(f"{w}.topic_metadata.{key}: bad conversion to string")
        qos = (
            _qos_list(_need(meta, "offered_qos_profiles", w), version, w + ".offered_qos_profiles")
            if version >= 4
            else []
        )
        if version >= 7:
            _need(meta, "type_description_hash", w + ".topic_metadata")
        decoded.append({"name": meta["name"], "type": meta["type"], "qos": qos, "count": count})
    paths = _need(info, "relative_file_paths", where)
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise BadConversion(f"{where}.relative_file_paths: bad conversion to a string sequence")
    if version >= 3:
        for key in ("compression_format", "compression_mode"):
            if not isinstance(_need(info, key, where), str):
                raise BadConversion(f"{where}.{key}: bad conversion to string")
    if version >= 5:
        files = _need(info, "files", where)
        if not isinstance(files, list):
            raise BadConversion(f"{where}.files: bad conversion to a sequence")
        for i, f in enumerate(files):
            w = f"{where}.files[{i}]"
            _need(f, "path", w)
            _uint(_need(_need(f, "starting_time", w), "nanoseconds_since_epoch", w), w)
            _uint(_need(_need(f, "duration", w), "nanoseconds", w), w)
            _uint(_need(f, "message_count", w), w)
    if version >= 6:
        custom = _need(info, "custom_data", where)
        if custom is not None and (
            not isinstance(custom, dict)
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in custom.items())
        ):
            raise BadConversion(f"{where}.custom_data: bad conversion to map<string, string>")
    if version >= 8:
        _need(info, "ros_distro", where)
    return {"version": version, "message_count": total, "topics": decoded, "files": paths}


def decode_metadata_file(text: str) -> dict[str, Any]:
    """metadata_io.cpp: the file's ``rosbag2_bagfile_information`` mapping, decoded."""
    doc = yaml.safe_load(text)
    return decode_bag_information(_need(doc, "rosbag2_bagfile_information", "metadata.yaml"))
