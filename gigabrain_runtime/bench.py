"""Latency benchmark: several backends and modes in one process, interleaved.

Interleaving (run i of every backend/mode before run i+1 of any) spreads machine noise - another
process, thermal state, the other core's load - evenly over the rows, so the ratios between
backends printed at the end are fair comparisons taken under the same conditions.

Latency is wall-clock around ``Backend.infer`` (validation, normalisation and the graph run): the
time the ROS node waits for a chunk.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gigabrain_runtime.inference.base import Backend
from gigabrain_runtime.inference.preprocessing import still_chunk
from gigabrain_runtime.inference.types import Mode, Observation

WORLD_MODEL_ROW = "world_model"


def _rss_mb(field: str = "VmRSS") -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def synthetic_observation(backend: Backend, embodiment: str, seed: int = 0) -> Observation:
    """Random camera images and a mid-range joint state for ``embodiment``."""
    from gigabrain_runtime.robots.embodiment import EMBODIMENTS

    entry = backend.manifest.embodiment(embodiment)
    cfg = backend.manifest.config
    rng = np.random.default_rng(seed)
    s = cfg.vision.image_size
    images = {c: rng.integers(0, 256, (s, s, 3), dtype=np.uint8) for c in entry.cameras}
    if embodiment in EMBODIMENTS:
        emb = EMBODIMENTS.get(embodiment)
        state = (emb.lower + emb.upper) / 2
    else:
        state = np.zeros(len(entry.joint_names))
    return Observation(
        images=images,
        state=state,
        instruction="pick up the red cube and place it in the bowl",
        embodiment=embodiment,
    )


def latency_summary(samples_ms: Any) -> dict[str, float]:
    """Percentiles of latency samples (ms): p50, p90, p99, max, mean and the count."""
    a = np.asarray(samples_ms, dtype=float)
    if a.size == 0:
        raise ValueError("latency_summary: no samples")
    return {
        "runs": int(a.size),
        "p50_ms": float(np.percentile(a, 50)),
        "p90_ms": float(np.percentile(a, 90)),
        "p99_ms": float(np.percentile(a, 99)),
        "max_ms": float(a.max()),
        "mean_ms": float(a.mean()),
    }


@dataclass
class Row:
    backend: str
    mode: str
    samples_ms: list[float]
    memory_mb: float

    def stats(self) -> dict[str, Any]:
        latency = latency_summary(self.samples_ms)
        return {
            "backend": self.backend,
            "mode": self.mode,
            **latency,
            "chunks_per_s": 1000.0 / latency["mean_ms"],
            "memory_mb": self.memory_mb,
        }


def run_benchmark(
    backends: dict[str, Backend],
    *,
    modes: list[Mode],
    runs: int,
    warmup: int,
    embodiment: str,
    world_model: bool = True,
    load_memory_mb: dict[str, float] | None = None,
) -> dict[str, Any]:
    if runs < 1:
        raise ValueError(f"runs: must be >= 1, got {runs}")
    load_memory_mb = load_memory_mb or {}
    has_wm = all(b.manifest.config.variant.has_world_model for b in backends.values())
    if not has_wm:
        if Mode.STANDARD in modes:
            raise ValueError(
                "modes: standard needs a world model; this engine runs efficient only "
                "(--modes efficient)"
            )
        world_model = False
    obs: dict[str, Observation] = {}
    still: dict[str, np.ndarray] = {}  # what the vla's loop asks the world model about
    for name, backend in backends.items():
        base = synthetic_observation(backend, embodiment)
        still[name] = still_chunk(base.state, len(backend.infer(base).actions))
        if has_wm:
            base = dataclasses.replace(base, world=backend.predict_world(base, still[name]))
        obs[name] = base
    rows: dict[tuple[str, str], Row] = {}
    kinds = [m.value for m in modes] + ([WORLD_MODEL_ROW] if world_model else [])
    for name in backends:
        for kind in kinds:
            rows[(name, kind)] = Row(name, kind, [], load_memory_mb.get(name, float("nan")))
    for i in range(warmup + runs):
        for name, backend in backends.items():
            for kind in kinds:
                start = time.perf_counter()
                if kind == WORLD_MODEL_ROW:
                    backend.predict_world(obs[name], still[name])
                else:
                    backend.infer(obs[name], mode=kind)
                elapsed = (time.perf_counter() - start) * 1e3
                if i >= warmup:
                    rows[(name, kind)].samples_ms.append(elapsed)
    results = [r.stats() for r in rows.values()]
    ratios: dict[str, dict[str, float]] = {}
    names = list(backends)
    for kind in kinds:
        p50 = {r["backend"]: r["p50_ms"] for r in results if r["mode"] == kind}
        for a in names:
            for b in names:
                if a != b:
                    ratios.setdefault(kind, {})[f"{a}/{b}"] = p50[a] / p50[b]
    return {"results": results, "ratios_p50": ratios}


def phase_breakdown(
    backend: Any, obs: Observation, *, modes: list[Mode], runs: int, warmup: int
) -> dict[str, dict[str, float]]:
    """p50 ms of each phase of an eager chunk (``TorchBackend.phase_times``), per mode: where
    a slow chunk's time goes (the vision encoder, the prefix, each flow step)."""
    out: dict[str, dict[str, float]] = {}
    for mode in modes:
        samples: dict[str, list[float]] = {}
        for i in range(warmup + runs):
            times = backend.phase_times(obs, mode=mode)
            if i >= warmup:
                for name, ms in times.items():
                    samples.setdefault(name, []).append(ms)
        out[mode.value] = {k: float(np.percentile(v, 50)) for k, v in samples.items()}
    return out


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "processor": platform.processor(),
    }
    try:
        import torch

        info["torch"] = torch.__version__
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name()
    except ImportError:
        pass
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    return info


def format_table(report: dict[str, Any]) -> str:
    head = (
        f"{'backend':<12} {'mode':<12} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} "
        f"{'max ms':>8} {'chunk/s':>8} {'mem MB':>8}"
    )
    lines = [head, "-" * len(head)]
    for r in report["results"]:
        lines.append(
            f"{r['backend']:<12} {r['mode']:<12} {r['p50_ms']:8.2f} {r['p90_ms']:8.2f} "
            f"{r['p99_ms']:8.2f} {r['max_ms']:8.2f} {r['chunks_per_s']:8.1f} {r['memory_mb']:8.0f}"
        )
    for kind, pairs in report.get("ratios_p50", {}).items():
        for pair, value in pairs.items():
            lines.append(f"ratio p50 {kind:<12} {pair:<24} {value:6.2f}x")
    for name, per_mode in report.get("phases_p50_ms", {}).items():
        for mode, phases in per_mode.items():
            lines.append(f"phases {name} {mode} (eager, ms p50): {format_phases(phases)}")
    lines.append(f"peak RSS of the process: {report.get('peak_rss_mb', float('nan')):.0f} MB")
    return "\n".join(lines)


def format_phases(phases: dict[str, float]) -> str:
    """One line for :func:`phase_breakdown`'s ms per phase: each phase, the flow steps summed
    (and each), and the total."""
    flow = [v for k, v in phases.items() if k.startswith("flow ")]
    parts = [f"{k} {v:.2f}" for k, v in phases.items() if not k.startswith("flow ")]
    if flow:
        parts.append(f"{len(flow)} flow steps {sum(flow):.2f} ({np.mean(flow):.2f} each)")
    return f"{', '.join(parts)}; sum {sum(phases.values()):.2f}"


def write_json(report: dict[str, Any], path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(report, indent=2) + "\n")


def measure_load(factory: Any) -> tuple[Any, float]:
    """Call ``factory()`` and return (result, resident memory it added in MB)."""
    before = _rss_mb()
    result = factory()
    return result, _rss_mb() - before


def peak_rss_mb() -> float:
    return _rss_mb("VmHWM")
