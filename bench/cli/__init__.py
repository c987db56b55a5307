"""Command line: run, speed, list, report, inspect, convert, mteb-check, search, scale, check, train.

Argument parsing only (parser.py); each command calls the library (benchmark.py, data.py, search.py)."""

from __future__ import annotations

import os
import sys

from bench.cli.parser import build_parser
from bench.errors import BenchError, Unavailable

__all__ = ["build_parser", "main"]


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        args = build_parser().parse_args(argv)
        return args.fn(args)
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Unavailable as u:  # a model or task asked for by name that cannot run here
        print(f"error: {' '.join(u.reason.split())}" + (f" (to fix: {u.fix})" if u.fix else ""), file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # every file bench writes is renamed into place, so what is on disk is whole
        print("interrupted", file=sys.stderr)
        return 130
