"""target-flx: Singer → PostgreSQL through pipelined binary COPY."""

# Set by `target_flx.main` before anything else is imported when a load runs without singer-sdk's
# Target class (the common `target-flx --config FILE` case): errors then do not derive from the SDK's.
LEAN = False
