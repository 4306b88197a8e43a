"""The report's sections, in the order of the notes' workflow, each built from the run's files.

A section has a status (``ok``, ``warn``, ``fail``, ``missing``, ``info``), a one-line verdict and
its HTML body. When a section's files are absent its body says which files and why they may be
missing (the stage did not run, was unavailable, failed, or the run was interrupted before it).
"""

from __future__ import annotations

import shlex
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..processes import pid_alive
from .markup import badge, e, figure, figures_from_files, fmt, key_values, pre, table
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
             "verdict": s.get("verdict", ""), "seconds": s.get("seconds", "")} for s in stages]
    facts = [("status", status), ("started", info.get("started", "?")),
             ("finished", info.get("finished", "—")), ("seconds", info.get("seconds", "—")),
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


# --------------------------------------------------------------------------------------------
# Gradient check and preflight

def gradcheck_section(run: RunFiles, info: dict, status: str) -> Section:
    read = run.gradcheck()
    extra = figures_from_files(run.plots("gradcheck"), run.path)
    if not read.ok or not isinstance(read.data, dict):
        return _absent("gradcheck", "Gradient check", read, run, info, status,
                       "'babysit gradcheck' (or 'babysit run')", extra)
    rep = read.data
    passed = bool(rep.get("passed"))
    outcome = rep.get("outcome") if rep.get("outcome") in ("passed", "failed", "inconclusive") \
        else ("passed" if passed else "failed")
    status_of = {"passed": "ok", "failed": "fail", "inconclusive": "warn"}
    body = f"<p>{badge(status_of[outcome], outcome)}"
    body += f" {e(rep['rule'])}</p>" if isinstance(rep.get("rule"), str) else "</p>"
    if rep.get("zero_rows"):  # 0 = 0 rows agree without testing anything: said apart
        reasons = "; ".join(f"{n} {why}" for why, n in (rep.get("zero_reasons") or {}).items())
        body += f"<p>{e(rep['zero_rows'])} rows exactly 0 on both sides, counted apart: {e(reasons)}</p>"
    if rep.get("depth"):
        body += (f"<p>Depth {e(rep['depth'])} (layers with weights); the notes: relative errors "
                 "accumulate with depth, so ~1e-2 can be fine far from the loss of a deep net.</p>")
    for w in rep.get("warnings", []) or []:
        body += f"<p class=\"warn\">⚠ {e(w)}</p>"
    rows = rep.get("rows", []) or []
    if rows:
        body += table(rows, preferred=["name", "index", "analytic", "numeric", "rel_error", "kink", "verdict"],
                      caption="Analytic against centered-difference gradients, a few coordinates of every tensor")
    if rep.get("sweep"):
        sweep = rep["sweep"]
        rows = sweep if isinstance(sweep, list) else [{"h": k, "value": v} for k, v in sweep.items()] \
            if isinstance(sweep, dict) else []
        if rows:
            body += "<h3>Step size sweep</h3>" + table(rows)
    body += extra
    return Section("gradcheck", "Gradient check", status_of[outcome], rep.get("summary") or outcome, body)


def preflight_section(run: RunFiles, info: dict, status: str) -> Section:
    read = run.preflight()
    extra = figures_from_files(run.plots("preflight"), run.path)
    if not read.ok or not isinstance(read.data, dict):
        return _absent("preflight", "Sanity checks before learning", read, run, info, status,
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
# Search

def search_section(run: RunFiles, info: dict, status: str) -> Section:
    board, alarms, stages = run.search_leaderboard(), run.search_alarms(), run.search_stages()
    plot_html = figures_from_files(run.plots("search"), run.path)
    if not board.ok and not alarms.ok and not stages.ok:
        return _absent("search", "Hyperparameter search", board, run, info, status,
                       "'babysit search' (or 'babysit run')", plot_html,
                       more=[alarms.rel, stages.rel])
    body = error_body([board, alarms, stages])
    rows = _records(board.data)
    verdict = "no finished trial"
    if rows:
        best = rows[0]
        value = best.get("value", best.get("val_acc", best.get("best_value")))
        verdict = f"{len(rows)} trials; best {fmt(value)}" if value is not None else f"{len(rows)} trials"
    alarm_rows = _records(alarms.data)
    state = "warn" if alarm_rows else "ok"
    if alarm_rows:
        verdict += f"; {len(alarm_rows)} border alarm{'s' if len(alarm_rows) > 1 else ''}"
        items = "".join(f"<li>{e(a.get('message') or fmt(a))}</li>" for a in alarm_rows)
        body += f"<div class=\"alarms\"><h3>Border alarms</h3><ul>{items}</ul></div>"
    elif alarms.ok:
        body += "<p class=\"ok\">No border alarm: the best values lie inside their ranges.</p>"
    stage_rows = [search_stage_row(r) for r in _records(stages.data)]
    if stage_rows:
        body += "<h3>Stages (coarse to fine)</h3>" + table(stage_rows)
    if rows:
        body += "<h3>Leaderboard</h3>" + table(rows, preferred=["rank", "stage", "number", "trial", "value",
                                                                "val_acc", "epochs", "state"], limit=25)
    elif board.missing:
        body += missing_body([board.rel], why_missing(run, info, status, "search", "'babysit search'"))
    body += plot_html
    return Section("search", "Hyperparameter search", state, verdict, body)


def search_stage_row(record: dict) -> dict:
    """One line per search stage: its budget, outcome and the ranges it searched."""
    spec = record.get("spec") if isinstance(record.get("spec"), dict) else {}
    if not spec:
        return record  # a format this reader does not know: show it as it is
    row = {"stage": record.get("index"), "status": record.get("status", ""),
           "trials": spec.get("trials"), "epochs": spec.get("epochs"), "sampler": spec.get("sampler", "")}
    row.update({k: v for k, v in (record.get("counts") or {}).items()})
    best = record.get("best") or {}
    if best.get("val_acc") is not None:
        row["best val_acc"] = best["val_acc"]
    row["ranges"] = "; ".join(_describe_range(k, v) for k, v in (spec.get("space") or {}).items())
    return row


def _describe_range(key: str, param) -> str:
    if not isinstance(param, dict):
        return f"{key}={fmt(param)}"
    if "choices" in param:
        return f"{key} in {{{', '.join(map(str, param['choices']))}}}"
    scale = " log" if param.get("log") else ""
    return f"{key} [{fmt(param.get('low'))}, {fmt(param.get('high'))}]{scale}"


def _records(data) -> list[dict]:
    """A list of dicts from a JSON value that is a list, or a dict holding one list."""
    if isinstance(data, list):
        return [r if isinstance(r, dict) else {"value": r} for r in data]
    if isinstance(data, dict):
        for key in ("rows", "trials", "alarms", "stages", "leaderboard"):
            if isinstance(data.get(key), list):
                return _records(data[key])
        return [{"name": k, **v} if isinstance(v, dict) else {"name": k, "value": v} for k, v in data.items()]
    return []


# --------------------------------------------------------------------------------------------
# The final training and the monitor

# Monitor plots go to the section whose name part matches first (order matters: an
# "update_ratio" plot is not a loss plot even if it mentions one).
WATCH_TOPICS = (
    ("filters", ("filter", "first_layer", "firstlayer", "weights_image")),
    ("ratios", ("update", "ratio")),
    ("histograms", ("hist", "activation", "gradient", "grad", "saturat", "dead")),
    ("accuracy", ("acc",)),
    ("curves", ("loss",)),
)


def watch_plots_by_topic(run: RunFiles) -> dict[str, list[Path]]:
    topics: dict[str, list[Path]] = {t: [] for t, _ in WATCH_TOPICS}
    topics["other"] = []
    for p in run.plots("watch"):
        name = p.stem.lower()
        topic = next((t for t, words in WATCH_TOPICS if any(w in name for w in words)), "other")
        topics[topic].append(p)
    return topics


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


def curves_section(run: RunFiles, info: dict, status: str, topics: dict) -> Section:
    from . import plots  # matplotlib: only when a plot must be drawn

    metrics, config = run.metrics(), run.config()
    records = metrics.data if metrics.ok else []
    verdict = training_summary(run, records, config.data if config.ok else None)
    body = error_body([metrics])
    if topics["curves"]:
        body += figures_from_files(topics["curves"], run.path)
    elif records and (png := plots.loss_curves(records)):
        body += ("<p class=\"note\">Drawn from <code>metrics.jsonl</code> (one point per epoch): "
                 "the monitor's per-iteration plots are not in <code>watch/plots/</code>.</p>")
        body += f"<div class=\"figures\">{figure(png, 'loss per epoch, linear and log scale (from metrics.jsonl)')}</div>"
    if not body:
        return Section("curves", "Learning curves", "missing", "no training recorded",
                       missing_body(["metrics.jsonl", "watch/plots/*loss*.png"],
                                    why_missing(run, info, status, "train", "'babysit train' (or 'babysit run')")))
    if records:
        cols = [c for c in ("epoch", "train_loss", "val_loss", "train_acc", "val_acc", "val_acc_avg", "lr",
                            "seconds", "stopped")
                if any(c in r for r in records)]
        body += "<details><summary>metrics.jsonl, epoch by epoch</summary>" + table(records, cols) + "</details>"
    stopped = records and records[-1].get("stopped")
    return Section("curves", "Learning curves", "warn" if stopped else "ok", verdict, body)


def accuracy_section(run: RunFiles, info: dict, status: str, topics: dict) -> Section:
    from . import plots

    metrics = run.metrics()
    records = metrics.data if metrics.ok else []
    body, verdict = "", "no accuracy recorded"
    if topics["accuracy"]:
        body = figures_from_files(topics["accuracy"], run.path)
    elif records and (png := plots.accuracy_curves(records)):
        body = f"<div class=\"figures\">{figure(png, 'train and validation accuracy (from metrics.jsonl)')}</div>"
    last = records[-1] if records else {}
    if isinstance(last.get("train_acc"), (int, float)) and isinstance(last.get("val_acc"), (int, float)):
        gap = last["train_acc"] - last["val_acc"]
        verdict = f"train {fmt(last['train_acc'])}, val {fmt(last['val_acc'])} (gap {gap:+.3f})"
        if isinstance(last.get("val_acc_avg"), (int, float)):
            verdict += f"; the running average of the weights: val {fmt(last['val_acc_avg'])}"
    if not body:
        return Section("accuracy", "Train and validation accuracy", "missing", verdict,
                       missing_body(["metrics.jsonl"], why_missing(run, info, status, "train",
                                                                   "'babysit train' (or 'babysit run')")))
    return Section("accuracy", "Train and validation accuracy", "ok", verdict, body)


def monitor_plot_section(run: RunFiles, info: dict, status: str, topics: dict, topic: str,
                         title: str, pattern: str, explain: str) -> Section:
    found = topics[topic]
    if not found:
        return Section(topic, title, "missing", "not recorded",
                       missing_body([f"watch/plots/{pattern}"],
                                    why_missing(run, info, status, "train",
                                                "training with the monitor on ('babysit run', or "
                                                "'babysit plots RUN_DIR' after a monitored training)")))
    return Section(topic, title, "ok", f"{len(found)} plot{'s' if len(found) > 1 else ''}",
                   f"<p class=\"note\">{e(explain)}</p>" + figures_from_files(found, run.path))


SEVERITY_ORDER = {"critical": 0, "error": 0, "fatal": 0, "warning": 1, "warn": 1, "info": 2}


def diagnoses_section(run: RunFiles, info: dict, status: str, topics: dict) -> Section:
    read = run.diagnoses()
    other = figures_from_files(topics["other"], run.path)
    if not read.ok:
        return _absent("diagnoses", "Diagnoses", read, run, info, status,
                       "training with the monitor on ('babysit run')", other)
    items = _records(read.data) if not isinstance(read.data, list) else [d for d in read.data if isinstance(d, dict)]
    if not items:
        body = "<p class=\"ok\">The monitor found nothing wrong in this training.</p>"
        return Section("diagnoses", "Diagnoses", "ok", "none: training looks healthy", body + other)
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
    return Section("diagnoses", "Diagnoses", "fail" if worst == 0 else "warn",
                   f"{len(items)}: {codes}", "".join(cards) + other)


# --------------------------------------------------------------------------------------------
# Ensembles and reproduction

def ensemble_section(run: RunFiles, info: dict, status: str) -> Section:
    read = run.ensemble_table()
    extra = figures_from_files(run.plots("ensemble"), run.path)
    if not read.ok:
        return _absent("ensemble", "Ensembles", read, run, info, status,
                       "'babysit ensemble' (or 'babysit run')", extra)
    rows = _records(read.data)
    best = max((r for r in rows if isinstance(r.get("val_acc"), (int, float))),
               key=lambda r: r["val_acc"], default=None)
    verdict = (f"best: {best.get('kind', '?')} at val acc {fmt(best['val_acc'])}"
               + (f" ({100 * float(best['gain']):+.2f} pt over its best member"
                  + (f", {best['verdict']}" if best.get("verdict") else "") + ")"
                  if isinstance(best.get("gain"), (int, float)) else "")) if best else "no ensemble"
    body = table(rows, preferred=["kind", "members", "n", "val_acc", "val_low", "val_high", "best_member_acc",
                                  "gain", "gain_low", "gain_high", "verdict", "eval_seconds",
                                  "eval_memory_mb"]) + extra
    return Section("ensemble", "Ensembles", "ok" if rows else "warn", verdict, body)


def reproduction_section(run: RunFiles, info: dict) -> Section:
    config_text, config = run.config_text(), run.config()
    facts: list[tuple[str, object]] = []
    seed = (config.data or {}).get("seed") if config.ok else info.get("seed")
    facts.append(("seed", seed if seed is not None else "not recorded"))
    if info.get("command"):
        cmd = info["command"]
        facts.append(("command", shlex.join(cmd) if isinstance(cmd, list) else cmd))
    if info.get("cwd"):
        facts.append(("working directory", info["cwd"]))
    for key, value in (info.get("versions") or {}).items():
        facts.append((key, value))
    device = info.get("device")
    if isinstance(device, dict):
        facts.extend((f"device {k}", v) for k, v in device.items())
    elif device:
        facts.append(("device", device))
    if not info:
        facts.append(("versions, device", "not recorded (no run.json)"))
    best = [p.name for p in run.checkpoints()]
    if best:
        facts.append(("checkpoints", f"{len(best)} in checkpoints/, last {best[-1]}"))
    body = key_values(facts)
    body += (f"<p>Retrain the final model with the same numbers: <code>babysit train "
             f"{e(run.path / 'config.toml')} --run-dir NEW_DIR</code> (same machine, same seed).</p>")
    if config_text.ok:
        body += "<h3>config.toml (the final training, as resolved)</h3>" + pre(config_text.data)
    if isinstance(info.get("input_config"), dict):
        import tomli_w
        try:
            body += "<h3>The workflow's input config</h3>" + pre(tomli_w.dumps(info["input_config"]))
        except (TypeError, ValueError):
            pass
    status = "ok" if config_text.ok and info else ("warn" if config_text.ok or info else "missing")
    if not config_text.ok:
        body = missing_body(["config.toml"], "No training wrote its config here.") + error_body([config_text]) + body
    verdict = f"seed {seed}" + (f", {info['versions'].get('torch', '')} on {_device_name(device)}"
                                if info.get("versions") else "")
    return Section("reproduce", "Reproduce this run", status, verdict, body)


def _device_name(device) -> str:
    if isinstance(device, dict):
        return str(device.get("name") or device.get("type") or "?")
    return str(device or "?")


def _absent(sid: str, title: str, read: Read, run: RunFiles, info: dict, status: str, command: str,
            extra: str, more: list[str] | None = None) -> Section:
    """A section whose main file is missing (or unreadable): say which, and why it may be."""
    stage = sid if sid not in ("diagnoses",) else "train"
    if read.error:
        return Section(sid, title, "fail", "unreadable", error_body([read]) + extra)
    record = stage_record(info, stage)
    state = "warn" if record and record.get("status") in ("unavailable", "skipped") else "missing"
    reason = why_missing(run, info, status, stage, command)
    return Section(sid, title, state, "missing" if state == "missing" else record.get("status"),
                   missing_body([read.rel, *(more or [])], reason) + extra)


# --------------------------------------------------------------------------------------------

def build_sections(run: RunFiles) -> list[Section]:
    """Every section of the report, in the order of the notes' workflow."""
    status, info = run_state(run)
    topics = watch_plots_by_topic(run)
    sections: list[Callable[[], Section]] = [
        lambda: overview(run),
        lambda: gradcheck_section(run, info, status),
        lambda: preflight_section(run, info, status),
        lambda: search_section(run, info, status),
        lambda: curves_section(run, info, status, topics),
        lambda: accuracy_section(run, info, status, topics),
        lambda: monitor_plot_section(
            run, info, status, topics, "ratios", "Update:weight ratios per layer", "*update*.png",
            "||Δw|| / ||w|| per parameter tensor, from the step the optimizer actually took; "
            "the notes' target is about 1e-3 (much lower: learning rate too low; higher: too high)."),
        lambda: monitor_plot_section(
            run, info, status, topics, "histograms", "Activation and gradient histograms", "*hist*.png",
            "Per layer: tanh units should spread over [-1, 1], not sit at 0 or ±1; ReLU units that "
            "never fire are dead; gradients shrinking layer by layer vanish."),
        lambda: monitor_plot_section(
            run, info, status, topics, "filters", "First-layer weights", "*filters*.png",
            "Smooth, diverse filters are a good sign; noisy ones mean training has not converged, the "
            "learning rate is off, or regularization is too weak."),
        lambda: diagnoses_section(run, info, status, topics),
        lambda: ensemble_section(run, info, status),
        lambda: reproduction_section(run, info),
    ]
    return [build() for build in sections]
