"""Every ROS entry point the core names resolves to a function in the ROS layer."""

from __future__ import annotations

import pytest

pytest.importorskip("rclpy")

from gigabrain_runtime.entries import ROS_ENTRIES, load  # noqa: E402
from gigabrain_runtime.structure import in_ros_layer  # noqa: E402


@pytest.mark.parametrize("name", ROS_ENTRIES.names())
def test_every_ros_entry_resolves_to_a_function_of_the_ros_layer(name):
    target = ROS_ENTRIES.get(name)
    assert in_ros_layer(target.split(":")[0]), target
    assert callable(load(name))


def test_an_unknown_entry_is_named_with_a_suggestion():
    with pytest.raises(ValueError, match="unknown ROS entry point 'demos'; did you mean 'demo'"):
        load("demos")
