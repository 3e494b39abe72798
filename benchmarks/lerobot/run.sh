#!/usr/bin/env bash
# Check `bag export` against the real LeRobot: install lerobot 0.4.4 (the last release for
# Python 3.11; it pins torch < 2.11, so it gets its own venv), export episodes of mixed image
# sizes twice, and open, decode, merge and edit them with LeRobot's own code.
#
#   benchmarks/lerobot/run.sh [OUT]          (from the repository root, after `make venv`)
#
# LEROBOT_VENV (default .venv-lerobot) is created on first use: ~2 min and ~8 GB (torch with
# its CUDA libraries is the only torch 2.10 build on PyPI). LeRobot's default video decoder
# (torchcodec) needs FFmpeg's shared libraries (Debian: apt-get install ffmpeg); without them
# this checks with its PyAV decoder only.
set -euo pipefail
OUT=${1:-/tmp/gigabrain-lerobot-check}
VENV=${LEROBOT_VENV:-.venv-lerobot}
if [ ! -x "$VENV/bin/python" ]; then
  python3.11 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet "lerobot==0.4.4"
fi
"$VENV/bin/python" -c "import lerobot, importlib.metadata as m; print('lerobot', m.version('lerobot'))"
.venv/bin/python benchmarks/lerobot/make_exports.py "$OUT" 2>&1 | tail -2
export SVT_LOG=1
"$VENV/bin/python" benchmarks/lerobot/check_lerobot.py "$OUT/export_a" "$OUT/export_b" --backend pyav
if ldconfig -p | grep -q libavcodec; then
  "$VENV/bin/python" benchmarks/lerobot/check_lerobot.py "$OUT/export_a" "$OUT/export_b" --backend torchcodec
else
  echo "torchcodec: skipped (no FFmpeg shared libraries; apt-get install ffmpeg)"
fi
