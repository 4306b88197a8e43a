"""A real staged search on a digits subset with two worker processes, end to end."""

import re

import pytest

from babysit.config import load_config
from babysit.rundir import read_json, read_jsonl
from babysit.search import run_search, top_trials

pytestmark = pytest.mark.slow

CHECKPOINT = re.compile(r"^epoch_\d{3}_val_\d\.\d{4}\.pt$")


@pytest.fixture(scope="module")
def search(tmp_path_factory, tiny_config):
    """One search serves the tests below."""
    config = tiny_config(stages=[{"trials": 6, "epochs": 1}, {"trials": 3, "epochs": 2}], top_k=2)
    run_dir = tmp_path_factory.mktemp("search")
    result = run_search(config, run_dir, workers=2, quiet=True)
    return config, run_dir, result


def test_every_stage_is_recorded_and_the_second_is_narrower(search):
    config, run_dir, result = search
    stages = read_json(run_dir / "search/stages.json")
    assert [s["status"] for s in stages] == ["done", "done"]
    assert [s["spec"]["epochs"] for s in stages] == [1, 2]
    wide, fine = (s["spec"]["space"]["optim.lr"] for s in stages)
    assert wide == {"low": 1e-6, "high": 10.0, "log": True, "int": False}  # the notes: 10 ** uniform(-6, 1)
    assert fine["low"] >= wide["low"] and fine["high"] <= wide["high"]
    assert fine["high"] / fine["low"] < wide["high"] / wide["low"]
    # stage 2 first continued the two best settings of stage 1
    assert len(stages[1]["spec"]["carried"]) == 2
    assert (run_dir / "search/study.journal").stat().st_size > 0
    assert isinstance(read_json(run_dir / "search/alarms.json"), list)


def test_trials_have_named_checkpoints_metrics_and_config(search):
    config, run_dir, result = search
    for row in result.leaderboard:
        trial_dir = run_dir / row["checkpoint_dir"]
        names = sorted(p.name for p in trial_dir.glob("*.pt"))
        assert names and all(CHECKPOINT.match(n) for n in names), names
        records = read_jsonl(trial_dir / "metrics.jsonl")
        assert [r["epoch"] for r in records] == list(range(1, row["epochs"] + 1))
        best = max(r["val_acc"] for r in records)
        assert abs(best - row["val_acc"]) < 1e-12
        assert f"_val_{best:.4f}.pt" in " ".join(names)
        assert (trial_dir / "config.toml").is_file()
        assert load_config(trial_dir / "config.toml")["train"]["epochs"] == row["epochs"]
    assert not list(run_dir.glob("trials/*/.*.tmp"))  # no half-written checkpoint


def test_both_workers_ran_trials_and_the_budget_was_kept(search):
    from babysit.search.storage import default_storage, open_storage
    import optuna

    config, run_dir, result = search
    storage = open_storage(default_storage(run_dir))
    workers = set()
    for stage, budget in (("default.stage1", 6), ("default.stage2", 3)):
        trials = optuna.load_study(study_name=stage, storage=storage).get_trials()
        assert budget <= len(trials) <= budget + 1  # two workers may overshoot by one
        workers |= {t.user_attrs["worker"] for t in trials}
    assert len(workers) == 2


def test_result_leaderboard_and_top_trials(search):
    config, run_dir, result = search
    board = result.leaderboard
    assert [r["rank"] for r in board] == list(range(1, len(board) + 1))
    scores = [r["val_acc"] for r in board if r["state"] == "complete"]
    assert scores == sorted(scores, reverse=True)
    assert set(board[0]) >= {"rank", "trial", "stage", "params", "val_acc", "epochs", "state", "checkpoint_dir"}
    assert result.best_value == scores[0]
    assert result.best_params == board[0]["params"]
    for key, value in result.best_params.items():
        section, leaf = key.split(".")
        assert result.best_config[section][leaf] == value
    assert read_json(run_dir / "search/leaderboard.json") == board
    assert (run_dir / "search/leaderboard.txt").read_text().startswith("rank")
    for plot in ("scores_vs_params.png", "learning_curves.png"):
        assert (run_dir / "search/plots" / plot).stat().st_size > 10_000

    top = top_trials(run_dir, 3)
    assert len(top) == 3
    assert [acc for _, _, acc in top] == sorted((acc for _, _, acc in top), reverse=True)
    assert top[0][2] == pytest.approx(result.best_value, abs=1e-4)
    assert len({ckpt.read_bytes() for _, ckpt, _ in top}) == 3  # distinct models
    assert all(ckpt.parent == trial_dir for trial_dir, ckpt, _ in top)


def test_a_carried_trial_continues_from_the_previous_checkpoints(search):
    config, run_dir, result = search
    carried = [r for r in result.leaderboard if r["continued_from"] is not None and r["stage"] == 2]
    assert carried
    row = carried[0]
    assert row["epochs"] == 2 and row["epochs_trained"] == 1  # only the new epoch was trained
    source = run_dir / f"trials/{row['continued_from']}"
    first = next(source.glob("epoch_001_*.pt"))
    assert (run_dir / row["checkpoint_dir"] / first.name).read_bytes() == first.read_bytes()


def test_a_best_value_on_the_border_raises_an_alarm_and_auto_widens(tmp_path, tiny_config):
    config = tiny_config(sampler="grid", grid_points=2, auto_widen=True, top_k=1,
                         stages=[{"trials": 2, "epochs": 1}, {"trials": 1, "epochs": 1}],
                         space={"optim.lr": {"low": 1e-5, "high": 1e-3}})
    config["optim"]["name"] = "adam"  # 1e-3 learns in an epoch, 1e-5 does not: best on the edge
    result = run_search(config, tmp_path, workers=1, quiet=True)
    [alarm] = result.alarms[:1]
    assert (alarm["stage"], alarm["key"], alarm["edge"]) == (1, "optim.lr", "high")
    assert alarm["proposed"][1] > 1e-3
    assert read_json(tmp_path / "search/alarms.json")[0] == alarm
    stages = read_json(tmp_path / "search/stages.json")
    assert stages[0]["alarms"] == [alarm["message"]]
    assert stages[1]["spec"]["space"]["optim.lr"]["high"] > 1e-3  # the next stage looks past it


def test_each_stage_says_what_it_spent_and_what_it_bought(search):
    _, run_dir, result = search
    stages = read_json(run_dir / "search/stages.json")
    rows = result.leaderboard
    for stage in stages:  # epochs as trained in the stage's own trials
        assert stage["epochs_spent"] == sum(r["epochs_trained"] for r in rows if r["stage"] == stage["index"])
    assert abs(sum(s["budget_share"] for s in stages) - 1) < 1e-9
    first, second = stages
    assert first["best_before"] is None
    stage1_best = max(r["val_acc"] for r in rows if r["stage"] == 1 and r["state"] == "complete")
    assert first["best_after"]["acc"] == stage1_best
    assert first["best_after"]["n"] == 100  # 500 digits, 20% validation
    assert first["best_after"]["low"] < stage1_best < first["best_after"]["high"] or stage1_best == 1.0
    assert second["best_before"] == first["best_after"]
    assert second["best_after"]["acc"] == max(r["val_acc"] for r in rows if r["state"] == "complete")


def test_a_stage_of_half_an_epoch_stops_halfway_and_its_settings_start_the_next_afresh(tmp_path, tiny_config):
    # 400 training digits in batches of 50: 8 steps an epoch, 4 in half of one
    config = tiny_config(stages=[{"trials": 3, "epochs": 0.5}, {"trials": 2, "epochs": 1}], top_k=1)
    result = run_search(config, tmp_path, workers=1, quiet=True)
    first = [r for r in result.leaderboard if r["stage"] == 1]
    assert [r["epochs_trained"] for r in first] == [0.5] * 3 and all(r["state"] == "complete" for r in first)
    assert all(read_jsonl(tmp_path / r["checkpoint_dir"] / "metrics.jsonl")[0]["step"] == 4 for r in first)
    carried = next(r for r in result.leaderboard if r["stage"] == 2 and r["continued_from"] is None
                   and r["params"] == first[0]["params"])
    assert carried["epochs_trained"] == 1  # a whole epoch from the start, not half of one more
    stages = read_json(tmp_path / "search/stages.json")
    assert [s["epochs_spent"] for s in stages] == [1.5, 2.0]
