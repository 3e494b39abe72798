"""``bag export --format lerobot``: episodes -> a LeRobot v3.0 dataset for the next RAMP round.

Written to the layout LeRobot 0.4.x itself writes and reads (``lerobot/datasets``: utils.py,
lerobot_dataset.py, compute_stats.py, video_utils.py, aggregate.py), so ``LeRobotDataset`` loads
it, ``aggregate_datasets`` merges it and ``delete_episodes`` edits it:

* ``meta/info.json``: codebase v3.0, integer ``fps``, every feature with its dtype, shape and
  names (the joint names), each camera a ``video`` feature with the ``info`` block LeRobot derives
  from the file (codec, pix_fmt, fps, ...);
* ``meta/tasks.parquet``: indexed by the task string (pandas index metadata) with a
  ``task_index`` column - LeRobot's ``item["task"]`` is the index label of row task_index;
* ``meta/episodes/chunk-000/file-000.parquet``: one row per episode with its data and video
  locations, ``meta/episodes/*`` indices and per-episode statistics ``stats/<feature>/<stat>``;
* ``meta/stats.json``: min, max, mean, std, count and the q01..q99 quantiles of every feature,
  cameras per channel in [0, 1] with shape (3, 1, 1), aggregated over episodes as LeRobot does;
* ``data/chunk-000/file-000.parquet``: every frame, vectors as fixed-size lists, with the
  Hugging Face ``datasets`` feature metadata;
* ``videos/<camera key>/chunk-000/file-000.mp4``: one AV1 (libsvtav1, yuv420p, keyframe every 2
  frames - LeRobot's encoder settings) stream per camera, episodes back to back, frame j at
  j / fps. Every frame is fitted (aspect kept, padded) to the camera's declared shape - the first
  episode's size unless ``image_size`` is given - so episodes of any image size export; a frame
  the encoder did not take is an error, never a warning.

Frames are sampled at ``fps`` from the episode's own clock: ``observation.state`` is the latest
joint state, ``action`` the latest joint command (the smoothed command actually sent - the HILR
dataset mixes policy actions and operator corrections), ``intervention`` whether the operator
had control. Where the episode has advantage labels (``bag label --advantage``: the world model's
values) or else a value stream (standard mode), ``value``, ``advantage`` (n-step TD, sparse
reward 1 at the end of a successful episode) and ``indicator`` I = 1(A > eps) are added.
Everything lands in chunk 0, file 0 (LeRobot rotates files at 100 MB of data / 200 MB of video;
an export that large still loads, as one file).
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from gigabrain_runtime.hilr.episodes import episode_dirs, read_episode
from gigabrain_runtime.hilr.label_store import read_labels
from gigabrain_runtime.hilr.recording import read_sidecar
from gigabrain_runtime.model.advantage import HILR_GAMMA, HILR_N_STEP, episode_labels
from gigabrain_runtime.scheduling import keep_scheduling

CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000
DATA_FILES_SIZE_IN_MB = 100
VIDEO_FILES_SIZE_IN_MB = 200
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
# LeRobot's encode_video_frames defaults (video_utils.py)
VIDEO_CODEC = "libsvtav1"
VIDEO_CODEC_NAME = "av1"
PIX_FMT = "yuv420p"
VIDEO_OPTIONS = {"g": "2", "crf": "30", "preset": "12"}
# SVT-AV1 (PyAV 15.1's) dies with SIGFPE on frames of 24 px or less; 32 is the smallest we take
MIN_SIDE = 32
QUANTILES = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}
# at most this many frames per episode and camera feed the image statistics, each at most
# STATS_IMAGE_SIDE px on its longer side (LeRobot samples and downsizes the same way)
STATS_FRAMES = 100
STATS_IMAGE_SIDE = 150


def _latest_before(times: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Index of the latest sample at or before each t (clamped to 0)."""
    return np.clip(np.searchsorted(times, t, side="right") - 1, 0, max(len(times) - 1, 0))


def fit_frame(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """``img`` (H, W, 3) scaled to fit (height, width) with its aspect ratio kept, centred on
    black (the letterbox the policy's own preprocessing uses)."""
    import cv2

    h, w = img.shape[:2]
    if (h, w) == (height, width):
        return img
    scale = min(width / w, height / h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(img, (nw, nh), interpolation=interp)
    out = np.zeros((height, width, 3), dtype=np.uint8)
    top, left = (height - nh) // 2, (width - nw) // 2
    out[top : top + nh, left : left + nw] = resized
    return out


# ---- statistics (LeRobot's stats layout) ------------------------------------------------------
def feature_stats(values: np.ndarray) -> dict[str, np.ndarray]:
    """Statistics of one feature over frames: ``values`` [n] or [n, d]."""
    x = np.asarray(values)
    x2 = x.reshape(len(x), -1)
    xf = x2.astype(np.float64)
    out: dict[str, np.ndarray] = {
        "min": x2.min(axis=0),
        "max": x2.max(axis=0),
        "mean": xf.mean(axis=0),
        "std": xf.std(axis=0),
        "count": np.array([len(x)], dtype=np.int64),
    }
    for name, q in QUANTILES.items():
        out[name] = np.quantile(xf, q, axis=0)
    return out


def image_stats(frames: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Per-channel statistics of camera frames in [0, 1], each of shape (3, 1, 1) (count: the
    frames used). float64 throughout (LeRobot 0.4.4 squares uint8 and under-reports std)."""
    import cv2

    step = max(1, len(frames) // STATS_FRAMES)
    picked = frames[::step]
    small = []
    for f in picked:
        h, w = f.shape[:2]
        scale = min(1.0, STATS_IMAGE_SIDE / max(h, w))
        if scale < 1.0:
            f = cv2.resize(f, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        small.append(f.reshape(-1, 3))
    pixels = np.concatenate(small).astype(np.float64) / 255.0
    stats = feature_stats(pixels)
    out = {k: v.reshape(3, 1, 1) for k, v in stats.items() if k != "count"}
    out["count"] = np.array([len(picked)], dtype=np.int64)
    return out


def aggregate_stats(per_episode: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Dataset statistics from episode statistics as LeRobot's ``aggregate_stats`` forms them:
    min/max elementwise, count-weighted mean, pooled variance, count-weighted quantiles."""
    counts = np.array([float(s["count"][0]) for s in per_episode])
    w = counts / counts.sum()
    shape = per_episode[0]["mean"].shape
    wb = w.reshape((-1,) + (1,) * len(shape))
    means = np.stack([s["mean"] for s in per_episode])
    mean = (wb * means).sum(axis=0)
    var = (wb * (np.stack([s["std"] for s in per_episode]) ** 2 + (means - mean) ** 2)).sum(axis=0)
    out = {
        "min": np.min(np.stack([s["min"] for s in per_episode]), axis=0),
        "max": np.max(np.stack([s["max"] for s in per_episode]), axis=0),
        "mean": mean,
        "std": np.sqrt(var),
        "count": np.array([int(counts.sum())], dtype=np.int64),
    }
    for name in QUANTILES:
        out[name] = (wb * np.stack([s[name] for s in per_episode])).sum(axis=0)
    return out


def _jsonable(stats: dict[str, dict[str, np.ndarray]]) -> dict[str, dict[str, Any]]:
    return {f: {k: np.asarray(v).tolist() for k, v in s.items()} for f, s in stats.items()}


# ---- video -----------------------------------------------------------------------------------
class _VideoWriter:
    """One camera's mp4: AV1 frames at ``fps``, frame j at pts j (time base 1/fps)."""

    def __init__(self, path: Path, fps: int, height: int, width: int) -> None:
        import av

        os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its whole config otherwise
        if height % 2 or width % 2 or min(height, width) < MIN_SIDE:
            raise ValueError(
                f"image_size: {height}x{width}: {PIX_FMT} AV1 video needs even sides of at least "
                f"{MIN_SIDE} px (give --image-size HxW)"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.height, self.width = height, width
        self.frames = 0
        self._av = av
        self._container = av.open(str(path), mode="w")
        self._stream = self._container.add_stream(VIDEO_CODEC, rate=fps, options=VIDEO_OPTIONS)
        self._stream.width, self._stream.height = width, height
        self._stream.pix_fmt = PIX_FMT

    def write(self, rgb: np.ndarray) -> None:
        frame = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        # the first frame opens the encoder, which as root raises its threads to SCHED_FIFO 99
        # (gigabrain_runtime/scheduling.py): undone before it can outrank a control loop
        with keep_scheduling() if not self.frames else contextlib.nullcontext():
            packets = self._stream.encode(frame)
        for packet in packets:
            self._container.mux(packet)
        self.frames += 1

    def abandon(self) -> None:
        """Close after a failure elsewhere (the export is being abandoned anyway)."""
        with contextlib.suppress(Exception):  # the original error is the one to report
            self._container.close()

    def close(self) -> None:
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()
        with self._av.open(str(self.path)) as check:  # what a reader will find
            stream = check.streams.video[0]
            found = stream.frames or sum(1 for _ in check.demux(stream) if _.size)
        if found != self.frames:
            raise ValueError(
                f"{self.path}: the encoder wrote {found} of {self.frames} frames; the export is "
                "incomplete"
            )


# ---- one episode -----------------------------------------------------------------------------
@dataclass
class _Episode:
    cols: dict[str, np.ndarray]
    videos: dict[str, list[np.ndarray]]
    joint_names: list[str]
    task: str
    row: dict[str, Any]


def episode_frames(ep: Path, fps: int) -> _Episode:
    """An episode's frames at ``fps`` as the export samples them (state, command, whether the
    operator had control, the cameras), without value columns: what ``bag label`` values."""
    return _episode_frames(ep, fps, HILR_N_STEP, HILR_GAMMA, 0.0, with_values=False)


def _episode_frames(
    ep: Path, fps: int, n_step: int, gamma: float, eps: float, *, with_values: bool = True
) -> _Episode:
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
    frame_t = np.arange(t0, t1, round(1e9 / fps), dtype=np.int64)
    if len(frame_t) == 0:
        raise ValueError(f"episode {ep.name}: no overlap of joint states and commands to export")
    s_t = np.array([t for t, _ in states])
    c_t = np.array([t for t, _ in commands])
    state = np.stack([np.asarray(m.position, np.float32) for _, m in states])
    action = np.stack([np.asarray(m.position, np.float32) for _, m in commands])
    cols: dict[str, np.ndarray] = {
        "observation.state": state[_latest_before(s_t, frame_t)],
        "action": action[_latest_before(c_t, frame_t)],
    }
    active = topic("/intervention/active")
    if active:
        a_t = np.array([t for t, _ in active])
        flags = np.array([bool(m.data) for _, m in active])
        idx = np.searchsorted(a_t, frame_t, side="right") - 1
        cols["intervention"] = np.where(idx >= 0, flags[np.clip(idx, 0, None)], False)
    else:
        cols["intervention"] = np.zeros(len(frame_t), dtype=bool)
    labels = read_labels(ep) if with_values else None
    values = topic("/value") if with_values else []
    if labels is not None:  # bag label --advantage: the world model's values
        if labels.fps != fps or len(labels.value) != len(frame_t):
            raise ValueError(
                f"episode {ep.name}: its advantage labels have {len(labels.value)} frames at "
                f"{labels.fps} fps, the export {len(frame_t)} at {fps} fps; label again with "
                f"bag label --advantage --fps {fps}"
            )
        cols["value"] = labels.value.astype(np.float32)
        cols["advantage"] = labels.advantage.astype(np.float32)
        cols["indicator"] = labels.indicator.astype(np.int8)
    elif values:
        v_t = np.array([t for t, _ in values])
        v = np.array([float(m.data) for _, m in values])[_latest_before(v_t, frame_t)]
        success = (info.label or info.outcome) == "success"
        adv, indicator = episode_labels(
            v, success, cols["intervention"], n_step=n_step, gamma=gamma, eps=eps
        )
        cols["value"] = v.astype(np.float32)
        cols["advantage"] = adv.astype(np.float32)
        cols["indicator"] = indicator.astype(np.int8)
    n = len(frame_t)
    cols["timestamp"] = (np.arange(n) / fps).astype(np.float32)
    cols["frame_index"] = np.arange(n, dtype=np.int64)
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
    row = {
        "source": ep.name,
        "outcome": info.label or info.outcome,
        "num_interventions": len(info.interventions),
    }
    return _Episode(cols, videos, list(states[0][1].name), info.instruction or "unspecified", row)


def _feature(dtype: str, shape: list[int], names: Any = None) -> dict[str, Any]:
    return {"dtype": dtype, "shape": shape, "names": names}


def _hf_features(features: dict[str, dict[str, Any]]) -> str:
    """The Hugging Face ``datasets`` schema LeRobot stores in its data parquet files."""
    out: dict[str, Any] = {}
    for key, f in features.items():
        if f["dtype"] == "video":
            continue
        value = {"dtype": f["dtype"], "_type": "Value"}
        out[key] = (
            {"feature": value, "length": f["shape"][0], "_type": "List"}
            if f["shape"] != [1]
            else value
        )
    return json.dumps({"info": {"features": out}})


def _tasks_table(tasks: dict[str, int]) -> Any:
    """tasks.parquet as pandas writes a frame indexed by task string (LeRobot reads it with
    ``pd.read_parquet`` and takes ``tasks.iloc[task_index].name``)."""
    import pyarrow as pa

    pandas_meta = {
        "index_columns": ["__index_level_0__"],
        "column_indexes": [
            {
                "name": None,
                "field_name": None,
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": {"encoding": "UTF-8"},
            }
        ],
        "columns": [
            {
                "name": "task_index",
                "field_name": "task_index",
                "pandas_type": "int64",
                "numpy_type": "int64",
                "metadata": None,
            },
            {
                "name": None,
                "field_name": "__index_level_0__",
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": None,
            },
        ],
        "attributes": {},
        "creator": {"library": "pyarrow", "version": pa.__version__},
    }
    schema = pa.schema(
        [("task_index", pa.int64()), ("__index_level_0__", pa.string())],
        metadata={b"pandas": json.dumps(pandas_meta).encode()},
    )
    return pa.table(
        {"task_index": list(tasks.values()), "__index_level_0__": list(tasks)}, schema=schema
    )


def export_lerobot(
    root: Path,
    out: Path,
    *,
    fps: int = 50,
    n_step: int = HILR_N_STEP,
    gamma: float = HILR_GAMMA,
    eps: float = 0.0,
    image_size: tuple[int, int] | None = None,
    outcome: str | None = None,
) -> Path:
    """Export every finished episode under ``root`` to the LeRobot v3.0 dataset ``out``.
    ``image_size`` (height, width): every camera's declared shape (default: each camera's size
    in the first episode). ``outcome``: only the episodes with this outcome (their label where
    an operator gave one), e.g. ``success`` for behaviour cloning."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if isinstance(fps, bool) or not isinstance(fps, int) or fps <= 0:
        raise ValueError(f"fps: must be a whole number of frames per second > 0, got {fps!r}")
    if image_size is not None and (
        len(image_size) != 2 or min(image_size) < MIN_SIDE or any(s % 2 for s in image_size)
    ):
        raise ValueError(
            f"image_size: expected even height and width >= {MIN_SIDE}, got {image_size}"
        )
    eps_dirs = [d for d in episode_dirs(root) if (d / "metadata.yaml").is_file()]
    if not eps_dirs:
        raise ValueError(f"dir: no finished episodes in {root} (recover unfinished ones first)")
    if outcome is not None:

        def result(d: Path) -> str:
            info = read_sidecar(d)
            return str(info.label or info.outcome)

        eps_dirs = [d for d in eps_dirs if result(d) == outcome]
        if not eps_dirs:
            raise ValueError(f"outcome: no finished episode in {root} has outcome {outcome!r}")
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"out: {out} exists and is not empty")
    out.mkdir(parents=True, exist_ok=True)
    tasks: dict[str, int] = {}
    parts: list[dict[str, np.ndarray]] = []
    rows: list[dict[str, Any]] = []
    episode_stats: list[dict[str, dict[str, np.ndarray]]] = []
    writers: dict[str, _VideoWriter] = {}
    names: list[str] = []
    index = 0
    try:
        for e, ep in enumerate(tqdm(eps_dirs, desc="exporting", unit="episode")):
            epi = _episode_frames(ep, fps, n_step, gamma, eps)
            n = len(epi.cols["frame_index"])
            if e == 0:
                names = epi.joint_names
            elif epi.joint_names != names:
                raise ValueError(
                    f"episode {ep.name}: joints {epi.joint_names} differ from the first "
                    f"episode's {names}; export them separately"
                )
            cams = sorted(epi.videos)
            if e > 0 and cams != sorted(writers):
                raise ValueError(
                    f"episode {ep.name}: cameras {cams} differ from the first episode's "
                    f"{sorted(writers)}; export them separately"
                )
            task_index = tasks.setdefault(epi.task, len(tasks))
            cols = dict(epi.cols)
            cols["episode_index"] = np.full(n, e, dtype=np.int64)
            cols["index"] = np.arange(index, index + n, dtype=np.int64)
            cols["task_index"] = np.full(n, task_index, dtype=np.int64)
            stats = {k: feature_stats(v) for k, v in cols.items()}
            row: dict[str, Any] = {
                "episode_index": e,
                "tasks": [epi.task],
                "length": n,
                "data/chunk_index": 0,
                "data/file_index": 0,
                "dataset_from_index": index,
                "dataset_to_index": index + n,
            }
            for cam in cams:
                key = f"observation.images.{cam}"
                if cam not in writers:
                    h, w = image_size or epi.videos[cam][0].shape[:2]
                    path = out / VIDEO_PATH.format(video_key=key, chunk_index=0, file_index=0)
                    writers[cam] = _VideoWriter(path, fps, h, w)
                writer = writers[cam]
                start = writer.frames
                fitted = [fit_frame(f, writer.height, writer.width) for f in epi.videos[cam]]
                for f in fitted:
                    writer.write(f)
                stats[key] = image_stats(fitted)
                row[f"videos/{key}/chunk_index"] = 0
                row[f"videos/{key}/file_index"] = 0
                row[f"videos/{key}/from_timestamp"] = start / fps
                row[f"videos/{key}/to_timestamp"] = (start + n) / fps
            for feature, s in stats.items():
                for k, v in s.items():
                    row[f"stats/{feature}/{k}"] = np.asarray(v).tolist()
            row["meta/episodes/chunk_index"] = 0
            row["meta/episodes/file_index"] = 0
            row.update(epi.row)
            rows.append(row)
            parts.append(cols)
            episode_stats.append(stats)
            index += n
    except BaseException:
        for w in writers.values():
            w.abandon()
        raise
    for w in writers.values():
        w.close()  # ValueError when a frame did not make it into the file
    # features present in every episode (value/advantage/indicator only where all have them)
    keys = [k for k in parts[0] if all(k in p for p in parts)]
    merged = {k: np.concatenate([p[k] for p in parts]) for k in keys}
    dim = merged["observation.state"].shape[1]
    if len(names) != dim:
        names = [f"joint_{i}" for i in range(dim)]
    dtypes = {"bool": "bool", "int8": "int8", "int64": "int64", "float32": "float32"}
    features: dict[str, dict[str, Any]] = {
        "observation.state": _feature("float32", [dim], list(names)),
        "action": _feature("float32", [dim], list(names)),
    }
    for k in keys:
        if k not in features:
            features[k] = _feature(dtypes[str(merged[k].dtype)], [1])
    for cam in sorted(writers):
        w = writers[cam]
        features[f"observation.images.{cam}"] = {
            "dtype": "video",
            "shape": [w.height, w.width, 3],
            "names": ["height", "width", "channels"],
            "info": {
                "video.height": w.height,
                "video.width": w.width,
                "video.codec": VIDEO_CODEC_NAME,
                "video.pix_fmt": PIX_FMT,
                "video.is_depth_map": False,
                "video.fps": fps,
                "video.channels": 3,
                "has_audio": False,
            },
        }
    # data: the non-video features in info.json order
    arrays, fields = [], []
    for k, f in features.items():
        if f["dtype"] == "video":
            continue
        v = merged[k]
        if v.ndim == 2:
            arr = pa.FixedSizeListArray.from_arrays(pa.array(v.reshape(-1)), v.shape[1])
        else:
            arr = pa.array(v)
        arrays.append(arr)
        fields.append(pa.field(k, arr.type))
    schema = pa.schema(fields, metadata={b"huggingface": _hf_features(features).encode()})
    data_path = out / DATA_PATH.format(chunk_index=0, file_index=0)
    data_path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_arrays(arrays, schema=schema), data_path, compression="snappy")
    ep_path = out / "meta" / "episodes" / "chunk-000" / "file-000.parquet"
    ep_path.parent.mkdir(parents=True, exist_ok=True)
    wanted = set(features)
    rows = [
        {k: v for k, v in r.items() if not k.startswith("stats/") or k.split("/")[1] in wanted}
        for r in rows
    ]
    pq.write_table(pa.Table.from_pylist(rows), ep_path)
    pq.write_table(_tasks_table(tasks), out / "meta" / "tasks.parquet")
    info = {
        "codebase_version": CODEBASE_VERSION,
        "robot_type": read_sidecar(eps_dirs[0]).robot,
        "total_episodes": len(eps_dirs),
        "total_frames": index,
        "total_tasks": len(tasks),
        "chunks_size": CHUNKS_SIZE,
        "data_files_size_in_mb": DATA_FILES_SIZE_IN_MB,
        "video_files_size_in_mb": VIDEO_FILES_SIZE_IN_MB,
        "fps": fps,
        "splits": {"train": f"0:{len(eps_dirs)}"},
        "data_path": DATA_PATH,
        "video_path": VIDEO_PATH,
        "features": features,
    }
    meta = out / "meta"
    (meta / "info.json").write_text(json.dumps(info, indent=4) + "\n")
    stats = {f: aggregate_stats([s[f] for s in episode_stats]) for f in features}
    (meta / "stats.json").write_text(json.dumps(_jsonable(stats), indent=4) + "\n")
    sizes = {f"{w.width}x{w.height}" for w in writers.values()}
    print(
        f"exported {len(eps_dirs)} episodes, {index} frames at {fps} fps, cameras "
        f"{sorted(writers)} ({', '.join(sorted(sizes)) or 'none'}) -> {out}"
    )
    return out
