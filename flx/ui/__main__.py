"""`python -m flx.ui [OPTIONS]`: the same as `flx ui [OPTIONS]`, through flx's own command group."""

import sys

from flx.cli.main import main
from flx.cli.ui import ui

if "ui" not in main.commands:
    main.add_command(ui)
sys.exit(main(["ui", *sys.argv[1:]], prog_name="flx"))
