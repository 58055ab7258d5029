"""The ``promcast`` command: one entry point whose subcommands come from the core and the daemon."""

from __future__ import annotations

import argparse
import sys

from forecaster.cli import add_predict

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="promcast", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    add_predict(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
