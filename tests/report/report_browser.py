"""A real headless Chromium driven over the DevTools protocol (a websocket), for the report tests.

No browser download: it runs Debian's ``chromium`` (the Makefile's test set-up installs it) with
a fresh profile, no network services, and talks CDP through ``websocket-client``. It collects
what a person would see go wrong: console errors, uncaught exceptions, failed resource loads.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--disable-default-apps", "--mute-audio", "--hide-scrollbars",
         "--remote-debugging-port=0", "--remote-allow-origins=*", "--window-size=1280,900"]


def chromium_path() -> str:
    """The chromium binary, or a skip (a failure under CI, where the set-up must provide it)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        message = "chromium is not installed: run 'make test' (it installs Debian's chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


class Chromium:
    """One browser with one page. Use as a context manager."""

    def __init__(self, timeout: float = 30.0):
        import websocket  # websocket-client

        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="babysit-chromium-")
        self.proc = subprocess.Popen([chromium_path(), *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port = self._devtools_port()
        page = next(t for t in self._json(f"http://127.0.0.1:{port}/json/list") if t["type"] == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=self.timeout,
                                              suppress_origin=True)
        self._id = 0
        self.events: list[dict] = []
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable")

    def _devtools_port(self) -> int:
        marker = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if marker.is_file() and marker.read_text().strip():
                return int(marker.read_text().split()[0])
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited with code {self.proc.returncode}")
            time.sleep(0.05)
        raise TimeoutError("chromium did not open its DevTools port")

    @staticmethod
    def _json(url: str):
        for _ in range(100):
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    found = json.loads(r.read())
                if any(t.get("type") == "page" for t in found):
                    return found
            except OSError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"no page target at {url}")

    # -- the protocol -----------------------------------------------------------------------

    def call(self, method: str, **params) -> dict:
        self._id += 1
        my_id = self._id
        self.ws.send(json.dumps({"id": my_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def wait_for(self, method: str, timeout: float | None = None) -> dict:
        """The next event named `method` (events already received count)."""
        for i, ev in enumerate(self.events):
            if ev["method"] == method:
                return self.events.pop(i)
        deadline = time.monotonic() + (timeout or self.timeout)
        while time.monotonic() < deadline:
            self.ws.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                msg = json.loads(self.ws.recv())
            except Exception:  # websocket timeout
                break
            if msg.get("method") == method:
                return msg
            if "method" in msg:
                self.events.append(msg)
        self.ws.settimeout(self.timeout)
        raise TimeoutError(f"no {method} within {timeout or self.timeout} s")

    def open(self, url: str) -> None:
        """Navigate and wait until the page (images included) has loaded."""
        self.events = [ev for ev in self.events if ev["method"] != "Page.loadEventFired"]
        self.call("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and failed loads seen so far."""
        self.drain()
        found = []
        for ev in self.events:
            p = ev.get("params", {})
            if ev["method"] == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                found.append("console: " + " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", [])))
            elif ev["method"] == "Runtime.exceptionThrown":
                found.append("exception: " + str(p.get("exceptionDetails", {}).get("text")))
            elif ev["method"] == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                found.append(f"log: {p['entry'].get('text')} {p['entry'].get('url', '')}")
        return found

    def drain(self, seconds: float = 0.2) -> None:
        """Collect events that arrived without a request of ours."""
        self.ws.settimeout(seconds)
        try:
            while True:
                msg = json.loads(self.ws.recv())
                if "method" in msg:
                    self.events.append(msg)
        except Exception:
            pass
        finally:
            self.ws.settimeout(self.timeout)

    def screenshot(self) -> bytes:
        shot = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        return base64.b64decode(shot["data"])

    def close(self) -> None:
        try:
            self.ws.close()
        except Exception:
            pass
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> "Chromium":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# What a page shows, gathered in the page itself.
PAGE_FACTS = """(() => {
  const sections = [...document.querySelectorAll("main > section")].map(s => ({
    id: s.id, status: s.dataset.status, height: s.getBoundingClientRect().height,
    images: [...s.querySelectorAll("img")].map(i => ({alt: i.alt, complete: i.complete,
      width: i.naturalWidth, height: i.naturalHeight, data: /^data:image.(png|svg.xml);base64,/.test(i.src)})),
    text: s.innerText.slice(0, 4000)}));
  return {title: document.title, sections: sections,
          scripts: document.scripts.length,
          external: [...document.querySelectorAll("[src],[href]")].map(n => n.getAttribute("src") || n.getAttribute("href"))
                      .filter(u => /^(https?:)?\\/\\//.test(u))};
})()"""


def screenshot_is_blank(png: bytes) -> bool:
    """True when the picture is (nearly) one colour: nothing rendered."""
    import matplotlib.image as mpimg
    import numpy as np

    pixels = (mpimg.imread(io.BytesIO(png), format="png")[::2, ::2, :3] * 255).astype(np.uint32)
    colours = np.unique((pixels[..., 0] << 16) | (pixels[..., 1] << 8) | pixels[..., 2])
    return pixels.std() < 5 or len(colours) < 16
