"""Reading rosbag2 directories (MCAP or sqlite3), and the one ROS 2 typestore that the episode
writer, the episode tools and the calibration tools share.

rosbags is imported lazily: importing this module is cheap. No rclpy: a bag is read without a
ROS installation, with the message definitions of ``Stores.ROS2_KILTED``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

_TYPESTORE = None


def typestore() -> Any:
    """The rosbags typestore of ROS 2 kilted's message types (built once, then shared)."""
    global _TYPESTORE
    if _TYPESTORE is None:
        from rosbags.typesys import Stores, get_typestore

        _TYPESTORE = get_typestore(Stores.ROS2_KILTED)
    return _TYPESTORE


class BagMessage(NamedTuple):
    topic: str
    msgtype: str  # e.g. sensor_msgs/msg/JointState
    log_time_ns: int
    msg: Any  # the deserialized message


class Bag:
    """An open bag; get one from :func:`open_bag`."""

    def __init__(self, path: Path, reader: Any) -> None:
        self.path = path
        self._reader = reader

    @property
    def topics(self) -> tuple[str, ...]:
        return tuple(sorted({c.topic for c in self._reader.connections}))

    def require(self, topic: str, field: str = "topic") -> None:
        """ValueError naming ``field`` and the bag's topics when ``topic`` is not in the bag."""
        if topic not in self.topics:
            raise ValueError(
                f"{field}: {topic!r} is not in {self.path} (has: {', '.join(self.topics)})"
            )

    def messages(
        self, topics: Iterable[str] | None = None, *, keep: Callable[[int], bool] | None = None
    ) -> Iterator[BagMessage]:
        """The messages on ``topics`` (default: all) in log-time order. With ``keep``, the
        i-th of them (counted over those topics from 0) is deserialized and yielded only when
        ``keep(i)`` is true: skipped messages cost no decoding."""
        wanted = None if topics is None else set(topics)
        conns = [c for c in self._reader.connections if wanted is None or c.topic in wanted]
        if not conns:
            return
        for i, (conn, t, raw) in enumerate(self._reader.messages(connections=conns)):
            if keep is not None and not keep(i):
                continue
            msg = self._reader.deserialize(raw, conn.msgtype)
            yield BagMessage(conn.topic, conn.msgtype, int(t), msg)


@contextlib.contextmanager
def open_bag(path: str | Path) -> Iterator[Bag]:
    """Open a rosbag2 directory (or a single bag file) for reading; rosbags' own errors pass
    through for a path that is not a bag."""
    from rosbags.highlevel import AnyReader

    path = Path(path)
    with AnyReader([path], default_typestore=typestore()) as reader:
        yield Bag(path, reader)
