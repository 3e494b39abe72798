"""Run the nodes of a launch file as child processes with standard ``--ros-args``.

Each node gets ``-r __node:=NAME -r __ns:=NS``, its remaps as ``-r from:=to``, its parameter
files and a generated params file for the inline parameters (typed YAML, so strings, floats and
booleans arrive as such). Output is line-prefixed with the node name. A child that exits on
its own is reported as ``ros2 launch`` does (``[ERROR] [launch]: process has died [pid N, exit
code X, cmd '...']``, or ``[INFO] ... process has finished cleanly`` for exit code 0) and, with
``respawn: true``, started again after ``respawn_delay`` seconds. On Ctrl-C or SIGTERM the
children get SIGINT (their clean shutdown), then SIGTERM and SIGKILL after grace periods.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TextIO

import yaml

from gigabrain_runtime.launching.launch_file import LaunchError, NodeSpec
from gigabrain_runtime.registry import Registry

# Node name -> module with a ``main(argv)``. Launch files start nodes as
# ``exec: gigabrain-runtime`` with ``args: "node <name>"``; on a full ROS 2 install that console
# script lives in lib/gigabrain_runtime (setup.cfg), here it is run as ``python -m``.
NODES: Registry[str] = Registry("node")
NODES.register("vla", "gigabrain_runtime.ros.vla_node")
NODES.register("executor", "gigabrain_runtime.ros.executor_node")
NODES.register("sim", "gigabrain_runtime.ros.tools.sim_node")
NODES.register("intervention", "gigabrain_runtime.ros.intervention_node")
NODES.register("recorder", "gigabrain_runtime.ros.recorder_node")
NODES.register("operator", "gigabrain_runtime.ros.operator_node")
NODES.register("g1_bridge", "gigabrain_runtime.ros.g1_bridge_node")
NODES.register("piper_bridge", "gigabrain_runtime.ros.piper_bridge_node")
NODES.register("piper_standin", "gigabrain_runtime.ros.tools.piper_standin_node")
NODES.register("console", "gigabrain_runtime.ros.console_node")
CLI_EXECUTABLE = "gigabrain-runtime"


def node_command(spec: NodeSpec, params_dir: Path) -> list[str]:
    if spec.pkg != "gigabrain_runtime":
        raise LaunchError(
            f"node {spec.name}: package {spec.pkg!r} cannot be run here (only gigabrain_runtime "
            "nodes; use ros2 launch on a full ROS 2 install for others)"
        )
    if spec.executable != CLI_EXECUTABLE:
        raise LaunchError(
            f"node {spec.name}: exec {spec.executable!r} unknown (this package's nodes run as "
            f"exec: {CLI_EXECUTABLE}, args: 'node <name>')"
        )
    if len(spec.args) < 2 or spec.args[0] != "node":
        raise LaunchError(f"node {spec.name}: args must be 'node <name>', got {spec.args}")
    NODES.get(spec.args[1], field=f"node {spec.name}: args")
    cmd = [
        sys.executable,
        "-m",
        "gigabrain_runtime",
        *spec.args,
        "--ros-args",
        "-r",
        f"__node:={spec.name}",
        "-r",
        f"__ns:={spec.namespace}",
    ]
    for f in spec.param_files:
        cmd += ["--params-file", f]
    if spec.params:
        path = params_dir / f"{spec.namespace.strip('/').replace('/', '_')}_{spec.name}.yaml"
        path.write_text(yaml.safe_dump({"/**": {"ros__parameters": spec.params}}))
        cmd += ["--params-file", str(path)]
    for src, dst in spec.remaps:
        cmd += ["-r", f"{src}:={dst}"]
    return cmd


class LaunchRunner:
    def __init__(
        self, nodes: list[NodeSpec], *, out: TextIO = sys.stdout, env: dict[str, str] | None = None
    ) -> None:
        if not nodes:
            raise LaunchError("launch file starts no nodes")
        self.nodes = nodes
        self.out = out
        self.env = {**os.environ, **(env or {})}
        self.env.setdefault("PYTHONUNBUFFERED", "1")
        self.env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        self.env.setdefault(
            "FASTDDS_DEFAULT_PROFILES_FILE",
            str(Path(__file__).resolve().parents[1] / "ros" / "config" / "fastdds.xml"),
        )
        self._tmp = tempfile.TemporaryDirectory(prefix="gigabrain-launch-")
        self.procs: dict[str, subprocess.Popen[str]] = {}
        self._pumps: list[threading.Thread] = []
        self._out_lock = threading.Lock()
        self._specs = {n.fqn: n for n in nodes}
        self._commands: dict[str, list[str]] = {}
        self._reported: set[int] = set()  # pids whose exit was reported
        self._respawn_at: dict[str, float] = {}
        self.deaths = 0
        self.respawns = 0

    def start(self) -> None:
        self._commands = {n.fqn: node_command(n, Path(self._tmp.name)) for n in self.nodes}
        for fqn in self._commands:
            self._spawn(fqn)

    def _spawn(self, fqn: str) -> None:
        proc = subprocess.Popen(
            self._commands[fqn],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=self.env,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        self.procs[fqn] = proc
        pump = threading.Thread(target=self._pump, args=(fqn, proc), daemon=True)
        pump.start()
        self._pumps.append(pump)
        self._say("INFO", f"process started with pid [{proc.pid}] ({fqn})")

    def _say(self, level: str, text: str) -> None:
        with self._out_lock:
            self.out.write(f"[{level}] [launch]: {text}\n")
            self.out.flush()

    def supervise(self, now: float | None = None) -> bool:
        """Report children that exited since the last call (and schedule or perform their
        respawn). True while anything runs or waits to be respawned."""
        now = time.monotonic() if now is None else now
        for fqn, proc in list(self.procs.items()):
            code = proc.poll()
            if code is None or proc.pid in self._reported:
                continue
            self._reported.add(proc.pid)
            cmd = " ".join(self._commands.get(fqn, []))
            if code == 0:
                self._say("INFO", f"process has finished cleanly [pid {proc.pid}] ({fqn})")
            else:
                self.deaths += 1
                self._say(
                    "ERROR",
                    f"process has died [pid {proc.pid}, exit code {code}, cmd '{cmd}'] ({fqn})",
                )
            spec = self._specs[fqn]
            if spec.respawn:
                self._respawn_at[fqn] = now + spec.respawn_delay
                self._say("INFO", f"respawning {fqn} in {spec.respawn_delay:g} s")
        for fqn, due in list(self._respawn_at.items()):
            if now >= due:
                del self._respawn_at[fqn]
                self.respawns += 1
                self._spawn(fqn)
        return bool(self._respawn_at) or any(self.alive().values())

    def _pump(self, fqn: str, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            with self._out_lock:
                self.out.write(f"[{fqn}] {line}")
                self.out.flush()

    def alive(self) -> dict[str, bool]:
        return {fqn: p.poll() is None for fqn, p in self.procs.items()}

    def wait(self) -> int:
        """Block until every child has exited; returns the worst exit status."""
        codes = [p.wait() for p in self.procs.values()]
        return max((abs(c) for c in codes), default=0)

    def stop(self, grace_s: float = 5.0) -> int:
        self._respawn_at.clear()
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        deadline = time.monotonic() + grace_s
        for p in self.procs.values():
            try:
                p.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.terminate()
                try:
                    p.wait(timeout=2.0)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        for t in self._pumps:
            t.join(timeout=1.0)
        self._tmp.cleanup()
        return max((abs(p.returncode or 0) for p in self.procs.values()), default=0)


def _die_with_parent() -> None:
    """In the child, before exec (Linux): SIGTERM when the launcher dies, even by SIGKILL. A node
    must never outlive its launcher and keep commanding a robot nobody is supervising; SIGTERM
    gives it the same clean shutdown as Ctrl-C (the executor brakes, the bridges ramp out)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def run_launch(nodes: list[NodeSpec]) -> int:
    """Foreground: start, wait for Ctrl-C / SIGTERM / all children gone, stop cleanly."""
    runner = LaunchRunner(nodes)
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:  # noqa: ARG001
        stop.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        runner.start()
        while not stop.is_set() and runner.supervise():
            stop.wait(0.2)
    finally:
        code = runner.stop()
        for s, h in old.items():
            signal.signal(s, h)
    return 0 if stop.is_set() else code
