"""Shared fixtures. DDS is isolated per test run: its own ROS_DOMAIN_ID, localhost only.

Tests are classified here, not by hand (``make test-core`` runs ``-m "not ros and not slow"``):
``ros`` for everything under tests/ros and every test module that imports rclpy, ``slow`` for
every test that uses an engine-exporting fixture (:data:`SLOW_FIXTURES`), directly or through
another fixture.
"""

from __future__ import annotations

import os
import random
import types
from pathlib import Path

import pytest

from tests.helpers import make_observation

os.environ.setdefault("ROS_DOMAIN_ID", str(random.Random().randint(1, 100)))
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault(
    "FASTDDS_DEFAULT_PROFILES_FILE",
    str(
        Path(__file__).resolve().parents[1] / "gigabrain_runtime" / "ros" / "config" / "fastdds.xml"
    ),
)

TESTS_DIR = Path(__file__).resolve().parent
# Session fixtures that export an ONNX engine: 20-50 s each on a 2-core machine.
SLOW_FIXTURES = frozenset({"tiny_engine", "tiny_split_engine", "gb0_engine"})


def _imports_rclpy(module: types.ModuleType | None) -> bool:
    """The test module holds rclpy, or something of it, at module level."""

    def from_rclpy(value: object) -> bool:
        name = value.__name__ if isinstance(value, types.ModuleType) else None
        name = name or getattr(value, "__module__", None)
        return isinstance(name, str) and name.partition(".")[0] == "rclpy"

    return module is not None and any(from_rclpy(v) for v in vars(module).values())


def pytest_collection_modifyitems(config, items):
    ros_dir = TESTS_DIR / "ros"
    for item in items:
        if item.path.is_relative_to(ros_dir) or _imports_rclpy(getattr(item, "module", None)):
            item.add_marker(pytest.mark.ros)
        if SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def tiny_cfg():
    from gigabrain_runtime.model.presets import get_preset

    return get_preset("tiny")


def _export_tiny(tmp_path_factory, cfg, name: str, layout: str):
    """The tiny preset exported without onnxscript's graph optimiser: the same maths (the
    optimiser folds and fuses; parity is checked on optimised graphs in
    test_ensure_engine_reuses_a_matching_engine_and_reexports_a_broken_one) in 40 % of the
    time, which keeps `make test` inside its budget on a busy 2-core machine."""
    from gigabrain_runtime.inference.export import export_source, preset_source

    out = tmp_path_factory.mktemp(name)
    export_source(preset_source(cfg), out, layout=layout, optimize=False)
    return out


@pytest.fixture(scope="session")
def tiny_engine(tmp_path_factory, tiny_cfg):
    """The tiny preset exported once per session (fused layout, the default)."""
    return _export_tiny(tmp_path_factory, tiny_cfg, "engine_tiny", "fused")


@pytest.fixture(scope="session")
def tiny_split_engine(tmp_path_factory, tiny_cfg):
    """The tiny preset in the split layout (prefix + flow-step graphs; exports 3x faster)."""
    return _export_tiny(tmp_path_factory, tiny_cfg, "engine_tiny_split", "split")


@pytest.fixture(scope="session")
def ort_backend(tiny_engine):
    from gigabrain_runtime.inference.onnxruntime_backend import OnnxRuntimeBackend

    return OnnxRuntimeBackend(tiny_engine)


@pytest.fixture(scope="session")
def torch_backend(tiny_engine):
    from gigabrain_runtime.inference.torch_backend import TorchBackend

    return TorchBackend.from_engine(tiny_engine)


@pytest.fixture(params=["torch", "onnxruntime"])
def backend(request, ort_backend, torch_backend):
    return {"torch": torch_backend, "onnxruntime": ort_backend}[request.param]


@pytest.fixture
def observation():
    return make_observation()


GIGABRAIN0_FIXTURE = Path(__file__).resolve().parent / "fixtures" / "gigabrain0"


@pytest.fixture(scope="session")
def gb0_fixture():
    """The official GigaBrain-0 pipeline's reference run (see fixtures/gigabrain0/README.md)."""
    return GIGABRAIN0_FIXTURE


@pytest.fixture(scope="session")
def gb0_source(gb0_fixture):
    """The fixture checkpoint loaded in memory (config.json, shards, norm stats, tokenizer)."""
    from gigabrain_runtime.inference.export import checkpoint_source

    return checkpoint_source(gb0_fixture, hash_files=True)


@pytest.fixture(scope="session")
def gb0_engine(tmp_path_factory, gb0_source):
    """The fixture checkpoint exported once per session (fused layout, the default), without
    the graph optimiser: as the released 3.5 B checkpoint is exported (``--optimize auto`` skips
    it above 1 B parameters), so parity with the official pipeline is checked on that path."""
    from gigabrain_runtime.inference.export import export_source

    out = tmp_path_factory.mktemp("engine_gigabrain0")
    export_source(gb0_source, out, optimize=False)
    return out
