"""Backend registry: name -> constructor from an engine directory, with "did you mean"."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from gigabrain_runtime.inference.base import Backend
from gigabrain_runtime.inference.manifest import EngineManifest
from gigabrain_runtime.registry import Registry

BackendFactory = Callable[..., Backend]
BACKENDS: Registry[BackendFactory] = Registry("backend")


def _torch(directory: Path, **kwargs: Any) -> Backend:
    from gigabrain_runtime.inference.torch_backend import TorchBackend

    return TorchBackend.from_engine(directory, **kwargs)


def _onnxruntime(directory: Path, **kwargs: Any) -> Backend:
    from gigabrain_runtime.inference.onnxruntime_backend import OnnxRuntimeBackend

    return OnnxRuntimeBackend(directory, **kwargs)


def _tensorrt(directory: Path, **kwargs: Any) -> Backend:
    from gigabrain_runtime.inference.tensorrt_backend import TensorRTBackend

    return TensorRTBackend(directory, **kwargs)


BACKENDS.register("torch", _torch)
BACKENDS.register("onnxruntime", _onnxruntime)
BACKENDS.register("tensorrt", _tensorrt)


def open_backend(directory: str | Path, backend: str | None = None, **kwargs: Any) -> Backend:
    """Open an engine directory with ``backend`` (default: the one its manifest names)."""
    directory = Path(directory)
    name = backend or EngineManifest.read(directory).backend
    return BACKENDS.get(name, field="backend")(directory, **kwargs)
