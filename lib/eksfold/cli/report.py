"""``eksfold report RUN``: render a run's analysis notebook to one offline HTML page."""
from __future__ import annotations

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
    """``eksfold report RUN``: one call to :func:`build_report`."""
    from ..report import build_report

    where = build_report(args.root, out_html=args.out, params=dict(map(_parse_param, args.param)),
                         notebook=args.notebook, kernel_name=args.kernel,
                         hide_input=args.hide_input)
    print(where)
    return 0


def add_parsers(sub) -> None:
    """Register ``eksfold report`` on the CLI's sub-command parsers."""
    p = sub.add_parser("report", help="render the analysis notebook of a run to offline HTML")
    p.add_argument("root", help="run root (path or s3:// URI)")
    p.add_argument("--out", help="HTML file to write (default: ROOT/report.html)")
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                   help="extra notebook parameter (repeatable)")
    p.add_argument("--notebook", help="notebook to execute (default notebooks/analysis.ipynb)")
    p.add_argument("--kernel", help="Jupyter kernel name (default: the notebook's)")
    p.add_argument("--hide-input", action="store_true", help="leave code cells out")
    p.set_defaults(func=cmd_report)
