"""The engines a test session shares, and their export ahead of need.

Exporting an engine is torch.export work on one core (a minute for the tiny preset on a 2-core
machine) while most tests before the first one that needs it leave the other core idle. As
collection ends, tests/conftest.py starts ``python -m tests.engines DIR NAME...`` (at a lower
CPU priority) for the session fixtures the selected tests use, in the order they are first
needed; each fixture then takes its engine from DIR, waiting for it if it is still being made,
and exports it itself if the background export failed (the reason is printed).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import traceback
from pathlib import Path

GIGABRAIN0_FIXTURE = Path(__file__).resolve().parent / "fixtures" / "gigabrain0"


# the tiny preset's engines by layout, and the GigaBrain-0 fixture checkpoint's
LAYOUTS = {"tiny_engine": "fused", "tiny_split_engine": "split"}
NAMES = (*LAYOUTS, "gb0_engine")


def export(name: str, out: Path) -> Path:
    """Export the session engine ``name`` into ``out``; returns ``out``."""
    from gigabrain_runtime.inference.export import checkpoint_source, export_source, preset_source
    from gigabrain_runtime.model.presets import get_preset

    if name == "gb0_engine":
        # the fixture checkpoint without the graph optimiser: as the released 3.5 B
        # checkpoint is exported (--optimize auto skips it above 1 B parameters)
        export_source(checkpoint_source(GIGABRAIN0_FIXTURE, hash_files=True), out, optimize=False)
    else:
        # the tiny preset without onnxscript's optimiser: the same maths (it folds and fuses;
        # parity on optimised graphs is checked in test_export_parity) in 40 % of the time
        layout = LAYOUTS[name]
        export_source(preset_source(get_preset("tiny")), out, layout=layout, optimize=False)
    return out


class Ahead:
    """The background export of some of :data:`NAMES` into ``base``."""

    def __init__(self, base: Path, names: list[str]) -> None:
        self.base, self.names = base, names
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.engines", str(base), *names],
            cwd=Path(__file__).resolve().parents[1],
            preexec_fn=lambda: os.nice(10),  # the tests in the foreground come first
            stdout=subprocess.DEVNULL,
        )

    def take(self, name: str) -> Path | None:
        """``name``'s engine once exported; None (with the reason printed) if it was not."""
        if name not in self.names:
            return None
        done, failed = self.base / f"{name}.done", self.base / f"{name}.failed"
        while not (done.exists() or failed.exists() or self.proc.poll() is not None):
            time.sleep(0.1)  # until the export of this engine ends, however long it takes
        if done.exists():
            return self.base / name
        reason = failed.read_text() if failed.exists() else f"exit status {self.proc.returncode}"
        print(f"tests.engines: {name} was not exported ahead ({reason}); exporting it here")
        return None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def main(argv: list[str]) -> int:
    base, names = Path(argv[0]), argv[1:]
    for name in names:
        try:
            export(name, base / name)
        except Exception:
            (base / f"{name}.failed").write_text(traceback.format_exc())
        else:
            (base / f"{name}.done").write_text("")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
