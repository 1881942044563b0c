"""`python -m controller` is the same as the `hearth` command."""

from controller.cli import main

raise SystemExit(main())
