"""``python deploy`` runs the application: the command of a MONAI Application Package, whose app folder is this one
(``python3 /opt/holoscan/app``; deploy/README.md, "Packaging")."""

import sys

from app import main

sys.exit(main())
