"""State and action normalisation (NumPy only), and the ``norm_stats.json`` of GigaBrain-0.

Two kinds, one class:

* ``quantile`` (GigaBrain-0, openpi): ``x_n = (x - q01) / (q99 - q01 + 1e-6) * 2 - 1`` and its
  inverse ``x = (x_n + 1) / 2 * (q99 - q01 + 1e-6) + q01``, computed in float32 in exactly the
  order of the official ``Normalize``/``Unnormalize`` transforms, so the bins of the discretised
  state and the final chunk match the reference bit for bit.
* ``mean_std`` (this project's presets, defaults from the joint limits): ``x_n = (x - mean) /
  std``, in float64.

``norm_stats.json`` is what the official ``scripts/compute_norm_stats.py`` writes:
``{"norm_stats": {"observation.state": {mean, std, q01, q99}, "action": {...}}}`` with one value
per padded dimension (32). It is not part of the released checkpoint: every user computes it
for their robot's data.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

KINDS = ("mean_std", "quantile")
QUANTILE_EPS = 1e-6  # the official transforms' EPSILON


def _floats(name: str, values: Any) -> tuple[float, ...]:
    if not isinstance(values, (list, tuple)) or not values:
        raise ValueError(f"{name}: expected a non-empty list of numbers, got {values!r}")
    out = []
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"{name}[{i}]: {v!r} is not a finite number")
        out.append(float(v))
    return tuple(out)


@dataclass(frozen=True, kw_only=True)
class Normalization:
    """Per-dimension normalisation of one vector (state or action); see the module docstring."""

    kind: str = "mean_std"
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    q01: tuple[float, ...] = ()
    q99: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"normalization.kind: {self.kind!r} is not one of {KINDS}")
        for name in ("mean", "std", "q01", "q99"):
            object.__setattr__(self, name, tuple(float(v) for v in getattr(self, name)))
        needed = ("mean", "std") if self.kind == "mean_std" else ("q01", "q99")
        a, b = (getattr(self, n) for n in needed)
        if not a or len(a) != len(b):
            raise ValueError(
                f"normalization ({self.kind}): {needed[0]} has {len(a)} values, "
                f"{needed[1]} {len(b)}"
            )
        if not all(math.isfinite(v) for v in a + b):
            raise ValueError(f"normalization ({self.kind}): {needed} must be finite")
        if self.kind == "mean_std" and any(s <= 0 for s in self.std):
            raise ValueError(f"normalization.std must be > 0, got {self.std}")

    @property
    def size(self) -> int:
        return len(self.mean) if self.kind == "mean_std" else len(self.q01)

    @classmethod
    def from_limits(cls, lower: Sequence[float], upper: Sequence[float]) -> Normalization:
        """Map a joint range to [-1, 1]: the default when no dataset statistics exist."""
        lo, hi = np.asarray(lower, np.float64), np.asarray(upper, np.float64)
        return cls(kind="mean_std", mean=tuple((lo + hi) / 2), std=tuple((hi - lo) / 2))

    def head(self, n: int, *, field: str = "normalization") -> Normalization:
        """The statistics of the first ``n`` dimensions (ValueError naming ``field`` if fewer)."""
        if n > self.size:
            raise ValueError(f"{field}: has {self.size} dimensions, {n} needed")
        return Normalization(
            kind=self.kind,
            mean=self.mean[:n],
            std=self.std[:n],
            q01=self.q01[:n],
            q99=self.q99[:n],
        )

    def normalize(self, x: np.ndarray) -> np.ndarray:
        """[..., n] in robot units -> float32 normalised (n <= size: the leading dimensions)."""
        n = np.shape(x)[-1]
        if self.kind == "quantile":
            q01 = np.asarray(self.q01[:n], np.float32)
            q99 = np.asarray(self.q99[:n], np.float32)
            xf = np.asarray(x, np.float32)
            return (xf - q01) / (q99 - q01 + np.float32(QUANTILE_EPS)) * np.float32(
                2.0
            ) - np.float32(1.0)
        mean, std = np.asarray(self.mean[:n]), np.asarray(self.std[:n])
        return ((np.asarray(x, np.float64) - mean) / std).astype(np.float32)

    def unnormalize(self, x: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`normalize`: float32 (quantile) or float64 (mean_std) [..., n]."""
        n = np.shape(x)[-1]
        if self.kind == "quantile":
            q01 = np.asarray(self.q01[:n], np.float32)
            q99 = np.asarray(self.q99[:n], np.float32)
            xf = np.asarray(x, np.float32)
            return (xf + np.float32(1.0)) / np.float32(2.0) * (
                q99 - q01 + np.float32(QUANTILE_EPS)
            ) + q01
        mean, std = np.asarray(self.mean[:n]), np.asarray(self.std[:n])
        return np.asarray(x, np.float64) * std + mean

    def to_dict(self) -> dict[str, Any]:
        keys = ("mean", "std") if self.kind == "mean_std" else ("mean", "std", "q01", "q99")
        return {"kind": self.kind, **{k: list(getattr(self, k)) for k in keys}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Normalization:
        known = {"kind", "mean", "std", "q01", "q99"}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"normalization: unknown fields {unknown}")
        return cls(**{k: (tuple(v) if k != "kind" else v) for k, v in d.items()})


@dataclass(frozen=True, kw_only=True)
class NormStats:
    """The two normalisations of one ``norm_stats.json`` (quantile kind, as the official
    pipeline uses them), with the file they came from."""

    state: Normalization
    action: Normalization
    path: str


def read_norm_stats(path: str | Path) -> NormStats:
    """Read and check a GigaBrain-0 ``norm_stats.json``. Every problem raises ValueError naming
    the file and the field (a missing file: FileNotFoundError)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"norm_stats: no such file {path}")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    return parse_norm_stats(data, str(path))


def parse_norm_stats(data: Any, path: str) -> NormStats:
    """The checks of :func:`read_norm_stats` on an already loaded mapping (``path`` names it in
    messages)."""
    if not isinstance(data, dict) or not isinstance(data.get("norm_stats"), dict):
        raise ValueError(f"{path}: expected {{'norm_stats': {{...}}}} at top level")
    stats = data["norm_stats"]
    out = {}
    for key, attr in (("observation.state", "state"), ("action", "action")):
        entry = stats.get(key)
        if not isinstance(entry, dict):
            raise ValueError(f"{path}: norm_stats[{key!r}] is missing")
        for q in ("q01", "q99"):
            if q not in entry:
                raise ValueError(
                    f"{path}: norm_stats[{key!r}].{q} is missing (the pipeline normalises by "
                    "quantiles)"
                )
        q01 = _floats(f"{path}: norm_stats[{key!r}].q01", entry["q01"])
        q99 = _floats(f"{path}: norm_stats[{key!r}].q99", entry["q99"])
        if len(q01) != len(q99):
            raise ValueError(
                f"{path}: norm_stats[{key!r}]: q01 has {len(q01)} values, q99 {len(q99)}"
            )
        extra: dict[str, tuple[float, ...]] = {}
        for m in ("mean", "std"):
            if m in entry:
                extra[m] = _floats(f"{path}: norm_stats[{key!r}].{m}", entry[m])
        out[attr] = Normalization(kind="quantile", q01=q01, q99=q99, **extra)
    return NormStats(state=out["state"], action=out["action"], path=str(path))
