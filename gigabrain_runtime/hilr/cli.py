"""``gigabrain-runtime bag ...``: dispatch to the episode tools (list, info, label, recover),
the plot and the dataset export. Above them all, so none of them imports another's caller."""

from __future__ import annotations

import argparse
from pathlib import Path

from gigabrain_runtime.hilr import episodes


def _image_size(text: str) -> tuple[int, int] | None:
    if not text:
        return None
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"--image-size: expected HxW such as 224x224, got {text!r}") from None
    return h, w


def main(args: argparse.Namespace) -> int:
    cmd = args.bag_command
    if cmd == "list":
        return episodes.cmd_list(Path(args.dir))
    if cmd == "info":
        return episodes.cmd_info(Path(args.episode))
    if cmd == "label" and args.advantage:
        if not args.world_model or args.label:
            raise ValueError("bag label --advantage: give a directory and --world-model RUN")
        from gigabrain_runtime.hilr.labels import label_episodes  # torch

        done = label_episodes(
            Path(args.episode),
            Path(args.world_model),
            robot=args.robot,
            fps=args.fps,
            n_step=args.n_step,
            gamma=args.gamma,
            eps=args.eps,
        )
        share = sum(f for _, f in done) / len(done)
        print(f"labelled {len(done)} episodes; I = 1 on {100 * share:.0f}% of frames on average")
        return 0
    if cmd == "label":
        if args.label is None:
            raise ValueError("bag label: give the label (success or failure), or --advantage")
        return episodes.cmd_label(Path(args.episode), args.label)
    if cmd == "recover":
        return episodes.cmd_recover(Path(args.path))
    if cmd == "plot":
        from gigabrain_runtime.hilr.plot import plot_episode  # OpenCV: only when plotting

        plot_episode(Path(args.episode), Path(args.out))
        print(f"wrote {args.out}")
        return 0
    if cmd == "export":
        from gigabrain_runtime.hilr.lerobot_export import export_lerobot  # pyarrow, OpenCV

        export_lerobot(
            Path(args.dir),
            Path(args.out),
            fps=args.fps,
            image_size=_image_size(args.image_size),
            outcome=args.outcome,
        )
        return 0
    raise ValueError(f"bag: unknown command {cmd!r}")
