"""The ``satclip`` command line: :mod:`.main` assembles the parser from one module per
subcommand (:mod:`.info`, :mod:`.demo`, :mod:`.train`, :mod:`.embed`, :mod:`.evaluate`).

The top layer: may import every other part of the package; nothing imports it.
"""

from .main import main

__all__ = ["main"]
