"""The node schemas: one per node, defaults agreeing with the core configs they build, and the
README's parameter tables generated from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from gigabrain_runtime import cli
from gigabrain_runtime.control.executor import ExecutorConfig
from gigabrain_runtime.inference.policy_loop import PolicyLoopConfig
from gigabrain_runtime.launching.runner import NODES
from gigabrain_runtime.params.nodes import (
    ARM_SDK_FILE_FIELDS,
    NODE_PARAMS,
    ExecutorParams,
    G1BridgeParams,
    PiperBridgeParams,
    VlaParams,
    with_readme_tables,
)
from gigabrain_runtime.params.schema import specs
from gigabrain_runtime.perception.sync import SyncConfig
from gigabrain_runtime.robots.g1.arm_sdk import ArmSdkConfig
from gigabrain_runtime.robots.piper.piper_ros import PiperDriverConfig

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_runnable_node_has_a_schema():
    assert NODE_PARAMS.names() == NODES.names()


@pytest.mark.parametrize("name", NODE_PARAMS.names())
def test_every_schema_builds_from_its_defaults_and_describes_every_parameter(name):
    cls = NODE_PARAMS.get(name)
    assert cls() == cls()
    for s in specs(cls):
        assert s.description, f"{name}.{s.name}: no description"
        if s.kind in (int, float) and not s.is_array:
            assert s.lo is not None or s.name == "dds_domain", f"{name}.{s.name}: no range"


def _shared_defaults(params, config) -> dict[str, tuple]:
    return {
        s.name: (s.default, getattr(config, s.name))
        for s in specs(type(params))
        if hasattr(config, s.name) and s.name != "robot"
    }


@pytest.mark.parametrize(
    ("params", "config"),
    [
        (ExecutorParams(), ExecutorConfig()),
        (VlaParams(), SyncConfig()),
        (VlaParams(), PolicyLoopConfig(robot="piper")),
        (G1BridgeParams(), ArmSdkConfig.load()),  # the packaged arm_sdk file
    ],
    ids=["executor", "vla-sync", "vla-policy-loop", "g1-arm-sdk"],
)
def test_defaults_agree_with_the_core_config_the_node_builds(params, config):
    shared = _shared_defaults(params, config)
    assert shared, "no shared fields: the test compares nothing"
    disagree = {k: v for k, v in shared.items() if v[0] != v[1]}
    assert disagree == {}, f"schema vs {type(config).__name__} defaults (schema, core): {disagree}"


def test_g1_file_fields_and_piper_driver_defaults():
    assert set(ARM_SDK_FILE_FIELDS) <= {s.name for s in specs(G1BridgeParams)}
    p, d = PiperBridgeParams(), PiperDriverConfig()
    assert (p.speed_percent, p.gripper_effort) == (d.speed_percent, d.gripper_effort_nm)


def test_readme_parameter_tables_are_the_schemas():
    text = README.read_text()
    assert with_readme_tables(text) == text, (
        "README.md's parameter tables differ from gigabrain_runtime/params/nodes.py; run "
        "`gigabrain-runtime params --readme README.md`"
    )


def test_readme_tables_need_their_markers():
    with pytest.raises(ValueError, match="README: no"):
        with_readme_tables("# no tables here\n")


def test_cli_prints_a_nodes_table_and_names_an_unknown_node(capsys):
    assert cli.main(["params", "executor"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("**executor**") and "| `execution` | string | `crossfade` |" in out
    assert cli.main(["params", "executr"]) == 2
    assert "did you mean 'executor'" in capsys.readouterr().err


def test_cli_rewrites_the_tables_in_a_readme(tmp_path):
    from gigabrain_runtime.params.nodes import README_BEGIN, README_END

    doc = tmp_path / "README.md"
    doc.write_text(f"intro\n\n{README_BEGIN}\nOLD TABLE\n{README_END}\n\nrest\n")
    assert cli.main(["params", "--readme", str(doc)]) == 0
    text = doc.read_text()
    assert "OLD TABLE" not in text and "| `mode` | string | `efficient` |" in text
    assert text.startswith("intro\n") and text.endswith(f"{README_END}\n\nrest\n")


def test_vla_refuses_undistort_without_a_calibration_dir():
    with pytest.raises(ValueError, match="undistort: true needs calibration_dir"):
        VlaParams(undistort=True)
    assert VlaParams(undistort=True, calibration_dir="calibration/piper").undistort
