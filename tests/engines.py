"""The engines a test session shares, and their export ahead of need.

Exporting an engine is torch.export work on one core (a minute for the tiny preset on a 2-core
machine) while most tests before the first one that needs it leave the other core idle. As
collection ends, tests/conftest.py starts ``python -m tests.engines DIR NAME...`` (at a lower
CPU priority) for the session fixtures the selected tests use, in the order they are first
needed; each fixture then takes its engine from DIR: waiting for it if another test's worker
is making it, exporting it there itself if nobody has started it yet or the background export
is at it (which it then stops: see :func:`settle`), and exporting it elsewhere if its export
failed (the reason is printed). Under xdist the workers share DIR (the controller makes
it, :data:`DIRECTORY`): the first worker to claim it starts the background export.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import traceback
from pathlib import Path

GIGABRAIN0_FIXTURE = Path(__file__).resolve().parent / "fixtures" / "gigabrain0"
# the environment variable naming the run's export directory (tests/conftest.py)
DIRECTORY = "GIGABRAIN_TEST_ENGINES"


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
    """The background export of some of :data:`NAMES` into ``base``, shared by every process of
    the test run: the first to claim ``base`` starts the export, the others wait on its files.

    A worker whose test needs an engine nobody has started exports it itself (at its own
    priority, not the background's), and one the background is exporting too, after stopping
    the background; one that another worker is exporting it waits for (:func:`settle`). The
    exporter holds an exclusive lock on ``base/lock`` for as long as it runs (taken before it
    starts, handed to it as an open file), so that :func:`end` stops it, and only it, when a
    worker takes its export over or the run is over."""

    def __init__(self, base: Path, names: list[str]) -> None:
        self.base, self.names = base, names
        self.proc: subprocess.Popen | None = None
        try:
            (base / "claimed").mkdir()
        except FileExistsError:
            return  # another worker of this run started it
        lock = os.open(base / "lock", os.O_CREAT | os.O_RDWR)
        pid = "none"
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tests.engines", str(base), *names],
                cwd=Path(__file__).resolve().parents[1],
                stdout=subprocess.DEVNULL,
                pass_fds=(lock,),  # the lock lives as long as the exporter
            )
            pid = str(self.proc.pid)
        finally:
            os.close(lock)
            (base / "pid.tmp").write_text(pid)
            (base / "pid.tmp").rename(base / "pid")

    def take(self, name: str) -> Path | None:
        """``name``'s engine once exported (here, if no other process of the run has started
        it); None (with the reason printed) if its export failed."""
        if name not in self.names:
            return None
        settle(self.base, name, wait=True)
        if (self.base / f"{name}.done").exists():
            return self.base / name
        reason = (self.base / f"{name}.failed").read_text()
        print(f"tests.engines: {name} was not exported ahead ({reason}); exporting it here")
        return None


def settle(base: Path, name: str, wait: bool, ahead: bool = False) -> None:
    """See that ``base/name`` gets exported, once per run: export it here unless another
    process of the run is exporting it (its lock on ``name.lock`` held); then wait for that
    process to end the export if ``wait``, else leave it to it. Ends with ``name.done`` or
    ``name.failed`` written, unless it left the export to another process.

    ``ahead``: this is the background exporter, which runs at a lower priority; it marks the
    engine it is exporting (``name.ahead``) and a test's worker that would wait for it stops it
    and exports the engine itself: on a busy machine the background's share of a core is small
    and the worker, blocked, would wait on it for minutes (a priority inversion)."""
    done, failed = base / f"{name}.done", base / f"{name}.failed"
    marker = base / f"{name}.ahead"
    while not (done.exists() or failed.exists()):
        fd = os.open(base / f"{name}.lock", os.O_CREAT | os.O_RDWR)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if not wait:
                    return
                if marker.exists():
                    # the background has it (or had it and died: end() then does nothing)
                    print(f"tests.engines: {name} is needed now; exporting it here, not ahead")
                    end(base)
                    marker.unlink(missing_ok=True)  # (a killed exporter leaves it)
                fcntl.flock(fd, fcntl.LOCK_SH)  # until it ends (or its process dies)
                continue
            if done.exists() or failed.exists():
                continue  # it ended between the check and the lock
            if ahead:
                marker.write_text("")  # (before the slow part: a waiter may come any time)
            shutil.rmtree(base / name, ignore_errors=True)  # a process that died half-way
            try:
                export(name, base / name)
            except Exception:
                failed.write_text(traceback.format_exc())
            else:
                done.write_text("")
            finally:
                marker.unlink(missing_ok=True)
        finally:
            os.close(fd)  # (releases the lock)


def _locked(path: Path) -> bool:
    """Someone holds ``path``'s exclusive lock (for ``base/lock``: the exporter is running)."""
    fd = os.open(path, os.O_CREAT | os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # (closing also releases a lock just taken)
    return False


def end(base: Path) -> None:
    """Stop the run's background export, if still running: the run is over (no test will wait
    for it), or a worker takes over the engine it is making."""
    try:  # (written as the export starts; none: nothing was started, or not started)
        pid = (base / "pid").read_text()
    except FileNotFoundError:
        return
    if pid == "none" or not _locked(base / "lock"):
        return
    with contextlib.suppress(ProcessLookupError):  # (it may end on its own meanwhile)
        os.kill(int(pid), signal.SIGKILL)  # the lock is held: the pid is the exporter's
    fd = os.open(base / "lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)  # released once it has exited
    finally:
        os.close(fd)


def main(argv: list[str]) -> int:
    os.nice(10)  # the tests in the foreground come first
    base, names = Path(argv[0]), argv[1:]
    for name in names:
        settle(base, name, wait=False, ahead=True)  # (one a worker is exporting: skipped)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
