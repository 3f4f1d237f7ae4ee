"""`python -m flx` is the `flx` command."""

import sys

from flx.cli.main import main

sys.exit(main())
