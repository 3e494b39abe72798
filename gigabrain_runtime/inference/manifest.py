"""Engine manifests: what an exported engine directory contains and how to feed it.

``manifest.json`` sits next to the ONNX files (and TensorRT plans once built). It records the
preset and its full config, the weights hash, the opset, every graph's input/output names,
shapes and dtypes, the embodiments with their model slots and normalisation statistics, the
tokenizer, and - after ``build-engine`` - the GPU, compute capability and TensorRT version the
plans were built for.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gigabrain_runtime.hashing import sha256_file
from gigabrain_runtime.inference.normalization import Normalization
from gigabrain_runtime.model.config import ModelConfig
from gigabrain_runtime.robots.embodiment import RUNTIME_FAMILY, Embodiment, ModelIO

__all__ = [
    "EmbodimentEntry",
    "EngineManifest",
    "GraphSpec",
    "Normalization",
    "TensorSpec",
    "sha256_file",
]

FORMAT = "gigabrain-engine/1"
MANIFEST_NAME = "manifest.json"
WEIGHTS_NAME = "weights.safetensors"


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
class EmbodimentEntry:
    """One robot in an engine: its joints and cameras, how they map onto the model's slot
    (:class:`~gigabrain_runtime.robots.embodiment.ModelIO`), and the normalisations of the
    model's state and action dimensions (``len(dims)`` of them)."""

    embodiment_id: int
    joint_names: tuple[str, ...]
    cameras: tuple[str, ...]  # the robot cameras the runtime subscribes to
    state_norm: Normalization
    action_norm: Normalization
    camera_slots: tuple[str | None, ...] = ()  # per model camera slot (None = black)
    dims: tuple[str | float, ...] = ()  # per model dimension: robot joint or constant
    delta_mask: tuple[bool, ...] = ()
    family: str = RUNTIME_FAMILY
    slot: str = ""

    def __post_init__(self) -> None:
        if not self.camera_slots:
            object.__setattr__(self, "camera_slots", tuple(self.cameras))
        if not self.dims:
            object.__setattr__(self, "dims", tuple(self.joint_names))
        if not self.delta_mask:
            object.__setattr__(self, "delta_mask", (False,) * len(self.dims))
        if len(self.delta_mask) != len(self.dims):
            raise ValueError(
                f"embodiment: delta_mask has {len(self.delta_mask)} entries, dims {len(self.dims)}"
            )
        for name, norm in (("state_norm", self.state_norm), ("action_norm", self.action_norm)):
            if norm.size < len(self.dims):
                raise ValueError(
                    f"embodiment: {name} has {norm.size} dimensions but the robot's mapping "
                    f"needs {len(self.dims)}"
                )
        for j in self.joint_names:
            if j not in self.dims:
                raise ValueError(f"embodiment: joint {j!r} has no model dimension")

    def model_order(self, values: np.ndarray) -> np.ndarray:
        """Robot-order values [..., dof] -> float64 [..., len(dims)] in the model's dimension
        order, each constant dimension filled with its constant."""
        values = np.asarray(values, dtype=np.float64)
        out = np.empty((*values.shape[:-1], len(self.dims)), dtype=np.float64)
        for k, d in enumerate(self.dims):
            out[..., k] = values[..., self.joint_names.index(d)] if isinstance(d, str) else d
        return out

    @property
    def robot_dims(self) -> np.ndarray:
        """bool [len(dims)]: the dimensions that are one of the robot's joints."""
        return np.array([isinstance(d, str) for d in self.dims])

    @property
    def io(self) -> ModelIO:
        return ModelIO(
            family=self.family,
            slot=self.slot,
            embodiment_id=self.embodiment_id,
            camera_slots=self.camera_slots,
            dims=self.dims,
            delta_mask=self.delta_mask,
        )

    @classmethod
    def from_embodiment(
        cls,
        emb: Embodiment,
        *,
        family: str = RUNTIME_FAMILY,
        state_norm: Normalization | None = None,
        action_norm: Normalization | None = None,
        delta_joints: tuple[str, ...] = (),
    ) -> EmbodimentEntry:
        """``emb`` as a model of ``family`` sees it. Without statistics the normalisation maps
        each joint's limits to [-1, 1] (this project's presets). ``delta_joints``: joints the
        model was trained to predict as offsets from the state (``train --delta-joints``), on
        top of the family's own delta dimensions."""
        io = emb.model_io(family)
        unknown = [j for j in delta_joints if j not in io.dims]
        if unknown:
            raise ValueError(
                f"delta_joints: {unknown} are not model dimensions of robot {emb.name} "
                f"({[d for d in io.dims if isinstance(d, str)]})"
            )
        delta_mask = tuple(
            m or (d in delta_joints) for d, m in zip(io.dims, io.delta_mask, strict=True)
        )
        if state_norm is None or action_norm is None:
            # each joint's limits in its model dimension; a constant dimension keeps its value
            lower = [
                emb.lower[emb.joint_names.index(d)] if isinstance(d, str) else d - 1.0
                for d in io.dims
            ]
            upper = [
                emb.upper[emb.joint_names.index(d)] if isinstance(d, str) else d + 1.0
                for d in io.dims
            ]
            norm = Normalization.from_limits(lower, upper)
            state_norm, action_norm = state_norm or norm, action_norm or norm
        n = len(io.dims)
        where = f"robot {emb.name}"
        return cls(
            embodiment_id=io.embodiment_id,
            joint_names=emb.joint_names,
            cameras=emb.cameras,
            state_norm=state_norm.head(n, field=f"{where}: state statistics"),
            action_norm=action_norm.head(n, field=f"{where}: action statistics"),
            camera_slots=io.camera_slots,
            dims=io.dims,
            delta_mask=delta_mask,
            family=io.family,
            slot=io.slot,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "embodiment_id": self.embodiment_id,
            "family": self.family,
            "slot": self.slot,
            "joint_names": list(self.joint_names),
            "cameras": list(self.cameras),
            "camera_slots": list(self.camera_slots),
            "dims": list(self.dims),
            "delta_mask": list(self.delta_mask),
            "state_norm": self.state_norm.to_dict(),
            "action_norm": self.action_norm.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EmbodimentEntry:
        return cls(
            embodiment_id=int(d["embodiment_id"]),
            joint_names=tuple(d["joint_names"]),
            cameras=tuple(d["cameras"]),
            state_norm=Normalization.from_dict(d["state_norm"]),
            action_norm=Normalization.from_dict(d["action_norm"]),
            camera_slots=tuple(d.get("camera_slots", ())),
            dims=tuple(d.get("dims", ())),
            delta_mask=tuple(bool(m) for m in d.get("delta_mask", ())),
            family=d.get("family", RUNTIME_FAMILY),
            slot=d.get("slot", ""),
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
    # where the weights came from: for a checkpoint, its directory and the sha256 of its
    # config, weight files, norm_stats.json, tokenizer and size overrides
    source: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def config(self) -> ModelConfig:
        return ModelConfig.from_dict(self.model)

    def verify(self, directory: str | Path, *, graphs: bool = True, weights: bool = False) -> None:
        """Refuse (ValueError/FileNotFoundError, one line saying what to rebuild) an engine whose
        manifest disagrees with itself or with its files: the preset against the model config it
        records; every graph file present and, with ``graphs``, matching its sha256; with
        ``weights``, ``weights.safetensors`` matching ``weights_sha256``."""
        directory = Path(directory)
        rebuild = f"re-export the engine (gigabrain-runtime export ... --out {directory})"
        config_name = self.model.get("name")
        if config_name != self.preset:
            raise ValueError(
                f"engine: manifest.preset is {self.preset!r} but its model config is "
                f"{config_name!r}; {rebuild}"
            )
        for spec in self.graphs.values():
            path = directory / spec.file
            if not path.is_file():
                raise FileNotFoundError(
                    f"engine: graph file {path} listed in the manifest is missing; {rebuild}"
                )
            if graphs and sha256_file(path) != spec.sha256:
                raise ValueError(
                    f"engine: {path.name} does not match the manifest's sha256; {rebuild}"
                )
        path = directory / WEIGHTS_NAME
        if weights and self.weights_sha256 and path.is_file():  # noqa: SIM102
            if sha256_file(path) != self.weights_sha256:
                raise ValueError(
                    f"engine: {WEIGHTS_NAME} does not match manifest.weights_sha256 "
                    f"({self.weights_sha256[:12]}...); {rebuild}"
                )

    def embodiment(self, name: str) -> EmbodimentEntry:
        try:
            return self.embodiments[name]
        except KeyError:
            raise ValueError(
                f"embodiment: {name!r} is not in this engine (has: {', '.join(self.embodiments)})"
            ) from None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["embodiments"] = {k: e.to_dict() for k, e in self.embodiments.items()}
        return d

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
                source=d.get("source", {}),
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
