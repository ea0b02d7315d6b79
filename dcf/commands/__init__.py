"""The ``dcf`` commands, one module per group; ``dcf/cli.py`` registers them on the typer app.

* ``ingest``: ``run``, ``rerate`` and ``serve`` (the nightly flow, once or on a schedule)
* ``status``: ``status``, ``failures`` and ``unmapped`` (read-only listings, no Prefect)
* ``repair``: ``replay`` and ``rollback``
* ``query``: ``sql`` and ``report``
* ``sample``: ``sample`` (the SYNTHETIC sample inbox)
* ``common``: exit codes, consoles, shared options and helpers

Commands import Prefect, pandas and DuckDB inside their bodies, never at module level.
"""
