"""``python -m satclip.cli ...`` (same as ``satclip ...``)."""

import sys

from .main import main

sys.exit(main())
