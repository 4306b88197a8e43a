"""The test split on the page: the final evaluation's ``test.json``, exactly as it says.

Validation chose everything before (the search, the epoch, the ensemble members); the test split
was read once, at the end, to report. Each model's accuracy carries its n and 95% interval, and
a model compared with another carries the paired difference in points with its interval and the
verdict (gain, loss, within noise). Without ``test.json`` the page says no test split was
evaluated: every accuracy elsewhere on it is a validation accuracy.
"""

from __future__ import annotations

from .markup import e, table
from .sections import Section, error_body, percent
from .verdict import points


def test_section(run, info: dict, status: str) -> Section:
    read = run.json("test.json")
    title = "Test split"
    if read.error:
        return Section("test", title, "fail", "test.json unreadable", error_body([read]))
    data = read.data if read.ok and isinstance(read.data, dict) else None
    if data is None or not isinstance(data.get("models"), dict):
        return Section("test", title, "info", "no test split evaluated",
                       "<div class=\"absent\"><p><strong>No test split evaluated</strong> (no <code>test.json</code>"
                       "): the accuracies on this page are validation accuracies, the figures that chose "
                       "the model, and so slightly optimistic.</p></div>")
    rows = []
    for name, model in data["models"].items():
        if not isinstance(model, dict):
            continue
        diff = model.get("diff") if isinstance(model.get("diff"), dict) else {}
        rows.append({"model": name + (" (headline)" if name == data.get("headline") else ""),
                     "test acc (95% CI)": _shown(model), "n": model.get("n", data.get("n")),
                     "compared with": model.get("vs"),
                     "difference (pt, 95% CI)": points(diff.get("diff"), diff.get("low"), diff.get("high"))
                     if diff else None,
                     "verdict": diff.get("verdict"), "file": model.get("file")})
    head = data["models"].get(data.get("headline")) or {}
    verdict = (f"{data.get('headline')}: {_shown(head)} on n={head.get('n', data.get('n'))}"
               if head else f"{len(rows)} models evaluated")
    body = (f"<p>Source: {e(data.get('source', '—'))}; n = {e(data.get('n', '—'))}. Evaluated once, after "
            "everything was chosen on validation.</p>"
            + table(rows, ["model", "test acc (95% CI)", "n", "compared with", "difference (pt, 95% CI)",
                           "verdict", "file"]))
    return Section("test", title, "ok", verdict, body)


def _shown(model: dict) -> str:
    return percent(model.get("acc"), model.get("low"), model.get("high"))
