"""Task success of a policy on the simulated task: the numbers a roboticist judges it by.

:func:`run_direct` is the reference loop: the policy and the simulator in one process, the
simulation paused while the policy computes (no latency), each chunk's first
``control_hz / inference_hz`` points sent to the servos at the control rate. Every episode is
the task's seeded start and ends at a detected success (held ``SETTLE_S``) or the time limit.
Results: success rate with a 95% Wilson interval, time to success, and one row per episode.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from gigabrain_runtime.inference.policy_loop import PolicyLoopConfig
from gigabrain_runtime.inference.preprocessing import still_chunk
from gigabrain_runtime.inference.types import Mode, Observation
from gigabrain_runtime.perception.images import resize_with_pad
from gigabrain_runtime.robots.embodiment import Embodiment, get_embodiment
from gigabrain_runtime.sim.simulator import Simulator
from gigabrain_runtime.sim.task import SETTLE_S, TaskSpec

DEFAULT_INFERENCE_HZ = PolicyLoopConfig.inference_hz  # the vla node's default chunk rate


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson score interval of a success rate (sound at 0 and n successes)."""
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True)
class EpisodeResult:
    seed: int
    success: bool
    time_to_success_s: float | None  # first moment the detector held success
    duration_s: float
    reason: str
    chunks: int
    # through the graph: the executor's stops during the episode and the largest joint
    # acceleration of its commands as a fraction of the joint's limit (None: not measured)
    watchdog_events: int | None = None
    open_loop_stops: int | None = None
    max_accel_ratio: float | None = None
    # timed: the largest joint acceleration of the commands themselves (after the limiter)
    command_accel_ratio: float | None = None
    # a human-in-the-loop rollout: the operator's takeovers, why, and how long they held
    interventions: int | None = None
    intervention_reasons: str | None = None
    intervention_s: float | None = None


@dataclass(frozen=True)
class EvalSummary:
    episodes: list[EpisodeResult]
    mode: str  # direct | graph

    @property
    def successes(self) -> int:
        return sum(e.success for e in self.episodes)

    @property
    def success_rate(self) -> float:
        return self.successes / max(1, len(self.episodes))

    @property
    def ci95(self) -> tuple[float, float]:
        return wilson_interval(self.successes, len(self.episodes))

    def to_dict(self) -> dict:
        times = [e.time_to_success_s for e in self.episodes if e.time_to_success_s is not None]
        return {
            "mode": self.mode,
            "success_rate": self.success_rate,
            "ci95": list(self.ci95),
            "episodes": len(self.episodes),
            "successes": self.successes,
            "time_to_success_s_median": float(np.median(times)) if times else None,
            "max_accel_ratio": max(
                (e.max_accel_ratio for e in self.episodes if e.max_accel_ratio is not None),
                default=None,
            ),
            "command_accel_ratio": max(
                (e.command_accel_ratio for e in self.episodes if e.command_accel_ratio is not None),
                default=None,
            ),
            "interventions_per_episode": (
                None
                if any(e.interventions is None for e in self.episodes)
                else sum(e.interventions or 0 for e in self.episodes) / max(1, len(self.episodes))
            ),
            "unassisted_successes": sum(e.success and not e.interventions for e in self.episodes),
            "watchdog_events": sum(e.watchdog_events or 0 for e in self.episodes),
            "open_loop_stops": sum(e.open_loop_stops or 0 for e in self.episodes),
            "per_episode": [asdict(e) for e in self.episodes],
        }

    def write(self, json_path: Path | None = None, csv_path: Path | None = None) -> None:
        if json_path is not None:
            json_path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        if csv_path is not None:
            with open(csv_path, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=list(asdict(self.episodes[0])))
                w.writeheader()
                for e in self.episodes:
                    w.writerow(asdict(e))

    def report(self) -> str:
        lo, hi = self.ci95
        d = self.to_dict()
        t = d["time_to_success_s_median"]
        return (
            f"{self.mode}: {self.successes}/{len(self.episodes)} succeeded = "
            f"{100 * self.success_rate:.1f}% (95% CI {100 * lo:.1f}-{100 * hi:.1f}%), "
            f"median time to success {'-' if t is None else f'{t:.2f} s'}"
            + (
                ""
                if d["interventions_per_episode"] is None
                else f", {d['interventions_per_episode']:.2f} interventions per episode, "
                f"{d['unassisted_successes']} successes without one"
            )
        )


@dataclass
class _Bench:
    """What both loops open: the engine's backend, the robot, its simulator and task, and the
    image size and filter the engine wants."""

    backend: Any  # inference.base.Backend
    emb: Embodiment
    sim: Simulator
    task: TaskSpec
    size: int
    method: str

    @classmethod
    def open(cls, engine: str | Path, robot: str, backend: str | None) -> _Bench:
        from gigabrain_runtime.inference.factory import open_backend

        be = open_backend(engine, backend)
        emb = get_embodiment(robot)
        cfg = be.manifest.config
        sim = Simulator(emb, image_size=cfg.vision.image_size)
        if sim.task is None:
            sim.close()
            be.close()
            raise ValueError(f"robot {robot}: its scene defines no task to evaluate")
        return cls(be, emb, sim, sim.task, cfg.vision.image_size, cfg.variant.image_resize)

    def close(self) -> None:
        self.sim.close()
        self.backend.close()


class _Settle:
    """Success as the evaluation counts it: the detector's verdict held for ``SETTLE_S``."""

    def __init__(self) -> None:
        self.first: float | None = None  # since when the verdict has held
        self.settled: float | None = None

    def update(self, success: bool, t: float) -> bool:
        """The verdict at time ``t``; True once success has held ``SETTLE_S``."""
        if not success:
            self.first = None
        else:
            self.first = t if self.first is None else self.first
            if t - self.first >= SETTLE_S:
                self.settled = t
        return self.settled is not None

    def result(
        self, seed: int, duration_s: float, reason: str, chunks: int, **extra: Any
    ) -> EpisodeResult:
        return EpisodeResult(
            seed=seed,
            success=self.settled is not None,
            time_to_success_s=None if self.settled is None else round(self.first, 3),
            duration_s=round(duration_s, 3),
            reason=reason,
            chunks=chunks,
            **extra,
        )


def run_direct(
    engine: str | Path,
    robot: str,
    seeds: list[int],
    *,
    inference_hz: float = DEFAULT_INFERENCE_HZ,
    control_hz: float = 50.0,
    mode: str = "efficient",
    backend: str | None = None,
    progress: bool = True,
) -> EvalSummary:
    from tqdm import tqdm

    if not 0 < inference_hz <= control_hz:
        raise ValueError(f"inference_hz: must be in (0, control_hz], got {inference_hz}")
    bench = _Bench.open(engine, robot, backend)
    be, emb, sim, task = bench.backend, bench.emb, bench.sim, bench.task
    size, method = bench.size, bench.method
    per_chunk = max(1, round(control_hz / inference_hz))
    dt = 1.0 / control_hz
    standard = Mode.parse(mode) is Mode.STANDARD
    horizon = be.manifest.config.action_expert.horizon
    results = []
    try:
        for seed in tqdm(seeds, desc="evaluating", unit="episode", disable=not progress):
            sim.start_episode(seed)
            t, chunks, settle = 0.0, 0, _Settle()
            verdict = sim.verdict()
            while t < task.time_limit_s and settle.settled is None:
                images = {c: resize_with_pad(sim.render(c), size, method) for c in emb.cameras}
                obs = Observation(
                    images=images,
                    state=sim.joint_positions(),
                    instruction=task.instruction,
                    embodiment=emb.name,
                )
                if standard:
                    still = still_chunk(obs.state, horizon)  # as the vla's policy loop
                    obs = replace(obs, world=be.predict_world(obs, still))
                chunk = be.infer(obs, mode=Mode.parse(mode))
                chunks += 1
                for i in range(per_chunk):
                    sim.set_target(chunk.actions[min(i, len(chunk.actions) - 1)])
                    sim.step(dt)
                    t += dt
                    verdict = sim.verdict()
                    if settle.update(verdict.success, t):
                        break
            results.append(settle.result(seed, t, verdict.reason, chunks))
    finally:
        bench.close()
    return EvalSummary(results, "direct")


class _SimClock:
    """The policy loop's clock in simulated time: inference takes no simulated time; the
    delay under test is added explicitly."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    def now_s(self) -> float:
        return self.sim.time

    def monotonic(self) -> float:
        return self.sim.time


def _accel_ratio(points: list[np.ndarray], dt: float, limits: np.ndarray) -> float:
    """Largest |second difference| / dt^2 of consecutive points, per joint's limit."""
    if len(points) < 3:
        return 0.0
    q = np.stack(points)
    acc = np.abs(q[2:] - 2 * q[1:-1] + q[:-2]) / (dt * dt)
    return float(np.max(acc / limits))


def run_timed(
    engine: str | Path,
    robot: str,
    seeds: list[int],
    *,
    execution: str = "crossfade",
    inject_delay_ms: float = 0.0,
    inference_hz: float = DEFAULT_INFERENCE_HZ,
    control_hz: float = 50.0,
    mode: str = "efficient",
    backend: str | None = None,
    progress: bool = True,
) -> EvalSummary:
    """The runtime's own cores - :class:`PolicyLoop` (sync gating, rtc's guide) and
    :class:`ChunkExecutor` (blending, motion limits) - against the simulator in simulated
    time, with an inference delay of ``inject_delay_ms`` between each observation and its
    chunk's arrival: what the graph does at that latency, without DDS or wall-clock noise (so
    every execution mode meets the same delay on the same seeds). The policy ticks at
    ``inference_hz`` (or back to back when the delay is longer), as the vla node does.

    Per episode: success, time to success, and the largest joint acceleration, as a fraction of
    the joint's limit, that the plan asked for across chunk boundaries (before the motion
    limiter; ``max_accel_ratio``) - the commands themselves never exceed the limits."""
    from tqdm import tqdm

    from gigabrain_runtime.control.chunk import TimedChunk
    from gigabrain_runtime.control.executor import ChunkExecutor, ExecutorConfig
    from gigabrain_runtime.inference.policy_loop import PolicyLoop, PolicyLoopConfig

    if inject_delay_ms < 0:
        raise ValueError(f"inject_delay_ms: must be >= 0, got {inject_delay_ms}")
    bench = _Bench.open(engine, robot, backend)
    be, emb, sim, task = bench.backend, bench.emb, bench.sim, bench.task
    size, method = bench.size, bench.method
    dt = 1.0 / control_hz
    period = 1.0 / inference_hz
    delay = inject_delay_ms / 1e3
    limits = emb.max_acceleration
    results = []
    desc = f"{execution} +{inject_delay_ms:g} ms"
    try:
        for seed in tqdm(seeds, desc=desc, unit="episode", disable=not progress):
            sim.start_episode(seed)
            t_start = sim.time
            executor = ChunkExecutor(
                emb, ExecutorConfig(control_hz=control_hz, execution=execution)
            )
            loop = PolicyLoop(
                be,
                PolicyLoopConfig(
                    robot=emb.name,
                    mode=mode,
                    instruction=task.instruction,
                    inference_hz=inference_hz,
                    control_hz=control_hz,
                    execution=execution,
                    inject_delay_s=delay,
                ),
                _SimClock(sim),
            )
            pending: list[tuple[float, TimedChunk]] = []
            next_tick = sim.time
            chunks, settle = 0, _Settle()
            targets: list[np.ndarray | None] = []
            commands: list[np.ndarray] = []
            switch_at: list[int] = []
            verdict = sim.verdict()
            k = 0
            while sim.time - t_start < task.time_limit_s and settle.settled is None:
                t = sim.time
                q = sim.joint_positions()
                # refused as the executor node refuses it (e.g. a gripper pushed past its range
                # by contact): the state ages and the executor's watchdog holds
                with contextlib.suppress(ValueError):
                    executor.on_joint_state(q, t)
                loop.put_state(t, q)
                if t >= next_tick - 1e-9 and not pending:
                    for cam in emb.cameras:
                        loop.put_image(cam, t, resize_with_pad(sim.render(cam), size, method))
                    out = loop.step()
                    if out is None:
                        next_tick = t + period
                    else:
                        chunk = TimedChunk(
                            positions=out.chunk.actions, t0_s=out.observation.stamp_s, dt_s=dt
                        )
                        pending.append((t + delay, chunk))
                        next_tick = t + max(period, delay)
                while pending and pending[0][0] <= t + 1e-9:
                    _, chunk = pending.pop(0)
                    ok, _ = executor.on_chunk(chunk, t)
                    if ok:
                        chunks += 1
                        switch_at.append(k)
                        if executor.last_delay_steps is not None:
                            loop.observe_delay(executor.last_delay_steps)
                res = executor.step(t)
                if res.command is not None:
                    sim.set_target(res.command)
                    commands.append(res.command)
                targets.append(res.target)
                sim.step(dt)
                k += 1
                verdict = sim.verdict()
                settle.update(verdict.success, sim.time - t_start)
            boundary: float | None = None
            for i in switch_at[1:]:  # the first chunk starts from rest: not a boundary
                window = targets[max(0, i - 2) : i + 3]
                if all(p is not None for p in window):  # a plan followed throughout
                    boundary = max(boundary or 0.0, _accel_ratio(window, dt, limits))
            results.append(
                settle.result(
                    seed,
                    sim.time - t_start,
                    verdict.reason,
                    chunks,
                    watchdog_events=executor.watchdog_events,
                    open_loop_stops=executor.open_loop_stops,
                    max_accel_ratio=None if boundary is None else round(boundary, 4),
                    command_accel_ratio=round(_accel_ratio(commands, dt, limits), 4),
                )
            )
    finally:
        bench.close()
    return EvalSummary(results, f"timed/{execution}/+{inject_delay_ms:g}ms")


def evaluate(
    engine: str | Path,
    robot: str,
    episodes: int,
    seed: int,
    *,
    direct: bool = False,
    timed: bool = False,
    json_path: Path | None = None,
    csv_path: Path | None = None,
    mode: str = "efficient",
    record_dir: Path = Path("eval_recordings"),
    execution: str = "crossfade",
    inject_delay_ms: float = 0.0,
    inference_hz: float = DEFAULT_INFERENCE_HZ,
) -> EvalSummary:
    """``direct``: the reference loop here; ``timed``: the runtime's cores in simulated time
    (:func:`run_timed`); else through the graph (the ROS layer's ``eval-graph`` entry: the
    robot's simulation launch file and an evaluator node)."""
    if episodes < 1 or seed < 0:
        raise ValueError(f"episodes >= 1 and seed >= 0 required, got {episodes}, {seed}")
    if direct and timed:
        raise ValueError("direct and timed: choose one")
    start = time.perf_counter()
    seeds = list(range(seed, seed + episodes))
    if direct:
        summary = run_direct(engine, robot, seeds, mode=mode, inference_hz=inference_hz)
    elif timed:
        summary = run_timed(
            engine,
            robot,
            seeds,
            mode=mode,
            execution=execution,
            inject_delay_ms=inject_delay_ms,
            inference_hz=inference_hz,
        )
    else:
        from gigabrain_runtime import entries

        summary = entries.load("eval-graph")(
            Path(engine),
            robot,
            seeds,
            mode=mode,
            record_dir=record_dir,
            execution=execution,
            inject_delay_ms=inject_delay_ms,
            inference_hz=inference_hz,
        )
    summary.write(json_path, csv_path)
    print(summary.report() + f" ({time.perf_counter() - start:.0f} s)")
    return summary


def read_summary(path: Path) -> EvalSummary:
    """An :class:`EvalSummary` back from the JSON :meth:`EvalSummary.write` wrote."""
    d = json.loads(Path(path).read_text())
    return EvalSummary([EpisodeResult(**e) for e in d["per_episode"]], d["mode"])


def delay_table(cells: list[tuple[str, float, EvalSummary]]) -> str:
    """The delay benchmark as Markdown: one row per execution mode and delay, with success
    (95% Wilson interval), median time to success, the largest acceleration the plan asked for
    across chunk boundaries and the largest the commands had (fractions of the joint limit;
    the limiter keeps the commands within it)."""
    lines = [
        "| execution | delay (ms) | success | 95% CI | median time to success (s) | "
        "plan accel at boundaries / limit | command accel / limit | open-loop stops | "
        "watchdog stops |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for execution, delay, s in cells:
        d = s.to_dict()
        lo, hi = s.ci95
        t = d["time_to_success_s_median"]
        acc, cmd = d["max_accel_ratio"], d["command_accel_ratio"]
        lines.append(
            f"| {execution} | {delay:g} | {s.successes}/{len(s.episodes)} "
            f"({100 * s.success_rate:.0f}%) | {100 * lo:.0f}-{100 * hi:.0f}% | "
            f"{'-' if t is None else f'{t:.2f}'} | {'-' if acc is None else f'{acc:.2f}'} | "
            f"{'-' if cmd is None else f'{cmd:.2f}'} | {d['open_loop_stops']} | "
            f"{d['watchdog_events']} |"
        )
    return "\n".join(lines) + "\n"
