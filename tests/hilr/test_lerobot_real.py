"""The export opened by the real LeRobot, where it is installed (its own venv: lerobot pins
torch < 2.11). Runs when ``.venv-lerobot`` exists (``make lerobot-check`` creates it) or
LEROBOT_PYTHON names a Python with lerobot; skipped elsewhere (CI)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYTHON = Path(os.environ.get("LEROBOT_PYTHON", ROOT / ".venv-lerobot/bin/python"))

pytestmark = pytest.mark.skipif(
    not PYTHON.is_file(), reason=f"no LeRobot venv ({PYTHON}); make lerobot-check creates one"
)


def test_lerobot_loads_decodes_merges_and_edits_two_exports(tmp_path):
    subprocess.run(
        [sys.executable, str(ROOT / "benchmarks/lerobot/make_exports.py"), str(tmp_path / "x")],
        check=True,
        cwd=ROOT,
        capture_output=True,
        timeout=600,
    )
    out = subprocess.run(
        [
            str(PYTHON),
            str(ROOT / "benchmarks/lerobot/check_lerobot.py"),
            str(tmp_path / "x/export_a"),
            str(tmp_path / "x/export_b"),
            "--backend",
            "pyav",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "SVT_LOG": "1"},
    )
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith(("OK", "FAIL", "  -", "ALL"))]
    assert out.returncode == 0 and lines[-1] == "ALL OK", "\n".join(lines) + out.stderr[-2000:]
    assert sum(ln.startswith("OK") for ln in lines) == 4  # two exports, the merge, the edit
