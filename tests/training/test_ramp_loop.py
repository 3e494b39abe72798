"""The ramp command's own logic: its seeds never overlap the held-out ones, and the gain it
reports comes with a sound interval."""

from __future__ import annotations

import pytest

from gigabrain_runtime.training.ramp import RampConfig, _difference, results_table


def test_rollout_seeds_overlapping_the_held_out_seeds_are_refused():
    with pytest.raises(ValueError, match="overlap the evaluation seeds 0-99"):
        RampConfig(rollout_seed=90, episodes_per_round=20, eval_seed=0, eval_episodes=100)
    RampConfig(rollout_seed=100, episodes_per_round=20, eval_seed=0, eval_episodes=100)
    with pytest.raises(ValueError, match="steps: must be >= 1"):
        RampConfig(steps=0)


def _row(successes: int, n: int = 100) -> dict:
    return {"success_rate": successes / n, "successes": successes, "episodes": n}


def test_the_reported_gain_has_newcombes_interval():
    # Newcombe (1998), method 10, from the two Wilson intervals; a 20-point gain on 100
    # episodes each is clear of zero, a 5-point one is not
    g = _difference(_row(40), _row(60))
    assert g["difference"] == pytest.approx(0.20)
    lo, hi = g["ci95"]
    assert 0.05 < lo < 0.08 and 0.31 < hi < 0.34
    assert _difference(_row(40), _row(45))["ci95"][0] < 0
    # at the edges (0 and n successes) the interval stays inside [-1, 1]
    lo, hi = _difference(_row(0), _row(100))["ci95"]
    assert -1.0 <= lo <= hi <= 1.0 and lo > 0.9


def test_the_table_says_which_policy_won_by_how_much():
    rows = [
        {
            "policy": "round 0",
            "method": "start",
            "mode": "efficient",
            "ci95": [0.3, 0.5],
            "time_to_success_s_median": 7.0,
            "interventions_per_episode": 0.8,
            "rollout_success_rate": 0.9,
            **_row(40),
        },
        {
            "policy": "round 1",
            "method": "RAMP",
            "mode": "efficient",
            "ci95": [0.5, 0.7],
            "time_to_success_s_median": 6.5,
            "interventions_per_episode": 0.4,
            "rollout_success_rate": 0.95,
            **_row(60),
        },
    ]
    text = results_table(
        {"rows": rows, "gain_round_1_vs_0": _difference(rows[0], rows[1]), "minutes": 75.0}
    )
    assert "| round 1 | RAMP | efficient | 60/100 (60%) | 50-70% | 6.50 | 0.40 | 95% |" in text
    assert "Round 1 against round 0: +20 points" in text and "75 min" in text


def test_a_demonstration_path_that_is_no_dataset_is_refused_before_any_rollout(tmp_path):
    from gigabrain_runtime.training.ramp import run_ramp

    with pytest.raises(ValueError, match=r"demos: .*nowhere is not a LeRobot dataset"):
        run_ramp(RampConfig(demos=(str(tmp_path / "nowhere"),)), tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing started


def _record_steps(tmp_path, monkeypatch) -> dict[str, list[str]]:
    """The loop's steps by name, recorded instead of run: each writes the summary its
    ``--json`` names, so the loop goes on to the next."""
    import json

    from gigabrain_runtime.training import ramp

    steps: dict[str, list[str]] = {}

    class Recorded:
        def __init__(self, out):
            self.timings = []

        def __call__(self, name, *args):
            argv = [str(a) for a in args]
            steps[name] = argv
            self.timings.append((name, 1.0))
            if "--json" in argv:
                path = tmp_path / argv[argv.index("--json") + 1]
                path.parent.mkdir(parents=True, exist_ok=True)
                summary = {"success_rate": 0.1, "successes": 10, "episodes": 100}
                summary.update(ci95=[0.05, 0.17], time_to_success_s_median=6.0)
                if argv[:2] == ["sim", "rollout"]:  # only a rollout counts interventions
                    summary["interventions_per_episode"] = 1.0
                path.write_text(json.dumps(summary))

    monkeypatch.setattr(ramp, "Runner", Recorded)
    return steps


def _option(argv, flag):
    """The value a recorded command gives ``flag``, None where it does not carry it."""
    return argv[argv.index(flag) + 1] if flag in argv else None


def test_the_loops_objective_choices_reach_the_steps_that_take_them(tmp_path, monkeypatch):
    """``ramp --unconditioned expert``: the RAMP fine-tuning and the RECAP-like baseline (the
    same objective without the world model) both train with it; plain fine-tuning and the
    corrections baseline (the policy objective) do not take it. ``--indicator-condition``:
    every training has the architecture, and every engine exported from one of them, but not
    round 0's (the start policy was trained without it). The steps are recorded, not run: each
    writes the summary its ``--json`` names."""

    from gigabrain_runtime.training import ramp

    steps = _record_steps(tmp_path, monkeypatch)
    config = RampConfig(baselines=True, unconditioned="expert", indicator_condition=True)
    ramp.run_ramp(config, tmp_path / "out")

    def flag(name):
        return _option(steps[name], "--unconditioned")

    assert flag("ramp-0") == "expert" and flag("baseline-recap") == "expert"
    assert flag("baseline-plain") is None and flag("baseline-corrections") is None
    assert "--objective" in steps["ramp-0"] and flag("world-model-0") is None
    trainings = [n for n, argv in steps.items() if argv[0] == "train"]
    assert len(trainings) == 5  # the world model, RAMP, three baselines
    assert all("--indicator-condition" in steps[n] for n in trainings)
    exports = {
        n: "--indicator-condition" in argv for n, argv in steps.items() if argv[0] == "export"
    }
    assert exports.pop("export-round-0") is False and exports and all(exports.values())
    with pytest.raises(ValueError, match="unconditioned: expected one of"):
        RampConfig(unconditioned="policy")


def test_the_loops_world_model_still_queries_reach_every_training_of_the_world_model(
    tmp_path, monkeypatch
):
    """``ramp --wm-still-prob P``: the world model's own training and the trainings that update
    it jointly (stage 2, RAMP) all take it; without it no command carries the option (the
    loop's commands as before). A value outside [0, 1] is refused, naming the field."""
    from gigabrain_runtime.training import ramp

    demos = tmp_path / "demos"
    (demos / "meta").mkdir(parents=True)
    (demos / "meta/info.json").write_text("{}")
    for prob, expected in ((0.5, "0.5"), (0.0, None)):
        steps = _record_steps(tmp_path, monkeypatch)
        config = RampConfig(demos=(str(demos),), stage2_steps=10, wm_still_prob=prob)
        ramp.run_ramp(config, tmp_path / f"out{prob}")
        for name in ("world-model-0", "stage-2", "ramp-0"):
            argv = steps[name]
            got = _option(argv, "--wm-still-prob")
            assert got == expected, (name, prob)
    with pytest.raises(ValueError, match=r"wm_still_prob: must be in \[0, 1\], got 1.5"):
        RampConfig(wm_still_prob=1.5)


def test_the_loops_mode_is_the_mode_every_ramp_policy_is_measured_and_rolled_out_in(
    tmp_path, monkeypatch
):
    """``ramp --mode standard``: round 1's held-out evaluation and its rollout run in standard
    mode and its table row says so; round 0's start policy (never trained with world-model
    tokens) runs efficient; the baselines evaluate RAMP in the other mode. Without it every
    step runs efficient, as before. A mode that does not exist is refused, naming the field."""
    from gigabrain_runtime.training import ramp

    def mode(argv):
        return _option(argv, "--mode") or "efficient"

    for chosen, other in (("standard", "efficient"), ("efficient", "standard")):
        steps = _record_steps(tmp_path, monkeypatch)
        config = RampConfig(mode=chosen, baselines=True)
        results = ramp.run_ramp(config, tmp_path / f"out-{chosen}")
        assert mode(steps["eval-round-0"]) == mode(steps["rollout-0"]) == "efficient"
        assert mode(steps["eval-round-1"]) == mode(steps["rollout-1"]) == chosen
        assert mode(steps[f"eval-ramp-{other}"]) == other
        rows = {(r["policy"], r["method"], r["mode"]) for r in results["rows"]}
        assert {("round 0", "start", "efficient"), ("round 1", "RAMP", chosen)} <= rows
        assert ("round 1", "RAMP", other) in rows
        # each baseline is rolled out too, efficient, on the loop's rollout seeds, and its
        # efficient row carries the interventions it needed
        for name in ("plain", "corrections", "recap"):
            argv = steps[f"baseline-rollout-{name}"]
            assert argv[:2] == ["sim", "rollout"] and mode(argv) == "efficient"
            assert _option(argv, "--seed") == _option(steps["rollout-1"], "--seed")
            assert _option(argv, "--engine").endswith(f"baselines/{name}/engine")
        baseline_rows = [r for r in results["rows"] if r["method"] not in ("start", "RAMP")]
        assert len(baseline_rows) == 6
        for r in baseline_rows:
            assert (r.get("interventions_per_episode") is not None) == (r["mode"] == "efficient")
    with pytest.raises(ValueError, match="mode: expected one of .*got 'turbo'"):
        RampConfig(mode="turbo")


def test_a_step_that_runs_again_runs_every_step_after_it_again(tmp_path, monkeypatch):
    """An interrupted or changed loop continues where it can: a finished step with the same
    command after the same predecessor is kept; once one step runs again (here its command
    changed), the steps after it run again too, though their commands are the same (they read
    what it rewrote at the same paths). The processes are recorded, not started."""
    import subprocess

    from gigabrain_runtime.training import ramp

    started = []

    def process(argv, **kw):
        started.append(argv[3])  # python -m gigabrain_runtime NAME ...
        return subprocess.CompletedProcess(argv, 0)

    monkeypatch.setattr(ramp.subprocess, "run", process)

    def invocation(first):
        started.clear()
        run = ramp.Runner(tmp_path)
        run("first", first)
        run("second", "info")
        run("third", "bag")
        return list(started)

    assert invocation("info") == ["info", "info", "bag"]  # all run
    assert invocation("info") == []  # all kept
    assert invocation("train") == ["train", "info", "bag"]  # the first changed: all after it too
    assert invocation("train") == []
    assert len(list((tmp_path / "logs").glob("*.log"))) == 6


def test_stage_2_conditions_the_start_on_the_world_model_before_ramp_goes_on_from_it(
    tmp_path, monkeypatch
):
    """``ramp --stage2-steps N --frames operator``: after round 0's world model, the start is
    fine-tuned by the ramp objective on the demonstrations alone (no HILR dataset) from the
    world model's weights, exported and evaluated in both modes (rows of the table); round 0's
    RAMP step continues from those weights on the corrections alone, as does the RECAP-like
    baseline. Stage 2 without demonstrations, or a frame choice no trainer knows, is refused."""

    from gigabrain_runtime.training import ramp

    steps = _record_steps(tmp_path, monkeypatch)
    demos = tmp_path / "demos"
    (demos / "meta").mkdir(parents=True)
    (demos / "meta/info.json").write_text("{}")
    out = tmp_path / "out"
    config = RampConfig(baselines=True, demos=(str(demos),), stage2_steps=700, frames="operator")
    results = ramp.run_ramp(config, out)

    def value(name, option):
        argv = steps[name]
        return argv[argv.index(option) + 1] if option in argv else None

    stage2 = steps["stage-2"]
    assert "--dataset" not in stage2 and value("stage-2", "--demos") == str(demos)
    assert value("stage-2", "--objective") == "ramp" and value("stage-2", "--steps") == "700"
    assert value("stage-2", "--weights") == str(out / "round-0/world_model/weights.safetensors")
    assert value("ramp-0", "--weights") == str(out / "round-0/stage2/weights.safetensors")
    assert value("ramp-0", "--frames") == "operator"
    assert value("baseline-recap", "--frames") == "operator"
    assert value("baseline-corrections", "--frames") == "operator"  # its rule: unchanged
    assert value("baseline-plain", "--frames") is None
    order = list(steps)
    assert order.index("world-model-0") < order.index("stage-2") < order.index("ramp-0")
    assert value("export-stage2", "--weights") == str(out / "round-0/stage2/weights.safetensors")
    modes = [
        r["mode"] for r in results["rows"] if r["method"] == "world-model-conditioned (stage 2)"
    ]
    assert modes == ["efficient", "standard"]
    assert value("eval-stage-2-standard", "--mode") == "standard"
    with pytest.raises(ValueError, match="stage2_steps: 700 needs demos"):
        RampConfig(stage2_steps=700)
    with pytest.raises(ValueError, match="frames: expected one of"):
        RampConfig(frames="policy")


def test_the_loops_world_model_drop_probability_reaches_the_trainings_conditioned_on_it(
    tmp_path, monkeypatch
):
    """``ramp --wm-drop-prob P``: stage 2 and RAMP (the trainings that condition the policy on
    the world model) take it; the world model's own training and the RECAP-like baseline (which
    never shows the policy the world model) keep theirs; without it no command carries the
    option (the preset's 0.2). 1 is refused: it is the RECAP-like baseline."""
    from gigabrain_runtime.training import ramp

    demos = tmp_path / "demos"
    (demos / "meta").mkdir(parents=True)
    (demos / "meta/info.json").write_text("{}")
    for prob, expected in ((0.5, "0.5"), (None, None)):
        steps = _record_steps(tmp_path, monkeypatch)
        config = RampConfig(demos=(str(demos),), stage2_steps=10, wm_drop_prob=prob, baselines=True)
        ramp.run_ramp(config, tmp_path / f"out{prob}")

        drop = {name: _option(argv, "--wm-drop-prob") for name, argv in steps.items()}
        assert drop["stage-2"] == expected and drop["ramp-0"] == expected, prob
        assert drop["world-model-0"] is None and drop["baseline-recap"] == "1"
    with pytest.raises(ValueError, match=r"wm_drop_prob: must be in \[0, 1\).*got 1.0"):
        RampConfig(wm_drop_prob=1.0)


def test_every_loop_option_is_a_ramp_flag_whose_default_is_the_dataclasses(monkeypatch):
    """``gigabrain-runtime ramp``: each RampConfig field is a flag; left out, the dataclass's
    default stands (the flag parses to None) and ``--help`` quotes it; given, it reaches the
    config the loop runs with."""
    import dataclasses

    from gigabrain_runtime import cli
    from gigabrain_runtime.training import ramp

    parser = cli.build_parser()
    ramp_parser = parser._subparsers._group_actions[0].choices["ramp"]  # argparse keeps them
    helps = {a.dest: a.help or "" for a in ramp_parser._actions}
    defaults = RampConfig()
    for f in dataclasses.fields(RampConfig):
        assert f.name in helps, f.name
        assert "(default: " in helps[f.name], f.name
    assert "(default: 3000)" in helps["steps"] and "(default: off)" in helps["baselines"]
    args = parser.parse_args(["ramp", "--out", "x"])
    assert all(getattr(args, f.name) is None for f in dataclasses.fields(RampConfig))

    ran = []
    monkeypatch.setattr(ramp, "run_ramp", lambda config, out: ran.append(config))
    argv = ["ramp", "--out", "x", "--steps", "10", "--baselines", "--demos", "a", "b"]
    assert cli.main([*argv, "--wm-drop-prob", "0.8", "--mode", "standard"]) == 0
    expected = dataclasses.replace(
        defaults, steps=10, baselines=True, demos=("a", "b"), wm_drop_prob=0.8, mode="standard"
    )
    assert ran == [expected]
