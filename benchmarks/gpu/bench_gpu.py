"""The chunk's speed on one GPU, in one short run (issue 17): eager, compiled and CUDA-graph
variants of the torch backend for the efficient mode, the standard mode and the world-model
step, interleaved, with warm-up; JSON and a markdown table into OUT_DIR.

    python benchmarks/gpu/bench_gpu.py OUT_DIR [--device cuda] [--presets gigabrain-0,gigabrain-0.5]
        [--dtype bfloat16] [--variants eager,cuda_graphs,compiled] [--runs 30] [--warmup 3]
        [--budget-s 420]

Rehearsed on the CPU with ``--device cpu --presets tiny --dtype float32`` (the CUDA-graph
variant is then skipped, saying so). The work shape is the published one: ``gigabrain-0``
(three 224 px views = 768 image tokens, 200 text tokens, 10 flow steps, chunk 50 x 32) and
``gigabrain-0.5`` (the same policy shape with the world-model tokens in standard mode, and a
Wan2.2-shaped world-model step), random weights, batch 1.

Every variant of a preset shares one set of weights (built once on the device, in its dtype);
every stage is guarded (an error is recorded and the next runs) and the results are written
after each preset, so a run cut by its time limit still leaves what it measured. The chunk of
each variant is compared with the eager one (same noise), so a fast variant that computes
something else shows.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import subprocess
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

# published per-chunk figures for this model class (batch 1), for the table
PUBLISHED = [
    ("pi0, 3 views, RTX 4090, Triton kernels + CUDA graphs", 36.8),
    ("pi0, RTX 5090, hand-written FP8 CUDA (FlashRT)", 24.5),
    ("pi0, H200, torch.compile + CUDA graphs", 25.35),
    ("GR00T N1.6/N1.7 TensorRT, H100", 36.0),
    ("bf16 roofline, PaliGemma-3B prefix + 0.3B expert x 10 steps, H200", 5.0),
]
TARGET_MS = 10.0


def _gpu_info(device: str) -> dict[str, object]:
    import torch

    info: dict[str, object] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": device,
    }
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name(0)
        info["capability"] = ".".join(map(str, torch.cuda.get_device_capability(0)))
        info["cuda"] = torch.version.cuda
        try:
            smi = subprocess.run(
                ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv"],
                capture_output=True,
                text=True,
                timeout=20,
            )
            info["nvidia_smi"] = smi.stdout.strip()
        except (OSError, subprocess.TimeoutExpired) as exc:
            info["nvidia_smi"] = f"unavailable: {exc}"
    else:
        info["cpu_threads"] = torch.get_num_threads()
    return info


VARIANTS = {
    # name: (torch.compile on?, its mode)
    "eager": (False, None),
    "compiled": (True, "default"),  # inductor kernels, no CUDA graphs
    "cuda_graphs": (True, "reduce-overhead"),  # inductor + the whole call as a CUDA graph
}


def bench_preset(preset: str, args: argparse.Namespace, deadline: float) -> dict[str, object]:
    import numpy as np
    import torch

    from gigabrain_runtime.bench import latency_summary, phase_breakdown, synthetic_observation
    from gigabrain_runtime.inference.export import preset_manifest
    from gigabrain_runtime.inference.torch_backend import TorchBackend
    from gigabrain_runtime.inference.types import Mode
    from gigabrain_runtime.model.build import build_models
    from gigabrain_runtime.model.presets import get_preset

    cfg = get_preset(preset)
    manifest = preset_manifest(cfg)
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    sync = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)
    out: dict[str, object] = {"preset": preset, "dtype": args.dtype}
    t0 = time.monotonic()
    models = build_models(cfg, seed=0, device=device, dtype=dtype)
    sync()
    out["build_s"] = round(time.monotonic() - t0, 2)
    out["parameters_b"] = round(
        sum(p.numel() for m in models if m for p in m.parameters()) / 1e9, 3
    )
    has_wm = cfg.variant.has_world_model
    kinds = ["efficient", *(["standard", "world_model"] if has_wm else [])]
    backends: dict[str, TorchBackend] = {}
    skipped: dict[str, str] = {}
    for name in args.variants:
        compiled, mode = VARIANTS[name]
        if name == "cuda_graphs" and args.device != "cuda":
            skipped[name] = "no CUDA device (CUDA graphs need one)"
            continue
        backends[name] = TorchBackend(
            manifest, models=models, device=args.device, dtype=args.dtype,
            compile=compiled, compile_mode=mode,
        )  # fmt: skip
    out["skipped"] = skipped
    first = next(iter(backends.values()))
    obs = synthetic_observation(first, "piper")
    noise = np.random.default_rng(0).standard_normal((cfg.action_expert.horizon, 32))
    noise = noise.astype(np.float32)
    if has_wm:
        eff = first.infer(obs, noise=noise).actions
        obs_std = dataclasses.replace(obs, world=first.predict_world(obs, eff))

    def call(backend: TorchBackend, kind: str):  # noqa: ANN202
        if kind == "efficient":
            return backend.infer(obs, noise=noise).actions
        if kind == "standard":
            return backend.infer(obs_std, mode=Mode.STANDARD, noise=noise).actions
        return backend.predict_world(obs_std, eff).z_tokens

    # warm-up: the first call compiles / captures (its time recorded), then args.warmup more
    first_call: dict[str, dict[str, float]] = {}
    reference: dict[str, np.ndarray] = {}
    diff: dict[str, dict[str, float]] = {}
    for name, backend in list(backends.items()):
        if time.monotonic() > deadline:
            skipped[name] = "time budget (before its warm-up)"
            del backends[name]
            continue
        try:
            for kind in kinds:
                t = time.monotonic()
                result = call(backend, kind)
                sync()
                first_call.setdefault(name, {})[kind] = round(time.monotonic() - t, 2)
                if kind != "world_model":  # the world model samples noise: not comparable
                    if name == "eager":
                        reference[kind] = result
                    elif kind in reference:
                        err = float(np.abs(result - reference[kind]).max())
                        diff.setdefault(name, {})[kind] = err
                for _ in range(args.warmup):
                    call(backend, kind)
                sync()
        except Exception:  # noqa: BLE001 - one variant failing must not lose the others
            skipped[name] = "error: " + traceback.format_exc(limit=3)
            print(f"{preset} {name}: {skipped[name]}", flush=True)
            del backends[name]
    out["first_call_s"] = first_call
    out["max_abs_diff_vs_eager"] = diff
    # interleaved: run i of every variant and kind before run i+1 of any
    samples: dict[tuple[str, str], list[float]] = {(n, k): [] for n in backends for k in kinds}
    for _ in range(args.runs):
        if time.monotonic() > deadline:
            out["cut"] = "time budget: fewer runs than asked"
            break
        for name, backend in backends.items():
            for kind in kinds:
                sync()
                t = time.perf_counter()
                call(backend, kind)
                sync()
                samples[(name, kind)].append((time.perf_counter() - t) * 1e3)
    out["latency"] = [
        {"variant": n, "kind": k, **latency_summary(v)} for (n, k), v in samples.items() if v
    ]
    if "eager" in backends and time.monotonic() < deadline:
        out["phases_eager_efficient_p50_ms"] = phase_breakdown(
            backends["eager"],
            obs,
            modes=[Mode.EFFICIENT],
            runs=max(3, min(10, args.runs)),
            warmup=0,
        )[Mode.EFFICIENT.value]
    del backends, models
    if args.device == "cuda":
        out["peak_memory_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    return out


def markdown(report: dict[str, object]) -> str:
    from gigabrain_runtime.bench import format_phases

    info = report["machine"]
    lines = [
        f"# GPU chunk latency ({info.get('gpu', info['device'])})",
        "",
        f"torch {info['torch']}, CUDA {info.get('cuda', '-')}; "
        f"{info.get('nvidia_smi', '')}".strip(),
        "",
        f"Command: `{report['command']}`",
        "",
        "| preset | kind | variant | p50 ms | p99 ms | runs | first call s | max diff vs eager |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for p in report["presets"]:
        if "error" in p:
            lines.append(f"| {p['preset']} | error | | | | | | |")
            continue
        for row in p.get("latency", []):
            first = p["first_call_s"].get(row["variant"], {}).get(row["kind"], "")
            d = p["max_abs_diff_vs_eager"].get(row["variant"], {}).get(row["kind"])
            lines.append(
                f"| {p['preset']} | {row['kind']} | {row['variant']} | {row['p50_ms']:.2f} | "
                f"{row['p99_ms']:.2f} | {row['runs']} | {first} | "
                f"{'' if d is None else f'{d:.1e}'} |"
            )
        for name, why in p.get("skipped", {}).items():
            lines.append(f"| {p['preset']} | | {name} | skipped: {why.splitlines()[0]} | | | | |")
        phases = p.get("phases_eager_efficient_p50_ms")
        if phases:
            lines.append("")
            lines.append(f"{p['preset']} eager efficient phases (p50 ms): {format_phases(phases)}")
            lines.append("")
    lines += ["", f"Target: efficient-mode p50 <= {TARGET_MS} ms. Published, for comparison:", ""]
    lines += [f"- {what}: {ms} ms" for what, ms in PUBLISHED]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--presets", default="gigabrain-0,gigabrain-0.5")
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--variants", default="eager,cuda_graphs,compiled")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--budget-s", type=float, default=420.0)
    args = ap.parse_args(argv)
    args.variants = [v for v in args.variants.split(",") if v]
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        ap.error(f"--variants: unknown {unknown}; choose from {', '.join(VARIANTS)}")
    start = time.monotonic()
    from device_check import _deps  # the packages a bare machine lacks travel in .device_deps

    deps = _deps()
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("device: cuda asked for, but torch sees no CUDA device", file=sys.stderr)
        return 2
    report: dict[str, object] = {
        "command": "python benchmarks/gpu/bench_gpu.py " + " ".join(argv or sys.argv[1:]),
        "machine": _gpu_info(args.device),
        "deps": deps,
        "presets": [],
    }
    presets = [p for p in args.presets.split(",") if p]
    for i, preset in enumerate(presets):
        # each preset gets an equal share of what is left
        deadline = start + args.budget_s * (i + 1) / len(presets)
        try:
            report["presets"].append(bench_preset(preset, args, deadline))  # type: ignore[union-attr]
        except Exception:  # noqa: BLE001
            err = traceback.format_exc(limit=4)
            report["presets"].append({"preset": preset, "error": err})  # type: ignore[union-attr]
            print(err, flush=True)
        report["wall_s"] = round(time.monotonic() - start, 1)
        (out / "results.json").write_text(json.dumps(report, indent=1) + "\n")
        (out / "results.md").write_text(markdown(report))
    print(markdown(report), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
