"""Node parameters: one schema per node (names, types, defaults, ranges, read-only), ROS-free.

``schema`` holds the machinery (``param``, ``NodeParams``, validation, run-time updates, the
README tables); ``nodes`` holds one frozen dataclass per node. ``ros/params.py`` declares a
schema on a node and validates run-time changes with it.
"""
