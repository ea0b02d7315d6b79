"""The warehouse's own errors: each says in one sentence what happened and what to do next. Imports nothing heavy,
so the CLI can catch them without loading DuckDB."""

from __future__ import annotations


class WarehouseError(RuntimeError):
    """A problem with the warehouse's files or folder, said in one sentence with the next step."""


class WarehouseBusy(WarehouseError):
    """Another ingestion holds the warehouse lock."""


class WarehouseUnreadable(WarehouseError):
    """The published file does not open as a DuckDB warehouse; ``cause`` is what DuckDB raised."""

    def __init__(self, message: str, cause: BaseException | None = None):
        super().__init__(message)
        self.cause = cause


class WarehouseKeyProblem(WarehouseError):
    """The warehouse key is missing, wrong or cannot be read: a configuration error (exit 2). The message names the
    setting to fix (DCF_WAREHOUSE_KEY or the Secret block), never the key."""
