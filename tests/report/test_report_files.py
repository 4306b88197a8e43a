"""``babysit report``: a self-contained page, honest about missing and broken files, clear on bad input."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

from babysit.cli import main
from babysit.report import build_report, write_report
from babysit.rundir import RunDir, read_jsonl


def _sections(html: str) -> dict[str, str]:
    """Section id -> its HTML."""
    parts = re.findall(r'<section id="([a-z]+)" data-status="([a-z]+)">(.*?)</section>', html, re.S)
    return {sid: f"{status}|{body}" for sid, status, body in parts}


def test_cli_writes_a_self_contained_page(plain_run, capsys):
    assert main(["report", str(plain_run)]) == 0
    assert str(plain_run / "report.html") in capsys.readouterr().out
    html = (plain_run / "report.html").read_text()
    assert "<script" not in html  # the static page runs nothing
    assert not re.search(r'(src|href)="(https?:)?//', html)  # and loads nothing from elsewhere
    images = re.findall(r'<img src="([^"]+)"', html)
    assert images and all(re.match(r"data:image/(png|svg\+xml);base64,", src) for src in images)


def test_out_option_writes_elsewhere(plain_run, tmp_path):
    out = tmp_path / "page.html"
    assert main(["report", str(plain_run), "--out", str(out)]) == 0
    assert out.read_text().startswith("<!DOCTYPE html>")


def test_run_dir_that_does_not_exist(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "does not exist" in err and "runs/default" in err


def test_folder_that_holds_no_run(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("hello")
    assert main(["report", str(tmp_path)]) == 2
    assert "holds no run" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "notes.txt")]) == 2
    assert "is a file" in capsys.readouterr().err


def test_cli_bad_port_is_one_line(plain_run, capsys):
    assert main(["report", str(plain_run), "--serve", "--port", "70000"]) == 2
    assert "--port takes 0..65535" in capsys.readouterr().err


def test_interrupted_run_shows_what_exists_and_says_what_is_missing(quick_run, tmp_path):
    """A workflow killed during its search: run.json still says running, its process is gone."""
    path = tmp_path / "killed"
    shutil.copytree(quick_run[1], path)
    for rel in ("report.html", "ensemble", "search", "gradcheck", "preflight", "watch"):
        shutil.rmtree(path / rel, ignore_errors=True) if (path / rel).is_dir() else (path / rel).unlink(missing_ok=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    rd = RunDir(path)
    info = rd.read_json("run.json")
    info.update(status="running", finished=None, pid=dead.pid)
    info["stages"] = [{"name": "gradcheck", "status": "passed", "verdict": "ok", "seconds": 1.0},
                      {"name": "search", "status": "running", "verdict": "", "seconds": None}]
    rd.write_json("run.json", info)
    metrics = read_jsonl(path / "metrics.jsonl")[:2]  # two of the four epochs got written
    rd.write_text("metrics.jsonl", "".join(json.dumps(m) + "\n" for m in metrics))

    html = build_report(path)
    sections = _sections(html)
    assert "interrupted" in sections["overview"] and sections["overview"].startswith("fail|")
    assert "interrupted during this stage" in sections["search"]
    assert sections["ensemble"].startswith("missing|") and "interrupted before this stage" in sections["ensemble"]
    assert "2 epochs of 4 planned" in sections["curves"]  # what exists is still drawn
    assert "<img" in sections["curves"] and "<img" in sections["accuracy"]


def test_unreadable_file_is_shown_not_fatal(plain_run, tmp_path):
    path = tmp_path / "broken"
    shutil.copytree(plain_run, path)
    (path / "gradcheck").mkdir()
    (path / "gradcheck" / "report.json").write_text("{not json")
    (path / "metrics.jsonl").open("a").write('{"epoch": 4, "train_lo')  # a torn last line
    sections = _sections(build_report(path))
    assert sections["gradcheck"].startswith("fail|") and "cannot be read" in sections["gradcheck"]
    assert "3 epochs" in sections["curves"]  # the torn line is skipped, the rest is shown


def test_failed_checks_and_diagnoses_are_shown_with_their_fix(plain_run, tmp_path):
    path = tmp_path / "failed"
    shutil.copytree(plain_run, path)
    rd = RunDir(path)
    rd.write_json("preflight/report.json", {"passed": False, "checks": {
        "initial_loss": {"passed": False, "message": "loss 41.2 at init, chance is 2.303: weights too large; "
                                                     "lower init_scale", "loss": 41.2, "chance": 2.303},
        "overfit_tiny": {"passed": True, "message": "fitted in 80 steps", "steps": 80}}})
    rd.write_json("watch/diagnoses.json", [
        {"code": "lr_too_high", "severity": "error", "message": "the loss explodes: lower the learning rate "
                                                                "by 10x", "evidence": {"max_loss": 1e7}},
        {"code": "overfitting", "severity": "warning", "message": "train 1.00 vs val 0.80: add regularization"}])
    write_report(path)
    sections = _sections((path / "report.html").read_text())
    assert sections["preflight"].startswith("fail|") and "failed: initial_loss" in sections["preflight"]
    assert "lower init_scale" in sections["preflight"]
    diag = sections["diagnoses"]
    assert diag.startswith("fail|") and diag.index("lr_too_high") < diag.index("overfitting")
    assert "lower the learning rate by 10x" in diag and "add regularization" in diag
    # The verdict at the top ranks them: the failed check and the error before the warning.
    box = html_verdict((path / "report.html").read_text())
    assert 'data-status="fail"' in box
    assert box.index("initial_loss") < box.index("overfitting") and box.index("lr_too_high") < box.index("overfitting")


def html_verdict(html: str) -> str:
    return re.search(r'<div class="verdict-box.*?</div>', html, re.S).group(0)
