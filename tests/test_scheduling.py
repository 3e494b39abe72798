"""A native call that raises this process's threads to real-time priority is undone when it
returns: an AV1 export (SVT-AV1 makes itself SCHED_FIFO 99 as root) on the robot's computer
never outranks the control loop, and a process that exported once does not go on at 99."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

from gigabrain_runtime.scheduling import keep_scheduling, thread_scheduling

REALTIME = (os.SCHED_FIFO, os.SCHED_RR)


def _may_go_realtime() -> bool:
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
    except OSError:
        return False
    os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    return True


pytestmark = pytest.mark.skipif(
    not _may_go_realtime(), reason="this process may not use SCHED_FIFO (no root or CAP_SYS_NICE)"
)


def _normal() -> None:
    os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))


def test_a_rise_to_real_time_is_undone_for_the_caller_and_the_threads_it_started():
    started, release = threading.Event(), threading.Event()
    tid = []

    def worker():
        tid.append(threading.get_native_id())
        started.set()
        release.wait()

    t = threading.Thread(target=worker)
    try:
        with keep_scheduling():
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(99))
            t.start()
            assert started.wait(10)
            assert os.sched_getscheduler(tid[0]) == os.SCHED_FIFO  # inherited from the caller
        assert os.sched_getscheduler(0) == os.SCHED_OTHER
        assert os.sched_getscheduler(tid[0]) == os.SCHED_OTHER
    finally:
        _normal()
        release.set()
        t.join()


def test_real_time_chosen_before_the_call_is_left_alone():
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(5))
        with keep_scheduling():
            pass
        assert (os.sched_getscheduler(0), os.sched_getparam(0).sched_priority) == (
            os.SCHED_FIFO,
            5,
        )
    finally:
        _normal()


def test_an_av1_export_leaves_every_thread_at_normal_priority(tmp_path):
    from gigabrain_runtime.hilr.lerobot_export import _VideoWriter

    # threads real-time before the export stay so (Fast DDS's shared-memory watchdog makes
    # itself SCHED_FIFO 99 once a test has started rclpy): only a rise by the encoder counts
    was = {t for t, (p, _) in thread_scheduling().items() if p in REALTIME}
    writer = _VideoWriter(tmp_path / "cam.mp4", fps=15, height=64, width=64)
    try:
        for k in range(4):
            writer.write(np.full((64, 64, 3), 40 * k, np.uint8))
        raised = {t: s for t, s in thread_scheduling().items() if s[0] in REALTIME and t not in was}
        assert not raised, f"threads left real-time by the encoder: {raised}"
        assert os.sched_getscheduler(0) == os.SCHED_OTHER
    finally:
        writer.close()
        _normal()
