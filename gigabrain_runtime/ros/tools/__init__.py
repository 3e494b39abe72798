"""ROS programs that are not part of a deployed runtime: the MuJoCo simulator node, the demo,
the control-jitter benchmark, the piper_ros driver stand-in and the calibration capture."""
