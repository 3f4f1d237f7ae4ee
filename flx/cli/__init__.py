"""The `flx` command line: each command in its module, loaded when it runs."""
