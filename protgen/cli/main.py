"""Command-line interface: parses flags into config dataclasses and calls library functions."""

import argparse
import os
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
        sys.stdout.flush()
    except ProtgenError as error:
        print(f"protgen: error: {error}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("protgen: interrupted", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:
        # the reader stopped early (``protgen inspect RUN | head``): what it read is all it wanted.
        # stdout is pointed at /dev/null so Python's own flush at exit does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)  # 128 + SIGPIPE, as a program the signal ended
