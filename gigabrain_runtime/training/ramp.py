"""``gigabrain-runtime ramp``: RAMP rounds on the simulated task, one command.

A round k, from policy k (round 0: ``--start``, by default the shipped deliberately weak
``piper_pick_place_round0``):

1. ``sim rollout``: human-in-the-loop episodes through the real graph (the failure monitor
   hands the arm to the simulated operator and back), recorded;
2. ``bag export``, then ``train --objective world-model``: the world model learns the future
   latent state and value from those episodes;
3. ``bag label --advantage``, ``bag export``: value, n-step TD advantage and I per frame;
4. ``train --objective ramp`` from policy k and that world model: policy k + 1 (with
   ``--stage2-steps``, round 0 first takes the paper's stage 2: the start fine-tuned on the
   demonstrations alone, conditioned on that world model, evaluated, and RAMP goes on from it;
   ``--frames operator``: RAMP learns from the corrections of the HILR episodes alone);
5. ``export`` and ``eval --direct`` on the held-out seeds.

Every step is the user-facing command, run as its own process and written to ``commands.sh``
(re-runnable), with its output in ``logs/``; a step that finished (``done/``, the same command
after the same step) is kept when the loop runs again in the same ``--out``: an interrupted loop
continues where it stopped, ``--baselines`` added later trains only the baselines, and a step
that runs again (a changed option) runs every step after it again. The rollout seeds are the
same every round (interventions per episode compare like with like) and disjoint from the
evaluation seeds. After the last round, one more rollout measures the interventions the last
policy needs. ``--baselines`` adds, on round 0's data and seeds, plain fine-tuning on the HILR
data (every action, no labels), the operator's corrections alone (HG-DAgger-like: ``train
--frames operator``) and advantage conditioning without the world model (RECAP-like), rolls each
out on the loop's rollout seeds (its interventions per episode), and evaluates RAMP in the other
mode too. ``--mode standard``: every RAMP round's policy is evaluated
and rolled out in standard mode (world-model-conditioned), round 0's in efficient mode. The
table (``results.md``, ``results.json``): per policy and mode, success with its 95% Wilson
interval, time to success, and the interventions per episode of its rollout.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gigabrain_runtime.inference.types import MODES
from gigabrain_runtime.model.advantage import SAMPLE_FRAMES, UNCONDITIONED


@dataclass(frozen=True, kw_only=True)
class RampConfig:
    rounds: int = 1
    episodes_per_round: int = 50
    rollout_seed: int = 500000
    eval_episodes: int = 100
    eval_seed: int = 0
    robot: str = "piper"
    start: str = "piper_pick_place_round0"  # a shipped policy's name, or a train --out
    steps: int = 3000  # RAMP fine-tuning updates per round (at 1500 RAMP at P = 0.5 under-trains)
    world_model_steps: int = 800
    batch_size: int = 32
    lr: float = 1e-4
    stride: int = 3
    seed: int = 0
    baselines: bool = False
    # demonstration datasets (LeRobot, bag export): trained with every round's HILR data,
    # every frame an expert's - continual training keeps the data the start policy learned from
    demos: tuple[str, ...] = ()
    # which samples the ramp objective's unconditioned term learns from (train --unconditioned;
    # model/advantage.py UNCONDITIONED), for RAMP and the RECAP-like baseline alike
    unconditioned: str = "all"
    # which HILR frames RAMP and the RECAP-like baseline train on (train --frames;
    # model/advantage.py SAMPLE_FRAMES): all, the paper's; operator, the corrections alone
    frames: str = "all"
    # the paper's stage 2, once, before round 0's RAMP step: the start fine-tuned by the ramp
    # objective on the demonstrations alone, conditioned on round 0's world model; RAMP goes on
    # from it. 0: RAMP starts from the start policy beside the world model
    stage2_steps: int = 0
    # every training of the loop with train --wm-still-prob: this fraction of the world
    # model's samples asked about a still arm (as the policy's conditioning asks), answered
    # with the recorded future. 0: the world model always sees the recorded chunk
    wm_still_prob: float = 0.0
    # the ramp objective's world-model drop probability in stage 2 and every RAMP round (train
    # --wm-drop-prob): the fraction of samples trained without the world model's tokens, as
    # efficient mode runs. None: the preset's (the paper's 0.2). 1 would never show the policy
    # the world model: that is the RECAP-like baseline
    wm_drop_prob: float | None = None
    # every training of the loop with train --indicator-condition (the indicator also in the
    # action expert's adaRMS condition), the engines exported to match
    indicator_condition: bool = False
    # the mode every RAMP round's policy runs in, for its held-out evaluation and its HILR
    # rollout: the policy the loop measures and collects with is the one it deploys. Round 0
    # (the start policy, whose world-model tokens were never trained) always runs efficient
    mode: str = "efficient"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode: expected one of {MODES}, got {self.mode!r}")
        if self.frames not in SAMPLE_FRAMES:
            raise ValueError(f"frames: expected one of {SAMPLE_FRAMES}, got {self.frames!r}")
        if not 0.0 <= self.wm_still_prob <= 1.0:
            raise ValueError(f"wm_still_prob: must be in [0, 1], got {self.wm_still_prob}")
        if self.wm_drop_prob is not None and not 0.0 <= self.wm_drop_prob < 1.0:
            raise ValueError(
                f"wm_drop_prob: must be in [0, 1) (1 is the RECAP-like baseline, --baselines), "
                f"got {self.wm_drop_prob}"
            )
        if self.stage2_steps < 0:
            raise ValueError(f"stage2_steps: must be >= 0, got {self.stage2_steps}")
        if self.stage2_steps and not self.demos:
            raise ValueError(
                f"stage2_steps: {self.stage2_steps} needs demos (stage 2 trains on them alone)"
            )
        if self.unconditioned not in UNCONDITIONED:
            raise ValueError(
                f"unconditioned: expected one of {UNCONDITIONED}, got {self.unconditioned!r}"
            )
        for name in (
            "rounds",
            "episodes_per_round",
            "eval_episodes",
            "steps",
            "world_model_steps",
            "batch_size",
            "stride",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.rollout_seed < 0 or self.eval_seed < 0:
            raise ValueError("rollout_seed and eval_seed: must be >= 0")
        rollout = range(self.rollout_seed, self.rollout_seed + self.episodes_per_round)
        held_out = range(self.eval_seed, self.eval_seed + self.eval_episodes)
        if set(rollout) & set(held_out):
            raise ValueError(
                f"rollout_seed: the rollout seeds {rollout.start}-{rollout.stop - 1} overlap the "
                f"evaluation seeds {held_out.start}-{held_out.stop - 1}"
            )


@dataclass(frozen=True)
class Policy:
    """Weights to start training from and to export: a train --out or a shipped policy."""

    name: str
    preset: str
    weights: Path
    norm_stats: Path
    delta_joints: tuple[str, ...]
    indicator_condition: bool = False  # trained with train --indicator-condition


def _start_policy(start: str) -> Policy:
    run = Path(start)
    if (run / "train_config.json").is_file():
        trained = json.loads((run / "train_config.json").read_text())
        model = trained.get("model", {})
        return Policy(
            run.name,
            str(trained["preset"]),
            run / "weights.safetensors",
            run / "norm_stats.json",
            tuple(trained.get("delta_joints", ())),
            bool(model.get("action_expert", {}).get("indicator_condition", False)),
        )
    from gigabrain_runtime.policies import ShippedPolicy

    shipped = ShippedPolicy.load(start)
    return Policy(
        shipped.name, shipped.preset, shipped.weights, shipped.norm_stats, shipped.delta_joints
    )


class Runner:
    """Runs each step as ``python -m gigabrain_runtime ...``, logged and written down.

    A step that finished in an earlier run is kept when its command is the same *and* the step
    before it is the one it followed then: a step that runs again (its command changed, or it
    had not finished) gives every later step a new predecessor, so they run again too - an
    export after a re-trained policy never keeps the old engine (the paths in the commands are
    the same; what they hold is not)."""

    def __init__(self, out: Path) -> None:
        self.out = out
        (out / "logs").mkdir(parents=True, exist_ok=True)
        self.script = out / "commands.sh"
        if not self.script.exists():
            self.script.write_text("#!/bin/sh\nset -e\n")
        self.n = len(list((out / "logs").glob("*.log")))  # a re-run's logs follow the first's
        self.timings: list[tuple[str, float]] = []
        self.previous = ""  # the stamp of the step before the next one ("" before the first)

    def _kept(self, name: str, argv: list[str]) -> bool:
        marker = self.out / "done" / name
        files = {k: marker.with_suffix(f".{k}") for k in ("seconds", "after", "stamp")}
        if not (marker.is_file() and all(f.is_file() for f in files.values())):
            return False
        if marker.read_text() != shlex.join(argv) or files["after"].read_text() != self.previous:
            return False
        self.timings.append((name, float(files["seconds"].read_text())))
        self.previous = files["stamp"].read_text()
        return True

    def __call__(self, name: str, *args: Any) -> None:
        argv = [str(a) for a in args]
        if self._kept(name, argv):
            print(f"[ramp] {name}: done in an earlier run, kept", flush=True)
            return
        with self.script.open("a") as f:
            f.write("gigabrain-runtime " + shlex.join(argv) + "\n")
        self.n += 1
        log = self.out / "logs" / f"{self.n:02d}-{name}.log"
        print(f"[ramp] {name}: gigabrain-runtime {shlex.join(argv)}", flush=True)
        start = time.perf_counter()
        with log.open("w") as f:
            done = subprocess.run(
                [sys.executable, "-m", "gigabrain_runtime", *argv],
                stdout=f,
                stderr=subprocess.STDOUT,
            )
        elapsed = time.perf_counter() - start
        self.timings.append((name, elapsed))
        if done.returncode != 0:
            tail = log.read_text()[-2000:]
            raise RuntimeError(f"ramp: step {name} failed (exit {done.returncode}; {log}):\n{tail}")
        marker = self.out / "done" / name
        marker.parent.mkdir(exist_ok=True)
        stamp = f"{name}@{time.time_ns()}"
        marker.with_suffix(".seconds").write_text(f"{elapsed:.1f}")
        marker.with_suffix(".after").write_text(self.previous)
        marker.with_suffix(".stamp").write_text(stamp)
        marker.write_text(shlex.join(argv))  # last: a marker without the others is not done
        self.previous = stamp
        print(f"[ramp] {name}: done in {elapsed / 60:.1f} min", flush=True)


def _summary(path: Path) -> dict[str, Any]:
    d = json.loads(path.read_text())
    return {
        "success_rate": d["success_rate"],
        "successes": d["successes"],
        "episodes": d["episodes"],
        "ci95": d["ci95"],
        "time_to_success_s_median": d["time_to_success_s_median"],
        "interventions_per_episode": d.get("interventions_per_episode"),
    }


def run_ramp(config: RampConfig, out: Path) -> dict[str, Any]:
    """The rounds (see the module docstring); returns what ``results.json`` holds."""
    out = Path(out)
    for d in config.demos:  # before an hour of rollouts, not after
        if not (Path(d) / "meta" / "info.json").is_file():
            raise ValueError(f"demos: {d} is not a LeRobot dataset (no meta/info.json)")
    out.mkdir(parents=True, exist_ok=True)
    (out / "ramp_config.json").write_text(json.dumps(asdict(config), indent=2) + "\n")
    run = Runner(out)
    c = config
    policy = _start_policy(c.start)
    train_common = [
        "--preset",
        policy.preset,
        "--robot",
        c.robot,
        "--batch-size",
        c.batch_size,
        "--stride",
        c.stride,
        "--lr",
        c.lr,
        "--warmup-steps",
        100,
        "--seed",
        c.seed,
        "--save-every",
        500,
        "--trajectory",
        *(["--delta-joints", *policy.delta_joints] if policy.delta_joints else []),
        *(["--indicator-condition"] if c.indicator_condition else []),
        *(["--wm-still-prob", c.wm_still_prob] if c.wm_still_prob else []),
    ]
    rollout_args = [
        "--robot",
        c.robot,
        "--episodes",
        c.episodes_per_round,
        "--seed",
        c.rollout_seed,
    ]
    eval_args = [
        "--robot",
        c.robot,
        "--episodes",
        c.eval_episodes,
        "--seed",
        c.eval_seed,
        "--direct",
    ]

    def mode_of(k: int) -> str:
        """Round k's policy's mode: the start policy's is efficient, RAMP's ``c.mode``."""
        return c.mode if k else "efficient"

    def in_mode(k: int) -> list[str]:
        return ["--mode", mode_of(k)] if mode_of(k) != "efficient" else []

    def export(p: Policy, engine: Path) -> None:
        run(
            f"export-{engine.parent.name}",
            "export",
            "--preset",
            p.preset,
            "--weights",
            p.weights,
            "--norm-stats",
            p.norm_stats,
            "--robot",
            c.robot,
            *(["--delta-joints", *p.delta_joints] if p.delta_joints else []),
            *(["--indicator-condition"] if p.indicator_condition else []),
            "--out",
            engine,
        )

    def trained(directory: Path, like: Policy) -> Policy:
        return Policy(
            directory.name,
            like.preset,
            directory / "weights.safetensors",
            directory / "norm_stats.json",
            like.delta_joints,
            c.indicator_condition,
        )

    demos = ["--demos", *c.demos] if c.demos else []
    rows: list[dict[str, Any]] = []
    r0 = out / "round-0"
    export(policy, r0 / "engine")
    run("eval-round-0", "eval", "--engine", r0 / "engine", *eval_args, "--json", r0 / "eval.json")
    engine = r0 / "engine"
    for k in range(c.rounds):
        here, nxt = out / f"round-{k}", out / f"round-{k + 1}"
        rollout = _rollout(run, f"rollout-{k}", engine, here, [*rollout_args, *in_mode(k)])
        rows.append(
            {
                "policy": f"round {k}",
                "method": "RAMP" if k else "start",
                "mode": mode_of(k),
                **_summary(here / "eval.json"),
                **_rollout_columns(rollout),
            }
        )
        run(f"export-raw-{k}", "bag", "export", here / "hilr", "--out", here / "raw")
        run(
            f"world-model-{k}",
            "train",
            "--dataset",
            here / "raw",
            *train_common,
            "--weights",
            policy.weights,
            "--norm-stats",
            policy.norm_stats,
            "--objective",
            "world-model",
            "--steps",
            c.world_model_steps,
            "--out",
            here / "world_model",
        )
        run(
            f"label-{k}",
            "bag",
            "label",
            here / "hilr",
            "--advantage",
            "--world-model",
            here / "world_model",
            "--robot",
            c.robot,
        )
        run(f"export-labelled-{k}", "bag", "export", here / "hilr", "--out", here / "labelled")
        start_weights = here / "world_model" / "weights.safetensors"
        if k == 0 and c.stage2_steps:
            rows += _stage2(run, c, here, train_common, eval_args, export, trained, policy, demos)
            start_weights = here / "stage2" / "weights.safetensors"
        run(
            f"ramp-{k}",
            "train",
            "--dataset",
            # continual training: every round's labelled episodes so far, and the demonstrations
            *(out / f"round-{j}" / "labelled" for j in range(k + 1)),
            *demos,
            *train_common,
            "--frames",
            c.frames,
            "--weights",
            start_weights,
            "--norm-stats",
            policy.norm_stats,
            "--objective",
            "ramp",
            "--unconditioned",
            c.unconditioned,
            *_drop(c),
            "--steps",
            c.steps,
            "--out",
            here / "ramp",
        )
        policy = trained(here / "ramp", policy)
        export(policy, nxt / "engine")
        engine = nxt / "engine"
        run(
            f"eval-round-{k + 1}",
            "eval",
            "--engine",
            engine,
            *eval_args,
            *in_mode(k + 1),
            "--json",
            nxt / "eval.json",
        )
    last = out / f"round-{c.rounds}"
    rollout = _rollout(
        run, f"rollout-{c.rounds}", engine, last, [*rollout_args, *in_mode(c.rounds)]
    )
    rows.append(
        {
            "policy": f"round {c.rounds}",
            "method": "RAMP",
            "mode": mode_of(c.rounds),
            **_summary(last / "eval.json"),
            **_rollout_columns(rollout),
        }
    )
    if c.baselines:  # after the loop's own steps: its results stand even if these are cut
        rows += _baselines(
            run,
            c,
            out / "round-0",
            out / "round-1",
            train_common,
            eval_args,
            export,
            trained,
            _start_policy(c.start),
            demos,
            rollout_args,
        )
    results = {
        "config": asdict(c),
        "rows": rows,
        "gain_round_1_vs_0": _difference(
            rows[0], next(r for r in rows if r["policy"] == "round 1")
        ),
        # the loop itself (every step but the baselines'), however many runs it took
        "minutes": round(
            sum(
                t
                for n, t in run.timings
                if not n.startswith(
                    (
                        "baseline",
                        "eval-plain",
                        "eval-corrections",
                        "eval-recap",
                        "export-plain",
                        "export-corrections",
                        "export-recap",
                        "eval-ramp-",
                    )
                )
            )
            / 60,
            1,
        ),
        "step_minutes": [(n, round(s / 60, 2)) for n, s in run.timings],
    }
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "results.md").write_text(results_table(results))
    print(results_table(results))
    return results


def _rollout(run, name: str, engine: Path, directory: Path, rollout_args: list[Any]) -> Path:  # noqa: ANN001
    """``sim rollout`` of ``engine`` (the rollout seeds, any ``--mode`` in ``rollout_args``),
    episodes recorded under ``directory/hilr``; the path of its summary."""
    summary = directory / "rollout.json"
    run(
        name,
        "sim",
        "rollout",
        "--engine",
        engine,
        *rollout_args,
        "--record-dir",
        directory / "hilr",
        "--json",
        summary,
    )
    return summary


def _rollout_columns(summary: Path) -> dict[str, Any]:
    """A rollout's columns of the table: the help it needed, and how often it succeeded with it."""
    d = _summary(summary)
    return {
        "interventions_per_episode": d["interventions_per_episode"],
        "rollout_success_rate": d["success_rate"],
    }


def _drop(c: RampConfig) -> list[Any]:
    """The world-model drop option of the trainings that condition on the world model."""
    return [] if c.wm_drop_prob is None else ["--wm-drop-prob", c.wm_drop_prob]


def _stage2(run, c, here, train_common, eval_args, export, trained, start, demos) -> list:  # noqa: ANN001
    """The paper's stage 2: the start policy fine-tuned by the ramp objective on the
    demonstrations alone (every frame I = 1), conditioned on round 0's world model, which
    trains along; exported and evaluated in both modes as the world-model-conditioned round 0
    that RAMP then continues from."""
    run(
        "stage-2",
        "train",
        *demos,
        *train_common,
        "--weights",
        here / "world_model" / "weights.safetensors",
        "--norm-stats",
        start.norm_stats,
        "--objective",
        "ramp",
        *_drop(c),
        "--steps",
        c.stage2_steps,
        "--out",
        here / "stage2",
    )
    export(trained(here / "stage2", start), here / "stage2" / "engine")
    method = "world-model-conditioned (stage 2)"
    return _both_modes(run, "stage-2", here / "stage2", eval_args, "round 0", method)


def _both_modes(run, name, directory, eval_args, policy, method) -> list:  # noqa: ANN001
    """``eval-NAME`` and ``eval-NAME-standard`` of ``directory``'s engine (``eval.json``,
    ``eval_standard.json`` there): the table's two rows for it."""
    rows = []
    for mode, suffix in (("efficient", ""), ("standard", "_standard")):
        path = directory / f"eval{suffix}.json"
        run(
            f"eval-{name}{suffix.replace('_', '-')}",
            "eval",
            "--engine",
            directory / "engine",
            *eval_args,
            *(["--mode", mode] if suffix else []),
            "--json",
            path,
        )
        rows.append({"policy": policy, "method": method, "mode": mode, **_summary(path)})
    return rows


def _baselines(
    run, c, here, nxt, train_common, eval_args, export, trained, start, demos, rollout_args
) -> list:  # noqa: ANN001
    """Round 0's data, other objectives, the same seeds (the paper's comparison). Each starts
    from round 0's policy with the world model trained on that round's episodes (the policy
    part is round 0's; neither objective trains the world model), so each also runs in
    standard mode - on world-model tokens it was never trained with. Last (after every
    held-out evaluation, so those stand if these are cut), each baseline's HILR rollout in
    efficient mode on the loop's rollout seeds: the interventions it needs, beside RAMP's."""
    rows = []
    base = nxt / "baselines"
    methods = {
        "plain": "plain fine-tuning",
        "corrections": "the corrections alone (HG-DAgger-like)",
        "recap": "advantage-conditioned (RECAP-like)",
    }
    with_world = here / "world_model" / "weights.safetensors"
    for name, dataset, frames, objective in (
        # plain fine-tuning: every recorded action, no labels
        ("plain", here / "raw", (), ("policy",)),
        # the corrections alone (HG-DAgger, Kelly et al. 2019): the operator's frames, no labels
        ("corrections", here / "raw", ("--frames", "operator"), ("policy",)),
        # advantage conditioning without world-model tokens (RECAP-like)
        (
            "recap",
            here / "labelled",
            (),
            (
                "ramp",
                "--unconditioned",
                c.unconditioned,
                "--wm-drop-prob",
                "1",
                "--frames",
                c.frames,
            ),
        ),
    ):
        run(
            f"baseline-{name}",
            "train",
            "--dataset",
            dataset,
            *demos,
            *train_common,
            *frames,
            "--weights",
            with_world,
            "--norm-stats",
            start.norm_stats,
            "--objective",
            *objective,
            "--steps",
            c.steps,
            "--out",
            base / name,
        )
    for name, method in methods.items():
        export(trained(base / name, start), base / name / "engine")
        rows += _both_modes(run, name, base / name, eval_args, "round 1", method)
    other = MODES[1 - MODES.index(c.mode)]  # RAMP's row in the mode the loop did not run
    run(
        f"eval-ramp-{other}",
        "eval",
        "--engine",
        nxt / "engine",
        *eval_args,
        "--mode",
        other,
        "--json",
        nxt / f"eval_{other}.json",
    )
    rows.append(
        {
            "policy": "round 1",
            "method": "RAMP",
            "mode": other,
            **_summary(nxt / f"eval_{other}.json"),
        }
    )
    for name, method in methods.items():
        d = base / name
        rollout = _rollout(run, f"baseline-rollout-{name}", d / "engine", d, rollout_args)
        row = next(r for r in rows if r["method"] == method and r["mode"] == "efficient")
        row.update(_rollout_columns(rollout))
    return rows


def _difference(a: dict[str, Any], b: dict[str, Any]) -> dict[str, float]:
    """b's success rate minus a's, with the 95% interval of the difference (Newcombe's method
    from the two Wilson intervals: sound at 0 and n successes)."""
    from gigabrain_runtime.sim.evaluate import wilson_interval  # the simulator: on use only

    p1, p2 = a["success_rate"], b["success_rate"]
    l1, u1 = wilson_interval(a["successes"], a["episodes"])
    l2, u2 = wilson_interval(b["successes"], b["episodes"])
    d = p2 - p1
    lo = d - ((p2 - l2) ** 2 + (u1 - p1) ** 2) ** 0.5
    hi = d + ((u2 - p2) ** 2 + (p1 - l1) ** 2) ** 0.5
    return {"difference": d, "ci95": [lo, hi]}


def results_table(results: dict[str, Any]) -> str:
    lines = [
        "| policy | method | mode | success (held-out) | 95% CI | median time to success (s) | "
        "interventions / episode (rollout) | rollout success |",
        "|---|---|---|---:|---|---:|---:|---:|",
    ]
    for r in results["rows"]:
        t = r["time_to_success_s_median"]
        ipe = r.get("interventions_per_episode")
        rs = r.get("rollout_success_rate")
        lines.append(
            f"| {r['policy']} | {r['method']} | {r['mode']} | {r['successes']}/{r['episodes']} "
            f"({100 * r['success_rate']:.0f}%) | {100 * r['ci95'][0]:.0f}-"
            f"{100 * r['ci95'][1]:.0f}% | {'-' if t is None else f'{t:.2f}'} | "
            f"{'-' if ipe is None else f'{ipe:.2f}'} | "
            f"{'-' if rs is None else f'{100 * rs:.0f}%'} |"
        )
    g = results["gain_round_1_vs_0"]
    lines.append("")
    lines.append(
        f"Round 1 against round 0: {100 * g['difference']:+.0f} points "
        f"(95% CI {100 * g['ci95'][0]:+.0f} to {100 * g['ci95'][1]:+.0f}); the loop took "
        f"{results['minutes']:.0f} min."
    )
    return "\n".join(lines) + "\n"
