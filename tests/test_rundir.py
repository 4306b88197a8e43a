import json
import math

import pytest
import torch

from babysit.rundir import (RunDir, append_jsonl, atomic_write_text, checkpoint_name, load_checkpoint,
                            read_jsonl, save_checkpoint)


def test_checkpoint_names_carry_epoch_and_score():
    assert checkpoint_name(7, 0.93124) == "epoch_007_val_0.9312.pt"
    assert checkpoint_name(12, float("nan")) == "epoch_012_val_nan.pt"


def test_atomic_write_leaves_no_temp_files(tmp_path):
    atomic_write_text(tmp_path / "a.txt", "one")
    atomic_write_text(tmp_path / "a.txt", "two")
    assert (tmp_path / "a.txt").read_text() == "two"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, {"w": torch.ones(2)})
    with pytest.raises(Exception):
        save_checkpoint(path, {"bad": lambda: None})  # cannot be serialized
    assert torch.equal(load_checkpoint(path)["w"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]


def test_jsonl_skips_a_torn_last_line_and_encodes_nan(tmp_path):
    path = tmp_path / "m.jsonl"
    append_jsonl(path, {"loss": 1.5, "t": torch.tensor(2.0)})
    append_jsonl(path, {"loss": float("nan")})
    with open(path, "a") as f:
        f.write('{"loss": 0.')  # a writer killed mid-line
    records = read_jsonl(path)
    assert records == [{"loss": 1.5, "t": 2.0}, {"loss": "nan"}]
    assert math.isnan(float(records[1]["loss"]))


def test_run_dir_create_never_reuses_a_run(tmp_path):
    a = RunDir.create(tmp_path, "exp")
    a.write_json("x.json", {"a": 1})
    b = RunDir.create(tmp_path, "exp")
    assert a.path.name == "exp" and b.path.name == "exp-2"
    assert json.loads((a / "x.json").read_text()) == {"a": 1}


def test_checkpoints_refuse_arbitrary_objects(tmp_path):
    import datetime

    path = tmp_path / "evil.pt"
    torch.save({"obj": datetime.date(2020, 1, 1)}, path)  # any class outside the allow-list
    from babysit.errors import UserError

    with pytest.raises(UserError, match="corrupt or not a babysit checkpoint"):
        load_checkpoint(path)
