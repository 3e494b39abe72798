"""colcon / ament_python entry point; metadata lives in pyproject.toml.

The data files install the ament index marker, package.xml and the launch files where
``ros2 launch gigabrain_runtime <file>`` looks for them on a full ROS 2 install.
"""

from glob import glob

from setuptools import setup

PACKAGE = "gigabrain_runtime"

setup(
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.yaml")),
        (f"share/{PACKAGE}/calibration", glob("calibration/**/*.yaml", recursive=True)),
    ],
)
