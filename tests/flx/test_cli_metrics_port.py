"""`flx worker --metrics-port`: without `flx ui`, Prometheus /metrics from the control schema."""

from __future__ import annotations

import signal
import socket
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.flx.meltano_project import MeltanoProject

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_worker_serves_metrics_of_the_runs_made(project: MeltanoProject) -> None:
    assert project.flx("run", "ok-job").returncode == 0
    port = _free_port()
    worker = project.flx_background("worker", "--metrics-port", str(port))
    try:
        text, deadline = None, time.monotonic() + 60
        while text is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
                    text = response.read().decode()
            except OSError:
                time.sleep(0.5)
        assert text is not None, "no /metrics within 60 s"
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }
        assert samples[("flx_executions_total", (("pipeline", "ok-job"), ("status", "succeeded")))] == 1
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
