"""``babysit optimizers``: the first-order update rules' paths on a long valley and a saddle point."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import UserError
from .common import writable_file


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "optimizers", help="picture the update rules' paths on a long valley and a saddle point",
        description="Run every first-order update rule (sgd, momentum, nesterov, adagrad, rmsprop, "
                    "adam: the very optimizers training uses) from the same start on two 2-D "
                    "surfaces, and draw their paths with a legend: a long narrow valley, where "
                    "SGD zig-zags and momentum builds speed along the floor, and a saddle point, "
                    "where SGD lingers while the per-parameter rules escape at once.",
        epilog="examples:\n  babysit optimizers\n  babysit optimizers --out paths.png\n"
               "  babysit optimizers --animate --out paths.gif",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", metavar="FILE",
                        help="where to write the picture (default: runs/optimizers.png, or "
                             "runs/optimizers.gif with --animate)")
    parser.add_argument("--animate", action="store_true",
                        help="write an animated GIF of the paths growing step by step")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    suffix = ".gif" if args.animate else ".png"
    out = Path(args.out) if args.out else Path("runs") / f"optimizers{suffix}"
    if out.suffix.lower() != suffix:
        raise UserError(f"--out {out} should end in {suffix} "
                        f"({'an animated GIF' if args.animate else 'a PNG image'}): rename it")
    if out.exists() and out.is_dir():
        raise UserError(f"--out {out} is a folder: give a file name like {out / ('optimizers' + suffix)}")
    writable_file(out, "--out")
    from ..optim import plot  # matplotlib is slow to import: only when drawing

    path = plot.save_gif(out) if args.animate else plot.save_png(out)
    print(path)
    return 0
