"""What can be checked of the TensorRT path without TensorRT (see tensorrt_backend.py)."""

from __future__ import annotations

import dataclasses
import importlib.util

import pytest

from gigabrain_runtime.inference.manifest import EngineManifest
from gigabrain_runtime.inference.tensorrt_backend import (
    TensorRTUnavailable,
    check_plan_compatible,
    import_tensorrt,
)

H100 = {"gpu_name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0"}


def _with_plans(tiny_engine, **info):
    m = EngineManifest.read(tiny_engine)
    return dataclasses.replace(
        m, tensorrt={**H100, "tensorrt_version": "10.9.0", "precision": "fp16", **info}
    )


def test_plans_for_another_gpu_are_refused_with_the_rebuild_command(tiny_engine):
    m = _with_plans(tiny_engine)
    h200 = {"gpu_name": "NVIDIA H200", "compute_capability": "9.0"}
    check_plan_compatible(m, h200, "10.9.0")  # same architecture and version: fine
    l40 = {"gpu_name": "NVIDIA L40S", "compute_capability": "8.9"}
    with pytest.raises(ValueError, match=r"sm 9\.0.*sm 8\.9.*build-engine .* --precision fp16"):
        check_plan_compatible(m, l40, "10.9.0")


def test_plans_from_another_tensorrt_version_are_refused(tiny_engine):
    with pytest.raises(ValueError, match=r"TensorRT 10\.9\.0, this machine has 10\.13\.0"):
        check_plan_compatible(_with_plans(tiny_engine), H100, "10.13.0")


def test_engine_without_plans_says_to_build_them(tiny_engine):
    with pytest.raises(ValueError, match="run `gigabrain-runtime build-engine"):
        check_plan_compatible(EngineManifest.read(tiny_engine), H100, "10.9.0")


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="tensorrt present")
def test_missing_tensorrt_is_a_clear_error():
    with pytest.raises(TensorRTUnavailable, match="tensorrt is not installed"):
        import_tensorrt()
