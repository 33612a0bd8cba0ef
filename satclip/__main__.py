"""``python -m satclip ...`` runs the ``satclip`` command."""

import sys

from .cli import main

sys.exit(main())
