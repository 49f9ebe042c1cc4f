"""The ``mepgate`` command line."""
