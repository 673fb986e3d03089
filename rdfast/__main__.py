"""``python -m rdfast`` is the ``rdfast`` command."""
import sys

from .apps.cli import main

sys.exit(main())
