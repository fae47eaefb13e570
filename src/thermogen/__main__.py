"""``python -m thermogen`` (also what ``torchrun -m thermogen train ...`` runs)."""

import sys

from thermogen.cli import main

sys.exit(main())
