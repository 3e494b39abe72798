"""The command line as a user runs it: exit codes, messages, the JSON the benchmark writes."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest


def run(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "gigabrain_runtime", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
    )


def test_info_reports_counts_consistent_with_the_published_shapes():
    out = run("info", "--preset", "gigabrain-0.5")
    assert out.returncode == 0, out.stderr
    rows = {}
    for line in out.stdout.splitlines():
        m = re.match(r"^\s+(\S.*?)\s{2,}([\d,]+)\s+\(", line)
        if m:
            rows[m.group(1)] = int(m.group(2).replace(",", ""))

    def billions(label):
        return rows[label] / 1e9

    assert 0.38 < billions("vision encoder + projector") < 0.45
    assert 2.5 < billions("decoder (with embeddings)") < 2.7
    assert 0.3 < billions("action expert") < 0.5
    assert "total" in rows


def test_unknown_preset_is_one_line_with_a_suggestion_and_exit_2():
    out = run("info", "--preset", "tiyn")
    assert out.returncode == 2
    assert "did you mean 'tiny'" in out.stderr
    assert "Traceback" not in out.stderr


def test_build_engine_without_tensorrt_exits_non_zero_with_a_clear_message(tiny_engine):
    pytest.importorskip("onnx")
    import importlib.util

    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("tensorrt present")
    out = run("build-engine", str(tiny_engine), "--precision", "fp16")
    assert out.returncode != 0
    assert "tensorrt is not installed" in out.stderr
    assert "Traceback" not in out.stderr


def test_bench_writes_every_field_for_both_backends_and_modes(tiny_engine, tmp_path):
    report_path = tmp_path / "bench.json"
    out = run(
        "bench",
        "--preset",
        "tiny",
        "--engine",
        str(tiny_engine),
        "--backends",
        "torch,onnxruntime",
        "--modes",
        "efficient,standard",
        "--runs",
        "3",
        "--warmup",
        "1",
        "--json",
        str(report_path),
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(report_path.read_text())
    rows = {(r["backend"], r["mode"]): r for r in report["results"]}
    for backend in ("torch", "onnxruntime"):
        for mode in ("efficient", "standard", "world_model"):
            r = rows[(backend, mode)]
            assert r["runs"] == 3
            for field in ("p50_ms", "p90_ms", "p99_ms", "max_ms", "chunks_per_s", "memory_mb"):
                assert field in r
            assert 0 < r["p50_ms"] <= r["p90_ms"] <= r["p99_ms"] <= r["max_ms"]
    assert "onnxruntime/torch" in report["ratios_p50"]["efficient"]
    assert "p50 ms" in out.stdout and "ratio p50" in out.stdout


def test_bench_rejects_an_unknown_backend(tiny_engine):
    out = run("bench", "--engine", str(tiny_engine), "--backends", "onnxruntim")
    assert out.returncode == 2
    assert "did you mean 'onnxruntime'" in out.stderr


def test_export_to_a_directory_it_cannot_write_is_an_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    out = run("export", "--preset", "tiny", "--out", str(blocker / "sub"))
    assert out.returncode != 0


def test_bench_control_reports_both_arrangements(tiny_engine, tmp_path):
    report_path = tmp_path / "jitter.json"
    out = run(
        "bench-control", "--engine", str(tiny_engine), "--seconds", "2", "--json", str(report_path)
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(report_path.read_text())
    for name in ("naive", "runtime"):
        for field in (
            "jitter_p50_ms",
            "jitter_p99_ms",
            "jitter_max_ms",
            "obs_to_chunk_p50_ms",
            "obs_to_chunk_p99_ms",
            "ticks",
            "chunks",
        ):
            assert field in report[name]
        assert report[name]["ticks"] > 50 and report[name]["chunks"] > 5
    assert report["jitter_p99_ratio_naive_over_runtime"] > 0
    assert "naive / runtime" in out.stdout


def test_a_console_bound_beyond_loopback_without_a_token_is_refused_before_it_starts():
    out = subprocess.run(
        [sys.executable, "-m", "gigabrain_runtime", "console", "--bind", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert "token: binding '0.0.0.0' (beyond loopback) needs a token" in out.stderr
