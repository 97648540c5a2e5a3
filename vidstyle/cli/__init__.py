"""Command-line interface: ``vidstyle <command> ...`` (see :mod:`vidstyle.cli.main`)."""
