"""The operator console in a real browser (Debian's headless chromium, driven by Selenium)
against the page a running simulated graph serves: camera frames update, a wrong token gets
nothing, start + take over + hand back + success record an episode with that outcome and one
intervention segment, and the e-stop clicked on the page freezes the executor's command."""

from __future__ import annotations

import shutil
import socket
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
webdriver = pytest.importorskip("selenium.webdriver")

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.node import Node  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Bool  # noqa: E402

from gigabrain_runtime.console.browser import headless_chromium, page_status  # noqa: E402
from gigabrain_runtime.ros import qos  # noqa: E402
from tests.ros.harness import ROOT, Inbox, graph, wait_for  # noqa: E402

CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMEDRIVER is None, reason="no chromedriver (make test installs chromium-driver)"
)
TOKEN = "test-token-5521"


class Observer(Node, Inbox):
    def __init__(self) -> None:
        Node.__init__(self, "console_test", namespace="/piper")
        Inbox.__init__(self)
        self.create_subscription(JointState, "joint_command", self._rec("command"), qos.COMMAND)
        qos.latched_subscriptions(self, Bool, "intervention/active", self._rec("active"))
        self.create_subscription(
            DiagnosticArray, "/diagnostics", self._rec("diagnostics"), qos.DIAGNOSTICS
        )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _browser():
    return headless_chromium(width=1400, height=1000)


def _on_page(driver, predicate, what: str, timeout: float = 30.0):
    """Wait for the page to show something; a failure says what the page showed of its link."""
    try:
        return wait_for(predicate, timeout, what)
    except AssertionError as e:
        raise AssertionError(f"{e}; the page: {page_status(driver)}") from None


def _frames(driver, i: int) -> int:
    return int(
        driver.execute_script(
            f"const e = document.getElementById('cam_{i}'); return e ? e.dataset.frames : 0"
        )
        or 0
    )


def _graph_heard(obs, driver, status: str, since: float, where, log) -> None:
    """Wait (30 s) for the node's ``status`` on /diagnostics to show what the page asked for;
    if it never does, say what the page showed and which controls it sent (did the click or key
    reach the page, and the page the server?)."""
    try:
        obs.diag(status, since=since, where=where, timeout=30, log=log)
    except AssertionError as e:
        sent = driver.execute_script("return window.sentControls")
        raise AssertionError(f"{e}; the page: {page_status(driver)}; sent: {sent}") from None


def test_the_console_page_drives_the_simulated_graph(tiny_engine, tmp_path):
    port = _free_port()
    rec = tmp_path / "rec"
    log = tmp_path / "launch.log"
    url = f"http://localhost:{port}/"
    with graph() as g:
        g.launch(
            [
                "launch",
                str(ROOT / "launch" / "sim_piper.launch.yaml"),
                f"engine:={tiny_engine}",
                f"record_dir:={rec}",
                "console:=true",
                f"console_port:={port}",
                f"console_token:={TOKEN}",
                "realtime_priority:=0",
            ],
            log,
        )
        obs = g.spin(Observer())
        obs.wait_count("command", 20, timeout=120, log=log)
        wait_for(lambda: _get(f"{url}api/episodes?token={TOKEN}") == 200, 60, "the console", log)
        # a wrong token: the API answers 403 and the page gets no socket, and says so
        assert _get(f"{url}api/episodes?token=wrong") == 403
        driver = _browser()
        try:
            driver.get(f"{url}?token=wrong")
            _on_page(
                driver,
                lambda: "CONNECTION LOST" in driver.find_element(By.ID, "link").text,
                "the page to say it has no connection",
            )
            assert _frames(driver, 0) == 0
            # the right token: both cameras update
            driver.get(f"{url}?token={TOKEN}")
            opened = time.monotonic()
            wait_for(
                lambda: _frames(driver, 0) >= 3 and _frames(driver, 1) >= 3,
                60,
                "camera frames on the page",
                log,
            )
            first = _frames(driver, 0)
            wait_for(lambda: _frames(driver, 0) >= first + 3, 30, "more frames", log)
            body = driver.find_element(By.TAG_NAME, "body")
            # start (its keyboard shortcut), take over, hand back, success
            body.send_keys("s")
            t0 = time.monotonic()
            _graph_heard(
                obs, driver, "recorder: recorder", t0, lambda d: d["recording"] == "true", log
            )
            driver.find_element(By.ID, "takeover").click()
            wait_for(lambda: any(m.data for m in obs.msgs("active", t0)), 30, "the takeover", log)
            t1 = time.monotonic()
            obs.wait_count("command", 25, since=t1, log=log)  # the operator drives a while
            driver.find_element(By.ID, "handback").click()
            wait_for(lambda: any(not m.data for m in obs.msgs("active", t1)), 30, "hand-back", log)
            obs.wait_count("command", 25, since=time.monotonic(), log=log)
            driver.find_element(By.ID, "success").click()
            from gigabrain_runtime.hilr.recording import read_sidecar

            def recorded():
                eps = [d for d in rec.iterdir() if d.is_dir()] if rec.is_dir() else []
                infos = [read_sidecar(d) for d in eps if (d / "metadata.yaml").is_file()]
                return next((i for i in infos if i.status == "complete"), None)

            info = wait_for(recorded, 30, "the recorded episode", log)
            assert info.outcome == "success"
            assert len(info.interventions) == 1
            assert info.interventions[0]["end_s"] > info.interventions[0]["start_s"]
            # the episode list shows it, and a click shows its plot
            driver.find_element(By.ID, "refresh").click()
            row = _on_page(
                driver,
                lambda: next(
                    (
                        r
                        for r in driver.find_elements(By.CSS_SELECTOR, "tr.episode")
                        if "success" in r.text
                    ),
                    None,
                ),
                "the episode in the page's list",
            )
            row.click()
            _on_page(
                driver,
                lambda: driver.execute_script(
                    "const i = document.getElementById('plot'); return i.complete && i.naturalWidth"
                ),
                "the episode's plot on the page",
            )
            # e-stop: the policy is moving the arm; the command freezes within 100 ms of the click
            moving_since = time.monotonic()
            wait_for(
                lambda: _moving(obs.msgs("command", moving_since)),
                60,
                "the policy to move the arm",
                log,
            )
            button = driver.find_element(By.ID, "estop")
            clicked = time.monotonic()
            button.click()
            after = [m for _, m in obs.wait_count("command", 40, since=clicked, log=log)]
            # the click as the page saw it (its handler's wall-clock time, ms), against the
            # executor's own stamp (the same clock) on the last command that still moved
            sent = driver.execute_script("return window.sentControls")
            (click_ms,) = [c["t"] for c in sent if c["op"] == "estop" and c["value"] is True]
            ms = [m.header.stamp.sec * 1e3 + m.header.stamp.nanosec / 1e6 for m in after]
            moved = [
                t
                for a, b, t in zip(after, after[1:], ms[1:])
                if np.max(np.abs(np.subtract(b.position, a.position))) > 1e-9
            ]
            latency_ms = (moved[-1] if moved else click_ms) - click_ms
            print(f"e-stop: the last command that moved was {latency_ms:.1f} ms after the click")
            # the arm was moving when the page sent the e-stop (else nothing was measured)
            before = [
                m
                for m in obs.msgs("command", clicked - 1.0)
                if click_ms - 200
                <= m.header.stamp.sec * 1e3 + m.header.stamp.nanosec / 1e6
                <= click_ms
            ]
            assert _moving(before, n=4), "the arm was at rest at the click"
            assert latency_ms <= 100, f"command still changing {latency_ms:.0f} ms after e-stop"
            _on_page(
                driver,
                lambda: driver.find_element(By.ID, "executor").text == "e-stop",
                "the page to show the e-stop",
            )
            # the instruction and the mode, from the page to the vla and back
            field = driver.find_element(By.ID, "instruction")
            field.send_keys("put the red cube back")
            driver.find_element(By.CSS_SELECTOR, "#instruction_form button").click()
            _on_page(
                driver,
                lambda: (
                    driver.find_element(By.ID, "current_instruction").text
                    == "put the red cube back"
                ),
                "the new instruction on the page",
            )
            t2 = time.monotonic()
            driver.find_element(By.ID, "modeswitch").click()
            _graph_heard(obs, driver, "vla: inference", t2, lambda d: d["mode"] == "standard", log)
            _on_page(
                driver,
                lambda: driver.find_element(By.ID, "mode").text == "standard",
                "the mode on the page",
            )
            status = page_status(driver)
            rate = status["states_shown"] / (time.monotonic() - opened)
            print(f"the page at the end: {status}; {rate:.1f} states/s drawn")
        finally:
            driver.quit()


def _moving(msgs: list, n: int = 10) -> bool:
    if len(msgs) < n:
        return False
    p = np.array([m.position for m in msgs[-n:]])
    return bool(np.all(np.max(np.abs(np.diff(p, axis=0)), axis=1) > 1e-9))


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0
