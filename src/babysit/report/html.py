"""One self-contained ``report.html`` per run: inline CSS, images as ``data:`` URIs, no scripts.

The page opens from a disk, a mail attachment or an archive years later: it loads nothing from
the network (no CDN, no fonts, no favicon request). Served live (``babysit report --serve``) it
gets one small inline script that asks the server whether the run changed and reloads then.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path

from .. import __version__
from ..rundir import atomic_write_text
from .markup import badge, e
from .readers import RunFiles
from .sections import Section, build_sections, run_state
from .verdict import Verdict, compute_verdict

STYLE = """
:root { --ok:#1a7f37; --warn:#9a6700; --bad:#cf222e; --info:#0969da; --muted:#57606a; --line:#d0d7de; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #1f2328; background: #f6f8fa; }
header { background: #24292f; color: #fff; padding: 18px 28px; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 0; color: #d0d7de; font-size: 13px; }
nav { position: sticky; top: 0; background: #fff; border-bottom: 1px solid var(--line); padding: 8px 28px; z-index: 2;
      display: flex; flex-wrap: nowrap; overflow-x: auto; gap: 6px 14px; font-size: 13px; height: 38px; }
nav a { color: #1f2328; text-decoration: none; white-space: nowrap; }
nav a:hover { text-decoration: underline; }
.dot { display: inline-block; width: 9px; height: 9px; border-radius: 50%; margin-right: 5px; background: var(--muted); }
.dot.ok { background: var(--ok); } .dot.warn { background: #d4a72c; } .dot.fail { background: var(--bad); }
.dot.info { background: var(--info); } .dot.missing { background: #afb8c1; }
main { max-width: 1180px; margin: 0 auto; padding: 16px 28px 48px; }
section, .verdict-box { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 14px 20px 18px;
          margin: 16px 0; scroll-margin-top: 50px; min-width: 0; }
.verdict-box { border-width: 2px 2px 2px 8px; }
.verdict-box.vb-ok { border-color: var(--ok); } .verdict-box.vb-warn { border-color: #d4a72c; }
.verdict-box.vb-fail { border-color: var(--bad); } .verdict-box.vb-info { border-color: var(--info); }
.verdict-box h2 { margin: 0 0 6px; font-size: 20px; }
.headline { font-size: 18px; margin: 4px 0; } .headline strong { font-size: 22px; }
.verdict-box ol { margin: 4px 0 8px; padding-left: 22px; } .verdict-box li { margin: 3px 0; }
.verdict-box .sev { font-weight: 600; } .verdict-box .next { font-weight: 600; }
section > h2 { margin: 0; font-size: 18px; display: flex; align-items: center; gap: 10px; }
section > p.verdict { margin: 2px 0 12px; color: var(--muted); }
h3 { font-size: 15px; margin: 18px 0 6px; }
.badge { display: inline-block; font-size: 12px; font-weight: 600; padding: 1px 8px; border-radius: 10px; color: #fff !important; background: var(--muted); }
.badge.ok { background: var(--ok); } .badge.warn { background: #bf8700; } .badge.fail, .badge.bad { background: var(--bad); }
.badge.info { background: var(--info); } .badge.missing { background: #8c959f; }
.ok { color: var(--ok); } .warn { color: var(--warn); } .bad { color: var(--bad); }
table { border-collapse: collapse; font-size: 13px; margin: 6px 0; }
th, td { border-bottom: 1px solid #eaeef2; padding: 3px 10px; text-align: left; vertical-align: top;
         max-width: 32em; overflow-wrap: break-word; }
th { white-space: nowrap; }
thead th { background: #f6f8fa; position: sticky; top: 0; }
td.num { white-space: nowrap; text-align: right; font-variant-numeric: tabular-nums; font-family: ui-monospace, monospace; }
td.ok, td.warn, td.bad { font-weight: 600; } td.nw { white-space: nowrap; }
table.kv th { color: var(--muted); font-weight: normal; width: 14em; }
caption { caption-side: top; text-align: left; color: var(--muted); font-size: 12px; padding-bottom: 4px; }
.scroll { overflow: auto; max-height: 560px; max-width: 100%; }
.figures { display: flex; flex-wrap: wrap; gap: 14px; margin-top: 10px; }
figure { margin: 0; max-width: 100%; }
figure img { max-width: 100%; width: auto; height: auto; border: 1px solid #eaeef2; border-radius: 4px; background: #fff; }

figcaption { font-size: 12px; color: var(--muted); }
pre { background: #f6f8fa; border: 1px solid #eaeef2; padding: 10px; overflow: auto; font-size: 12px; max-width: 100%; }
table.kv td { overflow-wrap: anywhere; }
table.kv th { white-space: normal; }
@media (max-width: 1000px) {
  /* Tables become cards, one per row, each cell "label: value": no column is cut off. */
  .scroll.wide { overflow: visible; max-height: none; }
  .scroll.wide table, .scroll.wide tbody, .scroll.wide tr { display: block; width: 100%; max-width: none; }
  .scroll.wide td { display: inline-block; max-width: 100%; margin-right: 10px; }
  .scroll.wide thead { display: none; }
  .scroll.wide tr { border: 1px solid #eaeef2; border-radius: 6px; margin: 6px 0; padding: 4px 0; }
  .scroll.wide td { border: 0; padding: 1px 8px; text-align: left !important; white-space: normal; }
  .scroll.wide td::before { content: attr(data-label) ": "; color: var(--muted); font-family: system-ui, sans-serif; }
  .scroll.wide caption { display: block; }
}
@media (max-width: 640px) {
  /* Tables become cards, one per row, each cell "label: value": no column is cut off. */
  .scroll { overflow: visible; max-height: none; }
  .scroll table, .scroll tbody, .scroll tr { display: block; width: 100%; max-width: none; }
  .scroll td { display: inline-block; max-width: 100%; margin-right: 10px; }
  .scroll thead { display: none; }
  .scroll tr { border: 1px solid #eaeef2; border-radius: 6px; margin: 6px 0; padding: 4px 0; }
  .scroll td { border: 0; padding: 1px 8px; text-align: left !important; white-space: normal; }
  .scroll td::before { content: attr(data-label) ": "; color: var(--muted); font-family: system-ui, sans-serif; }
  .scroll caption { display: block; }
  header, nav, .live { padding-left: 12px; padding-right: 12px; }
  main { padding: 8px 8px 32px; } section, .verdict-box { padding: 10px 10px 14px; }
  table.kv th { width: auto; }

}
code { font-family: ui-monospace, monospace; font-size: 90%; }
.absent { border-left: 4px solid #afb8c1; background: #f6f8fa; padding: 6px 12px; }
.absent p { margin: 4px 0; }
.alarms { border-left: 4px solid #d4a72c; background: #fff8c5; padding: 4px 12px; }
.diagnosis { border-left: 4px solid var(--muted); padding: 4px 12px; margin: 8px 0; background: #f6f8fa; }
.diagnosis.bad { border-color: var(--bad); } .diagnosis.warn { border-color: #d4a72c; }
.diagnosis p { margin: 3px 0; color: #1f2328; } .evidence { font-size: 12px; color: var(--muted) !important; }
.note { color: var(--muted); font-size: 13px; } .more { color: var(--muted); font-size: 12px; }
.live { background: #ddf4ff; color: #0969da; padding: 6px 28px; font-size: 13px; }
details summary { cursor: pointer; color: var(--info); margin-top: 10px; }
"""

# Served pages only: poll the server's /version and reload when the run directory changed;
# stop polling once the run is no longer in progress.
LIVE_SCRIPT = """
(function () {
  var version = %s;
  function poll() {
    fetch("/version", {cache: "no-store"}).then(function (r) { return r.json(); }).then(function (v) {
      if (v.version !== version) { location.reload(); return; }
      if (v.live) { setTimeout(poll, %d); }
      else { var b = document.getElementById("live"); if (b) { b.textContent = "The run is no longer in progress."; } }
    }).catch(function () { setTimeout(poll, %d); });
  }
  setTimeout(poll, %d);
})();
"""


BADGE_TEXT = {"ok": "nothing flagged", "warn": "problem", "fail": "failed", "missing": "missing", "info": "info"}
VERDICT_WORD = {"ok": "Healthy", "warn": "Usable, with problems", "fail": "Not trustworthy", "info": "Incomplete"}


def verdict_box(v: Verdict) -> str:
    """The page's first box: the headline figure, the model to use, the problems ranked, the next step."""
    head = v.headline
    figure = f"<strong>{e(head.text())}</strong>" if head.acc is not None else "<strong>no accuracy recorded</strong>"
    parts = [f"<div class=\"verdict-box vb-{v.status}\" id=\"verdict\" data-status=\"{v.status}\">",
             f"<h2>{e(VERDICT_WORD[v.status])} {badge(v.status, VERDICT_WORD[v.status].lower())}</h2>",
             f"<p class=\"headline\">{figure}"
             + (f" <span class=\"note\">{e(v.test_note)}</span>" if v.test_note else "")
             + "</p>"]
    if v.model_file:
        use = (f"Use <code>{e(v.model_file)}</code>." if v.status != "fail"
               else f"No model to use until the problems are fixed (best checkpoint: <code>{e(v.model_file)}</code>).")
        parts.append(f"<p>{use}</p>")
    if v.problems:
        items = "".join(f"<li><span class=\"sev {'bad' if p.severity == 'fail' else 'warn'}\">{e(p.severity)}</span> "
                        f"{e(p.title)}" + (f" <strong>Fix:</strong> {e(p.fix)}" if p.fix else "")
                        + f" <a href=\"#{e(p.section)}\">evidence</a></li>" for p in v.problems)
        parts.append(f"<p>What went wrong, worst first:</p><ol class=\"problems\">{items}</ol>")
    else:
        parts.append("<p class=\"ok\">No problem found by the checks, the search or the monitor.</p>")
    if v.within_noise:
        items = "".join(f"<li>{e(n)}</li>" for n in v.within_noise)
        parts.append(f"<p>Within noise (no real difference):</p><ul class=\"note\">{items}</ul>")
    if v.next_step:
        parts.append(f"<p class=\"next\">Next: {e(v.next_step)}</p>")
    return "".join(parts) + "</div>"


def render(run: RunFiles, sections: list[Section], *, live: bool = False, version: str = "",
           poll_ms: int = 3000, in_progress: bool = False, verdict: Verdict | None = None) -> str:
    """The whole page as one string."""
    verdict = verdict or compute_verdict(run)
    status, info = run_state(run)
    name = _run_name(run, info)
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    nav = (f"<a href=\"#verdict\"><span class=\"dot {verdict.status}\"></span>Verdict</a>"
           + "".join(f"<a href=\"#{s.id}\"><span class=\"dot {s.status}\"></span>{e(s.title)}</a>"
                     for s in sections))
    body = verdict_box(verdict) + "".join(
        f"<section id=\"{s.id}\" data-status=\"{s.status}\">"
        f"<h2>{e(s.title)} {badge(s.status, BADGE_TEXT.get(s.status))}</h2>"
        f"<p class=\"verdict\">{e(s.verdict)}</p>{s.body}</section>" for s in sections)
    banner, script = "", ""
    if live:
        state = "in progress: this page reloads when the run writes something new" \
            if in_progress else f"{status if status != 'unknown' else 'not in progress'}; served live from {run.path}"
        banner = f"<div class=\"live\" id=\"live\">Live view, run {e(state)}.</div>"
        script = "<script>" + LIVE_SCRIPT % (json.dumps(version), poll_ms, poll_ms * 2, poll_ms) + "</script>"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="babysit {e(__version__)}">
<link rel="icon" href="data:,">
<title>babysit report: {e(name)}</title>
<style>{STYLE}</style>
</head>
<body>
<header><h1>babysit report: {e(name)} {badge(_status_badge(status), status if status != "unknown" else "status not recorded")}</h1>
<p>{e(run.path.resolve())} · written {e(now)} by babysit {e(__version__)}</p></header>
{banner}
<nav>{nav}</nav>
<main>
{body}
</main>
{script}
</body>
</html>
"""


def _status_badge(status: str) -> str:
    return {"finished": "ok", "running": "info", "failed": "fail", "interrupted": "fail"}.get(status, "info")


def _run_name(run: RunFiles, info: dict) -> str:
    if info.get("name"):
        return str(info["name"])
    config = run.config()
    if config.ok and isinstance(config.data, dict) and config.data.get("name"):
        return f"{config.data['name']} ({run.path.name})"
    return run.path.name


def build_report(run_dir: str | os.PathLike, *, live: bool = False, version: str = "") -> str:
    run = RunFiles.open(run_dir)
    verdict = compute_verdict(run)
    return render(run, build_sections(run, verdict), live=live, version=version, verdict=verdict)


def write_report(run_dir: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """Write the self-contained report of `run_dir` (default ``RUN_DIR/report.html``)."""
    run = RunFiles.open(run_dir)
    verdict = compute_verdict(run)
    html = render(run, build_sections(run, verdict), verdict=verdict)
    return atomic_write_text(Path(out) if out else run.path / "report.html", html)
