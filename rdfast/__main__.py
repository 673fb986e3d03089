"""``python -m rdfast`` is the ``rdfast`` command."""
import sys

from .cli import main

sys.exit(main())
