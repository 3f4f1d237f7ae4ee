"""Code shared by target-flx, tap-flx and the flx orchestrator.

Nothing in here imports from `target_flx`, `tap_flx` or `flx`: the three commands depend on this
package, never on each other, which keeps the import graph a tree.
"""
