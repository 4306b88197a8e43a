"""The page's slow parts come from RUN_DIR/.report-cache while their inputs are unchanged; the
monitor's histogram panels name layers as the rest of the page does; the verdict's noise rules."""

from __future__ import annotations

import os
import re
import shutil

import pytest

from babysit.report import cache, figures, reproduce, write_report
from babysit.report.readers import RunFiles
from babysit.report.verdict import _still_rising, compute_verdict


def _page(path) -> str:
    """The page without the time it was written."""
    return re.sub(r"written [^·<]* UTC", "", (path / "report.html").read_text())


@pytest.fixture
def run(plain_run, tmp_path):
    path = tmp_path / "run"
    shutil.copytree(plain_run, path, ignore=shutil.ignore_patterns(cache.FOLDER))
    return path


def test_a_second_page_is_written_from_the_cache_and_a_changed_record_redraws(run, monkeypatch):
    write_report(run)
    first = _page(run)
    assert {"monitor-figures.json", "experiment.json"} <= {p.name for p in (run / cache.FOLDER).iterdir()}

    def forbidden(*args, **kwargs):
        raise AssertionError("drawn again although nothing changed")

    monkeypatch.setattr(figures, "_monitor_figures", forbidden)
    monkeypatch.setattr(reproduce, "describe_experiment", forbidden)
    write_report(run)
    assert _page(run) == first

    drawn = []
    monkeypatch.setattr(figures, "_monitor_figures", lambda *a: drawn.append(a) or {"curves": []})
    meta = run / "watch" / "meta.json"
    os.utime(meta, ns=(meta.stat().st_atime_ns, meta.stat().st_mtime_ns + 10**9))  # the monitor wrote again
    write_report(run)
    assert len(drawn) == 1


def test_a_damaged_cache_entry_is_made_again_and_a_read_only_folder_is_no_error(tmp_path):
    folder = tmp_path / cache.FOLDER
    folder.mkdir()
    (folder / "thing.json").write_text("{not json")
    assert cache.cached(tmp_path, "thing", "k", lambda: {"a": 1}) == {"a": 1}
    assert cache.cached(tmp_path, "thing", "k", lambda: {"a": 2}) == {"a": 1}  # stored the first time
    assert cache.cached(tmp_path, "thing", "other key", lambda: {"a": 3}) == {"a": 3}
    assert cache.cached(tmp_path, "kept", "k", lambda: 1, keep=lambda v: False) == 1
    assert not (folder / "kept.json").exists()  # a failure worth retrying is not stored
    if os.geteuid() != 0:  # root writes anywhere
        folder.chmod(0o500)
        try:
            assert cache.cached(tmp_path, "new", "k", lambda: 5) == 5
        finally:
            folder.chmod(0o700)


def test_histogram_panels_name_the_module_by_its_qualified_name(run):
    from babysit.watch import plots as monitor
    from babysit.watch.records import load_history

    modules = reproduce.described(RunFiles.open(run))["modules"]
    fig = monitor.activations(load_history(run))
    figures._adjust(fig, "activations", None, modules)
    titles = [ax.get_title() for ax in fig.axes if ax.has_data()]
    names = {m["name"]: m["type"] for m in modules}
    assert titles and not any(t.startswith("layer ") for t in titles)
    for title in titles:
        name = title.split(":")[0]
        assert names.get(name) == "ReLU", title  # the module's own qualified name and type
        assert re.search(r"after \S+ \(Linear\)", title), title  # and the weight layer it follows
    figures._pyplot().close(fig)


def test_panel_title_without_the_architecture_keeps_the_name():
    assert figures.panel_title("layer net.2 (tanh)\nsaturated 3%", None) == "net.2: tanh\nsaturated 3%"
    assert figures.panel_title("something else", []) == "something else"


def test_a_rise_inside_the_validation_noise_is_not_called_still_improving():
    records = [{"epoch": i + 1, "val_acc": a} for i, a in enumerate((0.90, 0.950, 0.958, 0.967))]
    assert _still_rising(records, n=359) is None  # +1.7 points; the interval's half-width is ~1.9
    assert _still_rising(records, n=5000) == pytest.approx(0.017)  # the same rise on 5,000 examples
    assert _still_rising(records) == pytest.approx(0.017)  # n unknown: the fixed 1 point
    fast = [{"epoch": i + 1, "val_acc": a} for i, a in enumerate((0.5, 0.6, 0.7))]
    assert _still_rising(fast, n=359) == pytest.approx(0.2)


def test_the_validation_headline_carries_its_interval_and_n(run):
    head = compute_verdict(RunFiles.open(run)).headline
    described = reproduce.described(RunFiles.open(run))
    n_val = described["n_val"]
    assert "x_test" in described["shapes"]  # the fingerprint covers the held-out test split too
    assert head.split == "validation" and head.n == n_val
    assert head.low < head.acc < head.high
    assert f"n={n_val}" in head.text()


def test_markup_planted_in_a_cached_figure_is_never_put_in_the_page(tmp_path):
    import json

    good = cache.cached(tmp_path, "figs", "k", lambda: [figures.svg_figure(_small_figure(), "a caption")],
                        trust=cache.figure_list)
    assert cache.figure_list(good)
    path = tmp_path / cache.FOLDER / "figs.json"
    entry = json.loads(path.read_text())
    entry["value"] = ['<figure><img src="x" onerror="alert(1)"></figure>']  # the key left as it was
    path.write_text(json.dumps(entry))
    again = cache.cached(tmp_path, "figs", "k", lambda: ["remade"], trust=cache.figure_list)
    assert again == ["remade"]


def _small_figure():
    fig, ax = figures._pyplot().subplots(figsize=(2, 1.5))
    ax.plot([0, 1], [1, 0])
    return fig
