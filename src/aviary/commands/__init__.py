"""Subcommands of the `aviary` command line (see `aviary.cli`)."""
