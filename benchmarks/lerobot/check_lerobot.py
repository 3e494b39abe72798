"""Open exports of ``gigabrain-runtime bag export`` with LeRobot's own code (run in a venv with
lerobot 0.4.x; see benchmarks/lerobot/run.sh), offline:

    python check_lerobot.py EXPORT [EXPORT ...] [--backend pyav|torchcodec]

For each export: ``LeRobotDataset(root=...)`` loads it; every frame is read through LeRobot's
video decoder at the shape info.json declares; ``item["task"]`` is the episode's instruction
(a string); indices and timestamps are contiguous. With two or more exports,
``aggregate_datasets`` merges them and the merge passes the same checks; then
``delete_episodes`` removes its episode 1 and that result passes them too. Prints one line per
dataset and exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
_CACHE = tempfile.TemporaryDirectory(prefix="lerobot_check_cache_")
os.environ["HF_DATASETS_CACHE"] = _CACHE.name

import logging  # noqa: E402
import warnings  # noqa: E402

warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)

import torch  # noqa: E402
from lerobot.datasets.lerobot_dataset import LeRobotDataset  # noqa: E402


def check(
    root: Path, backend: str | None, label: str, expect: tuple[int, int] | None = None
) -> list[str]:
    errors: list[str] = []
    start = time.time()
    try:
        ds = LeRobotDataset(repo_id=f"local/{label}", root=root, video_backend=backend)
    except Exception as exc:  # noqa: BLE001
        return [f"{label}: LeRobotDataset cannot load it: {type(exc).__name__}: {exc}"]
    meta, info = ds.meta, ds.meta.info
    fps = info["fps"]

    def need(cond: bool, message: str) -> None:
        if not cond and len(errors) < 20:
            errors.append(f"{label}: {message}")

    need(isinstance(fps, int), f"fps is {type(fps).__name__}, not int")
    need(len(ds) == info["total_frames"], f"{len(ds)} frames, info says {info['total_frames']}")
    if expect:
        need(
            (info["total_episodes"], info["total_frames"]) == expect,
            f"totals {info['total_episodes']}, {info['total_frames']} != {expect}",
        )
    shapes = {}
    for key in meta.camera_keys:
        h, w, c = meta.features[key]["shape"]
        shapes[key] = (c, h, w)
        for stat in ("min", "max", "mean", "std"):
            v = (meta.stats or {}).get(key, {}).get(stat)
            need(
                v is not None and tuple(v.shape) == (3, 1, 1),
                f"stats {key}/{stat}: {None if v is None else v.shape}",
            )
    names = meta.features["observation.state"]["names"]
    need(
        isinstance(names, list)
        and all(isinstance(n, str) and not n.startswith("joint_") for n in names),
        f"state names {names}",
    )
    tasks = {}
    for row in range(len(meta.episodes)):
        ep = meta.episodes[row]
        tasks[int(ep["episode_index"])] = list(ep["tasks"])
        for key in meta.video_keys:
            span = (
                float(ep[f"videos/{key}/to_timestamp"]) - float(ep[f"videos/{key}/from_timestamp"])
            ) * fps
            need(
                round(span) == int(ep["length"]),
                f"episode {row} {key}: {span:.3f} frames of video for {ep['length']}",
            )
    decoded = 0
    for i in range(len(ds)):
        try:
            item = ds[i]
        except Exception as exc:  # noqa: BLE001
            need(False, f"frame {i}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
            continue
        e, f = int(item["episode_index"]), int(item["frame_index"])
        need(int(item["index"]) == i, f"frame {i}: index {int(item['index'])}")
        need(
            abs(float(item["timestamp"]) - f / fps) < 1e-4,
            f"frame {i}: timestamp {float(item['timestamp'])}",
        )
        task = item["task"]
        need(
            isinstance(task, str) and task in tasks.get(e, []),
            f"frame {i}: task {task!r}, episode {e} has {tasks.get(e)}",
        )
        for key, shape in shapes.items():
            img = item[key]
            ok = (
                isinstance(img, torch.Tensor)
                and tuple(img.shape) == shape
                and 0 <= float(img.min()) <= float(img.max()) <= 1
            )
            need(ok, f"frame {i}: {key} {getattr(img, 'shape', None)}, declared {shape}")
        decoded += 1
    print(
        f"{'FAIL' if errors else 'OK  '} {label}: {info['total_episodes']} episodes, "
        f"{decoded}/{len(ds)} frames decoded at {sorted(set(shapes.values()))}, "
        f"{info['total_tasks']} tasks, fps {fps}, backend {ds.video_backend} "
        f"({time.time() - start:.1f} s)",
        flush=True,
    )
    return errors


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("exports", nargs="+", type=Path)
    ap.add_argument("--backend", choices=["pyav", "torchcodec"], default=None)
    args = ap.parse_args()
    errors: list[str] = []
    totals = []
    for i, root in enumerate(args.exports):
        errors += check(root.resolve(), args.backend, f"export{i}")
        info = json.loads((root / "meta/info.json").read_text())
        totals.append((info["total_episodes"], info["total_frames"]))
    if len(args.exports) >= 2 and not errors:
        from lerobot.datasets.aggregate import aggregate_datasets
        from lerobot.datasets.dataset_tools import delete_episodes

        with tempfile.TemporaryDirectory(prefix="lerobot_check_") as tmp:
            merged = Path(tmp) / "merged"
            try:
                aggregate_datasets(
                    repo_ids=[f"local/src{i}" for i in range(len(args.exports))],
                    aggr_repo_id="local/merged",
                    roots=[p.resolve() for p in args.exports],
                    aggr_root=merged,
                )
            except Exception as exc:  # noqa: BLE001
                errors.append(f"aggregate_datasets: {type(exc).__name__}: {exc}")
            else:
                expect = (sum(t[0] for t in totals), sum(t[1] for t in totals))
                errors += check(merged, args.backend, "merged", expect)
                try:
                    source = LeRobotDataset("local/merged", root=merged, video_backend=args.backend)
                    lost = int(source.meta.episodes[1]["length"])
                    delete_episodes(
                        source,
                        episode_indices=[1],
                        output_dir=Path(tmp) / "edited",
                        repo_id="local/edited",
                    )
                except Exception as exc:  # noqa: BLE001
                    errors.append(f"delete_episodes: {type(exc).__name__}: {exc}")
                else:
                    errors += check(
                        Path(tmp) / "edited",
                        args.backend,
                        "edited",
                        (expect[0] - 1, expect[1] - lost),
                    )
    for e in errors:
        print("  - " + e)
    print("ALL OK" if not errors else "FAILED")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
