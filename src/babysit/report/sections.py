"""The report's sections, in the order of the notes' workflow, each built from the run's files.

A section has a status (``ok``, ``warn``, ``fail``, ``missing``, ``info``), a one-line verdict and
its HTML body. When a section's files are absent its body says which files and why they may be
missing (the stage did not run, was unavailable, failed, or the run was interrupted before it).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Callable

from ..processes import pid_alive
from .markup import badge, e, figures_from_files, fmt, key_values, table
from .readers import Read, RunFiles


@dataclass
class Section:
    id: str
    title: str
    status: str  # ok | warn | fail | missing | info
    verdict: str
    body: str


# --------------------------------------------------------------------------------------------
# The run as a whole (run.json)

def run_state(run: RunFiles) -> tuple[str, dict]:
    """("running" | "finished" | "failed" | "interrupted" | "unknown", run.json or {}).

    A run.json left at "running" by a process that no longer exists on this machine is an
    interrupted run (killed, or the machine went down).
    """
    info = run.run_info()
    if not info.ok or not isinstance(info.data, dict):
        return "unknown", {}
    data = info.data
    status = data.get("status", "unknown")
    if status == "running" and not _process_alive(data):
        status = "interrupted"
    return status, data


def _process_alive(info: dict) -> bool:
    pid, host = info.get("pid"), info.get("host")
    if not isinstance(pid, int) or (host and host != socket.gethostname()):
        return True  # cannot tell from here: trust the file
    return pid_alive(pid)


def stage_record(info: dict, name: str) -> dict | None:
    for stage in info.get("stages", []) or []:
        if isinstance(stage, dict) and stage.get("name") == name:
            return stage
    return None


def why_missing(run: RunFiles, info: dict, status: str, stage: str, command: str) -> str:
    """Why a stage's files are absent, as far as run.json tells."""
    record = stage_record(info, stage)
    if record:
        state = record.get("status", "")
        verdict = record.get("verdict", "")
        if state == "running" and status == "interrupted":
            return f"The run was interrupted during this stage ({verdict})." if verdict else \
                "The run was interrupted during this stage."
        if state == "running":
            return "This stage is running now; the page updates when it writes its results."
        return f"This stage is recorded as {state}" + (f": {verdict}" if verdict else ".")
    if status == "running":
        return "This stage has not run yet in this run."
    if status in ("interrupted", "failed"):
        return f"The run {'was interrupted' if status == 'interrupted' else 'failed'} before this stage."
    return f"This stage did not run here; {command} writes it."


def missing_body(missing: list[str], reason: str) -> str:
    files = ", ".join(f"<code>{e(m)}</code>" for m in missing)
    return f"<div class=\"absent\"><p><strong>Missing:</strong> {files}.</p><p>{e(reason)}</p></div>"


def error_body(reads: list[Read]) -> str:
    return "".join(f"<p class=\"bad\">{e(r.error)}</p>" for r in reads if r.error)


def overview(run: RunFiles) -> Section:
    status, info = run_state(run)
    if not info:
        read = run.run_info()
        body = (error_body([read]) if read.error else "") + (
            "<p>No <code>run.json</code>: this run was not made by <code>babysit run</code> "
            "(e.g. a plain <code>babysit train</code>), so stages, timings and versions were not "
            "recorded. The sections below show what the run directory holds.</p>")
        return Section("overview", "Run", "info", "no run.json (not a babysit run workflow)", body)
    stages = [s for s in info.get("stages", []) if isinstance(s, dict)]
    rows = [{"stage": s.get("name", "?"), "status": s.get("status", "?"),
             "verdict": s.get("verdict", ""), "seconds": s.get("seconds")} for s in stages]
    for row in rows:  # this page is written inside the report stage: its time is not known yet
        if row["stage"] == "report" and row["verdict"] == "report.html":
            row["verdict"], row["seconds"] = "this page", None
    facts = [("status", status), ("started", _iso(info.get("started"))),
             ("finished", _iso(info.get("finished"))), ("seconds", info.get("seconds")),
             ("quick", info.get("quick", False)), ("force", info.get("force", False))]
    body = key_values(facts)
    if info.get("reason"):
        body += f"<p class=\"{'bad' if status == 'failed' else 'warn'}\"><strong>Stopped:</strong> {e(info['reason'])}</p>"
    if status == "interrupted":
        body += ("<p class=\"bad\">The process that wrote this run is gone while run.json still "
                 "says running: the run was interrupted. Sections below show what it wrote.</p>")
    body += table(rows, ["stage", "status", "verdict", "seconds"]) if rows else "<p>No stage started.</p>"
    st = {"finished": "ok", "running": "info", "failed": "fail", "interrupted": "fail"}.get(status, "warn")
    done = sum(1 for s in stages if s.get("status") not in ("running",))
    return Section("overview", "Run", st, f"{status}; {done} of {len(stages)} stages done", body)


def _iso(moment) -> str | None:
    """'2026-12-04T20:55:52+00:00' as '2026-12-04 20:55:52 UTC'."""
    if not isinstance(moment, str):
        return moment
    return moment.replace("T", " ").replace("+00:00", " UTC")


# --------------------------------------------------------------------------------------------
# Preflight (the gradient check: gradcheck_view)

def preflight_section(run: RunFiles, info: dict, status: str) -> Section:
    read = run.preflight()
    extra = figures_from_files(run.plots("preflight"), run.path)
    if not read.ok or not isinstance(read.data, dict):
        return absent_section("preflight", "Sanity checks before learning", read, run, info, status,
                       "'babysit preflight' (or 'babysit run')", extra)
    rep = read.data
    checks = rep.get("checks", {}) or {}
    rows = []
    for name, result in checks.items():
        result = result if isinstance(result, dict) else {"passed": bool(result)}
        numbers = {k: v for k, v in result.items() if k not in ("passed", "message", "name", "summary")}
        measured = result.get("summary") or (fmt(numbers) if numbers else "")
        rows.append({"check": name, "passed": bool(result.get("passed")),
                     "message": result.get("message", ""), "measured": measured})
    failed = [r["check"] for r in rows if not r["passed"]]
    passed = bool(rep.get("passed", not failed))
    verdict = (f"all {len(rows)} checks passed" if passed and not failed
               else f"failed: {', '.join(failed)}" if failed else "failed")
    body = f"<p>{badge('ok' if passed else 'fail', 'passed' if passed else 'failed')} {e(verdict)}</p>"
    body += table(rows, ["check", "passed", "message", "measured"]) if rows else "<p>No checks recorded.</p>"
    return Section("preflight", "Sanity checks before learning", "ok" if passed else "fail",
                   verdict, body + extra)


# --------------------------------------------------------------------------------------------
# Shared readers (the search section: search_view)

def records_of(data) -> list[dict]:
    """A list of dicts from a JSON value that is a list, or a dict holding one list."""
    if isinstance(data, list):
        return [r if isinstance(r, dict) else {"value": r} for r in data]
    if isinstance(data, dict):
        for key in ("rows", "trials", "alarms", "stages", "leaderboard"):
            if isinstance(data.get(key), list):
                return records_of(data[key])
        return [{"name": k, **v} if isinstance(v, dict) else {"name": k, "value": v} for k, v in data.items()]
    return []


# --------------------------------------------------------------------------------------------
# The final training and the monitor

def training_summary(run: RunFiles, metrics: list[dict], config: dict | None) -> str:
    if not metrics:
        return "no epoch finished"
    best = max((m for m in metrics if isinstance(m.get("val_acc"), (int, float))),
               key=lambda m: m["val_acc"], default=None)
    last = metrics[-1]
    planned = (config or {}).get("train", {}).get("epochs")
    text = f"{len(metrics)} epoch{'s' if len(metrics) != 1 else ''}"
    if isinstance(planned, int) and planned > len(metrics) and not last.get("stopped"):
        text += f" of {planned} planned"
    if best:
        text += f"; best val acc {fmt(best['val_acc'])} at epoch {best.get('epoch', '?')}"
    if isinstance(last.get("val_acc"), (int, float)):
        text += f"; final {fmt(last['val_acc'])}"
    if last.get("stopped"):
        text += f"; stopped: {last['stopped']}"
    return text


# Stage PNGs in watch/plots/ go to the section whose name part matches first, where the
# monitor's records cannot be redrawn (an installation without the monitor).
WATCH_TOPICS = (
    ("filters", ("filter", "first_layer", "firstlayer", "weights_image")),
    ("ratios", ("update", "ratio")),
    ("histograms", ("hist", "activation", "gradient", "grad", "saturat", "dead")),
    ("accuracy", ("acc",)),
    ("curves", ("loss",)),
)


def watch_pngs_by_topic(run: RunFiles) -> dict[str, list[str]]:
    topics: dict[str, list[str]] = {t: [] for t, _ in WATCH_TOPICS}
    for p in run.plots("watch"):
        name = p.stem.lower()
        topic = next((t for t, words in WATCH_TOPICS if any(w in name for w in words)), None)
        if topic:
            topics[topic].append(figures_from_files([p], run.path))
    return topics


def figures_html(found: list[str]) -> str:
    return f"<div class=\"figures\">{''.join(found)}</div>" if found else ""


def curves_section(run: RunFiles, info: dict, status: str, figures: dict, finding: str | None) -> Section:
    metrics, config = run.metrics(), run.config()
    records = metrics.data if metrics.ok else []
    verdict = training_summary(run, records, config.data if config.ok else None)
    body = error_body([metrics]) + figures_html(figures["curves"])
    if not body:
        return Section("curves", "Learning curves", "missing", "no training recorded",
                       missing_body(["metrics.jsonl", "watch/"],
                                    why_missing(run, info, status, "train", "'babysit train' (or 'babysit run')")))
    if records:
        cols = [c for c in ("epoch", "train_loss", "val_loss", "train_acc", "val_acc", "val_acc_avg", "lr",
                            "seconds", "stopped")
                if any(c in r for r in records)]
        body += "<details><summary>metrics.jsonl, epoch by epoch</summary>" + table(records, cols) + "</details>"
    return Section("curves", "Learning curves", finding or "ok", verdict, body)


def accuracy_section(run: RunFiles, info: dict, status: str, figures: dict, finding: str | None) -> Section:
    metrics = run.metrics()
    records = metrics.data if metrics.ok else []
    body, verdict = figures_html(figures["accuracy"]), "no accuracy recorded"
    last = records[-1] if records else {}
    if isinstance(last.get("train_acc"), (int, float)) and isinstance(last.get("val_acc"), (int, float)):
        gap = last["train_acc"] - last["val_acc"]
        verdict = f"last epoch: train {fmt(last['train_acc'])}, val {fmt(last['val_acc'])} (train − val {gap:+.3f})"
        if isinstance(last.get("val_acc_avg"), (int, float)):
            verdict += f"; the running average of the weights: val {fmt(last['val_acc_avg'])}"
    if not body:
        return Section("accuracy", "Train and validation accuracy", "missing", verdict,
                       missing_body(["metrics.jsonl"], why_missing(run, info, status, "train",
                                                                   "'babysit train' (or 'babysit run')")))
    return Section("accuracy", "Train and validation accuracy", finding or "ok", verdict, body)


def monitor_plot_section(run: RunFiles, info: dict, status: str, figures: dict, topic: str,
                         title: str, explain: str, finding: str | None) -> Section:
    found = figures[topic]
    if not found:
        return Section(topic, title, "missing", "not recorded",
                       missing_body(["watch/"], why_missing(run, info, status, "train",
                                                          "training with the monitor on ('babysit run', or "
                                                          "'babysit train' with watch.enabled)")))
    verdict = "a problem is diagnosed here (see the verdict)" if finding else "nothing diagnosed here"
    return Section(topic, title, finding or "ok", verdict,
                   f"<p class=\"note\">{e(explain)}</p>" + figures_html(found))


def activation_note(config: dict | None) -> str:
    """What the activation histograms should look like, for the network's own nonlinearity."""
    activation = ((config or {}).get("model") or {}).get("activation", "")
    per_kind = {
        "relu": "ReLU outputs are 0 for about half the inputs; a unit that is 0 for all of them is dead.",
        "leaky_relu": "leaky ReLU outputs lean positive; a unit stuck negative hardly learns.",
        "tanh": "tanh outputs should spread over [-1, 1], not sit at 0 or at ±1 (saturated).",
        "sigmoid": "sigmoid outputs should spread over [0, 1], not sit at 0 or 1 (saturated).",
        "maxout": "maxout outputs should spread; units always far from 0 saturate nothing but may diverge.",
    }
    lead = per_kind.get(str(activation), "")
    return ((f"This network uses {activation}: {lead} " if lead else "")
            + "Gradients shrinking layer by layer vanish; growing ones explode. Layers are named by their "
              "module's qualified name (see Reproduce for the architecture).")


SEVERITY_ORDER = {"critical": 0, "error": 0, "fatal": 0, "warning": 1, "warn": 1, "info": 2}


def diagnoses_section(run: RunFiles, info: dict, status: str) -> Section:
    read = run.diagnoses()
    if not read.ok:
        return absent_section("diagnoses", "Diagnoses", read, run, info, status,
                              "training with the monitor on ('babysit run')", "")
    items = records_of(read.data) if not isinstance(read.data, list) else [d for d in read.data if isinstance(d, dict)]
    if not items:
        body = "<p class=\"ok\">The monitor's rules found nothing wrong in this training.</p>"
        return Section("diagnoses", "Diagnoses", "ok", "none of the monitor's rules fired", body)
    items.sort(key=lambda d: SEVERITY_ORDER.get(str(d.get("severity", "")).lower(), 3))
    cards = []
    for d in items:
        sev = str(d.get("severity", "info")).lower()
        cls = {0: "bad", 1: "warn"}.get(SEVERITY_ORDER.get(sev, 3), "info")
        fix = d.get("fix")
        evidence = d.get("evidence")
        cards.append(
            f"<div class=\"diagnosis {cls}\"><p>{badge(cls, sev)} <code>{e(d.get('code', '?'))}</code> "
            f"{e(d.get('message', ''))}</p>"
            + (f"<p><strong>Fix:</strong> {e(fix)}</p>" if fix else "")
            + (f"<p class=\"evidence\">evidence: {e(fmt(evidence))}</p>" if evidence else "") + "</div>")
    worst = min(SEVERITY_ORDER.get(str(d.get("severity", "")).lower(), 3) for d in items)
    codes = ", ".join(str(d.get("code", "?")) for d in items)
    return Section("diagnoses", "Diagnoses", {0: "fail", 1: "warn"}.get(worst, "info"),
                   f"{len(items)}: {codes}", "".join(cards))


# --------------------------------------------------------------------------------------------
# Ensembles

def ensemble_section(run: RunFiles, info: dict, status: str) -> Section:
    from .verdict import points

    read = run.ensemble_table()
    extra = figures_from_files(run.plots("ensemble"), run.path)
    if not read.ok:
        return absent_section("ensemble", "Ensembles", read, run, info, status,
                              "'babysit ensemble' (or 'babysit run')", extra)
    rows = records_of(read.data)
    shown = []
    for r in rows:
        acc, low, high = r.get("val_acc"), r.get("val_low"), r.get("val_high")
        shown.append({"kind": r.get("kind"), "members": r.get("members"), "n": r.get("n"),
                      "val acc (95% CI)": percent(acc, low, high),
                      "best member": percent(r.get("best_member_acc")),
                      "gain over it (pt, 95% CI)": points(r.get("gain"), r.get("gain_low"), r.get("gain_high")),
                      "verdict": r.get("verdict"), "eval_seconds": r.get("eval_seconds"),
                      "x time": r.get("time_ratio"), "detail": r.get("detail")})
    best = max((r for r in rows if isinstance(r.get("val_acc"), (int, float))),
               key=lambda r: r["val_acc"], default=None)
    verdict = "no ensemble"
    if best:
        verdict = (f"best: {best.get('kind', '?')} at val acc {percent(best['val_acc'])}, "
                   f"{points(best.get('gain'), best.get('gain_low'), best.get('gain_high'))} over its best member"
                   + (f" ({best['verdict']})" if best.get("verdict") else ""))
    body = table(shown, caption="validation accuracy; gains in percentage points with their paired 95% interval")
    return Section("ensemble", "Ensembles", "ok" if rows else "warn", verdict, body + extra)


def percent(acc, low=None, high=None) -> str:
    """`acc` as "97.3% (96.1–98.1)" with its interval when given; "—" when there is none."""
    if not isinstance(acc, (int, float)):
        return "—"
    text = f"{100 * acc:.1f}%"
    if isinstance(low, (int, float)) and isinstance(high, (int, float)):
        text += f" ({100 * low:.1f}–{100 * high:.1f})"
    return text


def absent_section(sid: str, title: str, read: Read, run: RunFiles, info: dict, status: str, command: str,
                   extra: str, more: list[str] | None = None) -> Section:
    """A section whose main file is missing (or unreadable): say which, and why it may be."""
    stage = sid if sid not in ("diagnoses",) else "train"
    if read.error:
        return Section(sid, title, "fail", "unreadable", error_body([read]) + extra)
    record = stage_record(info, stage)
    recorded = record.get("status") if record else None
    # Skipped on request is the user's choice, not a problem; unavailable is a stage that could not run.
    state = {"skipped": "info", "unavailable": "warn"}.get(recorded, "missing")
    reason = why_missing(run, info, status, stage, command)
    return Section(sid, title, state, "missing" if state == "missing" else record.get("status"),
                   missing_body([read.rel, *(more or [])], reason) + extra)


# --------------------------------------------------------------------------------------------

def build_sections(run: RunFiles, verdict=None) -> list[Section]:
    """Every section of the report, in the order of the notes' workflow; each plot section's
    status is what the verdict found in it."""
    from .evaluation import test_section
    from .figures import metrics_figures, monitor_figures
    from .gradcheck_view import gradcheck_section
    from .reproduce import described, reproduction_section
    from .search_view import search_section
    from .verdict import compute_verdict

    verdict = verdict or compute_verdict(run)
    status, info = run_state(run)
    config = run.config()
    description = described(run)
    n_val = description.get("n_val")
    figures = monitor_figures(run, n_val, description.get("modules"))
    pngs = watch_pngs_by_topic(run)
    for topic, found_pngs in pngs.items():
        figures[topic] = figures[topic] or found_pngs
    metrics = run.metrics()
    if metrics.ok and metrics.data:
        own = metrics_figures(metrics.data, n_val) if not (figures["curves"] and figures["accuracy"]) else {}
        for topic in ("curves", "accuracy"):
            figures[topic] = figures[topic] or own.get(topic, [])
    found = verdict.section_status
    sections: list[Callable[[], Section]] = [
        lambda: overview(run),
        lambda: test_section(run, info, status),
        lambda: gradcheck_section(run, info, status, description),
        lambda: preflight_section(run, info, status),
        lambda: search_section(run, info, status, found("search")),
        lambda: curves_section(run, info, status, figures, found("curves")),
        lambda: accuracy_section(run, info, status, figures, found("accuracy")),
        lambda: monitor_plot_section(
            run, info, status, figures, "ratios", "Update:weight ratios per layer",
            "||Δw|| / ||w|| per parameter tensor, from the step the optimizer actually took; "
            "the notes' target is about 1e-3 (the shaded band: 1e-4 to 1e-2).", found("ratios")),
        lambda: monitor_plot_section(
            run, info, status, figures, "histograms", "Activations and gradients per layer",
            activation_note(config.data if config.ok else None), found("histograms")),
        lambda: monitor_plot_section(
            run, info, status, figures, "filters", "First-layer weights",
            "The notes: smooth, diverse filters are a good sign; noisy ones mean training has not converged, "
            "the learning rate is off, or regularization is too weak.", found("filters")),
        lambda: diagnoses_section(run, info, status),
        lambda: ensemble_section(run, info, status),
        lambda: reproduction_section(run, info, description),
    ]
    return [build() for build in sections]
