"""tap-flx: flx's execution history (the control schema) and Meltano's runs as incremental Singer streams.

Imports only from `flx_core`, never from target_flx or flx (see flx_core/__init__.py).
"""
