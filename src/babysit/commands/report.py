"""``babysit report RUN_DIR``: the run's HTML report, written to a file or served live."""

from __future__ import annotations

import argparse
import textwrap


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "report", help="write (or serve live) the HTML report of a run directory",
        description=textwrap.fill(
            "Write RUN_DIR/report.html: one self-contained page (images embedded, no "
            "network needed) with the gradient check, the sanity checks, the search "
            "leaderboard and border alarms, the learning curves, update ratios, "
            "histograms, first-layer weights, every diagnosis with its fix, the "
            "ensembles and what is needed to reproduce the run. Sections whose files "
            "are missing say so. With --serve, serve it on 127.0.0.1 and reload the "
            "page in the browser while the run is in progress."),
        epilog="examples:\n  babysit report runs/default\n"
               "  babysit report runs/default --serve            # then open http://127.0.0.1:8000/\n"
               "  babysit report runs/default --serve --port 0   # any free port",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory (e.g. runs/default)")
    parser.add_argument("--out", metavar="FILE", help="write the page here instead of RUN_DIR/report.html")
    parser.add_argument("--serve", action="store_true",
                        help="serve the report on 127.0.0.1 and keep it current (Ctrl-C stops)")
    parser.add_argument("--port", type=int, default=8000, metavar="P",
                        help="port for --serve (default 8000; 0 picks a free one)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import UserError
    from ..report import serve, write_report
    from .common import writable_file

    if not 0 <= args.port <= 65535:
        raise UserError(f"--port takes 0..65535, not {args.port}")
    if args.serve:
        serve(args.run_dir, port=args.port)
        return 0
    if args.out:
        writable_file(args.out, "--out")
    path = write_report(args.run_dir, args.out)
    print(f"report: {path}")
    return 0
