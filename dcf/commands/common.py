"""What every ``dcf`` command shares: exit codes, the two consoles (stdout for results, stderr for errors and
warnings), the common options, settings resolution, the one-line 'error:' exit, and the read-only connection."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

EXIT_OK, EXIT_RUN_FAILED, EXIT_USAGE, EXIT_BUSY, EXIT_PARTIAL = 0, 1, 2, 3, 4
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C

out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)

InboxOpt = typer.Option(
    None, "--inbox", help="Inbox folder with one sub-folder per agency (env DCF_INBOX; default data/inbox)."
)
WarehouseOpt = typer.Option(
    None, "--warehouse", help="Published DuckDB file (env DCF_WAREHOUSE; default data/warehouse.duckdb)."
)
SourcesOpt = typer.Option(None, "--sources", help="Folder of agency source YAMLs (env DCF_SOURCES; default sources/).")
ReferenceOpt = typer.Option(
    None, "--reference", help="Folder of reference tables (env DCF_REFERENCE; default reference/)."
)
QuietOpt = typer.Option(False, "--quiet", "-q", help="Errors and the totals only: no per-file lines, no table.")
VerboseOpt = typer.Option(
    False, "--verbose", "-v", help="Every log line: each failing row, and Prefect's own lines with time and level."
)
FormatOpt = typer.Option("table", "--format", help="table (default, for reading), csv or json (for scripts).")


def resolve_settings(**kw):
    from schemas.settings import Settings

    know_secret_blocks()  # every command that opens a warehouse resolves its settings first
    return Settings.resolve(**kw)


def fail(message: str, code: int) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", soft_wrap=True)  # one line, however long: scripts grep it
    raise typer.Exit(code)


def choose(option: str, noun: str, value: str, choices: Iterable[str]) -> None:
    """Exit 2 with one line naming the valid values unless ``value`` is one of ``choices``."""
    valid = list(choices)
    if value not in valid:
        fail(f"{option}: unknown {noun} '{escape(value)}'; choose one of: {escape(', '.join(valid))}", EXIT_USAGE)


def warn(message: str) -> None:
    err.print(f"[yellow]warning:[/] {escape(message)}", soft_wrap=True, highlight=False)


def _secret_block(name: str) -> object:
    from flows.passwords import secret_block_value  # Prefect and the source models only when a block is read

    return secret_block_value(name)


def know_secret_blocks() -> None:
    """Say how a Prefect Secret block holding the warehouse key is read (warehouse/ imports no Prefect)."""
    from warehouse import connect

    connect.use_block_reader(_secret_block)


def connect(warehouse: Path | None, config: dict | None = None):
    settings = resolve_settings(warehouse=warehouse)
    if not settings.warehouse.exists():
        fail(f"no warehouse at {settings.warehouse}; run 'dcf run' (or 'make demo') first", EXIT_USAGE)
    return settings, reading(settings.warehouse, config)


@contextmanager
def reading(path: Path, config: dict | None = None):
    """A read-only connection; a warehouse that does not open is one 'error:' line naming the way out (exit 2 for
    a missing or wrong key: a configuration error, the setting named, never the key)."""
    from warehouse.errors import WarehouseError, WarehouseKeyProblem
    from warehouse.publish import read_only

    try:
        with read_only(path, config) as con:
            yield con
    except WarehouseError as exc:
        fail(escape(str(exc)), EXIT_USAGE if isinstance(exc, WarehouseKeyProblem) else EXIT_RUN_FAILED)


def bind(sql: str, params: list) -> str:
    """``sql`` with each ``?`` replaced by its parameter as a SQL literal (text quoted, '' for a quote; whole numbers;
    NULL). The read-only commands use it instead of DuckDB's parameters because binding a Python value makes DuckDB
    import pandas (seconds on a busy machine); every ``?`` in ``sql`` must be a placeholder."""
    parts = sql.split("?")
    if len(parts) != len(params) + 1:
        raise ValueError(f"{len(parts) - 1} placeholder(s) for {len(params)} parameter(s)")

    def literal(value: object) -> str:
        if value is None:
            return "NULL"
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise TypeError(f"cannot inline a {type(value).__name__}")
        return str(int(value)) if isinstance(value, int) else "'" + value.replace("'", "''") + "'"

    return parts[0] + "".join(literal(p) + rest for p, rest in zip(params, parts[1:], strict=True))
