"""Keep this process's CPU scheduling as it was across a call into native code.

SVT-AV1 (libsvtav1, the encoder of the LeRobot export's AV1 videos, reached through PyAV)
switches the thread that opens an encoder to SCHED_FIFO at the highest priority, 99, whenever
the process is allowed to (root, or CAP_SYS_NICE): seen with ``strace -k -e
sched_setscheduler``, ``pthread_setschedparam`` called from ``svt_av1_enc_init_handle``. The
encoder threads it starts next inherit it, and so does every process forked afterwards. A
``bag export`` beside a running robot would then outrank the executor's control thread
(SCHED_FIFO 40 in the simulated launch) and take a whole core from it, and a process that
exported once (a test run, the ``ramp`` loop's driver) would go on at priority 99.

:func:`keep_scheduling` undoes such a rise when the call returns: every thread of the process
that became real-time (FIFO or RR) during the call goes back to what it was before - a thread
started during the call, to what the calling thread was. Scheduling that was real-time before
the call, or that a call lowered, is left alone. Linux only (``/proc/self/task``); elsewhere it
does nothing.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

_TASKS = Path("/proc/self/task")
_REALTIME = frozenset(getattr(os, name) for name in ("SCHED_FIFO", "SCHED_RR") if hasattr(os, name))


def thread_scheduling() -> dict[int, tuple[int, int]]:
    """Each live thread of this process: native id -> (policy, priority)."""
    out = {}
    for entry in _TASKS.iterdir():
        tid = int(entry.name)
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            out[tid] = (os.sched_getscheduler(tid), os.sched_getparam(tid).sched_priority)
    return out


@contextlib.contextmanager
def keep_scheduling() -> Iterator[None]:
    if not _REALTIME or not _TASKS.is_dir():
        yield
        return
    before = thread_scheduling()
    caller = before.get(threading.get_native_id(), (os.SCHED_OTHER, 0))
    try:
        yield
    finally:
        for tid, now in thread_scheduling().items():
            was = before.get(tid, caller)
            if now[0] in _REALTIME and now != was and was[0] not in _REALTIME:
                with contextlib.suppress(OSError):  # lowering needs no privilege; gone: fine
                    os.sched_setscheduler(tid, was[0], os.sched_param(was[1]))
