"""``bag plot``: joint trajectories of an episode, intervention segments shaded, boundaries marked.

Drawn with OpenCV (already a dependency) rather than a plotting library: one panel per joint,
measured position (grey) and command (blue), operator takeovers shaded orange with the takeover
and hand-back instants as vertical lines.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from gigabrain_runtime.hilr.episodes import read_episode
from gigabrain_runtime.hilr.recording import read_sidecar

W, PANEL_H, MARGIN = 1200, 110, 60


def _series(msgs: list, t0: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    if not msgs:
        return np.zeros(0), np.zeros((0, 0)), []
    names = list(msgs[0][1].name)
    t = np.array([(ts - t0) * 1e-9 for ts, _ in msgs])
    pos = np.array(
        [np.asarray(m.position, float) for _, m in msgs if len(m.position) == len(names)]
    )
    return t[: len(pos)], pos, names


def plot_episode(ep: Path, out: Path) -> None:
    data = read_episode(ep)
    info = read_sidecar(ep)
    topics = {
        t.rsplit("/", 1)[-1] if not t.endswith("joint_command") else t: m for t, m in data.items()
    }
    state = next((m for t, m in data.items() if t.endswith("/joint_states")), [])
    command = next(
        (m for t, m in data.items() if t.endswith("/joint_command") and "/teleop/" not in t), []
    )
    active = next((m for t, m in data.items() if t.endswith("/intervention/active")), [])
    if not state and not command:
        raise ValueError(f"episode {ep}: no joint_states or joint_command to plot")
    t0 = min(x[0][0] for x in (state, command) if x)
    ts, ps, names = _series(state, t0)
    tc, pc, cnames = _series(command, t0)
    names = names or cnames
    t_end = max((ts[-1] if ts.size else 0), (tc[-1] if tc.size else 0), 1e-3)
    segments, start = [], None
    for ts_ns, msg in active:
        t = (ts_ns - t0) * 1e-9
        if msg.data and start is None:
            start = t
        elif not msg.data and start is not None:
            segments.append((start, t))
            start = None
    if start is not None:
        segments.append((start, t_end))
    h = MARGIN + PANEL_H * len(names) + 30
    img = np.full((h, W, 3), 255, np.uint8)

    def x_of(t: float) -> int:
        return int(MARGIN + (W - 2 * MARGIN) * t / t_end)

    for a, b in segments:
        cv2.rectangle(img, (x_of(a), MARGIN - 10), (x_of(b), h - 30), (180, 220, 255), -1)
        for t in (a, b):
            cv2.line(img, (x_of(t), MARGIN - 10), (x_of(t), h - 30), (0, 120, 255), 1)
    title = (
        f"{info.episode}  outcome {info.outcome}  {len(segments)} takeover(s)  "
        f"{info.duration_s:.1f} s"
    )
    cv2.putText(img, title, (MARGIN, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1)
    for j, name in enumerate(names):
        top = MARGIN + j * PANEL_H
        bottom = top + PANEL_H - 15
        series = [
            (ts, ps[:, j] if ps.size else None, (150, 150, 150)),
            (tc, pc[:, j] if pc.size else None, (200, 80, 0)),
        ]
        vals = np.concatenate([v for _, v, _ in series if v is not None and v.size])
        lo, hi = float(vals.min()), float(vals.max())
        span = max(hi - lo, 1e-6)
        cv2.rectangle(img, (MARGIN, top), (W - MARGIN, bottom), (0, 0, 0), 1)
        cv2.putText(img, name, (5, top + 15), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
        cv2.putText(
            img,
            f"{hi:.2f}",
            (W - MARGIN + 5, top + 10),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.35,
            (0, 0, 0),
            1,
        )
        cv2.putText(
            img, f"{lo:.2f}", (W - MARGIN + 5, bottom), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1
        )
        for t, v, color in series:
            if v is None or not v.size:
                continue
            pts = np.stack(
                [
                    [x_of(x) for x in t],
                    [int(bottom - (y - lo) / span * (bottom - top - 4) - 2) for y in v],
                ],
                axis=1,
            ).astype(np.int32)
            cv2.polylines(img, [pts], False, color, 1, cv2.LINE_AA)
    cv2.putText(
        img,
        "grey: measured   blue: command   orange: operator takeover",
        (MARGIN, h - 10),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.45,
        (0, 0, 0),
        1,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), img):
        raise ValueError(f"out: could not write {out}")
    del topics
