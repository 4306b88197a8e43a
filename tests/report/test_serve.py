"""``babysit report RUN_DIR --serve``: real HTTP on 127.0.0.1, a page that follows a live run."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import babysit
from babysit.cli import main
from babysit.rundir import RunDir, append_jsonl, read_jsonl
from report_browser import Chromium, chromium_path


@pytest.fixture
def live_run(quick_run, tmp_path):
    """A copy of a finished run, made to look in progress: run.json says running, our pid."""
    path = tmp_path / "live"
    shutil.copytree(quick_run[1], path)
    rd = RunDir(path)
    info = rd.read_json("run.json")
    info.update(status="running", finished=None, pid=os.getpid())
    rd.write_json("run.json", info)
    return path


@pytest.fixture
def server(live_run):
    env = {**os.environ, "PYTHONPATH": str(Path(babysit.__file__).parents[1])}
    proc = subprocess.Popen([sys.executable, "-m", "babysit.cli", "report", str(live_run), "--serve",
                             "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline()
    if "http://127.0.0.1:" not in line:
        proc.kill()
        pytest.fail(f"no URL announced: {line!r} {proc.stderr.read()}")
    url = line.split("at ", 1)[1].split()[0]
    yield url, live_run
    proc.terminate()
    proc.wait(timeout=10)


def _get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.headers["Content-Type"], r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


def test_serves_the_page_and_its_version(server):
    url, run = server
    assert url.startswith("http://127.0.0.1:")
    status, ctype, page = _get(url)
    assert status == 200 and ctype.startswith("text/html")
    assert "Live view" in page and "<script>" in page and "data:image/png;base64," in page
    status, ctype, body = _get(url + "version")
    version = json.loads(body)
    assert version["live"] is True and version["status"] == "running"
    append_jsonl(run / "metrics.jsonl", {**read_jsonl(run / "metrics.jsonl")[-1], "epoch": 5})
    assert json.loads(_get(url + "version")[2])["version"] != version["version"]
    assert _get(url + "nope")[0] == 404
    # The served page is also written to disk, as the static (script-free) report.
    assert "<script" not in (run / "report.html").read_text()


def test_page_reloads_in_the_browser_while_the_run_goes_on(server):
    chromium_path()
    url, run = server
    with Chromium() as browser:
        browser.open(url)
        assert "4 epochs" in browser.evaluate("document.querySelector('#curves').innerText")
        browser.evaluate("window.__before = 1")
        last = read_jsonl(run / "metrics.jsonl")[-1]
        append_jsonl(run / "metrics.jsonl", {**last, "epoch": 5, "val_acc": 0.5})
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            time.sleep(0.5)
            try:
                if browser.evaluate("window.__before === undefined && !!document.querySelector('#curves')"):
                    break
            except RuntimeError:
                pass  # evaluated mid-navigation
        else:
            pytest.fail("the page did not reload after the run wrote a new epoch")
        assert "5 epochs" in browser.evaluate("document.querySelector('#curves').innerText")
        # The run ends: the page says so and stops asking.
        rd = RunDir(run)
        rd.write_json("run.json", {**rd.read_json("run.json"), "status": "finished"})
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            time.sleep(0.5)
            try:
                text = browser.evaluate("document.body.innerText")
            except RuntimeError:
                continue
            if "no longer in progress" in text or "finished; served live" in text:
                break
        else:
            pytest.fail("the page did not notice that the run finished")
        assert browser.errors() == []


def test_port_in_use_is_one_clear_line(plain_run, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["report", str(plain_run), "--serve", "--port", str(port)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"babysit: error: port {port} on 127.0.0.1 is in use: pick another with --port P "
                   "(or --port 0 for any free one)")


def test_a_plain_training_counts_as_live_while_its_metrics_are_fresh(plain_run, tmp_path):
    """No run.json (babysit train): in progress while metrics.jsonl was written recently."""
    import threading

    from babysit.report import make_server

    path = tmp_path / "plain"
    shutil.copytree(plain_run, path)
    server = make_server(path, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        os.utime(path / "metrics.jsonl")  # written just now
        assert json.loads(_get(url + "version")[2])["live"] is True
        old = time.time() - 3600
        os.utime(path / "metrics.jsonl", (old, old))
        assert json.loads(_get(url + "version")[2])["live"] is False
        assert "not in progress" in _get(url)[2]
    finally:
        server.shutdown()
        server.server_close()


def test_head_answers_like_get_without_a_body(plain_run, tmp_path):
    """HEAD (curl -I, link checkers) gets GET's status and headers, not 501, and no body."""
    import http.client
    import threading

    from babysit.report import make_server

    server = make_server(plain_run, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        for path, status in (("/", 200), ("/version", 200), ("/nope", 404)):
            conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=30)
            conn.request("HEAD", path)
            response = conn.getresponse()
            assert response.status == status, path
            assert int(response.headers["Content-Length"]) > 0 and response.read() == b""
            conn.close()
    finally:
        server.shutdown()
        server.server_close()
