"""The ``satclip`` command line: :mod:`.main` assembles the parser from one module per
subcommand (``info``, ``demo``, ``train``, ``embed``, ``evaluate``, ``embed-images``, ``locate``;
``main.COMMANDS`` lists them).

The top layer: may import every other part of the package; nothing imports it.
"""

from .main import main

__all__ = ["main"]
