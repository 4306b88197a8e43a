"""The gradient check on the page: worst coordinate first, a line per tensor, zeros apart.

The check compares a few coordinates of every tensor. What a reader needs first is the worst
relative error and where it is, then whether any tensor is off as a whole (the per-tensor
summary), and only then the coordinates. Rows where both gradients are exactly 0 agree without
testing anything (a bias left out of the regularization, a dead unit, an input that is 0): they
are counted apart with their reason instead of inflating the number of coordinates compared.
"""

from __future__ import annotations

import math

from .markup import badge, e, fmt, table
from .sections import Section, absent_section, figures_from_files

STATUS_OF = {"passed": "ok", "failed": "fail", "inconclusive": "warn"}
# Worst first: wrong, then doubtful, then fine, then tensors with nothing tested.
VERDICT_ORDER = {"wrong": 0, "failed": 0, "fail": 0, "kink": 1, "uneasy": 1, "inconclusive": 1,
                 "happy": 2, "ok": 2, "not tested": 3}


def gradcheck_section(run, info: dict, status: str, description: dict | None = None) -> Section:
    read = run.gradcheck()
    extra = figures_from_files(run.plots("gradcheck"), run.path)
    if not read.ok or not isinstance(read.data, dict):
        return absent_section("gradcheck", "Gradient check", read, run, info, status,
                              "'babysit gradcheck' (or 'babysit run')", extra)
    rep = read.data
    outcome = rep.get("outcome") if rep.get("outcome") in STATUS_OF \
        else ("passed" if rep.get("passed") else "failed")
    rows = [r for r in rep.get("rows", []) or [] if isinstance(r, dict)]
    zero = [r for r in rows if r.get("zero")]
    compared = sorted((r for r in rows if not r.get("zero")), key=_worst_first)
    rule = f" under the rule: {e(rep['rule'])}" if isinstance(rep.get("rule"), str) else ""  # "passed fail when..." misread
    body = f"<p>{badge(STATUS_OF[outcome], outcome)}{rule}</p>"
    if compared:
        worst = compared[0]
        body += (f"<p><strong>Worst coordinate:</strong> <code>{e(worst.get('name'))}{e(fmt(worst.get('index')))}"
                 f"</code>, relative error {e(fmt(worst.get('rel_error')))} ({e(worst.get('verdict', ''))}).</p>")
    body += _zero_rows(rep, zero)
    if rep.get("depth"):
        body += (f"<p class=\"note\">Depth {e(rep['depth'])} (layers with weights): relative errors accumulate "
                 "with depth, so ~1e-2 can be fine far from the loss of a deep net. Layers are named by the "
                 "module's qualified name in the model the check built (see Reproduce for the list).</p>")
    body += _names_note(rep, description or {})
    for w in rep.get("warnings", []) or []:
        body += f"<p class=\"warn\">⚠ {e(w)}</p>"
    if compared:
        body += "<h3>Per tensor</h3>" + table(per_tensor(compared, zero),
                                               ["tensor", "compared", "zero", "worst rel_error", "kinks", "verdict"])
        body += "<h3>Coordinates, worst first</h3>" + table(
            compared, ["name", "index", "analytic", "numeric", "rel_error", "kink", "verdict", "note"],
            limit=15, caption="analytic against centered-difference gradients")
    for key, why in (rep.get("not_exercised") or {}).items():
        body += f"<p class=\"note\">Not exercised: <code>{e(key)}</code>: {e(why)}</p>"
    sweep = rep.get("sweep")
    sweep_rows = sweep if isinstance(sweep, list) else \
        [{"h": k, "value": v} for k, v in sweep.items()] if isinstance(sweep, dict) else []
    if sweep_rows:
        body += "<h3>Step size sweep</h3>" + table(sweep_rows)
    summary = rep.get("summary") or outcome
    return Section("gradcheck", "Gradient check", STATUS_OF[outcome], summary, body + extra)


def _names_note(rep: dict, description: dict) -> str:
    """Say so when the checked model's layers are not the final model's (the check runs on the
    input config, before the search: e.g. dropout added by the search shifts the indices)."""
    checked = sorted({name.rsplit(".", 1)[0] for name in (rep.get("shapes") or {})})
    final = sorted(m["name"] for m in description.get("modules", []) if m.get("parameters"))
    if not checked or not final or checked == final:
        return ""
    return (f"<p class=\"note\">The check built the model of the input config, with weight layers "
            f"{e(', '.join(checked))}; the final model's are {e(', '.join(final))} (its architecture "
            "differs, e.g. dropout layers between them): the names are each model's qualified names.</p>")


def _worst_first(row: dict):
    rel = row.get("rel_error")
    rel = rel if isinstance(rel, (int, float)) and math.isfinite(rel) else math.inf
    return (VERDICT_ORDER.get(str(row.get("verdict", "")).lower(), 1), -rel)


def _zero_rows(rep: dict, zero: list[dict]) -> str:
    count = rep.get("zero_rows", len(zero))
    if not count:
        return ""
    reasons = rep.get("zero_reasons") or {}
    if not reasons:
        for r in zero:
            reasons[r.get("note") or "no reason given"] = reasons.get(r.get("note") or "no reason given", 0) + 1
    items = "".join(f"<li>{e(n)}: {e(why)}</li>" for why, n in reasons.items())
    return (f"<p>{e(count)} rows are exactly 0 on both sides: they agree without testing anything, so they "
            f"are counted apart from the comparison:</p><ul>{items}</ul>")


def per_tensor(compared: list[dict], zero: list[dict]) -> list[dict]:
    """One row per tensor: coordinates compared, zeros, the worst relative error, kinks, verdict."""
    out: dict[str, dict] = {}
    for r in compared:
        name = str(r.get("name", "?"))
        row = out.setdefault(name, {"tensor": name, "compared": 0, "zero": 0, "worst rel_error": None,
                                    "kinks": 0, "verdict": "happy"})
        row["compared"] += 1
        rel = r.get("rel_error")
        if isinstance(rel, (int, float)) and (row["worst rel_error"] is None or rel > row["worst rel_error"]):
            row["worst rel_error"] = rel
        row["kinks"] += bool(r.get("kink"))
        verdict = str(r.get("verdict", "happy"))
        if VERDICT_ORDER.get(verdict.lower(), 1) < VERDICT_ORDER.get(row["verdict"].lower(), 1):
            row["verdict"] = verdict
    for r in zero:
        name = str(r.get("name", "?"))
        out.setdefault(name, {"tensor": name, "compared": 0, "zero": 0, "worst rel_error": None,
                              "kinks": 0, "verdict": "not tested"})["zero"] += 1
    return sorted(out.values(), key=lambda row: (VERDICT_ORDER.get(row["verdict"].lower(), 1),
                                                 -(row["worst rel_error"] or 0)))
