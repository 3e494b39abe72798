"""``gigabrain-runtime eval`` through the real graph: the simulated robot's launch file (sim,
operator, vla, executor, intervention, recorder - one process each, as a user launches them)
and, in this process, an evaluator that runs the episodes the way an operator would:

for each seed: e-stop (the executor freezes its command), ``task/reset`` the seed, wait until
the simulator's joint states and a chunk computed from a frame after the reset have arrived,
release the e-stop (the executor starts from the measured pose and drops older chunks), send
``episode/event start``; the episode ends when ``task/success`` has held for ``SETTLE_S`` or at
the task's time limit, with ``success``/``failure`` sent for the recorder. Measured per episode
from what arrived on the wire: success, time to success, the executor's watchdog and open-loop
stops, and the largest joint acceleration in the executor's commands as a fraction of the joint
limits.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, Int32, String
from trajectory_msgs.msg import JointTrajectory

from gigabrain_runtime.diagnostics.stats import Level
from gigabrain_runtime.hilr.monitor import Action, FailureMonitor, MonitorConfig
from gigabrain_runtime.launching.launch_file import load_launch, package_share
from gigabrain_runtime.launching.runner import LaunchRunner
from gigabrain_runtime.robots.embodiment import get_embodiment
from gigabrain_runtime.ros import qos
from gigabrain_runtime.ros.convert import joint_positions
from gigabrain_runtime.ros.node_utils import use_project_dds_profile
from gigabrain_runtime.sim.evaluate import DEFAULT_INFERENCE_HZ, EpisodeResult, EvalSummary
from gigabrain_runtime.sim.expert import grasp_point, pick_and_place
from gigabrain_runtime.sim.simulator import Simulator
from gigabrain_runtime.sim.task import SETTLE_S

# after the operator's plan: the release, the cube coming to rest and success holding SETTLE_S
CORRECTION_MARGIN_S = 3.0


def _stamp(msg) -> float:  # noqa: ANN001
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


class Evaluator(Node):
    def __init__(self, ns: str, instruction: str, joint_names: list[str]) -> None:
        super().__init__("evaluator", namespace=ns)
        self.joint_names = joint_names
        self.lock = threading.Lock()
        self.success: list[tuple[float, bool]] = []  # (arrival, verdict)
        self.commands: list[tuple[float, np.ndarray]] = []  # (stamp, positions)
        self.state_stamps: list[float] = []
        self.positions: np.ndarray | None = None  # the last joint_states
        self.objects: tuple[float, np.ndarray, np.ndarray] | None = None  # (arrival, pick, place)
        self.active = False  # intervention/active
        self.chunk_stamps: list[float] = []
        self.diag: dict[str, dict[str, str]] = {}
        self.said: dict[str, tuple[int, str]] = {}  # full status name -> (level, message)
        self.estop = self.create_publisher(Bool, "estop", qos.LATCHED)
        self.reset = self.create_publisher(Int32, "task/reset", qos.COMMAND)
        self.event = self.create_publisher(String, "episode/event", qos.COMMAND)
        self.instruction = self.create_publisher(String, "instruction", qos.LATCHED)
        self.instruction.publish(String(data=instruction))
        self.engage = self.create_publisher(Bool, "intervention/engage", qos.LATCHED)
        qos.latched_subscriptions(self, Bool, "intervention/active", self._on_active)
        self.create_subscription(PoseArray, "task/objects", self._on_objects, qos.SENSOR)
        qos.latched_subscriptions(self, Bool, "task/success", self._on_success)
        self.create_subscription(JointState, "joint_command", self._on_command, qos.COMMAND)
        self.create_subscription(JointState, "joint_states", self._on_state, qos.SENSOR)
        self.create_subscription(JointTrajectory, "action_chunk", self._on_chunk, qos.COMMAND)
        self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, qos.DIAGNOSTICS)

    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_success(self, msg: Bool) -> None:
        with self.lock:
            self.success.append((self.now(), bool(msg.data)))

    def _on_command(self, msg: JointState) -> None:
        with self.lock:
            self.commands.append((_stamp(msg), np.asarray(msg.position, dtype=np.float64)))

    def _on_state(self, msg: JointState) -> None:
        with self.lock:
            self.state_stamps.append(_stamp(msg))
        try:
            positions, _ = joint_positions(msg, self.joint_names)
        except ValueError:
            return
        with self.lock:
            self.positions = positions

    def _on_objects(self, msg: PoseArray) -> None:
        if len(msg.poses) == 2:
            pick, place = (np.array([q.position.x, q.position.y, q.position.z]) for q in msg.poses)
            with self.lock:
                self.objects = (self.now(), pick, place)

    def _on_active(self, msg: Bool) -> None:
        with self.lock:
            self.active = bool(msg.data)

    def _on_chunk(self, msg: JointTrajectory) -> None:
        if len(msg.points) > 1:
            with self.lock:
                self.chunk_stamps.append(_stamp(msg))

    def _on_diag(self, msg: DiagnosticArray) -> None:
        with self.lock:
            for st in msg.status:
                self.diag[st.name.split(": ", 1)[-1]] = {kv.key: kv.value for kv in st.values}
                level = st.level if isinstance(st.level, int) else ord(st.level)  # a byte
                self.said[st.name] = (level, st.message)

    def value(self, status: str, key: str, default: str = "0") -> str:
        with self.lock:
            return self.diag.get(status, {}).get(key, default)

    def wait(self, predicate, timeout: float, what: str) -> None:  # noqa: ANN001
        end = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > end:
                raise TimeoutError(f"eval: timed out after {timeout:g} s waiting for {what}")
            time.sleep(0.01)


def diagnosis(said: dict[str, tuple[int, str]]) -> str:
    """What the nodes' latest /diagnostics statuses (name -> (level, message)) say is wrong:
    every status above OK, worst first."""
    bad = sorted(((-lvl, name, msg) for name, (lvl, msg) in said.items() if lvl > 0))
    if not bad:
        return "no status above OK" if said else "nothing received"
    return "; ".join(f"{name} {_level_name(-lvl)}: {msg}" for lvl, name, msg in bad)


def _level_name(level: int) -> str:
    try:
        return Level(level).name
    except ValueError:  # not one diagnostic_msgs defines
        return str(level)


def _max_accel_ratio(
    commands: list[tuple[float, np.ndarray]], limits: np.ndarray, period: float = 1.0 / 50.0
) -> float:
    """Largest |second difference| / period^2 over consecutive commands, per joint's limit.
    ``period`` is the executor's control period: its limiter bounds each command's velocity
    change per period, whatever the jitter of the stamps (dividing by the stamps' median
    period, which a loaded machine makes a hair shorter, read 1.0001 x the limit); stamps only
    tell which commands are consecutive."""
    if len(commands) < 3:
        return 0.0
    t = np.array([c[0] for c in commands])
    q = np.stack([c[1] for c in commands])
    order = np.argsort(t)
    t, q = t[order], q[order]
    dt = np.diff(t)
    ok = np.abs(dt - period) < 0.5 * period
    v = np.diff(q, axis=0) / period
    triple = ok[:-1] & ok[1:]
    if not triple.any():
        return 0.0
    acc = np.abs(np.diff(v, axis=0))[triple] / period
    return float(np.max(acc / limits))


def run(
    engine: Path,
    robot: str,
    seeds: list[int],
    *,
    mode: str = "efficient",
    record_dir: Path = Path("eval_recordings"),
    progress: bool = True,
    execution: str = "crossfade",
    inject_delay_ms: float = 0.0,
    inference_hz: float = DEFAULT_INFERENCE_HZ,
    monitor: MonitorConfig | None = None,
) -> EvalSummary:
    """The episodes of ``seeds`` through the graph. With ``monitor``, a human-in-the-loop
    rollout: a :class:`FailureMonitor` per episode engages the intervention node when the policy
    fails, the simulator's operator node corrects, and the monitor hands back."""
    from tqdm import tqdm

    from gigabrain_runtime.sim.simulator import Simulator

    emb = get_embodiment(robot)
    kinematics = Simulator(emb, image_size=32)  # the task, and the gripper's place: never steps
    task = kinematics.task
    if task is None:
        raise ValueError(f"robot {robot}: its scene defines no task")
    hilr = None
    if monitor is not None:
        kinematics.start_episode(seeds[0])
        expert_s = sum(w.duration_s for w in pick_and_place(kinematics))
        hilr = _Hilr(monitor, kinematics, expert_s)
    launch_file = package_share("gigabrain_runtime") / "launch" / f"sim_{robot}.launch.yaml"
    nodes = load_launch(
        launch_file,
        {
            "mode": mode,
            "engine": str(engine),
            "record_dir": str(record_dir),
            "task_seed": str(seeds[0]),
            "execution": execution,
            "inference_hz": repr(float(inference_hz)),  # a double parameter
            "inject_delay_ms": f"{float(inject_delay_ms):.1f}",  # a double parameter
        },
    )
    ns = nodes[0].namespace
    log_path = Path("logs") / f"eval-{robot}-{time.strftime('%Y%m%d-%H%M%S')}.log"
    log_path.parent.mkdir(exist_ok=True)
    use_project_dds_profile()
    results: list[EpisodeResult] = []
    with log_path.open("w") as log:
        runner = LaunchRunner(nodes, out=log)
        rclpy.init()
        ev = Evaluator(ns, task.instruction, list(emb.joint_names))
        executor = SingleThreadedExecutor()
        executor.add_node(ev)
        spin = threading.Thread(target=executor.spin, daemon=True)
        spin.start()
        runner.start()
        try:
            try:
                ev.wait(lambda: len(ev.chunk_stamps) > 3, 180, f"the first chunks (see {log_path})")
            except TimeoutError as exc:  # say why, as the nodes report it
                with ev.lock:
                    said = dict(ev.said)
                raise TimeoutError(f"{exc}; /diagnostics: {diagnosis(said)}") from None
            desc = "rollout (graph, HILR)" if hilr else "evaluating (graph)"
            for seed in tqdm(seeds, desc=desc, unit="episode", disable=not progress):
                results.append(_episode(ev, seed, task.time_limit_s, emb.max_acceleration, hilr))
        finally:
            runner.stop()
            executor.shutdown(timeout_sec=2.0)
            spin.join(timeout=2.0)
            ev.destroy_node()
            rclpy.try_shutdown()
    kind = "rollout" if hilr else "graph"
    return EvalSummary(results, f"{kind}/{execution}/+{float(inject_delay_ms):g}ms")


@dataclass
class _Hilr:
    """A rollout's operator side: the monitor's settings, forward kinematics for the gripper,
    and how long the operator's whole pick-and-place takes (a takeover extends the episode's
    time limit by that much, so a correction can finish)."""

    config: MonitorConfig
    kinematics: Simulator
    expert_s: float
    monitor: FailureMonitor | None = None

    def start(self, ev: Evaluator, t: float, after: float) -> None:
        ev.wait(lambda: ev.objects is not None and ev.objects[0] > after, 10, "task/objects")
        assert ev.objects is not None
        self.monitor = FailureMonitor(self.config)
        self.monitor.start(t, ev.objects[1])

    def tick(self, ev: Evaluator, t: float, success: bool) -> str | None:
        """One look; engages or releases the intervention node. Returns the takeover's
        reason when one starts."""
        assert self.monitor is not None
        with ev.lock:
            q, objects = ev.positions, ev.objects
        if q is None or objects is None:
            return None
        d = self.monitor.update(
            t,
            joints=q,
            grasp_point=grasp_point(self.kinematics, q),
            pick=objects[1],
            place=objects[2],
            success=success,
        )
        if d.action is Action.TAKE_OVER:
            ev.engage.publish(Bool(data=True))
            return d.reason
        if d.action is Action.HAND_BACK:
            ev.engage.publish(Bool(data=False))
        return None

    def result(self, end: float) -> dict:
        """The episode's interventions (one still open ends at ``end``), for its
        :class:`EpisodeResult`."""
        m = self.monitor
        assert m is not None
        spans = [
            (t0, m.handbacks[i][0] if i < len(m.handbacks) else end)
            for i, (t0, _) in enumerate(m.takeovers)
        ]
        return {
            "interventions": len(m.takeovers),
            "intervention_reasons": ";".join(r for _, r in m.takeovers),
            "intervention_s": round(sum(t1 - t0 for t0, t1 in spans), 3),
        }

    def finish(self, ev: Evaluator) -> None:
        """The episode is over: the operator lets go (before the next reset)."""
        if self.monitor is not None and self.monitor.active:
            ev.engage.publish(Bool(data=False))
        ev.wait(lambda: not ev.active, 10, "the hand-back (intervention/active false)")


def _episode(
    ev: Evaluator,
    seed: int,
    time_limit_s: float,
    limits: np.ndarray,
    hilr: _Hilr | None = None,
) -> EpisodeResult:
    # freeze, reset, and wait for the graph to see the new scene
    ev.estop.publish(Bool(data=True))
    with ev.lock:
        n_cmd = len(ev.commands)

    def frozen() -> bool:
        with ev.lock:
            new = ev.commands[n_cmd:]
        return len(new) >= 3 and np.array_equal(new[-1][1], new[-2][1])

    ev.wait(frozen, 10, "the executor to freeze on the e-stop")
    reset_t = ev.now()
    ev.reset.publish(Int32(data=seed))
    ev.wait(lambda: any(t >= reset_t and not ok for t, ok in list(ev.success)), 10, "the reset")
    ev.wait(lambda: any(s > reset_t + 0.05 for s in list(ev.state_stamps[-5:])), 10, "states")
    ev.wait(lambda: any(s > reset_t + 0.05 for s in list(ev.chunk_stamps[-3:])), 30, "a chunk")
    watchdog0 = int(ev.value("executor", "watchdog_events"))
    stops0 = int(ev.value("executor", "open_loop_stops"))
    start = ev.now()
    if hilr is not None:
        hilr.start(ev, start, reset_t)
    ev.estop.publish(Bool(data=False))
    ev.event.publish(String(data="start"))
    first_success: float | None = None
    settled: float | None = None
    deadline = start + time_limit_s
    while ev.now() < deadline:
        with ev.lock:
            verdicts = [(t, ok) for t, ok in ev.success if t >= start]
        ok = bool(verdicts and verdicts[-1][1])
        if ok:
            first_success = verdicts[-1][0]
            if ev.now() - first_success >= SETTLE_S:
                settled = ev.now()
                break
        if hilr is not None and hilr.tick(ev, ev.now(), ok) is not None:
            # the operator's whole correction fits before the episode ends
            deadline = max(deadline, ev.now() + hilr.expert_s + CORRECTION_MARGIN_S)
        time.sleep(0.02)
    end = ev.now()
    ev.event.publish(String(data="success" if settled else "failure"))
    if hilr is not None:
        hilr.finish(ev)
    with ev.lock:
        before = [c for c in ev.commands if c[0] < start]
        cmds = [c for c in ev.commands if start <= c[0] <= end]
        chunks = sum(1 for s in ev.chunk_stamps if start <= s <= end)
    # the executor's frozen command until it takes the release: its stream then restarts at the
    # measured pose, where the reset put the arm - a jump of the reset, not of the runtime
    while before and cmds and np.array_equal(cmds[0][1], before[-1][1]):
        cmds.pop(0)
    accel = _max_accel_ratio(cmds, limits)
    reason = ev.value("simulator", "task_state", "-")
    return EpisodeResult(
        seed=seed,
        success=settled is not None,
        time_to_success_s=None if settled is None else round(first_success - start, 3),
        duration_s=round(end - start, 3),
        reason=reason,
        chunks=chunks,
        watchdog_events=int(ev.value("executor", "watchdog_events")) - watchdog0,
        open_loop_stops=int(ev.value("executor", "open_loop_stops")) - stops0,
        max_accel_ratio=round(accel, 4),
        **(hilr.result(end) if hilr is not None else {}),
    )
