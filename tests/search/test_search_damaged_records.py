"""Damaged or foreign records of a search: the journal's torn last line is mended, anything else
(a garbage journal, a truncated stages.json, another experiment's config) is refused in one
line with exit code 2, by `search --resume` and by `worker` alike, and nothing is written."""

import shutil
from types import SimpleNamespace

import optuna
import pytest

from babysit.config import to_toml
from babysit.search.storage import open_storage

pytestmark = pytest.mark.slow

TORN = '{"op_code": 5, "sta'  # what a writer killed mid-append leaves


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, tiny_config):
    """A finished one-stage search (2 trials, 1 epoch) to damage copies of."""
    from babysit.search import run_search

    config = tiny_config(stages=[{"trials": 2, "epochs": 1}], workers=1)
    run_dir = tmp_path_factory.mktemp("finished") / "run"
    run_search(config, run_dir, quiet=True)
    return run_dir


@pytest.fixture
def babysit(capsys):
    """Run the CLI in this process (the verbs' promise, without a new interpreter per case)."""
    from babysit.cli import main

    def run(*argv):
        capsys.readouterr()
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return SimpleNamespace(returncode=code, stdout=out, stderr=err)
    return run


def files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_a_torn_last_line_is_cut_before_the_next_append(tmp_path, capfd):
    """Old code: the next append was glued onto the torn line, and every later read raised."""
    journal = tmp_path / "study.journal"
    study = optuna.create_study(study_name="s", storage=open_storage(str(journal)))
    study.enqueue_trial({"x": 1.0})
    with open(journal, "a") as f:
        f.write(TORN)
    storage = open_storage(str(journal))  # mends, with a warning line
    assert "torn record (19 bytes" in capfd.readouterr().err
    optuna.load_study(study_name="s", storage=storage).enqueue_trial({"x": 2.0})
    with open(journal, "a") as f:  # torn again, under a storage already open: the append mends
        f.write(TORN)
    optuna.load_study(study_name="s", storage=storage).enqueue_trial({"x": 3.0})
    trials = optuna.load_study(study_name="s", storage=open_storage(str(journal))).get_trials()
    assert [t.system_attrs["fixed_params"]["x"] for t in trials] == [1.0, 2.0, 3.0]
    assert journal.read_bytes().endswith(b"\n") and TORN.encode() not in journal.read_bytes()


DAMAGE = {  # name: (file under search/, its new content or a function of the old)
    "garbage journal": ("study.journal", lambda old: "hello, not a journal\n"),
    "torn line inside the journal": ("study.journal", lambda old: old + TORN + '{"op_code": 2}\n'),
    "JSON that is no journal": ("study.journal", lambda old: '{"a": 1}\n'),
    "binary journal": ("study.journal", lambda old: "\udcff\udcfe\n"),
    "text without a newline": ("study.journal", lambda old: "hello"),  # not mended: refused, untouched
    "an operation without its fields": ("study.journal", lambda old: old + '{"op_code": 4}\n'),
    "empty journal": ("study.journal", lambda old: ""),
    "truncated stages.json": ("stages.json", lambda old: old[:len(old) // 2]),
    "empty stages.json": ("stages.json", lambda old: ""),
    "stages.json of numbers": ("stages.json", lambda old: "[1, 2]\n"),
    "stages.json an object": ("stages.json", lambda old: '{"index": 1}\n'),
}
WORKER_DAMAGE = [k for k, (name, _) in DAMAGE.items() if name == "study.journal"]


def damaged_copy(finished_run, tmp_path, damage):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    name, change = DAMAGE[damage]
    path = run / "search" / name
    path.write_bytes(change(path.read_text()).encode("utf-8", "surrogateescape"))
    return run


def assert_one_line_refusal(done, expect=""):
    out = done.stdout + done.stderr
    assert done.returncode == 2, out
    assert "Traceback" not in out and len(out.strip().splitlines()) == 1, out
    assert out.startswith("babysit: error: ") and expect in out, out


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_resume_refuses_damaged_records_in_one_line(finished_run, tmp_path, damage, babysit):
    run = damaged_copy(finished_run, tmp_path, damage)
    before = files(run)
    done = babysit("search", "--resume", run, "-q")
    assert_one_line_refusal(done)
    assert files(run) == before


@pytest.mark.parametrize("damage", WORKER_DAMAGE)
def test_a_worker_refuses_a_damaged_journal_in_one_line(finished_run, tmp_path, damage, babysit):
    run = damaged_copy(finished_run, tmp_path, damage)
    journal = (run / "search/study.journal").read_bytes()
    done = babysit("worker", run / "config.toml", "--storage", run / "search/study.journal",
                   "--study", "default", "--run-dir", run, "-q")
    assert_one_line_refusal(done)
    assert (run / "search/study.journal").read_bytes() == journal


def test_resume_mends_a_torn_journal_tail_and_goes_on(finished_run, tmp_path, babysit):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    with open(run / "search/study.journal", "a") as f:
        f.write(TORN)
    done = babysit("search", "--resume", run, "-q")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "torn record" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("verb, study", [("worker", "default"), ("worker", "default.stage1"),
                                         ("resume", "default")])
def test_another_experiment_is_refused_naming_the_keys(finished_run, tmp_path, verb, study, babysit):
    """Old code: a worker with width 512 joined a width-16 search in silence."""
    from babysit.config import load_config

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    if verb == "resume":
        argv = ["search", "--resume", str(run), "-q", "--set", "model.width=512"]
    else:
        other = load_config(run / "config.toml", ["model.width=512"])
        (tmp_path / "other.toml").write_text(to_toml(other))
        argv = ["worker", str(tmp_path / "other.toml"), "--storage", str(run / "search/study.journal"),
                "--study", study, "--run-dir", str(run)]
    done = babysit(*argv)
    assert_one_line_refusal(done, "model.width: 16 in the search, 512 here")


def test_a_worker_with_the_same_experiment_joins(finished_run, tmp_path, babysit):
    """The search's own config passes the check, `device` and `data.path` may differ by machine."""
    from babysit.config import load_config

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    same = load_config(run / "config.toml", ["device=cpu", "data.path=/elsewhere"])
    (tmp_path / "same.toml").write_text(to_toml(same))
    done = babysit("worker", tmp_path / "same.toml", "--storage", run / "search/study.journal",
                   "--study", "default", "--run-dir", run)
    assert done.returncode == 0 and "worker done: 0 trial(s)" in done.stdout, done.stdout + done.stderr
