"""The real taps the compatibility suite runs, each in its own venv under bench/.venvs (installed from
PyPI on first use, reused after: see bench/anchors.py), and the reference loader beside target-flx."""

from __future__ import annotations

from bench.anchors import ANCHORS, Anchor

TAPS: dict[str, Anchor] = {
    "meltanolabs-tap-postgres": Anchor(
        "tap-postgres-meltanolabs", ("meltanolabs-tap-postgres==0.10.0",), "tap-postgres"
    ),
    "pipelinewise-tap-postgres": Anchor(
        "tap-postgres-pipelinewise",
        ("pipelinewise-tap-postgres==1.8.4",),
        "tap-postgres",
        fallback_deps=("pipelinewise-singer-python==1.*", "psycopg2-binary>=2.9.5", "strict-rfc3339==0.7"),
    ),
    "pipelinewise-tap-mysql": Anchor(
        "tap-mysql-pipelinewise",
        ("pipelinewise-tap-mysql==1.6.0",),
        "tap-mysql",
        fallback_deps=(
            "pipelinewise-singer-python==1.*",
            "PyMySQL>=1.0",
            "mysql-replication>=0.31,<1",
            "plpygis>=0.2",
            "tzlocal>=2",
        ),
    ),
    "meltanolabs-tap-mysql": Anchor(
        "tap-mysql-meltanolabs", ("meltanolabs-tap-mysql==0.0.1a1",), "tap-mysql"
    ),
}
REFERENCE = ANCHORS["meltanolabs"]
