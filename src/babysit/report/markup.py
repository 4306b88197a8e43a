"""Small HTML building blocks: escaped text, tables of records, embedded images.

Everything the report shows comes from files a run wrote, so every string is escaped here;
images become ``data:`` URIs so the page needs no network and no neighbouring files.
"""

from __future__ import annotations

import base64
import datetime as _dt
import math
from html import escape
from pathlib import Path
from typing import Any, Iterable, Sequence


def e(value: Any) -> str:
    return escape(str(value), quote=True)


NOTHING = "—"

# Columns that hold a moment (seconds since 1970) or a duration in seconds.
TIME_COLUMNS = ("started", "finished", "time", "heartbeat")
DURATION_COLUMNS = ("seconds", "eval_seconds", "duration")


def when(stamp: float) -> str:
    """Seconds since 1970 as a UTC time of day (with the date when it is not today)."""
    moment = _dt.datetime.fromtimestamp(stamp, _dt.timezone.utc)
    today = _dt.datetime.now(_dt.timezone.utc).date()
    return moment.strftime("%H:%M:%S UTC" if moment.date() == today else "%Y-%m-%d %H:%M UTC")


def duration(seconds: float) -> str:
    """A duration as a person says it: 0.004 s, 1.1 s, 2 min 05 s, 1 h 02 min."""
    if seconds < 0.1:
        return f"{seconds:.2g} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


def fmt_in(value: Any, column: str = "") -> str:
    """`value` as shown in `column`: moments and durations in human units, the rest by fmt."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if number and column in TIME_COLUMNS and value > 1e9:
        return when(float(value))
    if number and (column in DURATION_COLUMNS or column.endswith("_seconds")):
        return duration(float(value))
    return fmt(value)


def fmt(value: Any) -> str:
    """A number as a person reads it: 4 significant digits, scientific when tiny or huge;
    nothing (None, an empty string or list) as a dash."""
    if value is None or value == "" or value == [] or value == {}:
        return NOTHING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
            return f"{value:.3e}"
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(fmt(v) for v in value) + "]"
    if isinstance(value, dict):
        return ", ".join(f"{k}={fmt(v)}" for k, v in value.items())
    return str(value)


# Boolean columns whose value is good or bad news (elsewhere a yes/no is just a fact).
BOOL_CLASS = {"passed": ("ok", "bad"), "failed": ("bad", ""), "kink": ("warn", "")}


def cell(value: Any, column: str = "", label: str = "") -> str:
    """One table cell; verdict words, and booleans of the columns above, get a colour class.
    `label` (the column's header) lets a narrow screen show each row as a card of label: value."""
    cls = ""
    if isinstance(value, bool):
        cls = BOOL_CLASS.get(column, ("", ""))[0 if value else 1]
    elif isinstance(value, str):
        cls = VERDICT_CLASS.get(value.lower(), "")
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    # A figure with its interval ("92.5% (89.3–94.8)") reads as one token: never broken.
    figure = isinstance(value, str) and len(value) < 40 and value[:1] in "+-0123456789"
    classes = " ".join(c for c in (cls, "num" if numeric else "", "nw" if figure else "") if c)
    text = e(fmt_in(value, column))
    data = f" data-label=\"{e(label)}\"" if label else ""
    return f"<td class=\"{classes}\"{data}>{text}</td>" if classes else f"<td{data}>{text}</td>"


# Words the stages use for verdicts, and how each reads at a glance.
VERDICT_CLASS = {
    "happy": "ok", "fine": "ok", "ok": "ok", "passed": "ok", "pass": "ok", "done": "ok",
    "complete": "ok", "finished": "ok", "true": "ok",
    "uneasy": "warn", "inconclusive": "warn", "kink": "warn", "warning": "warn", "warn": "warn", "pruned": "warn",
    "skipped": "warn", "unavailable": "warn", "running": "warn", "interrupted": "bad",
    "wrong": "bad", "failed": "bad", "fail": "bad", "error": "bad", "fatal": "bad",
    "critical": "bad", "false": "bad",
}


def flatten(record: dict, prefix: str = "") -> dict:
    """Nested dicts one level down become ``params.lr``-style columns (``lr`` for params)."""
    flat: dict = {}
    for key, value in record.items():
        if isinstance(value, dict) and value and all(not isinstance(v, dict) for v in value.values()):
            for k, v in value.items():
                name = k if key in ("params", "hyperparameters", "user_attrs") else f"{key}.{k}"
                flat.setdefault(name, v)
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def columns_of(rows: Sequence[dict], preferred: Sequence[str] = ()) -> list[str]:
    seen: list[str] = [c for c in preferred if any(c in r for r in rows)]
    for r in rows:
        seen.extend(k for k in r if k not in seen)
    return seen


def table(rows: Sequence[dict], columns: Sequence[str] | None = None, *, preferred: Sequence[str] = (),
          limit: int | None = None, caption: str = "", headers: dict | None = None) -> str:
    """A table of records, nested dicts flattened. With `limit`, the first rows show and the
    complete table waits behind a ``<details>`` (no script needed); `headers` renames columns."""
    flat = [flatten(r) if isinstance(r, dict) else {"value": r} for r in rows]
    columns = list(columns) if columns else columns_of(flat, preferred)
    names = headers or {}
    head = "".join(f"<th>{e(names.get(c, c))}</th>" for c in columns)

    # A table of many columns is laid out as cards (a row each) below 1000 px, any table below
    # 640 px: a cut column or a row made tall by an off-screen one is worse than a longer page.
    wrapper = "scroll wide" if len(columns) > 6 else "scroll"

    def render(chosen: Sequence[dict], cap: str) -> str:
        body = "".join("<tr>" + "".join(cell(r.get(c), c, names.get(c, c)) for c in columns) + "</tr>"
                       for r in chosen)
        cap = f"<caption>{e(cap)}</caption>" if cap else ""
        return f"<div class=\"{wrapper}\"><table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"

    if not limit or len(flat) <= limit:
        return render(flat, caption)
    return (render(flat[:limit], caption + (" " if caption else "") + f"(first {limit} of {len(flat)} rows)")
            + f"<details><summary>all {len(flat)} rows</summary>{render(flat, caption)}</details>")


def key_values(pairs: Iterable[tuple[str, Any]]) -> str:
    rows = "".join(f"<tr><th>{e(k)}</th><td>{e(fmt_in(v, k))}</td></tr>" for k, v in pairs)
    return f"<table class=\"kv\"><tbody>{rows}</tbody></table>"


def png_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def figure(data: bytes, caption: str) -> str:
    return (f"<figure><img src=\"{png_uri(data)}\" alt=\"{e(caption)}\">"
            f"<figcaption>{e(caption)}</figcaption></figure>")


def figures_from_files(paths: Sequence[Path], root: Path) -> str:
    """Each PNG embedded, captioned with its path inside the run directory."""
    parts = []
    for p in paths:
        try:
            data = p.read_bytes()
        except OSError:
            continue
        if data.startswith(b"\x89PNG"):
            parts.append(figure(data, str(p.relative_to(root))))
    return f"<div class=\"figures\">{''.join(parts)}</div>" if parts else ""


def pre(text: str) -> str:
    return f"<pre>{e(text)}</pre>"


def badge(status: str, text: str | None = None) -> str:
    return f"<span class=\"badge {e(status)}\">{e(text or status)}</span>"
