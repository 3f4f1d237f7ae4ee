"""`python -m orchestrator.ui [OPTIONS]`: the same as `flx ui [OPTIONS]`, through flx's own command group."""

import sys

from orchestrator.cli import main
from orchestrator.cli_ui import ui

if "ui" not in main.commands:
    main.add_command(ui)
sys.exit(main(["ui", *sys.argv[1:]], prog_name="flx"))
