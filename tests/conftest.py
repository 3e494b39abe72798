"""Shared fixtures. DDS is isolated per test run: its own ROS_DOMAIN_ID, localhost only, and
under pytest-xdist (``make test`` runs two workers) a set of domains per worker.

Tests are classified here, not by hand (``make test-core`` runs ``-m "not ros and not slow"``):
``ros`` for everything under tests/ros and every test module that imports rclpy, ``slow`` for
every test that uses an engine-exporting fixture (:data:`SLOW_FIXTURES`), directly or through
another fixture.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import types
from pathlib import Path

import pytest

from tests import engines
from tests.helpers import DOMAIN_DRAW, dds_domain, make_observation

# one draw per run (a ROS_DOMAIN_ID given to pytest is the draw); xdist's workers inherit it
# from the process that starts them, and each takes its own domains from it
os.environ.setdefault(
    DOMAIN_DRAW, os.environ.get("ROS_DOMAIN_ID") or str(random.Random().randint(0, 99))
)
os.environ["ROS_DOMAIN_ID"] = str(dds_domain(0))
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault(
    "FASTDDS_DEFAULT_PROFILES_FILE",
    str(
        Path(__file__).resolve().parents[1] / "gigabrain_runtime" / "ros" / "config" / "fastdds.xml"
    ),
)

TESTS_DIR = Path(__file__).resolve().parent
# Session fixtures that export an ONNX engine: 20-70 s each on a 2-core machine.
SLOW_FIXTURES = frozenset(engines.NAMES)


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


AHEAD: list[engines.Ahead] = []  # the background export started as collection ended


def _is_worker(config) -> bool:
    return hasattr(config, "workerinput")  # an xdist worker (its controller starts it)


CREATED: list[Path] = []  # the export directory, in the process that made it


def _export_directory() -> Path:
    base = Path(tempfile.mkdtemp(prefix="gigabrain-test-engines-"))
    os.environ[engines.DIRECTORY] = str(base)
    CREATED.append(base)
    return base


def pytest_configure(config):
    """The run's main process (xdist's controller, or the only one) makes the directory the
    session engines are exported into; xdist's workers, started after this, inherit it."""
    if not _is_worker(config):
        _export_directory()


def pytest_unconfigure(config):
    """Every test has run (every worker has ended): stop the export and remove its files."""
    for base in CREATED:
        engines.end(base)
        for ahead in AHEAD:  # (this process started the exporter: collect its exit)
            if ahead.proc is not None:
                ahead.proc.wait()
        shutil.rmtree(base, ignore_errors=True)


def pytest_collection_finish(session):
    """Start exporting the session engines the selected tests use, in the order they are
    first needed (see tests/engines.py); nothing when none is used (``make test-core``). Every
    worker collects the same tests: the first to get here exports for all."""
    if session.config.option.collectonly:
        return
    first: dict[str, int] = {}
    for i, item in enumerate(session.items):
        for name in engines.NAMES:
            if name in getattr(item, "fixturenames", ()):
                first.setdefault(name, i)
    if first:
        # (no directory: a controller that did not load this file; this process exports alone)
        base = Path(os.environ.get(engines.DIRECTORY) or _export_directory())
        AHEAD.append(engines.Ahead(base, sorted(first, key=first.get)))


def _session_engine(tmp_path_factory, name: str) -> Path:
    """The engine exported ahead, or (if it was not) exported here."""
    ahead = AHEAD[0].take(name) if AHEAD else None
    return ahead or engines.export(name, tmp_path_factory.mktemp(name))


@pytest.fixture(scope="session")
def tiny_engine(tmp_path_factory):
    """The tiny preset exported once per session (fused layout, the default)."""
    return _session_engine(tmp_path_factory, "tiny_engine")


@pytest.fixture(scope="session")
def tiny_split_engine(tmp_path_factory):
    """The tiny preset in the split layout (prefix + flow-step graphs; exports 3x faster)."""
    return _session_engine(tmp_path_factory, "tiny_split_engine")


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


GIGABRAIN0_FIXTURE = engines.GIGABRAIN0_FIXTURE


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
def gb0_engine(tmp_path_factory):
    """The fixture checkpoint exported once per session (fused layout, the default), without
    the graph optimiser (tests/engines.py)."""
    return _session_engine(tmp_path_factory, "gb0_engine")
