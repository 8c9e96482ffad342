"""``python -m simulator`` runs the ``inosim`` command line."""

import sys

from simulator.cli import main

sys.exit(main())
