"""``python -m thermogen.cli``."""

import sys

from thermogen.cli import main

sys.exit(main())
