"""``eval`` through the real graph, one episode: the evaluator resets the task, the episode is
judged by the detector, recorded, and the executor's commands stay within the joint limits."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("rclpy")

from tests.ros.harness import ROOT, fresh_domain  # noqa: E402


def test_one_graph_episode_is_reset_judged_recorded_and_within_the_limits(tiny_engine, tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "gigabrain_runtime",
            "eval",
            "--engine",
            str(tiny_engine),
            "--episodes",
            "1",
            "--seed",
            "7",
            "--json",
            str(tmp_path / "eval.json"),
            "--record-dir",
            str(tmp_path / "rec"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
        env={**os.environ, "ROS_DOMAIN_ID": str(fresh_domain()), "PYTHONPATH": str(ROOT)},
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    report = json.loads((tmp_path / "eval.json").read_text())
    (episode,) = report["per_episode"]
    assert episode["seed"] == 7
    assert episode["max_accel_ratio"] <= 1.0 + 1e-6  # never harder than the joint limits
    # random weights almost always fail, but a random arm can knock the cube into the bowl (CI saw
    # it once on another CPU): either verdict is right if the episode ended as that verdict says
    if episode["success"]:
        assert episode["reason"] == "cube in bowl"
        assert episode["duration_s"] <= 16.0  # ended on success, at the latest by the limit
        assert episode["chunks"] >= 1
    else:
        assert "cube" in episode["reason"] and "cm from" in episode["reason"]
        assert 14.5 <= episode["duration_s"] <= 16.0  # the task's 15 s limit
        assert episode["chunks"] >= 20  # the default 2 Hz for 15 s (30), room for a busy machine
    from gigabrain_runtime.hilr.recording import read_sidecar

    recorded = [d for d in (tmp_path / "rec").iterdir() if d.is_dir()]
    expected = "success" if episode["success"] else "failure"
    assert [read_sidecar(d).outcome for d in recorded] == [expected]


def test_a_graph_that_never_sends_a_chunk_is_explained_by_what_its_nodes_report():
    """When the first chunks never come, the error says what /diagnostics said: each status
    above OK, the worst first; and says so when nothing was wrong or nothing was heard."""
    from gigabrain_runtime.ros.tools.eval_graph import diagnosis

    said = {
        "piper/vla: inputs": (1, "waiting for cam_wrist (no image yet)"),
        "piper/vla: inference": (2, "nobody subscribes to /piper/action_chunk"),
        "piper/executor: executor": (0, "running"),
    }
    assert diagnosis(said) == (
        "piper/vla: inference ERROR: nobody subscribes to /piper/action_chunk; "
        "piper/vla: inputs WARN: waiting for cam_wrist (no image yet)"
    )
    assert diagnosis({"piper/executor: executor": (0, "running")}) == "no status above OK"
    assert diagnosis({}) == "nothing received"
