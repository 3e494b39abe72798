"""Crash-safe rosbag2 (MCAP) episode recording, and recovery of episodes cut short.

One directory per episode, as ``ros2 bag`` writes it: ``<episode>.mcap`` plus ``metadata.yaml``
(rosbag2 format 9), with a sidecar ``episode.json`` for the HILR metadata. Messages are written
as the exact CDR bytes received (raw subscriptions), with their ROS 2 message definitions and
RIHS01 type hashes, so ``ros2 bag info/play``, Foxglove and the rosbags reader open them.

Crash safety: the MCAP writer closes its open chunk and flushes to the OS every ``flush_s``
(0.5 s), so a SIGKILL loses at most that much; the file then lacks its summary and footer and
the episode lacks ``metadata.yaml``. :func:`recover_episode` reads every complete record of such
a file, rewrites a valid MCAP and writes the metadata; :func:`unfinished_episodes` finds them.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gigabrain_runtime.bags import typestore

SIDECAR = "episode.json"
METADATA = "metadata.yaml"
ROS_DISTRO = "kilted"

# offered_qos_profiles as rosbag2 format 9 writes them (rosbag2_storage qos.cpp: enum names as
# strings, durations as sec/nsec; RMW_DURATION_INFINITE - what DDS reports for a publisher that
# sets none - for deadline, lifespan and lease), one profile per QoS kind the recorder uses
_INFINITE = {"sec": 9223372036, "nsec": 854775807}


def _qos(depth: int, reliability: str, durability: str) -> list[dict[str, Any]]:
    return [
        {
            "history": "keep_last",
            "depth": depth,
            "reliability": reliability,
            "durability": durability,
            "deadline": dict(_INFINITE),
            "lifespan": dict(_INFINITE),
            "liveliness": "automatic",
            "liveliness_lease_duration": dict(_INFINITE),
            "avoid_ros_namespace_conventions": False,
        }
    ]


QOS_PROFILES: dict[str, list[dict[str, Any]]] = {
    "sensor": _qos(5, "best_effort", "volatile"),
    "reliable": _qos(10, "reliable", "volatile"),
    "latched": _qos(1, "reliable", "transient_local"),
}


def qos_channel_text(kind: str) -> str:
    """The ``offered_qos_profiles`` channel metadata rosbag2's MCAP storage writes: the v9 list
    as a YAML string (the same profiles metadata.yaml carries as YAML)."""
    return yaml.safe_dump(QOS_PROFILES[kind], sort_keys=False)


def _qos_kind(channel_text: str | None) -> str:
    """Which of our QoS kinds a recorded channel used (also episodes recorded before format 9
    profiles were written: integer enums, reliability 2 = best effort, durability 1 = transient
    local); reliable when it cannot tell."""
    try:
        profiles = yaml.safe_load(channel_text or "")
        first = profiles[0] if isinstance(profiles, list) and profiles else {}
        reliability, durability = first.get("reliability"), first.get("durability")
    except (yaml.YAMLError, AttributeError):
        return "reliable"
    if reliability in ("best_effort", 2):
        return "sensor"
    if durability in ("transient_local", 1):
        return "latched"
    return "reliable"


def recorded_streams(cameras: tuple[str, ...]) -> list[tuple[str, str, str]]:
    """What an episode records: (topic relative to the robot namespace, message type, QoS kind)
    - the recorder node subscribes to these, and ``sim collect`` writes the same."""
    streams = [(f"cameras/{c}/image_raw", "sensor_msgs/msg/Image", "sensor") for c in cameras]
    return streams + [
        ("joint_states", "sensor_msgs/msg/JointState", "sensor"),
        ("action_chunk", "trajectory_msgs/msg/JointTrajectory", "reliable"),
        ("joint_command", "sensor_msgs/msg/JointState", "reliable"),
        ("teleop/joint_command", "sensor_msgs/msg/JointState", "sensor"),
        ("intervention/active", "std_msgs/msg/Bool", "latched"),
        ("instruction", "std_msgs/msg/String", "latched"),
        ("episode/event", "std_msgs/msg/String", "reliable"),
        ("value", "std_msgs/msg/Float32", "reliable"),
        ("task/success", "std_msgs/msg/Bool", "latched"),  # a simulated task's detector
    ]


@dataclass(frozen=True)
class TopicSpec:
    name: str  # fully qualified topic
    msgtype: str  # e.g. sensor_msgs/msg/JointState
    qos: str = "reliable"  # key of QOS_PROFILES


def message_definition(msgtype: str) -> tuple[str, str]:
    """(ros2msg definition text with dependencies, RIHS01 hash) for ``msgtype``."""
    ts = typestore()
    if msgtype not in ts.types:
        raise ValueError(f"msgtype: unknown message type {msgtype!r}")
    msgdef, _ = ts.generate_msgdef(msgtype, ros_version=2)
    return msgdef, ts.hash_rihs01(msgtype)


@dataclass
class _TopicStats:
    spec: TopicSpec
    channel_id: int
    count: int = 0


@dataclass
class EpisodeInfo:
    """The sidecar: what a field team needs to know about an episode without opening it."""

    episode: str
    robot: str
    instruction: str = ""
    operator: str = ""
    engine_manifest_sha256: str = ""
    outcome: str = "unknown"  # success | failure | abort | unknown
    label: str = ""  # set afterwards by `bag label`
    status: str = "recording"  # recording | complete | recovered
    started_at_ns: int = 0
    ended_at_ns: int = 0
    interventions: list[dict[str, float]] = field(default_factory=list)
    # the simulated task's episode seed where the writer knows it (sim collect); -1 otherwise: a
    # real robot, or the graph's recorder (sim rollout's --json gives each episode's seed, in order)
    seed: int = -1
    detector: str = ""  # a task's success detector at the end (success | failure; '' = none)

    @property
    def duration_s(self) -> float:
        return max(0, self.ended_at_ns - self.started_at_ns) * 1e-9

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["duration_s"] = round(self.duration_s, 3)
        d["num_interventions"] = len(self.interventions)
        d["intervention_durations_s"] = [
            round(i["end_s"] - i["start_s"], 3) for i in self.interventions if "end_s" in i
        ]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EpisodeInfo:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def _replace_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file; on failure (a full disk) the
    temporary file is removed and ``path`` is left as it was."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_sidecar(directory: Path, info: EpisodeInfo) -> None:
    _replace_atomically(directory / SIDECAR, json.dumps(info.to_dict(), indent=2) + "\n")


def read_sidecar(directory: Path) -> EpisodeInfo:
    path = Path(directory) / SIDECAR
    if not path.is_file():
        raise FileNotFoundError(f"episode: no {SIDECAR} in {directory}")
    return EpisodeInfo.from_dict(json.loads(path.read_text()))


class EpisodeWriter:
    """Thread-safe writer of one episode. ``write`` raises OSError (e.g. disk full); the caller
    stops recording and reports it - the writer never blocks on retries."""

    def __init__(
        self,
        directory: Path,
        topics: list[TopicSpec],
        info: EpisodeInfo,
        *,
        flush_s: float = 0.5,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        from mcap.writer import CompressionType, Writer

        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=False)
        self.info = info
        self.flush_s = flush_s
        self.file_name = f"{self.directory.name}.mcap"
        self._file = open(self.directory / self.file_name, "wb")  # noqa: SIM115
        self._writer = Writer(self._file, compression=CompressionType.ZSTD)
        self._writer.start(profile="ros2", library="gigabrain_runtime")
        self._topics: dict[str, _TopicStats] = {}
        self._lock = threading.Lock()
        self._last_flush = time.monotonic()
        self._first_ns: int | None = None
        self._last_ns = 0
        self._clock_ns = clock_ns  # the episode's clock (sim collect: simulated time)
        for spec in topics:
            self._register(spec)
        info.started_at_ns = clock_ns()
        write_sidecar(self.directory, info)
        self._writer.flush()

    def _register(self, spec: TopicSpec) -> None:
        msgdef, rihs = message_definition(spec.msgtype)
        schema_id = self._writer.register_schema(
            name=spec.msgtype, encoding="ros2msg", data=msgdef.encode()
        )
        channel_id = self._writer.register_channel(
            topic=spec.name,
            message_encoding="cdr",
            schema_id=schema_id,
            metadata={"offered_qos_profiles": qos_channel_text(spec.qos), "topic_type_hash": rihs},
        )
        self._topics[spec.name] = _TopicStats(spec, channel_id)

    @property
    def topics(self) -> list[str]:
        return list(self._topics)

    def write(self, topic: str, data: bytes, log_time_ns: int) -> None:
        with self._lock:
            stats = self._topics[topic]
            self._writer.add_message(
                channel_id=stats.channel_id,
                log_time=log_time_ns,
                publish_time=log_time_ns,
                data=data,
            )
            stats.count += 1
            if self._first_ns is None:
                self._first_ns = log_time_ns
            self._last_ns = max(self._last_ns, log_time_ns)
            now = time.monotonic()
            if now - self._last_flush >= self.flush_s:
                self._writer.flush()  # closes the chunk: everything so far survives a SIGKILL
                self._last_flush = now

    def flush(self) -> None:
        with self._lock:
            self._writer.flush()
            self._last_flush = time.monotonic()

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {t: s.count for t, s in self._topics.items()}

    def close(self, outcome: str | None = None) -> EpisodeInfo:
        with self._lock:
            if outcome is not None:
                self.info.outcome = outcome
            self.info.ended_at_ns = self._clock_ns()
            self.info.status = "complete"
            information = bag_information(
                self.file_name,
                [(s.spec, s.count) for s in self._topics.values()],
                self._first_ns or 0,
                self._last_ns,
                self.info,
            )
            self._writer.add_metadata("rosbag2", rosbag2_record(information))
            self._writer.finish()
            self._file.close()
            write_metadata(self.directory, information)
            write_sidecar(self.directory, self.info)
        return self.info

    def abandon(self) -> None:
        """Stop writing without finishing (disk full): the episode stays recoverable."""
        with self._lock, contextlib.suppress(OSError):
            self._file.close()


def bag_information(
    file_name: str,
    topics: list[tuple[TopicSpec, int]],
    first_ns: int,
    last_ns: int,
    info: EpisodeInfo,
) -> dict[str, Any]:
    """rosbag2's bag information, format 9 (rosbag2_storage yaml.hpp): what metadata.yaml holds
    under ``rosbag2_bagfile_information`` and the MCAP ``rosbag2`` metadata record holds as
    ``serialized_metadata``."""
    total = sum(c for _, c in topics)
    duration = max(0, last_ns - first_ns) if total else 0
    start = first_ns if total else 0
    custom = {
        k: (json.dumps(v) if not isinstance(v, str) else v) for k, v in info.to_dict().items()
    }
    return {
        "version": 9,
        "storage_identifier": "mcap",
        "duration": {"nanoseconds": duration},
        "starting_time": {"nanoseconds_since_epoch": start},
        "message_count": total,
        "topics_with_message_count": [
            {
                "topic_metadata": {
                    "name": spec.name,
                    "type": spec.msgtype,
                    "serialization_format": "cdr",
                    # a copy per topic: a shared object would be written as a YAML anchor/alias
                    "offered_qos_profiles": copy.deepcopy(QOS_PROFILES[spec.qos]),
                    "type_description_hash": message_definition(spec.msgtype)[1],
                },
                "message_count": count,
            }
            for spec, count in topics
        ],
        "compression_format": "",
        "compression_mode": "",
        "relative_file_paths": [file_name],
        "files": [
            {
                "path": file_name,
                "starting_time": {"nanoseconds_since_epoch": start},
                "duration": {"nanoseconds": duration},
                "message_count": total,
            }
        ],
        "custom_data": custom,
        "ros_distro": ROS_DISTRO,
    }


def rosbag2_record(information: dict[str, Any]) -> dict[str, str]:
    """The MCAP metadata record rosbag2's MCAP storage writes (name ``rosbag2``)."""
    return {"serialized_metadata": yaml.safe_dump(information, sort_keys=False)}


def write_metadata(directory: Path, information: dict[str, Any]) -> None:
    _replace_atomically(
        directory / METADATA,
        yaml.safe_dump({"rosbag2_bagfile_information": information}, sort_keys=False),
    )


# ---- recovery --------------------------------------------------------------------------------
def unfinished_episodes(root: str | Path) -> list[Path]:
    """Episode directories under ``root`` with an MCAP file but no metadata.yaml."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(
        d
        for d in root.iterdir()
        if d.is_dir() and any(d.glob("*.mcap")) and not (d / METADATA).exists()
    )


def _complete_records(path: Path) -> Iterator[Any]:
    """Every record of a possibly truncated MCAP file, in order, until the damage."""
    from mcap.exceptions import McapError
    from mcap.stream_reader import StreamReader

    with open(path, "rb") as f:
        reader = StreamReader(f, skip_magic=False, emit_chunks=False)
        try:
            yield from reader.records
        except (McapError, EOFError, ValueError, OSError, Exception):  # noqa: BLE001
            return  # a truncated chunk or record: everything before it is intact


@dataclass
class RecoveryReport:
    directory: Path
    messages: int
    per_topic: dict[str, int]
    duration_s: float


def recover_episode(directory: str | Path) -> RecoveryReport:
    """Rewrite a cut-short episode's MCAP from its complete records and write metadata.yaml.
    ValueError naming the episode - no temporary file left behind, the MCAP untouched - when
    that cannot be written (a full disk)."""
    directory = Path(directory)
    try:
        return _recover(directory)
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        free = shutil.disk_usage(directory).free / 1e6
        raise ValueError(
            f"bag recover {directory}: {exc.strerror or exc} ({free:.0f} MB free); the episode "
            "is still unfinished and no temporary file is left - free some space and run it again"
        ) from None


def _recover(directory: Path) -> RecoveryReport:
    from mcap.records import Channel, Message, Schema
    from mcap.writer import CompressionType, Writer

    files = sorted(directory.glob("*.mcap"))
    if not files:
        raise FileNotFoundError(f"episode: no .mcap file in {directory}")
    source = files[0]
    try:
        info = read_sidecar(directory)
    except FileNotFoundError:
        info = EpisodeInfo(episode=directory.name, robot="unknown")
    tmp = source.with_suffix(".recovered.tmp")
    schemas: dict[int, Schema] = {}
    channels: dict[int, Channel] = {}
    counts: dict[int, int] = {}
    first = last = None
    try:
        with open(tmp, "wb") as out:
            writer = Writer(out, compression=CompressionType.ZSTD)
            writer.start(profile="ros2", library="gigabrain_runtime (recovered)")
            schema_map: dict[int, int] = {}
            channel_map: dict[int, int] = {}
            for record in _complete_records(source):
                if isinstance(record, Schema) and record.id not in schemas:
                    schemas[record.id] = record
                    schema_map[record.id] = writer.register_schema(
                        name=record.name, encoding=record.encoding, data=record.data
                    )
                elif isinstance(record, Channel) and record.id not in channels:
                    channels[record.id] = record
                    # the profiles in the format-9 form metadata.yaml will carry (readers match
                    # a channel to its metadata.yaml topic by QoS)
                    kind = _qos_kind(record.metadata.get("offered_qos_profiles"))
                    metadata = {**record.metadata, "offered_qos_profiles": qos_channel_text(kind)}
                    channel_map[record.id] = writer.register_channel(
                        topic=record.topic,
                        message_encoding=record.message_encoding,
                        schema_id=schema_map.get(record.schema_id, 0),
                        metadata=metadata,
                    )
                    counts[record.id] = 0
                elif isinstance(record, Message) and record.channel_id in channel_map:
                    writer.add_message(
                        channel_id=channel_map[record.channel_id],
                        log_time=record.log_time,
                        publish_time=record.publish_time,
                        data=record.data,
                        sequence=record.sequence,
                    )
                    counts[record.channel_id] += 1
                    first = record.log_time if first is None else min(first, record.log_time)
                    last = record.log_time if last is None else max(last, record.log_time)
            info.status = "recovered"
            if last is not None:
                info.ended_at_ns = max(info.ended_at_ns, last)
            if info.outcome == "unknown":
                info.outcome = "abort"
            for iv in info.interventions:
                iv.setdefault("end_s", info.duration_s)
            topics = [
                (
                    TopicSpec(
                        ch.topic,
                        schemas[ch.schema_id].name if ch.schema_id in schemas else "",
                        _qos_kind(ch.metadata.get("offered_qos_profiles")),
                    ),
                    counts[cid],
                )
                for cid, ch in channels.items()
            ]
            information = bag_information(source.name, topics, first or 0, last or 0, info)
            writer.add_metadata("rosbag2", rosbag2_record(information))
            writer.finish()
        os.replace(tmp, source)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    write_metadata(directory, information)
    write_sidecar(directory, info)
    total = sum(counts.values())
    return RecoveryReport(
        directory,
        total,
        {channels[c].topic: n for c, n in counts.items()},
        ((last or 0) - (first or 0)) * 1e-9,
    )
