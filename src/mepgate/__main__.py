"""``python -m mepgate``: the same as the ``mepgate`` command."""

from mepgate.cli.main import main

main()
