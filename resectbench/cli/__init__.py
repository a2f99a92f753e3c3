"""The ``resectbench`` command line (Typer). Commands parse options and call library functions."""
