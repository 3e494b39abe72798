"""``bag export`` writes the LeRobot v3.0 layout as LeRobot 0.4.x's own code reads it
(lerobot/datasets: utils.py load_info/load_tasks/load_episodes, lerobot_dataset.py
__getitem__ and _query_videos, aggregate.py, dataset_tools.py). The real LeRobot check is
benchmarks/lerobot/run.sh (its own venv); these are its rules, checked on every test run."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from gigabrain_runtime.cli import main
from gigabrain_runtime.robots.embodiment import get_embodiment

pq = pytest.importorskip("pyarrow.parquet")
av = pytest.importorskip("av")

STATS = {"min", "max", "mean", "std", "count", "q01", "q10", "q50", "q90", "q99"}
PIPER = get_embodiment("piper")
ROOT = Path(__file__).resolve().parents[2]


def _synthetic():
    spec = importlib.util.spec_from_file_location(
        "make_exports", ROOT / "benchmarks/lerobot/make_exports.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """Three episodes: cam_high 640x480 in the first, 224x224 in the others (the issue's case),
    three instructions."""
    root = tmp_path_factory.mktemp("episodes")
    make = _synthetic()
    for i in range(3):
        sizes = (
            {"cam_high": (480, 640), "cam_wrist": (240, 320)}
            if i == 0
            else {"cam_high": (224, 224), "cam_wrist": (224, 224)}
        )
        make.write_episode(root, i, sizes)
    return root, make.TASKS


@pytest.fixture(scope="module")
def export(mixed, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "ds"
    assert main(["bag", "export", str(mixed[0]), "--out", str(out), "--fps", "30"]) == 0
    return out


def test_info_declares_what_was_encoded(export):
    info = json.loads((export / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["fps"] == 30 and isinstance(info["fps"], int)
    features = info["features"]
    assert features["observation.state"]["names"] == list(PIPER.joint_names)
    assert features["action"]["names"] == list(PIPER.joint_names)
    for key in ("timestamp", "frame_index", "episode_index", "index", "task_index"):
        assert key in features
    for cam, (h, w) in (("cam_high", (480, 640)), ("cam_wrist", (240, 320))):
        f = features[f"observation.images.{cam}"]
        assert f["dtype"] == "video" and f["shape"] == [h, w, 3]
        assert f["names"] == ["height", "width", "channels"]
        assert f["info"] == {
            "video.height": h,
            "video.width": w,
            "video.codec": "av1",
            "video.pix_fmt": "yuv420p",
            "video.is_depth_map": False,
            "video.fps": 30,
            "video.channels": 3,
            "has_audio": False,
        }
        # every frame of every episode is in the file, at the declared size, frame j at j / fps
        path = export / info["video_path"].format(
            video_key=f"observation.images.{cam}", chunk_index=0, file_index=0
        )
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            frames = list(container.decode(stream))
        assert len(frames) == info["total_frames"]
        assert {(f.height, f.width) for f in frames} == {(h, w)}
        times = np.array([float(f.pts * f.time_base) for f in frames])
        np.testing.assert_allclose(times, np.arange(len(frames)) / 30, atol=1e-4)
    # the 224x224 episodes are fitted into 640x480 with their aspect kept: black side bars
    with av.open(str(export / "videos/observation.images.cam_high/chunk-000/file-000.mp4")) as c:
        last = list(c.decode(video=0))[-1].to_ndarray(format="rgb24")
    assert last[:, :60].max() < 20 and last[:, 100:540].max() > 200


def test_tasks_are_the_index_lerobot_reads_item_task_from(export, mixed):
    table = pq.read_table(export / "meta/tasks.parquet")
    pandas = json.loads(table.schema.metadata[b"pandas"])
    assert pandas["index_columns"] == ["__index_level_0__"]
    tasks = table.column("__index_level_0__").to_pylist()
    assert table.column("task_index").to_pylist() == list(range(len(tasks)))
    assert tasks == mixed[1]  # item["task"] = tasks.iloc[task_index].name: the instruction


def test_episodes_table_has_what_aggregate_and_delete_use(export):
    info = json.loads((export / "meta/info.json").read_text())
    rows = pq.read_table(export / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    assert [r["episode_index"] for r in rows] == [0, 1, 2]
    start = 0
    for r in rows:
        assert r["dataset_from_index"] == start and r["dataset_to_index"] == start + r["length"]
        start = r["dataset_to_index"]
        assert r["meta/episodes/chunk_index"] == 0 and r["meta/episodes/file_index"] == 0
        assert r["data/chunk_index"] == 0 and r["data/file_index"] == 0
        for cam in ("cam_high", "cam_wrist"):
            key = f"videos/observation.images.{cam}"
            span = (r[f"{key}/to_timestamp"] - r[f"{key}/from_timestamp"]) * info["fps"]
            assert round(span) == r["length"]
            assert r[f"{key}/from_timestamp"] == pytest.approx(r["dataset_from_index"] / 30)
        for feature in info["features"]:
            assert {k.split("/")[2] for k in r if k.startswith(f"stats/{feature}/")} == STATS
    assert start == info["total_frames"]


def test_stats_cover_every_feature_cameras_per_channel(export):
    info = json.loads((export / "meta/info.json").read_text())
    stats = json.loads((export / "meta/stats.json").read_text())
    assert set(stats) == set(info["features"])
    for feature, s in stats.items():
        assert set(s) == STATS
        if info["features"][feature]["dtype"] == "video":
            for k in STATS - {"count"}:
                assert np.array(s[k]).shape == (3, 1, 1)
            assert 0 <= np.min(s["min"]) <= np.max(s["max"]) <= 1
            assert np.min(s["std"]) > 0.01  # real spread (LeRobot 0.4.4's own is near 0)
        else:
            assert s["count"] == [info["total_frames"]]
    state = pq.read_table(export / "data/chunk-000/file-000.parquet").column("observation.state")
    np.testing.assert_allclose(
        stats["observation.state"]["mean"], np.mean(state.to_pylist(), axis=0), rtol=1e-5
    )


def test_data_file_as_hugging_face_datasets_writes_it(export):
    info = json.loads((export / "meta/info.json").read_text())
    table = pq.read_table(export / "data/chunk-000/file-000.parquet")
    assert table.num_rows == info["total_frames"]
    assert str(table.schema.field("action").type) == "fixed_size_list<element: float>[7]"
    hf = json.loads(table.schema.metadata[b"huggingface"])["info"]["features"]
    assert hf["action"] == {
        "feature": {"dtype": "float32", "_type": "Value"},
        "length": 7,
        "_type": "List",
    }
    assert [f.name for f in table.schema] == [
        k for k, f in info["features"].items() if f["dtype"] != "video"
    ]
    d = table.to_pydict()
    np.testing.assert_allclose(d["timestamp"], np.array(d["frame_index"]) / 30, atol=1e-6)


def test_one_declared_size_for_all_and_bad_sizes_named(mixed, tmp_path, capsys):
    out = tmp_path / "ds"
    assert main(["bag", "export", str(mixed[0]), "--out", str(out), "--image-size", "224x224"]) == 0
    info = json.loads((out / "meta/info.json").read_text())
    assert info["features"]["observation.images.cam_high"]["shape"] == [224, 224, 3]
    capsys.readouterr()
    args = ["bag", "export", str(mixed[0]), "--out", str(tmp_path / "x"), "--image-size"]
    assert main([*args, "16x16"]) != 0
    assert (
        "image_size: expected even height and width >= 32, got (16, 16)" in capsys.readouterr().err
    )
    assert main([*args, "big"]) != 0
    assert "--image-size: expected HxW such as 224x224, got 'big'" in capsys.readouterr().err
