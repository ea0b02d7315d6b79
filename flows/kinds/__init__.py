"""The file kinds, each one unit (flows/kinds/<kind>.py): its config model lives in schemas/sources.py, its reader,
contracts and standardiser are called from its ``process``; the flow, replay and the warehouse treat every kind
alike through :class:`~flows.kinds.base.Kind`. A new kind is a config model, one module here and one line below."""

from __future__ import annotations

from flows.kinds.base import Kind
from flows.kinds.records import RECORDS
from flows.kinds.table import BUDGET, PROGRAMS
from flows.kinds.wide import YEARS_ACROSS_COLUMNS

KINDS: dict[str, Kind] = {k.name: k for k in (BUDGET, PROGRAMS, YEARS_ACROSS_COLUMNS, RECORDS)}
#: kinds whose held rows ``dcf replay`` re-normalises from their stored cells
REPLAYABLE_KINDS = tuple(name for name, kind in KINDS.items() if kind.standardise is not None)

__all__ = ["KINDS", "REPLAYABLE_KINDS", "Kind"]
