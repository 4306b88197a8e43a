"""The report as a person reads it, in a real headless Chromium at 1400, 800 and 390 px wide.

No horizontal scrolling, every nav link lands on a visible heading, no text drawn over other text
in the page's own figures, and a verdict at the top that names a planted problem and raises no
false alarm on a healthy run, the same verdict ``babysit run`` prints last.
"""

from __future__ import annotations

import json

import pytest

from report_browser import Chromium, chromium_path

WIDTHS = (1400, 800, 390)


@pytest.fixture(scope="module")
def browser():
    chromium_path()
    with Chromium() as b:
        yield b


def _open(browser, path, width: int):
    browser.call("Emulation.setDeviceMetricsOverride", width=width, height=900, deviceScaleFactor=1,
                 mobile=width < 500)
    browser.events.clear()
    browser.open(path.resolve().as_uri())


LAYOUT = """(() => {
  const doc = document.documentElement;
  const nav = document.querySelector("nav");
  const landed = [];
  for (const a of document.querySelectorAll("nav a")) {
    const target = document.getElementById(a.getAttribute("href").slice(1));
    a.click();
    const heading = target.querySelector("h2").getBoundingClientRect();
    landed.push({href: a.getAttribute("href"), top: heading.top, bottom: heading.bottom,
                 navBottom: nav.getBoundingClientRect().bottom, height: window.innerHeight});
  }
  window.scrollTo(0, 0);
  const wide = [...document.querySelectorAll("main *")].filter(n => n.getBoundingClientRect().right > doc.clientWidth + 1
      && !n.closest(".scroll, pre, nav")).map(n => n.tagName + "." + n.className).slice(0, 5);
  // A table wider than its box hides columns behind a scroll bar (cut at the edge).
  const cut = [...document.querySelectorAll("main .scroll")].filter(box => box.offsetParent !== null
      && box.scrollWidth > box.clientWidth + 1).map(box => box.closest("section, .verdict-box").id
      + ": " + box.querySelector("thead").innerText.replace(/\s+/g, " ").slice(0, 80));
  return {scrollWidth: doc.scrollWidth, viewport: window.innerWidth, landed: landed, wide: wide, cut: cut};
})()"""


@pytest.mark.parametrize("width", WIDTHS)
def test_no_sideways_scrolling_no_cut_table_and_nav_links_show_their_heading(browser, complete_run, width):
    _open(browser, complete_run / "report.html", width)
    facts = browser.evaluate(LAYOUT)
    assert browser.errors() == []
    assert facts["scrollWidth"] <= facts["viewport"], f"at {width} px the page is {facts['scrollWidth']} px wide: {facts['wide']}"
    assert facts["cut"] == [], f"at {width} px tables are cut: {facts['cut']}"
    assert len(facts["landed"]) >= 14
    for spot in facts["landed"]:
        assert spot["top"] >= spot["navBottom"] - 1, f"{spot['href']}: heading under the sticky nav at {width} px"
        assert spot["bottom"] <= spot["height"], f"{spot['href']}: heading below the window at {width} px"


# Every SVG figure of the page put inline, and each pair of matplotlib text groups whose boxes
# intersect (ignoring one inside the other): text drawn over text.
OVERLAPS = """(() => {
  const found = [];
  const imgs = [...document.querySelectorAll("img")].filter(i => i.src.startsWith("data:image/svg+xml;base64,"));
  for (const img of imgs) {
    const holder = document.createElement("div");
    holder.style.width = img.getBoundingClientRect().width + "px";
    holder.innerHTML = atob(img.src.split(",")[1]);
    const svg = holder.querySelector("svg");
    svg.setAttribute("width", img.getBoundingClientRect().width);
    svg.removeAttribute("height");
    document.body.appendChild(holder);
    const texts = [...holder.querySelectorAll("g[id^='text_']")].filter(g => !g.parentElement.closest("g[id^='text_']"))
      .map(g => ({id: g.id, r: g.getBoundingClientRect()})).filter(t => t.r.width > 0 && t.r.height > 0);
    for (let i = 0; i < texts.length; i++) for (let j = i + 1; j < texts.length; j++) {
      const a = texts[i].r, b = texts[j].r;
      const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
      const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
      if (w > 1 && h > 1) found.push(img.alt + ": " + texts[i].id + " x " + texts[j].id);
    }
    holder.remove();
  }
  return {figures: imgs.length, overlaps: found};
})()"""


@pytest.mark.parametrize("width", (1400, 800))
def test_no_text_over_text_in_the_page_figures(browser, complete_run, width):
    _open(browser, complete_run / "report.html", width)
    found = browser.evaluate(OVERLAPS)
    assert found["figures"] >= 8  # the monitor's curves, histograms, ratios and Optuna's plots
    assert found["overlaps"] == []


VERDICT = """(() => {
  const box = document.getElementById("verdict");
  const items = [...box.querySelectorAll("ol.problems li")].map(li => li.innerText);
  return {status: box.dataset.status, text: box.innerText, problems: items.length, items: items,
          first: document.querySelector("main").firstElementChild.id,
          top: box.getBoundingClientRect().top, height: window.innerHeight};
})()"""


def _verdict(browser, path, width=1400):
    _open(browser, path / "report.html", width)
    found = browser.evaluate(VERDICT)
    assert browser.errors() == []
    assert found["first"] == "verdict" and found["top"] < found["height"] / 2  # the first thing seen
    return found


def test_verdict_names_a_far_too_high_learning_rate(browser, planted_runs):
    path, code, out, _ = planted_runs["lr_too_high"]
    assert code == 1  # the final training stopped: the loss exploded
    found = _verdict(browser, path)
    assert found["status"] == "fail"
    assert "lr_too_high" in found["items"][0]  # ranked first: the cause, not the symptom
    assert "lower the learning rate" in found["text"].lower()
    assert "No model to use" in found["text"]


def test_verdict_names_overfitting(browser, planted_runs):
    path, code, out, _ = planted_runs["overfitting"]
    assert code == 0
    found = _verdict(browser, path)
    assert found["status"] == "warn" and found["problems"] >= 1
    assert "overfitting" in found["text"] and "regularize more" in found["text"].lower()
    by_id = browser.evaluate("Object.fromEntries([...document.querySelectorAll('main > section')]"
                             ".map(s => [s.id, s.dataset.status]))")
    assert by_id["accuracy"] == "warn"  # the section that shows it is marked, computed, not fixed
    assert by_id["ratios"] == "ok"


def test_healthy_run_gets_no_false_alarm(browser, planted_runs):
    path, code, out, _ = planted_runs["healthy"]
    assert code == 0
    found = _verdict(browser, path)
    assert found["status"] == "ok" and found["problems"] == 0, found["text"]
    test = json.loads((path / "test.json").read_text())  # `babysit run` evaluates the test split
    head = test["models"][test["headline"]]
    assert f"test accuracy {100 * head['acc']:.1f}%" in found["text"] and f"n={test['n']}" in found["text"]
    assert "Use checkpoints/epoch_" in found["text"]


@pytest.mark.parametrize("name", ["healthy", "lr_too_high", "overfitting"])
def test_babysit_run_ends_with_the_verdict_the_page_opens_with(planted_runs, name):
    from babysit.report import RunFiles
    from babysit.report.verdict import compute_verdict

    path, code, out, err = planted_runs[name]
    verdict = compute_verdict(RunFiles.open(path))
    lines = verdict.lines()
    assert out.rstrip("\n").split("\n")[-len(lines):] == lines
    page = (path / "report.html").read_text()
    assert f'id="verdict" data-status="{verdict.status}"' in page
    assert "%|" not in out + err  # no progress-bar fragments where the output is not a terminal
    assert "epoch   1/" in out + err  # but the plain epoch lines


def test_test_split_is_shown_as_the_contract_says(browser, complete_run, tmp_path):
    # The final evaluation's own test.json, and a planted one that surely has a row within noise
    # (the averaged weights) and a gain (the checkpoint ensemble): a real run may have either.
    import shutil

    from report_samples import plant_test_json

    from babysit.report import write_report

    planted = tmp_path / "planted"
    shutil.copytree(complete_run, planted)
    plant_test_json(planted)
    write_report(planted)
    for path in (complete_run, planted):
        _open(browser, path / "report.html", 1400)
        test = json.loads((path / "test.json").read_text())
        text = browser.evaluate("document.getElementById('test').innerText")
        box = browser.evaluate("document.getElementById('verdict').innerText")
        head = test["models"][test["headline"]]
        assert f"{100 * head['acc']:.1f}% ({100 * head['low']:.1f}–{100 * head['high']:.1f})" in text
        assert str(test["n"]) in text
        assert f"test accuracy {100 * head['acc']:.1f}%" in box and f"n={test['n']}" in box
        rows = {line.split("\t")[0].removesuffix(" (headline)"): line for line in text.split("\n") if "\t" in line}
        for name, model in test["models"].items():
            assert f"{100 * model['acc']:.1f}%" in rows[name], name
            if model.get("diff"):
                verdict = model["diff"]["verdict"]
                assert verdict in rows[name], name  # each comparison with its verdict
                said = f"{name} against {model['vs']} on the test split" in box
                assert said == (verdict == "within noise"), name  # what was within noise, and only that
    assert "within noise" in text and "gain" in text  # the planted page shows both kinds


def test_page_is_small_and_self_contained(browser, complete_run):
    html = (complete_run / "report.html").read_text()
    assert len(html.encode()) < 2_000_000
    _open(browser, complete_run / "report.html", 1400)
    facts = browser.evaluate("({scripts: document.scripts.length, external: [...document.querySelectorAll('[src],[href]')]"
                             ".map(n => n.getAttribute('src') || n.getAttribute('href'))"
                             ".filter(u => /^(https?:)?\\/\\//.test(u)).length})")
    assert facts == {"scripts": 0, "external": 0}
