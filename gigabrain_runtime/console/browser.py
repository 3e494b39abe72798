"""A headless Chromium driven by Selenium, for the console's benchmark and its browser tests
(Debian's ``chromium`` and ``chromium-driver``; ``make test`` installs them). Selenium is a
test/benchmark dependency, imported only here and only when a browser is asked for."""

from __future__ import annotations

import shutil
from typing import Any

PAGE_STATUS_JS = """
const text = (id) => { const e = document.getElementById(id); return e ? e.textContent : null; };
return {link: text("link"), executor: text("executor"), reply: text("reply"),
        states_shown: window.statesShown || 0, reconnects: window.reconnects || 0};
"""


def headless_chromium(url: str | None = None, *, width: int = 1400, height: int = 1100) -> Any:
    """A new headless Chromium (a ``selenium`` WebDriver), at ``url`` if given; the caller
    quits it. FileNotFoundError where chromedriver is not installed."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    driver_path = shutil.which("chromedriver")
    if driver_path is None:
        raise FileNotFoundError("chromedriver: not found (apt-get install chromium-driver)")
    options = webdriver.ChromeOptions()
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--window-size={width},{height}",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    if url is not None:
        driver.get(url)
    return driver


def page_status(driver: Any) -> dict[str, Any]:
    """What the console page shows of its link (for a failing test's message): the banner,
    the executor's state, the last reply, states drawn and reconnects."""
    return dict(driver.execute_script(PAGE_STATUS_JS))
