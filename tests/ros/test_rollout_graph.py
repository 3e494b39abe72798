"""``sim rollout`` through the real graph: a policy that fails (random weights) is taken over by
the simulated operator through the intervention node, and the recorder writes the episode with
its intervention segment and the detector's outcome."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("rclpy")

from tests.ros.harness import ROOT, fresh_domain  # noqa: E402


def test_a_failing_policy_is_taken_over_corrected_and_recorded(tiny_engine, tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "gigabrain_runtime",
            "sim",
            "rollout",
            "--engine",
            str(tiny_engine),
            "--episodes",
            "1",
            "--seed",
            "11",
            "--json",
            str(tmp_path / "rollout.json"),
            "--record-dir",
            str(tmp_path / "rec"),
            "--max-interventions",
            "1",  # the operator finishes what it takes over
            # taken over early, before the random policy pushes the cube out of the operator's
            # reach
            "--grace-s",
            "0.5",
            "--progress-window-s",
            "1.5",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
        env={**os.environ, "ROS_DOMAIN_ID": str(fresh_domain()), "PYTHONPATH": str(ROOT)},
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    report = json.loads((tmp_path / "rollout.json").read_text())
    (episode,) = report["per_episode"]
    assert episode["interventions"] == 1, episode
    assert episode["intervention_reasons"] in ("no progress", "stalled", "dropped")
    # the correction does not always finish (the random policy may have pushed the cube out of
    # reach): the recorded outcome is the detector's either way
    assert report["unassisted_successes"] == 0
    assert episode["max_accel_ratio"] <= 1.0 + 1e-6  # takeover smoothing within the limits
    from gigabrain_runtime.hilr.recording import read_sidecar

    (recorded,) = [d for d in (tmp_path / "rec").iterdir() if d.is_dir()]
    info = read_sidecar(recorded)
    assert info.outcome == ("success" if episode["success"] else "failure")
    assert len(info.interventions) == 1
    (segment,) = info.interventions
    assert segment["end_s"] > segment["start_s"]
