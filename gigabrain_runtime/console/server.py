"""The console's web server: one page, one WebSocket, the episode list and plots (aiohttp).

The page (``static/``) opens ``/ws?token=...``. The server sends the state snapshot as JSON
``state_hz`` times a second and each camera's newest frame as a binary message (1 byte camera
index, 4 bytes frame number, the JPEG) - the next frame of a camera only after the page has
drawn the last one (``{"op": "ack", "camera": i}``) and at most ``camera_hz`` a second, so a slow
link receives fewer frames and nothing queues up. The page sends controls as JSON
(``model.parse_control``), each with the token; every one is answered
``{"type": "reply", "id": ..., "ok": ..., "error": ...}``.

With a token set, the WebSocket, the episode API and every control are refused without it
(HTTP 403; a control: ``ok: false``). The server runs in its own thread and asyncio loop
(:class:`ConsoleServer`); the graph behind it is any :class:`ConsoleGraph` (the ROS node, or a
test's fake). Nothing here imports rclpy.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import struct
import tempfile
import threading
import time
from importlib import resources
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web

from gigabrain_runtime.console.model import ConsoleState, Control, parse_control, token_ok


class ConsoleGraph(Protocol):
    """What the server needs of the graph: its state, its controls and its camera frames."""

    state: ConsoleState

    def apply(self, control: Control) -> None:
        """Carry out a control; ValueError (shown on the page) where it cannot be."""

    def frame(self, camera: str) -> tuple[int, bytes] | None:
        """The camera's newest frame as (frame number, JPEG), or None before the first."""


STATIC = resources.files("gigabrain_runtime.console") / "static"
FRAME_HEADER = struct.Struct(">BI")  # camera index, frame number


class ConsoleServer:
    """The aiohttp application for ``graph``, served from a thread of its own."""

    def __init__(
        self,
        graph: ConsoleGraph,
        *,
        token: str = "",
        record_dir: Path | None = None,
        camera_hz: float = 10.0,
        state_hz: float = 10.0,
        hold_to_run: bool = False,
        ack_timeout_s: float = 2.0,
    ) -> None:
        """``ack_timeout_s``: a state or frame the page has not acknowledged within this long
        is taken as lost (a dropped ack must not stall the stream for good), and the next one
        goes out regardless."""
        self.graph = graph
        self.token = token
        self.record_dir = Path(record_dir) if record_dir else None
        self.camera_period = 1.0 / camera_hz
        self.state_period = 1.0 / state_hz
        self.hold_to_run = hold_to_run
        self.ack_timeout = ack_timeout_s
        self.clients = 0
        self._pages = itertools.count(1)
        self.frames_sent = 0
        self.states_sent = 0
        self._plots = Path(tempfile.mkdtemp(prefix="gigabrain-console-plots-"))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # ---- application ---------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self._index)
        app.router.add_get("/static/{name}", self._static)
        app.router.add_get("/ws", self._ws)
        app.router.add_get("/api/episodes", self._episodes)
        app.router.add_get("/api/episodes/{name}/plot.png", self._plot)
        return app

    def _check(self, request: web.Request) -> None:
        """The token, and that a browser's request comes from this page: any web site the
        operator visits could otherwise open ws://127.0.0.1:PORT and drive the robot."""
        if not token_ok(self.token, request.query.get("token")):
            raise web.HTTPForbidden(text="token: missing or wrong")
        origin = request.headers.get("Origin")
        if origin is not None and urlsplit(origin).netloc != request.host:
            raise web.HTTPForbidden(text=f"origin: {origin!r} is not this console's page")

    async def _index(self, request: web.Request) -> web.Response:
        return web.Response(text=(STATIC / "index.html").read_text(), content_type="text/html")

    async def _static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        kinds = {".js": "application/javascript", ".css": "text/css"}
        kind = kinds.get(Path(name).suffix)
        f = STATIC / name
        if kind is None or "/" in name or not f.is_file():
            raise web.HTTPNotFound()
        return web.Response(text=f.read_text(), content_type=kind)

    async def _episodes(self, request: web.Request) -> web.Response:
        self._check(request)
        from gigabrain_runtime.hilr.episodes import episode_rows

        if self.record_dir is None or not self.record_dir.is_dir():
            return web.json_response({"record_dir": str(self.record_dir or ""), "episodes": []})
        rows = await asyncio.to_thread(episode_rows, self.record_dir)
        return web.json_response({"record_dir": str(self.record_dir), "episodes": rows})

    async def _plot(self, request: web.Request) -> web.Response:
        self._check(request)
        from gigabrain_runtime.hilr.plot import plot_episode

        name = request.match_info["name"]
        ep = (self.record_dir / name) if self.record_dir else None
        if ep is None or "/" in name or name.startswith(".") or not ep.is_dir():
            raise web.HTTPNotFound(text=f"episode: no episode {name!r}")
        stamp = max((p.stat().st_mtime_ns for p in ep.iterdir()), default=0)
        out = self._plots / f"{name}-{stamp}.png"
        if not out.is_file():
            try:
                await asyncio.to_thread(plot_episode, ep, out)
            except ValueError as e:
                raise web.HTTPNotFound(text=str(e)) from None
        return web.FileResponse(out)

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        self._check(request)  # before the upgrade: a wrong token never gets a socket
        # pings every 5 s (aiohttp closes a socket whose pong is 2.5 s late); the page itself
        # notices a silent link within a second from the 10 Hz state
        ws = web.WebSocketResponse(heartbeat=5.0, max_msg_size=64 * 1024)
        await ws.prepare(request)
        self.clients += 1
        page = next(self._pages)  # this connection's number (its hold-to-run key)
        cams = self.graph.state.cameras
        await ws.send_str(
            json.dumps({"type": "hello", "cameras": list(cams), "hold_to_run": self.hold_to_run})
        )
        acked = [True] * (len(cams) + 1)  # each camera's last frame, and (last) the state
        last_sent = [-1] * len(cams)
        sent_at = [0.0] * len(cams)
        sender = asyncio.create_task(self._send(ws, acked, last_sent, sent_at))
        # a sender that fails closes the socket: the page says so and reconnects
        sender.add_done_callback(
            lambda t: t.cancelled() or t.exception() is None or asyncio.ensure_future(ws.close())
        )
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                reply = self._receive(msg.data, acked, page)
                if reply is not None:
                    await ws.send_str(json.dumps(reply))
        finally:
            sender.cancel()
            self.clients -= 1
            if self.hold_to_run:  # a page gone is a key let go
                with contextlib.suppress(ValueError):
                    self.graph.apply(Control("hold", False, page))
        return ws

    def _receive(self, text: str, acked: list[bool], page: int = 0) -> dict[str, Any] | None:
        try:
            msg = json.loads(text)
        except json.JSONDecodeError:
            return {"type": "reply", "ok": False, "error": "control: not JSON"}
        if isinstance(msg, dict) and msg.get("op") == "ack":
            i = msg.get("camera")
            if isinstance(i, int) and 0 <= i < len(acked) - 1:
                acked[i] = True
            elif msg.get("state") is True:
                acked[-1] = True
            return None
        ident = msg.get("id") if isinstance(msg, dict) else None
        if not isinstance(msg, dict) or not token_ok(self.token, msg.get("token")):
            return {"type": "reply", "id": ident, "ok": False, "error": "token: missing or wrong"}
        try:
            control = dataclasses.replace(parse_control(msg), page=page)
            self.graph.apply(control)
        except ValueError as e:
            return {"type": "reply", "id": ident, "op": msg.get("op"), "ok": False, "error": str(e)}
        return {"type": "reply", "id": ident, "op": control.op, "ok": True}

    async def _send(
        self,
        ws: web.WebSocketResponse,
        acked: list[bool],
        last_sent: list[int],
        sent_at: list[float],
    ) -> None:
        cams = self.graph.state.cameras
        next_state = state_at = 0.0
        tick = min(self.state_period, self.camera_period) / 2
        while not ws.closed:
            now = time.monotonic()
            # the state too waits for the page to have drawn the last one: on a slow link
            # the page sees fewer, current states rather than a growing backlog
            if now >= next_state and (acked[-1] or now - state_at > self.ack_timeout):
                # cleared before the send: the page's ack may be read before this resumes
                next_state, state_at, acked[-1] = now + self.state_period, now, False
                await ws.send_str(json.dumps(self.graph.state.snapshot(now)))
                self.states_sent += 1
            for i, cam in enumerate(cams):
                waiting = not acked[i] and now - sent_at[i] <= self.ack_timeout
                if waiting or now - sent_at[i] < self.camera_period:
                    continue
                try:
                    frame = await asyncio.to_thread(self.graph.frame, cam)
                except Exception as e:  # noqa: BLE001 - one bad frame must not end the page
                    self._camera_error(cam, e)
                    sent_at[i] = now
                    continue
                if frame is None or frame[0] == last_sent[i]:
                    continue
                seq, jpeg = frame
                acked[i], last_sent[i], sent_at[i] = False, seq, now  # before: as for the state
                await ws.send_bytes(FRAME_HEADER.pack(i, seq & 0xFFFFFFFF) + jpeg)
                self.frames_sent += 1
            await asyncio.sleep(tick)

    def _camera_error(self, cam: str, error: Exception) -> None:
        self.graph.state.diagnostics(
            f"console: {cam}", 1, f"frame not shown: {error}", {}, time.monotonic()
        )

    # ---- thread --------------------------------------------------------------------------------
    def start(self, host: str, port: int) -> int:
        """Serve on ``host:port`` from a daemon thread; returns the port (``port`` 0: any)."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                self._runner = web.AppRunner(self.app(), access_log=None)
                loop.run_until_complete(self._runner.setup())
                site = web.TCPSite(self._runner, host, port)
                loop.run_until_complete(site.start())
                self.port = int(self._runner.addresses[0][1])
            except BaseException as e:  # noqa: BLE001 - reported to start()'s caller
                failure.append(e)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=serve, name="console-web", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise OSError(f"bind/port: cannot serve on {host}:{port}: {failure[0]}")
        return self.port

    def stop(self) -> None:
        """Close every page's socket and stop serving (again: nothing)."""
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is not None and thread is not None and thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5.0)
