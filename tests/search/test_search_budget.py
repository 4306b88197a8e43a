"""The stage summary: epochs spent, budget shares, best before and after each stage."""

from babysit.search.budget import stage_budget, summary_lines


def row(stage, acc, epochs, state="complete", n=800):
    return {"stage": stage, "val_acc": acc, "epochs_trained": epochs, "state": state, "val_n": n}


def test_shares_and_bests_follow_the_stages():
    records = [{"index": 1}, {"index": 2}]
    rows = [row(1, 0.50, 1), row(1, 0.60, 1), row(1, 0.90, 1, state="pruned"),
            row(2, 0.70, 4), row(2, 0.65, 3)]
    stage_budget(records, rows)
    first, second = records
    assert (first["epochs_spent"], second["epochs_spent"]) == (3.0, 7.0)
    assert (first["budget_share"], second["budget_share"]) == (0.3, 0.7)
    assert first["best_before"] is None
    assert first["best_after"]["acc"] == 0.60  # a pruned trial is not a result the search hands back
    assert first["best_after"]["low"] < 0.60 < first["best_after"]["high"] and first["best_after"]["n"] == 800
    assert second["best_before"] == first["best_after"] and second["best_after"]["acc"] == 0.70
    lines = summary_lines(records)
    assert lines[0].startswith("stage 1: 3 epochs (30% of the search); best val acc none -> 60.0% (56.6-63.3, n=800)")
    assert lines[1].endswith("(+10.0 pt)")  # 0.70 lies above 0.60's interval on 800 examples


def test_a_gain_inside_the_old_best_interval_is_within_noise_and_objectives_have_no_interval():
    records = [{"index": 1}, {"index": 2}]
    stage_budget(records, [row(1, 0.60, 1, n=50), row(2, 0.62, 2, n=50)])
    assert summary_lines(records)[1].endswith("(+2.0 pt, within noise)")
    records = [{"index": 1}]
    stage_budget(records, [row(1, 0.60, 1, n=None)])
    assert records[0]["best_after"] == {"acc": 0.60, "n": None, "low": None, "high": None}
    assert "-> 0.6000" in summary_lines(records)[0]
