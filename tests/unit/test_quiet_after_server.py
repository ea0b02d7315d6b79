"""After the run's own Prefect server has stopped (flows/prefect_local.py), a task thread still finishing (after
SIGTERM the interpreter waits for the pool's threads) must not put Prefect's "Error emitting event" traceback, or
logging's own "--- Logging error ---", on the user's terminal: nothing can be sent to a server that is gone."""

from __future__ import annotations

import io
import logging

from flows import prefect_local


def test_once_the_server_is_gone_prefects_event_errors_and_logging_errors_stay_off_the_terminal(monkeypatch):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    events = logging.getLogger("prefect.events.utilities")
    monkeypatch.setattr(events, "disabled", events.disabled)  # restored after the test
    monkeypatch.setattr(logging.getLogger("prefect.events.worker"), "disabled", False)
    monkeypatch.setattr(logging, "raiseExceptions", True)
    events.addHandler(handler)
    try:
        try:
            raise RuntimeError("can't register atexit after shutdown")
        except RuntimeError:
            events.error("Error emitting event: prefect.task-run.Completed", exc_info=True)
        assert "Traceback" in stream.getvalue()  # as it was before the server stopped
        stream.truncate(0)

        prefect_local._quiet_after_server()
        try:
            raise RuntimeError("can't register atexit after shutdown")
        except RuntimeError:
            events.error("Error emitting event: prefect.task-run.Completed", exc_info=True)
        assert stream.getvalue().strip("\0") == ""
        assert logging.raiseExceptions is False  # a handler writing to a closed stream prints nothing
    finally:
        events.removeHandler(handler)
