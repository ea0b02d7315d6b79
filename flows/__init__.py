"""Prefect flows and the I/O they need (inbox, reference files, clock). Nothing imports this package but the CLI."""
