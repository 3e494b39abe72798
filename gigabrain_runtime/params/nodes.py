"""One parameter schema per node: every parameter a node declares, written once.

``ros/params.py:declare_params`` declares a schema on its node. The README's parameter tables
are :func:`tables` (``gigabrain-runtime params``; ``--readme README.md`` rewrites them).
Defaults shared with a core config (``ExecutorConfig``, ``SyncConfig``, ``PolicyLoopConfig``,
``ArmSdkConfig``, ``PiperDriverConfig``) are the same values, checked by
tests/params/test_nodes.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from gigabrain_runtime.control.blending import EXECUTION_MODES
from gigabrain_runtime.inference.types import Mode
from gigabrain_runtime.params.schema import NodeParams, markdown_table, param
from gigabrain_runtime.registry import Registry
from gigabrain_runtime.robots.embodiment import LIMIT_MARGIN

REALTIME_PRIORITY = "SCHED_FIFO priority of the {} thread where permitted (0: normal scheduling)"


def _execution() -> str:
    """The ``execution`` parameter the vla and the executor share (give both the same)."""
    return param(
        "crossfade",
        "how the next chunk takes over (control/blending.py; the same on vla and executor): "
        "sync waits for execute_steps points to run before observing; rtc guides each chunk "
        "by the last and switches on arrival",
        choices=EXECUTION_MODES,
        read_only=True,
    )


def _execute_steps() -> int:
    return param(
        30, "sync: points of each chunk executed before the next", lo=1, hi=1000, read_only=True
    )


def _state_limit_margin() -> float:
    """The ``state_limit_margin`` parameter the vla and the executor share (each needs a field
    of its own)."""
    return param(
        LIMIT_MARGIN,
        "joint states further outside the joint limits than this fraction of a joint's range "
        "are refused (ERROR naming the joint)",
        lo=0.0,
        hi=1.0,
        read_only=True,
    )


@dataclass(frozen=True, kw_only=True)
class VlaParams(NodeParams):
    """vla: the policy at a fixed rate, in efficient or standard mode."""

    engine: str = param("engines/tiny", "engine directory (manifest.json)", read_only=True)
    backend: str = param("", "backend override ('' = the manifest's)", read_only=True)
    robot: str = param("piper", "embodiment name in the engine", read_only=True)
    mode: str = param(
        "efficient",
        "efficient, or standard (world-model-conditioned; needs an engine with a world model)",
        choices=tuple(m.value for m in Mode),
    )
    inference_hz: float = param(
        2.0,
        "chunk rate (Hz); 2 at 50 Hz control follows 25 points of a 50-point chunk between "
        "observations",
        lo=0.1,
        hi=100.0,
        read_only=True,
    )
    control_hz: float = param(
        50.0, "executor rate: spacing of chunk points (Hz)", lo=1.0, hi=500.0, read_only=True
    )
    world_model_hz: float = param(2.0, "world model rate (Hz)", lo=0.01, hi=100.0, read_only=True)
    max_world_model_age_s: float = param(
        1.0,
        "older predictions are ignored: the chunk is computed in efficient mode (s)",
        lo=0.01,
        hi=60.0,
    )
    stamp_tolerance_s: float = param(
        0.1,
        "max spread of input stamps, or the largest camera age limit if that is more (s)",
        lo=0.001,
        hi=10.0,
        read_only=True,
    )
    max_image_age_s: float = param(
        0.15,
        "shortest age limit of a frame; a camera's limit is 2 of its measured frame periods + "
        "transport_s when that is more (s)",
        lo=0.01,
        hi=10.0,
        read_only=True,
    )
    transport_s: float = param(
        0.05,
        "transport allowance in a camera's age limit, on top of 2 frame periods (s)",
        lo=0.0,
        hi=1.0,
        read_only=True,
    )
    input_timeout_s: float = param(
        0.4,
        "an input silent this long (or refused) is gone: ERROR naming it and a hold point to "
        "the executor; a shorter gap is a late frame, the plan continues (s)",
        lo=0.02,
        hi=10.0,
        read_only=True,
    )
    max_state_age_s: float = param(
        0.1,
        "a joint state older than this is never used (s)",
        lo=0.005,
        hi=10.0,
        read_only=True,
    )
    state_limit_margin: float = _state_limit_margin()
    instruction: str = param("", "task instruction (the instruction topic overrides it)")
    execution: str = _execution()
    execute_steps: int = _execute_steps()
    inject_delay_ms: float = param(
        0.0,
        "hold every chunk back this long after inference, as a slower accelerator would "
        "(benchmarks) (ms)",
        lo=0.0,
        hi=10000.0,
        read_only=True,
    )
    controller_output: bool = param(
        False,
        "also publish each chunk (and the stop) to the embodiment's ros2_control "
        "joint_trajectory_controllers, one trajectory per controller that ends at rest; for a "
        "robot driven by ros2_control instead of the runtime's executor",
        read_only=True,
    )
    threads: int = param(0, "onnxruntime CPU threads (0 = all cores)", lo=0, hi=256, read_only=True)
    calibration_dir: str = param(
        "",
        "folder of <cam>.yaml camera_info files ('' = none); a malformed file stops the node "
        "at start",
        read_only=True,
    )
    undistort: bool = param(
        False,
        "undistort frames with their calibration before the model sees them (needs "
        "calibration_dir)",
        read_only=True,
    )
    publish_camera_info: bool = param(
        True,
        "publish cameras/<cam>/camera_info with each frame of a calibrated camera",
        read_only=True,
    )
    overlay: bool = param(
        True,
        "draw each chunk's trajectory on cameras/<first cam>/policy_overlay (when subscribed)",
    )
    overlay_hz: float = param(
        0.0, "most overlay images per second (0 = one per chunk)", lo=0.0, hi=100.0
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.undistort and not self.calibration_dir:
            raise ValueError(
                "undistort: true needs calibration_dir (the folder of <cam>.yaml camera_info "
                "files), got calibration_dir ''"
            )


@dataclass(frozen=True, kw_only=True)
class ExecutorParams(NodeParams):
    """executor: streams joint commands at control_hz from the newest action chunks."""

    robot: str = param("piper", "embodiment name or YAML path", read_only=True)
    control_hz: float = param(50.0, "command rate (Hz)", lo=1.0, hi=500.0, read_only=True)
    execution: str = _execution()
    execute_steps: int = _execute_steps()
    blend_s: float = param(0.2, "crossfade window (s)", lo=0.0, hi=2.0, read_only=True)
    ensemble_k: float = param(
        0.5, "temporal ensembling decay per chunk", lo=0.0, hi=10.0, read_only=True
    )
    max_open_loop_s: float = param(
        1.0,
        "a chunk is followed at most this long after its observation (never past its last "
        "point); then the arm comes to rest within its limits (s)",
        lo=0.02,
        hi=10.0,
        read_only=True,
    )
    state_timeout_s: float = param(
        0.1,
        "watchdog: hold when joint state older than this (s)",
        lo=0.005,
        hi=10.0,
        read_only=True,
    )
    velocity_scale: float = param(
        1.0, "fraction of the embodiment velocity limits", lo=0.01, hi=1.0, read_only=True
    )
    stop_decel_scale: float = param(
        1.0,
        "braking of every stop but the e-stop, x the acceleration limits",
        lo=0.1,
        hi=1.0,
        read_only=True,
    )
    takeover_blend_s: float = param(
        0.3,
        "minimum-jerk fade to the operator at takeover (s)",
        lo=0.0,
        hi=5.0,
        read_only=True,
    )
    teleop_timeout_s: float = param(
        0.2,
        "hold when teleop commands are older than this (s)",
        lo=0.01,
        hi=10.0,
        read_only=True,
    )
    hold_timeout_s: float = param(
        0.5,
        "hold-to-run: once a hold source (the console) has spoken, hold the arm when its last "
        "message is older than this (s)",
        lo=0.05,
        hi=10.0,
        read_only=True,
    )
    state_limit_margin: float = _state_limit_margin()
    realtime_priority: int = param(
        0,
        REALTIME_PRIORITY.format("control") + "; 40 is a good value on a robot computer with "
        "rtprio granted",
        lo=0,
        hi=99,
        read_only=True,
    )


@dataclass(frozen=True, kw_only=True)
class SimParams(NodeParams):
    """sim: a MuJoCo robot that behaves like the real one on the runtime's topics."""

    robot: str = param("piper", "embodiment to simulate", read_only=True)
    state_hz: float = param(100.0, "joint state rate (Hz)", lo=1.0, hi=1000.0, read_only=True)
    camera_hz: float = param(15.0, "camera rate (Hz)", lo=0.1, hi=120.0, read_only=True)
    image_size: int = param(224, "rendered image size (px, square)", lo=16, hi=2048, read_only=True)
    task_seed: int = param(
        -1,
        "start at this task episode (seeded cube, bowl and arm; -1: the scene's nominal start); "
        "task/reset (std_msgs/Int32) starts another",
        lo=-1,
        hi=2**31 - 1,
        read_only=True,
    )


@dataclass(frozen=True, kw_only=True)
class InterventionParams(NodeParams):
    """intervention: turns takeover requests into the latched intervention/active state."""

    deadman_button: int = param(
        -1,
        "joystick button index held for takeover (-1: no joystick)",
        lo=-1,
        hi=63,
        read_only=True,
    )
    joy_topic: str = param("/joy", "sensor_msgs/Joy topic", read_only=True)


@dataclass(frozen=True, kw_only=True)
class RecorderParams(NodeParams):
    """recorder: one rosbag2 (MCAP) directory per HILR episode."""

    robot: str = param("piper", "embodiment (its cameras are recorded)", read_only=True)
    record_dir: str = param(
        "recordings", "one episode directory per episode under here", read_only=True
    )
    auto_start: bool = param(
        False, "start an episode at launch, without waiting for 'start'", read_only=True
    )
    operator: str = param("", "operator name for the episode metadata")
    engine: str = param(
        "", "engine directory (its manifest hash is stored with each episode)", read_only=True
    )
    min_free_mb: float = param(
        200.0,
        "stop recording below this much free disk (MB): a quota",
        lo=0.0,
        hi=1e12,
    )
    flush_s: float = param(
        0.5, "chunk flush period: the most a crash loses (s)", lo=0.05, hi=10.0, read_only=True
    )
    nice: int = param(
        10,
        "lower this process's CPU priority by this much: recording yields to control",
        lo=0,
        hi=19,
        read_only=True,
    )


@dataclass(frozen=True, kw_only=True)
class OperatorParams(NodeParams):
    """operator: the simulator's scripted operator, an expert for the scene's task."""

    robot: str = param("piper", "simulated embodiment", read_only=True)
    rate_hz: float = param(50.0, "teleop command rate (Hz)", lo=1.0, hi=1000.0, read_only=True)


# the fields of ArmSdkConfig that are also g1_bridge parameters: arm_sdk_config's values are
# their defaults (the packaged file's are the ones below)
ARM_SDK_FILE_FIELDS = (
    "command_hz",
    "ramp_in_s",
    "ramp_out_s",
    "command_timeout_s",
    "state_timeout_s",
)


@dataclass(frozen=True, kw_only=True)
class G1BridgeParams(NodeParams):
    """g1_bridge: the runtime's canonical topics <-> a Unitree G1's own DDS topics."""

    robot: str = param("g1", "embodiment name or YAML path", read_only=True)
    arm_sdk_config: str = param(
        "",
        "joint -> motor mapping, gains and the defaults of command_hz, ramp_in_s, ramp_out_s, "
        "command_timeout_s and state_timeout_s (YAML; '' = the packaged "
        "robots/interfaces/g1_arm_sdk.yaml)",
        read_only=True,
    )
    command_hz: float = param(50.0, "arm_sdk rate (Hz)", lo=1.0, hi=500.0, read_only=True)
    ramp_in_s: float = param(2.0, "blend weight 0 -> 1 time (s)", lo=0.1, hi=30.0, read_only=True)
    ramp_out_s: float = param(
        2.0,
        "blend weight 1 -> 0 time (s); at most 4 s so a shutdown ramp ends before a launcher's "
        "SIGTERM/SIGKILL grace (5 s) runs out",
        lo=0.1,
        hi=4.0,
        read_only=True,
    )
    command_timeout_s: float = param(
        0.2,
        "ramp out when no valid joint_command for this long (s)",
        lo=0.02,
        hi=5.0,
        read_only=True,
    )
    state_timeout_s: float = param(
        0.1,
        "ramp out when no valid LowState_ for this long (s)",
        lo=0.005,
        hi=5.0,
        read_only=True,
    )
    dds_domain: int = param(
        0, "CycloneDDS domain of the robot (G1: 0)", lo=0, hi=232, read_only=True
    )
    network_interface: str = param(
        "",
        "interface on the robot's network (192.168.123.x), '' = CycloneDDS's default",
        read_only=True,
    )
    state_hz: float = param(
        100.0,
        "joint_states rate (Hz); every LowState_ (500 Hz) is still read and CRC-checked",
        lo=1.0,
        hi=1000.0,
        read_only=True,
    )
    joints_calibration: str = param("", "joints.yaml ('' = identity)", read_only=True)
    realtime_priority: int = param(
        0, REALTIME_PRIORITY.format("arm_sdk"), lo=0, hi=99, read_only=True
    )
    lowstate_crc_check: bool = param(
        True,
        "drop LowState_ whose CRC is wrong (false: count them but use them - only to diagnose "
        "a robot whose firmware fills the CRC differently)",
        read_only=True,
    )


@dataclass(frozen=True, kw_only=True)
class PiperBridgeParams(NodeParams):
    """piper_bridge: the runtime's canonical topics <-> one or more piper_ros drivers."""

    robot: str = param("piper", "embodiment name or YAML path", read_only=True)
    arm_namespaces: tuple[str, ...] = param(
        ("",),
        "driver namespace per arm: '' = this node's namespace, 'left' relative, '/left' absolute",
        read_only=True,
    )
    arm_prefixes: tuple[str, ...] = param(
        ("",),
        "joint-name prefix of each arm in the embodiment (e.g. left_, right_), one per "
        "arm_namespaces entry",
        read_only=True,
    )
    speed_percent: int = param(
        100,
        "arm speed the driver sets with each command (velocity[6], %); the executor's limits "
        "are the primary velocity bound",
        lo=1,
        hi=100,
        read_only=True,
    )
    gripper_effort: float = param(
        1.0, "gripper torque sent in effort[6] (N m)", lo=0.5, hi=3.0, read_only=True
    )
    joints_calibration: str = param("", "joints.yaml (offsets/signs); '' = none", read_only=True)
    enable_on_start: bool = param(True, "send enable_flag=true to each driver", read_only=True)
    enable_settle_s: float = param(
        0.5,
        "wait after enabling before commanding (s); enable_flag is repeated meanwhile",
        lo=0.0,
        hi=5.0,
    )
    disable_on_shutdown: bool = param(
        False,
        "send enable_flag=false on shutdown (the arm then sags: only with the arm at rest on "
        "a support)",
        read_only=True,
    )
    state_timeout_s: float = param(0.1, "arm state older than this is stale (s)", lo=0.005, hi=2.0)
    leader_timeout_s: float = param(0.2, "leader-arm sample freshness (s)", lo=0.005, hi=2.0)
    shutdown_grace_s: float = param(
        1.5,
        "on shutdown, forward the executor's braking stream for at most this long (s)",
        lo=0.0,
        hi=10.0,
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.arm_namespaces) != len(self.arm_prefixes):
            raise ValueError(
                f"arm_namespaces ({list(self.arm_namespaces)}) and arm_prefixes "
                f"({list(self.arm_prefixes)}) must have one entry per arm"
            )


@dataclass(frozen=True, kw_only=True)
class PiperStandinParams(NodeParams):
    """piper_standin: a stand-in for the piper_ros driver, for tests and trying launch files."""

    rate_hz: float = param(200.0, "state rate (Hz)", lo=1.0, hi=1000.0, read_only=True)
    max_speed_rad_s: float = param(3.0, "joint speed at 100 %", lo=0.1, hi=10.0, read_only=True)
    start: tuple[float, ...] = param(
        (0.0, 0.6, -0.6, 0.0, 0.4, 0.0, 0.04),  # well inside the limits, gripper half open
        "start pose: joint1..6 (rad), gripper (m)",
        read_only=True,
    )
    leader: bool = param(False, "play a leader arm on joint_ctrl", read_only=True)
    camera_topics: tuple[str, ...] = param(
        ("",), "stand-in camera topics ('' = none)", read_only=True
    )
    camera_hz: float = param(15.0, "stand-in camera rate (Hz)", lo=1.0, hi=60.0, read_only=True)
    command_period_s: float = param(
        0.02,
        "the sender's command period, for the velocity audit (s)",
        lo=0.001,
        hi=1.0,
        read_only=True,
    )
    report: str = param("", "write the audit here as JSON at exit", read_only=True)
    encoder_calibration: str = param(
        "",
        "joints.yaml describing this arm's encoder offsets (the audit checks true angles "
        "against the limits); '' = a perfectly zeroed arm",
        read_only=True,
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.start) != 7:
            raise ValueError(
                f"start: expected 7 values (joint1..6, gripper), got {len(self.start)}"
            )


@dataclass(frozen=True, kw_only=True)
class ConsoleParams(NodeParams):
    """console: the operator's page in the browser (aiohttp, WebSocket) over the graph."""

    robot: str = param("piper", "embodiment (its cameras and joints)", read_only=True)
    port: int = param(
        8080, "HTTP port (0: any free port, printed at start)", lo=0, hi=65535, read_only=True
    )
    bind: str = param(
        "127.0.0.1",
        "interface to listen on; any other than loopback needs a token",
        read_only=True,
    )
    token: str = param(
        "",
        "access token: required on the WebSocket and on every control when set ('' = none; "
        "binding beyond loopback requires one)",
        read_only=True,
    )
    record_dir: str = param("recordings", "the recorder's episode directory", read_only=True)
    camera_hz: float = param(
        10.0,
        "most camera frames per second sent to a page, each after the page has drawn the last "
        "(a slow link gets fewer)",
        lo=0.5,
        hi=30.0,
        read_only=True,
    )
    jpeg_quality: int = param(70, "JPEG quality of raw camera frames", lo=10, hi=95, read_only=True)
    state_hz: float = param(
        10.0, "state updates per second to a page", lo=1.0, hi=50.0, read_only=True
    )
    hold_to_run: bool = param(
        False,
        "deadman: the policy is held (operator takeover with no teleop motion, i.e. the arm "
        "holds) unless a page keeps sending 'hold' while its key or button is pressed",
        read_only=True,
    )
    hold_timeout_s: float = param(
        0.3,
        "hold-to-run: the policy is held this long after the last 'hold' (s)",
        lo=0.05,
        hi=5.0,
        read_only=True,
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.bind not in ("127.0.0.1", "localhost", "::1") and not self.token:
            raise ValueError(
                f"token: binding {self.bind!r} (beyond loopback) needs a token; pass one at start"
            )


# node name (as `gigabrain-runtime node NAME` runs it) -> its schema
NODE_PARAMS: Registry[type[NodeParams]] = Registry("node")
NODE_PARAMS.register("vla", VlaParams)
NODE_PARAMS.register("executor", ExecutorParams)
NODE_PARAMS.register("sim", SimParams)
NODE_PARAMS.register("intervention", InterventionParams)
NODE_PARAMS.register("recorder", RecorderParams)
NODE_PARAMS.register("operator", OperatorParams)
NODE_PARAMS.register("g1_bridge", G1BridgeParams)
NODE_PARAMS.register("piper_bridge", PiperBridgeParams)
NODE_PARAMS.register("piper_standin", PiperStandinParams)
NODE_PARAMS.register("console", ConsoleParams)

README_BEGIN = (
    "<!-- generated from params/nodes.py: gigabrain-runtime params --readme README.md -->"
)
README_END = "<!-- end of the generated parameter tables -->"


def tables(names: list[str] | None = None) -> str:
    """The parameter tables of the named nodes (default: all), in Markdown."""
    parts = []
    for name in names or NODE_PARAMS.names():
        cls = NODE_PARAMS.get(name, field="node")
        parts.append(f"**{name}** (`gigabrain-runtime node {name}`)\n\n{markdown_table(cls)}")
    return "\n".join(parts)


def with_readme_tables(text: str) -> str:
    """``text`` (the README) with every node's table between its two markers, as generated now.
    ValueError when the markers are missing."""
    begin, end = text.find(README_BEGIN), text.find(README_END)
    if begin < 0 or end < begin:
        raise ValueError(f"README: no {README_BEGIN!r} ... {README_END!r} block")
    return f"{text[: begin + len(README_BEGIN)]}\n{tables()}\n{text[end:]}"
