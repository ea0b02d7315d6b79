"""Prefect flows and the I/O they need (inbox, reference files, clock). Nothing imports this package but the CLI."""

import os as _os

# No telemetry from the temporary local Prefect server (this network reaches no analytics endpoint anyway).
_os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
