"""``python -m kantata_bridge_cli``: the same as the ``kantata-bridge`` command."""

import sys

from kantata_bridge_cli.main import main

sys.exit(main())
