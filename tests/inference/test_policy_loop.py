"""The vla's decisions, without DDS: freshness, stop, mode, errors, statistics (PolicyLoop)."""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np
import pytest

from gigabrain_runtime.diagnostics.stats import Level
from gigabrain_runtime.inference.export import preset_manifest
from gigabrain_runtime.inference.policy_loop import PolicyLoop, PolicyLoopConfig
from gigabrain_runtime.inference.preprocessing import InputError
from gigabrain_runtime.inference.types import ActionChunk, Mode, WorldPrediction
from gigabrain_runtime.perception.sync import SyncConfig
from gigabrain_runtime.robots.embodiment import get_embodiment

PIPER = get_embodiment("piper")


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def now_s(self) -> float:
        return self.t

    def monotonic(self) -> float:
        return self.t

    def advance(self, s: float) -> None:
        self.t += s


class FakeBackend:
    """The Backend protocol with scripted behaviour: takes ``cost_s`` of clock per chunk, or
    raises ``fail``."""

    name = "fake"

    def __init__(self, manifest, clock: FakeClock) -> None:  # noqa: ANN001
        self.manifest = manifest
        self.clock = clock
        self.fail: Exception | None = None
        self.cost_s = 0.01
        self.calls: list = []
        self.guides: list = []
        self.world_calls: list = []

    def infer(self, observation, *, mode=Mode.EFFICIENT, noise=None, trace=False, guide=None):  # noqa: ANN001
        self.calls.append((Mode.parse(mode), observation))
        self.guides.append(guide)
        if self.fail is not None:
            raise self.fail
        self.clock.advance(self.cost_s)
        h = self.manifest.config.action_expert.horizon
        # a chunk that moves: point k is the state + 0.01 k on every joint
        return ActionChunk(
            actions=np.tile(observation.state, (h, 1)) + 0.01 * np.arange(h)[:, None],
            joint_names=PIPER.joint_names,
            trajectory=np.zeros((0, 2), np.float32),
            mode=Mode.parse(mode),
            prompt=observation.instruction,
            num_tokens=len(observation.instruction),
        )

    def predict_world(self, observation, actions, *, noise=None):  # noqa: ANN001
        if self.fail is not None:
            raise self.fail
        self.world_calls.append((observation, np.asarray(actions)))
        cfg = self.manifest.config
        return WorldPrediction(
            z_tokens=np.zeros((cfg.num_wm_tokens, cfg.world_model.z_token_dim), np.float32),
            value=0.5,
            proprio=np.asarray(observation.state),
        )

    def close(self) -> None:
        pass


SYNC = SyncConfig(stamp_tolerance_s=0.1, max_image_age_s=0.15, max_state_age_s=0.1)


@pytest.fixture
def setup(tiny_cfg):
    clock = FakeClock()
    backend = FakeBackend(preset_manifest(tiny_cfg), clock)
    loop = PolicyLoop(
        backend,
        PolicyLoopConfig(robot="piper", instruction="pick", inference_hz=10.0, sync=SYNC),
        clock,
    )
    return loop, backend, clock


def feed(loop: PolicyLoop, clock: FakeClock) -> None:
    for cam in PIPER.cameras:
        loop.put_image(cam, clock.now_s(), np.zeros((224, 224, 3), np.uint8))
    loop.put_state(clock.now_s(), (PIPER.lower + PIPER.upper) / 2)


def status(loop: PolicyLoop, name: str):  # noqa: ANN201
    return next(s for s in loop.statuses() if s.name == name)


def test_no_chunk_until_every_input_has_arrived(setup):
    loop, backend, clock = setup
    assert loop.step() is None and loop.refusal == "no joint state received"
    loop.put_state(clock.now_s(), np.zeros(7))
    assert loop.step() is None and "no image yet from cam_high, cam_wrist" in loop.refusal
    assert backend.calls == []
    feed(loop, clock)
    out = loop.step()
    assert out is not None and out.chunk.actions.shape == (50, 7)
    assert loop.refusal == "" and out.latency_ms == pytest.approx(10.0)
    inf = status(loop, "inference")
    assert inf.level == Level.OK and inf.values["chunks"] == "1"
    assert inf.values["prompt"] == "pick"


def test_a_late_input_skips_the_chunk_without_a_stop(setup):
    """Late is not gone: no chunk from the late input, counted, and the executor is left to
    follow its plan (no stop, no error)."""
    loop, backend, clock = setup
    feed(loop, clock)
    assert loop.watchdog() is None and loop.step() is not None
    clock.advance(0.12)  # the joint state is past its 0.1 s limit, far from the 0.4 s timeout
    calls = len(backend.calls)
    assert loop.step() is None and "(limit 0.100 s)" in loop.refusal
    assert len(backend.calls) == calls
    assert loop.watchdog() is None
    assert loop.late_ticks == 1
    inputs, inference = status(loop, "inputs"), status(loop, "inference")
    assert inputs.level == Level.OK and inference.level == Level.OK
    assert inputs.values["late_ticks"] == "1" and "joint state" in inputs.values["last_late"]
    feed(loop, clock)
    assert loop.step() is not None


def test_an_input_gone_for_input_timeout_s_stops_the_arm_once_naming_it(setup):
    loop, _, clock = setup
    feed(loop, clock)
    stops = []
    for _ in range(7):  # cam_high falls silent; the wrist camera and the joint state go on
        clock.advance(0.06)
        loop.put_image("cam_wrist", clock.now_s(), np.zeros((224, 224, 3), np.uint8))
        loop.put_state(clock.now_s(), (PIPER.lower + PIPER.upper) / 2)
        stops.append(loop.watchdog())
    # gone after 0.4 s (the 7th tick: 0.42 s): one stop naming it, nothing for the others
    assert stops[:6] == [None] * 6
    assert stops[6] == "cam_high: gone (nothing for 0.42 s, timeout 0.4 s)"
    assert loop.watchdog() is None and loop.stops == 1
    inputs = status(loop, "inputs")
    assert inputs.level == Level.ERROR and "cam_high: gone" in inputs.message
    feed(loop, clock)  # back: chunks resume, and the next loss is a new stop
    assert loop.watchdog() is None and loop.step() is not None
    clock.advance(0.5)
    assert "gone" in loop.watchdog()


def test_a_cameras_age_limit_follows_the_rate_its_frames_arrive_at(setup):
    """A camera delivering 5 frames/s (a stock driver's large frames) is not stale between two
    frames: its limit is 2 measured periods + transport, within the input timeout."""
    loop, _, clock = setup
    chunks = 0
    for tick in range(40):  # 4 s at 10 Hz; cameras every 0.2 s, joint states every tick
        if tick % 2 == 0:
            for cam in PIPER.cameras:
                loop.put_image(cam, clock.now_s(), np.zeros((224, 224, 3), np.uint8))
        loop.put_state(clock.now_s(), (PIPER.lower + PIPER.upper) / 2)
        clock.advance(0.1)
        assert loop.watchdog() is None
        chunks += loop.step() is not None
    assert loop.sync.age_limits()["cam_high"] == pytest.approx(0.4)  # 2 x 0.2 + 0.05, capped
    assert chunks >= 38  # all but the first frames' ticks (no period measured yet)
    assert status(loop, "inputs").values["cam_high_age_limit_s"] == "0.400"


def test_inputs_that_never_arrived_do_not_stop_what_never_ran(setup):
    loop, _, _ = setup
    assert loop.watchdog() is None  # nothing was fresh yet: nothing to stop
    assert status(loop, "inputs").level == Level.STALE


def test_stamps_that_disagree_skip_a_chunk_without_a_stop(setup):
    loop, _, clock = setup
    feed(loop, clock)
    loop.put_state(clock.now_s() + 0.2, np.zeros(7))  # newer than the frames by 0.2 s
    assert loop.step() is None and "stamps spread" in loop.refusal
    assert loop.watchdog() is None


def test_standard_mode_uses_the_world_model_only_while_it_is_fresh(setup):
    loop, backend, clock = setup
    loop.set_mode("standard")
    feed(loop, clock)
    assert loop.step().chunk.mode is Mode.EFFICIENT  # no prediction yet
    assert "running efficient" in status(loop, "inference").message
    assert loop.world_step()
    feed(loop, clock)
    assert loop.step().chunk.mode is Mode.STANDARD
    assert backend.calls[-1][1].world is not None
    # after a chunk, the prediction is still made from the arm holding still, as the policy was
    # trained - never from its own last chunk
    assert loop.world_step()
    obs, actions = backend.world_calls[-1]
    np.testing.assert_array_equal(actions, np.tile(obs.state, (len(actions), 1)))
    assert status(loop, "inference").level == Level.OK
    clock.advance(1.05)  # older than max_world_model_age_s (1 s)
    feed(loop, clock)
    assert loop.step().chunk.mode is Mode.EFFICIENT
    loop.set_mode("efficient")
    assert not loop.world_step()  # the world model runs in standard mode only


def test_standard_mode_is_refused_without_a_world_model(tiny_cfg):
    from gigabrain_runtime.model.config import GIGABRAIN0_VARIANT

    cfg = replace(tiny_cfg, variant=replace(GIGABRAIN0_VARIANT, slot_family="runtime"))
    manifest = replace(preset_manifest(tiny_cfg), model=cfg.to_dict())
    clock = FakeClock()
    loop = PolicyLoop(FakeBackend(manifest, clock), PolicyLoopConfig(robot="piper"), clock)
    with pytest.raises(ValueError, match="standard needs a world model"):
        loop.set_mode("standard")
    assert loop.mode is Mode.EFFICIENT
    with pytest.raises(ValueError, match="standard needs a world model"):
        PolicyLoop(
            FakeBackend(manifest, clock), PolicyLoopConfig(robot="piper", mode="standard"), clock
        )


def test_bad_input_and_model_failures_are_told_apart_and_survived(setup):
    loop, backend, clock = setup
    feed(loop, clock)
    backend.fail = InputError("state: 50.0 at joint 'joint1'")
    assert loop.step() is None
    assert loop.refusal == "inference input: state: 50.0 at joint 'joint1'"
    assert loop.errors == 0
    backend.fail = RuntimeError("CUDA error: an illegal memory access")
    assert loop.step() is None
    assert loop.refusal.startswith("inference error: RuntimeError: CUDA error")
    assert loop.errors == 1
    inf = status(loop, "inference")
    assert inf.level == Level.WARN and inf.values["inference_errors"] == "1"
    backend.fail = None
    assert loop.step() is not None and loop.refusal == ""


def test_a_backend_value_error_from_inside_the_model_is_an_inference_error(setup):
    """Only the preprocessor's refusals are input problems; a ValueError from the model run
    (e.g. an ONNX shape mismatch) is not the robot's fault."""
    loop, backend, clock = setup
    feed(loop, clock)
    backend.fail = ValueError("Got invalid dimensions for input: images")
    assert loop.step() is None and loop.refusal.startswith("inference error: ValueError")
    assert loop.errors == 1


def test_deadline_misses_and_a_stalled_thread_are_reported(setup):
    loop, backend, clock = setup
    feed(loop, clock)
    backend.cost_s = 0.15  # longer than the 0.1 s period
    loop.step()
    assert loop.deadline_misses == 1
    clock.advance(0.6)  # no step for 6 periods
    inf = status(loop, "inference")
    assert inf.level == Level.ERROR and "stalled" in inf.message


def test_input_errors_are_safe_to_report_from_any_thread(setup):
    """The world-model thread records errors while the diagnostics timer reads them."""
    loop, _, _ = setup
    stop = threading.Event()

    def writer(k: int) -> None:
        i = 0
        while not stop.is_set():
            loop.input_error(f"src{k}_{i % 50}", "bad" if i % 2 else None)
            i += 1

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    try:
        for _ in range(300):
            loop.statuses()
    finally:
        stop.set()
        for t in threads:
            t.join()


def test_a_dropped_message_is_reported_until_the_next_good_one(setup):
    loop, _, clock = setup
    feed(loop, clock)
    loop.input_error("cam_high", "image.encoding: unsupported 'yuv422'")
    assert "cam_high: image.encoding" in status(loop, "inputs").message
    feed(loop, clock)
    assert status(loop, "inputs").level == Level.OK


def test_instruction_changes_reach_the_next_chunk(setup):
    loop, backend, clock = setup
    feed(loop, clock)
    loop.set_instruction("place the cube")
    loop.step()
    assert backend.calls[-1][1].instruction == "place the cube"
    with pytest.raises(ValueError, match="instruction"):
        loop.set_instruction(3)  # type: ignore[arg-type]


def test_a_state_far_outside_the_limits_is_refused_and_named(setup):
    loop, backend, clock = setup
    feed(loop, clock)
    assert loop.step() is not None and loop.watchdog() is None  # running on fresh inputs
    wild = (PIPER.lower + PIPER.upper) / 2
    wild[2] = 50.0
    assert loop.put_state(clock.now_s(), wild) is False
    inputs = status(loop, "inputs")
    assert inputs.level == Level.ERROR
    assert "joint_states: joint3=50.0000 outside" in inputs.message
    clock.advance(0.2)  # only the wild state keeps arriving: the last good one ages out
    for cam in PIPER.cameras:
        loop.put_image(cam, clock.now_s(), np.zeros((224, 224, 3), np.uint8))
    loop.put_state(clock.now_s(), wild)
    calls = len(backend.calls)
    assert loop.step() is None and len(backend.calls) == calls  # nothing computed from it
    reason = loop.watchdog()  # and the executor is told to stop, naming the state
    assert reason is not None and reason.startswith("joint_states: invalid (joint3=50.0000")
    feed(loop, clock)
    assert loop.step() is not None and status(loop, "inputs").level == Level.OK


def test_a_chunk_with_non_finite_actions_is_never_returned(setup):
    loop, backend, clock = setup
    feed(loop, clock)
    real_infer = backend.infer

    def broken(observation, **kw):  # noqa: ANN001, ANN003
        chunk = real_infer(observation, **kw)
        chunk.actions[7, 1] = np.nan
        return chunk

    backend.infer = broken
    assert loop.step() is None and loop.outputs_refused == 1
    inf = status(loop, "inference")
    assert inf.level == Level.ERROR and "(first: point 7, joint 1)" in inf.message
    assert inf.values["outputs_refused"] == "1" and inf.values["chunks"] == "0"

    def beyond(observation, **kw):  # noqa: ANN001, ANN003
        chunk = real_infer(observation, **kw)
        chunk.actions[:, 0] = 4.0  # past joint1's limit: the executor's limiter clamps it
        return chunk

    backend.infer = beyond
    assert loop.step() is not None and loop.outputs_refused == 1
    backend.infer = real_infer
    assert loop.step() is not None and status(loop, "inference").level == Level.OK


def test_without_known_limits_only_finiteness_is_checked(tiny_cfg):
    from gigabrain_runtime.inference.policy_loop import known_limits

    assert known_limits("piper", PIPER.joint_names) is PIPER
    assert known_limits("piper", ("a", "b")) is None  # the engine's joints differ
    assert known_limits("no_such_robot", PIPER.joint_names) is None


# ---- execution: rtc's guide, sync's wait --------------------------------------------------
def make_loop(tiny_cfg, **cfg):  # noqa: ANN201
    clock = FakeClock()
    backend = FakeBackend(preset_manifest(tiny_cfg), clock)
    loop = PolicyLoop(
        backend,
        PolicyLoopConfig(robot="piper", instruction="pick", inference_hz=10.0, sync=SYNC, **cfg),
        clock,
    )
    return loop, backend, clock


def test_rtc_guides_each_chunk_by_the_last_on_its_own_time_grid(tiny_cfg):
    loop, backend, clock = make_loop(tiny_cfg, execution="rtc")
    feed(loop, clock)
    first = loop.step()
    assert first is not None and backend.guides == [None]  # nothing to continue yet
    t_first = first.observation.stamp_s
    for delay in (30, 7, 7, 7, 7, 7):  # a warm-up outlier, then steady delays
        loop.observe_delay(delay)
    assert loop.delay_steps() == 7  # the warm-up fell out of the window of 5
    clock.advance(0.1 - backend.cost_s)  # the next observation, 5 control periods later
    feed(loop, clock)
    assert loop.step() is not None
    guide = backend.guides[-1]
    h = first.chunk.actions.shape[0]
    shift = round((clock.now_s() - backend.cost_s - t_first) * 50)
    assert shift == 5
    # point k of the new chunk is due when point k + 5 of the last one was
    np.testing.assert_allclose(guide.actions[: h - shift], first.chunk.actions[shift:])
    np.testing.assert_allclose(
        guide.actions[h - shift :], first.chunk.actions[-1:].repeat(shift, 0)
    )
    w = guide.weights
    assert np.all(w[:7] == 1.0)  # executed while the model computes: frozen
    assert np.all(np.diff(w[7 : h - shift]) < 0) and 0 < w[h - shift - 1] < w[7] < 1
    assert np.all(w[h - shift :] == 0.0)  # past the last chunk's end: free
    loop.reset_execution()  # the arm stopped following it
    clock.advance(0.1)
    feed(loop, clock)
    loop.step()
    assert backend.guides[-1] is None


def test_sync_observes_again_only_after_execute_steps_have_run(tiny_cfg):
    loop, backend, clock = make_loop(
        tiny_cfg, execution="sync", execute_steps=30, inject_delay_s=0.2
    )
    feed(loop, clock)
    assert loop.step() is not None
    published = clock.now_s()
    waits = 0
    while clock.now_s() < published + 0.2 + 30 / 50 - 1e-9:
        clock.advance(0.1)
        feed(loop, clock)
        if clock.now_s() < published + 0.8 - 1e-9:
            assert loop.step() is None
            waits += 1
    assert waits >= 7
    assert loop.step() is not None, loop.refusal
    assert len(backend.calls) == 2
    assert all(g is None for g in backend.guides)  # sync never guides


def test_an_unknown_execution_mode_is_refused_naming_it():
    with pytest.raises(ValueError, match=r"execution: unknown 'async' \(known: sync, crossfade"):
        PolicyLoopConfig(robot="piper", execution="async")
