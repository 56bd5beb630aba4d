"""``eksfold report RUN``: render a run's analysis notebook to one offline HTML page."""
from __future__ import annotations

import argparse
import json

from ..errors import EksfoldError


def _parse_param(text: str):
    """``name=value``; the value is read as JSON when it parses (numbers, lists), else text."""
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise EksfoldError(f"parameter {text!r}: expected name=value")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value


def cmd_report(args) -> int:
    """``eksfold report RUN`` (:func:`build_report`) or ``RUN_A RUN_B ...``
    (:func:`build_comparison`)."""
    from ..report import build_comparison, build_report

    params = dict(map(_parse_param, args.param))
    if len(args.root) > 1:
        if args.notebook:
            raise EksfoldError("--notebook applies to one run; a comparison uses compare.ipynb")
        where = build_comparison(args.root, out_html=args.out, params=params,
                                 kernel_name=args.kernel, hide_input=not args.show_code)
    else:
        where = build_report(args.root[0], out_html=args.out, params=params,
                             notebook=args.notebook, kernel_name=args.kernel,
                             hide_input=not args.show_code)
    print(where)
    return 0


def add_parsers(sub) -> None:
    """Register ``eksfold report`` on the CLI's sub-command parsers."""
    p = sub.add_parser("report", help="render a run's report (or compare runs) as offline HTML")
    p.add_argument("root", nargs="+", help="run root (path or s3:// URI); two or more: a "
                                           "comparison report over their shared targets")
    p.add_argument("--out", help="HTML file to write (default: ROOT/report.html, or "
                                 "FIRST_ROOT/compare.html for a comparison)")
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                   help="extra notebook parameter (repeatable)")
    p.add_argument("--notebook", help="notebook to execute (default notebooks/analysis.ipynb)")
    p.add_argument("--kernel", help="Jupyter kernel name (default: the notebook's)")
    p.add_argument("--show-code", action="store_true",
                   help="keep the notebook's code cells (hidden by default)")
    p.add_argument("--hide-input", action="store_true", help=argparse.SUPPRESS)  # the default now
    p.set_defaults(func=cmd_report)
