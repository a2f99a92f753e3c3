"""``python -m resectbench`` is the ``resectbench`` command."""

from .cli.app import main

main()
