"""Episodes on disk: finding and reading them; ``gigabrain-runtime bag list|info|label|recover``.

The plot and the dataset export build on :func:`read_episode`; the command dispatch is in
:mod:`gigabrain_runtime.hilr.cli`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from gigabrain_runtime.bags import open_bag
from gigabrain_runtime.hilr.recording import (
    METADATA,
    SIDECAR,
    read_sidecar,
    recover_episode,
    unfinished_episodes,
    write_sidecar,
)


def episode_dirs(root: Path) -> list[Path]:
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dir: no such directory {root}")
    if (root / SIDECAR).is_file() or any(root.glob("*.mcap")):
        return [root]
    return sorted(
        d
        for d in root.iterdir()
        if d.is_dir() and ((d / SIDECAR).is_file() or any(d.glob("*.mcap")))
    )


def episode_rows(root: Path) -> list[dict[str, Any]]:
    """One row per episode under ``root``: name, status, duration, outcome, label and
    interventions (``bag list`` prints them; the console serves them)."""
    rows = []
    for d in episode_dirs(root):
        try:
            info = read_sidecar(d)
        except FileNotFoundError:
            rows.append({"episode": d.name, "status": "no metadata"})
            continue
        rows.append(
            {
                "episode": info.episode,
                "directory": d.name,
                "status": info.status if (d / METADATA).is_file() else "unfinished",
                "duration_s": round(info.duration_s, 1),
                "outcome": info.outcome,
                "detector": info.detector,
                "label": info.label,
                "interventions": len(info.interventions),
            }
        )
    return rows


def cmd_list(root: Path) -> int:
    rows = episode_rows(root)
    if not rows:
        print(f"no episodes in {root}")
        return 0
    head = (
        f"{'episode':<34} {'status':<10} {'duration':>9} {'outcome':<8} {'label':<8} "
        f"{'interventions':>13}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        if "outcome" not in r:
            print(f"{r['episode']:<34} {r['status']:<10}")
            continue
        print(
            f"{r['episode']:<34} {r['status']:<10} {r['duration_s']:8.1f}s {r['outcome']:<8} "
            f"{r['label'] or '-':<8} {r['interventions']:>13}"
        )
    return 0


def cmd_info(ep: Path) -> int:
    info = read_sidecar(ep)
    meta = yaml.safe_load((ep / METADATA).read_text()) if (ep / METADATA).is_file() else None
    print(json.dumps(info.to_dict(), indent=2))
    if meta:
        bag = meta["rosbag2_bagfile_information"]
        print(
            f"rosbag2: {bag['message_count']} messages, "
            f"{bag['duration']['nanoseconds'] / 1e9:.2f} s, storage {bag['storage_identifier']}"
        )
        for t in bag["topics_with_message_count"]:
            md = t["topic_metadata"]
            print(f"  {md['name']:<42} {md['type']:<38} {t['message_count']:>7}")
    else:
        print("no metadata.yaml: the episode did not finish; run `gigabrain-runtime bag recover`")
    return 0


def cmd_label(ep: Path, label: str) -> int:
    info = read_sidecar(ep)
    info.label = label
    write_sidecar(ep, info)
    meta_path = ep / METADATA
    if meta_path.is_file():  # keep the bag's custom_data in step with the sidecar
        meta = yaml.safe_load(meta_path.read_text())
        custom = meta["rosbag2_bagfile_information"].setdefault("custom_data", {}) or {}
        custom["label"] = label
        meta["rosbag2_bagfile_information"]["custom_data"] = custom
        meta_path.write_text(yaml.safe_dump(meta, sort_keys=False))
    print(f"{info.episode}: label = {label}")
    return 0


def cmd_recover(path: Path) -> int:
    path = Path(path)
    targets = [path] if any(path.glob("*.mcap")) else unfinished_episodes(path)
    if not targets:
        print(f"nothing to recover in {path}")
        return 0
    for ep in targets:
        report = recover_episode(ep)
        print(f"recovered {ep.name}: {report.messages} messages over {report.duration_s:.2f} s")
        for topic, n in sorted(report.per_topic.items()):
            print(f"  {topic:<42} {n:>7}")
    return 0


def read_episode(ep: Path) -> dict[str, list[tuple[int, Any]]]:
    """Every message of a finished episode, deserialized: per topic, a list of (log time ns,
    message) in time order. ValueError for an episode without metadata.yaml (unfinished)."""
    if not (ep / METADATA).is_file():
        raise ValueError(f"episode {ep}: no metadata.yaml (run `gigabrain-runtime bag recover`)")
    out: dict[str, list[tuple[int, Any]]] = {}
    with open_bag(ep) as bag:
        for m in bag.messages():
            out.setdefault(m.topic, []).append((m.log_time_ns, m.msg))
    return out
