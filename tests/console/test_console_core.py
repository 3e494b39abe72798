"""The console's core and web server without ROS: what a page may ask for, who may ask, and how
camera frames follow what the link carries."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from gigabrain_runtime.console.model import (
    ConsoleState,
    Control,
    Deadman,
    parse_control,
    token_ok,
)
from gigabrain_runtime.console.server import FRAME_HEADER, ConsoleServer
from gigabrain_runtime.params.nodes import ConsoleParams


@pytest.mark.parametrize(
    ("msg", "error"),
    [
        ({"op": "launch"}, r"op: unknown control 'launch'"),
        ({"op": "estop"}, r"engaged: missing"),
        ({"op": "estop", "engaged": "yes"}, r"engaged: 'yes' is not a bool"),
        ({"op": "episode", "event": "maybe"}, r"event: 'maybe' is not one of start, success"),
        ({"op": "mode", "mode": "turbo"}, r"mode: 'turbo' is not one of efficient, standard"),
        ({"op": "instruction", "text": "   "}, r"text: the instruction must be"),
        ([1, 2], r"control: expected a JSON object"),
    ],
)
def test_a_bad_control_is_refused_naming_the_field_and_value(msg, error):
    with pytest.raises(ValueError, match=error):
        parse_control(msg)


def test_good_controls_parse():
    assert parse_control({"op": "estop", "engaged": True}) == Control("estop", True)
    assert parse_control({"op": "instruction", "text": " put it back "}).value == "put it back"


def test_binding_beyond_loopback_needs_a_token_and_tokens_compare_exactly():
    with pytest.raises(ValueError, match=r"token: binding '0.0.0.0' \(beyond loopback\) needs"):
        ConsoleParams(bind="0.0.0.0")
    ConsoleParams(bind="0.0.0.0", token="abc")
    assert token_ok("", None) and token_ok("abc", "abc")
    assert not token_ok("abc", "abd") and not token_ok("abc", None) and not token_ok("abc", 1)


def test_hold_to_run_runs_only_while_held_recently():
    d = Deadman(0.3)
    assert not d.running(0.0)
    d.beat(True, 1.0)
    assert d.running(1.2) and not d.running(1.31)
    d.beat(True, 1.3)
    d.beat(False, 1.35)  # let go: held at once, not after the timeout
    assert not d.running(1.36)


def test_hold_to_run_keeps_one_key_per_page():
    d = Deadman(0.3)
    d.beat(True, 1.0, page=1)
    d.beat(False, 1.05, page=2)  # another page (a viewer) lets go of a key it never held
    assert d.running(1.06)
    d.beat(True, 1.1, page=2)
    d.beat(False, 1.15, page=1)  # one of two holders lets go: the other still holds
    assert d.running(1.16)
    assert not d.running(1.41)  # page 2 silent past the timeout: held
    d.beat(True, 1.5, page=1)
    d.beat(False, 1.55, page=1)  # the last holder lets go: held at once
    assert not d.running(1.56)


def test_the_snapshot_names_this_robots_executor_state_and_every_warning():
    s = ConsoleState(("j1", "j2"), ("cam",), namespace="/piper")
    s.diagnostics(
        "piper/executor: executor",
        0,
        "",
        {"state": "open_loop_limit", "period_jitter_p99_ms": "0.412"},
        10.0,
    )
    s.diagnostics(
        "piper/vla: inference",
        1,
        "camera cam: gone",
        {"latency_p50_ms": "80.5", "latency_p99_ms": "120.0", "mode": "standard"},
        10.0,
    )
    # another robot on the same /diagnostics is not this page's
    s.diagnostics("g1/executor: executor", 2, "watchdog", {"state": "watchdog_hold"}, 10.0)
    s.joint_state(["j2", "j1"], [0.2, 0.1], 10.0)
    s.joint_state(["j1"], [0.5], 10.1)  # a state without every joint is not plotted
    snap = s.snapshot(10.5)
    assert snap["executor"] == "open-loop" and snap["mode"] == "standard"
    assert snap["jitter_ms_p99"] == pytest.approx(0.412) and snap["inference_ms_p99"] == 120.0
    assert snap["positions"] == [[-0.5, [0.1, 0.2]]]
    assert snap["problems"] == [
        {"name": "piper/vla: inference", "level": "WARN", "message": "camera cam: gone"}
    ]
    # the latched topics win over the 1 Hz diagnostics, in the executor's order
    s.held = s.takeover = True
    assert s.snapshot(10.6)["executor"] == "operator takeover"
    s.estop = True
    assert s.snapshot(10.6)["executor"] == "e-stop"
    # a node gone quiet: its last word is not shown as current
    s.estop = s.held = s.takeover = False
    later = s.snapshot(14.0)
    assert later["executor"] == "no status" and later["problems"] == []


class FakeGraph:
    def __init__(self) -> None:
        self.state = ConsoleState(("j1",), ("cam_a", "cam_b"))
        self.applied: list[Control] = []
        self.seq = 1

    def apply(self, control: Control) -> None:
        if control.op == "takeover":
            raise ValueError("takeover: no teleop source publishes teleop/joint_command here")
        self.applied.append(control)

    def frame(self, camera: str):
        return (self.seq, b"\xff\xd8jpeg-" + camera.encode()) if camera == "cam_a" else None


def _serve(test, **kw):
    graph = FakeGraph()
    kw.setdefault("ack_timeout_s", 60.0)  # pacing by acks alone, however slow the machine
    server = ConsoleServer(graph, state_hz=20.0, camera_hz=30.0, **kw)

    async def main():
        async with TestClient(TestServer(server.app())) as client:
            await test(client, graph)

    asyncio.run(asyncio.wait_for(main(), 60))


async def _next(ws, kind):
    """The next message of a kind ('hello', 'state', 'reply' or 'frame'); states passed over
    are acknowledged, as the page does."""
    while True:
        msg = await ws.receive()
        if msg.type == aiohttp.WSMsgType.BINARY:
            if kind == "frame":
                return msg.data
            continue
        data = json.loads(msg.data)
        if data["type"] == kind:
            return data
        if data["type"] == "state":
            await ws.send_str(json.dumps({"op": "ack", "state": True}))


def test_a_wrong_token_gets_no_socket_no_episodes_and_no_control():
    async def test(client, graph):
        for query in ("", "?token=wrong"):
            with pytest.raises(aiohttp.WSServerHandshakeError) as e:
                await client.ws_connect("/ws" + query)
            assert e.value.status == 403
            assert (await client.get("/api/episodes" + query)).status == 403
        ws = await client.ws_connect("/ws?token=s3cret")
        await _next(ws, "hello")
        await ws.send_str(json.dumps({"op": "estop", "engaged": True, "token": "bad", "id": 1}))
        reply = await _next(ws, "reply")
        assert reply == {"type": "reply", "id": 1, "ok": False, "error": "token: missing or wrong"}
        assert graph.applied == []
        await ws.send_str(json.dumps({"op": "estop", "engaged": True, "token": "s3cret", "id": 2}))
        assert (await _next(ws, "reply"))["ok"] is True
        assert [(c.op, c.value) for c in graph.applied] == [("estop", True)]
        # the graph's refusal reaches the page, naming the field
        await ws.send_str(json.dumps({"op": "takeover", "active": True, "token": "s3cret"}))
        assert "takeover: no teleop source" in (await _next(ws, "reply"))["error"]
        assert (await client.get("/api/episodes?token=s3cret")).status == 200
        await ws.close()

    _serve(test, token="s3cret")


def test_a_camera_frame_waits_until_the_page_has_drawn_the_last():
    async def test(client, graph):
        ws = await client.ws_connect("/ws")
        hello = await _next(ws, "hello")
        assert hello["cameras"] == ["cam_a", "cam_b"]
        first = await _next(ws, "frame")
        assert FRAME_HEADER.unpack(first[:5]) == (0, 1) and first[5:] == b"\xff\xd8jpeg-cam_a"
        graph.seq = 2
        # the page draws (acknowledges) each state: states keep coming, frames do not
        states = 0
        while states < 10:
            msg = await ws.receive()
            assert msg.type == aiohttp.WSMsgType.TEXT
            if json.loads(msg.data)["type"] == "state":
                states += 1
                await ws.send_str(json.dumps({"op": "ack", "state": True}))
        await ws.send_str(json.dumps({"op": "ack", "camera": 0}))
        second = await _next(ws, "frame")
        assert FRAME_HEADER.unpack(second[:5]) == (0, 2)
        await ws.close()

    _serve(test)


def test_a_state_waits_until_the_page_has_drawn_the_last():
    """On a slow link the page gets fewer, current states, never a backlog."""

    async def test(client, graph):
        ws = await client.ws_connect("/ws")
        await _next(ws, "state")
        with pytest.raises(asyncio.TimeoutError):
            await _next_within(ws, "state", 0.5)  # 10 periods at 20 Hz: none without the ack
        await ws.send_str(json.dumps({"op": "ack", "state": True}))
        assert (await _next(ws, "state"))["type"] == "state"
        await ws.close()

    _serve(test)


def test_a_lost_acknowledgement_does_not_stall_the_page_for_good():
    """A page that never acknowledges (an ack lost, a tab that stopped drawing) still gets a
    state and a frame again once the acknowledgement is overdue."""

    async def test(client, graph):
        ws = await client.ws_connect("/ws")
        await ws.receive()  # hello
        kinds = []
        while kinds.count("state") < 3 or kinds.count("frame") < 3:  # never acknowledged
            msg = await ws.receive()
            kinds.append("frame" if msg.type == aiohttp.WSMsgType.BINARY else "state")
            graph.seq += 1
        await ws.close()

    _serve(test, ack_timeout_s=0.2)


def test_a_status_that_is_not_a_number_reaches_the_page_as_none():
    """A node reports "nan" before its first sample; NaN is not JSON a browser parses (the
    page would stop drawing), so the snapshot carries None."""
    s = ConsoleState(("j1",), ("cam",))
    s.diagnostics("executor: executor", 0, "", {"period_jitter_p99_ms": "nan"}, 1.0)
    s.diagnostics("vla: inference", 0, "", {"latency_p50_ms": "inf", "latency_p99_ms": "x"}, 1.0)
    snap = s.snapshot(1.0)
    assert snap["jitter_ms_p99"] is None and snap["inference_ms_p50"] is None
    json.dumps(snap, allow_nan=False)  # strict JSON


async def _next_within(ws, kind, seconds):
    return await asyncio.wait_for(_next(ws, kind), seconds)


def test_a_page_of_another_origin_gets_no_socket():
    """Any web site the operator visits could open ws://127.0.0.1:PORT: refused."""

    async def test(client, graph):
        with pytest.raises(aiohttp.WSServerHandshakeError) as e:
            await client.ws_connect("/ws", headers={"Origin": "http://evil.example"})
        assert e.value.status == 403
        host = f"{client.server.host}:{client.server.port}"
        ws = await client.ws_connect("/ws", headers={"Origin": f"http://{host}"})
        await _next(ws, "hello")
        await ws.close()

    _serve(test)


def test_a_frame_that_cannot_be_shown_is_reported_and_the_page_keeps_its_state():
    async def test(client, graph):
        def broken(camera):
            raise ValueError("encoding: 'yuv422' is not shown (rgb8, bgr8, mono8)")

        graph.frame = broken
        ws = await client.ws_connect("/ws")
        for _ in range(3):
            state = await _next(ws, "state")
            await ws.send_str(json.dumps({"op": "ack", "state": True}))
        assert any(
            p["name"] == "console: cam_a" and "yuv422" in p["message"] for p in state["problems"]
        )
        await ws.close()

    _serve(test)


def test_each_page_holds_its_own_key_and_a_page_closing_releases_only_its_own():
    """Two pages with hold-to-run: their 'held' reach the graph as two keys, and the page that
    closes releases its own key, not the one still held (which would brake the arm until the
    next 'held')."""

    async def test(client, graph):
        holder = await client.ws_connect("/ws")
        viewer = await client.ws_connect("/ws")
        for ws in (holder, viewer):
            await _next(ws, "hello")
        await holder.send_str(json.dumps({"op": "hold", "held": True, "id": 1}))
        assert (await _next(holder, "reply"))["ok"] is True
        await viewer.send_str(json.dumps({"op": "hold", "held": True, "id": 2}))
        assert (await _next(viewer, "reply"))["ok"] is True
        first, second = graph.applied
        assert first.page != second.page
        await viewer.close()
        closed = await _wait_applied(graph, 3)
        assert (closed.op, closed.value, closed.page) == ("hold", False, second.page)
        await holder.close()

    _serve(test, hold_to_run=True)


async def _wait_applied(graph, n):
    while len(graph.applied) < n:
        await asyncio.sleep(0.01)
    return graph.applied[n - 1]
