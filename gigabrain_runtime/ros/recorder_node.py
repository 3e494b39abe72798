"""recorder: one rosbag2 (MCAP) directory per HILR episode, from raw subscriptions.

Episodes start and end on ``episode/event`` (std_msgs/String: start, success, failure, abort),
or start at launch with ``auto_start``. Every runtime topic of the robot namespace is recorded
as the exact bytes received. Crash safety and recovery: see ``hilr/recording.py``; unfinished
episodes found in ``record_dir`` at start-up are recovered. When free disk space falls below
``min_free_mb`` or a write fails, recording stops with an ERROR on /diagnostics; the recorder is
its own process, so control never notices. The error clears by itself once its cause has (space
freed, ``min_free_mb`` lowered at run time): the next ``start`` event records again, and with
``auto_start`` a new episode starts at once.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import time
from pathlib import Path

from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool, Float32, String
from trajectory_msgs.msg import JointTrajectory

from gigabrain_runtime.diagnostics.stats import Level, Status
from gigabrain_runtime.hilr.recording import (
    EpisodeInfo,
    EpisodeWriter,
    TopicSpec,
    recorded_streams,
    recover_episode,
    unfinished_episodes,
)
from gigabrain_runtime.params.nodes import RecorderParams
from gigabrain_runtime.robots.embodiment import get_embodiment
from gigabrain_runtime.ros import qos
from gigabrain_runtime.ros.node_utils import DiagnosticsPublisher, run_node
from gigabrain_runtime.ros.params import declare_params, on_set_params

OUTCOMES = ("success", "failure", "abort")


# the message class of each recorded message type
_CLASSES = {
    "sensor_msgs/msg/Image": Image,
    "sensor_msgs/msg/JointState": JointState,
    "trajectory_msgs/msg/JointTrajectory": JointTrajectory,
    "std_msgs/msg/Bool": Bool,
    "std_msgs/msg/String": String,
    "std_msgs/msg/Float32": Float32,
}


def _qos_profile(kind: str):  # noqa: ANN202
    return {"sensor": qos.SENSOR, "reliable": qos.COMMAND, "latched": qos.LATCHED_VOLATILE}[kind]


class RecorderNode(Node):
    def __init__(self) -> None:
        super().__init__("recorder")
        p = declare_params(self, RecorderParams)
        self.record_dir = Path(p.record_dir)
        self.auto_start = p.auto_start
        self.operator = p.operator
        self.engine = p.engine
        self.min_free_mb = p.min_free_mb
        self.flush_s = p.flush_s
        if p.nice:
            os.nice(p.nice)
        self.embodiment = get_embodiment(p.robot)
        self.record_dir.mkdir(parents=True, exist_ok=True)
        self.recovered = []
        for ep in unfinished_episodes(self.record_dir):
            try:
                report = recover_episode(ep)
                self.recovered.append(ep.name)
                self.get_logger().warning(
                    f"recovered unfinished episode {ep.name}: {report.messages} messages, "
                    f"{report.duration_s:.1f} s"
                )
            except (OSError, ValueError) as exc:
                self.get_logger().error(f"could not recover {ep}: {exc}")

        self.writer: EpisodeWriter | None = None
        self.error = ""
        self.instruction = ""
        self._takeover_since: float | None = None
        self._episodes = 0
        self.specs: dict[str, TopicSpec] = {}
        self._latched_last: dict[str, bytes] = {}
        for rel, msgtype, kind in recorded_streams(self.embodiment.cameras):
            cls = _CLASSES[msgtype]
            name = self.resolve_topic_name(rel)
            self.specs[name] = TopicSpec(name, msgtype, kind)
            self.create_subscription(cls, rel, self._raw(name), _qos_profile(kind), raw=True)
            if kind == "latched":  # a transient-local publisher's last value too
                self.create_subscription(cls, rel, self._raw(name), qos.LATCHED, raw=True)
        self.create_subscription(String, "episode/event", self._on_event, qos.COMMAND)
        qos.latched_subscriptions(self, Bool, "intervention/active", self._on_intervention)
        qos.latched_subscriptions(self, String, "instruction", self._on_instruction)
        # a simulated task's success detector (the sim node): recorded beside the outcome
        self._task_success: bool | None = None
        qos.latched_subscriptions(self, Bool, "task/success", self._on_task_success)
        self.create_timer(self.flush_s, self._housekeeping)
        on_set_params(self, p, self._on_params)
        DiagnosticsPublisher(self, self._diagnostics)
        if self.auto_start:
            self.start_episode()
        self.get_logger().info(f"recorder: {len(self.specs)} topics -> {self.record_dir}")

    # ---- episodes ----------------------------------------------------------------------------
    def _manifest_hash(self) -> str:
        path = Path(self.engine) / "manifest.json" if self.engine else None
        if path is None or not path.is_file():
            return ""
        return hashlib.sha256(path.read_bytes()).hexdigest()

    def start_episode(self) -> None:
        if self.writer is not None:
            self.end_episode("abort")
        self._retry()
        if self.error:
            self.get_logger().error(f"not recording: {self.error}")
            return
        if not self._disk_ok():
            return
        ns = self.get_namespace().strip("/").replace("/", "_")
        prefix = (
            self.embodiment.name
            if ns in ("", self.embodiment.name)
            else f"{ns}_{self.embodiment.name}"
        )
        name = f"{prefix}_{time.strftime('%Y%m%d-%H%M%S')}_{self._episodes:03d}"
        info = EpisodeInfo(
            episode=name,
            robot=self.embodiment.name,
            instruction=self.instruction,
            operator=self.operator,
            engine_manifest_sha256=self._manifest_hash(),
        )
        try:
            self.writer = EpisodeWriter(
                self.record_dir / name, list(self.specs.values()), info, flush_s=self.flush_s
            )
        except OSError as exc:
            self._fail(exc)
            return
        self._episodes += 1
        self._takeover_since = None
        now = time.time_ns()
        try:  # the current value of latched state (instruction, takeover) opens every episode
            for topic, data in self._latched_last.items():
                self.writer.write(topic, data, now)
        except OSError as exc:
            self._fail(exc)
        self.get_logger().info(f"episode {name} started")

    def _on_task_success(self, msg: Bool) -> None:
        self._task_success = bool(msg.data)

    def end_episode(self, outcome: str) -> None:
        writer, self.writer = self.writer, None
        if writer is None:
            return
        # the outcome is what episode/event says (an operator's mark, or a script's verdict);
        # a task's success detector, where one speaks, is recorded beside it
        if self._task_success is not None:
            writer.info.detector = "success" if self._task_success else "failure"
            if outcome in ("success", "failure") and writer.info.detector != outcome:
                self.get_logger().warning(
                    f"episode marked {outcome}; the task's success detector says "
                    f"{writer.info.detector} (both recorded)"
                )
        if self._takeover_since is not None:
            self._close_intervention(writer)
        try:
            info = writer.close(outcome)
            self.get_logger().info(
                f"episode {info.episode} ended: {outcome}, {info.duration_s:.1f} s, "
                f"{len(info.interventions)} interventions"
            )
        except OSError as exc:
            writer.abandon()
            self._fail(exc)

    def _elapsed(self, writer: EpisodeWriter) -> float:
        return (time.time_ns() - writer.info.started_at_ns) * 1e-9

    def _close_intervention(self, writer: EpisodeWriter) -> None:
        writer.info.interventions.append(
            {
                "start_s": round(self._takeover_since or 0.0, 3),
                "end_s": round(self._elapsed(writer), 3),
            }
        )
        self._takeover_since = None

    # ---- callbacks ---------------------------------------------------------------------------
    def _raw(self, topic: str):  # noqa: ANN202
        latched = self.specs[topic].qos == "latched"

        def callback(data: bytes) -> None:
            if latched:
                self._latched_last[topic] = data
            writer = self.writer
            if writer is None:
                return
            try:
                writer.write(topic, data, time.time_ns())
            except OSError as exc:
                self.writer = None
                writer.abandon()
                self._fail(exc)

        return callback

    def _on_event(self, msg: String) -> None:
        event = msg.data.strip().lower()
        if event == "start":
            self.start_episode()
        elif event in OUTCOMES:
            self.end_episode(event)
        else:
            self.get_logger().warning(
                f"episode/event: unknown event {msg.data!r} (known: start, {', '.join(OUTCOMES)})"
            )

    def _on_intervention(self, msg: Bool) -> None:
        writer = self.writer
        if writer is None:
            return
        if msg.data and self._takeover_since is None:
            self._takeover_since = self._elapsed(writer)
        elif not msg.data and self._takeover_since is not None:
            self._close_intervention(writer)

    def _on_instruction(self, msg: String) -> None:
        self.instruction = msg.data
        if self.writer is not None and not self.writer.info.instruction:
            self.writer.info.instruction = msg.data

    def _on_params(self, new: RecorderParams, names: set[str]) -> None:
        self.min_free_mb = new.min_free_mb
        self.operator = new.operator
        if self._retry() and self.auto_start and self.writer is None:
            self.start_episode()

    # ---- disk --------------------------------------------------------------------------------
    def _free_mb(self) -> float:
        return shutil.disk_usage(self.record_dir).free / 1e6

    def _disk_ok(self) -> bool:
        if self._free_mb() < self.min_free_mb:
            self._fail(OSError(errno.ENOSPC, f"less than {self.min_free_mb:g} MB free"))
            return False
        return True

    def _fail(self, exc: OSError) -> None:
        self.error = f"recording stopped: {exc.strerror or exc}"
        self.get_logger().error(self.error)

    def _retry(self) -> bool:
        """Clear a recording error once there is ``min_free_mb`` free again. True if it did."""
        if not self.error or self._free_mb() < self.min_free_mb:
            return False
        self.get_logger().info(
            f"recording possible again ({self._free_mb():.0f} MB free, min_free_mb "
            f"{self.min_free_mb:g}): cleared '{self.error}'"
        )
        self.error = ""
        return True

    def _housekeeping(self) -> None:
        writer = self.writer
        if writer is None:
            if self._retry() and self.auto_start:
                self.start_episode()
            return
        try:
            writer.flush()  # even when a quiet period leaves the chunk half full
        except OSError as exc:
            self.writer = None
            writer.abandon()
            self._fail(exc)
            return
        if not self._disk_ok():
            self.writer = None
            try:
                writer.close("abort")
            except OSError:
                writer.abandon()

    def shutdown(self) -> None:
        if self.writer is not None:
            self.end_episode("abort")

    def _diagnostics(self) -> list[Status]:
        s = Status("recorder")
        writer = self.writer
        s.values = {
            "recording": str(writer is not None).lower(),
            "episode": writer.info.episode if writer else "",
            "episodes": str(self._episodes),
            "free_mb": f"{self._free_mb():.0f}",
            "record_dir": str(self.record_dir),
            "recovered": ",".join(self.recovered),
        }
        if writer is not None:
            counts = writer.counts()
            s.values["messages"] = str(sum(counts.values()))
            s.values["interventions"] = str(
                len(writer.info.interventions) + (self._takeover_since is not None)
            )
            s.values["duration_s"] = f"{self._elapsed(writer):.1f}"
        if self.error:
            s.worse(Level.ERROR, self.error)
        return [s]


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    return run_node(RecorderNode, argv)


if __name__ == "__main__":
    raise SystemExit(main())
