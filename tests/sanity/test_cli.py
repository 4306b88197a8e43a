"""``babysit preflight``: the table, the run directory files, exit codes."""

import json

from babysit.cli import main
from tests.digits import digits_args


def test_default_experiment_passes_and_writes_its_report(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(["preflight", *digits_args(), "--run-dir", str(run_dir), "-q"]) == 0
    out = capsys.readouterr().out
    assert "PASSED, 6 of 6 checks passed" in out
    report = json.loads((run_dir / "preflight" / "report.json").read_text())
    assert report["passed"] is True and len(report["checks"]) == 6
    assert all(check["passed"] for check in report["checks"].values())
    assert "initial_loss" in (run_dir / "preflight" / "report.txt").read_text()
    assert (run_dir / "config.toml").is_file()
    for plot in ("overfit_tiny", "input_dependence"):
        png = run_dir / "preflight" / "plots" / f"{plot}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    overfit = report["checks"]["overfit_tiny"]
    assert len(overfit["curve"]) == overfit["steps"] + 1  # the plot's numbers: one per step


def test_a_failing_check_exits_1(tmp_path, capsys):
    run_dir = tmp_path / "run"
    code = main(["preflight", *digits_args(), "--run-dir", str(run_dir), "-q", "--set", "model.init_scale=10",
                 "--skip", "gradcheck", "--skip", "overfit_tiny", "--skip", "input_dependence"])
    assert code == 1
    assert "initial_loss        FAIL" in capsys.readouterr().out
    report = json.loads((run_dir / "preflight" / "report.json").read_text())
    assert report["checks"]["initial_loss"]["passed"] is False
    assert set(report["checks"]) == {"initial_loss", "reg_increases_loss", "deterministic"}


def test_a_config_file_and_its_preflight_section(tmp_path, capsys):
    config = tmp_path / "exp.toml"
    config.write_text('name = "svm"\n[loss]\nname = "svm"\n[preflight]\n'
                      'skip = ["gradcheck", "input_dependence"]\noverfit_examples = 10\n')
    assert main(["preflight", *digits_args(), str(config), "--run-dir", str(tmp_path / "run"), "-q"]) == 0
    report = json.loads((tmp_path / "run" / "preflight" / "report.json").read_text())
    assert report["checks"]["initial_loss"]["chance"] == 9.0
    assert report["checks"]["overfit_tiny"]["examples"] == 10


def test_bad_input_exits_2_with_one_line_and_leaves_no_run_directory(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["preflight", *digits_args(), str(tmp_path / "missing.toml"), "-q"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["preflight", *digits_args(), "-q", "--set", "preflight.overfit_stepz=3"]) == 2
    assert "did you mean 'preflight.overfit_steps'" in capsys.readouterr().err
    assert main(["preflight", *digits_args(), "-q", "--set", "preflight.skip=nonsense"]) == 2
    assert "unknown check" in capsys.readouterr().err
    assert main(["preflight", *digits_args(), "-q", "--set", "optim.name=nesterovv"]) == 2
    assert "nesterovv" in capsys.readouterr().err  # the error names the bad update rule
    assert main(["preflight", *digits_args(), "-q", "--set", "preflight.initial_tolerance=2"]) == 2
    assert "preflight.initial_tolerance takes a number in [0, 1), not 2.0" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_the_gradcheck_check_takes_the_gradcheck_section(tmp_path, capsys):
    others = ["initial_loss", "reg_increases_loss", "deterministic", "overfit_tiny", "input_dependence"]
    skips = [arg for name in others for arg in ("--skip", name)]
    run_dir = tmp_path / "run"
    assert main(["preflight", *digits_args(), "-q", "--run-dir", str(run_dir), "--set", "gradcheck.num_points=2",
                 "--set", "gradcheck.coords_per_tensor=4", *skips]) == 0
    check = json.loads((run_dir / "preflight" / "report.json").read_text())["checks"]["gradcheck"]
    assert check["passed"] and check["points"] == 2
    assert check["entries"] == 2 * 4 * 6  # data loss and regularization, 4 entries of 6 tensors
    assert main(["preflight", *digits_args(), "-q", "--run-dir", str(tmp_path / "bad"), "--set", "gradcheck.h=-1"]) == 2
    assert "gradcheck.h takes a number in (0, 1]" in capsys.readouterr().err
