"""Prefect flows and the I/O they need (inbox, reference files, clock). Nothing imports this package but the CLI."""

import os as _os

# No telemetry from the temporary local Prefect server nor from the client (this network reaches no analytics
# endpoint, and a defense budget pipeline sends nothing home): no "Prefect collects anonymous usage data" notice on
# a first run, no "Failed to send telemetry" error. An explicit setting wins.
_os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
_os.environ.setdefault("DO_NOT_TRACK", "1")

# Runs that do not go through dcf (a deployment, `python -m flows.nightly`) still use Prefect's own temporary server,
# whose first start on a new PREFECT_HOME migrates its database (14-20 s on 2 cores, far more on a busy machine)
# against a 20 s default limit. Set here, before any flow module imports Prefect; an explicit setting wins.
# (dcf itself starts the server as its own child and waits DCF_PREFECT_START_TIMEOUT: see flows/prefect_local.py.)
_os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "600")
