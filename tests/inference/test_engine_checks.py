"""An engine whose manifest disagrees with itself or its files is refused when it is loaded, in
one line saying what to rebuild - not run, and not failing on every tick."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gigabrain_runtime.inference.factory import open_backend
from gigabrain_runtime.inference.tensorrt_backend import TensorRTBackend, TensorRTUnavailable

ROOT = Path(__file__).resolve().parents[2]


def _copy(engine: Path, tmp_path: Path, edit) -> Path:  # noqa: ANN001
    out = tmp_path / "engine"
    shutil.copytree(engine, out)
    manifest = json.loads((out / "manifest.json").read_text())
    edit(manifest)
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def test_the_unchanged_engine_loads(tiny_engine):
    open_backend(tiny_engine, "onnxruntime").close()


def test_a_manifest_claiming_another_preset_is_refused(tiny_engine, tmp_path):
    engine = _copy(tiny_engine, tmp_path, lambda m: m.update(preset="gigabrain-0"))
    with pytest.raises(ValueError, match="manifest.preset is 'gigabrain-0' but its model config"):
        open_backend(engine, "onnxruntime")


@pytest.mark.parametrize("backend", ["onnxruntime", "torch"])
def test_a_manifest_claiming_other_weights_is_refused(tiny_engine, tmp_path, backend):
    engine = _copy(tiny_engine, tmp_path, lambda m: m.update(weights_sha256="ab" * 32))
    with pytest.raises(ValueError, match="weights.safetensors does not match manifest"):
        open_backend(engine, backend)


def test_a_manifest_whose_input_shape_is_not_the_graphs_is_refused_naming_it(tiny_engine, tmp_path):
    def bigger_images(m: dict) -> None:
        for graph in m["graphs"].values():
            for t in graph["inputs"]:
                if t["name"] == "images":
                    t["shape"] = [t["shape"][0], t["shape"][1], 448, 448, 3][: len(t["shape"])]

    engine = _copy(tiny_engine, tmp_path, bigger_images)
    with pytest.raises(ValueError, match=r"input 'images' is \[.*\] uint8 in the graph, \[.*448"):
        open_backend(engine, "onnxruntime")


def _with_plans(m: dict) -> None:
    m["backend"] = "tensorrt"
    m["tensorrt"] = {
        "gpu_name": "NVIDIA H100 80GB HBM3",
        "compute_capability": "9.0",
        "tensorrt_version": "10.9.0",
        "precision": "fp16",
    }


@pytest.mark.skipif(
    __import__("importlib").util.find_spec("tensorrt") is not None, reason="tensorrt present"
)
def test_a_tensorrt_engine_here_is_one_line_naming_what_it_needs(tiny_engine, tmp_path):
    engine = _copy(tiny_engine, tmp_path, _with_plans)
    with pytest.raises(
        TensorRTUnavailable, match=r"plans were built for NVIDIA H100 .*sm 9\.0.*10\.9\.0"
    ):
        TensorRTBackend(engine)
    out = subprocess.run(
        [sys.executable, "-m", "gigabrain_runtime", "predict", "--engine", str(engine)]
        + ["--instruction", "pick", "--state", str(tmp_path / "state.npy")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert out.returncode == 2
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert "tensorrt is not installed" in out.stderr and "onnxruntime" in out.stderr
