"""Argument parsing and output for each subcommand; the work is done by the capability modules."""
