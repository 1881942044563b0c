"""`python -m tui`: the same as `hearth tui`."""

import sys

from tui.cli import main

sys.exit(main())
