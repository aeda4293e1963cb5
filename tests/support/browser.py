"""A headless Chromium for the console's tests: Debian's ``chromium``, driven by Playwright over CDP.

``chromium_page()`` starts the browser itself (``--headless=new``, a fresh profile in a temporary
directory, the DevTools port chosen by Chromium and read back from ``DevToolsActivePort``, bound to
127.0.0.1), attaches Playwright to it with ``connect_over_cdp`` and yields one page. On exit it
disconnects, stops Chromium's process group by PID (SIGTERM, then SIGKILL) and checks it is gone. The
tests that need it are skipped with ``CHROMIUM_MISSING`` where ``chromium`` (or Playwright) is not
installed. ``screenshot()`` writes a PNG into ``$CONSOLE_SCREENSHOTS`` when that is set (the README's
pictures are made this way), and does nothing otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.async_api import Locator, Page

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
HAVE_PLAYWRIGHT = importlib.util.find_spec("playwright") is not None
CHROMIUM_MISSING = ("chromium not installed: the console's browser tests need Debian's chromium "
                    "(apt-get install chromium; .ci/run installs it) and Playwright (pip install -e '.[test]')")
needs_chromium = pytest.mark.skipif(CHROMIUM is None or not HAVE_PLAYWRIGHT, reason=CHROMIUM_MISSING)
SCREENSHOTS = os.environ.get("CONSOLE_SCREENSHOTS")
VIEWPORT = {"width": 1280, "height": 900}


async def _devtools_port(profile: Path, proc: subprocess.Popen[bytes], limit: float = 20.0) -> int:
    deadline = time.monotonic() + limit
    marker = profile / "DevToolsActivePort"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"chromium exited with {proc.returncode}")
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int(marker.read_text().splitlines()[0])
        await asyncio.sleep(0.05)
    raise TimeoutError(f"chromium wrote no DevToolsActivePort within {limit} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Chromium and its helper processes (its own process group), by PID."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(5)
            break
        except subprocess.TimeoutExpired:
            continue
    assert proc.poll() is not None, f"chromium {proc.pid} still running"


@contextlib.asynccontextmanager
async def chromium_page(allow: tuple[str, ...] = ()) -> AsyncIterator[Page]:
    """One page of a fresh headless Chromium (see the module docstring); errors in the page fail the test,
    but for console messages that contain one of ``allow`` (e.g. an expected 401)."""
    from playwright.async_api import async_playwright

    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory(prefix="drg-chromium-") as tmp:
        profile = Path(tmp)
        proc = subprocess.Popen(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--no-first-run", "--no-default-browser-check", "--disable-extensions",
             "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", f"--user-data-dir={profile}",
             "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        errors: list[str] = []
        try:
            port = await _devtools_port(profile, proc)
            async with async_playwright() as pw:
                browser = await pw.chromium.connect_over_cdp(f"http://127.0.0.1:{port}", timeout=20_000)
                try:
                    context = browser.contexts[0] if browser.contexts else await browser.new_context()
                    page = await context.new_page()
                    await page.set_viewport_size(VIEWPORT)  # type: ignore[arg-type]
                    page.on("pageerror", lambda exc: errors.append(str(exc)))
                    page.on("console", lambda m: errors.append(m.text)
                            if m.type == "error" and not any(a in m.text for a in allow) else None)
                    yield page
                finally:
                    await browser.close()
        finally:
            await asyncio.to_thread(_stop, proc)
        assert not errors, f"errors in the page: {errors}"


async def screenshot(target: Page | Locator, name: str) -> None:
    """``$CONSOLE_SCREENSHOTS/<name>.png`` when that variable is set (e.g. ``docs/``)."""
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        await target.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"))
