"""Unitree G1: the unitree_hg messages, CRC and DDS types (unitree_hg.py), the arm_sdk bridge
core (arm_sdk.py) and a fake G1 on plain DDS (standin.py). The ROS node over the bridge core is
ros/g1_bridge_node.py."""
