"""Command-line interface: ``plugrad <command>`` and ``python -m plugrad <command>``."""
