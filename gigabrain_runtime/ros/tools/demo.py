"""``gigabrain-runtime demo``: the whole control graph in one command.

Starts ``launch/sim_<robot>.launch.yaml`` (sim + vla + executor, each its own process, exactly
as a user would launch them), publishes the instruction, and watches the graph from this
process like any other ROS 2 participant: a live status line, then a summary built from what
arrived on the wire and from the nodes' /diagnostics.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections import deque
from pathlib import Path

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, String
from trajectory_msgs.msg import JointTrajectory

from gigabrain_runtime.launching.launch_file import load_launch, package_share
from gigabrain_runtime.launching.runner import LaunchRunner
from gigabrain_runtime.robots.embodiment import get_embodiment
from gigabrain_runtime.ros import qos
from gigabrain_runtime.ros.node_utils import use_project_dds_profile

INSTRUCTION = "pick up the red cube and put it in the bowl"
# how long the nodes may take to start (engine load, discovery, five chunks, the recorder
# matched) before the demo gives up; the episode's own duration starts after it
STARTUP_LIMIT_S = 120.0


class Monitor(Node):
    def __init__(self, ns: str, instruction: str) -> None:
        super().__init__("demo_monitor", namespace=ns)
        self.lock = threading.Lock()
        self.chunks: deque[float] = deque()
        self.commands: deque[float] = deque()
        self.command_positions: list[np.ndarray] = []
        self.command_stamps: list[float] = []
        self.n_chunks = 0
        self.n_commands = 0
        self.diag: dict[str, dict[str, str]] = {}
        self.levels: dict[str, int] = {}
        self.messages: dict[str, str] = {}
        pub = self.create_publisher(String, "instruction", qos.LATCHED)
        pub.publish(String(data=instruction))
        self._instruction_pub = pub
        self.event_pub = self.create_publisher(String, "episode/event", qos.COMMAND)
        self.engage_pub = self.create_publisher(Bool, "intervention/engage", qos.LATCHED)
        self.create_subscription(JointTrajectory, "action_chunk", self._on_chunk, qos.COMMAND)
        self.create_subscription(JointState, "joint_command", self._on_command, qos.COMMAND)
        self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, qos.DIAGNOSTICS)

    def _on_chunk(self, msg: JointTrajectory) -> None:
        if msg.points:
            with self.lock:
                self.chunks.append(time.monotonic())
                self.n_chunks += 1

    def _on_command(self, msg: JointState) -> None:
        with self.lock:
            self.commands.append(time.monotonic())
            self.n_commands += 1
            self.command_positions.append(np.asarray(msg.position))
            self.command_stamps.append(msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9)

    def _on_diag(self, msg: DiagnosticArray) -> None:
        with self.lock:
            for st in msg.status:
                key = st.name.split(": ", 1)[-1]
                self.diag[key] = {kv.key: kv.value for kv in st.values}
                self.levels[key] = st.level[0] if isinstance(st.level, bytes) else int(st.level)
                self.messages[key] = st.message

    def rate(self, which: deque[float], window: float = 2.0) -> float:
        now = time.monotonic()
        with self.lock:
            while which and now - which[0] > window:
                which.popleft()
            return len(which) / window

    def value(self, status: str, key: str, default: str = "-") -> str:
        with self.lock:
            return self.diag.get(status, {}).get(key, default)


def _free_port(port: int) -> int:
    """``port`` if nothing listens there, else one the system has free."""
    import socket

    for candidate in (port, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise OSError("console_port: no free port")


def run_demo(
    robot: str,
    mode: str,
    duration_s: float,
    engine: Path,
    record_dir: Path = Path("recordings"),
    takeover_at_s: float | None = None,
    takeover_s: float = 5.0,
    task_seed: int = 0,
    policy: str = "the engine",
    console_port: int | None = 8080,
) -> int:
    """... ``console_port``: serve the operator console there (taken: the next free one;
    None: no console)."""
    emb = get_embodiment(robot)
    share = package_share("gigabrain_runtime")
    launch_file = share / "launch" / f"sim_{robot}.launch.yaml"
    if not launch_file.is_file():
        raise ValueError(f"robot: no simulation launch file for {robot!r} ({launch_file})")
    nodes = load_launch(
        launch_file,
        {
            "mode": mode,
            "engine": str(engine),
            "record_dir": str(record_dir),
            "task_seed": str(task_seed),
            **(
                {"console": "true", "console_port": str(_free_port(console_port))}
                if console_port is not None
                else {}
            ),
        },
    )
    console_url = next(
        (
            f"http://localhost:{n.params.get('port')}/"
            for n in nodes
            if n.name == "console" and n.params.get("port") is not None
        ),
        None,
    )
    ns = nodes[0].namespace
    log_path = Path("logs") / f"demo-{robot}-{time.strftime('%Y%m%d-%H%M%S')}.log"
    log_path.parent.mkdir(exist_ok=True)
    log = log_path.open("w")
    use_project_dds_profile()
    runner = LaunchRunner(nodes, out=log)
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:  # noqa: ARG001
        stop.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    print(
        f"demo: simulated {robot} under {policy} ({mode} mode), onnxruntime on the CPU; "
        f"nodes: {', '.join(n.fqn for n in nodes)}; logs: {log_path}"
    )
    takeover = (
        "no operator takeover"
        if takeover_at_s is None
        else f"an operator takeover {takeover_at_s:g} s after it starts, for {takeover_s:g} s"
    )
    print(
        f"instruction: {INSTRUCTION!r}; task episode seed {task_seed}; an episode is recorded "
        f"to {record_dir}/ with {takeover}; it ends at the task's detected success or "
        f"{duration_s:g} s after it starts (start-up not counted, at most "
        f"{STARTUP_LIMIT_S:g} s); Ctrl-C stops early"
    )
    if console_url:
        print(f"console: {console_url} (open it in a browser while the demo runs)")
    rclpy.init()
    monitor = Monitor(ns, INSTRUCTION)
    executor = SingleThreadedExecutor()
    executor.add_node(monitor)
    spin = threading.Thread(target=executor.spin, daemon=True)
    spin.start()
    started = time.monotonic()
    runner.start()
    first_chunk_t = None
    verdict, task_state = "-", "-"
    episode_t0: float | None = None
    phase = "policy"
    success_t: float | None = None  # when the detector first said success
    success_after = 0.0  # ... counted from the episode's start, as its duration is
    try:
        while not stop.is_set():
            stop.wait(0.5)
            now = time.monotonic()
            # the episode's duration counts from its start: a busy machine's slow start-up
            # (nodes, engine load, discovery) does not eat into the takeover or the task
            if episode_t0 is not None and now - episode_t0 >= duration_s:
                break
            if episode_t0 is None and now - started >= STARTUP_LIMIT_S:
                print(
                    f"\nthe episode did not start within {STARTUP_LIMIT_S:g} s (chunks "
                    f"received: {monitor.n_chunks}; the recorder matched: "
                    f"{monitor.event_pub.get_subscription_count() > 0}); see {log_path}"
                )
                break
            if episode_t0 is None and monitor.n_chunks >= 5:
                # an event reaches only readers already matched: wait for the recorder, send,
                # and confirm through its /diagnostics (re-sent below if it did not arrive)
                if monitor.event_pub.get_subscription_count() > 0:
                    monitor.event_pub.publish(String(data="start"))
                    episode_t0 = now
            elif (
                episode_t0 is not None
                and phase == "policy"
                and now - episode_t0 > 2.0
                and monitor.value("recorder", "recording") == "false"
            ):
                monitor.event_pub.publish(String(data="start"))
                episode_t0 = now
            elif episode_t0 is not None and takeover_at_s is not None:
                if phase == "policy" and now - episode_t0 >= takeover_at_s:
                    monitor.engage_pub.publish(Bool(data=True))
                    phase = "operator"
                elif phase == "operator" and now - episode_t0 >= takeover_at_s + takeover_s:
                    monitor.engage_pub.publish(Bool(data=False))
                    phase = "handed back"
            if episode_t0 is not None and monitor.value("simulator", "task_success") == "true":
                # the detector holds success only once the cube rests in the bowl: done
                if success_t is None:
                    success_t, success_after = now, now - episode_t0
                elif now - success_t >= 1.0:
                    break
            if not all(runner.alive().values()):
                dead = [k for k, v in runner.alive().items() if not v]
                print(f"\nnode(s) exited: {', '.join(dead)} (see {log_path})")
                break
            if first_chunk_t is None and monitor.n_chunks:
                first_chunk_t = time.monotonic() - started
            line = (
                f"\r[{time.monotonic() - started:5.1f}s]"
                f" chunks {monitor.rate(monitor.chunks):4.1f} Hz"
                f" | commands {monitor.rate(monitor.commands):5.1f} Hz"
                f" | inference p50 {monitor.value('inference', 'latency_p50_ms')} ms"
                f" | mode {monitor.value('inference', 'effective_mode')}"
                f" | cameras {monitor.value('simulator', 'camera_hz')} Hz"
                f" | executor {monitor.value('executor', 'state')}"
                f" | recording {monitor.value('recorder', 'recording')}   "
            )
            sys.stdout.write(line)
            sys.stdout.flush()
        print()
        # the outcome is the task's success detector's (the sim node's), never the script's
        verdict = monitor.value("simulator", "task_success")
        task_state = monitor.value("simulator", "task_state")
        if episode_t0 is not None:
            if phase == "operator":
                monitor.engage_pub.publish(Bool(data=False))
            outcome = {"true": "success", "false": "failure"}.get(verdict, "abort")
            monitor.event_pub.publish(String(data=outcome))
            time.sleep(1.0)  # let the recorder close the episode
        summary = {
            "chunks": monitor.n_chunks,
            "commands": monitor.n_commands,
            "inference_p50_ms": monitor.value("inference", "latency_p50_ms"),
            "inference_p99_ms": monitor.value("inference", "latency_p99_ms"),
            "obs_to_chunk_p50_ms": monitor.value("inference", "obs_to_chunk_p50_ms"),
            "jitter_p99_ms": monitor.value("executor", "period_jitter_p99_ms"),
            "deadline_misses": monitor.value("executor", "deadline_misses"),
            "watchdog_events": monitor.value("executor", "watchdog_events"),
            "inference_deadline_misses": monitor.value("inference", "deadline_misses"),
            "takeovers": monitor.value("executor", "takeovers"),
        }
        with monitor.lock:
            cmds = np.stack(monitor.command_positions) if monitor.command_positions else None
            stamps = np.asarray(monitor.command_stamps)
    finally:
        code = runner.stop()
        executor.shutdown(timeout_sec=2.0)
        spin.join(timeout=2.0)
        monitor.destroy_node()
        rclpy.try_shutdown()
        log.close()
        for s, h in old.items():
            signal.signal(s, h)
    elapsed = time.monotonic() - started
    travel, max_step, gaps = 0.0, np.zeros(emb.dof), 0
    period = 1.0 / 50.0
    if cmds is not None and len(cmds) > 1:
        steps = np.abs(np.diff(cmds, axis=0))
        travel = float(steps.sum())
        # a step is measured between consecutive control periods only: a command this process
        # did not receive (it is a monitor, not the robot) would otherwise look like a jump
        consecutive = np.diff(stamps) < 1.5 * period
        gaps = int((~consecutive).sum())
        if consecutive.any():
            max_step = steps[consecutive].max(axis=0)
    step_limit = emb.max_velocity * period
    print(f"summary after {elapsed:.1f} s ({robot}, {mode} mode):")
    print(
        f"  chunks received        {summary['chunks']}"
        f" (first after {first_chunk_t or float('nan'):.1f} s)"
    )
    print(f"  joint commands         {summary['commands']}")
    print(
        f"  inference latency      p50 {summary['inference_p50_ms']} ms, "
        f"p99 {summary['inference_p99_ms']} ms (observation to chunk p50 "
        f"{summary['obs_to_chunk_p50_ms']} ms)"
    )
    print(
        f"  control period jitter  p99 {summary['jitter_p99_ms']} ms, deadline misses "
        f"{summary['deadline_misses']}"
    )
    print(f"  watchdog events        {summary['watchdog_events']}")
    print(f"  operator takeovers     {summary['takeovers']} (each with a hand-back)")
    judged = {"true": "success", "false": "failure"}.get(verdict)
    took = f" {success_after:.1f} s into the episode" if success_t is not None else ""
    print(
        f"  task (detector)        {judged}{took if judged == 'success' else ''}: {task_state}"
        if judged
        else "  task (detector)        none in this scene: the episode is not judged (abort)"
    )
    print(
        f"  joint travel           {travel:.2f} (rad + m), largest step per joint "
        f"{np.array2string(max_step, precision=4)} (limit x period "
        f"{np.array2string(step_limit, precision=4)}; {gaps} gaps in what this monitor "
        "received)"
    )
    print(f"  node logs              {log_path}")
    print(f"episodes in {record_dir}/ (gigabrain-runtime bag list {record_dir}):")
    from gigabrain_runtime.hilr.episodes import cmd_list

    cmd_list(record_dir)
    ok = summary["chunks"] > 0 and summary["commands"] > 0
    if not ok:
        print("demo FAILED: no chunks or no commands arrived (see the node logs)")
        return 1
    if episode_t0 is None and not stop.is_set():
        print("demo FAILED: the episode never started (see above and the node logs)")
        return 1
    return 0 if code in (0, 2, 130) or stop.is_set() else code
