"""Per file kind, one pure standardiser: raw mapped cells -> canonical rows + failures + skipped rows.

Nothing is dropped silently: every row below the header comes back exactly once, as a canonical row, a
quarantined row (with at least one blocking failure) or a skipped row (blank, totals).

This module holds the table of standardisers (:data:`STANDARDISERS`); they are split by job:

- ``transforms/standardise_context.py``: :class:`FileContext` and the :class:`Standardised` result;
- ``transforms/standardise_rows.py``: the rows before the checks (missing markers, blank and totals rows,
  constants, rows out of scope, a fiscal year derived from a date);
- ``transforms/standardise_checks.py``: the shared checks (countries, dates, totals) and the finish (severities,
  warned rows, the canonical contract);
- ``transforms/standardise_budget.py`` and ``transforms/standardise_programs.py``: one standardiser each.

Their names are re-exported here: ``from transforms.standardise import ...`` stays the way to reach them.
"""

from __future__ import annotations

from transforms.standardise_budget import standardise_budget
from transforms.standardise_checks import (
    _ambiguous_dates,
    _out_of_range,
    _unreadable_dates,
    apply_severity,
    map_country_column,
    validate_passing,
    warning_rules,
)
from transforms.standardise_context import FileContext, Standardised
from transforms.standardise_programs import standardise_programs
from transforms.standardise_rows import _is_marker, _order, _prepare

__all__ = [
    "STANDARDISERS",
    "FileContext",
    "Standardised",
    "_ambiguous_dates",
    "_is_marker",
    "_order",
    "_out_of_range",
    "_prepare",
    "_unreadable_dates",
    "apply_severity",
    "map_country_column",
    "standardise_budget",
    "standardise_programs",
    "validate_passing",
    "warning_rules",
]

STANDARDISERS = {"budget": standardise_budget, "programs": standardise_programs}
