"""``python -m specseg`` runs the command line."""

import sys

from specseg.cli.main import main

sys.exit(main())
