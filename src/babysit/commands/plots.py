"""``babysit plots``: draw the training monitor's plots of a run and print its diagnoses."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import UserError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "plots", help="draw a run's monitor plots and print what looks wrong",
        description="Draw the plots of the training monitor from the records in RUN_DIR/watch "
                    "(loss against epochs in linear and log scale, train/validation accuracy, "
                    "update:weight ratios per tensor against the ~1e-3 target, activation and "
                    "gradient histograms per layer, the first layer's weights) into "
                    "RUN_DIR/watch/plots/*.png, then print the diagnoses with the fix the notes "
                    "suggest for each. Works while the run is still training.",
        epilog="examples:\n  babysit train --run-dir runs/mlp && babysit plots runs/mlp\n"
               "  babysit plots runs/mlp --no-draw      # only the diagnoses",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by babysit train")
    parser.add_argument("--no-draw", dest="draw", action="store_false", help="only print the diagnoses")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..rundir import RunDir
    from ..watch import diagnose, load_history

    folder = Path(args.run_dir)
    if not (folder / "watch" / "meta.json").is_file():
        raise UserError(f"{folder} has no monitor records (no watch/meta.json): give a run directory "
                        "trained with [watch] enabled = true")
    run_dir = RunDir(folder)
    history = _history(run_dir, load_history)
    if args.draw:
        from ..watch.plots import draw_all

        written = draw_all(run_dir, history)
        print(f"{len(written)} plots in {folder / 'watch' / 'plots'}: "
              + ", ".join(p.name for p in written))
    found = diagnose(history)
    run_dir.write_json("watch/diagnoses.json", [d.to_dict() for d in found])
    if not found:
        print(f"no problems found ({len(history.steps)} steps, {len(history.epochs)} epochs watched)")
    for d in found:
        print(f"{d.severity:>7}  {d.code}: {d.message}")
    return 0


def _history(run_dir, load_history):
    """The monitor's records, or one line when its meta.json is not what the monitor writes."""
    meta = run_dir.path / "watch" / "meta.json"
    try:
        found = json.loads(meta.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError, OSError) as exc:
        raise UserError(f"{meta} is not readable JSON ({type(exc).__name__}): it is corrupt; retrain, or "
                        "remove the watch/ folder") from None
    if not isinstance(found, dict):
        raise UserError(f"{meta} holds a {type(found).__name__}, not the monitor's table: it is "
                        "corrupt; retrain, or remove the watch/ folder")
    try:
        return load_history(run_dir)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise UserError(f"the monitor's records in {run_dir.path / 'watch'} do not read back "
                        f"({type(exc).__name__}: {str(exc)[:80]}): they are corrupt; retrain, or "
                        "remove the watch/ folder") from None
