"""gigabrain_runtime: a ROS 2 runtime for GigaBrain-0.5M* vision-language-action policies.

Importing the package is cheap and needs neither rclpy, torch, tensorrt nor a GPU: heavy
modules are imported inside the functions that need them.
"""

__version__ = "0.1.0"
