"""A LeRobot v3.0 dataset as training samples for the policy.

Reads any LeRobot v3.0 dataset (``bag export`` writes them; so does LeRobot) that has
``observation.state``, ``action``, the robot's cameras as ``observation.images.<cam>`` video
features and tasks: ``meta/info.json``, ``meta/tasks.parquet``, ``meta/episodes/*``, the data
parquet files and the mp4 files (decoded with PyAV). Frames are letterboxed to the model's image
size with the engine's own filter (``perception/images.py``, as the vla does) once, at load, and
kept as uint8.

A sample is one frame t of an episode: its camera images, its state, its task, and the chunk of
the next ``horizon`` actions t+1 .. t+H at the dataset's frame rate (the chunk's point spacing
at run time is ``1 / control_hz``, so export at the control rate); past the episode's end the
chunk repeats its last action (the arm holds), never zeros. ``stride`` keeps every stride-th
frame as a sample (the chunks still use every frame's action).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from gigabrain_runtime.model.advantage import SAMPLE_FRAMES
from gigabrain_runtime.perception.images import resize_with_pad


def _read_table(paths: list[Path]) -> dict[str, list[Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = [pq.read_table(p) for p in sorted(paths)]
    return pa.concat_tables(tables, promote_options="default").to_pydict() if tables else {}


@dataclass
class EpisodeData:
    index: int
    task: str
    states: np.ndarray  # float32 [T, dof]
    actions: np.ndarray  # float32 [T, dof]
    frames: dict[str, np.ndarray]  # camera -> uint8 [n_samples, S, S, 3] at the sampled frames
    sample_frames: np.ndarray  # int64 [n_samples]: frame index of each sample
    # the RAMP labels, where the dataset has them (bag label --advantage, then bag export):
    # the advantage indicator I per frame (int64 [T]) and whether the operator had control
    indicator: np.ndarray | None = None
    intervention: np.ndarray | None = None
    outcome: str = "unknown"  # the episode's outcome (success | failure | ...), if exported
    source: Path | None = None  # the dataset directory it came from


class LeRobotDataset:
    """The samples of a LeRobot v3.0 dataset for one robot's joints and cameras."""

    def __init__(
        self,
        root: str | Path | Sequence[str | Path],
        *,
        joint_names: tuple[str, ...],
        cameras: tuple[str, ...],
        image_size: int,
        horizon: int,
        stride: int = 1,
        resize: str = "area",
        progress: bool = True,
        expert: str | Path | Sequence[str | Path] = (),
        frames: str = "all",
    ) -> None:
        """``root``: one dataset or several (their episodes together, in order; the same frame
        rate). ``expert``: more datasets whose every frame is an expert's - demonstrations, as
        the paper treats them and the operator's corrections: indicator I = 1 and operator
        control on every frame, whatever the dataset says (the RAMP loop's earlier data).
        ``frames``: which of ``root``'s frames are samples (the expert datasets' all are):
        "all"; "operator", only those the operator controlled (HG-DAgger's data: the
        corrections alone); "indicator", only those labelled I = 1."""
        if frames not in SAMPLE_FRAMES:
            raise ValueError(f"frames: expected one of {SAMPLE_FRAMES}, got {frames!r}")
        roots = [Path(r) for r in ([root] if isinstance(root, (str, Path)) else root)]
        experts = [Path(r) for r in ([expert] if isinstance(expert, (str, Path)) else expert)]
        if not roots and not experts:
            raise ValueError("dataset: no dataset directory given")
        if stride < 1 or horizon < 1:
            raise ValueError(f"stride and horizon: must be >= 1, got {stride}, {horizon}")
        self.roots = roots + experts
        self.root = self.roots[0]
        self.horizon, self.stride, self.image_size = horizon, stride, image_size
        self.joint_names = tuple(joint_names)
        self.cameras = tuple(cameras)
        self.fps = 0
        self.episodes: list[EpisodeData] = []
        recorded = 0  # the episodes of ``root`` come first, the expert datasets' after them
        for n, r in enumerate(self.roots):
            self._load(r, resize=resize, progress=progress, expert=n >= len(roots))
            recorded = len(self.episodes) if n < len(roots) else recorded
        self._index = [
            (k, j)
            for k, ep in enumerate(self.episodes)
            for j in range(len(ep.sample_frames))
            if frames == "all" or k >= recorded or self._selected(ep, j, frames)
        ]
        if not self._index:
            raise ValueError(f"dataset: no sample is left with frames={frames!r}")

    @staticmethod
    def _selected(ep: EpisodeData, j: int, frames: str) -> bool:
        column = ep.intervention if frames == "operator" else ep.indicator
        if column is None:
            feature = "intervention" if frames == "operator" else "indicator"
            raise ValueError(
                f"frames={frames!r}: {ep.source} has no {feature!r} feature (bag export of "
                "recorded episodes has it; the indicator after bag label --advantage)"
            )
        return bool(column[int(ep.sample_frames[j])])

    def _load(self, root: Path, *, resize: str, progress: bool, expert: bool) -> None:
        """Append ``root``'s episodes."""
        info_path = root / "meta" / "info.json"
        if not info_path.is_file():
            raise ValueError(f"dataset: {root} has no meta/info.json (a LeRobot v3.0 dataset)")
        info = json.loads(info_path.read_text())
        version = info.get("codebase_version")
        if version != "v3.0":
            raise ValueError(f"dataset: {root} codebase_version {version!r}; this reads v3.0")
        features = info["features"]
        fps = int(info["fps"])
        if self.fps and fps != self.fps:
            raise ValueError(
                f"dataset: {root} is at fps {fps}, {self.roots[0]} at {self.fps} (export both "
                "at the same --fps)"
            )
        self.fps = fps
        for key in ("observation.state", "action"):
            if key not in features:
                raise ValueError(f"dataset: no {key!r} feature in {info_path}")
            names = features[key].get("names")
            if isinstance(names, dict):  # LeRobot's {"motors": [...]} form
                names = next(iter(names.values()))
            if list(names or []) != list(self.joint_names):
                raise ValueError(
                    f"dataset: {key} names {names} are not the robot's joints "
                    f"{list(self.joint_names)}"
                )
        missing = [c for c in self.cameras if f"observation.images.{c}" not in features]
        if missing:
            raise ValueError(f"dataset: no video feature for cameras {missing} in {info_path}")
        tasks = _read_table(list((root / "meta").glob("tasks.parquet")))
        index_col = next((k for k in tasks if k not in ("task_index",)), None)
        task_names = {
            int(i): str(t) for i, t in zip(tasks["task_index"], tasks[index_col], strict=True)
        }
        episodes = _read_table(list((root / "meta" / "episodes").glob("*/*.parquet")))
        data = _read_table(list((root / "data").glob("*/*.parquet")))
        ep_of = np.asarray(data["episode_index"])
        state = np.asarray(data["observation.state"], dtype=np.float32)
        action = np.asarray(data["action"], dtype=np.float32)
        task_index = np.asarray(data["task_index"])
        indicator = np.asarray(data["indicator"], np.int64) if "indicator" in data else None
        intervention = np.asarray(data["intervention"], bool) if "intervention" in data else None
        if expert:
            indicator = np.ones(len(ep_of), np.int64)
            intervention = np.ones(len(ep_of), bool)
        outcomes = episodes.get("outcome")
        order = np.asarray(data["index"])
        rows = range(len(episodes["episode_index"]))
        for r in tqdm(rows, desc=f"loading {root.name}", unit="episode", disable=not progress):
            e = int(episodes["episode_index"][r])
            sel = np.flatnonzero(ep_of == e)
            sel = sel[np.argsort(order[sel])]
            n = len(sel)
            samples = np.arange(0, n, self.stride, dtype=np.int64)
            frames = {}
            for cam in self.cameras:
                key = f"observation.images.{cam}"
                frames[cam] = self._decode(root, info, key, episodes, r, samples, n, resize=resize)
            self.episodes.append(
                EpisodeData(
                    index=e,
                    task=task_names[int(task_index[sel[0]])],
                    states=state[sel],
                    actions=action[sel],
                    frames=frames,
                    sample_frames=samples,
                    indicator=None if indicator is None else indicator[sel],
                    intervention=None if intervention is None else intervention[sel],
                    outcome=str(outcomes[r]) if outcomes is not None else "unknown",
                    source=root,
                )
            )

    def _decode(
        self,
        root: Path,
        info: dict[str, Any],
        key: str,
        episodes: dict[str, list[Any]],
        row: int,
        samples: np.ndarray,
        n: int,
        *,
        resize: str,
    ) -> np.ndarray:
        import av

        chunk = int(episodes[f"videos/{key}/chunk_index"][row])
        file = int(episodes[f"videos/{key}/file_index"][row])
        start = float(episodes[f"videos/{key}/from_timestamp"][row])
        path = root / info["video_path"].format(video_key=key, chunk_index=chunk, file_index=file)
        first = round(start * self.fps)
        wanted = {first + int(s): i for i, s in enumerate(samples)}
        out = np.zeros((len(samples), self.image_size, self.image_size, 3), dtype=np.uint8)
        found = 0
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            container.seek(
                int(start / stream.time_base) if start > 0 else 0,
                stream=stream,
                backward=True,
                any_frame=False,
            )
            for frame in container.decode(stream):
                j = round(float(frame.pts * frame.time_base) * self.fps)
                if j >= first + n:
                    break
                i = wanted.get(j)
                if i is None:
                    continue
                out[i] = resize_with_pad(frame.to_ndarray(format="rgb24"), self.image_size, resize)
                found += 1
        if found != len(samples):
            raise ValueError(f"dataset: {path} gave {found} of {len(samples)} frames of {key}")
        return out

    def __len__(self) -> int:
        return len(self._index)

    def sample(self, i: int) -> dict[str, Any]:
        """Sample ``i``: images (camera -> uint8 [S, S, 3]), state [dof], actions [H, dof], task."""
        k, j = self._index[i]
        ep = self.episodes[k]
        t = int(ep.sample_frames[j])
        steps = np.minimum(np.arange(t + 1, t + 1 + self.horizon), len(ep.actions) - 1)
        return {
            "images": {cam: ep.frames[cam][j] for cam in self.cameras},
            "state": ep.states[t],
            "actions": ep.actions[steps],
            "task": ep.task,
        }

    def future(self, i: int, frames_ahead: int) -> dict[str, Any]:
        """What sample ``i``'s episode looks like ``frames_ahead`` frames later (the nearest
        sampled frame at or before it, the last one past the episode's end): images, state and
        its frame index (where the value target is read)."""
        k, j = self._index[i]
        ep = self.episodes[k]
        target = int(ep.sample_frames[j]) + frames_ahead
        jf = int(np.searchsorted(ep.sample_frames, target, side="right")) - 1
        jf = max(j, min(jf, len(ep.sample_frames) - 1))
        t = int(ep.sample_frames[jf])
        return {
            "images": {cam: ep.frames[cam][jf] for cam in self.cameras},
            "state": ep.states[t],
            "frame": t,
        }

    def _per_frame(self, i: int, feature: str, missing: str) -> Any:
        """Sample ``i``'s value of the per-frame ``feature`` (ValueError, with ``missing`` as
        the remedy, where its dataset has none)."""
        k, j = self._index[i]
        ep = self.episodes[k]
        column = getattr(ep, feature)
        if column is None:
            raise ValueError(f"dataset: {ep.source} has no {feature!r} feature ({missing})")
        return column[int(ep.sample_frames[j])]

    def indicator(self, i: int) -> int:
        """Sample ``i``'s advantage indicator I (ValueError where the dataset has none)."""
        remedy = "label the episodes with bag label --advantage, then bag export"
        return int(self._per_frame(i, "indicator", remedy))

    def expert(self, i: int) -> bool:
        """Whether sample ``i``'s actions are an expert's: every frame of an expert dataset, the
        operator's frames of a HILR one (ValueError where the dataset does not say)."""
        remedy = "bag export writes it; without it whose actions its frames are is unknown"
        return bool(self._per_frame(i, "intervention", remedy))

    def frame(self, i: int) -> tuple[int, int]:
        """Sample ``i`` as (episode number in ``episodes``, frame index in that episode)."""
        k, j = self._index[i]
        return int(k), int(self.episodes[k].sample_frames[j])

    def chunks(self) -> tuple[np.ndarray, np.ndarray]:
        """Every sample's state [samples, dof] and chunk [samples, H, dof] (for the statistics
        of a model that predicts offsets from the state)."""
        states, chunks = [], []
        for ep in self.episodes:
            t = ep.sample_frames
            steps = np.minimum(t[:, None] + 1 + np.arange(self.horizon)[None], len(ep.actions) - 1)
            states.append(ep.states[t])
            chunks.append(ep.actions[steps])
        return np.concatenate(states), np.concatenate(chunks)

    def states_and_actions(self) -> tuple[np.ndarray, np.ndarray]:
        """Every frame's state and action (for the normalisation statistics)."""
        return (
            np.concatenate([e.states for e in self.episodes]),
            np.concatenate([e.actions for e in self.episodes]),
        )
