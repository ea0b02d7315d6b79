"""A failing run says so loudly: a log line naming what failed, and a JSON POST to DCF_WEBHOOK_URL."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from flows.nightly import run_nightly

pytestmark = pytest.mark.slow


def test_failed_run_posts_a_notification(tmp_path, monkeypatch):
    received: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)  # loopback only
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("DCF_WEBHOOK_URL", f"http://127.0.0.1:{server.server_port}/hook")
    reference = tmp_path / "reference"
    reference.mkdir()  # no reference tables: the run cannot normalise anything and fails before publishing
    (tmp_path / "inbox").mkdir()
    try:
        with pytest.raises(Exception):
            run_nightly(inbox=str(tmp_path / "inbox"), warehouse=str(tmp_path / "w.duckdb"), reference=str(reference))
    finally:
        server.shutdown()
    assert len(received) == 1
    assert received[0]["flow"] == "nightly-ingestion" and received[0]["state"] == "Failed"
    assert "categories.csv" in received[0]["message"]
    assert not (tmp_path / "w.duckdb").exists()


def test_an_unreachable_inbox_fails_the_run_after_retries_instead_of_loading_an_empty_night(
    tmp_path, monkeypatch, caplog
):
    """A share that is down looks like an empty inbox; a deployment run must not report 'nothing new' then."""
    import logging

    monkeypatch.setenv("DCF_READ_ATTEMPTS", "3")
    monkeypatch.setenv("DCF_READ_BACKOFF", "0.1")
    caplog.set_level(logging.WARNING)
    missing = tmp_path / "share" / "inbox"
    with pytest.raises(OSError, match="is not reachable .* after 3 tries over 0.3 s; nothing was loaded"):
        run_nightly(inbox=str(missing), warehouse=str(tmp_path / "w.duckdb"))
    retried = [r.getMessage() for r in caplog.records if "is not reachable; retrying" in r.getMessage()]
    assert len(retried) >= 2  # waited with backoff before giving up (and Prefect retried the discovery task)
    assert not (tmp_path / "w.duckdb").exists()
