"""``python -m mrsr`` runs the ``mrsr`` command."""

import sys

from mrsr.cli import main

sys.exit(main())
