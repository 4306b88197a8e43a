"""The monitor's plots, kept as current as its records before a report is built.

A training writes the monitor's records (``watch/*.jsonl``) at every step; it draws its plots
only when asked (``watch.plots`` or ``babysit plots``). The report wants the pictures, so when
the records are newer than the plots it asks the monitor to draw them, with the monitor's own
code. While a run is served live this happens at most every `min_interval` seconds: drawing
competes with the training for the same cores.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path


def refresh_monitor_plots(path: Path, min_interval: float = 0.0) -> bool:
    """Redraw ``watch/plots/*.png`` when ``watch/*.jsonl`` changed since; True when it drew."""
    watch = Path(path) / "watch"
    records = list(watch.glob("*.jsonl")) if watch.is_dir() else []
    if not records:
        return False
    plots = list((watch / "plots").glob("*.png"))
    newest_record = max(p.stat().st_mtime for p in records)
    newest_plot = max((p.stat().st_mtime for p in plots), default=0.0)
    if plots and (newest_plot >= newest_record or time.time() - newest_plot < min_interval):
        return False
    try:
        from ..watch import draw_all
    except ImportError:
        return False  # an installation without the monitor: the report draws its own curves
    try:
        draw_all(path)
    except Exception as exc:  # a broken plot must not cost the whole report
        print(f"babysit: warning: the monitor's plots could not be drawn ({type(exc).__name__}: {exc})",
              file=sys.stderr)
        return False
    return True
