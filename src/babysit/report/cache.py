"""A small cache of the page's slow parts, kept in the run directory as plain JSON.

Optuna's figures and the data fingerprint take seconds to make (drawing a dozen figures,
importing and loading the data) and change only when their inputs do: the study journal, the
run's config. Each entry is stored under ``RUN_DIR/.report-cache/NAME.json`` with the key it was
made from (the journal's size and modification time, a hash of the config, babysit's version);
a different key remakes it. JSON only, never pickle: a run directory is not trusted. A
read-only run directory or a damaged entry just means the part is made again.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Callable

from .. import __version__
from ..rundir import atomic_write_text

FOLDER = ".report-cache"  # a dot name: the live page's change detection ignores it

# A cached figure is embedded in the page as it is: only this exact shape is taken from a run
# directory (an image as base64 data, escaped text), never markup or a script someone put there.
FIGURE = re.compile(r'<figure><img src="data:image/(?:svg\+xml|png);base64,[A-Za-z0-9+/=]+" alt="[^"<>]*"'
                    r'(?: style="width:\d+px")?><figcaption>[^<>]*</figcaption></figure>')


def figure_list(value: object) -> bool:
    """Is `value` a list of figures this package made (see FIGURE)?"""
    return isinstance(value, list) and all(isinstance(f, str) and FIGURE.fullmatch(f) for f in value)


def cached(run_dir: Path, name: str, key: str, make: Callable[[], object],
           keep: Callable[[object], bool] = lambda value: True,
           trust: Callable[[object], bool] = lambda value: True) -> object:
    """The value stored under `name` for `key` if `trust` accepts it, else `make()`, stored for
    next time if `keep` says so."""
    path = Path(run_dir) / FOLDER / f"{name}.json"
    key = f"{__version__}|{_code_stamp()}|{key}"
    try:
        entry = json.loads(path.read_text())
        if isinstance(entry, dict) and entry.get("key") == key and "value" in entry and trust(entry["value"]):
            return entry["value"]
    except (OSError, ValueError):
        pass
    value = make()
    if not keep(value):
        return value
    try:
        path.parent.mkdir(exist_ok=True)
        atomic_write_text(path, json.dumps({"key": key, "value": value}))
    except OSError:
        pass  # a read-only run directory: made again next time
    return value


def _code_stamp() -> int:
    """The newest modification time of the code that draws (the report's, the monitor's plots):
    an edited drawing remakes its figures."""
    here = Path(__file__).parent
    files = [*here.glob("*.py"), here.parent / "watch" / "plots.py"]
    return max(p.stat().st_mtime_ns for p in files if p.is_file())
