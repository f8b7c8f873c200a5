"""Command-line interface: parses flags into config dataclasses and calls library functions."""

import argparse
import sys

from protgen import __version__
from protgen.errors import ProtgenError

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="protgen",
        description="Protein backbone generation with Latent Process Generator Matching.",
    )
    parser.add_argument("--version", action="version", version=f"protgen {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for register in _commands():
        register(sub)
    return parser


def _commands() -> list:
    from protgen.cli import data, eval, inspect, sample, train

    return [data.register, train.register, sample.register, eval.register, inspect.register]


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        sys.exit(2)
    try:
        args.run(args)
    except ProtgenError as error:
        print(f"protgen: error: {error}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("protgen: interrupted", file=sys.stderr)
        sys.exit(130)
