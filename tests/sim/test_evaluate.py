"""Task-success evaluation: the interval, and the direct reference loop's report."""

from __future__ import annotations

import json

import pytest

from gigabrain_runtime.sim.evaluate import wilson_interval


def test_wilson_interval_matches_the_formula_at_the_edges_and_inside():
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
    assert wilson_interval(40, 50) == pytest.approx((0.6696, 0.8876), abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_direct_eval_reports_every_episode_and_a_random_policy_fails(tiny_engine, tmp_path):
    from gigabrain_runtime.cli import main

    out = tmp_path / "eval.json"
    rows = tmp_path / "eval.csv"
    assert (
        main(
            [
                "eval",
                "--engine",
                str(tiny_engine),
                "--episodes",
                "1",
                "--seed",
                "0",
                "--direct",
                "--json",
                str(out),
                "--csv",
                str(rows),
            ]
        )
        == 0
    )
    report = json.loads(out.read_text())
    assert report["episodes"] == 1 and len(report["per_episode"]) == 1
    assert report["success_rate"] == 0.0  # random weights do not put the cube in the bowl
    assert report["ci95"] == pytest.approx([0.0, 0.7935], abs=1e-4)
    first = report["per_episode"][0]
    assert first["seed"] == 0 and first["chunks"] >= 140 and "cube" in first["reason"]
    assert len(rows.read_text().splitlines()) == 2
