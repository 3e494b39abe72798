"""Engine manifests: what an exported engine directory contains and how to feed it.

``manifest.json`` sits next to the ONNX files (and TensorRT plans once built). It records the
preset and its full config, the weights hash, the opset, every graph's input/output names,
shapes and dtypes, the embodiments with their model slots and normalisation statistics, the
tokenizer, and - after ``build-engine`` - the GPU, compute capability and TensorRT version the
plans were built for.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gigabrain_runtime.model.config import ModelConfig
from gigabrain_runtime.robots.embodiment import Embodiment

FORMAT = "gigabrain-engine/1"
MANIFEST_NAME = "manifest.json"


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True, kw_only=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]
    dtype: str  # numpy dtype name: uint8, bool, int64, float32

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TensorSpec:
        return cls(name=d["name"], shape=tuple(int(s) for s in d["shape"]), dtype=d["dtype"])


@dataclass(frozen=True, kw_only=True)
class GraphSpec:
    file: str
    sha256: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    plan: str | None = None  # TensorRT plan file, after build-engine

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GraphSpec:
        return cls(
            file=d["file"],
            sha256=d["sha256"],
            inputs=tuple(TensorSpec.from_dict(t) for t in d["inputs"]),
            outputs=tuple(TensorSpec.from_dict(t) for t in d["outputs"]),
            plan=d.get("plan"),
        )


@dataclass(frozen=True, kw_only=True)
class Normalization:
    """Per-dimension affine normalisation: x_norm = (x - mean) / std."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.mean) != len(self.std):
            raise ValueError(
                f"normalization: mean has {len(self.mean)} entries, std {len(self.std)}"
            )
        if any(not np.isfinite(s) or s <= 0 for s in self.std):
            raise ValueError(f"normalization.std must be finite and > 0, got {self.std}")

    @classmethod
    def from_limits(cls, emb: Embodiment) -> Normalization:
        """Map the joint range to [-1, 1]: the default when no dataset statistics exist."""
        lo, hi = emb.lower, emb.upper
        return cls(mean=tuple((lo + hi) / 2), std=tuple((hi - lo) / 2))


@dataclass(frozen=True, kw_only=True)
class EmbodimentEntry:
    embodiment_id: int
    joint_names: tuple[str, ...]
    cameras: tuple[str, ...]
    state_norm: Normalization
    action_norm: Normalization

    @classmethod
    def from_embodiment(cls, emb: Embodiment) -> EmbodimentEntry:
        norm = Normalization.from_limits(emb)
        return cls(
            embodiment_id=emb.embodiment_id,
            joint_names=emb.joint_names,
            cameras=emb.cameras,
            state_norm=norm,
            action_norm=norm,
        )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EmbodimentEntry:
        return cls(
            embodiment_id=int(d["embodiment_id"]),
            joint_names=tuple(d["joint_names"]),
            cameras=tuple(d["cameras"]),
            state_norm=Normalization(**{k: tuple(v) for k, v in d["state_norm"].items()}),
            action_norm=Normalization(**{k: tuple(v) for k, v in d["action_norm"].items()}),
        )


@dataclass(frozen=True, kw_only=True)
class EngineManifest:
    preset: str
    model: dict[str, Any]
    weights_source: str
    weights_sha256: str
    opset: int
    layout: str  # "fused": one graph per mode; "split": prefix graph + flow-step graph
    backend: str  # the backend the runtime should use for this directory
    graphs: dict[str, GraphSpec]
    embodiments: dict[str, EmbodimentEntry]
    tokenizer: dict[str, Any]
    tensorrt: dict[str, Any] | None = None
    format: str = FORMAT
    created_by: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def config(self) -> ModelConfig:
        return ModelConfig.from_dict(self.model)

    def embodiment(self, name: str) -> EmbodimentEntry:
        try:
            return self.embodiments[name]
        except KeyError:
            raise ValueError(
                f"embodiment: {name!r} is not in this engine (has: {', '.join(self.embodiments)})"
            ) from None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def write(self, directory: str | Path) -> Path:
        path = Path(directory) / MANIFEST_NAME
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        tmp.replace(path)
        return path

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EngineManifest:
        if d.get("format") != FORMAT:
            raise ValueError(f"manifest.format: expected {FORMAT!r}, got {d.get('format')!r}")
        try:
            return cls(
                preset=d["preset"],
                model=d["model"],
                weights_source=d["weights_source"],
                weights_sha256=d["weights_sha256"],
                opset=int(d["opset"]),
                layout=d["layout"],
                backend=d["backend"],
                graphs={k: GraphSpec.from_dict(v) for k, v in d["graphs"].items()},
                embodiments={k: EmbodimentEntry.from_dict(v) for k, v in d["embodiments"].items()},
                tokenizer=d["tokenizer"],
                tensorrt=d.get("tensorrt"),
                created_by=d.get("created_by", ""),
                extra=d.get("extra", {}),
            )
        except KeyError as exc:
            raise ValueError(f"manifest: missing field {exc.args[0]!r}") from None

    @classmethod
    def read(cls, directory: str | Path) -> EngineManifest:
        path = Path(directory) / MANIFEST_NAME
        if not path.is_file():
            raise FileNotFoundError(
                f"engine: no {MANIFEST_NAME} in {directory} (export one: `gigabrain-runtime "
                f"export --preset tiny --out {directory}`; `make demo` builds engines/tiny)"
            )
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from None
        return cls.from_dict(data)
