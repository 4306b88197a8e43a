"""The report: one self-contained HTML page per run directory, static or served live.

``write_report(run_dir)`` writes ``RUN_DIR/report.html``; ``serve(run_dir, port=...)`` serves it
on 127.0.0.1 and reloads the page while the run is in progress. The report reads only the
files the stages write into the run directory (see :mod:`babysit.report.readers`).
"""

from .html import build_report, write_report
from .readers import RunFiles
from .serve import make_server, serve

__all__ = ["write_report", "build_report", "serve", "make_server", "RunFiles"]
