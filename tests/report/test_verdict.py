"""The verdict and the page's readings of the stage files, on files written in their formats."""

from __future__ import annotations

import io
import types

from babysit.report.gradcheck_view import per_tensor
from babysit.report.markup import duration, fmt, fmt_in, table
from babysit.report.readers import RunFiles
from babysit.report.reproduce import config_changes
from babysit.report.search_view import group_continuations, stage_row
from babysit.report.verdict import compute_verdict, current_alarms, points
from babysit.rundir import RunDir

SPACE = {"optim.lr": {"low": 1e-6, "high": 1.0, "log": True}}


def _run(tmp_path, **files) -> RunFiles:
    rd = RunDir(tmp_path)
    for rel, doc in files.items():
        rd.write_json(rel.replace("__", "/").replace("_json", ".json"), doc)
    return RunFiles.open(tmp_path)


def _stage(index, alarms=()):
    return {"index": index, "status": "done", "spec": {"trials": 4, "epochs": index, "space": SPACE},
            "alarms": list(alarms)}


ALARM_1 = {"stage": 1, "key": "loss.reg", "edge": "low", "message": "loss.reg at the lower edge: widen it"}


def test_an_alarm_of_an_earlier_stage_is_history_not_a_problem(tmp_path):
    run = _run(tmp_path, search__alarms_json=[ALARM_1], search__stages_json=[_stage(1, [ALARM_1]), _stage(2)])
    current, earlier = current_alarms(run)
    assert current == [] and earlier == [ALARM_1]
    verdict = compute_verdict(run)
    assert not [p for p in verdict.problems if p.section == "search"]
    assert verdict.section_status("search") is None


def test_an_alarm_of_the_final_stage_is_a_problem_with_its_fix(tmp_path):
    alarm = dict(ALARM_1, stage=2)
    run = _run(tmp_path, search__alarms_json=[alarm], search__stages_json=[_stage(1), _stage(2, [alarm])])
    verdict = compute_verdict(run)
    assert verdict.section_status("search") == "warn"
    assert "widen" in verdict.problems[0].title and "widen" in verdict.problems[0].fix


def test_continuations_are_one_configuration_with_their_lineage():
    rows = [{"rank": 1, "trial": 7, "stage": 2, "epochs": 4, "val_acc": 0.92, "continued_from": 2},
            {"rank": 2, "trial": 2, "stage": 1, "epochs": 1, "val_acc": 0.76},
            {"rank": 3, "trial": 3, "stage": 1, "epochs": 1, "val_acc": 0.50}]
    groups = group_continuations(rows)
    assert [g["trial"] for g in groups] == [7, 3]
    assert groups[0]["lineage"] == "trial 2 (stage 1, 1 ep) → trial 7 (stage 2, 4 ep)"
    assert [g["rank"] for g in groups] == [1, 2]


def test_stage_summary_fields_are_shown_when_present():
    record = dict(_stage(2), epochs_spent=8.0, budget_share=0.25,
                  best_before={"acc": 0.9, "n": 359, "low": 0.865, "high": 0.927}, best_after=None,
                  counts={"complete": 3, "pruned": 1, "diverged": 0, "failed": 0})
    row = stage_row(record)
    assert row["outcome"] == "3 complete, 1 pruned"  # the trials' fates in one cell, zeros left out
    assert row["epochs spent"] == "8 (25%)" and row["trials × epochs"] == "4 × 2"
    assert row["best before"] == "90.0% (86.5–92.7, n=359)" and row["best after"] == "—"


def test_gradient_check_per_tensor_worst_first_and_zeros_apart():
    compared = [{"name": "1.weight", "rel_error": 1e-9, "verdict": "happy"},
                {"name": "3.weight", "rel_error": 2e-3, "verdict": "wrong"},
                {"name": "3.weight", "rel_error": 1e-8, "verdict": "happy"}]
    zero = [{"name": "1.bias", "zero": True, "note": "dead unit"}]
    rows = per_tensor(compared, zero)
    assert [r["tensor"] for r in rows] == ["3.weight", "1.weight", "1.bias"]
    assert rows[0]["worst rel_error"] == 2e-3 and rows[0]["verdict"] == "wrong" and rows[0]["compared"] == 2
    assert rows[-1]["zero"] == 1 and rows[-1]["compared"] == 0


def test_config_is_shown_as_what_differs_from_the_defaults():
    from babysit.config import default_config

    config = default_config()
    lr = config["optim"]["lr"] * 10  # a change whatever the default learning rate is
    config["optim"]["lr"] = lr
    config["model"]["dropout"] = 0.3
    rows = {r["key"]: r for r in config_changes(config)}
    assert set(rows) == {"optim.lr", "model.dropout"}
    assert rows["optim.lr"]["this run"] == lr and rows["optim.lr"]["default"] == default_config()["optim"]["lr"]


def test_numbers_read_as_a_person_reads_them():
    assert fmt(None) == "—" and fmt("") == "—"
    assert fmt_in(1.1, "seconds") == "1.1 s" and duration(125) == "2 min 05 s"
    assert "UTC" in fmt_in(1796417760.29, "started")
    assert points(0.0056, -0.012, 0.018) == "+0.6 pt (-1.2 to +1.8)"
    long = table([{"i": i} for i in range(30)], limit=10)
    assert "first 10 of 30 rows" in long and "<details><summary>all 30 rows</summary>" in long
    assert long.count("<tr>") == 1 + 10 + 1 + 30  # both heads, the first rows, then all of them


def test_without_a_test_split_the_headline_says_validation(tmp_path):
    rd = RunDir(tmp_path)
    rd.write_text("metrics.jsonl", '{"epoch": 1, "val_acc": 0.9, "train_acc": 0.9}\n'
                                   '{"epoch": 2, "val_acc": 0.91, "train_acc": 0.92}\n'
                                   '{"epoch": 3, "val_acc": 0.91, "train_acc": 0.93}\n')
    verdict = compute_verdict(RunFiles.open(tmp_path))
    assert verdict.status == "ok" and verdict.headline.split == "validation"
    assert "no test split evaluated" in verdict.lines()[0]


def test_progress_is_plain_lines_when_not_a_terminal():
    from babysit.train.callbacks import TrainState
    from babysit.train.progress import ProgressBar

    out = io.StringIO()
    bar = ProgressBar("t", file=out)
    state = TrainState.__new__(TrainState)
    state.epoch, state.epochs, state.steps_per_epoch, state.stop_reason = 1, 2, 5, None
    state.logs = {"train_loss": 1.0, "train_acc": 0.5, "val_loss": 1.1, "val_acc": 0.4, "seconds": 0.2}
    state.data = types.SimpleNamespace(y_train=[0] * 500, y_val=[0] * 100)  # train_acc on 100 of them
    bar.on_epoch_begin(state)
    for _ in range(5):
        bar.on_batch_end(state)
    bar.on_epoch_end(state)
    assert out.getvalue().splitlines() == [
        "epoch   1/2  train loss 1.0000 acc 50.0% (40.4-59.6)  |  val loss 1.1000 acc 40.0% (30.9-49.8)"
        "  n=100  (0.2s)"]
