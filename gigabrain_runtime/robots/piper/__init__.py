"""AgileX PiPER: the piper_ros driver's conventions (piper_ros.py), the bridge core that gates,
splits and merges the arms (bridge.py) and the driver stand-in's arm model (standin.py). The ROS
nodes over them are ros/piper_bridge_node.py and ros/tools/piper_standin_node.py."""
