"""Workers sharing a study on a real PostgreSQL server (the many-machines storage).

Skips when no server answers on 127.0.0.1:5432, except with BABYSIT_REQUIRE_POSTGRES=1 (CI),
where a missing server is a failure.
"""

import os
import uuid

import optuna
import pytest

from babysit.search import run_search
from babysit.search.storage import delete_studies, open_storage

pytestmark = pytest.mark.slow

URLS = [os.environ.get("BABYSIT_POSTGRES_URL", ""), "postgresql://postgres@127.0.0.1:5432/test",
        "postgresql://root@127.0.0.1:5432/test"]


def reachable_url():
    import psycopg2

    errors = []
    for url in filter(None, URLS):
        try:
            psycopg2.connect(url, connect_timeout=3).close()
            return url
        except Exception as exc:  # refused, auth, missing database
            errors.append(f"{url}: {str(exc).strip().splitlines()[0]}")
    message = "no PostgreSQL server: " + "; ".join(errors)
    if os.environ.get("BABYSIT_REQUIRE_POSTGRES") == "1":
        pytest.fail(message + " (BABYSIT_REQUIRE_POSTGRES=1)")
    pytest.skip(message)


def test_two_workers_share_a_postgres_study(tmp_path, tiny_config):
    url = reachable_url()
    name = f"babysit-test-{uuid.uuid4().hex[:10]}"
    config = tiny_config(stages=[{"trials": 4, "epochs": 1}], study=name)
    stages = [f"{name}.stage1"]
    try:
        result = run_search(config, tmp_path, workers=2, quiet=True, storage=url)
        study = optuna.load_study(study_name=stages[0], storage=open_storage(url))
        trials = study.get_trials()
        assert 4 <= len(trials) <= 5 and all(t.state.name == "COMPLETE" for t in trials)
        assert len({t.user_attrs["worker"] for t in trials}) == 2  # both processes took trials
        assert result.best_value == max(t.value for t in trials)
        assert not (tmp_path / "search/study.journal").exists()  # the database held the study
        assert len(list(tmp_path.glob("trials/*/epoch_001_val_*.pt"))) == len(trials)
    finally:
        delete_studies(url, [name] + stages)
    assert name not in {s.study_name for s in open_storage(url).get_all_studies()}
