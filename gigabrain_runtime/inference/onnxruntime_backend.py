"""onnxruntime backend: CPU everywhere; CUDA / TensorRT execution providers when the installed
onnxruntime has them (onnxruntime-gpu). Runs the graphs ``export`` wrote, in either layout."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from gigabrain_runtime.inference.manifest import EngineManifest, GraphSpec
from gigabrain_runtime.inference.preprocessing import (
    FLOW_STEP_GRAPH,
    POLICY_GRAPH,
    PREFIX_GRAPH,
    WORLD_MODEL_GRAPH,
    Feeds,
    Preprocessor,
    run_policy,
    run_world_model,
)
from gigabrain_runtime.inference.types import (
    ActionChunk,
    ActionGuide,
    Mode,
    Observation,
    WorldPrediction,
)

_PREFERRED = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
# onnxruntime's element type names -> the numpy dtype names the manifest records
_ORT_DTYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(bfloat16)": "bfloat16",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(uint8)": "uint8",
    "tensor(bool)": "bool",
}


def check_io(name: str, spec: GraphSpec, session: Any) -> None:
    """The graph's inputs and outputs are the manifest's: names, shapes and dtypes. A mismatch
    (a manifest edited or copied from another export) is refused at load, naming the tensor,
    instead of failing on every inference."""
    for kind, declared, actual in (
        ("input", spec.inputs, session.get_inputs()),
        ("output", spec.outputs, session.get_outputs()),
    ):
        have = {a.name: a for a in actual}
        if set(have) != {t.name for t in declared}:
            raise ValueError(
                f"engine: {spec.file} ({name}) {kind}s are {sorted(have)}, the manifest says "
                f"{sorted(t.name for t in declared)}; re-export the engine"
            )
        for t in declared:
            a = have[t.name]
            shape = tuple(d if isinstance(d, int) else -1 for d in a.shape)
            dtype = _ORT_DTYPES.get(a.type, a.type)
            fixed = all(d >= 0 for d in shape)
            if (fixed and shape != t.shape) or dtype != t.dtype:
                raise ValueError(
                    f"engine: {spec.file} ({name}) {kind} {t.name!r} is {list(shape)} {dtype} in "
                    f"the graph, {list(t.shape)} {t.dtype} in the manifest; re-export the engine"
                )


class OnnxRuntimeBackend:
    name = "onnxruntime"

    def __init__(
        self,
        directory: str | Path,
        *,
        providers: list[str] | None = None,
        threads: int | None = None,
        seed: int = 0,
        verify: bool = True,
        spin: bool = False,
    ) -> None:
        import onnxruntime as ort

        self.directory = Path(directory)
        self.manifest = EngineManifest.read(self.directory)
        self._pre = Preprocessor(self.manifest, self.directory)
        self._rng = np.random.default_rng(seed)
        available = ort.get_available_providers()
        if providers is None:
            providers = [p for p in _PREFERRED if p in available]
        unknown = [p for p in providers if p not in available]
        if unknown:
            raise ValueError(f"providers: {unknown} not available (have: {', '.join(available)})")
        self.providers = providers
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads or (os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # onnxruntime's worker threads busy-wait after each run by default. Next to a control
        # loop (or another backend) that steals the cores for milliseconds; off unless asked.
        spin_flag = "1" if spin else "0"
        options.add_session_config_entry("session.intra_op.allow_spinning", spin_flag)
        options.add_session_config_entry("session.inter_op.allow_spinning", spin_flag)
        self.manifest.verify(self.directory, graphs=verify, weights=verify)
        self._sessions: dict[str, Any] = {}
        for name, spec in self.manifest.graphs.items():
            path = self.directory / spec.file
            session = ort.InferenceSession(str(path), options, providers=providers)
            check_io(name, spec, session)
            self._sessions[name] = session
        self._steps = self.manifest.config.action_expert.num_flow_steps

    @staticmethod
    def _run(session: Any, feeds: Feeds) -> dict[str, np.ndarray]:
        wanted = {i.name for i in session.get_inputs()}
        names = [o.name for o in session.get_outputs()]
        outputs = session.run(None, {k: v for k, v in feeds.items() if k in wanted})
        return dict(zip(names, outputs, strict=True))

    def _policy(self, mode: Mode, feeds: Feeds) -> tuple[np.ndarray, np.ndarray | None]:
        if self.manifest.layout == "fused":
            out = self._run(self._sessions[POLICY_GRAPH[mode]], feeds)
            return out["actions"], out.get("trajectory")
        prefix = self._run(self._sessions[PREFIX_GRAPH[mode]], feeds)
        step = self._sessions[f"{FLOW_STEP_GRAPH}_{mode.value}"]
        kv_feeds = {k: v for k, v in prefix.items() if k.startswith(("k_", "v_"))}
        guide = {k: feeds[k] for k in ("prefix_actions", "prefix_weights") if k in feeds}
        x = feeds["noise"]
        dt = -1.0 / self._steps
        for i in range(self._steps):
            x = step.run(
                None,
                {
                    "x": x,
                    "time": np.array([1.0 + i * dt], dtype=np.float32),
                    "prefix_valid": prefix["prefix_valid"],
                    "num_valid": prefix["num_valid"],
                    "embodiment_id": feeds["embodiment_id"],
                    **guide,
                    **kv_feeds,
                },
            )[0]
        return x, prefix.get("trajectory")

    def infer(
        self,
        observation: Observation,
        *,
        mode: Mode | str = Mode.EFFICIENT,
        noise: np.ndarray | None = None,
        trace: bool = False,
        guide: ActionGuide | None = None,
    ) -> ActionChunk:
        return run_policy(
            self._pre, self._rng, observation, mode, noise, self._policy, trace=trace, guide=guide
        )

    def predict_world(
        self, observation: Observation, actions: np.ndarray, *, noise: np.ndarray | None = None
    ) -> WorldPrediction:
        def world(feeds: Feeds) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            if WORLD_MODEL_GRAPH not in self._sessions:
                raise ValueError(f"world model: this engine ({self.manifest.preset}) has none")
            out = self._run(self._sessions[WORLD_MODEL_GRAPH], feeds)
            return out["z_tokens"], out["value"], out["proprio"]

        return run_world_model(self._pre, self._rng, observation, actions, noise, world)

    def close(self) -> None:
        self._sessions.clear()
