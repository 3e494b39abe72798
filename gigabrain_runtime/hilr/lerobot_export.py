"""``bag export --format lerobot``: episodes -> a LeRobot v3 dataset for the next RAMP round.

Layout (LeRobot codebase v3.0): ``meta/info.json``, ``meta/stats.json``, ``meta/tasks.parquet``,
``meta/episodes/chunk-000/file-000.parquet``, ``data/chunk-000/file-000.parquet`` (all frames)
and one mp4 per camera ``videos/observation.images.<cam>/chunk-000/file-000.mp4``. Frames are
sampled at ``fps`` from the episode's own clock: ``observation.state`` is the latest joint state,
``action`` the latest joint command (the smoothed command actually sent - the HILR dataset mixes
policy actions and operator corrections), ``intervention`` whether the operator had control.
Where a value stream exists (standard mode), ``value``, ``advantage`` (n-step TD, sparse reward
1 at the end of a successful episode) and ``indicator`` I = 1(A > eps) are added.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from gigabrain_runtime.hilr.episodes import episode_dirs, read_episode
from gigabrain_runtime.hilr.recording import read_sidecar
from gigabrain_runtime.model.advantage import advantage_indicator, n_step_advantage

CODEBASE_VERSION = "v3.0"


def _progress(i: int, n: int, label: str) -> None:
    width = 30
    done = int(width * i / max(n, 1))
    sys.stderr.write(f"\r{label} [{'#' * done}{'.' * (width - done)}] {i}/{n}")
    if i == n:
        sys.stderr.write("\n")
    sys.stderr.flush()


def _latest_before(times: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Index of the latest sample at or before each t (clamped to 0)."""
    return np.clip(np.searchsorted(times, t, side="right") - 1, 0, max(len(times) - 1, 0))


def _episode_frames(
    ep: Path, fps: float, n_step: int, gamma: float, eps: float
) -> tuple[dict[str, Any], dict[str, list[np.ndarray]], Any]:
    info = read_sidecar(ep)
    data = read_episode(ep)

    def topic(suffix: str) -> list:
        return next((m for t, m in data.items() if t.endswith(suffix)), [])

    states = topic("/joint_states")
    commands = [
        x
        for t, m in data.items()
        if t.endswith("/joint_command") and "/teleop/" not in t
        for x in m
    ]
    if not states or not commands:
        raise ValueError(f"episode {ep.name}: needs joint_states and joint_command to export")
    t0 = max(states[0][0], commands[0][0])
    t1 = min(states[-1][0], commands[-1][0])
    frame_t = np.arange(t0, t1, int(1e9 / fps), dtype=np.int64)
    s_t = np.array([t for t, _ in states])
    c_t = np.array([t for t, _ in commands])
    state = np.stack([np.asarray(m.position, np.float32) for _, m in states])
    action = np.stack([np.asarray(m.position, np.float32) for _, m in commands])
    cols: dict[str, Any] = {
        "observation.state": state[_latest_before(s_t, frame_t)],
        "action": action[_latest_before(c_t, frame_t)],
        "timestamp": ((frame_t - frame_t[0]) * 1e-9).astype(np.float32),
        "frame_index": np.arange(len(frame_t), dtype=np.int64),
    }
    active = topic("/intervention/active")
    if active:
        a_t = np.array([t for t, _ in active])
        flags = np.array([bool(m.data) for _, m in active])
        idx = np.searchsorted(a_t, frame_t, side="right") - 1
        cols["intervention"] = np.where(idx >= 0, flags[np.clip(idx, 0, None)], False)
    else:
        cols["intervention"] = np.zeros(len(frame_t), dtype=bool)
    values = topic("/value")
    if values:
        v_t = np.array([t for t, _ in values])
        v = np.array([float(m.data) for _, m in values])[_latest_before(v_t, frame_t)]
        success = (info.label or info.outcome) == "success"
        rewards = np.zeros(len(frame_t))
        if success:
            rewards[-1] = 1.0
        adv = n_step_advantage(rewards, v, n=n_step, gamma=gamma, terminal=True)
        cols["value"] = v.astype(np.float32)
        cols["advantage"] = adv.astype(np.float32)
        cols["indicator"] = advantage_indicator(adv, eps)
    videos: dict[str, list[np.ndarray]] = {}
    for t_name, msgs in data.items():
        if t_name.endswith("/image_raw") and msgs:
            cam = t_name.split("/cameras/")[-1].split("/")[0]
            i_t = np.array([t for t, _ in msgs])
            frames = [
                np.frombuffer(bytes(m.data), np.uint8)
                .reshape(m.height, m.step)[:, : m.width * 3]
                .reshape(m.height, m.width, 3)
                for _, m in msgs
            ]
            videos[cam] = [frames[i] for i in _latest_before(i_t, frame_t)]
    return cols, videos, info


def export_lerobot(
    root: Path,
    out: Path,
    *,
    fps: float = 50.0,
    n_step: int = 10,
    gamma: float = 0.99,
    eps: float = 0.0,
) -> Path:
    import cv2
    import pyarrow as pa
    import pyarrow.parquet as pq

    if fps <= 0:
        raise ValueError(f"fps: must be > 0, got {fps}")
    eps_dirs = [d for d in episode_dirs(root) if (d / "metadata.yaml").is_file()]
    if not eps_dirs:
        raise ValueError(f"dir: no finished episodes in {root} (recover unfinished ones first)")
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"out: {out} exists and is not empty")
    out.mkdir(parents=True, exist_ok=True)
    tasks: dict[str, int] = {}
    table_parts, episode_rows = [], []
    cams: list[str] = []
    writers: dict[str, Any] = {}
    index = 0
    video_time = 0.0
    names: list[str] = []
    for e, ep in enumerate(eps_dirs):
        _progress(e, len(eps_dirs), "exporting")
        cols, videos, info = _episode_frames(ep, fps, n_step, gamma, eps)
        n = len(cols["frame_index"])
        task = info.instruction or "unspecified"
        task_index = tasks.setdefault(task, len(tasks))
        cols["episode_index"] = np.full(n, e, dtype=np.int64)
        cols["index"] = np.arange(index, index + n, dtype=np.int64)
        cols["task_index"] = np.full(n, task_index, dtype=np.int64)
        table_parts.append(cols)
        row = {
            "episode_index": e,
            "tasks": [task],
            "length": n,
            "data/chunk_index": 0,
            "data/file_index": 0,
            "dataset_from_index": index,
            "dataset_to_index": index + n,
            "source": ep.name,
            "outcome": info.label or info.outcome,
            "num_interventions": len(info.interventions),
        }
        for cam, frames in sorted(videos.items()):
            key = f"observation.images.{cam}"
            if cam not in writers:
                cams.append(cam)
                path = out / "videos" / key / "chunk-000" / "file-000.mp4"
                path.parent.mkdir(parents=True, exist_ok=True)
                h, w = frames[0].shape[:2]
                writers[cam] = cv2.VideoWriter(
                    str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h)
                )
            for f in frames:
                writers[cam].write(np.ascontiguousarray(f[:, :, ::-1]))
            row[f"videos/{key}/chunk_index"] = 0
            row[f"videos/{key}/file_index"] = 0
            row[f"videos/{key}/from_timestamp"] = video_time
            row[f"videos/{key}/to_timestamp"] = video_time + n / fps
        video_time += n / fps
        episode_rows.append(row)
        index += n
    _progress(len(eps_dirs), len(eps_dirs), "exporting")
    for w in writers.values():
        w.release()
    merged = {
        k: np.concatenate([p[k] for p in table_parts])
        for k in table_parts[0]
        if all(k in p for p in table_parts)
    }
    arrays = {}
    for k, v in merged.items():
        arrays[k] = pa.array(list(v)) if v.ndim == 2 else pa.array(v)
    data_path = out / "data" / "chunk-000" / "file-000.parquet"
    data_path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(arrays), data_path)
    ep_path = out / "meta" / "episodes" / "chunk-000" / "file-000.parquet"
    ep_path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(episode_rows), ep_path)
    pq.write_table(
        pa.table({"task_index": list(tasks.values()), "task": list(tasks)}),
        out / "meta" / "tasks.parquet",
    )
    dim = merged["observation.state"].shape[1]
    names = [f"joint_{i}" for i in range(dim)]
    features: dict[str, Any] = {
        "observation.state": {"dtype": "float32", "shape": [dim], "names": names},
        "action": {"dtype": "float32", "shape": [dim], "names": names},
        "timestamp": {"dtype": "float32", "shape": [1], "names": None},
        "frame_index": {"dtype": "int64", "shape": [1], "names": None},
        "episode_index": {"dtype": "int64", "shape": [1], "names": None},
        "index": {"dtype": "int64", "shape": [1], "names": None},
        "task_index": {"dtype": "int64", "shape": [1], "names": None},
        "intervention": {"dtype": "bool", "shape": [1], "names": None},
    }
    for k in ("value", "advantage"):
        if k in merged:
            features[k] = {"dtype": "float32", "shape": [1], "names": None}
    if "indicator" in merged:
        features["indicator"] = {"dtype": "int8", "shape": [1], "names": None}
    for cam in cams:
        features[f"observation.images.{cam}"] = {
            "dtype": "video",
            "shape": [224, 224, 3],
            "names": ["height", "width", "channels"],
            "info": {"video.fps": fps, "video.codec": "mp4v", "video.pix_fmt": "yuv420p"},
        }
    info = {
        "codebase_version": CODEBASE_VERSION,
        "robot_type": read_sidecar(eps_dirs[0]).robot,
        "total_episodes": len(eps_dirs),
        "total_frames": index,
        "total_tasks": len(tasks),
        "chunks_size": 1000,
        "data_files_size_in_mb": 100,
        "video_files_size_in_mb": 500,
        "fps": fps,
        "splits": {"train": f"0:{len(eps_dirs)}"},
        "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
        "video_path": "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4",
        "features": features,
    }
    meta = out / "meta"
    (meta / "info.json").write_text(json.dumps(info, indent=2) + "\n")
    stats = {}
    for k in ("observation.state", "action"):
        v = merged[k].astype(np.float64)
        stats[k] = {
            "mean": v.mean(0).tolist(),
            "std": v.std(0).tolist(),
            "min": v.min(0).tolist(),
            "max": v.max(0).tolist(),
            "count": [len(v)],
        }
    (meta / "stats.json").write_text(json.dumps(stats, indent=2) + "\n")
    print(
        f"exported {len(eps_dirs)} episodes, {index} frames at {fps:g} fps, cameras {cams} -> {out}"
    )
    return out
