"""The app in a real browser: `streamlit run` headless on a free local port, driven by Playwright and Debian's Chromium.

Needs /usr/bin/chromium (`apt-get install -y chromium`; `playwright install` cannot download browsers here).
Screenshots land in screenshots/ (git-ignored) for people to look at.
"""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from ui_workspace import shared_workspace

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "ui" / "app.py"
SHOTS = ROOT / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = pytest.mark.browser


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, process: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"streamlit exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read().decode().strip() == "ok":
                    return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"streamlit did not answer /_stcore/health within {timeout} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_squad, tiny_embedder_wide, tiny_embedder, tiny_reader):
    workspace = shared_workspace(tmp_path_factory, tiny_squad, tiny_embedder_wide, tiny_embedder, tiny_reader)
    port = free_port()
    log = tmp_path_factory.mktemp("streamlit") / "streamlit.log"
    env = {**os.environ, **workspace.env()}
    env.pop("DISTILL_LIVE_ARTICLES", None)
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.headless",
        "true",
        "--server.address",
        "127.0.0.1",
        "--server.port",
        str(port),
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
    ]
    with open(log, "w") as out:
        process = subprocess.Popen(command, cwd=workspace.root, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's Chromium with `apt-get install -y chromium`")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def full_page_screenshot(page, path: Path) -> None:
    """Streamlit scrolls inside its main block, not the document: grow the viewport to the content, then shoot."""
    height = page.evaluate(
        "() => Math.max(document.querySelector('[data-testid=stMain]').scrollHeight, document.body.scrollHeight)"
    )
    page.set_viewport_size({"width": 1400, "height": int(height) + 40})
    page.wait_for_timeout(1500)
    path.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(path), full_page=True)


def test_ask_and_compare_in_chromium(server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(120_000)
    page.goto(server)
    question = page.locator(".st-key-question input")
    question.fill("Where was Mozart born?")
    question.press("Enter")
    for i in (0, 1):
        system = page.locator(f".st-key-system-{i}")
        system.locator(".dt-answer").wait_for()
        assert system.locator(".dt-answer").inner_text().strip()
        assert system.locator("mark.dt-hl").count() >= 1
        assert system.locator(".dt-passage").count() >= 3
        latency = system.locator("[data-testid='stMetricValue']").first.inner_text()
        assert latency.endswith(" ms"), latency
    assert page.locator(".st-key-system-0 h3").inner_text().strip().endswith("teacher-qa")
    assert page.locator(".st-key-system-1 h3").inner_text().strip().endswith("distilled-qa")
    assert page.get_by_text("From the evaluation set").count() == 1
    page.locator("[data-testid='stPlotlyChart']").first.wait_for()
    assert page.locator("[data-testid='stException']").count() == 0
    full_page_screenshot(page, SHOTS / "ui-ask.png")

    page.set_viewport_size({"width": 1400, "height": 900})
    page.get_by_role("tab", name="Compare").click()
    page.locator("[data-testid='stMetric']").first.wait_for()
    page.wait_for_function("() => document.querySelectorAll('[data-testid=stPlotlyChart]').length >= 3")
    assert page.get_by_text("p50 latency").count() >= 1
    assert page.locator("[data-testid='stException']").count() == 0
    full_page_screenshot(page, SHOTS / "ui-compare.png")

    page.set_viewport_size({"width": 1400, "height": 900})
    page.get_by_role("tab", name="Runs").click()
    page.get_by_text("Training loss, each term").wait_for()
    page.wait_for_function("() => document.querySelectorAll('[data-testid=stPlotlyChart]').length >= 2")
    assert page.locator("[data-testid='stException']").count() == 0
    full_page_screenshot(page, SHOTS / "ui-runs.png")
    page.close()
