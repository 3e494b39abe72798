"""Turn `pip freeze` of the ROS 2 wheels into installable pins.

The ros-* wheels also register their inner Python packages (rclpy, sensor_msgs, ...) as
distributions that no index serves; pin only the ros-* names for those.
"""

import sys

HEADER = """# Exact pins for .venv (make test / make demo). Regenerate with: make lock
# torch 2.13.0: the CPU build on machines without CUDA (see README)."""

lines = [ln.strip() for ln in sys.stdin if ln.strip() and not ln.startswith("-e")]
names = {ln.split("==")[0].lower() for ln in lines}
print(HEADER)
for ln in lines:
    name = ln.split("==")[0]
    if not name.lower().startswith("ros-") and "ros-" + name.lower().replace("_", "-") in names:
        continue
    print("torch==2.13.0" if name.lower() == "torch" else ln)
print("setuptools==84.2.1")
print("wheel==0.48.0")
