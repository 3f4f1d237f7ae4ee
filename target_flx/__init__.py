"""target-flx: a Singer target that loads PostgreSQL through pipelined asyncpg binary COPY."""
