"""``babysit report RUN_DIR --serve``: the report over HTTP on 127.0.0.1, live while the run goes on.

The server rebuilds the page only when the run directory changed (a cheap signature over the
files the report reads: their count and newest modification time), also writing it to
``RUN_DIR/report.html``. The served page carries a small script that asks ``/version`` every
couple of seconds and reloads when the signature moved, so a person can watch training in a
browser; once run.json no longer says ``running`` it stops asking.

Routes: ``/`` and ``/report.html`` (the page), ``/version`` (JSON: version, live, status).
"""

from __future__ import annotations

import errno
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ..errors import UserError
from ..rundir import atomic_write_text
from .html import render
from .readers import RunFiles
from .sections import build_sections, run_state
from .verdict import compute_verdict


# A run without run.json counts as in progress while its metrics.jsonl is younger than this.
RECENT_S = 120.0


class LiveReport:
    """The page of one run directory, rebuilt when the directory changed since the last build."""

    def __init__(self, run: RunFiles, poll_ms: int = 3000):
        self.run, self.poll_ms = run, poll_ms
        self._lock = threading.Lock()
        self._signature: tuple | None = None
        self._html = ""

    def version(self) -> str:
        count, newest = self.run.signature()
        status, _ = run_state(self.run)
        return f"{count}-{newest}-{status}"

    def live(self) -> bool:
        """Is the run in progress? run.json says so; without one (a plain ``babysit train``),
        a metrics file written in the last RECENT_S seconds says so."""
        status = run_state(self.run)[0]
        if status != "unknown":
            return status == "running"
        try:
            return time.time() - (self.run.path / "metrics.jsonl").stat().st_mtime < RECENT_S
        except OSError:
            return False

    def page(self) -> str:
        with self._lock:
            version = self.version()
            if version != self._signature:
                verdict = compute_verdict(self.run)
                sections = build_sections(self.run, verdict)
                self._html = render(self.run, sections, live=True, version=version,
                                    poll_ms=self.poll_ms, in_progress=self.live(), verdict=verdict)
                self._signature = version
                # The file on disk is the static page (no live script): keep it current too.
                try:
                    atomic_write_text(self.run.path / "report.html",
                                      render(self.run, sections, verdict=verdict))
                except OSError:
                    pass  # a read-only run directory can still be served
            return self._html


def make_handler(report: LiveReport):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            self._answer(with_body=True)

        def do_HEAD(self):  # noqa: N802: the same headers as GET, no body (link checkers, curl -I)
            self._answer(with_body=False)

        def _answer(self, with_body: bool) -> None:
            self.with_body = with_body
            path = self.path.split("?", 1)[0]
            if path in ("/", "/index.html", "/report.html"):
                self._send(200, "text/html; charset=utf-8", report.page().encode("utf-8"))
            elif path == "/version":
                body = {"version": report.version(), "live": report.live(),
                        "status": run_state(report.run)[0]}
                self._send(200, "application/json", json.dumps(body).encode())
            else:
                self._send(404, "text/plain; charset=utf-8", b"not found: try /\n")

        def _send(self, code: int, ctype: str, data: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if self.with_body:
                self.wfile.write(data)

        def log_message(self, format, *args):  # quiet: the terminal shows the URL once
            pass

    return Handler


def make_server(run_dir, host: str = "127.0.0.1", port: int = 8000, poll_ms: int = 3000) -> ThreadingHTTPServer:
    """A server for `run_dir` bound to host:port (port 0: any free port), not yet serving."""
    run = RunFiles.open(run_dir)
    report = LiveReport(run, poll_ms)
    try:
        server = ThreadingHTTPServer((host, port), make_handler(report))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise UserError(f"port {port} on {host} is in use: pick another with --port P "
                            "(or --port 0 for any free one)") from None
        raise UserError(f"cannot listen on {host}:{port} ({exc.strerror}): pick another --port") from None
    server.daemon_threads = True
    server.report = report  # type: ignore[attr-defined]
    return server


def serve(run_dir, host: str = "127.0.0.1", port: int = 8000, *, announce=None) -> None:
    """Serve until Ctrl-C."""
    announce = announce or (lambda line: print(line, flush=True))
    server = make_server(run_dir, host, port)
    server.report.page()  # type: ignore[attr-defined]  # build once now: errors show before the URL
    bound = server.server_address[1]
    announce(f"serving the report of {run_dir} at http://{host}:{bound}/ (Ctrl-C stops)")
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        announce("stopped")
    finally:
        server.server_close()
