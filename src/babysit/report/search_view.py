"""The hyperparameter search on the page: the stages, the alarms that still hold, the leaderboard.

Coarse to fine, a configuration that does well in one stage is *continued* in the next (more
epochs from its checkpoint); the search's leaderboard lists every continuation as its own trial.
Here a configuration is one row, its lineage (``trial 2 (stage 1, 1 ep) → trial 7 (stage 2,
4 ep)``) said in it, and its figures those of its longest training.

A border alarm belongs to the stage that raised it: a later stage searches a moved or widened
range. Only the final stage's alarms are current; earlier ones are listed as history.
"""

from __future__ import annotations

from .markup import e, fmt, table
from .sections import (Section, absent_section, error_body, figures_from_files, missing_body, records_of,
                       why_missing)
from .verdict import current_alarms


def search_section(run, info: dict, status: str, finding: str | None) -> Section:
    board, alarms, stages = run.search_leaderboard(), run.search_alarms(), run.search_stages()
    plot_html = _plots(run)
    if not board.ok and not alarms.ok and not stages.ok:
        return absent_section("search", "Hyperparameter search", board, run, info, status,
                              "'babysit search' (or 'babysit run')", plot_html, more=[alarms.rel, stages.rel])
    body = error_body([board, alarms, stages])
    rows = records_of(board.data)
    groups = group_continuations(rows)
    verdict = "no finished trial"
    if groups:
        best = groups[0]
        verdict = f"{len(groups)} configurations in {len(rows)} trials; best val acc {_acc(best)}"
    current, earlier = current_alarms(run)
    if current:
        verdict += f"; {len(current)} border alarm{'s' if len(current) > 1 else ''} in the final stage"
        items = "".join(f"<li>{e(a.get('message') or fmt(a))}</li>" for a in current)
        body += f"<div class=\"alarms\"><h3>Border alarms of the final stage</h3><ul>{items}</ul></div>"
    elif alarms.ok:
        body += "<p class=\"ok\">No border alarm in the final stage: its best values lie inside their ranges.</p>"
    if earlier:
        items = "".join(f"<li>stage {e(a.get('stage', '?'))}: {e(a.get('message') or fmt(a))}</li>" for a in earlier)
        body += (f"<details><summary>{len(earlier)} alarm{'s' if len(earlier) > 1 else ''} of earlier stages "
                 f"(history: later stages searched other ranges)</summary><ul class=\"note\">{items}</ul></details>")
    stage_rows = [stage_row(r) for r in records_of(stages.data)]
    if stage_rows:
        body += "<h3>Stages (coarse to fine)</h3>" + table(stage_rows)
    if groups:
        params = [k for k in groups[0].get("params", {})] if isinstance(groups[0].get("params"), dict) else []
        shown = [_leader_row(g, params) for g in groups]
        columns = ["rank", "val acc (95% CI)", "epochs", "state", *[_short(p) for p in params], "lineage"]
        if any(r.get("note") for r in shown):
            columns.append("note")
        body += "<h3>Leaderboard</h3>" + table(
            shown, columns, limit=10,
            caption="one row per configuration; its continuations across stages in its lineage")
    elif board.missing:
        body += missing_body([board.rel], why_missing(run, info, status, "search", "'babysit search'"))
    body += plot_html
    state = finding or "ok"
    return Section("search", "Hyperparameter search", state, verdict, body)


def _plots(run) -> str:
    from .search_plots import optuna_figures  # matplotlib and optuna: only when drawn

    drawn = optuna_figures(run)
    return drawn if drawn else figures_from_files(run.plots("search"), run.path)


def group_continuations(rows: list[dict]) -> list[dict]:
    """One record per configuration: the row of its longest training, with ``lineage`` (the
    trials it was continued through, first to last), in the order of the best rank."""
    by_trial = {r.get("trial"): r for r in rows if r.get("trial") is not None}
    groups: dict = {}
    for r in rows:
        root, seen = r, set()
        while root.get("continued_from") in by_trial and id(root) not in seen:
            seen.add(id(root))
            root = by_trial[root["continued_from"]]
        groups.setdefault(root.get("trial", id(root)), []).append(r)
    out = []
    for members in groups.values():
        members.sort(key=lambda m: (m.get("stage") or 0, m.get("epochs") or 0))
        latest = dict(members[-1])
        latest["lineage"] = " → ".join(
            f"trial {m.get('trial', '?')} (stage {m.get('stage', '?')}, {m.get('epochs', '?')} ep)" for m in members)
        latest["_rank"] = min((m.get("rank") for m in members if isinstance(m.get("rank"), int)), default=10**9)
        out.append(latest)
    out.sort(key=lambda g: g["_rank"])
    for i, g in enumerate(out, 1):
        g["rank"] = i
    return out


def _acc(row: dict) -> str:
    acc = row.get("val_acc", row.get("value"))
    if not isinstance(acc, (int, float)):
        return "—"
    low = next((row[k] for k in ("val_low", "val_acc_low", "low") if k in row), None)
    high = next((row[k] for k in ("val_high", "val_acc_high", "high") if k in row), None)
    text = f"{100 * acc:.1f}%"
    if isinstance(low, (int, float)) and isinstance(high, (int, float)):
        text += f" ({100 * low:.1f}–{100 * high:.1f})"
    return text


def _short(param: str) -> str:
    return param  # the dotted key as in the config: "optim.name" says more than "name"


def _leader_row(group: dict, params: list[str]) -> dict:
    row = {"rank": group["rank"], "val acc (95% CI)": _acc(group), "epochs": group.get("epochs"),
           "state": group.get("state"), "lineage": group["lineage"], "note": group.get("note")}
    values = group.get("params") if isinstance(group.get("params"), dict) else {}
    row.update({_short(p): values.get(p) for p in params})
    return row


def stage_row(record: dict) -> dict:
    """One line per search stage: its budget and share of it, outcome, best before/after, ranges."""
    spec = record.get("spec") if isinstance(record.get("spec"), dict) else {}
    if not spec:
        return record  # a format this reader does not know: show it as it is
    # Few, dense columns: the table must fit the page at 1400 px beside the budget columns.
    row = {"stage": record.get("index"), "status": record.get("status"),
           "trials × epochs": f"{fmt(spec.get('trials'))} × {fmt(spec.get('epochs'))}",
           "sampler": spec.get("sampler"), "outcome": _outcome(record.get("counts"))}
    if "epochs_spent" in record or "budget_share" in record:
        row["epochs spent"] = _spent(record.get("epochs_spent"), record.get("budget_share"))
    if "best_before" in record or "best_after" in record:
        row["best before"] = _acc_dict(record.get("best_before"))
        row["best after"] = _acc_dict(record.get("best_after"))
    else:
        best = record.get("best") or {}
        row["best val acc"] = best.get("val_acc") if isinstance(best, dict) else None
    row["ranges"] = "; ".join(describe_range(k, v) for k, v in (spec.get("space") or {}).items())
    return row


def _spent(epochs, share) -> str:
    """'8 (25%)': the epochs a stage trained and their share of all the search's epochs."""
    text = f"{epochs:g}" if isinstance(epochs, (int, float)) else fmt(epochs)
    return text + (f" ({100 * share:.0f}%)" if isinstance(share, (int, float)) else "")


def _outcome(counts) -> str:
    """The trials' fates in one cell, '5 complete, 1 pruned' (zeros left out): four columns of
    mostly zeros made the stage table too wide for the page once the budget columns came."""
    if not isinstance(counts, dict):
        return "—"
    said = [f"{n} {fate}" for fate, n in counts.items() if n]
    return ", ".join(said) if said else "no trial finished"


def _acc_dict(best) -> str:
    """``{"acc","n","low","high"}`` as '92.2% (89.1–94.5, n=359)'; '—' for none."""
    if not isinstance(best, dict) or not isinstance(best.get("acc"), (int, float)):
        return "—"
    text = f"{100 * best['acc']:.1f}%"
    if isinstance(best.get("low"), (int, float)) and isinstance(best.get("high"), (int, float)):
        text += f" ({100 * best['low']:.1f}–{100 * best['high']:.1f}"
        text += f", n={best['n']})" if best.get("n") else ")"
    return text


def describe_range(key: str, param) -> str:
    if not isinstance(param, dict):
        return f"{key}={fmt(param)}"
    if "choices" in param:
        return f"{key} in {{{', '.join(map(str, param['choices']))}}}"
    scale = " log" if param.get("log") else ""
    return f"{key} [{fmt(param.get('low'))}, {fmt(param.get('high'))}]{scale}"
