"""Task success of a policy on the simulated task: the numbers a roboticist judges it by.

:func:`run_direct` is the reference loop: the policy and the simulator in one process, the
simulation paused while the policy computes (no latency), each chunk's first
``control_hz / inference_hz`` points sent to the servos at the control rate. Every episode is
the task's seeded start and ends at a detected success (held ``SETTLE_S``) or the time limit.
Results: success rate with a 95% Wilson interval, time to success, and one row per episode.
"""

from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from gigabrain_runtime.inference.types import Mode, Observation
from gigabrain_runtime.perception.images import resize_with_pad
from gigabrain_runtime.robots.embodiment import get_embodiment
from gigabrain_runtime.sim.simulator import Simulator
from gigabrain_runtime.sim.task import SETTLE_S


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
            "watchdog_events": sum(e.watchdog_events or 0 for e in self.episodes),
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
        )


def run_direct(
    engine: str | Path,
    robot: str,
    seeds: list[int],
    *,
    inference_hz: float = 10.0,
    control_hz: float = 50.0,
    mode: str = "efficient",
    backend: str | None = None,
    progress: bool = True,
) -> EvalSummary:
    from tqdm import tqdm

    from gigabrain_runtime.inference.factory import open_backend

    if not 0 < inference_hz <= control_hz:
        raise ValueError(f"inference_hz: must be in (0, control_hz], got {inference_hz}")
    be = open_backend(engine, backend)
    emb = get_embodiment(robot)
    cfg = be.manifest.config
    size = cfg.vision.image_size
    method = cfg.variant.image_resize
    sim = Simulator(emb, image_size=size)
    task = sim.task
    if task is None:
        raise ValueError(f"robot {robot}: its scene defines no task to evaluate")
    per_chunk = max(1, round(control_hz / inference_hz))
    dt = 1.0 / control_hz
    results = []
    try:
        for seed in tqdm(seeds, desc="evaluating", unit="episode", disable=not progress):
            sim.start_episode(seed)
            t, chunks, first_success, settled = 0.0, 0, None, None
            verdict = sim.verdict()
            while t < task.time_limit_s and settled is None:
                images = {c: resize_with_pad(sim.render(c), size, method) for c in emb.cameras}
                obs = Observation(
                    images=images,
                    state=sim.joint_positions(),
                    instruction=task.instruction,
                    embodiment=emb.name,
                )
                chunk = be.infer(obs, mode=Mode.parse(mode))
                chunks += 1
                for i in range(per_chunk):
                    sim.set_target(chunk.actions[min(i, len(chunk.actions) - 1)])
                    sim.step(dt)
                    t += dt
                    verdict = sim.verdict()
                    if verdict.success:
                        first_success = t if first_success is None else first_success
                        if t - first_success >= SETTLE_S:
                            settled = t
                            break
                    else:
                        first_success = None
            results.append(
                EpisodeResult(
                    seed=seed,
                    success=settled is not None,
                    time_to_success_s=None if settled is None else round(first_success, 3),
                    duration_s=round(t, 3),
                    reason=verdict.reason,
                    chunks=chunks,
                )
            )
    finally:
        sim.close()
        be.close()
    return EvalSummary(results, "direct")


def evaluate(
    engine: str | Path,
    robot: str,
    episodes: int,
    seed: int,
    *,
    direct: bool,
    json_path: Path | None = None,
    csv_path: Path | None = None,
    mode: str = "efficient",
    record_dir: Path = Path("eval_recordings"),
) -> EvalSummary:
    """``direct``: the reference loop here; else through the graph (the ROS layer's
    ``eval-graph`` entry: the robot's simulation launch file and an evaluator node)."""
    if episodes < 1 or seed < 0:
        raise ValueError(f"episodes >= 1 and seed >= 0 required, got {episodes}, {seed}")
    start = time.perf_counter()
    seeds = list(range(seed, seed + episodes))
    if direct:
        summary = run_direct(engine, robot, seeds, mode=mode)
    else:
        from gigabrain_runtime import entries

        summary = entries.load("eval-graph")(
            Path(engine), robot, seeds, mode=mode, record_dir=record_dir
        )
    summary.write(json_path, csv_path)
    print(summary.report() + f" ({time.perf_counter() - start:.0f} s)")
    return summary
