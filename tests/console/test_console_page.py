"""The console page itself in a real headless Chromium, over a fake graph (no ROS): frames are
drawn and acknowledged, keyboard shortcuts send their controls, hold-to-run sends 'held' while
Space is down and lets go when it is released, and a lost server is announced at once."""

from __future__ import annotations

import asyncio
import shutil
import time

import cv2
import numpy as np
import pytest

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402

from gigabrain_runtime.console.browser import headless_chromium  # noqa: E402
from gigabrain_runtime.console.model import ConsoleState, Control  # noqa: E402
from gigabrain_runtime.console.server import ConsoleServer  # noqa: E402

CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMEDRIVER is None, reason="no chromedriver (make test installs chromium-driver)"
)


def wait_for(predicate, timeout: float, what: str):
    end = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)
    return value


class Graph:
    def __init__(self) -> None:
        self.state = ConsoleState(("j1",), ("cam_a",))
        self.applied: list[tuple[float, Control]] = []
        self.seq = 0
        img = np.zeros((48, 64, 3), np.uint8)
        img[:, :32] = (0, 0, 255)
        self.jpeg = cv2.imencode(".jpg", img)[1].tobytes()

    def apply(self, control: Control) -> None:
        self.applied.append((time.monotonic(), control))

    def frame(self, camera: str):
        self.seq += 1  # a new frame every time: the page's acks set the pace
        return self.seq, self.jpeg

    def ops(self, op: str) -> list:
        return [c.value for _, c in self.applied if c.op == op]


@pytest.fixture
def page():
    graph = Graph()
    server = ConsoleServer(graph, hold_to_run=True, camera_hz=30.0)
    port = server.start("127.0.0.1", 0)
    driver = headless_chromium(f"http://127.0.0.1:{port}/")
    try:
        yield driver, graph, server
    finally:
        driver.quit()
        server.stop()


def frames(driver) -> int:
    return int(
        driver.execute_script(
            "const e = document.getElementById('cam_0'); return e ? e.dataset.frames : 0"
        )
        or 0
    )


def test_shortcuts_hold_to_run_and_a_lost_server_on_the_page(page):
    driver, graph, server = page
    wait_for(lambda: frames(driver) >= 5, 30, "frames drawn and acknowledged")
    assert driver.find_element(By.ID, "link").get_attribute("class") == "banner ok"
    body = driver.find_element(By.TAG_NAME, "body")
    body.send_keys("e")
    wait_for(lambda: graph.ops("estop") == [True], 10, "the e-stop shortcut")
    # the browser's own shortcuts are not the console's: Ctrl+F marks nothing
    ActionChains(driver).key_down(Keys.CONTROL).send_keys("f").key_up(Keys.CONTROL).perform()
    body.send_keys("s")
    body.send_keys("y")
    wait_for(lambda: graph.ops("episode") == ["start", "success"], 10, "start and success")
    # hold-to-run: 'held' keeps coming while Space is down, 'released' when it comes up
    ActionChains(driver).key_down(Keys.SPACE).perform()
    wait_for(lambda: graph.ops("hold").count(True) >= 5, 10, "held beats while Space is down")
    ActionChains(driver).key_up(Keys.SPACE).perform()
    wait_for(lambda: graph.ops("hold")[-1] is False, 10, "the release")
    n = len(graph.ops("hold"))
    time.sleep(0.5)  # nothing may follow a release: no stray beats
    assert len(graph.ops("hold")) == n
    # the server goes away: the page says so within a second
    server.stop()
    gone = time.monotonic()
    wait_for(
        lambda: "CONNECTION LOST" in driver.find_element(By.ID, "link").text,
        5,
        "the lost-connection banner",
    )
    assert time.monotonic() - gone < 1.5


def test_a_page_whose_socket_goes_silent_says_so_and_reconnects():
    """A socket can stay open with nothing coming through it (a stalled server task, a proxy
    that holds the connection): the page says the link is lost and starts a new one."""
    graph = Graph()
    server = ConsoleServer(graph, camera_hz=30.0)
    real_send, sockets = server._send, []

    async def first_silent(ws, *args):
        sockets.append(ws)
        if len(sockets) == 1:
            await asyncio.Event().wait()  # the first socket: open, and nothing sent on it
        await real_send(ws, *args)

    server._send = first_silent
    port = server.start("127.0.0.1", 0)
    driver = headless_chromium(f"http://127.0.0.1:{port}/")
    try:
        wait_for(
            lambda: "CONNECTION LOST" in driver.find_element(By.ID, "link").text,
            30,
            "the lost-link banner on the silent socket",
        )
        assert driver.execute_script("return window.statesShown || 0") == 0
        wait_for(
            lambda: driver.execute_script("return window.statesShown || 0") > 0,
            60,
            "states on a new socket",
        )
        assert len(sockets) == 2 and driver.execute_script("return window.reconnects") == 1
        wait_for(lambda: frames(driver) >= 3, 30, "frames on the new socket")
        assert driver.find_element(By.ID, "link").get_attribute("class") == "banner ok"
    finally:
        driver.quit()
        server.stop()
