"""``python -m controlplane`` is the ``drg`` command."""

import sys

from controlplane.cli import main

sys.exit(main())
