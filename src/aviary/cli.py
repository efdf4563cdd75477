"""The `aviary` command line. Each subcommand lives in `aviary.commands.<name>` and is imported only
when it runs, so `aviary --help` loads no framework.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> one-line help; `aviary.commands.<name>` defines `add_arguments(parser)` and `run(args)`.
COMMANDS = {
    "plan": "print a BigBird block-sparse attention layout and draw its pattern",
}


class UserError(Exception):
    """A mistake in the command line or its inputs: printed as one line, exit status 2."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="aviary", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name, help_text in COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(f"aviary.commands.{name}").add_arguments(sub)
    args = parser.parse_args(argv)
    command = importlib.import_module(f"aviary.commands.{args.command}")
    try:
        return int(command.run(args) or 0)
    except (UserError, FileNotFoundError, ValueError) as err:
        print(f"aviary {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
