"""The `aviary` command line. Each subcommand lives in `aviary.commands.<name>` and is imported only
when it runs, so `aviary --help` loads no framework.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# name -> one-line help; `aviary.commands.<name>` defines `add_arguments(parser)` and `run(args)`.
COMMANDS = {
    "convert": "convert a checkpoint between formats (safetensors, pt, tf, flax, keras)",
    "verify": "run a checkpoint in every installed framework and compare the outputs",
    "info": "show a checkpoint's family, class, parameters, dtypes and files",
    "plan": "print a BigBird block-sparse attention layout and draw its pattern",
    "demo": "convert a real BERT to every format and embed sentences in PyTorch, TF and Flax",
}


class UserError(Exception):
    """A mistake in the command line or its inputs: printed as one line, exit status 2."""


def main(argv: list[str] | None = None) -> int:
    # Quiet TensorFlow's start-up logging and pin Keras to TF, before any framework is imported.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    parser = argparse.ArgumentParser(
        prog="aviary",
        description="BERT, BigBird and BigBirdPegasus checkpoints across PyTorch, TF and Flax",
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name, help_text in COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(f"aviary.commands.{name}").add_arguments(sub)
    args = parser.parse_args(argv)
    command = importlib.import_module(f"aviary.commands.{args.command}")
    try:
        return int(command.run(args) or 0)
    except (UserError, FileNotFoundError, NotADirectoryError, ValueError) as err:
        message = " ".join(str(err).split())  # one line, whatever the exception held
        print(f"aviary {args.command}: error: {message}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `aviary plan | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
