"""``gigabrain-runtime`` command line (also ``python -m gigabrain_runtime``).

Every subcommand turns bad input (unknown preset, missing engine, bad flag value) into one line
on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gigabrain_runtime import entries
from gigabrain_runtime.inference.types import MODES, Mode
from gigabrain_runtime.model.advantage import (
    HILR_GAMMA,
    HILR_N_STEP,
    SAMPLE_FRAMES,
    UNCONDITIONED,
)

DEFAULT_ENGINE_ROOT = Path("engines")


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _print_counts(cfg: object) -> None:
    from gigabrain_runtime.model.build import count_parameters

    counts = count_parameters(cfg)  # type: ignore[arg-type]
    labels = [
        ("vision", "vision encoder + projector"),
        ("decoder", "decoder (with embeddings)"),
        ("action_expert", "action expert"),
        ("policy_heads", "RAMP/CoT/trajectory heads"),
        ("policy_total", "policy total"),
        ("world_model", "world model"),
        ("total", "total"),
    ]
    for key, label in labels:
        n = counts[key]
        human = f"{n / 1e9:.3f} B" if n >= 1e8 else f"{n / 1e6:.3f} M"
        print(f"  {label:<28} {n:>15,d}  ({human})")


def _print_shape(cfg: object) -> None:
    v, d, a = cfg.vision, cfg.decoder, cfg.action_expert  # type: ignore[attr-defined]
    var = cfg.variant  # type: ignore[attr-defined]
    print(
        f"  vision {v.depth}x{v.width} patch {v.patch_size} @ {v.image_size}px "
        f"({v.tokens_per_image} tokens/camera, {v.max_cameras} cameras); decoder {d.depth}x"
        f"{d.width} ({d.num_heads}q/{d.num_kv_heads}kv heads x {d.head_dim}); expert width "
        f"{a.width}; chunk {a.horizon}x{a.action_dim}, {a.num_flow_steps} flow steps; "
        f"{a.max_embodiments} embodiment slots"
    )
    layout = " | ".join(f"{s} {cfg.segment_length(s)}" for s in var.prefix)  # type: ignore[attr-defined]
    print(
        f"  variant {var.name}: prefix [{layout}]; state as {var.state_input}; "
        f"prompt {var.prompt}; images {var.image_resize}"
    )
    line = f"  prefix tokens: efficient {cfg.efficient_prefix_len}"  # type: ignore[attr-defined]
    if var.has_world_model:
        line += (
            f", standard {cfg.standard_prefix_len} "  # type: ignore[attr-defined]
            f"(world-model tokens {cfg.num_wm_tokens})"
        )  # type: ignore[attr-defined]
    print(line)


def cmd_info(args: argparse.Namespace) -> int:
    from gigabrain_runtime.model.presets import get_preset

    if args.checkpoint:
        return _info_checkpoint(args)
    cfg = get_preset(args.preset)
    print(f"preset {cfg.name}: {cfg.description}")
    _print_shape(cfg)
    _print_counts(cfg)
    return 0


def _info_checkpoint(args: argparse.Namespace) -> int:
    """What a checkpoint directory holds and how each robot would map onto it; reads no
    weights (use predict or export for that)."""
    from gigabrain_runtime.inference.export import checkpoint_robots
    from gigabrain_runtime.inference.normalization import read_norm_stats
    from gigabrain_runtime.model.checkpoint import checkpoint_config, resolve_checkpoint
    from gigabrain_runtime.model.tokenizer import SentencePieceTokenizer

    files = resolve_checkpoint(
        args.checkpoint,
        norm_stats=args.norm_stats,
        tokenizer=args.tokenizer,
        model_dims=args.model_dims,
    )
    ckpt = checkpoint_config(files)
    cfg = ckpt.model
    size = sum(f.stat().st_size for f in files.weights)
    print(f"checkpoint {files.weights_dir}")
    print(f"  weights: {len(files.weights)} {files.weight_format} file(s), {size / 2**30:.2f} GiB")
    print(f"  sizes: {files.model_dims or 'released GigaBrain-0 (gigabrain-0 preset)'}")
    if ckpt.defaulted:
        print(f"  config.json omits {', '.join(ckpt.defaulted)} (official defaults used)")
    for note in ckpt.notes:
        print(f"  note: {note}")
    _print_shape(cfg)
    _print_counts(cfg)
    print(f"  norm_stats: {files.norm_stats or 'not found (--norm-stats FILE)'}")
    stats = read_norm_stats(files.norm_stats) if files.norm_stats else None
    if files.tokenizer is not None:
        tok = SentencePieceTokenizer(path=files.tokenizer, max_tokens=cfg.decoder.max_text_tokens)
        tok.check_vocabulary(cfg.decoder.vocab_size)
        print(f"  tokenizer: {tok.path} ({tok.vocab_size} pieces, {tok.max_tokens} tokens)")
    else:
        print("  tokenizer: not found (--tokenizer DIR)")
    for emb in checkpoint_robots(cfg.variant.slot_family, args.robot):
        io = emb.model_io(cfg.variant.slot_family)
        print(f"  robot {emb.name}: {io.describe()}")
        if stats is not None and stats.state.size < len(io.dims):
            print(f"    norm_stats has {stats.state.size} dims; {emb.name} needs {len(io.dims)}")
    return 0


def _with_indicator_condition(cfg: Any, on: bool) -> Any:
    """``cfg`` with the indicator also conditioning the action expert's blocks (``--indicator-
    condition``: training and export must agree, as for ``--delta-joints``)."""
    if not on:
        return cfg
    expert = dataclasses.replace(cfg.action_expert, indicator_condition=True)
    return dataclasses.replace(cfg, action_expert=expert)


def cmd_export(args: argparse.Namespace) -> int:
    from gigabrain_runtime.inference.export import export_source, preset_source
    from gigabrain_runtime.model.presets import get_preset

    start = time.perf_counter()
    if args.checkpoint:
        # --weights: a model fine-tuned from the checkpoint (train --checkpoint)
        source = _checkpoint_source(args, hash_files=True)
    else:
        robots = None
        if args.robot:
            from gigabrain_runtime.robots.embodiment import get_embodiment

            robots = [get_embodiment(r) for r in args.robot]
        source = preset_source(
            _with_indicator_condition(get_preset(args.preset), args.indicator_condition),
            weights=args.weights,
            seed=args.seed,
            embodiments=robots,
            norm_stats=args.norm_stats,
            delta_joints=tuple(args.delta_joints),
        )
    for note in source.notes:
        print(f"note: {note}")
    optimize = {"auto": None, "on": True, "off": False}[args.optimize]
    manifest = export_source(
        source,
        args.out,
        layout=args.layout,
        opset=args.opset,
        verbose=args.verbose,
        optimize=optimize,
    )
    name = args.checkpoint or source.cfg.name
    print(
        f"exported {name} ({manifest.layout}) to {args.out} in {time.perf_counter() - start:.1f} s:"
    )
    for g in manifest.graphs.values():
        ins = ", ".join(f"{t.name}{list(t.shape)}:{t.dtype}" for t in g.inputs)
        outs = ", ".join(f"{t.name}{list(t.shape)}:{t.dtype}" for t in g.outputs)
        print(f"  {g.file}: ({ins}) -> ({outs})")
    for robot, entry in manifest.embodiments.items():
        print(f"  robot {robot}: {entry.io.describe()}")
    print(f"  manifest: {Path(args.out) / 'manifest.json'}")
    return 0


def _checkpoint_source(args: argparse.Namespace, *, hash_files: bool = False):  # noqa: ANN202
    """The checkpoint of ``--checkpoint`` and its file flags; ``hash_files`` (export) records
    the sha256 of every file in the manifest (about a minute for the released weights)."""
    from gigabrain_runtime.inference.export import checkpoint_source

    return checkpoint_source(
        args.checkpoint,
        robots=args.robot,
        norm_stats=args.norm_stats,
        tokenizer=args.tokenizer,
        model_dims=args.model_dims,
        hash_files=hash_files,
        weights=getattr(args, "weights", None),
        delta_joints=tuple(getattr(args, "delta_joints", ())),
    )


def cmd_build_engine(args: argparse.Namespace) -> int:
    from gigabrain_runtime.inference.tensorrt_backend import TensorRTUnavailable, build_plans

    try:
        manifest = build_plans(args.engine, args.precision, workspace_gib=args.workspace_gib)
    except TensorRTUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    info = manifest.tensorrt or {}
    print(
        f"built {args.precision} plans for {info.get('gpu_name')} "
        f"(sm {info.get('compute_capability')}, TensorRT {info.get('tensorrt_version')})"
    )
    return 0


def _open_backends(args: argparse.Namespace, cfg: object) -> tuple[dict, dict[str, float]]:
    from gigabrain_runtime.bench import measure_load
    from gigabrain_runtime.inference.export import ensure_engine, preset_manifest
    from gigabrain_runtime.inference.factory import BACKENDS, open_backend

    names = _csv(args.backends)
    for n in names:
        BACKENDS.get(n, field="backends")
    needs_engine = any(n != "torch" for n in names)
    if args.checkpoint:
        if needs_engine and not args.engine:
            raise ValueError(
                "backends: onnxruntime/tensorrt run an exported engine: export the checkpoint "
                "(gigabrain-runtime export --checkpoint DIR --out ENGINE) and pass --engine ENGINE"
            )
        engine = Path(args.engine) if args.engine else None
    else:
        engine = Path(args.engine) if args.engine else DEFAULT_ENGINE_ROOT / cfg.name  # type: ignore[attr-defined]
        if needs_engine:
            ensure_engine(cfg, engine, layout=args.layout)  # type: ignore[arg-type]
    backends, memory = {}, {}
    for n in names:
        if n == "torch":
            from gigabrain_runtime.inference.torch_backend import TorchBackend

            opts = {"device": args.device, "dtype": args.dtype}
            if args.checkpoint:

                def make(opts=opts):  # noqa: ANN202
                    return TorchBackend.from_source(_checkpoint_source(args), **opts)
            elif engine is not None and (engine / "manifest.json").is_file():

                def make(opts=opts):  # noqa: ANN202
                    return TorchBackend.from_engine(engine, **opts)
            else:

                def make(opts=opts):  # noqa: ANN202
                    return TorchBackend(preset_manifest(cfg), **opts)  # type: ignore[arg-type]
        else:
            kwargs = {}
            if n == "onnxruntime":
                kwargs["spin"] = args.spin
                if args.threads:
                    kwargs["threads"] = args.threads

            def make(n=n, kwargs=kwargs):  # noqa: ANN202
                return open_backend(engine, n, **kwargs)

        backends[n], memory[n] = measure_load(make)
    return backends, memory


def cmd_bench(args: argparse.Namespace) -> int:
    from gigabrain_runtime.bench import (
        format_table,
        machine_info,
        peak_rss_mb,
        run_benchmark,
        write_json,
    )
    from gigabrain_runtime.model.presets import get_preset

    cfg = None if args.checkpoint else get_preset(args.preset)
    default_modes = "efficient" if args.checkpoint else "efficient,standard"
    modes = [Mode.parse(m) for m in _csv(args.modes or default_modes)]
    embodiment = args.embodiment
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    backends, memory = _open_backends(args, cfg)
    report = run_benchmark(
        backends,
        modes=modes,
        runs=args.runs,
        warmup=args.warmup,
        embodiment=embodiment,
        world_model=not args.no_world_model,
        load_memory_mb=memory,
    )
    if args.phases:
        from gigabrain_runtime.bench import phase_breakdown, synthetic_observation
        from gigabrain_runtime.inference.base import PhaseTimed

        report["phases_p50_ms"] = {
            name: phase_breakdown(
                b,
                synthetic_observation(b, embodiment),
                modes=[Mode.EFFICIENT],
                runs=args.runs,
                warmup=args.warmup,
            )
            for name, b in backends.items()
            if isinstance(b, PhaseTimed)
        }
    report.update(
        preset=args.checkpoint or cfg.name,  # type: ignore[union-attr]
        embodiment=embodiment,
        runs=args.runs,
        warmup=args.warmup,
        layout=args.layout,
        spin=args.spin,
        omp_wait_policy=os.environ.get("OMP_WAIT_POLICY"),
        machine=machine_info(),
        peak_rss_mb=peak_rss_mb(),
        memory_note="memory_mb: resident memory added by loading the backend; peak_rss_mb: "
        "the whole process",
    )
    print(format_table(report))
    if args.json:
        write_json(report, args.json)
        print(f"wrote {args.json}")
    for b in backends.values():
        b.close()
    return 0


def _load_image(spec: str, cameras: tuple[str, ...]):  # noqa: ANN202
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    if "=" not in spec:
        raise ValueError(f"--image {spec!r}: expected CAM=FILE")
    cam, file = spec.split("=", 1)
    if cam not in cameras:
        raise ValueError(f"--image {spec!r}: camera {cam!r} is not one of {', '.join(cameras)}")
    try:
        with Image.open(file) as im:
            return cam, np.asarray(im.convert("RGB"))
    except FileNotFoundError:
        raise FileNotFoundError(f"--image {cam}: no such file {file}") from None
    except UnidentifiedImageError:
        raise ValueError(f"--image {cam}: {file} is not an image") from None
    except OSError as exc:  # truncated file, a directory, no permission
        raise ValueError(f"--image {cam}: cannot read {file} ({exc})") from None


def _load_array(path: str, what: str):  # noqa: ANN202
    import numpy as np

    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise FileNotFoundError(f"{what}: no such file {path}") from None
    except (ValueError, OSError) as exc:
        raise ValueError(f"{what}: {path} is not a .npy array ({exc})") from None


def cmd_predict(args: argparse.Namespace) -> int:
    """One chunk from files: the debugging path for a checkpoint or an engine."""
    import tempfile

    import numpy as np

    from gigabrain_runtime.inference.export import export_source
    from gigabrain_runtime.inference.factory import open_backend
    from gigabrain_runtime.inference.torch_backend import TorchBackend
    from gigabrain_runtime.inference.types import Observation
    from gigabrain_runtime.perception.images import resize_with_pad

    if bool(args.checkpoint) == bool(args.engine):
        raise ValueError("predict: give exactly one of --checkpoint DIR or --engine DIR")
    if args.checkpoint and args.backend not in (None, "torch", "onnxruntime"):
        raise ValueError(
            f"--backend {args.backend}: a checkpoint runs on torch or onnxruntime; for TensorRT "
            "export it, build the plans (build-engine) and pass --engine"
        )
    backend_name = args.backend
    tmp = None
    if args.checkpoint:
        if args.robot is None:
            raise ValueError("--robot: required (e.g. piper_dual)")
        source = _checkpoint_source(argparse.Namespace(**{**vars(args), "robot": [args.robot]}))
        for note in source.notes:
            print(f"note: {note}")
        backend_name = backend_name or "torch"
        if backend_name == "torch":
            backend = TorchBackend.from_source(source)
        else:
            tmp = tempfile.TemporaryDirectory(prefix="gigabrain-predict-")
            print(f"exporting the checkpoint to {tmp.name} for {backend_name} ...")
            export_source(source, tmp.name)
            del source  # the torch weights, before onnxruntime loads its own copy
            backend = open_backend(tmp.name, backend_name)
    else:
        from gigabrain_runtime.inference.tensorrt_backend import TensorRTUnavailable

        try:
            backend = open_backend(args.engine, backend_name)
        except TensorRTUnavailable as exc:
            raise ValueError(f"--backend tensorrt: {exc}") from None
    try:
        manifest = backend.manifest
        robot = args.robot or next(iter(manifest.embodiments))
        entry = manifest.embodiment(robot)
        cfg = manifest.config
        state = np.asarray(_load_array(args.state, "--state"))
        if state.shape != (len(entry.joint_names),):
            raise ValueError(
                f"--state {args.state}: shape {state.shape}, robot {robot} has "
                f"{len(entry.joint_names)} joints ({', '.join(entry.joint_names)})"
            )
        images = dict(_load_image(spec, entry.cameras) for spec in args.image)
        missing = [c for c in entry.cameras if c not in images]
        if missing:
            raise ValueError(f"--image: no image for camera(s) {', '.join(missing)}")
        size, method = cfg.vision.image_size, cfg.variant.image_resize
        for cam, img in images.items():
            print(f"image {cam}: {img.shape[1]}x{img.shape[0]} -> {size}x{size} ({method})")
        model_images = {c: resize_with_pad(img, size, method) for c, img in images.items()}
        noise = _load_array(args.noise, "--noise") if args.noise else None
        obs = Observation(
            images=model_images, state=state, instruction=args.instruction, embodiment=robot
        )
        chunk = backend.infer(obs, mode=args.mode, noise=noise, trace=True)
    finally:
        if tmp is not None:
            backend.close()
            tmp.cleanup()
    print(f"robot {robot}: {entry.io.describe()}")
    print(f"prompt ({chunk.num_tokens} tokens): {chunk.prompt!r}")
    print(
        f"backend {backend.name}: chunk {list(chunk.actions.shape)} in {chunk.inference_ms:.1f} ms"
    )
    with np.printoptions(precision=4, suppress=True, linewidth=160):
        print(f"  first step: {chunk.actions[0]}")
        print(f"  last step:  {chunk.actions[-1]}")
    if args.out:
        np.save(args.out, chunk.actions.astype(np.float32))
        print(f"wrote {args.out} ([H, dof] float32, {', '.join(entry.joint_names)})")
    if args.intermediates:
        _write_trace(chunk.trace, Path(args.intermediates))
        print(f"wrote the intermediates to {args.intermediates}")
    return 0


def _write_trace(trace: object, out: Path) -> None:
    import numpy as np

    out.mkdir(parents=True, exist_ok=True)
    t = trace
    np.save(out / "images_224_uint8.npy", t.images)  # type: ignore[attr-defined]
    np.save(out / "state_normalized.npy", t.state_normalized)  # type: ignore[attr-defined]
    (out / "prompt.txt").write_text(t.prompt)  # type: ignore[attr-defined]
    np.save(out / "token_ids.npy", t.token_ids.astype(np.int32))  # type: ignore[attr-defined]
    np.save(out / "attention_mask.npy", t.attention_mask)  # type: ignore[attr-defined]
    np.save(out / "actions_normalized.npy", t.actions_normalized)  # type: ignore[attr-defined]
    np.save(out / "actions_unnormalized.npy", t.actions_unnormalized)  # type: ignore[attr-defined]
    np.save(out / "final_actions.npy", t.final_actions)  # type: ignore[attr-defined]


def cmd_demo(args: argparse.Namespace) -> int:
    from gigabrain_runtime.robots.embodiment import get_embodiment

    get_embodiment(args.robot)
    mode = Mode.parse(args.mode)
    if args.duration <= 0:
        raise ValueError(f"duration: must be > 0, got {args.duration}")
    if args.engine:
        engine, policy, trained = Path(args.engine), f"the engine {args.engine}", True
    else:
        engine, policy, trained = _robot_default_engine(args.robot)
    if args.takeover_for < 0:
        raise ValueError(f"takeover-for: must be >= 0, got {args.takeover_for}")
    takeover_at = args.takeover_at
    if takeover_at is None:
        # a policy shipped for the robot does the task itself; random weights get the operator
        takeover_at = -1.0 if trained else 5.0
    return entries.load("demo")(
        args.robot,
        mode.value,
        args.duration,
        engine,
        record_dir=Path(args.record_dir),
        takeover_at_s=takeover_at if takeover_at >= 0 else None,
        takeover_s=args.takeover_for,
        task_seed=args.seed,
        policy=policy,
        console_port=None if args.console_port < 0 else args.console_port,
    )


def cmd_bench_cameras(args: argparse.Namespace) -> int:
    entries.load("bench-cameras")(seconds=args.seconds, out=Path(args.out) if args.out else None)
    return 0


def _robot_default_engine(robot: str) -> tuple[Path, str, bool]:
    """The engine the demo and eval run for ``robot`` when none is given: the policy shipped
    for it (gigabrain_runtime/policies; exported on first use), else the tiny preset's random
    weights. Returns (engine directory, what it is, whether it is trained)."""
    from gigabrain_runtime.inference.export import ensure_engine
    from gigabrain_runtime.model.presets import get_preset
    from gigabrain_runtime.policies import ensure_policy_engine, for_robot

    shipped = for_robot(robot)
    if shipped is not None:
        engine = ensure_policy_engine(shipped, DEFAULT_ENGINE_ROOT / shipped.name)
        return engine, f"the shipped policy {shipped.name} ({shipped.preset})", True
    engine = DEFAULT_ENGINE_ROOT / "tiny"
    ensure_engine(get_preset("tiny"), engine)
    return engine, "the tiny preset (random weights)", False


def _engine_or_default(given: str | None) -> Path:
    """The engine a bench runs: ``given``, or the tiny preset's (exported on first use)."""
    from gigabrain_runtime.inference.export import ensure_engine
    from gigabrain_runtime.model.presets import get_preset

    if given:
        return Path(given)
    engine = DEFAULT_ENGINE_ROOT / "tiny"
    ensure_engine(get_preset("tiny"), engine)
    return engine


def cmd_bench_flood(args: argparse.Namespace) -> int:
    entries.load("bench-flood")(
        _engine_or_default(args.engine),
        phase_s=args.phase_s,
        phases=args.phases,
        malformed=args.malformed,
        out=Path(args.out) if args.out else None,
    )
    return 0


def cmd_bench_control(args: argparse.Namespace) -> int:
    from gigabrain_runtime.inference.factory import open_backend

    backend = open_backend(_engine_or_default(args.engine), "onnxruntime")
    entries.load("bench-control")(
        backend,
        robot=args.robot,
        control_hz=args.control_hz,
        inference_hz=args.inference_hz,
        seconds=args.seconds,
        json_path=args.json,
    )
    return 0


def cmd_bench_console(args: argparse.Namespace) -> int:
    if args.seconds <= 0 or args.repeats < 1:
        raise ValueError(
            f"seconds/repeats: must be > 0 and >= 1, got {args.seconds}, {args.repeats}"
        )
    if args.engine:
        engine = Path(args.engine)
    else:
        engine, _, _ = _robot_default_engine(args.robot)
    entries.load("bench-console")(
        args.robot,
        engine,
        seconds=args.seconds,
        repeats=args.repeats,
        out=Path(args.json) if args.json else None,
        screenshot=Path(args.screenshot) if args.screenshot else None,
    )
    return 0


def cmd_record(args: argparse.Namespace) -> int:
    from gigabrain_runtime.robots.embodiment import get_embodiment

    emb = get_embodiment(args.robot)
    ns = args.namespace if args.namespace is not None else emb.name
    ros_args = [
        "--ros-args",
        "-r",
        f"__ns:=/{ns.strip('/')}" if ns else "__ns:=/",
        "-p",
        f"robot:={args.robot}",
        "-p",
        f"record_dir:={args.record_dir}",
        "-p",
        f"auto_start:={'false' if args.wait_for_start else 'true'}",
    ]
    if args.operator:
        ros_args += ["-p", f"operator:={args.operator}"]
    if args.engine:
        ros_args += ["-p", f"engine:={args.engine}"]
    if args.min_free_mb is not None:
        ros_args += ["-p", f"min_free_mb:={float(args.min_free_mb)}"]
    return entries.load("record")(["gigabrain-runtime-record", *ros_args])


def cmd_train(args: argparse.Namespace) -> int:
    from gigabrain_runtime.model.presets import get_preset
    from gigabrain_runtime.training.trainer import TrainConfig, Trainer

    config = TrainConfig(
        robot=args.robot,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        warmup_steps=args.warmup_steps,
        ema_decay=args.ema_decay,
        save_every=args.save_every,
        log_every=args.log_every,
        seed=args.seed,
        stride=args.stride,
        delta_joints=tuple(args.delta_joints),
        parallel=args.parallel,
        trajectory=args.trajectory,
        objective=args.objective,
        gamma=args.gamma,
        frames=args.frames,
        unconditioned=args.unconditioned,
    )
    start = None
    if args.checkpoint:
        from gigabrain_runtime.inference.export import checkpoint_source

        if args.weights:
            raise ValueError("--weights: not with --checkpoint (the checkpoint has its weights)")
        start = checkpoint_source(
            args.checkpoint,
            robots=[args.robot],
            tokenizer=args.tokenizer,
            model_dims=args.model_dims,
            for_training=True,
        )
    cfg = get_preset(args.preset)
    ramp = {
        k: v
        for k, v in (
            ("alpha", args.alpha),
            ("world_model_drop_prob", args.wm_drop_prob),
            ("world_model_still_prob", args.wm_still_prob),
        )
        if v is not None
    }
    if ramp:
        if args.checkpoint:
            raise ValueError("--alpha/--wm-drop-prob/--wm-still-prob: only with --preset")
        cfg = dataclasses.replace(cfg, ramp=dataclasses.replace(cfg.ramp, **ramp))
    if args.indicator_condition and args.checkpoint:
        raise ValueError("--indicator-condition: only with --preset")
    cfg = _with_indicator_condition(cfg, args.indicator_condition)
    if not args.dataset and not args.demos:
        raise ValueError("--dataset: required unless --demos is given")
    trainer = Trainer(
        cfg,
        [Path(d) for d in args.dataset],
        Path(args.out),
        config,
        init_weights=Path(args.weights) if args.weights else None,
        start=start,
        norm_stats=Path(args.norm_stats) if args.norm_stats else None,
        demos=[Path(d) for d in args.demos],
    )
    path = trainer.run(stop_after=args.stop_after)
    if trainer.dist.main:
        model = (
            f"--checkpoint {args.checkpoint}"
            + (f" --tokenizer {args.tokenizer}" if args.tokenizer else "")
            + (f" --model-dims {args.model_dims}" if args.model_dims else "")
            if args.checkpoint
            else f"--preset {args.preset}"
        )
        print(
            f"trained {trainer.step} steps: {path}, {Path(args.out) / 'norm_stats.json'}, "
            f"loss curve {Path(args.out) / 'loss.png'}; export with: gigabrain-runtime export "
            f"{model} --weights {path} --norm-stats {Path(args.out) / 'norm_stats.json'} "
            f"--robot {args.robot}"
            + (" --delta-joints " + " ".join(args.delta_joints) if args.delta_joints else "")
            + " --out engines/<name>"
        )
    return 0


def _csv_list(text: str, field: str, parse: Callable[[str], Any]) -> list[Any]:
    try:
        values = [parse(v.strip()) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"{field}: expected a comma-separated list, got {text!r}") from None
    if not values:
        raise ValueError(f"{field}: empty list")
    return values


def cmd_eval(args: argparse.Namespace) -> int:
    from gigabrain_runtime.control.blending import EXECUTION_MODES
    from gigabrain_runtime.sim.evaluate import delay_table, evaluate

    executions = _csv_list(args.execution, "--execution", str)
    for e in executions:
        if e not in EXECUTION_MODES:
            raise ValueError(f"--execution: unknown {e!r} (known: {', '.join(EXECUTION_MODES)})")
    delays = _csv_list(args.inject_delay_ms, "--inject-delay-ms", float)
    if any(d < 0 for d in delays):
        raise ValueError(f"--inject-delay-ms: delays must be >= 0, got {delays}")
    grid = len(executions) * len(delays) > 1
    if args.direct and (grid or delays != [0.0] or executions != ["crossfade"]):
        raise ValueError(
            "--direct: the reference loop has no runtime (no delay, no execution mode); "
            "use --timed or the graph"
        )
    engine = Path(args.engine) if args.engine else _robot_default_engine(args.robot)[0]
    cells = []
    for execution in executions:
        for delay in delays:
            tag = f"-{execution}-{delay:g}ms" if grid else ""
            summary = evaluate(
                engine,
                args.robot,
                args.episodes,
                args.seed,
                direct=args.direct,
                timed=args.timed,
                json_path=Path(args.json.replace(".json", f"{tag}.json")) if args.json else None,
                csv_path=Path(args.csv.replace(".csv", f"{tag}.csv")) if args.csv else None,
                mode=args.mode,
                record_dir=Path(args.record_dir),
                execution=execution,
                inject_delay_ms=delay,
                **({} if args.inference_hz is None else {"inference_hz": args.inference_hz}),
            )
            cells.append((execution, delay, summary))
    if grid or args.markdown:
        table = delay_table(cells)
        print(table)
        if args.markdown:
            Path(args.markdown).write_text(table)
    return 0 if all(s.episodes for _, _, s in cells) else 1


def cmd_sim_pretrain(args: argparse.Namespace) -> int:
    from gigabrain_runtime.model.presets import get_preset
    from gigabrain_runtime.sim.pretrain import pretrain_vision, render_scenes

    cfg = get_preset(args.preset)
    if args.episodes < 2 or args.per_episode < 1 or args.seed < 0:
        raise ValueError("--episodes >= 2, --per-episode >= 1 and --seed >= 0 are required")
    start = time.perf_counter()
    scenes = render_scenes(
        args.robot,
        args.camera,
        list(range(args.seed, args.seed + args.episodes)),
        args.per_episode,
        cfg.vision.image_size,
    )
    print(f"rendered {len(scenes.images)} scenes in {time.perf_counter() - start:.0f} s")
    errors = pretrain_vision(
        cfg, scenes, Path(args.out), steps=args.steps, batch_size=args.batch_size, lr=args.lr
    )
    minutes = errors.pop("minutes")
    print(
        f"vision pretrained in {minutes} min: {args.out}; held-out mean absolute error (cm): "
        + ", ".join(f"{k} {v:.2f}" for k, v in errors.items())
    )
    print(f"train from it: gigabrain-runtime train --preset {args.preset} --weights {args.out} ...")
    return 0


def cmd_sim(args: argparse.Namespace) -> int:
    from gigabrain_runtime.sim.collect import CollectConfig, collect

    results = collect(
        args.robot,
        args.episodes,
        args.seed,
        Path(args.out),
        namespace=args.namespace or "",
        config=CollectConfig(
            camera_hz=args.camera_hz,
            image_size=args.image_size,
            disturbance_rad=args.disturbance,
        ),
    )
    return 0 if results else 1


def cmd_sim_rollout(args: argparse.Namespace) -> int:
    from gigabrain_runtime import entries
    from gigabrain_runtime.hilr.monitor import MonitorConfig

    if args.episodes < 1 or args.seed < 0:
        raise ValueError(
            f"--episodes >= 1 and --seed >= 0 required, got {args.episodes}, {args.seed}"
        )
    monitor = MonitorConfig(
        **{f.name: getattr(args, f.name) for f in dataclasses.fields(MonitorConfig)}
    )
    engine = Path(args.engine) if args.engine else _robot_default_engine(args.robot)[0]
    start = time.perf_counter()
    summary = entries.load("eval-graph")(
        engine,
        args.robot,
        list(range(args.seed, args.seed + args.episodes)),
        mode=args.mode,
        record_dir=Path(args.record_dir),
        execution=args.execution,
        monitor=monitor,
        **({} if args.inference_hz is None else {"inference_hz": args.inference_hz}),
    )
    summary.write(Path(args.json) if args.json else None, Path(args.csv) if args.csv else None)
    print(summary.report() + f" ({time.perf_counter() - start:.0f} s)")
    print(f"episodes recorded under {args.record_dir} (bag list / bag plot / bag export)")
    return 0 if summary.episodes else 1


def _add_monitor_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per :class:`MonitorConfig` field, its default the field's."""
    from gigabrain_runtime.hilr.monitor import MonitorConfig

    for f in dataclasses.fields(MonitorConfig):
        parser.add_argument(
            "--" + f.name.replace("_", "-"),
            dest=f.name,
            type=type(f.default),
            default=f.default,
            help=f"failure monitor: {f.name} (default {f.default})",
        )


def cmd_ramp(args: argparse.Namespace) -> int:
    from gigabrain_runtime.training.ramp import RampConfig, run_ramp

    config = RampConfig(
        **{
            f.name: tuple(v) if isinstance(v, list) else v
            for f in dataclasses.fields(RampConfig)
            if (v := getattr(args, f.name, None)) is not None
        }
    )
    run_ramp(config, Path(args.out))
    return 0


def cmd_bag(args: argparse.Namespace) -> int:
    from gigabrain_runtime.hilr.cli import main as bag_main

    return bag_main(args)


def run_ros_node(argv: list[str]) -> int:
    """``gigabrain-runtime node NAME [--ros-args ...]``: one ROS 2 node in this process."""
    import importlib

    from gigabrain_runtime.launching.runner import NODES

    if not argv or argv[0].startswith("-"):
        print(
            f"usage: gigabrain-runtime node {{{','.join(NODES.names())}}} [--ros-args ...]",
            file=sys.stderr,
        )
        return 2
    try:
        module = importlib.import_module(NODES.get(argv[0], field="node"))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return int(module.main([f"gigabrain-runtime-{argv[0]}", *argv[1:]]))


def cmd_console(args: argparse.Namespace) -> int:
    """``gigabrain-runtime console``: the console node on its own, in the robot's namespace."""
    from gigabrain_runtime.params.nodes import ConsoleParams

    values = {
        "robot": args.robot,
        "port": args.port,
        "bind": args.bind,
        "token": args.token or "",
        "record_dir": args.record_dir,
        "hold_to_run": args.hold_to_run,
    }
    ConsoleParams(**values)  # a bad value is refused here, naming the field
    ros_args = ["--ros-args", "-r", f"__ns:=/{(args.namespace or args.robot).strip('/')}"]
    for k, v in values.items():
        text = str(v).lower() if isinstance(v, bool) else str(v)
        ros_args += ["-p", f"{k}:={text}" if text else f"{k}:=''"]
    return run_ros_node(["console", *ros_args])


def cmd_params(args: argparse.Namespace) -> int:
    from gigabrain_runtime.params.nodes import tables, with_readme_tables

    if args.readme:
        path = Path(args.readme)
        path.write_text(with_readme_tables(path.read_text()))
        print(f"updated the parameter tables in {path}")
        return 0
    print(tables(args.nodes), end="")
    return 0


def cmd_structure(args: argparse.Namespace) -> int:
    from gigabrain_runtime.structure import mermaid, with_readme_drawing

    if args.readme:
        path = Path(args.readme)
        path.write_text(with_readme_drawing(path.read_text()))
        print(f"updated the structure drawing in {path}")
        return 0
    print(mermaid(), end="")
    return 0


def cmd_launch(args: argparse.Namespace) -> int:
    from gigabrain_runtime.launching.launch_file import load_launch
    from gigabrain_runtime.launching.runner import run_launch

    arguments = {}
    for item in args.arguments:
        if ":=" not in item:
            raise ValueError(f"launch argument {item!r}: expected name:=value")
        name, value = item.split(":=", 1)
        arguments[name] = value
    nodes = load_launch(args.file, arguments)
    for n in nodes:
        print(f"starting {n.fqn} ({' '.join(n.args)})")
    return run_launch(nodes)


def _add_checkpoint_files(g: Any, *, stats: bool) -> None:
    """--checkpoint and the files found with it (--norm-stats only where the checkpoint's own
    statistics are used: training computes its own)."""
    g.add_argument(
        "--checkpoint",
        help="GigaBrain-0 checkpoint directory (config.json + weights; or a folder holding "
        "checkpoint/, norm_stats.json, tokenizer/)",
    )
    if stats:
        g.add_argument("--norm-stats", help="norm_stats.json (default: found with the checkpoint)")
    g.add_argument("--tokenizer", help="tokenizer directory holding tokenizer.model")
    g.add_argument("--model-dims", help="model_dims.json: sizes other than the released ones")


def _add_checkpoint_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("checkpoint (instead of --preset)")
    _add_checkpoint_files(g, stats=True)
    g.add_argument(
        "--robot",
        action="append",
        default=None,
        help="robot the engine serves (repeat; default: every robot with a slot)",
    )


def build_parser() -> argparse.ArgumentParser:
    from gigabrain_runtime import __version__

    parser = argparse.ArgumentParser(
        prog="gigabrain-runtime",
        description="ROS 2 runtime for GigaBrain-0.5M* vision-language-action policies",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "info", help="a preset's or a checkpoint's shape, parameter counts and robot slots"
    )
    p.add_argument("--preset", default="tiny")
    _add_checkpoint_args(p)
    p.set_defaults(func=cmd_info)

    p = sub.add_parser(
        "export", help="export a preset or a checkpoint (policy, both modes, world model) to ONNX"
    )
    p.add_argument("--preset", default="tiny")
    _add_checkpoint_args(p)
    p.add_argument(
        "--weights",
        help="safetensors file written by this package (with --checkpoint: fine-tuned from it)",
    )
    p.add_argument(
        "--delta-joints",
        nargs="+",
        default=[],
        metavar="JOINT",
        help="joints the weights predict as offsets from the state (train --delta-joints)",
    )
    p.add_argument("--out", required=True, help="engine directory to write")
    p.add_argument("--layout", choices=["fused", "split"], default="fused")
    p.add_argument(
        "--indicator-condition",
        action="store_true",
        help="weights trained with train --indicator-condition (the indicator in the action "
        "expert's adaRMS condition)",
    )
    p.add_argument("--seed", type=int, default=0, help="random-init seed when no --weights")
    p.add_argument("--opset", type=int, default=20)
    p.add_argument(
        "--optimize",
        choices=["auto", "on", "off"],
        default="auto",
        help="onnxscript graph optimiser (auto: for models under 1 B parameters; it takes hours "
        "on the released size, and onnxruntime optimises on load anyway)",
    )
    p.add_argument("--verbose", action="store_true")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("build-engine", help="build TensorRT plans from an exported engine")
    p.add_argument("engine", help="engine directory written by export")
    p.add_argument("--precision", choices=["fp16", "bf16", "fp8"], default="fp16")
    p.add_argument("--workspace-gib", type=float, default=8.0)
    p.set_defaults(func=cmd_build_engine)

    p = sub.add_parser("bench", help="latency of backends x modes, interleaved in one process")
    p.add_argument("--preset", default="tiny")
    p.add_argument("--backends", default="torch,onnxruntime")
    p.add_argument(
        "--modes", default=None, help="default: efficient,standard (efficient for a checkpoint)"
    )
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--json", help="write the report here")
    p.add_argument(
        "--engine", help="engine directory (default engines/<preset>, exported if absent)"
    )
    p.add_argument("--layout", choices=["fused", "split"], default="fused")
    _add_checkpoint_args(p)
    p.add_argument("--embodiment", default="piper", help="robot whose inputs are simulated")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (default: all cores)")
    p.add_argument("--device", default="cpu", help="torch backend device")
    p.add_argument("--dtype", default="float32", help="torch backend dtype")
    p.add_argument("--no-world-model", action="store_true", help="skip the world-model row")
    p.add_argument(
        "--phases",
        action="store_true",
        help="also time each phase of an eager efficient-mode chunk (vision+embeddings, prefix, "
        "each flow step) for the torch backend",
    )
    p.add_argument(
        "--spin",
        action="store_true",
        help="let onnxruntime threads busy-wait between runs (faster alone, but "
        "steals the cores from anything else; the runtime keeps it off)",
    )
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser(
        "predict",
        help="one chunk from files (images, state, instruction): debug a checkpoint offline",
        description="Run one chunk through the checkpoint's (or engine's) own preprocessing "
        "and print the prompt, its token count and the slot mapping; write the joint-space "
        "chunk [H, dof] in the robot's units.",
    )
    src = p.add_argument_group("model (one of)")
    src.add_argument("--checkpoint", help="GigaBrain-0 checkpoint directory")
    src.add_argument("--engine", help="engine directory written by export")
    p.add_argument("--norm-stats", help="norm_stats.json (default: found with the checkpoint)")
    p.add_argument("--tokenizer", help="tokenizer directory (tokenizer.model)")
    p.add_argument("--model-dims", help="size overrides (model_dims.json)")
    p.add_argument("--robot", help="robot (e.g. piper_dual); default: the engine's first")
    p.add_argument("--instruction", required=True, help="task instruction")
    p.add_argument("--state", required=True, help=".npy joint positions [dof], robot order")
    p.add_argument(
        "--image",
        action="append",
        default=[],
        metavar="CAM=FILE",
        help="one per camera (PNG/JPEG, RGB, any size: letterboxed as the model's pipeline does)",
    )
    p.add_argument("--noise", help=".npy initial flow noise [H, A] float32 (default: random)")
    p.add_argument("--backend", choices=["torch", "onnxruntime", "tensorrt"], default=None)
    p.add_argument("--mode", default="efficient", help="efficient | standard")
    p.add_argument("--out", help="write the chunk here (.npy, [H, dof] float32)")
    p.add_argument(
        "--intermediates",
        metavar="DIR",
        help="write every intermediate (images, normalised state, prompt, token ids, mask, raw "
        "and un-normalised actions, final chunk in model dims) as the reference fixtures name them",
    )
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser(
        "bench-control", help="control-period jitter with inference running vs a naive loop"
    )
    p.add_argument("--robot", default="piper")
    p.add_argument("--control-hz", type=float, default=50.0)
    p.add_argument("--inference-hz", type=float, default=10.0)
    p.add_argument("--seconds", type=float, default=20.0, help="per arrangement")
    p.add_argument("--engine", help="engine directory (default engines/tiny)")
    p.add_argument("--json", help="write the report here")
    p.set_defaults(func=cmd_bench_control)

    p = sub.add_parser(
        "bench-console",
        help="the control path with the operator console open (headless chromium) vs closed",
    )
    p.add_argument("--robot", default="piper")
    p.add_argument("--engine", help="engine directory (default: the robot's shipped policy)")
    p.add_argument("--seconds", type=float, default=40.0, help="measured per phase")
    p.add_argument("--repeats", type=int, default=2, help="phases of each kind")
    p.add_argument("--json", help="write the report here")
    p.add_argument("--screenshot", help="save the open page here (PNG), last open phase")
    p.set_defaults(func=cmd_bench_console)

    p = sub.add_parser(
        "bench-cameras",
        help="frames/s reaching the vla's subscription from a stock (no-profile) publisher",
    )
    p.add_argument("--seconds", type=float, default=10.0, help="per case")
    p.add_argument("--out", help="write the rows here (JSON)")
    p.set_defaults(func=cmd_bench_cameras)

    p = sub.add_parser(
        "bench-flood",
        help="command jitter under a 1 kHz joint-state flood vs the same flood unsubscribed",
    )
    p.add_argument("--phase-s", type=float, default=10.0, help="seconds per phase")
    p.add_argument("--phases", type=int, default=4, help="alternating baseline/flood phases")
    p.add_argument("--malformed", action="store_true", help="flood with a joint missing")
    p.add_argument("--engine", help="engine directory (default engines/tiny)")
    p.add_argument("--out", help="write the report here (JSON)")
    p.set_defaults(func=cmd_bench_flood)

    p = sub.add_parser("record", help="record HILR episodes (rosbag2, MCAP) as its own process")
    p.add_argument("--robot", default="piper")
    p.add_argument("--record-dir", default="recordings")
    p.add_argument("--namespace", help="robot namespace (default: the robot's name)")
    p.add_argument("--operator", default="", help="operator name for the metadata")
    p.add_argument("--engine", default="", help="engine directory (manifest hash in metadata)")
    p.add_argument("--min-free-mb", type=float, help="stop recording below this free disk")
    p.add_argument(
        "--wait-for-start",
        action="store_true",
        help="record only between episode/event start and success|failure|abort "
        "(default: start an episode immediately)",
    )
    p.set_defaults(func=cmd_record)

    p = sub.add_parser(
        "train",
        help="train the policy on a LeRobot v3.0 dataset (flow matching; torchrun for several "
        "processes)",
    )
    p.add_argument(
        "--dataset",
        nargs="+",
        default=[],
        help="LeRobot v3.0 dataset directory (several: their episodes together); may be left "
        "out with --demos (RAMP's stage 2: the world-model-conditioned policy trained on "
        "demonstrations alone)",
    )
    p.add_argument(
        "--demos",
        nargs="+",
        default=[],
        metavar="DATASET",
        help="demonstration datasets trained with --dataset, every frame an expert's (I = 1 "
        "under ramp, as the operator's corrections): continual training keeps the earlier data",
    )
    p.add_argument(
        "--frames",
        choices=SAMPLE_FRAMES,
        default="all",
        help="which --dataset frames are samples (--demos: all): all; operator, only those the "
        "operator controlled (HG-DAgger: the corrections alone); indicator, only those "
        "labelled I = 1",
    )
    p.add_argument(
        "--unconditioned",
        choices=UNCONDITIONED,
        default="all",
        help="ramp objective: which samples its unconditioned term (no indicator) learns from: "
        "all (the paper's); expert, the --demos' and the operator's frames only (the policy's "
        "own actions are then learnt only under their indicator I)",
    )
    p.add_argument("--preset", default="tiny", help="model preset to train")
    _add_checkpoint_files(
        p.add_argument_group(
            "fine-tune a checkpoint (instead of --preset: its slot layout and tokenizer; the "
            "statistics come from the dataset)"
        ),
        stats=False,
    )
    p.add_argument("--weights", help="initial weights (safetensors written by this package)")
    p.add_argument("--out", required=True, help="run directory (resumes from its checkpoints)")
    p.add_argument("--robot", default="piper")
    p.add_argument("--steps", type=int, default=2000, help="length of the schedule")
    p.add_argument(
        "--stop-after",
        type=int,
        metavar="N",
        help="stop after step N of the schedule (checkpoint and EMA weights written); the "
        "same command without it continues",
    )
    p.add_argument("--batch-size", type=int, default=32, help="global batch (all processes)")
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--warmup-steps", type=int, default=100)
    p.add_argument("--ema-decay", type=float, default=0.999)
    p.add_argument("--save-every", type=int, default=500)
    p.add_argument("--log-every", type=int, default=10, help="steps per loss.csv row")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--stride", type=int, default=1, help="every stride-th frame is a sample")
    p.add_argument(
        "--delta-joints",
        nargs="+",
        default=[],
        metavar="JOINT",
        help="joints predicted as offsets from the observed state (e.g. an arm's joints; "
        "grippers stay absolute); export with the same list",
    )
    p.add_argument(
        "--trajectory",
        action="store_true",
        help="embodied chain of thought: also train the 2D trajectory head on the gripper's path "
        "in the first camera, from the states through the simulated scene (simulated robots)",
    )
    p.add_argument(
        "--parallel",
        choices=["ddp", "fsdp"],
        default="ddp",
        help="under torchrun: ddp (every process holds the model) or fsdp (parameters, "
        "gradients and optimiser state sharded over the processes: the full-size model)",
    )
    p.add_argument(
        "--objective",
        default="policy",
        choices=("policy", "world-model", "ramp"),
        help="policy: behaviour cloning on every frame; world-model: the world model alone "
        "(future latent state and value); ramp: the RAMP objective on the dataset's advantage "
        "indicators, conditioned on the world model, which trains jointly",
    )
    p.add_argument(
        "--gamma",
        type=float,
        default=HILR_GAMMA,
        help="per-frame discount of the world model's value target (1 at a success with no "
        "takeover after the frame, else 0)",
    )
    p.add_argument(
        "--norm-stats",
        help="keep this norm_stats.json instead of computing the dataset's (fine-tuning: the "
        "starting policy's, so its inputs and outputs keep their scale)",
    )
    p.add_argument("--alpha", type=float, help="ramp: weight of the indicator-conditioned term")
    p.add_argument(
        "--wm-drop-prob",
        type=float,
        help="ramp: probability of masking the world-model tokens (1: never seen - advantage "
        "conditioning alone, RECAP-like; preset default 0.2)",
    )
    p.add_argument(
        "--wm-still-prob",
        type=float,
        help="world model: fraction of its training samples asked about the arm holding still "
        "instead of the recorded chunk, the target still the recorded future (the still-arm "
        "prediction that conditions the policy then learns the likely future, not the present; "
        "default 0)",
    )
    p.add_argument(
        "--indicator-condition",
        action="store_true",
        help="the advantage indicator also conditions every action-expert block (added to the "
        "flow-time adaRMS condition; starts at zero, so --weights without it load); export "
        "with the same flag",
    )
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="task success of a policy on the simulated task")
    p.add_argument("--engine", help="engine directory (default: the policy shipped for the robot)")
    p.add_argument("--robot", default="piper")
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--seed", type=int, default=0, help="first episode seed (then +1 each)")
    p.add_argument("--mode", default="efficient", help="efficient | standard")
    p.add_argument(
        "--direct",
        action="store_true",
        help="policy and simulator in one process, paused while the policy computes (the "
        "reference)",
    )
    p.add_argument(
        "--timed",
        action="store_true",
        help="the runtime's policy loop and executor against the simulator in simulated time "
        "(every mode meets exactly the injected delay; no DDS)",
    )
    p.add_argument(
        "--execution",
        default="crossfade",
        help="execution mode(s), comma-separated: sync, crossfade, temporal_ensemble, rtc",
    )
    p.add_argument(
        "--inject-delay-ms",
        default="0",
        help="inference delay(s) added to every chunk, comma-separated (ms)",
    )
    p.add_argument(
        "--inference-hz",
        type=float,
        default=None,
        help="chunk rate (Hz; default: the vla node's); the direct loop follows "
        "control_hz / inference_hz points of each chunk",
    )
    p.add_argument("--json", help="write the summary and every episode as JSON")
    p.add_argument("--csv", help="write one row per episode")
    p.add_argument("--markdown", help="write the results table (one row per mode and delay)")
    p.add_argument(
        "--record-dir", default="eval_recordings", help="where the graph's recorder writes"
    )
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("sim", help="the simulated task: collect scripted-expert demonstrations")
    simp = p.add_subparsers(dest="sim_command", required=True)
    c = simp.add_parser(
        "collect",
        help="scripted-expert episodes of the simulated task, headless and faster than real "
        "time, written as the recorder writes them (bag export makes a LeRobot dataset)",
    )
    c.add_argument("--robot", default="piper")
    c.add_argument("--episodes", type=int, default=10)
    c.add_argument("--seed", type=int, default=0, help="first episode seed (then +1 each)")
    c.add_argument("--out", required=True, help="episode directory")
    c.add_argument("--namespace", help="robot namespace of the topics (default: the robot's name)")
    c.add_argument("--camera-hz", type=float, default=15.0)
    c.add_argument("--image-size", type=int, default=224, help="rendered camera size (px)")
    c.add_argument(
        "--disturbance",
        type=float,
        default=0.0,
        metavar="RAD",
        help="DART: the arm executes the expert's command plus smooth noise of this standard "
        "deviation on the arm joints; the expert's own command is recorded (default 0)",
    )
    p.set_defaults(func=cmd_sim)
    c = simp.add_parser(
        "pretrain-vision",
        help="privileged perception pretraining: a preset's vision encoder learns the task's "
        "object and gripper positions from rendered scenes (train --weights starts from it)",
    )
    c.add_argument("--robot", default="piper")
    c.add_argument("--preset", default="tiny-2cam")
    c.add_argument("--camera", default="cam_high", help="the camera whose scenes are rendered")
    c.add_argument("--episodes", type=int, default=200, help="expert episodes to render from")
    c.add_argument("--per-episode", type=int, default=8, help="scenes per episode")
    c.add_argument("--seed", type=int, default=300000, help="first episode seed (then +1 each)")
    c.add_argument("--steps", type=int, default=3000)
    c.add_argument("--batch-size", type=int, default=32)
    c.add_argument("--lr", type=float, default=1e-3)
    c.add_argument("--out", required=True, help="weights file (safetensors) to write")
    c.set_defaults(func=cmd_sim_pretrain)

    c = simp.add_parser(
        "rollout",
        help="human-in-the-loop rollouts through the graph: a failure monitor hands the arm to "
        "the simulated operator and back; the recorder writes every episode",
    )
    c.add_argument("--engine", help="engine directory (default: the policy shipped for the robot)")
    c.add_argument("--robot", default="piper")
    c.add_argument("--episodes", type=int, default=10)
    c.add_argument("--seed", type=int, default=0, help="first episode seed (then +1 each)")
    c.add_argument("--record-dir", required=True, help="where the recorder writes the episodes")
    c.add_argument("--mode", default="efficient", help="efficient | standard")
    c.add_argument("--execution", default="crossfade")
    c.add_argument("--inference-hz", type=float, default=None)
    c.add_argument("--json", help="write the summary and every episode as JSON")
    c.add_argument("--csv", help="write one row per episode")
    _add_monitor_flags(c)
    c.set_defaults(func=cmd_sim_rollout)

    p = sub.add_parser(
        "ramp",
        help="RAMP rounds on the simulated task: HILR rollout -> world model -> advantage "
        "labels -> RAMP fine-tuning -> export -> held-out evaluation, with a table per round",
    )
    from gigabrain_runtime.training.ramp import RampConfig

    ramp_defaults = RampConfig()

    def ramp_option(flag: str, help: str = "", **kw: Any) -> None:  # noqa: A002
        """An option of a RampConfig field: unset, the dataclass's default, which its help
        quotes (written once, there)."""
        default = getattr(ramp_defaults, flag[2:].replace("-", "_"))
        said = {None: "the preset's", (): "none"}.get(default, default)
        if isinstance(default, bool):  # a switch: given or not
            kw.update(action="store_true", default=None)
            said = "on" if default else "off"
        p.add_argument(flag, help=f"{help} (default: {said})".lstrip(), **kw)

    p.add_argument("--out", required=True)
    ramp_option("--rounds", type=int)
    ramp_option("--episodes-per-round", "HILR rollouts per round", type=int)
    ramp_option(
        "--start",
        "round 0's policy: a shipped policy's name or a train --out (the shipped one was "
        "trained on 221 demonstrations)",
    )
    ramp_option("--rollout-seed", "first rollout seed", type=int)
    ramp_option("--eval-episodes", "held-out episodes per evaluation", type=int)
    ramp_option("--eval-seed", "first held-out seed", type=int)
    ramp_option("--robot")
    ramp_option("--steps", "RAMP fine-tuning updates per round", type=int)
    ramp_option("--world-model-steps", "world-model updates per round", type=int)
    ramp_option("--batch-size", type=int)
    ramp_option("--lr", type=float)
    ramp_option("--stride", type=int)
    ramp_option("--seed", type=int)
    ramp_option(
        "--baselines",
        "also, on round 0's data and seeds: plain fine-tuning, the corrections alone "
        "(HG-DAgger-like) and advantage conditioning without the world model (RECAP-like), "
        "each evaluated in both modes and rolled out (efficient) on the loop's rollout seeds; "
        "and RAMP evaluated in the other mode",
    )
    ramp_option(
        "--demos",
        "the start policy's demonstration datasets (bag export), trained with every "
        "round's HILR data and by the baselines (continual training; see the README)",
        nargs="+",
        metavar="DATASET",
    )
    ramp_option(
        "--unconditioned",
        "which samples the ramp objective's unconditioned term learns from, in RAMP and "
        "the RECAP-like baseline (train --unconditioned)",
        choices=UNCONDITIONED,
    )
    ramp_option(
        "--frames",
        "which HILR frames RAMP and the RECAP-like baseline train on (train --frames; "
        "all, the paper's; operator: the corrections alone)",
        choices=SAMPLE_FRAMES,
    )
    ramp_option(
        "--stage2-steps",
        "the paper's stage 2 before round 0's RAMP step: N updates of the ramp objective "
        "on the --demos alone, conditioned on round 0's world model; RAMP continues from it "
        "(0: RAMP starts from the start policy)",
        type=int,
        metavar="N",
    )
    ramp_option(
        "--wm-still-prob",
        "train the loop's world model with train --wm-still-prob (its still-arm "
        "prediction, which conditions the policy, learns the likely future)",
        type=float,
    )
    ramp_option(
        "--wm-drop-prob",
        "train stage 2 and every RAMP round with train --wm-drop-prob (the fraction of "
        "samples without the world model's tokens, as efficient mode runs; the preset's is "
        "the paper's 0.2)",
        type=float,
    )
    ramp_option(
        "--indicator-condition",
        "train every policy of the loop with train --indicator-condition",
    )
    ramp_option(
        "--mode",
        "the mode every RAMP round's policy is evaluated and rolled out in (round 0's start "
        "policy always runs efficient)",
        choices=MODES,
    )
    p.set_defaults(func=cmd_ramp)

    p = sub.add_parser(
        "console",
        help="the operator console: a web page over the running graph (cameras, plan, state, "
        "e-stop, takeover, episodes)",
    )
    p.add_argument("--robot", default="piper")
    p.add_argument("--namespace", help="the graph's namespace (default: the robot's name)")
    p.add_argument("--port", type=int, default=8080, help="0: any free port")
    p.add_argument("--bind", default="127.0.0.1", help="beyond loopback only with --token")
    p.add_argument("--token", help="access token (the page's URL carries it: ?token=...)")
    p.add_argument("--record-dir", default="recordings", help="the recorder's record_dir")
    p.add_argument(
        "--hold-to-run",
        action="store_true",
        help="deadman: the policy runs only while Space (or the page's button) is held",
    )
    p.set_defaults(func=cmd_console)

    p = sub.add_parser("bag", help="episode tools: list, info, label, plot, export, recover")
    bag = p.add_subparsers(dest="bag_command", required=True)
    b = bag.add_parser("list", help="table of the episodes in a directory")
    b.add_argument("dir")
    b = bag.add_parser("info", help="one episode in detail")
    b.add_argument("episode")
    b = bag.add_parser(
        "label",
        help="set an episode's outcome label; or, with --advantage, label every episode of a "
        "directory with RAMP's value, n-step TD advantage and indicator I per frame",
    )
    b.add_argument("episode", help="an episode (outcome label) or a directory (--advantage)")
    b.add_argument("label", nargs="?", choices=["success", "failure"])
    b.add_argument("--advantage", action="store_true")
    b.add_argument("--world-model", help="--advantage: a train --out holding the world model")
    b.add_argument("--robot", default="piper")
    b.add_argument("--fps", type=int, default=50, help="--advantage: the export's frame rate")
    b.add_argument(
        "--n-step", type=int, default=HILR_N_STEP, help="TD steps (frames; 250 = 5 s at 50 fps)"
    )
    b.add_argument("--gamma", type=float, default=HILR_GAMMA, help="per-frame discount")
    b.add_argument("--eps", type=float, default=0.0, help="I = 1(A > eps)")
    b = bag.add_parser("plot", help="joint trajectories with intervention segments shaded")
    b.add_argument("episode")
    b.add_argument("--out", required=True)
    b = bag.add_parser("export", help="export episodes to a training dataset")
    b.add_argument("dir")
    b.add_argument("--format", choices=["lerobot"], default="lerobot")
    b.add_argument("--out", required=True)
    b.add_argument("--fps", type=int, default=50, help="dataset frame rate (whole frames/s)")
    b.add_argument(
        "--outcome",
        choices=["success", "failure", "abort"],
        help="only the episodes with this outcome (an operator's label first)",
    )
    b.add_argument(
        "--image-size",
        default="",
        metavar="HxW",
        help="every camera's video size, e.g. 224x224 (frames are fitted with their aspect "
        "ratio kept); default: each camera's size in the first episode",
    )
    b = bag.add_parser("recover", help="recover episodes cut short (a crash, a SIGKILL)")
    b.add_argument("path", help="an episode directory or a directory of episodes")
    p.set_defaults(func=cmd_bag)

    from gigabrain_runtime.calibration.cli import add_parser as add_calibrate

    add_calibrate(sub)

    p = sub.add_parser("launch", help="run a ROS 2 YAML launch file")
    p.add_argument("file")
    p.add_argument("arguments", nargs="*", help="name:=value launch arguments")
    p.set_defaults(func=cmd_launch)

    sub.add_parser("node", help="run one ROS 2 node: node {vla,executor,sim} [--ros-args ...]")

    p = sub.add_parser("params", help="the nodes' parameters (name, type, default, range)")
    p.add_argument("nodes", nargs="*", help="node names (default: every node)")
    p.add_argument("--readme", metavar="FILE", help="rewrite the parameter tables in FILE")
    p.set_defaults(func=cmd_params)

    p = sub.add_parser(
        "structure",
        help="which top-level parts of the package import which (a Mermaid flowchart)",
    )
    p.add_argument("--readme", metavar="FILE", help="rewrite the drawing in FILE")
    p.set_defaults(func=cmd_structure)

    p = sub.add_parser("demo", help="the whole graph on a simulated robot (the README's main job)")
    p.add_argument("--robot", default="piper", help="piper | g1")
    p.add_argument("--mode", default="efficient", help="efficient | standard")
    p.add_argument(
        "--duration",
        type=float,
        default=20.0,
        help="seconds of the episode, from its start (the nodes' start-up is not counted)",
    )
    p.add_argument(
        "--engine",
        help="engine directory (default: the policy shipped for the robot, else the tiny preset; "
        "exported on first use)",
    )
    p.add_argument("--record-dir", default="recordings", help="where the episode is recorded")
    p.add_argument(
        "--takeover-at",
        type=float,
        default=None,
        help="seconds into the episode when the scripted operator takes over (-1: never; "
        "default: never with the policy shipped for the robot, 5 with random weights)",
    )
    p.add_argument("--takeover-for", type=float, default=5.0, help="takeover length (s)")
    p.add_argument(
        "--console-port",
        type=int,
        default=8080,
        help="serve the operator console on this port (taken: a free one; -1: no console)",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="task episode seed (cube, bowl, arm start; -1: nominal)"
    )
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "standin",
        help="robot stand-ins without hardware: 'standin g1 --help' (a fake G1 on DDS); the "
        "PiPER driver stand-in is a node: launch/piper_standin.launch.yaml",
    )
    p.add_argument("robot", choices=["g1"])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # OpenMP workers (torch's CPU kernels) otherwise spin after each op and starve whatever runs
    # next on a 2-core machine: the control loop, or another backend in the benchmark. Must be
    # set before torch is imported.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["node"]:
        return run_ros_node(argv[1:])
    if argv[:2] == ["standin", "g1"]:  # the fake G1 parses its own flags
        from gigabrain_runtime.robots.g1 import standin as fake_g1

        return int(fake_g1.main(argv[2:]))
    parser = build_parser()
    args = parser.parse_args(argv)
    from gigabrain_runtime.inference.tensorrt_backend import TensorRTUnavailable

    try:
        return int(args.func(args))
    except (ValueError, FileNotFoundError, TensorRTUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
