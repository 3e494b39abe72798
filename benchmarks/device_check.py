"""One-shot GPU check (run on a lent NVIDIA machine; CI never runs it).

1. The published-checkpoint path on CUDA: the GigaBrain-0 fixture (tests/fixtures/gigabrain0,
   the official pipeline's own run) through the torch backend on the GPU, eager and with
   torch.compile "reduce-overhead" (CUDA graphs), against the official final chunk (tolerance
   1e-4, as on the CPU).
2. Chunk latency on the GPU, eager against CUDA graphs, interleaved in one process: the fixture
   checkpoint, the tiny preset, and (time permitting) the gigabrain-0.5 preset's efficient mode
   in bfloat16 with random weights.

    python benchmarks/device_check.py [OUT_DIR] [--budget-s 420]

Every stage is guarded: a failure or a missing package is recorded and the next stage runs.
Results: OUT_DIR/device_check.json (and printed).
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEPS = ROOT / ".device_deps"  # pure-python / abi3 packages carried for a bare machine
FIXTURE = ROOT / "tests" / "fixtures" / "gigabrain0"
TOL = 1e-4


def _deps() -> dict[str, str]:
    found = {}
    for name in ("numpy", "torch", "triton", "yaml", "safetensors", "sentencepiece", "PIL"):
        try:
            mod = importlib.import_module(name)
            found[name] = str(getattr(mod, "__version__", "?"))
        except Exception:  # noqa: BLE001
            if DEPS.is_dir() and str(DEPS) not in sys.path:
                sys.path.append(str(DEPS))  # after the machine's own packages
            try:
                mod = importlib.import_module(name)
                found[name] = f"{getattr(mod, '__version__', '?')} (carried)"
            except Exception as exc:  # noqa: BLE001
                found[name] = f"missing: {type(exc).__name__}: {exc}"
    return found


def _timed(fn, runs: int, sync) -> list[float]:  # noqa: ANN001
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        sync()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def main() -> int:
    out_dir = Path(sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith("-") else ".")
    budget = float(sys.argv[sys.argv.index("--budget-s") + 1]) if "--budget-s" in sys.argv else 420
    start = time.monotonic()
    report: dict = {"python": platform.python_version(), "deps": _deps()}
    path = out_dir / "device_check.json"

    def save() -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=1) + "\n")

    import numpy as np
    import torch

    report["torch"] = torch.__version__
    report["cuda"] = torch.cuda.is_available()
    if report["cuda"]:
        report["gpu"] = torch.cuda.get_device_name(0)
        report["capability"] = ".".join(map(str, torch.cuda.get_device_capability(0)))
    print(json.dumps(report, indent=1), flush=True)
    save()
    device = "cuda" if report["cuda"] else "cpu"
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    # ---- 1. the fixture checkpoint on the GPU, against the official chunk -------------------
    try:
        from gigabrain_runtime.bench import latency_summary
        from gigabrain_runtime.inference.export import checkpoint_source
        from gigabrain_runtime.inference.torch_backend import TorchBackend
        from gigabrain_runtime.inference.types import Observation

        source = checkpoint_source(FIXTURE)
        images = np.load(FIXTURE / "expected" / "images_224_uint8.npy")
        cams = ("cam_high", "cam_left_wrist", "cam_right_wrist")
        obs = Observation(
            images={c: images[i] for i, c in enumerate(cams)},
            state=np.load(FIXTURE / "inputs" / "state.npy"),
            instruction=(FIXTURE / "inputs" / "instruction.txt").read_text(),
            embodiment="piper_dual",
        )
        noise = np.load(FIXTURE / "inputs" / "noise.npy")
        final = np.load(FIXTURE / "expected" / "final_actions.npy")
        rows = {}
        for compiled in (False, True):
            name = "cuda_graphs" if compiled else "eager"
            t0 = time.monotonic()
            backend = TorchBackend.from_source(source, device=device, compile=compiled)
            chunk = backend.infer(obs, noise=noise)  # first call: compiles / captures
            first_s = time.monotonic() - t0
            err = float(np.abs(chunk.actions - final).max())
            lat = _timed(lambda b=backend: b.infer(obs, noise=noise), 30, sync)
            rows[name] = {"max_abs_err": err, "within_1e-4": err < TOL, "first_call_s": first_s}
            rows[name].update(latency_summary(lat))
            print(f"fixture {name}: max |chunk - official| {err:.2e}, {rows[name]}", flush=True)
        report["fixture_parity"] = rows
    except Exception:  # noqa: BLE001
        report["fixture_parity"] = {"error": traceback.format_exc(limit=4)}
        print(report["fixture_parity"]["error"], flush=True)
    save()

    # ---- 2. presets, eager vs CUDA graphs -------------------------------------------------------
    from gigabrain_runtime.bench import latency_summary, synthetic_observation
    from gigabrain_runtime.inference.export import preset_manifest
    from gigabrain_runtime.model.presets import get_preset

    for preset, dtype, runs in (("tiny", "float32", 50), ("gigabrain-0.5", "bfloat16", 20)):
        if time.monotonic() - start > budget * (0.45 if preset != "tiny" else 0.8):
            report[f"{preset}_{dtype}"] = {"skipped": "time budget"}
            continue
        try:
            rows = {}
            manifest = preset_manifest(get_preset(preset))
            for compiled in (False, True):
                name = "cuda_graphs" if compiled else "eager"
                t0 = time.monotonic()
                # random weights built on the device itself, in its dtype
                backend = TorchBackend(manifest, device=device, dtype=dtype, compile=compiled)
                obs = synthetic_observation(backend, "piper")
                backend.infer(obs)
                first_s = time.monotonic() - t0
                lat = _timed(lambda b=backend, o=obs: b.infer(o), runs, sync)
                rows[name] = {"first_call_s": first_s, **latency_summary(lat)}
                print(f"{preset} {dtype} {name}: {rows[name]}", flush=True)
                del backend
                torch.cuda.empty_cache() if device == "cuda" else None
            report[f"{preset}_{dtype}"] = rows
        except Exception:  # noqa: BLE001
            report[f"{preset}_{dtype}"] = {"error": traceback.format_exc(limit=4)}
            print(report[f"{preset}_{dtype}"]["error"], flush=True)
        save()
    report["wall_s"] = time.monotonic() - start
    save()
    print(json.dumps({k: v for k, v in report.items() if k != "deps"}, indent=1))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    raise SystemExit(main())
