"""The YAML launch parser: the subset of the ROS 2 frontend this project's files use."""

from __future__ import annotations

from pathlib import Path

import pytest

from gigabrain_runtime.launching.launch_file import LaunchError, load_launch
from gigabrain_runtime.launching.runner import node_command

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_args_let_group_namespace_params_and_remaps(tmp_path):
    f = write(
        tmp_path,
        "a.launch.yaml",
        """
launch:
- arg: {name: robot, default: piper}
- arg: {name: rate, default: "5.0"}
- let: {name: ns, value: "team_$(var robot)"}
- group:
  - push_ros_namespace: {namespace: "$(var ns)"}
  - node:
      pkg: gigabrain_runtime
      exec: gigabrain-runtime
      args: "node vla"
      name: policy
      namespace: inner
      param:
      - {name: inference_hz, value: "$(var rate)"}
      - {name: mode, value: standard}
      - {name: verbose, value: "true"}
      remap:
      - {from: joint_states, to: /robot/js}
- node: {pkg: gigabrain_runtime, exec: gigabrain-runtime, args: "node executor", name: ex}
""",
    )
    nodes = load_launch(f, {"robot": "g1"})
    assert [n.fqn for n in nodes] == ["/team_g1/inner/policy", "/ex"]
    assert nodes[0].params == {"inference_hz": 5.0, "mode": "standard", "verbose": True}
    assert nodes[0].remaps == [("joint_states", "/robot/js")]
    cmd = node_command(nodes[0], tmp_path)
    assert cmd[cmd.index("--ros-args") :][:5] == [
        "--ros-args",
        "-r",
        "__node:=policy",
        "-r",
        "__ns:=/team_g1/inner",
    ]
    assert "joint_states:=/robot/js" in cmd


def test_include_passes_arguments_and_keeps_the_outer_namespace(tmp_path):
    write(
        tmp_path,
        "inner.launch.yaml",
        """
launch:
- arg: {name: who, default: nobody}
- node: {pkg: gigabrain_runtime, exec: gigabrain-runtime, args: "node sim", name: "$(var who)"}
""",
    )
    f = write(
        tmp_path,
        "outer.launch.yaml",
        """
launch:
- group:
  - push-ros-namespace: {namespace: left}
  - include:
      file: "$(dirname)/inner.launch.yaml"
      arg: [{name: who, value: sim_left}]
""",
    )
    (node,) = load_launch(f)
    assert node.fqn == "/left/sim_left"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "- node: {pkg: gigabrain_runtime, exec: gigabrain-runtime, args: 'node x', "
            "name: $(var nope)}",
            r"\$\(var nope\) is not defined",
        ),
        ("- timer: {period: 1}", "unsupported launch entity 'timer'"),
        ("- node: {exec: gigabrain-runtime}", "missing 'pkg'"),
        ("- arg: {name: needed}", "launch argument 'needed' is required"),
        (
            "- node: {pkg: gigabrain_runtime, exec: gigabrain-runtime, args: 'node vla', "
            "name: policy, respawn: sometimes}",
            "node policy: respawn: expected true or false, got 'sometimes'",
        ),
        (
            "- node: {pkg: gigabrain_runtime, exec: gigabrain-runtime, args: 'node vla', "
            "name: policy, respawn: true, respawn_delay: -1}",
            "node policy: respawn_delay: expected seconds >= 0, got -1",
        ),
    ],
)
def test_bad_launch_files_are_errors_naming_the_problem(tmp_path, body, message):
    f = write(tmp_path, "bad.launch.yaml", "launch:\n" + body + "\n")
    with pytest.raises(LaunchError, match=message):
        load_launch(f)


def test_unknown_command_line_argument_is_an_error():
    with pytest.raises(LaunchError, match=r"unknown launch arguments \['robt'\]"):
        load_launch(ROOT / "launch/runtime.launch.yaml", {"robt": "g1"})


def test_unknown_node_name_suggests_the_right_one(tmp_path):
    f = write(
        tmp_path,
        "n.launch.yaml",
        """
launch:
- node: {pkg: gigabrain_runtime, exec: gigabrain-runtime, args: "node executr", name: e}
""",
    )
    (node,) = load_launch(f)
    with pytest.raises(ValueError, match="did you mean 'executor'"):
        node_command(node, tmp_path)


RUNTIME = ["vla", "executor", "intervention", "recorder"]


def _in(ns, names):
    return [f"/{ns}/{n}" for n in names]


@pytest.mark.parametrize(
    ("file", "args", "expected"),
    [
        ("runtime.launch.yaml", {"robot": "g1"}, _in("g1", RUNTIME)),
        ("sim_piper.launch.yaml", {}, _in("piper", ["sim", "operator", *RUNTIME])),
        ("sim_g1.launch.yaml", {}, _in("g1", ["sim", "operator", *RUNTIME])),
        ("piper.launch.yaml", {}, _in("piper", ["piper_bridge", *RUNTIME])),
        ("piper_dual.launch.yaml", {}, _in("piper_dual", ["piper_bridge", *RUNTIME])),
        ("g1.launch.yaml", {}, _in("g1", ["g1_bridge", *RUNTIME])),
        ("piper_standin.launch.yaml", {}, _in("piper", ["piper_single_ctrl"])),
        (
            "piper_dual_standin.launch.yaml",
            {},
            ["/left/piper_single_ctrl", "/right/piper_single_ctrl"],
        ),
    ],
)
def test_shipped_launch_files_parse(file, args, expected):
    nodes = load_launch(ROOT / "launch" / file, args)
    assert [n.fqn for n in nodes] == expected
    for n in nodes:
        node_command(n, Path("/tmp"))  # every node resolves to a runnable command


def test_dual_piper_launch_splits_one_policy_across_both_drivers():
    bridge, vla, executor, *_ = load_launch(ROOT / "launch/piper_dual.launch.yaml")
    assert bridge.params["robot"] == vla.params["robot"] == executor.params["robot"] == "piper_dual"
    assert bridge.params["arm_namespaces"] == ["/left", "/right"]
    assert bridge.params["arm_prefixes"] == ["left_", "right_"]
    # the runtime itself is on the canonical topics; only the bridge speaks piper_ros
    assert not executor.remaps or all(t.startswith("joint") for _, t in executor.remaps)


@pytest.mark.parametrize("file", ["piper.launch.yaml", "piper_dual.launch.yaml", "g1.launch.yaml"])
def test_robot_launch_files_pass_the_camera_calibration_to_the_policy(file):
    nodes = load_launch(
        ROOT / "launch" / file, {"calibration_dir": "calibration/x", "undistort": "true"}
    )
    (vla,) = [n for n in nodes if n.name == "vla"]
    assert vla.params["calibration_dir"] == "calibration/x"
    assert vla.params["undistort"] is True


def test_respawn_and_its_delay_are_read_from_the_node(tmp_path):
    f = write(
        tmp_path,
        "respawn.launch.yaml",
        """launch:
- arg: {name: again, default: "true"}
- node: {pkg: gigabrain_runtime, exec: gigabrain-runtime, args: "node recorder",
         name: rec, respawn: "$(var again)", respawn_delay: 2.5}
- node: {pkg: gigabrain_runtime, exec: gigabrain-runtime, args: "node vla", name: vla}
""",
    )
    rec, vla = load_launch(f)
    assert (rec.respawn, rec.respawn_delay) == (True, 2.5)
    assert (vla.respawn, vla.respawn_delay) == (False, 0.0)


def test_ros2_control_drives_the_robot_when_asked():
    """runtime.launch.yaml executor:=false controller_output:=true: no runtime executor, and the
    vla sends each chunk to the robot's joint_trajectory_controllers (ROS launch's if/unless)."""
    default = {n.name: n for n in load_launch(ROOT / "launch" / "runtime.launch.yaml")}
    assert "executor" in default and default["vla"].params["controller_output"] is False
    jtc = {
        n.name: n
        for n in load_launch(
            ROOT / "launch" / "runtime.launch.yaml",
            {"executor": "false", "controller_output": "true"},
        )
    }
    assert "executor" not in jtc and jtc["vla"].params["controller_output"] is True


def test_conditions_take_true_false_1_0_and_nothing_else(tmp_path):
    f = tmp_path / "c.launch.yaml"
    f.write_text(
        "launch:\n- arg: {name: enabled, default: 'true'}\n"
        "- node: {pkg: p, exec: a, if: '$(var enabled)'}\n"
        "- node: {pkg: p, exec: b, unless: '$(var enabled)'}\n"
        "- group: {if: '0', children: [{node: {pkg: p, exec: c}}]}\n"
    )
    assert [n.name for n in load_launch(f)] == ["a"]
    assert [n.name for n in load_launch(f, {"enabled": "0"})] == ["b"]
    with pytest.raises(LaunchError, match="if: expected true, false, 1 or 0, got 'yes'"):
        load_launch(f, {"enabled": "yes"})
