"""The report in a real headless Chromium: every section renders, with its images, without errors."""

from __future__ import annotations

import importlib.util

import pytest

from report_browser import PAGE_FACTS, Chromium, chromium_path, screenshot_is_blank

SECTIONS = ["overview", "test", "gradcheck", "preflight", "search", "curves", "accuracy", "ratios",
            "histograms", "filters", "diagnoses", "ensemble", "reproduce"]


@pytest.fixture(scope="module")
def browser():
    chromium_path()
    with Chromium() as b:
        yield b


def _facts(browser, path):
    browser.events.clear()
    browser.open(path.resolve().as_uri())
    return browser.evaluate(PAGE_FACTS)


def _assert_images_load(facts):
    for section in facts["sections"]:
        for img in section["images"]:
            assert img["data"], f"{section['id']}: image {img['alt']} is not embedded as a data: URI"
            assert img["complete"] and img["width"] > 0 and img["height"] > 0, \
                f"{section['id']}: broken image {img['alt']}"


def test_every_section_renders_with_its_images(browser, complete_run):
    facts = _facts(browser, complete_run / "report.html")
    assert browser.errors() == []
    by_id = {s["id"]: s for s in facts["sections"]}
    assert list(by_id) == SECTIONS
    for sid in SECTIONS:
        assert by_id[sid]["height"] > 40, f"section {sid} did not render"
        assert by_id[sid]["status"] != "missing", f"section {sid}: {by_id[sid]['text'][:300]}"
    _assert_images_load(facts)
    # Sections that are pictures have pictures: curves in linear and log scale, accuracy, the
    # monitor's plots, the search plots.
    for sid in ("curves", "accuracy", "ratios", "histograms", "filters", "search"):
        assert by_id[sid]["images"], f"section {sid} has no image"
    # What the files say shows up where it belongs.
    assert "Leaderboard" in by_id["search"]["text"] and "optim.lr" in by_id["search"]["text"]
    assert "Border alarm" in by_id["search"]["text"] or "No border alarm" in by_id["search"]["text"]
    assert "torch" in by_id["reproduce"]["text"] and "seed" in by_id["reproduce"]["text"]
    assert "val acc" in by_id["ensemble"]["text"] and "passed" in by_id["preflight"]["text"]
    # Self-contained: no script, nothing fetched from elsewhere.
    assert facts["scripts"] == 0 and facts["external"] == []
    assert not screenshot_is_blank(browser.screenshot())


def test_plain_training_run_gives_curves_and_says_what_is_missing(browser, plain_run):
    from babysit.report import write_report

    write_report(plain_run)
    facts = _facts(browser, plain_run / "report.html")
    assert browser.errors() == []
    by_id = {s["id"]: s for s in facts["sections"]}
    _assert_images_load(facts)
    # 3 epochs of a small MLP: validation still climbs, which the curves section now says (warn).
    assert len(by_id["curves"]["images"]) == 1 and by_id["curves"]["status"] == "warn"
    assert "Still improving" in facts["title"] or "Still improving" in browser.evaluate(
        "document.getElementById('verdict').innerText")
    assert len(by_id["accuracy"]["images"]) == 1
    monitored = importlib.util.find_spec("babysit.watch") is not None
    # The monitor's own plots where it ran; else the report draws the curves from metrics.jsonl.
    assert "training loss per step" in by_id["curves"]["images"][0]["alt"] if monitored \
        else "linear and log scale" in by_id["curves"]["images"][0]["alt"]
    for sid in ("gradcheck", "preflight", "search", "ensemble") + (() if monitored else ("ratios",)):
        assert by_id[sid]["status"] == "missing"
        assert "Missing:" in by_id[sid]["text"]
    assert "gradcheck/report.json" in by_id["gradcheck"]["text"]
    assert not screenshot_is_blank(browser.screenshot())
